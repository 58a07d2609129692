//! `gantry run [PATH]`: runs a local repository's workflows through an embedded orchestrator —
//! the real server, scheduler, provisioner, sandboxed runners and logs, in this process and its
//! runner children — prints each job as it starts and ends with its log, and exits with the
//! runs' conclusion (0 when every run succeeded, 1 otherwise). Ctrl-C cancels the runs and
//! exits with 130 once they have ended (`interrupt`).
//!
//! The workflows are the files under `PATH/.github/workflows` that the event starts (with
//! GitHub's trigger rules; the ref is the checked-out branch from `.git/HEAD`, else
//! `refs/heads/main`). State lives in a temporary directory unless `--data-dir` keeps it.
//!
//! `--job ID` (repeatable, like act's `-j`) runs only those jobs of the chosen workflows and
//! the jobs they need, transitively. The server is not told: each workflow file is narrowed
//! before it is submitted, by blanking the other jobs' lines (`job_selection`), so the server
//! validates and runs an ordinary file whose `needs` are complete and whose `line:col`
//! diagnostics still match the file on disk. Workflows without any of the ids are not run; an
//! id no chosen workflow has is an error listing the ids that exist. The exit code is the
//! narrowed runs' conclusion.
//!
//! Output: on a terminal, a live tree of runs and jobs with their logs above it; otherwise
//! plain lines (see `watch`); with `--json`, only each finished run as a JSON line on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1 as proto;
use indexmap::IndexMap;

use super::client::{Client, Reply};
use super::interrupt::{INTERRUPTED, Interrupt};
use super::up::{PoolArgs, RunningPool};
use crate::embedded::EmbeddedServer;
use crate::output;
use crate::output::progress::Mode;

/// Arguments of `gantry run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The repository (a directory with `.github/workflows`).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The event to run the workflows for.
    #[arg(long, default_value = "push")]
    event: String,
    /// A `workflow_dispatch` input, `NAME=VALUE` (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// Run only this job (its id under `jobs:`) and the jobs it needs (repeatable).
    #[arg(long = "job", value_name = "ID")]
    jobs: Vec<String>,
    /// Keep the server's state here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print each finished run as a JSON line instead of the job tree and logs.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pool: PoolArgs,
}

/// A workflow file chosen to run.
struct Chosen {
    /// Its path in the repository, `.github/workflows/NAME`.
    path: String,
    /// The text submitted to the server.
    text: String,
    /// The file as loaded here.
    workflow: gantry_workflow::model::Workflow,
    /// The reusable workflow files it calls, by `uses:` text.
    called: IndexMap<String, String>,
}

/// The checked-out branch of the repository at `path`, as a ref.
fn current_ref(path: &Path) -> String {
    std::fs::read_to_string(path.join(".git/HEAD"))
        .ok()
        .and_then(|head| head.trim().strip_prefix("ref: ").map(str::to_owned))
        .unwrap_or_else(|| "refs/heads/main".to_owned())
}

/// The workflow files the event starts; invalid files are reported and make the run fail.
fn choose(path: &Path, event: &str, git_ref: &str) -> anyhow::Result<(Vec<Chosen>, bool)> {
    let dir = path.join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|file| {
            file.extension()
                .is_some_and(|extension| extension == "yml" || extension == "yaml")
        })
        .collect();
    files.sort();
    let mut chosen = Vec::new();
    let mut invalid = false;
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        let relative = format!(
            ".github/workflows/{}",
            file.file_name()
                .map(|name| name.to_string_lossy())
                .unwrap_or_default()
        );
        let workflow = match gantry_workflow::load(&text, &Default::default()) {
            Ok(workflow) => workflow,
            Err(diagnostics) => {
                for diagnostic in &diagnostics.0 {
                    output::error(&format!("{relative}:{diagnostic}"));
                }
                invalid = true;
                continue;
            }
        };
        let offered = gantry_workflow::trigger::Event {
            name: event,
            git_ref: Some(git_ref),
            ..Default::default()
        };
        match gantry_workflow::trigger::decide(&workflow, &offered) {
            gantry_workflow::trigger::Decision::Run => {
                let called = super::called_files::called_files(path, &workflow)
                    .with_context(|| format!("{relative} calls a reusable workflow"))?;
                let elsewhere =
                    super::called_files::other_repository_calls(&relative, &workflow, &called);
                if !elsewhere.is_empty() {
                    for problem in &elsewhere {
                        output::error(problem);
                    }
                    invalid = true;
                    continue;
                }
                chosen.push(Chosen {
                    called,
                    path: relative,
                    text,
                    workflow,
                });
            }
            gantry_workflow::trigger::Decision::Skip(why) => {
                output::message(&format!("{relative}: not started by `{event}`: {why}"));
            }
        }
    }
    Ok((chosen, invalid))
}

