//! The fair queue itself: every job that waits for a runner, indexed so that `pick` touches
//! only the label pools a runner can serve and walks the fair-share hierarchy by sorted sets.
//!
//! Layout. Jobs are grouped into *pools*, one per distinct (normalized label set, runner group).
//! Inside a pool the waiting jobs form a tree: organization → repository → run → jobs, where
//! every level is a sorted set of its children keyed by the child's fair-share key. Each
//! entity keeps its children's sets itself, one per pool it has waiting jobs in (a pool has
//! its organizations; an organization, per pool, its repositories and front jobs; a
//! repository its runs; a run its jobs), so walking down the tree costs one map lookup per
//! level. The keys are global (an organization's key is the same in every pool), so the best
//! child across several pools is the minimum of each pool's first child. When an entity's
//! running count changes its key is moved in exactly the sets of the pools it waits in:
//! O(pools of that entity × log n).
//!
//! A runner's eligible pools (label set ⊆ runner labels) are computed once per distinct
//! runner label set and cached; a new pool is added to every cached answer it fits.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::error::DispatchError;
use super::hash::FastMap;
use super::model::{
    LabelSet, OrgRef, OrgSettings, Placement, QueueConfig, QueuedJob, QueuedJobRef, RepoRef,
    RunRef, RunnerScope, RunnerView, normalize_group, same_group,
};
use crate::ids::Millis;

/// Index of a pool (one distinct label set and runner group) in `FairQueue::pools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PoolId(u32);

/// Organization order on hosted runners: the D'Hondt quotient `(running + 1) / weight` in
/// 32.32 fixed point (smaller first), then least recently served, then id.
pub(crate) type OrgKey = (u64, u64, OrgRef);
/// Repository order inside an organization: running jobs, least recently served, id.
pub(crate) type RepoKey = (u32, u64, RepoRef);
/// Run order inside a repository: running jobs, least recently served, id.
pub(crate) type RunKey = (u32, u64, RunRef);
/// Job order inside a run: aged priority (higher first), then FIFO, then id.
pub(crate) type JobKey = (Reverse<i128>, Millis, QueuedJobRef);
/// Front-of-queue order (infrastructure retries): FIFO, then id.
pub(crate) type FrontKey = (Millis, QueuedJobRef);

/// One entity's children waiting in one pool, as a sorted set.
#[derive(Debug, Clone)]
pub(crate) struct PoolSet<K> {
    pub(crate) pool: PoolId,
    pub(crate) set: BTreeSet<K>,
}

/// The entry for `pool` in an entity's per-pool sets, created empty if missing. Entities wait
/// in few pools, so a short vector beats a map.
fn slot<K>(sets: &mut Vec<PoolSet<K>>, pool: PoolId) -> &mut PoolSet<K> {
    let index = match sets.iter().position(|entry| entry.pool == pool) {
        Some(index) => index,
        None => {
            sets.push(PoolSet {
                pool,
                set: BTreeSet::new(),
            });
            sets.len() - 1
        }
    };
    &mut sets[index]
}

pub(crate) fn find<K>(sets: &[PoolSet<K>], pool: PoolId) -> Option<&PoolSet<K>> {
    sets.iter().find(|entry| entry.pool == pool)
}

#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) labels: LabelSet,
    pub(crate) group: Option<Box<str>>,
    /// Organizations with waiting jobs here that are below their hosted limit.
    pub(crate) hosted_orgs: BTreeSet<OrgKey>,
}

/// An organization's waiting jobs in one pool: front jobs, and the repositories with jobs.
#[derive(Debug, Clone)]
pub(crate) struct OrgPool {
    pub(crate) pool: PoolId,
    pub(crate) repos: BTreeSet<RepoKey>,
    pub(crate) front: BTreeSet<FrontKey>,
}

