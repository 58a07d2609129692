//! The creations of a group-commit batch stored together: a few statements for the whole
//! batch instead of several for each run.
//!
//! Each creation alone takes a run number, inserts its run, stores its documents once the
//! engine has built it and inserts its jobs: four statements, each a round trip to SQLite's writer
//! thread or to PostgreSQL, made one after another by the batch's leader while every other
//! writer waits. That serial work, not the commit, capped ingest (about 1 ms a run whatever
//! the concurrency, `gantry bench ingest`). Here the batch's creations take their numbers one
//! statement per workflow, are inserted a hundred runs a statement, get their documents the
//! same way, and their jobs go in together.
//!
//! Only creations that cannot be refused for a reason of their own are taken together
//! (`together.rs`): built from a workflow (not invalid files), with an idempotency key no run
//! has yet and that no other creation of the batch carries. If anything still goes wrong (an
//! unknown repository, a builder's refusal, a job named twice, a key taken meanwhile), the
//! savepoint around them is rolled back and each is created alone, so each gets the answer it
//! would get alone; builders may therefore run twice ([`crate::BuildRun`]).

use std::collections::{HashMap, HashSet};

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::group_commit::{Content, PendingWrite};
use super::multi_row::Rows;
use super::queries as q;
use super::rows::{self, StoreRow};
use super::{Backend, SqlStore, for_backend, to_json, validate_new_job};
use crate::error::StoreError;
use crate::ids::{JobId, RunId};
use crate::model::{AllocatedRun, CreatedRun, NewJob, RunContent};
use crate::status::RunStatus;

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> String: sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    /// Stores creations together ([`SqlStore::store_together`]); any error leaves the
    /// savepoint to be rolled back. Returns each creation's answer, in order.
    pub(super) async fn insert_together(
        conn: &mut DB::Connection,
        creations: &[PendingWrite],
    ) -> Result<Vec<CreatedRun>, StoreError> {
        let wanted: Vec<_> = creations
            .iter()
            .filter_map(|pending| match pending {
                PendingWrite::Create {
                    run,
                    content: Content::Build(build),
                    idempotency_key,
                    ..
                } => Some((run, build, idempotency_key.as_deref())),
                _ => None,
            })
            .collect();
        if wanted.len() != creations.len() {
            return Err(StoreError::invalid(
                "only creations of built runs go together",
            ));
        }

        // A key some run of the same repository already has: that creation answers with it,
        // alone.
        let keys: HashSet<(i64, &str)> = wanted
            .iter()
            .filter_map(|(run, _, key)| key.map(|key| (run.repo_id.0, key)))
            .collect();
        if !keys.is_empty() {
            let sql = q::existing_keys(keys.len());
            let mut query = sqlx::query(for_backend::<DB>(sql));
            for (_, key) in &keys {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let key = row.text("idempotency_key")?;
                if keys.contains(&(row.int("repo_id")?, key.as_str())) {
                    return Err(StoreError::conflict(
                        "an idempotency key names an earlier run",
                    ));
                }
            }
        }

        // Run numbers, one statement per workflow, in the batch's order.
        let mut groups: Vec<((i64, &str), i64)> = Vec::new();
        for (run, ..) in &wanted {
            let group = (run.repo_id.0, run.workflow_path.as_str());
            match groups.iter_mut().find(|(seen, _)| *seen == group) {
                Some((_, count)) => *count += 1,
                None => groups.push((group, 1)),
            }
        }
        let mut next_number: HashMap<(i64, &str), i64> = HashMap::with_capacity(groups.len());
        for ((repo_id, path), count) in &groups {
            let last = sqlx::query(q::NEXT_RUN_NUMBERS)
                .bind(*repo_id)
                .bind(*path)
                .bind(*count)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("repository {repo_id}")))?;
            next_number.insert((*repo_id, *path), last.int("last_run_number")? - count + 1);
        }
        let mut numbers = Vec::with_capacity(wanted.len());
        for (run, ..) in &wanted {
            let group = (run.repo_id.0, run.workflow_path.as_str());
            let number = next_number
                .get_mut(&group)
                .ok_or_else(|| StoreError::corrupt("a run number was not taken"))?;
            numbers.push(*number);
            *number += 1;
        }

        // The runs, queued, without their documents until they are built.
        let called: Vec<String> = wanted
            .iter()
            .map(|(run, ..)| {
                serde_json::to_string(&run.called_workflows)
                    .map_err(|error| StoreError::corrupt(format!("called workflows: {error}")))
            })
            .collect::<Result<_, _>>()?;
        let mut ids: HashMap<(i64, String, i64), RunId> = HashMap::with_capacity(wanted.len());
        let rows: Vec<usize> = (0..wanted.len()).collect();
        for chunk in rows.chunks(q::RUNS_CHUNK) {
            let sql = q::insert_runs(chunk.len());
            let mut query = sqlx::query(for_backend::<DB>(sql));
            for &index in chunk {
                let (run, _, key) = wanted[index];
                query = query
                    .bind(run.repo_id.0)
                    .bind(run.workflow_path.as_str())
                    .bind(run.workflow_name.as_str())
                    .bind(numbers[index])
                    .bind(run.event_name.as_str())
                    .bind(run.git_ref.as_str())
                    .bind(run.sha.as_str())
                    .bind(run.actor.as_str())
                    .bind(run.created_at_ms)
                    .bind(key);
            }
            // RETURNING promises no order: match the rows back by workflow and number.
            for row in query.fetch_all(&mut *conn).await? {
                let id = RunId(rows::id(&row)?);
                ids.insert(
                    (
                        row.int("repo_id")?,
                        row.text("workflow_path")?,
                        row.int("run_number")?,
                    ),
                    id,
                );
            }
        }
        let mut allocated = Vec::with_capacity(wanted.len());
        for ((run, ..), number) in wanted.iter().zip(&numbers) {
            let key = (run.repo_id.0, run.workflow_path.clone(), *number);
            // Missing: a concurrent creator committed the same idempotency key meanwhile.
            let run_id = *ids
                .get(&key)
                .ok_or_else(|| StoreError::conflict("a run was not inserted"))?;
            allocated.push(AllocatedRun {
                run_id,
                run_number: *number,
            });
        }
        for chunk in allocated.chunks(q::RUNS_CHUNK) {
            let mut query = sqlx::query(for_backend::<DB>(q::insert_run_versions(chunk.len())));
            for run in chunk {
                query = query.bind(run.run_id.0);
            }
            query.execute(&mut *conn).await?;
        }

        // Built now that their ids and numbers are known.
        let mut contents: Vec<RunContent> = Vec::with_capacity(wanted.len());
        for ((_, build, _), allocated) in wanted.iter().zip(&allocated) {
            let content = build
                .build(*allocated)
                .map_err(|error| StoreError::invalid(format!("run refused: {error}")))?;
            for job in &content.jobs {
                validate_new_job(job)?;
            }
            contents.push(content);
        }
        let rows: Vec<usize> = (0..contents.len()).collect();
        for chunk in rows.chunks(q::RUNS_CHUNK) {
            let sql = q::insert_run_documents(chunk.len());
            let mut query = sqlx::query(for_backend::<DB>(sql));
            for &index in chunk {
                let content = &contents[index];
                query = query
                    .bind(allocated[index].run_id.0)
                    .bind(content.engine_state.as_str())
                    .bind(content.engine_spec.as_str())
                    .bind(wanted[index].0.workflow_source.as_str())
                    .bind(called[index].as_str());
            }
            query.execute(&mut *conn).await?;
        }
        // Built runs start queued, as inserted, unless their builder said otherwise.
        let unqueued: Vec<usize> = (0..contents.len())
            .filter(|&index| contents[index].status != RunStatus::Queued)
            .collect();
        for chunk in unqueued.chunks(q::RUNS_CHUNK.min(DB::ROWS_PER_STATEMENT)) {
            let rows = Rows::new()
                .int("id", chunk.iter().map(|&index| allocated[index].run_id.0))
                .text(
                    "status",
                    chunk.iter().map(|&index| contents[index].status.as_str()),
                );
            Self::fetch_rows(conn, q::set_runs_status(&DB::rows_table(&rows)), &rows).await?;
        }

        let runs: Vec<(RunId, &[NewJob])> = allocated
            .iter()
            .zip(&contents)
            .map(|(allocated, content)| (allocated.run_id, content.jobs.as_slice()))
            .collect();
        let job_ids = Self::insert_jobs_of_runs(conn, &runs).await?;
        Ok(allocated
            .into_iter()
            .zip(job_ids)
            .map(|(allocated, job_ids)| CreatedRun {
                run_id: allocated.run_id,
                run_number: allocated.run_number,
                created: true,
                job_ids,
            })
            .collect())
    }

    /// Inserts the jobs of several runs, a chunk of rows a statement; returns each run's job
    /// ids in the order given.
    pub(super) async fn insert_jobs_of_runs(
        conn: &mut DB::Connection,
        runs: &[(RunId, &[NewJob])],
    ) -> Result<Vec<Vec<JobId>>, StoreError> {
        let all: Vec<(RunId, &NewJob)> = runs
            .iter()
            .flat_map(|(run_id, jobs)| jobs.iter().map(move |job| (*run_id, job)))
            .collect();
        let mut by_key: HashMap<(RunId, String, i64), JobId> = HashMap::with_capacity(all.len());
        for chunk in all.chunks(q::INSERT_JOBS_CHUNK) {
            let mut encoded = Vec::with_capacity(chunk.len());
            for (_, job) in chunk {
                encoded.push((
                    to_json("runs-on labels", &job.runs_on)?,
                    to_json("waiting reasons", &job.waiting_reasons)?,
                ));
            }
            let sql = q::insert_jobs(chunk.len());
            let mut query = sqlx::query(for_backend::<DB>(sql));
            for ((run_id, job), (runs_on, waiting_reasons)) in chunk.iter().zip(&encoded) {
                query = query
                    .bind(run_id.0)
                    .bind(job.job_key.as_str())
                    .bind(job.matrix_index)
                    .bind(job.name.as_str())
                    .bind(job.status.as_str())
                    .bind(job.attempt)
                    .bind(runs_on.as_str())
                    .bind(waiting_reasons.as_str())
                    .bind(job.priority)
                    .bind(job.queued_at_ms)
                    .bind(job.started_at_ms);
            }
            let rows = query.fetch_all(&mut *conn).await.map_err(|error| {
                super::unique_is_conflict(error, || "a job appears twice in its run".to_owned())
            })?;
            // RETURNING promises no order: match the rows back by run, key and matrix index.
            for row in &rows {
                let key = (
                    RunId(row.int("run_id")?),
                    row.text("job_key")?,
                    row.int("matrix_index")?,
                );
                by_key.insert(key, JobId(rows::id(row)?));
            }
        }
        runs.iter()
            .map(|(run_id, jobs)| {
                jobs.iter()
                    .map(|job| {
                        by_key
                            .get(&(*run_id, job.job_key.clone(), job.matrix_index))
                            .copied()
                            .ok_or_else(|| {
                                StoreError::conflict(format!(
                                    "job `{}` matrix index {} appears twice in run {run_id}",
                                    job.job_key, job.matrix_index
                                ))
                            })
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;
    use tokio::sync::oneshot;

    use super::*;
    use crate::ids::RepoId;
    use crate::model::{BuildRun, NewOrganization, NewRepository, NewRun};
    use crate::status::{JobStatus, RunStatus};
    use crate::{SqliteStore, Store};

    /// A SQLite store with organization `acme` and its repository `app`.
    pub(in crate::sql) async fn store_with_repo() -> (SqliteStore, RepoId, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("gantry.sqlite"))
            .await
            .unwrap();
        let org = Store::create_organization(
            &store,
            NewOrganization {
                name: "acme".into(),
                weight: 1,
                hosted_concurrency_limit: None,
            },
        )
        .await
        .unwrap();
        let repo = Store::create_repository(
            &store,
            NewRepository {
                org_id: org.id,
                name: "app".into(),
                default_branch: "main".into(),
            },
        )
        .await
        .unwrap();
        (store, repo.id, dir)
    }

    fn new_job(key: &str) -> NewJob {
        NewJob {
            job_key: key.to_owned(),
            matrix_index: 0,
            name: key.to_owned(),
            status: JobStatus::Queued,
            attempt: 1,
            runs_on: vec!["linux".to_owned()],
            waiting_reasons: json!([]),
            priority: 0,
            queued_at_ms: Some(1),
            started_at_ms: None,
        }
    }

    /// A builder recording the run's id and number in its state; `refuse` makes it refuse.
    fn builder(refuse: bool) -> BuildRun {
        builder_with_status(RunStatus::Queued, refuse)
    }

    /// [`builder`] of a run that starts with `status`.
    fn builder_with_status(status: RunStatus, refuse: bool) -> BuildRun {
        BuildRun::new(move |run| {
            if refuse {
                return Err("refused by the builder".to_owned());
            }
            Ok(RunContent {
                status,
                engine_state: json!({"run": run.run_id.0, "number": run.run_number}).into(),
                engine_spec: json!({}).into(),
                jobs: vec![new_job("build"), new_job("test")],
            })
        })
    }

    /// A queued creation of `path` and where its answer arrives.
    fn creation(
        repo_id: RepoId,
        path: &str,
        key: Option<&str>,
        refuse: bool,
    ) -> (
        PendingWrite,
        oneshot::Receiver<Result<CreatedRun, StoreError>>,
    ) {
        creation_built_by(repo_id, path, key, builder(refuse))
    }

    /// A batch whose builder panics loses its own answer only: the writer thread's loop goes
    /// on with the next batch.
    #[tokio::test]
    async fn a_panicking_batch_leaves_the_writer_thread_writing() {
        let (store, repo, _dir) = store_with_repo().await;
        let run = new_run(repo, "ci.yml");
        let broken = Store::create_run(
            &store,
            run.clone(),
            BuildRun::new(|_| panic!("a broken builder")),
            None,
        )
        .await;
        assert!(matches!(broken, Err(StoreError::BatchFailed { .. })));
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Store::create_run(&store, run, builder(false), None),
        )
        .await
        .expect("the writer thread still writes");
        assert_eq!(next.unwrap().run_number, 1);
    }

    /// A run of `path` in repository `repo_id`.
    fn new_run(repo_id: RepoId, path: &str) -> NewRun {
        NewRun {
            repo_id,
            workflow_path: path.to_owned(),
            workflow_name: "CI".to_owned(),
            event_name: "push".to_owned(),
            git_ref: "refs/heads/main".to_owned(),
            sha: "0".repeat(40),
            actor: "octocat".to_owned(),
            created_at_ms: 1_000,
            workflow_source: "on: push\njobs: {}\n".to_owned(),
            called_workflows: Default::default(),
        }
    }

    /// [`creation`] with the given builder.
    fn creation_built_by(
        repo_id: RepoId,
        path: &str,
        key: Option<&str>,
        build: BuildRun,
    ) -> (
        PendingWrite,
        oneshot::Receiver<Result<CreatedRun, StoreError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        let pending = PendingWrite::Create {
            run: new_run(repo_id, path),
            content: Content::Build(build),
            idempotency_key: key.map(str::to_owned),
            reply,
        };
        (pending, answer)
    }

    /// Runs one batch of `creations` and returns their answers in order.
    pub(in crate::sql) async fn batch(
        store: &SqliteStore,
        creations: Vec<(&str, Option<&str>, bool)>,
        repo_id: RepoId,
    ) -> Vec<Result<CreatedRun, StoreError>> {
        let (writes, answers): (Vec<_>, Vec<_>) = creations
            .into_iter()
            .map(|(path, key, refuse)| creation(repo_id, path, key, refuse))
            .unzip();
        store.write_batch(writes).await;
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        results
    }

    /// Checks a created run: its state records its own id and number, its jobs are the ids
    /// answered.
    async fn check_run(store: &SqliteStore, created: &CreatedRun) {
        let state = Store::get_engine_state(store, created.run_id)
            .await
            .unwrap();
        assert_eq!(
            state.document,
            json!({"run": created.run_id.0, "number": created.run_number})
        );
        let jobs = Store::list_jobs(store, created.run_id).await.unwrap();
        let ids: Vec<JobId> = jobs.iter().map(|job| job.id).collect();
        assert_eq!(ids, created.job_ids);
        let keys: Vec<&str> = jobs.iter().map(|job| job.job_key.as_str()).collect();
        assert_eq!(keys, ["build", "test"]);
    }

    /// A run starts with the status its builder gives and keeps its workflow file apart from
    /// its row, whether created together with others or alone.
    #[tokio::test]
    async fn created_runs_keep_their_builders_status_and_their_workflow_file() {
        let (store, repo, _dir) = store_with_repo().await;
        let statuses = [
            RunStatus::Queued,
            RunStatus::InProgress,
            RunStatus::Completed,
        ];
        let mut created = Vec::new();
        let (writes, answers): (Vec<_>, Vec<_>) = statuses
            .iter()
            .map(|status| {
                creation_built_by(repo, "a.yml", None, builder_with_status(*status, false))
            })
            .unzip();
        store.write_batch(writes).await;
        for answer in answers {
            created.push(answer.await.unwrap().unwrap());
        }
        for status in statuses {
            let (write, answer) =
                creation_built_by(repo, "b.yml", None, builder_with_status(status, false));
            store.write_batch(vec![write]).await;
            created.push(answer.await.unwrap().unwrap());
        }
        for (run, status) in created.iter().zip(statuses.iter().chain(&statuses)) {
            check_run(&store, run).await;
            let stored = Store::get_run(&store, run.run_id).await.unwrap();
            assert_eq!(stored.status, *status);
            let source = Store::workflow_source(&store, run.run_id).await.unwrap();
            assert_eq!(source, "on: push\njobs: {}\n");
        }
    }

    /// Creations of two workflows in one batch are stored together: each run numbered in its
    /// workflow in the batch's order, built with its own id and number, with its own jobs.
    #[tokio::test]
    async fn a_batch_of_creations_is_stored_together_each_with_its_own_run() {
        let (store, repo, _dir) = store_with_repo().await;
        let answers = batch(
            &store,
            vec![
                ("a.yml", None, false),
                ("b.yml", Some("key-1"), false),
                ("a.yml", Some("key-2"), false),
                ("a.yml", None, false),
                ("b.yml", None, false),
            ],
            repo,
        )
        .await;
        let created: Vec<CreatedRun> = answers.into_iter().map(Result::unwrap).collect();
        let numbers: Vec<i64> = created.iter().map(|run| run.run_number).collect();
        assert_eq!(numbers, [1, 1, 2, 3, 2]);
        for run in &created {
            assert!(run.created);
            check_run(&store, run).await;
        }
        // The keys were stored with their runs.
        let again = batch(&store, vec![("b.yml", Some("key-1"), false)], repo).await;
        let again = again.into_iter().next().unwrap().unwrap();
        assert!(!again.created);
        assert_eq!(again.run_id, created[1].run_id);
    }

    /// A batch with a key of an earlier run, a key twice and a creation its builder refuses is
    /// created one by one: each gets the answer it gets alone, and the numbers have no gap.
    #[tokio::test]
    async fn a_batch_that_cannot_go_together_gets_the_answers_each_would_get_alone() {
        let (store, repo, _dir) = store_with_repo().await;
        let first = batch(&store, vec![("a.yml", Some("taken"), false)], repo).await;
        let first = first.into_iter().next().unwrap().unwrap();
        let answers = batch(
            &store,
            vec![
                ("a.yml", None, false),
                ("a.yml", Some("taken"), false),
                ("a.yml", None, true),
                ("a.yml", Some("twice"), false),
                ("a.yml", Some("twice"), false),
                ("a.yml", None, false),
            ],
            repo,
        )
        .await;
        let mut answers = answers.into_iter();
        let mut next = || answers.next().unwrap();
        let one = next().unwrap();
        let taken = next().unwrap();
        assert!(matches!(next(), Err(StoreError::Invalid { .. })));
        let twice = next().unwrap();
        let twice_again = next().unwrap();
        let last = next().unwrap();
        assert_eq!((taken.created, taken.run_id), (false, first.run_id));
        assert!(twice.created && !twice_again.created);
        assert_eq!(twice_again.run_id, twice.run_id);
        let mut numbers: Vec<i64> = [&one, &twice, &last]
            .iter()
            .map(|run| run.run_number)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [2, 3, 4]);
        for run in [&one, &twice, &last] {
            check_run(&store, run).await;
        }
    }
}
