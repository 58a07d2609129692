//! The one error body every failed request answers with.
//!
//! ```json
//! { "error": { "code": "workflow_invalid", "message": "...", "details": [{ "line": 3, "col": 5, "message": "..." }] } }
//! ```
//!
//! The `code` is what clients branch on; the HTTP status follows from it (the server maps one
//! to the other in one place). Messages are lowercase without a trailing period.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What went wrong, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, has an unknown field or a field of the wrong type (400).
    InvalidJson,
    /// A path, query or header value is malformed, or a field's value is refused (400).
    InvalidRequest,
    /// The organization, repository, run or job does not exist (404).
    NotFound,
    /// A runner's credential or registration token is missing, forged, expired or revoked
    /// (401).
    Unauthorized,
    /// The route exists but not with this method (405).
    MethodNotAllowed,
    /// The request contradicts the current state: a duplicate name, cancelling a finished
    /// run, re-running a running one (409).
    Conflict,
    /// A runner's call about a job carries a fencing token that is no longer the job's
    /// latest: its lease expired or the job moved on. The runner must stop the job (409).
    StaleToken,
    /// The body is larger than the server's limit (413).
    PayloadTooLarge,
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
    /// The workflow file does not load; `details` carries each problem with its `line:col`
    /// (422). Nothing was stored.
    WorkflowInvalid,
    /// The server failed; the request may be retried (500).
    Internal,
    /// The server is busy or a dependency is down; retry later (503).
    Unavailable,
}

impl ErrorCode {
    /// The code as it is spelled on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::StaleToken => "stale_token",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::WorkflowInvalid => "workflow_invalid",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// An error: its code, a sentence for people and, for some codes, the individual problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// What went wrong.
    pub code: ErrorCode,
    /// A lowercase sentence without a trailing period.
    pub message: String,
    /// The individual problems: one per workflow diagnostic for `workflow_invalid`.
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

/// One problem, with its position in the submitted workflow file when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The 1-based line in the workflow file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The 1-based column in the workflow file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub col: Option<u32>,
    /// The request field at fault, e.g. `name`, when the problem is not in the workflow file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ErrorBody {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ApiError {
                code,
                message: message.into(),
                details: Vec::new(),
            },
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.code, self.error.message)
    }
}
