//! `gantry runners list|token`: the runners a server knows, and registration tokens for an
//! organization's self-hosted runners (optionally a runner group restricted to some
//! repositories).
//!
//! Output contracts (scripts depend on them):
//! - `runners list` prints a table (a header, then one runner a line: id, name, status,
//!   labels, capacity, scope — `hosted`, or the organization with its group and repositories —
//!   and held jobs); `--json` prints the API's `RunnerList` on stdout.
//! - `runners token --org ORG` prints the new token alone on stdout (it cannot be shown
//!   again), and where its runners go on stderr; `--json` prints the API's
//!   `RegistrationToken`.
//! - Like every API command: exit 1 when the server refuses, 2 when it cannot be reached.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use gantry_proto::v1::{
    CreateRegistrationToken, RegistrationToken, Runner, RunnerList, RunnerStatus,
};

use super::client::{Client, Reply};
use super::runs::{ServerOption, refused};
use crate::output;

/// `gantry runners` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunnersCommand {
    /// List the registered runners with their status and the jobs they hold.
    List(ListArgs),
    /// Make a registration token for an organization's self-hosted runners.
    Token(TokenArgs),
}

/// Arguments of `gantry runners list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    server: ServerOption,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gantry runners token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The organization whose runners the token registers.
    #[arg(long)]
    org: String,
    /// The runner group its runners join: they take only jobs with `runs-on: {group: NAME}`.
    #[arg(long)]
    group: Option<String>,
    /// Serve only this repository of the organization (repeatable; default all).
    #[arg(long = "repo", value_name = "NAME")]
    repositories: Vec<String>,
    /// How long the token is accepted, in seconds (default one hour).
    #[arg(long, value_name = "SECS")]
    expires_in: Option<u64>,
    /// Print the token as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `gantry runners` subcommand.
pub fn run(command: RunnersCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunnersCommand::List(args) => list(&args),
        RunnersCommand::Token(args) => token(&args),
    }
}

fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    let list = match client.get::<RunnerList>("/runners")? {
        Reply::Ok(list, _) => list,
        Reply::Refused(error, status) => return Ok(refused(&error, status)),
    };
    if args.json {
        output::json_line(&serde_json::to_value(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    output::line(&format!(
        "{:>6}  {:<24}  {:<8}  {:<32}  {:>8}  {:<24}  JOBS",
        "ID", "NAME", "STATUS", "LABELS", "CAPACITY", "SCOPE"
    ));
    for runner in &list.runners {
        output::line(&runner_row(runner));
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of the table: the scope is `hosted`, or the organization with its runner group
/// and repositories when it has them.
fn runner_row(runner: &Runner) -> String {
    let status = match runner.status {
        RunnerStatus::Online => "online",
        RunnerStatus::Offline => "offline",
    };
    let mut scope = runner.org.clone().unwrap_or_else(|| "hosted".to_owned());
    if let Some(group) = &runner.group {
        scope.push_str(&format!(" group={group}"));
    }
    if let Some(repos) = &runner.repositories {
        scope.push_str(&format!(" repos={}", repos.join(",")));
    }
    let jobs: Vec<String> = runner.jobs.iter().map(i64::to_string).collect();
    format!(
        "{:>6}  {:<24}  {:<8}  {:<32}  {:>8}  {:<24}  {}",
        runner.id,
        runner.name,
        status,
        runner.labels.join(","),
        runner.capacity,
        scope,
        if jobs.is_empty() {
            "-".to_owned()
        } else {
            jobs.join(",")
        }
    )
}

fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    let body = CreateRegistrationToken {
        expires_in_secs: args.expires_in,
        group: args.group.clone(),
        repositories: (!args.repositories.is_empty()).then(|| args.repositories.clone()),
    };
    let path = format!("/orgs/{}/runner-tokens", args.org);
    let token = match client.post::<RegistrationToken>(&path, &body, &[])? {
        Reply::Ok(token, _) => token,
        Reply::Refused(error, status) => return Ok(refused(&error, status)),
    };
    if args.json {
        output::json_line(&serde_json::to_value(&token)?);
        return Ok(ExitCode::SUCCESS);
    }
    let scope = match (&token.group, &token.repositories) {
        (None, None) => String::new(),
        (group, repos) => format!(
            " (group {}, repositories {})",
            group.as_deref().unwrap_or("none"),
            repos
                .as_ref()
                .map_or("all".to_owned(), |repos| repos.join(", "))
        ),
    };
    output::message(&format!(
        "registration token for `{}`'s runners{scope}, valid until {}; start one with \
         `gantry runner --server {} --token TOKEN`",
        token.org,
        token.expires_at.to_rfc3339(),
        client.server()
    ));
    output::line(&token.token);
    Ok(ExitCode::SUCCESS)
}
