//! What the server says about itself.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The answer of `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `ok` once the store is open and the indexes are rebuilt.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// How many jobs are queued for a runner, as the in-memory index counts them.
    pub queued_jobs: u64,
}
