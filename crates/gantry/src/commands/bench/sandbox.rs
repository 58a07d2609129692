//! `gantry bench sandbox`: create a job sandbox, run `true` in it, destroy it; percentiles per
//! round, with `true` started without a sandbox as the peer in the same rounds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gantry_runner::sandbox::{BubblewrapConfig, BubblewrapExecutor, bench_create_destroy};
use serde_json::json;

use crate::output;

/// Arguments of `gantry bench sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Rounds to time.
    #[arg(long, default_value_t = 300)]
    rounds: usize,
    /// The directory job directories are made in (its file system is part of the figure:
    /// tmpfs such as `/dev/shm` is the fastest).
    #[arg(long, value_name = "DIR", default_value = "/dev/shm")]
    base_dir: PathBuf,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: &SandboxArgs) -> anyhow::Result<ExitCode> {
    let executor = BubblewrapExecutor::new(BubblewrapConfig::default())
        .context("the bubblewrap executor is not usable here")?;
    let base = tempfile::tempdir_in(&args.base_dir)
        .with_context(|| format!("cannot make a directory in `{}`", args.base_dir.display()))?;
    let report = bench_create_destroy(&executor, base.path(), args.rounds)
        .context("the sandbox benchmark failed")?;
    let ms = |micros: u64| micros as f64 / 1000.0;
    let figures = json!({
        "benchmark": "sandbox",
        "executor": report.executor,
        "base_dir": args.base_dir.display().to_string(),
        "rounds": report.rounds,
        "p50_ms": ms(report.p50_micros),
        "p90_ms": ms(report.p90_micros),
        "p99_ms": ms(report.p99_micros),
        "max_ms": ms(report.max_micros),
        "peer_no_sandbox_p50_ms": ms(report.peer_p50_micros),
        "peer_no_sandbox_p99_ms": ms(report.peer_p99_micros),
    });
    if args.json {
        output::json_line(&figures);
    } else {
        output::line(&format!(
            "sandbox ({}) create → run `true` → destroy under `{}`, {} rounds\n  p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n  peer, `true` without a sandbox: p50 {:.1} ms, p99 {:.1} ms",
            report.executor,
            args.base_dir.display(),
            report.rounds,
            ms(report.p50_micros),
            ms(report.p90_micros),
            ms(report.p99_micros),
            ms(report.max_micros),
            ms(report.peer_p50_micros),
            ms(report.peer_p99_micros)
        ));
    }
    Ok(ExitCode::SUCCESS)
}
