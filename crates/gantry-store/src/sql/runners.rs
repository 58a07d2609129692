//! The runner side of the store: registration tokens, runners, step reports and job logs.
//!
//! Every call about a claimed job is checked against the job's latest fencing token inside
//! its own write transaction ([`rq::HELD_ATTEMPT`]), so a runner that lost its job (lease
//! expired, job re-queued elsewhere) can change nothing of it, even in a race with the claim
//! that replaced it.

use sqlx::{ColumnIndex, Executor, IntoArguments, Type};

use super::rows::{self, StoreRow};
use super::runner_queries as rq;
use super::{Backend, SqlStore, require_at_least, require_text, to_json};
use crate::error::StoreError;
use crate::ids::{JobId, RunId, RunnerId};
use crate::model::{FencingToken, StepResult};
use crate::runners::{
    LogAppend, LogLineRecord, NewRegistrationToken, NewRunner, RunnerRecord, StepReported,
};
use crate::status::StepStatus;

/// The attempt a token holds and how many log lines it has sent.
struct HeldAttempt {
    attempt: i64,
    log_lines: i64,
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB>,
    for<'q> String: sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    pub(super) async fn save_registration_token(
        &self,
        token: NewRegistrationToken,
    ) -> Result<(), StoreError> {
        require_text("token hash", &token.token_hash)?;
        if token.org_id.is_none() && (token.runner_group.is_some() || token.repo_ids.is_some()) {
            return Err(StoreError::invalid(
                "hosted runners belong to no runner group",
            ));
        }
        let repo_ids = token
            .repo_ids
            .as_ref()
            .map(|ids| to_json("repository ids", ids))
            .transpose()?;
        sqlx::query(rq::SAVE_REGISTRATION_TOKEN)
            .bind(token.token_hash.as_str())
            .bind(token.org_id.map(|org| org.0))
            .bind(token.created_at_ms)
            .bind(token.expires_at_ms)
            .bind(token.runner_group.as_deref())
            .bind(repo_ids.as_deref())
            .execute(&self.writes)
            .await
            .map_err(|error| {
                if StoreError::is_foreign_key_violation(&error) {
                    StoreError::not_found(format!(
                        "organization {}",
                        token.org_id.map_or(0, |org| org.0)
                    ))
                } else {
                    StoreError::Database(error)
                }
            })?;
        Ok(())
    }

    pub(super) async fn register_runner(
        &self,
        runner: NewRunner,
    ) -> Result<RunnerRecord, StoreError> {
        require_text("runner name", &runner.name)?;
        require_at_least("runner capacity", runner.capacity, 1)?;
        require_text("credential hash", &runner.credential_hash)?;
        let labels = to_json("runner labels", &runner.labels)?;
        let mut tx = self.begin().await?;
        let token = sqlx::query(rq::VALID_REGISTRATION_TOKEN)
            .bind(runner.token_hash.as_str())
            .bind(runner.now_ms)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("registration token (unknown or expired)"))?;
        let org_id = token.opt_int("org_id")?;
        // The runner inherits the token's group and repositories, copied so that a token
        // that expires later changes nothing of the runners it registered.
        let runner_group = token.opt_text("runner_group")?;
        let repo_ids = token.opt_text("repo_ids")?;
        let row = sqlx::query(sqlx::AssertSqlSafe(rq::insert_runner()))
            .bind(org_id)
            .bind(runner.name.as_str())
            .bind(labels.as_str())
            .bind(runner.capacity)
            .bind(i64::from(runner.ephemeral))
            .bind(runner.credential_hash.as_str())
            .bind(runner.now_ms)
            .bind(runner_group.as_deref())
            .bind(repo_ids.as_deref())
            .fetch_one(&mut *tx)
            .await?;
        let record = rows::runner(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn get_runner(&self, id: RunnerId) -> Result<RunnerRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(rq::get_runner()))
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("runner {id}")))?;
        rows::runner(&row)
    }

    pub(super) async fn list_runners(&self) -> Result<Vec<RunnerRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(rq::list_runners()))
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(rows::runner).collect()
    }

    pub(super) async fn remove_runner(&self, id: RunnerId, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(rq::REMOVE_RUNNER)
            .bind(id.0)
            .bind(now_ms)
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// The attempt `token` holds, or why it holds none.
    async fn held_attempt(
        conn: &mut DB::Connection,
        job_id: JobId,
        token: FencingToken,
    ) -> Result<HeldAttempt, StoreError> {
        let row = sqlx::query(rq::HELD_ATTEMPT)
            .bind(job_id.0)
            .bind(token.0)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok(HeldAttempt {
                attempt: row.int("attempt")?,
                log_lines: row.int("log_lines")?,
            }),
            None => Err(StoreError::StaleToken {
                what: format!(
                    "fencing token {token} is not the latest of job {job_id}, or its attempt has ended"
                ),
            }),
        }
    }

    pub(super) async fn report_step(
        &self,
        token: FencingToken,
        step: StepResult,
    ) -> Result<StepReported, StoreError> {
        require_at_least("step index", step.step_index, 0)?;
        require_text("step name", &step.name)?;
        let mut tx = self.begin().await?;
        let held = Self::held_attempt(&mut tx, step.job_id, token).await?;
        if held.attempt != step.attempt {
            return Err(StoreError::StaleToken {
                what: format!(
                    "fencing token {token} holds attempt {} of job {}, not {}",
                    held.attempt, step.job_id, step.attempt
                ),
            });
        }
        let index = step.step_index;
        let existing = sqlx::query(rq::STEP_OF_ATTEMPT)
            .bind(step.job_id.0)
            .bind(step.attempt)
            .bind(index)
            .fetch_optional(&mut *tx)
            .await?;
        // A step stored as queued has not started: the same as no row.
        let existing = match existing {
            Some(row) => Some((
                StepStatus::parse(&row.text("status")?)?,
                row.opt_text("conclusion")?,
            ))
            .filter(|(status, _)| *status != StepStatus::Queued),
            None => None,
        };
        let refused = |what: String| Err(StoreError::conflict(what));
        match (step.status, existing) {
            (StepStatus::InProgress, None) => {
                let last = sqlx::query(rq::LAST_STEP_OF_ATTEMPT)
                    .bind(step.job_id.0)
                    .bind(step.attempt)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(last) = last {
                    let last_index = last.int("step_index")?;
                    if last_index > index {
                        return refused(format!(
                            "step {index} reported after step {last_index}: steps run in order"
                        ));
                    }
                    if StepStatus::parse(&last.text("status")?)? == StepStatus::InProgress {
                        return refused(format!(
                            "step {index} started while step {last_index} has not ended"
                        ));
                    }
                }
            }
            (StepStatus::InProgress, Some((StepStatus::InProgress, _))) => {
                return Ok(StepReported::Duplicate);
            }
            (StepStatus::Completed, Some((StepStatus::Completed, conclusion))) => {
                let same =
                    conclusion.as_deref() == step.conclusion.map(|conclusion| conclusion.as_str());
                return if same {
                    Ok(StepReported::Duplicate)
                } else {
                    refused(format!("step {index} already ended differently"))
                };
            }
            (StepStatus::InProgress, Some((StepStatus::Completed, _))) => {
                return refused(format!("step {index} has already ended"));
            }
            (StepStatus::Completed, None) => {
                return refused(format!("step {index} ended without having started"));
            }
            (StepStatus::Completed, Some((StepStatus::InProgress, _))) => {}
            (_, Some((StepStatus::Queued, _))) | (StepStatus::Queued, _) => {
                return Err(StoreError::invalid(format!(
                    "step {index}: a runner reports steps started or ended, not queued"
                )));
            }
        }
        Self::upsert_step_result(&mut tx, &step).await?;
        tx.commit().await?;
        Ok(StepReported::Stored)
    }

    pub(super) async fn append_log(&self, append: LogAppend) -> Result<i64, StoreError> {
        require_at_least("log offset", append.offset, 0)?;
        let mut tx = self.begin().await?;
        let held = Self::held_attempt(&mut tx, append.job_id, append.fencing_token).await?;
        if append.offset > held.log_lines {
            return Err(StoreError::conflict(format!(
                "log chunk at offset {} leaves a gap: the server has {} lines of attempt {}",
                append.offset, held.log_lines, held.attempt
            )));
        }
        // A retried chunk overlaps what is stored: keep only what is new.
        let skip = usize::try_from(held.log_lines - append.offset).unwrap_or(usize::MAX);
        let new_lines = append.lines.get(skip..).unwrap_or_default();
        if new_lines.is_empty() {
            return Ok(held.log_lines);
        }
        let mut seq = sqlx::query(rq::NEXT_LOG_SEQ)
            .bind(append.job_id.0)
            .fetch_one(&mut *tx)
            .await?
            .int("next")?;
        for chunk in new_lines.chunks(rq::INSERT_LOG_CHUNK) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(rq::insert_log_lines(chunk.len())));
            for line in chunk {
                query = query
                    .bind(append.job_id.0)
                    .bind(seq)
                    .bind(held.attempt)
                    .bind(line.step_index)
                    .bind(line.line_number)
                    .bind(line.time_ms)
                    .bind(line.text.as_str());
                seq += 1;
            }
            query.execute(&mut *tx).await?;
        }
        let stored = held.log_lines + i64::try_from(new_lines.len()).unwrap_or(i64::MAX);
        sqlx::query(rq::SET_LOG_LINES)
            .bind(append.job_id.0)
            .bind(held.attempt)
            .bind(stored)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    pub(super) async fn read_log(
        &self,
        job_id: JobId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LogLineRecord>, StoreError> {
        let rows = sqlx::query(rq::READ_LOG)
            .bind(job_id.0)
            .bind(after.unwrap_or(-1))
            .bind(i64::from(limit))
            .fetch_all(&self.reads)
            .await?;
        if rows.is_empty() {
            self.require_row(super::queries::JOB_EXISTS, job_id.0, || {
                format!("job {job_id}")
            })
            .await?;
        }
        rows.iter().map(rows::log_line).collect()
    }

    pub(super) async fn workflow_source(&self, run_id: RunId) -> Result<String, StoreError> {
        let row = sqlx::query(rq::WORKFLOW_SOURCE)
            .bind(run_id.0)
            .fetch_optional(&self.reads)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("run {run_id}")))?;
        row.text("workflow_source")
    }

    pub(super) async fn called_workflows(
        &self,
        run_id: RunId,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        let row = sqlx::query(rq::CALLED_WORKFLOWS)
            .bind(run_id.0)
            .fetch_optional(&self.reads)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("run {run_id}")))?;
        let text = row.text("called_workflows")?;
        serde_json::from_str(&text).map_err(|error| {
            StoreError::corrupt(format!("called workflows of run {run_id}: {error}"))
        })
    }
}
