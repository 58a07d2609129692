//! The HTTP surface of the runner protocol and of job logs: one thin handler per route, each
//! documented for the OpenAPI document, as in `routes`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gantry_proto::v1 as proto;
use gantry_proto::v1::ErrorCode;
use gantry_store::{JobId, RunnerId};

use crate::app::App;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiJsonOrDefault, ApiPath, ApiQuery};

type Shared = State<Arc<App>>;
type Answer<T> = Result<axum::Json<T>, ApiError>;

/// The routes of this module, to be nested under the API prefix.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/orgs/{org}/runner-tokens", post(create_registration_token))
        .route("/runners", get(list_runners))
        .route("/runners/register", post(register_runner))
        .route("/runner/claim", post(claim_job))
        .route("/runner/claims", post(claim_jobs))
        .route("/runner/results", post(report_results))
        .route("/runner/jobs/{job}/heartbeat", post(heartbeat))
        .route("/runner/jobs/{job}/steps", post(report_step))
        .route("/runner/jobs/{job}/logs", post(append_log))
        .route("/runner/jobs/{job}/complete", post(complete_attempt))
        .route("/runner/jobs/{job}/source", get(job_source))
        .route("/jobs/{job}/logs", get(job_log))
        .route("/jobs/{job}/logs/stream", get(job_log_stream))
}

/// The runner a request comes from, by its `Authorization: Bearer` credential.
pub(crate) struct RunnerAuth(RunnerId);

impl FromRequestParts<Arc<App>> for RunnerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "missing `Authorization: Bearer <runner credential>`",
                )
            })?;
        let credential = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "the Authorization header is not `Bearer <runner credential>`",
                )
            })?;
        let runner = app.authenticate_runner(credential.trim()).await;
        if let Err(error) = &runner {
            tracing::warn!(error = %error, "runner call refused");
        }
        runner.map(RunnerAuth)
    }
}

/// Makes a registration token for an organization's self-hosted runners.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/runner-tokens", tag = "runners",
    params(("org" = String, Path, description = "the organization's name")),
    request_body = proto::CreateRegistrationToken,
    responses((status = 201, body = proto::RegistrationToken), (status = 404, body = proto::ErrorBody)))]
async fn create_registration_token(
    State(app): Shared,
    ApiPath(org): ApiPath<String>,
    ApiJsonOrDefault(request): ApiJsonOrDefault<proto::CreateRegistrationToken>,
) -> Result<(StatusCode, axum::Json<proto::RegistrationToken>), ApiError> {
    let token = app.create_registration_token(&org, request).await?;
    Ok((StatusCode::CREATED, axum::Json(token)))
}

/// Lists the registered runners.
#[utoipa::path(get, path = "/api/v1/runners", tag = "runners",
    responses((status = 200, body = proto::RunnerList)))]
async fn list_runners(State(app): Shared) -> Answer<proto::RunnerList> {
    Ok(axum::Json(app.list_runners().await?))
}

/// Registers a runner with a registration token; answers its credential.
#[utoipa::path(post, path = "/api/v1/runners/register", tag = "runners",
    request_body = proto::RegisterRunner,
    responses(
        (status = 201, body = proto::RunnerRegistration),
        (status = 400, description = "bad labels, capacity or protocol version", body = proto::ErrorBody),
        (status = 401, description = "unknown or expired registration token", body = proto::ErrorBody),
    ))]
async fn register_runner(
    State(app): Shared,
    ApiJson(request): ApiJson<proto::RegisterRunner>,
) -> Result<(StatusCode, axum::Json<proto::RunnerRegistration>), ApiError> {
    let registration = app.register_runner(request).await?;
    Ok((StatusCode::CREATED, axum::Json(registration)))
}

/// Claims a job the runner can run, waiting up to `wait_ms` for one.
#[utoipa::path(post, path = "/api/v1/runner/claim", tag = "runners",
    request_body = proto::ClaimJob,
    responses(
        (status = 200, body = proto::JobAssignment),
        (status = 204, description = "no job within `wait_ms`"),
        (status = 401, body = proto::ErrorBody),
        (status = 409, description = "the runner holds as many jobs as its capacity", body = proto::ErrorBody),
    ))]
async fn claim_job(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiJsonOrDefault(request): ApiJsonOrDefault<proto::ClaimJob>,
) -> Result<Response, ApiError> {
    Ok(match app.claim(runner, request).await? {
        Some(assignment) => axum::Json(assignment).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Claims up to `max_jobs` jobs the runner can run (no more than its free capacity), waiting
/// up to `wait_ms` for the first.
#[utoipa::path(post, path = "/api/v1/runner/claims", tag = "runners",
    request_body = proto::ClaimJobs,
    responses(
        (status = 200, body = proto::JobAssignments, description = "the jobs claimed; none if nothing came within `wait_ms`"),
        (status = 400, description = "`max_jobs` or `wait_ms` out of range", body = proto::ErrorBody),
        (status = 401, body = proto::ErrorBody),
        (status = 409, description = "the runner holds as many jobs as its capacity", body = proto::ErrorBody),
    ))]
async fn claim_jobs(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiJson(request): ApiJson<proto::ClaimJobs>,
) -> Answer<proto::JobAssignments> {
    Ok(axum::Json(app.claim_jobs(runner, request).await?))
}

/// Extends a claimed job's lease; answers whether the job was cancelled.
#[utoipa::path(post, path = "/api/v1/runner/jobs/{job}/heartbeat", tag = "runners",
    params(("job" = i64, Path)), request_body = proto::Heartbeat,
    responses(
        (status = 200, body = proto::HeartbeatAnswer),
        (status = 404, description = "the runner does not hold the job", body = proto::ErrorBody),
        (status = 409, description = "`stale_token`: the runner lost the job and must stop it", body = proto::ErrorBody),
    ))]
