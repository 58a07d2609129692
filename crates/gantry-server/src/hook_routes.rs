//! The HTTP surface of the git triggers: repository sources, the GitHub webhook endpoint and
//! the push reports of `post-receive` hooks, documented for the OpenAPI document as in
//! `routes`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use gantry_proto::v1 as proto;

use crate::app::App;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, body_rejection};
use crate::hooks::WebhookHeaders;

type Shared = State<Arc<App>>;
type Answer<T> = Result<axum::Json<T>, ApiError>;

/// The routes of this module, to be nested under the API prefix.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/repos/{org}/{repo}/source",
            get(get_repository_source).put(set_repository_source),
        )
        .route("/repos/{org}/{repo}/hooks/push", post(receive_push))
        .route("/hooks/github", post(github_webhook))
}

/// Sets where the server reads a repository's git data and the secret its webhooks are
/// signed with.
#[utoipa::path(put, path = "/api/v1/repos/{org}/{repo}/source", tag = "triggers",
    params(("org" = String, Path, description = "the organization's name"),
           ("repo" = String, Path, description = "the repository's name")),
    request_body = proto::SetRepositorySource,
    responses((status = 200, body = proto::RepositorySource),
              (status = 400, description = "the path does not open as a git repository", body = proto::ErrorBody),
              (status = 404, body = proto::ErrorBody)))]
async fn set_repository_source(
    State(app): Shared,
    ApiPath((org, repo)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<proto::SetRepositorySource>,
) -> Answer<proto::RepositorySource> {
    Ok(axum::Json(
        app.set_repository_source(&org, &repo, request).await?,
    ))
}

/// A repository's git source (the webhook secret is never returned).
#[utoipa::path(get, path = "/api/v1/repos/{org}/{repo}/source", tag = "triggers",
    params(("org" = String, Path, description = "the organization's name"),
           ("repo" = String, Path, description = "the repository's name")),
    responses((status = 200, body = proto::RepositorySource),
              (status = 404, description = "no such repository, or it has no git source", body = proto::ErrorBody)))]
async fn get_repository_source(
    State(app): Shared,
    ApiPath((org, repo)): ApiPath<(String, String)>,
) -> Answer<proto::RepositorySource> {
    Ok(axum::Json(app.get_repository_source(&org, &repo).await?))
}

/// What a `post-receive` hook saw: each updated ref starts the workflows GitHub would start
/// for it (`push`, and `create` or `delete`). Reporting the same updates again starts nothing
/// new.
#[utoipa::path(post, path = "/api/v1/repos/{org}/{repo}/hooks/push", tag = "triggers",
    params(("org" = String, Path, description = "the organization's name"),
           ("repo" = String, Path, description = "the repository's name")),
    request_body = proto::ReceivedPush,
    responses((status = 200, body = proto::HookOutcome),
              (status = 400, body = proto::ErrorBody),
              (status = 404, description = "no such repository, or it has no git source", body = proto::ErrorBody)))]
async fn receive_push(
    State(app): Shared,
    ApiPath((org, repo)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<proto::ReceivedPush>,
) -> Answer<proto::HookOutcome> {
    Ok(axum::Json(app.receive_push(&org, &repo, request).await?))
}

/// A GitHub webhook delivery (`push`, `pull_request`, `create`, `delete`,
/// `workflow_dispatch`, `repository_dispatch`, …) for a registered repository, named by the
/// payload's `repository.full_name`. `X-Hub-Signature-256` must verify with the repository's
/// webhook secret; `X-GitHub-Delivery` makes redelivery start nothing new.
#[utoipa::path(post, path = "/api/v1/hooks/github", tag = "triggers",
    params(("X-GitHub-Event" = String, Header, description = "the event name"),
           ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the body>`"),
           ("X-GitHub-Delivery" = Option<String>, Header, description = "the delivery's id")),
    request_body(content = serde_json::Value, description = "the event's payload, as GitHub sends it", content_type = "application/json"),
    responses((status = 200, body = proto::HookOutcome),
              (status = 400, body = proto::ErrorBody),
              (status = 401, description = "the signature is missing or does not verify; nothing was stored", body = proto::ErrorBody),
              (status = 404, description = "no such repository, or it has no git source", body = proto::ErrorBody)))]
async fn github_webhook(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<proto::HookOutcome> {
    // The raw bytes, not parsed JSON: the signature is over exactly what was sent.
    let body = body.map_err(body_rejection)?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let delivery = WebhookHeaders {
        event: header(proto::GITHUB_EVENT_HEADER),
        signature: header(proto::GITHUB_SIGNATURE_HEADER),
        delivery: header(proto::GITHUB_DELIVERY_HEADER),
    };
    Ok(axum::Json(
        app.receive_github_webhook(delivery, &body).await?,
    ))
}

pub(crate) mod paths {
    pub use super::{
        __path_get_repository_source, __path_github_webhook, __path_receive_push,
        __path_set_repository_source,
    };
}
