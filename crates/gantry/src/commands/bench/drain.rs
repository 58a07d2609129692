//! `gantry bench drain`: no-op jobs through claim → complete, with durable commits, measured
//! two ways in the same run: simulated runners speaking the runner protocol over loopback
//! HTTP, and the same runners calling the dispatcher's in-process API (`App::claim`,
//! `App::complete_attempt`), which shows what HTTP costs. With `--graphile`, graphile-worker
//! drains the same number of no-op jobs as the peer, on the same PostgreSQL when gantry uses
//! one (on the local development database, or `--graphile-database-url`, when gantry uses
//! SQLite).
//!
//! The jobs are made first (not timed): runs of a workflow with `--jobs-per-run` independent
//! jobs, so the drain measures the dispatcher, not run creation. With `--batch N` each
//! runner has capacity N, claims up to N jobs per request (`POST /runner/claims`) and reports
//! their results in one request (`POST /runner/results`), as graphile-worker's local queue
//! fetches and completes jobs in batches.
//!
//! With `--rounds N` the drains are repeated, each round gantry's two ways and the peer's
//! local queue back to back, and the medians are reported (`drain_rounds.rs`);
//! graphile-worker's default configuration, far slower and not the goal's yardstick, is
//! drained once after the rounds.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1 as proto;
use serde_json::json;

use super::BenchStorage;
use super::drain_rounds::{self, Drained, Round};
use super::ingest::{BENCH_RUNNER_TOKEN, BenchServer};
use crate::commands::client::{Client, Reply};
use crate::output;

/// Arguments of `gantry bench drain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// No-op jobs to drain.
    #[arg(long, default_value_t = 5_000)]
    jobs: usize,
    /// Independent jobs per run.
    #[arg(long, default_value_t = 10)]
    jobs_per_run: usize,
    /// Simulated runners.
    #[arg(long, default_value_t = 16)]
    runners: usize,
    /// Jobs each runner claims and completes per request (its capacity); 1 uses the
    /// single-job calls.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    batch: u32,
    /// Use this PostgreSQL database (fresh schemas, dropped afterwards) instead of SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Also drain the same number of no-op jobs with graphile-worker, in its default
    /// configuration and in its fastest one (needs Node.js; see
    /// `scripts/bench/graphile-worker`), on `--graphile-database-url`. Run one at a time:
    /// its notifications are database-wide.
    #[arg(long)]
    graphile: bool,
    /// The PostgreSQL database of graphile-worker's drains (fresh schemas, dropped
    /// afterwards): `--database-url` if given, else the local development database (so a
    /// drain of gantry on SQLite has its peer in the same rounds too).
    #[arg(long, value_name = "URL", requires = "graphile")]
    graphile_database_url: Option<String>,
    /// Rounds of the drains (gantry over HTTP, in-process and, with `--graphile`, the peer's
    /// local queue, back to back); the medians are reported.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The workflow of every run: `count` independent no-op jobs.
pub(super) fn workflow(count: usize) -> String {
    let mut text = String::from("name: drain\non: push\njobs:\n");
    for index in 0..count {
        text.push_str(&format!(
            "  job{index}:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n"
        ));
    }
    text
}

fn trigger(workflow: &str) -> proto::TriggerRun {
    proto::TriggerRun {
        workflow_path: ".github/workflows/drain.yml".to_owned(),
        workflow: workflow.to_owned(),
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: None,
    }
}

