//! What the server must do after an event: the outputs of [`crate::apply`].

use serde::{Deserialize, Serialize};

use gantry_workflow::matrix::Combination;

use crate::event::TimerKind;
use crate::ids::{Attempt, JobKey, Millis};
use crate::state::RunState;
use crate::status::Conclusion;

/// The new state of a run and what to do about it. The server stores the state and carries out
/// the effects in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The run after the event.
    pub state: RunState,
    /// What to do, in order.
    pub effects: Vec<Effect>,
}

/// One thing to do outside the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Put the instance in the dispatcher's queue.
    QueueJob(JobOrder),
    /// Ask the runner running this attempt to stop.
    CancelJob {
        /// The instance.
        job: JobKey,
        /// The attempt to stop.
        attempt: Attempt,
    },
    /// Send [`crate::Event::TimerFired`] with `kind` once `at` has come.
    SetTimer {
        /// When.
        at: Millis,
        /// Which timer.
        kind: TimerKind,
    },
    /// Ask the repository's [`crate::ConcurrencyGroups`] for a group.
    AcquireConcurrency {
        /// The group name as evaluated.
        group: String,
        /// The instance asking, or `None` for the run's workflow-level group.
        job: Option<JobKey>,
        /// Whether the group's running holder is to be cancelled.
        cancel_in_progress: bool,
    },
    /// Give a group back, or withdraw a pending request for it.
    ReleaseConcurrency {
        /// The group name as evaluated.
        group: String,
        /// The instance, or `None` for the run's workflow-level group.
        job: Option<JobKey>,
    },
    /// An instance has ended (for notifications and check runs); emitted once per instance and
    /// run attempt.
    JobEnded {
        /// The instance.
        job: JobKey,
        /// How it ended.
        conclusion: Conclusion,
    },
    /// Every job has ended.
    RunCompleted(Conclusion),
}

/// What the dispatcher needs to hand an instance to a runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOrder {
    /// The instance.
    pub job: JobKey,
    /// The attempt; the runner's reports must carry it.
    pub attempt: Attempt,
    /// The display name, e.g. `build (ubuntu, 1.2)`.
    pub name: String,
    /// The evaluated `runs-on` labels.
    pub labels: Vec<String>,
    /// `runs-on.group`, when set.
    pub runner_group: Option<String>,
    /// `timeout-minutes` as a duration.
    pub timeout: Millis,
    /// The job's `continue-on-error`.
    pub continue_on_error: bool,
    /// The instance's `matrix` context, for a matrix job.
    pub matrix: Option<Combination>,
}
