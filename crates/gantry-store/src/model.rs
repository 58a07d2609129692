//! The records the store keeps and the inputs that create and change them.
//!
//! These are the store's own types, independent of the engine's: the engine's per-run state is
//! an opaque JSON document ([`EngineState`]) next to the columns the server queries (status,
//! timings, the jobs' queue data). Timestamps are milliseconds since the Unix epoch, chosen by
//! the caller, so the store never reads a clock for data it keeps.

use std::collections::BTreeMap;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{JobId, OrgId, RepoId, RunId, RunnerId};
use crate::status::{Conclusion, JobStatus, RunStatus, StepStatus};

/// A tenant: its share of hosted runners and its concurrency quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// The id.
    pub id: OrgId,
    /// The unique name, as in `org/repo`.
    pub name: String,
    /// Its share in the fair queue relative to other organizations (at least 1).
    pub weight: i64,
    /// How many jobs may run at once on hosted runners; `None` for no limit.
    pub hosted_concurrency_limit: Option<i64>,
}

/// What creates an [`Organization`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrganization {
    /// The unique name; not empty.
    pub name: String,
    /// At least 1.
    pub weight: i64,
    /// Not negative; `None` for no limit.
    pub hosted_concurrency_limit: Option<i64>,
}

/// A repository of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// The id.
    pub id: RepoId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// The name, unique within the organization.
    pub name: String,
    /// The branch `github.event.repository.default_branch` names.
    pub default_branch: String,
}

/// What creates a [`Repository`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRepository {
    /// The organization; it must exist.
    pub org_id: OrgId,
    /// Unique within the organization; not empty.
    pub name: String,
    /// Not empty.
    pub default_branch: String,
}

/// The fixed facts of a run to create: what triggered it and which workflow it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRun {
    /// The repository; it must exist.
    pub repo_id: RepoId,
    /// The workflow file, e.g. `.github/workflows/ci.yml`; run numbers count per file.
    pub workflow_path: String,
    /// The workflow's `name:` (or its path when it has none).
    pub workflow_name: String,
    /// The triggering event, e.g. `push`.
    pub event_name: String,
    /// The ref, e.g. `refs/heads/main`.
    pub git_ref: String,
    /// The commit.
    pub sha: String,
    /// Who triggered it.
    pub actor: String,
    /// When it was created.
    pub created_at_ms: i64,
    /// The workflow file's text, kept so a claim can build the job's payload from it.
    pub workflow_source: String,
    /// The texts of the reusable workflows it calls (nested calls included), by `uses:` text.
    pub called_workflows: BTreeMap<String, String>,
}

/// The identity a run gets inside its creating transaction, handed to the [`BuildRun`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatedRun {
    /// The new run's id.
    pub run_id: RunId,
    /// Its number within its workflow: one more than the previous run of that workflow file.
    pub run_number: i64,
}

/// What the engine makes of a new run: its state and its first job instances.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContent {
    /// The run's status (normally [`RunStatus::Queued`]).
    pub status: RunStatus,
    /// The engine's state of the run; stored as version 1.
    pub engine_state: StateDocument,
    /// The run's compiled workflow (the engine's spec): stored once, never changed by a
    /// transition, and read back with every state ([`EngineState::spec`]).
    pub engine_spec: StateDocument,
    /// The job instances known at creation (deferred matrices add theirs later).
    pub jobs: Vec<NewJob>,
}

/// Makes a run's [`RunContent`] once its id and number are known.
///
/// The engine needs the run id and `github.run_number` to build the run's state, and both are
/// only allocated inside the creating transaction; so [`crate::Store::create_run`] calls this
/// inside that transaction, between allocating them and inserting the jobs. It is not called
/// when an idempotency key finds an existing run. An error refuses the creation
/// ([`crate::StoreError::Invalid`]) and nothing is stored.
///
/// It runs while the creating transaction holds the write lock (SQLite's single writer, the
/// workflow's run-number row on PostgreSQL): it must be quick and must not call the store.
/// It may run more than once (a batch of creations that cannot be stored together is stored
/// one by one, and built again): only the content of its last call is stored.
pub struct BuildRun(Box<dyn Fn(AllocatedRun) -> Result<RunContent, String> + Send + Sync>);

