//! The runner protocol: how a runner registers, claims a job, keeps its lease, and reports
//! steps, log lines and the job's result.
//!
//! ```text
//! POST /runners/register            RegisterRunner      -> RunnerRegistration
//! POST /runner/claim                ClaimJob            -> 200 JobAssignment | 204 nothing yet
//! POST /runner/claims               ClaimJobs           -> JobAssignments (up to max_jobs)
//! POST /runner/jobs/{job}/heartbeat Heartbeat           -> HeartbeatAnswer
//! POST /runner/jobs/{job}/steps     StepReport          -> 204
//! POST /runner/jobs/{job}/logs      LogChunk            -> LogChunkAccepted
//! POST /runner/jobs/{job}/complete  CompleteAttempt     -> 204
//! POST /runner/results              JobResults          -> JobResultOutcomes
//! ```
//!
//! `claims` and `results` are the batch forms of `claim` and `complete`: a runner running
//! many jobs at once takes several in one request and reports several results in one, and
//! the server commits each run's share of a batch in one transaction.
//!
//! Every call after registration carries the runner's credential as `Authorization: Bearer
//! <credential>`; every call about a claimed job carries the attempt's fencing token. A token
//! that is no longer the job's latest (the lease expired and the job went to another runner,
//! or the job was re-run) is refused with `stale_token` (409) and changes nothing: the runner
//! must stop the job. Registration tokens and credentials are stored only as hashes.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::job::JobPayload;
use super::runs::Conclusion;

/// The runner protocol version this crate speaks; exchanged at registration.
pub const RUNNER_PROTOCOL_VERSION: u32 = 1;

/// The longest a claim may wait for a job, in milliseconds.
pub const MAX_CLAIM_WAIT_MS: u64 = 30_000;

/// The most jobs one batch claim may ask for, and the most results one batch may carry.
pub const MAX_BATCH_JOBS: u32 = 256;

/// The most log lines one chunk may carry.
pub const MAX_LOG_LINES_PER_CHUNK: usize = 1_000;

/// The longest log line, in bytes; a runner splits longer output.
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;

/// The body of `POST /api/v1/runners/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRunner {
    /// A registration token: the hosted pool's, or one an organization made for its
    /// self-hosted runners.
    pub token: String,
    /// A name for people, e.g. the host name (at most 100 characters).
    pub name: String,
    /// The runner's labels (`ubuntu-latest`, `linux`, `x64`, `gpu`, ...); `runs-on` must be a
    /// subset of them. Compared case-insensitively.
    pub labels: Vec<String>,
    /// How many jobs it runs at once (default 1).
    #[serde(default = "one")]
    pub capacity: u32,
    /// Whether it exits after one job (it is then removed when that job ends).
    #[serde(default)]
    pub ephemeral: bool,
    /// The protocol version the runner speaks ([`RUNNER_PROTOCOL_VERSION`]).
    pub protocol_version: u32,
}

fn one() -> u32 {
    1
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerRegistration {
    /// The runner's id.
    pub runner_id: i64,
    /// The secret the runner sends as `Authorization: Bearer <credential>` from now on. The
    /// server keeps only its hash: it cannot be shown again.
    pub credential: String,
    /// The protocol version both sides speak.
    pub protocol_version: u32,
    /// The organization whose self-hosted runner this is; absent for the hosted pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The labels the server matches jobs against (normalized; self-hosted runners also get
    /// `self-hosted`).
    pub labels: Vec<String>,
    /// Its runner group, from the registration token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// How often to heartbeat a claimed job, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// How long a lease lasts without a heartbeat, in milliseconds.
    pub lease_ms: u64,
}

/// The body of `POST /api/v1/orgs/{org}/runner-tokens`: a registration token for the
/// organization's self-hosted runners.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegistrationToken {
    /// How long the token stays valid, in seconds (default one hour, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    /// The runner group its runners join: they take only jobs that name this group
    /// (`runs-on: {group: NAME}`), and such jobs go only to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The only repositories of the organization its runners serve (names, as in `app`);
    /// absent for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

/// A new registration token. Only its hash is stored: it cannot be shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationToken {
    /// The token, for `gantry runner --token`.
    pub token: String,
    /// The organization its runners serve.
    pub org: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The runner group its runners join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The only repositories its runners serve; absent for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

/// The body of `POST /api/v1/runner/claim`: the runner asks for a job and waits up to
/// `wait_ms` for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimJob {
    /// How long to wait for a job, in milliseconds (default 0: answer at once; at most
    /// [`MAX_CLAIM_WAIT_MS`]).
    #[serde(default)]
    pub wait_ms: u64,
}

