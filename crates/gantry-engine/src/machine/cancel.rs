//! Cancelling a whole run, as GitHub does it: every job whose `if:` is false once the run is
//! cancelled ends (at once when it is not running, through its runner when it is), while jobs
//! whose `if:` still holds (`always()`, `cancelled()`) go on and run.

use std::sync::Arc;

use super::Machine;
use crate::effect::Effect;
use crate::error::EngineError;
use crate::state::{ClaimState, JobPhase};
use crate::status::{Conclusion, RunStatus};

const CANCELLED: &str = "the run was cancelled";

impl Machine<'_> {
    pub(crate) fn cancel_run(&mut self) -> Result<(), EngineError> {
        if self.state.status == RunStatus::Completed {
            return Err(EngineError::RunCompleted);
        }
        if self.state.cancel_requested {
            // Already cancelling: what could be stopped has been asked to stop.
            return Ok(());
        }
        self.state.cancel_requested = true;
        if !self.state.run_may_start() {
            // Still pending on the workflow-level group: nothing has run, everything ends now.
            if let Some(claim) = &mut self.state.concurrency
                && claim.is_active()
            {
                claim.state = ClaimState::Released;
                self.effects.push(Effect::ReleaseConcurrency {
                    group: claim.group.clone(),
                    job: None,
                });
            }
            self.abort_all(CANCELLED);
            return Ok(());
        }
        let spec = Arc::clone(&self.spec);
        for job in 0..self.state.jobs.len() {
            match self.state.jobs[job].phase {
                JobPhase::Ended => {}
                // Without a status function of its own, the implicit `success() &&` is false
                // from now on, whatever the needs do: the job can end now. With one, it is
                // decided when its needs end, with `cancelled()` true.
                JobPhase::Waiting if !spec.jobs[job].condition_uses_status => {
                    self.force_end(job, Conclusion::Cancelled, CANCELLED);
                }
                JobPhase::Waiting => {}
                // GitHub evaluates the `if:` of started jobs again; those it still holds for
                // keep running.
                JobPhase::Decided => {
                    let contexts = self.job_contexts(job);
                    if self.evaluate_if(job, &contexts) != Ok(true) {
                        for index in 0..self.state.jobs[job].instances.len() {
                            self.cancel_instance(job, index, CANCELLED);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
