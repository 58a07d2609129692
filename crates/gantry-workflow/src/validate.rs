//! Semantic checks of a loaded workflow: ids, the `needs` graph, expressions and the contexts
//! they may use, matrices, dispatch inputs and the job-count limits.

use std::collections::HashMap;

use gantry_expr::{ParseOptions, TemplateError, parse_condition, parse_template};

use crate::contexts::Site;
use crate::diag::Diagnostics;
use crate::graph;
use crate::limits::Limits;
use crate::model::{
    InputType, Job, JobSecrets, OrExpr, Spanned, Step, StepAction, Text, TriggerConfig, Workflow,
};
use crate::plan::{self, MatrixPlan};
use crate::yaml::{NodeValue, Pos};

/// Checks everything [`crate::load::parse`] cannot see from shape alone.
pub fn validate(workflow: &Workflow, limits: &Limits) -> Result<(), Diagnostics> {
    let mut validator = Validator::default();
    validator.check_workflow(workflow, limits);
    if validator.diagnostics.is_empty() {
        Ok(())
    } else {
        Err(validator.diagnostics.finish())
    }
}

#[derive(Default)]
struct Validator {
    diagnostics: Diagnostics,
    /// Parse options per site, built once per file.
    options: HashMap<SiteKey, ParseOptions>,
}

/// `Site` as a map key (the enum is `Copy` and `Eq`, hashing its discriminant).
type SiteKey = std::mem::Discriminant<Site>;

impl Validator {
    fn check_workflow(&mut self, workflow: &Workflow, limits: &Limits) {
        if let Some(run_name) = &workflow.run_name {
            self.template(run_name, Site::RunName);
        }
        self.env(&workflow.env, Site::WorkflowEnv);
        if let Some(concurrency) = &workflow.concurrency {
            self.template(&concurrency.group, Site::WorkflowConcurrency);
            self.or_expr(&concurrency.cancel_in_progress, Site::WorkflowConcurrency);
        }
        if let Some(defaults) = &workflow.defaults {
            for text in [&defaults.shell, &defaults.working_directory]
                .into_iter()
                .flatten()
            {
                self.template(text, Site::RunName);
            }
        }
        self.check_triggers(workflow);
        self.check_job_ids(workflow);
        graph::check(workflow, &mut self.diagnostics);
        let mut total_jobs = 0usize;
        for job in &workflow.jobs {
            self.check_job(job);
            total_jobs += self.check_matrix(job, limits);
        }
        if total_jobs > limits.max_workflow_jobs {
            self.diagnostics.push(
                workflow.jobs_pos,
                format!(
                    "the workflow has {total_jobs} jobs after matrix expansion, more than the limit of {}",
                    limits.max_workflow_jobs
                ),
            );
        }
    }

    fn check_triggers(&mut self, workflow: &Workflow) {
        for trigger in &workflow.on {
            match &trigger.config {
                TriggerConfig::WorkflowDispatch { inputs } => {
                    for input in inputs {
                        self.check_input_default(input);
                    }
                }
                TriggerConfig::WorkflowCall {
                    inputs, outputs, ..
                } => {
                    for input in inputs {
                        let is_expression = input
                            .default
                            .as_ref()
                            .and_then(|default| default.as_str())
                            .is_some_and(|text| text.contains("${{"));
                        if !is_expression {
                            self.check_input_default(input);
                        }
                        if let Some(default) = &input.default
                            && let NodeValue::String(text) = &default.value
                        {
                            self.template(
                                &Spanned::new(text.to_string(), default.pos),
                                Site::CallInputDefault,
                            );
                        }
                    }
                    for output in outputs {
                        self.template(&output.value, Site::CallOutput);
                    }
                }
                _ => {}
            }
        }
    }

    /// A dispatch input's default must fit its type, as GitHub's form would enforce.
    fn check_input_default(&mut self, input: &crate::model::Input) {
        let Some(default) = &input.default else {
            return;
        };
        let name = &input.id.value;
        let fits = match (input.kind, &default.value) {
            (_, NodeValue::Null) => true,
            (InputType::Boolean, NodeValue::Bool(_)) => true,
            (InputType::Boolean, NodeValue::String(text)) => text == "true" || text == "false",
            (InputType::Number, NodeValue::Number(_)) => true,
            (InputType::Number, NodeValue::String(text)) => text.trim().parse::<f64>().is_ok(),
            (InputType::Choice, _) => default
                .scalar_text()
                .is_some_and(|text| input.options.iter().any(|option| option.value == text)),
            (InputType::String | InputType::Environment, value) => {
                !matches!(value, NodeValue::Seq(_) | NodeValue::Map(_))
            }
            _ => false,
        };
        if !fits {
            let expected = match input.kind {
                InputType::Choice => "one of its `options`".to_string(),
                kind => format!("a {}", kind.as_str()),
            };
            self.diagnostics.push(
                default.pos,
                format!("default of input \"{name}\" must be {expected}"),
            );
        }
    }

