//! The dispatcher's memory: the fair queue of jobs waiting for a runner, the runners the
//! server has heard of, and the leases of claimed jobs.
//!
//! Everything here is rebuilt from the store on start, so it is only ever a faster view of
//! it. The order of jobs is the engine's [`FairQueue`] (pure); this module adds what needs a
//! clock and a lock: which runner holds which job under which fencing token until when, and
//! which runners are online. Lease deadlines live only in memory: a heartbeat is a lock and a
//! map update, not a database write, which is what lets one node carry hundreds of thousands
//! of leased jobs. After a restart every running attempt gets a fresh full lease.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use foldhash::{HashMap, HashSet};
use gantry_engine::dispatch::{
    FairQueue, LabelSet, OrgRef, OrgSettings, Placement, QueueConfig, QueuedJob, QueuedJobRef,
    RepoRef, RunRef, RunnerView,
};
use gantry_engine::{Attempt, JobKey, Millis};
use gantry_store::{FencingToken, JobId, OrgId, RunId, RunnerId};

use crate::waiters::{WaiterId, Waiters};

/// How often runners heartbeat and how long a lease lasts without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerSettings {
    /// The heartbeat interval runners are told to keep.
    pub heartbeat_interval_ms: u64,
    /// A lease not renewed for this long expires: the attempt is lost.
    pub lease_ms: u64,
}

impl Default for RunnerSettings {
    fn default() -> RunnerSettings {
        RunnerSettings {
            heartbeat_interval_ms: 5_000,
            lease_ms: 30_000,
        }
    }
}

/// A runner as the dispatcher knows it.
#[derive(Debug, Clone)]
pub(crate) struct RunnerEntry {
    pub view: RunnerView,
    pub capacity: usize,
    pub ephemeral: bool,
    pub credential_hash: String,
    pub last_seen: Millis,
    /// Its jobs with a live lease.
    pub held: BTreeSet<JobId>,
    /// An ephemeral runner that has had its job: it claims nothing more.
    pub spent: bool,
}

/// A claimed job's lease.
#[derive(Debug, Clone)]
pub(crate) struct LeaseEntry {
    pub runner: RunnerId,
    pub token: FencingToken,
    pub run_id: RunId,
    pub key: JobKey,
    pub attempt: Attempt,
    pub deadline: Millis,
    /// The engine asked the runner to stop the job; the next heartbeat says so.
    pub cancel_requested: bool,
}

/// What the dispatcher's lock guards.
#[derive(Default)]
pub(crate) struct DispatchState {
    pub queue: FairQueue,
    /// Organizations whose settings the queue has.
    pub orgs_known: HashSet<OrgId>,
    pub runners: HashMap<RunnerId, RunnerEntry>,
    pub leases: HashMap<JobId, LeaseEntry>,
    /// Long-polling claims that found nothing: a job queued wakes one that can take it.
    pub waiters: Waiters,
}

impl DispatchState {
    /// Wakes a waiting claim whose runner can take `job` now (registered, not spent, with a
    /// free slot, labels and scope matching, and hosted only while the job's organization is
    /// below its hosted limit: a hosted claim woken for it would find nothing, and a
    /// self-hosted runner of the organization further down the line would not hear of it).
    pub(crate) fn wake_for(&mut self, job: QueuedJobRef) {
        let Some(queued) = self.queue.job(job) else {
            return;
        };
        let hosted_open = self.queue.hosted_open(queued.org);
        let runners = &self.runners;
        self.waiters.wake_one(|runner, view| {
            runners.get(&runner).is_some_and(|entry| {
                !entry.spent
                    && entry.held.len() < entry.capacity
                    && view.can_take(queued)
                    && (hosted_open || view.placement() != Placement::Hosted)
            })
        });
    }

    /// Gives a picked job back to the queue (nothing was written for it) and wakes a claim
    /// that can take it.
    pub(crate) fn release(&mut self, job: JobId) {
        if self.queue.release(job_ref(job)).is_ok() {
            self.wake_for(job_ref(job));
        }
    }
}

