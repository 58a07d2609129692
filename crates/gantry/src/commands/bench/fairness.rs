//! `gantry bench fairness`: quiet organizations' waits and Jain's index under the fair queue,
//! against plain FIFO on the same simulated trace.

use std::process::ExitCode;

use clap::Args;
use gantry_engine::Millis;
use gantry_engine::dispatch::simulate::{self, FairnessConfig};
use serde_json::json;

use crate::output;

/// Arguments of `gantry bench fairness`.
#[derive(Debug, Args)]
pub struct FairnessArgs {
    /// Seed of the simulated trace.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Organizations (equal weights); the first is the noisy one.
    #[arg(long, default_value_t = 100)]
    orgs: u32,
    /// The noisy organization's share of the jobs.
    #[arg(long, default_value_t = 0.9)]
    noisy_share: f64,
    /// Hosted runners (the bottleneck).
    #[arg(long, default_value_t = 50)]
    runners: u32,
    /// Jobs in the trace.
    #[arg(long, default_value_t = 20_000)]
    jobs: u32,
    /// Offered load over runner capacity while jobs arrive.
    #[arg(long, default_value_t = 1.25)]
    load: f64,
    /// Shortest job, in seconds.
    #[arg(long, default_value_t = 5)]
    min_seconds: u64,
    /// Longest job, in seconds.
    #[arg(long, default_value_t = 30)]
    max_seconds: u64,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &FairnessArgs) -> anyhow::Result<ExitCode> {
    let config = FairnessConfig {
        seed: args.seed,
        orgs: args.orgs,
        noisy_share: args.noisy_share,
        runners: args.runners,
        jobs: args.jobs,
        load: args.load,
        duration_min: Millis(args.min_seconds * 1000),
        duration_max: Millis(args.max_seconds.max(args.min_seconds) * 1000),
        ..FairnessConfig::default()
    };
    let report = simulate::fairness(&config);
    if args.json {
        output::json_line(&json!({
            "benchmark": "fairness",
            "config": config,
            "report": report,
        }));
    } else {
        let seconds = |ms: u64| ms as f64 / 1000.0;
        output::line(&format!(
            "fairness: {} orgs, 1 submits {:.0} % of {} jobs ({} quiet), {} runners, jobs {}-{} s, load {:.2}, seed {}\n                 quiet p50   quiet p99   noisy p50   noisy p99   Jain mean (min)\n  fair queue   {:>8.1} s  {:>8.1} s  {:>8.1} s  {:>8.1} s   {:.3} ({:.3})\n  FIFO (peer)  {:>8.1} s  {:>8.1} s  {:>8.1} s  {:>8.1} s   {:.3} ({:.3})\n  quiet p99 fair/FIFO: {:.4} (goal <= 0.1); Jain samples: {} (goal mean >= 0.95)",
            config.orgs,
            config.noisy_share * 100.0,
            report.jobs,
            report.quiet_jobs,
            config.runners,
            args.min_seconds,
            args.max_seconds,
            config.load,
            config.seed,
            seconds(report.fair.quiet_p50_ms),
            seconds(report.fair.quiet_p99_ms),
            seconds(report.fair.noisy_p50_ms),
            seconds(report.fair.noisy_p99_ms),
            report.fair.jain_mean,
            report.fair.jain_min,
            seconds(report.fifo.quiet_p50_ms),
            seconds(report.fifo.quiet_p99_ms),
            seconds(report.fifo.noisy_p50_ms),
            seconds(report.fifo.noisy_p99_ms),
            report.fifo.jain_mean,
            report.fifo.jain_min,
            report.quiet_p99_ratio,
            report.samples,
        ));
    }
    Ok(ExitCode::SUCCESS)
}
