//! The typed workflow model: what a workflow file says, with the position of every value.
//!
//! Strings that may hold `${{ }}` expressions are kept as [`Text`] (source text plus position);
//! validation parses them and the engine evaluates them later, when their contexts exist.
//! Values GitHub passes through untouched (`with:`, matrix values, service options) stay as
//! [`Node`] trees so nothing is lost and positions survive.

use crate::cron::CronSchedule;
use crate::filter::FilterPattern;
use crate::yaml::{Node, Pos};

/// A value with the position it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts in the file.
    pub pos: Pos,
}

impl<T> Spanned<T> {
    /// Pairs a value with its position.
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

/// A string that may contain `${{ }}` expressions, as written in the file.
pub type Text = Spanned<String>;

/// A scalar that is either a literal of type `T` or an expression evaluated later.
#[derive(Debug, Clone, PartialEq)]
pub enum OrExpr<T> {
    /// A value known when the file is read.
    Literal(Spanned<T>),
    /// A `${{ }}` expression, evaluated when its contexts exist.
    Expr(Text),
}

/// Environment variables (`env:` at workflow, job or step level) in file order. Names keep
/// their positions because GitHub evaluates expressions in them too.
pub type EnvMap = Vec<(Spanned<String>, Text)>;

/// A whole workflow file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workflow {
    /// `name:`, shown in the UI; defaults to the file path.
    pub name: Option<Text>,
    /// `run-name:`, an expression naming each run.
    pub run_name: Option<Text>,
    /// `on:`, the events that start the workflow.
    pub on: Vec<Trigger>,
    /// Workflow-level `env:`.
    pub env: EnvMap,
    /// Workflow-level `defaults:`.
    pub defaults: Option<Defaults>,
    /// Workflow-level `permissions:`.
    pub permissions: Option<Permissions>,
    /// Workflow-level `concurrency:`.
    pub concurrency: Option<Concurrency>,
    /// `jobs:` in file order.
    pub jobs: Vec<Job>,
    /// Position of the `jobs:` key (for "at least one job" errors).
    pub jobs_pos: Pos,
}

impl Workflow {
    /// Looks a job up by id (job ids are case-sensitive in files, but GitHub rejects ids that
    /// differ only in case, so an exact match is enough).
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|job| job.id.value == id)
    }
}

/// One event under `on:` with its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The event name (`push`, `pull_request`, `schedule`, …).
    pub event: Spanned<String>,
    /// What the event's configuration says.
    pub config: TriggerConfig,
}

/// Event configuration; events without filters carry only `types`.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerConfig {
    /// `push`: branch, tag and path filters.
    Push(RefFilters),
    /// `pull_request` / `pull_request_target`: activity types plus branch and path filters.
    PullRequest {
        /// Activity types; empty means GitHub's default (opened, synchronize, reopened).
        types: Vec<Spanned<String>>,
        /// Branch filters apply to the base branch; tag filters are not allowed.
        filters: RefFilters,
    },
    /// `merge_group`: activity types and branch filters on the merge queue's base branch.
    MergeGroup {
        /// Activity types (`checks_requested`).
        types: Vec<Spanned<String>>,
        /// Branch filters; tag and path filters are not allowed.
        filters: RefFilters,
    },
    /// `schedule`: cron lines.
    Schedule(Vec<ScheduleEntry>),
    /// `workflow_dispatch` with typed inputs.
    WorkflowDispatch {
        /// Inputs in declaration order.
        inputs: Vec<Input>,
    },
    /// `workflow_call`: this is a reusable workflow.
    WorkflowCall {
        /// Inputs the caller passes with `with:`.
        inputs: Vec<Input>,
        /// Outputs mapped from job outputs.
        outputs: Vec<CallOutput>,
        /// Secrets the caller passes.
        secrets: Vec<CallSecret>,
    },
    /// `workflow_run`: after other workflows run.
    WorkflowRun {
        /// Names of the workflows to follow.
        workflows: Vec<Spanned<String>>,
        /// Activity types (`completed`, `requested`, `in_progress`).
        types: Vec<Spanned<String>>,
        /// Branch filters on the triggering run's branch.
        filters: RefFilters,
    },
    /// Any other event, optionally narrowed by activity `types`.
    Types(Vec<Spanned<String>>),
}

