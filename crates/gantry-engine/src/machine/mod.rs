//! The state machine's moving parts: deciding a job once its needs have ended, releasing its
//! instances past `max-parallel` and concurrency groups, ending instances and jobs, and
//! completing the run.
//!
//! What one change causes elsewhere (a job ended, so a dependent may be decided) goes through a
//! work queue rather than recursion: a 1,000-job chain of skips needs no deep stack, and a job is
//! looked at only when one of its needs ended, so an event costs time in proportion to the jobs
//! it touches, not to the size of the run.
//!
//! Event handlers (in `events`, `cancel` and `rerun`) check everything that can refuse an event
//! before they change anything, so a refused event leaves the state exactly as it was.

mod call;
mod cancel;
mod events;
mod rerun;

use std::collections::VecDeque;
use std::sync::Arc;

use gantry_expr::Contexts;

use crate::effect::{Effect, JobOrder};
use crate::eval::{self, JobIfHost};
use crate::event::TimerKind;
use crate::ids::Millis;
use crate::reason::WaitReason;
use crate::setup;
use crate::spec::{self, JobSpec, MatrixSource, RunSpec};
use crate::state::{ClaimState, JobPhase, RunState};
use crate::status::{Conclusion, JobStatus, RunStatus};

/// One event's worth of changes to a run.
pub(crate) struct Machine<'s> {
    state: &'s mut RunState,
    spec: Arc<RunSpec>,
    now: Millis,
    effects: Vec<Effect>,
    /// Jobs whose needs have all ended, to be decided.
    ready: VecDeque<usize>,
    /// Jobs that may have room for more instances.
    refill: Vec<usize>,
}

