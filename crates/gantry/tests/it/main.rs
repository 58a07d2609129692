//! Integration tests of the `gantry` binary and of repository-wide rules.

// Helpers outside `#[test]` functions are test code too: a panic there is a test failure with a
// message, and reports go to the test output on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod cli;
mod crash;
mod dispatch;
mod git_push;
mod jobs;
mod runner;
mod runners;
mod server;
mod support;
mod tidy;
mod up;
