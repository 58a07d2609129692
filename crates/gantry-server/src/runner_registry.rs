//! The runner registry: registration tokens (hosted and per organization), registering a
//! runner, checking its credential on every call, and listing runners with their status.
//!
//! Only hashes of tokens and credentials are stored (`credentials`). A runner is kept in the
//! dispatcher's memory once seen; after a restart its first call loads it from the store.

use gantry_engine::Millis;
use gantry_proto::v1 as proto;
use gantry_store::{
    NewRegistrationToken, NewRunner, OrgId, RepoId, RunnerId, RunnerRecord, StoreError,
};

use crate::app::App;
use crate::convert::{ms, now, timestamp};
use crate::credentials;
use crate::dispatcher::RunnerEntry;
use crate::error::ApiError;

/// The label every self-hosted runner carries, as on GitHub.
const SELF_HOSTED: &str = "self-hosted";
/// Limits of a registration.
const MAX_LABELS: usize = 64;
const MAX_LABEL_LEN: usize = 100;
const MAX_CAPACITY: u32 = 256;
/// The most repositories one registration token may restrict its runners to.
const MAX_TOKEN_REPOSITORIES: usize = 1_000;
/// A registration token lives an hour unless asked otherwise, and 30 days at most.
const DEFAULT_TOKEN_SECS: u64 = 3_600;
const MAX_TOKEN_SECS: u64 = 30 * 24 * 3_600;

/// Labels compared case-insensitively, without duplicates, sorted.
fn normalize_labels(labels: &[String]) -> Result<Vec<String>, ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::invalid_field(
            "labels",
            format!("at most {MAX_LABELS} labels, got {}", labels.len()),
        ));
    }
    let mut normalized = Vec::with_capacity(labels.len());
    for (index, label) in labels.iter().enumerate() {
        let label = label.trim();
        if label.is_empty() || label.len() > MAX_LABEL_LEN || label.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                &format!("labels[{index}]"),
                format!("a label is 1 to {MAX_LABEL_LEN} printable characters"),
            ));
        }
        normalized.push(label.to_lowercase());
    }
    normalized.sort();
    normalized.dedup();
    Ok(normalized)
}

/// A runner group's name: 1 to 100 printable characters, compared case-insensitively.
fn normalize_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_LABEL_LEN || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("a runner group name is 1 to {MAX_LABEL_LEN} printable characters"),
        ));
    }
    Ok(name.to_lowercase())
}

fn entry_of(record: &RunnerRecord, now: Millis) -> RunnerEntry {
    use gantry_engine::dispatch::{LabelSet, OrgRef, RepoRef, RunnerScope, RunnerView};
    let labels = LabelSet::new(&record.labels);
    let view = match record.org_id {
        None => RunnerView::hosted(labels),
        Some(org) => {
            let mut view = RunnerView::self_hosted(labels, OrgRef(org.0));
            if let RunnerScope::SelfHosted(scope) = &mut view.scope {
                scope.group.clone_from(&record.runner_group);
                scope.repos = record
                    .repo_ids
                    .as_ref()
                    .map(|ids| ids.iter().map(|id| RepoRef(id.0)).collect());
            }
            view
        }
    };
    RunnerEntry {
        view,
        capacity: usize::try_from(record.capacity).unwrap_or(1),
        ephemeral: record.ephemeral,
        credential_hash: record.credential_hash.clone(),
        last_seen: now,
        held: Default::default(),
        spent: false,
    }
}

pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(proto::ErrorCode::Unauthorized, message)
}

impl App {
    /// Makes the hosted pool's registration token valid (kept as a hash; no expiry).
    pub async fn allow_hosted_token(&self, token: &str) -> Result<(), ApiError> {
        self.store
            .save_registration_token(NewRegistrationToken {
                token_hash: credentials::hash(token),
                org_id: None,
                created_at_ms: ms(now()),
                expires_at_ms: None,
                runner_group: None,
                repo_ids: None,
            })
            .await?;
        Ok(())
    }

