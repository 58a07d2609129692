//! Triggers from git: a repository's git source, GitHub-compatible webhooks and pushes
//! reported by a `post-receive` hook, and what each delivery started.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::runs::Run;

/// The header that names a webhook's event (`push`, `pull_request`, …).
pub const GITHUB_EVENT_HEADER: &str = "X-GitHub-Event";
/// The header with `sha256=<hex>`: the HMAC-SHA256 of the raw body under the repository's
/// webhook secret.
pub const GITHUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header with the delivery's id; a redelivery carries the same id and starts nothing new.
pub const GITHUB_DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// The body of `PUT /api/v1/repos/{org}/{repo}/source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRepositorySource {
    /// A path the server can open with git: a bare or non-bare repository, read in place.
    /// Exactly one of `git_path` and `git_url` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_path: Option<String>,
    /// A git URL (`https://`, `ssh://`, `file://`, …) the server clones into a bare mirror in
    /// its data directory, and fetches from when an event names a commit the mirror lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_url: Option<String>,
    /// The key webhooks are signed with; without one every webhook is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// A repository's git source, as answered: the secret is never sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositorySource {
    /// `org/repo`.
    pub repository: String,
    /// Where the server reads the repository's git data (its mirror, for a URL).
    pub git_path: String,
    /// The URL the mirror at `git_path` fetches from; absent for a path read in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_url: Option<String>,
    /// Whether webhooks are accepted (they must be signed with the secret).
    pub has_webhook_secret: bool,
}

/// One ref a push moved, as a `post-receive` hook reads it from its standard input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefUpdate {
    /// The ref's commit before the push; 40 zeros when the ref was created.
    pub before: String,
    /// The ref's commit after the push; 40 zeros when the ref was deleted.
    pub after: String,
    /// The full ref name (`refs/heads/main`, `refs/tags/v1`).
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// The body of `POST /api/v1/repos/{org}/{repo}/hooks/push`: what a `post-receive` hook saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceivedPush {
    /// The refs the push moved, in the order git reported them.
    pub updates: Vec<RefUpdate>,
    /// Who pushed (the `github.actor`); default `gantry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher: Option<String>,
}

/// A workflow file an event started, or named an earlier run of (a redelivery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggeredRun {
    /// The run.
    pub run: Run,
    /// False when the delivery was seen before and this is the run it started then.
    pub created: bool,
}

/// A workflow file an event did not start, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedWorkflow {
    /// The file, e.g. `.github/workflows/ci.yml`.
    pub workflow_path: String,
    /// Why it did not run.
    pub reason: String,
}

/// A workflow file that failed to load or validate at the event's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidWorkflow {
    /// The file.
    pub workflow_path: String,
    /// Every problem, as `file:line:col: message`.
    pub errors: Vec<String>,
}

/// What one delivery (a webhook or a reported push) did, workflow file by workflow file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookOutcome {
    /// The runs started (or found again, on redelivery).
    pub runs: Vec<TriggeredRun>,
    /// Workflows the event does not start.
    pub skipped: Vec<SkippedWorkflow>,
    /// Workflows that could not be loaded; they start no run.
    pub invalid: Vec<InvalidWorkflow>,
    /// Events, or refs of a push, that start nothing at all, and why (a deleted branch, an
    /// event gantry does not run workflows for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}
