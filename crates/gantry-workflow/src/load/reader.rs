//! Small typed readers over [`Node`]s that record a diagnostic instead of failing.
//!
//! The loader keeps going after a problem so one pass reports every error in a file; each reader
//! returns `None` when the value is unusable and has already said why.

use crate::diag::Diagnostics;
use crate::model::{OrExpr, Spanned, Text};
use crate::yaml::{Node, NodeValue, Pos};

/// Collects diagnostics while reading nodes.
#[derive(Debug, Default)]
pub struct Reader {
    /// Problems found so far.
    pub diagnostics: Diagnostics,
}

/// True when a string holds a `${{` expression opener.
pub fn has_expression(text: &str) -> bool {
    text.contains("${{")
}

impl Reader {
    /// Records a problem at `pos`.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(pos, message);
    }

    /// The entries of a mapping, or a diagnostic naming what was expected.
    pub fn map<'a, 'n>(
        &mut self,
        node: &'a Node<'n>,
        what: &str,
    ) -> Option<&'a [(Node<'n>, Node<'n>)]> {
        match &node.value {
            NodeValue::Map(entries) => Some(entries),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// The entries of a mapping, treating `null` (an empty key) as an empty mapping.
    pub fn map_or_null<'a, 'n>(
        &mut self,
        node: &'a Node<'n>,
        what: &str,
    ) -> Option<&'a [(Node<'n>, Node<'n>)]> {
        match &node.value {
            NodeValue::Null => Some(&[]),
            _ => self.map(node, what),
        }
    }

    /// The key of a mapping entry as a string (keys are always read as text).
    pub fn key(&mut self, key: &Node) -> Option<Spanned<String>> {
        match key.scalar_text() {
            Some(text) => Some(Spanned::new(text, key.pos)),
            None => {
                self.error(
                    key.pos,
                    format!("mapping keys must be strings, found {}", key.type_name()),
                );
                None
            }
        }
    }

    /// Reports keys that differ only in case. GitHub looks these names up case-insensitively
    /// (`inputs.foo` is `inputs.FOO`, environment variables on Windows), so such a pair is a
    /// collision. Exact duplicates are already reported by the YAML layer.
    pub fn check_keys_unique_ignoring_case<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k Spanned<String>>,
        section: &str,
    ) {
        let mut seen: Vec<&Spanned<String>> = Vec::new();
        for key in keys {
            if let Some(first) = seen
                .iter()
                .find(|seen| seen.value != key.value && seen.value.eq_ignore_ascii_case(&key.value))
            {
                self.error(
                    key.pos,
                    format!(
                        "key \"{}\" in {section} is the same as \"{}\" at {} (these keys are case-insensitive)",
                        key.value, first.value, first.pos
                    ),
                );
            } else {
                seen.push(key);
            }
        }
    }

    /// Records an unknown key with the list of keys allowed there.
    pub fn unknown_key(&mut self, key: &Spanned<String>, place: &str, allowed: &[&str]) {
        self.error(
            key.pos,
            format!(
                "unexpected key \"{}\" in {place}; expected one of: {}",
                key.value,
                allowed.join(", ")
            ),
        );
    }

    /// A string; numbers and booleans are coerced to text as GitHub does.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<Text> {
        match node.scalar_text() {
            Some(text) => Some(Spanned::new(text, node.pos)),
            None => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A string that must not be empty.
    pub fn non_empty_string(&mut self, node: &Node, what: &str) -> Option<Text> {
        let text = self.string(node, what)?;
        if text.value.trim().is_empty() {
            self.error(node.pos, format!("{what} must not be empty"));
            return None;
        }
        Some(text)
    }

    /// A literal string: `${{ }}` is not allowed here.
    pub fn literal_string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        let text = self.string(node, what)?;
        if has_expression(&text.value) {
            self.error(node.pos, format!("{what} cannot contain expressions"));
            return None;
        }
        Some(text)
    }

    /// One string or a sequence of strings, as `needs:`, `branches:` or `types:` accept.
    pub fn string_or_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.value {
            NodeValue::Seq(items) => items
                .iter()
                .filter_map(|item| self.string(item, what))
                .collect(),
            NodeValue::Null => Vec::new(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    /// Like [`Reader::string_or_list`], but an empty list (or empty value) is an error: an empty
    /// `branches:` or `needs:` is almost always a mistake, and GitHub's linters reject it.
    pub fn non_empty_string_or_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        let empty = match &node.value {
            NodeValue::Seq(items) => items.is_empty(),
            NodeValue::Null => true,
            _ => false,
        };
        if empty {
            self.error(node.pos, format!("{what} must not be empty"));
            return Vec::new();
        }
        self.string_or_list(node, what)
    }

    /// A sequence of strings (a single string is not accepted).
    pub fn string_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.value {
            NodeValue::Seq(items) => items
                .iter()
                .filter_map(|item| self.string(item, what))
                .collect(),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a sequence, found {}", node.type_name()),
                );
                Vec::new()
            }
        }
    }

    /// A boolean literal.
    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(value) => Some(value),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a boolean, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A boolean or a `${{ }}` expression that yields one later.
    pub fn bool_or_expr(&mut self, node: &Node, what: &str) -> Option<OrExpr<bool>> {
        self.literal_or_expr(node, what, "a boolean", |value| match value {
            NodeValue::Bool(value) => Some(*value),
            _ => None,
        })
    }

    /// A number or a `${{ }}` expression that yields one later.
    pub fn number_or_expr(&mut self, node: &Node, what: &str) -> Option<OrExpr<f64>> {
        self.literal_or_expr(node, what, "a number", |value| match value {
            NodeValue::Number(value) => Some(*value),
            _ => None,
        })
    }

    /// A literal that `literal` extracts, or a string holding an expression.
    fn literal_or_expr<T>(
        &mut self,
        node: &Node,
        what: &str,
        expected: &str,
        literal: impl Fn(&NodeValue<'_>) -> Option<T>,
    ) -> Option<OrExpr<T>> {
        if let Some(value) = literal(&node.value) {
            return Some(OrExpr::Literal(Spanned::new(value, node.pos)));
        }
        match &node.value {
            NodeValue::String(text) if has_expression(text) => {
                Some(OrExpr::Expr(Spanned::new(text.to_string(), node.pos)))
            }
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "{what} must be {expected} or an expression, found {}",
                        describe(node)
                    ),
                );
                None
            }
        }
    }

    /// A mapping of names to strings (`env:`, `outputs:`, step `with:`).
    pub fn string_map(&mut self, node: &Node, what: &str) -> Vec<(Spanned<String>, Text)> {
        let mut pairs = Vec::new();
        // `env: ${{ fromJSON(...) }}` is legal on GitHub; it is evaluated later and has no keys now.
        if let NodeValue::String(text) = &node.value
            && has_expression(text)
        {
            return pairs;
        }
        let Some(entries) = self.map_or_null(node, what) else {
            return pairs;
        };
        for (key, value) in entries {
            let Some(key) = self.key(key) else { continue };
            let text = match &value.value {
                // An empty value is an empty string, as GitHub reads `KEY:` with nothing after it.
                NodeValue::Null => Some(Spanned::new(String::new(), value.pos)),
                _ => self.string(value, &format!("value of \"{}\"", key.value)),
            };
            if let Some(text) = text {
                pairs.push((key, text));
            }
        }
        self.check_keys_unique_ignoring_case(pairs.iter().map(|(key, _)| key), what);
        pairs
    }
}

/// Describes a node for error messages, quoting short strings.
fn describe(node: &Node) -> String {
    match &node.value {
        NodeValue::String(text) if text.len() <= 40 => format!("\"{text}\""),
        _ => node.type_name().to_string(),
    }
}
