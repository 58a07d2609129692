//! Re-running a completed run: a new run attempt with every job, or with the jobs that failed
//! or were cancelled plus everything that depends on them (GitHub's "Re-run failed jobs").
//!
//! Jobs that are not re-run keep their results and outputs, so their dependents see the same
//! `needs` as before. In a matrix job that failed, only the failed and cancelled instances run
//! again, as on GitHub, where each combination is a job of its own.

use std::sync::Arc;

use indexmap::IndexMap;

use super::Machine;
use crate::error::EngineError;
use crate::ids::{Attempt, RunAttempt};
use crate::setup;
use crate::spec::MatrixSource;
use crate::state::{JobPhase, JobState, StrategyState};
use crate::status::{Conclusion, RunStatus};

impl Machine<'_> {
    pub(crate) fn rerun(&mut self, failed_only: bool) -> Result<(), EngineError> {
        if self.state.status != RunStatus::Completed {
            return Err(EngineError::RunNotCompleted);
        }
        let spec = Arc::clone(&self.spec);
        let failed: Vec<bool> = self.state.jobs.iter().map(did_not_succeed).collect();
        let mut rerun = if failed_only {
            failed.clone()
        } else {
            vec![true; failed.len()]
        };
        if !rerun.contains(&true) {
            return Err(EngineError::NothingToRerun);
        }
        let mut stack: Vec<usize> = (0..rerun.len()).filter(|&job| rerun[job]).collect();
        while let Some(job) = stack.pop() {
            let mut again: Vec<usize> = spec.dependents[job].clone();
            // A called job runs again inside its caller, and a caller runs its called jobs
            // again: all of them, or with "failed only" the ones that did not succeed in its
            // instances that run again.
            again.extend(spec.jobs[job].parent.map(|parent| parent.job));
            if let Some(call) = &spec.jobs[job].call {
                let job_state = &self.state.jobs[job];
                for (index, children) in call.children.iter().enumerate() {
                    let instance = job_state.instances.get(index);
                    let kept = failed_only
                        && failed[job]
                        && instance.is_some_and(|i| succeeded(i.conclusion));
                    if kept {
                        continue;
                    }
                    // A skipped child may have been skipped by the failure: it runs again too.
                    again.extend(children.iter().copied().filter(|&child| {
                        !failed_only
                            || !failed[job]
                            || self.state.jobs[child].result != Some(Conclusion::Success)
                    }));
                }
            }
            for dependent in again {
                if !rerun[dependent] {
                    rerun[dependent] = true;
                    stack.push(dependent);
                }
            }
        }

        let state = &mut *self.state;
        state.attempt = RunAttempt(state.attempt.0.saturating_add(1));
        state.status = RunStatus::Queued;
        state.conclusion = None;
        state.started_at = None;
        state.completed_at = None;
        state.cancel_requested = false;
        state.unended = rerun.iter().filter(|&&again| again).count();
        let contexts = spec.base_contexts(state.attempt.0);
        for (job, again) in rerun.iter().enumerate() {
            if !again {
                continue;
            }
            let job_spec = &spec.jobs[job];
            let job_state = &mut state.jobs[job];
            job_state.waiting_on = spec.initial_waiting_on(job_spec, |need| rerun[need]);
            job_state.phase = JobPhase::Waiting;
            job_state.result = None;
            job_state.message = None;
            job_state.strategy = StrategyState::default();
            job_state.active = 0;
            job_state.next_release = 0;
            if failed_only && failed[job] && !job_state.matrix_pending {
                // Keep what succeeded; run the rest again.
                for instance in &mut job_state.instances {
                    if !succeeded(instance.conclusion) {
                        instance.reset(instance.attempt.next());
                    }
                }
            } else if let MatrixSource::Deferred(_) = job_spec.matrix {
                // Expanded again once the needs have ended again.
                let next = job_state.instances.iter().map(|i| i.attempt).max();
                let attempt = next.unwrap_or(Attempt::FIRST).next();
                job_state.instances = vec![setup::placeholder(job_spec, &contexts, attempt)];
                job_state.matrix_pending = true;
            } else {
                for instance in &mut job_state.instances {
                    instance.reset(instance.attempt.next());
                }
            }
            job_state.outputs = kept_outputs(job_state);
            job_state.unfinished = job_state
                .instances
                .iter()
                .filter(|instance| !instance.is_completed())
                .count();
            if let Some(parent) = job_spec.parent
                && state.jobs[parent.job]
                    .instances
                    .get(parent.instance)
                    .is_some_and(|caller| caller.is_completed())
            {
                // Its caller keeps its result and will not start again to let it go.
                let caller = spec.jobs[parent.job].id.as_str();
                state.jobs[job].waiting_on.shift_remove(caller);
            }
        }
        self.begin_attempt();
        Ok(())
    }
}

/// Whether a kept instance or job result counts as having succeeded.
fn succeeded(conclusion: Option<Conclusion>) -> bool {
    matches!(conclusion, Some(Conclusion::Success | Conclusion::Skipped))
}

/// Whether "re-run failed jobs" re-runs this job: it, or one of its instances, failed or was
/// cancelled.
fn did_not_succeed(job: &JobState) -> bool {
    let bad =
        |c: Option<Conclusion>| matches!(c, Some(Conclusion::Failure | Conclusion::Cancelled));
    bad(job.result)
        || job
            .instances
            .iter()
            .any(|instance| bad(instance.conclusion))
}

/// The outputs of the instances that keep their results, in instance order.
fn kept_outputs(job: &JobState) -> IndexMap<String, String> {
    let mut outputs = IndexMap::new();
    for instance in job.instances.iter().filter(|i| i.is_completed()) {
        for (name, value) in &instance.outputs {
            outputs.insert(name.clone(), value.clone());
        }
    }
    outputs
}
