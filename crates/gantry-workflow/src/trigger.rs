//! Deciding whether an event starts a workflow, with GitHub's filter semantics, and saying why
//! not when it does not.
//!
//! Rules implemented (from GitHub's workflow syntax documentation):
//! - The event must be listed under `on:`; `workflow_call` is never started by an event.
//! - `push` to a branch is filtered by `branches`/`branches-ignore`; when only tag filters are
//!   given, branch pushes do not run. Tag pushes mirror this with `tags`/`tags-ignore`.
//! - `pull_request` and `pull_request_target` filter `branches` on the *base* branch and
//!   activity `types` default to `opened`, `synchronize` and `reopened`.
//! - `paths`/`paths-ignore` apply to the changed files (see [`crate::filter::paths_match`]);
//!   they are not evaluated for tag pushes, and when the changed files are unknown (GitHub: more
//!   than 1,000 commits or a diff that timed out) the workflow runs.
//! - `merge_group` filters `branches` on the merge queue's base branch.
//! - `workflow_run` filters on the triggering workflow's name, `types` (default `completed`
//!   and `requested`) and its head branch.
//! - Other events with `types:` run only for the listed activity types.

use crate::filter::{FilterPattern, matches_filters, paths_match};
use crate::model::{RefFilters, ScheduleEntry, Spanned, Trigger, TriggerConfig, Workflow};

/// An event offered to a workflow.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// Event name as in `on:` (`push`, `pull_request`, …).
    pub name: &'a str,
    /// The payload's `action` (activity type), when the event has one.
    pub action: Option<&'a str>,
    /// For `push`: the pushed ref (`refs/heads/main`, `refs/tags/v1`). For pull requests: the
    /// base branch (`refs/heads/main` or `main`). For `workflow_run`: the run's head branch.
    pub git_ref: Option<&'a str>,
    /// Changed files of a push or pull request, in diff order; `None` when unknown.
    pub changed_files: Option<&'a [String]>,
    /// For `workflow_run`: the name of the workflow whose run triggered the event.
    pub workflow_name: Option<&'a str>,
    /// For `schedule`: the cron line that fired; `None` matches any schedule of the workflow.
    pub schedule: Option<&'a str>,
}

/// Whether a workflow runs for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The workflow runs.
    Run,
    /// It does not, and why.
    Skip(String),
}

impl Decision {
    /// True for [`Decision::Run`].
    pub fn runs(&self) -> bool {
        matches!(self, Decision::Run)
    }
}

/// Decides whether `workflow` runs for `event`.
pub fn decide(workflow: &Workflow, event: &Event<'_>) -> Decision {
    let Some(trigger) = workflow.on.iter().find(|t| t.event.value == event.name) else {
        let listed: Vec<&str> = workflow.on.iter().map(|t| t.event.value.as_str()).collect();
        return Decision::Skip(format!(
            "the workflow does not run on `{}`; it runs on: {}",
            event.name,
            listed.join(", ")
        ));
    };
    decide_trigger(trigger, event)
}

fn decide_trigger(trigger: &Trigger, event: &Event<'_>) -> Decision {
    match &trigger.config {
        TriggerConfig::Push(filters) => decide_push(filters, event),
        TriggerConfig::PullRequest { types, filters } => {
            let defaults = ["opened", "synchronize", "reopened"];
            if let Err(reason) = check_types(types, &defaults, event) {
                return Decision::Skip(reason);
            }
            let Some(base) = event.git_ref else {
                return Decision::Skip("the pull request event names no base branch".into());
            };
            let branch = base.strip_prefix("refs/heads/").unwrap_or(base);
            if let Err(reason) = check_refs(
                &filters.branches,
                &filters.branches_ignore,
                branch,
                "base branch",
            ) {
                return Decision::Skip(reason);
            }
            decide_paths(filters, event)
        }
        TriggerConfig::MergeGroup { types, filters } => {
            if let Err(reason) = check_types(types, &[], event) {
                return Decision::Skip(reason);
            }
            let base = event.git_ref.unwrap_or_default();
            let branch = base.strip_prefix("refs/heads/").unwrap_or(base);
            match check_refs(
                &filters.branches,
                &filters.branches_ignore,
                branch,
                "base branch",
            ) {
                Ok(()) => Decision::Run,
                Err(reason) => Decision::Skip(reason),
            }
        }
        TriggerConfig::WorkflowRun {
            workflows,
            types,
            filters,
        } => {
            let name = event.workflow_name.unwrap_or_default();
            if !workflows.iter().any(|w| w.value == name) {
                return Decision::Skip(format!(
                    "`workflow_run` follows other workflows, not \"{name}\""
                ));
            }
            if let Err(reason) = check_types(types, &["completed", "requested"], event) {
                return Decision::Skip(reason);
            }
            let branch = event.git_ref.unwrap_or_default();
            let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
            match check_refs(
                &filters.branches,
                &filters.branches_ignore,
                branch,
                "branch",
            ) {
                Ok(()) => Decision::Run,
                Err(reason) => Decision::Skip(reason),
            }
        }
        TriggerConfig::Schedule(schedules) => decide_schedule(schedules, event),
        TriggerConfig::WorkflowDispatch { .. } => Decision::Run,
        TriggerConfig::WorkflowCall { .. } => Decision::Skip(
            "`workflow_call` workflows run only when another workflow calls them".into(),
        ),
        TriggerConfig::Types(types) => match check_types(types, &[], event) {
            Ok(()) => Decision::Run,
            Err(reason) => Decision::Skip(reason),
        },
    }
}