    fn check_job_ids(&mut self, workflow: &Workflow) {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for job in &workflow.jobs {
            self.identifier(&job.id);
            let folded = job.id.value.to_lowercase();
            if let Some(first) = seen.get(&folded) {
                self.diagnostics.push(
                    job.id.pos,
                    format!(
                        "job id \"{}\" is already used by job \"{first}\" (job ids are case-insensitive)",
                        job.id.value
                    ),
                );
            } else {
                seen.insert(folded, &job.id.value);
            }
        }
    }

    /// GitHub's id rule for jobs and steps.
    fn identifier(&mut self, id: &Spanned<String>) {
        let value = &id.value;
        let mut chars = value.chars();
        let starts_well = chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !starts_well || !rest_ok || value.len() >= 100 {
            self.diagnostics.push(
                id.pos,
                format!(
                    "the identifier \"{value}\" is invalid: ids may only contain alphanumeric characters, '_' and '-', must start with a letter or '_', and must be shorter than 100 characters"
                ),
            );
        } else if value.starts_with("__") {
            self.diagnostics.push(
                id.pos,
                format!(
                    "the identifier \"{value}\" is invalid: ids starting with '__' are reserved"
                ),
            );
        }
    }

    fn check_job(&mut self, job: &Job) {
        if let Some(condition) = &job.condition {
            self.condition(condition, Site::JobIf);
        }
        if let Some(name) = &job.name {
            self.template(name, Site::JobStrategyContext);
        }
        if let Some(runs_on) = &job.runs_on {
            for label in runs_on.labels.iter().chain(&runs_on.group) {
                self.template(label, Site::JobStrategyContext);
            }
        }
        if let Some(environment) = &job.environment {
            self.template(&environment.name, Site::JobStrategyContext);
            if let Some(url) = &environment.url {
                self.template(url, Site::JobOutputs);
            }
        }
        for (_, value) in &job.outputs {
            self.template(value, Site::JobOutputs);
        }
        self.env(&job.env, Site::JobEnv);
        if let Some(snapshot) = &job.snapshot
            && let Some(condition) = &snapshot.condition
        {
            self.condition(condition, Site::SnapshotIf);
        }
        if let Some(defaults) = &job.defaults {
            for text in [&defaults.shell, &defaults.working_directory]
                .into_iter()
                .flatten()
            {
                self.template(text, Site::JobDefaultsRun);
            }
        }
        if let Some(concurrency) = &job.concurrency {
            self.template(&concurrency.group, Site::JobStrategyContext);
            self.or_expr(&concurrency.cancel_in_progress, Site::JobStrategyContext);
        }
        self.or_expr(&job.timeout_minutes, Site::JobStrategyContext);
        self.or_expr(&job.continue_on_error, Site::JobStrategyContext);
        if let Some(strategy) = &job.strategy {
            self.or_expr(&strategy.fail_fast, Site::Strategy);
            self.or_expr(&strategy.max_parallel, Site::Strategy);
        }
        for container in job
            .container
            .iter()
            .chain(job.services.iter().map(|(_, c)| c))
        {
            self.template(&container.image, Site::JobStrategyContext);
        }
        for (_, value) in &job.with {
            if let NodeValue::String(text) = &value.value {
                self.template(
                    &Spanned::new(text.to_string(), value.pos),
                    Site::JobStrategyContext,
                );
            }
        }
        if let Some(JobSecrets::Map(secrets)) = &job.secrets {
            for (_, value) in secrets {
                self.template(value, Site::JobEnv);
            }
        }
        self.check_steps(&job.steps);
    }

