//! `gantry bench heartbeats`: many concurrently leased jobs heartbeating on one node.
//!
//! The target is 200,000 leased jobs heartbeating every 30 s (about 6,700 heartbeats/s) with a
//! heartbeat p99 under 50 ms. A server runs in this process over SQLite or a PostgreSQL
//! schema. First `--leased` jobs are queued (runs of `--jobs-per-run` independent no-op jobs)
//! and claimed over loopback HTTP by simulated runners of capacity 256 (the most a runner may
//! declare), each taking up to its free capacity per request (`POST /runner/claims`), so a
//! few hundred runners hold every job; the claim phase is timed, since it is what filling a
//! node costs (a durable claim and a "job started" per job, each run's claims of a request
//! in one transaction). Then
//! client threads send heartbeats at `--rate` for `--seconds` on an open-loop schedule,
//! round-robin over the leased jobs, each with its job's fencing token.
//!
//! Heartbeats touch only memory in the server (a lock and a map update), which is why this
//! should scale with the number of leases. The process's resident memory (`VmRSS`) is read
//! before queuing, after queuing and after claiming; it includes the benchmark's clients.
//!
//! The lease is set to 10 minutes for this server so that jobs claimed early do not expire
//! while the rest are claimed: what a heartbeat costs does not depend on the lease's length.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1 as proto;
use serde_json::json;

use super::BenchStorage;
use super::drain::{setup_tenant, workflow};
use super::ingest::{BENCH_RUNNER_TOKEN, BenchServer, percentile};
use crate::commands::client::{Client, Reply};
use crate::output;

/// The most jobs one runner may hold (the server's limit on `capacity`).
const RUNNER_CAPACITY: usize = 256;

/// Arguments of `gantry bench heartbeats`.
#[derive(Debug, Args)]
pub struct HeartbeatsArgs {
    /// Jobs to claim and keep leased.
    #[arg(long, default_value_t = 20_000)]
    leased: usize,
    /// Independent jobs per run when queuing them.
    #[arg(long, default_value_t = 100)]
    jobs_per_run: usize,
    /// Heartbeats per second offered.
    #[arg(long, default_value_t = 6_700)]
    rate: u32,
    /// How long heartbeats are offered.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Client threads sending heartbeats (each one keep-alive connection).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Client threads claiming the jobs.
    #[arg(long, default_value_t = 8)]
    claimers: usize,
    /// Use this PostgreSQL database (a fresh schema, dropped afterwards) instead of SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// One leased job: where to heartbeat, with what.
struct Held {
    path: String,
    bearer: String,
    heartbeat: proto::Heartbeat,
}

/// The process's resident memory in MiB, from `/proc/self/status`.
fn rss_mib() -> anyhow::Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib / 1024.0)
}

