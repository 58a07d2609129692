//! Where a repository's git data lives and the secret its webhooks are signed with: what the
//! server needs to turn a push or a webhook into runs.

use serde::{Deserialize, Serialize};

use crate::ids::RepoId;

/// A repository's git source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositorySource {
    /// The repository.
    pub repo_id: RepoId,
    /// A path the server can open with git (bare or not).
    pub git_path: String,
    /// The key of the `X-Hub-Signature-256` HMAC; `None` refuses every webhook, since an
    /// unsigned delivery could come from anyone.
    pub webhook_secret: Option<String>,
    /// The URL `git_path` mirrors (the server cloned it there and fetches from it when an
    /// event names a commit the mirror lacks); `None` when the server reads `git_path` in place.
    pub git_url: Option<String>,
}