/// One `schedule` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleEntry {
    /// `cron:`, evaluated in UTC unless `timezone` says otherwise.
    pub cron: Spanned<CronSchedule>,
    /// `timezone:`, an IANA time zone name, as written.
    pub timezone: Option<Text>,
}

/// Branch, tag and path filters of `push`, `pull_request` and `workflow_run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RefFilters {
    /// `branches:`.
    pub branches: Option<Vec<Spanned<FilterPattern>>>,
    /// `branches-ignore:`.
    pub branches_ignore: Option<Vec<Spanned<FilterPattern>>>,
    /// `tags:`.
    pub tags: Option<Vec<Spanned<FilterPattern>>>,
    /// `tags-ignore:`.
    pub tags_ignore: Option<Vec<Spanned<FilterPattern>>>,
    /// `paths:`.
    pub paths: Option<Vec<Spanned<FilterPattern>>>,
    /// `paths-ignore:`.
    pub paths_ignore: Option<Vec<Spanned<FilterPattern>>>,
}

/// The type of a `workflow_dispatch` or `workflow_call` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    /// Free text.
    String,
    /// `true` / `false`.
    Boolean,
    /// A number.
    Number,
    /// One of `options` (dispatch only).
    Choice,
    /// The name of a deployment environment (dispatch only).
    Environment,
}

impl InputType {
    /// The keyword used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Boolean => "boolean",
            InputType::Number => "number",
            InputType::Choice => "choice",
            InputType::Environment => "environment",
        }
    }
}

/// A declared input of `workflow_dispatch` or `workflow_call`.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input id.
    pub id: Spanned<String>,
    /// `description:`.
    pub description: Option<String>,
    /// `required:`.
    pub required: bool,
    /// `type:` (dispatch defaults to string).
    pub kind: InputType,
    /// `default:` as written.
    pub default: Option<Node<'static>>,
    /// `options:` of a choice input.
    pub options: Vec<Spanned<String>>,
}

/// An output of a reusable workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The output id.
    pub id: Spanned<String>,
    /// `value:`, an expression over `jobs`.
    pub value: Text,
}

/// A secret a reusable workflow accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSecret {
    /// The secret id.
    pub id: Spanned<String>,
    /// `required:`.
    pub required: bool,
}

/// `defaults: run:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Defaults {
    /// Default `shell:` for `run` steps.
    pub shell: Option<Text>,
    /// Default `working-directory:` for `run` steps.
    pub working_directory: Option<Text>,
}

/// `permissions:` for the `GITHUB_TOKEN`.
#[derive(Debug, Clone, PartialEq)]
pub enum Permissions {
    /// `read-all` or `write-all`.
    All(Spanned<String>),
    /// `{}`: no permissions.
    None,
    /// Per-scope levels (`contents: read`, …).
    Scopes(Vec<(Spanned<String>, Spanned<String>)>),
}

/// Permission scopes GitHub knows for the `GITHUB_TOKEN`.
pub const PERMISSION_SCOPES: &[&str] = &[
    "actions",
    "artifact-metadata",
    "attestations",
    "checks",
    "code-quality",
    "contents",
    "copilot-requests",
    "deployments",
    "discussions",
    "drives",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
    "vulnerability-alerts",
];

/// `concurrency:` at workflow or job level.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// The group name (may be an expression).
    pub group: Text,
    /// `cancel-in-progress:`.
    pub cancel_in_progress: Option<OrExpr<bool>>,
}

