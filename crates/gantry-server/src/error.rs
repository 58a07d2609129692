//! The API's one error type and the one place where an [`ErrorCode`] becomes an HTTP status.
//!
//! Handlers return [`ApiError`]; library errors convert into it here: the store's `NotFound`
//! is a 404, `Conflict` a 409; an engine refusal (cancel of a finished run, re-run of a
//! running one, a stale attempt) is a 409; database failures are a 500 whose cause is logged
//! but not sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_engine::EngineError;
use gantry_proto::v1::{ErrorBody, ErrorCode, ErrorDetail};
use gantry_store::StoreError;

/// The HTTP status of each error code. This is the only mapping from codes to statuses.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidJson | ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::StaleToken => StatusCode::CONFLICT,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::WorkflowInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A refused request: a code, a lowercase message and, for some codes, details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What went wrong.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// The individual problems (workflow diagnostics, fields at fault).
    pub details: Vec<ErrorDetail>,
}

impl ApiError {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// A 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }

    /// A 400 about one field of the request.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            code: ErrorCode::InvalidRequest,
            message: format!("invalid `{field}`: {message}"),
            details: vec![ErrorDetail {
                line: None,
                col: None,
                field: Some(field.to_owned()),
                message,
            }],
        }
    }

    /// A 500 whose cause is logged here and not sent to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: gantry_proto::v1::ApiError {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match &error {
            StoreError::NotFound { .. } => ApiError::not_found(error.to_string()),
            StoreError::Conflict { .. } => ApiError::conflict(error.to_string()),
            StoreError::StaleToken { .. } => {
                ApiError::new(ErrorCode::StaleToken, error.to_string())
            }
            StoreError::Invalid { .. } => {
                ApiError::new(ErrorCode::InvalidRequest, error.to_string())
            }
            StoreError::Corrupt { .. }
            | StoreError::Database(_)
            | StoreError::BatchFailed { .. } => {
                let cause = match &error {
                    StoreError::Database(database) => format!("{error}: {database}"),
                    _ => error.to_string(),
                };
                ApiError::internal(&cause)
            }
        }
    }
}

impl From<EngineError> for ApiError {
    /// The engine refuses events that do not fit the run as it is: each is a conflict with
    /// the run's current state.
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::InvalidWorkflow(_) | EngineError::InvalidConcurrency(_) => {
                ApiError::new(ErrorCode::WorkflowInvalid, error.to_string())
            }
            EngineError::InvalidConclusion => {
                ApiError::invalid_field("conclusion", error.to_string())
            }
            EngineError::UnknownJob(_) => ApiError::not_found(error.to_string()),
            _ => ApiError::conflict(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        if status.is_server_error() {
            tracing::warn!(code = %self.code, "request failed");
        } else {
            tracing::debug!(code = %self.code, message = %self.message, "request refused");
        }
        (status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_of_its_class() {
        let cases = [
            (ErrorCode::InvalidJson, 400),
            (ErrorCode::InvalidRequest, 400),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::StaleToken, 409),
            (ErrorCode::MethodNotAllowed, 405),
            (ErrorCode::Conflict, 409),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::UnsupportedMediaType, 415),
            (ErrorCode::WorkflowInvalid, 422),
            (ErrorCode::Internal, 500),
            (ErrorCode::Unavailable, 503),
        ];
        for (code, status) in cases {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }

    #[test]
    fn engine_refusals_are_conflicts() {
        let error = ApiError::from(EngineError::RunNotCompleted);
        assert_eq!(error.code, ErrorCode::Conflict);
        assert_eq!(
            error.message,
            "the run has not completed, so it cannot be re-run"
        );
    }
}