impl OrgPool {
    fn is_empty(&self) -> bool {
        self.repos.is_empty() && self.front.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OrgState {
    pub(crate) settings: OrgSettings,
    pub(crate) running_hosted: u32,
    pub(crate) running: u32,
    pub(crate) queued: u32,
    pub(crate) last_served: u64,
    /// One entry per pool with waiting jobs of this organization (never empty ones).
    pub(crate) pools: Vec<OrgPool>,
}

impl OrgState {
    fn new(settings: OrgSettings, joined: u64) -> OrgState {
        OrgState {
            settings,
            running_hosted: 0,
            running: 0,
            queued: 0,
            last_served: joined,
            pools: Vec::new(),
        }
    }

    pub(crate) fn key(&self, org: OrgRef) -> OrgKey {
        (
            share(self.running_hosted, self.settings.weight),
            self.last_served,
            org,
        )
    }

    /// Whether hosted runners may give this organization another job.
    pub(crate) fn hosted_open(&self) -> bool {
        self.settings
            .hosted_limit
            .is_none_or(|limit| self.running_hosted < limit)
    }

    pub(crate) fn pool(&self, pool: PoolId) -> Option<&OrgPool> {
        self.pools.iter().find(|entry| entry.pool == pool)
    }
}

/// The D'Hondt quotient `(running + 1) / weight` in 32.32 fixed point.
pub(crate) fn share(running_hosted: u32, weight: u32) -> u64 {
    ((u64::from(running_hosted) + 1) << 32) / u64::from(weight.max(1))
}

/// A repository (children: runs) or a run (children: jobs): both are ordered by running count,
/// then least recently served.
#[derive(Debug, Clone)]
pub(crate) struct Member<Parent, Child> {
    pub(crate) parent: Parent,
    pub(crate) running: u32,
    pub(crate) queued: u32,
    pub(crate) last_served: u64,
    /// Per pool, the waiting children in the fair-share tree (front jobs are not in it); never
    /// empty sets.
    pub(crate) pools: Vec<PoolSet<Child>>,
}

impl<Parent, Child> Member<Parent, Child> {
    fn new(parent: Parent, joined: u64) -> Member<Parent, Child> {
        Member {
            parent,
            running: 0,
            queued: 0,
            last_served: joined,
            pools: Vec::new(),
        }
    }

    pub(crate) fn key<Id>(&self, id: Id) -> (u32, u64, Id) {
        (self.running, self.last_served, id)
    }
}

pub(crate) type RepoState = Member<OrgRef, RunKey>;
pub(crate) type RunState = Member<RepoRef, JobKey>;

#[derive(Debug, Clone)]
pub(crate) struct JobRecord {
    pub(crate) job: QueuedJob,
    pub(crate) pool: PoolId,
    pub(crate) score: i128,
    /// `Some` while a runner holds the job.
    pub(crate) running: Option<(Placement, Millis)>,
}

impl JobRecord {
    pub(crate) fn key(&self) -> JobKey {
        (Reverse(self.score), self.job.enqueued_at, self.job.job)
    }

    pub(crate) fn front_key(&self) -> FrontKey {
        (self.job.enqueued_at, self.job.job)
    }
}

/// The dispatcher's queue: every job waiting for a runner and every job a runner holds, with
/// the fair-share bookkeeping that decides which job a runner gets next.
///
/// Every path out of running gives the slot back: [`FairQueue::finish`] (the attempt ended),
/// [`FairQueue::release`] (the claim did not happen: the job waits again as before) and
/// [`FairQueue::remove`] (cancelled while queued or running).
#[derive(Debug, Clone, Default)]
pub struct FairQueue {
    pub(crate) config: QueueConfig,
    pub(crate) settings: FastMap<OrgRef, OrgSettings>,
    pub(crate) pools: Vec<Pool>,
    pub(crate) pool_ids: FastMap<(LabelSet, Option<Box<str>>), PoolId>,
    /// Eligible pools per distinct runner label set (any group; filtered at pick time).
    pub(crate) eligible: FastMap<LabelSet, Arc<[PoolId]>>,
    pub(crate) orgs: FastMap<OrgRef, OrgState>,
    pub(crate) repos: FastMap<RepoRef, RepoState>,
    pub(crate) runs: FastMap<RunRef, RunState>,
    pub(crate) jobs: FastMap<QueuedJobRef, JobRecord>,
    /// Counts picks; an entity's `last_served` is the pick that last served it.
    pub(crate) picks: u64,
    pub(crate) queued: usize,
}

impl FairQueue {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> FairQueue {
        FairQueue {
            config,
            ..FairQueue::default()
        }
    }

    /// Rebuilds the queue at server start: organization settings, the jobs that wait and the
    /// jobs runners hold (they count toward limits and fair share until they end).
    pub fn rebuild(
        config: QueueConfig,
        orgs: impl IntoIterator<Item = (OrgRef, OrgSettings)>,
        queued: impl IntoIterator<Item = QueuedJob>,
        running: impl IntoIterator<Item = (QueuedJob, Placement, Millis)>,
    ) -> Result<FairQueue, DispatchError> {
        let mut queue = FairQueue::new(config);
        for (org, settings) in orgs {
            queue.set_org(org, settings)?;
        }
        for job in queued {
            queue.push(job)?;
        }
        for (job, placement, since) in running {
            queue.check_new(&job)?;
            let id = job.job;
            let record = queue.record_for(job);
            let (org, repo, run) = (record.job.org, record.job.repo, record.job.run);
            queue.jobs.insert(id, record);
            queue.ensure_entities(org, repo, run);
            queue.change_running(org, repo, run, placement, Delta::Start, false);
            if let Some(record) = queue.jobs.get_mut(&id) {
                record.running = Some((placement, since));
            }
        }
        Ok(queue)
    }

    /// The ordering settings.
    pub fn config(&self) -> QueueConfig {
        self.config
    }

    /// How many jobs wait.
    pub fn queued_len(&self) -> usize {
        self.queued
    }

    /// How many jobs runners hold.
    pub fn running_len(&self) -> usize {
        self.jobs.len() - self.queued
    }

    /// The job, waiting or running.
    pub fn job(&self, job: QueuedJobRef) -> Option<&QueuedJob> {
        self.jobs.get(&job).map(|record| &record.job)
    }

    /// Where and since when the job runs; `None` while it waits (or is unknown).
    pub fn running(&self, job: QueuedJobRef) -> Option<(Placement, Millis)> {
        self.jobs.get(&job).and_then(|record| record.running)
    }

    /// An organization's running jobs: (on hosted runners, in all).
    pub fn org_running(&self, org: OrgRef) -> (u32, u32) {
        self.orgs
            .get(&org)
            .map_or((0, 0), |state| (state.running_hosted, state.running))
    }

    /// Whether hosted runners may give `org` another job now (it is below its hosted limit).
    pub fn hosted_open(&self, org: OrgRef) -> bool {
        match self.orgs.get(&org) {
            Some(state) => state.hosted_open(),
            // Nothing of it runs.
            None => self
                .org_settings(org)
                .hosted_limit
                .is_none_or(|limit| limit > 0),
        }
    }

    /// An organization's settings (the defaults if never set).
    pub fn org_settings(&self, org: OrgRef) -> OrgSettings {
        self.settings.get(&org).copied().unwrap_or_default()
    }

    /// Sets an organization's weight and hosted limit; running jobs above a lowered limit keep
    /// running, and the organization gets no hosted runner until it is below the limit again.
    pub fn set_org(&mut self, org: OrgRef, settings: OrgSettings) -> Result<(), DispatchError> {
        if settings.weight == 0 || settings.weight > OrgSettings::MAX_WEIGHT {
            return Err(DispatchError::InvalidWeight {
                org,
                weight: settings.weight,
            });
        }
        self.settings.insert(org, settings);
        if let Some(state) = self.orgs.get_mut(&org) {
            let (old_key, old_open) = (state.key(org), state.hosted_open());
            state.settings = settings;
            let (new_key, new_open) = (state.key(org), state.hosted_open());
            for entry in &state.pools {
                let hosted = &mut self.pools[entry.pool.0 as usize].hosted_orgs;
                if old_open {
                    hosted.remove(&old_key);
                }
                if new_open {
                    hosted.insert(new_key);
                }
            }
        }
        Ok(())
    }

    /// Adds a waiting job.
    pub fn push(&mut self, job: QueuedJob) -> Result<(), DispatchError> {
        self.check_new(&job)?;
        let id = job.job;
        let record = self.record_for(job);
        let (org, repo, run) = (record.job.org, record.job.repo, record.job.run);
        self.jobs.insert(id, record);
        self.ensure_entities(org, repo, run);
        self.attach(id);
        Ok(())
    }

    /// Removes a job, waiting or running (cancelled, or its attempt ended some other way); a
    /// running job gives its slot back. Returns the job.
    pub fn remove(&mut self, job: QueuedJobRef) -> Result<QueuedJob, DispatchError> {
        let record = self.jobs.get(&job).ok_or(DispatchError::UnknownJob(job))?;
        let (org, repo, run) = (record.job.org, record.job.repo, record.job.run);
        match record.running {
            None => self.detach(job),
            Some((placement, _)) => {
                self.change_running(org, repo, run, placement, Delta::End, false);
            }
        }
        let record = self
            .jobs
            .remove(&job)
            .ok_or(DispatchError::UnknownJob(job))?;
        self.collect(org, repo, run);
        Ok(record.job)
    }

    /// A running job's attempt ended (success, failure, cancellation, lost runner): its slot is
    /// given back and the job is forgotten. A retry is a new [`FairQueue::push`].
    pub fn finish(&mut self, job: QueuedJobRef) -> Result<QueuedJob, DispatchError> {
        let record = self.jobs.get(&job).ok_or(DispatchError::UnknownJob(job))?;
        if record.running.is_none() {
            return Err(DispatchError::NotRunning(job));
        }
        self.remove(job)
    }

    /// A picked job was not claimed after all (the claim's transaction failed, the runner went
    /// away before it acknowledged): its slot is given back and it waits again exactly as
    /// before, with its place in the order.
    pub fn release(&mut self, job: QueuedJobRef) -> Result<(), DispatchError> {
        let record = self
            .jobs
            .get_mut(&job)
            .ok_or(DispatchError::UnknownJob(job))?;
        let Some((placement, _)) = record.running.take() else {
            return Err(DispatchError::NotRunning(job));
        };
        let (org, repo, run) = (record.job.org, record.job.repo, record.job.run);
        self.change_running(org, repo, run, placement, Delta::End, false);
        self.attach(job);
        Ok(())
    }

    /// Changes a job's priority; a waiting job moves to its new place in its run.
    pub fn set_priority(&mut self, job: QueuedJobRef, priority: i32) -> Result<(), DispatchError> {
        let record = self.jobs.get(&job).ok_or(DispatchError::UnknownJob(job))?;
        let waiting = record.running.is_none();
        let score = self.config.score(priority, record.job.enqueued_at);
        if waiting {
            self.detach(job);
        }
        if let Some(record) = self.jobs.get_mut(&job) {
            record.job.priority = priority;
            record.score = score;
        }
        if waiting {
            self.attach(job);
        }
        Ok(())
    }

    /// Which job `runner` gets now, if any: the fairest waiting job it can take. The job is
    /// recorded as running (it counts toward its organization's limit and fair share) until
    /// [`FairQueue::finish`], [`FairQueue::release`] or [`FairQueue::remove`].
    pub fn pick(&mut self, runner: &RunnerView, now: Millis) -> Option<QueuedJobRef> {
        let eligible = Eligible {
            pools: self.eligible_pools(&runner.labels),
            group: runner.group(),
        };
        let job = match &runner.scope {
            RunnerScope::Hosted => {
                let org = eligible
                    .pools
                    .iter()
                    .filter(|&&pool| eligible.group_fits(&self.pools[pool.0 as usize]))
                    .filter_map(|pool| self.pools[pool.0 as usize].hosted_orgs.first())
                    .min()?
                    .2;
                self.best_in_org(org, &eligible, None)?
            }
            RunnerScope::SelfHosted(scope) => {
                self.best_in_org(scope.org, &eligible, scope.repos.as_ref())?
            }
        };
        self.start(job, runner.placement(), now);
        Some(job)
    }

    /// The pools whose label sets are subsets of `labels` (any group), cached per label set.
    fn eligible_pools(&mut self, labels: &LabelSet) -> Arc<[PoolId]> {
        if let Some(pools) = self.eligible.get(labels) {
            return Arc::clone(pools);
        }
        let pools: Arc<[PoolId]> = self
            .pools
            .iter()
            .enumerate()
            .filter(|(_, pool)| pool.labels.is_subset_of(labels))
            .map(|(index, _)| PoolId(index as u32))
            .collect();
        self.eligible.insert(labels.clone(), Arc::clone(&pools));
        pools
    }

    /// The next job of `org` in the pools `eligible` allows: a front job first, else down the
    /// repository → run → job order.
    fn best_in_org(
        &self,
        org: OrgRef,
        eligible: &Eligible<'_>,
        repo_filter: Option<&BTreeSet<RepoRef>>,
    ) -> Option<QueuedJobRef> {
        let fits = |pool: PoolId| eligible.fits(pool, &self.pools);
        let allowed = |repo: RepoRef| repo_filter.is_none_or(|repos| repos.contains(&repo));
        let org_state = self.orgs.get(&org)?;
        let front = org_state
            .pools
            .iter()
            .filter(|entry| !entry.front.is_empty() && fits(entry.pool))
            .filter_map(|entry| {
                // Front jobs are rare (lost runners), so a filtered scan is cheap.
                entry.front.iter().find(|(_, job)| {
                    self.jobs
                        .get(job)
                        .is_some_and(|record| allowed(record.job.repo))
                })
            })
            .min();
        if let Some((_, job)) = front {
            return Some(*job);
        }
        let repo = match repo_filter {
            None => {
                org_state
                    .pools
                    .iter()
                    .filter(|entry| fits(entry.pool))
                    .filter_map(|entry| entry.repos.first())
                    .min()?
                    .2
            }
            Some(repos) => {
                repos
                    .iter()
                    .filter_map(|&repo| {
                        let state = self.repos.get(&repo)?;
                        (state.parent == org && state.pools.iter().any(|entry| fits(entry.pool)))
                            .then(|| state.key(repo))
                    })
                    .min()?
                    .2
            }
        };
        let run = self
            .repos
            .get(&repo)?
            .pools
            .iter()
            .filter(|entry| fits(entry.pool))
            .filter_map(|entry| entry.set.first())
            .min()?
            .2;
        let job = self
            .runs
            .get(&run)?
            .pools
            .iter()
            .filter(|entry| fits(entry.pool))
            .filter_map(|entry| entry.set.first())
            .min()?
            .2;
        Some(job)
    }

    fn check_new(&self, job: &QueuedJob) -> Result<(), DispatchError> {
        if self.jobs.contains_key(&job.job) {
            return Err(DispatchError::DuplicateJob(job.job));
        }
        if let Some(repo) = self.repos.get(&job.repo)
            && repo.parent != job.org
        {
            return Err(DispatchError::RepoInOtherOrg {
                repo: job.repo,
                known: repo.parent,
                got: job.org,
            });
        }
        if let Some(run) = self.runs.get(&job.run)
            && run.parent != job.repo
        {
            return Err(DispatchError::RunInOtherRepo {
                run: job.run,
                known: run.parent,
                got: job.repo,
            });
        }
        Ok(())
    }

    fn record_for(&mut self, job: QueuedJob) -> JobRecord {
        let pool = self.pool_for(&job.labels, job.group.as_deref());
        let score = self.config.score(job.priority, job.enqueued_at);
        JobRecord {
            job,
            pool,
            score,
            running: None,
        }
    }

    fn pool_for(&mut self, labels: &LabelSet, group: Option<&str>) -> PoolId {
        let key = (labels.clone(), normalize_group(group));
        if let Some(&pool) = self.pool_ids.get(&key) {
            return pool;
        }
        let pool = PoolId(self.pools.len() as u32);
        for (runner_labels, eligible) in &mut self.eligible {
            if labels.is_subset_of(runner_labels) {
                let mut grown = eligible.to_vec();
                grown.push(pool);
                *eligible = grown.into();
            }
        }
        self.pools.push(Pool {
            labels: key.0.clone(),
            group: key.1.clone(),
            hosted_orgs: BTreeSet::new(),
        });
        self.pool_ids.insert(key, pool);
        pool
    }

    /// Creates the organization, repository and run if they are new. A new one joins the
    /// round robin at the back: its turn stamp is the current pick count, so among equals it
    /// comes after those already waiting (stamping 0 would let a stream of new runs overtake
    /// a run that has waited since its first job started).
    fn ensure_entities(&mut self, org: OrgRef, repo: RepoRef, run: RunRef) {
        if !self.orgs.contains_key(&org) {
            let settings = self.settings.get(&org).copied().unwrap_or_default();
            self.orgs.insert(org, OrgState::new(settings, self.picks));
        }
        self.repos
            .entry(repo)
            .or_insert_with(|| RepoState::new(org, self.picks));
        self.runs
            .entry(run)
            .or_insert_with(|| RunState::new(repo, self.picks));
    }

    /// Puts a waiting job (already in `jobs`, not running) into its pool's tree.
    fn attach(&mut self, job: QueuedJobRef) {
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        let (org, repo, run, pool) = (record.job.org, record.job.repo, record.job.run, record.pool);
        let (front, key, front_key) = (record.job.front, record.key(), record.front_key());
        let (Some(org_state), Some(repo_state), Some(run_state)) = (
            self.orgs.get_mut(&org),
            self.repos.get_mut(&repo),
            self.runs.get_mut(&run),
        ) else {
            return;
        };
        self.queued += 1;
        org_state.queued += 1;
        repo_state.queued += 1;
        run_state.queued += 1;
        let org_key = org_state.key(org);
        let open = org_state.hosted_open();
        let index = match org_state.pools.iter().position(|entry| entry.pool == pool) {
            Some(index) => index,
            None => {
                org_state.pools.push(OrgPool {
                    pool,
                    repos: BTreeSet::new(),
                    front: BTreeSet::new(),
                });
                if open {
                    self.pools[pool.0 as usize].hosted_orgs.insert(org_key);
                }
                org_state.pools.len() - 1
            }
        };
        let org_pool = &mut org_state.pools[index];
        if front {
            org_pool.front.insert(front_key);
            return;
        }
        let run_pool = slot(&mut run_state.pools, pool);
        let run_arrives = run_pool.set.is_empty();
        run_pool.set.insert(key);
        if run_arrives {
            let repo_pool = slot(&mut repo_state.pools, pool);
            let repo_arrives = repo_pool.set.is_empty();
            repo_pool.set.insert(run_state.key(run));
            if repo_arrives {
                org_pool.repos.insert(repo_state.key(repo));
            }
        }
    }

    /// Takes a waiting job out of its pool's tree (the record stays in `jobs`).
    fn detach(&mut self, job: QueuedJobRef) {
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        let (org, repo, run, pool) = (record.job.org, record.job.repo, record.job.run, record.pool);
        let (front, key, front_key) = (record.job.front, record.key(), record.front_key());
        let (Some(org_state), Some(repo_state), Some(run_state)) = (
            self.orgs.get_mut(&org),
            self.repos.get_mut(&repo),
            self.runs.get_mut(&run),
        ) else {
            return;
        };
        self.queued -= 1;
        org_state.queued -= 1;
        repo_state.queued -= 1;
        run_state.queued -= 1;
        let org_key = org_state.key(org);
        let Some(index) = org_state.pools.iter().position(|entry| entry.pool == pool) else {
            return;
        };
        let org_pool = &mut org_state.pools[index];
        if front {
            org_pool.front.remove(&front_key);
        } else if let Some(run_index) = run_state.pools.iter().position(|e| e.pool == pool) {
            let run_pool = &mut run_state.pools[run_index];
            run_pool.set.remove(&key);
            if run_pool.set.is_empty() {
                run_state.pools.swap_remove(run_index);
                if let Some(repo_index) = repo_state.pools.iter().position(|e| e.pool == pool) {
                    let repo_pool = &mut repo_state.pools[repo_index];
                    repo_pool.set.remove(&run_state.key(run));
                    if repo_pool.set.is_empty() {
                        repo_state.pools.swap_remove(repo_index);
                        org_pool.repos.remove(&repo_state.key(repo));
                    }
                }
            }
        }
        if org_pool.is_empty() {
            org_state.pools.swap_remove(index);
            self.pools[pool.0 as usize].hosted_orgs.remove(&org_key);
        }
    }

    /// Marks a waiting job as running on a runner of `placement`.
    fn start(&mut self, job: QueuedJobRef, placement: Placement, now: Millis) {
        self.detach(job);
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        record.running = Some((placement, now));
        let (org, repo, run) = (record.job.org, record.job.repo, record.job.run);
        self.picks += 1;
        self.change_running(org, repo, run, placement, Delta::Start, true);
    }

    /// Moves the running counts of a job's organization, repository and run, and their keys in
    /// every pool they wait in. `served` stamps them as just served (a pick).
    fn change_running(
        &mut self,
        org: OrgRef,
        repo: RepoRef,
        run: RunRef,
        placement: Placement,
        delta: Delta,
        served: bool,
    ) {
        let step = |count: &mut u32| match delta {
            Delta::Start => *count += 1,
            Delta::End => *count = count.saturating_sub(1),
        };
        let (Some(org_state), Some(repo_state), Some(run_state)) = (
            self.orgs.get_mut(&org),
            self.repos.get_mut(&repo),
            self.runs.get_mut(&run),
        ) else {
            return;
        };
        let (old_key, old_open) = (org_state.key(org), org_state.hosted_open());
        step(&mut org_state.running);
        if placement == Placement::Hosted {
            step(&mut org_state.running_hosted);
            // Only hosted picks are a turn in the organizations' round robin.
            if served {
                org_state.last_served = self.picks;
            }
        }
        let (new_key, new_open) = (org_state.key(org), org_state.hosted_open());
        if (old_key, old_open) != (new_key, new_open) {
            for entry in &org_state.pools {
                let hosted = &mut self.pools[entry.pool.0 as usize].hosted_orgs;
                if old_open {
                    hosted.remove(&old_key);
                }
                if new_open {
                    hosted.insert(new_key);
                }
            }
        }

        let old_key = repo_state.key(repo);
        step(&mut repo_state.running);
        if served {
            repo_state.last_served = self.picks;
        }
        let new_key = repo_state.key(repo);
        for entry in &repo_state.pools {
            if let Some(org_pool) = org_state.pools.iter_mut().find(|o| o.pool == entry.pool) {
                org_pool.repos.remove(&old_key);
                org_pool.repos.insert(new_key);
            }
        }

        let old_key = run_state.key(run);
        step(&mut run_state.running);
        if served {
            run_state.last_served = self.picks;
        }
        let new_key = run_state.key(run);
        for entry in &run_state.pools {
            if let Some(repo_pool) = repo_state.pools.iter_mut().find(|r| r.pool == entry.pool) {
                repo_pool.set.remove(&old_key);
                repo_pool.set.insert(new_key);
            }
        }
    }

    /// Forgets an organization, repository or run that has nothing waiting or running. Its
    /// round-robin turn is forgotten with it, which only matters among exact ties.
    fn collect(&mut self, org: OrgRef, repo: RepoRef, run: RunRef) {
        if self
            .runs
            .get(&run)
            .is_some_and(|state| state.queued == 0 && state.running == 0)
        {
            self.runs.remove(&run);
        }
        if self
            .repos
            .get(&repo)
            .is_some_and(|state| state.queued == 0 && state.running == 0)
        {
            self.repos.remove(&repo);
        }
        if self
            .orgs
            .get(&org)
            .is_some_and(|state| state.queued == 0 && state.running == 0)
        {
            self.orgs.remove(&org);
        }
    }
}

/// The pools a runner may take jobs from: label subsets (cached) and its runner group.
pub(crate) struct Eligible<'a> {
    pub(crate) pools: Arc<[PoolId]>,
    pub(crate) group: Option<&'a str>,
}

impl Eligible<'_> {
    fn group_fits(&self, pool: &Pool) -> bool {
        match (self.group, pool.group.as_deref()) {
            (None, None) => true,
            (Some(ours), Some(theirs)) => same_group(ours, theirs),
            _ => false,
        }
    }

    fn fits(&self, pool: PoolId, pools: &[Pool]) -> bool {
        self.pools.contains(&pool) && self.group_fits(&pools[pool.0 as usize])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delta {
    Start,
    End,
}
