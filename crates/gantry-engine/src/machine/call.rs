//! Running a job that calls a reusable workflow. The caller is never queued: once its `if:`
//! holds, each of its instances (one per matrix combination) evaluates `with:` into the called
//! workflow's `inputs` and, as `strategy.max-parallel` and its own `concurrency` group allow,
//! lets its child jobs go; it ends when they have all ended, with
//! GitHub's result (failure when a child failed, cancelled when one was cancelled, success
//! otherwise) and the called workflow's outputs evaluated over the children's results.
//!
//! A caller that never starts (skipped, failed on its inputs, cancelled while waiting) ends
//! its children with it, so every job of the run still ends exactly once.

use std::sync::Arc;

use gantry_expr::{Contexts, Value};
use gantry_workflow::contexts::Site;
use indexmap::IndexMap;

use super::Machine;
use crate::call::CallSpec;
use crate::reason::WaitReason;
use crate::setup;
use crate::spec::{JobSpec, MatrixSource, RunSpec};
use crate::state::JobPhase;
use crate::status::Conclusion;

impl Machine<'_> {
    /// A caller whose `if:` is true: evaluate the strategy and each instance's inputs, then
    /// let the children of every instance whose inputs are valid go.
    pub(super) fn start_call(
        &mut self,
        job: usize,
        job_spec: &JobSpec,
        call: &CallSpec,
        contexts: Contexts,
    ) {
        let strategy = match setup::strategy(job_spec, &contexts) {
            Ok(strategy) => strategy,
            Err(message) => return self.fail_job(job, message),
        };
        match &job_spec.matrix {
            MatrixSource::Planned(combinations) if combinations.is_empty() => {
                let message = "the matrix has no combinations";
                return self.conclude_unfinished(job, Conclusion::Skipped, message);
            }
            MatrixSource::Deferred(_) => {
                let message = "a job calling a reusable workflow cannot have a matrix that \
                               reads `needs` (its combinations must be known when the run starts)";
                return self.fail_job(job, message.to_owned());
            }
            MatrixSource::None | MatrixSource::Planned(_) => {}
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
            let claim = match &job_spec.concurrency {
                Some(concurrency) => {
                    setup::group_claim(concurrency, Site::JobStrategyContext, &contexts)
                }
                None => Ok(None),
            };
            match call
                .evaluate_inputs(&contexts)
                .and_then(|inputs| claim.map(|c| (inputs, c)))
            {
                Ok((inputs, claim)) => {
                    let instance = &mut self.state.jobs[job].instances[index];
                    instance.call_inputs = Some(inputs);
                    instance.concurrency = claim;
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
        // As for any matrix job, `max-parallel` decides how many calls run at once: the next
        // is opened when one ends (`fill_slots`).
        self.refill.push(job);
    }

    /// Starts the call of a released caller instance (whose group, if any, was granted).
    pub(super) fn start_released_call(&mut self, job: usize, index: usize) {
        let instance = &mut self.state.jobs[job].instances[index];
        instance.started_at = Some(self.now);
        instance.reasons.clear();
        self.open_call(job, index);
    }

    /// Lets the children of a started caller instance go: they no longer wait on the caller.
    fn open_call(&mut self, job: usize, index: usize) {
        if self.state.jobs[job].instances[index].is_completed() {
            return;
        }
        let caller = self.state.jobs[job].id.clone();
        let spec = Arc::clone(&self.spec);
        for &child in children(&spec, job, index) {
            let state = &mut self.state.jobs[child];
            state.waiting_on.shift_remove(&caller);
            if state.waiting_on.is_empty() && state.phase == JobPhase::Waiting {
                self.ready.push_back(child);
            }
        }
        self.complete_call_if_done(job, index);
    }

    /// Whether instance `index` of `job` is a started call that has not ended. A call starts
    /// when its children are let go (`started_at`); one still waiting for `max-parallel` or its
    /// group has not, and ends its children with it.
    pub(super) fn call_in_progress(&self, job: usize, index: usize) -> bool {
        let instance = &self.state.jobs[job].instances[index];
        self.spec.jobs[job].call.is_some()
            && instance.started_at.is_some()
            && !instance.is_completed()
    }

    /// Ends a started caller instance once every child has ended: its result and outputs.
    pub(super) fn complete_call_if_done(&mut self, job: usize, index: usize) {
        if !self.call_in_progress(job, index) {
            return;
        }
        let spec = Arc::clone(&self.spec);
        let children = children(&spec, job, index);
        if children
            .iter()
            .any(|&child| !self.state.jobs[child].is_ended())
        {
            return;
        }
        let combined = Conclusion::combine(
            children
                .iter()
                .filter_map(|&child| self.state.jobs[child].result),
        );
        let mut conclusion = match combined {
            Conclusion::Skipped => Conclusion::Success,
            other => other,
        };
        let mut message = None;
        let mut outputs = IndexMap::new();
        if let Some(call) = &spec.jobs[job].call {
            let contexts = self.called_contexts(job, index, children);
            match call.evaluate_outputs(&contexts) {
                Ok(values) => outputs = values,
                Err(problem) => {
                    conclusion = Conclusion::Failure;
                    message = Some(problem);
                }
            }
        }
        let state = &mut self.state.jobs[job];
        for (name, value) in &outputs {
            state.outputs.insert(name.clone(), value.clone());
        }
        state.instances[index].outputs = outputs;
        self.finish_instance(job, index, conclusion, message);
        if conclusion == Conclusion::Failure {
            self.after_failure(job, index);
        }
    }

    /// What `on.workflow_call.outputs.*.value` sees: the called workflow's `github`, `inputs`
    /// and `vars`, and `jobs`, each child's `result` and `outputs` by its id in the file.
    fn called_contexts(&self, job: usize, index: usize, children: &[usize]) -> Contexts {
        let mut contexts = self.state.job_base_contexts(job);
        if let Some(inputs) = &self.state.jobs[job].instances[index].call_inputs {
            contexts.insert("inputs".to_owned(), inputs.clone());
        }
        let mut jobs = IndexMap::new();
        for &child in children {
            let id = self.spec.jobs[child].local_id().to_owned();
            jobs.insert(id, self.state.jobs[child].result_value());
        }
        contexts.insert("jobs".to_owned(), Value::Object(jobs));
        contexts
    }

    /// Cancels a started call: its children that wait end now, those that run are asked to
    /// stop; the caller ends when the last of them has.
    pub(super) fn cancel_call(&mut self, job: usize, index: usize, message: &str) {
        let spec = Arc::clone(&self.spec);
        for &child in children(&spec, job, index) {
            match self.state.jobs[child].phase {
                JobPhase::Ended => {}
                JobPhase::Waiting => self.force_end(child, Conclusion::Cancelled, message),
                JobPhase::Decided => {
                    for instance in 0..self.state.jobs[child].instances.len() {
                        self.cancel_instance(child, instance, message);
                    }
                }
            }
        }
    }

    /// A caller instance ended without starting its call: its children end too, skipped when
    /// the caller was skipped or failed, cancelled when it was cancelled.
    pub(super) fn end_uncalled_children(
        &mut self,
        job: usize,
        index: usize,
        conclusion: Conclusion,
    ) {
        let (conclusion, message) = match conclusion {
            Conclusion::Cancelled => (Conclusion::Cancelled, "the calling job was cancelled"),
            _ => (Conclusion::Skipped, "the calling job did not run"),
        };
        let spec = Arc::clone(&self.spec);
        for &child in children(&spec, job, index) {
            if self.state.jobs[child].phase != JobPhase::Ended {
                self.force_end(child, conclusion, message);
            }
        }
    }
}

/// The children of instance `index` of caller `job`.
fn children(spec: &RunSpec, job: usize, index: usize) -> &[usize] {
    spec.jobs[job]
        .call
        .as_ref()
        .and_then(|call| call.children.get(index))
        .map_or(&[], Vec::as_slice)
}
