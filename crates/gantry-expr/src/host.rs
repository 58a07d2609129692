//! What an expression may ask of the place it runs in: the job's status and file hashes.
//!
//! Keeping these behind a trait is what lets this crate stay free of IO: the runner implements
//! [`Host`] over a real workspace, the server and tests use [`NoHost`] or their own fakes.

/// The status `success()`, `failure()` and `cancelled()` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Nothing has failed so far; also the status of a job that is still running.
    Success,
    /// A step has failed.
    Failure,
    /// The run was cancelled.
    Cancelled,
    /// Neither `success()` nor `failure()` holds: in a job's `if:`, a need was skipped or
    /// cancelled without any failing.
    Skipped,
}

impl JobStatus {
    /// Parses GitHub's spelling (`success`, `failure`, `cancelled`, any case), as found in
    /// `job.status` and `github.action_status`.
    pub fn parse(text: &str) -> Option<JobStatus> {
        match text.to_ascii_lowercase().as_str() {
            "success" | "succeeded" => Some(JobStatus::Success),
            "failure" | "failed" => Some(JobStatus::Failure),
            "cancelled" | "canceled" => Some(JobStatus::Cancelled),
            "skipped" => Some(JobStatus::Skipped),
            _ => None,
        }
    }

    /// GitHub's lower-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Skipped => "skipped",
        }
    }
}

/// The environment an expression is evaluated in.
pub trait Host {
    /// The status of the job so far. A job still running with no failure is
    /// [`JobStatus::Success`].
    fn job_status(&self) -> JobStatus;

    /// Hashes the files matching `patterns` (the `hashFiles` arguments, already converted to
    /// strings) and returns the hex digest, or `""` when nothing matches. The error text becomes
    /// the expression's evaluation error.
    fn hash_files(&self, patterns: &[String]) -> Result<String, String>;

    /// The status `success()` and `failure()` test when it is not the job's: inside a composite
    /// action's steps, the composite's own status (`github.action_status`, or
    /// `Some(JobStatus::Success)` when it is not set yet); in a job's `if:`, the verdict over its
    /// needs, where a skipped need makes both false ([`JobStatus::Skipped`]) while `cancelled()`
    /// still follows [`Host::job_status`]. Everywhere else `None`.
    fn success_failure_status(&self) -> Option<JobStatus> {
        None
    }

    /// The combined status of the named needs, for `success('build')` / `failure('build')` in
    /// a job's `if:`: failure when one of them failed, cancelled when one was cancelled, else
    /// success. Hosts that know the needs override this; the default is the job's status.
    fn needs_status(&self, job_ids: &[String]) -> JobStatus {
        let _ = job_ids;
        self.job_status()
    }
}

/// A host for places where the job has no workspace, such as the server: the status is success
/// and `hashFiles` fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn job_status(&self) -> JobStatus {
        JobStatus::Success
    }

    fn hash_files(&self, _patterns: &[String]) -> Result<String, String> {
        Err("hashFiles is not available here".to_owned())
    }
}
