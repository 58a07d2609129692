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
use indexmap::{IndexMap, IndexSet};
use serde::{Deserialize, Serialize};

use gantry_workflow::reusable::WorkflowSource;

use crate::call::CallSpec;
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::trigger_json::TriggerJson;
use crate::{eval, setup};

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
    /// The call, when the called workflow was given with the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Box<CallSpec>>,
    /// For a job of a called workflow: the calling job and its instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
}

/// Where a called workflow's job comes from: the calling job and which of its instances
/// (matrix combinations) called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The calling job, an index into [`RunSpec::jobs`].
    pub job: usize,
    /// The calling instance.
    pub instance: usize,
}

impl JobSpec {
    /// The job's name before matrix values are added: `name:` as written, or the id.
    pub fn base_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The id the job has in its own workflow file: `build` for the run's `call/build`, which
    /// is how `needs` and `jobs` of the called workflow name it.
    pub fn local_id(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
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
    /// Job index by id, looked up for every event and payload: hashed with foldhash, which
    /// keeps a per-process seed against crafted ids at a fraction of SipHash's cost.
    index: IndexMap<String, usize, foldhash::fast::RandomState>,
    /// The trigger's contexts as payloads carry them, made once.
    #[serde(skip)]
    trigger_json: TriggerJson,
}

impl RunSpec {
    /// The index of job `id` in [`RunSpec::jobs`].
    pub fn job_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// What a job waits on when an attempt begins: its needs for which `include` holds, and,
    /// for a job of a called workflow, its caller (which lets it go once the call starts).
    pub(crate) fn initial_waiting_on(
        &self,
        job: &JobSpec,
        include: impl Fn(usize) -> bool,
    ) -> IndexSet<String> {
        let mut waiting_on: IndexSet<String> = job
            .needs
            .iter()
            .filter(|&&need| include(need))
            .map(|&need| self.jobs[need].id.clone())
            .collect();
        if let Some(parent) = job.parent {
            waiting_on.insert(self.jobs[parent.job].id.clone());
        }
        waiting_on
    }

    /// The payload's `github`, `inputs` and `vars` for a job of the run's own file in run
    /// attempt `run_attempt`: [`RunSpec::base_contexts`] as JSON, from the trigger's contexts
    /// converted once for every payload of the run.
    pub(crate) fn payload_contexts(
        &self,
        run_attempt: u32,
    ) -> (
        std::sync::Arc<serde_json::Value>,
        serde_json::Value,
        serde_json::Value,
    ) {
        let trigger = self.trigger_json.get(&self.trigger);
        (
            trigger.github(RUN_ATTEMPT, run_attempt),
            trigger.inputs.clone(),
            trigger.vars.clone(),
        )
    }

