//! The operations behind the git triggers: setting a repository's git source, receiving a
//! GitHub webhook (signature first, then the payload) and receiving the pushes a
//! `post-receive` hook reports. Both deliveries end in [`App::offer_event`].

use gantry_proto::v1 as proto;
use gantry_store::RepositorySource;
use proto::ErrorCode;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::ApiError;
use crate::git::{GitRepo, is_null_sha};
use crate::mirror;
use crate::webhook::{self, Parsed};

/// What a webhook request carried besides its body.
pub struct WebhookHeaders {
    /// `X-GitHub-Event`.
    pub event: Option<String>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<String>,
    /// `X-GitHub-Delivery`.
    pub delivery: Option<String>,
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

impl App {
    /// `PUT /repos/{org}/{repo}/source`: the path must open as a git repository now, so a
    /// typo is found when the repository is registered rather than at the first push; a URL
    /// is cloned into a mirror now, for the same reason.
    pub async fn set_repository_source(
        &self,
        org: &str,
        name: &str,
        request: proto::SetRepositorySource,
    ) -> Result<proto::RepositorySource, ApiError> {
        let (git_path, git_url) = match (request.git_path, request.git_url) {
            (Some(path), None) => (path, None),
            (None, Some(url)) => (String::new(), Some(url)),
            _ => {
                return Err(ApiError::invalid_field(
                    "git_path",
                    "give exactly one of `git_path` and `git_url`",
                ));
            }
        };
        if let Some(url) = &git_url {
            if url.trim().is_empty() || url.len() > 4096 {
                return Err(ApiError::invalid_field(
                    "git_url",
                    "must be 1 to 4096 characters",
                ));
            }
            mirror::check_url(url)
                .map_err(|error| ApiError::invalid_field("git_url", error.to_string()))?;
        } else if git_path.trim().is_empty() || git_path.len() > 4096 {
            return Err(ApiError::invalid_field(
                "git_path",
                "must be 1 to 4096 characters",
            ));
        }
        if let Some(secret) = &request.webhook_secret
            && (secret.is_empty() || secret.len() > 255)
        {
            return Err(ApiError::invalid_field(
                "webhook_secret",
                "must be 1 to 255 characters",
            ));
        }
        let repo = self.repository(org, name).await?;
        let git_path = match &git_url {
            Some(url) => self.clone_mirror(org, name, url).await?,
            None => {
                let path = std::path::PathBuf::from(&git_path);
                tokio::task::spawn_blocking(move || GitRepo::open(&path).map(drop))
                    .await
                    .map_err(|error| ApiError::internal(&error))?
                    .map_err(|error| ApiError::invalid_field("git_path", error.to_string()))?;
                git_path
            }
        };
        let source = RepositorySource {
            repo_id: repo.id,
            git_path,
            webhook_secret: request.webhook_secret,
            git_url,
        };
        self.store.set_repository_source(source.clone()).await?;
        tracing::info!(repo = %format!("{org}/{name}"), git_path = %source.git_path, webhook = source.webhook_secret.is_some(), "repository source set");
        Ok(source_view(&source, org, name))
    }

    /// Clones `url` into this repository's mirror (replacing an earlier one); its path. An
    /// origin that cannot be reached or read is the request's fault (400), and leaves nothing.
    async fn clone_mirror(&self, org: &str, name: &str, url: &str) -> Result<String, ApiError> {
        let Some(dir) = &self.mirrors_dir else {
            return Err(ApiError::invalid_field(
                "git_url",
                "this server keeps no data directory for mirrors (it stores in PostgreSQL); register a `git_path` instead",
            ));
        };
        // Organization and repository names are checked to be path-safe when created.
        let path = dir.join(org).join(format!("{name}.git"));
        let target = path.clone();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || mirror::clone_mirror(&url, &target))
            .await
            .map_err(|error| ApiError::internal(&error))?
            .map_err(|error| ApiError::invalid_field("git_url", error.to_string()))?;
        // A repository kept open at the old mirror's path would read deleted files.
        self.git_cache.forget_repositories();
        Ok(path.to_string_lossy().into_owned())
    }

    /// `GET /repos/{org}/{repo}/source`.
    pub async fn get_repository_source(
        &self,
        org: &str,
        name: &str,
    ) -> Result<proto::RepositorySource, ApiError> {
        let repo = self.repository(org, name).await?;
        let source = self
            .repository_source(&repo, &format!("{org}/{name}"))
            .await?;
        Ok(source_view(&source, org, name))
    }

