//! Include and exclude entries as filters, matched against a row the way GitHub matches them.
//!
//! GitHub does not compare an entry with a row by deep equality. It turns every scalar leaf of
//! the entry into an expression `matrix[k1][k2]... == <leaf>` and the entry matches when all of
//! them are true. Consequences, reproduced on purpose:
//! - a mapping in an entry matches a row value that has at least those keys with those values
//!   (`{os: {name: linux}}` matches `{name: linux, arch: x64}`), and an array in an entry
//!   matches an array that starts with those items;
//! - leaves compare with the expression language's `==` (see [`super::equality`]): strings
//!   case-insensitively, mixed types as numbers, a missing key as `null`;
//! - keys are looked up case-insensitively, as everywhere in expressions;
//! - an entry whose values are all empty mappings or arrays has no leaves and matches every row.

use serde_json::Value;

use super::Combination;
use super::equality::{eq_ignore_case, expression_equals, parse_number};

/// One step of the path from the row to a leaf.
#[derive(Debug, Clone)]
enum Step {
    /// A mapping key: `[ 'name' ]`.
    Key(String),
    /// An array position: `[ 0 ]`.
    Index(usize),
}

/// An include or exclude entry (or, for include, the part of it naming vectors).
#[derive(Debug, Clone)]
pub(super) struct Filter {
    /// Each leaf's path from the row (the first step is always a row key) and its value.
    leaves: Vec<(Vec<Step>, Value)>,
}

impl Filter {
    /// The filter for the given `key: value` pairs of an entry.
    pub(super) fn new<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Self {
        let mut leaves = Vec::new();
        // An explicit stack rather than recursion: entry values can nest as deep as the input.
        let mut pending: Vec<(Vec<Step>, &Value)> = pairs
            .into_iter()
            .map(|(key, value)| (vec![Step::Key(key.clone())], value))
            .collect();
        while let Some((path, value)) = pending.pop() {
            match value {
                Value::Object(mapping) => {
                    for (key, child) in mapping {
                        pending.push((extend(&path, Step::Key(key.clone())), child));
                    }
                }
                Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        pending.push((extend(&path, Step::Index(index)), child));
                    }
                }
                scalar => leaves.push((path, scalar.clone())),
            }
        }
        Self { leaves }
    }

    /// Whether every leaf of the filter equals the value at its path in `row`.
    pub(super) fn matches(&self, row: &Combination) -> bool {
        self.leaves
            .iter()
            .all(|(path, leaf)| expression_equals(lookup(row, path), leaf))
    }
}

fn extend(path: &[Step], step: Step) -> Vec<Step> {
    let mut longer = Vec::with_capacity(path.len() + 1);
    longer.extend_from_slice(path);
    longer.push(step);
    longer
}

/// The value at `path` in `row`, indexing as the expression language does; `None` is `null`.
fn lookup<'a>(row: &'a Combination, path: &[Step]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut current = match first {
        Step::Key(key) => find_key(row.iter(), key)?,
        Step::Index(index) => find_key(row.iter(), &index.to_string())?,
    };
    for step in rest {
        current = match (current, step) {
            (Value::Object(mapping), Step::Key(key)) => find_key(mapping.iter(), key)?,
            (Value::Object(mapping), Step::Index(index)) => {
                find_key(mapping.iter(), &index.to_string())?
            }
            (Value::Array(items), Step::Index(index)) => items.get(*index)?,
            // A mapping key used on an array is read as a number, e.g. `['1']`.
            (Value::Array(items), Step::Key(key)) => items.get(array_index(key)?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn find_key<'a>(
    mut pairs: impl Iterator<Item = (&'a String, &'a Value)>,
    key: &str,
) -> Option<&'a Value> {
    pairs
        .find(|(candidate, _)| eq_ignore_case(candidate, key))
        .map(|(_, value)| value)
}

/// A string index into an array: its numeric value, floored, if that is a valid position.
fn array_index(key: &str) -> Option<usize> {
    let number = parse_number(key).floor();
    // The expression language indexes with a 32-bit signed integer.
    if number.is_nan() || number < 0.0 || number > f64::from(i32::MAX) {
        return None;
    }
    // In range and integral after the checks above, so the conversion is exact.
    Some(number as usize)
}
