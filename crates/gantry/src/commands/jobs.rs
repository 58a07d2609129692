//! `gantry jobs why|priority`: one job by its id, each one or two requests to a running
//! `gantry server`.
//!
//! Output contracts (scripts depend on them):
//! - `jobs why JOB` prints the job's waiting reasons one a line (the engine's: needs,
//!   concurrency group, max-parallel; the dispatcher's: no online runner with the labels,
//!   organization quota, queue position) and exits 0, also when the job does not wait;
//!   `--json` prints `{"job_id", "run_id", "status", "waiting_reasons"}` on stdout.
//! - `jobs priority JOB N` sets the job's priority (higher first among its run's queued
//!   jobs) and prints the job's id on stdout; a completed job is refused (exit 1).
//! - Like every API command: exit 1 when the server refuses, 2 when it cannot be reached.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use gantry_proto::v1::{Job, SetJobPriority};
use serde_json::json;

use super::client::{Client, Reply};
use super::runs::{ServerOption, refused};
use crate::output;

/// `gantry jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Why a job waits: needs, concurrency, quotas, runner labels, queue position.
    Why(WhyArgs),
    /// Change a job's priority (higher goes first among the queued jobs of its run).
    Priority(PriorityArgs),
}

/// Arguments of `gantry jobs why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The job's id.
    job: i64,
    /// Print the reasons as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gantry jobs priority`.
#[derive(Debug, Args)]
pub struct PriorityArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The job's id.
    job: i64,
    /// The new priority (0 is the default; may be negative).
    #[arg(allow_negative_numbers = true)]
    priority: i32,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `gantry jobs` subcommand.
pub fn run(command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::Why(args) => why(&args),
        JobsCommand::Priority(args) => priority(&args),
    }
}

fn why(args: &WhyArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    let job = match client.get::<Job>(&format!("/jobs/{}", args.job))? {
        Reply::Ok(job, _) => job,
        Reply::Refused(error, status) => return Ok(refused(&error, status)),
    };
    if args.json {
        output::json_line(&json!({
            "job_id": job.id,
            "run_id": job.run_id,
            "status": job.status,
            "waiting_reasons": job.waiting_reasons,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    if job.waiting_reasons.is_empty() {
        output::line(&format!(
            "job {} `{}` is {}: it is not waiting for anything",
            job.id,
            job.name,
            job.status.as_str()
        ));
    } else {
        output::line(&format!(
            "job {} `{}` is {} because:",
            job.id,
            job.name,
            job.status.as_str()
        ));
        for reason in &job.waiting_reasons {
            output::line(&format!("  - {}", reason.message));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn priority(args: &PriorityArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    // The route names the run, which the job knows.
    let job = match client.get::<Job>(&format!("/jobs/{}", args.job))? {
        Reply::Ok(job, _) => job,
        Reply::Refused(error, status) => return Ok(refused(&error, status)),
    };
    let path = format!("/runs/{}/jobs/{}/priority", job.run_id, job.id);
    let body = SetJobPriority {
        priority: args.priority,
    };
    match client.post::<Job>(&path, &body, &[])? {
        Reply::Ok(job, _) => {
            output::message(&format!(
                "job {} `{}` now has priority {}",
                job.id, job.name, args.priority
            ));
            if args.json {
                output::json_line(&serde_json::to_value(&job)?);
            } else {
                output::line(&job.id.to_string());
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}
