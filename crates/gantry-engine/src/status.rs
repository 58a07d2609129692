//! Run and job statuses and conclusions, spelled and combined the way GitHub does.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a run is in its life (GitHub's `status` of a workflow run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created (or re-run); no job has started yet.
    Queued,
    /// At least one job has started.
    InProgress,
    /// Every job has ended; the run has a conclusion.
    Completed,
}

/// Where a job instance is in its life (GitHub's `status` of a job, plus `waiting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Not ready: waiting on needs, a concurrency group or a `max-parallel` slot.
    Waiting,
    /// Ready and waiting for a runner.
    Queued,
    /// A runner has started it.
    InProgress,
    /// Ended; the instance has a conclusion.
    Completed,
}

/// How a run or job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// It ran and succeeded.
    Success,
    /// It ran and failed, or could not be run.
    Failure,
    /// It was cancelled (by request, fail-fast, a timeout or a newer run).
    Cancelled,
    /// Its `if:` was false, or a need did not succeed.
    Skipped,
}

impl RunStatus {
    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Completed => "completed",
        }
    }
}

impl JobStatus {
    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }
}

impl Conclusion {
    /// GitHub's spelling, as `needs.<id>.result` reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
        }
    }

    /// The result of a group of results (a matrix job's instances, a run's jobs): failure if any
    /// failed, else cancelled if any was cancelled, else skipped if all were skipped (or there
    /// were none), else success.
    pub fn combine(results: impl IntoIterator<Item = Conclusion>) -> Conclusion {
        let (mut failed, mut cancelled, mut ran) = (false, false, false);
        for result in results {
            match result {
                Conclusion::Failure => failed = true,
                Conclusion::Cancelled => cancelled = true,
                Conclusion::Success => ran = true,
                Conclusion::Skipped => {}
            }
        }
        if failed {
            Conclusion::Failure
        } else if cancelled {
            Conclusion::Cancelled
        } else if ran {
            Conclusion::Success
        } else {
            Conclusion::Skipped
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Conclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Conclusion::{Cancelled, Failure, Skipped, Success};
    use super::*;

    #[test]
    fn combines_like_github() {
        assert_eq!(Conclusion::combine([Success, Cancelled, Failure]), Failure);
        assert_eq!(Conclusion::combine([Success, Cancelled]), Cancelled);
        assert_eq!(Conclusion::combine([Success, Skipped]), Success);
        assert_eq!(Conclusion::combine([Skipped, Skipped]), Skipped);
        assert_eq!(Conclusion::combine([]), Skipped);
    }

    #[test]
    fn spells_like_github() {
        assert_eq!(RunStatus::InProgress.to_string(), "in_progress");
        assert_eq!(
            serde_json::to_string(&JobStatus::InProgress).unwrap(),
            "\"in_progress\""
        );
        assert_eq!(Cancelled.to_string(), "cancelled");
    }
}
