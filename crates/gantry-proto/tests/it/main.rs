//! Integration tests of the wire types: golden JSON files and the rules every type follows.

// Test code: a panic is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod golden;
