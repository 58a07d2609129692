//! The compiled workflow a run carries: the parts of a loaded [`Workflow`] the engine still has
//! to evaluate while the run goes on, in a form that is stored with the run, plus the trigger's
//! contexts.
//!
//! Expressions stay as text and are parsed when evaluated; matrices that could be expanded when
//! the run was created are stored expanded, the others (reading `needs`) as written.

use gantry_expr::{Contexts, NoHost, Value};
use gantry_workflow::Limits;
use gantry_workflow::diag::Diagnostics;
use gantry_workflow::graph::JobGraph;
use gantry_workflow::matrix::{Combination, Configuration};
use gantry_workflow::model::{Job, MatrixDef, OrExpr, Spanned, Strategy, Workflow};
use gantry_workflow::plan::{MatrixPlan, expand_matrix_with};
use gantry_workflow::yaml::{Node, NodeValue, Pos};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::eval;

/// The contexts the trigger provides, available everywhere in the workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TriggerContexts {
    /// `github`: the event, repository, ref, sha, actor, ... (`run_attempt` is kept up to date
    /// by the engine when this is an object).
    pub github: Value,
    /// `inputs` of `workflow_dispatch` / `workflow_call`.
    pub inputs: Value,
    /// `vars`: configuration variables.
    pub vars: Value,
}

/// A setting that is a literal or an expression evaluated later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting<T> {
    /// Known when the file was read.
    Literal(T),
    /// A `${{ }}` template, evaluated with the contexts of its place.
    Expr(String),
}

impl<T: Clone> Setting<T> {
    fn from_model(value: &OrExpr<T>) -> Setting<T> {
        match value {
            OrExpr::Literal(spanned) => Setting::Literal(spanned.value.clone()),
            OrExpr::Expr(text) => Setting::Expr(text.value.clone()),
        }
    }
}

/// `concurrency:` of the workflow or of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencySpec {
    /// `group:`, a template.
    pub group: String,
    /// `cancel-in-progress:` (default false).
    pub cancel_in_progress: Option<Setting<bool>>,
}

/// A job's matrix as far as it could be expanded when the run was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatrixSource {
    /// No matrix: one instance.
    None,
    /// Expanded: one instance per combination, in GitHub's order.
    Planned(Vec<PlannedCombination>),
    /// Expanded when the job's needs have ended, because it reads `needs` (or failed to expand
    /// earlier, in which case the job fails with the same error then).
    Deferred(DeferredMatrix),
}

/// One combination of an expanded matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCombination {
    /// The instance's `matrix` context.
    pub matrix: Combination,
    /// How many leading values GitHub shows in the display name.
    pub named_entries: usize,
}

impl PlannedCombination {
    fn from_configuration(configuration: Configuration) -> PlannedCombination {
        PlannedCombination {
            matrix: configuration.matrix,
            named_entries: configuration.named_entries,
        }
    }

    /// `job (v1, v2)` as GitHub names the instance.
    pub fn display_name(&self, job_name: &str) -> String {
        Configuration {
            matrix: self.matrix.clone(),
            named_entries: self.named_entries,
        }
        .display_name(job_name)
    }
}

/// A matrix kept as written, to be expanded later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferredMatrix {
    /// `matrix: ${{ ... }}`.
    Expr(String),
    /// A mapping holding expressions, as JSON (strings with `${{ }}` inside).
    Map(serde_json::Value),
}

/// What the engine keeps of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job id.
    pub id: String,
    /// `name:` as written (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The jobs it needs, as indices into [`RunSpec::jobs`], in `needs` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<usize>,
    /// `if:` as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Whether `if:` calls a status function itself (see [`crate::apply`] on cancelling).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub condition_uses_status: bool,
    /// `runs-on` labels (templates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_on: Vec<String>,
    /// `runs-on.group` (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_group: Option<String>,
    /// `timeout-minutes:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<Setting<f64>>,
    /// `continue-on-error:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<Setting<bool>>,
    /// `strategy.fail-fast:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<Setting<bool>>,
    /// `strategy.max-parallel:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<Setting<f64>>,
    /// `strategy.matrix:`.
    pub matrix: MatrixSource,
    /// Job-level `concurrency:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencySpec>,
    /// `uses:` of a job calling a reusable workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reusable: Option<String>,
}

