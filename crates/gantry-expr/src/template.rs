//! Text with `${{ }}` parts, and `if:` conditions.
//!
//! A template is cut into literal text and expressions the way GitHub's template reader does:
//! an expression runs from `${{` to the first `}}` outside a single-quoted string, and its text
//! is trimmed before parsing. A template that is exactly one expression keeps the value's type;
//! any other template is the concatenation of its parts as strings (GitHub rewrites it into a
//! `format(...)` call, which gives the same result).
//!
//! An `if:` condition may be written with or without `${{ }}`. Unless it calls a status
//! function, GitHub runs it as `success() && (<condition>)`, so a step after a failure is
//! skipped; an empty condition is `success()`.

use crate::Contexts;
use crate::ast::{LogicalOp, Node};
use crate::error::{ErrorKind, ExprError};
use crate::expr::{Expr, parse, parse_measured};
use crate::functions::Function;
use crate::host::Host;
use crate::parser::ParseOptions;
use crate::value::Value;

const OPEN: &str = "${{";

/// A string with zero or more `${{ }}` parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The parts in order; adjacent literals never occur and literals are never empty.
    pub parts: Vec<TemplatePart>,
}

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// A `${{ }}` part.
    Expression(Expr),
}

/// A template whose `${{ }}` part could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct TemplateError {
    /// Byte offset in the template text where the bad expression starts (its `${{`).
    pub offset: usize,
    /// What is wrong with it; positions inside refer to the expression's own text.
    pub error: ExprError,
}

impl Template {
    /// Whether the template has no expression, so its value is known without evaluating.
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, TemplatePart::Literal(_)))
    }

    /// Evaluates the template: the value itself when the template is exactly one expression,
    /// otherwise a string made of the literal text and each expression's coerced string.
    pub fn evaluate(&self, contexts: &Contexts, host: &dyn Host) -> Result<Value, ExprError> {
        if let [TemplatePart::Expression(expr)] = self.parts.as_slice() {
            return expr.evaluate(contexts, host);
        }
        let mut text = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(literal) => text.push_str(literal),
                TemplatePart::Expression(expr) => {
                    text.push_str(&expr.evaluate(contexts, host)?.to_coerced_string());
                }
            }
        }
        Ok(Value::String(text))
    }
}

/// Cuts `text` into literal parts and parsed `${{ }}` expressions.
pub fn parse_template(text: &str, options: &ParseOptions) -> Result<Template, TemplateError> {
    parse_template_measured(text, options).map(|(template, _)| template)
}

/// [`parse_template`], also returning the deepest nesting any of its expressions reached.
fn parse_template_measured(
    text: &str,
    options: &ParseOptions,
) -> Result<(Template, usize), TemplateError> {
    let mut parts = Vec::new();
    let mut deepest = 0;
    for piece in split(text) {
        match piece? {
            Piece::Literal(literal) => parts.push(TemplatePart::Literal(literal.to_owned())),
            Piece::Expression { offset, source } => {
                let (expr, depth) = parse_measured(source, options)
                    .map_err(|error| TemplateError { offset, error })?;
                deepest = deepest.max(depth);
                parts.push(TemplatePart::Expression(expr));
            }
        }
    }
    Ok((Template { parts }, deepest))
}

/// The text GitHub puts before a condition without status functions (and `)` after it).
const IMPLICIT_PREFIX: &str = "success() && (";

/// How much deeper the wrapped condition nests than the condition alone, at most; a tree whose
/// depth leaves this much room is wrapped directly, one closer to the limit is re-parsed so
/// the depth error is exactly GitHub's. A test checks the margin on real expressions.
const WRAP_MARGIN: usize = 3;

/// The functions every `if:` condition may call.
const STATUS_FUNCTIONS: [&str; 4] = ["success", "failure", "always", "cancelled"];

/// Parses an `if:` condition, adding GitHub's implicit `success() && (...)` when the condition
/// calls none of `success()`, `failure()`, `always()` and `cancelled()`. The status functions
/// are always allowed here, whatever `options` says.
pub fn parse_condition(text: &str, options: &ParseOptions) -> Result<Expr, TemplateError> {
    // Clone the options only when the caller has not already allowed the status functions.
    let options = if STATUS_FUNCTIONS.iter().all(|name| {
        options
            .extra_functions
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
    }) {
        std::borrow::Cow::Borrowed(options)
    } else {
        std::borrow::Cow::Owned(options.clone().with_functions(STATUS_FUNCTIONS))
    };
    let options = options.as_ref();
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    if trimmed.is_empty() {
        return reparse("success()", options, lead);
    }
    let (condition, deepest) = if trimmed.contains(OPEN) {
        template_condition(trimmed, options).map_err(|error| TemplateError {
            offset: error.offset + lead,
            ..error
        })?
    } else {
        parse_measured(trimmed, options).map_err(|error| TemplateError {
            offset: lead,
            error,
        })?
    };
    if condition.root().is_none() {
        return reparse("success()", options, lead);
    }
    if condition.uses_status_function() {
        return Ok(condition);
    }
    let wrapped = format!("{IMPLICIT_PREFIX}{})", condition.source());
    if deepest + WRAP_MARGIN > options.max_depth.min(crate::parser::HARD_MAX_DEPTH) {
        // Near the limit: let the parser decide, so the depth error is GitHub's exactly.
        return reparse(&wrapped, options, lead);
    }
    // The tree of the wrapped text is `success() && (condition)`, with the condition's
    // positions moved past the prefix; building it saves parsing the condition twice.
    let Some(mut inner) = condition.into_root() else {
        return reparse("success()", options, lead);
    };
    inner.shift_positions(IMPLICIT_PREFIX.len());
    let success = Node::Call {
        function: Function::Success,
        position: 1,
        args: Vec::new(),
    };
    let root = Node::Logical {
        op: LogicalOp::And,
        args: vec![success, inner],
    };
    Ok(Expr::from_parts(wrapped, Some(root)))
}

