//! `gantry runners`: the runners registered with a server (`GET /runners`).
//!
//! Output contract: a table for people (id, name, status, labels, capacity, the jobs each
//! holds); with `--json` the API's answer, `{"runners": [...]}`, on stdout. Exit 1 when the
//! server refuses, 2 when it cannot be reached.

use std::process::ExitCode;

use clap::Args;
use gantry_proto::v1::{Runner, RunnerList, RunnerStatus};

use super::client::{Client, Reply};
use super::runs::{ServerOption, refused};
use crate::output;

/// Arguments of `gantry runners`.
#[derive(Debug, Args)]
pub struct RunnersArgs {
    #[command(flatten)]
    server: ServerOption,
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// `gantry runners`.
pub fn run(args: RunnersArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    match client.get::<RunnerList>("/runners")? {
        Reply::Ok(list, _) if args.json => {
            output::json_line(&serde_json::to_value(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        Reply::Ok(list, _) => {
            output::line(&format!(
                "{:>6}  {:<24}  {:<8}  {:<32}  {:>8}  JOBS",
                "ID", "NAME", "STATUS", "LABELS", "CAPACITY"
            ));
            for runner in &list.runners {
                output::line(&runner_row(runner));
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// One row of the table.
fn runner_row(runner: &Runner) -> String {
    let jobs: Vec<String> = runner.jobs.iter().map(i64::to_string).collect();
    format!(
        "{:>6}  {:<24}  {:<8}  {:<32}  {:>8}  {}",
        runner.id,
        runner.name,
        match runner.status {
            RunnerStatus::Online => "online",
            RunnerStatus::Offline => "offline",
        },
        runner.labels.join(","),
        runner.capacity,
        if jobs.is_empty() {
            "-".to_owned()
        } else {
            jobs.join(",")
        }
    )
}
