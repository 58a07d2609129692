//! Request extractors that refuse bad input with the API's error body instead of axum's plain
//! text: JSON bodies (400 malformed or unknown field, 413 over the limit, 415 not JSON), path
//! and query parameters (400).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use gantry_proto::v1::{ErrorCode, ErrorDetail};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body, parsed strictly: the wire types reject unknown fields.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a body with content type `application/json`",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: a request with no body and no content type means
/// `T::default()` (so `POST /runs/{run}/rerun` works bare); a body must be JSON as for
/// [`ApiJson`].
#[derive(Debug, Clone)]
pub struct ApiJsonOrDefault<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for ApiJsonOrDefault<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.headers().contains_key(CONTENT_TYPE) {
            return ApiJson::<T>::from_request(request, state)
                .await
                .map(|ApiJson(value)| ApiJsonOrDefault(value));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        if bytes.is_empty() {
            return Ok(ApiJsonOrDefault(T::default()));
        }
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected a body with content type `application/json`, or no body",
        ))
    }
}

/// Parses a JSON body; a syntax error or a field the type does not know is a 400 with the
/// position in the body.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let message = error.to_string();
        ApiError {
            code: ErrorCode::InvalidJson,
            message: format!("invalid JSON body: {message}"),
            details: vec![ErrorDetail {
                line: u32::try_from(error.line()).ok().filter(|&line| line > 0),
                col: u32::try_from(error.column()).ok().filter(|&col| col > 0),
                field: None,
                message,
            }],
        }
    })
}

pub(crate) fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the server's limit",
        )
    } else {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    }
}

/// Path parameters.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("invalid path: {}", rejection.body_text()),
                )
            })
    }
}

/// Query parameters; unknown ones are refused like unknown body fields.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("invalid query: {}", rejection.body_text()),
                )
            })
    }
}
