//! The one error type of the crate, with GitHub's message texts.
//!
//! Messages are the ones GitHub prints, so that users can search for them and compare runs:
//! `<message>. Located at position N within expression: <expression>`, where N is 1-based and
//! counts UTF-16 code units like GitHub's engines do.

use std::fmt;

/// Which stage rejected the expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text could not be split into tokens (a bad symbol, an unterminated string, too long).
    Lexing,
    /// The tokens do not form an expression, or name an unknown context or function, or pass the
    /// wrong number of arguments, or nest too deeply.
    Parsing,
    /// The expression is valid but failed while running (a bad `format` string, bad JSON, ...).
    Evaluation,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ErrorKind::Lexing => "lexing",
            ErrorKind::Parsing => "parsing",
            ErrorKind::Evaluation => "evaluation",
        })
    }
}

/// An expression that could not be lexed, parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}. Located {}within expression: {expression}", location(*.position))]
pub struct ExprError {
    /// The stage that failed.
    pub kind: ErrorKind,
    /// GitHub's message, e.g. `Unexpected symbol: '='`.
    pub message: String,
    /// 1-based position of the offending token in UTF-16 code units, as GitHub reports it; 0 when
    /// the error concerns the whole expression (such as its length).
    pub position: usize,
    /// The expression text the position refers to.
    pub expression: String,
}

fn location(position: usize) -> String {
    if position == 0 {
        String::new()
    } else {
        format!("at position {position} ")
    }
}

impl ExprError {
    pub(crate) fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        position: usize,
        expression: &str,
    ) -> ExprError {
        ExprError {
            kind,
            message: message.into(),
            position,
            expression: expression.to_owned(),
        }
    }
}

/// GitHub's parse-error descriptions, each followed by `: '<token>'` in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseErrorKind {
    UnexpectedSymbol,
    UnexpectedEndOfExpression,
    UnrecognizedNamedValue,
    UnrecognizedFunction,
    TooFewParameters,
    TooManyParameters,
    EvenParameters,
    ExceededMaxDepth(usize),
}

impl ParseErrorKind {
    pub(crate) fn describe(self, token_text: &str) -> String {
        let description = match self {
            ParseErrorKind::UnexpectedSymbol => "Unexpected symbol".to_owned(),
            ParseErrorKind::UnexpectedEndOfExpression => "Unexpected end of expression".to_owned(),
            ParseErrorKind::UnrecognizedNamedValue => "Unrecognized named-value".to_owned(),
            ParseErrorKind::UnrecognizedFunction => "Unrecognized function".to_owned(),
            ParseErrorKind::TooFewParameters => "Too few parameters supplied".to_owned(),
            ParseErrorKind::TooManyParameters => "Too many parameters supplied".to_owned(),
            ParseErrorKind::EvenParameters => {
                "Even number of parameters supplied, requires an odd number of parameters"
                    .to_owned()
            }
            ParseErrorKind::ExceededMaxDepth(depth) => {
                format!("Exceeded max expression depth {depth}")
            }
        };
        format!("{description}: '{token_text}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_in_github_format() {
        let error = ExprError::new(ErrorKind::Parsing, "Unexpected symbol: '2'", 3, "1 2");
        assert_eq!(
            error.to_string(),
            "Unexpected symbol: '2'. Located at position 3 within expression: 1 2"
        );
        let error = ExprError::new(
            ErrorKind::Lexing,
            "Exceeded max expression length 5",
            0,
            "123456",
        );
        assert_eq!(
            error.to_string(),
            "Exceeded max expression length 5. Located within expression: 123456"
        );
        assert_eq!(ErrorKind::Evaluation.to_string(), "evaluation");
    }
}
