//! The fair queue itself: every job that waits for a runner, indexed so that `pick` touches
//! only the label pools a runner can serve and walks the fair-share hierarchy by sorted sets.
//!
//! Layout. Jobs are grouped into *pools*, one per distinct (normalized label set, runner group).
//! Inside a pool the waiting jobs form a tree: organization → repository → run → jobs, where
//! every level is a sorted set of its children keyed by the child's fair-share key. The keys
//! are global (an organization's key is the same in every pool), so the best child across
//! several pools is the minimum of each pool's first child. Each organization, repository
//! and run remembers the pools it has waiting jobs in, so when its running count changes its
//! key is moved in exactly those sets: O(pools of that entity × log n).
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
    RunRef, RunnerScope, RunnerView, normalize_group,
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

/// The pools an entity has waiting jobs in, with how many. Entities touch few pools, so a
/// short vector beats a map.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presence(Vec<(PoolId, u32)>);

impl Presence {
    /// Counts one more job in `pool`; true when the entity was not in `pool` before.
    fn add(&mut self, pool: PoolId) -> bool {
        if let Some(slot) = self.0.iter_mut().find(|(id, _)| *id == pool) {
            slot.1 += 1;
            false
        } else {
            self.0.push((pool, 1));
            true
        }
    }

    /// Counts one job less in `pool`; true when the entity has left `pool`.
    fn sub(&mut self, pool: PoolId) -> bool {
        let Some(index) = self.0.iter().position(|(id, _)| *id == pool) else {
            return false;
        };
        self.0[index].1 -= 1;
        if self.0[index].1 == 0 {
            self.0.swap_remove(index);
            true
        } else {
            false
        }
    }

    pub(crate) fn contains(&self, pool: PoolId) -> bool {
        self.0.iter().any(|(id, _)| *id == pool)
    }

