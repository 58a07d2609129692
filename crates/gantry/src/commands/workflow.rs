//! `gantry workflow check` and `gantry workflow match`.
//!
//! Output contracts (scripts depend on them):
//! - `check`: exit 0 when every file is valid, else 1 with `FILE:LINE:COL: message` lines on
//!   stderr; `--json` prints one object per file on stdout.
//! - `match`: exit 0 when the workflow runs for the event, 1 when it does not (with the reason).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use gantry_workflow::model::{RunsOn, Workflow};
use gantry_workflow::plan::{self, MatrixPlan};
use gantry_workflow::trigger::{self, Decision, Event};
use gantry_workflow::{Diagnostics, Limits};
use serde_json::{Value, json};

use crate::output;

/// Workflow file commands.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Validate workflow files; exit 1 and print `FILE:LINE:COL: message` for each problem.
    Check(CheckArgs),
    /// Say whether an event starts a workflow, and why not when it does not.
    Match(MatchArgs),
}

/// Arguments of `gantry workflow check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print one JSON object per file on stdout.
    #[arg(long)]
    json: bool,
    /// Largest accepted file in bytes.
    #[arg(long, default_value_t = Limits::default().max_file_bytes)]
    max_file_bytes: usize,
    /// Workflow files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Arguments of `gantry workflow match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// The workflow file.
    file: PathBuf,
    /// Event name as in `on:` (push, pull_request, workflow_dispatch, …).
    #[arg(long)]
    event: String,
    /// The webhook payload (JSON); `action`, refs and workflow names are read from it.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// The pushed ref or the pull request's base branch, overriding the payload.
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// A file listing changed paths, one per line.
    #[arg(long)]
    changed_files: Option<PathBuf>,
    /// Print the decision as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a workflow subcommand.
pub fn run(command: WorkflowCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkflowCommand::Check(args) => check(&args),
        WorkflowCommand::Match(args) => match_event(&args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_file_bytes: args.max_file_bytes,
        ..Limits::default()
    };
    let mut all_ok = true;
    for file in &args.files {
        let display = file.display().to_string();
        match load_file(file, &limits) {
            Ok(workflow) => {
                if args.json {
                    output::json_line(&summary(&display, &workflow, &limits));
                }
            }
            Err(diagnostics) => {
                all_ok = false;
                for diagnostic in &diagnostics.0 {
                    output::message(&format!("{display}:{diagnostic}"));
                }
                if args.json {
                    let errors: Vec<Value> = diagnostics
                        .0
                        .iter()
                        .map(
                            |d| json!({"line": d.pos.line, "col": d.pos.col, "message": d.message}),
                        )
                        .collect();
                    output::json_line(&json!({"file": display, "ok": false, "errors": errors}));
                }
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads and loads one file; IO and encoding problems become diagnostics at a position.
fn load_file(path: &Path, limits: &Limits) -> Result<Workflow, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let start = gantry_workflow::yaml::Pos { line: 1, col: 1 };
    let bytes = match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() > limits.max_file_bytes as u64 => {
            diagnostics.push(
                start,
                format!(
                    "file is {} bytes, larger than the limit of {} bytes",
                    metadata.len(),
                    limits.max_file_bytes
                ),
            );
            return Err(diagnostics);
        }
        Ok(_) => std::fs::read(path),
        Err(error) => Err(error),
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(error) => {
            diagnostics.push(start, format!("cannot read file: {error}"));
            return Err(diagnostics);
        }
    };
    let source = match std::str::from_utf8(&bytes) {
        Ok(source) => source,
        Err(error) => {
            let valid = &bytes[..error.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let col = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            diagnostics.push(
                gantry_workflow::yaml::Pos {
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    col: u32::try_from(col).unwrap_or(u32::MAX),
                },
                "file is not valid UTF-8",
            );
            return Err(diagnostics);
        }
    };
    gantry_workflow::load(source, limits)
}

/// The `--json` object of a valid file.
fn summary(file: &str, workflow: &Workflow, limits: &Limits) -> Value {
    let planned = plan::plan(workflow, limits).unwrap_or_default();
    let jobs: Vec<Value> = workflow
        .jobs
        .iter()
        .map(|job| {
            let matrix = planned
                .iter()
                .find(|p| std::ptr::eq(p.job, job))
                .map(|p| &p.matrix);
            json!({
                "id": job.id.value,
                "name": job.display_name(),
                "needs": job.needs.iter().map(|n| n.value.clone()).collect::<Vec<_>>(),
                "runs_on": job.runs_on.as_ref().map(runs_on_json),
                "if": job.condition.as_ref().map(|c| c.value.clone()),
                "matrix": match matrix {
                    Some(MatrixPlan::Combinations(c)) => json!({"combinations": c.len()}),
                    Some(MatrixPlan::Deferred) => json!({"deferred": true}),
                    Some(MatrixPlan::None) | None => Value::Null,
                },
            })
        })
        .collect();
    let name = workflow
        .name
        .as_ref()
        .map_or(file.to_string(), |n| n.value.clone());
    json!({
        "file": file,
        "ok": true,
        "name": name,
        "triggers": workflow.on.iter().map(|t| t.event.value.clone()).collect::<Vec<_>>(),
        "jobs": jobs,
    })
}

fn runs_on_json(runs_on: &RunsOn) -> Value {
    let labels: Vec<&str> = runs_on.labels.iter().map(|l| l.value.as_str()).collect();
    match &runs_on.group {
        Some(group) => json!({"group": group.value, "labels": labels}),
        None => json!(labels),
    }
}

fn match_event(args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(&args.file)
        .with_context(|| format!("failed to read `{}`", args.file.display()))?;
    let workflow = match gantry_workflow::load(&source, &Limits::default()) {
        Ok(workflow) => workflow,
        Err(diagnostics) => {
            for diagnostic in &diagnostics.0 {
                output::message(&format!("{}:{diagnostic}", args.file.display()));
            }
            bail!("`{}` is not a valid workflow", args.file.display());
        }
    };
    let payload: Value = match &args.payload {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("`{}` is not valid JSON", path.display()))?
        }
        None => Value::Null,
    };
    let changed_files: Option<Vec<String>> = match &args.changed_files {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        None => None,
    };
    let payload_ref = event_ref(&args.event, &payload);
    let event = Event {
        name: &args.event,
        action: payload.get("action").and_then(Value::as_str),
        git_ref: args.git_ref.as_deref().or(payload_ref),
        changed_files: changed_files.as_deref(),
        workflow_name: payload
            .pointer("/workflow_run/name")
            .and_then(Value::as_str),
        schedule: payload.get("schedule").and_then(Value::as_str),
    };
    let decision = trigger::decide(&workflow, &event);
    if args.json {
        let reason = match &decision {
            Decision::Run => Value::Null,
            Decision::Skip(reason) => json!(reason),
        };
        output::json_line(&json!({"triggers": decision.runs(), "reason": reason}));
    } else {
        match &decision {
            Decision::Run => output::line("triggers"),
            Decision::Skip(reason) => output::line(&format!("does not trigger: {reason}")),
        }
    }
    Ok(if decision.runs() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The ref a payload's filters apply to: the pushed ref, a pull request's base branch, or a
/// workflow run's head branch.
fn event_ref<'a>(event: &str, payload: &'a Value) -> Option<&'a str> {
    let pointer = match event {
        "pull_request" | "pull_request_target" => "/pull_request/base/ref",
        "workflow_run" => "/workflow_run/head_branch",
        _ => "/ref",
    };
    payload.pointer(pointer).and_then(Value::as_str)
}
