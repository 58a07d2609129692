//! The state of a run: its jobs, their instances (one per matrix combination), timings,
//! outputs and the reasons they wait. Everything here is plain data that serializes to JSON.
//!
//! Fields at their default (`None`, `false`, empty) are left out of the JSON and come back as
//! defaults, and the compiled workflow is left out altogether (it is stored once, see
//! `stored`): the server rewrites a run's whole state on every event, so its size is latency
//! (a 400-job chain's state went from 355 KB to 138 KB, most of which was the spec).

use std::sync::Arc;

use gantry_expr::Value;
use gantry_workflow::matrix::Combination;
use indexmap::{IndexMap, IndexSet};
use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::ids::{Attempt, JobKey, Millis, RunAttempt, RunId};
use crate::job_states::JobStates;
use crate::reason::WaitReason;
use crate::spec::RunSpec;
use crate::status::{Conclusion, JobStatus, RunStatus};

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The run.
    pub id: RunId,
    /// The run attempt (1, then one more per re-run).
    pub attempt: RunAttempt,
    /// Queued, in progress or completed.
    pub status: RunStatus,
    /// How it ended, once completed.
    pub conclusion: Option<Conclusion>,
    /// When the run was created.
    pub created_at: Millis,
    /// When the first job of this attempt started.
    pub started_at: Option<Millis>,
    /// When the last job of this attempt ended.
    pub completed_at: Option<Millis>,
    /// Whether a cancel of the whole run was requested in this attempt.
    pub cancel_requested: bool,
    /// The workflow-level concurrency group, when the workflow has one.
    pub concurrency: Option<GroupClaim>,
    /// The jobs, in file order (shared with copies of the run until changed).
    pub jobs: JobStates,
    /// The settings the run was created with.
    pub config: EngineConfig,
    /// The compiled workflow, shared by every state of the run. Never written with the
    /// state: it does not change during a run, so it is stored once when the run is created
    /// and given back when a state is read ([`RunState::from_stored`]).
    #[serde(skip_serializing)]
    pub spec: Arc<RunSpec>,
    /// Jobs not ended yet: a count of what `jobs` shows, kept so that no event has to
    /// count. Not stored (a completion would then change the run's own fields and rewrite
    /// them); [`RunState::from_stored`] counts it again.
    #[serde(skip)]
    pub(crate) unended: usize,
}

/// Where a job (all its instances together) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Its needs have not all ended, so its `if:` has not been evaluated.
    Waiting,
    /// Its `if:` was evaluated; its instances are on their way.
    Decided,
    /// Every instance has ended; the job has a result.
    Ended,
}

/// One job of the workflow and its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// The job id.
    pub id: String,
    /// Waiting, decided or ended.
    pub phase: JobPhase,
    /// The result `needs.<id>.result` reads once ended: instances combined, continue-on-error
    /// failures counting as success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Conclusion>,
    /// `needs.<id>.outputs`: the outputs of the instances in the order they completed, a later
    /// value replacing an earlier one of the same name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, String>,
    /// The needs that have not ended, in `needs` order.
    pub waiting_on: IndexSet<String>,
    /// Why the job failed as a whole (an `if:` or matrix that could not be evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the instances are a placeholder for a matrix expanded once the needs end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub matrix_pending: bool,
    /// `strategy.fail-fast` and `max-parallel`, evaluated when the job is decided.
    pub strategy: StrategyState,
    /// The instances, by matrix index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<JobInstance>,
    /// Instances released past `max-parallel` and not completed.
    pub(crate) active: usize,
    /// Instances not completed.
    pub(crate) unfinished: usize,
    /// The first instance not yet released past `max-parallel`.
    pub(crate) next_release: usize,
}

/// A job's evaluated `strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyState {
    /// `fail-fast` (default true).
    pub fail_fast: bool,
    /// `max-parallel`, when set.
    pub max_parallel: Option<usize>,
}

impl Default for StrategyState {
    fn default() -> StrategyState {
        StrategyState {
            fail_fast: true,
            max_parallel: None,
        }
    }
}

