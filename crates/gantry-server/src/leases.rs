//! Leases over time: the watcher that expires leases of silent runners (the engine then
//! re-queues the job at the front of its organization, or fails it as "runner lost"), and the
//! rebuild of the queue and the leases from the store after a restart.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use gantry_engine::{Event, Millis, RunState};
use gantry_store::RunId;

use crate::app::App;
use crate::convert::{self, now};
use crate::dispatcher::{self, LeaseEntry};
use crate::error::ApiError;

/// The lease watcher's shortest sleep.
const LEASE_TICK: Duration = Duration::from_millis(200);

impl App {
    /// Expires leases whose runners went silent, forever; run it as a background task. A
    /// lost attempt goes to the engine, which queues the job again at the front of its
    /// organization (or fails it with "runner lost" after the retries).
    pub async fn run_lease_watcher(self: Arc<App>) {
        loop {
            let wait = match self.dispatch.next_deadline() {
                None => Duration::from_secs(3600),
                // At most one scan of the lease table per tick: with many leases heartbeating,
                // the earliest deadline moves forward all the time, and waking exactly at it
                // would scan the whole table thousands of times a second. A lease ends at most
                // one tick late.
                Some(deadline) => {
                    Duration::from_millis(deadline.0.saturating_sub(now().0).saturating_add(1))
                        .max(LEASE_TICK)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.lease_changed.notified() => continue,
            }
            for (job, lease) in self.dispatch.expired_leases(now()) {
                tracing::warn!(job_id = %job, runner_id = %lease.runner, attempt = %lease.attempt, "lease expired: runner lost");
                let event = Event::JobLost {
                    job: lease.key.clone(),
                    attempt: lease.attempt,
                };
                if let Err(error) = self.drive(lease.run_id, event.clone(), None).await {
                    // A claim whose start the engine never heard of (the server failed between
                    // the two): tell it of the start, then of the loss.
                    let replayed = match self.store.get_job(job).await {
                        Ok(row) => self.replay_claim(&row).await.unwrap_or(false),
                        Err(_) => false,
                    };
                    let retried = if replayed {
                        self.drive(lease.run_id, event, None).await.map(|_| ())
                    } else {
                        Err(error)
                    };
                    if let Err(error) = retried {
                        tracing::warn!(job_id = %job, error = %error, "lost attempt refused by the engine");
                    }
                }
            }
        }
    }

    /// Rebuilds the dispatcher: the queued jobs into the fair queue, then the leases of the
    /// attempts runners hold. The job rows carry labels and priority; the `runs-on` group and
    /// whether the job is an infrastructure retry live in the run's engine state, read once per
    /// run that has queued jobs.
    pub(crate) async fn recover_dispatch(
        &self,
        queued: &[gantry_store::QueuedJob],
    ) -> Result<(), ApiError> {
        let mut states: HashMap<RunId, Option<RunState>> = HashMap::new();
        for waiting in queued {
            let run_id = waiting.job.run_id;
            self.set_owner(run_id, waiting.repo_id, waiting.org_id);
            let settings = self.org_settings(waiting.org_id).await;
            if let Entry::Vacant(slot) = states.entry(run_id) {
                let state = match self.load_state(run_id).await {
                    Ok((state, _)) => Some(state),
                    Err(error) => {
                        // Still queue the job: its labels alone let a runner take it.
                        tracing::error!(run_id = %run_id, error = %error, "cannot read run state: queued jobs recovered without their runner group");
                        None
                    }
                };
                slot.insert(state);
            }
            let instance = states
                .get(&run_id)
                .and_then(Option::as_ref)
                .and_then(|state| state.instance(&convert::job_key(&waiting.job)));
            self.dispatch.push(
                dispatcher::Waiting {
                    job: waiting.job.id,
                    org: waiting.org_id,
                    repo: waiting.repo_id,
                    run: run_id,
                    labels: waiting.job.runs_on.clone(),
                    group: instance
                        .and_then(|instance| instance.setup.as_ref())
                        .and_then(|setup| setup.runner_group.clone()),
                    priority: dispatcher::clamp_priority(waiting.job.priority),
                    queued_at: Millis(
                        u64::try_from(waiting.job.queued_at_ms.unwrap_or(0)).unwrap_or(0),
                    ),
                    front: instance.is_some_and(|instance| instance.runner_lost > 0),
                },
                settings,
            );
        }
        self.recover_leases().await?;
        Ok(())
    }

    /// Rebuilds the leases of running attempts held by real runners: each gets a full lease
    /// from now, since the server cannot know how long it was down.
    async fn recover_leases(&self) -> Result<usize, ApiError> {
        let attempts = self.store.running_attempts().await?;
        let deadline = now().after(Millis(self.dispatch.settings.lease_ms));
        let mut count = 0;
        for attempt in attempts {
            let Some(runner) = attempt.runner_id.filter(|runner| runner.0 > 0) else {
                continue;
            };
            let job = self.store.get_job(attempt.job_id).await?;
            let mut state = self.dispatch.lock();
            state.leases.insert(
                attempt.job_id,
                LeaseEntry {
                    runner,
                    token: attempt.fencing_token,
                    run_id: attempt.run_id,
                    key: convert::job_key(&job),
                    attempt: gantry_engine::Attempt(
                        u32::try_from(attempt.attempt).unwrap_or(u32::MAX),
                    ),
                    deadline,
                    cancel_requested: false,
                },
            );
            if let Some(entry) = state.runners.get_mut(&runner) {
                entry.held.insert(attempt.job_id);
            }
            count += 1;
        }
        self.lease_changed.notify_one();
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use gantry_store::{JobStatus, RunnerId};

    use super::*;

    /// The store has a claim the engine never heard of (the server failed between the two)
    /// and the runner is gone: when the lease expires, the start is replayed to the engine and
    /// the job is queued again as a lost attempt — not left "in progress" forever.
    #[tokio::test]
    async fn an_expired_lease_of_an_unheard_claim_requeues_the_job() {
        let fixture = crate::test_support::one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        let time = now();
        let claim = fixture.claim_in_store(0).await;
        app.dispatch.lock().leases.insert(
            job.id,
            LeaseEntry {
                runner: RunnerId(5),
                token: claim.fencing_token,
                run_id: job.run_id,
                key: convert::job_key(job),
                attempt: gantry_engine::Attempt(1),
                deadline: time,
                cancel_requested: false,
            },
        );
        let watcher = tokio::spawn(Arc::clone(app).run_lease_watcher());
        app.lease_changed.notify_one();
        for _ in 0..100 {
            let row = app.store.get_job(job.id).await.unwrap();
            if row.status == JobStatus::Queued && row.attempt == 2 {
                watcher.abort();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the job was not queued again");
    }
}
