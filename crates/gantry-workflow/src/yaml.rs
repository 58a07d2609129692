//! A YAML document as a tree of nodes that each remember where they came from.
//!
//! Workflow keys take many shapes (`on:` may be a string, a list or a map; `runs-on:` a string, a
//! list or a `group`/`labels` map), so the loader first reads the file into this untyped tree and
//! then converts it by hand in [`crate::load`]. That keeps every error tied to the exact
//! `line:col` of the offending value, which serde's derived errors cannot do for such unions.
//!
//! The tree is built straight from the event stream of `granit-parser`, the YAML parser inside
//! `serde-saphyr` (used through its re-export). Going through serde's data model cost 2.5× the
//! parse itself (see `docs/benchmarks.md`), and the tree needs only what the events carry:
//! scalars resolved with the YAML 1.2 core schema (so `on` stays a key, not `true`), positions,
//! duplicate keys refused, merge keys (`<<`) refused as GitHub does, and limits on nesting depth
//! and on nodes (aliases expanded) that stop alias bombs before they cost memory.

use std::borrow::Cow;
use std::fmt;

mod build;
mod scalar;

/// A 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line number, starting at 1 (0 when unknown).
    pub line: u32,
    /// Column number, starting at 1 (0 when unknown).
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML value with its position. Strings borrow from the source text where they can
/// (`'a`): most scalars are keys that are only compared, and copying each of them was a large
/// share of loading time. The model keeps owned trees, `Node<'static>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Where the value starts in the file.
    pub pos: Pos,
    /// The value itself.
    pub value: NodeValue<'a>,
}

/// The shapes a YAML value can take after scalar resolution (YAML 1.2 core schema).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue<'a> {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only).
    Bool(bool),
    /// An integer or float.
    Number(f64),
    /// A string scalar.
    String(Cow<'a, str>),
    /// A sequence.
    Seq(Vec<Node<'a>>),
    /// A mapping in source order. Keys are nodes too so errors can point at them.
    Map(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    /// A copy that owns all its text, to keep after the source is gone.
    pub fn to_owned_node(&self) -> Node<'static> {
        let value = match &self.value {
            NodeValue::Null => NodeValue::Null,
            NodeValue::Bool(b) => NodeValue::Bool(*b),
            NodeValue::Number(n) => NodeValue::Number(*n),
            NodeValue::String(s) => NodeValue::String(Cow::Owned(s.to_string())),
            NodeValue::Seq(items) => {
                NodeValue::Seq(items.iter().map(Node::to_owned_node).collect())
            }
            NodeValue::Map(entries) => NodeValue::Map(
                entries
                    .iter()
                    .map(|(key, value)| (key.to_owned_node(), value.to_owned_node()))
                    .collect(),
            ),
        };
        Node {
            pos: self.pos,
            value,
        }
    }

    /// A short name of the value's YAML type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a sequence",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// The string value, when this node is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar as text, the way GitHub coerces scalars where a string is expected
    /// (`3.10` becomes `3.1`, `true` becomes `true`). `None` for null and collections.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            NodeValue::String(s) => Some(s.to_string()),
            NodeValue::Bool(b) => Some(b.to_string()),
            NodeValue::Number(n) => Some(number_text(*n)),
            NodeValue::Null | NodeValue::Seq(_) | NodeValue::Map(_) => None,
        }
    }

    /// Converts the subtree to JSON (positions are dropped).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            NodeValue::Null => serde_json::Value::Null,
            NodeValue::Bool(b) => serde_json::Value::Bool(*b),
            NodeValue::Number(n) => number_json(*n),
            NodeValue::String(s) => serde_json::Value::String(s.to_string()),
            NodeValue::Seq(items) => items.iter().map(Node::to_json).collect(),
            NodeValue::Map(entries) => {
                let mut object = serde_json::Map::new();
                for (key, value) in entries {
                    let key = key.scalar_text().unwrap_or_default();
                    object.insert(key, value.to_json());
                }
                serde_json::Value::Object(object)
            }
        }
    }
}