/// The body of `POST /api/v1/runner/claims`: the runner asks for up to `max_jobs` jobs (no
/// more than its free capacity is handed out) and waits up to `wait_ms` for the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimJobs {
    /// How long to wait for a job, in milliseconds (default 0: answer at once; at most
    /// [`MAX_CLAIM_WAIT_MS`]).
    #[serde(default)]
    pub wait_ms: u64,
    /// The most jobs to hand out: 1 to [`MAX_BATCH_JOBS`].
    pub max_jobs: u32,
}

/// The answer to `POST /api/v1/runner/claims`: the jobs claimed, none if nothing came within
/// `wait_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobAssignments {
    /// The jobs, each leased to the runner as a single claim's would be.
    pub jobs: Vec<JobAssignment>,
}

/// A job handed to a runner by a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobAssignment {
    /// The job's id.
    pub job_id: i64,
    /// Its run's id.
    pub run_id: i64,
    /// The dispatch attempt this claim started.
    pub attempt: u32,
    /// The token every later call about this job must carry.
    pub fencing_token: i64,
    /// How often to heartbeat, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// How long the lease lasts without a heartbeat, in milliseconds.
    pub lease_ms: u64,
    /// What to run.
    pub payload: JobPayload,
}

/// The body of `POST /api/v1/runner/jobs/{job}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The claim's fencing token.
    pub fencing_token: i64,
}

/// The query of `GET /api/v1/runner/jobs/{job}/source`: the run's commit as a tar archive,
/// for `actions/checkout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SourceQuery {
    /// The claim's fencing token.
    pub fencing_token: i64,
    /// `org/repo` asked for (`with: repository:`); only the run's own repository is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAnswer {
    /// The job was cancelled: stop it (SIGTERM, grace, SIGKILL), run only the steps that run
    /// after a cancel, and report the result.
    pub cancel_requested: bool,
    /// The lease now lasts this long, in milliseconds.
    pub lease_ms: u64,
}

/// Where a step is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It started.
    InProgress,
    /// It ended; `conclusion` says how.
    Completed,
}

/// The body of `POST /api/v1/runner/jobs/{job}/steps`: a step started or ended. Reports of
/// one step must come in order (started, then completed); a repeated report is accepted and
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The claim's fencing token.
    pub fencing_token: i64,
    /// The step's position in the job's `steps` (0-based).
    pub index: u32,
    /// The display name.
    pub name: String,
    /// Started or ended.
    pub status: StepStatus,
    /// When ended: `steps.<id>.conclusion` (after `continue-on-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    /// When ended: `steps.<id>.outcome` (before `continue-on-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Conclusion>,
    /// Why it failed, when the runner knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it started or ended.
    pub time: DateTime<Utc>,
}

/// One line of a step's output, as the runner sends it (already masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    /// The step's index.
    pub step: u32,
    /// The line's number within its step, from 1.
    pub number: u64,
    /// When the runner read it.
    pub time: DateTime<Utc>,
    /// The text, without the line break (at most [`MAX_LOG_LINE_BYTES`]).
    pub text: String,
}

/// The body of `POST /api/v1/runner/jobs/{job}/logs`: the next lines of the attempt's log.
///
/// `offset` is how many lines of this attempt the runner sent before this chunk. A chunk the
/// server already has (a retry after a lost answer) is accepted again and stored once; a
/// chunk that would leave a gap is refused, so the stored log never has holes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogChunk {
    /// The claim's fencing token.
    pub fencing_token: i64,
    /// The attempt-wide position of the first line (0-based).
    pub offset: u64,
    /// The lines, in order (at most [`MAX_LOG_LINES_PER_CHUNK`]).
    pub lines: Vec<LogLine>,
}

