//! Operator routes about one job: reading it by id alone (`GET /jobs/{job}`, what
//! `gantry jobs why` asks) and changing its priority (`POST /runs/{run}/jobs/{job}/priority`).
//!
//! A priority change is made outside the engine (the engine's state has no priority), so it is
//! its own store transaction that also moves the run's state version: a transition computed
//! from the job's old row is then refused and recomputed, and never writes the old priority
//! back. The fair queue orders by priority only among the jobs of one run (organizations,
//! repositories and runs come first), and waiting jobs age, so a low priority is never starved.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use gantry_proto::v1 as proto;
use gantry_store::{JobId, JobStatus, StoreError};

use crate::app::App;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};

type Shared = State<Arc<App>>;
type Answer<T> = Result<axum::Json<T>, ApiError>;

/// The routes of this module, to be nested under the API prefix.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/jobs/{job}", get(get_job_by_id))
        .route("/runs/{run}/jobs/{job}/priority", post(set_job_priority))
}

impl App {
    /// `GET /jobs/{job}`: a job by its id, with why it waits.
    pub async fn job_by_id(&self, job_id: i64) -> Result<proto::Job, ApiError> {
        match self.store.get_job(JobId(job_id)).await {
            Ok(job) => self.job_view(job.id).await,
            Err(StoreError::NotFound { .. }) => {
                Err(ApiError::not_found(format!("job {job_id} not found")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// `POST /runs/{run}/jobs/{job}/priority`: stores the priority, then moves the job in the
    /// fair queue if it waits there. A completed job is a conflict.
    pub async fn set_job_priority(
        &self,
        run_id: i64,
        job_id: i64,
        request: proto::SetJobPriority,
    ) -> Result<proto::Job, ApiError> {
        let job = self.job_record(run_id, job_id).await?;
        if job.status == JobStatus::Completed {
            return Err(ApiError::conflict(format!(
                "job {job_id} has completed; its priority no longer matters"
            )));
        }
        let job = self
            .store
            .set_job_priority(job.id, i64::from(request.priority))
            .await?;
        // The cached rows hold the old priority and the old state version.
        self.forget_cached_run(job.run_id);
        self.dispatch.set_priority(job.id, request.priority);
        tracing::info!(run_id = %job.run_id, job_id = %job.id, priority = request.priority, "job priority set");
        self.job_view(job.id).await
    }
}

/// Reads a job by its id alone, with why it waits (the engine's and the dispatcher's reasons).
#[utoipa::path(get, path = "/api/v1/jobs/{job}", tag = "runs",
    params(("job" = i64, Path, description = "the job's id")),
    responses((status = 200, body = proto::Job), (status = 404, body = proto::ErrorBody)))]
async fn get_job_by_id(State(app): Shared, ApiPath(job): ApiPath<i64>) -> Answer<proto::Job> {
    Ok(axum::Json(app.job_by_id(job).await?))
}

/// Changes a job's priority: higher goes first among the queued jobs of its run.
#[utoipa::path(post, path = "/api/v1/runs/{run}/jobs/{job}/priority", tag = "runs",
    params(("run" = i64, Path), ("job" = i64, Path)),
    request_body = proto::SetJobPriority,
    responses(
        (status = 200, body = proto::Job),
        (status = 404, body = proto::ErrorBody),
        (status = 409, description = "the job has completed", body = proto::ErrorBody),
    ))]
async fn set_job_priority(
    State(app): Shared,
    ApiPath((run, job)): ApiPath<(i64, i64)>,
    ApiJson(request): ApiJson<proto::SetJobPriority>,
) -> Answer<proto::Job> {
    Ok(axum::Json(app.set_job_priority(run, job, request).await?))
}

/// The handlers' OpenAPI path items, for `openapi`.
pub(crate) mod paths {
    pub use super::{__path_get_job_by_id, __path_set_job_priority};
}
