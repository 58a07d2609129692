//! Organizations (tenants) and their repositories.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A tenant: its share of hosted runners and its cap on concurrently running hosted jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// The organization's id.
    pub id: i64,
    /// The unique name, as used in paths (`/repos/{org}/{repo}`).
    pub name: String,
    /// Its share of hosted runners relative to other organizations (at least 1).
    pub weight: u32,
    /// The most hosted jobs it may run at once; absent when unlimited.
    pub hosted_concurrency_limit: Option<u32>,
}

/// The body of `POST /api/v1/orgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// The unique name: letters, digits, `-`, `_` and `.`, at most 100 characters.
    pub name: String,
    /// Its share of hosted runners (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The most hosted jobs it may run at once (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_concurrency_limit: Option<u32>,
}

/// A repository of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// The repository's id.
    pub id: i64,
    /// The organization's name.
    pub org: String,
    /// The repository's name, unique within the organization.
    pub name: String,
    /// `org/name`.
    pub full_name: String,
    /// The branch a run's `ref` defaults to.
    pub default_branch: String,
}

/// The body of `POST /api/v1/orgs/{org}/repos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepository {
    /// The name: letters, digits, `-`, `_` and `.`, at most 100 characters.
    pub name: String,
    /// The default branch (default `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
}
