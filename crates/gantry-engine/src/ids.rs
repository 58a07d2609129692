//! Identifiers and time: runs, job instances, attempts and milliseconds.
//!
//! Each is a newtype so a run id can never be passed where an attempt is expected, and each
//! serializes as its bare value so stored state stays readable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A workflow run, numbered by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A run attempt: 1 when the run is created, one more for each re-run (`github.run_attempt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunAttempt(pub u32);

impl fmt::Display for RunAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One dispatch of a job instance to a runner. It grows every time the instance is queued
/// again (after a lost runner or in a re-run), so reports from an older dispatch are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attempt(pub u32);

impl Attempt {
    /// The first attempt of a new instance.
    pub const FIRST: Attempt = Attempt(1);

    /// The attempt after this one.
    pub fn next(self) -> Attempt {
        Attempt(self.0.saturating_add(1))
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A point in time or a duration, in milliseconds. The engine never reads a clock: callers pass
/// the current time with every event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// One minute.
    pub const MINUTE: Millis = Millis(60_000);
    /// One hour.
    pub const HOUR: Millis = Millis(3_600_000);

    /// `minutes` as milliseconds, rounded to the nearest millisecond (saturating).
    pub fn from_minutes(minutes: f64) -> Millis {
        // `as` saturates for out-of-range floats, which is what a timeout wants.
        Millis((minutes * 60_000.0).round() as u64)
    }

    /// This time plus `duration`, saturating instead of overflowing.
    pub fn after(self, duration: Millis) -> Millis {
        Millis(self.0.saturating_add(duration.0))
    }
}

impl fmt::Display for Millis {
    /// Durations as people read them: `24h`, `90m`, `1500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms >= Millis::HOUR.0 && ms.is_multiple_of(Millis::HOUR.0) {
            write!(f, "{}h", ms / Millis::HOUR.0)
        } else if ms >= Millis::MINUTE.0 && ms.is_multiple_of(Millis::MINUTE.0) {
            write!(f, "{}m", ms / Millis::MINUTE.0)
        } else if ms >= 1000 && ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// One job instance of a run: the job's id and its position among the job's matrix
/// combinations (0 for a job without a matrix).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobKey {
    /// The job id, the key under `jobs:`.
    pub job: String,
    /// The matrix combination, in GitHub's expansion order; 0 without a matrix.
    pub index: u32,
}

impl JobKey {
    /// The instance `index` of job `job`.
    pub fn new(job: impl Into<String>, index: u32) -> JobKey {
        JobKey {
            job: job.into(),
            index,
        }
    }

    /// The only instance of a job without a matrix.
    pub fn single(job: impl Into<String>) -> JobKey {
        JobKey::new(job, 0)
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.job, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_the_largest_whole_unit() {
        assert_eq!(Millis(24 * 3_600_000).to_string(), "24h");
        assert_eq!(Millis(90 * 60_000).to_string(), "90m");
        assert_eq!(Millis(5_000).to_string(), "5s");
        assert_eq!(Millis(1_500).to_string(), "1500ms");
        assert_eq!(Millis::from_minutes(360.0), Millis(21_600_000));
        assert_eq!(Millis(u64::MAX).after(Millis(1)), Millis(u64::MAX));
    }

    #[test]
    fn ids_serialize_as_bare_values() {
        let json = serde_json::to_string(&(RunId(7), Attempt(2), Millis(5))).unwrap();
        assert_eq!(json, "[7,2,5]");
        assert_eq!(JobKey::new("build", 2).to_string(), "build[2]");
    }
}