impl<'s> Machine<'s> {
    pub(crate) fn new(state: &'s mut RunState, now: Millis) -> Machine<'s> {
        let spec = Arc::clone(&state.spec);
        Machine {
            state,
            spec,
            now,
            effects: Vec::new(),
            ready: VecDeque::new(),
            refill: Vec::new(),
        }
    }

    /// Runs the consequences of the changes made so far and returns the effects.
    pub(crate) fn finish(mut self) -> Vec<Effect> {
        self.settle();
        self.effects
    }

    /// Starts a run attempt: asks for the workflow-level group, or decides the jobs that wait
    /// on nothing.
    pub(crate) fn begin_attempt(&mut self) {
        if let Some(claim) = &mut self.state.concurrency {
            claim.state = ClaimState::Requested { held_by: None };
            self.effects.push(Effect::AcquireConcurrency {
                group: claim.group.clone(),
                job: None,
                cancel_in_progress: claim.cancel_in_progress,
            });
        } else {
            self.queue_ready_jobs();
        }
    }

    /// Queues every waiting job whose needs have all ended for a decision.
    fn queue_ready_jobs(&mut self) {
        for (index, job) in self.state.jobs.iter().enumerate() {
            if job.phase == JobPhase::Waiting && job.waiting_on.is_empty() {
                self.ready.push_back(index);
            }
        }
    }

    fn settle(&mut self) {
        loop {
            if let Some(job) = self.refill.pop() {
                self.fill_slots(job);
            } else if let Some(job) = self.ready.pop_front() {
                self.decide(job);
            } else {
                break;
            }
        }
        if self.state.unended == 0 && self.state.status != RunStatus::Completed {
            self.complete_run();
        }
    }

    /// The contexts of a job-level expression once the job's needs have ended.
    fn job_contexts(&self, job: usize) -> Contexts {
        let mut contexts = self.state.job_base_contexts(job);
        contexts.insert("needs".to_owned(), self.state.needs_value(job));
        contexts
    }

    /// Evaluates the job's `if:` against its needs and the run's cancellation.
    fn evaluate_if(&self, job: usize, contexts: &Contexts) -> Result<bool, String> {
        let host = JobIfHost {
            needs: self.state.needs_results(job),
            run_cancelled: self.state.cancel_requested,
        };
        eval::condition(self.spec.jobs[job].condition.as_deref(), contexts, &host)
    }

    /// Decides a job whose needs have all ended: skip it, fail it, or start its instances.
    fn decide(&mut self, job: usize) {
        let state = &self.state.jobs[job];
        if state.phase != JobPhase::Waiting
            || !state.waiting_on.is_empty()
            || !self.state.run_may_start()
        {
            return;
        }
        self.state.jobs[job].phase = JobPhase::Decided;
        if self.state.jobs[job].unfinished == 0 {
            // Every instance was cancelled on its own while the job waited.
            self.end_job(job);
            return;
        }
        let contexts = self.job_contexts(job);
        match self.evaluate_if(job, &contexts) {
            Err(message) => self.fail_job(job, format!("error evaluating `if`: {message}")),
            Ok(false) if self.state.cancel_requested => {
                self.conclude_unfinished(job, Conclusion::Cancelled, "the run was cancelled");
            }
            Ok(false) => self.conclude_unfinished(job, Conclusion::Skipped, ""),
            Ok(true) => {
                let spec = Arc::clone(&self.spec);
                self.start_job(job, &spec.jobs[job], contexts);
            }
        }
    }

    /// A job whose `if:` is true: expand a deferred matrix, evaluate the strategy and each
    /// instance's settings, then release instances.
    fn start_job(&mut self, job: usize, job_spec: &JobSpec, contexts: Contexts) {
        if let Some(call) = &job_spec.call {
            return self.start_call(job, job_spec, call, contexts);
        }
        if let Some(uses) = &job_spec.reusable {
            let message = format!("the reusable workflow `{uses}` was not given with the run");
            return self.fail_job(job, message);
        }
        let strategy = match setup::strategy(job_spec, &contexts) {
            Ok(strategy) => strategy,
            Err(message) => return self.fail_job(job, message),
        };
        if let MatrixSource::Planned(combinations) = &job_spec.matrix
            && combinations.is_empty()
        {
            let message = "the matrix has no combinations";
            return self.conclude_unfinished(job, Conclusion::Skipped, message);
        }
        if self.state.jobs[job].matrix_pending
            && let MatrixSource::Deferred(matrix) = &job_spec.matrix
        {
            match spec::expand_deferred(&job_spec.id, matrix, &contexts, &self.state.config) {
                Err(message) => return self.fail_job(job, message),
                Ok(combinations) if combinations.is_empty() => {
                    self.state.jobs[job].matrix_pending = false;
                    let message = "the matrix has no combinations";
                    return self.conclude_unfinished(job, Conclusion::Skipped, message);
                }
                Ok(combinations) => {
                    let state = &mut self.state.jobs[job];
                    let attempt = state.instances.first().map(|i| i.attempt);
                    let attempt = attempt.unwrap_or(crate::ids::Attempt::FIRST);
                    state.instances =
                        setup::instances_for(job_spec, &combinations, &contexts, attempt);
                    state.unfinished = state.instances.len();
                    state.matrix_pending = false;
                }
            }
        }
        self.state.jobs[job].strategy = strategy;
        let total = self.state.jobs[job].instances.len();
        let mut failed = Vec::new();
        for index in 0..total {
            let instance = &self.state.jobs[job].instances[index];
            if instance.is_completed() {
                continue;
            }
            let contexts = setup::instance_contexts(&contexts, strategy, index, total, instance);
            match setup::prepare(job_spec, &contexts, &self.state.config) {
                Ok(prepared) => {
                    let instance = &mut self.state.jobs[job].instances[index];
                    if let Some(name) = prepared.name {
                        instance.name = name;
                    }
                    instance.setup = Some(prepared.setup);
                    instance.concurrency = prepared.claim;
                    instance.reasons = strategy
                        .max_parallel
                        .map(|limit| WaitReason::MaxParallel { limit })
                        .into_iter()
                        .collect();
                }
                Err(message) => failed.push((index, message)),
            }
        }
        for (index, message) in failed {
            self.finish_instance(job, index, Conclusion::Failure, Some(message));
            self.after_failure(job, index);
        }
        self.refill.push(job);
    }

    /// Releases waiting instances of a decided job while `max-parallel` allows.
    fn fill_slots(&mut self, job: usize) {
        loop {
            let state = &mut self.state.jobs[job];
            if state.phase != JobPhase::Decided {
                return;
            }
            let limit = state.strategy.max_parallel.unwrap_or(usize::MAX);
            if state.active >= limit {
                return;
            }
            while let Some(instance) = state.instances.get(state.next_release)
                && (instance.released || instance.is_completed())
            {
                state.next_release += 1;
            }
            if state.next_release >= state.instances.len() {
                return;
            }
            let index = state.next_release;
            state.next_release += 1;
            self.release(job, index);
        }
    }

    /// Lets an instance past `max-parallel`: on to its concurrency group, or to the queue (a
    /// caller's: its call starts, since a caller is never queued).
    fn release(&mut self, job: usize, index: usize) {
        let state = &mut self.state.jobs[job];
        state.active += 1;
        let instance = &mut state.instances[index];
        instance.released = true;
        if let Some(claim) = &mut instance.concurrency {
            claim.state = ClaimState::Requested { held_by: None };
            instance.reasons = claim.reason().into_iter().collect();
            self.effects.push(Effect::AcquireConcurrency {
                group: claim.group.clone(),
                job: Some(instance.key.clone()),
                cancel_in_progress: claim.cancel_in_progress,
            });
        } else if self.spec.jobs[job].call.is_some() {
            self.start_released_call(job, index);
        } else {
            self.queue(job, index);
        }
    }

    /// Puts an instance in the dispatcher's queue, with a queue timeout.
    fn queue(&mut self, job: usize, index: usize) {
        let now = self.now;
        let queue_timeout = self.state.config.queue_timeout;
        let fallback = setup::fallback_setup(&self.state.config);
        let instance = &mut self.state.jobs[job].instances[index];
        instance.status = JobStatus::Queued;
        instance.queued_at = Some(now);
        instance.started_at = None;
        instance.cancel_requested_at = None;
        let setup = instance.setup.get_or_insert(fallback);
        instance.reasons = vec![WaitReason::Runner {
            labels: setup.labels.clone(),
        }];
        self.effects.push(Effect::QueueJob(JobOrder {
            job: instance.key.clone(),
            attempt: instance.attempt,
            name: instance.name.clone(),
            labels: setup.labels.clone(),
            runner_group: setup.runner_group.clone(),
            timeout: setup.timeout,
            continue_on_error: setup.continue_on_error,
            matrix: instance.matrix.clone(),
        }));
        self.effects.push(Effect::SetTimer {
            at: now.after(queue_timeout),
            kind: TimerKind::QueueTimeout {
                job: instance.key.clone(),
                attempt: instance.attempt,
            },
        });
    }

    /// Ends an instance: gives back its group and slot, and ends its job when it was the last.
    fn finish_instance(
        &mut self,
        job: usize,
        index: usize,
        conclusion: Conclusion,
        message: Option<String>,
    ) {
        let now = self.now;
        let state = &mut self.state.jobs[job];
        let instance = &mut state.instances[index];
        if instance.is_completed() {
            return;
        }
        instance.status = JobStatus::Completed;
        instance.conclusion = Some(conclusion);
        instance.completed_at = Some(now);
        instance.reasons.clear();
        if message.is_some() {
            instance.message = message;
        }
        if let Some(claim) = &mut instance.concurrency
            && claim.is_active()
        {
            claim.state = ClaimState::Released;
            self.effects.push(Effect::ReleaseConcurrency {
                group: claim.group.clone(),
                job: Some(instance.key.clone()),
            });
        }
        self.effects.push(Effect::JobEnded {
            job: instance.key.clone(),
            conclusion,
        });
        // A call starts when its children are let go; before, they end with it.
        let call_started = instance.started_at.is_some();
        if instance.released {
            state.active = state.active.saturating_sub(1);
        }
        state.unfinished = state.unfinished.saturating_sub(1);
        if !call_started && self.spec.jobs[job].call.is_some() {
            // The call never started: its jobs end with it.
            self.end_uncalled_children(job, index, conclusion);
        }
        let state = &mut self.state.jobs[job];
        if state.phase == JobPhase::Decided {
            self.refill.push(job);
            if state.unfinished == 0 {
                self.end_job(job);
            }
        }
    }

    /// After an instance failed: with `fail-fast`, cancel its siblings (a failure under
    /// `continue-on-error` does not count).
    fn after_failure(&mut self, job: usize, index: usize) {
        let state = &self.state.jobs[job];
        let instance = &state.instances[index];
        if instance.effective_conclusion() != Some(Conclusion::Failure)
            || !state.strategy.fail_fast
            || state.phase != JobPhase::Decided
        {
            return;
        }
        let message = format!("cancelled because `{}` failed (fail-fast)", instance.name);
        for sibling in 0..state.instances.len() {
            if sibling != index {
                self.cancel_instance(job, sibling, &message);
            }
        }
    }

    /// Cancels an instance: at once when it is not running, through its runner otherwise.
    fn cancel_instance(&mut self, job: usize, index: usize, message: &str) {
        if self.call_in_progress(job, index) {
            return self.cancel_call(job, index, message);
        }
        match self.state.jobs[job].instances[index].status {
            JobStatus::Completed => {}
            JobStatus::InProgress => self.request_cancel(job, index),
            JobStatus::Waiting | JobStatus::Queued => {
                self.finish_instance(job, index, Conclusion::Cancelled, Some(message.to_owned()));
            }
        }
    }

    /// Asks the runner of an in-progress instance to stop, with a deadline for its answer.
    fn request_cancel(&mut self, job: usize, index: usize) {
        let now = self.now;
        let grace = self.state.config.cancel_grace;
        let instance = &mut self.state.jobs[job].instances[index];
        if instance.cancel_requested_at.is_some() {
            return;
        }
        instance.cancel_requested_at = Some(now);
        self.effects.push(Effect::CancelJob {
            job: instance.key.clone(),
            attempt: instance.attempt,
        });
        self.effects.push(Effect::SetTimer {
            at: now.after(grace),
            kind: TimerKind::CancelGrace {
                job: instance.key.clone(),
                attempt: instance.attempt,
            },
        });
    }

    /// Ends every instance not yet completed with `conclusion`. Only for instances that are not
    /// running (a decision, or a run that never started).
    fn conclude_unfinished(&mut self, job: usize, conclusion: Conclusion, message: &str) {
        let message = (!message.is_empty()).then(|| message.to_owned());
        for index in 0..self.state.jobs[job].instances.len() {
            self.finish_instance(job, index, conclusion, message.clone());
        }
    }

    /// Fails a job as a whole (its `if:`, strategy or matrix could not be evaluated).
    fn fail_job(&mut self, job: usize, message: String) {
        self.state.jobs[job].message = Some(message.clone());
        self.conclude_unfinished(job, Conclusion::Failure, &message);
    }

    /// Ends a job that has no running instance, whatever its phase.
    fn force_end(&mut self, job: usize, conclusion: Conclusion, message: &str) {
        if self.state.jobs[job].phase == JobPhase::Waiting {
            self.state.jobs[job].phase = JobPhase::Decided;
        }
        self.conclude_unfinished(job, conclusion, message);
        if self.state.jobs[job].phase != JobPhase::Ended {
            self.end_job(job);
        }
    }

    /// Records a job's result and tells its dependents.
    fn end_job(&mut self, job: usize) {
        let state = &mut self.state.jobs[job];
        if state.phase == JobPhase::Ended {
            return;
        }
        state.phase = JobPhase::Ended;
        state.result = Some(state.combined_result());
        self.state.unended = self.state.unended.saturating_sub(1);
        let id = self.state.jobs[job].id.clone();
        for &dependent in &self.spec.dependents[job] {
            let state = &mut self.state.jobs[dependent];
            state.waiting_on.shift_remove(&id);
            if state.waiting_on.is_empty() && state.phase == JobPhase::Waiting {
                self.ready.push_back(dependent);
            }
        }
        if let Some(parent) = self.spec.jobs[job].parent {
            self.complete_call_if_done(parent.job, parent.instance);
        }
    }

    /// Every job has ended: the run's conclusion.
    fn complete_run(&mut self) {
        let combined = Conclusion::combine(self.state.jobs.iter().filter_map(|job| job.result));
        let conclusion = if self.state.cancel_requested && combined != Conclusion::Failure {
            Conclusion::Cancelled
        } else {
            combined
        };
        self.state.status = RunStatus::Completed;
        self.state.conclusion = Some(conclusion);
        self.state.completed_at = Some(self.now);
        if let Some(claim) = &mut self.state.concurrency
            && claim.is_active()
        {
            claim.state = ClaimState::Released;
            self.effects.push(Effect::ReleaseConcurrency {
                group: claim.group.clone(),
                job: None,
            });
        }
        self.effects.push(Effect::RunCompleted(conclusion));
    }
}