    /// `POST /orgs/{org}/runner-tokens`.
    pub async fn create_registration_token(
        &self,
        org: &str,
        request: proto::CreateRegistrationToken,
    ) -> Result<proto::RegistrationToken, ApiError> {
        let org = self.store.get_organization_by_name(org).await?;
        let secs = request.expires_in_secs.unwrap_or(DEFAULT_TOKEN_SECS);
        if secs == 0 || secs > MAX_TOKEN_SECS {
            return Err(ApiError::invalid_field(
                "expires_in_secs",
                format!("between 1 and {MAX_TOKEN_SECS} seconds"),
            ));
        }
        let group = request
            .group
            .as_deref()
            .map(|group| normalize_name("group", group))
            .transpose()?;
        let repositories = match &request.repositories {
            None => None,
            Some(names) => Some(self.org_repositories(&org.name, names).await?),
        };
        let token = credentials::new_registration_token()?;
        let created = ms(now());
        let expires = created.saturating_add(i64::try_from(secs * 1000).unwrap_or(i64::MAX));
        self.store
            .save_registration_token(NewRegistrationToken {
                token_hash: credentials::hash(&token),
                org_id: Some(org.id),
                created_at_ms: created,
                expires_at_ms: Some(expires),
                runner_group: group.clone(),
                repo_ids: repositories
                    .as_ref()
                    .map(|repos| repos.iter().map(|(id, _)| *id).collect()),
            })
            .await?;
        tracing::info!(org = %org.name, group = ?group, "registration token made");
        Ok(proto::RegistrationToken {
            token,
            org: org.name,
            expires_at: timestamp(expires),
            group,
            repositories: repositories
                .map(|repos| repos.into_iter().map(|(_, name)| name).collect()),
        })
    }

