//! `gantry bench ingest`: workflow runs accepted over HTTP and durably stored, per second, with
//! the API's latency percentiles.
//!
//! The benchmark starts a real server in this process on a loopback port, over a fresh SQLite
//! file (durable commits: WAL with `synchronous=FULL`) or a fresh schema of a PostgreSQL
//! database, and triggers runs of a five-job workflow with `needs` from many client threads,
//! each with its own keep-alive connection. A reply of 201 means the run and its jobs are
//! committed. The peer measured in the same run is the same server answering `GET /health`
//! over the same connections: the HTTP floor that ingest cannot beat on this machine.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use gantry_proto::v1 as proto;
use serde_json::json;

use super::BenchStorage;
use crate::commands::client::{Client, Reply};
use crate::output;

/// The workflow each run is made from: five jobs, a diamond with a tail.
const WORKFLOW: &str = "\
name: ingest
on: push
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: make lint
  test:
    needs: lint
    runs-on: ubuntu-latest
    steps:
      - run: make test
  build:
    needs: lint
    runs-on: ubuntu-latest
    steps:
      - run: make build
  package:
    needs: [test, build]
    runs-on: ubuntu-latest
    steps:
      - run: make package
  deploy:
    needs: package
    if: github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    steps:
      - run: make deploy
";

/// Arguments of `gantry bench ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Runs to trigger.
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Use this PostgreSQL database (a fresh schema, dropped afterwards) instead of SQLite in
    /// a temporary directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What one phase of requests measured.
pub(super) struct Phase {
    pub(super) per_second: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
}