/// Formats a YAML number as GitHub shows it: integers without a fraction, others shortest.
pub fn number_text(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn number_json(n: f64) -> serde_json::Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Limits that keep a hostile file from exhausting memory or time.
#[derive(Debug, Clone)]
pub struct YamlLimits {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: usize,
    /// Deepest accepted nesting of collections.
    pub max_depth: usize,
    /// Most nodes in one file, aliases expanded.
    pub max_nodes: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            max_file_bytes: 1024 * 1024,
            max_depth: 50,
            max_nodes: 500_000,
        }
    }
}

/// A YAML error with its position, when the parser knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where the problem is, or `Pos::default()` when unknown.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

impl YamlError {
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        YamlError {
            pos,
            message: message.into(),
        }
    }
}

/// Parses one YAML document into a [`Node`] tree.
pub fn parse<'a>(source: &'a str, limits: &YamlLimits) -> Result<Node<'a>, Vec<YamlError>> {
    if source.len() > limits.max_file_bytes {
        return Err(vec![YamlError::new(
            Pos { line: 1, col: 1 },
            format!(
                "file is {} bytes, larger than the limit of {} bytes",
                source.len(),
                limits.max_file_bytes
            ),
        )]);
    }
    build::build(source, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_default(source: &str) -> Result<Node<'_>, YamlError> {
        parse(source, &YamlLimits::default()).map_err(|mut errors| errors.remove(0))
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = parse_default("on: push\njobs:\n  build:\n    runs-on: [a, b]\n").unwrap();
        let NodeValue::Map(entries) = &node.value else {
            panic!("expected a map, got {node:?}")
        };
        assert_eq!(
            entries[0].0.as_str(),
            Some("on"),
            "`on` must stay a string key"
        );
        assert_eq!(entries[0].1.pos, Pos { line: 1, col: 5 });
        let NodeValue::Map(jobs) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(jobs[0].0.pos, Pos { line: 3, col: 3 });
        let NodeValue::Map(build) = &jobs[0].1.value else {
            panic!()
        };
        let NodeValue::Seq(labels) = &build[0].1.value else {
            panic!()
        };
        assert_eq!(labels[1].pos, Pos { line: 4, col: 18 });
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let node = parse_default("a: yes\nb: on\nc: true\n").unwrap();
        let json = node.to_json();
        assert_eq!(json, serde_json::json!({"a": "yes", "b": "on", "c": true}));
    }

    #[test]
    fn duplicate_keys_are_errors_with_position() {
        let error = parse_default("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.pos.line, 3, "{error:?}");
        assert!(
            error.message.to_lowercase().contains("duplicate"),
            "{error:?}"
        );
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let limits = YamlLimits {
            max_file_bytes: 10,
            ..YamlLimits::default()
        };
        let error = parse("a: 0123456789\n", &limits).unwrap_err().remove(0);
        assert!(error.message.contains("larger than the limit"), "{error:?}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut source = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let prev = level - 1;
            source.push_str(&format!(
                "a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(parse_default(&source).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let source = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_default(&source).is_err());
        let mut block = String::new();
        for depth in 0..100 {
            block.push_str(&" ".repeat(depth * 2));
            block.push_str(&format!("k{depth}:\n"));
        }
        assert!(parse_default(&block).is_err());
    }

    #[test]
    fn numbers_render_like_github() {
        let node = parse_default("a: 3.10\nb: 14\nc: 1e3\n").unwrap();
        let NodeValue::Map(entries) = &node.value else {
            panic!()
        };
        let texts: Vec<_> = entries
            .iter()
            .map(|(_, v)| v.scalar_text().unwrap())
            .collect();
        assert_eq!(texts, ["3.1", "14", "1000"]);
    }
}
