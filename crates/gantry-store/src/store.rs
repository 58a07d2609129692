//! The [`Store`] trait: everything the server reads and writes durably.
//!
//! The trait is object-safe: the server chooses SQLite or PostgreSQL at start from its
//! configuration and holds an `Arc<dyn Store>`, so nothing above the store is generic over the
//! backend, and the conformance suite is written once against `&dyn Store`. Each method returns
//! a boxed future ([`StoreFuture`]); one allocation per call is noise next to a database round
//! trip.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;
use crate::ids::{JobId, OrgId, RepoId, RunId, RunnerId};
use crate::model::{
    AppliedTransition, BuildRun, Claim, CreatedRun, EngineState, FencingToken, Job, JobAttempt,
    Lease, NewOrganization, NewRepository, NewRun, Organization, QueuedJob, Repository, RunFilter,
    RunPage, RunningAttempt, StepResult, Transition, WorkflowRun,
};
use crate::runners::{
    LogAppend, LogLineRecord, NewRegistrationToken, NewRunner, RunnerRecord, StepReported,
};
use crate::sources::RepositorySource;

/// What every [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Durable state: the source of truth every in-memory index is rebuilt from.
///
/// Every method that writes does so in one transaction: it either changes everything it was
/// asked to or, on any error, nothing. Lookups of unknown ids fail with
/// [`StoreError::NotFound`].
pub trait Store: Send + Sync {
    /// Applies the migrations this build knows and the database lacks, in one transaction;
    /// returns the versions applied (none when the schema is current). Opening a store does
    /// this already.
    fn migrate(&self) -> StoreFuture<'_, Vec<i64>>;

    /// Creates an organization; a taken name is a conflict.
    fn create_organization(&self, org: NewOrganization) -> StoreFuture<'_, Organization>;

    /// The organization with this id.
    fn get_organization(&self, id: OrgId) -> StoreFuture<'_, Organization>;

    /// The organization with this name.
    fn get_organization_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Organization>;

    /// Up to `limit` (1 to [`RunFilter::MAX_LIMIT`]) organizations with ids above `after`,
    /// by id.
    fn list_organizations(
        &self,
        after: Option<OrgId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Organization>>;

    /// Creates a repository in an existing organization; a name taken in that organization
    /// is a conflict.
    fn create_repository(&self, repo: NewRepository) -> StoreFuture<'_, Repository>;

    /// The repository with this id.
    fn get_repository(&self, id: RepoId) -> StoreFuture<'_, Repository>;

    /// The repository `org/name`.
    fn get_repository_by_name<'a>(
        &'a self,
        org: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Repository>;

    /// A page of an organization's repositories by id: at most `limit` (1 to
    /// `RunFilter::MAX_LIMIT`) after `after`.
    fn list_repositories(
        &self,
        org_id: OrgId,
        after: Option<RepoId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Repository>>;

    /// Creates a run and its jobs in one transaction: allocates the run id and the workflow's
    /// next run number, calls `build` with them for the engine state and jobs, and stores all
    /// of it. With an idempotency key already used in the repository, creates nothing and
    /// returns the existing run (`created: false`), or a conflict if that run was for another
    /// workflow, event, ref or commit.
    fn create_run<'a>(
        &'a self,
        run: NewRun,
        build: BuildRun,
        idempotency_key: Option<&'a str>,
    ) -> StoreFuture<'a, CreatedRun>;

    /// Records a run of a workflow file that failed to load (GitHub's "Invalid workflow
    /// file"): created completed with conclusion failure, no jobs and no engine state, carrying
    /// `errors` (`file:line:col: message`, at least one). It takes the workflow's next run
    /// number and honours the idempotency key exactly as [`Store::create_run`] does.
    fn create_invalid_run<'a>(
        &'a self,
        run: NewRun,
        errors: Vec<String>,
        idempotency_key: Option<&'a str>,
    ) -> StoreFuture<'a, CreatedRun>;

    /// The run's queryable columns.
    fn get_run(&self, id: RunId) -> StoreFuture<'_, WorkflowRun>;

    /// The run's engine state and its version.
    fn get_engine_state(&self, id: RunId) -> StoreFuture<'_, EngineState>;

    /// A page of runs, newest first.
    fn list_runs(&self, filter: RunFilter) -> StoreFuture<'_, RunPage>;