    fn check_steps(&mut self, steps: &[Step]) {
        let mut seen: HashMap<String, ()> = HashMap::new();
        for step in steps {
            if let Some(id) = &step.id {
                self.identifier(id);
                if seen.insert(id.value.to_lowercase(), ()).is_some() {
                    self.diagnostics.push(
                        id.pos,
                        format!(
                            "the step id \"{}\" is used more than once in this job",
                            id.value
                        ),
                    );
                }
            }
            if let Some(condition) = &step.condition {
                self.condition(condition, Site::StepIf);
            }
            if let Some(name) = &step.name {
                self.template(name, Site::Step);
            }
            self.env(&step.env, Site::Step);
            self.or_expr(&step.continue_on_error, Site::Step);
            self.or_expr(&step.timeout_minutes, Site::Step);
            match &step.action {
                StepAction::Run {
                    script,
                    shell,
                    working_directory,
                } => {
                    self.template(script, Site::Step);
                    for text in [shell, working_directory].into_iter().flatten() {
                        self.template(text, Site::Step);
                    }
                }
                StepAction::Uses { action, with } => {
                    self.literal(action, "`uses`");
                    for (_, value) in with {
                        self.template(value, Site::Step);
                    }
                }
            }
        }
    }

    /// Expands a static matrix to report its errors; returns how many jobs the job becomes.
    fn check_matrix(&mut self, job: &Job, limits: &Limits) -> usize {
        let Some(matrix) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
            return 1;
        };
        if let crate::model::MatrixDef::Expr(text) = matrix {
            self.template(text, Site::Strategy);
            return 1;
        }
        for text in plan::matrix_expressions(matrix) {
            self.template(&text, Site::Strategy);
        }
        match plan::expand_matrix(job, limits) {
            Ok(MatrixPlan::Combinations(combinations)) => combinations.len(),
            Ok(MatrixPlan::None | MatrixPlan::Deferred) => 1,
            Err(diagnostic) => {
                self.diagnostics.0.push(diagnostic);
                1
            }
        }
    }

    fn options(&mut self, site: Site) -> &ParseOptions {
        self.options
            .entry(std::mem::discriminant(&site))
            .or_insert_with(|| site.parse_options())
    }

    fn template(&mut self, text: &Text, site: Site) {
        if !text.value.contains("${{") {
            return;
        }
        // GitHub turns a template into one `format()` expression, so the length limit applies to
        // the whole text.
        if text.value.len() > gantry_expr::MAX_LENGTH {
            self.diagnostics.push(
                text.pos,
                format!(
                    "exceeded max expression length {}: this value with `${{{{ }}}}` is {} characters long",
                    gantry_expr::MAX_LENGTH,
                    text.value.len()
                ),
            );
            return;
        }
        let result = parse_template(&text.value, self.options(site)).map(|_| ());
        self.report(text, result);
    }

    /// Env values, and keys too: GitHub evaluates expressions in variable names.
    fn env(&mut self, env: &crate::model::EnvMap, site: Site) {
        for (name, value) in env {
            // `${{ insert }}` is GitHub's directive to merge a mapping in; it is no variable name.
            let is_insert = name
                .value
                .strip_prefix("${{")
                .and_then(|rest| rest.strip_suffix("}}"))
                .is_some_and(|inner| inner.trim().eq_ignore_ascii_case("insert"));
            if !is_insert {
                self.template(name, site);
            }
            self.template(value, site);
        }
    }

    fn condition(&mut self, text: &Text, site: Site) {
        let result = parse_condition(&text.value, self.options(site)).map(|_| ());
        self.report(text, result);
    }

    fn or_expr<T>(&mut self, value: &Option<OrExpr<T>>, site: Site) {
        if let Some(OrExpr::Expr(text)) = value {
            self.template(text, site);
        }
    }

    fn literal(&mut self, text: &Text, what: &str) {
        if text.value.contains("${{") {
            self.diagnostics
                .push(text.pos, format!("{what} cannot contain expressions"));
        }
    }

    fn report(&mut self, text: &Text, result: Result<(), TemplateError>) {
        if let Err(error) = result {
            self.diagnostics.push(
                position_in(text, error.offset),
                format!("invalid expression: {}", error.error),
            );
        }
    }
}

/// Maps a byte offset inside a scalar to a file position. A multi-line scalar is taken to be a
/// block scalar (`run: |`): its position is its first content line, and every content line is
/// indented to the same column, so both line and column come out right. For quoted scalars the
/// column is off by the opening quote.
pub fn position_in(text: &Text, offset: usize) -> Pos {
    let before = text.value.get(..offset).unwrap_or(&text.value);
    let newlines = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = text.pos.col as usize + before[line_start..].chars().count();
    Pos {
        line: text.pos.line + u32::try_from(newlines).unwrap_or(u32::MAX),
        col: u32::try_from(column).unwrap_or(u32::MAX),
    }
}
