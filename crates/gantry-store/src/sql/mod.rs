//! The one implementation of [`Store`] on sqlx, generic over the two backends.
//!
//! SQLite and PostgreSQL run the same statements ([`queries`]) through the same code; what
//! differs is stated by [`Backend`] (migrations, how a write transaction begins, how
//! migrations are locked) and by how each store opens its pools (`crate::sqlite`,
//! `crate::postgres`). Writes go through the `writes` pool, reads through `reads`: for SQLite
//! the first has exactly one connection (the single writer), for PostgreSQL both are the same
//! pool.
//!
//! Every write is one transaction that is committed last; any error returns early and drops
//! the transaction, which rolls it back, so a failed call changes nothing.

mod create_together;
mod direct_transitions;
mod group_commit;
mod migrate;
pub(crate) mod multi_row;
pub(crate) mod queries;
mod rows;
mod runner_queries;
mod runners;
mod sources;
mod together;
mod transitions_together;
mod writer_thread;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use crate::error::StoreError;
use crate::ids::{JobId, OrgId, RepoId, RunId, RunnerId};
use crate::model::{
    AllocatedRun, AppliedTransition, BuildRun, Claim, CreatedRun, EndedAttempt, EngineState,
    FencingToken, Job, JobAttempt, JobUpdate, Lease, NewAttempt, NewJob, NewOrganization,
    NewRepository, NewRun, Organization, QueuedJob, Repository, RunFilter, RunPage, RunningAttempt,
    StateDocument, StepResult, Transition, WorkflowRun,
};
use crate::runners::{
    LogAppend, LogLineRecord, NewRegistrationToken, NewRunner, RunnerRecord, StepReported,
};
use crate::sources::RepositorySource;
use crate::status::{JobStatus, RunStatus};
use crate::store::{Store, StoreFuture};

pub use migrate::Migration;
use multi_row::Rows;

pub(crate) use direct_transitions::DirectWriter;
use group_commit::{Content, PendingWrite, Performed, WriteQueue};
use writer_thread::WriterThread;

use queries as q;
use rows::StoreRow;

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Sqlite {}
    impl Sealed for sqlx::Postgres {}
}

/// What differs between the backends beyond the pools: implemented for [`sqlx::Sqlite`] and
/// [`sqlx::Postgres`] only.
pub trait Backend: Database + sealed::Sealed {
    /// The backend's numbered migrations, in order.
    const MIGRATIONS: &'static [Migration];
    /// The statement that begins a write transaction (and the migrations' transaction).
    const BEGIN_WRITE: &'static str;
    /// Settings sent with the `BEGIN` of every write transaction but the migrations', or
    /// `None`. On PostgreSQL they plan the transaction without sequential scans, hash or merge
    /// joins: every write reads and changes rows by key, but a plan made while a table is
    /// small (and kept, see [`Backend::PLAN_TOGETHER`]) may scan it whole. Migrations, which
    /// may read whole tables, keep the planner's defaults.
    const PLAN_WRITES: Option<&'static str>;
    /// A statement run first in the migration transaction to keep two processes from
    /// migrating at once, if the backend needs one.
    const LOCK_MIGRATIONS: Option<&'static str>;
    /// Whether transitions and claims share group-commit batches with creations. SQLite has
    /// one writer, so batching is its only way to share a flush; PostgreSQL runs transactions
    /// on several connections at once, and one batch leader serializing them all measured
    /// slower there (drain 660 → 361 jobs/s in-process), so it keeps them concurrent.
    const BATCH_RUN_CHANGES: bool;
    /// Whether multi-row statements bind their parameters by position (`?`) rather than by
    /// number (`$N`). SQLite takes both, but sqlx looks up the name of every numbered
    /// parameter, which SQLite finds by walking a list: quadratic in the parameters of a
    /// statement, and a 64-row update has 832 (7 % of the writer thread in `bench drain`).
    const POSITIONAL_PARAMETERS: bool;
    /// Whether batches of writes run on a thread of the store's own ([`writer_thread`]) rather
    /// than on the caller's runtime. SQLite's one writer waits for each statement of a batch
    /// to be sent, so the batch must not queue behind the server's other work (start latency
    /// at 1,000 jobs/s over HTTP, p50 140 → 25 ms); PostgreSQL runs its writes on several
    /// connections at once, and putting them all on one thread measured slower (start latency
    /// at 200 jobs/s, p99 15 → 29 ms).
    const OWN_WRITER_THREAD: bool;
    /// A statement run before writes stored together ([`together`]) that makes the rest of
    /// the transaction keep one plan for each statement, or `None`. On PostgreSQL their
    /// multi-row statements ([`multi_row`]) are the same text for any number of rows; planned
    /// for each batch's parameters, planning was 15 % of the server's time in a drain
    /// (`perf`), and PostgreSQL's own choice between custom and generic plans kept a generic
    /// plan made while the tables were nearly empty (a hash join over a sequential scan of
    /// `job_attempts`, 3,268 jobs/s at 100,000 jobs against 5,599 planned each time). With
    /// [`Backend::PLAN_WRITES`] planning every write as key lookups, the one generic plan is
    /// the right one whatever the tables hold.
    const PLAN_TOGETHER: Option<&'static str>;
    /// At most how many rows one multi-row statement ([`multi_row`]) writes or matches.
    const ROWS_PER_STATEMENT: usize;
    /// Whether one statement may change several tables through data-modifying `WITH`
    /// clauses (PostgreSQL; SQLite has none). A transition alone then moves its run and
    /// writes its job states in one statement, and a claim changes its job and records its
    /// attempt in one: each statement on PostgreSQL is a round trip with the server's own
    /// per-statement work, and a run of one job (`bench start-latency`) spends most of its
    /// time in those.
    const DATA_MODIFYING_CTES: bool;
    /// `rows` as the table `v` of an `UPDATE … FROM`, with their columns' names.
    fn rows_table(rows: &Rows<'_>) -> String;
    /// `rows` as the rows of an `INSERT INTO t (their columns) …`.
    fn rows_to_insert(rows: &Rows<'_>) -> String;
    /// Binds `rows`' values to `query` in the order [`Backend::rows_table`] and
    /// [`Backend::rows_to_insert`] number them.
    fn bind_rows<'q>(
        query: sqlx::query::Query<'q, Self, Self::Arguments>,
        rows: &Rows<'_>,
    ) -> sqlx::query::Query<'q, Self, Self::Arguments>;
}

/// What begins a write transaction: [`Backend::BEGIN_WRITE`] with [`Backend::PLAN_WRITES`]
/// and `then` (more settings for the transaction), in one round trip.
pub(crate) fn begin_write<DB: Backend>(then: Option<&str>) -> sqlx::AssertSqlSafe<String> {
    let mut statement = DB::BEGIN_WRITE.to_owned();
    for settings in [DB::PLAN_WRITES, then].into_iter().flatten() {
        statement.push_str("; ");
        statement.push_str(settings);
    }
    sqlx::AssertSqlSafe(statement)
}

/// A statement built by [`queries`] (its parameters `$1, $2, …` written in the order they
/// are bound, each once) in the backend's parameter style ([`Backend::POSITIONAL_PARAMETERS`]).
fn for_backend<DB: Backend>(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(if DB::POSITIONAL_PARAMETERS {
        q::positional(&sql)
    } else {
        sql
    })
}

/// A [`Store`] over sqlx pools; use it as [`crate::SqliteStore`] or [`crate::PostgresStore`].
#[derive(Debug)]
pub struct SqlStore<DB: Backend> {
    pub(crate) reads: Pool<DB>,
    pub(crate) writes: Pool<DB>,
    /// Run creations, transitions and claims waiting for a shared transaction
    /// ([`group_commit`]).
    batched: Arc<WriteQueue>,
    /// Where batches of writes run, if not on the caller's runtime
    /// ([`Backend::OWN_WRITER_THREAD`]).
    pub(crate) writer: Option<WriterThread>,
    /// Where batches made only of transitions are stored, if not through sqlx (SQLite:
    /// [`DirectWriter`]).
    pub(crate) direct: Option<Arc<DirectWriter>>,
}

impl<DB: Backend> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            reads: self.reads.clone(),
            writes: self.writes.clone(),
            batched: Arc::clone(&self.batched),
            writer: self.writer.clone(),
            direct: self.direct.clone(),
        }
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writes.close().await;
        self.reads.close().await;
    }
}

