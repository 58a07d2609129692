//! The control plane's core: the store, the in-memory indexes rebuilt from it, and the one path
//! every state change of a run takes.
//!
//! A change of a run is an engine [`Event`]: [`App::drive`] loads the run's state from the
//! store, applies the event with the engine, and writes the new state, the changed job rows and
//! the ended attempts with one [`Store::apply_transition`] guarded by the state version it read
//! (on a lost race it reads again and retries). Only after the commit does it touch memory:
//! the queued-job index, the timers and the concurrency groups, whose answers are events for
//! other runs, driven the same way. So a crash at any moment leaves the store consistent, and
//! [`App::recover`] rebuilds memory from it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::{HashMap, HashMapExt};
use gantry_engine::{
    Attempt, ClaimState, ConcurrencyGroups, Effect, EngineConfig, Event, Holder, JobKey,
    JobStatus as EngineJobStatus, Millis, RunState, TimerKind,
};
use gantry_store::{
    EndedAttempt, FencingToken, Job, JobId, JobUpdate, NewJob, OrgId, RepoId, RunFilter, RunId,
    RunStatus, RunUpdate, StateChange, StateDocument, Store, Transition,
};
use tokio::sync::{Notify, watch};

use crate::dispatcher::{Dispatcher, RunnerSettings};
use crate::timers::Timers;

use crate::convert::{self, ms, now};
use crate::error::ApiError;
use crate::recent::RecentMap;

/// How many times a transition is recomputed after losing a race for the run's state.
pub(crate) const MAX_TRANSITION_TRIES: usize = 50;

/// About how many jobs the open runs whose last committed state stays in memory hold
/// ([`RunCache`], weighed by jobs since a run's state and rows grow with them), at roughly a
/// kilobyte each. Twice the 200,000 leased jobs a node is meant to carry: the map keeps two
/// generations of half the budget each, and the fair queue visits runs in turn, so only what
/// fits in one generation stays. At 262,144 (one generation of 131,072) a third of the claims
/// of 200,000 leased jobs in 2,000 runs read and parsed their run again, and the claim phase
/// of `gantry bench heartbeats --leased 200000` fell from 3,741 claims/s (100,000 leased) to
/// 789/s.
const RUN_CACHE_JOBS: usize = 524_288;

/// About how many jobs the loaded workflows kept for claims hold (see [`RUN_CACHE_JOBS`]: a
/// claim's payload is built from its run's loaded workflow, parsed again when it is gone).
const WORKFLOW_CACHE_JOBS: usize = 524_288;

/// The leased jobs one node is meant to carry (issue 4's scale figure).
const NODE_LEASED_JOBS: usize = 200_000;

// One generation of each cache holds a node's leased jobs (see [`RUN_CACHE_JOBS`]).
const _: () = assert!(RUN_CACHE_JOBS / 2 >= NODE_LEASED_JOBS);
const _: () = assert!(WORKFLOW_CACHE_JOBS / 2 >= NODE_LEASED_JOBS);

/// The store and everything the server keeps in memory about it.
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: EngineConfig,
    indexes: Mutex<Indexes>,
    timers_changed: Notify,
    /// Whether the concurrency groups have been rebuilt; changes that touch a group wait.
    groups_ready: watch::Sender<bool>,
    names: Mutex<HashMap<RepoId, String>>,
    runs: Mutex<RunCache>,
    /// One change at a time per run ([`crate::run_locks`]).
    pub(crate) run_locks: crate::run_locks::RunLocks,
    /// The fair queue, the runners and the leases.
    pub(crate) dispatch: Dispatcher,
    /// Rung when a lease is added, so the lease watcher looks at the new earliest deadline.
    pub(crate) lease_changed: Notify,
    /// Loaded workflow files (and the files they call) of runs with jobs being claimed.
    workflows: Mutex<RecentMap<RunId, crate::called::RunWorkflows>>,
    /// Each run's repository and organization (they never change).
    owners: Mutex<HashMap<RunId, (RepoId, OrgId)>>,
    /// Per job with live log viewers: bumped when lines arrive or the job ends.
    pub(crate) log_bells: Mutex<HashMap<JobId, watch::Sender<u64>>>,
    /// Where mirrors of repositories registered by URL live; `None` refuses URLs.
    pub(crate) mirrors_dir: Option<std::path::PathBuf>,
    /// Open repositories and loaded workflow files, kept between events.
    pub(crate) git_cache: Arc<crate::git_cache::GitCache<crate::triggers::Loaded>>,
    /// Repositories by name and API workflow files by text ([`crate::lookups`]).
    pub(crate) lookups: crate::lookups::Lookups,
}

/// The last committed state and job rows of recently changed runs, so that the next change
/// of a run neither reads nor parses them again.
///
/// It is only ever a shortcut: a change taken from the cache is still written with the state
/// version it was computed from, so if another writer moved the run meanwhile the write is
/// refused and the change is recomputed from the store. An entry is taken out while a change
/// is being computed, so two changes of one run never start from one cached copy. Runs not
/// used for a while make way for others ([`RecentMap`]).
struct RunCache {
    runs: RecentMap<RunId, CachedRun>,
}

/// The row of `job_id` among a run's rows, which the store lists by id (a wide fan-out updates
/// a thousand rows in one transition: a scan per update would be quadratic).
pub(crate) fn row_of(rows: &mut [Job], job_id: JobId) -> Option<&mut Job> {
    let index = rows.binary_search_by_key(&job_id, |row| row.id).ok()?;
    rows.get_mut(index)
}

