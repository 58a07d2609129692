//! The HTTP layer: the router and one thin handler per route, each documented for the OpenAPI
//! document (`openapi`). Handlers extract, call one [`App`] operation and answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gantry_proto::v1 as proto;
use gantry_proto::v1::ErrorCode;

use crate::app::App;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiJsonOrDefault, ApiPath, ApiQuery};
use crate::openapi;

type Shared = State<Arc<App>>;
type Answer<T> = Result<axum::Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, axum::Json<T>), ApiError>;

/// The API's router, with the body limit and request logging.
pub fn router(app: Arc<App>, max_body_bytes: usize) -> Router {
    let v1 = Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi_document))
        .route("/orgs", post(create_organization).get(list_organizations))
        .route("/orgs/{org}", get(get_organization))
        .route(
            "/orgs/{org}/repos",
            post(create_repository).get(list_repositories),
        )
        .route("/repos/{org}/{repo}", get(get_repository))
        .route(
            "/repos/{org}/{repo}/runs",
            post(trigger_run).get(list_repository_runs),
        )
        .route("/runs", get(list_runs))
        .route("/runs/{run}", get(get_run))
        .route("/runs/{run}/jobs", get(list_jobs))
        .route("/runs/{run}/jobs/{job}", get(get_job))
        .route("/runs/{run}/cancel", post(cancel_run))
        .route("/runs/{run}/jobs/{job}/cancel", post(cancel_job))
        .route("/runs/{run}/rerun", post(rerun))
        .route("/internal/queue", get(queue))
        .route("/internal/runs/{run}/jobs/{job}/start", post(start_job))
        .route(
            "/internal/runs/{run}/jobs/{job}/complete",
            post(complete_job),
        )
        .merge(crate::runner_routes::routes())
        .merge(crate::hook_routes::routes())
        .merge(crate::job_routes::routes())
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest(proto::PREFIX, v1)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |path| path.as_str().to_owned(),
    );
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(%method, %route, status, elapsed_ms, "request");
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "the route does not accept this method",
    )
}

/// Whether the server is up, and how many jobs are queued.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, body = proto::Health)))]
async fn health(State(app): Shared) -> axum::Json<proto::Health> {
    axum::Json(proto::Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        queued_jobs: u64::try_from(app.queued_count()).unwrap_or(u64::MAX),
    })
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_document() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
        .into_response()
}

/// Creates an organization.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "tenants", request_body = proto::CreateOrganization,
    responses(
        (status = 201, body = proto::Organization),
        (status = 400, body = proto::ErrorBody),
        (status = 409, description = "the name is taken", body = proto::ErrorBody),
    ))]
async fn create_organization(
    State(app): Shared,
    ApiJson(request): ApiJson<proto::CreateOrganization>,
) -> Created<proto::Organization> {
    let org = app.create_organization(request).await?;
    Ok((StatusCode::CREATED, axum::Json(org)))
}

/// Lists organizations, oldest first.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "tenants", params(proto::ListQuery),
    responses((status = 200, body = proto::OrganizationList), (status = 400, body = proto::ErrorBody)))]
async fn list_organizations(
    State(app): Shared,
    ApiQuery(query): ApiQuery<proto::ListQuery>,
) -> Answer<proto::OrganizationList> {
    Ok(axum::Json(app.list_organizations(query).await?))
}

/// Reads an organization.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "tenants",
    params(("org" = String, Path, description = "the organization's name")),
    responses((status = 200, body = proto::Organization), (status = 404, body = proto::ErrorBody)))]
async fn get_organization(
    State(app): Shared,
    ApiPath(org): ApiPath<String>,
) -> Answer<proto::Organization> {
    Ok(axum::Json(app.get_organization(&org).await?))
}

/// Creates a repository in an organization.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/repos", tag = "tenants",
    params(("org" = String, Path, description = "the organization's name")),
    request_body = proto::CreateRepository,
    responses(
        (status = 201, body = proto::Repository),
        (status = 400, body = proto::ErrorBody),
        (status = 404, description = "no such organization", body = proto::ErrorBody),
        (status = 409, description = "the name is taken", body = proto::ErrorBody),
    ))]
async fn create_repository(
    State(app): Shared,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<proto::CreateRepository>,
) -> Created<proto::Repository> {
    let repo = app.create_repository(&org, request).await?;
    Ok((StatusCode::CREATED, axum::Json(repo)))
}

/// Lists the repositories of an organization, oldest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/repos", tag = "tenants",
    params(("org" = String, Path, description = "the organization's name"), proto::ListQuery),
    responses(
        (status = 200, body = proto::RepositoryList),
        (status = 400, body = proto::ErrorBody),
        (status = 404, body = proto::ErrorBody),
    ))]