async fn heartbeat(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiPath(job): ApiPath<i64>,
    ApiJson(request): ApiJson<proto::Heartbeat>,
) -> Answer<proto::HeartbeatAnswer> {
    Ok(axum::Json(app.heartbeat(runner, JobId(job), &request)?))
}

/// Reports that a step started or ended.
#[utoipa::path(post, path = "/api/v1/runner/jobs/{job}/steps", tag = "runners",
    params(("job" = i64, Path)), request_body = proto::StepReport,
    responses(
        (status = 204, description = "stored (or a repeat of a stored report)"),
        (status = 409, description = "out of order, or `stale_token`", body = proto::ErrorBody),
    ))]
async fn report_step(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiPath(job): ApiPath<i64>,
    ApiJson(report): ApiJson<proto::StepReport>,
) -> Result<StatusCode, ApiError> {
    app.report_step(runner, JobId(job), report).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Appends the next lines of the attempt's log.
#[utoipa::path(post, path = "/api/v1/runner/jobs/{job}/logs", tag = "runners",
    params(("job" = i64, Path)), request_body = proto::LogChunk,
    responses(
        (status = 200, body = proto::LogChunkAccepted),
        (status = 400, description = "too many lines, or a line too long", body = proto::ErrorBody),
        (status = 409, description = "a gap in the log, or `stale_token`", body = proto::ErrorBody),
    ))]
async fn append_log(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiPath(job): ApiPath<i64>,
    ApiJson(chunk): ApiJson<proto::LogChunk>,
) -> Answer<proto::LogChunkAccepted> {
    Ok(axum::Json(app.append_log(runner, JobId(job), chunk).await?))
}

/// Reports the attempt's result.
#[utoipa::path(post, path = "/api/v1/runner/jobs/{job}/complete", tag = "runners",
    params(("job" = i64, Path)), request_body = proto::CompleteAttempt,
    responses(
        (status = 204, description = "the result was taken"),
        (status = 409, description = "`stale_token`: the attempt had already ended", body = proto::ErrorBody),
    ))]
async fn complete_attempt(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiPath(job): ApiPath<i64>,
    ApiJson(request): ApiJson<proto::CompleteAttempt>,
) -> Result<StatusCode, ApiError> {
    app.complete_attempt(runner, JobId(job), request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reports several attempts' results; each is taken or refused on its own.
#[utoipa::path(post, path = "/api/v1/runner/results", tag = "runners",
    request_body = proto::JobResults,
    responses(
        (status = 200, body = proto::JobResultOutcomes, description = "one outcome per result, in order"),
        (status = 400, description = "no result, too many, or a job twice", body = proto::ErrorBody),
    ))]
async fn report_results(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiJson(request): ApiJson<proto::JobResults>,
) -> Answer<proto::JobResultOutcomes> {
    Ok(axum::Json(app.report_results(runner, request).await?))
}

/// The run's commit as a tar archive, for `actions/checkout`.
#[utoipa::path(get, path = "/api/v1/runner/jobs/{job}/source", tag = "runners",
    params(("job" = i64, Path), proto::SourceQuery),
    responses(
        (status = 200, description = "a tar archive of the run's commit", content_type = "application/x-tar"),
        (status = 404, description = "no git source, another repository, or the commit is missing", body = proto::ErrorBody),
        (status = 409, description = "`stale_token`", body = proto::ErrorBody),
    ))]
async fn job_source(
    State(app): Shared,
    RunnerAuth(runner): RunnerAuth,
    ApiPath(job): ApiPath<i64>,
    ApiQuery(query): ApiQuery<proto::SourceQuery>,
) -> Result<Response, ApiError> {
    let archive = app.job_source(runner, JobId(job), query).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        archive,
    )
        .into_response())
}

/// A page of a job's log.
#[utoipa::path(get, path = "/api/v1/jobs/{job}/logs", tag = "runs",
    params(("job" = i64, Path), proto::LogQuery),
    responses((status = 200, body = proto::JobLog), (status = 404, body = proto::ErrorBody)))]
async fn job_log(
    State(app): Shared,
    ApiPath(job): ApiPath<i64>,
    ApiQuery(query): ApiQuery<proto::LogQuery>,
) -> Answer<proto::JobLog> {
    Ok(axum::Json(app.job_log(job, query).await?))
}

/// The job's log as Server-Sent Events (`event: line`, id = `seq`, data = `JobLogLine`),
/// resuming after `Last-Event-ID`; `event: end` once the job has ended.
#[utoipa::path(get, path = "/api/v1/jobs/{job}/logs/stream", tag = "runs",
    params(("job" = i64, Path), ("Last-Event-ID" = Option<String>, Header, description = "resume after this seq")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream"), (status = 404, body = proto::ErrorBody)))]
async fn job_log_stream(
    State(app): Shared,
    ApiPath(job): ApiPath<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let last_seen = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|value| value.trim().parse::<i64>().ok())
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        "Last-Event-ID is not a line's seq number",
                    )
                })?,
        ),
    };
    Ok(app.job_log_stream(job, last_seen).await?.into_response())
}

pub(crate) mod paths {
    pub use super::{
        __path_append_log, __path_claim_job, __path_claim_jobs, __path_complete_attempt,
        __path_create_registration_token, __path_heartbeat, __path_job_log, __path_job_log_stream,
        __path_job_source, __path_list_runners, __path_register_runner, __path_report_results,
        __path_report_step,
    };
}
