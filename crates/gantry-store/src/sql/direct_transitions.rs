//! SQLite's batches of transitions stored by the writer thread itself, through a connection
//! of its own (rusqlite), instead of through sqlx.
//!
//! Claims and results are the dispatcher's hot path: a batch of a few hundred of them, each a
//! handful of row changes. Through sqlx every statement is a round trip to the connection's
//! own thread (the two threads take turns, and every row a statement returns is copied and
//! sent back), and single-row statements cost a round trip each, so `transitions_together.rs`
//! writes the batch with multi-row statements, which SQLite plans as joins over temporary
//! tables. In a `perf` profile of `gantry bench drain --batch 16` the two threads were busy
//! mostly with that traffic (thread switches, copies, allocations); SQLite's own work was about
//! a third of their time. A Python `sqlite3` replica of the same rows and statements (single-
//! row, prepared once, 200 transitions a commit, durable) wrote 19,000 jobs/s where the server
//! drained 7,500. Here the writer thread runs the same single-row statements as a transition
//! alone ([`super::SqlStore`]'s `transition_in`), prepared once for the connection's life,
//! with no thread in between, and without their `RETURNING` clauses: SQLite collects returned
//! rows in a temporary table it creates and drops at each execution, whose allocations then
//! led the writer thread's profile.
//!
//! The connection's page cache is its own: after sqlx's connection commits (a run created),
//! SQLite finds the WAL changed and starts this cache afresh, reading pages back from the OS
//! cache as they are needed.
//!
//! It stays the one writer: a batch first takes sqlx's single write connection and holds it,
//! unused, until it has committed, so no other write can run meanwhile. SQLite notices the
//! other connection's commits itself (the WAL's change counter) and re-reads what changed.
//!
//! Only batches made wholly of transitions that may go together (`together::partition`) come
//! here. Any refusal or error rolls the whole batch back and returns it, and the batch then
//! goes the sqlx way, which finds each refusal again and answers each write with its own.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::queries as q;
use super::{require_at_least, require_text, to_json};
use crate::FencingToken;
use crate::error::StoreError;
use crate::model::{AppliedTransition, Claim, RunUpdate, Transition};

/// The writer thread's own connection to the SQLite file, for batches of transitions.
#[derive(Debug)]
pub(crate) struct DirectWriter {
    connection: Mutex<Connection>,
    statements: Statements,
    /// Batches stored here (the others went the sqlx way): lets tests see which way a batch
    /// went.
    stored_batches: AtomicU64,
}

/// The statements of [`super::queries`] a transition runs, with their numbered parameters
/// (`$N`) written `?N` (rusqlite binds by position, and SQLite numbers `$N` by first use) and
/// without their `RETURNING` clauses ([`q::without_returning`]): a statement that changed no
/// row refuses the batch.
#[derive(Debug)]
struct Statements {
    move_run: String,
    update_run: String,
    upsert_engine_job: String,
    claim_job: String,
    claimed_job: String,
    claim_attempt: String,
    update_job: String,
    job_of_run: String,
    insert_attempt: String,
    end_attempt: String,
    upsert_step_result: String,
}

impl Statements {
    /// Every statement, for tests that look at each.
    #[cfg(test)]
    fn all(&self) -> [&str; 11] {
        [
            &self.move_run,
            &self.update_run,
            &self.upsert_engine_job,
            &self.claim_job,
            &self.claimed_job,
            &self.claim_attempt,
            &self.update_job,
            &self.job_of_run,
            &self.insert_attempt,
            &self.end_attempt,
            &self.upsert_step_result,
        ]
    }

    fn new() -> Statements {
        let sql = |statement: &str| q::numbered(q::without_returning(statement));
        Statements {
            move_run: sql(q::MOVE_RUN_VERSION),
            update_run: sql(q::UPDATE_RUN_FIELDS_AND_COLUMNS),
            upsert_engine_job: sql(&q::upsert_engine_jobs(q::ENGINE_JOB_ROW)),
            claim_job: sql(q::CLAIM_JOB),
            claimed_job: sql(q::SELECT_CLAIMED_JOB),
            claim_attempt: sql(q::CLAIM_ATTEMPT),
            update_job: sql(q::UPDATE_JOB),
            job_of_run: sql(q::JOB_OF_RUN),
            insert_attempt: sql(q::INSERT_ATTEMPT),
            end_attempt: sql(q::END_ATTEMPT),
            upsert_step_result: sql(q::UPSERT_STEP_RESULT),
        }
    }
}

