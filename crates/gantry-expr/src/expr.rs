//! A parsed expression: what it refers to, and how to evaluate it.

use crate::Contexts;
use crate::ast::Node;
use crate::error::ExprError;
use crate::eval::{EvaluateOptions, evaluate};
use crate::host::Host;
use crate::parser::{ParseOptions, parse_tree};
use crate::value::Value;

/// A parsed `${{ }}` expression (the text between the braces).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    /// `None` for an expression without tokens, which evaluates to null.
    root: Option<Node>,
}

/// Parses one expression, checking its syntax, the named values and functions it uses, the
/// functions' argument counts, and GitHub's length and depth limits.
pub fn parse(source: &str, options: &ParseOptions) -> Result<Expr, ExprError> {
    let root = parse_tree(source, options)?;
    Ok(Expr {
        source: source.to_owned(),
        root,
    })
}

/// Parses like [`parse`] and also returns the deepest nesting reached.
pub(crate) fn parse_measured(
    source: &str,
    options: &ParseOptions,
) -> Result<(Expr, usize), ExprError> {
    let (root, deepest) = crate::parser::parse_tree_measured(source, options)?;
    Ok((
        Expr {
            source: source.to_owned(),
            root,
        },
        deepest,
    ))
}

impl Expr {
    /// An expression from an already built tree and the text it stands for.
    pub(crate) fn from_parts(source: String, root: Option<Node>) -> Expr {
        Expr { source, root }
    }

    /// Takes the tree out of the expression.
    pub(crate) fn into_root(self) -> Option<Node> {
        self.root
    }

    pub(crate) fn root(&self) -> Option<&Node> {
        self.root.as_ref()
    }

    /// The expression text as parsed.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `success()`, `failure()`, `always()` or `cancelled()` appears anywhere, which
    /// decides whether an `if:` condition gets an implicit `success() &&`.
    pub fn uses_status_function(&self) -> bool {
        let mut found = false;
        if let Some(root) = &self.root {
            root.for_each(&mut |node| {
                if let Node::Call { function, .. } = node {
                    found |= function.is_status();
                }
            });
        }
        found
    }

    /// The top-level named values the expression reads, lower-cased, each once, in order of
    /// first use.
    pub fn referenced_contexts(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(root) = &self.root {
            root.for_each(&mut |node| {
                if let Node::Context(name) = node {
                    let name = name.to_lowercase();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            });
        }
        names
    }

    /// Evaluates the expression against `contexts` (matched case-insensitively; a context the
    /// parser allowed but that is missing here reads as null) with GitHub's default limits.
    pub fn evaluate(&self, contexts: &Contexts, host: &dyn Host) -> Result<Value, ExprError> {
        self.evaluate_with(contexts, host, &EvaluateOptions::default())
    }

    /// [`Expr::evaluate`] with explicit limits.
    pub fn evaluate_with(
        &self,
        contexts: &Contexts,
        host: &dyn Host,
        options: &EvaluateOptions,
    ) -> Result<Value, ExprError> {
        evaluate(self.root.as_ref(), &self.source, contexts, host, options)
    }
}