/// Runs the benchmark.
pub fn run(args: &HeartbeatsArgs) -> anyhow::Result<ExitCode> {
    if args.leased == 0 || args.jobs_per_run == 0 || args.rate == 0 || args.seconds == 0 {
        bail!("--leased, --jobs-per-run, --rate and --seconds must be at least 1");
    }
    if args.connections == 0 || args.claimers == 0 {
        bail!("--connections and --claimers must be at least 1");
    }
    let storage = BenchStorage::new(args.database_url.as_deref(), "heartbeats")?;
    let backend = storage.backend;
    let rss_start = rss_mib()?;
    let settings = gantry_server::RunnerSettings {
        heartbeat_interval_ms: 30_000,
        lease_ms: 600_000,
    };
    let server = BenchServer::start_with(storage.storage.clone(), settings)?;
    let client = Client::new(Some(&server.base));
    setup_tenant(&client)?;

    let runs = args.leased.div_ceil(args.jobs_per_run);
    let jobs = runs * args.jobs_per_run;
    let text = workflow(args.jobs_per_run);
    let body = proto::TriggerRun {
        workflow_path: ".github/workflows/heartbeats.yml".to_owned(),
        workflow: text,
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: None,
    };
    let queuing = Instant::now();
    for _ in 0..runs {
        if let Reply::Refused(error, status) =
            client.post::<proto::Run>("/repos/bench/drain/runs", &body, &[])?
        {
            bail!("trigger refused ({status}): {error}");
        }
    }
    let queue_seconds = queuing.elapsed().as_secs_f64();
    let rss_queued = rss_mib()?;

    let claiming = Instant::now();
    let held = claim_all(&server.base, jobs, args.claimers)?;
    let claim_seconds = claiming.elapsed().as_secs_f64();
    let rss_leased = rss_mib()?;
    let claims_per_sec = held.len() as f64 / claim_seconds;

    let (sent, errors, heartbeat_seconds, mut millis) = heartbeat(
        &server.base,
        &held,
        args.rate,
        args.seconds,
        args.connections,
    )?;
    let rss_after = rss_mib()?;
    server.stop()?;
    storage.finish()?;
    millis.sort_by(f64::total_cmp);
    let achieved = sent as f64 / heartbeat_seconds;
    let (p50, p99, max) = if millis.is_empty() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        (
            percentile(&millis, 0.50),
            percentile(&millis, 0.99),
            millis.last().copied().unwrap_or(f64::NAN),
        )
    };
    let claim_200k_seconds = 200_000.0 / claims_per_sec;
    let figures = json!({
        "benchmark": "heartbeats",
        "backend": backend,
        "leased": held.len(),
        "runners": held.len().div_ceil(RUNNER_CAPACITY),
        "queue_seconds": queue_seconds,
        "claim_seconds": claim_seconds,
        "claims_per_second": claims_per_sec,
        "claim_200k_seconds_estimate": claim_200k_seconds,
        "offered_per_second": args.rate,
        "achieved_per_second": achieved,
        "heartbeats": sent,
        "errors": errors,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "rss_mib_start": rss_start,
        "rss_mib_queued": rss_queued,
        "rss_mib_leased": rss_leased,
        "rss_mib_after_heartbeats": rss_after,
    });
    if args.json {
        output::json_line(&figures);
    } else {
        output::line(&format!(
            "heartbeats ({backend}): {} jobs leased by {} runners\n  queue {jobs} jobs:  {queue_seconds:.1} s\n  claim:            {claim_seconds:.1} s, {claims_per_sec:.0} claims/s (200,000 would take ~{claim_200k_seconds:.0} s)\n  heartbeats:       offered {}/s, achieved {achieved:.0}/s, {sent} sent, {errors} refused, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms\n  RSS (MiB):        start {rss_start:.0}, queued {rss_queued:.0}, leased {rss_leased:.0}, after heartbeats {rss_after:.0}",
            held.len(),
            held.len().div_ceil(RUNNER_CAPACITY),
            args.rate,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Registers runners of full capacity and claims `jobs` jobs with `claimers` threads, each
/// filling its own runners one after another.
fn claim_all(base: &str, jobs: usize, claimers: usize) -> anyhow::Result<Vec<Held>> {
    let runners = jobs.div_ceil(RUNNER_CAPACITY);
    let next_runner = AtomicUsize::new(0);
    let claimed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..claimers)
            .map(|_| {
                let next_runner = &next_runner;
                let claimed = &claimed;
                scope.spawn(move || -> anyhow::Result<Vec<Held>> {
                    let client = Client::new(Some(base));
                    let mut held = Vec::new();
                    loop {
                        let index = next_runner.fetch_add(1, Ordering::Relaxed);
                        if index >= runners {
                            return Ok(held);
                        }
                        fill_runner(&client, index, jobs, claimed, &mut held)?;
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(jobs);
        for worker in workers {
            all.extend(
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a claiming thread panicked"))??,
            );
        }
        anyhow::Ok(all)
    })
}

/// Registers runner `index` and claims until it is full or every job is claimed.
fn fill_runner(
    client: &Client,
    index: usize,
    jobs: usize,
    claimed: &AtomicUsize,
    held: &mut Vec<Held>,
) -> anyhow::Result<()> {
    let registration = proto::RegisterRunner {
        token: BENCH_RUNNER_TOKEN.to_owned(),
        name: format!("holder-{index}"),
        labels: vec!["ubuntu-latest".to_owned()],
        capacity: RUNNER_CAPACITY as u32,
        ephemeral: false,
        protocol_version: proto::RUNNER_PROTOCOL_VERSION,
    };
    let registered =
        match client.post::<proto::RunnerRegistration>("/runners/register", &registration, &[])? {
            Reply::Ok(registered, _) => registered,
            Reply::Refused(error, status) => bail!("registration refused ({status}): {error}"),
        };
    let bearer = format!("Bearer {}", registered.credential);
    let auth = [("Authorization", bearer.as_str())];
    let mut free = RUNNER_CAPACITY;
    while free > 0 {
        if claimed.load(Ordering::Relaxed) >= jobs {
            return Ok(());
        }
        let claim = proto::ClaimJobs {
            wait_ms: 200,
            max_jobs: u32::try_from(free).unwrap_or(proto::MAX_BATCH_JOBS),
        };
        let assignments =
            match client.post::<proto::JobAssignments>("/runner/claims", &claim, &auth)? {
                Reply::Ok(assignments, _) => assignments.jobs,
                Reply::Refused(error, status) => bail!("claim refused ({status}): {error}"),
            };
        // Nothing within the wait: every job is claimed (by this or another thread).
        if assignments.is_empty() {
            return Ok(());
        }
        free -= assignments.len().min(free);
        claimed.fetch_add(assignments.len(), Ordering::Relaxed);
        held.extend(assignments.into_iter().map(|assignment| Held {
            path: format!("/runner/jobs/{}/heartbeat", assignment.job_id),
            bearer: bearer.clone(),
            heartbeat: proto::Heartbeat {
                fencing_token: assignment.fencing_token,
            },
        }));
    }
    Ok(())
}

/// Sends heartbeats at `rate` for `seconds` on an open-loop schedule, round-robin over
/// `held`. Returns how many were answered, how many refused, the seconds it took and every
/// answered heartbeat's latency in milliseconds.
fn heartbeat(
    base: &str,
    held: &[Held],
    rate: u32,
    seconds: u64,
    connections: usize,
) -> anyhow::Result<(usize, usize, f64, Vec<f64>)> {
    if held.is_empty() {
        bail!("no job was claimed");
    }
    let total = usize::try_from(u64::from(rate) * seconds).context("too many heartbeats")?;
    let next = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let start = Instant::now();
    let millis = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                let next = &next;
                let refused = &refused;
                scope.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let client = Client::new(Some(base));
                    let mut millis = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= total {
                            return Ok(millis);
                        }
                        let due = start + Duration::from_secs_f64(index as f64 / f64::from(rate));
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let job = &held[index % held.len()];
                        let sent = Instant::now();
                        let auth = [("Authorization", job.bearer.as_str())];
                        match client.post::<proto::HeartbeatAnswer>(
                            &job.path,
                            &job.heartbeat,
                            &auth,
                        )? {
                            Reply::Ok(..) => millis.push(sent.elapsed().as_secs_f64() * 1000.0),
                            Reply::Refused(..) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(total);
        for worker in workers {
            all.extend(
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a heartbeat thread panicked"))??,
            );
        }
        anyhow::Ok(all)
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok((
        millis.len(),
        refused.load(Ordering::Relaxed),
        elapsed,
        millis,
    ))
}