/// The answer to a log chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogChunkAccepted {
    /// How many lines of the attempt the server now has: the next chunk's `offset`.
    pub stored: u64,
}

/// The body of `POST /api/v1/runner/jobs/{job}/complete`: the attempt's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteAttempt {
    /// The claim's fencing token.
    pub fencing_token: i64,
    /// `success`, `failure` or `cancelled`.
    pub conclusion: Conclusion,
    /// The job's outputs.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
    /// Why the job failed as a whole, when no step says (a job timeout, a sandbox failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The body of `POST /api/v1/runner/results`: several attempts' results at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResults {
    /// 1 to [`MAX_BATCH_JOBS`] results, at most one per job.
    pub results: Vec<JobResult>,
}

/// One attempt's result in a [`JobResults`] batch: a job id and the fields of
/// [`CompleteAttempt`], written out because serde cannot refuse unknown fields of a flattened
/// struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    /// The job.
    pub job_id: i64,
    /// The claim's fencing token.
    pub fencing_token: i64,
    /// `success`, `failure` or `cancelled`.
    pub conclusion: Conclusion,
    /// The job's outputs.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
    /// Why the job failed as a whole, when no step says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl JobResult {
    /// The result as `POST /runner/jobs/{job}/complete` takes it.
    pub fn into_attempt(self) -> CompleteAttempt {
        CompleteAttempt {
            fencing_token: self.fencing_token,
            conclusion: self.conclusion,
            outputs: self.outputs,
            message: self.message,
        }
    }
}

/// The answer to `POST /api/v1/runner/results`: one outcome per result, in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResultOutcomes {
    /// The outcomes.
    pub outcomes: Vec<JobResultOutcome>,
}

/// Whether one result of a batch was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResultOutcome {
    /// The job.
    pub job_id: i64,
    /// Why the result was refused (what `POST /runner/jobs/{job}/complete` would have
    /// answered: `stale_token` means the runner lost the job); absent when it was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<super::ApiError>,
}

/// A stored log line, as viewers read it (`GET .../logs` and the SSE stream, where `seq` is
/// the event id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobLogLine {
    /// The line's position in the job's log, from 0, across attempts: the SSE event id.
    pub seq: u64,
    /// The attempt that wrote it.
    pub attempt: u32,
    /// The step's index.
    pub step: u32,
    /// The line's number within its step, from 1.
    pub number: u64,
    /// When the runner read it.
    pub time: DateTime<Utc>,
    /// The text.
    pub text: String,
}

/// `GET /api/v1/runs/{run}/jobs/{job}/logs?after=SEQ&limit=N`: a page of the job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobLog {
    /// The lines, by `seq`.
    pub lines: Vec<JobLogLine>,
    /// Whether the job has ended, so no line will follow the last one.
    pub complete: bool,
}

/// The query of `GET /api/v1/runs/{run}/jobs/{job}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only lines with a larger `seq` (default: from the first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// At most this many lines (default and largest 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Whether a runner is talking to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunnerStatus {
    /// It called the server within the last lease.
    Online,
    /// It has not been heard of for longer than a lease.
    Offline,
}

/// A registered runner, as `GET /api/v1/runners` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Runner {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The organization of a self-hosted runner; absent for the hosted pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Its labels.
    pub labels: Vec<String>,
    /// Its runner group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The only repositories it serves; absent for all of its organization's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
    /// How many jobs it runs at once.
    pub capacity: u32,
    /// Whether it exits after one job.
    pub ephemeral: bool,
    /// Online or offline.
    pub status: RunnerStatus,
    /// The jobs it holds now.
    pub jobs: Vec<i64>,
    /// When it last called the server.
    pub last_seen_at: DateTime<Utc>,
}

/// `GET /api/v1/runners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerList {
    /// Every registered runner, by id.
    pub runners: Vec<Runner>,
}