/// One run as its last committed transition left it.
pub(crate) struct CachedRun {
    /// Shared with the callers of the change that committed it.
    pub state: Arc<RunState>,
    pub version: i64,
    /// The run's job rows by id, when known to match the store.
    pub rows: Option<Vec<Job>>,
}

/// What is rebuilt from the store on start.
#[derive(Default)]
struct Indexes {
    /// Jobs waiting for a runner: what the dispatcher will pick from.
    queued: BTreeSet<JobId>,
    /// Pending engine timers.
    timers: Timers,
    /// Concurrency groups per repository.
    groups: HashMap<RepoId, ConcurrencyGroups>,
}

/// What [`App::recover`] found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovery {
    /// Queued jobs put back in the queue index.
    pub queued_jobs: usize,
    /// Runs not completed whose timers and groups were rebuilt.
    pub open_runs: usize,
    /// Claims the engine had not heard of, told to it now.
    pub claims_replayed: usize,
}

impl App {
    /// An app over an opened, migrated store; call [`App::recover`] before serving.
    pub fn new(store: Arc<dyn Store>, engine: EngineConfig) -> App {
        App {
            store,
            engine,
            indexes: Mutex::new(Indexes::default()),
            timers_changed: Notify::new(),
            groups_ready: watch::Sender::new(false),
            names: Mutex::new(HashMap::new()),
            runs: Mutex::new(RunCache {
                runs: RecentMap::new(RUN_CACHE_JOBS),
            }),
            run_locks: Default::default(),
            dispatch: Dispatcher::new(RunnerSettings::default()),
            lease_changed: Notify::new(),
            workflows: Mutex::new(RecentMap::new(WORKFLOW_CACHE_JOBS)),
            owners: Mutex::new(HashMap::new()),
            log_bells: Mutex::new(HashMap::new()),
            mirrors_dir: None,
            git_cache: Arc::default(),
            lookups: crate::lookups::Lookups::default(),
        }
    }

    /// The same app keeping mirrors of repositories registered by URL (`gantry repo add
    /// --url`) under `dir`.
    pub fn with_mirrors_dir(mut self, dir: std::path::PathBuf) -> App {
        self.mirrors_dir = Some(dir);
        self
    }

    /// The same app with other heartbeat and lease durations.
    pub fn with_runner_settings(mut self, settings: RunnerSettings) -> App {
        self.dispatch = Dispatcher::new(settings);
        self
    }

    pub(crate) fn workflows(
        &self,
    ) -> MutexGuard<'_, RecentMap<RunId, crate::called::RunWorkflows>> {
        self.workflows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers a new run's repository and organization.
    pub(crate) fn set_owner(&self, run_id: RunId, repo: RepoId, org: OrgId) {
        let mut owners = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if owners.len() >= 100_000 {
            owners.clear();
        }
        owners.insert(run_id, (repo, org));
    }

