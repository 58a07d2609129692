//! `gantry bench …`: benchmark programs that print their figures, one module each.
//!
//! Figures are medians over rounds, with a peer measured in the same run so a noisy, shared
//! machine still gives a meaningful ratio.

use std::process::ExitCode;

use clap::Subcommand;

mod dag;
mod fairness;
mod ingest;
mod queue;
mod sandbox;
mod workflow_load;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Parse + validate + plan throughput over a folder of workflow files, on one core, with
    /// plain YAML parsing of the same files (serde-saphyr into JSON values) as the peer and the
    /// YAML parser's bare event stream as the ceiling.
    WorkflowLoad(workflow_load::WorkflowLoadArgs),
    /// Workflow runs (five jobs with `needs`) triggered over HTTP and durably stored per
    /// second, with API latency percentiles, on SQLite or PostgreSQL; the peer is the same
    /// server answering `GET /health`.
    Ingest(ingest::IngestArgs),
    /// Time from a job's completion to its dependents being ready, through the server's path
    /// (a 400-job chain and a 1,000-job fan-out/fan-in), with the pure engine as the peer.
    Dag(dag::DagArgs),
    /// The dispatcher's fairness: 100 organizations, one submitting 90 % of the jobs, runners
    /// the bottleneck; the same trace through the fair queue and through FIFO as the peer.
    Fairness(fairness::FairnessArgs),
    /// The dispatcher's fair queue alone: push, push + pick + finish at steady state, and
    /// drain, over many organizations, repositories and label pools, on one core.
    Queue(queue::QueueArgs),
    /// A job sandbox (bubblewrap, cgroup limits) created, `true` run in it, and destroyed,
    /// per round; `true` without a sandbox is the peer.
    Sandbox(sandbox::SandboxArgs),
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::WorkflowLoad(args) => workflow_load::run(&args),
        BenchCommand::Ingest(args) => ingest::run(&args),
        BenchCommand::Dag(args) => dag::run(&args),
        BenchCommand::Fairness(args) => fairness::run(&args),
        BenchCommand::Queue(args) => queue::run(&args),
        BenchCommand::Sandbox(args) => sandbox::run(&args),
    }
}

/// The median of `values` (the upper one of an even count); `values` must not be empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