impl BuildRun {
    /// A builder from a function of the allocated identity.
    pub fn new(
        build: impl Fn(AllocatedRun) -> Result<RunContent, String> + Send + Sync + 'static,
    ) -> BuildRun {
        BuildRun(Box::new(build))
    }

    /// A builder for content that does not depend on the run's id or number.
    pub fn fixed(content: RunContent) -> BuildRun {
        BuildRun::new(move |_| Ok(content.clone()))
    }

    pub(crate) fn build(&self, run: AllocatedRun) -> Result<RunContent, String> {
        (self.0)(run)
    }
}

impl fmt::Debug for BuildRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BuildRun(..)")
    }
}

/// The state version of a run as [`crate::Store::create_run`] stores it: what its first
/// transition names.
pub const CREATED_STATE_VERSION: i64 = 1;

/// What [`crate::Store::create_run`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRun {
    /// The run (the existing one when `created` is false).
    pub run_id: RunId,
    /// Its number within its workflow.
    pub run_number: i64,
    /// False when the idempotency key named a run created earlier; nothing was created.
    pub created: bool,
    /// The run's jobs, in the order they were given (by id for an existing run).
    pub job_ids: Vec<JobId>,
}

/// A workflow run's queryable columns (its engine state is read with
/// [`crate::Store::get_engine_state`], so listing runs never loads the documents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The id.
    pub id: RunId,
    /// The repository.
    pub repo_id: RepoId,
    /// The workflow file.
    pub workflow_path: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// Its number within its workflow file.
    pub run_number: i64,
    /// 1, then one more per re-run.
    pub attempt: i64,
    /// The triggering event.
    pub event_name: String,
    /// The ref.
    pub git_ref: String,
    /// The commit.
    pub sha: String,
    /// Who triggered it.
    pub actor: String,
    /// Where it is.
    pub status: RunStatus,
    /// How it ended, once completed.
    pub conclusion: Option<Conclusion>,
    /// When it was created.
    pub created_at_ms: i64,
    /// When its first job started.
    pub started_at_ms: Option<i64>,
    /// When it completed.
    pub completed_at_ms: Option<i64>,
    /// The version of its engine state: 1 at creation, one more per transition.
    pub state_version: i64,
    /// The idempotency key it was created with.
    pub idempotency_key: Option<String>,
    /// Why its workflow file failed to load (`file:line:col: message`); empty for a run whose
    /// file loaded. A run with errors has no jobs and no engine state.
    pub workflow_errors: Vec<String>,
}

/// An engine state (or the spec stored next to it) to store, already JSON text.
///
/// Writers serialize their state straight to text with [`StateDocument::serialize`]: going
/// through a [`Value`] tree first cost about as much again as the text itself, on every
/// transition, for documents of a hundred kilobytes and more. The text can only come from a
/// serializer, so it is always one valid JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDocument(String);

impl StateDocument {
    /// The JSON text of `value`.
    pub fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<StateDocument, serde_json::Error> {
        // Every transition serializes its run's fields (~330 bytes) and each changed job's
        // state (~500 bytes for a one-step job): from an empty buffer that is seven or eight
        // reallocations, each copying the text so far (3.7 % of a PostgreSQL drain's samples
        // were growing buffers, a third of them here). Larger documents grow from here.
        let mut text = Vec::with_capacity(Self::STARTING_CAPACITY);
        serde_json::to_writer(&mut text, value)?;
        let text = String::from_utf8(text).map_err(|_| {
            <serde_json::Error as serde::ser::Error>::custom("the JSON text is not UTF-8")
        })?;
        Ok(StateDocument(text))
    }