async fn list_repositories(
    State(app): Shared,
    ApiPath(org): ApiPath<String>,
    ApiQuery(query): ApiQuery<proto::ListQuery>,
) -> Answer<proto::RepositoryList> {
    Ok(axum::Json(app.list_repositories(&org, query).await?))
}

/// Reads a repository.
#[utoipa::path(get, path = "/api/v1/repos/{org}/{repo}", tag = "tenants",
    params(("org" = String, Path), ("repo" = String, Path)),
    responses((status = 200, body = proto::Repository), (status = 404, body = proto::ErrorBody)))]
async fn get_repository(
    State(app): Shared,
    ApiPath((org, repo)): ApiPath<(String, String)>,
) -> Answer<proto::Repository> {
    Ok(axum::Json(app.get_repository(&org, &repo).await?))
}

/// Triggers a run of an inline workflow file. With `Idempotency-Key`, a repeated submission
/// answers 200 with the run the first one created.
#[utoipa::path(post, path = "/api/v1/repos/{org}/{repo}/runs", tag = "runs",
    params(
        ("org" = String, Path), ("repo" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "makes a repeated submission return the same run"),
    ),
    request_body = proto::TriggerRun,
    responses(
        (status = 201, description = "the run was created", body = proto::Run),
        (status = 200, description = "the idempotency key named an earlier run", body = proto::Run),
        (status = 400, body = proto::ErrorBody),
        (status = 404, description = "no such repository", body = proto::ErrorBody),
        (status = 409, description = "the idempotency key was used for another submission", body = proto::ErrorBody),
        (status = 413, body = proto::ErrorBody),
        (status = 422, description = "the workflow is invalid; nothing was stored", body = proto::ErrorBody),
    ))]
async fn trigger_run(
    State(app): Shared,
    ApiPath((org, repo)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<proto::TriggerRun>,
) -> Created<proto::Run> {
    let key = match headers.get(proto::IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| {
            ApiError::invalid_field(proto::IDEMPOTENCY_KEY_HEADER, "must be visible ASCII")
        })?),
    };
    let (run, created) = app.trigger_run(&org, &repo, request, key).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(run)))
}

/// Lists a repository's runs, newest first.
#[utoipa::path(get, path = "/api/v1/repos/{org}/{repo}/runs", tag = "runs",
    params(("org" = String, Path), ("repo" = String, Path), proto::RunListQuery),
    responses((status = 200, body = proto::RunList), (status = 404, body = proto::ErrorBody)))]
async fn list_repository_runs(
    State(app): Shared,
    ApiPath((org, repo)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<proto::RunListQuery>,
) -> Answer<proto::RunList> {
    Ok(axum::Json(app.list_runs(Some((&org, &repo)), query).await?))
}

/// Lists every run on the server, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(proto::RunListQuery),
    responses((status = 200, body = proto::RunList), (status = 400, body = proto::ErrorBody)))]
async fn list_runs(
    State(app): Shared,
    ApiQuery(query): ApiQuery<proto::RunListQuery>,
) -> Answer<proto::RunList> {
    Ok(axum::Json(app.list_runs(None, query).await?))
}

/// Reads a run with its jobs and their waiting reasons.
#[utoipa::path(get, path = "/api/v1/runs/{run}", tag = "runs",
    params(("run" = i64, Path, description = "the run's id")),
    responses((status = 200, body = proto::RunDetail), (status = 404, body = proto::ErrorBody)))]
async fn get_run(State(app): Shared, ApiPath(run): ApiPath<i64>) -> Answer<proto::RunDetail> {
    Ok(axum::Json(app.get_run(run).await?))
}

/// Lists a run's jobs.
#[utoipa::path(get, path = "/api/v1/runs/{run}/jobs", tag = "runs",
    params(("run" = i64, Path, description = "the run's id")),
    responses((status = 200, body = proto::JobList), (status = 404, body = proto::ErrorBody)))]
async fn list_jobs(State(app): Shared, ApiPath(run): ApiPath<i64>) -> Answer<proto::JobList> {
    Ok(axum::Json(app.list_jobs(run).await?))
}

/// Reads a job.
#[utoipa::path(get, path = "/api/v1/runs/{run}/jobs/{job}", tag = "runs",
    params(("run" = i64, Path), ("job" = i64, Path)),
    responses((status = 200, body = proto::Job), (status = 404, body = proto::ErrorBody)))]
async fn get_job(
    State(app): Shared,
    ApiPath((run, job)): ApiPath<(i64, i64)>,
) -> Answer<proto::Job> {
    Ok(axum::Json(app.get_job(run, job).await?))
}