/// Runs the benchmark.
pub fn run(args: &IngestArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 || args.connections == 0 {
        bail!("--runs and --connections must be at least 1");
    }
    let place = BenchStorage::new(args.database_url.as_deref(), "ingest")?;
    let backend = place.backend;
    let server = BenchServer::start(place.storage.clone())?;
    let client = Client::new(Some(&server.base));
    setup_tenant(&client)?;

    let peer =
        measure(
            &server.base,
            args.runs,
            args.connections,
            &|client| match client.get::<serde_json::Value>("/health")? {
                Reply::Ok(..) => Ok(()),
                Reply::Refused(error, status) => bail!("health refused ({status}): {:?}", error),
            },
        )?;
    let body = json!({
        "workflow_path": ".github/workflows/ingest.yml",
        "workflow": WORKFLOW,
        "event": "push",
        "ref": "refs/heads/main",
    });
    let ingest =
        measure(
            &server.base,
            args.runs,
            args.connections,
            &|client| match client.post::<serde_json::Value>(
                "/repos/bench/ingest/runs",
                &body,
                &[],
            )? {
                Reply::Ok(_, 201) => Ok(()),
                Reply::Ok(_, status) => bail!("trigger answered {status}, not 201"),
                Reply::Refused(error, status) => bail!("trigger refused ({status}): {:?}", error),
            },
        )?;
    let stored = count_runs(&client)?;
    server.stop()?;
    place.finish()?;
    if stored != args.runs {
        bail!("{} runs triggered but {stored} stored", args.runs);
    }

    let figures = json!({
        "benchmark": "ingest",
        "backend": backend,
        "runs": args.runs,
        "jobs_per_run": 5,
        "connections": args.connections,
        "runs_per_second": ingest.per_second.round(),
        "api_p50_ms": round2(ingest.p50_ms),
        "api_p99_ms": round2(ingest.p99_ms),
        "peer_health_requests_per_second": peer.per_second.round(),
        "peer_health_p50_ms": round2(peer.p50_ms),
        "peer_health_p99_ms": round2(peer.p99_ms),
        "ingest_to_peer_ratio": round2(ingest.per_second / peer.per_second),
    });
    if args.json {
        output::json_line(&figures);
    } else {
        output::line(&format!(
            "ingest on {}: {} runs of 5 jobs over {} connections, all stored\n  trigger:             {:.0} runs/s, p50 {:.2} ms, p99 {:.2} ms\n  peer, GET /health:   {:.0} req/s,  p50 {:.2} ms, p99 {:.2} ms\n  ratio ingest/peer:   {:.2}",
            backend,
            args.runs,
            args.connections,
            ingest.per_second,
            ingest.p50_ms,
            ingest.p99_ms,
            peer.per_second,
            peer.p50_ms,
            peer.p99_ms,
            ingest.per_second / peer.per_second
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Sends `total` requests over `connections` threads, each with its own client, and measures
/// the rate over the whole phase and every request's latency.
pub(super) fn measure(
    base: &str,
    total: usize,
    connections: usize,
    request: &(dyn Fn(&Client) -> anyhow::Result<()> + Sync),
) -> anyhow::Result<Phase> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                let next = Arc::clone(&next);
                scope.spawn(move || -> anyhow::Result<Vec<Duration>> {
                    let client = Client::new(Some(base));
                    let mut latencies = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        let sent = Instant::now();
                        request(&client)?;
                        latencies.push(sent.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(total);
        for worker in workers {
            let latencies = worker
                .join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
            all.extend(latencies);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut millis: Vec<f64> = latencies
        .iter()
        .map(|latency| latency.as_secs_f64() * 1000.0)
        .collect();
    millis.sort_by(f64::total_cmp);
    Ok(Phase {
        per_second: millis.len() as f64 / elapsed,
        p50_ms: percentile(&millis, 0.50),
        p99_ms: percentile(&millis, 0.99),
    })
}

/// The `fraction` percentile of sorted, non-empty `values` (nearest rank).
pub(super) fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn setup_tenant(client: &Client) -> anyhow::Result<()> {
    let org = proto::CreateOrganization {
        name: "bench".to_owned(),
        weight: None,
        hosted_concurrency_limit: None,
    };
    let repo = proto::CreateRepository {
        name: "ingest".to_owned(),
        default_branch: None,
    };
    for (path, body) in [
        ("/orgs", serde_json::to_value(org)?),
        ("/orgs/bench/repos", serde_json::to_value(repo)?),
    ] {
        if let Reply::Refused(error, status) = client.post::<serde_json::Value>(path, &body, &[])? {
            bail!("POST {path} refused ({status}): {:?}", error);
        }
    }
    Ok(())
}

/// How many runs the repository has, counted through the API's pages.
fn count_runs(client: &Client) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/repos/bench/ingest/runs?limit=500&cursor={cursor}"),
            None => "/repos/bench/ingest/runs?limit=500".to_owned(),
        };
        let page = match client.get::<proto::RunList>(&path)? {
            Reply::Ok(page, _) => page,
            Reply::Refused(error, status) => bail!("listing runs refused ({status}): {:?}", error),
        };
        count += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}

/// The hosted pool's registration token of benchmark servers.
pub(super) const BENCH_RUNNER_TOKEN: &str = "gantry-bench-runner-token";

/// A server on a loopback port of this process, on its own runtime.
pub(super) struct BenchServer(crate::embedded::EmbeddedServer);

impl std::ops::Deref for BenchServer {
    type Target = crate::embedded::EmbeddedServer;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl BenchServer {
    /// Starts a server over `storage` with the benchmark's runner token.
    pub fn start(storage: gantry_server::Storage) -> anyhow::Result<BenchServer> {
        BenchServer::start_with(storage, gantry_server::RunnerSettings::default())
    }

    /// [`BenchServer::start`] with other heartbeat and lease durations.
    pub fn start_with(
        storage: gantry_server::Storage,
        runners: gantry_server::RunnerSettings,
    ) -> anyhow::Result<BenchServer> {
        let config = gantry_server::ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            storage,
            max_body_bytes: proto::DEFAULT_MAX_BODY_BYTES,
            engine: Default::default(),
            runner_token: Some(BENCH_RUNNER_TOKEN.to_owned()),
            runners,
            mirrors_dir: None,
        };
        crate::embedded::EmbeddedServer::start(config).map(BenchServer)
    }

    /// Stops the server and waits for it.
    pub fn stop(self) -> anyhow::Result<()> {
        self.0.stop()
    }
}
