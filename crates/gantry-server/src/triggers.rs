//! Events into runs: for an event on a repository with a git source, read every workflow file
//! at the event's commit, compute the changed files its path filters need, resolve the
//! reusable workflows they call (`./` ones at the same commit, `OWNER/REPO/PATH@REF` ones from
//! that repository's git source, see `remote_calls`), ask [`gantry_workflow::trigger::decide`] which workflows run, and create
//! each run through the same path as the API's `trigger_run` ([`App::start_run`]).
//!
//! Each run's idempotency key is derived from the delivery and the workflow file, so a
//! redelivered webhook or a retried hook finds the runs it started the first time instead of
//! starting them again.

use std::sync::Arc;

use gantry_proto::v1 as proto;
use gantry_store::{Repository, RepositorySource, StoreError};
use gantry_workflow::Limits;
use gantry_workflow::reusable::{CallOptions, check_calls};
use gantry_workflow::trigger::{Decision, Event, decide};
use gantry_workflow::{Diagnostics, Workflow};
use gix::ObjectId;
use proto::ErrorCode;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::called::CalledWorkflows;
use crate::error::ApiError;
use crate::git::{GitError, GitRepo, WorkflowFile, WorkflowListing, is_null_sha};
use crate::git_cache::{Cached, Dependencies, GitCache, LocalFiles};
use crate::invalid_runs::InvalidRun;
use crate::mirror::{self, MirrorError};
use crate::ops::StartRun;
use crate::remote_calls::RemoteReader;
use crate::resolve_calls::{GitCalls, Reads, resolve_calls};
use crate::webhook::{Changes, EventFacts};

