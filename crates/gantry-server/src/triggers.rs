//! Events into runs: for an event on a repository with a git source, read every workflow file
//! at the event's commit, compute the changed files its path filters need, resolve local
//! reusable workflows, ask [`gantry_workflow::trigger::decide`] which workflows run, and create
//! each run through the same path as the API's `trigger_run` ([`App::start_run`]).
//!
//! Each run's idempotency key is derived from the delivery and the workflow file, so a
//! redelivered webhook or a retried hook finds the runs it started the first time instead of
//! starting them again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use gantry_proto::v1 as proto;
use gantry_store::{Repository, RepositorySource, StoreError};
use gantry_workflow::Limits;
use gantry_workflow::reusable::{CallOptions, WorkflowSource, check_calls};
use gantry_workflow::trigger::{Decision, Event, decide};
use gantry_workflow::{Diagnostics, Workflow};
use proto::ErrorCode;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::ApiError;
use crate::git::{GitError, GitRepo, WorkflowFile, is_null_sha};
use crate::invalid_runs::InvalidRun;
use crate::ops::StartRun;
use crate::webhook::{Changes, EventFacts};

/// The most workflow files one reusable-workflow call chain may read at a commit (GitHub's
/// nesting limit is 10 levels; several calls per level are fine).
const MAX_CALLED_FILES: usize = 50;

/// A workflow file as read and checked at the event's commit.
enum Loaded {
    /// Ready to be offered the event.
    Valid {
        path: String,
        source: String,
        workflow: Arc<Workflow>,
    },
    /// It, or a workflow it calls, failed to load; every problem as `file:line:col: message`.
    Invalid {
        path: String,
        /// The file's text (empty when it is not text).
        source: String,
        /// The file itself when it loaded and only its calls are invalid: its triggers still
        /// decide whether an event would start it.
        workflow: Option<Arc<Workflow>>,
        errors: Vec<String>,
    },
}

/// What the event's commit holds, read in one blocking step.
struct Snapshot {
    sha: String,
    changed: Option<Vec<String>>,
    workflows: Vec<Loaded>,
}

impl App {
    /// A repository's git source; a repository without one is not found.
    pub(crate) async fn repository_source(
        &self,
        repo: &Repository,
        full_name: &str,
    ) -> Result<RepositorySource, ApiError> {
        self.store
            .get_repository_source(repo.id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound { .. } => ApiError::not_found(format!(
                    "repository `{full_name}` has no git source (`gantry repo add --path`)"
                )),
                other => other.into(),
            })
    }

    /// Offers `facts` to every workflow of the repository at the event's commit and starts
    /// the ones that run. `delivery` seeds the runs' idempotency keys.
    pub(crate) async fn offer_event(
        &self,
        repo: &Repository,
        source: &RepositorySource,
        facts: &EventFacts,
        delivery: &str,
    ) -> Result<proto::HookOutcome, ApiError> {
        let mut outcome = proto::HookOutcome::default();
        let git_ref = facts.git_ref_or_default(&repo.default_branch);
        let snapshot = {
            let path = std::path::PathBuf::from(&source.git_path);
            let sha = facts.sha.clone();
            let changes = facts.changes.clone();
            let git_ref = git_ref.clone();
            let default_branch = repo.default_branch.clone();
            tokio::task::spawn_blocking(move || {
                read_snapshot(&path, &git_ref, sha, &changes, &default_branch)
            })
            .await
            .map_err(|error| ApiError::internal(&error))?
        };
        let snapshot = match snapshot {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => {
                outcome
                    .ignored
                    .push(format!("{git_ref} is not in the repository"));
                return Ok(outcome);
            }
            Err(error @ GitError::Missing { .. }) => {
                return Err(ApiError::new(ErrorCode::InvalidRequest, error.to_string()));
            }
            Err(error) => return Err(ApiError::internal(&error)),
        };
        let github = facts.github_facts(&snapshot.sha, &repo.default_branch);
        let event = Event {
            name: &facts.event_name,
            action: facts.action.as_deref(),
            git_ref: facts.filter_ref.as_deref(),
            changed_files: snapshot.changed.as_deref(),
            workflow_name: facts.workflow_name.as_deref(),
            schedule: facts.schedule.as_deref(),
        };
        for loaded in snapshot.workflows {
            let (path, source, workflow) = match loaded {
                Loaded::Valid {
                    path,
                    source,
                    workflow,
                } => (path, source, workflow),
                Loaded::Invalid {
                    path,
                    source,
                    workflow,
                    errors,
                } => {
                    tracing::warn!(repo = %facts.repository, workflow = %path, sha = %snapshot.sha, errors = %errors.join("; "), "workflow file is invalid");
                    outcome.invalid.push(proto::InvalidWorkflow {
                        workflow_path: path.clone(),
                        errors: errors.clone(),
                    });
                    if records_invalid_run(facts, &path, workflow.as_deref(), &event) {
                        let invalid = InvalidRun {
                            idempotency_key: Some(idempotency_key(delivery, &path)),
                            workflow_path: path,
                            workflow_name: workflow
                                .and_then(|workflow| workflow.name.clone())
                                .map(|name| name.value),
                            workflow_source: source,
                            errors,
                            facts: github.clone(),
                        };
                        let (run, created) = self.record_invalid_run(repo, invalid).await?;
                        outcome.runs.push(proto::TriggeredRun { run, created });
                    }
                    continue;
                }
            };
            if let Some(only) = &facts.only_workflow
                && !same_workflow(only, &path)
            {
                outcome.skipped.push(proto::SkippedWorkflow {
                    workflow_path: path,
                    reason: format!("the event was dispatched to `{only}`"),
                });
                continue;
            }
            if let Decision::Skip(reason) = decide(&workflow, &event) {
                outcome.skipped.push(proto::SkippedWorkflow {
                    workflow_path: path,
                    reason,
                });
                continue;
            }
            let start = StartRun {
                workflow,
                idempotency_key: Some(idempotency_key(delivery, &path)),
                workflow_path: path,
                workflow_source: source,
                facts: github.clone(),
                inputs: serde_json::Value::Object(facts.inputs.clone()),
            };
            let (run, created) = self.start_run(repo, start).await?;
            outcome.runs.push(proto::TriggeredRun { run, created });
        }
        tracing::info!(
            repo = %facts.repository,
            event = %facts.event_name,
            sha = %snapshot.sha,
            runs = outcome.runs.len(),
            skipped = outcome.skipped.len(),
            invalid = outcome.invalid.len(),
            "event offered to workflows"
        );
        Ok(outcome)
    }
}

