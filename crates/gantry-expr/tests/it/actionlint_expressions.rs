//! 1,858 real-world expressions collected by actionlint must all parse.

use std::fs;

use gantry_expr::{ParseOptions, parse};

use crate::corpus::corpus_dir;

/// Every named value GitHub has allowed somewhere in a workflow or action.
const ALL_CONTEXTS: &[&str] = &[
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix",
    "needs", "inputs",
];

const ALL_FUNCTIONS: &[&str] = &["hashFiles", "success", "failure", "always", "cancelled"];

#[test]
fn real_world_expressions_parse() {
    let Some(dir) = corpus_dir("actionlint") else {
        return;
    };
    let text = fs::read_to_string(dir.join("testdata/bench/expressions.txt")).unwrap();
    let options = ParseOptions::new(ALL_CONTEXTS.iter().copied())
        .with_functions(ALL_FUNCTIONS.iter().copied());
    let lines: Vec<&str> = text.lines().collect();
    let mut failures = Vec::new();
    for line in &lines {
        if let Err(error) = parse(line, &options) {
            failures.push(format!("{line:?}: {error}"));
        }
    }
    let passed = lines.len() - failures.len();
    println!(
        "actionlint real-world expressions: {passed}/{} parsed",
        lines.len()
    );
    for failure in &failures {
        println!("  FAILED {failure}");
    }
    assert_eq!(lines.len(), 1858);
    assert!(failures.is_empty());
}
