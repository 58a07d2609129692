//! Every wire type of gantry's HTTP API, versioned.
//!
//! Each API version is a module (`v1`, served under `/api/v1`); a type never changes meaning
//! within a version. Requests reject unknown fields, so a misspelt field is a 400 and not a
//! silently ignored setting. Every type derives `utoipa::ToSchema`: the server's OpenAPI
//! document is generated from these definitions, so it cannot drift from what is sent.
//!
//! This crate holds data only: no IO, no HTTP client or server. The runner will speak it too,
//! and must not depend on the store or the server.
//!
//! Golden files under `tests/golden/` pin the JSON form of every type.

pub mod v1;
