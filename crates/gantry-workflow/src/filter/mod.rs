//! Trigger filters: GitHub's filter patterns for `branches`, `tags` and `paths`, and the rules
//! that decide whether a list of them lets an event through.
//!
//! # Pattern syntax
//!
//! This follows GitHub's "filter pattern cheat sheet", which is not the syntax of shell globs or
//! of `globset` (`?` and `+` apply to the *preceding* character there), so patterns are
//! translated to a [`regex`] by hand:
//!
//! | pattern | meaning |
//! | --- | --- |
//! | `*` | zero or more characters, but not `/` |
//! | `**` | zero or more of any character, `/` included; a whole `**/` component may also match nothing, so `**/README.md` matches `README.md` and `docs/**/*.md` matches `docs/README.md` |
//! | `x?` | zero or one `x` (the preceding character or `[...]` class) |
//! | `x+` | one or more `x` |
//! | `[abc]`, `[0-9a-f]` | one character from the list or ranges |
//! | `!` first | negates the pattern (see below); anywhere else it is an ordinary character |
//! | `\[`, `\?`, `\*`, `\+`, `\\`, `\!` | the character itself; a `\` before anything else is a literal `\`, since file paths may contain one |
//!
//! A pattern must match the whole value: a branch name without `refs/heads/`, a tag name
//! without `refs/tags/`, or a path relative to the repository root. Matching is case-sensitive.
//!
//! [`FilterPattern::parse`] rejects what GitHub and actionlint treat as broken syntax: an empty
//! pattern, a lone `!`, `?` or `+` with no character or class before it (at the start, after `!`,
//! or after `*`, `?` or `+`), an empty `[]`, an unclosed `[`, a range with no end (`[0-]`), a
//! reversed range (`[9-0]`) and newlines. actionlint's stylistic or ref-name checks (`[x]` with a
//! single character, spaces or `^` in a branch name, `./` in a path) are not syntax errors on
//! GitHub and are left to workflow validation.
//!
//! # Ordered evaluation and negation
//!
//! [`matches_filters`] evaluates the patterns of one list in order: a value is included when the
//! *last* pattern that matches it is positive. A later `!pattern` excludes what earlier patterns
//! included and a later positive pattern re-includes it. A value that no pattern matches is not
//! included, so a list made only of negative patterns (or an empty list) includes nothing.
//! GitHub documents that "if you define a branch with the `!` character, you must also define at
//! least one branch without the `!` character" (the same for paths): such a list is a workflow
//! error there, and workflow validation should report it; evaluating it here simply never
//! includes anything, which is what a list whose patterns can only exclude means.
//!
//! `branches-ignore`/`tags-ignore` lists use the same evaluation: a value is ignored when
//! [`matches_filters`] includes it in the ignore list.
//!
//! # Path filters
//!
//! [`paths_match`] applies `paths` / `paths-ignore` to the changed files of a push or pull
//! request; its documentation gives the exact rules, including the 300-file limit.

mod paths;
mod pattern;

#[cfg(test)]
mod tests;

pub use paths::{PATH_FILTER_FILE_LIMIT, paths_match};
pub use pattern::{FilterError, FilterErrorKind, FilterPattern};

/// Whether `value` is included by the ordered pattern list `patterns`.
///
/// The value is included when the last pattern that matches it is positive, and excluded when
/// it is negative or when no pattern matches. An empty list or a list of negative patterns only
/// therefore includes nothing; see the [module documentation](self) for why.
pub fn matches_filters(patterns: &[FilterPattern], value: &str) -> bool {
    // Only the last matching pattern decides, so scanning from the end can stop at the first hit.
    patterns
        .iter()
        .rev()
        .find(|pattern| pattern.matches(value))
        .is_some_and(|pattern| !pattern.is_negated())
}
