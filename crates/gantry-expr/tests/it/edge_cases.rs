//! Behaviour the conformance corpus does not pin down: hostile input, number printing, JSON,
//! laziness, identity, hosts and the queries on a parsed expression.

use std::time::{Duration, Instant};

use gantry_expr::{
    Contexts, ErrorKind, EvaluateOptions, Host, JobStatus, NoHost, ParseOptions, Value, parse,
};
use serde_json::json;

fn contexts() -> Contexts {
    let mut contexts = Contexts::new();
    contexts.insert(
        "github".to_owned(),
        Value::from(json!({
            "ref": "refs/heads/main",
            "event": {"labels": [{"name": "bug"}, {"name": "docs"}], "number": 7},
            "Dup": 1, "dup": 2
        })),
    );
    contexts.insert(
        "matrix".to_owned(),
        Value::from(json!({"os": "linux", "n": [1, 2]})),
    );
    contexts.insert("env".to_owned(), Value::from(json!({})));
    contexts
}

fn options() -> ParseOptions {
    ParseOptions::new(["github", "matrix", "env", "missing"])
}

/// Evaluates `source` and compares the result with `expected` (JSON; `kind` checked too).
#[track_caller]
fn check(source: &str, expected: serde_json::Value) {
    let shown = shorten(source);
    let value = parse(source, &options())
        .and_then(|expr| expr.evaluate(&contexts(), &NoHost))
        .unwrap_or_else(|error| panic!("{shown:?} failed: {}", shorten(&error.to_string())));
    let expected = Value::from(expected);
    assert_eq!(value.kind(), expected.kind(), "kind of {shown:?}");
    assert_eq!(value.to_json(), expected.to_json(), "value of {shown:?}");
}

/// Long hostile inputs would drown a failure message; show their start only.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Parses and evaluates `source` and expects an error of `kind` whose text contains `text`.
#[track_caller]
fn check_error(source: &str, kind: ErrorKind, text: &str) {
    let shown = shorten(source);
    let error = parse(source, &options())
        .and_then(|expr| expr.evaluate(&contexts(), &NoHost))
        .expect_err(&shown);
    let message = shorten(&error.to_string());
    assert_eq!(error.kind, kind, "kind of error for {shown:?}: {message}");
    assert!(
        error.to_string().contains(text),
        "error for {shown:?} should contain {text:?}: {message}"
    );
}

/// Runs `work` and fails if it takes longer than a generous bound; hostile input must be
/// rejected in well under that.
#[track_caller]
fn quickly<T>(work: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = work();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    result
}

#[test]
fn hostile_nesting_fails_fast_with_an_error() {
    let parens = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    quickly(|| {
        check_error(
            &parens,
            ErrorKind::Parsing,
            "Exceeded max expression depth 50",
        )
    });
    let nots = format!("{}true", "!".repeat(10_000));
    quickly(|| {
        check_error(
            &nots,
            ErrorKind::Parsing,
            "Exceeded max expression depth 50",
        )
    });
    let calls = format!("{}1{}", "toJSON(".repeat(2_000), ")".repeat(2_000));
    quickly(|| {
        check_error(
            &calls,
            ErrorKind::Parsing,
            "Exceeded max expression depth 50",
        )
    });
    let brackets = format!("github{}", "[0]".repeat(6_000));
    quickly(|| {
        check_error(
            &brackets,
            ErrorKind::Parsing,
            "Exceeded max expression depth 50",
        )
    });
    let unclosed = "(".repeat(20_000);
    quickly(|| {
        check_error(
            &unclosed,
            ErrorKind::Parsing,
            "Exceeded max expression depth 50",
        )
    });
}

#[test]
fn long_flat_chains_evaluate_without_deep_recursion() {
    // 20,000 characters of `==` is a flat chain, not 6,000 levels of recursion.
    let chain = format!("1{}", " == 1".repeat(3_999));
    assert!(chain.len() <= 21_000);
    // (1 == 1) is true, and true == 1 is true again.
    quickly(|| check(&chain, json!(true)));
    let ands = format!("true{}", " && true".repeat(2_600));
    quickly(|| check(&ands, json!(true)));
}

#[test]
fn overlong_expressions_are_rejected() {
    let long = format!("'{}'", "a".repeat(21_000));
    check_error(
        &long,
        ErrorKind::Lexing,
        "Exceeded max expression length 21000",
    );
    let just_fits = format!("'{}'", "a".repeat(20_998));
    check(&just_fits, json!("a".repeat(20_998)));
}

