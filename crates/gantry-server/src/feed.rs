//! Keeps the dispatcher in step with committed changes: jobs the engine queued go into the
//! fair queue, jobs that stopped waiting (or ended) leave it, and cancel requests reach the
//! leases so the runner hears of them at its next heartbeat.

use gantry_engine::dispatch::OrgSettings;
use gantry_engine::{JobKey, JobStatus as EngineJobStatus, RunState};
use gantry_store::{JobId, JobStatus, OrgId, RunId};

use crate::app::App;
use crate::dispatcher::Waiting;

impl App {
    /// Applies one committed transition's job changes to the dispatcher.
    pub(crate) async fn feed_dispatcher(
        &self,
        run_id: RunId,
        state: &RunState,
        changes: &[(JobId, JobKey, JobStatus, i64)],
        cancels: &[JobId],
    ) {
        for &job in cancels {
            self.dispatch.request_cancel(job);
        }
        for (job, key, status, priority) in changes {
            match status {
                JobStatus::Queued => {
                    self.queue_for_runners(run_id, state, *job, key, *priority)
                        .await;
                }
                // A runner's claim moved it there and holds its lease; an internal start
                // (tests, the crash driver) has no lease and just leaves the queue.
                JobStatus::InProgress => {
                    let leased = self.dispatch.lock().leases.contains_key(job);
                    if !leased {
                        self.dispatch.forget(*job);
                    }
                }
                JobStatus::Waiting | JobStatus::Completed => {
                    self.dispatch.forget(*job);
                    if *status == JobStatus::Completed {
                        self.ring_log(*job);
                    }
                }
            }
        }
    }

    /// Puts a queued job in the fair queue; `priority` is its row's (set by the priority API,
    /// kept across attempts).
    async fn queue_for_runners(
        &self,
        run_id: RunId,
        state: &RunState,
        job: JobId,
        key: &JobKey,
        priority: i64,
    ) {
        let Some(instance) = state.instance(key) else {
            return;
        };
        if instance.status != EngineJobStatus::Queued {
            return;
        }
        let (repo, org) = match self.owner(run_id).await {
            Ok(owner) => owner,
            Err(error) => {
                tracing::error!(run_id = %run_id, error = %error, "cannot queue job: run owner unknown");
                return;
            }
        };
        let settings = self.org_settings(org).await;
        let setup = instance.setup.as_ref();
        let waiting = Waiting {
            job,
            org,
            repo,
            run: run_id,
            labels: setup.map(|setup| setup.labels.clone()).unwrap_or_default(),
            group: setup.and_then(|setup| setup.runner_group.clone()),
            priority: crate::dispatcher::clamp_priority(priority),
            queued_at: instance.queued_at.unwrap_or_else(crate::convert::now),
            // Queued again after its runner was lost: an infrastructure retry.
            front: instance.runner_lost > 0,
        };
        self.dispatch.push(waiting, settings);
    }

    /// Makes sure the queue has an organization's weight and hosted limit.
    pub(crate) async fn org_settings(&self, org: OrgId) -> Option<(OrgId, OrgSettings)> {
        if self.dispatch.knows_org(org) {
            return None;
        }
        match self.store.get_organization(org).await {
            Ok(record) => Some((
                org,
                OrgSettings {
                    weight: u32::try_from(record.weight).unwrap_or(1).max(1),
                    hosted_limit: record
                        .hosted_concurrency_limit
                        .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX)),
                },
            )),
            Err(error) => {
                tracing::error!(org_id = %org, error = %error, "cannot read organization settings");
                None
            }
        }
    }
}