    /// The buffer a document is serialized into at first: a run's fields or a small job's
    /// state fit.
    const STARTING_CAPACITY: usize = 1024;

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Value> for StateDocument {
    fn from(value: Value) -> StateDocument {
        // A `Value` always prints as valid JSON.
        StateDocument(value.to_string())
    }
}

/// What a transition writes of the engine's state: the run's own fields, and the jobs that
/// changed, each at its position in the document's `jobs` array.
///
/// A run's state is a JSON object whose `jobs` member is an array of job states. An event
/// changes a few of them, so a transition carries only those: writing the whole document
/// every time cost in proportion to the size of the run (a leaf of a 1,000-job fan-out
/// rewrote ~450 KB). Reading the state joins the parts back into one document.
///
/// A whole document converts into its parts (`From<Value>`): its fields as `run`, and each
/// of its `jobs` at its position.
///
/// Most events change no field of the run itself (a job's start or end, other than the
/// first and the last): such a transition gives no `run`, and the run's row, the widest a
/// transition would write, is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The document without its `jobs` member; `None` when the run's own fields are as
    /// stored. (Reading joins the stored jobs to it: a `jobs` member here is not read.)
    pub run: Option<StateDocument>,
    /// New job states, by position in `jobs`; the others stay as they are.
    pub jobs: Vec<(u32, StateDocument)>,
}

impl From<Value> for StateChange {
    /// A whole document, written as its parts: every job of its `jobs` array, at its
    /// position, and the rest as the run's fields.
    fn from(mut document: Value) -> StateChange {
        // A `jobs` member that is not a list is a field like any other.
        let has_jobs = matches!(document.get(JOBS_MEMBER), Some(Value::Array(_)));
        let jobs = match document
            .as_object_mut()
            .filter(|_| has_jobs)
            .and_then(|fields| fields.remove(JOBS_MEMBER))
        {
            Some(Value::Array(jobs)) => (0..)
                .zip(jobs)
                .map(|(index, job)| (index, job.into()))
                .collect(),
            _ => Vec::new(),
        };
        StateChange {
            run: Some(document.into()),
            jobs,
        }
    }
}

/// The member of a state document that holds its jobs ([`StateChange`]).
pub(crate) const JOBS_MEMBER: &str = "jobs";

/// The engine's state of a run and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// The run.
    pub run_id: RunId,
    /// The document, as the last transition left it (its parts joined, see [`StateChange`]).
    pub document: Value,
    /// The compiled workflow stored when the run was created; `None` for a run of an invalid
    /// workflow file.
    pub spec: Option<Value>,
    /// Its version; a transition must name it to replace the document.
    pub version: i64,
}

/// A job instance to insert: one job of the workflow, or one combination of its matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The job id (the key under `jobs:`); not empty.
    pub job_key: String,
    /// The matrix combination, 0 without a matrix; `(job_key, matrix_index)` is unique in a run.
    pub matrix_index: i64,
    /// The display name, e.g. `build (ubuntu, 1.2)`.
    pub name: String,
    /// Waiting or queued, normally.
    pub status: JobStatus,
    /// The instance's attempt (1 for a new instance).
    pub attempt: i64,
    /// The `runs-on` labels, once evaluated.
    pub runs_on: Vec<String>,
    /// Why it is not running yet: the engine's reasons, opaque to the store.
    pub waiting_reasons: Value,
    /// Higher runs first among the jobs of a tenant.
    pub priority: i64,
    /// When it was queued, if it is.
    pub queued_at_ms: Option<i64>,
    /// When it started, if it has (a job calling a reusable workflow starts as its run is
    /// created when it needs nothing).
    pub started_at_ms: Option<i64>,
}

impl NewJob {
    /// The row the store holds for this job once inserted as `id` of `run_id`: a creation's
    /// caller keeps these instead of reading its rows back.
    pub fn stored_as(&self, id: JobId, run_id: RunId) -> Job {
        Job {
            id,
            run_id,
            job_key: self.job_key.clone(),
            matrix_index: self.matrix_index,
            name: self.name.clone(),
            status: self.status,
            conclusion: None,
            attempt: self.attempt,
            runs_on: self.runs_on.clone(),
            waiting_reasons: self.waiting_reasons.clone(),
            outputs: Value::Object(serde_json::Map::new()),
            priority: self.priority,
            queued_at_ms: self.queued_at_ms,
            started_at_ms: self.started_at_ms,
            completed_at_ms: None,
        }
    }
}

