//! The runner protocol's client: one blocking method per endpoint of
//! `gantry_proto::v1::runner`, over `ureq`.
//!
//! Every method makes exactly one request; what to do when it fails is the caller's decision,
//! and [`ClientError`] is shaped for that decision: [`ClientError::StaleToken`] means the job
//! must stop and its results are ignored, [`ClientError::Unauthorized`] means the runner's
//! credential is gone, [`ClientError::Refused`] is any other refusal (not worth repeating), and
//! [`ClientError::Transport`] (plus a server's 5xx) is worth repeating with [`Backoff`].

use std::time::Duration;

use gantry_proto::v1::{
    ClaimJob, CompleteAttempt, ErrorBody, ErrorCode, Heartbeat, HeartbeatAnswer, Job,
    JobAssignment, LogChunk, LogChunkAccepted, RegisterRunner, RunnerRegistration, StepReport,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long an ordinary call may take, end to end. Generous, because a slow answer is better
/// than a repeated request, but bounded so a half-dead connection does not hang a job.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer than its `wait_ms` a claim may take: the server holds a claim open for up
/// to `wait_ms`, so the HTTP timeout must exceed it or every idle claim would end as an error.
const CLAIM_SLACK: Duration = Duration::from_secs(15);

/// The largest answer body read (a job payload with its contexts can be large).
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// Why a protocol call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The credential or registration token was refused (401): the runner cannot go on.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The fencing token is no longer the job's latest (409 `stale_token`): the job moved on
    /// and this runner must stop it; nothing it reports counts any more.
    #[error("stale fencing token: {0}")]
    StaleToken(String),
    /// Any other refusal with the API's error body.
    #[error("refused with {status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, the connection broke, or it answered with something
    /// that is not the protocol (a proxy's error page, a truncated body).
    #[error("cannot talk to `{url}`: {message}")]
    Transport {
        /// The request's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// Whether the same request may succeed later: transport failures and the server's own
    /// failures (`internal`, `unavailable`), never refusals of the request itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500,
            ClientError::Unauthorized(_) | ClientError::StaleToken(_) => false,
        }
    }
}

