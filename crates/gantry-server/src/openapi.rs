//! The OpenAPI document of API v1, generated from the wire types and the handlers'
//! annotations with `utoipa`.
//!
//! Generated rather than written by hand: the schemas come from the very `gantry-proto`
//! types the server sends, `deny_unknown_fields` and all, so the document cannot drift from
//! them. A copy is committed at `crates/gantry-server/openapi.json`; a test fails when the two
//! differ (`GANTRY_BLESS=1` rewrites the copy), so a change of the API shows up in review.

use gantry_proto::v1 as proto;
use utoipa::OpenApi;

use crate::hook_routes::paths::*;
use crate::job_routes::paths::*;
use crate::routes::paths::*;
use crate::runner_routes::paths::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gantry",
        description = "The HTTP API of gantry, a self-hostable CI service for GitHub-Actions-compatible workflows. Every error answers with `ErrorBody`; its `code` determines the status.",
        license(name = "Apache-2.0"),
    ),
    paths(
        health, openapi_document,
        create_organization, list_organizations, get_organization,
        create_repository, list_repositories, get_repository,
        trigger_run, list_repository_runs, list_runs, get_run, list_jobs, get_job,
        get_job_by_id, set_job_priority,
        cancel_run, cancel_job, rerun,
        queue, start_job, complete_job,
        create_registration_token, list_runners, register_runner, claim_job, claim_jobs,
        heartbeat, report_step, append_log, complete_attempt, report_results, job_source,
        job_log, job_log_stream,
        set_repository_source, get_repository_source, receive_push, github_webhook,
    ),
    components(schemas(proto::ErrorCode, proto::ErrorDetail, proto::ApiError)),
    tags(
        (name = "meta", description = "the server itself"),
        (name = "tenants", description = "organizations and repositories"),
        (name = "runs", description = "workflow runs and their jobs"),
        (name = "runners", description = "the runner protocol: registration, claims, leases and reports"),
        (name = "triggers", description = "git sources, GitHub webhooks and pushes reported by post-receive hooks"),
        (name = "internal", description = "test and operator routes until the runner protocol exists"),
    ),
)]
struct ApiDoc;

/// The document as pretty JSON with a final newline, exactly as committed.
pub fn document_json() -> String {
    let mut openapi = ApiDoc::openapi();
    // The version comes from the crate so the document changes with releases, not builds.
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    match openapi.to_pretty_json() {
        Ok(json) => json + "\n",
        Err(error) => {
            tracing::error!(error = %error, "openapi document does not serialize");
            String::from("{}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let generated = document_json();
        if std::env::var_os("GANTRY_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date; run `GANTRY_BLESS=1 cargo test -p gantry-server` and commit it",
            path.display()
        );
    }

    #[test]
    fn document_has_every_route() {
        let document: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for path in [
            "/api/v1/orgs",
            "/api/v1/repos/{org}/{repo}/runs",
            "/api/v1/runs/{run}",
            "/api/v1/runs/{run}/rerun",
            "/api/v1/jobs/{job}",
            "/api/v1/runs/{run}/jobs/{job}/priority",
            "/api/v1/internal/runs/{run}/jobs/{job}/complete",
        ] {
            assert!(paths.contains_key(path), "missing {path}");
        }
        assert_eq!(
            document["components"]["schemas"]["TriggerRun"]["additionalProperties"],
            false
        );
        let _ = proto::PREFIX;
    }
}
