//! Integration tests of the control plane as a library: [`gantry_server::App`] operations on a
//! real SQLite store, restarts simulated by opening a second `App` on the same file.

// Test code: a panic is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod library;
mod remote_calls;
mod runners;
mod triggers;
mod webhook_corpus;