/// The chosen workflows that have any of the `wanted` job ids, each cut down to those jobs and
/// what they need; an error naming the ids that exist when one of `wanted` is in none.
fn narrow(chosen: Vec<Chosen>, wanted: &[String]) -> anyhow::Result<Vec<Chosen>> {
    let unknown: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|id| chosen.iter().all(|file| file.workflow.job(id).is_none()))
        .collect();
    if !unknown.is_empty() {
        let existing: Vec<String> = chosen
            .iter()
            .map(|file| {
                let ids: Vec<&str> = file
                    .workflow
                    .jobs
                    .iter()
                    .map(|job| job.id.value.as_str())
                    .collect();
                format!("{}: {}", file.path, ids.join(", "))
            })
            .collect();
        bail!(
            "no workflow that runs has the job{} `{}`; the jobs are:\n  {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join("`, `"),
            existing.join("\n  ")
        );
    }
    let mut narrowed = Vec::new();
    for file in chosen {
        let keep = super::job_selection::with_needs(&file.workflow, wanted);
        if keep.is_empty() {
            output::message(&format!("{}: none of the chosen jobs, not run", file.path));
            continue;
        }
        let text = super::job_selection::keep_only(&file.text, &file.workflow, &keep, &file.path)?;
        narrowed.push(Chosen { text, ..file });
    }
    Ok(narrowed)
}

/// `NAME=VALUE` inputs as the API takes them (values are strings; the server types them).
pub fn parse_inputs(inputs: &[String]) -> anyhow::Result<IndexMap<String, serde_json::Value>> {
    inputs
        .iter()
        .map(|input| {
            let (name, value) = input
                .split_once('=')
                .with_context(|| format!("`--input {input}` is not NAME=VALUE"))?;
            Ok((name.to_owned(), serde_json::Value::String(value.to_owned())))
        })
        .collect()
}

/// A repository name from the directory's name.
fn repo_name(path: &Path) -> String {
    let name: String = std::path::absolute(path)
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "repo".to_owned()
    } else {
        name
    }
}

/// Runs the chosen workflows and follows them to the end.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    output::init_logging("warn");
    let git_ref = current_ref(&args.path);
    let (chosen, invalid) = choose(&args.path, &args.event, &git_ref)?;
    if chosen.is_empty() {
        if invalid {
            return Ok(ExitCode::from(1));
        }
        bail!(
            "no workflow under `{}` runs on `{}`",
            args.path.display(),
            args.event
        );
    }
    let chosen = if args.jobs.is_empty() {
        chosen
    } else {
        narrow(chosen, &args.jobs)?
    };
    let inputs = parse_inputs(&args.inputs)?;
    let temporary = tempfile::tempdir().context("cannot create a temporary directory")?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    let token = super::server::runner_token_file(&data_dir)?;
    let server = EmbeddedServer::start(gantry_server::ServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        storage: gantry_server::Storage::Sqlite {
            path: data_dir.join("gantry.sqlite"),
        },
        max_body_bytes: proto::DEFAULT_MAX_BODY_BYTES,
        engine: Default::default(),
        runner_token: Some(token.clone()),
        runners: Default::default(),
        mirrors_dir: None,
    })?;
    let pool = RunningPool::start(&args.pool, &server.base, &token, &data_dir)?;
    let interrupt = Interrupt::watch(&server.base)?;
    let outcome = drive(&args, &server.base, &chosen, &git_ref, inputs, &interrupt);
    pool.stop();
    server.stop()?;
    let succeeded = outcome?;
    Ok(if interrupt.interrupted() {
        ExitCode::from(INTERRUPTED)
    } else if succeeded && !invalid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Triggers the runs and follows them; whether all succeeded.
fn drive(
    args: &RunArgs,
    base: &str,
    chosen: &[Chosen],
    git_ref: &str,
    inputs: IndexMap<String, serde_json::Value>,
    interrupt: &Interrupt,
) -> anyhow::Result<bool> {
    let client = Client::new(Some(base));
    let repo = repo_name(&args.path);
    let org = proto::CreateOrganization {
        name: "local".to_owned(),
        weight: None,
        hosted_concurrency_limit: None,
    };
    expect_ok(client.post::<serde_json::Value>("/orgs", &org, &[])?)?;
    let create = proto::CreateRepository {
        name: repo.clone(),
        default_branch: None,
    };
    expect_ok(client.post::<serde_json::Value>("/orgs/local/repos", &create, &[])?)?;
    let mut runs = Vec::new();
    for workflow in chosen {
        if interrupt.interrupted() {
            // Ctrl-C before every run was started: the rest are not.
            break;
        }
        let trigger = proto::TriggerRun {
            workflow_path: workflow.path.clone(),
            workflow: workflow.text.clone(),
            event: Some(args.event.clone()),
            git_ref: Some(git_ref.to_owned()),
            sha: None,
            actor: None,
            payload: None,
            inputs: (!inputs.is_empty()).then(|| inputs.clone()),
            called_workflows: (!workflow.called.is_empty()).then(|| workflow.called.clone()),
        };
        let run: proto::Run =
            expect_ok(client.post(&format!("/repos/local/{repo}/runs"), &trigger, &[])?)?;
        interrupt.started(&client, run.id);
        runs.push(run.id);
    }
    super::watch::follow(&client, &runs, Mode::for_stdout(args.json))
}

fn expect_ok<T>(reply: Reply<T>) -> anyhow::Result<T> {
    match reply {
        Reply::Ok(value, _) => Ok(value),
        Reply::Refused(error, status) => bail!("the server refused ({status}): {error}"),
    }
}