impl JobSpec {
    /// The job's name before matrix values are added: `name:` as written, or the id.
    pub fn base_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// What the engine keeps of a workflow for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The workflow's `name:`.
    pub workflow_name: Option<String>,
    /// The trigger's contexts.
    pub trigger: TriggerContexts,
    /// Workflow-level `concurrency:`.
    pub concurrency: Option<ConcurrencySpec>,
    /// The jobs in file order.
    pub jobs: Vec<JobSpec>,
    /// For each job, the jobs that need it.
    pub dependents: Vec<Vec<usize>>,
    /// Job index by id.
    index: IndexMap<String, usize>,
}

impl RunSpec {
    /// The index of job `id` in [`RunSpec::jobs`].
    pub fn job_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The contexts every expression of the run sees: `github` (with `run_attempt`), `inputs`
    /// and `vars`.
    pub(crate) fn base_contexts(&self, run_attempt: u32) -> Contexts {
        let mut github = self.trigger.github.clone();
        if let Value::Object(fields) = &mut github {
            fields.insert(
                "run_attempt".to_owned(),
                Value::String(run_attempt.to_string()),
            );
        }
        let mut contexts = Contexts::new();
        contexts.insert("github".to_owned(), github);
        contexts.insert("inputs".to_owned(), self.trigger.inputs.clone());
        contexts.insert("vars".to_owned(), self.trigger.vars.clone());
        contexts
    }
}

/// Compiles a loaded workflow for a run, expanding the matrices that only read the trigger's
/// contexts.
pub(crate) fn compile(
    workflow: &Workflow,
    trigger: TriggerContexts,
    config: &EngineConfig,
) -> Result<RunSpec, EngineError> {
    if workflow.jobs.is_empty() {
        return Err(EngineError::InvalidWorkflow(
            "the workflow has no jobs".to_owned(),
        ));
    }
    let mut diagnostics = Diagnostics::default();
    let graph = JobGraph::build(workflow, &mut diagnostics);
    if !diagnostics.is_empty() {
        return Err(EngineError::InvalidWorkflow(
            diagnostics.finish().to_string(),
        ));
    }
    if graph.topological_order().is_err() {
        return Err(EngineError::InvalidWorkflow(
            "the jobs' `needs` form a cycle".to_owned(),
        ));
    }
    let mut spec = RunSpec {
        workflow_name: workflow.name.as_ref().map(|name| name.value.clone()),
        trigger,
        concurrency: workflow.concurrency.as_ref().map(concurrency),
        jobs: Vec::with_capacity(workflow.jobs.len()),
        dependents: graph.dependents,
        index: IndexMap::with_capacity(workflow.jobs.len()),
    };
    let contexts = spec.base_contexts(1);
    let limits = limits(config);
    for ((index, job), needs) in workflow.jobs.iter().enumerate().zip(graph.needs) {
        spec.index.insert(job.id.value.clone(), index);
        spec.jobs.push(compile_job(job, needs, &contexts, &limits));
    }
    Ok(spec)
}

fn compile_job(job: &Job, needs: Vec<usize>, contexts: &Contexts, limits: &Limits) -> JobSpec {
    let strategy = job.strategy.as_ref();
    let condition = job.condition.as_ref().map(|text| text.value.clone());
    JobSpec {
        id: job.id.value.clone(),
        name: job.name.as_ref().map(|name| name.value.clone()),
        needs,
        condition_uses_status: eval::uses_status_function(condition.as_deref()),
        condition,
        runs_on: job
            .runs_on
            .iter()
            .flat_map(|runs_on| runs_on.labels.iter().map(|label| label.value.clone()))
            .collect(),
        runner_group: job
            .runs_on
            .as_ref()
            .and_then(|runs_on| runs_on.group.as_ref())
            .map(|group| group.value.clone()),
        timeout_minutes: job.timeout_minutes.as_ref().map(Setting::from_model),
        continue_on_error: job.continue_on_error.as_ref().map(Setting::from_model),
        fail_fast: strategy
            .and_then(|s| s.fail_fast.as_ref())
            .map(Setting::from_model),
        max_parallel: strategy
            .and_then(|s| s.max_parallel.as_ref())
            .map(Setting::from_model),
        matrix: plan_matrix(job, contexts, limits),
        concurrency: job.concurrency.as_ref().map(concurrency),
        reusable: job.uses.as_ref().map(|uses| uses.value.clone()),
    }
}

