//! A YAML document as a tree of nodes that each remember where they came from.
//!
//! Workflow keys take many shapes (`on:` may be a string, a list or a map; `runs-on:` a string, a
//! list or a `group`/`labels` map), so the loader first reads the file into this untyped tree and
//! then converts it by hand in [`crate::load`]. That keeps every error tied to the exact
//! `line:col` of the offending value, which serde's derived errors cannot do for such unions.
//!
//! Parsing uses `serde-saphyr` with YAML 1.2 booleans (`on` stays a key, not `true`), duplicate keys
//! rejected, and budgets that stop alias bombs and deep nesting before they cost memory.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::Budget;
use serde_saphyr::options::{
    AliasLimits, DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy,
};
use serde_saphyr::{Options, Spanned};

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

/// One YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts in the file.
    pub pos: Pos,
    /// The value itself.
    pub value: NodeValue,
}

/// The shapes a YAML value can take after scalar resolution (YAML 1.2 core schema).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only).
    Bool(bool),
    /// An integer or float.
    Number(f64),
    /// A string scalar.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in source order. Keys are nodes too so errors can point at them.
    Map(Vec<(Node, Node)>),
}

impl Node {
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
            NodeValue::String(s) => Some(s.clone()),
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
            NodeValue::String(s) => serde_json::Value::String(s.clone()),
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
    /// Most parser events (nodes, roughly) in one file, aliases expanded.
    pub max_events: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            max_file_bytes: 1024 * 1024,
            max_depth: 50,
            max_events: 500_000,
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

/// Parses one YAML document into a [`Node`] tree.
pub fn parse(source: &str, limits: &YamlLimits) -> Result<Node, YamlError> {
    if source.len() > limits.max_file_bytes {
        return Err(YamlError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "file is {} bytes, larger than the limit of {} bytes",
                source.len(),
                limits.max_file_bytes
            ),
        });
    }
    let mut options = Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    // GitHub Actions does not support YAML merge keys (`<<`); silently merging would run a
    // workflow differently from GitHub.
    options.merge_keys = MergeKeyPolicy::Error;
    // GitHub accepts `.inf` and overflowing literals (they become infinity), so do we.
    options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
    let mut budget = Budget::default();
    budget.max_events = limits.max_events;
    budget.max_depth = limits.max_depth;
    budget.flow_nesting_limit = limits.max_depth;
    options.budget = Some(budget);
    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = limits.max_events;
    options.alias_limits = alias_limits;
    let node: Option<Node> =
        serde_saphyr::from_str_with_options(source, options).map_err(|error| yaml_error(&error))?;
    // An empty file is a null document.
    Ok(node.unwrap_or(Node {
        pos: Pos { line: 1, col: 1 },
        value: NodeValue::Null,
    }))
}

fn yaml_error(error: &serde_saphyr::Error) -> YamlError {
    let pos = error
        .location()
        .map(|location| Pos {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            col: u32::try_from(location.column()).unwrap_or(u32::MAX),
        })
        .unwrap_or_default();
    // The rendered error repeats the location and may add a source snippet; keep the first line
    // and strip the trailing location phrase so our `line:col` prefix is the only one.
    let rendered = error.without_snippet().render();
    let first_line = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let message = match first_line.rfind(" at line ") {
        Some(index) => first_line[..index].to_string(),
        None => first_line.to_string(),
    };
    YamlError { pos, message }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        Ok(Node {
            pos: Pos {
                line: u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX),
                col: u32::try_from(spanned.referenced.column()).unwrap_or(u32::MAX),
            },
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v as f64))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v as f64))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeValue, E> {
        Ok(NodeValue::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_default(source: &str) -> Result<Node, YamlError> {
        parse(source, &YamlLimits::default())
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
        let error = parse("a: 0123456789\n", &limits).unwrap_err();
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
