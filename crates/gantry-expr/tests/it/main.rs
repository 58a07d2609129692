//! Integration tests of `gantry-expr`: GitHub's conformance corpora, edge cases the corpora miss,
//! templates and conditions, and property tests against hostile input.

// Helpers outside `#[test]` functions are test code too: a panic there is a test failure with a
// message, and reports go to the test output on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod actionlint_expressions;
mod corpus;
mod edge_cases;
mod fuzz;
mod languageservices;
mod status_functions;
mod templates;
