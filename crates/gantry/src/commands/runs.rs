//! The API commands: `submit`, `runs list|get`, `cancel`, `rerun`, `org create` and
//! `repo create`, each one request to a running `gantry server`.
//!
//! Output contracts (scripts depend on them):
//! - `submit` prints the run id on stdout (`--json`: the run); on an invalid workflow it prints
//!   `FILE:LINE:COL: message` lines on stderr and exits 1.
//! - `runs list` / `runs get` print a table, or with `--json` the API's answer on stdout.
//! - `cancel` and `rerun` print the run (or job), `--json` as the API's answer.
//! - `org create` and `repo create` say what they created on stderr; `--json` prints the
//!   created organization or repository (the API's answer) on stdout.
//! - Every command exits 1 when the server refuses the request (the error on stderr) and 2
//!   when it cannot be reached.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use gantry_proto::v1::{
    CreateOrganization, CreateRepository, ErrorBody, ErrorCode, IDEMPOTENCY_KEY_HEADER, Job,
    Organization, Repository, Rerun, Run, RunDetail, RunList, RunStatus, TriggerRun,
};
use indexmap::IndexMap;

use super::client::{Client, Reply};
use crate::output;

/// `--server`, shared by the API commands.
#[derive(Debug, Args)]
pub struct ServerOption {
    /// The server's URL (default `$GANTRY_SERVER`, else http://127.0.0.1:8080).
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) server: Option<String>,
}

/// Arguments of `gantry submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The repository, `ORG/REPO`.
    #[arg(long, value_name = "ORG/REPO")]
    repo: String,
    /// The event name.
    #[arg(long, default_value = "push")]
    event: String,
    /// The git ref (default: the repository's default branch).
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
    /// The commit.
    #[arg(long)]
    sha: Option<String>,
    /// Who triggers the run.
    #[arg(long)]
    actor: Option<String>,
    /// The workflow's path in the repository (default: from FILE, `.github/workflows/NAME`).
    #[arg(long, value_name = "PATH")]
    workflow_path: Option<String>,
    /// Makes a repeated submission return the run of the first one.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// A `workflow_dispatch` input, `NAME=VALUE` (repeatable); checked against the
    /// workflow's declared inputs by type.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// Print the run as JSON instead of its id.
    #[arg(long)]
    json: bool,
    /// The workflow file.
    file: PathBuf,
}

/// `gantry runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List(ListArgs),
    /// Show a run with its jobs and why they wait.
    Get(GetArgs),
}

/// Arguments of `gantry runs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    server: ServerOption,
    /// Only this repository's runs, `ORG/REPO`.
    #[arg(long, value_name = "ORG/REPO")]
    repo: Option<String>,
    /// Only runs with this status: queued, in_progress or completed.
    #[arg(long)]
    status: Option<String>,
    /// Most runs to list.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gantry runs get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The run's id.
    run: i64,
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gantry cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The run's id.
    run: i64,
    /// Cancel only this job (its id) of the run.
    #[arg(long)]
    job: Option<i64>,
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gantry rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The run's id.
    run: i64,
    /// Re-run only failed and cancelled jobs and what depends on them.
    #[arg(long)]
    failed: bool,
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// `gantry org` subcommands.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create(OrgCreateArgs),
}

/// Arguments of `gantry org create`.
#[derive(Debug, Args)]
pub struct OrgCreateArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The organization's name.
    name: String,
    /// Its share of hosted runners (default 1).
    #[arg(long)]
    weight: Option<u32>,
    /// The most hosted jobs it may run at once.
    #[arg(long)]
    hosted_concurrency_limit: Option<u32>,
    /// Print the created organization as JSON.
    #[arg(long)]
    json: bool,
}

/// `gantry repo` subcommands.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository.
    Create(RepoCreateArgs),
    /// Register a git repository: create it if needed and set its git path, webhook secret
    /// and (with `--install-hook`) a `post-receive` hook that starts runs on `git push`.
    Add(super::git_repo::RepoAddArgs),
}

/// Arguments of `gantry repo create`.
#[derive(Debug, Args)]
pub struct RepoCreateArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The repository, `ORG/REPO`.
    repo: String,
    /// The default branch (default `main`).
    #[arg(long)]
    default_branch: Option<String>,
    /// Print the created repository as JSON.
    #[arg(long)]
    json: bool,
}