#[test]
fn string_doubling_hits_the_memory_limit() {
    let mut source = "'0123456789abcdef'".to_owned();
    for _ in 0..30 {
        source = format!("format('{{0}}{{0}}', {source})");
    }
    quickly(|| {
        check_error(
            &source,
            ErrorKind::Evaluation,
            "The maximum allowed memory size was exceeded",
        )
    });
    // The same expression fits a bigger budget only while the string does.
    let expr = parse("format('{0}{0}', 'ab')", &options()).unwrap();
    let tiny = EvaluateOptions { max_memory: 40 };
    assert!(expr.evaluate_with(&contexts(), &NoHost, &tiny).is_err());
}

#[test]
fn numbers_print_like_github() {
    check("format('{0}', 1e21)", json!("1e+21"));
    check(
        "format('{0}', 123456789012345678)",
        json!("123456789012345680"),
    );
    check("format('{0}', 0.0000001)", json!("1e-7"));
    check("format('{0}', 0.000001)", json!("0.000001"));
    check(
        "format('{0}', 1.23456789012345678)",
        json!("1.234567890123457"),
    );
    check("format('{0}', -0)", json!("0"));
    check(
        "join(fromJSON('[0.1, 1e300, -2.5]'), ' ')",
        json!("0.1 1e+300 -2.5"),
    );
    check("toJSON(1e21)", json!("1e+21"));
    check("toJSON(0.1)", json!("0.1"));
    check("toJSON(NaN)", json!("null"));
    check("toJSON(-Infinity)", json!("null"));
    check("-0", json!(-0.0));
    check("0x7fffffffffffffff", json!(9223372036854775807.0_f64));
}

#[test]
fn json_round_trips() {
    check(
        "toJSON(fromJSON('{\"a\":[1,{\"b\":null}],\"c\":\"x\"}'))",
        json!("{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": \"x\"\n}"),
    );
    check(
        "toJSON('tab\tquote\"back\\slash é')",
        json!("\"tab\\tquote\\\"back\\\\slash é\""),
    );
    check(
        "toJSON(format('{0}', fromJSON('\"\\u0001\\u001f\"')))",
        json!("\"\\u0001\\u001f\""),
    );
    check(
        "toJSON(github.event.labels.*.name)",
        json!("[\n  \"bug\",\n  \"docs\"\n]"),
    );
    // Keys differing only in case: the first one wins, as lookups could never reach the rest.
    check("fromJSON('{\"a\":1,\"A\":2}')", json!({"a": 1}));
    check("fromJSON('{\"a\":1,\"a\":2}').a", json!(2));
    check_error("fromJSON('')", ErrorKind::Evaluation, "empty input");
    check_error(
        "fromJSON('{')",
        ErrorKind::Evaluation,
        "Error parsing JSON when evaluating fromJson",
    );
    let deep = format!("fromJSON('{}{}')", "[".repeat(200), "]".repeat(200));
    check_error(&deep, ErrorKind::Evaluation, "Error parsing JSON");
}

#[test]
fn logical_operators_return_operands() {
    check(
        "github.ref == 'refs/heads/main' && 'prod' || 'dev'",
        json!("prod"),
    );
    check("matrix.nothing || matrix.os", json!("linux"));
    check("'' && 1", json!(""));
    check("0 || null", json!(null));
    check("matrix.n && matrix.os", json!("linux"));
    // Short-circuiting: the failing right-hand side never runs.
    check("false && fromJSON('')", json!(false));
    check("true || fromJSON('')", json!(true));
}

#[test]
fn lookups_ignore_case_and_missing_things_are_null() {
    check("GITHUB.REF", json!("refs/heads/main"));
    check("github.dup", json!(1));
    check("github['DUP']", json!(1));
    check("missing", json!(null));
    check("missing.a.b[0]", json!(null));
    check("github.event.labels[1].NAME", json!("docs"));
    check("github.event.labels['1'].name", json!("docs"));
    check("github.event.labels[1.9].name", json!("docs"));
    check("github.event.labels.*.name[0]", json!([]));
    check("github.event.*.name", json!([]));
    check("TOJSON(1)", json!("1"));
    check("StartsWith(github.ref, 'REFS/')", json!(true));
}

#[test]
fn arrays_and_objects_compare_by_identity() {
    check("github == github", json!(true));
    check("github.event == github.event", json!(true));
    check(
        "github.event.labels[0] == github.event.labels[0]",
        json!(true),
    );
    check("github.event == matrix", json!(false));
    check("fromJSON('{}') == fromJSON('{}')", json!(false));
    check(
        "github.event.labels.* == github.event.labels.*",
        json!(false),
    );
    check(
        "contains(github.event.labels, github.event.labels[1])",
        json!(true),
    );
    check("contains(github.event.labels.*.name, 'DOCS')", json!(true));
    check("null <= null", json!(true));
    check("null < null", json!(false));
    check("'ı' == 'I'", json!(false));
    check("'b' > 'A'", json!(true));
}

