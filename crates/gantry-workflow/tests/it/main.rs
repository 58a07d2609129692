//! Integration tests of `gantry-workflow`: corpus conformance, loading, validation, planning,
//! triggers and fuzzing of the loader.

// Helpers outside `#[test]` functions are test code too: a panic there is a test failure with a
// message, and reports go to the test output on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod corpus;
mod corpus_actionlint;
mod corpus_popular;
mod corpus_reader;
mod filter_cron;
mod fuzz;
mod graph;
mod load;
mod matrix_corpus;
mod trigger;
