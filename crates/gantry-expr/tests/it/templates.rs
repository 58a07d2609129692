//! Templates (text with `${{ }}` parts) and `if:` conditions.

use gantry_expr::{
    Contexts, ErrorKind, Host, JobStatus, NoHost, ParseOptions, TemplatePart, Value,
    parse_condition, parse_template,
};
use serde_json::json;

fn contexts() -> Contexts {
    let mut contexts = Contexts::new();
    contexts.insert(
        "github".to_owned(),
        Value::from(json!({"ref": "main", "n": 3})),
    );
    contexts
}

fn options() -> ParseOptions {
    ParseOptions::new(["github"])
}

/// Renders `text` as a template and compares the result with `expected`.
#[track_caller]
fn check(text: &str, expected: serde_json::Value) {
    let template =
        parse_template(text, &options()).unwrap_or_else(|error| panic!("{text:?}: {error}"));
    let value = template.evaluate(&contexts(), &NoHost).unwrap();
    assert_eq!(value, Value::from(expected), "rendering {text:?}");
}

/// Expects `text` to be rejected with an error at byte `offset` whose text contains `message`.
#[track_caller]
fn check_error(text: &str, offset: usize, message: &str) {
    let error = parse_template(text, &options()).expect_err(text);
    assert_eq!(error.offset, offset, "offset for {text:?}: {error}");
    assert!(error.to_string().contains(message), "{text:?}: {error}");
}

#[test]
fn renders_templates() {
    check("plain text", json!("plain text"));
    check("", json!(""));
    check("${{ github.n }}", json!(3));
    check("${{github.n}}", json!(3));
    check(" ${{ github.n }}", json!(" 3"));
    check(
        "a ${{ github.ref }} b ${{ github.n }}${{ 'x' }}",
        json!("a main b 3x"),
    );
    check("${{ '}}' }}", json!("}}"));
    check("${{ 'it''s }}' }} done", json!("it's }} done"));
    check("${{ fromJSON('{\"a\":1}') }}", json!({"a": 1}));
    check("${{ fromJSON('{\"a\":1}') }}!", json!("Object!"));
    check(
        "$ {{ not an expression }}",
        json!("$ {{ not an expression }}"),
    );
    check("${{ null }} and ${{ true }}", json!(" and true"));
}

#[test]
fn splits_templates_into_parts() {
    let template = parse_template("x${{ 1 }}y", &options()).unwrap();
    assert!(!template.is_literal());
    assert!(matches!(
        template.parts.as_slice(),
        [TemplatePart::Literal(a), TemplatePart::Expression(e), TemplatePart::Literal(b)]
            if a == "x" && e.source() == "1" && b == "y"
    ));
    assert!(
        parse_template("no expressions", &options())
            .unwrap()
            .is_literal()
    );
    assert!(parse_template("", &options()).unwrap().parts.is_empty());
}

#[test]
fn rejects_bad_templates() {
    check_error("abc ${{ github.ref", 4, "The expression is not closed");
    check_error("${{ 'unterminated }}", 0, "The expression is not closed");
    check_error("ok ${{ 1 }} then ${{ }}", 17, "An expression was expected");
    check_error(
        "abc ${{ 1 = 2 }}",
        4,
        "Unexpected symbol: '='. Located at position 3 within expression: 1 = 2",
    );
    check_error("${{ secrets.x }}", 0, "Unrecognized named-value: 'secrets'");
}

struct Status(JobStatus);

impl Host for Status {
    fn job_status(&self) -> JobStatus {
        self.0
    }

    fn hash_files(&self, _patterns: &[String]) -> Result<String, String> {
        Err("no".to_owned())
    }
}

/// Parses the `if:` text, compares the effective condition with `source`, and evaluates it
/// after a success and after a failure.
#[track_caller]
fn check_condition(text: &str, source: &str, after_success: bool, after_failure: bool) {
    let expr =
        parse_condition(text, &options()).unwrap_or_else(|error| panic!("{text:?}: {error}"));
    assert_eq!(expr.source(), source, "condition for {text:?}");
    for (status, expected) in [
        (JobStatus::Success, after_success),
        (JobStatus::Failure, after_failure),
    ] {
        let value = expr.evaluate(&contexts(), &Status(status)).unwrap();
        assert_eq!(value.is_truthy(), expected, "{text:?} with job {status:?}");
    }
}

#[test]
fn conditions_get_an_implicit_success() {
    check_condition("", "success()", true, false);
    check_condition("   ", "success()", true, false);
    check_condition(
        "github.ref == 'main'",
        "success() && (github.ref == 'main')",
        true,
        false,
    );
    check_condition(
        "${{ github.ref == 'main' }}",
        "success() && (github.ref == 'main')",
        true,
        false,
    );
    check_condition(
        "  ${{ github.ref == 'x' }}  ",
        "success() && (github.ref == 'x')",
        false,
        false,
    );
    check_condition("always()", "always()", true, true);
    check_condition(
        "${{ Always() && github.n > 1 }}",
        "Always() && github.n > 1",
        true,
        true,
    );
    check_condition("failure()", "failure()", false, true);
    check_condition("!cancelled()", "!cancelled()", true, true);
    check_condition(
        "contains(github.ref, 'always()')",
        "success() && (contains(github.ref, 'always()'))",
        false,
        false,
    );
    // Mixed text is a non-empty string, so such a condition is true whenever success() is.
    check_condition(
        "${{ github.ref == 'x' }} && {b}'",
        "success() && (format('{0} && {{b}}''', github.ref == 'x'))",
        true,
        false,
    );
}

#[test]
fn condition_errors_point_into_the_text() {
    let error = parse_condition("  github.ref ==", &options()).unwrap_err();
    assert_eq!(error.offset, 2);
    assert_eq!(error.error.kind, ErrorKind::Parsing);
    assert!(error.to_string().contains("Unexpected end of expression: '=='. Located at position 12 within expression: github.ref =="));
    let error = parse_condition(" ${{ }}", &options()).unwrap_err();
    assert_eq!(error.offset, 1);
    assert!(error.to_string().contains("An expression was expected"));
    let error = parse_condition("x ${{ nope }}", &options()).unwrap_err();
    assert_eq!(error.offset, 2);
    assert!(
        error
            .to_string()
            .contains("Unrecognized named-value: 'nope'")
    );
}