    /// A run's repository and organization.
    pub(crate) async fn owner(&self, run_id: RunId) -> Result<(RepoId, OrgId), ApiError> {
        if let Some(owner) = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&run_id)
        {
            return Ok(*owner);
        }
        let run = self.store.get_run(run_id).await?;
        let repo = self.store.get_repository(run.repo_id).await?;
        self.set_owner(run_id, repo.id, repo.org_id);
        Ok((repo.id, repo.org_id))
    }

    fn indexes(&self) -> MutexGuard<'_, Indexes> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.indexes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The ids of the queued jobs, oldest first.
    pub fn queued_job_ids(&self, limit: usize) -> Vec<JobId> {
        self.indexes().queued.iter().take(limit).copied().collect()
    }

    /// Takes a claimed job out of the queue index and marks its cached row in progress, as
    /// the claim did to the stored one (a claim changes the job row outside a transition of
    /// its run).
    pub(crate) fn claimed(&self, job: &Job, started_at_ms: i64) {
        self.indexes().queued.remove(&job.id);
        let mut cache = self.run_cache();
        if let Some(row) = cache
            .runs
            .get_mut(&job.run_id)
            .and_then(|cached| cached.rows.as_mut())
            .and_then(|rows| row_of(rows, job.id))
        {
            row.status = gantry_store::JobStatus::InProgress;
            row.started_at_ms = Some(started_at_ms);
        }
    }

    /// A job's row and view from the run cache, when it holds the run's rows.
    pub(crate) fn cached_job_view(
        &self,
        run_id: RunId,
        job_id: JobId,
    ) -> Option<(Job, gantry_proto::v1::Job)> {
        let mut cache = self.run_cache();
        let cached = cache.runs.get_mut(&run_id)?;
        let rows = cached.rows.as_mut()?;
        let row = row_of(rows, job_id)?.clone();
        let view = crate::views::job(&row, Some(&cached.state));
        Some((row, view))
    }

    /// The cached rows of `jobs` of a run (`None` for one not of the run), when the cache
    /// holds the run's rows (tests look at them; claims read theirs with
    /// [`App::cached_rows_as`]).
    #[cfg(test)]
    pub(crate) fn cached_rows(&self, run_id: RunId, jobs: &[JobId]) -> Option<Vec<Option<Job>>> {
        self.cached_rows_as(run_id, jobs, Job::clone)
    }

    /// What `read` takes from each of `jobs`' cached rows ([`App::cached_rows`]), without
    /// copying the rows.
    pub(crate) fn cached_rows_as<T>(
        &self,
        run_id: RunId,
        jobs: &[JobId],
        read: impl Fn(&Job) -> T,
    ) -> Option<Vec<Option<T>>> {
        let mut cache = self.run_cache();
        let rows = cache.runs.get_mut(&run_id)?.rows.as_mut()?;
        Some(
            jobs.iter()
                .map(|&job| row_of(rows, job).map(|row| read(row)))
                .collect(),
        )
    }

    /// Drops a run's cached state and rows after a change made outside the engine (a job's
    /// priority), so the next change reads them anew.
    pub(crate) fn forget_cached_run(&self, run_id: RunId) {
        self.run_cache().runs.remove(&run_id);
    }

    fn run_cache(&self) -> MutexGuard<'_, RunCache> {
        // Plain data: a panic elsewhere cannot leave an entry half-changed.
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the run's last committed state has an instance queued at `attempt` (a claim
    /// the engine has not heard of), from the cache when it holds the run.
    pub(crate) async fn claim_unheard(
        &self,
        run_id: RunId,
        key: &JobKey,
        attempt: i64,
    ) -> Result<bool, ApiError> {
        let unheard = |state: &RunState| {
            state.instance(key).is_some_and(|instance| {
                instance.status == EngineJobStatus::Queued
                    && i64::from(instance.attempt.0) == attempt
            })
        };
        if let Some(cached) = self.run_cache().runs.get_mut(&run_id) {
            return Ok(unheard(&cached.state));
        }
        let (state, _) = self.load_state(run_id).await?;
        Ok(unheard(&state))
    }

    /// Whether the run's committed engine state (read from the store, not the cache, which
    /// a concurrent change may have left behind) has `key` running at `attempt`.
    pub(crate) async fn started_in_store(
        &self,
        run_id: RunId,
        key: &JobKey,
        attempt: i64,
    ) -> Result<bool, ApiError> {
        self.forget_cached_run(run_id);
        let (state, _) = self.load_state(run_id).await?;
        Ok(state.instance(key).is_some_and(|instance| {
            instance.status == EngineJobStatus::InProgress
                && i64::from(instance.attempt.0) == attempt
        }))
    }

    /// How many engine timers are pending (queue and job timeouts, cancel deadlines).
    pub fn pending_timer_count(&self) -> usize {
        self.indexes().timers.len()
    }

    /// How many jobs are queued.
    pub fn queued_count(&self) -> usize {
        self.indexes().queued.len()
    }

    /// `org/repo` of a repository (cached: names never change).
    pub(crate) async fn full_name(&self, repo_id: RepoId) -> Result<String, ApiError> {
        if let Some(name) = self
            .names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&repo_id)
        {
            return Ok(name.clone());
        }
        let repo = self.store.get_repository(repo_id).await?;
        let org = self.store.get_organization(repo.org_id).await?;
        let name = format!("{}/{}", org.name, repo.name);
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(repo_id, name.clone());
        Ok(name)
    }

    /// Computes a view from a run's last committed state: the cached copy when there is one
    /// (a view of a busy run neither reads nor parses its state), else the store's.
    pub(crate) async fn with_state<T>(
        &self,
        run_id: RunId,
        view: impl FnOnce(&RunState) -> T,
    ) -> Result<T, ApiError> {
        {
            let mut cache = self.run_cache();
            if let Some(cached) = cache.runs.get_mut(&run_id) {
                return Ok(view(&cached.state));
            }
        }
        let (state, _) = self.load_state(run_id).await?;
        Ok(view(&state))
    }

    /// Loads a run's engine state: its stored document, with the starts its job rows show
    /// and the document does not (a job whose only change was a start keeps its document,
    /// see `gantry_engine::changed_only_by_starts`). The rows are read after the document: a
    /// start committed in between shows too, and a change computed from the state is refused
    /// all the same, the claim having moved the run's version.
    pub(crate) async fn load_state(&self, run_id: RunId) -> Result<(RunState, i64), ApiError> {
        let (state, version, _) = self.load_state_and_rows(run_id).await?;
        Ok((state, version))
    }

    /// [`App::load_state`], with the job rows it read (a change compares its state with
    /// them: reading them again cost a change of an uncached run a second query).
    pub(crate) async fn load_state_and_rows(
        &self,
        run_id: RunId,
    ) -> Result<(RunState, i64, Vec<Job>), ApiError> {
        let (mut state, version) = self.load_document(run_id).await?;
        let rows = self.store.list_jobs(run_id).await?;
        for row in &rows {
            if row.status != gantry_store::JobStatus::InProgress {
                continue;
            }
            let (Ok(attempt), Some(started_at)) = (u32::try_from(row.attempt), row.started_at_ms)
            else {
                continue;
            };
            let at = Millis(u64::try_from(started_at).unwrap_or_default());
            state.restore_start(&convert::job_key(row), Attempt(attempt), at);
        }
        Ok((state, version, rows))
    }

    /// Reads a run's stored state document as it is.
    pub(crate) async fn load_document(&self, run_id: RunId) -> Result<(RunState, i64), ApiError> {
        let stored = self.store.get_engine_state(run_id).await?;
        if stored.document.is_null() {
            // Only runs of invalid workflow files have no state: there is nothing to drive.
            return Err(ApiError::new(
                gantry_proto::v1::ErrorCode::Conflict,
                format!("run {run_id} has no jobs: its workflow file is invalid"),
            ));
        }
        // The spec is parsed here, once per load; the cache then shares it between states.
        let state = RunState::from_stored(stored.document, stored.spec).map_err(|error| {
            ApiError::internal(&format!(
                "engine state of run {run_id} is unusable: {error}"
            ))
        })?;
        Ok((state, stored.version))
    }

    /// Takes a run's committed state out of the cache for a change (see [`RunCache`]).
    pub(crate) fn take_cached_run(&self, run_id: RunId) -> Option<CachedRun> {
        self.run_cache().runs.remove(&run_id)
    }

    /// Keeps a run's committed state for its next change; completed runs are let go.
    pub(crate) fn remember(&self, run_id: RunId, run: CachedRun) {
        let mut cache = self.run_cache();
        if run.state.conclusion.is_some() {
            cache.runs.remove(&run_id);
            return;
        }
        let weight = run.state.instances().count().max(1);
        cache.runs.insert(run_id, run, weight);
    }

    /// Keeps a run just created for its first change (a runner's claim, usually within
    /// milliseconds), which would otherwise read back the state and rows the creation wrote.
    /// A change that got to the run first has cached a later state: that one stays.
    pub(crate) fn remember_created(&self, run_id: RunId, run: CachedRun) {
        if self.run_cache().runs.get_mut(&run_id).is_none() {
            self.remember(run_id, run);
        }
    }

    /// Updates the indexes after a committed change that left the run at `state`: queued
    /// jobs, timers, concurrency groups. Returns the events the groups answered with.
    pub(crate) async fn after_commit(
        &self,
        run_id: RunId,
        state: &RunState,
        statuses: &[(JobId, gantry_store::JobStatus)],
        effects: &[Effect],
    ) -> Vec<(RunId, Event)> {
        let wants_groups = effects.iter().any(|effect| {
            matches!(
                effect,
                Effect::AcquireConcurrency { .. } | Effect::ReleaseConcurrency { .. }
            )
        });
        let repo_id = if wants_groups {
            let mut ready = self.groups_ready.subscribe();
            // Only fails when the sender is gone, which it cannot be while `self` lives.
            let _ = ready.wait_for(|ready| *ready).await;
            match self.store.get_run(run_id).await {
                Ok(run) => Some(run.repo_id),
                Err(error) => {
                    tracing::error!(run_id = %run_id, error = %error, "cannot read run for its concurrency groups");
                    None
                }
            }
        } else {
            None
        };
        let mut deliveries = Vec::new();
        let mut timers_added = false;
        {
            let mut indexes = self.indexes();
            for &(job_id, status) in statuses {
                if status == gantry_store::JobStatus::Queued {
                    indexes.queued.insert(job_id);
                } else {
                    indexes.queued.remove(&job_id);
                }
            }
            for effect in effects {
                match effect {
                    Effect::SetTimer { at, kind } => {
                        indexes.add_timer(*at, run_id, kind.clone());
                        timers_added = true;
                    }
                    Effect::AcquireConcurrency { .. } | Effect::ReleaseConcurrency { .. } => {
                        if let Some(repo_id) = repo_id {
                            let groups = indexes.groups.entry(repo_id).or_default();
                            for delivery in groups.handle(convert::engine_run_id(run_id), effect) {
                                deliveries
                                    .push((convert::store_run_id(delivery.run), delivery.event));
                            }
                        }
                    }
                    _ => {}
                }
            }
            // Every job whose status or attempt changes appears in an effect (queued, started
            // with its job timeout, asked to cancel, ended): only their timers can be obsolete.
            indexes
                .timers
                .prune(run_id, state, effects.iter().filter_map(effect_job));
        }
        if timers_added {
            self.timers_changed.notify_one();
        }
        deliveries
    }

    /// Fires due engine timers, forever; run it as a background task.
    pub async fn run_timers(self: Arc<App>) {
        loop {
            let next = self.indexes().timers.next_due();
            match next {
                None => self.timers_changed.notified().await,
                Some(at) if at > now() => {
                    let wait = std::time::Duration::from_millis(at.0.saturating_sub(now().0));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.timers_changed.notified() => {}
                    }
                }
                Some(_) => {
                    let due = self.indexes().timers.pop_first();
                    if let Some((run_id, kind)) = due {
                        let event = Event::TimerFired { kind };
                        match self.drive(run_id, event, None).await {
                            Ok(_) => tracing::info!(run_id = %run_id, "timer fired"),
                            // Most timers are obsolete when they fire (the job moved on).
                            Err(error) => {
                                tracing::debug!(run_id = %run_id, error = %error, "timer ignored");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rebuilds every in-memory index from the store: [`App::recover_queue`] then
    /// [`App::recover_open_runs`]. Call it (or both) before using the app.
    pub async fn recover(&self) -> Result<Recovery, ApiError> {
        let queued_jobs = self.recover_queue().await?;
        let mut recovery = self.recover_open_runs().await?;
        recovery.queued_jobs = queued_jobs;
        Ok(recovery)
    }

    /// Rebuilds the queue index from the queued job rows; returns how many there are. Cheap:
    /// the server serves once this is done.
    pub async fn recover_queue(&self) -> Result<usize, ApiError> {
        let queued = self.store.queued_jobs().await?;
        self.indexes().queued = queued.iter().map(|queued| queued.job.id).collect();
        self.recover_dispatch(&queued).await?;
        Ok(queued.len())
    }

    /// Rebuilds what the runs not completed imply: their timers, the concurrency groups (until
    /// then, changes that touch a group wait), and claims the engine has not heard of (a crash
    /// between a claim and its "job started" transition). The server runs this in the
    /// background while it serves.
    pub async fn recover_open_runs(&self) -> Result<Recovery, ApiError> {
        let mut recovery = Recovery::default();
        let mut groups: HashMap<RepoId, ConcurrencyGroups> = HashMap::new();
        // Concurrency holders: those granted first, then those pending, oldest run first.
        let mut granted: Vec<(RepoId, String, Holder)> = Vec::new();
        let mut pending: Vec<(RepoId, String, Holder)> = Vec::new();
        let mut timers = Vec::new();
        for status in [RunStatus::Queued, RunStatus::InProgress] {
            let mut before = None;
            loop {
                let filter = RunFilter {
                    repo_id: None,
                    status: Some(status),
                    limit: RunFilter::MAX_LIMIT,
                    before,
                };
                let page = self.store.list_runs(filter).await?;
                for run in &page.runs {
                    let (state, _) = self.load_state(run.id).await?;
                    recovery.open_runs += 1;
                    timers.extend(
                        pending_timers(&state)
                            .into_iter()
                            .map(|(at, kind)| (at, run.id, kind)),
                    );
                    let claims = std::iter::once((None, state.concurrency.as_ref())).chain(
                        state.instances().map(|instance| {
                            (Some(instance.key.clone()), instance.concurrency.as_ref())
                        }),
                    );
                    for (job, claim) in claims {
                        let Some(claim) = claim else { continue };
                        let holder = Holder { run: state.id, job };
                        let entry = (run.repo_id, claim.group.clone(), holder);
                        match claim.state {
                            ClaimState::Granted => granted.push(entry),
                            ClaimState::Requested { .. } => pending.push(entry),
                            ClaimState::Unrequested | ClaimState::Released => {}
                        }
                    }
                }
                match page.next {
                    Some(next) => before = Some(next),
                    None => break,
                }
            }
        }
        {
            let mut indexes = self.indexes();
            for (at, run_id, kind) in timers {
                indexes.add_timer(at, run_id, kind);
            }
        }
        self.timers_changed.notify_one();

        let mut deliveries = Vec::new();
        for (repo_id, group, holder) in granted {
            // Already granted: the answer is not news to the run.
            let _ = groups
                .entry(repo_id)
                .or_default()
                .acquire(&group, holder, false);
        }
        pending.sort_by_key(|(_, _, holder)| holder.run);
        for (repo_id, group, holder) in pending {
            // Not cancelling the holder again: that request was carried out before.
            let answers = groups
                .entry(repo_id)
                .or_default()
                .acquire(&group, holder, false);
            deliveries.extend(
                answers
                    .into_iter()
                    .filter(|delivery| !matches!(delivery.event, Event::ConcurrencyWaiting { .. }))
                    .map(|delivery| (convert::store_run_id(delivery.run), delivery.event)),
            );
        }
        self.indexes().groups = groups;
        self.groups_ready.send_replace(true);

        for attempt in self.store.running_attempts().await? {
            let job = self.store.get_job(attempt.job_id).await?;
            match self.replay_claim(&job).await {
                Ok(true) => recovery.claims_replayed += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(job_id = %attempt.job_id, error = %error, "cannot replay claim");
                }
            }
        }
        self.deliver(deliveries).await;
        Ok(recovery)
    }

    /// Tells the engine about a claim it has not heard of: the job row is claimed (in
    /// progress) but the run's state still has the instance queued at that attempt. Returns
    /// whether there was such a claim.
    pub(crate) async fn replay_claim(&self, job: &Job) -> Result<bool, ApiError> {
        if job.status != gantry_store::JobStatus::InProgress {
            return Ok(false);
        }
        let key = convert::job_key(job);
        if !self.claim_unheard(job.run_id, &key, job.attempt).await? {
            return Ok(false);
        }
        let event = Event::JobStarted {
            job: key.clone(),
            attempt: Attempt(u32::try_from(job.attempt).unwrap_or(u32::MAX)),
        };
        if let Err(error) = self.drive(job.run_id, event, None).await {
            // Recovery, the lease watcher and a caller may all find the same unheard claim;
            // when another of them replayed it first, the engine has heard of it: done.
            if self.started_in_store(job.run_id, &key, job.attempt).await? {
                return Ok(true);
            }
            return Err(error);
        }
        tracing::info!(run_id = %job.run_id, job_id = %job.id, "claim replayed to the engine");
        Ok(true)
    }
}

impl Indexes {
    fn add_timer(&mut self, at: Millis, run_id: RunId, kind: TimerKind) {
        self.timers.add(at, run_id, kind);
    }
}

/// The job an effect is about, if any.
fn effect_job(effect: &Effect) -> Option<&JobKey> {
    match effect {
        Effect::QueueJob(order) => Some(&order.job),
        Effect::CancelJob { job, .. } | Effect::JobEnded { job, .. } => Some(job),
        Effect::SetTimer { kind, .. } => Some(kind.job()),
        Effect::AcquireConcurrency { job, .. } | Effect::ReleaseConcurrency { job, .. } => {
            job.as_ref()
        }
        Effect::RunCompleted(_) => None,
    }
}

/// The timers a run's state implies: queue timeouts of queued instances, job timeouts of
/// running ones, cancel deadlines of those asked to stop.
fn pending_timers(state: &RunState) -> Vec<(Millis, TimerKind)> {
    let mut timers = Vec::new();
    let config = &state.config;
    for instance in state.instances() {
        let job = instance.key.clone();
        let attempt = instance.attempt;
        match instance.status {
            EngineJobStatus::Queued => {
                if let Some(queued_at) = instance.queued_at {
                    timers.push((
                        queued_at.after(config.queue_timeout),
                        TimerKind::QueueTimeout { job, attempt },
                    ));
                }
            }
            EngineJobStatus::InProgress => {
                let timeout = instance.setup.as_ref().map_or_else(
                    || Millis::from_minutes(config.default_timeout_minutes),
                    |setup| setup.timeout,
                );
                if let Some(started_at) = instance.started_at {
                    timers.push((
                        started_at.after(timeout),
                        TimerKind::JobTimeout {
                            job: job.clone(),
                            attempt,
                        },
                    ));
                }
                if let Some(asked) = instance.cancel_requested_at {
                    timers.push((
                        asked.after(config.cancel_grace),
                        TimerKind::CancelGrace { job, attempt },
                    ));
                }
            }
            EngineJobStatus::Waiting | EngineJobStatus::Completed => {}
        }
    }
    timers
}

pub(crate) fn log_effects(run_id: RunId, effects: &[Effect]) {
    for effect in effects {
        match effect {
            Effect::QueueJob(order) => {
                tracing::debug!(run_id = %run_id, job = %order.job, attempt = %order.attempt, "job queued");
            }
            Effect::CancelJob { job, attempt } => {
                tracing::info!(run_id = %run_id, job = %job, attempt = %attempt, "runner asked to cancel job");
            }
            Effect::JobEnded { job, conclusion } => {
                tracing::debug!(run_id = %run_id, job = %job, conclusion = %conclusion, "job ended");
            }
            Effect::RunCompleted(conclusion) => {
                tracing::info!(run_id = %run_id, conclusion = %conclusion, "run completed");
            }
            _ => {}
        }
    }
}

/// A transition to store and the statuses of the jobs it touches.
pub(crate) struct PlannedTransition {
    pub transition: Transition,
    /// Existing jobs whose row changes, with their new status.
    pub statuses: Vec<(JobId, gantry_store::JobStatus)>,
    /// The statuses of `transition.new_jobs`, in order.
    pub new_statuses: Vec<gantry_store::JobStatus>,
}

/// Whether `key` is an instance of a job that calls a reusable workflow.
fn is_call(state: &RunState, key: &JobKey) -> bool {
    state
        .spec
        .job_index(&key.job)
        .and_then(|index| state.spec.jobs.get(index))
        .is_some_and(|job| job.call.is_some())
}

/// The row a job instance should have now.
///
/// A caller's instance is never queued or run by a runner; the engine keeps it waiting until
/// its called jobs have ended. Its row shows it in progress from when its call started (its
/// children were let go), as people expect of a job whose jobs are running.
pub(crate) fn job_values(state: &RunState, key: &JobKey) -> Option<NewJob> {
    let instance = state.instance(key)?;
    let waiting_reasons = serde_json::to_value(state.wait_reasons(key)).unwrap_or_default();
    let status = match instance.status {
        EngineJobStatus::Waiting if instance.started_at.is_some() && is_call(state, key) => {
            gantry_store::JobStatus::InProgress
        }
        other => convert::store_job_status(other),
    };
    Some(NewJob {
        job_key: key.job.clone(),
        matrix_index: i64::from(key.index),
        name: instance.name.clone(),
        status,
        attempt: i64::from(instance.attempt.0),
        runs_on: instance
            .setup
            .as_ref()
            .map(|setup| setup.labels.clone())
            .unwrap_or_default(),
        waiting_reasons,
        priority: 0,
        queued_at_ms: instance.queued_at.map(ms),
        started_at_ms: instance.started_at.map(ms),
    })
}

/// A run's job rows found by instance key: among a few rows by looking at each (most runs
/// have a handful of jobs, and a transition looks up one or two), among many through a map
/// built once.
struct RowsByKey<'a> {
    rows: &'a [Job],
    map: Option<HashMap<(&'a str, i64), &'a Job>>,
}

impl<'a> RowsByKey<'a> {
    /// Runs with more rows than this get a map.
    const SCANNED: usize = 16;

    fn new(rows: &'a [Job]) -> RowsByKey<'a> {
        let map = (rows.len() > Self::SCANNED).then(|| {
            rows.iter()
                .map(|row| ((row.job_key.as_str(), row.matrix_index), row))
                .collect()
        });
        RowsByKey { rows, map }
    }

    /// The row of the instance `key`.
    fn get(&self, key: &JobKey) -> Option<&'a Job> {
        let index = i64::from(key.index);
        match &self.map {
            Some(map) => map.get(&(key.job.as_str(), index)).copied(),
            None => self
                .rows
                .iter()
                .find(|row| row.matrix_index == index && row.job_key == key.job),
        }
    }
}

/// What a transition writes of the engine's state: the run's own fields when they changed
/// (`run_changed`), and the `changed` jobs (the store keeps the others). Small runs were
/// once written whole, one statement instead of two; transitions stored together write every
/// run's changed jobs in one statement, and the whole document was most of what a claim
/// wrote and serialized.
fn state_change(
    state: &RunState,
    run_changed: bool,
    changed: &[usize],
) -> Result<StateChange, serde_json::Error> {
    let mut jobs = Vec::with_capacity(changed.len());
    for &index in changed {
        if let (Some(job), Ok(position)) = (state.jobs.get(index), u32::try_from(index)) {
            jobs.push((position, StateDocument::serialize(job)?));
        }
    }
    let run = if run_changed {
        Some(StateDocument::serialize(&state.run_fields())?)
    } else {
        None
    };
    Ok(StateChange { run, jobs })
}

/// Whether a field of the run itself changed that the rows of jobs which did not change may
/// show (the run's concurrency claim is in every waiting job's reasons), or that marks a
/// change of the whole run (status, attempt, cancellation): then every row is compared.
fn run_change_shows_in_rows(before: &RunState, after: &RunState) -> bool {
    before.attempt != after.attempt
        || before.status != after.status
        || before.cancel_requested != after.cancel_requested
        || before.concurrency != after.concurrency
}

/// Compares the engine's state after an event with the state `before` it and the stored
/// rows, and writes down every difference.
///
/// A row is made of its instance, its job's `waiting_on` and the run's concurrency claim
/// (see [`job_values`]), so the rows of a job whose state is equal to its state before the
/// event are as they were: only the jobs that changed are compared with their rows (a job
/// whose need ended changed too: its `waiting_on` lost the need). An event thus costs time
/// in proportion to the jobs it touched, not to the size of the run.
pub(crate) fn plan_transition(
    run_id: RunId,
    expected_state_version: i64,
    before: &RunState,
    state: &RunState,
    rows: &[Job],
    tokens: &[(&JobKey, FencingToken)],
    time: Millis,
) -> Result<PlannedTransition, ApiError> {
    // Only jobs whose state changed are written (the store keeps the others), and only
    // their rows can have changed, unless a run field they show did.
    let changed_states: Vec<usize> = (0..state.jobs.len())
        .filter(|&job| !state.jobs.same_job(&before.jobs, job))
        .collect();
    // A job that only started keeps its stored document: its rows have the starts (see
    // `gantry_engine::changed_only_by_starts`; `load_state` puts them back).
    let documents: Vec<usize> = changed_states
        .iter()
        .copied()
        .filter(|&job| match (before.jobs.get(job), state.jobs.get(job)) {
            (Some(was), Some(now)) => !gantry_engine::changed_only_by_starts(was, now),
            _ => true,
        })
        .collect();
    // Most events (a job's start or end other than the first and the last) leave the run's
    // own fields as they were: its row, with its fields and columns, is then not written.
    let run_changed = before.run_fields() != state.run_fields();
    let engine_state = state_change(state, run_changed, &documents).map_err(|error| {
        ApiError::internal(&format!("engine state does not serialize: {error}"))
    })?;
    let mut transition = Transition::new(run_id, expected_state_version, engine_state);
    if run_changed {
        transition.run = Some(RunUpdate {
            attempt: i64::from(state.attempt.0),
            status: convert::store_run_status(state.status),
            conclusion: state.conclusion.map(convert::store_conclusion),
            started_at_ms: state.started_at.map(ms),
            completed_at_ms: state.completed_at.map(ms),
        });
    }
    let changed: Vec<usize> = if run_change_shows_in_rows(before, state) {
        (0..state.jobs.len()).collect()
    } else {
        changed_states
    };
    let by_key = RowsByKey::new(rows);
    let row_of_key = |key| by_key.get(key);
    let mut statuses = Vec::new();
    let mut new_statuses = Vec::new();
    for instance in changed.iter().flat_map(|&job| &state.jobs[job].instances) {
        let Some(values) = job_values(state, &instance.key) else {
            continue;
        };
        let Some(row) = row_of_key(&instance.key) else {
            new_statuses.push(values.status);
            transition.new_jobs.push(values);
            continue;
        };
        let outputs = serde_json::to_value(&instance.outputs).unwrap_or_default();
        let desired = JobUpdate {
            job_id: row.id,
            name: values.name,
            status: values.status,
            conclusion: instance.conclusion.map(convert::store_conclusion),
            attempt: values.attempt,
            runs_on: values.runs_on,
            waiting_reasons: values.waiting_reasons,
            outputs,
            priority: row.priority,
            queued_at_ms: values.queued_at_ms,
            started_at_ms: instance.started_at.map(ms),
            completed_at_ms: instance.completed_at.map(ms),
        };
        if !desired.leaves_unchanged(row) {
            statuses.push((row.id, desired.status));
            transition.job_updates.push(desired);
        }
    }
    // Every attempt that was running and is not any more has ended (its job changed).
    let running_before = changed
        .iter()
        .filter_map(|&job| before.jobs.get(job))
        .flat_map(|job| &job.instances)
        .filter(|instance| instance.status == EngineJobStatus::InProgress);
    for running in running_before {
        let (key, attempt) = (&running.key, running.attempt);
        let Some(instance) = state.instance(key) else {
            continue;
        };
        let still_running =
            instance.status == EngineJobStatus::InProgress && instance.attempt == attempt;
        let Some(row) = row_of_key(key) else { continue };
        if !still_running {
            let result = match (instance.attempt == attempt, instance.conclusion) {
                (true, Some(conclusion)) => convert::store_conclusion(conclusion),
                // Lost, then queued again as a new attempt: this one failed.
                _ => gantry_store::Conclusion::Failure,
            };
            transition.ended_attempts.push(EndedAttempt {
                job_id: row.id,
                attempt: i64::from(attempt.0),
                fencing_token: tokens
                    .iter()
                    .find(|(job, _)| *job == key)
                    .map(|(_, token)| *token),
                ended_at_ms: ms(time),
                result,
            });
        }
    }
    // A claim the engine never heard of whose job has moved on (cancelled or timed out
    // between the claim's commit and its "job started"): the claimed attempt ends with it.
    // A claim whose start is merely not applied yet (the instance still queued at the
    // claimed attempt) is left alone: its "job started" follows.
    for row in rows
        .iter()
        .filter(|row| row.status == gantry_store::JobStatus::InProgress)
    {
        let key = convert::job_key(row);
        let heard = before
            .instance(&key)
            .is_some_and(|instance| instance.status == EngineJobStatus::InProgress);
        let Some(instance) = state.instance(&key) else {
            continue;
        };
        let moved_on = instance.status == EngineJobStatus::Completed
            || (instance.status != EngineJobStatus::InProgress
                && i64::from(instance.attempt.0) != row.attempt);
        // A caller's row is in progress by its call, never claimed: it has no attempt.
        if !heard && moved_on && !is_call(state, &key) {
            transition.ended_attempts.push(EndedAttempt {
                job_id: row.id,
                attempt: row.attempt,
                fencing_token: None,
                ended_at_ms: ms(time),
                result: instance.conclusion.map_or(
                    gantry_store::Conclusion::Cancelled,
                    convert::store_conclusion,
                ),
            });
        }
    }
    Ok(PlannedTransition {
        transition,
        statuses,
        new_statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of instance `index` of job `key`, with id `id`.
    fn row(id: i64, key: &str, index: i64) -> Job {
        Job {
            id: JobId(id),
            run_id: RunId(1),
            job_key: key.to_owned(),
            matrix_index: index,
            name: key.to_owned(),
            status: gantry_store::JobStatus::Queued,
            conclusion: None,
            attempt: 1,
            runs_on: Vec::new(),
            waiting_reasons: serde_json::json!([]),
            outputs: serde_json::json!({}),
            priority: 0,
            queued_at_ms: None,
            started_at_ms: None,
            completed_at_ms: None,
        }
    }

    /// Rows are found by job and matrix index alike whether they are looked at one by one
    /// (few rows) or through the map (many).
    #[test]
    fn rows_are_found_by_key_among_few_and_many() {
        for count in [3_i64, 40] {
            let rows: Vec<Job> = (0..count)
                .map(|id| row(id, if id % 2 == 0 { "build" } else { "test" }, id / 2))
                .collect();
            let by_key = RowsByKey::new(&rows);
            assert_eq!(by_key.map.is_some(), count > 16);
            for wanted in &rows {
                let key = JobKey::new(
                    wanted.job_key.clone(),
                    u32::try_from(wanted.matrix_index).unwrap(),
                );
                assert_eq!(by_key.get(&key).map(|found| found.id), Some(wanted.id));
            }
            assert!(by_key.get(&JobKey::new("lint".to_owned(), 0)).is_none());
            assert!(by_key.get(&JobKey::new("build".to_owned(), 99)).is_none());
        }
    }

    /// A transition writes the run's own fields and columns only when they changed: of two
    /// independent jobs' starts and ends, the first start and the last end do; the others
    /// do not.
    #[test]
    fn the_runs_fields_are_written_only_when_they_change() {
        let source = "on: push\njobs:\n  a: {runs-on: x, steps: [{run: a}]}\n  \
                      b: {runs-on: x, steps: [{run: b}]}\n";
        let workflow = gantry_workflow::load(source, &Default::default()).unwrap();
        let new = gantry_engine::NewRun {
            id: gantry_engine::RunId(1),
            workflow: &workflow,
            trigger: Default::default(),
            config: EngineConfig::default(),
        };
        let mut state = gantry_engine::create_run(new, Millis(0)).unwrap().state;
        let rows = [row(1, "a", 0), row(2, "b", 0)];
        let (a, b) = (JobKey::single("a"), JobKey::single("b"));
        let started = |job: &JobKey| Event::JobStarted {
            job: job.clone(),
            attempt: Attempt(1),
        };
        let completed = |job: &JobKey| Event::JobCompleted {
            job: job.clone(),
            attempt: Attempt(1),
            conclusion: gantry_engine::Conclusion::Success,
            outputs: Default::default(),
        };
        let events = [started(&a), started(&b), completed(&a), completed(&b)];
        let mut written = Vec::new();
        for (at, event) in (1..).zip(&events) {
            let before = state.clone();
            state.handle(event, Millis(at)).unwrap();
            let plan =
                plan_transition(RunId(1), 1, &before, &state, &rows, &[], Millis(at)).unwrap();
            let change = plan.transition;
            let fields = change.engine_state.run.is_some();
            written.push((fields, change.run.is_some(), change.engine_state.jobs.len()));
        }
        // (run's fields, run's columns, job states): a start writes no job state (its row
        // has it), an end writes its job's.
        assert_eq!(
            written,
            [
                (true, true, 0),
                (false, false, 0),
                (false, false, 1),
                (true, true, 1)
            ]
        );
    }
}
