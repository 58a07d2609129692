//! The engine's pending timers, in memory: by due time for the firing loop, and by run and
//! job so that a timer its job has outgrown is dropped when the job moves on instead of
//! lingering until it fires.
//!
//! Every queued job has a queue timeout (24 h by default) and every running one a job
//! timeout (6 h by default). Without pruning, each job ever queued would keep one or two
//! entries here for a day after it ended: at 50,000 jobs a minute, tens of millions of
//! entries. A timer is live while its instance is still at the timer's attempt and in the
//! status the timer guards (queued for a queue timeout, running for a job timeout or a
//! cancel deadline); [`Timers::prune`] checks that for the jobs a transition touched.

use std::collections::BTreeMap;

use foldhash::HashMap;
use gantry_engine::{JobKey, JobStatus, Millis, RunState, TimerKind};
use gantry_store::RunId;

/// A timer's place in the due-time order (the sequence keeps equal times apart).
type Slot = (Millis, u64);

/// Pending timers, indexed by due time and by run and job.
#[derive(Default)]
pub(crate) struct Timers {
    due: BTreeMap<Slot, (RunId, TimerKind)>,
    by_job: HashMap<RunId, HashMap<JobKey, Vec<Slot>>>,
    sequence: u64,
}

impl Timers {
    /// Adds a timer of `run_id` due at `at`.
    pub(crate) fn add(&mut self, at: Millis, run_id: RunId, kind: TimerKind) {
        self.sequence += 1;
        let slot = (at, self.sequence);
        self.by_job
            .entry(run_id)
            .or_default()
            .entry(kind.job().clone())
            .or_default()
            .push(slot);
        self.due.insert(slot, (run_id, kind));
    }

    /// When the earliest timer is due.
    pub(crate) fn next_due(&self) -> Option<Millis> {
        self.due.first_key_value().map(|(slot, _)| slot.0)
    }

    /// Takes the earliest timer out.
    pub(crate) fn pop_first(&mut self) -> Option<(RunId, TimerKind)> {
        let (slot, (run_id, kind)) = self.due.pop_first()?;
        self.unindex(run_id, kind.job(), slot);
        Some((run_id, kind))
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.due.len()
    }

    /// Drops the timers of `run_id` that its committed `state` has made obsolete: all of
    /// them once the run has ended, otherwise those of the `touched` jobs whose instance has
    /// moved past the timer's attempt or out of the status it guards.
    pub(crate) fn prune<'a>(
        &mut self,
        run_id: RunId,
        state: &RunState,
        touched: impl IntoIterator<Item = &'a JobKey>,
    ) {
        if state.conclusion.is_some() {
            if let Some(jobs) = self.by_job.remove(&run_id) {
                for slot in jobs.into_values().flatten() {
                    self.due.remove(&slot);
                }
            }
            return;
        }
        let Some(jobs) = self.by_job.get_mut(&run_id) else {
            return;
        };
        for key in touched {
            let Some(slots) = jobs.get_mut(key) else {
                continue;
            };
            slots.retain(|slot| {
                let live = self
                    .due
                    .get(slot)
                    .is_some_and(|(_, kind)| is_live(state, kind));
                if !live {
                    self.due.remove(slot);
                }
                live
            });
            if slots.is_empty() {
                jobs.remove(key);
            }
        }
        if jobs.is_empty() {
            self.by_job.remove(&run_id);
        }
    }

    fn unindex(&mut self, run_id: RunId, job: &JobKey, slot: Slot) {
        let Some(jobs) = self.by_job.get_mut(&run_id) else {
            return;
        };
        if let Some(slots) = jobs.get_mut(job) {
            slots.retain(|kept| *kept != slot);
            if slots.is_empty() {
                jobs.remove(job);
            }
        }
        if jobs.is_empty() {
            self.by_job.remove(&run_id);
        }
    }
}

/// Whether `kind` still guards something in `state`: its instance is at the timer's attempt
/// and in the status the timer is about.
fn is_live(state: &RunState, kind: &TimerKind) -> bool {
    let Some(instance) = state.instance(kind.job()) else {
        return false;
    };
    if instance.attempt != kind.attempt() {
        return false;
    }
    match kind {
        TimerKind::QueueTimeout { .. } => instance.status == JobStatus::Queued,
        TimerKind::JobTimeout { .. } | TimerKind::CancelGrace { .. } => {
            instance.status == JobStatus::InProgress
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1 as proto;

    use crate::test_support::one_job;

    /// A job's queue timeout goes when it starts, its job timeout when it ends: nothing is
    /// left pending for a finished run (before, both lingered for up to a day).
    #[tokio::test]
    async fn a_jobs_timers_go_as_it_moves_on() {
        let fixture = one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        assert_eq!(app.pending_timer_count(), 1, "the queue timeout");
        app.start_job(job.run_id.0, job.id.0).await.unwrap();
        assert_eq!(app.pending_timer_count(), 1, "only the job timeout");
        let done = proto::CompleteJob {
            conclusion: proto::Conclusion::Success,
            outputs: Default::default(),
        };
        app.complete_job(job.run_id.0, job.id.0, done)
            .await
            .unwrap();
        assert_eq!(app.pending_timer_count(), 0);
    }

    /// A cancelled queued job leaves no queue timeout behind.
    #[tokio::test]
    async fn a_cancelled_runs_timers_go() {
        let fixture = one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        app.cancel_run(job.run_id.0).await.unwrap();
        assert_eq!(app.pending_timer_count(), 0);
    }
}
