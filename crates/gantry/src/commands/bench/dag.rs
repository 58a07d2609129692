//! `gantry bench dag`: how long after a job completes its dependents are ready, through the
//! server's own path (engine, one guarded transaction on the store, then the queue index).
//!
//! Two shapes: a chain of 400 jobs (each completion readies exactly one job) and a fan-out /
//! fan-in of 1,000 jobs (`root` readies 998 leaves at once; the last leaf readies `sink`). A
//! completion is timed from the call until it returns, which is after the commit and after
//! its dependents are in the queue index: the moment a runner could claim them. The claim
//! before it is not timed. The peer is the pure engine applying the same completions to the
//! same run with no store: the overhead floor of the state machine itself.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use gantry_engine::{Attempt, Conclusion, EngineConfig, Event, Millis, NewRun, RunId};
use gantry_proto::v1 as proto;
use gantry_server::App;
use serde_json::json;

use super::BenchStorage;
use super::ingest::percentile;
use crate::output;

/// Arguments of `gantry bench dag`.
#[derive(Debug, Args)]
pub struct DagArgs {
    /// Jobs in the chain.
    #[arg(long, default_value_t = 400)]
    chain: usize,
    /// Leaves of the fan-out (plus `root` and `sink`).
    #[arg(long, default_value_t = 998)]
    leaves: usize,
    /// Use this PostgreSQL database (a fresh schema, dropped afterwards) instead of SQLite in
    /// a temporary directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Timings of one shape, in milliseconds.
struct Shape {
    completions_ms: Vec<f64>,
    /// The completion that readied the most jobs at once, and how many.
    widest_ms: f64,
    widest_ready: usize,
    engine_only_ms: Vec<f64>,
}

/// Runs the benchmark.
pub fn run(args: &DagArgs) -> anyhow::Result<ExitCode> {
    if args.chain < 2 || args.leaves < 1 {
        bail!("--chain must be at least 2 and --leaves at least 1");
    }
    let place = BenchStorage::new(args.database_url.as_deref(), "dag")?;
    let backend = place.backend;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (chain, fan) = runtime.block_on(async {
        let store = gantry_server::open_store(&place.storage).await?;
        let app = Arc::new(App::new(store, EngineConfig::default()));
        app.recover().await?;
        app.create_organization(proto::CreateOrganization {
            name: "bench".to_owned(),
            weight: None,
            hosted_concurrency_limit: None,
        })
        .await?;
        app.create_repository(
            "bench",
            proto::CreateRepository {
                name: "dag".to_owned(),
                default_branch: None,
            },
        )
        .await?;
        let chain = drive(&app, &chain_workflow(args.chain)).await?;
        let fan = drive(&app, &fan_workflow(args.leaves)).await?;
        anyhow::Ok((chain, fan))
    })?;
    drop(runtime);
    place.finish()?;

    let summary = |shape: &Shape| {
        let mut server = shape.completions_ms.clone();
        server.sort_by(f64::total_cmp);
        let mut engine = shape.engine_only_ms.clone();
        engine.sort_by(f64::total_cmp);
        json!({
            "completions": server.len(),
            "median_ms": round3(percentile(&server, 0.5)),
            "p99_ms": round3(percentile(&server, 0.99)),
            "widest_completion_ms": round3(shape.widest_ms),
            "widest_completion_readied": shape.widest_ready,
            "peer_engine_only_median_ms": round3(percentile(&engine, 0.5)),
            "peer_engine_only_p99_ms": round3(percentile(&engine, 0.99)),
        })
    };
    let figures = json!({
        "benchmark": "dag",
        "backend": backend,
        "chain_jobs": args.chain,
        "fan_jobs": args.leaves + 2,
        "chain": summary(&chain),
        "fan_out_fan_in": summary(&fan),
    });
    if args.json {
        output::json_line(&figures);
    } else {
        let line = |name: &str, figures: &serde_json::Value| {
            format!(
                "  {name}: completion → dependents ready median {} ms, p99 {} ms; widest completion {} ms for {} jobs; peer engine only: median {} ms, p99 {} ms",
                figures["median_ms"],
                figures["p99_ms"],
                figures["widest_completion_ms"],
                figures["widest_completion_readied"],
                figures["peer_engine_only_median_ms"],
                figures["peer_engine_only_p99_ms"]
            )
        };
        output::line(&format!(
            "dag on {}:\n{}\n{}",
            backend,
            line(&format!("chain of {}", args.chain), &figures["chain"]),
            line(
                &format!("fan-out/fan-in of {}", args.leaves + 2),
                &figures["fan_out_fan_in"]
            )
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn job(id: &str, needs: &[String]) -> String {
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("    needs: [{}]\n", needs.join(", "))
    };
    format!("  {id}:\n{needs}    runs-on: ubuntu-latest\n    steps:\n      - run: make {id}\n")
}

fn chain_workflow(length: usize) -> String {
    let mut text = String::from("on: push\njobs:\n");
    for index in 0..length {
        let needs = if index == 0 {
            Vec::new()
        } else {
            vec![format!("j{}", index - 1)]
        };
        text.push_str(&job(&format!("j{index}"), &needs));
    }
    text
}

fn fan_workflow(leaves: usize) -> String {
    let mut text = String::from("on: push\njobs:\n");
    text.push_str(&job("root", &[]));
    let names: Vec<String> = (0..leaves).map(|index| format!("leaf{index}")).collect();
    for name in &names {
        text.push_str(&job(name, &["root".to_owned()]));
    }
    text.push_str(&job("sink", &names));
    text
}

/// Triggers a run of `workflow` and completes its jobs as they become ready, timing each
/// completion through the server and, separately, through the engine alone.
async fn drive(app: &App, workflow: &str) -> anyhow::Result<Shape> {
    let (run, _) = app
        .trigger_run(
            "bench",
            "dag",
            proto::TriggerRun {
                workflow_path: ".github/workflows/dag.yml".to_owned(),
                workflow: workflow.to_owned(),
                event: None,
                git_ref: None,
                sha: None,
                actor: None,
                payload: None,
                inputs: None,
                called_workflows: None,
            },
            None,
        )
        .await?;
    let mut shape = Shape {
        completions_ms: Vec::new(),
        widest_ms: 0.0,
        widest_ready: 0,
        engine_only_ms: Vec::new(),
    };
    loop {
        let queued = app.queued_job_ids(usize::MAX);
        if queued.is_empty() {
            break;
        }
        for job_id in queued {
            app.start_job(run.id, job_id.0).await?;
            let before = app.queued_count();
            let started = Instant::now();
            app.complete_job(
                run.id,
                job_id.0,
                proto::CompleteJob {
                    conclusion: proto::Conclusion::Success,
                    outputs: Default::default(),
                },
            )
            .await?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            shape.completions_ms.push(elapsed);
            let readied = app.queued_count().saturating_sub(before);
            if readied > shape.widest_ready {
                shape.widest_ready = readied;
                shape.widest_ms = elapsed;
            }
        }
    }
    let detail = app.get_run(run.id).await?;
    if detail.run.conclusion != Some(proto::Conclusion::Success) {
        bail!("the benchmark's run ended {:?}", detail.run.conclusion);
    }
    shape.engine_only_ms = engine_only(workflow)?;
    Ok(shape)
}

/// The same run through the pure engine: every ready job started and completed in turn, only
/// the completions timed.
fn engine_only(workflow: &str) -> anyhow::Result<Vec<f64>> {
    let loaded = gantry_workflow::load(workflow, &Default::default()).map_err(|diagnostics| {
        anyhow::anyhow!("the benchmark's workflow is invalid: {diagnostics}")
    })?;
    let created = gantry_engine::create_run(
        NewRun {
            id: RunId(1),
            workflow: &loaded,
            trigger: Default::default(),
            config: EngineConfig::default(),
        },
        Millis(0),
    )?;
    let mut state = created.state;
    let mut ready: Vec<_> = queued_keys(&created.effects);
    let mut timings = Vec::new();
    let mut now = 1;
    while let Some(job) = ready.pop() {
        now += 1;
        let started = gantry_engine::apply(
            &state,
            &Event::JobStarted {
                job: job.clone(),
                attempt: Attempt(1),
            },
            Millis(now),
        )?;
        let begun = Instant::now();
        let completed = gantry_engine::apply(
            &started.state,
            &Event::JobCompleted {
                job,
                attempt: Attempt(1),
                conclusion: Conclusion::Success,
                outputs: Default::default(),
            },
            Millis(now + 1),
        )?;
        timings.push(begun.elapsed().as_secs_f64() * 1000.0);
        ready.extend(queued_keys(&completed.effects));
        state = completed.state;
    }
    Ok(timings)
}

fn queued_keys(effects: &[gantry_engine::Effect]) -> Vec<gantry_engine::JobKey> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            gantry_engine::Effect::QueueJob(order) => Some(order.job.clone()),
            _ => None,
        })
        .collect()
}
