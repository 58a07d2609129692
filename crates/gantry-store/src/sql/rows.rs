//! Reading records out of result rows, the same way on both backends.
//!
//! [`StoreRow`] gives every backend's row the four column readers the store needs (integer and
//! text, each nullable or not); the record readers below use only those, so they are written
//! once. JSON columns are text parsed with serde_json; a column that does not parse, like an
//! unknown status spelling, is [`StoreError::Corrupt`].

use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::error::StoreError;
use crate::ids::{JobId, OrgId, RepoId, RunId, RunnerId};
use crate::model::{
    EngineState, FencingToken, JOBS_MEMBER, Job, JobAttempt, Organization, QueuedJob, Repository,
    RunningAttempt, StepResult, WorkflowRun,
};
use crate::status::{Conclusion, JobStatus, RunStatus, StepStatus};

/// The column readers of a row.
pub(super) trait StoreRow {
    /// A non-null integer column.
    fn int(&self, column: &'static str) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError>;
    /// A non-null text column.
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError>;
}

impl<R> StoreRow for R
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    fn int(&self, column: &'static str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

/// The `id` column.
pub(super) fn id(row: &impl StoreRow) -> Result<i64, StoreError> {
    row.int("id")
}

fn json<T: DeserializeOwned>(row: &impl StoreRow, column: &'static str) -> Result<T, StoreError> {
    let text = row.text(column)?;
    serde_json::from_str(&text)
        .map_err(|error| StoreError::corrupt(format!("column `{column}` is not valid: {error}")))
}

/// A nullable JSON column.
pub(super) fn opt_json<T: DeserializeOwned>(
    row: &impl StoreRow,
    column: &'static str,
) -> Result<Option<T>, StoreError> {
    row.opt_text(column)?
        .map(|text| {
            serde_json::from_str(&text).map_err(|error| {
                StoreError::corrupt(format!("column `{column}` is not valid: {error}"))
            })
        })
        .transpose()
}

fn conclusion(row: &impl StoreRow, column: &'static str) -> Result<Option<Conclusion>, StoreError> {
    row.opt_text(column)?
        .map(|text| Conclusion::parse(&text))
        .transpose()
}

pub(super) fn organization(row: &impl StoreRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: OrgId(row.int("id")?),
        name: row.text("name")?,
        weight: row.int("weight")?,
        hosted_concurrency_limit: row.opt_int("hosted_concurrency_limit")?,
    })
}

pub(super) fn repository(row: &impl StoreRow) -> Result<Repository, StoreError> {
    Ok(Repository {
        id: RepoId(row.int("id")?),
        org_id: OrgId(row.int("org_id")?),
        name: row.text("name")?,
        default_branch: row.text("default_branch")?,
    })
}

pub(super) fn run(row: &impl StoreRow) -> Result<WorkflowRun, StoreError> {
    Ok(WorkflowRun {
        id: RunId(row.int("id")?),
        repo_id: RepoId(row.int("repo_id")?),
        workflow_path: row.text("workflow_path")?,
        workflow_name: row.text("workflow_name")?,
        run_number: row.int("run_number")?,
        attempt: row.int("attempt")?,
        event_name: row.text("event_name")?,
        git_ref: row.text("git_ref")?,
        sha: row.text("sha")?,
        actor: row.text("actor")?,
        status: RunStatus::parse(&row.text("status")?)?,
        conclusion: conclusion(row, "conclusion")?,
        created_at_ms: row.int("created_at_ms")?,
        started_at_ms: row.opt_int("started_at_ms")?,
        completed_at_ms: row.opt_int("completed_at_ms")?,
        state_version: row.int("state_version")?,
        idempotency_key: row.opt_text("idempotency_key")?,
        workflow_errors: match row.opt_text("workflow_errors")? {
            Some(_) => json(row, "workflow_errors")?,
            None => Vec::new(),
        },
    })
}

/// A run's engine state from its parts ([`q::SELECT_ENGINE_STATE`]'s rows: the run's, then
/// its jobs' by index); `None` when the run does not exist.
///
/// The document is the one the run was created with, its run fields replaced by the last
/// transition that wrote them (`engine_run`) and each job by its last written state (see
/// [`crate::StateChange`]).
///
/// [`q::SELECT_ENGINE_STATE`]: super::queries::SELECT_ENGINE_STATE
pub(super) fn engine_state(
    run_id: RunId,
    parts: &[impl StoreRow],
) -> Result<Option<EngineState>, StoreError> {
    let Some((run, jobs)) = parts.split_first() else {
        return Ok(None);
    };
    if run.int("job_index")? != -1 {
        // Job states without their run's row (which the foreign key rules out): no run.
        return Ok(None);
    }
    let created: Value = json(run, "state")?;
    let mut document = match opt_json::<Value>(run, "engine_run")? {
        None => created,
        Some(mut fields) => {
            if let (Value::Object(fields), Value::Object(mut created)) = (&mut fields, created)
                && let Some(jobs) = created.remove(JOBS_MEMBER)
            {
                fields.insert(JOBS_MEMBER.to_owned(), jobs);
            }
            fields
        }
    };
    if !jobs.is_empty() {
        let Some(Value::Array(states)) = document.get_mut(JOBS_MEMBER) else {
            return Err(StoreError::corrupt(format!(
                "run {run_id} has job states but its document has no `{JOBS_MEMBER}` array"
            )));
        };
        for job in jobs {
            let index = job.int("job_index")?;
            let count = states.len();
            let slot = usize::try_from(index)
                .ok()
                .and_then(|index| states.get_mut(index))
                .ok_or_else(|| {
                    StoreError::corrupt(format!(
                        "run {run_id} has a state for job {index} of {count}"
                    ))
                })?;
            *slot = json(job, "state")?;
        }
    }
    Ok(Some(EngineState {
        run_id,
        document,
        spec: opt_json(run, "engine_spec")?,
        version: run.int("state_version")?,
    }))
}

