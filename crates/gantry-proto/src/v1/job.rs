//! What a runner receives for one claimed job: [`JobPayload`].
//!
//! Expressions stay templates (`${{ }}` text) everywhere a step or output holds them: the
//! runner evaluates them while the job runs, because `steps.*`, `env` (with what earlier steps
//! wrote to `GITHUB_ENV`) and `job.status` exist only then. The contexts that are known when
//! the job is dispatched (`github`, `matrix`, `needs`, `inputs`, `vars`, `strategy`, and the
//! secrets the job references) travel as values.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything a runner needs to run one job instance (one matrix combination).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobPayload {
    /// The run's id.
    pub run_id: u64,
    /// The server's id of the job, once the server has stored it (absent in payloads built
    /// outside a server, such as tests and local runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The job's key under `jobs:` (`github.job`).
    pub job_key: String,
    /// Its position among the job's matrix combinations (0 without a matrix).
    pub matrix_index: u32,
    /// The display name, e.g. `test (python, small)`.
    pub name: String,
    /// The dispatch attempt; every report about the job carries it.
    pub attempt: u32,
    /// The run attempt (`github.run_attempt`).
    pub run_attempt: u32,
    /// The contexts known at dispatch.
    pub contexts: JobContexts,
    /// Workflow-level `env:`, names to templates, in file order.
    #[serde(default)]
    pub workflow_env: IndexMap<String, String>,
    /// Job-level `env:`, names to templates, in file order.
    #[serde(default)]
    pub job_env: IndexMap<String, String>,
    /// Workflow-level `defaults.run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_defaults: Option<RunDefaults>,
    /// Job-level `defaults.run` (it wins over the workflow's, key by key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_defaults: Option<RunDefaults>,
    /// The steps as written.
    pub steps: Vec<StepPayload>,
    /// Job `outputs:`, names to templates, evaluated when the steps have ended.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
    /// The job's `timeout-minutes`, evaluated (GitHub's default is 360).
    pub timeout_minutes: f64,
}

/// The contexts a job's expressions read that are known when it is dispatched. Values are
/// JSON as the expression language sees them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobContexts {
    /// `github`: the event, repository, ref, sha, actor, run ids, ...
    // Shared: the server gives every job of a run attempt the same one, event included
    // (kilobytes for a push), rather than a copy each.
    #[schema(value_type = Object)]
    pub github: std::sync::Arc<serde_json::Value>,
    /// `matrix`: this instance's combination (`{}` without a matrix).
    #[schema(value_type = Object)]
    pub matrix: serde_json::Value,
    /// `needs`: for each need, its `result` and `outputs`.
    #[schema(value_type = Object)]
    pub needs: serde_json::Value,
    /// `inputs` of `workflow_dispatch` / `workflow_call`.
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    /// `vars`: configuration variables.
    #[schema(value_type = Object)]
    pub vars: serde_json::Value,
    /// `strategy`: `fail-fast`, `job-index`, `job-total`, `max-parallel`.
    #[schema(value_type = Object)]
    pub strategy: serde_json::Value,
    /// `secrets`: only the secrets the job's expressions reference, names to values. The
    /// runner masks every one of them in the job's logs.
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
}

/// `defaults.run` of the workflow or of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    /// `shell:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// `working-directory:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
}

/// One step as written in the workflow: exactly one of `run` and `uses` is set. Every string
/// may be a template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepPayload {
    /// `id:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `name:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `if:` as written (`success()` when absent).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// `run:`, the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// `shell:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// `working-directory:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// `uses:`, the action reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// `with:`, input names to templates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub with: IndexMap<String, String>,
    /// `env:`, names to templates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// `continue-on-error:`: `true`, `false` or a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<String>,
    /// `timeout-minutes:`: a number or a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<String>,
}