#[test]
fn case_and_format_evaluate_lazily() {
    check("case(true, 'a', fromJSON(''))", json!("a"));
    check("case(false, fromJSON(''), 'b')", json!("b"));
    check("format('x', fromJSON(''))", json!("x"));
    check("format('{1}{1}', fromJSON(''), 'y')", json!("yy"));
    check_error(
        "format('{0:yyyy}', 'x')",
        ErrorKind::Evaluation,
        "The format specifiers 'yyyy' are not valid for objects of type 'String'",
    );
    check_error(
        "format('{256}', 'x')",
        ErrorKind::Evaluation,
        "The following format string is invalid: {256}",
    );
    check("format('{0}', 'a''b''c')", json!("a'b'c"));
}

#[test]
fn parse_errors_report_github_messages_and_positions() {
    check_error(
        "1 ==",
        ErrorKind::Parsing,
        "Unexpected end of expression: '=='. Located at position 3 within expression: 1 ==",
    );
    check_error(
        "github[0",
        ErrorKind::Parsing,
        "Unexpected end of expression: '0'. Located at position 8",
    );
    check_error(
        "github.",
        ErrorKind::Parsing,
        "Unexpected end of expression: '.'. Located at position 7",
    );
    check_error(
        "contains(1",
        ErrorKind::Parsing,
        "Unexpected end of expression: '1'",
    );
    check_error(
        "'a'[0]",
        ErrorKind::Parsing,
        "Unexpected symbol: '['. Located at position 4",
    );
    check_error(
        "hashFiles('x')",
        ErrorKind::Parsing,
        "Unrecognized function: 'hashFiles'",
    );
    check_error(
        "success()",
        ErrorKind::Parsing,
        "Unrecognized function: 'success'",
    );
    check_error(
        "True",
        ErrorKind::Parsing,
        "Unrecognized named-value: 'True'",
    );
    check_error(
        "case(true, 1)",
        ErrorKind::Parsing,
        "Too few parameters supplied: 'case'",
    );
    check_error(
        "github.ref == 'x'\n  && nope",
        ErrorKind::Parsing,
        "Unrecognized named-value: 'nope'. Located at position 24",
    );
    check_error(
        "'😊' == x",
        ErrorKind::Parsing,
        "Unrecognized named-value: 'x'. Located at position 9",
    );
    check("", json!(null));
    check("  \n\t ", json!(null));
}

struct FakeHost;

impl Host for FakeHost {
    fn job_status(&self) -> JobStatus {
        JobStatus::Failure
    }

    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        if patterns.iter().any(|pattern| pattern.contains("bad")) {
            return Err("hashFiles('bad') failed".to_owned());
        }
        Ok(patterns.join("|"))
    }
}

#[test]
fn host_functions_go_through_the_host() {
    let options =
        options().with_functions(["hashFiles", "success", "failure", "always", "cancelled"]);
    let run = |source: &str| {
        parse(source, &options).and_then(|expr| expr.evaluate(&contexts(), &FakeHost))
    };
    assert_eq!(
        run("hashFiles('**/*.lock', 1, true)"),
        Ok(Value::from("**/*.lock|1|true"))
    );
    assert_eq!(run("HASHFILES(matrix.os)"), Ok(Value::from("linux")));
    let error = run("hashFiles('bad')").unwrap_err();
    assert_eq!(
        (error.kind, error.message.as_str()),
        (ErrorKind::Evaluation, "hashFiles('bad') failed")
    );
    assert_eq!(error.position, 1);
    assert_eq!(
        run("failure() && !success() && always() && !cancelled()"),
        Ok(Value::Boolean(true))
    );
    let error = parse("hashFiles('x')", &options)
        .and_then(|expr| expr.evaluate(&contexts(), &NoHost))
        .unwrap_err();
    assert_eq!(error.message, "hashFiles is not available here");
    assert!(parse("hashFiles()", &options).is_err());
    assert!(parse("always(1)", &options).is_err());
}

#[test]
fn parsed_expressions_answer_queries() {
    let options = options().with_functions(["always"]);
    let expr = parse(
        "github.ref == MATRIX.os || toJSON(github) && Always()",
        &options,
    )
    .unwrap();
    assert_eq!(
        expr.referenced_contexts(),
        vec!["github".to_owned(), "matrix".to_owned()]
    );
    assert!(expr.uses_status_function());
    assert_eq!(
        expr.source(),
        "github.ref == MATRIX.os || toJSON(github) && Always()"
    );
    let expr = parse("contains(github.ref, 'success()')", &options).unwrap();
    assert!(!expr.uses_status_function());
}
