//! `gantry bench start-latency`: how long a job waits between being queued and being claimed
//! by an idle runner, at a fixed offered rate of new jobs.
//!
//! Per rate, a fresh server (SQLite or a PostgreSQL schema) runs in this process. Idle
//! simulated runners long-poll `POST /runner/claim` over loopback HTTP, many more than the
//! rate needs, so runners are never the bottleneck; each completes its no-op job at once and
//! claims again. Open-loop senders trigger runs of a one-job workflow (one trigger = one job)
//! on a fixed schedule of `rate` per second for `--seconds`. A job's start latency is when a
//! runner got its assignment minus when the trigger's 201 came back, both `Instant`s of this
//! process. The claim can beat the 201 (the job is queued at commit, before the answer is
//! written): such negatives are clamped to 0 and counted. When the server cannot accept runs
//! as fast as offered, the senders fall behind their schedule, stop at the end of the window,
//! and the achieved rate (answered triggers per second of the window) says so.
//!
//! The in-process variant does the same through `App::trigger_run` and `App::claim`: no HTTP,
//! no JSON, which shows what the transport costs.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1 as proto;
use serde_json::json;

use super::BenchStorage;
use super::drain::setup_tenant;
use super::ingest::{BENCH_RUNNER_TOKEN, BenchServer, percentile};
use crate::commands::client::{Client, Reply};
use crate::output;