/// A stored job instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The id.
    pub id: JobId,
    /// The run.
    pub run_id: RunId,
    /// The job id in the workflow.
    pub job_key: String,
    /// The matrix combination, 0 without a matrix.
    pub matrix_index: i64,
    /// The display name.
    pub name: String,
    /// Where it is.
    pub status: JobStatus,
    /// How it ended, once completed.
    pub conclusion: Option<Conclusion>,
    /// The current attempt.
    pub attempt: i64,
    /// The `runs-on` labels.
    pub runs_on: Vec<String>,
    /// Why it is not running yet.
    pub waiting_reasons: Value,
    /// Its outputs once it ended (`{}` before).
    pub outputs: Value,
    /// Its priority.
    pub priority: i64,
    /// When it was last queued.
    pub queued_at_ms: Option<i64>,
    /// When it last started.
    pub started_at_ms: Option<i64>,
    /// When it completed.
    pub completed_at_ms: Option<i64>,
}

impl Job {
    /// Changes this row as a claim at `at_ms` changes it in the store: in progress, started
    /// then, waiting on nothing. A transition that claims the job compares its rows as the
    /// claim leaves them, so it writes the row again only for what the claim did not set.
    pub fn claim(&mut self, at_ms: i64) {
        self.status = JobStatus::InProgress;
        self.started_at_ms = Some(at_ms);
        self.waiting_reasons = Value::Array(Vec::new());
    }
}

/// A job stored as queued, with what the fair queue orders it by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedJob {
    /// The job.
    pub job: Job,
    /// Its run's repository.
    pub repo_id: RepoId,
    /// That repository's organization.
    pub org_id: OrgId,
}

/// A monotonic token of a job's claim: every claim of a job gets a larger one, and only the
/// latest can renew the lease or end the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(pub i64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One dispatch of a job to a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAttempt {
    /// The job.
    pub job_id: JobId,
    /// The attempt number (the job's `attempt` when it was claimed).
    pub attempt: i64,
    /// The runner that claimed it; `None` until claimed.
    pub runner_id: Option<RunnerId>,
    /// The claim's token; `None` until claimed.
    pub fencing_token: Option<FencingToken>,
    /// When the lease ends unless renewed.
    pub lease_deadline_ms: Option<i64>,
    /// When it was claimed.
    pub started_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
    /// How it ended.
    pub result: Option<Conclusion>,
}

/// A claimed attempt that has not ended: a lease the server watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningAttempt {
    /// The job.
    pub job_id: JobId,
    /// Its run.
    pub run_id: RunId,
    /// The run's repository.
    pub repo_id: RepoId,
    /// The repository's organization.
    pub org_id: OrgId,
    /// The attempt number.
    pub attempt: i64,
    /// The runner holding it.
    pub runner_id: Option<RunnerId>,
    /// The claim's token.
    pub fencing_token: FencingToken,
    /// When the lease ends unless renewed.
    pub lease_deadline_ms: Option<i64>,
    /// When it was claimed.
    pub started_at_ms: Option<i64>,
}

/// The lease a claim starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// When the claim happens (the job's and the attempt's start).
    pub now_ms: i64,
    /// When the lease ends unless renewed.
    pub deadline_ms: i64,
}

/// What a successful [`crate::Store::claim_job`] hands the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The job, now in progress.
    pub job_id: JobId,
    /// Its run.
    pub run_id: RunId,
    /// The attempt claimed.
    pub attempt: i64,
    /// The new token, larger than every earlier token of the job.
    pub fencing_token: FencingToken,
}

/// A step's result within a job attempt (inserted, or replacing the same step's earlier row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// The job.
    pub job_id: JobId,
    /// The attempt; it must exist.
    pub attempt: i64,
    /// The step's position in the job, from 0.
    pub step_index: i64,
    /// The step's name.
    pub name: String,
    /// Where it is.
    pub status: StepStatus,
    /// How it ended.
    pub conclusion: Option<Conclusion>,
    /// When it started.
    pub started_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}

/// Which runs to list, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only this repository's runs.
    pub repo_id: Option<RepoId>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// At most this many (1 to [`RunFilter::MAX_LIMIT`]).
    pub limit: u32,
    /// The cursor: only runs older than this one (the previous page's `next`).
    pub before: Option<RunId>,
}

impl RunFilter {
    /// The largest page.
    pub const MAX_LIMIT: u32 = 1000;
}

/// One page of runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPage {
    /// Newest first.
    pub runs: Vec<WorkflowRun>,
    /// The cursor of the next page, when there are older runs.
    pub next: Option<RunId>,
}

