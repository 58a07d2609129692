//! GitHub webhooks: verifying `X-Hub-Signature-256` and turning a payload into the facts an
//! event starts workflows with, following GitHub's documented values of `GITHUB_REF` and
//! `GITHUB_SHA` per event ("Events that trigger workflows").
//!
//! Pure: no git and no store. Where GitHub's value is "the last commit on a ref" the facts name
//! the ref and the caller resolves it in the repository; where it is "the default branch" the
//! caller fills in the repository's.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::github::GithubFacts;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature header is missing, malformed or does not verify.
    #[error("{0}")]
    Signature(&'static str),
    /// The body is not a payload of the named event.
    #[error("invalid `{event}` payload: {message}")]
    Payload {
        /// The event.
        event: String,
        /// What is wrong.
        message: String,
    },
}

/// Checks `header` (`sha256=<hex>`) against the HMAC-SHA256 of `body` under `secret`, in
/// constant time (`Mac::verify_slice`), so timing tells an attacker nothing about the digest.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::Signature(
        "the X-Hub-Signature-256 header is missing",
    ))?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(WebhookError::Signature(
            "X-Hub-Signature-256 must be `sha256=<hex>`",
        ))?;
    let digest = decode_hex(hex).ok_or(WebhookError::Signature(
        "X-Hub-Signature-256 must be `sha256=<hex>`",
    ))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| WebhookError::Signature("the webhook secret cannot key an HMAC"))?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| WebhookError::Signature("the signature does not match the body"))
}

/// `sha256=<hex>` of `body` under `secret`: what a sender puts in `X-Hub-Signature-256`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// Which files an event changed, to be computed from git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Not an event with path filters.
    NotApplicable,
    /// A push: the tree diff `before..after` (`before` all zeros for a new branch).
    Push {
        /// The ref's commit before.
        before: String,
        /// The ref's commit after.
        after: String,
    },
    /// A pull request: from the merge base of `base` and `head` to `head`.
    PullRequest {
        /// The base branch's commit.
        base: String,
        /// The head commit.
        head: String,
    },
}

/// What an event starts workflows with, before git is read.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    /// The event name.
    pub event_name: String,
    /// The payload's `action`, matched against `types:`.
    pub action: Option<String>,
    /// `org/repo` as the payload names it.
    pub repository: String,
    /// The repository's owner.
    pub owner: String,
    /// `github.ref`; `None` means the repository's default branch.
    pub git_ref: Option<String>,
    /// `github.sha` when the payload says it; else the last commit of `git_ref`.
    pub sha: Option<String>,
    /// The ref branch and tag filters are matched against: the pushed ref, a pull request's
    /// base branch, a `workflow_run`'s head branch.
    pub filter_ref: Option<String>,
    /// For `workflow_run`: the triggering workflow's name.
    pub workflow_name: Option<String>,
    /// `github.actor`: the sender.
    pub actor: String,
    /// `github.head_ref`.
    pub head_ref: String,
    /// `github.base_ref`.
    pub base_ref: String,
    /// The changed files to compute.
    pub changes: Changes,
    /// For `workflow_dispatch`: the one workflow file it starts.
    pub only_workflow: Option<String>,
    /// The `inputs` context (`workflow_dispatch`).
    pub inputs: serde_json::Map<String, Value>,
    /// The payload (`github.event`).
    pub payload: Value,
    /// For `schedule`: the cron line that fired; only workflows with that line run.
    pub schedule: Option<String>,
}

impl EventFacts {
    /// Fills in the default branch where GitHub uses it (`delete`, `repository_dispatch`, …).
    pub fn git_ref_or_default(&self, default_branch: &str) -> String {
        self.git_ref
            .clone()
            .unwrap_or_else(|| format!("refs/heads/{default_branch}"))
    }