/// Runs a statement that must change exactly one row; another count refuses the batch with
/// `refusal`.
fn change_one(
    tx: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
    refusal: &str,
) -> Result<(), NotStored> {
    match tx.prepare_cached(sql)?.execute(parameters)? {
        1 => Ok(()),
        _ => Err(refused(refusal)),
    }
}

/// Why a batch was not stored here. It goes the sqlx way, which finds the cause again and
/// answers each write with its own error, so this one is never a caller's answer.
#[derive(Debug)]
pub(crate) struct NotStored(String);

impl std::fmt::Display for NotStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for NotStored {
    fn from(error: rusqlite::Error) -> NotStored {
        NotStored(error.to_string())
    }
}

impl From<StoreError> for NotStored {
    fn from(error: StoreError) -> NotStored {
        NotStored(error.to_string())
    }
}

fn refused(what: &str) -> NotStored {
    NotStored(what.to_owned())
}

impl DirectWriter {
    /// Opens the file sqlx has created and migrated, with the writer's durability and cache
    /// settings (`crate::sqlite`).
    pub fn open(
        path: &Path,
        busy_timeout: Duration,
        cache_kib: &str,
        checkpoint_pages: &str,
    ) -> Result<DirectWriter, rusqlite::Error> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(busy_timeout)?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.pragma_update(None, "cache_size", cache_kib)?;
        connection.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
        Ok(DirectWriter {
            connection: Mutex::new(connection),
            statements: Statements::new(),
            stored_batches: AtomicU64::new(0),
        })
    }

    /// How many batches were stored here.
    #[cfg(test)]
    pub fn stored_batches(&self) -> u64 {
        self.stored_batches.load(Ordering::Relaxed)
    }

    /// The opcodes SQLite compiles `sql` into on this connection (`EXPLAIN`).
    #[cfg(test)]
    fn opcodes(&self, sql: &str) -> Vec<String> {
        let connection = self.connection.lock().expect("an unpoisoned connection");
        let mut explain = connection
            .prepare(&format!("EXPLAIN {sql}"))
            .expect("a statement to explain");
        let parameters = explain.parameter_count();
        explain
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, parameters)),
                |row| row.get::<_, String>(1),
            )
            .expect("an explanation")
            .collect::<Result<_, _>>()
            .expect("opcodes")
    }

    /// The value of `PRAGMA name` on this connection, as text.
    #[cfg(test)]
    fn pragma(&self, name: &str) -> String {
        let connection = self.connection.lock().expect("an unpoisoned connection");
        let value: rusqlite::types::Value = connection
            .pragma_query_value(None, name, |row| row.get(0))
            .expect("a pragma value");
        match value {
            rusqlite::types::Value::Integer(number) => number.to_string(),
            rusqlite::types::Value::Text(text) => text,
            other => format!("{other:?}"),
        }
    }

    /// Stores `transitions` in one durable transaction, each as a transition alone would be
    /// stored; returns their answers in order, or changes nothing.
    pub fn store(&self, transitions: &[&Transition]) -> Result<Vec<AppliedTransition>, NotStored> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| refused("the direct writer's connection was poisoned"))?;
        // Dropped without a commit, the transaction rolls back.
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = transitions
            .iter()
            .map(|transition| self.apply(&tx, transition))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        self.stored_batches.fetch_add(1, Ordering::Relaxed);
        Ok(applied)
    }

    /// One transition, in the order `transition_in` makes its changes.
    fn apply(
        &self,
        tx: &Connection,
        transition: &Transition,
    ) -> Result<AppliedTransition, NotStored> {
        let sql = &self.statements;
        let run_id = transition.run_id;
        change_one(
            tx,
            &sql.move_run,
            params![run_id.0, transition.expected_state_version],
            "the run is at another state version",
        )?;
        // The statement moved the version on by one from the expected one.
        let state_version = transition.expected_state_version + 1;
        match (&transition.engine_state.run, &transition.run) {
            (Some(fields), Some(run)) => {
                let RunUpdate {
                    attempt,
                    status,
                    conclusion,
                    started_at_ms,
                    completed_at_ms,
                } = run;
                change_one(
                    tx,
                    &sql.update_run,
                    params![
                        run_id.0,
                        fields.as_str(),
                        attempt,
                        status.as_str(),
                        conclusion.map(|conclusion| conclusion.as_str()),
                        started_at_ms,
                        completed_at_ms,
                    ],
                    "the run has no row",
                )?;
            }
            (None, None) => {}
            _ => {
                return Err(refused(
                    "a transition writing only a run's fields or only its columns goes alone",
                ));
            }
        }

        let mut upsert = tx.prepare_cached(&sql.upsert_engine_job)?;
        for (index, state) in &transition.engine_state.jobs {
            upsert.execute(params![run_id.0, i64::from(*index), state.as_str()])?;
        }

        let mut claims = Vec::with_capacity(transition.claims.len());
        for wanted in &transition.claims {
            change_one(
                tx,
                &sql.claim_job,
                params![wanted.job_id.0, wanted.lease.now_ms],
                "a claimed job is not queued",
            )?;
            let (job_run, attempt, token): (i64, i64, i64) =
                tx.prepare_cached(&sql.claimed_job)?
                    .query_row(params![wanted.job_id.0], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
            if job_run != run_id.0 || attempt != wanted.attempt {
                return Err(refused("a claimed job is of another run or attempt"));
            }
            change_one(
                tx,
                &sql.claim_attempt,
                params![
                    wanted.job_id.0,
                    attempt,
                    wanted.runner_id.0,
                    token,
                    wanted.lease.deadline_ms,
                    wanted.lease.now_ms,
                ],
                "a claimed attempt was already claimed or has ended",
            )?;
            claims.push(Claim {
                job_id: wanted.job_id,
                run_id,
                attempt,
                fencing_token: FencingToken(token),
            });
        }

        for update in &transition.job_updates {
            require_text("job name", &update.name)?;
            require_at_least("job attempt", update.attempt, 1)?;
            change_one(
                tx,
                &sql.update_job,
                params![
                    update.job_id.0,
                    run_id.0,
                    update.name.as_str(),
                    update.status.as_str(),
                    update.conclusion.map(|conclusion| conclusion.as_str()),
                    update.attempt,
                    to_json("runs-on labels", &update.runs_on)?,
                    to_json("waiting reasons", &update.waiting_reasons)?,
                    to_json("outputs", &update.outputs)?,
                    update.priority,
                    update.queued_at_ms,
                    update.started_at_ms,
                    update.completed_at_ms,
                ],
                "an updated job is not of its run",
            )?;
        }

        self.check_jobs_of_run(tx, transition, &claims)?;
        for new in &transition.new_attempts {
            require_at_least("attempt", new.attempt, 1)?;
            tx.prepare_cached(&sql.insert_attempt)?
                .execute(params![new.job_id.0, new.attempt])?;
        }
        for ended in &transition.ended_attempts {
            change_one(
                tx,
                &sql.end_attempt,
                params![
                    ended.job_id.0,
                    ended.attempt,
                    ended.ended_at_ms,
                    ended.result.as_str(),
                    ended.fencing_token.map(|token| token.0),
                ],
                "an ended attempt has ended or has another token",
            )?;
        }
        for step in &transition.step_results {
            require_at_least("step index", step.step_index, 0)?;
            require_text("step name", &step.name)?;
            tx.prepare_cached(&sql.upsert_step_result)?
                .execute(params![
                    step.job_id.0,
                    step.attempt,
                    step.step_index,
                    step.name.as_str(),
                    step.status.as_str(),
                    step.conclusion.map(|conclusion| conclusion.as_str()),
                    step.started_at_ms,
                    step.ended_at_ms,
                ])?;
        }
        Ok(AppliedTransition {
            state_version,
            new_job_ids: Vec::new(),
            claims,
        })
    }

    /// The jobs a transition's attempts and steps name are of its run
    /// ([`Transition::jobs_to_check`]).
    fn check_jobs_of_run(
        &self,
        tx: &Connection,
        transition: &Transition,
        claims: &[Claim],
    ) -> Result<(), NotStored> {
        for job_id in transition.jobs_to_check(claims) {
            tx.prepare_cached(&self.statements.job_of_run)?
                .query_row(params![job_id.0, transition.run_id.0], |_| Ok(()))
                .optional()?
                .ok_or_else(|| refused("an attempt or step names a job of another run"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::{ClaimInTransition, EndedAttempt, EngineState, Job, JobAttempt, Lease};
    use crate::sql::transitions_together::tests::{moving, store_with_runs};
    use crate::status::{Conclusion, JobStatus};
    use crate::{CreatedRun, RunnerId, SqliteStore, Store};
    use serde_json::json;

    /// Claims of each run's first job, from state version `version`.
    async fn claims(store: &SqliteStore, runs: &[CreatedRun], version: i64) -> Vec<Transition> {
        let mut transitions = Vec::new();
        for run in runs {
            let mut transition = moving(store, run, version, JobStatus::InProgress).await;
            transition.claims = vec![ClaimInTransition {
                job_id: run.job_ids[0],
                attempt: 1,
                runner_id: RunnerId(1),
                lease: Lease {
                    now_ms: 2_000,
                    deadline_ms: 9_000,
                },
            }];
            transitions.push(transition);
        }
        transitions
    }

    /// Successful results of the claims `claimed` made, from state version 2.
    async fn completions(
        store: &SqliteStore,
        runs: &[CreatedRun],
        claimed: &[AppliedTransition],
    ) -> Vec<Transition> {
        let mut transitions = Vec::new();
        for (run, applied) in runs.iter().zip(claimed) {
            let mut transition = moving(store, run, 2, JobStatus::Completed).await;
            transition.ended_attempts = vec![EndedAttempt {
                job_id: run.job_ids[0],
                attempt: 1,
                fencing_token: Some(applied.claims[0].fencing_token),
                ended_at_ms: 3_000,
                result: Conclusion::Success,
            }];
            transitions.push(transition);
        }
        transitions
    }

    /// Applies `transitions` as one batch; every one must be stored.
    async fn apply_all(
        store: &SqliteStore,
        transitions: Vec<Transition>,
    ) -> Vec<AppliedTransition> {
        Store::apply_transitions(store, transitions)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    /// What a store holds of `runs`: each run's engine state and state version, its jobs and
    /// their attempts.
    async fn holdings(
        store: &SqliteStore,
        runs: &[CreatedRun],
    ) -> Vec<(EngineState, i64, Vec<Job>, Vec<Vec<JobAttempt>>)> {
        let mut held = Vec::new();
        for run in runs {
            let state = Store::get_engine_state(store, run.run_id).await.unwrap();
            let version = Store::get_run(store, run.run_id)
                .await
                .unwrap()
                .state_version;
            let jobs = Store::list_jobs(store, run.run_id).await.unwrap();
            let mut attempts = Vec::new();
            for job in &jobs {
                attempts.push(Store::list_attempts(store, job.id).await.unwrap());
            }
            held.push((state, version, jobs, attempts));
        }
        held
    }

    fn stored_batches(store: &SqliteStore) -> u64 {
        store
            .direct
            .as_ref()
            .expect("a direct writer")
            .stored_batches()
    }

    /// The connection is as durable as sqlx's writer (`crate::sqlite`): every commit synced,
    /// foreign keys checked, the same cache and checkpoints.
    #[tokio::test]
    async fn the_direct_connection_syncs_every_commit_and_checks_foreign_keys() {
        let (store, _runs, _dir) = store_with_runs(1).await;
        let direct = store.direct.as_ref().expect("a direct writer");
        assert_eq!(direct.pragma("journal_mode"), "wal");
        // 2 is FULL: the WAL is synced at every commit.
        assert_eq!(direct.pragma("synchronous"), "2");
        assert_eq!(direct.pragma("foreign_keys"), "1");
        assert_eq!(direct.pragma("busy_timeout"), "5000");
        assert_eq!(direct.pragma("cache_size"), crate::sqlite::WRITER_CACHE_KIB);
        assert_eq!(
            direct.pragma("wal_autocheckpoint"),
            crate::sqlite::WAL_CHECKPOINT_PAGES
        );
    }

    /// Writing a status, a conclusion or a result builds no temporary b-tree to check the
    /// value against its list (migration 11): no statement of the writer opens one.
    #[tokio::test]
    async fn the_writers_statements_open_no_temporary_tables() {
        let (store, _runs, _dir) = store_with_runs(1).await;
        let direct = store.direct.as_ref().expect("a direct writer");
        for sql in direct.statements.all() {
            let opcodes = direct.opcodes(sql);
            assert!(!opcodes.is_empty(), "{sql}");
            assert!(
                !opcodes.iter().any(|opcode| opcode == "OpenEphemeral"),
                "{sql} opens a temporary table: {opcodes:?}"
            );
        }
    }

    /// Puts a store's CHECK constraints back as version 10 wrote them, with lists of values.
    const BEFORE_VERSION_11: &str = "\
        PRAGMA writable_schema = ON;\
        UPDATE sqlite_schema SET sql = \
            replace(replace(replace(replace(sql, \
            'status = ''waiting'' OR status = ''queued'' OR status = ''in_progress'' \
             OR status = ''completed''', \
            'status IN (''waiting'', ''queued'', ''in_progress'', ''completed'')'), \
            'status = ''queued'' OR status = ''in_progress'' OR status = ''completed''', \
            'status IN (''queued'', ''in_progress'', ''completed'')'), \
            'conclusion = ''success'' OR conclusion = ''failure'' \
             OR conclusion = ''cancelled'' OR conclusion = ''skipped''', \
            'conclusion IN (''success'', ''failure'', ''cancelled'', ''skipped'')'), \
            'result = ''success'' OR result = ''failure'' \
             OR result = ''cancelled'' OR result = ''skipped''', \
            'result IN (''success'', ''failure'', ''cancelled'', ''skipped'')') \
        WHERE type = 'table';\
        PRAGMA writable_schema = RESET;\
        DELETE FROM schema_migrations WHERE version = 11;";

    /// The tables' schema texts that still check a value against a list.
    async fn tables_with_lists(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE '% IN (''%' \
             ORDER BY name",
        )
        .fetch_all(&store.writes)
        .await
        .unwrap()
    }

    /// Version 11 rewrites the lists as comparisons in a database of version 10: its rows
    /// stay as they were, the same values are refused and allowed, and the writer's
    /// statements then open no temporary table.
    #[tokio::test]
    async fn migration_11_checks_the_same_values_without_lists() {
        let (store, runs, dir) = store_with_runs(2).await;
        let claimed = apply_all(&store, claims(&store, &runs, 1).await).await;
        apply_all(&store, completions(&store, &runs[..1], &claimed).await).await;
        let before = holdings(&store, &runs).await;
        sqlx::raw_sql(BEFORE_VERSION_11)
            .execute(&store.writes)
            .await
            .unwrap();
        assert_eq!(
            tables_with_lists(&store).await,
            ["job_attempts", "jobs", "step_results", "workflow_runs"]
        );
        store.close().await;
        drop(store);

        let store = SqliteStore::open(dir.path().join("gantry.sqlite"))
            .await
            .unwrap();
        assert!(tables_with_lists(&store).await.is_empty());
        assert_eq!(holdings(&store, &runs).await, before);
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&store.writes)
            .await
            .unwrap();
        assert_eq!(integrity, "ok");
        // The writer's connection opened before the migration; its next batch finds the
        // schema changed and compiles its statements anew.
        let results = completions(&store, &runs[1..], &claimed[1..]).await;
        apply_all(&store, results).await;
        assert_eq!(stored_batches(&store), 1);
        let direct = store.direct.as_ref().expect("a direct writer");
        for sql in direct.statements.all() {
            let opcodes = direct.opcodes(sql);
            assert!(!opcodes.iter().any(|op| op == "OpenEphemeral"), "{sql}");
        }
        let job = runs[1].job_ids[0].0;
        for (column, value, allowed) in [
            ("status", "'bogus'", false),
            ("status", "'waiting'", true),
            ("conclusion", "'bogus'", false),
            ("conclusion", "NULL", true),
            ("conclusion", "'skipped'", true),
        ] {
            let update = format!("UPDATE jobs SET {column} = {value} WHERE id = {job}");
            let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(update))
                .execute(&store.writes)
                .await;
            assert_eq!(outcome.is_ok(), allowed, "{column} = {value}: {outcome:?}");
        }
    }

    /// The same claims and results leave the same rows whether the writer thread stores them
    /// itself or through sqlx, a result that leaves its run's fields alone among them.
    #[tokio::test]
    async fn transitions_stored_directly_leave_what_sqlx_leaves() {
        let (direct, runs, _direct_dir) = store_with_runs(3).await;
        let (mut through_sqlx, same_runs, _sqlx_dir) = store_with_runs(3).await;
        through_sqlx.direct = None;
        assert_eq!(runs, same_runs);
        for store in [&direct, &through_sqlx] {
            let claimed = apply_all(store, claims(store, &runs, 1).await).await;
            let tokens: Vec<i64> = claimed
                .iter()
                .map(|applied| applied.claims[0].fencing_token.0)
                .collect();
            assert_eq!(tokens, [1, 1, 1]);
            let mut results = completions(store, &runs, &claimed).await;
            results[1].engine_state.run = None;
            results[1].run = None;
            let completed = apply_all(store, results).await;
            assert!(completed.iter().all(|applied| applied.state_version == 3));
            let kept = Store::get_engine_state(store, runs[1].run_id)
                .await
                .unwrap();
            assert_eq!(kept.document["v"], json!(1), "the claim's fields");
        }
        assert_eq!(stored_batches(&direct), 2, "both batches went directly");
        assert_eq!(
            holdings(&direct, &runs).await,
            holdings(&through_sqlx, &runs).await
        );
        assert!(Store::running_attempts(&direct).await.unwrap().is_empty());
    }

    /// A refused transition rolls the direct batch back; the sqlx way then stores the others
    /// once and refuses that one with its own answer.
    #[tokio::test]
    async fn a_refusal_sends_the_batch_the_sqlx_way_with_nothing_stored_twice() {
        let (store, runs, _dir) = store_with_runs(3).await;
        let mut transitions = claims(&store, &runs, 1).await;
        transitions[1].expected_state_version = 7;
        let answers = Store::apply_transitions(&store, transitions).await.unwrap();
        assert!(matches!(answers[1], Err(StoreError::Conflict { .. })));
        for index in [0, 2] {
            let applied = answers[index].as_ref().unwrap();
            assert_eq!(applied.state_version, 2);
            assert_eq!(applied.claims[0].fencing_token, FencingToken(1));
        }
        assert_eq!(stored_batches(&store), 0);
        assert_eq!(Store::running_attempts(&store).await.unwrap().len(), 2);
        let refused = Store::get_run(&store, runs[1].run_id).await.unwrap();
        assert_eq!(refused.state_version, 1);
    }

    /// The direct writer itself refuses a batch with a stale transition whole: the good
    /// transition before it is rolled back with it.
    #[tokio::test]
    async fn a_stale_transition_leaves_the_direct_batch_unwritten() {
        let (store, runs, _dir) = store_with_runs(2).await;
        let mut transitions = claims(&store, &runs, 1).await;
        transitions[1].expected_state_version = 7;
        let batch: Vec<&Transition> = transitions.iter().collect();
        let refused = store.direct.as_ref().unwrap().store(&batch).unwrap_err();
        assert!(refused.to_string().contains("state version"), "{refused}");
        for run in &runs {
            let stored = Store::get_run(&store, run.run_id).await.unwrap();
            assert_eq!(stored.state_version, 1);
        }
        assert!(Store::running_attempts(&store).await.unwrap().is_empty());
    }

    /// A batch holding anything but transitions that may go together goes the sqlx way.
    #[tokio::test]
    async fn only_batches_of_transitions_that_go_together_go_directly() {
        let (store, runs, _dir) = store_with_runs(2).await;
        let mut transitions = claims(&store, &runs, 1).await;
        // Two transitions of one run never go together.
        let again = moving(&store, &runs[0], 2, JobStatus::InProgress).await;
        transitions.truncate(1);
        transitions.push(again);
        let answers = Store::apply_transitions(&store, transitions).await.unwrap();
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(stored_batches(&store), 0);
    }
}