/// One instance of a job: one matrix combination, or the job itself without a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstance {
    /// The instance.
    pub key: JobKey,
    /// The display name, e.g. `build (ubuntu, 1.2)`.
    pub name: String,
    /// The `matrix` context, for a matrix job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Combination>,
    /// Waiting, queued, in progress or completed.
    pub status: JobStatus,
    /// How it ended, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    /// The current dispatch attempt.
    pub attempt: Attempt,
    /// How many times its runner was lost in this run attempt.
    pub runner_lost: u32,
    /// When it was last queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<Millis>,
    /// When the current attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Millis>,
    /// When the runner was asked to cancel the current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<Millis>,
    /// The outputs the runner reported.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, String>,
    /// Why it is waiting or queued, beyond its job's needs (see [`RunState::wait_reasons`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<WaitReason>,
    /// Why it ended the way it did, when the runner did not say (`runner lost`, a timeout,
    /// `superseded by run 7`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What it runs with, evaluated when the job is decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<InstanceSetup>,
    /// The job-level concurrency group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<GroupClaim>,
    /// For an instance of a job calling a reusable workflow, once the call has started: the
    /// called workflow's `inputs` context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_inputs: Option<Value>,
    /// Whether it has been released past `max-parallel`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) released: bool,
}

/// The evaluated settings of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSetup {
    /// `runs-on` labels.
    pub labels: Vec<String>,
    /// `runs-on.group`.
    pub runner_group: Option<String>,
    /// `timeout-minutes`.
    pub timeout: Millis,
    /// `continue-on-error`.
    pub continue_on_error: bool,
}

/// A run's or an instance's place in a concurrency group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupClaim {
    /// The group name as evaluated.
    pub group: String,
    /// Whether the group's running holder is cancelled when we ask.
    pub cancel_in_progress: bool,
    /// Where the claim is.
    pub state: ClaimState,
}

/// Where a [`GroupClaim`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "claim", rename_all = "snake_case")]
pub enum ClaimState {
    /// Not asked for yet.
    Unrequested,
    /// Asked for; pending.
    Requested {
        /// The run holding the group, once known.
        held_by: Option<RunId>,
    },
    /// Ours.
    Granted,
    /// Given back, withdrawn or lost to a newer request.
    Released,
}

impl GroupClaim {
    /// A claim on `group`, not asked for yet.
    pub(crate) fn new(group: String, cancel_in_progress: bool) -> GroupClaim {
        GroupClaim {
            group,
            cancel_in_progress,
            state: ClaimState::Unrequested,
        }
    }

    /// Whether the group bookkeeping knows about this claim (pending or held).
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            ClaimState::Requested { .. } | ClaimState::Granted
        )
    }

    /// The wait reason while pending.
    pub(crate) fn reason(&self) -> Option<WaitReason> {
        match self.state {
            ClaimState::Requested { held_by } => Some(WaitReason::ConcurrencyGroup {
                group: self.group.clone(),
                held_by,
            }),
            _ => None,
        }
    }
}

impl JobInstance {
    /// A new instance, waiting.
    pub(crate) fn new(
        key: JobKey,
        name: String,
        matrix: Option<Combination>,
        attempt: Attempt,
    ) -> JobInstance {
        JobInstance {
            key,
            name,
            matrix,
            status: JobStatus::Waiting,
            conclusion: None,
            attempt,
            runner_lost: 0,
            queued_at: None,
            started_at: None,
            completed_at: None,
            cancel_requested_at: None,
            outputs: IndexMap::new(),
            reasons: Vec::new(),
            message: None,
            setup: None,
            concurrency: None,
            call_inputs: None,
            released: false,
        }
    }

    /// Whether the instance has ended.
    pub fn is_completed(&self) -> bool {
        self.status == JobStatus::Completed
    }

    /// Its conclusion as its dependents and the run see it: a failure under
    /// `continue-on-error` counts as success.
    pub fn effective_conclusion(&self) -> Option<Conclusion> {
        let continue_on_error = self.setup.as_ref().is_some_and(|s| s.continue_on_error);
        match self.conclusion {
            Some(Conclusion::Failure) if continue_on_error => Some(Conclusion::Success),
            other => other,
        }
    }

    /// Puts a completed or stale instance back to waiting for a new attempt.
    pub(crate) fn reset(&mut self, attempt: Attempt) {
        let key = self.key.clone();
        let name = std::mem::take(&mut self.name);
        let matrix = self.matrix.take();
        *self = JobInstance::new(key, name, matrix, attempt);
    }
}

impl JobState {
    /// `{result, outputs}` as the `needs` and `jobs` contexts show an ended job.
    pub(crate) fn result_value(&self) -> Value {
        let mut fields = IndexMap::new();
        let result = self.result.map_or("", Conclusion::as_str);
        fields.insert("result".to_owned(), Value::from(result));
        let outputs = self
            .outputs
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
            .collect();
        fields.insert("outputs".to_owned(), Value::Object(outputs));
        Value::Object(fields)
    }

