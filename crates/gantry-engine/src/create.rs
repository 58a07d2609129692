//! Creating a run: compile the workflow, plan each job's instances, then queue the jobs that
//! wait on nothing (or ask for the workflow-level concurrency group first).

use std::sync::Arc;

use gantry_workflow::Workflow;
use gantry_workflow::contexts::Site;
use gantry_workflow::reusable::WorkflowSource;

use crate::config::EngineConfig;
use crate::effect::Decision;
use crate::error::EngineError;
use crate::ids::{Attempt, Millis, RunAttempt, RunId};
use crate::machine::Machine;
use crate::setup;
use crate::spec::{self, TriggerContexts};
use crate::state::{JobPhase, JobState, RunState, StrategyState};
use crate::status::RunStatus;

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct NewRun<'w> {
    /// The id the server gave the run.
    pub id: RunId,
    /// The loaded workflow.
    pub workflow: &'w Workflow,
    /// The `github`, `inputs` and `vars` contexts of the trigger.
    pub trigger: TriggerContexts,
    /// Retries, timeouts and limits.
    pub config: EngineConfig,
}

/// Creates a run at `now`: one instance per matrix combination (matrices that read `needs`
/// wait as one placeholder until their needs end), jobs without `needs` queued at once, the
/// others waiting on their needs. A job calling a reusable workflow fails when it starts;
/// [`create_run_with_calls`] gives the run the called workflows.
pub fn create_run(new: NewRun<'_>, now: Millis) -> Result<Decision, EngineError> {
    create_run_with_calls(new, &crate::call::NoCalledWorkflows, now)
}

/// [`create_run`] for a workflow whose jobs call reusable workflows: `called` answers each
/// `uses:` text (nested calls included) with the loaded called workflow, whose jobs become jobs
/// of the run, named `caller / job`, that wait for their caller to start.
pub fn create_run_with_calls(
    new: NewRun<'_>,
    called: &dyn WorkflowSource,
    now: Millis,
) -> Result<Decision, EngineError> {
    let spec = spec::compile(new.workflow, called, new.trigger, &new.config)?;
    let contexts = spec.base_contexts(1);
    let concurrency = match &spec.concurrency {
        Some(concurrency) => setup::group_claim(concurrency, Site::WorkflowConcurrency, &contexts)
            .map_err(EngineError::InvalidConcurrency)?,
        None => None,
    };
    let jobs = spec
        .jobs
        .iter()
        .map(|job| {
            let (instances, matrix_pending) =
                setup::initial_instances(job, &contexts, Attempt::FIRST);
            JobState {
                id: job.id.clone(),
                phase: JobPhase::Waiting,
                result: None,
                outputs: Default::default(),
                waiting_on: spec.initial_waiting_on(job, |_| true),
                message: None,
                matrix_pending,
                strategy: StrategyState::default(),
                active: 0,
                unfinished: instances.len(),
                next_release: 0,
                instances,
            }
        })
        .collect::<Vec<_>>();
    let mut state = RunState {
        id: new.id,
        attempt: RunAttempt(1),
        status: RunStatus::Queued,
        conclusion: None,
        created_at: now,
        started_at: None,
        completed_at: None,
        cancel_requested: false,
        concurrency,
        unended: jobs.len(),
        jobs: jobs.into_iter().collect(),
        config: new.config,
        spec: Arc::new(spec),
    };
    let mut machine = Machine::new(&mut state, now);
    machine.begin_attempt();
    let effects = machine.finish();
    Ok(Decision { state, effects })
}