/// Runs the benchmark.
pub fn run(args: &DrainArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 || args.jobs_per_run == 0 || args.runners == 0 || args.rounds == 0 {
        bail!("--jobs, --jobs-per-run, --runners and --rounds must be at least 1");
    }
    let runs = args.jobs.div_ceil(args.jobs_per_run);
    let jobs = runs * args.jobs_per_run;
    let workflow = workflow(args.jobs_per_run);

    let backend = BenchStorage::backend_of(args.database_url.as_deref());
    let peer_database_url = args
        .graphile_database_url
        .as_ref()
        .or(args.database_url.as_ref())
        .map_or(super::graphile::DEFAULT_DATABASE_URL, String::as_str);
    let peer_options = |mode| {
        args.graphile.then(|| super::graphile::Options {
            database_url: peer_database_url.to_owned(),
            mode,
            jobs: jobs as u64,
            ..Default::default()
        })
    };
    let mut rounds = Vec::with_capacity(args.rounds);
    for number in 1..=args.rounds {
        let round = drain_round(args, &workflow, runs, jobs, peer_options)?;
        output::message(&round_line(number, args.rounds, &round));
        rounds.push(round);
    }
    let peer_defaults = match peer_options(super::graphile::Mode::Default) {
        Some(options) => Some(super::graphile::drain(&options)?),
        None => None,
    };
    let medians = drain_rounds::medians(&rounds);
    if args.json {
        output::json_line(&json!({
            "benchmark": "drain",
            "backend": backend,
            "jobs": jobs,
            "jobs_per_run": args.jobs_per_run,
            "runners": args.runners,
            "batch": args.batch,
            "medians": medians,
            "rounds": rounds,
            "graphile_worker_defaults": peer_defaults,
        }));
    } else {
        output::line(&format!(
            "drain ({backend}, {jobs} jobs, {} per run, {} runners, batch {}, {} round(s), medians): HTTP {:.0} jobs/s, in-process {:.0} jobs/s",
            args.jobs_per_run,
            args.runners,
            args.batch,
            medians.rounds,
            medians.http_jobs_per_sec,
            medians.in_process_jobs_per_sec
        ));
        if let Some(peer) = &peer_defaults {
            output::line(&format!(
                "graphile-worker {} (default, concurrency {}, one round): {:.0} jobs/s; gantry over HTTP (median) / peer = {:.3}",
                peer.version,
                peer.concurrency,
                peer.jobs_per_sec,
                medians.http_jobs_per_sec / peer.jobs_per_sec
            ));
        }
        if let (Some(rate), Some(http), Some(in_process)) = (
            medians.peer_jobs_per_sec,
            medians.http_over_peer,
            medians.in_process_over_peer,
        ) {
            output::line(&format!(
                "graphile-worker (local queue): {rate:.0} jobs/s; gantry / peer within each round, median: HTTP {http:.3}, in-process {in_process:.3}"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One round: gantry over HTTP, then in-process, each on fresh storage, then (when
/// `peer_options` gives options) graphile-worker's local queue, back to back.
fn drain_round(
    args: &DrainArgs,
    workflow: &str,
    runs: usize,
    jobs: usize,
    peer_options: impl Fn(super::graphile::Mode) -> Option<super::graphile::Options>,
) -> anyhow::Result<Round> {
    let storage = BenchStorage::new(args.database_url.as_deref(), "drain_http")?;
    let http = drain_over_http(&storage, workflow, runs, jobs, args.runners, args.batch)?;
    storage.finish()?;
    let storage = BenchStorage::new(args.database_url.as_deref(), "drain_lib")?;
    let in_process = drain_in_process(&storage, workflow, runs, jobs, args.runners, args.batch)?;
    storage.finish()?;
    let peer = match peer_options(super::graphile::Mode::LocalQueue) {
        Some(options) => Some(super::graphile::drain(&options)?),
        None => None,
    };
    Ok(Round {
        http,
        in_process,
        peer,
    })
}

/// A round's progress line: its rates and, with a peer, its own ratios.
fn round_line(number: usize, rounds: usize, round: &Round) -> String {
    let mut line = format!(
        "round {number}/{rounds}: HTTP {:.0} jobs/s, in-process {:.0} jobs/s",
        round.http.jobs_per_sec, round.in_process.jobs_per_sec
    );
    if let (Some(peer), Some((http, in_process))) = (&round.peer, round.ratios()) {
        line.push_str(&format!(
            ", graphile-worker local queue {:.0} jobs/s: {http:.3} / {in_process:.3}",
            peer.jobs_per_sec
        ));
    }
    line
}

/// Simulated runners over HTTP, one thread and one keep-alive connection each.
fn drain_over_http(
    storage: &BenchStorage,
    workflow: &str,
    runs: usize,
    jobs: usize,
    runners: usize,
    batch: u32,
) -> anyhow::Result<Drained> {
    let server = BenchServer::start(storage.storage.clone())?;
    let client = Client::new(Some(&server.base));
    setup_tenant(&client)?;
    for _ in 0..runs {
        match client.post::<proto::Run>("/repos/bench/drain/runs", &trigger(workflow), &[])? {
            Reply::Ok(..) => {}
            Reply::Refused(error, status) => bail!("trigger refused ({status}): {error}"),
        }
    }
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..runners)
        .map(|index| {
            let base = server.base.clone();
            let done = Arc::clone(&done);
            std::thread::Builder::new()
                .name(format!("runner-{index}"))
                .stack_size(256 * 1024)
                .spawn(move || simulated_runner(&base, index, &done, jobs, batch))
        })
        .collect::<Result<_, _>>()
        .context("cannot start runner threads")?;
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a runner thread panicked"))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    server.stop()?;
    Ok(Drained {
        jobs,
        seconds,
        jobs_per_sec: jobs as f64 / seconds,
    })
}

/// One runner: register, then claim → complete until every job is done.
fn simulated_runner(
    base: &str,
    index: usize,
    done: &AtomicUsize,
    jobs: usize,
    batch: u32,
) -> anyhow::Result<()> {
    let client = Client::new(Some(base));
    let registration = proto::RegisterRunner {
        token: BENCH_RUNNER_TOKEN.to_owned(),
        name: format!("sim-{index}"),
        labels: vec!["ubuntu-latest".to_owned()],
        capacity: batch,
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
    while done.load(Ordering::Relaxed) < jobs {
        if batch == 1 {
            let claim = proto::ClaimJob { wait_ms: 200 };
            let assignment = match client.post::<Option<Taken>>("/runner/claim", &claim, &auth)? {
                Reply::Ok(Some(assignment), _) => assignment,
                Reply::Ok(None, _) => continue,
                Reply::Refused(error, status) => bail!("claim refused ({status}): {error}"),
            };
            let path = format!("/runner/jobs/{}/complete", assignment.job_id);
            match client.post::<serde::de::IgnoredAny>(&path, &success(&assignment), &auth)? {
                Reply::Ok(..) => {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Reply::Refused(error, status) => bail!("completion refused ({status}): {error}"),
            }
            continue;
        }
        let claim = proto::ClaimJobs {
            wait_ms: 200,
            max_jobs: batch,
        };
        let assignments = match client.post::<TakenJobs>("/runner/claims", &claim, &auth)? {
            Reply::Ok(assignments, _) => assignments.jobs,
            Reply::Refused(error, status) => bail!("claim refused ({status}): {error}"),
        };
        if assignments.is_empty() {
            continue;
        }
        let outcomes = match client.post::<proto::JobResultOutcomes>(
            "/runner/results",
            &results(assignments.iter().copied()),
            &auth,
        )? {
            Reply::Ok(outcomes, _) => outcomes.outcomes,
            Reply::Refused(error, status) => bail!("results refused ({status}): {error}"),
        };
        count_taken(&outcomes, done)?;
    }
    Ok(())
}

/// What a simulated runner reads of a claim's answer: a no-op job needs only its id and
/// fencing token. The rest of an assignment (its payload, most of the answer's bytes) is
/// skipped rather than built: a real runner parses it on its own machine, while the simulated
/// ones share the server's two cores, where building every payload's contexts took CPU time
/// from the server being measured.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct Taken {
    job_id: i64,
    fencing_token: i64,
}

impl From<&proto::JobAssignment> for Taken {
    fn from(assignment: &proto::JobAssignment) -> Taken {
        Taken {
            job_id: assignment.job_id,
            fencing_token: assignment.fencing_token,
        }
    }
}

/// [`Taken`] jobs of a claim's answer (`proto::JobAssignments`).
#[derive(Debug, serde::Deserialize)]
struct TakenJobs {
    jobs: Vec<Taken>,
}

/// A no-op job's successful result.
fn success(assignment: &Taken) -> proto::CompleteAttempt {
    proto::CompleteAttempt {
        fencing_token: assignment.fencing_token,
        conclusion: proto::Conclusion::Success,
        outputs: Default::default(),
        message: None,
    }
}

/// The successful results of a batch of no-op jobs.
fn results(assignments: impl IntoIterator<Item = Taken>) -> proto::JobResults {
    proto::JobResults {
        results: assignments
            .into_iter()
            .map(|assignment| proto::JobResult {
                job_id: assignment.job_id,
                fencing_token: assignment.fencing_token,
                conclusion: proto::Conclusion::Success,
                outputs: Default::default(),
                message: None,
            })
            .collect(),
    }
}

/// Counts a batch's results as done; a refused one is a failure of the benchmark.
fn count_taken(outcomes: &[proto::JobResultOutcome], done: &AtomicUsize) -> anyhow::Result<()> {
    if let Some(refused) = outcomes.iter().find(|outcome| outcome.error.is_some()) {
        bail!(
            "result of job {} refused: {:?}",
            refused.job_id,
            refused.error
        );
    }
    done.fetch_add(outcomes.len(), Ordering::Relaxed);
    Ok(())
}

/// The same runners calling the dispatcher in this process: no HTTP, no JSON.
fn drain_in_process(
    storage: &BenchStorage,
    workflow: &str,
    runs: usize,
    jobs: usize,
    runners: usize,
    batch: u32,
) -> anyhow::Result<Drained> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let app = bench_app(&storage.storage).await?;
        for _ in 0..runs {
            app.trigger_run("bench", "drain", trigger(workflow), None)
                .await
                .map_err(anyhow::Error::msg)?;
        }
        let done = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(runners);
        for index in 0..runners {
            let app = Arc::clone(&app);
            let done = Arc::clone(&done);
            tasks.push(tokio::spawn(async move {
                let name = format!("sim-{index}");
                let runner = in_process_runner_of(&app, &name, batch).await?;
                while done.load(Ordering::Relaxed) < jobs {
                    if batch == 1 {
                        let claim = app
                            .claim(runner, proto::ClaimJob { wait_ms: 200 })
                            .await
                            .map_err(anyhow::Error::msg)?;
                        let Some(assignment) = claim else { continue };
                        succeed(&app, runner, &assignment).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let claim = proto::ClaimJobs {
                        wait_ms: 200,
                        max_jobs: batch,
                    };
                    let assignments = app
                        .claim_jobs(runner, claim)
                        .await
                        .map_err(anyhow::Error::msg)?
                        .jobs;
                    if assignments.is_empty() {
                        continue;
                    }
                    let outcomes = app
                        .report_results(runner, results(assignments.iter().map(Taken::from)))
                        .await
                        .map_err(anyhow::Error::msg)?;
                    count_taken(&outcomes.outcomes, &done)?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await.context("a runner task panicked")??;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(Drained {
            jobs,
            seconds,
            jobs_per_sec: jobs as f64 / seconds.max(Duration::from_micros(1).as_secs_f64()),
        })
    })
}

/// An in-process server over `storage` with the benchmark's runner token and its
/// organization `bench` with repository `drain`, ready for runs.
pub(super) async fn bench_app(
    storage: &gantry_server::Storage,
) -> anyhow::Result<Arc<gantry_server::App>> {
    let store = gantry_server::open_store(storage).await?;
    let app = Arc::new(gantry_server::App::new(store, Default::default()));
    app.recover().await.map_err(anyhow::Error::msg)?;
    app.allow_hosted_token(BENCH_RUNNER_TOKEN)
        .await
        .map_err(anyhow::Error::msg)?;
    app.create_organization(proto::CreateOrganization {
        name: "bench".to_owned(),
        weight: None,
        hosted_concurrency_limit: None,
    })
    .await
    .map_err(anyhow::Error::msg)?;
    app.create_repository(
        "bench",
        proto::CreateRepository {
            name: "drain".to_owned(),
            default_branch: None,
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    Ok(app)
}

/// A hosted runner (`ubuntu-latest`, capacity 1) registered with the in-process `app`.
pub(super) async fn in_process_runner(
    app: &gantry_server::App,
    name: &str,
) -> anyhow::Result<gantry_store::RunnerId> {
    in_process_runner_of(app, name, 1).await
}

/// A hosted runner (`ubuntu-latest`) of `capacity` registered with the in-process `app`.
async fn in_process_runner_of(
    app: &gantry_server::App,
    name: &str,
    capacity: u32,
) -> anyhow::Result<gantry_store::RunnerId> {
    let registered = app
        .register_runner(proto::RegisterRunner {
            token: BENCH_RUNNER_TOKEN.to_owned(),
            name: name.to_owned(),
            labels: vec!["ubuntu-latest".to_owned()],
            capacity,
            ephemeral: false,
            protocol_version: proto::RUNNER_PROTOCOL_VERSION,
        })
        .await
        .map_err(anyhow::Error::msg)?;
    app.authenticate_runner(&registered.credential)
        .await
        .map_err(anyhow::Error::msg)
}

/// Completes a no-op job as a success through the in-process `app`.
pub(super) async fn succeed(
    app: &gantry_server::App,
    runner: gantry_store::RunnerId,
    assignment: &proto::JobAssignment,
) -> anyhow::Result<()> {
    app.complete_attempt(
        runner,
        gantry_store::JobId(assignment.job_id),
        success(&Taken::from(assignment)),
    )
    .await
    .map_err(anyhow::Error::msg)
}

/// The benchmark's organization and repository.
pub(super) fn setup_tenant(client: &Client) -> anyhow::Result<()> {
    let org = proto::CreateOrganization {
        name: "bench".to_owned(),
        weight: None,
        hosted_concurrency_limit: None,
    };
    client.post::<serde_json::Value>("/orgs", &org, &[])?;
    let repo = proto::CreateRepository {
        name: "drain".to_owned(),
        default_branch: None,
    };
    client.post::<serde_json::Value>("/orgs/bench/repos", &repo, &[])?;
    Ok(())
}
