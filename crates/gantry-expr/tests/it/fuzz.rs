//! Property tests: whatever the input, parsing and evaluating return a result, never panic,
//! never overflow the stack, and finish quickly.

use std::time::{Duration, Instant};

use gantry_expr::{Contexts, NoHost, ParseOptions, Value, parse, parse_condition, parse_template};
use proptest::prelude::*;
use serde_json::json;

fn contexts() -> Contexts {
    let mut contexts = Contexts::new();
    contexts.insert(
        "github".to_owned(),
        Value::from(
            json!({"ref": "refs/heads/main", "event": {"labels": [{"name": "bug"}], "n": 1.5}}),
        ),
    );
    contexts.insert(
        "matrix".to_owned(),
        Value::from(json!({"os": ["linux", "mac"], "x": null})),
    );
    contexts
}

fn options() -> ParseOptions {
    ParseOptions::new(["github", "matrix"]).with_functions([
        "success",
        "failure",
        "always",
        "cancelled",
    ])
}

/// Parses and evaluates `source` (as an expression, a template and a condition) and checks
/// that it took well under the bound a hostile input would need to hurt.
fn exercise(source: &str) {
    let start = Instant::now();
    let contexts = contexts();
    if let Ok(expr) = parse(source, &options()) {
        let _ = expr.evaluate(&contexts, &NoHost);
        let _ = expr.referenced_contexts();
    }
    if let Ok(template) = parse_template(source, &options()) {
        let _ = template.evaluate(&contexts, &NoHost);
    }
    if let Ok(condition) = parse_condition(source, &options()) {
        let _ = condition.evaluate(&contexts, &NoHost);
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{source:?} took {:?}",
        start.elapsed()
    );
}

/// Random expression text built from the grammar, so that most cases parse and evaluate.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("NaN".to_owned()),
        Just("-Infinity".to_owned()),
        any::<f64>().prop_map(|n| format!("{n:?}").replace("inf", "Infinity")),
        "[a-zA-Z0-9 {}'_.*-]{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        Just("github".to_owned()),
        Just("matrix.os".to_owned()),
        Just("github.event.labels.*.name".to_owned()),
        Just("github['REF']".to_owned()),
        Just("success()".to_owned()),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "&&", "||"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})[{b}]")),
            inner.clone().prop_map(|a| format!("({a}).*")),
            (
                prop::sample::select(vec![
                    "contains",
                    "startsWith",
                    "endsWith",
                    "format",
                    "join",
                    "toJSON",
                    "fromJSON",
                    "case",
                ]),
                prop::collection::vec(inner, 0..5),
            )
                .prop_map(|(name, args)| format!("{name}({})", args.join(", "))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        exercise(&source);
    }

    #[test]
    fn expression_alphabet_never_panics(source in "[a-z()\\[\\]., *!=<>&|'0-9x${}-]{0,80}") {
        exercise(&source);
    }

    #[test]
    fn structured_expressions_never_panic(source in expression()) {
        exercise(&source);
        exercise(&format!("${{{{ {source} }}}} and ${{{{ {source} }}}}"));
    }
}