/// The dispatcher: its state behind one lock.
pub(crate) struct Dispatcher {
    state: Mutex<DispatchState>,
    pub settings: RunnerSettings,
}

/// The queue's reference for a job: its id.
pub(crate) fn job_ref(job: JobId) -> QueuedJobRef {
    QueuedJobRef(job.0)
}

/// The store's id of a queue reference.
pub(crate) fn job_id(job: QueuedJobRef) -> JobId {
    JobId(job.0)
}

/// A stored priority as the queue's: the API only stores `i32` values, so a row out of range
/// was written by something else and is clamped rather than refused.
pub(crate) fn clamp_priority(priority: i64) -> i32 {
    i32::try_from(priority).unwrap_or(if priority < 0 { i32::MIN } else { i32::MAX })
}

/// The queue's view of a job waiting for a runner.
pub(crate) struct Waiting {
    pub job: JobId,
    pub org: OrgId,
    pub repo: gantry_store::RepoId,
    pub run: RunId,
    pub labels: Vec<String>,
    pub group: Option<String>,
    pub priority: i32,
    pub queued_at: Millis,
    /// An infrastructure retry: to the front of its organization's queue.
    pub front: bool,
}

impl Waiting {
    fn into_queued(self) -> QueuedJob {
        QueuedJob {
            job: job_ref(self.job),
            org: OrgRef(self.org.0),
            repo: RepoRef(self.repo.0),
            run: RunRef(self.run.0),
            labels: LabelSet::new(&self.labels),
            group: self.group,
            priority: self.priority,
            enqueued_at: self.queued_at,
            front: self.front,
        }
    }
}

