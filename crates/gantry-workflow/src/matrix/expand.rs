//! The expansion itself: cross product, `exclude`, `include`, then unmatched include entries.

use serde_json::Value;

use super::equality::eq_ignore_case;
use super::filter::Filter;
use super::spec::{check_vector, has_no_vectors};
use super::{Combination, Configuration, MatrixError, MatrixSpec};

/// Beyond this many cross-product rows gantry does not scan for excludes (GitHub would run out
/// of its template memory first) and reports the product size as the configuration count.
const MAX_SCANNED_ROWS: usize = 1 << 20;

/// Expands `spec` into at most `limit` configurations, in GitHub's order: the surviving
/// cross-product rows (first vector varying slowest), then the include entries that matched
/// no row.
pub fn expand_configurations(
    spec: &MatrixSpec,
    limit: usize,
) -> Result<Vec<Configuration>, MatrixError> {
    check_vectors(spec)?;
    let includes = spec
        .include
        .iter()
        .enumerate()
        .map(|(index, entry)| Include::new(index, entry, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let excludes = spec
        .exclude
        .iter()
        .enumerate()
        .map(|(index, entry)| exclude_filter(index, entry, spec))
        .collect::<Result<Vec<_>, _>>()?;

    let vectors: Vec<(&String, &Vec<Value>)> = spec.dimensions.iter().collect();
    let rows = cross_product_size(&vectors);
    if rows.is_none_or(|rows| rows > limit.max(MAX_SCANNED_ROWS)) {
        return Err(MatrixError::TooManyConfigurations {
            count: rows.unwrap_or(usize::MAX),
            limit,
        });
    }

    let mut matched = vec![false; includes.len()];
    let mut configurations = Vec::new();
    // Counted separately: once past the limit, rows are still counted for the error message
    // but no longer kept.
    let mut count = 0usize;
    for row in CrossProduct::new(&vectors) {
        if excludes.iter().any(|exclude| exclude.matches(&row)) {
            continue;
        }
        let extra = include_extra(&includes, &row, &mut matched);
        count += 1;
        if count <= limit {
            configurations.push(configuration(row, extra));
        }
    }
    for (include, _) in includes.iter().zip(&matched).filter(|(_, m)| !**m) {
        count += 1;
        if count <= limit {
            configurations.push(include.standalone());
        }
    }
    if count > limit {
        return Err(MatrixError::TooManyConfigurations { count, limit });
    }
    Ok(configurations)
}

/// The checks GitHub makes on the vectors before expanding.
fn check_vectors(spec: &MatrixSpec) -> Result<(), MatrixError> {
    for (position, (key, values)) in spec.dimensions.iter().enumerate() {
        check_vector(key, values)?;
        // Matrix keys are case-insensitive on GitHub, so `os` and `OS` collide.
        if spec
            .dimensions
            .keys()
            .take(position)
            .any(|k| eq_ignore_case(k, key))
        {
            return Err(MatrixError::DuplicateVector { key: key.clone() });
        }
    }
    if has_no_vectors(spec) {
        return Err(MatrixError::NoVectors);
    }
    Ok(())
}

fn is_vector(spec: &MatrixSpec, key: &str) -> bool {
    spec.dimensions
        .keys()
        .any(|vector| eq_ignore_case(vector, key))
}

fn exclude_filter(
    index: usize,
    entry: &Combination,
    spec: &MatrixSpec,
) -> Result<Filter, MatrixError> {
    if entry.is_empty() {
        return Err(MatrixError::EmptyExclude { index });
    }
    // Excludes apply before includes, so only vectors can be excluded.
    if let Some(key) = entry.keys().find(|key| !is_vector(spec, key)) {
        return Err(MatrixError::UnknownExcludeKey { key: key.clone() });
    }
    Ok(Filter::new(entry))
}

/// An include entry split as GitHub splits it: the pairs naming vectors select rows, the other
/// pairs are added to the rows selected.
struct Include {
    /// The entry's pairs whose keys are vectors, in entry order.
    selector: Combination,
    filter: Filter,
    /// The entry's other pairs, in entry order.
    extra: Combination,
}

impl Include {
    fn new(index: usize, entry: &Combination, spec: &MatrixSpec) -> Result<Self, MatrixError> {
        if entry.is_empty() {
            return Err(MatrixError::EmptyInclude { index });
        }
        let (selector, extra): (Combination, Combination) = entry
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .partition(|(key, _)| is_vector(spec, key));
        let filter = Filter::new(&selector);
        Ok(Self {
            selector,
            filter,
            extra,
        })
    }

    /// The configuration of an entry that matched no row: the vector pairs, then the others,
    /// all of them named.
    fn standalone(&self) -> Configuration {
        let mut matrix = self.selector.clone();
        matrix.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Configuration {
            named_entries: matrix.len(),
            matrix,
        }
    }
}

/// The values the include entries add to `row`, later entries overwriting earlier ones, and
/// which entries matched.
fn include_extra(includes: &[Include], row: &Combination, matched: &mut [bool]) -> Combination {
    let mut extra = Combination::new();
    for (include, matched) in includes.iter().zip(matched.iter_mut()) {
        if !include.filter.matches(row) {
            continue;
        }
        *matched = true;
        for (key, value) in &include.extra {
            insert_ignoring_case(&mut extra, key, value.clone());
        }
    }
    extra
}

/// Sets `key` in `combination`, replacing the value of a key equal to it but for case and
/// keeping that key's spelling and place, as GitHub's case-insensitive dictionaries do.
fn insert_ignoring_case(combination: &mut Combination, key: &str, value: Value) {
    match combination.iter_mut().find(|(k, _)| eq_ignore_case(k, key)) {
        Some((_, existing)) => *existing = value,
        None => {
            combination.insert(key.to_owned(), value);
        }
    }
}

fn configuration(row: Combination, extra: Combination) -> Configuration {
    let named_entries = row.len();
    let mut matrix = row;
    // Extra keys are never vectors (those went to the selector), so nothing is overwritten.
    matrix.extend(extra);
    Configuration {
        matrix,
        named_entries,
    }
}

/// The number of cross-product rows; zero without vectors, `None` when it overflows.
fn cross_product_size(vectors: &[(&String, &Vec<Value>)]) -> Option<usize> {
    if vectors.is_empty() {
        return Some(0);
    }
    vectors.iter().try_fold(1usize, |product, (_, values)| {
        product.checked_mul(values.len())
    })
}

/// The cross product of the vectors as rows, the last vector varying fastest.
struct CrossProduct<'a> {
    vectors: &'a [(&'a String, &'a Vec<Value>)],
    /// The position in each vector of the next row; `None` once every row has been produced.
    positions: Option<Vec<usize>>,
}

impl<'a> CrossProduct<'a> {
    fn new(vectors: &'a [(&'a String, &'a Vec<Value>)]) -> Self {
        let has_rows = !vectors.is_empty() && vectors.iter().all(|(_, values)| !values.is_empty());
        Self {
            vectors,
            positions: has_rows.then(|| vec![0; vectors.len()]),
        }
    }
}

impl Iterator for CrossProduct<'_> {
    type Item = Combination;

    fn next(&mut self) -> Option<Combination> {
        let positions = self.positions.as_mut()?;
        let row = self
            .vectors
            .iter()
            .zip(positions.iter())
            .filter_map(|((key, values), &at)| Some(((*key).clone(), values.get(at)?.clone())))
            .collect();
        // Advance like an odometer: the last vector turns fastest, carrying leftwards.
        let mut exhausted = true;
        for (position, (_, values)) in positions.iter_mut().zip(self.vectors).rev() {
            *position += 1;
            if *position < values.len() {
                exhausted = false;
                break;
            }
            *position = 0;
        }
        if exhausted {
            self.positions = None;
        }
        Some(row)
    }
}