/// Whether an event records a failed run for an invalid workflow file, as GitHub does for the
/// events it cannot tell apart without the file: not for a schedule (an invalid file has no
/// schedule that could fire, and other files' minutes must not fail it again and again), not
/// for `create` and `delete` (they come with a push, which already records the file once),
/// not for a dispatch to another file, and, when the file itself loaded and only its calls
/// are invalid, only if the event would have started it.
fn records_invalid_run(
    facts: &EventFacts,
    path: &str,
    workflow: Option<&Workflow>,
    event: &Event<'_>,
) -> bool {
    if facts.schedule.is_some() || matches!(facts.event_name.as_str(), "create" | "delete") {
        return false;
    }
    if let Some(only) = &facts.only_workflow
        && !same_workflow(only, path)
    {
        return false;
    }
    workflow.is_none_or(|workflow| matches!(decide(workflow, event), Decision::Run))
}

/// `workflow_dispatch` names its workflow by path (`.github/workflows/ci.yml`) or file name.
fn same_workflow(named: &str, path: &str) -> bool {
    named == path || path.rsplit('/').next() == Some(named)
}

/// One key per (delivery, workflow file), short enough for the store whatever their lengths.
fn idempotency_key(delivery: &str, workflow_path: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(delivery.as_bytes());
    hash.update([0]);
    hash.update(workflow_path.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("trigger:{hex}")
}

/// Reads the event's commit: its id (`None` when the ref does not exist), the changed files
/// and every workflow file, loaded and checked.
fn read_snapshot(
    path: &std::path::Path,
    git_ref: &str,
    sha: Option<String>,
    changes: &Changes,
    default_branch: &str,
) -> Result<Option<Snapshot>, GitError> {
    let repo = GitRepo::open(path)?;
    let sha = match sha {
        Some(sha) => repo.peel_to_commit(&sha)?,
        None => match repo.resolve(git_ref)? {
            Some(sha) => sha,
            None => return Ok(None),
        },
    };
    let changed = match changes {
        Changes::NotApplicable => None,
        Changes::Push { before, after } if !is_null_sha(before) => {
            let before = repo.peel_to_commit(before)?;
            repo.changed_files(Some(&before), &repo.peel_to_commit(after)?)?
        }
        // A new branch: GitHub compares with the commit it branched from; the merge base with
        // the default branch stands in for it, else the pushed commit's parent (the default
        // branch itself, or a branch of its own history), else the empty tree.
        Changes::Push { after, .. } => {
            let after = repo.peel_to_commit(after)?;
            let default_ref = format!("refs/heads/{default_branch}");
            let mut base = None;
            if git_ref != default_ref
                && let Some(tip) = repo.resolve(&default_ref)?
            {
                base = repo.merge_base(&after, &tip)?.filter(|base| *base != after);
            }
            if base.is_none() {
                base = repo.first_parent(&after)?;
            }
            repo.changed_files(base.as_deref(), &after)?
        }
        // Pull requests: the three-dot diff, from the merge base to the head.
        Changes::PullRequest { base, head } => {
            let merge_base = repo.merge_base(base, head)?;
            repo.changed_files(merge_base.as_deref(), head)?
        }
    };
    let workflows = repo
        .workflow_files(&sha)?
        .into_iter()
        .map(|file| load_checked(&repo, &sha, file))
        .collect::<Result<_, _>>()?;
    Ok(Some(Snapshot {
        sha,
        changed,
        workflows,
    }))
}

/// Loads a workflow file and checks its calls of local reusable workflows
/// (`uses: ./.github/workflows/x.yml`) against the called files at the same commit.
fn load_checked(repo: &GitRepo, sha: &str, file: WorkflowFile) -> Result<Loaded, GitError> {
    let path = file.path;
    let source = match file.source {
        Ok(source) => source,
        Err(message) => {
            return Ok(Loaded::Invalid {
                errors: vec![format!("{path}: {message}")],
                path,
                source: String::new(),
                workflow: None,
            });
        }
    };
    let workflow = match gantry_workflow::load(&source, &Limits::default()) {
        Ok(workflow) => workflow,
        Err(diagnostics) => {
            return Ok(Loaded::Invalid {
                errors: located(&path, &diagnostics),
                path,
                source,
                workflow: None,
            });
        }
    };
    let mut errors = Vec::new();
    let called = called_workflows(repo, sha, &path, &workflow, &mut errors)?;
    errors.extend(located(
        &path,
        &check_calls(&workflow, &called, &CallOptions::default()),
    ));
    if !errors.is_empty() {
        return Ok(Loaded::Invalid {
            path,
            source,
            workflow: Some(Arc::new(workflow)),
            errors,
        });
    }
    Ok(Loaded::Valid {
        path,
        source,
        workflow: Arc::new(workflow),
    })
}

/// The local workflows `workflow` calls, directly or through other called files, by their
/// `uses:` text. A missing or invalid called file is an error of the caller.
fn called_workflows(
    repo: &GitRepo,
    sha: &str,
    caller_path: &str,
    workflow: &Workflow,
    errors: &mut Vec<String>,
) -> Result<CalledWorkflows, GitError> {
    let mut called = CalledWorkflows::default();
    let local_calls = |path: &str, workflow: &Workflow| {
        workflow
            .jobs
            .iter()
            .filter_map(|job| job.uses.as_ref())
            .filter(|uses| uses.value.starts_with("./"))
            .map(|uses| (uses.value.clone(), uses.pos))
            .map(|(uses, pos)| (path.to_owned(), uses, pos))
            .collect::<Vec<_>>()
    };
    let mut queue: VecDeque<(String, String, gantry_workflow::yaml::Pos)> =
        local_calls(caller_path, workflow).into();
    while let Some((from, uses, pos)) = queue.pop_front() {
        if called.files.contains_key(&uses) {
            continue;
        }
        if called.files.len() >= MAX_CALLED_FILES {
            errors.push(format!(
                "{from}:{}:{}: more than {MAX_CALLED_FILES} reusable workflow files are called",
                pos.line, pos.col
            ));
            break;
        }
        let target = uses.trim_start_matches("./");
        let Some(file) = repo.read_file(sha, target)? else {
            errors.push(format!(
                "{from}:{}:{}: the called workflow `{uses}` does not exist at commit {sha}",
                pos.line, pos.col
            ));
            continue;
        };
        let loaded = file
            .source
            .map_err(|message| vec![format!("{target}: {message}")])
            .and_then(|text| {
                gantry_workflow::load(&text, &Limits::default())
                    .map_err(|diagnostics| located(target, &diagnostics))
            });
        match loaded {
            Ok(callee) => {
                queue.extend(local_calls(target, &callee));
                called.files.insert(uses, callee);
            }
            Err(problems) => errors.extend(problems),
        }
    }
    Ok(called)
}

/// Called workflows by their `uses:` text, for [`check_calls`].
#[derive(Default)]
struct CalledWorkflows {
    files: BTreeMap<String, Workflow>,
}

impl WorkflowSource for CalledWorkflows {
    fn workflow(&self, reference: &str) -> Option<&Workflow> {
        self.files.get(reference)
    }
}

/// Diagnostics as `file:line:col: message`.
fn located(path: &str, diagnostics: &Diagnostics) -> Vec<String> {
    diagnostics
        .0
        .iter()
        .map(|diagnostic| {
            format!(
                "{path}:{}:{}: {}",
                diagnostic.pos.line, diagnostic.pos.col, diagnostic.message
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_per_delivery_and_workflow_and_fit_the_store() {
        let a = idempotency_key("d1", ".github/workflows/a.yml");
        assert_ne!(a, idempotency_key("d2", ".github/workflows/a.yml"));
        assert_ne!(a, idempotency_key("d1", ".github/workflows/b.yml"));
        assert_eq!(a, idempotency_key("d1", ".github/workflows/a.yml"));
        assert!(idempotency_key(&"x".repeat(1000), "p").len() < 100);
    }

    #[test]
    fn dispatch_names_a_workflow_by_path_or_file_name() {
        assert!(same_workflow(
            ".github/workflows/ci.yml",
            ".github/workflows/ci.yml"
        ));
        assert!(same_workflow("ci.yml", ".github/workflows/ci.yml"));
        assert!(!same_workflow("ci.yml", ".github/workflows/ci.yaml"));
    }
}
