//! The GitHub Actions expression language (`${{ }}`): lexing, parsing and evaluation.
//!
//! This crate does no IO. Functions that need the outside world (`hashFiles`, the status
//! functions) ask the caller through the [`Host`] trait.
//!
//! The semantics are GitHub's, including the odd corners, because workflows depend on them:
//! loose `==` with case-insensitive strings, `&&`/`||` returning operands, `*` filters,
//! JavaScript number parsing and printing, GitHub's error texts and positions, and its limits
//! (21,000 characters, depth 50, 1 MiB of evaluation memory).
//!
//! ```
//! use gantry_expr::{Contexts, NoHost, ParseOptions, Value, parse};
//!
//! let expr = parse("github.ref == 'refs/heads/main' && 'prod' || 'dev'", &ParseOptions::new(["github"]))?;
//! let mut contexts = Contexts::new();
//! contexts.insert("github".into(), Value::from(serde_json::json!({"ref": "refs/heads/main"})));
//! assert_eq!(expr.evaluate(&contexts, &NoHost)?, Value::from("prod"));
//! # Ok::<(), gantry_expr::ExprError>(())
//! ```

#![forbid(unsafe_code)]

mod ast;
mod error;
mod eval;
mod expr;
mod functions;
mod host;
mod lexer;
mod number;
mod parser;
pub mod template;
mod text;
mod value;

pub use error::{ErrorKind, ExprError};
pub use eval::{DEFAULT_MAX_MEMORY, EvaluateOptions};
pub use expr::{Expr, parse};
pub use host::{Host, JobStatus, NoHost};
pub use parser::{MAX_DEPTH, MAX_LENGTH, ParseOptions};
pub use template::{Template, TemplateError, TemplatePart, parse_condition, parse_template};
pub use value::Value;

/// The top-level named values (`github`, `env`, `matrix`, ...) an expression reads, matched
/// case-insensitively.
pub type Contexts = indexmap::IndexMap<String, Value>;