/// Arguments of `gantry bench start-latency`.
#[derive(Debug, Args)]
pub struct StartLatencyArgs {
    /// Offered rates of new jobs per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "200,1000,5000")]
    rates: Vec<u32>,
    /// How long each rate is offered.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Idle simulated runners (each one job at a time).
    #[arg(long, default_value_t = 64)]
    runners: usize,
    /// Concurrent trigger connections of the senders.
    #[arg(long, default_value_t = 32)]
    senders: usize,
    /// Also measure through the dispatcher's in-process API.
    #[arg(long)]
    in_process: bool,
    /// Use this PostgreSQL database (fresh schemas, dropped afterwards) instead of SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The figures of one rate by one way.
#[derive(Debug, Clone, serde::Serialize)]
struct Latency {
    offered_per_sec: u32,
    achieved_per_sec: f64,
    jobs: usize,
    claimed: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Claims that came back before the trigger's answer (clamped to 0).
    claim_before_answer: usize,
    trigger_p99_ms: f64,
}

const WORKFLOW: &str = "name: start\non: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n";

fn trigger() -> proto::TriggerRun {
    proto::TriggerRun {
        workflow_path: ".github/workflows/start.yml".to_owned(),
        workflow: WORKFLOW.to_owned(),
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: None,
    }
}

/// When each run was answered (sender side) or claimed (runner side), by run id.
type Stamps = Vec<(i64, Instant)>;

/// Runs the benchmark.
pub fn run(args: &StartLatencyArgs) -> anyhow::Result<ExitCode> {
    if args.rates.is_empty() || args.rates.contains(&0) || args.seconds == 0 {
        bail!("--rates must be positive and --seconds at least 1");
    }
    if args.runners == 0 || args.senders == 0 {
        bail!("--runners and --senders must be at least 1");
    }
    let mut backend = "sqlite";
    let mut http = Vec::new();
    let mut in_process = Vec::new();
    for &rate in &args.rates {
        let storage = BenchStorage::new(args.database_url.as_deref(), "start_http")?;
        backend = storage.backend;
        let figures = over_http(&storage, rate, args)?;
        storage.finish()?;
        if !args.json {
            output::line(&describe("HTTP", backend, &figures));
        }
        http.push(figures);
        if args.in_process {
            let storage = BenchStorage::new(args.database_url.as_deref(), "start_lib")?;
            let figures = through_app(&storage, rate, args)?;
            storage.finish()?;
            if !args.json {
                output::line(&describe("in-process", backend, &figures));
            }
            in_process.push(figures);
        }
    }
    if args.json {
        output::json_line(&json!({
            "benchmark": "start-latency",
            "backend": backend,
            "seconds": args.seconds,
            "runners": args.runners,
            "senders": args.senders,
            "http": http,
            "in_process": in_process,
        }));
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(way: &str, backend: &str, figures: &Latency) -> String {
    format!(
        "start latency {way} ({backend}) offered {}/s, achieved {:.0}/s: {} jobs, {} claimed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} claims beat the 201; trigger p99 {:.2} ms)",
        figures.offered_per_sec,
        figures.achieved_per_sec,
        figures.jobs,
        figures.claimed,
        figures.p50_ms,
        figures.p99_ms,
        figures.max_ms,
        figures.claim_before_answer,
        figures.trigger_p99_ms,
    )
}

/// The open-loop schedule: offer `index` is due `index / rate` seconds after `start`.
fn due(start: Instant, index: usize, rate: u32) -> Instant {
    start + Duration::from_secs_f64(index as f64 / f64::from(rate))
}

/// Joins answers and claims by run id into the figures.
fn figures(
    rate: u32,
    offered_for: Duration,
    answered: &Stamps,
    trigger_ms: &mut [f64],
    claimed: &Stamps,
) -> Latency {
    let claims: HashMap<i64, Instant> = claimed.iter().copied().collect();
    let mut negatives = 0;
    let mut millis: Vec<f64> = answered
        .iter()
        .filter_map(|(run, answered_at)| {
            let claimed_at = claims.get(run)?;
            if claimed_at < answered_at {
                negatives += 1;
            }
            Some(
                claimed_at
                    .saturating_duration_since(*answered_at)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    millis.sort_by(f64::total_cmp);
    trigger_ms.sort_by(f64::total_cmp);
    let at = |sorted: &[f64], fraction: f64| {
        if sorted.is_empty() {
            f64::NAN
        } else {
            percentile(sorted, fraction)
        }
    };
    Latency {
        offered_per_sec: rate,
        achieved_per_sec: answered.len() as f64 / offered_for.as_secs_f64(),
        jobs: answered.len(),
        claimed: millis.len(),
        p50_ms: at(&millis, 0.50),
        p99_ms: at(&millis, 0.99),
        max_ms: millis.last().copied().unwrap_or(f64::NAN),
        claim_before_answer: negatives,
        trigger_p99_ms: at(trigger_ms, 0.99),
    }
}

/// One rate over loopback HTTP.
fn over_http(
    storage: &BenchStorage,
    rate: u32,
    args: &StartLatencyArgs,
) -> anyhow::Result<Latency> {
    let server = BenchServer::start(storage.storage.clone())?;
    let client = Client::new(Some(&server.base));
    setup_tenant(&client)?;
    let total = usize::try_from(u64::from(rate) * args.seconds).context("too many jobs")?;
    let stop = Arc::new(AtomicBool::new(false));
    let claimed_count = Arc::new(AtomicUsize::new(0));
    let runners: Vec<_> = (0..args.runners)
        .map(|index| {
            let base = server.base.clone();
            let stop = Arc::clone(&stop);
            let claimed_count = Arc::clone(&claimed_count);
            std::thread::Builder::new()
                .name(format!("runner-{index}"))
                .stack_size(256 * 1024)
                .spawn(move || idle_runner(&base, index, &stop, &claimed_count))
        })
        .collect::<Result<_, _>>()
        .context("cannot start runner threads")?;
    // Let every runner register and start its first long poll before the clock starts.
    std::thread::sleep(Duration::from_millis(500));

    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let sent = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..args.senders)
            .map(|_| {
                let next = &next;
                let base = &server.base;
                scope.spawn(move || -> anyhow::Result<(Stamps, Vec<f64>)> {
                    let client = Client::new(Some(base));
                    let mut answered = Vec::new();
                    let mut trigger_ms = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        // Behind schedule at the end of the window: what was not offered in
                        // time is not offered (the achieved rate shows the shortfall).
                        if index >= total || Instant::now() >= end {
                            return Ok((answered, trigger_ms));
                        }
                        let at = due(start, index, rate);
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let sent = Instant::now();
                        match client.post::<proto::Run>(
                            "/repos/bench/drain/runs",
                            &trigger(),
                            &[],
                        )? {
                            Reply::Ok(run, _) => {
                                let now = Instant::now();
                                answered.push((run.id, now));
                                trigger_ms.push((now - sent).as_secs_f64() * 1000.0);
                            }
                            Reply::Refused(error, status) => {
                                bail!("trigger refused ({status}): {error}")
                            }
                        }
                    }
                })
            })
            .collect();
        let mut answered = Vec::with_capacity(total);
        let mut trigger_ms = Vec::with_capacity(total);
        for sender in senders {
            let (stamps, millis) = sender
                .join()
                .map_err(|_| anyhow::anyhow!("a sender thread panicked"))??;
            answered.extend(stamps);
            trigger_ms.extend(millis);
        }
        anyhow::Ok((answered, trigger_ms))
    });
    // The window ends after `--seconds`, or when the last trigger was answered if later.
    let offered_for = start.elapsed().max(Duration::from_secs(args.seconds));
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = sent.as_ref().map_or(0, |(answered, _)| answered.len());
    while claimed_count.load(Ordering::Relaxed) < wanted && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let mut claimed = Vec::with_capacity(total);
    for runner in runners {
        claimed.extend(
            runner
                .join()
                .map_err(|_| anyhow::anyhow!("a runner thread panicked"))??,
        );
    }
    server.stop()?;
    let (answered, mut trigger_ms) = sent?;
    Ok(figures(
        rate,
        offered_for,
        &answered,
        &mut trigger_ms,
        &claimed,
    ))
}

/// One idle runner: register, then long-poll claims, completing each no-op job at once,
/// until told to stop. Returns when it got each assignment, by run id.
fn idle_runner(
    base: &str,
    index: usize,
    stop: &AtomicBool,
    claimed_count: &AtomicUsize,
) -> anyhow::Result<Stamps> {
    let client = Client::new(Some(base));
    let registration = proto::RegisterRunner {
        token: BENCH_RUNNER_TOKEN.to_owned(),
        name: format!("idle-{index}"),
        labels: vec!["ubuntu-latest".to_owned()],
        capacity: 1,
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
    let mut claimed = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let claim = proto::ClaimJob { wait_ms: 500 };
        let assignment =
            match client.post::<Option<proto::JobAssignment>>("/runner/claim", &claim, &auth)? {
                Reply::Ok(Some(assignment), _) => assignment,
                Reply::Ok(None, _) => continue,
                Reply::Refused(error, status) => bail!("claim refused ({status}): {error}"),
            };
        claimed.push((assignment.run_id, Instant::now()));
        claimed_count.fetch_add(1, Ordering::Relaxed);
        let result = proto::CompleteAttempt {
            fencing_token: assignment.fencing_token,
            conclusion: proto::Conclusion::Success,
            outputs: Default::default(),
            message: None,
        };
        let path = format!("/runner/jobs/{}/complete", assignment.job_id);
        if let Reply::Refused(error, status) =
            client.post::<serde_json::Value>(&path, &result, &auth)?
        {
            bail!("completion refused ({status}): {error}");
        }
    }
    Ok(claimed)
}

/// One rate through the dispatcher's in-process API: tasks instead of threads and sockets.
fn through_app(
    storage: &BenchStorage,
    rate: u32,
    args: &StartLatencyArgs,
) -> anyhow::Result<Latency> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let app = super::drain::bench_app(&storage.storage).await?;
        let total = usize::try_from(u64::from(rate) * args.seconds).context("too many jobs")?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut runners = Vec::with_capacity(args.runners);
        for index in 0..args.runners {
            let app = Arc::clone(&app);
            let stop = Arc::clone(&stop);
            runners.push(tokio::spawn(async move {
                let runner =
                    super::drain::in_process_runner(&app, &format!("idle-{index}")).await?;
                let mut claimed: Stamps = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let claim = app
                        .claim(runner, proto::ClaimJob { wait_ms: 500 })
                        .await
                        .map_err(anyhow::Error::msg)?;
                    let Some(assignment) = claim else { continue };
                    claimed.push((assignment.run_id, Instant::now()));
                    super::drain::succeed(&app, runner, &assignment).await?;
                }
                anyhow::Ok(claimed)
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let end = start + Duration::from_secs(args.seconds);
        let mut senders = Vec::with_capacity(args.senders);
        for _ in 0..args.senders {
            let app = Arc::clone(&app);
            let next = Arc::clone(&next);
            senders.push(tokio::spawn(async move {
                let mut answered: Stamps = Vec::new();
                let mut trigger_ms = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total || Instant::now() >= end {
                        return anyhow::Ok((answered, trigger_ms));
                    }
                    tokio::time::sleep_until(due(start, index, rate).into()).await;
                    let sent = Instant::now();
                    let (run, _) = app
                        .trigger_run("bench", "drain", trigger(), None)
                        .await
                        .map_err(anyhow::Error::msg)?;
                    let now = Instant::now();
                    answered.push((run.id, now));
                    trigger_ms.push((now - sent).as_secs_f64() * 1000.0);
                }
            }));
        }
        let mut answered = Vec::with_capacity(total);
        let mut trigger_ms = Vec::with_capacity(total);
        for sender in senders {
            let (stamps, millis) = sender.await.context("a sender task panicked")??;
            answered.extend(stamps);
            trigger_ms.extend(millis);
        }
        let offered_for = start.elapsed().max(Duration::from_secs(args.seconds));
        // Wait for the queue to empty before stopping the runners.
        let deadline = Instant::now() + Duration::from_secs(60);
        while app.queued_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.store(true, Ordering::Relaxed);
        let mut claimed = Vec::with_capacity(total);
        for runner in runners {
            claimed.extend(runner.await.context("a runner task panicked")??);
        }
        Ok(figures(
            rate,
            offered_for,
            &answered,
            &mut trigger_ms,
            &claimed,
        ))
    })
}