/// One state change of a run, applied in one transaction by
/// [`crate::Store::apply_transition`]: all of it or none of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The run.
    pub run_id: RunId,
    /// The state version the transition was computed from; if the stored one differs, the
    /// transition is refused with [`crate::StoreError::Conflict`] and changes nothing.
    pub expected_state_version: i64,
    /// What changed of the engine's state of the run.
    pub engine_state: StateChange,
    /// The run's new queryable columns; `None` leaves them as they are.
    pub run: Option<RunUpdate>,
    /// New values of existing jobs of this run.
    pub job_updates: Vec<JobUpdate>,
    /// Job instances to add (a deferred matrix expanded).
    pub new_jobs: Vec<NewJob>,
    /// Attempts to record before any claim (e.g. one cancelled while queued).
    pub new_attempts: Vec<NewAttempt>,
    /// Attempts that ended (result reported, lease expired, cancelled).
    pub ended_attempts: Vec<EndedAttempt>,
    /// Step results to insert or replace.
    pub step_results: Vec<StepResult>,
    /// Claims made in the same transaction, right after the version check and before the
    /// job rows change (the engine's "job started" and the claims it follows commit
    /// together); if one is refused as [`crate::Store::claim_job`] would refuse it, nothing
    /// changes.
    pub claims: Vec<ClaimInTransition>,
}

/// The claim a [`Transition`] makes: the job's attempt, taken by a runner under a new
/// fencing token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInTransition {
    /// The job, which must be of the transition's run and queued.
    pub job_id: JobId,
    /// The attempt the claim is for: refused as a conflict if the job's row is at another.
    pub attempt: i64,
    /// The runner taking it.
    pub runner_id: RunnerId,
    /// Its lease.
    pub lease: Lease,
}

impl Transition {
    /// The jobs its attempts and steps name that are not known to be of its run, each once:
    /// those it updates or `claimed` are (usually no job is left to look up).
    pub(crate) fn jobs_to_check(&self, claimed: &[Claim]) -> Vec<JobId> {
        let mut known: std::collections::HashSet<JobId> = self
            .job_updates
            .iter()
            .map(|update| update.job_id)
            .chain(claimed.iter().map(|claim| claim.job_id))
            .collect();
        self.new_attempts
            .iter()
            .map(|attempt| attempt.job_id)
            .chain(self.ended_attempts.iter().map(|ended| ended.job_id))
            .chain(self.step_results.iter().map(|step| step.job_id))
            .filter(|job_id| known.insert(*job_id))
            .collect()
    }

    /// A transition that only replaces the engine state.
    pub fn new(
        run_id: RunId,
        expected_state_version: i64,
        engine_state: impl Into<StateChange>,
    ) -> Transition {
        Transition {
            run_id,
            expected_state_version,
            engine_state: engine_state.into(),
            run: None,
            job_updates: Vec::new(),
            new_jobs: Vec::new(),
            new_attempts: Vec::new(),
            ended_attempts: Vec::new(),
            step_results: Vec::new(),
            claims: Vec::new(),
        }
    }
}

/// A run's new queryable columns, all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUpdate {
    /// The run attempt.
    pub attempt: i64,
    /// The status.
    pub status: RunStatus,
    /// The conclusion.
    pub conclusion: Option<Conclusion>,
    /// When its first job started.
    pub started_at_ms: Option<i64>,
    /// When it completed.
    pub completed_at_ms: Option<i64>,
}

/// A job's new values: every column that can change, so a re-run can clear a conclusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    /// The job; it must belong to the transition's run.
    pub job_id: JobId,
    /// The display name.
    pub name: String,
    /// The status.
    pub status: JobStatus,
    /// The conclusion.
    pub conclusion: Option<Conclusion>,
    /// The attempt.
    pub attempt: i64,
    /// The `runs-on` labels.
    pub runs_on: Vec<String>,
    /// Why it is not running yet.
    pub waiting_reasons: Value,
    /// Its outputs.
    pub outputs: Value,
    /// Its priority.
    pub priority: i64,
    /// When it was last queued.
    pub queued_at_ms: Option<i64>,
    /// When it last started.
    pub started_at_ms: Option<i64>,
    /// When it completed.
    pub completed_at_ms: Option<i64>,
}

