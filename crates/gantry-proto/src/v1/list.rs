//! List responses with cursor pagination, and their query parameters.
//!
//! A list answers at most `limit` items and, when there may be more, a `next_cursor` to pass
//! as `cursor` for the next page. Cursors are opaque strings; a page never repeats or skips
//! an item that existed when the first page was read, however many are added meanwhile.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::runs::{Job, Run, RunStatus};
use super::tenants::{Organization, Repository};

/// `?limit=&cursor=` of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Most items to return, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `?limit=&cursor=&status=` of a run list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Most runs to return, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
}

/// A page of organizations, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationList {
    /// The organizations.
    pub items: Vec<Organization>,
    /// The cursor of the next page, absent on the last page.
    pub next_cursor: Option<String>,
}

/// The repositories of an organization, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryList {
    /// The repositories.
    pub items: Vec<Repository>,
    /// The cursor of the next page, absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunList {
    /// The runs.
    pub items: Vec<Run>,
    /// The cursor of the next page, absent on the last page.
    pub next_cursor: Option<String>,
}

/// The jobs of a run, in workflow order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobList {
    /// The jobs: one per matrix combination.
    pub items: Vec<Job>,
}