pub(super) fn job(row: &impl StoreRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: JobId(row.int("id")?),
        run_id: RunId(row.int("run_id")?),
        job_key: row.text("job_key")?,
        matrix_index: row.int("matrix_index")?,
        name: row.text("name")?,
        status: JobStatus::parse(&row.text("status")?)?,
        conclusion: conclusion(row, "conclusion")?,
        attempt: row.int("attempt")?,
        runs_on: json(row, "runs_on")?,
        waiting_reasons: json(row, "waiting_reasons")?,
        outputs: json(row, "outputs")?,
        priority: row.int("priority")?,
        queued_at_ms: row.opt_int("queued_at_ms")?,
        started_at_ms: row.opt_int("started_at_ms")?,
        completed_at_ms: row.opt_int("completed_at_ms")?,
    })
}

pub(super) fn queued_job(row: &impl StoreRow) -> Result<QueuedJob, StoreError> {
    Ok(QueuedJob {
        job: job(row)?,
        repo_id: RepoId(row.int("repo_id")?),
        org_id: OrgId(row.int("org_id")?),
    })
}

pub(super) fn attempt(row: &impl StoreRow) -> Result<JobAttempt, StoreError> {
    Ok(JobAttempt {
        job_id: JobId(row.int("job_id")?),
        attempt: row.int("attempt")?,
        runner_id: row.opt_int("runner_id")?.map(RunnerId),
        fencing_token: row.opt_int("fencing_token")?.map(FencingToken),
        lease_deadline_ms: row.opt_int("lease_deadline_ms")?,
        started_at_ms: row.opt_int("started_at_ms")?,
        ended_at_ms: row.opt_int("ended_at_ms")?,
        result: conclusion(row, "result")?,
    })
}

pub(super) fn running_attempt(row: &impl StoreRow) -> Result<RunningAttempt, StoreError> {
    Ok(RunningAttempt {
        job_id: JobId(row.int("job_id")?),
        run_id: RunId(row.int("run_id")?),
        repo_id: RepoId(row.int("repo_id")?),
        org_id: OrgId(row.int("org_id")?),
        attempt: row.int("attempt")?,
        runner_id: row.opt_int("runner_id")?.map(RunnerId),
        fencing_token: FencingToken(row.int("fencing_token")?),
        lease_deadline_ms: row.opt_int("lease_deadline_ms")?,
        started_at_ms: row.opt_int("started_at_ms")?,
    })
}

pub(super) fn step_result(row: &impl StoreRow) -> Result<StepResult, StoreError> {
    Ok(StepResult {
        job_id: JobId(row.int("job_id")?),
        attempt: row.int("attempt")?,
        step_index: row.int("step_index")?,
        name: row.text("name")?,
        status: StepStatus::parse(&row.text("status")?)?,
        conclusion: conclusion(row, "conclusion")?,
        started_at_ms: row.opt_int("started_at_ms")?,
        ended_at_ms: row.opt_int("ended_at_ms")?,
    })
}

pub(super) fn runner(row: &impl StoreRow) -> Result<crate::runners::RunnerRecord, StoreError> {
    Ok(crate::runners::RunnerRecord {
        id: RunnerId(row.int("id")?),
        org_id: row.opt_int("org_id")?.map(OrgId),
        name: row.text("name")?,
        labels: json(row, "labels")?,
        capacity: row.int("capacity")?,
        ephemeral: row.int("ephemeral")? != 0,
        credential_hash: row.text("credential_hash")?,
        registered_at_ms: row.int("registered_at_ms")?,
        removed_at_ms: row.opt_int("removed_at_ms")?,
        runner_group: row.opt_text("runner_group")?,
        repo_ids: opt_json(row, "repo_ids")?,
    })
}

pub(super) fn log_line(row: &impl StoreRow) -> Result<crate::runners::LogLineRecord, StoreError> {
    Ok(crate::runners::LogLineRecord {
        seq: row.int("seq")?,
        attempt: row.int("attempt")?,
        step_index: row.int("step_index")?,
        line_number: row.int("line_number")?,
        time_ms: row.int("time_ms")?,
        text: row.text("text")?,
    })
}
