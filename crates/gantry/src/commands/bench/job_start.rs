//! `gantry bench job-start`: job start latency — from the job being queued to its first step
//! running — through the whole path: embedded server, provisioner, `gantry runner
//! --ephemeral` processes, bubblewrap sandboxes. Measured twice in the same run: with a warm
//! pool (idle runners waiting on a claim) and with cold provisioning (no idle runner: each
//! job makes the provisioner start one). The peer is starting the runner binary itself
//! (`gantry --version`), the floor under any cold start.
//!
//! "Queued" is the job's `queued_at` (the server's clock) and "first step running" is the
//! time of the first line the first step logs (the runner's clock, on the same machine):
//! jobs are submitted one at a time, each after the previous one has completed and the pool
//! has had time to refill.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1 as proto;
use serde_json::json;

use super::ingest::percentile;
use crate::commands::client::{Client, Reply};
use crate::commands::up::{PoolArgs, ProviderKind, RunningPool};
use crate::embedded::EmbeddedServer;
use crate::output;

/// Arguments of `gantry bench job-start`.
#[derive(Debug, Args)]
pub struct JobStartArgs {
    /// Jobs per variant.
    #[arg(long, default_value_t = 40)]
    jobs: usize,
    /// Pause after each job, so the warm pool refills (milliseconds).
    #[arg(long, default_value_t = 300)]
    pause_ms: u64,
    /// Run jobs without a sandbox (to see what bubblewrap costs).
    #[arg(long)]
    unsafe_host_executor: bool,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

const WORKFLOW: &str = "on: push\njobs:\n  start:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo started\n";

/// Latency percentiles of one variant, in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
struct Latency {
    jobs: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Runs the benchmark.
pub fn run(args: &JobStartArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let warm = variant(args, 2)?;
    let cold = variant(args, 0)?;
    let peer = binary_start(args.jobs)?;
    let figures = json!({
        "benchmark": "job-start",
        "executor": if args.unsafe_host_executor { "host" } else { "bubblewrap" },
        "warm_pool": warm,
        "cold_provisioning": cold,
        "peer_binary_start": peer,
    });
    if args.json {
        output::json_line(&figures);
    } else {
        output::line(&format!(
            "job start (queued → first step running), {} jobs each: warm pool p50 {:.1} ms p99 {:.1} ms; cold p50 {:.1} ms p99 {:.1} ms; peer `gantry --version` p50 {:.1} ms p99 {:.1} ms",
            args.jobs, warm.p50_ms, warm.p99_ms, cold.p50_ms, cold.p99_ms, peer.p50_ms, peer.p99_ms
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// One variant: a pool keeping `min_idle` runners warm.
fn variant(args: &JobStartArgs, min_idle: usize) -> anyhow::Result<Latency> {
    let data = tempfile::tempdir().context("cannot create a temporary directory")?;
    let token = crate::commands::server::runner_token_file(data.path())?;
    let server = EmbeddedServer::start(gantry_server::ServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        storage: gantry_server::Storage::Sqlite {
            path: data.path().join("gantry.sqlite"),
        },
        max_body_bytes: proto::DEFAULT_MAX_BODY_BYTES,
        engine: Default::default(),
        runner_token: Some(token.clone()),
        runners: Default::default(),
        mirrors_dir: None,
    })?;
    let pool_args = PoolArgs {
        min_idle,
        max_runners: 4,
        idle_timeout_secs: 300,
        provider: ProviderKind::Local,
        create_command: None,
        delete_command: None,
        unsafe_host_executor: args.unsafe_host_executor,
        network: false,
    };
    let pool = RunningPool::start(&pool_args, &server.base, &token, data.path())?;
    let measured = measure(&server.base, args, min_idle);
    pool.stop();
    server.stop()?;
    measured
}

fn expect_ok<T>(reply: Reply<T>) -> anyhow::Result<T> {
    match reply {
        Reply::Ok(value, _) => Ok(value),
        Reply::Refused(error, status) => bail!("refused ({status}): {error}"),
    }
}

fn measure(base: &str, args: &JobStartArgs, min_idle: usize) -> anyhow::Result<Latency> {
    let client = Client::new(Some(base));
    super::drain::setup_tenant(&client)?;
    let trigger = proto::TriggerRun {
        workflow_path: ".github/workflows/start.yml".to_owned(),
        workflow: WORKFLOW.to_owned(),
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: None,
    };
    // Let the warm pool fill before the first job.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runners: proto::RunnerList = expect_ok(client.get("/runners")?)?;
        if runners.runners.len() >= min_idle {
            break;
        }
        if Instant::now() > deadline {
            bail!("the warm pool did not fill within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut latencies = Vec::with_capacity(args.jobs);
    for _ in 0..args.jobs {
        let run: proto::Run = expect_ok(client.post("/repos/bench/drain/runs", &trigger, &[])?)?;
        let job = loop {
            let detail: proto::RunDetail = expect_ok(client.get(&format!("/runs/{}", run.id))?)?;
            if detail.run.status == proto::RunStatus::Completed {
                break detail
                    .jobs
                    .into_iter()
                    .next()
                    .context("the run has no job")?;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log: proto::JobLog = expect_ok(client.get(&format!("/jobs/{}/logs?limit=1", job.id))?)?;
        let (Some(queued), Some(first)) = (job.queued_at, log.lines.first()) else {
            bail!("job {} has no queue time or no log line", job.id);
        };
        let millis = (first.time - queued).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        latencies.push(millis.max(0.0));
        std::thread::sleep(Duration::from_millis(args.pause_ms));
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Latency {
        jobs: latencies.len(),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    })
}

/// The peer: how long starting the runner's binary takes.
fn binary_start(rounds: usize) -> anyhow::Result<Latency> {
    let exe = std::env::current_exe().context("cannot find the gantry executable")?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        Command::new(&exe)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .context("cannot run gantry --version")?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(Latency {
        jobs: times.len(),
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        max_ms: times.last().copied().unwrap_or(0.0),
    })
}