    /// The `github` context's facts once the commit is known.
    pub fn github_facts(&self, sha: &str, default_branch: &str) -> GithubFacts {
        GithubFacts {
            repository: self.repository.clone(),
            owner: self.owner.clone(),
            event_name: self.event_name.clone(),
            payload: self.payload.clone(),
            git_ref: self.git_ref_or_default(default_branch),
            sha: sha.to_owned(),
            actor: self.actor.clone(),
            default_branch: default_branch.to_owned(),
            head_ref: self.head_ref.clone(),
            base_ref: self.base_ref.clone(),
        }
    }
}

/// What a payload means.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// An event to offer the repository's workflows.
    Event(Box<EventFacts>),
    /// An event that starts nothing (a `ping`, a deleted branch's push), and why.
    Ignored(String),
}

/// The repository (`owner/name`) a payload is about, before anything else is trusted.
pub fn repository_of(payload: &Value) -> Option<&str> {
    payload.pointer("/repository/full_name")?.as_str()
}

/// Reads a payload of event `event` (the `X-GitHub-Event` header).
pub fn parse(event: &str, payload: Value) -> Result<Parsed, WebhookError> {
    let fail = |message: &str| WebhookError::Payload {
        event: event.to_owned(),
        message: message.to_owned(),
    };
    if event == "ping" {
        return Ok(Parsed::Ignored("ping".into()));
    }
    let text = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str);
    let repository = text("/repository/full_name")
        .ok_or_else(|| fail("`repository.full_name` is missing"))?
        .to_owned();
    let owner = text("/repository/owner/login")
        .map(str::to_owned)
        .or_else(|| repository.split('/').next().map(str::to_owned))
        .unwrap_or_default();
    let actor = text("/sender/login").unwrap_or("ghost").to_owned();
    let action = text("/action").map(str::to_owned);
    let mut facts = EventFacts {
        event_name: event.to_owned(),
        action,
        repository,
        owner,
        git_ref: None,
        sha: None,
        filter_ref: None,
        workflow_name: None,
        actor,
        head_ref: String::new(),
        base_ref: String::new(),
        changes: Changes::NotApplicable,
        only_workflow: None,
        inputs: serde_json::Map::new(),
        payload: Value::Null,
        schedule: None,
    };
    match event {
        // GITHUB_REF: the updated ref; GITHUB_SHA: the ref's commit after the push.
        "push" => {
            let git_ref = text("/ref")
                .ok_or_else(|| fail("`ref` is missing"))?
                .to_owned();
            let after = text("/after")
                .ok_or_else(|| fail("`after` is missing"))?
                .to_owned();
            let before = text("/before").unwrap_or_default().to_owned();
            if payload.get("deleted").and_then(Value::as_bool) == Some(true)
                || crate::git::is_null_sha(&after)
            {
                // GitHub does not run `push` workflows for a deleted ref.
                return Ok(Parsed::Ignored(format!("{git_ref} was deleted")));
            }
            facts.git_ref = Some(git_ref.clone());
            facts.filter_ref = Some(git_ref.clone());
            facts.sha = Some(after.clone());
            if git_ref.starts_with("refs/heads/") {
                facts.changes = Changes::Push { before, after };
            }
        }
        // GITHUB_REF: refs/pull/<n>/merge; GITHUB_SHA: the last merge commit of that ref.
        // gantry has no merge commits of its own, so the head commit stands in for it.
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment" => {
            let number = payload
                .pointer("/pull_request/number")
                .or_else(|| payload.get("number"))
                .and_then(Value::as_u64)
                .ok_or_else(|| fail("`pull_request.number` is missing"))?;
            let head = text("/pull_request/head/sha")
                .ok_or_else(|| fail("`pull_request.head.sha` is missing"))?;
            let base = text("/pull_request/base/sha")
                .ok_or_else(|| fail("`pull_request.base.sha` is missing"))?;
            let head_ref = text("/pull_request/head/ref")
                .ok_or_else(|| fail("`pull_request.head.ref` is missing"))?;
            let base_ref = text("/pull_request/base/ref")
                .ok_or_else(|| fail("`pull_request.base.ref` is missing"))?;
            if event == "pull_request_target" {
                // It runs the base branch's workflow at its last commit.
                facts.git_ref = Some(format!("refs/heads/{base_ref}"));
                facts.sha = Some(base.to_owned());
            } else {
                facts.git_ref = Some(format!("refs/pull/{number}/merge"));
                facts.sha = Some(head.to_owned());
            }
            facts.filter_ref = Some(format!("refs/heads/{base_ref}"));
            facts.head_ref = head_ref.to_owned();
            facts.base_ref = base_ref.to_owned();
            facts.changes = Changes::PullRequest {
                base: base.to_owned(),
                head: head.to_owned(),
            };
        }
        // GITHUB_REF: the created branch or tag; GITHUB_SHA: its last commit.
        "create" => {
            let name = text("/ref").ok_or_else(|| fail("`ref` is missing"))?;
            let kind = match text("/ref_type") {
                Some("tag") => "tags",
                Some("branch") => "heads",
                _ => return Err(fail("`ref_type` must be `branch` or `tag`")),
            };
            facts.git_ref = Some(format!("refs/{kind}/{name}"));
        }
        // GITHUB_REF: the default branch (the deleted ref is gone); GITHUB_SHA: its last commit.
        "delete" => {
            text("/ref").ok_or_else(|| fail("`ref` is missing"))?;
        }
        // GITHUB_REF: the branch or tag it was dispatched on; only the named workflow runs.
        "workflow_dispatch" => {
            let git_ref = text("/ref").ok_or_else(|| fail("`ref` is missing"))?;
            facts.git_ref = Some(full_ref(git_ref));
            facts.only_workflow = text("/workflow").map(str::to_owned);
            if let Some(inputs) = payload.get("inputs").and_then(Value::as_object) {
                facts.inputs = inputs.clone();
            }
        }
        // GITHUB_REF and GITHUB_SHA: the merge group's ref and commit; branch filters see the
        // queue's base branch.
        "merge_group" => {
            let head_ref = text("/merge_group/head_ref")
                .ok_or_else(|| fail("`merge_group.head_ref` is missing"))?;
            let head_sha = text("/merge_group/head_sha")
                .ok_or_else(|| fail("`merge_group.head_sha` is missing"))?;
            facts.git_ref = Some(head_ref.to_owned());
            facts.sha = Some(head_sha.to_owned());
            facts.filter_ref = text("/merge_group/base_ref").map(str::to_owned);
        }
        // `workflow_run`: the default branch's workflow, filtered on the triggering run.
        "workflow_run" => {
            facts.workflow_name = text("/workflow_run/name")
                .or_else(|| text("/workflow/name"))
                .map(str::to_owned);
            facts.filter_ref = text("/workflow_run/head_branch").map(str::to_owned);
        }
        // `repository_dispatch` and every other event: the default branch's last commit.
        _ => {}
    }
    facts.payload = payload;
    Ok(Parsed::Event(Box::new(facts)))
}

/// A ref as given to `workflow_dispatch` (GitHub accepts a short branch name in the API).
fn full_ref(git_ref: &str) -> String {
    if git_ref.starts_with("refs/") {
        git_ref.to_owned()
    } else {
        format!("refs/heads/{git_ref}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let header = sign(b"s3cret", b"{}");
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_signature(b"s3cret", b"{}", Some(&header)).is_ok());
        assert!(verify_signature(b"other", b"{}", Some(&header)).is_err());
        assert!(verify_signature(b"s3cret", b"{ }", Some(&header)).is_err());
        assert!(verify_signature(b"s3cret", b"{}", None).is_err());
        assert!(verify_signature(b"s3cret", b"{}", Some("sha1=00")).is_err());
        assert!(verify_signature(b"s3cret", b"{}", Some("sha256=zz")).is_err());
    }
}
