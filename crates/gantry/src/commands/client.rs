//! The HTTP client the API commands share: a blocking `ureq` agent, the server's base URL,
//! and API errors read into the wire's error body.

use std::time::Duration;

use anyhow::{Context, bail};
use gantry_proto::v1::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the server is unless `--server` or `GANTRY_SERVER` says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// An answer of the API: the value, or the error body the server refused with.
pub enum Reply<T> {
    /// 2xx, with the status.
    Ok(T, u16),
    /// 4xx or 5xx with the API's error body.
    Refused(ErrorBody, u16),
}

/// A client of one server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `server`, else `$GANTRY_SERVER`, else [`DEFAULT_SERVER`].
    pub fn new(server: Option<&str>) -> Client {
        let base = server
            .map(str::to_owned)
            .or_else(|| std::env::var("GANTRY_SERVER").ok())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let agent = gantry_runner::agent::http_agent::agent(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        Client {
            base: base.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    /// The server's base URL, without a trailing `/`.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The full URL of `path` (below `/api/v1`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// `GET path` (below `/api/v1`).
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Reply<T>> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("cannot reach the server at `{url}`"))?;
        read(response, &url)
    }

    /// `PUT path` with a JSON body.
    pub fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Reply<T>> {
        let url = self.url(path);
        let response = self
            .agent
            .put(&url)
            .send_json(body)
            .with_context(|| format!("cannot reach the server at `{url}`"))?;
        read(response, &url)
    }

    /// `POST path` with a JSON body and extra headers.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply<T>> {
        let url = self.url(path);
        let mut request = self.agent.post(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send_json(body)
            .with_context(|| format!("cannot reach the server at `{url}`"))?;
        read(response, &url)
    }
}

fn read<T: DeserializeOwned>(
    mut response: ureq::http::Response<ureq::Body>,
    url: &str,
) -> anyhow::Result<Reply<T>> {
    let status = response.status().as_u16();
    // Above ureq's 10 MB default: a page of a job's log may hold long lines.
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .with_context(|| format!("cannot read the answer of `{url}`"))?;
    if (200..300).contains(&status) {
        // 204 No Content (a claim that found nothing) reads as JSON `null`.
        let text = if text.is_empty() {
            "null"
        } else {
            text.as_str()
        };
        let value = serde_json::from_str(text)
            .with_context(|| format!("unexpected answer from `{url}`: {text}"))?;
        Ok(Reply::Ok(value, status))
    } else {
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(error) => Ok(Reply::Refused(error, status)),
            Err(_) => bail!("`{url}` answered {status}: {text}"),
        }
    }
}