/// One job under `jobs:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job id (the key under `jobs:`).
    pub id: Spanned<String>,
    /// `name:`.
    pub name: Option<Text>,
    /// `needs:` in order.
    pub needs: Vec<Spanned<String>>,
    /// `if:` as written (without GitHub's implicit `success() &&`).
    pub condition: Option<Text>,
    /// `runs-on:`; absent only on reusable-workflow jobs.
    pub runs_on: Option<RunsOn>,
    /// `environment:`.
    pub environment: Option<Environment>,
    /// `outputs:`.
    pub outputs: Vec<(Spanned<String>, Text)>,
    /// Job-level `env:`.
    pub env: EnvMap,
    /// Job-level `defaults:`.
    pub defaults: Option<Defaults>,
    /// Job-level `permissions:`.
    pub permissions: Option<Permissions>,
    /// Job-level `concurrency:`.
    pub concurrency: Option<Concurrency>,
    /// `timeout-minutes:` (GitHub's default is 360).
    pub timeout_minutes: Option<OrExpr<f64>>,
    /// `continue-on-error:`.
    pub continue_on_error: Option<OrExpr<bool>>,
    /// `strategy:`.
    pub strategy: Option<Strategy>,
    /// `container:`.
    pub container: Option<Container>,
    /// `services:`.
    pub services: Vec<(Spanned<String>, Container)>,
    /// `steps:`; empty on reusable-workflow jobs.
    pub steps: Vec<Step>,
    /// `uses:` of a job that calls a reusable workflow.
    pub uses: Option<Spanned<String>>,
    /// `with:` of a reusable-workflow job.
    pub with: Vec<(Spanned<String>, Node<'static>)>,
    /// `secrets:` of a reusable-workflow job.
    pub secrets: Option<JobSecrets>,
    /// `snapshot:`: save the runner as a custom image after the job (checked, not acted on yet).
    pub snapshot: Option<Snapshot>,
}

/// `snapshot:` of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `image-name:`.
    pub image_name: Text,
    /// `if:`.
    pub condition: Option<Text>,
    /// `version:`.
    pub version: Option<Text>,
}

impl Job {
    /// The name shown for the job before matrix values are added: `name:` or the id.
    pub fn display_name(&self) -> &str {
        self.name
            .as_ref()
            .map(|name| name.value.as_str())
            .unwrap_or(&self.id.value)
    }
}

/// `runs-on:`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsOn {
    /// Where `runs-on:` is.
    pub pos: Pos,
    /// Required runner labels (each may be an expression).
    pub labels: Vec<Text>,
    /// `group:` of a runner group.
    pub group: Option<Text>,
}

/// `environment:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The environment name.
    pub name: Text,
    /// `url:`.
    pub url: Option<Text>,
}

/// `strategy:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Strategy {
    /// `matrix:`.
    pub matrix: Option<MatrixDef>,
    /// `fail-fast:` (default true).
    pub fail_fast: Option<OrExpr<bool>>,
    /// `max-parallel:`.
    pub max_parallel: Option<OrExpr<f64>>,
}

/// `strategy.matrix:` as written.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixDef {
    /// A mapping of dimensions plus `include` / `exclude`; may still hold expressions.
    Map(Node<'static>),
    /// A whole matrix from an expression, e.g. `${{ fromJSON(needs.setup.outputs.matrix) }}`.
    Expr(Text),
}

/// `container:` or one of `services:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// `image:`.
    pub image: Text,
    /// Everything else (`env`, `ports`, `volumes`, `options`, `credentials`) as written.
    pub settings: Node<'static>,
}

/// `secrets:` of a reusable-workflow job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobSecrets {
    /// `secrets: inherit`.
    Inherit,
    /// Explicit secrets.
    Map(Vec<(Spanned<String>, Text)>),
}

/// One step under `steps:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Where the step starts.
    pub pos: Pos,
    /// `id:`.
    pub id: Option<Spanned<String>>,
    /// `name:`.
    pub name: Option<Text>,
    /// `if:` as written.
    pub condition: Option<Text>,
    /// What the step does.
    pub action: StepAction,
    /// `env:`.
    pub env: EnvMap,
    /// `continue-on-error:`.
    pub continue_on_error: Option<OrExpr<bool>>,
    /// `timeout-minutes:`.
    pub timeout_minutes: Option<OrExpr<f64>>,
}

/// The two kinds of step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// `run:` a script.
    Run {
        /// The script.
        script: Text,
        /// `shell:`.
        shell: Option<Text>,
        /// `working-directory:`.
        working_directory: Option<Text>,
    },
    /// `uses:` an action.
    Uses {
        /// The action reference (`owner/repo@ref`, `./path`, `docker://image`).
        action: Spanned<String>,
        /// `with:` inputs.
        with: Vec<(Spanned<String>, Text)>,
    },
}