/// The longest name, ref or key the store accepts.
const MAX_TEXT: usize = 1024;

/// A page holds 1 to `RunFilter::MAX_LIMIT` items.
fn require_page_size(limit: u32) -> Result<(), StoreError> {
    if limit == 0 || limit > RunFilter::MAX_LIMIT {
        return Err(StoreError::invalid(format!(
            "page size {limit} is not between 1 and {}",
            RunFilter::MAX_LIMIT
        )));
    }
    Ok(())
}

fn require_text(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::invalid(format!("{what} is empty")));
    }
    if value.len() > MAX_TEXT {
        return Err(StoreError::invalid(format!(
            "{what} is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

fn require_at_least(what: &str, value: i64, least: i64) -> Result<(), StoreError> {
    if value < least {
        return Err(StoreError::invalid(format!(
            "{what} is {value}, less than {least}"
        )));
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::invalid(format!("{what} cannot be serialized: {error}")))
}

fn validate_new_job(job: &NewJob) -> Result<(), StoreError> {
    require_text("job key", &job.job_key)?;
    require_text("job name", &job.name)?;
    require_at_least("matrix index", job.matrix_index, 0)?;
    require_at_least("job attempt", job.attempt, 1)
}

/// Answers the writes of a batch once its commit is known: each with its own answer, or all
/// with the commit's failure.
fn answer_committed(committed: Result<(), sqlx::Error>, performed: Vec<Performed>) {
    match committed {
        Ok(()) => performed.into_iter().for_each(Performed::answer),
        Err(error) => {
            let cause = format!("commit failed: {error}");
            performed.into_iter().for_each(|done| {
                done.fail(StoreError::BatchFailed {
                    cause: cause.clone(),
                })
            });
        }
    }
}

/// The answer of a write whose batch stopped (a panic, a dropped task) before answering it.
fn unanswered() -> StoreError {
    StoreError::BatchFailed {
        cause: "the batch holding this write stopped before answering".to_owned(),
    }
}

/// A database error, with unique violations turned into a conflict about `what`.
fn unique_is_conflict(error: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    if StoreError::is_unique_violation(&error) {
        StoreError::conflict(what())
    } else {
        StoreError::Database(error)
    }
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    /// A store over these pools, migrated.
    pub(crate) async fn from_pools(
        reads: Pool<DB>,
        writes: Pool<DB>,
        direct: Option<DirectWriter>,
    ) -> Result<SqlStore<DB>, StoreError> {
        let store = SqlStore {
            reads,
            writes,
            batched: Arc::default(),
            writer: if DB::OWN_WRITER_THREAD {
                Some(WriterThread::start().map_err(sqlx::Error::Io)?)
            } else {
                None
            },
            direct: direct.map(Arc::new),
        };
        store.apply_migrations().await?;
        if let Some(writer) = &store.writer {
            // The loop's store does not hold the thread, which ends with the last other one.
            let queued = SqlStore {
                writer: None,
                ..store.clone()
            };
            writer.spawn(queued.write_queued());
        }
        Ok(store)
    }

    /// The writer thread's loop: when rung, writes what is queued, batch after batch, until
    /// nothing is left. The next batch starts as soon as the last one has committed, on this
    /// thread; led from the server's runtime, each hand-over from one batch's leader to the
    /// next waited for busy runtime threads to wake two tasks, and the writer sat idle half the
    /// time at 10,000 jobs/s (`gantry bench drain`).
    async fn write_queued(self) {
        loop {
            self.batched.rung().await;
            loop {
                let batch = self.batched.take();
                if batch.is_empty() {
                    break;
                }
                // On a task of its own (of this thread's runtime): a panicking batch drops its
                // callers' answers (they learn of it) and rolls its transaction back, and the
                // loop goes on.
                self.write_batch_apart(batch).await;
            }
        }
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, DB>, StoreError> {
        Ok(self.writes.begin_with(begin_write::<DB>(None)).await?)
    }

    async fn create_organization(&self, org: NewOrganization) -> Result<Organization, StoreError> {
        require_text("organization name", &org.name)?;
        require_at_least("organization weight", org.weight, 1)?;
        if let Some(limit) = org.hosted_concurrency_limit {
            require_at_least("hosted concurrency limit", limit, 0)?;
        }
        let row = sqlx::query(q::INSERT_ORGANIZATION)
            .bind(org.name.as_str())
            .bind(org.weight)
            .bind(org.hosted_concurrency_limit)
            .fetch_one(&self.writes)
            .await
            .map_err(|error| {
                unique_is_conflict(error, || {
                    format!("organization `{}` already exists", org.name)
                })
            })?;
        Ok(Organization {
            id: OrgId(rows::id(&row)?),
            name: org.name,
            weight: org.weight,
            hosted_concurrency_limit: org.hosted_concurrency_limit,
        })
    }

    async fn get_organization(&self, id: OrgId) -> Result<Organization, StoreError> {
        let row = sqlx::query(q::SELECT_ORGANIZATION)
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(row) => rows::organization(&row),
            None => Err(StoreError::not_found(format!("organization {id}"))),
        }
    }

    async fn get_organization_by_name(&self, name: &str) -> Result<Organization, StoreError> {
        let row = sqlx::query(q::SELECT_ORGANIZATION_BY_NAME)
            .bind(name)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(row) => rows::organization(&row),
            None => Err(StoreError::not_found(format!("organization `{name}`"))),
        }
    }

    async fn list_organizations(
        &self,
        after: Option<OrgId>,
        limit: u32,
    ) -> Result<Vec<Organization>, StoreError> {
        require_page_size(limit)?;
        let rows = sqlx::query(q::LIST_ORGANIZATIONS)
            .bind(after.map_or(0, |id| id.0))
            .bind(i64::from(limit))
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(rows::organization).collect()
    }

    async fn create_repository(&self, repo: NewRepository) -> Result<Repository, StoreError> {
        require_text("repository name", &repo.name)?;
        require_text("default branch", &repo.default_branch)?;
        let mut tx = self.begin().await?;
        let org = sqlx::query(q::ORGANIZATION_EXISTS)
            .bind(repo.org_id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if org.is_none() {
            return Err(StoreError::not_found(format!(
                "organization {}",
                repo.org_id
            )));
        }
        let row = sqlx::query(q::INSERT_REPOSITORY)
            .bind(repo.org_id.0)
            .bind(repo.name.as_str())
            .bind(repo.default_branch.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(|error| {
                unique_is_conflict(error, || {
                    format!(
                        "repository `{}` already exists in organization {}",
                        repo.name, repo.org_id
                    )
                })
            })?;
        let id = RepoId(rows::id(&row)?);
        tx.commit().await?;
        Ok(Repository {
            id,
            org_id: repo.org_id,
            name: repo.name,
            default_branch: repo.default_branch,
        })
    }

    async fn get_repository(&self, id: RepoId) -> Result<Repository, StoreError> {
        let row = sqlx::query(q::SELECT_REPOSITORY)
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(row) => rows::repository(&row),
            None => Err(StoreError::not_found(format!("repository {id}"))),
        }
    }

    async fn get_repository_by_name(
        &self,
        org: &str,
        name: &str,
    ) -> Result<Repository, StoreError> {
        let row = sqlx::query(q::SELECT_REPOSITORY_BY_NAME)
            .bind(org)
            .bind(name)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(row) => rows::repository(&row),
            None => Err(StoreError::not_found(format!("repository `{org}/{name}`"))),
        }
    }

    async fn list_repositories(
        &self,
        org_id: OrgId,
        after: Option<RepoId>,
        limit: u32,
    ) -> Result<Vec<Repository>, StoreError> {
        require_page_size(limit)?;
        let rows = sqlx::query(q::LIST_REPOSITORIES)
            .bind(org_id.0)
            .bind(after.map_or(0, |id| id.0))
            .bind(i64::from(limit))
            .fetch_all(&self.reads)
            .await?;
        if rows.is_empty() {
            self.require_row(q::ORGANIZATION_EXISTS, org_id.0, || {
                format!("organization {org_id}")
            })
            .await?;
        }
        rows.iter().map(rows::repository).collect()
    }

    /// Fails with `NotFound` unless `exists` (a `SELECT id ... WHERE id = $1`) finds `id`.
    async fn require_row(
        &self,
        exists: &'static str,
        id: i64,
        what: impl FnOnce() -> String,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(exists)
            .bind(id)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(_) => Ok(()),
            None => Err(StoreError::not_found(what())),
        }
    }

    async fn create_run(
        &self,
        run: NewRun,
        content: Content,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedRun, StoreError> {
        if let Content::Invalid(errors) = &content {
            if errors.is_empty() {
                return Err(StoreError::invalid(
                    "a run of an invalid workflow file needs at least one error",
                ));
            }
            for error in errors {
                require_text("workflow error", error)?;
            }
        }
        require_text("workflow path", &run.workflow_path)?;
        require_text("workflow name", &run.workflow_name)?;
        require_text("event name", &run.event_name)?;
        require_text("ref", &run.git_ref)?;
        require_text("sha", &run.sha)?;
        require_text("actor", &run.actor)?;
        if let Some(key) = idempotency_key {
            require_text("idempotency key", key)?;
        }
        let idempotency_key = idempotency_key.map(str::to_owned);
        self.batch(|reply| PendingWrite::Create {
            run,
            content,
            idempotency_key,
            reply,
        })
        .await
    }

    /// Queues a write for group commit ([`group_commit`]) and waits for its answer, leading
    /// the batch that carries it if no earlier leader took it.
    async fn batch<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> PendingWrite,
    ) -> Result<T, StoreError> {
        self.batch_all([make])
            .await
            .pop()
            .unwrap_or_else(|| Err(unanswered()))
    }

    /// Queues writes for group commit together (one batch takes them all) and waits for their
    /// answers, in order. With a writer thread, it writes them ([`SqlStore::write_queued`]);
    /// otherwise the caller leads the batch that carries them if no earlier leader took them.
    ///
    /// The answers are awaited together with the leader's lock: writes that a leader has
    /// already taken and committed are answered at once, without waiting a turn in the lock's
    /// queue. Waiting for the turn first held every caller behind every other (32 concurrent
    /// creations each waited ~33 ms for 1.3 ms batches of one write, `gantry bench ingest`):
    /// each leader found only the one write queued since the last batch.
    async fn batch_all<T>(
        &self,
        makes: impl IntoIterator<
            Item = impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> PendingWrite,
        >,
    ) -> Vec<Result<T, StoreError>> {
        let mut answered =
            std::pin::pin!(futures_util::future::join_all(self.batched.push_all(makes)));
        let answers = if self.writer.is_some() {
            self.batched.ring();
            answered.await
        } else {
            tokio::select! {
                biased;
                answers = &mut answered => answers,
                _leader = self.batched.lead() => {
                    let batch = self.batched.take();
                    if !batch.is_empty() {
                        // A panicking batch drops its callers' answers (they learn of it
                        // below) and rolls its transaction back.
                        self.write_batch_apart(batch).await;
                    }
                    answered.await
                }
            }
        };
        answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|_| Err(unanswered())))
            .collect()
    }

    /// A transition or claim: batched where the backend batches them
    /// ([`Backend::BATCH_RUN_CHANGES`]), otherwise written in a transaction of its own.
    async fn write_or_batch<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> PendingWrite,
    ) -> Result<T, StoreError> {
        self.write_or_batch_all([make])
            .await
            .pop()
            .unwrap_or_else(|| Err(unanswered()))
    }

    /// Transitions or claims that go in one transaction: queued together for group commit
    /// where the backend batches them ([`Backend::BATCH_RUN_CHANGES`]), otherwise in a
    /// transaction of their own (a lone write without a savepoint). Answers in order.
    async fn write_or_batch_all<T>(
        &self,
        makes: impl IntoIterator<
            Item = impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> PendingWrite,
        >,
    ) -> Vec<Result<T, StoreError>> {
        if DB::BATCH_RUN_CHANGES {
            return self.batch_all(makes).await;
        }
        let (writes, answers): (Vec<_>, Vec<_>) = makes
            .into_iter()
            .map(|make| {
                let (reply, answer) = tokio::sync::oneshot::channel();
                (make(reply), answer)
            })
            .unzip();
        if !writes.is_empty() {
            self.write_batch_apart(writes).await;
        }
        futures_util::future::join_all(answers)
            .await
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|_| Err(unanswered())))
            .collect()
    }

    /// [`SqlStore::write_batch`] on a task of its own, so a caller that goes away mid-batch (a
    /// closed connection drops its handler) cannot leave the others unanswered. Returns once
    /// the batch is over, answered or not. (With a writer thread, batches are its own:
    /// [`SqlStore::write_queued`].)
    async fn write_batch_apart(&self, batch: Vec<PendingWrite>) {
        let store = self.clone();
        let _ = tokio::spawn(async move { store.write_batch(batch).await }).await;
    }

    /// Runs a batch of writes in one transaction, each in a savepoint, and answers each.
    async fn write_batch(&self, batch: Vec<PendingWrite>) {
        let batch = match self.store_directly(batch).await {
            Some(batch) => batch,
            None => return,
        };
        let (mut batch, refused_together) = match self.store_batch_together(batch).await {
            together::WholeBatch::Done => return,
            together::WholeBatch::NotTried(batch) => (batch, false),
            together::WholeBatch::Refused(batch) => (batch, true),
        };
        let mut tx = match self.begin().await {
            Ok(tx) => tx,
            Err(error) => {
                let cause = format!("cannot begin: {error}");
                return batch.into_iter().for_each(|pending| pending.fail(&cause));
            }
        };

        if batch.len() == 1
            && let Some(lone) = batch.pop()
        {
            return Self::write_alone(tx, lone).await;
        }
        let mut performed = Vec::with_capacity(batch.len());
        // Creations and transitions that cannot be refused for a reason of their own are
        // stored together; the rest, and any group that could not go together (or was just
        // refused as a whole batch), one by one.
        let together::Groups {
            creations,
            transitions,
            mut others,
        } = together::partition(batch);
        for group in [creations, transitions] {
            if group.len() < 2 || refused_together {
                others.extend(group);
                continue;
            }
            match Self::store_together(&mut tx, group).await {
                together::Together::Stored(done) => performed.extend(done),
                together::Together::Apart(apart) => others.extend(apart),
                together::Together::Broken(cause, writes) => {
                    let failure = || StoreError::BatchFailed {
                        cause: cause.clone(),
                    };
                    performed.into_iter().for_each(|done| done.fail(failure()));
                    return writes
                        .into_iter()
                        .chain(others)
                        .for_each(|pending| pending.fail(&cause));
                }
            }
        }
        let batch = others;
        let mut waiting = batch.into_iter();
        while let Some(pending) = waiting.next() {
            match Self::write_in_savepoint(&mut tx, pending).await {
                Ok(done) => performed.push(done),
                Err(cause) => {
                    // The transaction is unusable: nothing of the batch will be stored.
                    let failure = || StoreError::BatchFailed {
                        cause: cause.clone(),
                    };
                    performed.into_iter().for_each(|done| done.fail(failure()));
                    return waiting.for_each(|pending| pending.fail(&cause));
                }
            }
        }
        answer_committed(tx.commit().await, performed);
    }

    /// Stores a batch made only of transitions that may go together on the
    /// [`DirectWriter`], if the store has one, and answers them; returns the batch when it
    /// goes the sqlx way instead (other writes in it, no direct writer, or anything refused).
    async fn store_directly(&self, batch: Vec<PendingWrite>) -> Option<Vec<PendingWrite>> {
        let Some(direct) = &self.direct else {
            return Some(batch);
        };
        if !together::all_go_together(&batch) {
            return Some(batch);
        }
        // Held, unused, until the batch has committed: no sqlx write runs meanwhile.
        let Ok(_sole_writer) = self.writes.acquire().await else {
            return Some(batch);
        };
        let transitions: Vec<&Transition> = batch
            .iter()
            .filter_map(|pending| match pending {
                PendingWrite::Transition { transition, .. } => Some(transition),
                _ => None,
            })
            .collect();
        let Ok(applied) = direct.store(&transitions) else {
            return Some(batch);
        };
        for (pending, applied) in batch.into_iter().zip(applied) {
            if let PendingWrite::Transition { reply, .. } = pending {
                let _ = reply.send(Ok(applied));
            }
        }
        None
    }

    /// A batch of one: the transaction is the write's own, so it needs no savepoint (two
    /// statements fewer); a refusal rolls the whole transaction back.
    async fn write_alone(mut tx: sqlx::Transaction<'static, DB>, lone: PendingWrite) {
        let done = Self::perform(&mut tx, lone).await;
        if done.keep {
            match tx.commit().await {
                Ok(()) => done.answer(),
                Err(error) => done.fail(error.into()),
            }
        } else {
            // Dropping the transaction rolls it back even if this explicit rollback fails,
            // so the answer stands either way.
            let _ = tx.rollback().await;
            done.answer();
        }
    }

    /// One write in a savepoint of the batch's transaction, kept when it changed something
    /// and rolled back otherwise. An error is the savepoint itself failing: the transaction
    /// is unusable, and this write has been answered with that.
    async fn write_in_savepoint(
        tx: &mut sqlx::Transaction<'static, DB>,
        pending: PendingWrite,
    ) -> Result<Performed, String> {
        let mut savepoint = match sqlx::Connection::begin(&mut **tx).await {
            Ok(savepoint) => savepoint,
            Err(error) => {
                let cause = format!("savepoint failed: {error}");
                pending.fail(&cause);
                return Err(cause);
            }
        };
        let done = Self::perform(&mut savepoint, pending).await;
        let ended = if done.keep {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        };
        match ended {
            Ok(()) => Ok(done),
            Err(error) => {
                let cause = format!("savepoint failed: {error}");
                done.fail(StoreError::BatchFailed {
                    cause: cause.clone(),
                });
                Err(cause)
            }
        }
    }

    /// Runs one queued write on `conn` (a transaction or a savepoint the caller ends).
    async fn perform(conn: &mut DB::Connection, pending: PendingWrite) -> Performed {
        match pending {
            PendingWrite::Create {
                run,
                content,
                idempotency_key,
                reply,
            } => {
                let result =
                    Self::create_run_in(conn, run, content, idempotency_key.as_deref()).await;
                Performed::new(reply, result, |created| created.created)
            }
            PendingWrite::Transition { transition, reply } => {
                let result = Self::transition_in(conn, &transition).await;
                Performed::new(reply, result, |_| true)
            }
            PendingWrite::Claim {
                job_id,
                runner_id,
                lease,
                reply,
            } => {
                let result = Self::claim_in(conn, job_id, runner_id, lease).await;
                Performed::new(reply, result, |_| true)
            }
        }
    }

    /// One creation inside the batch's transaction (a savepoint the caller ends).
    async fn create_run_in(
        conn: &mut DB::Connection,
        run: NewRun,
        content: Content,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedRun, StoreError> {
        if let Some(key) = idempotency_key {
            let existing = sqlx::query(q::SELECT_RUN_BY_IDEMPOTENCY_KEY)
                .bind(run.repo_id.0)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(existing) = existing {
                let existing = rows::run(&existing)?;
                return Self::existing_run(conn, existing, &run, key).await;
            }
        }

        // An unknown repository has no runs, so the key lookup above found nothing and the
        // counter is where it shows.
        let counter = sqlx::query(q::NEXT_RUN_NUMBER)
            .bind(run.repo_id.0)
            .bind(run.workflow_path.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(counter) = counter else {
            return Err(StoreError::not_found(format!("repository {}", run.repo_id)));
        };
        let run_number = counter.int("last_run_number")?;
        let called_workflows = serde_json::to_string(&run.called_workflows)
            .map_err(|error| StoreError::corrupt(format!("called workflows: {error}")))?;
        let inserted = sqlx::query(q::INSERT_RUN)
            .bind(run.repo_id.0)
            .bind(run.workflow_path.as_str())
            .bind(run.workflow_name.as_str())
            .bind(run_number)
            .bind(run.event_name.as_str())
            .bind(run.git_ref.as_str())
            .bind(run.sha.as_str())
            .bind(run.actor.as_str())
            .bind(run.created_at_ms)
            .bind(idempotency_key)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(inserted) = inserted else {
            // Another transaction committed the same idempotency key while this one waited
            // for it: answer with that run (the caller rolls this savepoint back).
            let key = idempotency_key.unwrap_or_default();
            let existing = sqlx::query(q::SELECT_RUN_BY_IDEMPOTENCY_KEY)
                .bind(run.repo_id.0)
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
            return Self::existing_run(conn, rows::run(&existing)?, &run, key).await;
        };
        let run_id = RunId(rows::id(&inserted)?);
        sqlx::query(q::INSERT_RUN_VERSION)
            .bind(run_id.0)
            .execute(&mut *conn)
            .await?;

        let documents = |engine_state, engine_spec| {
            sqlx::query(q::INSERT_RUN_DOCUMENTS)
                .bind(run_id.0)
                .bind(engine_state)
                .bind(engine_spec)
                .bind(run.workflow_source.as_str())
                .bind(called_workflows.as_str())
        };
        let build = match content {
            Content::Build(build) => build,
            Content::Invalid(errors) => {
                // Nothing to build: the run ends as it is created, and its engine state is
                // the JSON null (there is no workflow to run).
                let errors = to_json("workflow errors", &errors)?;
                sqlx::query(q::SET_RUN_INVALID)
                    .bind(run_id.0)
                    .bind(errors.as_str())
                    .execute(&mut *conn)
                    .await?;
                documents("null", None).execute(&mut *conn).await?;
                return Ok(CreatedRun {
                    run_id,
                    run_number,
                    created: true,
                    job_ids: Vec::new(),
                });
            }
        };
        let content = build
            .build(AllocatedRun { run_id, run_number })
            .map_err(|error| StoreError::invalid(format!("run refused: {error}")))?;
        for job in &content.jobs {
            validate_new_job(job)?;
        }
        documents(
            content.engine_state.as_str(),
            Some(content.engine_spec.as_str()),
        )
        .execute(&mut *conn)
        .await?;
        if content.status != RunStatus::Queued {
            sqlx::query(q::SET_RUN_STATUS)
                .bind(run_id.0)
                .bind(content.status.as_str())
                .execute(&mut *conn)
                .await?;
        }
        let job_ids = Self::insert_jobs(conn, run_id, &content.jobs).await?;
        Ok(CreatedRun {
            run_id,
            run_number,
            created: true,
            job_ids,
        })
    }

    /// The answer to a creation whose idempotency key names `existing`.
    async fn existing_run(
        conn: &mut DB::Connection,
        existing: WorkflowRun,
        requested: &NewRun,
        key: &str,
    ) -> Result<CreatedRun, StoreError> {
        let same = existing.workflow_path == requested.workflow_path
            && existing.event_name == requested.event_name
            && existing.git_ref == requested.git_ref
            && existing.sha == requested.sha;
        if !same {
            return Err(StoreError::conflict(format!(
                "idempotency key `{key}` was used for run {} of another workflow, event, ref or commit",
                existing.id
            )));
        }
        let jobs = sqlx::query(q::LIST_JOB_IDS_OF_RUN)
            .bind(existing.id.0)
            .fetch_all(&mut *conn)
            .await?;
        let mut job_ids = jobs
            .iter()
            .map(|row| rows::id(row).map(JobId))
            .collect::<Result<Vec<_>, _>>()?;
        job_ids.sort_unstable();
        Ok(CreatedRun {
            run_id: existing.id,
            run_number: existing.run_number,
            created: false,
            job_ids,
        })
    }

    async fn get_run(&self, id: RunId) -> Result<WorkflowRun, StoreError> {
        let row = sqlx::query(q::SELECT_RUN)
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(row) => rows::run(&row),
            None => Err(StoreError::not_found(format!("run {id}"))),
        }
    }

    async fn get_engine_state(&self, id: RunId) -> Result<EngineState, StoreError> {
        let parts = sqlx::query(q::SELECT_ENGINE_STATE)
            .bind(id.0)
            .fetch_all(&self.reads)
            .await?;
        rows::engine_state(id, &parts)?.ok_or_else(|| StoreError::not_found(format!("run {id}")))
    }

    async fn list_runs(&self, filter: RunFilter) -> Result<RunPage, StoreError> {
        if filter.limit == 0 || filter.limit > RunFilter::MAX_LIMIT {
            return Err(StoreError::invalid(format!(
                "page size {} is not between 1 and {}",
                filter.limit,
                RunFilter::MAX_LIMIT
            )));
        }
        let before = filter.before.map_or(i64::MAX, |id| id.0);
        // One more than asked, to know whether there is a next page.
        let fetch = i64::from(filter.limit) + 1;
        let query = match (filter.repo_id, filter.status) {
            (None, None) => sqlx::query(q::LIST_RUNS).bind(before).bind(fetch),
            (Some(repo), None) => sqlx::query(q::LIST_RUNS_OF_REPO)
                .bind(before)
                .bind(fetch)
                .bind(repo.0),
            (None, Some(status)) => sqlx::query(q::LIST_RUNS_WITH_STATUS)
                .bind(before)
                .bind(fetch)
                .bind(status.as_str()),
            (Some(repo), Some(status)) => sqlx::query(q::LIST_RUNS_OF_REPO_WITH_STATUS)
                .bind(before)
                .bind(fetch)
                .bind(repo.0)
                .bind(status.as_str()),
        };
        let rows = query.fetch_all(&self.reads).await?;
        if rows.is_empty()
            && let Some(repo) = filter.repo_id
        {
            self.require_row(q::REPOSITORY_EXISTS, repo.0, || {
                format!("repository {repo}")
            })
            .await?;
        }
        let mut runs = rows.iter().map(rows::run).collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let next = if runs.len() > limit {
            runs.truncate(limit);
            runs.last().map(|run| run.id)
        } else {
            None
        };
        Ok(RunPage { runs, next })
    }

    async fn get_job(&self, id: JobId) -> Result<Job, StoreError> {
        let row = sqlx::query(q::SELECT_JOB)
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await?;
        match row {
            Some(row) => rows::job(&row),
            None => Err(StoreError::not_found(format!("job {id}"))),
        }
    }

    async fn list_jobs(&self, run_id: RunId) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(q::LIST_JOBS)
            .bind(run_id.0)
            .fetch_all(&self.reads)
            .await?;
        if rows.is_empty() {
            self.require_row(q::RUN_EXISTS, run_id.0, || format!("run {run_id}"))
                .await?;
        }
        rows.iter().map(rows::job).collect()
    }

    async fn list_attempts(&self, job_id: JobId) -> Result<Vec<JobAttempt>, StoreError> {
        let rows = sqlx::query(q::LIST_ATTEMPTS)
            .bind(job_id.0)
            .fetch_all(&self.reads)
            .await?;
        if rows.is_empty() {
            self.require_row(q::JOB_EXISTS, job_id.0, || format!("job {job_id}"))
                .await?;
        }
        rows.iter().map(rows::attempt).collect()
    }

    async fn list_step_results(&self, job_id: JobId) -> Result<Vec<StepResult>, StoreError> {
        let rows = sqlx::query(q::LIST_STEP_RESULTS)
            .bind(job_id.0)
            .fetch_all(&self.reads)
            .await?;
        if rows.is_empty() {
            self.require_row(q::JOB_EXISTS, job_id.0, || format!("job {job_id}"))
                .await?;
        }
        rows.iter().map(rows::step_result).collect()
    }

    async fn apply_transition(
        &self,
        transition: Transition,
    ) -> Result<AppliedTransition, StoreError> {
        for job in &transition.new_jobs {
            validate_new_job(job)?;
        }
        self.write_or_batch(|reply| PendingWrite::Transition { transition, reply })
            .await
    }

    async fn apply_transitions(
        &self,
        transitions: Vec<Transition>,
    ) -> Result<Vec<Result<AppliedTransition, StoreError>>, StoreError> {
        // A transition refused before anything is queued keeps its place among the answers.
        let mut refused = Vec::with_capacity(transitions.len());
        let mut valid = Vec::with_capacity(transitions.len());
        for transition in transitions {
            match transition.new_jobs.iter().try_for_each(validate_new_job) {
                Ok(()) => {
                    refused.push(None);
                    valid.push(transition);
                }
                Err(error) => refused.push(Some(error)),
            }
        }
        let makes = valid
            .into_iter()
            .map(|transition| move |reply| PendingWrite::Transition { transition, reply });
        let mut stored = self.write_or_batch_all(makes).await.into_iter();
        Ok(refused
            .into_iter()
            .map(|refused| match refused {
                Some(error) => Err(error),
                None => stored.next().unwrap_or_else(|| Err(unanswered())),
            })
            .collect())
    }

    /// One transition inside a batch's transaction (or savepoint), which the caller ends.
    async fn transition_in(
        tx: &mut DB::Connection,
        transition: &Transition,
    ) -> Result<AppliedTransition, StoreError> {
        let run_id = transition.run_id;
        let writes_run_row = transition.engine_state.run.is_some() || transition.run.is_some();
        let states_with_run =
            DB::DATA_MODIFYING_CTES && (writes_run_row || !transition.engine_state.jobs.is_empty());
        // The version check and the new state in one statement: on PostgreSQL a concurrent
        // writer waits for the version's row and then finds the version changed.
        let updated = if states_with_run {
            Self::move_run_with_engine_jobs(tx, transition).await?
        } else {
            Self::move_run(tx, transition).await?
        };
        let Some(updated) = updated else {
            let stored = sqlx::query(q::SELECT_STATE_VERSION)
                .bind(run_id.0)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match stored {
                None => StoreError::not_found(format!("run {run_id}")),
                Some(row) => StoreError::conflict(format!(
                    "run {run_id} is at state version {}, not {}",
                    row.int("state_version")?,
                    transition.expected_state_version
                )),
            });
        };
        let state_version = updated.int("state_version")?;
        if !states_with_run {
            Self::write_engine_jobs(tx, run_id, &transition.engine_state.jobs).await?;
        }
        // After the run's row (the order every transition takes its locks in) and before the
        // job rows, which the engine's "job started" sets as the claim left them.
        let mut claims = Vec::with_capacity(transition.claims.len());
        for wanted in &transition.claims {
            let claim = Self::claim_in(tx, wanted.job_id, wanted.runner_id, wanted.lease).await?;
            if claim.run_id != run_id {
                return Err(StoreError::not_found(format!(
                    "job {} in run {run_id}",
                    wanted.job_id
                )));
            }
            if claim.attempt != wanted.attempt {
                return Err(StoreError::conflict(format!(
                    "job {} is at attempt {}, not {}",
                    wanted.job_id, claim.attempt, wanted.attempt
                )));
            }
            claims.push(claim);
        }

        Self::update_jobs(tx, run_id, &transition.job_updates).await?;
        let new_job_ids = Self::insert_jobs(tx, run_id, &transition.new_jobs).await?;

        // Attempts and steps may only name jobs of this run. Jobs whose rows this transition
        // updated (or claimed) are known to be; only the others are looked up, one by one:
        // usually none (a completion updates the job whose attempt it ends), where reading
        // every job id of a 1,000-job run cost each of its completions.
        Self::check_jobs_of_run(tx, transition, &claims).await?;
        for attempt in &transition.new_attempts {
            Self::insert_attempt(tx, attempt).await?;
        }
        for ended in &transition.ended_attempts {
            Self::end_attempt(tx, ended).await?;
        }
        for step in &transition.step_results {
            Self::upsert_step_result(tx, step).await?;
        }
        Ok(AppliedTransition {
            state_version,
            new_job_ids,
            claims,
        })
    }

    async fn queued_jobs(&self) -> Result<Vec<QueuedJob>, StoreError> {
        let rows = sqlx::query(q::QUEUED_JOBS).fetch_all(&self.reads).await?;
        rows.iter().map(rows::queued_job).collect()
    }

    async fn running_attempts(&self) -> Result<Vec<RunningAttempt>, StoreError> {
        let rows = sqlx::query(q::RUNNING_ATTEMPTS)
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(rows::running_attempt).collect()
    }

    async fn claim_job(
        &self,
        job_id: JobId,
        runner_id: RunnerId,
        lease: Lease,
    ) -> Result<Claim, StoreError> {
        self.write_or_batch(|reply| PendingWrite::Claim {
            job_id,
            runner_id,
            lease,
            reply,
        })
        .await
    }

    /// One claim inside a batch's transaction (or savepoint), which the caller ends.
    async fn claim_in(
        tx: &mut DB::Connection,
        job_id: JobId,
        runner_id: RunnerId,
        lease: Lease,
    ) -> Result<Claim, StoreError> {
        if DB::DATA_MODIFYING_CTES {
            return Self::claim_in_one_statement(tx, job_id, runner_id, lease).await;
        }
        let claimed = sqlx::query(q::CLAIM_JOB)
            .bind(job_id.0)
            .bind(lease.now_ms)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(claimed) = claimed else {
            return Err(Self::not_claimable(tx, job_id).await);
        };
        let run_id = RunId(claimed.int("run_id")?);
        let attempt = claimed.int("attempt")?;
        let fencing_token = FencingToken(claimed.int("last_fencing_token")?);
        let recorded = sqlx::query(q::CLAIM_ATTEMPT)
            .bind(job_id.0)
            .bind(attempt)
            .bind(runner_id.0)
            .bind(fencing_token.0)
            .bind(lease.deadline_ms)
            .bind(lease.now_ms)
            .fetch_optional(&mut *tx)
            .await?;
        if recorded.is_none() {
            return Err(StoreError::conflict(format!(
                "attempt {attempt} of job {job_id} was already claimed or has ended"
            )));
        }
        Ok(Claim {
            job_id,
            run_id,
            attempt,
            fencing_token,
        })
    }

    /// Why a job the claim did not change is not claimable: unknown, or not queued.
    async fn not_claimable(tx: &mut DB::Connection, job_id: JobId) -> StoreError {
        let status = sqlx::query(q::SELECT_JOB_STATUS)
            .bind(job_id.0)
            .fetch_optional(&mut *tx)
            .await;
        let row = match status {
            Ok(Some(row)) => row,
            Ok(None) => return StoreError::not_found(format!("job {job_id}")),
            Err(error) => return error.into(),
        };
        match row
            .text("status")
            .and_then(|status| JobStatus::parse(&status))
        {
            Ok(status) => StoreError::conflict(format!("job {job_id} is {status}, not queued")),
            Err(error) => error,
        }
    }

    /// [`SqlStore::claim_in`] as one statement ([`q::CLAIM_JOB_AND_ATTEMPT`]), refused as
    /// it refuses.
    async fn claim_in_one_statement(
        tx: &mut DB::Connection,
        job_id: JobId,
        runner_id: RunnerId,
        lease: Lease,
    ) -> Result<Claim, StoreError> {
        let claimed = sqlx::query(q::CLAIM_JOB_AND_ATTEMPT)
            .bind(job_id.0)
            .bind(lease.now_ms)
            .bind(runner_id.0)
            .bind(lease.deadline_ms)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(claimed) = claimed else {
            return Err(Self::not_claimable(tx, job_id).await);
        };
        let attempt = claimed.int("attempt")?;
        if claimed.int("recorded")? != 1 {
            return Err(StoreError::conflict(format!(
                "attempt {attempt} of job {job_id} was already claimed or has ended"
            )));
        }
        Ok(Claim {
            job_id,
            run_id: RunId(claimed.int("run_id")?),
            attempt,
            fencing_token: FencingToken(claimed.int("last_fencing_token")?),
        })
    }

    async fn set_job_priority(&self, job_id: JobId, priority: i64) -> Result<Job, StoreError> {
        let mut tx = self.begin().await?;
        let Some(run) = sqlx::query(q::RUN_OF_JOB)
            .bind(job_id.0)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(StoreError::not_found(format!("job {job_id}")));
        };
        // The run's version first, then the job's row: the order every transition locks
        // them in, so that the two wait for each other instead of deadlocking on PostgreSQL.
        sqlx::query(q::BUMP_STATE_VERSION)
            .bind(run.int("run_id")?)
            .execute(&mut *tx)
            .await?;
        let updated = sqlx::query(q::SET_JOB_PRIORITY)
            .bind(job_id.0)
            .bind(priority)
            .fetch_optional(&mut *tx)
            .await?;
        if updated.is_none() {
            // Dropped without a commit, the transaction's version bump rolls back.
            return Err(StoreError::conflict(format!("job {job_id} has completed")));
        }
        let row = sqlx::query(q::SELECT_JOB)
            .bind(job_id.0)
            .fetch_one(&mut *tx)
            .await?;
        let job = rows::job(&row)?;
        tx.commit().await?;
        Ok(job)
    }

    async fn renew_lease(
        &self,
        job_id: JobId,
        token: FencingToken,
        deadline_ms: i64,
    ) -> Result<(), StoreError> {
        let renewed = sqlx::query(q::RENEW_LEASE)
            .bind(job_id.0)
            .bind(token.0)
            .bind(deadline_ms)
            .fetch_optional(&self.writes)
            .await?;
        if renewed.is_some() {
            return Ok(());
        }
        self.require_row(q::JOB_EXISTS, job_id.0, || format!("job {job_id}"))
            .await?;
        Err(StoreError::conflict(format!(
            "fencing token {token} of job {job_id} is stale or its attempt has ended"
        )))
    }

    /// Checks and moves a transition's run version, then writes what it changes of the run's
    /// row (its engine fields, its columns; [`q::update_run`]); returns the run's new version,
    /// or `None` when the run is not at the expected one (nothing written).
    async fn move_run(
        tx: &mut DB::Connection,
        transition: &Transition,
    ) -> Result<Option<DB::Row>, StoreError> {
        let moved = sqlx::query(q::MOVE_RUN_VERSION)
            .bind(transition.run_id.0)
            .bind(transition.expected_state_version)
            .fetch_optional(&mut *tx)
            .await?;
        if moved.is_none() {
            return Ok(None);
        }
        let document = transition.engine_state.run.as_ref();
        if let Some(sql) = q::update_run(document.is_some(), transition.run.is_some()) {
            let query = sqlx::query(sql).bind(transition.run_id.0);
            Self::bind_run_row(query, transition)
                .execute(&mut *tx)
                .await?;
        }
        Ok(moved)
    }

    /// Binds the values of the run's row a transition writes, in [`q::update_run`]'s order:
    /// its engine fields, then its columns.
    fn bind_run_row<'q>(
        query: sqlx::query::Query<'q, DB, DB::Arguments>,
        transition: &'q Transition,
    ) -> sqlx::query::Query<'q, DB, DB::Arguments> {
        let query = match &transition.engine_state.run {
            Some(document) => query.bind(document.as_str()),
            None => query,
        };
        match &transition.run {
            None => query,
            Some(run) => query
                .bind(run.attempt)
                .bind(run.status.as_str())
                .bind(run.conclusion.map(|conclusion| conclusion.as_str()))
                .bind(run.started_at_ms)
                .bind(run.completed_at_ms),
        }
    }

    /// Checks and moves a transition's run version, writes the run's row and its changed job
    /// states, in one statement ([`q::move_run_with_engine_jobs`]); returns the run's new
    /// version, or `None` when the run is not at the expected one (nothing written).
    async fn move_run_with_engine_jobs(
        tx: &mut DB::Connection,
        transition: &Transition,
    ) -> Result<Option<DB::Row>, StoreError> {
        let jobs = &transition.engine_state.jobs;
        let rows = Rows::new()
            .int("job_index", jobs.iter().map(|(index, _)| i64::from(*index)))
            .text("state", jobs.iter().map(|(_, state)| state.as_str()));
        let sql = q::move_run_with_engine_jobs(
            transition.engine_state.run.is_some(),
            transition.run.is_some(),
        );
        let query = DB::bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)), &rows)
            .bind(transition.run_id.0)
            .bind(transition.expected_state_version);
        Ok(Self::bind_run_row(query, transition)
            .fetch_optional(&mut *tx)
            .await?)
    }

    /// Writes a transition's changed job states ([`StateChange::jobs`]), a chunk of rows a
    /// statement.
    async fn write_engine_jobs(
        conn: &mut DB::Connection,
        run_id: RunId,
        jobs: &[(u32, StateDocument)],
    ) -> Result<(), StoreError> {
        let jobs: Vec<(RunId, u32, &str)> = jobs
            .iter()
            .map(|(index, state)| (run_id, *index, state.as_str()))
            .collect();
        Self::write_engine_jobs_of_runs(conn, &jobs).await
    }

    /// Writes changed job states of one or several runs (run, position, state), a chunk of
    /// rows a statement.
    pub(super) async fn write_engine_jobs_of_runs(
        conn: &mut DB::Connection,
        jobs: &[(RunId, u32, &str)],
    ) -> Result<(), StoreError> {
        // A `VALUES` list is not a compound `SELECT`: SQLite takes 1,000 rows of it.
        for chunk in jobs.chunks(q::UPSERT_ENGINE_JOBS_CHUNK) {
            let rows = Rows::new()
                .int("run_id", chunk.iter().map(|(run_id, ..)| run_id.0))
                .int(
                    "job_index",
                    chunk.iter().map(|(_, index, _)| i64::from(*index)),
                )
                .text("state", chunk.iter().map(|(.., state)| *state));
            let sql = q::upsert_engine_jobs(&DB::rows_to_insert(&rows));
            Self::fetch_rows(conn, sql, &rows).await?;
        }
        Ok(())
    }

    /// Runs a multi-row statement ([`multi_row`]) built around `rows`, binding their values;
    /// returns the rows it returns.
    pub(super) async fn fetch_rows(
        conn: &mut DB::Connection,
        sql: String,
        rows: &Rows<'_>,
    ) -> Result<Vec<DB::Row>, StoreError> {
        let query = DB::bind_rows(sqlx::query(for_backend::<DB>(sql)), rows);
        Ok(query.fetch_all(&mut *conn).await?)
    }

    /// Inserts `jobs` of a run with multi-row statements (one round trip per
    /// [`q::INSERT_JOBS_CHUNK`] jobs rather than one per job); returns their ids in order.
    async fn insert_jobs(
        conn: &mut DB::Connection,
        run_id: RunId,
        jobs: &[NewJob],
    ) -> Result<Vec<JobId>, StoreError> {
        let mut ids = Self::insert_jobs_of_runs(conn, &[(run_id, jobs)]).await?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Writes a transition's job rows: [`SqlStore::update_jobs_of_runs`] for one run, with a
    /// statement of its own for a single row.
    async fn update_jobs(
        conn: &mut DB::Connection,
        run_id: RunId,
        updates: &[JobUpdate],
    ) -> Result<(), StoreError> {
        if let [update] = updates {
            return Self::update_job(conn, run_id, update).await;
        }
        Self::update_jobs_of_runs(conn, &[(run_id, updates)]).await
    }

    /// Writes the job rows of one or several runs' transitions, a chunk of rows a statement;
    /// a job not of its run is not found. A job named twice takes its last values, as one
    /// update after another would.
    pub(super) async fn update_jobs_of_runs(
        conn: &mut DB::Connection,
        runs: &[(RunId, &[JobUpdate])],
    ) -> Result<(), StoreError> {
        let all: Vec<(RunId, &JobUpdate)> = runs
            .iter()
            .flat_map(|(run_id, updates)| updates.iter().map(move |update| (*run_id, update)))
            .collect();
        let mut last = std::collections::HashMap::with_capacity(all.len());
        for (index, (_, update)) in all.iter().enumerate() {
            last.insert(update.job_id, index);
        }
        let mut encoded = Vec::with_capacity(last.len());
        for (index, &(run_id, update)) in all.iter().enumerate() {
            if last.get(&update.job_id) != Some(&index) {
                continue;
            }
            require_text("job name", &update.name)?;
            require_at_least("job attempt", update.attempt, 1)?;
            encoded.push((
                run_id,
                update,
                to_json("runs-on labels", &update.runs_on)?,
                to_json("waiting reasons", &update.waiting_reasons)?,
                to_json("outputs", &update.outputs)?,
            ));
        }
        for chunk in multi_row::chunks::<DB, _>(&encoded) {
            let updates = || chunk.iter().map(|(_, update, ..)| *update);
            let rows = Rows::new()
                .int("run_id", chunk.iter().map(|(run_id, ..)| run_id.0))
                .int("id", updates().map(|update| update.job_id.0))
                .text("name", updates().map(|update| update.name.as_str()))
                .text("status", updates().map(|update| update.status.as_str()))
                .maybe_text(
                    "conclusion",
                    updates().map(|update| update.conclusion.map(|conclusion| conclusion.as_str())),
                )
                .int("attempt", updates().map(|update| update.attempt))
                .text(
                    "runs_on",
                    chunk.iter().map(|(_, _, runs_on, ..)| runs_on.as_str()),
                )
                .text(
                    "waiting_reasons",
                    chunk.iter().map(|(.., reasons, _)| reasons.as_str()),
                )
                .text(
                    "outputs",
                    chunk.iter().map(|(.., outputs)| outputs.as_str()),
                )
                .int("priority", updates().map(|update| update.priority))
                .maybe_int("queued_at_ms", updates().map(|update| update.queued_at_ms))
                .maybe_int(
                    "started_at_ms",
                    updates().map(|update| update.started_at_ms),
                )
                .maybe_int(
                    "completed_at_ms",
                    updates().map(|update| update.completed_at_ms),
                );
            let updated = Self::fetch_rows(conn, q::update_jobs(&DB::rows_table(&rows)), &rows)
                .await?
                .iter()
                .map(|row| rows::id(row).map(JobId))
                .collect::<Result<HashSet<JobId>, _>>()?;
            if let Some((run_id, missing, ..)) = chunk
                .iter()
                .find(|(_, update, ..)| !updated.contains(&update.job_id))
            {
                return Err(StoreError::not_found(format!(
                    "job {} in run {run_id}",
                    missing.job_id
                )));
            }
        }
        Ok(())
    }

    /// Binds a job update's values after its id (and run), in the column order both update
    /// statements share; `json` is its runs-on labels, waiting reasons and outputs, encoded.
    fn bind_job_values<'q>(
        query: sqlx::query::Query<'q, DB, DB::Arguments>,
        update: &'q JobUpdate,
        json: [&'q String; 3],
    ) -> sqlx::query::Query<'q, DB, DB::Arguments> {
        let [runs_on, waiting_reasons, outputs] = json;
        query
            .bind(update.name.as_str())
            .bind(update.status.as_str())
            .bind(update.conclusion.map(|conclusion| conclusion.as_str()))
            .bind(update.attempt)
            .bind(runs_on.as_str())
            .bind(waiting_reasons.as_str())
            .bind(outputs.as_str())
            .bind(update.priority)
            .bind(update.queued_at_ms)
            .bind(update.started_at_ms)
            .bind(update.completed_at_ms)
    }

    async fn update_job(
        conn: &mut DB::Connection,
        run_id: RunId,
        update: &JobUpdate,
    ) -> Result<(), StoreError> {
        require_text("job name", &update.name)?;
        require_at_least("job attempt", update.attempt, 1)?;
        let runs_on = to_json("runs-on labels", &update.runs_on)?;
        let waiting_reasons = to_json("waiting reasons", &update.waiting_reasons)?;
        let outputs = to_json("outputs", &update.outputs)?;
        let query = sqlx::query(q::UPDATE_JOB)
            .bind(update.job_id.0)
            .bind(run_id.0);
        let updated = Self::bind_job_values(query, update, [&runs_on, &waiting_reasons, &outputs])
            .fetch_optional(&mut *conn)
            .await?;
        match updated {
            Some(_) => Ok(()),
            None => Err(StoreError::not_found(format!(
                "job {} in run {run_id}",
                update.job_id
            ))),
        }
    }

    async fn insert_attempt(
        conn: &mut DB::Connection,
        attempt: &NewAttempt,
    ) -> Result<(), StoreError> {
        require_at_least("attempt", attempt.attempt, 1)?;
        sqlx::query(q::INSERT_ATTEMPT)
            .bind(attempt.job_id.0)
            .bind(attempt.attempt)
            .fetch_one(&mut *conn)
            .await
            .map_err(|error| {
                unique_is_conflict(error, || {
                    format!(
                        "attempt {} of job {} already exists",
                        attempt.attempt, attempt.job_id
                    )
                })
            })?;
        Ok(())
    }

    async fn end_attempt(
        conn: &mut DB::Connection,
        ended: &EndedAttempt,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(q::END_ATTEMPT)
            .bind(ended.job_id.0)
            .bind(ended.attempt)
            .bind(ended.ended_at_ms)
            .bind(ended.result.as_str())
            .bind(ended.fencing_token.map(|token| token.0))
            .fetch_optional(&mut *conn)
            .await?;
        if updated.is_some() {
            return Ok(());
        }
        let exists = sqlx::query(q::ATTEMPT_EXISTS)
            .bind(ended.job_id.0)
            .bind(ended.attempt)
            .fetch_optional(&mut *conn)
            .await?;
        Err(match exists {
            None => {
                StoreError::not_found(format!("attempt {} of job {}", ended.attempt, ended.job_id))
            }
            Some(_) => StoreError::conflict(format!(
                "attempt {} of job {} has ended or is held by another fencing token",
                ended.attempt, ended.job_id
            )),
        })
    }

    async fn upsert_step_result(
        conn: &mut DB::Connection,
        step: &StepResult,
    ) -> Result<(), StoreError> {
        require_at_least("step index", step.step_index, 0)?;
        require_text("step name", &step.name)?;
        sqlx::query(q::UPSERT_STEP_RESULT)
            .bind(step.job_id.0)
            .bind(step.attempt)
            .bind(step.step_index)
            .bind(step.name.as_str())
            .bind(step.status.as_str())
            .bind(step.conclusion.map(|conclusion| conclusion.as_str()))
            .bind(step.started_at_ms)
            .bind(step.ended_at_ms)
            .execute(&mut *conn)
            .await
            .map_err(|error| {
                if StoreError::is_foreign_key_violation(&error) {
                    StoreError::not_found(format!(
                        "attempt {} of job {}",
                        step.attempt, step.job_id
                    ))
                } else {
                    StoreError::Database(error)
                }
            })?;
        Ok(())
    }
}