/// Cancels a run: waiting and queued jobs end at once, running ones are asked to stop, and
/// `always()` jobs still run.
#[utoipa::path(post, path = "/api/v1/runs/{run}/cancel", tag = "runs",
    params(("run" = i64, Path)),
    responses(
        (status = 202, body = proto::Run),
        (status = 404, body = proto::ErrorBody),
        (status = 409, description = "the run has completed", body = proto::ErrorBody),
    ))]
async fn cancel_run(State(app): Shared, ApiPath(run): ApiPath<i64>) -> Created<proto::Run> {
    Ok((StatusCode::ACCEPTED, axum::Json(app.cancel_run(run).await?)))
}

/// Cancels one job.
#[utoipa::path(post, path = "/api/v1/runs/{run}/jobs/{job}/cancel", tag = "runs",
    params(("run" = i64, Path), ("job" = i64, Path)),
    responses(
        (status = 202, body = proto::Job),
        (status = 404, body = proto::ErrorBody),
        (status = 409, description = "the job has ended", body = proto::ErrorBody),
    ))]
async fn cancel_job(
    State(app): Shared,
    ApiPath((run, job)): ApiPath<(i64, i64)>,
) -> Created<proto::Job> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(app.cancel_job(run, job).await?),
    ))
}

/// Re-runs a completed run as a new attempt: every job, or with `failed_only` the failed and
/// cancelled jobs and their dependents.
#[utoipa::path(post, path = "/api/v1/runs/{run}/rerun", tag = "runs",
    params(("run" = i64, Path)),
    request_body = proto::Rerun,
    responses(
        (status = 201, body = proto::Run),
        (status = 404, body = proto::ErrorBody),
        (status = 409, description = "the run has not completed, or nothing failed", body = proto::ErrorBody),
    ))]
async fn rerun(
    State(app): Shared,
    ApiPath(run): ApiPath<i64>,
    ApiJsonOrDefault(request): ApiJsonOrDefault<proto::Rerun>,
) -> Created<proto::Run> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.rerun(run, request).await?),
    ))
}

/// The queued jobs, oldest first, as the server's in-memory queue has them (internal: until
/// runners exist, test drivers find work here).
#[utoipa::path(get, path = "/api/v1/internal/queue", tag = "internal", params(proto::ListQuery),
    responses((status = 200, body = proto::JobList)))]
async fn queue(
    State(app): Shared,
    ApiQuery(query): ApiQuery<proto::ListQuery>,
) -> Answer<proto::JobList> {
    Ok(axum::Json(app.queue(query).await?))
}

/// Starts a queued job as the internal runner (internal: until the runner protocol exists).
#[utoipa::path(post, path = "/api/v1/internal/runs/{run}/jobs/{job}/start", tag = "internal",
    params(("run" = i64, Path), ("job" = i64, Path)),
    responses(
        (status = 200, body = proto::Job),
        (status = 404, body = proto::ErrorBody),
        (status = 409, description = "the job is not queued", body = proto::ErrorBody),
    ))]
async fn start_job(
    State(app): Shared,
    ApiPath((run, job)): ApiPath<(i64, i64)>,
) -> Answer<proto::Job> {
    Ok(axum::Json(app.start_job(run, job).await?))
}

/// Completes a job with a conclusion and outputs, starting it first if it is queued
/// (internal: what a runner's result will do once the runner protocol exists).
#[utoipa::path(post, path = "/api/v1/internal/runs/{run}/jobs/{job}/complete", tag = "internal",
    params(("run" = i64, Path), ("job" = i64, Path)),
    request_body = proto::CompleteJob,
    responses(
        (status = 200, body = proto::Job),
        (status = 404, body = proto::ErrorBody),
        (status = 409, description = "the job has ended or is still waiting", body = proto::ErrorBody),
    ))]
async fn complete_job(
    State(app): Shared,
    ApiPath((run, job)): ApiPath<(i64, i64)>,
    ApiJson(request): ApiJson<proto::CompleteJob>,
) -> Answer<proto::Job> {
    Ok(axum::Json(app.complete_job(run, job, request).await?))
}

/// The handlers' OpenAPI path items, for `openapi`.
pub(crate) mod paths {
    pub use super::{
        __path_cancel_job, __path_cancel_run, __path_complete_job, __path_create_organization,
        __path_create_repository, __path_get_job, __path_get_organization, __path_get_repository,
        __path_get_run, __path_health, __path_list_jobs, __path_list_organizations,
        __path_list_repositories, __path_list_repository_runs, __path_list_runs,
        __path_openapi_document, __path_queue, __path_rerun, __path_start_job, __path_trigger_run,
    };
}
