//! Why the engine refused to create a run or to apply an event.

use crate::ids::{Attempt, JobKey, Millis};
use crate::status::JobStatus;

/// A refused request. A refused event changes nothing: the server answers it with an error
/// (a stale runner report, a double cancel of an ended job) and moves on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The workflow cannot become a run (no jobs, unknown needs, a cycle).
    #[error("invalid workflow: {0}")]
    InvalidWorkflow(String),
    /// The workflow-level `concurrency` group could not be evaluated.
    #[error("invalid concurrency group: {0}")]
    InvalidConcurrency(String),
    /// The event names an instance the run does not have.
    #[error("unknown job `{0}`")]
    UnknownJob(JobKey),
    /// The event is about another attempt of the instance.
    #[error("job `{job}` is at attempt {current}, not {got}")]
    StaleAttempt {
        /// The instance.
        job: JobKey,
        /// Its current attempt.
        current: Attempt,
        /// The attempt the event named.
        got: Attempt,
    },
    /// The instance is not in a status where the event makes sense.
    #[error("job `{job}` is {status}, so it cannot be {action}")]
    WrongStatus {
        /// The instance.
        job: JobKey,
        /// Its status.
        status: JobStatus,
        /// What the event wanted, as a past participle (`started`, `completed`, ...).
        action: &'static str,
    },
    /// A runner reported `skipped`, which only the engine decides.
    #[error("a runner cannot report the conclusion `skipped`")]
    InvalidConclusion,
    /// The event needs a run that has not completed.
    #[error("the run has already completed")]
    RunCompleted,
    /// Re-runs are only possible once the run has completed.
    #[error("the run has not completed, so it cannot be re-run")]
    RunNotCompleted,
    /// `failed_only` re-run of a run where nothing failed or was cancelled.
    #[error("no job failed or was cancelled, so there is nothing to re-run")]
    NothingToRerun,
    /// A timer fired before its deadline.
    #[error("timer fired early: it is due at {} ms", due.0)]
    TimerNotDue {
        /// When it is due.
        due: Millis,
    },
    /// A concurrency answer that does not match a pending request.
    #[error("unexpected concurrency answer: {0}")]
    UnexpectedConcurrency(String),
}
