//! GitHub's own cross-engine expression tests (actions/languageservices `expressions/testdata`).
//!
//! Every case is run, including the five that GitHub's TypeScript engine skips: those hold the
//! C# and Go engines (what GitHub actually runs) to absolute error positions in multi-line
//! expressions and to the 1 MiB evaluation memory limit, and this engine follows them.

use std::fs;

use gantry_expr::{Contexts, NoHost, ParseOptions, Value, parse};
use serde_json::Value as Json;

use crate::corpus::corpus_dir;

/// Passing cases at the last count; a drop below this fails the test.
const MINIMUM_PASSING: usize = 1020;

#[test]
fn github_expression_corpus() {
    let Some(dir) = corpus_dir("actions-languageservices") else {
        return;
    };
    let text = fs::read_to_string(dir.join("expressions-cases.flat.jsonl")).unwrap();
    let mut total = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).unwrap();
        total += 1;
        if let Err(reason) = run_case(&case) {
            failures.push(format!(
                "{}/{}#{} {:?}: {reason}",
                case["file"].as_str().unwrap_or(""),
                case["group"].as_str().unwrap_or(""),
                case["index"],
                case["expr"].as_str().unwrap_or("")
            ));
        }
    }
    let passed = total - failures.len();
    println!("languageservices expression corpus: {passed}/{total} passed");
    for failure in &failures {
        println!("  FAILED {failure}");
    }
    assert_eq!(total, 1020, "the corpus should hold 1020 cases");
    assert!(
        passed >= MINIMUM_PASSING,
        "{passed} cases passed, fewer than the {MINIMUM_PASSING} that passed before"
    );
}

fn run_case(case: &Json) -> Result<(), String> {
    let source = case["expr"].as_str().ok_or("no expr")?;
    let mut contexts = Contexts::new();
    if let Some(map) = case["contexts"].as_object() {
        for (name, value) in map {
            contexts.insert(name.clone(), Value::from_json(value));
        }
    }
    let options = ParseOptions::new(contexts.keys().cloned());
    let expected_error = case["error"].as_object();
    let outcome = parse(source, &options).and_then(|expr| expr.evaluate(&contexts, &NoHost));
    match (outcome, expected_error) {
        (Err(error), Some(expected)) => {
            let kind = expected["kind"].as_str().unwrap_or("");
            let text = expected["value"].as_str().unwrap_or("");
            if error.kind.to_string() != kind {
                return Err(format!(
                    "expected a {kind} error, got {:?}: {error}",
                    error.kind
                ));
            }
            if !error.to_string().contains(text) {
                return Err(format!(
                    "expected an error containing {text:?}, got {:?}",
                    error.to_string()
                ));
            }
            Ok(())
        }
        (Err(error), None) => Err(format!("unexpected {} error: {error}", error.kind)),
        (Ok(value), Some(expected)) => Err(format!("expected error {expected:?}, got {value:?}")),
        (Ok(value), None) => {
            let expected = &case["expected"];
            let kind = expected["kind"].as_str().unwrap_or("");
            if value.kind() != kind {
                return Err(format!("expected kind {kind}, got {value:?}"));
            }
            if !json_equal(&value.to_json(), &expected["value"]) {
                return Err(format!(
                    "expected {}, got {}",
                    expected["value"],
                    value.to_json()
                ));
            }
            Ok(())
        }
    }
}

/// JSON equality where numbers compare as doubles (so `1` equals `1.0` and `-0.0` equals `0`,
/// as in GitHub's harness, which compares `JSON.stringify` output).
fn json_equal(actual: &Json, expected: &Json) -> bool {
    match (actual, expected) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_equal(a, b))
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && json_equal(va, vb))
        }
        _ => actual == expected,
    }
}

/// The harness itself must tell right from wrong, or a broken engine could pass.
#[test]
fn harness_rejects_wrong_answers() {
    let wrong_value = serde_json::json!({
        "expr": "1 == 1", "contexts": {}, "error": null,
        "expected": {"kind": "Boolean", "value": false}
    });
    assert!(run_case(&wrong_value).is_err());
    let wrong_kind = serde_json::json!({
        "expr": "'1'", "contexts": {}, "error": null,
        "expected": {"kind": "Number", "value": 1}
    });
    assert!(run_case(&wrong_kind).is_err());
    let wrong_error = serde_json::json!({
        "expr": "1 2", "contexts": {}, "expected": null,
        "error": {"kind": "lexing", "value": "Unexpected symbol"}
    });
    assert!(run_case(&wrong_error).is_err());
    let right = serde_json::json!({
        "expr": "fromJSON('[1, {\"a\": -0}]')", "contexts": {}, "error": null,
        "expected": {"kind": "Array", "value": [1.0, {"a": 0}]}
    });
    assert_eq!(run_case(&right), Ok(()));
}