/// A workflow file as read and checked at the event's commit.
#[derive(Clone)]
pub(crate) enum Loaded {
    /// Ready to be offered the event.
    Valid {
        path: String,
        source: String,
        workflow: Arc<Workflow>,
        called: Arc<CalledWorkflows>,
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
            let url = source.git_url.clone();
            let cache = Arc::clone(&self.git_cache);
            let lookup = self.repository_lookup();
            // Runs call reusable workflows of their own organization only.
            let org = facts
                .repository
                .split_once('/')
                .map_or(facts.repository.as_str(), |(org, _)| org)
                .to_owned();
            tokio::task::spawn_blocking(move || {
                let remote = RemoteReader::new(&org, &cache, &*lookup);
                let read = || {
                    let repo = cache.repository(&path)?;
                    read_snapshot(
                        &repo,
                        &cache,
                        &remote,
                        &git_ref,
                        sha.clone(),
                        &changes,
                        &default_branch,
                    )
                };
                read_fetching(url.as_deref(), &path, read)
            })
            .await
            .map_err(|error| ApiError::internal(&error))?
            .map_err(|error| {
                tracing::warn!(repo = %facts.repository, error = %error, "mirror fetch failed");
                ApiError::new(ErrorCode::Unavailable, error.to_string())
            })?
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
            let (path, source, workflow, called) = match loaded {
                Loaded::Valid {
                    path,
                    source,
                    workflow,
                    called,
                } => (path, source, workflow, called),
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
                called,
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

/// `read` once, and for a mirror of `url` at `path` that lacks the event's ref or commits,
/// again after fetching from the origin: a webhook arrives before anyone would have fetched.
/// A mirror this node does not have (the repository was registered through another replica
/// of a PostgreSQL server) is cloned from the stored URL first.
fn read_fetching(
    url: Option<&str>,
    path: &std::path::Path,
    read: impl Fn() -> Result<Option<Snapshot>, GitError>,
) -> Result<Result<Option<Snapshot>, GitError>, MirrorError> {
    mirror::ensure(url, path)?;
    let first = read();
    match (&first, url) {
        (Ok(None) | Err(GitError::Missing { .. }), Some(url)) => {
            mirror::fetch(url, path)?;
            Ok(read())
        }
        _ => Ok(first),
    }
}

/// Reads the event's commit: its id (`None` when the ref does not exist), the changed files
/// and every workflow file, loaded and checked.
fn read_snapshot(
    repo: &GitRepo,
    cache: &GitCache<Loaded>,
    remote: &RemoteReader<'_, Loaded>,
    git_ref: &str,
    sha: Option<String>,
    changes: &Changes,
    default_branch: &str,
) -> Result<Option<Snapshot>, GitError> {
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
    let workflows = load_workflows(repo, cache, remote, &sha)?;
    Ok(Some(Snapshot {
        sha,
        changed,
        workflows,
    }))
}

/// Every workflow file at `sha`, loaded and checked, or taken from `cache` when neither the
/// file nor anything its check read (called files here and in other repositories) changed.
fn load_workflows(
    repo: &GitRepo,
    cache: &GitCache<Loaded>,
    remote: &RemoteReader<'_, Loaded>,
    sha: &str,
) -> Result<Vec<Loaded>, GitError> {
    let listing = repo.workflow_listing(sha)?;
    let mut workflows = Vec::with_capacity(listing.files.len());
    for (path, blob) in &listing.files {
        let unchanged = |read: &Dependencies| {
            tree_of(read.local, &listing) == read.tree
                && read
                    .remote
                    .iter()
                    .all(|(key, found)| matches!(remote.blob(key), Ok(now) if now == *found))
        };
        if let Some(loaded) = cache.workflow(path, *blob, unchanged) {
            workflows.push(loaded);
            continue;
        }
        let file = WorkflowFile {
            path: path.clone(),
            source: repo.workflow_text(*blob, path)?,
        };
        let (loaded, reads) = load_checked(repo, sha, remote, file)?;
        let cached = Cached {
            depends_on: dependencies(reads, &listing),
            value: loaded.clone(),
        };
        cache.remember_workflow(path, *blob, cached);
        workflows.push(loaded);
    }
    Ok(workflows)
}

/// What a check that read the called files `reads` (by key) depends on: the tree of this
/// commit its local files came from (`.github/workflows` when every one is in it, else the
/// whole commit), and what each file of another repository was.
fn dependencies(reads: Reads, listing: &WorkflowListing) -> Dependencies {
    let (local, remote): (Vec<_>, Vec<_>) = reads
        .into_iter()
        .partition(|(key, _)| key.starts_with("./"));
    let inside = |key: &str| key.starts_with("./.github/workflows/") && !key.contains("..");
    let local = if local.is_empty() {
        LocalFiles::None
    } else if local.iter().all(|(key, _)| inside(key)) {
        LocalFiles::WorkflowsDir
    } else {
        LocalFiles::WholeCommit
    };
    Dependencies {
        local,
        tree: tree_of(local, listing),
        remote,
    }
}

/// The id of the tree `local` names in a commit's listing.
fn tree_of(local: LocalFiles, listing: &WorkflowListing) -> Option<ObjectId> {
    match local {
        LocalFiles::None => None,
        LocalFiles::WorkflowsDir => listing.dir,
        LocalFiles::WholeCommit => Some(listing.root),
    }
}

/// Loads a workflow file and checks its calls of reusable workflows against the called files
/// (`./` ones at the same commit, others from their repositories). Returns what was loaded
/// and every called file read, by key.
fn load_checked(
    repo: &GitRepo,
    sha: &str,
    remote: &RemoteReader<'_, Loaded>,
    file: WorkflowFile,
) -> Result<(Loaded, Reads), GitError> {
    let path = file.path;
    let source = match file.source {
        Ok(source) => source,
        Err(message) => {
            let loaded = Loaded::Invalid {
                errors: vec![format!("{path}: {message}")],
                path,
                source: String::new(),
                workflow: None,
            };
            return Ok((loaded, Vec::new()));
        }
    };
    let workflow = match gantry_workflow::load(&source, &Limits::default()) {
        Ok(workflow) => workflow,
        Err(diagnostics) => {
            let loaded = Loaded::Invalid {
                errors: located(&path, &diagnostics),
                path,
                source,
                workflow: None,
            };
            return Ok((loaded, Vec::new()));
        }
    };
    let mut called = CalledWorkflows::default();
    let reader = GitCalls {
        local: Some((repo, sha)),
        remote,
    };
    let resolution = resolve_calls(&workflow, &mut called, &reader)?;
    let mut errors: Vec<String> = resolution
        .problems
        .iter()
        .map(|problem| problem.located(&path))
        .collect();
    errors.extend(located(
        &path,
        &check_calls(&workflow, &called, &CallOptions::default()),
    ));
    let loaded = if errors.is_empty() {
        Loaded::Valid {
            path,
            source,
            workflow: Arc::new(workflow),
            called: Arc::new(called),
        }
    } else {
        Loaded::Invalid {
            path,
            source,
            workflow: Some(Arc::new(workflow)),
            errors,
        }
    };
    Ok((loaded, resolution.reads))
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::remote_calls::KnownRepository;

    #[test]
    fn keys_differ_per_delivery_and_workflow_and_fit_the_store() {
        let a = idempotency_key("d1", ".github/workflows/a.yml");
        assert_ne!(a, idempotency_key("d2", ".github/workflows/a.yml"));
        assert_ne!(a, idempotency_key("d1", ".github/workflows/b.yml"));
        assert_eq!(a, idempotency_key("d1", ".github/workflows/a.yml"));
        assert!(idempotency_key(&"x".repeat(1000), "p").len() < 100);
    }

    fn git(dir: &std::path::Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    }

    fn init(dir: &std::path::Path) {
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["config", "user.name", "Test"]);
        git(dir, &["config", "user.email", "test@example.com"]);
    }

    fn commit(dir: &std::path::Path, files: &[(&str, &str)]) -> String {
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "change"]);
        let repo = GitRepo::open(dir).unwrap();
        repo.resolve("refs/heads/main").unwrap().unwrap()
    }