/// `gantry dispatch`: `gantry submit` as a manual run (`workflow_dispatch`).
pub fn dispatch(mut args: SubmitArgs) -> anyhow::Result<ExitCode> {
    args.event = "workflow_dispatch".to_owned();
    submit(args)
}

/// `gantry submit`.
pub fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let (org, repo) = split_repo(&args.repo)?;
    let workflow = std::fs::read_to_string(&args.file)
        .with_context(|| format!("failed to read `{}`", args.file.display()))?;
    let called = called_beside(&args.file, &workflow)?;
    let request = TriggerRun {
        workflow_path: args
            .workflow_path
            .unwrap_or_else(|| workflow_path_of(&args.file)),
        workflow,
        event: Some(args.event),
        git_ref: args.git_ref,
        sha: args.sha,
        actor: args.actor,
        payload: None,
        inputs: if args.inputs.is_empty() {
            None
        } else {
            Some(super::local_run::parse_inputs(&args.inputs)?)
        },
        called_workflows: (!called.is_empty()).then_some(called),
    };
    let mut headers = Vec::new();
    if let Some(key) = &args.idempotency_key {
        headers.push((IDEMPOTENCY_KEY_HEADER, key.as_str()));
    }
    let client = Client::new(args.server.server.as_deref());
    match client.post::<Run>(&format!("/repos/{org}/{repo}/runs"), &request, &headers)? {
        Reply::Ok(run, status) => {
            if status == 200 {
                output::message(&format!(
                    "run {} already exists for this idempotency key",
                    run.id
                ));
            } else {
                output::message(&format!(
                    "created run {} ({} #{})",
                    run.id, run.workflow_name, run.run_number
                ));
            }
            if args.json {
                output::json_line(&serde_json::to_value(&run)?);
            } else {
                output::line(&run.id.to_string());
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, _) if error.error.code == ErrorCode::WorkflowInvalid => {
            let file = args.file.display();
            if error.error.details.is_empty() {
                output::message(&format!("{file}: {}", error.error.message));
            }
            for detail in &error.error.details {
                match (detail.line, detail.col) {
                    (Some(line), Some(col)) => {
                        output::message(&format!("{file}:{line}:{col}: {}", detail.message));
                    }
                    _ => output::message(&format!("{file}: {}", detail.message)),
                }
            }
            Ok(ExitCode::from(1))
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// `gantry runs list|get`.
pub fn runs(command: RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::List(args) => list(args),
        RunsCommand::Get(args) => get(args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut query = format!("?limit={}", args.limit);
    if let Some(status) = &args.status {
        let status: RunStatus = serde_json::from_value(serde_json::Value::String(status.clone()))
            .with_context(|| {
            format!("unknown status `{status}`: use queued, in_progress or completed")
        })?;
        query.push_str(&format!("&status={status}"));
    }
    let path = match &args.repo {
        Some(full) => {
            let (org, repo) = split_repo(full)?;
            format!("/repos/{org}/{repo}/runs{query}")
        }
        None => format!("/runs{query}"),
    };
    let client = Client::new(args.server.server.as_deref());
    match client.get::<RunList>(&path)? {
        Reply::Ok(list, _) if args.json => {
            output::json_line(&serde_json::to_value(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        Reply::Ok(list, _) => {
            output::line(&format!(
                "{:>6}  {:<12}  {:<10}  {:<24}  {:<24}  {}",
                "ID", "STATUS", "CONCLUSION", "REPOSITORY", "WORKFLOW", "EVENT"
            ));
            for run in &list.items {
                output::line(&format!(
                    "{:>6}  {:<12}  {:<10}  {:<24}  {:<24}  {} {}",
                    run.id,
                    run.status.as_str(),
                    run.conclusion.map_or("-", |c| c.as_str()),
                    run.repository,
                    format!("{} #{}", run.workflow_name, run.run_number),
                    run.event,
                    run.git_ref,
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    match client.get::<RunDetail>(&format!("/runs/{}", args.run))? {
        Reply::Ok(detail, _) if args.json => {
            output::json_line(&serde_json::to_value(&detail)?);
            Ok(ExitCode::SUCCESS)
        }
        Reply::Ok(detail, _) => {
            print_run(&detail.run);
            output::line("jobs:");
            for job in &detail.jobs {
                print_job(job);
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// `gantry cancel`.
pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    let empty = serde_json::json!({});
    match args.job {
        None => match client.post::<Run>(&format!("/runs/{}/cancel", args.run), &empty, &[])? {
            Reply::Ok(run, _) => {
                output::message(&format!("cancel requested for run {}", run.id));
                if args.json {
                    output::json_line(&serde_json::to_value(&run)?);
                } else {
                    print_run(&run);
                }
                Ok(ExitCode::SUCCESS)
            }
            Reply::Refused(error, status) => Ok(refused(&error, status)),
        },
        Some(job) => {
            let path = format!("/runs/{}/jobs/{job}/cancel", args.run);
            match client.post::<Job>(&path, &empty, &[])? {
                Reply::Ok(job, _) => {
                    output::message(&format!("cancel requested for job {}", job.id));
                    if args.json {
                        output::json_line(&serde_json::to_value(&job)?);
                    } else {
                        print_job(&job);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Reply::Refused(error, status) => Ok(refused(&error, status)),
            }
        }
    }
}

/// `gantry rerun`.
pub fn rerun(args: RerunArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.server.as_deref());
    let request = Rerun {
        failed_only: args.failed,
    };
    match client.post::<Run>(&format!("/runs/{}/rerun", args.run), &request, &[])? {
        Reply::Ok(run, _) => {
            output::message(&format!(
                "run {} is re-running as attempt {}",
                run.id, run.attempt
            ));
            if args.json {
                output::json_line(&serde_json::to_value(&run)?);
            } else {
                print_run(&run);
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// `gantry org create`.
pub fn org(command: OrgCommand) -> anyhow::Result<ExitCode> {
    let OrgCommand::Create(args) = command;
    let client = Client::new(args.server.server.as_deref());
    let request = CreateOrganization {
        name: args.name,
        weight: args.weight,
        hosted_concurrency_limit: args.hosted_concurrency_limit,
    };
    match client.post::<Organization>("/orgs", &request, &[])? {
        Reply::Ok(org, _) => {
            output::message(&format!(
                "created organization {} (id {})",
                org.name, org.id
            ));
            if args.json {
                output::json_line(&serde_json::to_value(&org)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// `gantry repo create`.
pub fn repo(command: RepoCommand) -> anyhow::Result<ExitCode> {
    let args = match command {
        RepoCommand::Create(args) => args,
        RepoCommand::Add(args) => return super::git_repo::add(args),
    };
    let (org, name) = split_repo(&args.repo)?;
    let client = Client::new(args.server.server.as_deref());
    let request = CreateRepository {
        name: name.to_owned(),
        default_branch: args.default_branch,
    };
    match client.post::<Repository>(&format!("/orgs/{org}/repos"), &request, &[])? {
        Reply::Ok(repo, _) => {
            output::message(&format!(
                "created repository {} (id {})",
                repo.full_name, repo.id
            ));
            if args.json {
                output::json_line(&serde_json::to_value(&repo)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// Prints the server's refusal on stderr; exit code 1.
pub(crate) fn refused(error: &ErrorBody, status: u16) -> ExitCode {
    output::error(&format!(
        "{} ({status} {})",
        error.error.message, error.error.code
    ));
    for detail in &error.error.details {
        output::message(&format!("  {}", detail.message));
    }
    ExitCode::from(1)
}

pub(super) fn split_repo(full: &str) -> anyhow::Result<(&str, &str)> {
    match full.split_once('/') {
        Some((org, repo)) if !org.is_empty() && !repo.is_empty() && !repo.contains('/') => {
            Ok((org, repo))
        }
        _ => anyhow::bail!("`{full}` is not a repository: use ORG/REPO"),
    }
}

/// `.github/workflows/NAME` from a file's path: the part from `.github/` on when the path has
/// one, else the file name under `.github/workflows/`.
/// The local reusable workflows a workflow file calls, read from the repository it sits in
/// (the directory above its `.github/workflows/`). A file outside such a directory, or one that
/// does not load, sends none: the server then names what is missing or wrong.
fn called_beside(file: &Path, text: &str) -> anyhow::Result<IndexMap<String, String>> {
    let Some(root) = repository_root_of(file) else {
        return Ok(IndexMap::new());
    };
    match gantry_workflow::load(text, &Default::default()) {
        Ok(workflow) => super::called_files::called_files(&root, &workflow),
        Err(_) => Ok(IndexMap::new()),
    }
}

/// `ROOT` of a file at `ROOT/.github/workflows/NAME`.
fn repository_root_of(file: &Path) -> Option<PathBuf> {
    let workflows = file.parent()?;
    let github = workflows.parent()?;
    let is = |dir: &Path, name: &str| dir.file_name().is_some_and(|found| found == name);
    if !is(workflows, "workflows") || !is(github, ".github") {
        return None;
    }
    Some(github.parent()?.to_owned())
}

fn workflow_path_of(file: &Path) -> String {
    let text = file.to_string_lossy().replace('\\', "/");
    if let Some(index) = text.find(".github/workflows/") {
        return text[index..].to_owned();
    }
    let name = file
        .file_name()
        .map_or_else(|| "workflow.yml".into(), |name| name.to_string_lossy());
    format!(".github/workflows/{name}")
}

fn print_run(run: &Run) {
    output::line(&format!(
        "run {}  {} #{} (attempt {})  {}  {} {} {}",
        run.id,
        run.workflow_name,
        run.run_number,
        run.attempt,
        run.repository,
        run.event,
        run.git_ref,
        run.sha.get(..7).unwrap_or(&run.sha),
    ));
    output::line(&format!(
        "status: {}  conclusion: {}",
        run.status,
        run.conclusion.map_or("-", |c| c.as_str())
    ));
    for line in workflow_error_lines(run) {
        output::line(&line);
    }
}

/// A run of an invalid workflow file, explained: a heading and one `file:line:col: message`
/// line per problem (nothing for a run whose file loaded). `gantry watch` prints them too.
pub(crate) fn workflow_error_lines(run: &Run) -> Vec<String> {
    if run.workflow_errors.is_empty() {
        return Vec::new();
    }
    std::iter::once("invalid workflow file:".to_owned())
        .chain(run.workflow_errors.iter().map(|error| format!("  {error}")))
        .collect()
}

fn print_job(job: &Job) {
    let why: Vec<&str> = job
        .waiting_reasons
        .iter()
        .map(|reason| reason.message.as_str())
        .chain(job.message.as_deref())
        .collect();
    output::line(&format!(
        "  {:>6}  {:<32}  {:<12}  {:<10}  {}",
        job.id,
        job.name,
        job.status.as_str(),
        job.conclusion.map_or("-", |c| c.as_str()),
        why.join("; "),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_paths_come_from_the_file() {
        assert_eq!(
            workflow_path_of(Path::new("examples/demo/.github/workflows/ci.yml")),
            ".github/workflows/ci.yml"
        );
        assert_eq!(
            workflow_path_of(Path::new("/tmp/x.yml")),
            ".github/workflows/x.yml"
        );
        assert!(split_repo("acme/app").is_ok());
        assert!(split_repo("acme").is_err());
        assert!(split_repo("a/b/c").is_err());
    }

    #[test]
    fn called_files_are_read_from_the_repository_the_file_is_in() {
        assert_eq!(
            repository_root_of(Path::new("repo/.github/workflows/ci.yml")),
            Some(PathBuf::from("repo"))
        );
        assert_eq!(repository_root_of(Path::new("/tmp/x.yml")), None);

        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".github/workflows");
        std::fs::create_dir_all(&dir).unwrap();
        let called =
            "on: workflow_call\njobs:\n  x:\n    runs-on: x\n    steps:\n      - run: echo\n";
        std::fs::write(dir.join("b.yml"), called).unwrap();
        let caller = "on: push\njobs:\n  b:\n    uses: ./.github/workflows/b.yml\n";
        let files = called_beside(&dir.join("ci.yml"), caller).unwrap();
        assert_eq!(files["./.github/workflows/b.yml"], called);
        assert!(
            called_beside(Path::new("/tmp/x.yml"), caller)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_invalid_workflow_files_errors_are_listed_under_a_heading() {
        let run: Run = serde_json::from_value(serde_json::json!({
            "id": 1, "repository": "acme/app", "workflow_path": ".github/workflows/ci.yml",
            "workflow_name": ".github/workflows/ci.yml", "run_number": 1, "attempt": 1,
            "event": "push", "ref": "refs/heads/main", "sha": "a".repeat(40), "actor": "me",
            "status": "completed", "conclusion": "failure", "created_at": "2026-01-01T00:00:00Z",
            "started_at": null, "completed_at": "2026-01-01T00:00:00Z",
            "workflow_errors": [".github/workflows/ci.yml:3:5: unknown key `stepz`"],
        }))
        .unwrap();
        assert_eq!(
            workflow_error_lines(&run),
            [
                "invalid workflow file:",
                "  .github/workflows/ci.yml:3:5: unknown key `stepz`"
            ]
        );
        let valid = Run {
            workflow_errors: Vec::new(),
            ..run
        };
        assert!(workflow_error_lines(&valid).is_empty());
    }
}