impl JobUpdate {
    /// The update that leaves `job` as it is, to change a few fields of.
    pub fn from_job(job: &Job) -> JobUpdate {
        JobUpdate {
            job_id: job.id,
            name: job.name.clone(),
            status: job.status,
            conclusion: job.conclusion,
            attempt: job.attempt,
            runs_on: job.runs_on.clone(),
            waiting_reasons: job.waiting_reasons.clone(),
            outputs: job.outputs.clone(),
            priority: job.priority,
            queued_at_ms: job.queued_at_ms,
            started_at_ms: job.started_at_ms,
            completed_at_ms: job.completed_at_ms,
        }
    }

    /// Whether storing this update would leave `job`'s row as it is: what comparing it with
    /// [`JobUpdate::from_job`] says, without copying the row's text and lists (every
    /// transition asks this of each job it looks at).
    pub fn leaves_unchanged(&self, job: &Job) -> bool {
        // Every field named, so that a field added to the update cannot be left out here.
        let JobUpdate {
            job_id,
            name,
            status,
            conclusion,
            attempt,
            runs_on,
            waiting_reasons,
            outputs,
            priority,
            queued_at_ms,
            started_at_ms,
            completed_at_ms,
        } = self;
        *job_id == job.id
            && *name == job.name
            && *status == job.status
            && *conclusion == job.conclusion
            && *attempt == job.attempt
            && *runs_on == job.runs_on
            && *waiting_reasons == job.waiting_reasons
            && *outputs == job.outputs
            && *priority == job.priority
            && *queued_at_ms == job.queued_at_ms
            && *started_at_ms == job.started_at_ms
            && *completed_at_ms == job.completed_at_ms
    }

    /// Changes `job` as storing this update changes its row (the inverse of
    /// [`JobUpdate::from_job`]), for callers that keep rows in memory.
    pub fn apply_to(&self, job: &mut Job) {
        job.name.clone_from(&self.name);
        job.status = self.status;
        job.conclusion = self.conclusion;
        job.attempt = self.attempt;
        job.runs_on.clone_from(&self.runs_on);
        job.waiting_reasons.clone_from(&self.waiting_reasons);
        job.outputs.clone_from(&self.outputs);
        job.priority = self.priority;
        job.queued_at_ms = self.queued_at_ms;
        job.started_at_ms = self.started_at_ms;
        job.completed_at_ms = self.completed_at_ms;
    }
}

/// An attempt to record unclaimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttempt {
    /// The job; it must belong to the transition's run.
    pub job_id: JobId,
    /// The attempt number; unique per job.
    pub attempt: i64,
}

/// An attempt that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedAttempt {
    /// The job; it must belong to the transition's run.
    pub job_id: JobId,
    /// The attempt number.
    pub attempt: i64,
    /// The token the reporter holds: when set, the attempt must hold it, so a runner whose
    /// lease was taken over can never end the attempt. `None` for attempts never claimed or
    /// ended by the server itself (lease expiry, cancel while queued).
    pub fencing_token: Option<FencingToken>,
    /// When it ended.
    pub ended_at_ms: i64,
    /// How.
    pub result: Conclusion,
}

