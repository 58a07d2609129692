//! `gantry bench …`: benchmark programs that print their figures, one module each.
//!
//! Figures are medians over rounds, with a peer measured in the same run so a noisy, shared
//! machine still gives a meaningful ratio.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

mod dag;
mod drain;
mod drain_rounds;
mod fairness;
mod graphile;
mod heartbeats;
mod ingest;
mod job_start;
mod queue;
mod sandbox;
mod start_latency;
mod triggers;
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
    /// No-op jobs through claim → complete with durable commits, by simulated runners over
    /// loopback HTTP and through the dispatcher's in-process API.
    Drain(drain::DrainArgs),
    /// Job start latency (queued → first step running) through server, provisioner, runner
    /// processes and sandboxes, with a warm pool and with cold provisioning.
    JobStart(job_start::JobStartArgs),
    /// Start latency (queued → claimed by an idle runner) at fixed offered rates of new jobs,
    /// over loopback HTTP (and with `--in-process` through the dispatcher's API).
    StartLatency(start_latency::StartLatencyArgs),
    /// Many leased jobs heartbeating over HTTP at a fixed rate: latency percentiles, the
    /// claim phase's cost and the process's memory.
    Heartbeats(heartbeats::HeartbeatsArgs),
    /// A job sandbox (bubblewrap, cgroup limits) created, `true` run in it, and destroyed,
    /// per round; `true` without a sandbox is the peer.
    Sandbox(sandbox::SandboxArgs),
    /// graphile-worker (Node.js, PostgreSQL), the queue benchmarks' peer, alone: N no-op jobs
    /// drained, or add→start latency at a steady offered rate.
    Graphile(graphile::GraphileArgs),
    /// Trigger latency (push received → runs' jobs queued) over a git repository of 20
    /// workflow files, and signed GitHub webhook deliveries ingested per second; the peer is
    /// the same server answering `GET /health`.
    Triggers(triggers::TriggersArgs),
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
        BenchCommand::Drain(args) => drain::run(&args),
        BenchCommand::JobStart(args) => job_start::run(&args),
        BenchCommand::Graphile(args) => graphile::run(&args),
        BenchCommand::StartLatency(args) => start_latency::run(&args),
        BenchCommand::Heartbeats(args) => heartbeats::run(&args),
        BenchCommand::Triggers(args) => triggers::run(&args),
    }
}

/// Where a benchmark's server keeps its state: SQLite in a temporary directory, or a fresh
/// schema of a PostgreSQL database that [`BenchStorage::finish`] drops.
struct BenchStorage {
    storage: gantry_server::Storage,
    backend: &'static str,
    /// Holds the SQLite file until the benchmark ends.
    _data_dir: tempfile::TempDir,
}

impl BenchStorage {
    /// The backend's name as the figures print it: SQLite unless a PostgreSQL URL is given.
    fn backend_of(database_url: Option<&str>) -> &'static str {
        match database_url {
            Some(_) => "postgres",
            None => "sqlite",
        }
    }

    /// SQLite unless `database_url` names a PostgreSQL database; `tag` names the schema.
    fn new(database_url: Option<&str>, tag: &str) -> anyhow::Result<BenchStorage> {
        let data_dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let storage = match database_url {
            Some(url) => gantry_server::Storage::Postgres {
                url: url.to_owned(),
                schema: Some(format!("gantry_bench_{tag}_{}", std::process::id())),
            },
            None => gantry_server::Storage::Sqlite {
                path: data_dir.path().join("gantry.sqlite"),
            },
        };
        Ok(BenchStorage {
            storage,
            backend: Self::backend_of(database_url),
            _data_dir: data_dir,
        })
    }

    /// Drops the PostgreSQL schema (the SQLite directory goes with `self`).
    fn finish(self) -> anyhow::Result<()> {
        let gantry_server::Storage::Postgres {
            url,
            schema: Some(schema),
        } = &self.storage
        else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(url)
                .await
                .with_context(|| format!("cannot connect to `{url}`"))?;
            // The schema name is made by this program from a fixed tag and its process id.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&mut connection)
            .await
            .context("cannot drop the benchmark's schema")?;
            anyhow::Ok(())
        })
    }
}

/// The median of `values` (the upper one of an even count); `values` must not be empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