    /// Whether the job has ended.
    pub fn is_ended(&self) -> bool {
        self.phase == JobPhase::Ended
    }

    /// The result the instances add up to (continue-on-error failures count as success).
    pub(crate) fn combined_result(&self) -> Conclusion {
        if self.message.is_some() {
            return Conclusion::Failure;
        }
        Conclusion::combine(
            self.instances
                .iter()
                .filter_map(JobInstance::effective_conclusion),
        )
    }
}

impl RunState {
    /// A job by id.
    pub fn job(&self, id: &str) -> Option<&JobState> {
        self.spec.job_index(id).map(|index| &self.jobs[index])
    }

    /// An instance by key.
    pub fn instance(&self, key: &JobKey) -> Option<&JobInstance> {
        self.job(&key.job)?
            .instances
            .get(usize::try_from(key.index).ok()?)
    }

    /// Every instance, job by job.
    pub fn instances(&self) -> impl Iterator<Item = &JobInstance> {
        self.jobs.iter().flat_map(|job| job.instances.iter())
    }

    /// Everything an instance is waiting for: the run's concurrency group, its job's needs, its
    /// own group, `max-parallel` or a runner. Empty once it runs or has ended.
    pub fn wait_reasons(&self, key: &JobKey) -> Vec<WaitReason> {
        let Some(instance) = self.instance(key) else {
            return Vec::new();
        };
        if !matches!(instance.status, JobStatus::Waiting | JobStatus::Queued) {
            return Vec::new();
        }
        let mut reasons = Vec::new();
        if let Some(reason) = self.concurrency.as_ref().and_then(GroupClaim::reason) {
            reasons.push(reason);
        }
        if let Some(job) = self.job(&key.job)
            && !job.waiting_on.is_empty()
        {
            reasons.push(WaitReason::Needs {
                jobs: job.waiting_on.iter().cloned().collect(),
            });
        }
        reasons.extend(instance.reasons.iter().cloned());
        reasons
    }

    /// The contexts every expression of job `job` sees: the run's `github` and `vars`, and
    /// `inputs` of the trigger, or for a job of a called workflow, of its call.
    pub(crate) fn job_base_contexts(&self, job: usize) -> gantry_expr::Contexts {
        let mut contexts = self.spec.base_contexts(self.attempt.0);
        if let Some(inputs) = self.called_inputs(job) {
            contexts.insert("inputs".to_owned(), inputs);
        }
        contexts
    }

    /// `inputs` of job `job` when it is a job of a called workflow: its call's (an empty
    /// object until the call has them). `None` for a job of the run's own file, which sees
    /// the trigger's.
    pub(crate) fn called_inputs(&self, job: usize) -> Option<Value> {
        let parent = self.spec.jobs[job].parent?;
        let inputs = self.jobs[parent.job]
            .instances
            .get(parent.instance)
            .and_then(|instance| instance.call_inputs.clone())
            .unwrap_or_else(|| Value::Object(IndexMap::new()));
        Some(inputs)
    }

    /// The `needs` context of job `id`: for each need, its `result` and `outputs`.
    pub fn needs_context(&self, id: &str) -> Option<Value> {
        self.spec.job_index(id).map(|index| self.needs_value(index))
    }

    pub(crate) fn needs_value(&self, job: usize) -> Value {
        let mut needs = IndexMap::new();
        for &need in &self.spec.jobs[job].needs {
            needs.insert(
                self.spec.jobs[need].local_id().to_owned(),
                self.jobs[need].result_value(),
            );
        }
        Value::Object(needs)
    }

    /// Each need of `job` with its result, for the status functions.
    pub(crate) fn needs_results(&self, job: usize) -> Vec<(String, Conclusion)> {
        self.spec.jobs[job]
            .needs
            .iter()
            .map(|&need| {
                let state = &self.jobs[need];
                (
                    self.spec.jobs[need].local_id().to_owned(),
                    state.result.unwrap_or(Conclusion::Skipped),
                )
            })
            .collect()
    }

    /// Whether jobs may be decided: the workflow-level group, if any, is ours.
    pub(crate) fn run_may_start(&self) -> bool {
        self.concurrency
            .as_ref()
            .is_none_or(|claim| claim.state == ClaimState::Granted)
    }
}