    /// The repositories of `org` named in a registration token request: every name must exist
    /// (the error names the first that does not); duplicates count once.
    async fn org_repositories(
        &self,
        org: &str,
        names: &[String],
    ) -> Result<Vec<(RepoId, String)>, ApiError> {
        if names.is_empty() || names.len() > MAX_TOKEN_REPOSITORIES {
            return Err(ApiError::invalid_field(
                "repositories",
                format!(
                    "1 to {MAX_TOKEN_REPOSITORIES} repository names, or leave it out for all of them"
                ),
            ));
        }
        let mut repositories: Vec<(RepoId, String)> = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let repo = match self.store.get_repository_by_name(org, name.trim()).await {
                Ok(repo) => repo,
                Err(StoreError::NotFound { .. }) => {
                    return Err(ApiError::invalid_field(
                        &format!("repositories[{index}]"),
                        format!("organization `{org}` has no repository `{name}`"),
                    ));
                }
                Err(error) => return Err(error.into()),
            };
            if !repositories.iter().any(|(id, _)| *id == repo.id) {
                repositories.push((repo.id, repo.name));
            }
        }
        Ok(repositories)
    }

    /// `POST /runners/register`.
    pub async fn register_runner(
        &self,
        request: proto::RegisterRunner,
    ) -> Result<proto::RunnerRegistration, ApiError> {
        if request.protocol_version != proto::RUNNER_PROTOCOL_VERSION {
            return Err(ApiError::invalid_field(
                "protocol_version",
                format!(
                    "protocol version {} is not supported; this server speaks {}",
                    request.protocol_version,
                    proto::RUNNER_PROTOCOL_VERSION
                ),
            ));
        }
        let name = request.name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "name",
                "a runner name is 1 to 100 printable characters",
            ));
        }
        if request.capacity == 0 || request.capacity > MAX_CAPACITY {
            return Err(ApiError::invalid_field(
                "capacity",
                format!("between 1 and {MAX_CAPACITY}"),
            ));
        }
        let mut labels = normalize_labels(&request.labels)?;
        let secret = credentials::random_secret()?;
        let time = now();
        let registered = self
            .store
            .register_runner(NewRunner {
                token_hash: credentials::hash(&request.token),
                name: name.to_owned(),
                labels: labels.clone(),
                capacity: i64::from(request.capacity),
                ephemeral: request.ephemeral,
                credential_hash: credentials::hash(&secret),
                now_ms: ms(time),
            })
            .await;
        let mut record = match registered {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => {
                tracing::warn!(name, "registration refused: unknown or expired token");
                return Err(unauthorized("the registration token is unknown or expired"));
            }
            Err(error) => return Err(error.into()),
        };
        // Self-hosted runners say so, as on GitHub, so `runs-on: [self-hosted, linux]` works.
        if record.org_id.is_some() && !labels.iter().any(|label| label == SELF_HOSTED) {
            labels.push(SELF_HOSTED.to_owned());
            labels.sort();
            record.labels = labels.clone();
        }
        let org = match record.org_id {
            Some(org) => Some(self.store.get_organization(org).await?.name),
            None => None,
        };
        self.dispatch
            .lock()
            .runners
            .insert(record.id, entry_of(&record, time));
        tracing::info!(runner_id = %record.id, name, org = ?org, labels = ?labels, "runner registered");
        self.dispatch.wake_all();
        Ok(proto::RunnerRegistration {
            runner_id: record.id.0,
            credential: credentials::credential(record.id.0, &secret),
            protocol_version: proto::RUNNER_PROTOCOL_VERSION,
            org,
            labels,
            group: record.runner_group.clone(),
            heartbeat_interval_ms: self.dispatch.settings.heartbeat_interval_ms,
            lease_ms: self.dispatch.settings.lease_ms,
        })
    }

    /// Checks a runner's credential (`Authorization: Bearer ...`); marks it seen.
    pub async fn authenticate_runner(&self, credential: &str) -> Result<RunnerId, ApiError> {
        let forged = || unauthorized("the runner credential is not valid");
        let (id, secret) = credentials::parse_credential(credential).ok_or_else(forged)?;
        let id = RunnerId(id);
        let hash = credentials::hash(secret);
        let time = now();
        {
            let mut state = self.dispatch.lock();
            if let Some(runner) = state.runners.get_mut(&id) {
                if !credentials::same_hash(&runner.credential_hash, &hash) {
                    return Err(forged());
                }
                runner.last_seen = time;
                return Ok(id);
            }
        }
        // Not in memory (the server restarted): the store knows.
        let record = match self.store.get_runner(id).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => return Err(forged()),
            Err(error) => return Err(error.into()),
        };
        if !credentials::same_hash(&record.credential_hash, &hash) {
            return Err(forged());
        }
        if record.removed_at_ms.is_some() {
            return Err(unauthorized(format!("runner {id} has been removed")));
        }
        let mut entry = entry_of(&record, time);
        let mut state = self.dispatch.lock();
        entry.held = state
            .leases
            .iter()
            .filter(|(_, lease)| lease.runner == id)
            .map(|(job, _)| *job)
            .collect();
        state.runners.entry(id).or_insert(entry);
        Ok(id)
    }

    /// `GET /runners`.
    pub async fn list_runners(&self) -> Result<proto::RunnerList, ApiError> {
        let records = self.store.list_runners().await?;
        let time = now();
        let lease = Millis(self.dispatch.settings.lease_ms);
        let mut orgs: std::collections::HashMap<OrgId, String> = Default::default();
        let mut repos: std::collections::HashMap<RepoId, String> = Default::default();
        let mut runners = Vec::with_capacity(records.len());
        for record in records {
            let org = match record.org_id {
                Some(org) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = orgs.entry(org) {
                        slot.insert(self.store.get_organization(org).await?.name);
                    }
                    orgs.get(&org).cloned()
                }
                None => None,
            };
            let (last_seen, jobs) = self
                .dispatch
                .lock()
                .runners
                .get(&record.id)
                .map(|entry| {
                    (
                        entry.last_seen,
                        entry.held.iter().map(|job| job.0).collect(),
                    )
                })
                .unwrap_or((Millis(0), Vec::new()));
            let online = last_seen.0 > 0 && last_seen.after(lease) >= time;
            let mut labels = record.labels.clone();
            if record.org_id.is_some() && !labels.iter().any(|label| label == SELF_HOSTED) {
                labels.push(SELF_HOSTED.to_owned());
                labels.sort();
            }
            let repositories = match &record.repo_ids {
                None => None,
                Some(ids) => {
                    let mut names = Vec::with_capacity(ids.len());
                    for id in ids {
                        // Runners of one group share their repositories: read each once.
                        if let std::collections::hash_map::Entry::Vacant(slot) = repos.entry(*id) {
                            slot.insert(self.store.get_repository(*id).await?.name);
                        }
                        names.extend(repos.get(id).cloned());
                    }
                    Some(names)
                }
            };
            runners.push(proto::Runner {
                id: record.id.0,
                name: record.name,
                org,
                labels,
                group: record.runner_group,
                repositories,
                capacity: u32::try_from(record.capacity).unwrap_or(1),
                ephemeral: record.ephemeral,
                status: if online {
                    proto::RunnerStatus::Online
                } else {
                    proto::RunnerStatus::Offline
                },
                jobs,
                last_seen_at: timestamp(ms(if last_seen.0 > 0 {
                    last_seen
                } else {
                    Millis(u64::try_from(record.registered_at_ms).unwrap_or(0))
                })),
            });
        }
        Ok(proto::RunnerList { runners })
    }
}