    /// The contexts every expression of the run sees: `github` (with `run_attempt`), `inputs`
    /// and `vars`.
    pub(crate) fn base_contexts(&self, run_attempt: u32) -> Contexts {
        let mut github = self.trigger.github.clone();
        if let Value::Object(fields) = &mut github {
            fields.insert(
                RUN_ATTEMPT.to_owned(),
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

/// The member of `github` the engine keeps up to date: the run attempt, as text.
const RUN_ATTEMPT: &str = "run_attempt";

/// GitHub's limit on workflows calling each other: the top-level one and nine levels of calls.
pub const MAX_CALL_DEPTH: usize = 10;

/// Most jobs a run may have once reusable workflows are expanded.
const MAX_RUN_JOBS: usize = 10_000;

/// Compiles a loaded workflow for a run, expanding the matrices that only read the trigger's
/// contexts, and the jobs of the reusable workflows it calls (found in `called` by their
/// `uses:` text) as jobs of the run.
pub(crate) fn compile(
    workflow: &Workflow,
    called: &dyn WorkflowSource,
    trigger: TriggerContexts,
    config: &EngineConfig,
) -> Result<RunSpec, EngineError> {
    let mut spec = RunSpec {
        workflow_name: workflow.name.as_ref().map(|name| name.value.clone()),
        trigger,
        concurrency: workflow.concurrency.as_ref().map(concurrency),
        jobs: Vec::with_capacity(workflow.jobs.len()),
        dependents: Vec::with_capacity(workflow.jobs.len()),
        index: IndexMap::with_capacity_and_hasher(workflow.jobs.len(), Default::default()),
        trigger_json: TriggerJson::default(),
    };
    let mut compiler = Compiler {
        contexts: spec.base_contexts(1),
        limits: limits(config),
        called,
    };
    compiler.add_workflow(&mut spec, workflow, None, 0)?;
    Ok(spec)
}

/// Where a called workflow's jobs go: under which id and name, called by which instance.
struct CallSite {
    id_prefix: String,
    name_prefix: String,
    parent: ParentRef,
    uses: String,
}

struct Compiler<'c> {
    contexts: Contexts,
    limits: Limits,
    called: &'c dyn WorkflowSource,
}

impl Compiler<'_> {
    /// Adds `workflow`'s jobs to the run (under `site` when it is a called workflow), then the
    /// jobs of the workflows they call. Returns the indices of the jobs added at this level.
    fn add_workflow(
        &mut self,
        spec: &mut RunSpec,
        workflow: &Workflow,
        site: Option<&CallSite>,
        depth: usize,
    ) -> Result<Vec<usize>, EngineError> {
        let invalid = |message: String| match site {
            Some(site) => EngineError::InvalidWorkflow(format!("in `{}`: {message}", site.uses)),
            None => EngineError::InvalidWorkflow(message),
        };
        if workflow.jobs.is_empty() {
            return Err(invalid("the workflow has no jobs".to_owned()));
        }
        let mut diagnostics = Diagnostics::default();
        let graph = JobGraph::build(workflow, &mut diagnostics);
        if !diagnostics.is_empty() {
            return Err(invalid(diagnostics.finish().to_string()));
        }
        if graph.topological_order().is_err() {
            return Err(invalid("the jobs' `needs` form a cycle".to_owned()));
        }
        if spec.jobs.len() + workflow.jobs.len() > MAX_RUN_JOBS {
            return Err(invalid(format!(
                "the run would have more than {MAX_RUN_JOBS} jobs"
            )));
        }
        let base = spec.jobs.len();
        let added: Vec<usize> = (base..base + workflow.jobs.len()).collect();
        for ((job, needs), dependents) in
            workflow.jobs.iter().zip(graph.needs).zip(graph.dependents)
        {
            let needs = needs.into_iter().map(|need| base + need).collect();
            let mut compiled =
                compile_job(job, needs, &self.contexts, &self.limits, site.is_some());
            if let Some(site) = site {
                compiled.id = format!("{}/{}", site.id_prefix, compiled.id);
                compiled.name = Some(format!("{} / {}", site.name_prefix, job.display_name()));
                compiled.parent = Some(site.parent);
            }
            spec.index.insert(compiled.id.clone(), spec.jobs.len());
            spec.jobs.push(compiled);
            spec.dependents.push(
                dependents
                    .into_iter()
                    .map(|dependent| base + dependent)
                    .collect(),
            );
        }
        for (offset, job) in workflow.jobs.iter().enumerate() {
            let Some(uses) = &job.uses else { continue };
            let Some(callee) = self.called.workflow(&uses.value) else {
                // Left without a call: the job fails when it starts, saying so.
                continue;
            };
            if depth + 1 >= MAX_CALL_DEPTH {
                return Err(invalid(format!(
                    "job `{}`: nested reusable workflow depth exceeded {MAX_CALL_DEPTH}",
                    job.id.value
                )));
            }
            let index = base + offset;
            let mut call = CallSpec::new(job, callee);
            let caller = &spec.jobs[index];
            let combinations: Vec<Option<&PlannedCombination>> = match &caller.matrix {
                MatrixSource::None => vec![None],
                MatrixSource::Planned(combinations) => combinations.iter().map(Some).collect(),
                // Expanded only when the needs end; the caller fails then (see `machine`).
                MatrixSource::Deferred(_) => Vec::new(),
            };
            let mut sites = Vec::with_capacity(combinations.len());
            for (instance, combination) in combinations.into_iter().enumerate() {
                let id_prefix = match combination {
                    None => caller.id.clone(),
                    // Job ids never hold a dot, so `call.1/build` cannot collide with a job.
                    Some(_) => format!("{}.{instance}", caller.id),
                };
                sites.push(CallSite {
                    id_prefix,
                    name_prefix: setup::instance_name(caller, combination, &self.contexts),
                    parent: ParentRef {
                        job: index,
                        instance,
                    },
                    uses: uses.value.clone(),
                });
            }
            for site in &sites {
                let children = self.add_workflow(spec, callee, Some(site), depth + 1)?;
                call.children.push(children);
            }
            spec.jobs[index].call = Some(Box::new(call));
        }
        Ok(added)
    }
}

/// One job as the run keeps it. `called` is set for the jobs of a called workflow, whose
/// matrices may read `inputs`, known only once the call starts: those wait like matrices that
/// read `needs`.
fn compile_job(
    job: &Job,
    needs: Vec<usize>,
    contexts: &Contexts,
    limits: &Limits,
    called: bool,
) -> JobSpec {
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
        matrix: plan_matrix(job, contexts, limits, called),
        concurrency: job.concurrency.as_ref().map(concurrency),
        reusable: job.uses.as_ref().map(|uses| uses.value.clone()),
        call: None,
        parent: None,
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
fn plan_matrix(job: &Job, contexts: &Contexts, limits: &Limits, called: bool) -> MatrixSource {
    let Some(matrix) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
        return MatrixSource::None;
    };
    let deferred = |matrix: &MatrixDef| {
        MatrixSource::Deferred(match matrix {
            MatrixDef::Expr(text) => DeferredMatrix::Expr(text.value.clone()),
            MatrixDef::Map(node) => DeferredMatrix::Map(node.to_json()),
        })
    };
    if called && matrix_has_expressions(matrix) {
        return deferred(matrix);
    }
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
        Ok(MatrixPlan::Deferred) | Err(_) => deferred(matrix),
    }
}

/// Whether a matrix holds a `${{ }}` anywhere.
fn matrix_has_expressions(matrix: &MatrixDef) -> bool {
    match matrix {
        MatrixDef::Expr(_) => true,
        MatrixDef::Map(node) => node.to_json().to_string().contains("${{"),
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
