//! API version 1, served under `/api/v1`.
//!
//! Module map: `error` is the one error body, `tenants` organizations and repositories, `job`
//! what a runner receives for one job, `runs` triggering, reading, cancelling and re-running
//! runs and their jobs, `hooks` git sources, webhooks and
//! reported pushes, `runner` the runner protocol and job logs, `list` the
//! cursor-paginated list responses, `meta` the health answer.

mod error;
mod hooks;
pub mod job;
mod list;
mod meta;
mod runner;
mod runs;
mod tenants;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use hooks::{
    GITHUB_DELIVERY_HEADER, GITHUB_EVENT_HEADER, GITHUB_SIGNATURE_HEADER, HookOutcome,
    InvalidWorkflow, ReceivedPush, RefUpdate, RepositorySource, SetRepositorySource,
    SkippedWorkflow, TriggeredRun,
};
pub use job::{JobContexts, JobPayload, RunDefaults, StepPayload};
pub use list::{JobList, ListQuery, OrganizationList, RepositoryList, RunList, RunListQuery};
pub use meta::Health;
pub use runner::{
    ClaimJob, ClaimJobs, CompleteAttempt, CreateRegistrationToken, Heartbeat, HeartbeatAnswer,
    JobAssignment, JobAssignments, JobLog, JobLogLine, JobResult, JobResultOutcome,
    JobResultOutcomes, JobResults, LogChunk, LogChunkAccepted, LogLine, LogQuery, MAX_BATCH_JOBS,
    MAX_CLAIM_WAIT_MS, MAX_LOG_LINE_BYTES, MAX_LOG_LINES_PER_CHUNK, RUNNER_PROTOCOL_VERSION,
    RegisterRunner, RegistrationToken, Runner, RunnerList, RunnerRegistration, RunnerStatus,
    SourceQuery, StepReport, StepStatus,
};
pub use runs::{
    CompleteJob, Conclusion, Job, JobStatus, Rerun, Run, RunDetail, RunStatus, SetJobPriority,
    TriggerRun, WaitingReason, WaitingReasonKind,
};
pub use tenants::{CreateOrganization, CreateRepository, Organization, Repository};

/// The path prefix of this version.
pub const PREFIX: &str = "/api/v1";

/// The request header that makes a run submission idempotent: a second submission with the
/// same key for the same repository returns the first run instead of creating another.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// The default size limit of a request body, in bytes (the server's `--max-body-bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
