//! `strategy.matrix` expansion, done the way GitHub Actions does it.
//!
//! The input is plain JSON: the YAML layer converts `strategy.matrix` to a [`serde_json::Value`],
//! [`spec_from_json`] turns that into a [`MatrixSpec`], and [`expand_configurations`] (or
//! [`expand`], which drops the naming information) yields one [`Configuration`] per job.
//!
//! GitHub's algorithm, which this module follows step by step:
//! 1. The cross product of the vectors, in key order, the first key varying slowest.
//! 2. Each row that matches an `exclude` entry is dropped. Exclude keys must be vectors.
//! 3. Each remaining row is matched against every `include` entry, looking only at the entry's
//!    keys that are vectors; the entry's other keys are added to every row it matches, a later
//!    entry overwriting what an earlier one added. Vector values are never overwritten.
//! 4. Each include entry that matched no row becomes a configuration of its own, after the rows.
//!
//! "Matches" is not deep equality but GitHub's leaf-by-leaf, case-insensitive, type-coercing
//! comparison (the private `filter` module says how). A matrix whose rows are all excluded yields
//! no configurations and no error; more than the limit (GitHub: 256) is an error.
//!
//! A matrix that is, or contains, a `${{ }}` expression cannot be expanded before the expression
//! is evaluated: [`spec_from_json`] reports that as [`MatrixError::Deferred`] or
//! [`MatrixError::DeferredMatrix`] (see [`MatrixError::is_deferred`]) and the caller expands the
//! evaluated matrix later, as GitHub does when the job is about to run.
//!
//! The facts come from GitHub's documentation ("Using a matrix for your jobs") and from the
//! matrix builder in GitHub's workflow parser as published in the `actions/runner` repository.

mod equality;
mod expand;
mod filter;
mod name;
mod spec;
#[cfg(test)]
mod tests;

use indexmap::IndexMap;
use serde_json::Value;

pub use expand::expand_configurations;
pub use spec::spec_from_json;

/// One job's `matrix` context: key to value, in GitHub's order.
pub type Combination = IndexMap<String, Value>;

/// The most configurations GitHub lets one job's matrix produce.
pub const GITHUB_MAX_CONFIGURATIONS: usize = 256;

/// A `strategy.matrix` mapping with its vectors and its `include`/`exclude` lists separated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatrixSpec {
    /// The vectors (every key but `include` and `exclude`), in the order they were written.
    pub dimensions: IndexMap<String, Vec<Value>>,
    /// The `include` entries, in order.
    pub include: Vec<Combination>,
    /// The `exclude` entries, in order.
    pub exclude: Vec<Combination>,
}

/// One job produced by a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// The job's `matrix` context: the row's vector values, then the values `include` added.
    pub matrix: Combination,
    /// How many leading entries of `matrix` GitHub shows in the job's display name. GitHub names
    /// a cross-product row by its vector values only, leaving out what `include` added to it,
    /// while a configuration that an include entry created on its own is named by all its values.
    pub named_entries: usize,
}

impl Configuration {
    /// The job's display name as GitHub shows it, e.g. `build (ubuntu-latest, 14)`.
    pub fn display_name(&self, job_name: &str) -> String {
        name::job_display_name(job_name, self.matrix.values().take(self.named_entries))
    }
}

/// Why a matrix could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    /// The whole matrix is an expression (`matrix: ${{ fromJSON(...) }}`).
    #[error("matrix is an expression and can only be expanded once it has been evaluated")]
    DeferredMatrix,
    /// A key of the matrix, or something inside its value, is an expression.
    #[error(
        "matrix '{key}' contains an expression and can only be expanded once it has been evaluated"
    )]
    Deferred {
        /// The matrix key (a vector, `include` or `exclude`) holding the first expression.
        key: String,
    },
    /// `strategy.matrix` is neither a mapping nor an expression.
    #[error("matrix must be a mapping")]
    NotAMapping,
    /// A vector's value is not a list.
    #[error("matrix vector '{key}' must be a list")]
    VectorNotAList {
        /// The vector's key.
        key: String,
    },
    /// A vector is an empty list.
    #[error("matrix vector '{key}' does not contain any values")]
    EmptyVector {
        /// The vector's key.
        key: String,
    },
    /// Two vectors' keys differ only in case; GitHub's matrix keys are case-insensitive.
    #[error("matrix vector '{key}' is defined more than once (keys are case-insensitive)")]
    DuplicateVector {
        /// The second of the two keys.
        key: String,
    },
    /// The matrix has no vectors and no include entries.
    #[error("matrix must define at least one vector")]
    NoVectors,
    /// `include` or `exclude` is not a list.
    #[error("matrix {section} must be a list")]
    FilterListNotAList {
        /// Which list.
        section: FilterSection,
    },
    /// An `include` or `exclude` entry is not a mapping.
    #[error("matrix {section} entry {index} must be a mapping")]
    FilterEntryNotAMapping {
        /// Which list.
        section: FilterSection,
        /// The entry's position in the list, from 0.
        index: usize,
    },
    /// An `include` entry is an empty mapping.
    #[error("matrix include entry {index} does not contain any values")]
    EmptyInclude {
        /// The entry's position in the list, from 0.
        index: usize,
    },
    /// An `exclude` entry is an empty mapping.
    #[error("matrix exclude entry {index} must not be empty")]
    EmptyExclude {
        /// The entry's position in the list, from 0.
        index: usize,
    },
    /// An `exclude` key is not a vector (keys that `include` adds cannot be excluded).
    #[error("matrix exclude key '{key}' does not match any key within the matrix")]
    UnknownExcludeKey {
        /// The offending key.
        key: String,
    },
    /// The matrix produces more configurations than allowed.
    #[error(
        "strategy produced {count} configurations which exceeds the maximum of {limit} configurations"
    )]
    TooManyConfigurations {
        /// How many configurations the matrix produces; when the cross product alone is too
        /// large to scan, the size of the cross product before `exclude` (saturating).
        count: usize,
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl MatrixError {
    /// Whether expansion has to wait until the matrix's expressions have been evaluated, rather
    /// than the matrix being wrong.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Self::DeferredMatrix | Self::Deferred { .. })
    }
}

/// The two filter lists of a matrix, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterSection {
    /// `include`.
    Include,
    /// `exclude`.
    Exclude,
}

impl std::fmt::Display for FilterSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Include => "include",
            Self::Exclude => "exclude",
        })
    }
}

/// Expands `spec` into the `matrix` context of each job, in GitHub's order; at most `limit`
/// configurations (GitHub: [`GITHUB_MAX_CONFIGURATIONS`]).
///
/// A matrix whose rows are all excluded yields no configurations and no error, as on GitHub.
pub fn expand(spec: &MatrixSpec, limit: usize) -> Result<Vec<Combination>, MatrixError> {
    let configurations = expand_configurations(spec, limit)?;
    Ok(configurations.into_iter().map(|c| c.matrix).collect())
}

/// `job_name (v1, v2, ...)` from every value of `combination`, nested values flattened depth
/// first, the way GitHub names matrix jobs.
///
/// GitHub leaves out of the name the values that `include` added to a cross-product row; for
/// the exact name of an expanded job use [`Configuration::display_name`].
pub fn display_name(job_name: &str, combination: &Combination) -> String {
    name::job_display_name(job_name, combination.values())
}
