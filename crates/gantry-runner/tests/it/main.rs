//! Integration tests of `gantry-runner`.

// Helpers outside `#[test]` functions are test code too: a panic there is a test failure with a
// message, and reports go to the test output on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod act;
mod agent;
mod hash_files;
mod sandbox;
mod steps;
