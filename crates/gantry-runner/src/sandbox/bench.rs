//! How long a job's sandbox costs: create, run `true` inside, wait, destroy, timed per round.
//!
//! This is the library half of `gantry bench sandbox`; the command prints the report. The goal
//! is a p99 of at most 50 ms per round, so that sandboxing adds nothing noticeable to a job's
//! start. The peer, measured in the same rounds, is `true` started without any sandbox: the
//! cost of a process on this machine under its current load.
//!
//! The job directories are made under `base_dir`, whose file system counts: making and
//! removing them is part of every round.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Executor, ProcessSpec, ResourceLimits, SandboxError, SandboxSpec};

/// Figures of one benchmark run, in microseconds per create → run → destroy round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchReport {
    /// The executor measured.
    pub executor: &'static str,
    /// Rounds timed.
    pub rounds: usize,
    /// Median.
    pub p50_micros: u64,
    /// 90th percentile.
    pub p90_micros: u64,
    /// 99th percentile.
    pub p99_micros: u64,
    /// Slowest round.
    pub max_micros: u64,
    /// Median of the peer: `true` started without a sandbox.
    pub peer_p50_micros: u64,
    /// 99th percentile of the peer.
    pub peer_p99_micros: u64,
    /// Every round, sorted from fastest to slowest.
    pub samples_micros: Vec<u64>,
}

/// Times `rounds` rounds of: create a sandbox (with memory, pids and CPU limits, so the cgroup
/// work is measured too) in a fresh directory under `base_dir`, run `true` in it, wait for it,
/// destroy it.
pub fn bench_create_destroy(
    executor: &dyn Executor,
    base_dir: &Path,
    rounds: usize,
) -> Result<BenchReport, SandboxError> {
    if rounds == 0 {
        return Err(SandboxError::Invalid(
            "the benchmark needs at least one round".to_owned(),
        ));
    }
    let limits = ResourceLimits {
        memory_bytes: Some(512 << 20),
        max_pids: Some(256),
        cpu_millicores: Some(1000),
    };
    let mut samples = Vec::with_capacity(rounds);
    let mut peer_samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        peer_samples.push(time_bare_true()?);
        let job_dir = base_dir.join(format!("bench-{round}"));
        let started = Instant::now();
        let sandbox = executor.create(&SandboxSpec {
            job_dir: job_dir.clone(),
            limits,
            network: false,
        })?;
        let process = ProcessSpec {
            argv: vec!["true".to_owned()],
            env: [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into(),
            cwd: sandbox.paths().workspace.inside.clone(),
        };
        let status = sandbox
            .command(&process)?
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| SandboxError::Io {
                what: format!("failed to run `true` in `{}`", job_dir.display()),
                source,
            })?;
        sandbox.destroy()?;
        let elapsed = started.elapsed();
        if !status.success() {
            return Err(SandboxError::Io {
                what: format!("`true` in `{}` failed", job_dir.display()),
                source: std::io::Error::other(status.to_string()),
            });
        }
        samples.push(micros(elapsed));
    }
    samples.sort_unstable();
    peer_samples.sort_unstable();
    Ok(BenchReport {
        executor: executor.name(),
        rounds,
        p50_micros: percentile(&samples, 50),
        p90_micros: percentile(&samples, 90),
        p99_micros: percentile(&samples, 99),
        max_micros: samples.last().copied().unwrap_or(0),
        peer_p50_micros: percentile(&peer_samples, 50),
        peer_p99_micros: percentile(&peer_samples, 99),
        samples_micros: samples,
    })
}

/// Microseconds to start `true` without a sandbox and wait for it.
fn time_bare_true() -> Result<u64, SandboxError> {
    let started = Instant::now();
    let status = Command::new("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| SandboxError::Io {
            what: "failed to run `true` without a sandbox".to_owned(),
            source,
        })?;
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(SandboxError::Io {
            what: "`true` without a sandbox failed".to_owned(),
            source: std::io::Error::other(status.to_string()),
        });
    }
    Ok(micros(elapsed))
}

fn micros(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// The nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[u64], percent: usize) -> u64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), 50);
        assert_eq!(percentile(&samples, 99), 99);
        assert_eq!(percentile(&samples, 100), 100);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
