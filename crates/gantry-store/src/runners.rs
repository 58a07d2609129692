//! The records of the runner side: registration tokens, runners, step reports and job logs.
//!
//! Secrets never reach the store: tokens and runner credentials arrive already hashed, so a
//! copy of the database lets nobody register or impersonate a runner.

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, OrgId, RepoId, RunnerId};
use crate::model::FencingToken;

/// A registration token to keep (by its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRegistrationToken {
    /// The token's hash (hex SHA-256).
    pub token_hash: String,
    /// The organization whose self-hosted runners it registers; `None` for the hosted pool.
    pub org_id: Option<OrgId>,
    /// When it was made.
    pub created_at_ms: i64,
    /// When it stops being accepted; `None` never.
    pub expires_at_ms: Option<i64>,
    /// The runner group its runners join (organization tokens only).
    pub runner_group: Option<String>,
    /// The only repositories its runners serve; `None` for all of the organization's.
    pub repo_ids: Option<Vec<RepoId>>,
}

/// A runner to register with a registration token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRunner {
    /// The hash of the registration token it presented.
    pub token_hash: String,
    /// Its name.
    pub name: String,
    /// Its labels, normalized.
    pub labels: Vec<String>,
    /// How many jobs it runs at once (at least 1).
    pub capacity: i64,
    /// Whether it exits after one job.
    pub ephemeral: bool,
    /// The hash of the credential it was given.
    pub credential_hash: String,
    /// Now: tokens that expired before it are refused.
    pub now_ms: i64,
}

/// A registered runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRecord {
    /// Its id.
    pub id: RunnerId,
    /// The organization of a self-hosted runner; `None` for the hosted pool.
    pub org_id: Option<OrgId>,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: Vec<String>,
    /// How many jobs it runs at once.
    pub capacity: i64,
    /// Whether it exits after one job.
    pub ephemeral: bool,
    /// The hash of its credential.
    pub credential_hash: String,
    /// When it registered.
    pub registered_at_ms: i64,
    /// When it was removed (an ephemeral runner after its job); removed runners are refused.
    pub removed_at_ms: Option<i64>,
    /// Its runner group, from its registration token.
    pub runner_group: Option<String>,
    /// The only repositories it serves, from its registration token; `None` for all.
    pub repo_ids: Option<Vec<RepoId>>,
}

/// One line of a step's output as a runner sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLogLine {
    /// The step's index.
    pub step_index: i64,
    /// The line's number within its step, from 1.
    pub line_number: i64,
    /// When the runner read it.
    pub time_ms: i64,
    /// The text.
    pub text: String,
}

/// The next lines of an attempt's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAppend {
    /// The job.
    pub job_id: JobId,
    /// The token of the claim writing them: only the job's latest, on an attempt that has not
    /// ended, may write.
    pub fencing_token: FencingToken,
    /// How many lines of the attempt the runner sent before these.
    pub offset: i64,
    /// The lines.
    pub lines: Vec<NewLogLine>,
}

/// A stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLineRecord {
    /// The line's position in the job's log, from 0, across attempts.
    pub seq: i64,
    /// The attempt that wrote it.
    pub attempt: i64,
    /// The step's index.
    pub step_index: i64,
    /// The line's number within its step.
    pub line_number: i64,
    /// When the runner read it.
    pub time_ms: i64,
    /// The text.
    pub text: String,
}

/// What a step report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepReported {
    /// It was stored.
    Stored,
    /// The same report was already stored; nothing changed.
    Duplicate,
}