/// The condition written with `${{ }}`: the expression itself when the text is exactly one,
/// otherwise the `format(...)` call GitHub rewrites mixed text into (which is always a
/// non-empty string, so such a condition is true whenever `success()` is).
fn template_condition(text: &str, options: &ParseOptions) -> Result<(Expr, usize), TemplateError> {
    let (template, deepest) = parse_template_measured(text, options)?;
    if let [TemplatePart::Expression(expr)] = template.parts.as_slice() {
        return Ok((expr.clone(), deepest));
    }
    let mut format_string = String::new();
    let mut arguments = String::new();
    let mut count = 0;
    for part in &template.parts {
        match part {
            TemplatePart::Literal(literal) => {
                for c in literal.chars() {
                    match c {
                        '\'' => format_string.push_str("''"),
                        '{' => format_string.push_str("{{"),
                        '}' => format_string.push_str("}}"),
                        c => format_string.push(c),
                    }
                }
            }
            TemplatePart::Expression(expr) => {
                format_string.push_str(&format!("{{{count}}}"));
                count += 1;
                arguments.push_str(", ");
                arguments.push_str(expr.source());
            }
        }
    }
    let source = format!("format('{format_string}'{arguments})");
    parse_measured(&source, options).map_err(|error| TemplateError { offset: 0, error })
}

fn reparse(source: &str, options: &ParseOptions, offset: usize) -> Result<Expr, TemplateError> {
    parse(source, options).map_err(|error| TemplateError { offset, error })
}

enum Piece<'t> {
    Literal(&'t str),
    Expression { offset: usize, source: &'t str },
}

/// Splits a template into pieces, or fails at the first `${{` without a closing `}}` or with
/// nothing inside.
fn split(text: &str) -> Vec<Result<Piece<'_>, TemplateError>> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut cursor = 0;
    while cursor < text.len() {
        let Some(start) = text[cursor..].find(OPEN).map(|found| cursor + found) else {
            pieces.push(Ok(Piece::Literal(&text[cursor..])));
            break;
        };
        if start > cursor {
            pieces.push(Ok(Piece::Literal(&text[cursor..start])));
        }
        let mut in_string = false;
        let mut end = None;
        for index in start + OPEN.len()..text.len() {
            match bytes[index] {
                // A doubled quote toggles twice, so escaped quotes need no special case.
                b'\'' => in_string = !in_string,
                b'}' if !in_string && bytes[index - 1] == b'}' => {
                    end = Some(index);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            pieces.push(Err(template_error(
                start,
                text,
                "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found",
            )));
            break;
        };
        let source = text[start + OPEN.len()..end - 1].trim();
        if source.is_empty() {
            pieces.push(Err(template_error(
                start,
                text,
                "An expression was expected",
            )));
            break;
        }
        pieces.push(Ok(Piece::Expression {
            offset: start,
            source,
        }));
        cursor = end + 1;
    }
    pieces
}

fn template_error(offset: usize, text: &str, message: &str) -> TemplateError {
    TemplateError {
        offset,
        error: ExprError::new(ErrorKind::Parsing, message, 0, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real-world expressions from actionlint's benchmark corpus, or a few of our own when the
    /// corpus is not there.
    fn expressions() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpora/actionlint/testdata/bench/expressions.txt"
        );
        match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => vec![
                "github.ref == 'refs/heads/main'".to_owned(),
                "contains(fromJSON('[1, 2]'), matrix.x) && !startsWith(github.ref, 'v')".to_owned(),
                "format('{0}', hashFiles('**/x'))".to_owned(),
            ],
        }
    }

    fn options() -> ParseOptions {
        ParseOptions::new([
            "github", "env", "inputs", "job", "jobs", "matrix", "needs", "runner", "secrets",
            "steps", "strategy", "vars",
        ])
        .with_functions(["success", "failure", "always", "cancelled", "hashFiles"])
    }

    /// Wrapping the parsed tree must give exactly what parsing the wrapped text gives, and the
    /// wrapped text must nest at most `WRAP_MARGIN` deeper than the condition alone.
    #[test]
    fn wrapping_the_tree_equals_parsing_the_wrapped_text() {
        let options = options();
        let mut compared = 0;
        for expression in expressions() {
            // Text holding `${{` is a template condition, a different path.
            if expression.contains(OPEN) {
                continue;
            }
            let Ok((inner, inner_depth)) = parse_measured(&expression, &options) else {
                continue;
            };
            if inner.root().is_none() || inner.uses_status_function() {
                continue;
            }
            let wrapped_text = format!("{IMPLICIT_PREFIX}{expression})");
            let (expected, wrapped_depth) = parse_measured(&wrapped_text, &options).unwrap();
            assert!(
                wrapped_depth <= inner_depth + WRAP_MARGIN,
                "{expression}: depth {inner_depth} wraps to {wrapped_depth}"
            );
            let built = parse_condition(&expression, &options).unwrap();
            assert_eq!(built, expected, "{expression}");
            compared += 1;
        }
        assert!(compared >= 3, "compared only {compared} expressions");
    }
}