    fn pools(&self) -> impl Iterator<Item = PoolId> + '_ {
        self.0.iter().map(|(id, _)| *id)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) labels: LabelSet,
    pub(crate) group: Option<Box<str>>,
    /// Organizations with waiting jobs here that are below their hosted limit.
    pub(crate) hosted_orgs: BTreeSet<OrgKey>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PoolOrg {
    pub(crate) repos: BTreeSet<RepoKey>,
    pub(crate) front: BTreeSet<FrontKey>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PoolRepo {
    pub(crate) runs: BTreeSet<RunKey>,
}

#[derive(Debug, Clone)]
pub(crate) struct OrgState {
    pub(crate) settings: OrgSettings,
    pub(crate) running_hosted: u32,
    pub(crate) running: u32,
    pub(crate) queued: u32,
    pub(crate) last_served: u64,
    /// Pools with waiting jobs of this organization, front jobs included.
    pub(crate) pools: Presence,
}

impl OrgState {
    fn new(settings: OrgSettings) -> OrgState {
        OrgState {
            settings,
            running_hosted: 0,
            running: 0,
            queued: 0,
            last_served: 0,
            pools: Presence::default(),
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
}

/// The D'Hondt quotient `(running + 1) / weight` in 32.32 fixed point.
pub(crate) fn share(running_hosted: u32, weight: u32) -> u64 {
    ((u64::from(running_hosted) + 1) << 32) / u64::from(weight.max(1))
}

/// A repository or a run: both are ordered by running count, then least recently served.
#[derive(Debug, Clone)]
pub(crate) struct Member<Parent> {
    pub(crate) parent: Parent,
    pub(crate) running: u32,
    pub(crate) queued: u32,
    pub(crate) last_served: u64,
    /// Pools with waiting, non-front jobs of this member (the ones in the tree).
    pub(crate) pools: Presence,
}

impl<Parent> Member<Parent> {
    fn new(parent: Parent) -> Member<Parent> {
        Member {
            parent,
            running: 0,
            queued: 0,
            last_served: 0,
            pools: Presence::default(),
        }
    }

    pub(crate) fn key<Id>(&self, id: Id) -> (u32, u64, Id) {
        (self.running, self.last_served, id)
    }
}

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
    pub(crate) pool_orgs: FastMap<(PoolId, OrgRef), PoolOrg>,
    pub(crate) pool_repos: FastMap<(PoolId, RepoRef), PoolRepo>,
    pub(crate) pool_runs: FastMap<(PoolId, RunRef), BTreeSet<JobKey>>,
    pub(crate) orgs: FastMap<OrgRef, OrgState>,
    pub(crate) repos: FastMap<RepoRef, Member<OrgRef>>,
    pub(crate) runs: FastMap<RunRef, Member<RepoRef>>,
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
            for pool in state.pools.pools() {
                let hosted = &mut self.pools[pool.0 as usize].hosted_orgs;
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
        let pools = self.eligible_pools(runner);
        let job = match &runner.scope {
            RunnerScope::Hosted => {
                let org = pools
                    .iter()
                    .filter_map(|pool| self.pools[pool.0 as usize].hosted_orgs.first())
                    .min()?
                    .2;
                self.best_in_org(org, &pools, None)?
            }
            RunnerScope::SelfHosted(scope) => {
                self.best_in_org(scope.org, &pools, scope.repos.as_ref())?
            }
        };
        self.start(job, runner.placement(), now);
        Some(job)
    }

    /// The pools whose jobs `runner` may take by labels and group.
    pub(crate) fn eligible_pools(&mut self, runner: &RunnerView) -> Vec<PoolId> {
        let all = match self.eligible.get(&runner.labels) {
            Some(pools) => Arc::clone(pools),
            None => {
                let pools: Arc<[PoolId]> = self
                    .pools
                    .iter()
                    .enumerate()
                    .filter(|(_, pool)| pool.labels.is_subset_of(&runner.labels))
                    .map(|(index, _)| PoolId(index as u32))
                    .collect();
                self.eligible
                    .insert(runner.labels.clone(), Arc::clone(&pools));
                pools
            }
        };
        let group = runner.group();
        all.iter()
            .copied()
            .filter(|pool| {
                let theirs = self.pools[pool.0 as usize].group.as_deref();
                match (group, theirs) {
                    (None, None) => true,
                    (Some(ours), Some(theirs)) => super::model::same_group(ours, theirs),
                    _ => false,
                }
            })
            .collect()
    }

    /// The next job of `org` across `pools`: a front job first, else down the repository →
    /// run → job order.
    fn best_in_org(
        &self,
        org: OrgRef,
        pools: &[PoolId],
        repo_filter: Option<&BTreeSet<RepoRef>>,
    ) -> Option<QueuedJobRef> {
        let allowed = |repo: RepoRef| repo_filter.is_none_or(|repos| repos.contains(&repo));
        let pool_orgs: Vec<(PoolId, &PoolOrg)> = pools
            .iter()
            .filter_map(|&pool| Some((pool, self.pool_orgs.get(&(pool, org))?)))
            .collect();
        let front = pool_orgs
            .iter()
            .filter_map(|(_, pool_org)| {
                // Front jobs are rare (lost runners), so a filtered scan is cheap.
                pool_org.front.iter().find(|(_, job)| {
                    self.jobs
                        .get(job)
                        .is_some_and(|record| allowed(record.job.repo))
                })
            })
            .min();
        if let Some((_, job)) = front {
            return Some(*job);
        }
        let repo = pool_orgs
            .iter()
            .filter_map(|&(pool, pool_org)| match repo_filter {
                None => pool_org.repos.first().copied(),
                Some(repos) => repos
                    .iter()
                    .filter_map(|&repo| {
                        let member = self.repos.get(&repo)?;
                        (member.parent == org && member.pools.contains(pool))
                            .then(|| member.key(repo))
                    })
                    .min(),
            })
            .min()?
            .2;
        let run = pools
            .iter()
            .filter_map(|&pool| self.pool_repos.get(&(pool, repo))?.runs.first())
            .min()?
            .2;
        let job = pools
            .iter()
            .filter_map(|&pool| self.pool_runs.get(&(pool, run))?.first())
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

    fn ensure_entities(&mut self, org: OrgRef, repo: RepoRef, run: RunRef) {
        if !self.orgs.contains_key(&org) {
            let settings = self.settings.get(&org).copied().unwrap_or_default();
            self.orgs.insert(org, OrgState::new(settings));
        }
        self.repos.entry(repo).or_insert_with(|| Member::new(org));
        self.runs.entry(run).or_insert_with(|| Member::new(repo));
    }

    /// Puts a waiting job (already in `jobs`, not running) into its pool's tree.
    fn attach(&mut self, job: QueuedJobRef) {
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        let (org, repo, run, pool) = (record.job.org, record.job.repo, record.job.run, record.pool);
        let (front, key, front_key) = (record.job.front, record.key(), record.front_key());
        self.queued += 1;
        let Some(org_state) = self.orgs.get_mut(&org) else {
            return;
        };
        org_state.queued += 1;
        if org_state.pools.add(pool) {
            self.pool_orgs.entry((pool, org)).or_default();
            if org_state.hosted_open() {
                self.pools[pool.0 as usize]
                    .hosted_orgs
                    .insert(org_state.key(org));
            }
        }
        let (Some(repo_state), Some(run_state)) =
            (self.repos.get_mut(&repo), self.runs.get_mut(&run))
        else {
            return;
        };
        repo_state.queued += 1;
        run_state.queued += 1;
        if front {
            if let Some(pool_org) = self.pool_orgs.get_mut(&(pool, org)) {
                pool_org.front.insert(front_key);
            }
            return;
        }
        if repo_state.pools.add(pool)
            && let Some(pool_org) = self.pool_orgs.get_mut(&(pool, org))
        {
            pool_org.repos.insert(repo_state.key(repo));
        }
        if run_state.pools.add(pool) {
            self.pool_repos
                .entry((pool, repo))
                .or_default()
                .runs
                .insert(run_state.key(run));
        }
        self.pool_runs.entry((pool, run)).or_default().insert(key);
    }

    /// Takes a waiting job out of its pool's tree (the record stays in `jobs`).
    fn detach(&mut self, job: QueuedJobRef) {
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        let (org, repo, run, pool) = (record.job.org, record.job.repo, record.job.run, record.pool);
        let (front, key, front_key) = (record.job.front, record.key(), record.front_key());
        self.queued -= 1;
        let (Some(org_state), Some(repo_state), Some(run_state)) = (
            self.orgs.get_mut(&org),
            self.repos.get_mut(&repo),
            self.runs.get_mut(&run),
        ) else {
            return;
        };
        org_state.queued -= 1;
        repo_state.queued -= 1;
        run_state.queued -= 1;
        if front {
            if let Some(pool_org) = self.pool_orgs.get_mut(&(pool, org)) {
                pool_org.front.remove(&front_key);
            }
        } else {
            if let Some(jobs) = self.pool_runs.get_mut(&(pool, run)) {
                jobs.remove(&key);
                if jobs.is_empty() {
                    self.pool_runs.remove(&(pool, run));
                }
            }
            if run_state.pools.sub(pool)
                && let Some(pool_repo) = self.pool_repos.get_mut(&(pool, repo))
            {
                pool_repo.runs.remove(&run_state.key(run));
                if pool_repo.runs.is_empty() {
                    self.pool_repos.remove(&(pool, repo));
                }
            }
            if repo_state.pools.sub(pool)
                && let Some(pool_org) = self.pool_orgs.get_mut(&(pool, org))
            {
                pool_org.repos.remove(&repo_state.key(repo));
            }
        }
        if org_state.pools.sub(pool) {
            self.pools[pool.0 as usize]
                .hosted_orgs
                .remove(&org_state.key(org));
            self.pool_orgs.remove(&(pool, org));
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
        if let Some(state) = self.orgs.get_mut(&org) {
            let (old_key, old_open) = (state.key(org), state.hosted_open());
            step(&mut state.running);
            if placement == Placement::Hosted {
                step(&mut state.running_hosted);
                // Only hosted picks are a turn in the organizations' round robin.
                if served {
                    state.last_served = self.picks;
                }
            }
            let (new_key, new_open) = (state.key(org), state.hosted_open());
            if (old_key, old_open) != (new_key, new_open) {
                for pool in state.pools.pools() {
                    let hosted = &mut self.pools[pool.0 as usize].hosted_orgs;
                    if old_open {
                        hosted.remove(&old_key);
                    }
                    if new_open {
                        hosted.insert(new_key);
                    }
                }
            }
        }
        if let Some(state) = self.repos.get_mut(&repo) {
            let old_key = state.key(repo);
            step(&mut state.running);
            if served {
                state.last_served = self.picks;
            }
            let new_key = state.key(repo);
            for pool in state.pools.pools() {
                if let Some(pool_org) = self.pool_orgs.get_mut(&(pool, org)) {
                    pool_org.repos.remove(&old_key);
                    pool_org.repos.insert(new_key);
                }
            }
        }
        if let Some(state) = self.runs.get_mut(&run) {
            let old_key = state.key(run);
            step(&mut state.running);
            if served {
                state.last_served = self.picks;
            }
            let new_key = state.key(run);
            for pool in state.pools.pools() {
                if let Some(pool_repo) = self.pool_repos.get_mut(&(pool, repo)) {
                    pool_repo.runs.remove(&old_key);
                    pool_repo.runs.insert(new_key);
                }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delta {
    Start,
    End,
}
