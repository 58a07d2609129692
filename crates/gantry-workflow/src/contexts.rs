//! Which expression contexts and functions GitHub allows at each key of a workflow.
//!
//! GitHub restricts contexts per key: `secrets` is not available in `runs-on`, `matrix` is not
//! available in a job's `if`, status functions only exist in `if:` conditions. Checking this
//! when the file is loaded turns what would be a runtime failure into a `line:col` error.
//! The table follows GitHub's workflow schema (the `context` lists of `workflow-v1.0.json`).

use gantry_expr::ParseOptions;

/// A place in a workflow where expressions are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `run-name`.
    RunName,
    /// Workflow-level `env`.
    WorkflowEnv,
    /// Workflow-level `concurrency`.
    WorkflowConcurrency,
    /// Default values of `workflow_call` inputs.
    CallInputDefault,
    /// `value` of `workflow_call` outputs.
    CallOutput,
    /// A job's `if`.
    JobIf,
    /// `strategy` (matrix, fail-fast, max-parallel).
    Strategy,
    /// Job keys evaluated once the matrix is known: `name`, `runs-on`, `environment`,
    /// `concurrency`, `container`, `services`, `timeout-minutes`, `continue-on-error`, and a
    /// reusable-workflow job's `with`.
    JobStrategyContext,
    /// Job-level `env` and a reusable-workflow job's `secrets` (adds `secrets`).
    JobEnv,
    /// Job `defaults.run`.
    JobDefaultsRun,
    /// `snapshot.if`.
    SnapshotIf,
    /// Job `outputs` and environment `url`, evaluated after the steps ran.
    JobOutputs,
    /// A step's `if`.
    StepIf,
    /// Other step keys: `name`, `run`, `env`, `with`, `shell`, `working-directory`,
    /// `continue-on-error`, `timeout-minutes`.
    Step,
}

const STATUS_FUNCTIONS: &[&str] = &["always", "failure", "cancelled", "success"];

impl Site {
    /// The named contexts available here.
    pub fn contexts(self) -> &'static [&'static str] {
        const BASE: &[&str] = &["github", "inputs", "vars"];
        match self {
            Site::RunName | Site::WorkflowConcurrency | Site::CallInputDefault => BASE,
            Site::WorkflowEnv => &["github", "inputs", "vars", "secrets"],
            Site::CallOutput => &["github", "inputs", "vars", "jobs"],
            Site::JobIf | Site::Strategy => &["github", "inputs", "vars", "needs"],
            Site::JobStrategyContext | Site::SnapshotIf => {
                &["github", "inputs", "vars", "needs", "strategy", "matrix"]
            }
            Site::JobEnv => &[
                "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets",
            ],
            Site::JobDefaultsRun => &[
                "github", "inputs", "vars", "needs", "strategy", "matrix", "env",
            ],
            Site::JobOutputs | Site::Step => &[
                "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets", "steps",
                "job", "runner", "env",
            ],
            Site::StepIf => &[
                "github", "inputs", "vars", "needs", "strategy", "matrix", "steps", "job",
                "runner", "env",
            ],
        }
    }

    /// The functions available here beyond the core ones every site has.
    pub fn extra_functions(self) -> &'static [&'static str] {
        match self {
            Site::JobIf => STATUS_FUNCTIONS,
            Site::StepIf => &["always", "failure", "cancelled", "success", "hashFiles"],
            Site::Step => &["hashFiles"],
            _ => &[],
        }
    }

    /// Parse options for expressions at this site.
    pub fn parse_options(self) -> ParseOptions {
        ParseOptions {
            named_contexts: self
                .contexts()
                .iter()
                .map(|name| name.to_string())
                .collect(),
            extra_functions: self
                .extra_functions()
                .iter()
                .map(|name| name.to_string())
                .collect(),
            // In a job's `if:`, `success('build')` tests only the named needs.
            status_functions_take_job_ids: self == Site::JobIf,
            ..ParseOptions::default()
        }
    }
}
