//! The transitions of a batch stored together: one statement per kind of change for the whole
//! batch instead of several for each run.
//!
//! A transition alone checks and moves its run's version, writes its engine state, claims its
//! picked jobs, updates its job rows and ends its attempts: four to six statements, each a
//! round trip to SQLite's writer thread or to PostgreSQL, made one after another while the
//! others wait. A runner's batch of claims or results touches one job in each of many runs
//! (the fair queue spreads its picks over runs), so those statements, not the commit, capped
//! the drain (`gantry bench drain --batch N`). Here the runs of a batch move with one
//! version-checked `UPDATE` of their versions (and one more of the rows of the runs whose own
//! fields changed), their jobs are claimed, their attempts recorded, their rows updated and
//! their attempts ended with one statement each (per 64 rows on SQLite; see `multi_row.rs`).
//!
//! `together.rs` picks the transitions that may go together (distinct runs, distinct claimed
//! jobs, no new jobs). Any refusal (a stale version, a job no longer queued, an attempt at
//! another number or already ended, a job of another run) makes the whole group fail here;
//! its savepoint is rolled back and each transition is applied alone, which finds the cause
//! again and answers with it.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::group_commit::PendingWrite;
use super::multi_row::{self, Rows};
use super::queries as q;
use super::rows::{self, StoreRow};
use super::{Backend, SqlStore};
use crate::FencingToken;
use crate::error::StoreError;
use crate::ids::{JobId, RunId};
use crate::model::{AppliedTransition, Claim, ClaimInTransition, JobUpdate, Transition};

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
    /// Applies transitions together ([`SqlStore::store_together`]), in the order a transition
    /// alone makes its changes; any error leaves the savepoint to be rolled back. Returns each
    /// transition's answer, in order.
    pub(super) async fn transition_together(
        conn: &mut DB::Connection,
        writes: &[PendingWrite],
    ) -> Result<Vec<AppliedTransition>, StoreError> {
        let transitions: Vec<&Transition> = writes
            .iter()
            .filter_map(|pending| match pending {
                PendingWrite::Transition { transition, .. } => Some(transition),
                _ => None,
            })
            .collect();
        if transitions.len() != writes.len() {
            return Err(StoreError::invalid("only transitions go together"));
        }
        let versions = Self::move_runs(conn, &transitions).await?;
        let engine_jobs: Vec<(RunId, u32, &str)> = transitions
            .iter()
            .flat_map(|transition| {
                transition
                    .engine_state
                    .jobs
                    .iter()
                    .map(|(index, state)| (transition.run_id, *index, state.as_str()))
            })
            .collect();
        Self::write_engine_jobs_of_runs(conn, &engine_jobs).await?;
        let mut claims = Self::claim_together(conn, &transitions).await?;
        let updates: Vec<(RunId, &[JobUpdate])> = transitions
            .iter()
            .map(|transition| (transition.run_id, transition.job_updates.as_slice()))
            .filter(|(_, updates)| !updates.is_empty())
            .collect();
        Self::update_jobs_of_runs(conn, &updates).await?;
        for transition in &transitions {
            let run_claims = claims.get(&transition.run_id).map(Vec::as_slice);
            Self::check_jobs_of_run(conn, transition, run_claims.unwrap_or_default()).await?;
            for attempt in &transition.new_attempts {
                Self::insert_attempt(conn, attempt).await?;
            }
        }
        Self::end_attempts_together(conn, &transitions).await?;
        for transition in &transitions {
            for step in &transition.step_results {
                Self::upsert_step_result(conn, step).await?;
            }
        }
        transitions
            .iter()
            .zip(versions)
            .map(|(transition, state_version)| {
                Ok(AppliedTransition {
                    state_version,
                    new_job_ids: Vec::new(),
                    claims: claims.remove(&transition.run_id).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Checks every run's version and moves it on, then writes the runs' fields and columns
    /// where they changed; returns each run's new version, in order. A run at another version
    /// refuses the group.
    async fn move_runs(
        conn: &mut DB::Connection,
        transitions: &[&Transition],
    ) -> Result<Vec<i64>, StoreError> {
        let mut versions: HashMap<RunId, i64> = HashMap::with_capacity(transitions.len());
        for chunk in multi_row::chunks::<DB, _>(transitions) {
            let rows = Rows::new()
                .int("id", chunk.iter().map(|transition| transition.run_id.0))
                .int(
                    "expected",
                    chunk
                        .iter()
                        .map(|transition| transition.expected_state_version),
                );
            let sql = q::move_run_versions(&DB::rows_table(&rows));
            for row in Self::fetch_rows(conn, sql, &rows).await? {
                versions.insert(RunId(rows::id(&row)?), row.int("state_version")?);
            }
        }
        let versions = transitions
            .iter()
            .map(|transition| {
                versions.get(&transition.run_id).copied().ok_or_else(|| {
                    StoreError::conflict(format!(
                        "run {} is not at state version {}",
                        transition.run_id, transition.expected_state_version
                    ))
                })
            })
            .collect::<Result<Vec<i64>, _>>()?;

        let mut changed = Vec::new();
        for transition in transitions {
            match (&transition.engine_state.run, &transition.run) {
                (Some(fields), Some(columns)) => {
                    changed.push((transition.run_id, fields.as_str(), columns));
                }
                (None, None) => {}
                _ => {
                    return Err(StoreError::invalid(
                        "a transition writing only a run's fields or only its columns goes alone",
                    ));
                }
            }
        }
        for chunk in multi_row::chunks::<DB, _>(&changed) {
            let runs = || chunk.iter().map(|(_, _, run)| *run);
            let rows = Rows::new()
                .int("id", chunk.iter().map(|(run_id, ..)| run_id.0))
                .text("engine_run", chunk.iter().map(|(_, fields, _)| *fields))
                .int("attempt", runs().map(|run| run.attempt))
                .text("status", runs().map(|run| run.status.as_str()))
                .maybe_text(
                    "conclusion",
                    runs().map(|run| run.conclusion.map(|conclusion| conclusion.as_str())),
                )
                .maybe_int("started_at_ms", runs().map(|run| run.started_at_ms))
                .maybe_int("completed_at_ms", runs().map(|run| run.completed_at_ms));
            Self::fetch_rows(conn, q::update_runs_fields(&DB::rows_table(&rows)), &rows).await?;
        }
        Ok(versions)
    }

    /// Makes every transition's claims: the jobs, then their attempts. Returns each run's
    /// claims in the order its transition asked for them; a claim refused as
    /// [`crate::Store::claim_job`] would refuse it, or of a job of another run or at another
    /// attempt, refuses the group.
    async fn claim_together(
        conn: &mut DB::Connection,
        transitions: &[&Transition],
    ) -> Result<HashMap<RunId, Vec<Claim>>, StoreError> {
        let wanted: Vec<(RunId, &ClaimInTransition)> = transitions
            .iter()
            .flat_map(|transition| {
                transition
                    .claims
                    .iter()
                    .map(|claim| (transition.run_id, claim))
            })
            .collect();
        let mut claimed: HashMap<JobId, (RunId, i64, FencingToken)> =
            HashMap::with_capacity(wanted.len());
        for chunk in multi_row::chunks::<DB, _>(&wanted) {
            let rows = Rows::new()
                .int("id", chunk.iter().map(|(_, claim)| claim.job_id.0))
                .int("now_ms", chunk.iter().map(|(_, claim)| claim.lease.now_ms));
            for row in Self::fetch_rows(conn, q::claim_jobs(&DB::rows_table(&rows)), &rows).await? {
                claimed.insert(
                    JobId(rows::id(&row)?),
                    (
                        RunId(row.int("run_id")?),
                        row.int("attempt")?,
                        FencingToken(row.int("last_fencing_token")?),
                    ),
                );
            }
        }
        let mut claims: HashMap<RunId, Vec<Claim>> = HashMap::new();
        for (run_id, wanted) in &wanted {
            let Some(&(job_run, attempt, fencing_token)) = claimed.get(&wanted.job_id) else {
                return Err(StoreError::conflict(format!(
                    "job {} is not queued",
                    wanted.job_id
                )));
            };
            if job_run != *run_id || attempt != wanted.attempt {
                return Err(StoreError::conflict(format!(
                    "job {} is not at attempt {} of run {run_id}",
                    wanted.job_id, wanted.attempt
                )));
            }
            claims.entry(*run_id).or_default().push(Claim {
                job_id: wanted.job_id,
                run_id: *run_id,
                attempt,
                fencing_token,
            });
        }
        for chunk in multi_row::chunks::<DB, _>(&wanted) {
            let tokens = chunk
                .iter()
                .map(|(_, claim)| {
                    claimed
                        .get(&claim.job_id)
                        .map(|(_, _, token)| token.0)
                        .ok_or_else(|| StoreError::corrupt("a claimed job was lost"))
                })
                .collect::<Result<Vec<i64>, _>>()?;
            let rows = Rows::new()
                .int("job_id", chunk.iter().map(|(_, claim)| claim.job_id.0))
                .int("attempt", chunk.iter().map(|(_, claim)| claim.attempt))
                .int(
                    "runner_id",
                    chunk.iter().map(|(_, claim)| claim.runner_id.0),
                )
                .int("fencing_token", tokens)
                .int(
                    "lease_deadline_ms",
                    chunk.iter().map(|(_, claim)| claim.lease.deadline_ms),
                )
                .int(
                    "started_at_ms",
                    chunk.iter().map(|(_, claim)| claim.lease.now_ms),
                );
            let sql = q::claim_attempts(&DB::rows_to_insert(&rows));
            let recorded = Self::fetch_rows(conn, sql, &rows).await?.len();
            if recorded != chunk.len() {
                return Err(StoreError::conflict(
                    "an attempt was already claimed or has ended",
                ));
            }
        }
        Ok(claims)
    }

    /// Checks that the attempts and steps a transition names are of jobs of its run
    /// ([`Transition::jobs_to_check`]), looking them up one by one.
    pub(super) async fn check_jobs_of_run(
        conn: &mut DB::Connection,
        transition: &Transition,
        claims: &[Claim],
    ) -> Result<(), StoreError> {
        for job_id in transition.jobs_to_check(claims) {
            let found = sqlx::query(q::JOB_OF_RUN)
                .bind(job_id.0)
                .bind(transition.run_id.0)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                return Err(StoreError::not_found(format!(
                    "job {job_id} in run {}",
                    transition.run_id
                )));
            }
        }
        Ok(())
    }

    /// Ends every transition's ended attempts; one not running, or held by another fencing
    /// token, refuses the group.
    async fn end_attempts_together(
        conn: &mut DB::Connection,
        transitions: &[&Transition],
    ) -> Result<(), StoreError> {
        let ended: Vec<_> = transitions
            .iter()
            .flat_map(|transition| &transition.ended_attempts)
            .collect();
        for chunk in multi_row::chunks::<DB, _>(&ended) {
            let rows = Rows::new()
                .int("job_id", chunk.iter().map(|ended| ended.job_id.0))
                .int("attempt", chunk.iter().map(|ended| ended.attempt))
                .int("ended_at_ms", chunk.iter().map(|ended| ended.ended_at_ms))
                .text("result", chunk.iter().map(|ended| ended.result.as_str()))
                .maybe_int(
                    "token",
                    chunk
                        .iter()
                        .map(|ended| ended.fencing_token.map(|token| token.0)),
                );
            let sql = q::end_attempts(&DB::rows_table(&rows));
            if Self::fetch_rows(conn, sql, &rows).await?.len() != chunk.len() {
                return Err(StoreError::conflict(
                    "an attempt has ended or is held by another fencing token",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::model::{EndedAttempt, Lease, RunUpdate};
    use crate::sql::create_together::tests::{batch, store_with_repo};
    use crate::status::{Conclusion, JobStatus, RunStatus};
    use crate::{CreatedRun, RunnerId, SqliteStore, Store};

    /// A store with `count` runs whose first job is queued.
    pub(in crate::sql) async fn store_with_runs(
        count: usize,
    ) -> (SqliteStore, Vec<CreatedRun>, tempfile::TempDir) {
        let (store, repo, dir) = store_with_repo().await;
        let creations = (0..count).map(|_| ("ci.yml", None, false)).collect();
        let created = batch(&store, creations, repo).await;
        let created = created.into_iter().map(Result::unwrap).collect();
        (store, created, dir)
    }

    /// A transition of `run` from `version` moving its job to `status`.
    pub(in crate::sql) async fn moving(
        store: &SqliteStore,
        run: &CreatedRun,
        version: i64,
        status: JobStatus,
    ) -> Transition {
        let row = Store::get_job(store, run.job_ids[0]).await.unwrap();
        let mut transition = Transition::new(run.run_id, version, json!({"v": version}));
        transition.run = Some(RunUpdate {
            attempt: 1,
            status: RunStatus::InProgress,
            conclusion: None,
            started_at_ms: Some(2_000),
            completed_at_ms: None,
        });
        transition.job_updates = vec![JobUpdate {
            status,
            ..JobUpdate::from_job(&row)
        }];
        transition
    }

    /// Runs [`SqlStore::transition_together`] alone in a transaction it commits on success.
    async fn together(
        store: &SqliteStore,
        transitions: Vec<Transition>,
    ) -> Result<Vec<AppliedTransition>, StoreError> {
        let writes: Vec<PendingWrite> = transitions
            .into_iter()
            .map(|transition| PendingWrite::Transition {
                transition,
                reply: tokio::sync::oneshot::channel().0,
            })
            .collect();
        let mut tx = store.begin().await.unwrap();
        let result = SqliteStore::transition_together(&mut tx, &writes).await;
        if result.is_ok() {
            tx.commit().await.unwrap();
        }
        result
    }

    /// Claims, then completions, of several runs go together through the multi-row
    /// statements; a stale version among them refuses the whole group.
    #[tokio::test]
    async fn claims_and_completions_of_several_runs_go_together() {
        let (store, runs, _dir) = store_with_runs(3).await;
        let mut claims = Vec::new();
        for run in &runs {
            let mut transition = moving(&store, run, 1, JobStatus::InProgress).await;
            transition.claims = vec![ClaimInTransition {
                job_id: run.job_ids[0],
                attempt: 1,
                runner_id: RunnerId(1),
                lease: Lease {
                    now_ms: 2_000,
                    deadline_ms: 9_000,
                },
            }];
            claims.push(transition);
        }
        let applied = together(&store, claims).await.unwrap();
        let made: Vec<(i64, JobId)> = applied
            .iter()
            .map(|applied| (applied.state_version, applied.claims[0].job_id))
            .collect();
        let wanted: Vec<(i64, JobId)> = runs.iter().map(|run| (2, run.job_ids[0])).collect();
        assert_eq!(made, wanted);
        assert_eq!(Store::running_attempts(&store).await.unwrap().len(), 3);

        let mut stale = Vec::new();
        for (index, run) in runs.iter().enumerate() {
            let version = if index == 1 { 1 } else { 2 };
            stale.push(moving(&store, run, version, JobStatus::Completed).await);
        }
        assert!(matches!(
            together(&store, stale).await,
            Err(StoreError::Conflict { .. })
        ));

        let mut completions = Vec::new();
        for (run, applied) in runs.iter().zip(&applied) {
            let mut transition = moving(&store, run, 2, JobStatus::Completed).await;
            transition.ended_attempts = vec![EndedAttempt {
                job_id: run.job_ids[0],
                attempt: 1,
                fencing_token: Some(applied.claims[0].fencing_token),
                ended_at_ms: 3_000,
                result: Conclusion::Success,
            }];
            completions.push(transition);
        }
        let versions: Vec<i64> = together(&store, completions)
            .await
            .unwrap()
            .iter()
            .map(|applied| applied.state_version)
            .collect();
        assert_eq!(versions, [3, 3, 3]);
        assert!(Store::running_attempts(&store).await.unwrap().is_empty());
    }

    /// Transitions that leave their run's fields and columns alone go together with those
    /// that write them: every version moves, only the latter's rows change. One that writes
    /// the columns without the fields does not go together.
    #[tokio::test]
    async fn runs_whose_fields_stay_go_together_with_runs_whose_fields_change() {
        let (store, runs, _dir) = store_with_runs(2).await;
        let changing = moving(&store, &runs[0], 1, JobStatus::InProgress).await;
        let mut staying = moving(&store, &runs[1], 1, JobStatus::InProgress).await;
        staying.engine_state.run = None;
        staying.run = None;
        let before = Store::get_run(&store, runs[1].run_id).await.unwrap();
        let applied = together(&store, vec![changing, staying]).await.unwrap();
        let versions: Vec<i64> = applied
            .iter()
            .map(|applied| applied.state_version)
            .collect();
        assert_eq!(versions, [2, 2]);
        let changed = Store::get_run(&store, runs[0].run_id).await.unwrap();
        assert_eq!(
            (changed.status, changed.started_at_ms),
            (RunStatus::InProgress, Some(2_000))
        );
        let stayed = Store::get_run(&store, runs[1].run_id).await.unwrap();
        assert_eq!(
            stayed,
            crate::WorkflowRun {
                state_version: 2,
                ..before
            }
        );

        let mut columns_only = moving(&store, &runs[1], 2, JobStatus::Completed).await;
        columns_only.engine_state.run = None;
        assert!(matches!(
            together(&store, vec![columns_only]).await,
            Err(StoreError::Invalid { .. })
        ));
    }
}
