//! Why the queue refused a request. A refused request changes nothing.

use super::model::{OrgRef, QueuedJobRef, RepoRef, RunRef};

/// A refused queue operation; the queue is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The job is already in the queue (queued or running).
    #[error("job {0} is already in the queue")]
    DuplicateJob(QueuedJobRef),
    /// The queue does not know the job.
    #[error("unknown job {0}")]
    UnknownJob(QueuedJobRef),
    /// The operation needs a running job and this one waits.
    #[error("job {0} is not running")]
    NotRunning(QueuedJobRef),
    /// The operation needs a waiting job and this one runs.
    #[error("job {0} is not queued")]
    NotQueued(QueuedJobRef),
    /// A repository was named under two organizations.
    #[error("repository {repo} belongs to organization {known}, not {got}")]
    RepoInOtherOrg {
        /// The repository.
        repo: RepoRef,
        /// The organization the queue knows it under.
        known: OrgRef,
        /// The organization the request named.
        got: OrgRef,
    },
    /// A run was named under two repositories.
    #[error("run {run} belongs to repository {known}, not {got}")]
    RunInOtherRepo {
        /// The run.
        run: RunRef,
        /// The repository the queue knows it under.
        known: RepoRef,
        /// The repository the request named.
        got: RepoRef,
    },
    /// An organization weight outside 1 ..= 65,535.
    #[error("organization {org} weight {weight} is outside 1..=65535")]
    InvalidWeight {
        /// The organization.
        org: OrgRef,
        /// The refused weight.
        weight: u32,
    },
}
