//! The `github` context of a run: GitHub's rules for turning an event's facts into
//! `github.ref`, `github.sha`, `github.ref_name` and the rest, in one place for runs created
//! through the API and runs started by webhooks and pushes.

/// The trigger's facts the `github` context is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct GithubFacts {
    /// `org/repo`.
    pub repository: String,
    /// The repository's owner.
    pub owner: String,
    /// The event name (`push`, `pull_request`, …).
    pub event_name: String,
    /// The webhook payload (`github.event`).
    pub payload: serde_json::Value,
    /// `github.ref`: the full ref (`refs/heads/main`, `refs/tags/v1`, `refs/pull/2/merge`).
    pub git_ref: String,
    /// `github.sha`.
    pub sha: String,
    /// `github.actor`.
    pub actor: String,
    /// The repository's default branch.
    pub default_branch: String,
    /// `github.head_ref`: the source branch of a pull request, else empty.
    pub head_ref: String,
    /// `github.base_ref`: the target branch of a pull request, else empty.
    pub base_ref: String,
}

/// The numbers GitHub gives a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunNumbers {
    /// `github.run_id`.
    pub run_id: i64,
    /// `github.run_number`: per workflow file.
    pub run_number: i64,
    /// `github.run_attempt`.
    pub run_attempt: u32,
}

/// `github.ref_name` and `github.ref_type` of a full ref: the branch or tag name, and for a
/// pull request's merge ref `<number>/merge` (a branch, as GitHub reports it).
pub fn ref_name_and_type(git_ref: &str) -> (&str, &'static str) {
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        return (tag, "tag");
    }
    let name = git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/pull/"))
        .unwrap_or(git_ref);
    (name, "branch")
}

/// The `github` context of a run of the workflow named `workflow` (file `workflow_path`).
pub fn github_context(
    facts: &GithubFacts,
    workflow: &str,
    workflow_path: &str,
    numbers: RunNumbers,
) -> serde_json::Value {
    let (ref_name, ref_type) = ref_name_and_type(&facts.git_ref);
    serde_json::json!({
        "event_name": facts.event_name,
        "event": facts.payload,
        "ref": facts.git_ref,
        "ref_name": ref_name,
        "ref_type": ref_type,
        "sha": facts.sha,
        "head_ref": facts.head_ref,
        "base_ref": facts.base_ref,
        "actor": facts.actor,
        "triggering_actor": facts.actor,
        "repository": facts.repository,
        "repository_owner": facts.owner,
        "default_branch": facts.default_branch,
        "run_id": numbers.run_id.to_string(),
        "run_number": numbers.run_number.to_string(),
        "run_attempt": numbers.run_attempt.to_string(),
        "workflow": workflow,
        "workflow_ref": format!("{}/{}@{}", facts.repository, workflow_path, facts.git_ref),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_follow_github() {
        assert_eq!(ref_name_and_type("refs/heads/main"), ("main", "branch"));
        assert_eq!(ref_name_and_type("refs/heads/feat/x"), ("feat/x", "branch"));
        assert_eq!(ref_name_and_type("refs/tags/v1.2"), ("v1.2", "tag"));
        assert_eq!(
            ref_name_and_type("refs/pull/7/merge"),
            ("7/merge", "branch")
        );
    }
}
