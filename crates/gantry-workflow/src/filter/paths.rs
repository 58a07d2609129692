//! `paths` and `paths-ignore`: deciding from the changed files of a push or pull request
//! whether a workflow runs, with GitHub's documented rules and its 300-file limit.

use super::{FilterPattern, matches_filters};

/// How many changed files GitHub compares against path filters: the first 300 of the diff.
///
/// GitHub documents: "Diffs are limited to 300 files. If there are files changed that aren't
/// matched in the first 300 files returned by the filter, the workflow will not run." So files
/// after the 300th are never looked at; see [`paths_match`].
pub const PATH_FILTER_FILE_LIMIT: usize = 300;

/// Whether the path filters of one event let a workflow run for `changed_files`, listed in the
/// order of the diff. An empty `paths` or `paths_ignore` slice means that filter is absent.
///
/// The rules, from GitHub's documentation of `on.<push|pull_request>.paths`:
///
/// 1. With neither filter the paths do not matter: the result is `true`.
/// 2. Only the first [`PATH_FILTER_FILE_LIMIT`] (300) changed files are compared; the rest are
///    ignored as if they had not changed. A large diff therefore does *not* run the workflow by
///    itself: a `paths` match at file 301 is missed, and a `paths-ignore` list that ignores the
///    first 300 files skips the run even if file 301 is not ignored. This is the behaviour
///    GitHub documents ("if there are files changed that aren't matched in the first 300 files
///    returned by the filter, the workflow will not run").
/// 3. `paths`: "if at least one path matches a pattern in the paths filter, the workflow runs".
///    A file matches when [`matches_filters`] includes it, so `!` patterns apply in order.
/// 4. `paths-ignore`: "when all the path names match patterns in paths-ignore, the workflow will
///    not run"; it runs when at least one compared file is not included by the ignore list.
/// 5. "If there are no files changed, the workflow will not run": with a filter present and no
///    changed files the result is `false`.
/// 6. GitHub rejects a workflow that sets both filters for one event; if both are given here
///    anyway, both must let the run through.
///
/// Two documented cases are for the caller, which owns the diff: path filters are not evaluated
/// for pushes of tags, and when GitHub has no list of changed files (more than 1,000 commits
/// pushed, or the diff timed out) "the workflow will always run", so the caller should not call
/// this function at all.
pub fn paths_match(
    paths: &[FilterPattern],
    paths_ignore: &[FilterPattern],
    changed_files: &[String],
) -> bool {
    let compared = || changed_files.iter().take(PATH_FILTER_FILE_LIMIT);
    let paths_allow = paths.is_empty() || compared().any(|file| matches_filters(paths, file));
    let ignore_allows =
        paths_ignore.is_empty() || compared().any(|file| !matches_filters(paths_ignore, file));
    paths_allow && ignore_allows
}