/// What [`crate::Store::apply_transition`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedTransition {
    /// The run's new state version.
    pub state_version: i64,
    /// The ids of the transition's `new_jobs`, in order.
    pub new_job_ids: Vec<JobId>,
    /// The claims the transition made, in the order asked, with their fencing tokens.
    pub claims: Vec<Claim>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::{StateChange, StateDocument};

    #[test]
    fn a_state_document_is_the_json_text_of_what_it_was_made_from() {
        #[derive(serde::Serialize)]
        struct State {
            jobs: Vec<&'static str>,
            attempt: u32,
        }
        let made = StateDocument::serialize(&State {
            jobs: vec!["build", "test"],
            attempt: 2,
        })
        .unwrap();
        let expected = json!({"jobs": ["build", "test"], "attempt": 2});
        assert_eq!(
            serde_json::from_str::<Value>(made.as_str()).unwrap(),
            expected
        );
        let from_value = StateDocument::from(expected.clone());
        assert_eq!(
            serde_json::from_str::<Value>(from_value.as_str()).unwrap(),
            expected
        );
    }

    /// Documents shorter and longer than the starting buffer, with text to escape, come out
    /// as serde_json prints them.
    #[test]
    fn a_state_document_of_any_length_is_serde_jsons_text() {
        for length in [
            0,
            10,
            StateDocument::STARTING_CAPACITY,
            5 * StateDocument::STARTING_CAPACITY,
        ] {
            let value = json!({"name": format!("\"é\n{}", "x".repeat(length)), "n": length});
            let made = StateDocument::serialize(&value).unwrap();
            assert_eq!(made.as_str(), serde_json::to_string(&value).unwrap());
        }
    }

    /// An update leaves a row unchanged exactly when it equals the row's own update: each
    /// field changed alone is noticed.
    #[test]
    fn an_update_leaves_a_row_unchanged_only_when_every_field_agrees() {
        use super::{Job, JobUpdate};
        use crate::{Conclusion, JobId, JobStatus, RunId};
        let row = Job {
            id: JobId(3),
            run_id: RunId(1),
            job_key: "build".to_owned(),
            matrix_index: 0,
            name: "build".to_owned(),
            status: JobStatus::InProgress,
            conclusion: None,
            attempt: 1,
            runs_on: vec!["linux".to_owned()],
            waiting_reasons: json!([]),
            outputs: json!({}),
            priority: 0,
            queued_at_ms: Some(1),
            started_at_ms: Some(2),
            completed_at_ms: None,
        };
        let same = JobUpdate::from_job(&row);
        assert!(same.leaves_unchanged(&row));
        let changes: [fn(&mut JobUpdate); 12] = [
            |update| update.job_id = JobId(4),
            |update| update.name.push('!'),
            |update| update.status = JobStatus::Completed,
            |update| update.conclusion = Some(Conclusion::Success),
            |update| update.attempt = 2,
            |update| update.runs_on.push("gpu".to_owned()),
            |update| update.waiting_reasons = json!(["needs"]),
            |update| update.outputs = json!({"a": "1"}),
            |update| update.priority = 5,
            |update| update.queued_at_ms = None,
            |update| update.started_at_ms = Some(9),
            |update| update.completed_at_ms = Some(9),
        ];
        for change in changes {
            let mut update = same.clone();
            change(&mut update);
            assert_ne!(update, same);
            assert!(!update.leaves_unchanged(&row), "{update:?}");
        }
    }

    /// Jobs named by attempts and ended attempts but neither updated nor claimed are
    /// looked up, each once.
    #[test]
    fn only_jobs_neither_updated_nor_claimed_are_checked() {
        use super::{Claim, EndedAttempt, FencingToken, NewAttempt, Transition};
        use crate::{Conclusion, JobId, RunId};
        let mut transition = Transition::new(RunId(1), 1, json!({}));
        let claimed = [Claim {
            job_id: JobId(7),
            run_id: RunId(1),
            attempt: 1,
            fencing_token: FencingToken(1),
        }];
        let attempt = |job| NewAttempt {
            job_id: JobId(job),
            attempt: 2,
        };
        transition.new_attempts = vec![attempt(7), attempt(8), attempt(8)];
        transition.ended_attempts = vec![EndedAttempt {
            job_id: JobId(9),
            attempt: 1,
            fencing_token: None,
            ended_at_ms: 1,
            result: Conclusion::Failure,
        }];
        assert_eq!(transition.jobs_to_check(&claimed), [JobId(8), JobId(9)]);
    }

    #[test]
    fn a_whole_document_is_written_as_its_parts() {
        let change = StateChange::from(json!({"status": "queued", "jobs": [{"a": 1}, {"b": 2}]}));
        let jobs: Vec<(u32, &str)> = change
            .jobs
            .iter()
            .map(|(index, job)| (*index, job.as_str()))
            .collect();
        assert_eq!(jobs, [(0, r#"{"a":1}"#), (1, r#"{"b":2}"#)]);
        assert_eq!(
            change.run.as_ref().map(StateDocument::as_str),
            Some(r#"{"status":"queued"}"#)
        );
        // Without a list of jobs, the document is the run's fields.
        for document in [json!({"jobs": 3}), json!({"v": 1}), json!(null)] {
            let change = StateChange::from(document.clone());
            assert!(change.jobs.is_empty());
            assert_eq!(change.run, Some(document.into()));
        }
    }
}