impl Dispatcher {
    pub(crate) fn new(settings: RunnerSettings) -> Dispatcher {
        Dispatcher {
            state: Mutex::new(DispatchState {
                queue: FairQueue::new(QueueConfig::default()),
                ..DispatchState::default()
            }),
            settings,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DispatchState> {
        // Plain data; a panic elsewhere leaves it usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts a job in the queue (replacing what the queue had of it: a job queued again after
    /// its runner was lost is still in the queue as running).
    pub(crate) fn push(&self, waiting: Waiting, settings: Option<(OrgId, OrgSettings)>) {
        let job = waiting.job;
        {
            let mut state = self.lock();
            if let Some((org, settings)) = settings
                && state.queue.set_org(OrgRef(org.0), settings).is_ok()
            {
                state.orgs_known.insert(org);
            }
            let _ = state.queue.remove(job_ref(job));
            if let Err(error) = state.queue.push(waiting.into_queued()) {
                tracing::error!(job_id = %job, error = %error, "cannot queue job for runners");
                return;
            }
            state.wake_for(job_ref(job));
        }
    }

    /// Forgets a job that no longer waits for a runner (or has ended), with its lease.
    pub(crate) fn forget(&self, job: JobId) {
        let mut state = self.lock();
        let was_running = state.queue.running(job_ref(job)).is_some();
        let _ = state.queue.remove(job_ref(job));
        if let Some(lease) = state.leases.remove(&job)
            && let Some(runner) = state.runners.get_mut(&lease.runner)
        {
            runner.held.remove(&job);
        }
        if was_running && state.queue.queued_len() > 0 {
            // A quota slot came free: a job held back by its organization's limit may go,
            // to whichever waiting claim can take it.
            state.waiters.wake_all();
        }
    }

    /// Takes a claim out of the line: true if it was still waiting, false if it was woken.
    pub(crate) fn stop_waiting(&self, id: WaiterId) -> bool {
        self.lock().waiters.remove(id)
    }

    /// Wakes every waiting claim to look at the queue again.
    pub(crate) fn wake_all(&self) {
        self.lock().waiters.wake_all();
    }

    /// Moves a waiting job to its new place among its run's jobs; a job the queue does not
    /// hold (not queued, or running) only keeps the priority for a later push.
    pub(crate) fn set_priority(&self, job: JobId, priority: i32) {
        // Unknown to the queue is fine: the stored row is what a later push reads.
        let _ = self.lock().queue.set_priority(job_ref(job), priority);
    }

    /// Whether the queue knows an organization's settings.
    pub(crate) fn knows_org(&self, org: OrgId) -> bool {
        self.lock().orgs_known.contains(&org)
    }

    /// Marks the lease of `job` as asked to stop.
    pub(crate) fn request_cancel(&self, job: JobId) {
        if let Some(lease) = self.lock().leases.get_mut(&job) {
            lease.cancel_requested = true;
        }
    }

    /// Takes every lease whose deadline has passed out of the table.
    pub(crate) fn expired_leases(&self, now: Millis) -> Vec<(JobId, LeaseEntry)> {
        let mut state = self.lock();
        let expired: Vec<JobId> = state
            .leases
            .iter()
            .filter(|(_, lease)| lease.deadline < now)
            .map(|(job, _)| *job)
            .collect();
        let mut taken = Vec::with_capacity(expired.len());
        for job in expired {
            if let Some(lease) = state.leases.remove(&job) {
                if let Some(runner) = state.runners.get_mut(&lease.runner) {
                    runner.held.remove(&job);
                }
                taken.push((job, lease));
            }
        }
        taken
    }

    /// The earliest lease deadline, if any lease is live.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        self.lock()
            .leases
            .values()
            .map(|lease| lease.deadline)
            .min()
    }

    /// The views of the runners heard from within a lease.
    pub(crate) fn online_views(&self, now: Millis) -> Vec<RunnerView> {
        let lease = Millis(self.settings.lease_ms);
        self.lock()
            .runners
            .values()
            .filter(|runner| !runner.spent && runner.last_seen.after(lease) >= now)
            .map(|runner| runner.view.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(view: RunnerView) -> RunnerEntry {
        RunnerEntry {
            view,
            capacity: 1,
            ephemeral: false,
            credential_hash: String::new(),
            last_seen: Millis(0),
            held: BTreeSet::new(),
            spent: false,
        }
    }

    /// An organization at its hosted limit: its queued job wakes its own self-hosted runner's
    /// claim, not the hosted one waiting longer, which could not take the job.
    #[tokio::test]
    async fn a_job_over_its_hosted_limit_wakes_a_self_hosted_claim() {
        let dispatcher = Dispatcher::new(RunnerSettings::default());
        let labels = LabelSet::new(["linux"]);
        let (hosted, own) = (RunnerId(1), RunnerId(2));
        let (hosted_bell, own_bell) = {
            let mut state = dispatcher.lock();
            let hosted_view = RunnerView::hosted(labels.clone());
            let own_view = RunnerView::self_hosted(labels.clone(), OrgRef(7));
            state.runners.insert(hosted, runner(hosted_view.clone()));
            state.runners.insert(own, runner(own_view.clone()));
            let (_, hosted_bell) = state.waiters.add(hosted, hosted_view);
            let (_, own_bell) = state.waiters.add(own, own_view);
            (hosted_bell, own_bell)
        };
        let no_hosted_jobs = OrgSettings {
            weight: 1,
            hosted_limit: Some(0),
        };
        dispatcher.push(
            Waiting {
                job: JobId(1),
                org: OrgId(7),
                repo: gantry_store::RepoId(1),
                run: RunId(1),
                labels: vec!["linux".to_owned()],
                group: None,
                priority: 0,
                queued_at: Millis(0),
                front: false,
            },
            Some((OrgId(7), no_hosted_jobs)),
        );
        tokio::time::timeout(std::time::Duration::from_secs(5), own_bell.notified())
            .await
            .expect("the self-hosted claim is woken");
        let still_waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), hosted_bell.notified())
                .await;
        assert!(still_waiting.is_err(), "the hosted claim was woken");
    }
}