// Each method boxes the inherent method of the same name above (inherent methods take
// precedence over trait methods in method calls).
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    fn migrate(&self) -> StoreFuture<'_, Vec<i64>> {
        Box::pin(self.apply_migrations())
    }

    fn create_organization(&self, org: NewOrganization) -> StoreFuture<'_, Organization> {
        Box::pin(self.create_organization(org))
    }

    fn get_organization(&self, id: OrgId) -> StoreFuture<'_, Organization> {
        Box::pin(self.get_organization(id))
    }

    fn get_organization_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Organization> {
        Box::pin(self.get_organization_by_name(name))
    }

    fn list_organizations(
        &self,
        after: Option<OrgId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Organization>> {
        Box::pin(self.list_organizations(after, limit))
    }

    fn create_repository(&self, repo: NewRepository) -> StoreFuture<'_, Repository> {
        Box::pin(self.create_repository(repo))
    }

    fn get_repository(&self, id: RepoId) -> StoreFuture<'_, Repository> {
        Box::pin(self.get_repository(id))
    }

    fn get_repository_by_name<'a>(
        &'a self,
        org: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Repository> {
        Box::pin(self.get_repository_by_name(org, name))
    }

    fn list_repositories(
        &self,
        org_id: OrgId,
        after: Option<RepoId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Repository>> {
        Box::pin(self.list_repositories(org_id, after, limit))
    }

    fn create_run<'a>(
        &'a self,
        run: NewRun,
        build: BuildRun,
        idempotency_key: Option<&'a str>,
    ) -> StoreFuture<'a, CreatedRun> {
        Box::pin(self.create_run(run, Content::Build(build), idempotency_key))
    }

    fn create_invalid_run<'a>(
        &'a self,
        run: NewRun,
        errors: Vec<String>,
        idempotency_key: Option<&'a str>,
    ) -> StoreFuture<'a, CreatedRun> {
        Box::pin(self.create_run(run, Content::Invalid(errors), idempotency_key))
    }

    fn get_run(&self, id: RunId) -> StoreFuture<'_, WorkflowRun> {
        Box::pin(self.get_run(id))
    }

    fn get_engine_state(&self, id: RunId) -> StoreFuture<'_, EngineState> {
        Box::pin(self.get_engine_state(id))
    }

    fn list_runs(&self, filter: RunFilter) -> StoreFuture<'_, RunPage> {
        Box::pin(self.list_runs(filter))
    }

    fn get_job(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(self.get_job(id))
    }

    fn list_jobs(&self, run_id: RunId) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(self.list_jobs(run_id))
    }

    fn list_attempts(&self, job_id: JobId) -> StoreFuture<'_, Vec<JobAttempt>> {
        Box::pin(self.list_attempts(job_id))
    }

    fn list_step_results(&self, job_id: JobId) -> StoreFuture<'_, Vec<StepResult>> {
        Box::pin(self.list_step_results(job_id))
    }

    fn apply_transition(&self, transition: Transition) -> StoreFuture<'_, AppliedTransition> {
        Box::pin(self.apply_transition(transition))
    }

    fn apply_transitions(
        &self,
        transitions: Vec<Transition>,
    ) -> StoreFuture<'_, Vec<Result<AppliedTransition, StoreError>>> {
        Box::pin(self.apply_transitions(transitions))
    }

    fn queued_jobs(&self) -> StoreFuture<'_, Vec<QueuedJob>> {
        Box::pin(self.queued_jobs())
    }

    fn running_attempts(&self) -> StoreFuture<'_, Vec<RunningAttempt>> {
        Box::pin(self.running_attempts())
    }

    fn set_job_priority(&self, job_id: JobId, priority: i64) -> StoreFuture<'_, Job> {
        Box::pin(self.set_job_priority(job_id, priority))
    }

    fn claim_job(
        &self,
        job_id: JobId,
        runner_id: RunnerId,
        lease: Lease,
    ) -> StoreFuture<'_, Claim> {
        Box::pin(self.claim_job(job_id, runner_id, lease))
    }

    fn renew_lease(
        &self,
        job_id: JobId,
        token: FencingToken,
        deadline_ms: i64,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.renew_lease(job_id, token, deadline_ms))
    }

    fn save_registration_token(&self, token: NewRegistrationToken) -> StoreFuture<'_, ()> {
        Box::pin(self.save_registration_token(token))
    }

    fn register_runner(&self, runner: NewRunner) -> StoreFuture<'_, RunnerRecord> {
        Box::pin(self.register_runner(runner))
    }

    fn get_runner(&self, id: RunnerId) -> StoreFuture<'_, RunnerRecord> {
        Box::pin(self.get_runner(id))
    }

    fn list_runners(&self) -> StoreFuture<'_, Vec<RunnerRecord>> {
        Box::pin(self.list_runners())
    }

    fn remove_runner(&self, id: RunnerId, now_ms: i64) -> StoreFuture<'_, ()> {
        Box::pin(self.remove_runner(id, now_ms))
    }

    fn report_step(&self, token: FencingToken, step: StepResult) -> StoreFuture<'_, StepReported> {
        Box::pin(self.report_step(token, step))
    }

    fn append_log(&self, append: LogAppend) -> StoreFuture<'_, i64> {
        Box::pin(self.append_log(append))
    }

    fn read_log(
        &self,
        job_id: JobId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<LogLineRecord>> {
        Box::pin(self.read_log(job_id, after, limit))
    }

    fn workflow_source(&self, run_id: RunId) -> StoreFuture<'_, String> {
        Box::pin(self.workflow_source(run_id))
    }

    fn called_workflows(&self, run_id: RunId) -> StoreFuture<'_, BTreeMap<String, String>> {
        Box::pin(self.called_workflows(run_id))
    }

    fn set_repository_source(&self, source: RepositorySource) -> StoreFuture<'_, ()> {
        Box::pin(self.set_repository_source(source))
    }

    fn get_repository_source(&self, repo_id: RepoId) -> StoreFuture<'_, RepositorySource> {
        Box::pin(self.get_repository_source(repo_id))
    }
}