fn concurrency(model: &gantry_workflow::model::Concurrency) -> ConcurrencySpec {
    ConcurrencySpec {
        group: model.group.value.clone(),
        cancel_in_progress: model.cancel_in_progress.as_ref().map(Setting::from_model),
    }
}

fn limits(config: &EngineConfig) -> Limits {
    Limits {
        max_matrix_jobs: config.max_matrix_jobs,
        ..Limits::default()
    }
}

/// Expands the matrix with the trigger's contexts, or keeps it for later.
fn plan_matrix(job: &Job, contexts: &Contexts, limits: &Limits) -> MatrixSource {
    let Some(matrix) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
        return MatrixSource::None;
    };
    match expand_matrix_with(job, limits, contexts, &NoHost) {
        Ok(MatrixPlan::None) => MatrixSource::None,
        Ok(MatrixPlan::Combinations(configurations)) => MatrixSource::Planned(
            configurations
                .into_iter()
                .map(PlannedCombination::from_configuration)
                .collect(),
        ),
        // A matrix that fails now fails the same way when the job is about to start, which is
        // when GitHub reports it: as the job's failure.
        Ok(MatrixPlan::Deferred) | Err(_) => MatrixSource::Deferred(match matrix {
            MatrixDef::Expr(text) => DeferredMatrix::Expr(text.value.clone()),
            MatrixDef::Map(node) => DeferredMatrix::Map(node.to_json()),
        }),
    }
}

/// Expands a deferred matrix now that `contexts` has `needs`, with the planner's own rules.
pub(crate) fn expand_deferred(
    id: &str,
    matrix: &DeferredMatrix,
    contexts: &Contexts,
    config: &EngineConfig,
) -> Result<Vec<PlannedCombination>, String> {
    let definition = match matrix {
        DeferredMatrix::Expr(text) => MatrixDef::Expr(Spanned::new(text.clone(), Pos::default())),
        DeferredMatrix::Map(json) => MatrixDef::Map(node_from_json(json)),
    };
    let job = matrix_job(id, definition);
    match expand_matrix_with(&job, &limits(config), contexts, &NoHost) {
        Ok(MatrixPlan::Combinations(configurations)) => Ok(configurations
            .into_iter()
            .map(PlannedCombination::from_configuration)
            .collect()),
        Ok(MatrixPlan::None | MatrixPlan::Deferred) => {
            Err("the matrix reads a context that does not exist".to_owned())
        }
        Err(diagnostic) => Err(diagnostic.message),
    }
}

/// A job with nothing but a matrix, so the planner can expand it.
fn matrix_job(id: &str, matrix: MatrixDef) -> Job {
    Job {
        id: Spanned::new(id.to_owned(), Pos::default()),
        name: None,
        needs: Vec::new(),
        condition: None,
        runs_on: None,
        environment: None,
        outputs: Vec::new(),
        env: Vec::new(),
        defaults: None,
        permissions: None,
        concurrency: None,
        timeout_minutes: None,
        continue_on_error: None,
        strategy: Some(Strategy {
            matrix: Some(matrix),
            fail_fast: None,
            max_parallel: None,
        }),
        container: None,
        services: Vec::new(),
        steps: Vec::new(),
        uses: None,
        with: Vec::new(),
        secrets: None,
        snapshot: None,
    }
}

/// A YAML node tree from JSON (positions are unknown).
fn node_from_json(json: &serde_json::Value) -> Node<'static> {
    let value = match json {
        serde_json::Value::Null => NodeValue::Null,
        serde_json::Value::Bool(b) => NodeValue::Bool(*b),
        serde_json::Value::Number(n) => NodeValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => NodeValue::String(s.clone().into()),
        serde_json::Value::Array(items) => {
            NodeValue::Seq(items.iter().map(node_from_json).collect())
        }
        serde_json::Value::Object(map) => NodeValue::Map(
            map.iter()
                .map(|(key, value)| {
                    let key = Node {
                        pos: Pos::default(),
                        value: NodeValue::String(key.clone().into()),
                    };
                    (key, node_from_json(value))
                })
                .collect(),
        ),
    };
    Node {
        pos: Pos::default(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_survives_the_trip_through_nodes() {
        let json = serde_json::json!({"os": ["a", "${{ needs.x.outputs.y }}"], "n": [1, 2.5], "f": true, "z": null});
        assert_eq!(node_from_json(&json).to_json(), json);
    }
}
