//! The run engine: GitHub Actions' run and job state machine as a pure function.
//!
//! A run is created from a loaded workflow and its trigger's contexts ([`create_run`]); from
//! then on every change is an [`Event`] applied at a time `now` ([`apply`]), which returns the
//! new [`RunState`] and the [`Effect`]s the server must carry out (queue a job, ask a runner to
//! cancel, set a timer, take or give back a concurrency group, report the run's conclusion).
//! The server stores the state and carries out the effects in one transaction.
//!
//! The engine does no IO: no clock (time is an argument), no randomness, no storage. The same
//! state, event and time always give the same decision, which is what lets the server replay
//! and the tests explore random runs.
//!
//! ```
//! use gantry_engine::{
//!     Attempt, Conclusion, Effect, EngineConfig, Event, JobKey, Millis, NewRun, RunId,
//!     TriggerContexts, apply, create_run,
//! };
//!
//! let source = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n";
//! let workflow = gantry_workflow::load(source, &Default::default())?;
//! let new = NewRun {
//!     id: RunId(1),
//!     workflow: &workflow,
//!     trigger: TriggerContexts::default(),
//!     config: EngineConfig::default(),
//! };
//! let created = create_run(new, Millis(0))?;
//! assert!(matches!(&created.effects[0], Effect::QueueJob(order) if order.labels == ["ubuntu-latest"]));
//!
//! let build = JobKey::single("build");
//! let started = Event::JobStarted { job: build.clone(), attempt: Attempt(1) };
//! let running = apply(&created.state, &started, Millis(5))?;
//! let completed = Event::JobCompleted {
//!     job: build,
//!     attempt: Attempt(1),
//!     conclusion: Conclusion::Success,
//!     outputs: Default::default(),
//! };
//! let done = apply(&running.state, &completed, Millis(9))?;
//! assert_eq!(done.state.conclusion, Some(Conclusion::Success));
//! assert!(done.effects.contains(&Effect::RunCompleted(Conclusion::Success)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Module map: `create` builds a run, `call` holds what a run keeps of a reusable-workflow
//! call (inputs, secrets, outputs) whose called jobs `spec` adds to the run, `machine` applies events (`events`, `cancel`, `rerun`),
//! `setup` and `eval` evaluate the workflow's expressions with the contexts of each place,
//! `spec` is the compiled workflow a run carries, `payload` what a runner receives for a job,
//! `state` the run's data (`job_states` its jobs, shared between copies until changed),
//! `stored` how it is stored (the spec apart, the run's fields apart from its jobs), `concurrency` the cross-run group bookkeeping, `dispatch` the
//! dispatcher's fair job queue (which job a runner gets, per-organization limits, why a job
//! waits) and its figures (`dispatch::simulate`).

mod call;
mod concurrency;
mod config;
mod create;
pub mod dispatch;
mod effect;
mod error;
mod eval;
mod event;
mod ids;
mod job_states;
mod machine;
mod payload;
mod reason;
mod setup;
mod spec;
mod state;
mod status;
mod stored;
mod stored_starts;
mod trigger_json;

pub use call::{CallInput, CallInputKind, CallSecrets, CallSpec};
pub use concurrency::{ConcurrencyGroups, Delivery, Group, Holder};
pub use config::EngineConfig;
pub use create::{NewRun, create_run, create_run_with_calls};
pub use effect::{Decision, Effect, JobOrder};
pub use error::EngineError;
pub use event::{Event, TimerKind};
pub use ids::{Attempt, JobKey, Millis, RunAttempt, RunId};
pub use job_states::JobStates;
pub use payload::{PayloadError, job_payload, job_payload_with_calls};
pub use reason::WaitReason;
pub use spec::{
    ConcurrencySpec, DeferredMatrix, JobSpec, MAX_CALL_DEPTH, MatrixSource, ParentRef,
    PlannedCombination, RunSpec, Setting, TriggerContexts,
};
pub use state::{
    ClaimState, GroupClaim, InstanceSetup, JobInstance, JobPhase, JobState, RunState, StrategyState,
};
pub use status::{Conclusion, JobStatus, RunStatus};
pub use stored::{RunFields, StoredStateError};
pub use stored_starts::changed_only_by_starts;

/// Applies `event` to `state` at `now`: the new state and what to do. A refused event (stale
/// attempt, ended or unknown job, early timer, ...) is an error and `state` is not changed.
pub fn apply(state: &RunState, event: &Event, now: Millis) -> Result<Decision, EngineError> {
    let mut next = state.clone();
    let effects = next.handle(event, now)?;
    Ok(Decision {
        state: next,
        effects,
    })
}

impl RunState {
    /// [`apply`] in place, for callers that own the state: no copy of the run is made, so an
    /// event costs time in proportion to the jobs it touches. On error the state is unchanged.
    pub fn handle(&mut self, event: &Event, now: Millis) -> Result<Vec<Effect>, EngineError> {
        let mut machine = machine::Machine::new(self, now);
        machine.handle(event)?;
        Ok(machine.finish())
    }
}
