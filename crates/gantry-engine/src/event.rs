//! What can happen to a run: the inputs of [`crate::apply`].

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::ids::{Attempt, JobKey, RunId};
use crate::status::Conclusion;

/// Something that happened to a run. Events that name a job carry the attempt they are about;
/// an event for another attempt, an ended job or an unknown job is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A runner has claimed the instance and started it.
    JobStarted {
        /// The instance.
        job: JobKey,
        /// The attempt the runner was given.
        attempt: Attempt,
    },
    /// The runner reports the instance's result and its evaluated `outputs:`.
    JobCompleted {
        /// The instance.
        job: JobKey,
        /// The attempt the runner was given.
        attempt: Attempt,
        /// `success`, `failure` or `cancelled` (a runner cannot report `skipped`).
        conclusion: Conclusion,
        /// The job's outputs.
        outputs: IndexMap<String, String>,
    },
    /// The runner running the instance is gone (its lease expired): an infrastructure failure.
    JobLost {
        /// The instance.
        job: JobKey,
        /// The attempt that was lost.
        attempt: Attempt,
    },
    /// Someone asked to cancel the whole run (`job: None`) or one instance.
    CancelRequested {
        /// The instance, or `None` for the run.
        job: Option<JobKey>,
    },
    /// A timer set with [`crate::Effect::SetTimer`] is due.
    TimerFired {
        /// Which timer.
        kind: TimerKind,
    },
    /// Start a new run attempt: every job, or only failed and cancelled ones plus their
    /// dependents. Allowed only once the run has completed.
    RerunRequested {
        /// Re-run only what failed or was cancelled, and what depends on it.
        failed_only: bool,
    },
    /// The concurrency group the run (`job: None`) or an instance asked for is now its own.
    ConcurrencyGranted {
        /// The instance, or `None` for the run's workflow-level group.
        job: Option<JobKey>,
    },
    /// The concurrency group is held by another run; the request is pending.
    ConcurrencyWaiting {
        /// The instance, or `None` for the run's workflow-level group.
        job: Option<JobKey>,
        /// The run holding the group.
        held_by: RunId,
    },
    /// A newer request took this pending request's place in its concurrency group.
    Superseded {
        /// The instance, or `None` for the run's workflow-level group.
        job: Option<JobKey>,
        /// The run that took the place.
        by: RunId,
    },
}

/// A deadline the engine asked to be told about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum TimerKind {
    /// The instance has been queued for [`crate::EngineConfig::queue_timeout`].
    QueueTimeout {
        /// The instance.
        job: JobKey,
        /// The attempt that was queued.
        attempt: Attempt,
    },
    /// The instance has been running for its `timeout-minutes`.
    JobTimeout {
        /// The instance.
        job: JobKey,
        /// The attempt that started.
        attempt: Attempt,
    },
    /// The runner was asked to cancel [`crate::EngineConfig::cancel_grace`] ago.
    CancelGrace {
        /// The instance.
        job: JobKey,
        /// The attempt asked to cancel.
        attempt: Attempt,
    },
}

impl TimerKind {
    /// The instance the timer is about.
    pub fn job(&self) -> &JobKey {
        match self {
            TimerKind::QueueTimeout { job, .. }
            | TimerKind::JobTimeout { job, .. }
            | TimerKind::CancelGrace { job, .. } => job,
        }
    }

    /// The attempt the timer is about.
    pub fn attempt(&self) -> Attempt {
        match self {
            TimerKind::QueueTimeout { attempt, .. }
            | TimerKind::JobTimeout { attempt, .. }
            | TimerKind::CancelGrace { attempt, .. } => *attempt,
        }
    }
}
