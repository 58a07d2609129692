//! `gantry expr eval`: evaluate one expression, or a batch of JSON lines from stdin.
//!
//! Output contract: `{"kind": "...", "value": ...}` per expression, or in batch mode
//! `{"error": {"kind": "lexing|parsing|evaluation", "message": "..."}}` for a failing one.
//! Kinds are GitHub's: Null, Boolean, Number, String, Array, Object.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use gantry_expr::{Contexts, ExprError, Host, JobStatus, ParseOptions, Value};
use serde_json::json;

use crate::output;

/// Expression commands.
#[derive(Debug, Subcommand)]
pub enum ExprCommand {
    /// Evaluate an expression (without `${{ }}`) and print its kind and value as JSON.
    Eval(EvalArgs),
}

/// Arguments of `gantry expr eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A JSON object whose keys are the named contexts (`github`, `matrix`, …).
    #[arg(long)]
    contexts: Option<PathBuf>,
    /// Read JSON lines `{"expr": "...", "contexts": {...}}` from stdin, answer one line each.
    #[arg(long, conflicts_with_all = ["expression", "contexts"])]
    batch: bool,
    /// The expression to evaluate.
    #[arg(required_unless_present = "batch")]
    expression: Option<String>,
}

/// Runs an expression subcommand.
pub fn run(command: ExprCommand) -> anyhow::Result<ExitCode> {
    let ExprCommand::Eval(args) = command;
    if args.batch {
        return batch();
    }
    let contexts = match &args.contexts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
            contexts_from_json(&json)
                .with_context(|| format!("`{}` must hold a JSON object", path.display()))?
        }
        None => Contexts::default(),
    };
    let expression = args.expression.unwrap_or_default();
    match evaluate(&expression, &contexts) {
        Ok(value) => {
            output::json_line(&json!({"kind": value.kind(), "value": value.to_json()}));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            output::error(&format!("{} error: {error}", error.kind));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn batch() -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.context("failed to read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        output::json_line(&batch_line(&line));
    }
    Ok(ExitCode::SUCCESS)
}

/// Answers one batch line; malformed input lines get an `input` error rather than stopping.
fn batch_line(line: &str) -> serde_json::Value {
    let input: serde_json::Value = match serde_json::from_str(line) {
        Ok(input) => input,
        Err(error) => return input_error(format!("line is not valid JSON: {error}")),
    };
    let Some(expression) = input.get("expr").and_then(serde_json::Value::as_str) else {
        return input_error("line needs a string field \"expr\"".to_string());
    };
    let contexts = match input.get("contexts") {
        None | Some(serde_json::Value::Null) => Contexts::default(),
        Some(json) => match contexts_from_json(json) {
            Some(contexts) => contexts,
            None => return input_error("\"contexts\" must be a JSON object".to_string()),
        },
    };
    match evaluate(expression, &contexts) {
        Ok(value) => json!({"kind": value.kind(), "value": value.to_json()}),
        Err(error) => {
            json!({"error": {"kind": error.kind.to_string(), "message": error.to_string()}})
        }
    }
}

fn input_error(message: String) -> serde_json::Value {
    json!({"error": {"kind": "input", "message": message}})
}

fn contexts_from_json(json: &serde_json::Value) -> Option<Contexts> {
    let object = json.as_object()?;
    Some(
        object
            .iter()
            .map(|(name, value)| (name.clone(), Value::from_json(value)))
            .collect(),
    )
}

/// Parses with exactly the given contexts available and every function allowed.
fn evaluate(expression: &str, contexts: &Contexts) -> Result<Value, ExprError> {
    let options = ParseOptions::new(contexts.keys().cloned()).with_functions([
        "success",
        "failure",
        "always",
        "cancelled",
        "hashFiles",
    ]);
    let parsed = gantry_expr::parse(expression, &options)?;
    parsed.evaluate(contexts, &CommandLineHost)
}

/// The CLI has no job: status functions see a successful job, and `hashFiles` hashes files
/// under the current directory.
struct CommandLineHost;

impl Host for CommandLineHost {
    fn job_status(&self) -> JobStatus {
        JobStatus::Success
    }

    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        let workspace = std::env::current_dir().map_err(|error| error.to_string())?;
        gantry_runner::hash_files(&workspace, patterns).map_err(|error| error.to_string())
    }
}