    /// The loaded workflow of each file, by path.
    fn workflows(loaded: &[Loaded]) -> BTreeMap<String, Option<Arc<Workflow>>> {
        loaded
            .iter()
            .map(|loaded| match loaded {
                Loaded::Valid { path, workflow, .. } => (path.clone(), Some(workflow.clone())),
                Loaded::Invalid { path, .. } => (path.clone(), None),
            })
            .collect()
    }

    #[test]
    fn unchanged_files_are_taken_from_the_cache_until_a_file_they_call_changes() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path());
        let plain = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: a\n";
        let called = "on:\n  workflow_call:\n    inputs:\n      target:\n        type: string\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: d\n";
        let caller = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/called.yml\n    with:\n      target: prod\n";
        let first = commit(
            dir.path(),
            &[
                (".github/workflows/plain.yml", plain),
                (".github/workflows/called.yml", called),
                (".github/workflows/caller.yml", caller),
            ],
        );
        let cache = GitCache::default();
        let lookup = |_: &str, _: &str| Ok(KnownRepository::Unknown);
        let remote = RemoteReader::new("acme", &cache, &lookup);
        let repo = cache.repository(dir.path()).unwrap();
        let one = workflows(&load_workflows(&repo, &cache, &remote, &first).unwrap());

        // Another commit that touches no workflow: every file comes from the cache.
        let second = commit(dir.path(), &[("README.md", "hi\n")]);
        let repo = cache.repository(dir.path()).unwrap();
        let two = workflows(&load_workflows(&repo, &cache, &remote, &second).unwrap());
        for (path, workflow) in &one {
            let (a, b) = (workflow.as_ref().unwrap(), two[path].as_ref().unwrap());
            assert!(Arc::ptr_eq(a, b), "{path} was loaded again");
        }

        // The called file no longer declares the input: the unchanged caller is checked
        // again (and fails); the file without calls still comes from the cache.
        let third = commit(
            dir.path(),
            &[(
                ".github/workflows/called.yml",
                "on: workflow_call\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: d\n",
            )],
        );
        let loaded = load_workflows(&repo, &cache, &remote, &third).unwrap();
        let three = workflows(&loaded);
        assert!(
            three[".github/workflows/caller.yml"].is_none(),
            "the caller was not re-checked"
        );
        let plain_path = ".github/workflows/plain.yml";
        assert!(Arc::ptr_eq(
            one[plain_path].as_ref().unwrap(),
            three[plain_path].as_ref().unwrap()
        ));
    }

    #[test]
    fn a_cached_caller_of_another_repository_is_checked_again_when_its_ref_moves() {
        let (app, lib) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        init(app.path());
        init(lib.path());
        let called = "on:\n  workflow_call:\n    inputs:\n      target:\n        type: string\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: d\n";
        commit(lib.path(), &[(".github/workflows/called.yml", called)]);
        let caller = "on: push\njobs:\n  call:\n    uses: acme/lib/.github/workflows/called.yml@main\n    with:\n      target: prod\n";
        let first = commit(app.path(), &[(".github/workflows/caller.yml", caller)]);
        let cache = GitCache::default();
        let lib_path = lib.path().to_owned();
        let lookup = move |owner: &str, name: &str| {
            Ok(match (owner, name) {
                ("acme", "lib") => KnownRepository::Source {
                    git_path: lib_path.clone(),
                    git_url: None,
                },
                _ => KnownRepository::Unknown,
            })
        };
        let path = ".github/workflows/caller.yml";
        let load = |sha: &str| {
            // A reader per event, as `offer_event` makes one.
            let remote = RemoteReader::new("acme", &cache, &lookup);
            let repo = cache.repository(app.path()).unwrap();
            workflows(&load_workflows(&repo, &cache, &remote, sha).unwrap())
        };
        let one = load(&first);
        let again = load(&first);
        assert!(
            Arc::ptr_eq(
                one[path].as_ref().expect("the caller loads"),
                again[path].as_ref().unwrap()
            ),
            "nothing changed, yet the caller was loaded again"
        );

        // The called repository's branch moves to a file without the input: the same caller
        // file at the same commit is checked again, and fails.
        commit(
            lib.path(),
            &[(
                ".github/workflows/called.yml",
                "on: workflow_call\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: d\n",
            )],
        );
        assert!(
            load(&first)[path].is_none(),
            "a stale called file was served"
        );
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