    /// `POST /hooks/github`: verifies the signature with the secret of the repository the
    /// payload names before anything of the payload is acted on; a refused delivery stores
    /// nothing.
    pub async fn receive_github_webhook(
        &self,
        headers: WebhookHeaders,
        body: &[u8],
    ) -> Result<proto::HookOutcome, ApiError> {
        let event = headers.event.ok_or_else(|| {
            ApiError::invalid_field(proto::GITHUB_EVENT_HEADER, "the header is required")
        })?;
        let Some(signature) = headers.signature else {
            return Err(unauthorized(
                "the X-Hub-Signature-256 header is missing; webhooks must be signed",
            ));
        };
        let payload: serde_json::Value = crate::extract::parse_json(body)?;
        let full_name = webhook::repository_of(&payload)
            .ok_or_else(|| ApiError::invalid_field("repository.full_name", "is missing"))?
            .to_owned();
        let (org, name) = full_name.split_once('/').ok_or_else(|| {
            ApiError::invalid_field("repository.full_name", "must be `owner/name`")
        })?;
        let repo = self.repository(org, name).await?;
        let source = self.repository_source(&repo, &full_name).await?;
        let Some(secret) = &source.webhook_secret else {
            return Err(unauthorized(format!(
                "repository `{full_name}` has no webhook secret, so no webhook is accepted"
            )));
        };
        if let Err(error) = webhook::verify_signature(secret.as_bytes(), body, Some(&signature)) {
            tracing::warn!(repo = %full_name, event = %event, error = %error, "webhook refused");
            return Err(unauthorized(error.to_string()));
        }
        // Without a delivery id, the body itself identifies the delivery: a resent body is a
        // redelivery.
        let delivery = match headers.delivery {
            Some(id) if !id.trim().is_empty() => format!("webhook:{id}"),
            _ => format!("webhook-body:{:x}", Sha256::digest(body)),
        };
        let parsed = webhook::parse(&event, payload)
            .map_err(|error| ApiError::new(ErrorCode::InvalidRequest, error.to_string()))?;
        match parsed {
            Parsed::Ignored(reason) => {
                tracing::info!(repo = %full_name, event = %event, reason = %reason, "webhook starts nothing");
                Ok(proto::HookOutcome {
                    ignored: vec![reason],
                    ..proto::HookOutcome::default()
                })
            }
            Parsed::Event(facts) => self.offer_event(&repo, &source, &facts, &delivery).await,
        }
    }

    /// `POST /repos/{org}/{repo}/hooks/push`: each ref update is offered as GitHub would send
    /// it: a `push` (unless the ref was deleted), plus `create` for a new ref and `delete` for
    /// a deleted one. Retrying the same report starts nothing new.
    pub async fn receive_push(
        &self,
        org: &str,
        name: &str,
        request: proto::ReceivedPush,
    ) -> Result<proto::HookOutcome, ApiError> {
        let repo = self.repository(org, name).await?;
        let full_name = format!("{org}/{name}");
        let source = self.repository_source(&repo, &full_name).await?;
        let pusher = request.pusher.unwrap_or_else(|| "gantry".to_owned());
        let mut outcome = proto::HookOutcome::default();
        for update in &request.updates {
            for (event, payload) in
                github_payloads(&full_name, org, &repo.default_branch, &pusher, update)?
            {
                let delivery = format!(
                    "push-hook:{event}:{}:{}:{}",
                    update.git_ref, update.before, update.after
                );
                match webhook::parse(event, payload)
                    .map_err(|error| ApiError::new(ErrorCode::InvalidRequest, error.to_string()))?
                {
                    Parsed::Ignored(reason) => outcome.ignored.push(reason),
                    Parsed::Event(facts) => {
                        let one = self.offer_event(&repo, &source, &facts, &delivery).await?;
                        outcome.runs.extend(one.runs);
                        outcome.skipped.extend(one.skipped);
                        outcome.invalid.extend(one.invalid);
                        outcome.ignored.extend(one.ignored);
                    }
                }
            }
        }
        Ok(outcome)
    }
}

fn source_view(source: &RepositorySource, org: &str, name: &str) -> proto::RepositorySource {
    proto::RepositorySource {
        repository: format!("{org}/{name}"),
        git_path: source.git_path.clone(),
        git_url: source.git_url.clone(),
        has_webhook_secret: source.webhook_secret.is_some(),
    }
}

/// The webhook payloads GitHub would send for one ref update, in GitHub's order.
fn github_payloads(
    full_name: &str,
    org: &str,
    default_branch: &str,
    pusher: &str,
    update: &proto::RefUpdate,
) -> Result<Vec<(&'static str, serde_json::Value)>, ApiError> {
    let valid_sha = |sha: &str| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_sha(&update.before) || !valid_sha(&update.after) {
        return Err(ApiError::invalid_field(
            "updates",
            "`before` and `after` must be 40-digit hex commit ids",
        ));
    }
    let (kind, short) = if let Some(tag) = update.git_ref.strip_prefix("refs/tags/") {
        ("tag", tag)
    } else if let Some(branch) = update.git_ref.strip_prefix("refs/heads/") {
        ("branch", branch)
    } else {
        // Notes, pull refs and the like start no workflow on GitHub either.
        return Ok(Vec::new());
    };
    let repository = serde_json::json!({
        "full_name": full_name,
        "name": full_name.split('/').nth(1).unwrap_or_default(),
        "owner": { "login": org },
        "default_branch": default_branch,
    });
    let sender = serde_json::json!({ "login": pusher });
    let (created, deleted) = (is_null_sha(&update.before), is_null_sha(&update.after));
    let mut payloads = Vec::new();
    payloads.push((
        "push",
        serde_json::json!({
            "ref": update.git_ref,
            "before": update.before,
            "after": update.after,
            "created": created,
            "deleted": deleted,
            "forced": false,
            "base_ref": null,
            "head_commit": if deleted { serde_json::Value::Null } else { serde_json::json!({ "id": update.after }) },
            "repository": repository,
            "pusher": { "name": pusher },
            "sender": sender,
        }),
    ));
    let ref_event = |event: &'static str| {
        (
            event,
            serde_json::json!({
                "ref": short,
                "ref_type": kind,
                "pusher_type": "user",
                "repository": repository,
                "sender": sender,
            }),
        )
    };
    if created {
        payloads.push(ref_event("create"));
    }
    if deleted {
        payloads.push(ref_event("delete"));
    }
    Ok(payloads)
}
