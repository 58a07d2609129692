//! `gantry bench queue`: the dispatcher's fair queue alone, in-process on one core: fill,
//! steady-state push + pick + finish, and drain rates, medians over rounds.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use gantry_engine::dispatch::simulate::{self, ThroughputConfig};
use serde_json::json;

use super::median;
use crate::output;

/// Arguments of `gantry bench queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Jobs waiting in the queue (filled before the timed churn, drained after it).
    #[arg(long, default_value_t = 200_000)]
    jobs: u32,
    /// Organizations the jobs spread over (5 repositories each, 4 label pools).
    #[arg(long, default_value_t = 2_000)]
    orgs: u32,
    /// Push + pick + finish cycles timed per round.
    #[arg(long, default_value_t = 1_000_000)]
    cycles: u32,
    /// Rounds; the median round is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &QueueArgs) -> anyhow::Result<ExitCode> {
    let config = ThroughputConfig {
        jobs: args.jobs,
        orgs: args.orgs,
        cycles: args.cycles,
        ..ThroughputConfig::default()
    };
    let origin = Instant::now();
    let mut clock = || origin.elapsed().as_secs_f64();
    let mut push = Vec::new();
    let mut cycles = Vec::new();
    let mut drain = Vec::new();
    for round in 0..args.rounds.max(1) {
        let report = simulate::throughput(
            &ThroughputConfig {
                seed: config.seed + round as u64,
                ..config.clone()
            },
            &mut clock,
        );
        push.push(report.push_per_second);
        cycles.push(report.cycles_per_second);
        drain.push(report.drain_per_second);
    }
    let (push, cycles, drain) = (median(&mut push), median(&mut cycles), median(&mut drain));
    if args.json {
        output::json_line(&json!({
            "benchmark": "queue",
            "config": config,
            "rounds": args.rounds,
            "push_per_second_median": push.round(),
            "push_pick_finish_cycles_per_second_median": cycles.round(),
            "drain_pick_finish_per_second_median": drain.round(),
        }));
    } else {
        output::line(&format!(
            "queue: {} jobs waiting over {} orgs, {} cycles, {} rounds (medians, one core)\n  fill (push):                          {:>10.0} jobs/s\n  steady state (push + pick + finish):  {:>10.0} cycles/s (goal > 1,000,000)\n  drain (pick + finish):                {:>10.0} jobs/s",
            config.jobs, config.orgs, config.cycles, args.rounds, push, cycles, drain
        ));
    }
    Ok(ExitCode::SUCCESS)
}
