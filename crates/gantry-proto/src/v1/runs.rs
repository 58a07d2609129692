//! Runs and their jobs: triggering, reading, cancelling, re-running, and completing a job
//! until the runner protocol exists.

use std::fmt;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a run is in its life (GitHub's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created or re-run; no job has started yet.
    Queued,
    /// At least one job has started.
    InProgress,
    /// Every job has ended; the run has a conclusion.
    Completed,
}

/// Where a job is in its life (GitHub's spelling, plus `waiting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Not ready: waiting on needs, a concurrency group or a `max-parallel` slot.
    Waiting,
    /// Ready and waiting for a runner.
    Queued,
    /// A runner has started it.
    InProgress,
    /// Ended; it has a conclusion.
    Completed,
}

/// How a run or job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// It ran and succeeded.
    Success,
    /// It ran and failed, or could not be run.
    Failure,
    /// It was cancelled.
    Cancelled,
    /// It did not run: its `if:` was false or a need did not succeed.
    Skipped,
}

impl RunStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Completed => "completed",
        }
    }
}

impl JobStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }
}

impl Conclusion {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Conclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /api/v1/repos/{org}/{repo}/runs`: a workflow file's text and the event
/// that starts it. With the `Idempotency-Key` header, a repeated submission returns the run
/// the first one created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRun {
    /// The workflow file's path in the repository, e.g. `.github/workflows/ci.yml`; run
    /// numbers count per path.
    pub workflow_path: String,
    /// The workflow file's text (YAML).
    pub workflow: String,
    /// The event name, as in `on:` (default `push`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The git ref (default `refs/heads/` + the repository's default branch).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The commit (default 40 zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// Who triggered the run (default `gantry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The webhook payload: `github.event` in expressions (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// `inputs` of a `workflow_dispatch` (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<IndexMap<String, serde_json::Value>>,
    /// The texts of the reusable workflows the workflow calls, nested calls included, by their
    /// `uses:` text (e.g. `./.github/workflows/build.yml`). A call without its file here is
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_workflows: Option<IndexMap<String, String>>,
}

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The run's id, unique on the server; newer runs have larger ids.
    pub id: i64,
    /// `org/repo`.
    pub repository: String,
    /// The workflow file's path.
    pub workflow_path: String,
    /// The workflow's `name:`, or its path when it has none.
    pub workflow_name: String,
    /// The run's number among the runs of its workflow (`github.run_number`).
    pub run_number: u64,
    /// 1, then one more per re-run (`github.run_attempt`).
    pub attempt: u32,
    /// The event name.
    pub event: String,
    /// The git ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit.
    pub sha: String,
    /// Who triggered it.
    pub actor: String,
    /// Queued, in progress or completed.
    pub status: RunStatus,
    /// How it ended, once completed.
    pub conclusion: Option<Conclusion>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the first job of the current attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last job of the current attempt ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Why the workflow file failed to load, as `file:line:col: message` (GitHub's "Invalid
    /// workflow file"): such a run is completed, failed and has no jobs. Absent when the file
    /// loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflow_errors: Vec<String>,
}

/// A run with its jobs: the answer of `GET /api/v1/runs/{run}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDetail {
    /// The run.
    pub run: Run,
    /// Its jobs, one per matrix combination, in workflow order.
    pub jobs: Vec<Job>,
}

/// One job of a run: one matrix combination, or the job itself without a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The job's id, unique on the server.
    pub id: i64,
    /// The run.
    pub run_id: i64,
    /// The job's key under `jobs:` in the workflow.
    pub job_key: String,
    /// Its position among the job's matrix combinations (0 without a matrix).
    pub matrix_index: u32,
    /// The display name, e.g. `test (python, small)`.
    pub name: String,
    /// Waiting, queued, in progress or completed.
    pub status: JobStatus,
    /// How it ended, once completed.
    pub conclusion: Option<Conclusion>,
    /// The dispatch attempt: it grows when the job is queued again (lost runner, re-run).
    pub attempt: u32,
    /// The `runs-on` labels, once evaluated.
    pub labels: Vec<String>,
    /// Its priority among the queued jobs of its organization (higher first; 0 by default;
    /// from `priority:` in the workflow or the priority API).
    #[serde(default)]
    pub priority: i32,
    /// Why it is not running yet, in the order that matters; empty once it runs or ended.
    pub waiting_reasons: Vec<WaitingReason>,
    /// The outputs it reported.
    pub outputs: IndexMap<String, String>,
    /// Why it ended the way it did, when the runner did not say (a timeout, `runner lost`,
    /// `cancelled because ... failed (fail-fast)`).
    pub message: Option<String>,
    /// When it was last queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// When the current attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// What a waiting reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitingReasonKind {
    /// Some of the job's `needs` have not ended (`jobs`).
    Needs,
    /// A `concurrency` group is not the run's yet (`group`, `held_by_run`).
    ConcurrencyGroup,
    /// `strategy.max-parallel` siblings are already running (`limit`).
    MaxParallel,
    /// Queued for a runner with these `labels`.
    Runner,
    /// No online runner has all these `labels` (and the runner `group`, when the job names
    /// one).
    NoOnlineRunner,
    /// The organization runs `in_use` jobs on hosted runners, its `limit`.
    OrgQuota,
    /// At `position` of `of` in its organization's queue for these labels.
    QueuePosition,
}

/// One reason a job is not running yet: a sentence for people and the facts for programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitingReason {
    /// What it is about.
    pub kind: WaitingReasonKind,
    /// The reason as a sentence, e.g. `waiting on needs: setup`.
    pub message: String,
    /// `needs`: the job keys not ended yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// `concurrency_group`: the group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `concurrency_group`: the run holding the group, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by_run: Option<i64>,
    /// `max_parallel`: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// `runner`: the labels a runner must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `org_quota`: the organization's jobs running on hosted runners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<u64>,
    /// `queue_position`: the job's place in its organization's queue, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// `queue_position`: how many jobs wait in that queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
}

/// The body of `POST /api/v1/runs/{run}/rerun`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rerun {
    /// Re-run only the jobs that failed or were cancelled, and the jobs that depend on them
    /// (default false: every job).
    #[serde(default)]
    pub failed_only: bool,
}

/// The body of `POST /api/v1/runs/{run}/jobs/{job}/priority`: the job's new priority.
///
/// Higher goes first, but only among the queued jobs of the same run: across runs the fair
/// queue orders by organization, repository and run first, so a priority never lets one
/// tenant's job overtake another's. Waiting jobs age, so a low priority is never starved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetJobPriority {
    /// The new priority (0 is every job's default; negative values are allowed).
    pub priority: i32,
}

/// The body of `POST /api/v1/internal/runs/{run}/jobs/{job}/complete`: a job's result, as a
/// runner will report it once the runner protocol exists. A queued job is started first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteJob {
    /// `success`, `failure` or `cancelled` (`skipped` is the engine's to decide).
    pub conclusion: Conclusion,
    /// The job's outputs.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
}
