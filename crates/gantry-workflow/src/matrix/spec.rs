//! `strategy.matrix` as JSON to a [`MatrixSpec`], with GitHub's shape checks.
//!
//! Anything that is or contains a `${{ }}` expression (a key, or any string inside a value)
//! cannot be expanded yet: GitHub validates the rest of the matrix when the workflow is loaded
//! and expands it only once the job is about to run and the expression has a value. So errors in
//! the literal parts win over deferral, and deferral is reported as [`MatrixError::Deferred`]
//! naming the first key holding an expression ([`MatrixError::DeferredMatrix`] when the whole
//! matrix is one).

use serde_json::{Map, Value};

use super::{Combination, FilterSection, MatrixError, MatrixSpec};

const INCLUDE: &str = "include";
const EXCLUDE: &str = "exclude";
const EXPRESSION_START: &str = "${{";

/// Splits a `strategy.matrix` value into vectors, `include` and `exclude`.
///
/// `include` and `exclude` are recognised case-sensitively, as GitHub does; every other key is
/// a vector and must be a non-empty list. Checks that need the whole matrix (exclude keys, empty
/// entries, at least one vector) are left to [`super::expand_configurations`], which runs them
/// on any [`MatrixSpec`], however it was built.
pub fn spec_from_json(matrix: &Value) -> Result<MatrixSpec, MatrixError> {
    let mapping = match matrix {
        Value::Object(mapping) => mapping,
        Value::String(text) if text.contains(EXPRESSION_START) => {
            return Err(MatrixError::DeferredMatrix);
        }
        _ => return Err(MatrixError::NotAMapping),
    };
    let mut spec = MatrixSpec::default();
    let mut first_deferred: Option<&String> = None;
    // Whether a deferred key will provide vectors or include entries once evaluated; a deferred
    // `exclude` alone does not, so "no vectors" can still be reported now.
    let mut deferred_provides_vectors = false;
    for (key, value) in mapping {
        if key.contains(EXPRESSION_START) || contains_expression(value) {
            first_deferred.get_or_insert(key);
            deferred_provides_vectors |= key != EXCLUDE;
            continue;
        }
        match key.as_str() {
            INCLUDE => spec.include = filter_entries(FilterSection::Include, value)?,
            EXCLUDE => spec.exclude = filter_entries(FilterSection::Exclude, value)?,
            _ => {
                let Value::Array(values) = value else {
                    return Err(MatrixError::VectorNotAList { key: key.clone() });
                };
                check_vector(key, values)?;
                spec.dimensions.insert(key.clone(), values.clone());
            }
        }
    }
    match first_deferred {
        None => Ok(spec),
        Some(_) if !deferred_provides_vectors && has_no_vectors(&spec) => {
            Err(MatrixError::NoVectors)
        }
        Some(key) => Err(MatrixError::Deferred { key: key.clone() }),
    }
}

/// GitHub rejects an empty vector, even when other vectors would make the product non-empty.
pub(super) fn check_vector(key: &str, values: &[Value]) -> Result<(), MatrixError> {
    if values.is_empty() {
        return Err(MatrixError::EmptyVector {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// A matrix needs a vector or an include entry to produce anything.
pub(super) fn has_no_vectors(spec: &MatrixSpec) -> bool {
    spec.dimensions.is_empty() && spec.include.is_empty()
}

fn filter_entries(section: FilterSection, value: &Value) -> Result<Vec<Combination>, MatrixError> {
    let Value::Array(entries) = value else {
        return Err(MatrixError::FilterListNotAList { section });
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| match entry {
            Value::Object(mapping) => Ok(combination(mapping)),
            _ => Err(MatrixError::FilterEntryNotAMapping { section, index }),
        })
        .collect()
}

fn combination(mapping: &Map<String, Value>) -> Combination {
    mapping
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Whether any key or string inside `value` starts an expression. Iterative: values can nest
/// as deep as the input does.
fn contains_expression(value: &Value) -> bool {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) if text.contains(EXPRESSION_START) => return true,
            Value::Array(items) => pending.extend(items),
            Value::Object(mapping) => {
                if mapping.keys().any(|key| key.contains(EXPRESSION_START)) {
                    return true;
                }
                pending.extend(mapping.values());
            }
            _ => {}
        }
    }
    false
}