/// Exponential backoff between attempts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The pause before attempt `attempt` (1 for the first retry), doubled each time up to
    /// `max`, with up to a quarter of jitter so runners that lost the server together do not
    /// come back in lockstep.
    pub fn pause(&self, attempt: u32) -> Duration {
        let doubled = self.first.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let base = doubled.min(self.max);
        // The clock's nanoseconds are random enough to spread retries; no RNG dependency.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.subsec_nanos())
            .unwrap_or(0);
        base + base / 4 * (nanos % 1000) / 1000
    }

    /// Calls `call` until it succeeds, fails with an error that is not retryable, or `give_up`
    /// says so (it is asked before and during each pause, with the error so far); the last
    /// error is returned then.
    pub fn retry<T>(
        &self,
        what: &str,
        mut give_up: impl FnMut(&ClientError) -> bool,
        mut call: impl FnMut() -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut attempt = 0;
        loop {
            match call() {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() && !give_up(&error) => {
                    attempt += 1;
                    let pause = self.pause(attempt);
                    tracing::warn!(%error, attempt, pause_ms = pause.as_millis() as u64, "{what} failed; retrying");
                    // Sleep in slices so that giving up (the agent stopping) is not delayed by
                    // a long pause.
                    let deadline = std::time::Instant::now() + pause;
                    loop {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        if give_up(&error) {
                            return Err(error);
                        }
                        std::thread::sleep(left.min(Duration::from_millis(100)));
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// A client of one server's runner protocol. Cheap to clone: clones share the connection
/// pool.
#[derive(Debug, Clone)]
pub struct ProtocolClient {
    base: String,
    agent: ureq::Agent,
    credential: Option<String>,
}

impl ProtocolClient {
    /// A client of the server at `server` (e.g. `http://127.0.0.1:8080`), not registered yet.
    pub fn new(server: &str) -> ProtocolClient {
        let agent = super::http_agent::agent(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(CALL_TIMEOUT))
                .build(),
        );
        ProtocolClient {
            base: server.trim_end_matches('/').to_owned(),
            agent,
            credential: None,
        }
    }

    /// Sets the credential every call after registration carries.
    pub fn set_credential(&mut self, credential: String) {
        self.credential = Some(credential);
    }

    /// `POST /runners/register`.
    pub fn register(&self, request: &RegisterRunner) -> Result<RunnerRegistration, ClientError> {
        self.post("/runners/register", request, CALL_TIMEOUT)?
            .ok_or_else(|| self.empty_answer("/runners/register"))
    }

    /// `POST /runner/claim`: a job, or `None` when none came within `wait_ms`.
    pub fn claim(&self, wait_ms: u64) -> Result<Option<JobAssignment>, ClientError> {
        let timeout = Duration::from_millis(wait_ms) + CLAIM_SLACK;
        self.post("/runner/claim", &ClaimJob { wait_ms }, timeout)
    }

    /// `POST /runner/jobs/{job}/heartbeat`.
    pub fn heartbeat(
        &self,
        job_id: i64,
        fencing_token: i64,
    ) -> Result<HeartbeatAnswer, ClientError> {
        let path = format!("/runner/jobs/{job_id}/heartbeat");
        self.post(&path, &Heartbeat { fencing_token }, CALL_TIMEOUT)?
            .ok_or_else(|| self.empty_answer(&path))
    }

    /// `POST /runner/jobs/{job}/steps`.
    pub fn step(&self, job_id: i64, report: &StepReport) -> Result<(), ClientError> {
        let path = format!("/runner/jobs/{job_id}/steps");
        self.post::<serde_json::Value>(&path, report, CALL_TIMEOUT)
            .map(drop)
    }

    /// `POST /runner/jobs/{job}/logs`.
    pub fn logs(&self, job_id: i64, chunk: &LogChunk) -> Result<LogChunkAccepted, ClientError> {
        let path = format!("/runner/jobs/{job_id}/logs");
        self.post(&path, chunk, CALL_TIMEOUT)?
            .ok_or_else(|| self.empty_answer(&path))
    }

    /// `POST /runner/jobs/{job}/complete`.
    pub fn complete(&self, job_id: i64, result: &CompleteAttempt) -> Result<(), ClientError> {
        let path = format!("/runner/jobs/{job_id}/complete");
        self.post::<serde_json::Value>(&path, result, CALL_TIMEOUT)
            .map(drop)
    }

    /// `GET /runs/{run}/jobs/{job}`: the job as viewers see it; the agent reads its `runs-on`
    /// labels from it to choose a platform, since the assignment does not carry them.
    pub fn job(&self, run_id: i64, job_id: i64) -> Result<Job, ClientError> {
        let path = format!("/runs/{run_id}/jobs/{job_id}");
        let url = self.url(&path);
        let mut request = self.agent.get(&url);
        if let Some(credential) = &self.credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        let response = request.call().map_err(|error| transport(&url, &error))?;
        answer(response, &url)?.ok_or_else(|| self.empty_answer(&path))
    }

    /// `GET /runner/jobs/{job}/source`: the run's commit as a tar archive (at most
    /// `max_bytes` read).
    pub fn source(
        &self,
        job_id: i64,
        fencing_token: i64,
        repository: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let path = format!("/runner/jobs/{job_id}/source");
        let url = self.url(&path);
        let mut request = self
            .agent
            .get(&url)
            .query("fencing_token", fencing_token.to_string())
            .query("repository", repository)
            .config()
            .timeout_global(Some(Duration::from_secs(600)))
            .build();
        if let Some(credential) = &self.credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        let mut response = request.call().map_err(|error| transport(&url, &error))?;
        if !response.status().is_success() {
            return answer::<serde_json::Value>(response, &url).map(|_| Vec::new());
        }
        response
            .body_mut()
            .with_config()
            .limit(max_bytes)
            .read_to_vec()
            .map_err(|error| transport(&url, &error))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn empty_answer(&self, path: &str) -> ClientError {
        ClientError::Transport {
            url: self.url(path),
            message: "the answer has no body".to_owned(),
        }
    }

    /// One `POST` with a JSON body; `None` for `204 No Content`.
    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Option<T>, ClientError> {
        let url = self.url(path);
        let mut request = self
            .agent
            .post(&url)
            .config()
            .timeout_global(Some(timeout))
            .build();
        if let Some(credential) = &self.credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        let response = request
            .send_json(body)
            .map_err(|error| transport(&url, &error))?;
        answer(response, &url)
    }
}

fn transport(url: &str, error: &ureq::Error) -> ClientError {
    ClientError::Transport {
        url: url.to_owned(),
        message: error.to_string(),
    }
}

/// Reads an answer: the value (`None` for 204), or the error it stands for.
fn answer<T: DeserializeOwned>(
    mut response: ureq::http::Response<ureq::Body>,
    url: &str,
) -> Result<Option<T>, ClientError> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|error| transport(url, &error))?;
    if status == 204 {
        return Ok(None);
    }
    if (200..300).contains(&status) {
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| ClientError::Transport {
                url: url.to_owned(),
                message: format!("unexpected answer ({error}): {}", excerpt(&text)),
            });
    }
    Err(refusal(status, &text, url))
}

/// The error a non-2xx answer stands for.
fn refusal(status: u16, text: &str, url: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => match body.error.code {
            ErrorCode::StaleToken => ClientError::StaleToken(body.error.message),
            ErrorCode::Unauthorized => ClientError::Unauthorized(body.error.message),
            code => ClientError::Refused {
                status,
                code,
                message: body.error.message,
            },
        },
        // Not the API's error body: something between us and the server answered (a proxy
        // during a restart), so it is a transport failure worth retrying when it is a 5xx.
        Err(_) if status == 401 => ClientError::Unauthorized(excerpt(text)),
        Err(_) if status >= 500 => ClientError::Transport {
            url: url.to_owned(),
            message: format!("answered {status}: {}", excerpt(text)),
        },
        Err(_) => ClientError::Refused {
            status,
            code: ErrorCode::InvalidRequest,
            message: excerpt(text),
        },
    }
}

/// The start of a body, for error messages.
fn excerpt(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified_by_code() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert!(matches!(
            refusal(409, &body("stale_token"), "u"),
            ClientError::StaleToken(_)
        ));
        assert!(matches!(
            refusal(401, &body("unauthorized"), "u"),
            ClientError::Unauthorized(_)
        ));
        let conflict = refusal(409, &body("conflict"), "u");
        assert!(matches!(
            conflict,
            ClientError::Refused {
                status: 409,
                code: ErrorCode::Conflict,
                ..
            }
        ));
        assert!(!conflict.is_retryable());
        assert!(refusal(503, &body("unavailable"), "u").is_retryable());
        assert!(refusal(502, "<html>bad gateway</html>", "u").is_retryable());
        assert!(!refusal(404, "nope", "u").is_retryable());
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let within = |attempt: u32, base: u64| {
            let pause = backoff.pause(attempt).as_millis() as u64;
            assert!(
                (base..=base + base / 4).contains(&pause),
                "{attempt}: {pause}"
            );
        };
        within(1, 100);
        within(2, 200);
        within(3, 400);
        within(5, 1000);
        within(40, 1000);
    }

    #[test]
    fn retry_stops_at_refusals_and_when_told() {
        let backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        let mut calls = 0;
        let result: Result<(), _> = backoff.retry(
            "test",
            |_| false,
            || {
                calls += 1;
                if calls < 3 {
                    Err(ClientError::Transport {
                        url: "u".into(),
                        message: "down".into(),
                    })
                } else {
                    Err(ClientError::StaleToken("gone".into()))
                }
            },
        );
        assert!(matches!(result, Err(ClientError::StaleToken(_))));
        assert_eq!(calls, 3);

        let calls = std::cell::Cell::new(0);
        let result: Result<(), _> = backoff.retry(
            "test",
            |_| calls.get() >= 2,
            || {
                calls.set(calls.get() + 1);
                Err(ClientError::Transport {
                    url: "u".into(),
                    message: "down".into(),
                })
            },
        );
        assert!(result.is_err());
        assert_eq!(calls.get(), 2);
    }
}