fn decide_push(filters: &RefFilters, event: &Event<'_>) -> Decision {
    let Some(git_ref) = event.git_ref else {
        return Decision::Skip("the push event names no ref".into());
    };
    let has_branch_filters = filters.branches.is_some() || filters.branches_ignore.is_some();
    let has_tag_filters = filters.tags.is_some() || filters.tags_ignore.is_some();
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        if !has_tag_filters && has_branch_filters {
            return Decision::Skip(format!(
                "tag \"{tag}\" was pushed but the workflow only filters branches"
            ));
        }
        // Path filters are not evaluated for tag pushes.
        return match check_refs(&filters.tags, &filters.tags_ignore, tag, "tag") {
            Ok(()) => Decision::Run,
            Err(reason) => Decision::Skip(reason),
        };
    }
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
    if !has_branch_filters && has_tag_filters {
        return Decision::Skip(format!(
            "branch \"{branch}\" was pushed but the workflow only filters tags"
        ));
    }
    if let Err(reason) = check_refs(
        &filters.branches,
        &filters.branches_ignore,
        branch,
        "branch",
    ) {
        return Decision::Skip(reason);
    }
    decide_paths(filters, event)
}

fn decide_paths(filters: &RefFilters, event: &Event<'_>) -> Decision {
    if filters.paths.is_none() && filters.paths_ignore.is_none() {
        return Decision::Run;
    }
    // Without a list of changed files GitHub runs the workflow rather than guess.
    let Some(changed) = event.changed_files else {
        return Decision::Run;
    };
    let paths = patterns(filters.paths.as_deref().unwrap_or_default());
    let ignore = patterns(filters.paths_ignore.as_deref().unwrap_or_default());
    if paths_match(&paths, &ignore, changed) {
        return Decision::Run;
    }
    if changed.is_empty() {
        Decision::Skip("no files changed, and the workflow has path filters".into())
    } else if filters.paths.is_some() {
        Decision::Skip(format!(
            "none of the {} changed files matches `paths`",
            changed.len()
        ))
    } else {
        Decision::Skip(format!(
            "all {} changed files match `paths-ignore`",
            changed.len()
        ))
    }
}

fn patterns(list: &[Spanned<FilterPattern>]) -> Vec<FilterPattern> {
    list.iter().map(|pattern| pattern.value.clone()).collect()
}

/// Applies an include list or an ignore list to a branch or tag name.
fn check_refs(
    include: &Option<Vec<Spanned<FilterPattern>>>,
    ignore: &Option<Vec<Spanned<FilterPattern>>>,
    name: &str,
    what: &str,
) -> Result<(), String> {
    // The filter keys are named after the ref kind: `branches` / `tags` and their `-ignore` forms.
    let key = if what == "tag" { "tags" } else { "branches" };
    if let Some(include) = include
        && !matches_filters(&patterns(include), name)
    {
        return Err(format!("{what} \"{name}\" does not match `{key}`"));
    }
    if let Some(ignore) = ignore
        && matches_filters(&patterns(ignore), name)
    {
        return Err(format!("{what} \"{name}\" matches `{key}-ignore`"));
    }
    Ok(())
}

fn check_types(
    types: &[Spanned<String>],
    defaults: &[&str],
    event: &Event<'_>,
) -> Result<(), String> {
    let Some(action) = event.action else {
        return Ok(());
    };
    let listed = !types.is_empty() && types.iter().any(|t| t.value == action);
    let defaulted = types.is_empty() && (defaults.is_empty() || defaults.contains(&action));
    if listed || defaulted {
        return Ok(());
    }
    let expected: Vec<&str> = if types.is_empty() {
        defaults.to_vec()
    } else {
        types.iter().map(|t| t.value.as_str()).collect()
    };
    Err(format!(
        "activity type \"{action}\" is not one of: {}",
        expected.join(", ")
    ))
}

fn decide_schedule(schedules: &[ScheduleEntry], event: &Event<'_>) -> Decision {
    let Some(fired) = event.schedule else {
        return Decision::Run;
    };
    let fired = fired.split_whitespace().collect::<Vec<_>>().join(" ");
    if schedules.iter().any(|s| {
        s.cron
            .value
            .source()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            == fired
    }) {
        Decision::Run
    } else {
        Decision::Skip(format!("no `schedule` entry is \"{fired}\""))
    }
}
