//! `gantry runner`: the runner agent. Registers with a server, then claims jobs and runs each
//! in a fresh sandbox until stopped (Ctrl-C or SIGTERM: claiming stops, running jobs are
//! cancelled and reported), or after one job with `--ephemeral`.
//!
//! Jobs run under bubblewrap (`/usr/bin/bwrap`) on the host's `/usr`, or on a root file system
//! directory chosen with `--platform LABEL=DIR` for jobs whose `runs-on` names LABEL. The host
//! executor (no isolation at all) is only for trusted machines, behind
//! `--unsafe-host-executor`. Labels: see `gantry_runner::agent::labels` (`--labels` adds to
//! the detected ones; `-NAME` removes one). Logs go to stderr; `GANTRY_LOG` sets the filter
//! (default `info`). Exit codes: 0 when stopped or after the ephemeral job, 1 when the server
//! refused the runner, 2 on other errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::Args;
use gantry_runner::agent::labels::{Capabilities, Platform, runner_labels};
use gantry_runner::agent::{Agent, AgentConfig, AgentError, CLAIM_WAIT, Executors};
use gantry_runner::sandbox::{
    BaseRoot, BubblewrapConfig, BubblewrapExecutor, Executor, HostExecutor,
};
use gantry_runner::steps::RunOptions;

use crate::output;

/// Arguments of `gantry runner`.
#[derive(Debug, Args)]
pub struct RunnerArgs {
    /// The server's URL (default `$GANTRY_SERVER`, else http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The registration token (the hosted pool's `--runner-token`, or an organization's).
    #[arg(long, value_name = "TOKEN")]
    token: String,
    /// The runner's name (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Labels to add to the detected ones, comma-separated; `-NAME` removes a detected one.
    #[arg(
        long,
        value_name = "LABELS",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    labels: Vec<String>,
    /// How many jobs run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    capacity: u32,
    /// Run exactly one job, then exit.
    #[arg(long)]
    ephemeral: bool,
    /// Where job directories are made.
    #[arg(long, value_name = "DIR", default_value = ".gantry-runner")]
    work_dir: PathBuf,
    /// Jobs whose `runs-on` names LABEL run on the root file system in DIR (repeatable; the
    /// first that matches wins). LABEL is added to the runner's labels.
    #[arg(long, value_name = "LABEL=DIR")]
    platform: Vec<Platform>,
    /// Let jobs reach the network (off by default: a job sees only loopback).
    #[arg(long)]
    network: bool,
    /// Run jobs directly on this machine as this user, without any isolation. Only for
    /// trusted machines running trusted workflows.
    #[arg(long)]
    unsafe_host_executor: bool,
}

/// Runs the agent until it is stopped.
pub fn run(args: RunnerArgs) -> anyhow::Result<ExitCode> {
    output::init_logging("info");

    let capabilities = Capabilities::detect();
    let labels = runner_labels(&capabilities, &args.platform, &args.labels);
    tracing::info!(
        cpus = capabilities.cpus,
        memory_mib = capabilities.memory_bytes.map(|bytes| bytes / (1024 * 1024)),
        gpu = capabilities.gpu,
        ?labels,
        "runner starting"
    );
    let executors = executors(&args)?;
    let server = args
        .server
        .clone()
        .or_else(|| std::env::var("GANTRY_SERVER").ok())
        .unwrap_or_else(|| super::client::DEFAULT_SERVER.to_owned());
    let work_dir = std::path::absolute(&args.work_dir)
        .with_context(|| format!("bad work directory `{}`", args.work_dir.display()))?;
    let config = AgentConfig {
        server,
        token: args.token,
        name: args.name.unwrap_or_else(host_name),
        labels,
        capacity: args.capacity,
        ephemeral: args.ephemeral,
        work_dir,
        network: args.network,
        limits: Default::default(),
        run_options: RunOptions::default(),
        claim_wait: CLAIM_WAIT,
    };
    let agent = Agent::new(config, executors);
    stop_on_signals(agent.stop_flag())?;
    match agent.run() {
        Ok(summary) => {
            output::message(&format!(
                "runner {} stopped after {} job(s)",
                summary.runner_id, summary.jobs
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ (AgentError::Register(_) | AgentError::Claim(_))) => {
            output::error(&error.to_string());
            Ok(ExitCode::from(1))
        }
        Err(AgentError::Stopped) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error.into()),
    }
}

/// The executors: bubblewrap on the host's `/usr` plus one per `--platform` root, or the host
/// executor when asked for.
fn executors(args: &RunnerArgs) -> anyhow::Result<Executors> {
    if args.unsafe_host_executor {
        if !args.platform.is_empty() {
            bail!(
                "`--platform` needs the bubblewrap executor: the host executor has no root to choose"
            );
        }
        tracing::warn!("jobs run without isolation (`--unsafe-host-executor`)");
        return Ok(Executors::new(Arc::new(HostExecutor::new())));
    }
    let bubblewrap = |base_root: BaseRoot| -> anyhow::Result<Arc<dyn Executor>> {
        let executor = BubblewrapExecutor::new(BubblewrapConfig {
            base_root,
            ..BubblewrapConfig::default()
        })
        .context("cannot start the bubblewrap executor")?;
        Ok(Arc::new(executor))
    };
    let mut executors = Executors::new(bubblewrap(BaseRoot::HostUsr)?);
    for platform in &args.platform {
        if !platform.root.join("usr").is_dir() {
            bail!(
                "`--platform {}={}`: not a root file system (no `usr` directory)",
                platform.label,
                platform.root.display()
            );
        }
        let executor = bubblewrap(BaseRoot::Directory(platform.root.clone()))
            .with_context(|| format!("platform `{}`", platform.label))?;
        executors = executors.with_platform(platform.clone(), executor);
    }
    Ok(executors)
}

/// Sets `stop` on the first Ctrl-C or SIGTERM; a second one exits at once.
pub(crate) fn stop_on_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    super::server::on_signals(
        move || stop.store(true, Ordering::SeqCst),
        "second signal; exiting without reporting running jobs",
    )
}

/// This machine's host name, for the runner's default name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "gantry-runner".to_owned())
}
