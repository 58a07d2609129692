//! The event handlers: each checks that the event fits the run as it is, then applies it.

use indexmap::IndexMap;

use super::Machine;
use crate::error::EngineError;
use crate::event::{Event, TimerKind};
use crate::ids::{Attempt, JobKey, Millis, RunId};
use crate::state::{ClaimState, JobPhase};
use crate::status::{Conclusion, JobStatus};

impl Machine<'_> {
    /// Applies one event.
    pub(crate) fn handle(&mut self, event: &Event) -> Result<(), EngineError> {
        match event {
            Event::JobStarted { job, attempt } => self.job_started(job, *attempt),
            Event::JobCompleted {
                job,
                attempt,
                conclusion,
                outputs,
            } => self.job_completed(job, *attempt, *conclusion, outputs),
            Event::JobLost { job, attempt } => self.job_lost(job, *attempt),
            Event::CancelRequested { job: None } => self.cancel_run(),
            Event::CancelRequested { job: Some(job) } => self.cancel_job(job),
            Event::TimerFired { kind } => self.timer_fired(kind),
            Event::RerunRequested { failed_only } => self.rerun(*failed_only),
            Event::ConcurrencyGranted { job } => self.concurrency_granted(job.as_ref()),
            Event::ConcurrencyWaiting { job, held_by } => {
                self.concurrency_waiting(job.as_ref(), *held_by)
            }
            Event::Superseded { job, by } => self.superseded(job.as_ref(), *by),
        }
    }

    /// Finds an instance by key.
    fn locate(&self, key: &JobKey) -> Result<(usize, usize), EngineError> {
        let unknown = || EngineError::UnknownJob(key.clone());
        let job = self.spec.job_index(&key.job).ok_or_else(unknown)?;
        let index = usize::try_from(key.index).map_err(|_| unknown())?;
        if index >= self.state.jobs[job].instances.len() {
            return Err(unknown());
        }
        Ok((job, index))
    }

    /// Finds an instance and checks its attempt and status.
    fn checked_instance(
        &self,
        key: &JobKey,
        attempt: Option<Attempt>,
        statuses: &[JobStatus],
        action: &'static str,
    ) -> Result<(usize, usize), EngineError> {
        let (job, index) = self.locate(key)?;
        let instance = &self.state.jobs[job].instances[index];
        if let Some(attempt) = attempt
            && attempt != instance.attempt
        {
            return Err(EngineError::StaleAttempt {
                job: key.clone(),
                current: instance.attempt,
                got: attempt,
            });
        }
        if !statuses.contains(&instance.status) {
            return Err(EngineError::WrongStatus {
                job: key.clone(),
                status: instance.status,
                action,
            });
        }
        Ok((job, index))
    }

    fn job_started(&mut self, key: &JobKey, attempt: Attempt) -> Result<(), EngineError> {
        let (job, index) =
            self.checked_instance(key, Some(attempt), &[JobStatus::Queued], "started")?;
        let now = self.now;
        let instance = &mut self.state.jobs[job].instances[index];
        instance.start(now);
        let fallback = crate::setup::fallback_setup(&self.state.config);
        let timeout = instance.setup.as_ref().unwrap_or(&fallback).timeout;
        self.effects.push(crate::Effect::SetTimer {
            at: now.after(timeout),
            kind: TimerKind::JobTimeout {
                job: key.clone(),
                attempt,
            },
        });
        self.state.note_start(now);
        Ok(())
    }

    fn job_completed(
        &mut self,
        key: &JobKey,
        attempt: Attempt,
        conclusion: Conclusion,
        outputs: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        if conclusion == Conclusion::Skipped {
            return Err(EngineError::InvalidConclusion);
        }
        let (job, index) =
            self.checked_instance(key, Some(attempt), &[JobStatus::InProgress], "completed")?;
        let state = &mut self.state.jobs[job];
        for (name, value) in outputs {
            state.outputs.insert(name.clone(), value.clone());
        }
        state.instances[index].outputs = outputs.clone();
        self.finish_instance(job, index, conclusion, None);
        if conclusion == Conclusion::Failure {
            self.after_failure(job, index);
        }
        Ok(())
    }

    fn job_lost(&mut self, key: &JobKey, attempt: Attempt) -> Result<(), EngineError> {
        let (job, index) =
            self.checked_instance(key, Some(attempt), &[JobStatus::InProgress], "lost")?;
        let max_retries = self.state.config.max_runner_lost_retries;
        let instance = &mut self.state.jobs[job].instances[index];
        if instance.cancel_requested_at.is_some() {
            let message = Some("runner lost while cancelling".to_owned());
            self.finish_instance(job, index, Conclusion::Cancelled, message);
        } else if instance.runner_lost < max_retries {
            instance.runner_lost += 1;
            instance.attempt = instance.attempt.next();
            instance.message = Some(format!(
                "runner lost; queued again as attempt {}",
                instance.attempt
            ));
            self.queue(job, index);
        } else {
            self.finish_instance(
                job,
                index,
                Conclusion::Failure,
                Some("runner lost".to_owned()),
            );
            self.after_failure(job, index);
        }
        Ok(())
    }

    fn cancel_job(&mut self, key: &JobKey) -> Result<(), EngineError> {
        let statuses = [JobStatus::Waiting, JobStatus::Queued, JobStatus::InProgress];
        let (job, index) = self.checked_instance(key, None, &statuses, "cancelled")?;
        self.cancel_instance(job, index, "cancelled on request");
        Ok(())
    }

    fn timer_fired(&mut self, kind: &TimerKind) -> Result<(), EngineError> {
        let key = kind.job();
        let attempt = Some(kind.attempt());
        let config = &self.state.config;
        match kind {
            TimerKind::QueueTimeout { .. } => {
                let (job, index) =
                    self.checked_instance(key, attempt, &[JobStatus::Queued], "timed out")?;
                let instance = &self.state.jobs[job].instances[index];
                let queued_at = instance.queued_at.unwrap_or_default();
                self.check_due(queued_at.after(config.queue_timeout))?;
                let message = format!(
                    "no runner picked the job up within {}",
                    config.queue_timeout
                );
                self.finish_instance(job, index, Conclusion::Failure, Some(message));
                self.after_failure(job, index);
            }
            TimerKind::JobTimeout { .. } => {
                let statuses = [JobStatus::InProgress];
                let (job, index) = self.checked_instance(key, attempt, &statuses, "timed out")?;
                let instance = &self.state.jobs[job].instances[index];
                let timeout = instance.setup.as_ref().map_or(Millis(0), |s| s.timeout);
                self.check_due(instance.started_at.unwrap_or_default().after(timeout))?;
                // GitHub cancels a job that runs past `timeout-minutes`.
                self.effects.push(crate::Effect::CancelJob {
                    job: key.clone(),
                    attempt: instance.attempt,
                });
                let message = format!("the job exceeded its timeout of {timeout}");
                self.finish_instance(job, index, Conclusion::Cancelled, Some(message));
            }
            TimerKind::CancelGrace { .. } => {
                let statuses = [JobStatus::InProgress];
                let (job, index) =
                    self.checked_instance(key, attempt, &statuses, "force-cancelled")?;
                let instance = &self.state.jobs[job].instances[index];
                let Some(asked_at) = instance.cancel_requested_at else {
                    return Err(EngineError::WrongStatus {
                        job: key.clone(),
                        status: instance.status,
                        action: "force-cancelled before a cancel was asked",
                    });
                };
                self.check_due(asked_at.after(config.cancel_grace))?;
                let message = format!(
                    "the runner did not confirm the cancellation within {}",
                    config.cancel_grace
                );
                self.finish_instance(job, index, Conclusion::Cancelled, Some(message));
            }
        }
        Ok(())
    }

    fn check_due(&self, due: Millis) -> Result<(), EngineError> {
        if self.now < due {
            Err(EngineError::TimerNotDue { due })
        } else {
            Ok(())
        }
    }

    /// Finds the claim a concurrency answer is about and checks it is pending.
    fn pending_claim(&self, key: Option<&JobKey>) -> Result<Option<(usize, usize)>, EngineError> {
        let Some(key) = key else {
            return match &self.state.concurrency {
                Some(claim) if matches!(claim.state, ClaimState::Requested { .. }) => Ok(None),
                _ => Err(EngineError::UnexpectedConcurrency(
                    "the run has no pending concurrency request".to_owned(),
                )),
            };
        };
        let (job, index) =
            self.checked_instance(key, None, &[JobStatus::Waiting], "given a group")?;
        let instance = &self.state.jobs[job].instances[index];
        match &instance.concurrency {
            Some(claim) if matches!(claim.state, ClaimState::Requested { .. }) => {
                Ok(Some((job, index)))
            }
            _ => Err(EngineError::UnexpectedConcurrency(format!(
                "job `{key}` has no pending concurrency request"
            ))),
        }
    }

    fn concurrency_granted(&mut self, key: Option<&JobKey>) -> Result<(), EngineError> {
        match self.pending_claim(key)? {
            None => {
                if let Some(claim) = &mut self.state.concurrency {
                    claim.state = ClaimState::Granted;
                }
                self.queue_ready_jobs();
            }
            Some((job, index)) => {
                let instance = &mut self.state.jobs[job].instances[index];
                if let Some(claim) = &mut instance.concurrency {
                    claim.state = ClaimState::Granted;
                }
                if self.spec.jobs[job].call.is_some() {
                    // A caller is never queued: its call starts.
                    self.start_released_call(job, index);
                } else {
                    self.queue(job, index);
                }
            }
        }
        Ok(())
    }

    fn concurrency_waiting(
        &mut self,
        key: Option<&JobKey>,
        held_by: RunId,
    ) -> Result<(), EngineError> {
        let pending = ClaimState::Requested {
            held_by: Some(held_by),
        };
        match self.pending_claim(key)? {
            None => {
                if let Some(claim) = &mut self.state.concurrency {
                    claim.state = pending;
                }
            }
            Some((job, index)) => {
                let instance = &mut self.state.jobs[job].instances[index];
                if let Some(claim) = &mut instance.concurrency {
                    claim.state = pending;
                    instance.reasons = claim.reason().into_iter().collect();
                }
            }
        }
        Ok(())
    }

    fn superseded(&mut self, key: Option<&JobKey>, by: RunId) -> Result<(), EngineError> {
        let message = format!("superseded by run {by}");
        match self.pending_claim(key)? {
            None => {
                // The group has already dropped the request: nothing to give back.
                if let Some(claim) = &mut self.state.concurrency {
                    claim.state = ClaimState::Released;
                }
                self.abort_all(&message);
            }
            Some((job, index)) => {
                let instance = &mut self.state.jobs[job].instances[index];
                if let Some(claim) = &mut instance.concurrency {
                    claim.state = ClaimState::Released;
                }
                self.finish_instance(job, index, Conclusion::Cancelled, Some(message));
            }
        }
        Ok(())
    }

    /// Ends every job that has not ended with `Cancelled`. Only for a run none of whose jobs
    /// has been decided (it never got its concurrency group).
    pub(crate) fn abort_all(&mut self, message: &str) {
        for job in 0..self.state.jobs.len() {
            if self.state.jobs[job].phase != JobPhase::Ended {
                self.force_end(job, Conclusion::Cancelled, message);
            }
        }
    }
}