    /// The job with this id.
    fn get_job(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// The jobs of a run, by id.
    fn list_jobs(&self, run_id: RunId) -> StoreFuture<'_, Vec<Job>>;

    /// The attempts of a job, by attempt number.
    fn list_attempts(&self, job_id: JobId) -> StoreFuture<'_, Vec<JobAttempt>>;

    /// The step results of a job, by attempt then step.
    fn list_step_results(&self, job_id: JobId) -> StoreFuture<'_, Vec<StepResult>>;

    /// Applies one state change of a run in one transaction. If the stored state version is
    /// not `expected_state_version`, nothing changes and the result is a conflict: of two
    /// writers computing from the same version, exactly one wins.
    ///
    /// A claim ([`Store::claim_job`]) does not change the state version, so the engine must
    /// learn of claims (its "job started" event) before it changes a claimed job.
    fn apply_transition(&self, transition: Transition) -> StoreFuture<'_, AppliedTransition>;

    /// Applies state changes of several runs, each as [`Store::apply_transition`] would apply
    /// it alone (a stale version or a refused claim changes nothing of that run and is its
    /// answer), and commits the others together: one transaction, a few statements for the
    /// whole batch where they can go together. The answers come in order; an error of the
    /// whole call means nothing was stored.
    fn apply_transitions(
        &self,
        transitions: Vec<Transition>,
    ) -> StoreFuture<'_, Vec<Result<AppliedTransition, StoreError>>>;

    /// Every queued job, oldest first: what the dispatcher's fair queue is rebuilt from.
    fn queued_jobs(&self) -> StoreFuture<'_, Vec<QueuedJob>>;

    /// Every claimed attempt that has not ended, with its lease deadline: what the lease
    /// watcher is rebuilt from.
    fn running_attempts(&self) -> StoreFuture<'_, Vec<RunningAttempt>>;

    /// Atomically moves a queued job to in progress for `runner_id`, with a new fencing token
    /// larger than every earlier token of the job, and records the claim on the job's current
    /// attempt. A job that is not queued (or whose attempt was already claimed or ended) is a
    /// conflict: two claims of one job can never both succeed.
    fn claim_job(&self, job_id: JobId, runner_id: RunnerId, lease: Lease)
    -> StoreFuture<'_, Claim>;

    /// Sets the priority of a job that has not completed, and moves its run's state version
    /// (the document stays as it is) so that a transition computed from the job's old row is
    /// refused and recomputed. A completed job is a conflict. Returns the job as it is now.
    fn set_job_priority(&self, job_id: JobId, priority: i64) -> StoreFuture<'_, Job>;

    /// Moves the lease deadline of the attempt holding `token`. A token that is not the job's
    /// latest, an ended attempt or a job no longer in progress is a conflict.
    fn renew_lease(
        &self,
        job_id: JobId,
        token: FencingToken,
        deadline_ms: i64,
    ) -> StoreFuture<'_, ()>;

    /// Keeps a registration token (by its hash); saving the same hash again updates its
    /// expiry.
    fn save_registration_token(&self, token: NewRegistrationToken) -> StoreFuture<'_, ()>;

    /// Registers a runner with a registration token: the token's organization becomes the
    /// runner's (none for the hosted pool). An unknown or expired token is `NotFound`.
    fn register_runner(&self, runner: NewRunner) -> StoreFuture<'_, RunnerRecord>;

    /// A runner, removed or not.
    fn get_runner(&self, id: RunnerId) -> StoreFuture<'_, RunnerRecord>;

    /// Every runner not removed, by id.
    fn list_runners(&self) -> StoreFuture<'_, Vec<RunnerRecord>>;

    /// Removes a runner (an ephemeral one after its job): its credential stops working.
    fn remove_runner(&self, id: RunnerId, now_ms: i64) -> StoreFuture<'_, ()>;

    /// Records a runner's report that a step started or ended, if `token` still holds the
    /// step's attempt (else `StaleToken`). Steps must start in order, one at a time, and end
    /// after they started (else `Conflict`); the same report twice is a `Duplicate`.
    fn report_step(&self, token: FencingToken, step: StepResult) -> StoreFuture<'_, StepReported>;

    /// Appends log lines of the attempt `append.fencing_token` holds (else `StaleToken`);
    /// returns how many lines of the attempt are stored. Lines already stored (a retried
    /// chunk) are skipped; a chunk that would leave a gap is a `Conflict`.
    fn append_log(&self, append: LogAppend) -> StoreFuture<'_, i64>;

    /// A job's log lines with `seq` above `after`, at most `limit` of them.
    fn read_log(
        &self,
        job_id: JobId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<LogLineRecord>>;

    /// The workflow file a run was created from.
    fn workflow_source(&self, run_id: RunId) -> StoreFuture<'_, String>;

    /// The reusable workflow files a run's workflow calls, by `uses:` text (empty when it
    /// calls none).
    fn called_workflows(&self, run_id: RunId) -> StoreFuture<'_, BTreeMap<String, String>>;

    /// Sets or replaces a repository's git source; an unknown repository is not found.
    fn set_repository_source(&self, source: RepositorySource) -> StoreFuture<'_, ()>;

    /// A repository's git source; not found when it has none.
    fn get_repository_source(&self, repo_id: RepoId) -> StoreFuture<'_, RepositorySource>;
}
