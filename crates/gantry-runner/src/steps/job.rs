//! The step loop: runs a job's steps in order, with GitHub's rules for `if:`, status,
//! `continue-on-error`, timeouts, cancellation, outputs and composite actions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use gantry_expr::{Contexts, JobStatus, Value};
use gantry_proto::v1::{Conclusion, JobPayload, StepPayload};
use gantry_workflow::contexts::Site;
use indexmap::IndexMap;

use super::actions::{self, ActionRef, ActionRuns, MAX_COMPOSITE_DEPTH, SUPPORTED};
use super::commands::parse_command;
use super::contexts::{self as ctx, evaluate, evaluate_string};
use super::env::{self, RunnerEnv};
use super::file_commands::{parse_key_values, parse_path_file};
use super::mask::Masker;
use super::process::{self, Exit, Limits};
use super::shell;
use super::{
    Annotation, AnnotationLevel, CancelHandle, JobReporter, JobResult, LogLine, RunOptions,
    StepInfo, StepResult, normalize,
};
use crate::WorkspaceHost;
use crate::sandbox::{ProcessSpec, Sandbox};

/// The most a step summary may hold, as on GitHub.
const MAX_SUMMARY_BYTES: u64 = 1024 * 1024;

/// What GitHub prints when a deprecated command is disabled.
const UNSECURE_COMMAND_DISABLED: &str = "is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`";

/// Runs `payload`'s steps in `sandbox`, reporting to `reporter`, and returns (and reports) the
/// job's result. It never panics on the job's input: every problem ends as a step or job
/// error in the result.
pub fn run_job(
    payload: &JobPayload,
    sandbox: &dyn Sandbox,
    options: &RunOptions,
    reporter: &mut dyn JobReporter,
    cancel: &CancelHandle,
) -> JobResult {
    let span = tracing::info_span!("job", run = payload.run_id, job = %payload.job_key, index = payload.matrix_index);
    let _entered = span.enter();
    let result = match JobRun::new(payload, sandbox, options, reporter, cancel) {
        Ok(mut run) => run.run(),
        Err(message) => JobResult {
            conclusion: Conclusion::Failure,
            outputs: IndexMap::new(),
            message: Some(message),
        },
    };
    tracing::info!(conclusion = %result.conclusion, "job ended");
    reporter.job_ended(&result);
    result
}

/// What a step did.
struct Outcome {
    outcome: Conclusion,
    outputs: IndexMap<String, String>,
    error: Option<String>,
}

impl Outcome {
    fn success(outputs: IndexMap<String, String>) -> Outcome {
        Outcome {
            outcome: Conclusion::Success,
            outputs,
            error: None,
        }
    }

    fn failure(error: impl Into<String>) -> Outcome {
        Outcome {
            outcome: Conclusion::Failure,
            outputs: IndexMap::new(),
            error: Some(error.into()),
        }
    }
}

/// The level of steps being run: the job's, or a composite action's.
struct Scope {
    /// `steps`.
    steps: IndexMap<String, Value>,
    /// `inputs`.
    inputs: Value,
    /// `github.action_path` inside a composite action.
    action_path: Option<String>,
    /// Environment added for this level's steps (a composite step's `env` and inputs).
    env: IndexMap<String, String>,
    /// Whether a step of this level has failed (a composite action's own status).
    failed: bool,
    /// The composite actions we are inside, outermost first, for recursion errors.
    chain: Vec<String>,
    /// The enclosing composite step's `timeout-minutes`, as a deadline for inner steps.
    deadline: Option<Instant>,
}

/// What a step's output lines asked for.
#[derive(Default)]
struct LineEffects {
    outputs: IndexMap<String, String>,
    env: Vec<(String, String)>,
    path: Vec<String>,
    error: Option<String>,
    allow_unsecure: bool,
    stop_token: Option<String>,
}

struct JobRun<'a> {
    payload: &'a JobPayload,
    sandbox: &'a dyn Sandbox,
    options: &'a RunOptions,
    reporter: &'a mut dyn JobReporter,
    cancel: &'a CancelHandle,
    masker: Masker,
    /// `github`, `matrix`, `needs`, `vars`, `strategy`, `secrets`, `runner`.
    base: Contexts,
    default_env: BTreeMap<String, String>,
    workflow_env: IndexMap<String, String>,
    job_env: IndexMap<String, String>,
    /// What steps wrote to `GITHUB_ENV` (and `set-env`).
    github_env: IndexMap<String, String>,
    /// What steps wrote to `GITHUB_PATH`, in order.
    path_prepends: Vec<String>,
    failed: bool,
    timed_out: bool,
    deadline: Instant,
    /// Numbers each step's files, nested steps included.
    file_counter: usize,
    /// The top-level step whose log lines are being written.
    current_step: usize,
    /// `github.action` / `GITHUB_ACTION` of the step being run: its id, or `__run`.
    current_action: String,
    line_number: u64,
    logged_bytes: usize,
    truncated: bool,
}

impl<'a> JobRun<'a> {
    fn new(
        payload: &'a JobPayload,
        sandbox: &'a dyn Sandbox,
        options: &'a RunOptions,
        reporter: &'a mut dyn JobReporter,
        cancel: &'a CancelHandle,
    ) -> Result<JobRun<'a>, String> {
        let paths = sandbox.paths();
        let mut masker = Masker::new();
        for value in payload.contexts.secrets.values() {
            masker.add(value);
        }
        let inside = |path: &Path| path.to_string_lossy().into_owned();
        let home = paths.runner_files.host_path("home");
        std::fs::create_dir_all(&home)
            .map_err(|error| format!("failed to create `{}`: {error}", home.display()))?;
        let event_host = paths.runner_files.host_path("event.json");
        let event = payload
            .contexts
            .github
            .get("event")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        std::fs::write(&event_host, event.to_string())
            .map_err(|error| format!("failed to write `{}`: {error}", event_host.display()))?;

        let mut github = Value::from_json(&payload.contexts.github);
        if !matches!(github, Value::Object(_)) {
            github = Value::Object(IndexMap::new());
        }
        let set_default = |github: &mut Value, name: &str, value: Value| {
            if github.get(name).is_none() {
                ctx::set_field(github, name, value);
            }
        };
        set_default(
            &mut github,
            "run_id",
            Value::from(payload.run_id.to_string()),
        );
        set_default(
            &mut github,
            "run_attempt",
            Value::from(payload.run_attempt.to_string()),
        );
        ctx::set_field(&mut github, "job", Value::from(payload.job_key.as_str()));
        ctx::set_field(
            &mut github,
            "workspace",
            Value::from(inside(&paths.workspace.inside)),
        );
        ctx::set_field(
            &mut github,
            "event_path",
            Value::from(inside(&paths.runner_files.inside_path("event.json"))),
        );
        set_default(&mut github, "event", Value::Object(IndexMap::new()));
        set_default(&mut github, "action", Value::from("__run"));

        let mut runner = IndexMap::new();
        runner.insert("name".to_owned(), Value::from(options.runner_name.as_str()));
        runner.insert("os".to_owned(), Value::from(options.runner_os.as_str()));
        runner.insert("arch".to_owned(), Value::from(options.runner_arch.as_str()));
        runner.insert("temp".to_owned(), Value::from(inside(&paths.temp.inside)));
        runner.insert(
            "tool_cache".to_owned(),
            Value::from(inside(&paths.tool_cache.inside)),
        );
        runner.insert("environment".to_owned(), Value::from("self-hosted"));
        if options.debug {
            runner.insert("debug".to_owned(), Value::from("1"));
        }

        let home_inside = inside(&paths.runner_files.inside_path("home"));
        let runner_env = RunnerEnv {
            name: &options.runner_name,
            os: &options.runner_os,
            arch: &options.runner_arch,
            path: &options.path,
            home: &home_inside,
            debug: options.debug,
        };
        let default_env = env::default_env(&github, paths, &runner_env);

        let mut base = Contexts::new();
        base.insert("github".to_owned(), github);
        base.insert(
            "matrix".to_owned(),
            Value::from_json(&payload.contexts.matrix),
        );
        base.insert(
            "needs".to_owned(),
            Value::from_json(&payload.contexts.needs),
        );
        base.insert("vars".to_owned(), Value::from_json(&payload.contexts.vars));
        base.insert(
            "strategy".to_owned(),
            Value::from_json(&payload.contexts.strategy),
        );
        base.insert(
            "secrets".to_owned(),
            ctx::string_object(&payload.contexts.secrets),
        );
        base.insert("runner".to_owned(), Value::Object(runner));

        let minutes = if payload.timeout_minutes.is_finite() && payload.timeout_minutes > 0.0 {
            payload.timeout_minutes
        } else {
            360.0
        };
        let deadline = Instant::now() + Duration::from_secs_f64((minutes * 60.0).min(1.0e9));
        Ok(JobRun {
            payload,
            sandbox,
            options,
            reporter,
            cancel,
            masker,
            base,
            default_env,
            workflow_env: IndexMap::new(),
            job_env: IndexMap::new(),
            github_env: IndexMap::new(),
            path_prepends: Vec::new(),
            failed: false,
            timed_out: false,
            deadline,
            file_counter: 0,
            current_step: 0,
            current_action: "__run".to_owned(),
            line_number: 0,
            logged_bytes: 0,
            truncated: false,
        })
    }

    fn run(&mut self) -> JobResult {
        let inputs = Value::from_json(&self.payload.contexts.inputs);
        let mut scope = Scope {
            steps: IndexMap::new(),
            inputs,
            action_path: None,
            env: IndexMap::new(),
            failed: false,
            chain: Vec::new(),
            deadline: None,
        };
        if let Err(message) = self.evaluate_job_env(&scope) {
            let result = JobResult {
                conclusion: Conclusion::Failure,
                outputs: IndexMap::new(),
                message: Some(message),
            };
            return result;
        }
        let steps = &self.payload.steps;
        self.run_steps(steps, &mut scope, true);

        let outputs = self.job_outputs(&scope);
        let (conclusion, message) = if self.cancel.is_cancelled() {
            (
                Conclusion::Cancelled,
                Some("the job was cancelled".to_owned()),
            )
        } else if self.timed_out {
            (
                Conclusion::Failure,
                Some(format!(
                    "the job has exceeded the maximum execution time of {} minutes",
                    self.payload.timeout_minutes
                )),
            )
        } else if self.failed {
            (Conclusion::Failure, None)
        } else {
            (Conclusion::Success, None)
        };
        JobResult {
            conclusion,
            outputs,
            message,
        }
    }

    /// Workflow `env` then job `env`, evaluated once at the start as GitHub does.
    fn evaluate_job_env(&mut self, scope: &Scope) -> Result<(), String> {
        let host = self.host(scope);
        let contexts = self.contexts(scope, &IndexMap::new());
        for (name, text) in &self.payload.workflow_env {
            let value = evaluate_string(text, Site::WorkflowEnv, &contexts, &host)
                .map_err(|error| format!("workflow env `{name}`: {error}"))?;
            self.workflow_env.insert(name.clone(), value);
        }
        for (name, text) in &self.payload.job_env {
            let value = evaluate_string(text, Site::JobEnv, &contexts, &host)
                .map_err(|error| format!("job env `{name}`: {error}"))?;
            self.job_env.insert(name.clone(), value);
        }
        Ok(())
    }

    fn job_outputs(&mut self, scope: &Scope) -> IndexMap<String, String> {
        let mut outputs = IndexMap::new();
        let env = self.env_context(scope, &IndexMap::new());
        let contexts = self.contexts(scope, &env);
        let host = self.host(scope);
        for (name, text) in &self.payload.outputs {
            match evaluate_string(text, Site::JobOutputs, &contexts, &host) {
                Ok(value) if self.masker.mask(&value) != value => {
                    // GitHub drops outputs holding a secret rather than leak them.
                    tracing::warn!(output = %name, "job output skipped: it may contain a secret");
                }
                Ok(value) => {
                    outputs.insert(name.clone(), value);
                }
                Err(error) => {
                    tracing::warn!(output = %name, %error, "job output could not be evaluated");
                }
            }
        }
        outputs
    }

    fn job_status(&self) -> JobStatus {
        if self.cancel.is_cancelled() || self.timed_out {
            JobStatus::Cancelled
        } else if self.failed {
            JobStatus::Failure
        } else {
            JobStatus::Success
        }
    }

    fn host(&self, scope: &Scope) -> WorkspaceHost {
        let host = WorkspaceHost::new(self.sandbox.paths().workspace.host.clone())
            .with_job_status(self.job_status());
        if scope.chain.is_empty() {
            host
        } else {
            let status = if scope.failed {
                JobStatus::Failure
            } else {
                JobStatus::Success
            };
            host.in_composite_action(status)
        }
    }

    /// The `env` context: workflow, job, `GITHUB_ENV`, the scope's and the step's own.
    fn env_context(
        &self,
        scope: &Scope,
        step_env: &IndexMap<String, String>,
    ) -> IndexMap<String, String> {
        let mut env = self.workflow_env.clone();
        for layer in [&self.job_env, &self.github_env, &scope.env, step_env] {
            for (name, value) in layer {
                env.insert(name.clone(), value.clone());
            }
        }
        env
    }

    fn contexts(&self, scope: &Scope, env: &IndexMap<String, String>) -> Contexts {
        let mut contexts = self.base.clone();
        if let Some(github) = contexts.get_mut("github") {
            ctx::set_field(github, "action", Value::from(self.current_action.as_str()));
            if let Some(path) = &scope.action_path {
                ctx::set_field(github, "action_path", Value::from(path.as_str()));
            }
        }
        contexts.insert("env".to_owned(), ctx::string_object(env));
        contexts.insert("inputs".to_owned(), scope.inputs.clone());
        contexts.insert("steps".to_owned(), Value::Object(scope.steps.clone()));
        let mut job = IndexMap::new();
        job.insert("status".to_owned(), Value::from(self.job_status().as_str()));
        job.insert("container".to_owned(), Value::Object(IndexMap::new()));
        job.insert("services".to_owned(), Value::Object(IndexMap::new()));
        contexts.insert("job".to_owned(), Value::Object(job));
        contexts
    }

    fn run_steps(&mut self, steps: &[StepPayload], scope: &mut Scope, top_level: bool) {
        for (index, step) in steps.iter().enumerate() {
            if self.cancel.is_cancelled() {
                tracing::debug!(step = index, "job cancelled; only steps whose if holds run");
            }
            if Instant::now() >= self.deadline && !self.timed_out {
                self.timed_out = true;
            }
            self.current_action = step.id.clone().unwrap_or_else(|| "__run".to_owned());
            let env = self.env_context(scope, &IndexMap::new());
            let contexts = self.contexts(scope, &env);
            let host = self.host(scope);
            let name = self.display_name(step, &contexts, &host);
            if top_level {
                self.current_step = index;
                self.line_number = 0;
                self.logged_bytes = 0;
                self.truncated = false;
                self.reporter.step_started(&StepInfo {
                    index,
                    id: step.id.clone(),
                    name: name.clone(),
                });
            }
            let run = ctx::condition(step.condition.as_deref(), &contexts, &host);
            let cancelled_before = self.cancel.is_cancelled() || self.timed_out;
            let result = match run {
                Ok(false) => Outcome {
                    outcome: Conclusion::Skipped,
                    outputs: IndexMap::new(),
                    error: None,
                },
                Ok(true) => {
                    if !top_level {
                        self.log(format!("Run {name}"));
                    }
                    self.execute(step, scope, !cancelled_before)
                }
                Err(error) => {
                    Outcome::failure(format!("the step's `if` could not be evaluated: {error}"))
                }
            };
            let continue_on_error = match &step.continue_on_error {
                None => false,
                Some(text) => evaluate(text, Site::Step, &contexts, &host)
                    .map(|value| ctx::as_bool(&value))
                    .unwrap_or(false),
            };
            let conclusion = match result.outcome {
                Conclusion::Failure if continue_on_error => Conclusion::Success,
                other => other,
            };
            if let Some(error) = &result.error {
                let message = self.masker.mask(error).into_owned();
                self.log(format!("##[error]{message}"));
                self.annotate(AnnotationLevel::Error, message, IndexMap::new());
            }
            match conclusion {
                Conclusion::Failure => {
                    if top_level {
                        self.failed = true;
                    } else {
                        scope.failed = true;
                    }
                }
                Conclusion::Cancelled if !top_level => scope.failed = true,
                _ => {}
            }
            if let Some(id) = &step.id {
                scope.steps.insert(
                    id.clone(),
                    ctx::step_value(
                        &result.outputs,
                        result.outcome.as_str(),
                        conclusion.as_str(),
                    ),
                );
            }
            if top_level {
                self.reporter.step_ended(&StepResult {
                    index,
                    id: step.id.clone(),
                    name,
                    outcome: result.outcome,
                    conclusion,
                    error: result
                        .error
                        .map(|error| self.masker.mask(&error).into_owned()),
                });
            }
        }
    }

    /// GitHub's display name: `name:` evaluated, else `Run <first line>` or `Run <action>`.
    fn display_name(
        &self,
        step: &StepPayload,
        contexts: &Contexts,
        host: &WorkspaceHost,
    ) -> String {
        let name = match (&step.name, &step.run, &step.uses) {
            (Some(name), _, _) => {
                evaluate_string(name, Site::Step, contexts, host).unwrap_or_else(|_| name.clone())
            }
            (None, Some(run), _) => {
                format!(
                    "Run {}",
                    run.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .trim()
                )
            }
            (None, None, Some(uses)) => format!("Run {uses}"),
            (None, None, None) => "Run".to_owned(),
        };
        self.masker.mask(&name).into_owned()
    }

    fn execute(&mut self, step: &StepPayload, scope: &mut Scope, cancellable: bool) -> Outcome {
        // The step's own env, evaluated with the env context before it.
        let env_before = self.env_context(scope, &IndexMap::new());
        let contexts = self.contexts(scope, &env_before);
        let host = self.host(scope);
        let mut step_env = IndexMap::new();
        for (name, text) in &step.env {
            match evaluate_string(text, Site::Step, &contexts, &host) {
                Ok(value) => {
                    step_env.insert(name.clone(), value);
                }
                Err(error) => return Outcome::failure(format!("step env `{name}`: {error}")),
            }
        }
        let env = self.env_context(scope, &step_env);
        let contexts = self.contexts(scope, &env);
        let timeout = match &step.timeout_minutes {
            None => None,
            Some(text) => match evaluate(text, Site::Step, &contexts, &host)
                .and_then(|value| ctx::as_number(&value))
            {
                Ok(minutes) if minutes > 0.0 && minutes.is_finite() => {
                    Some(Duration::from_secs_f64((minutes * 60.0).min(1.0e9)))
                }
                Ok(_) => None,
                Err(error) => return Outcome::failure(format!("timeout-minutes: {error}")),
            },
        };
        match (&step.run, &step.uses) {
            (Some(run), None) => self.run_script(
                step,
                run,
                scope,
                &step_env,
                &contexts,
                &host,
                timeout,
                cancellable,
            ),
            (None, Some(uses)) => self.run_action(
                step,
                uses,
                scope,
                &step_env,
                &contexts,
                &host,
                timeout,
                cancellable,
            ),
            (Some(_), Some(_)) => Outcome::failure("a step cannot have both `run` and `uses`"),
            (None, None) => Outcome::failure("a step needs `run` or `uses`"),
        }
    }

    #[allow(clippy::too_many_arguments)] // One step's evaluated pieces; a struct would only rename them.
    fn run_script(
        &mut self,
        step: &StepPayload,
        run: &str,
        scope: &mut Scope,
        step_env: &IndexMap<String, String>,
        contexts: &Contexts,
        host: &WorkspaceHost,
        timeout: Option<Duration>,
        cancellable: bool,
    ) -> Outcome {
        let script = match evaluate_string(run, Site::Step, contexts, host) {
            Ok(script) => script,
            Err(error) => return Outcome::failure(format!("run: {error}")),
        };
        let in_composite = !scope.chain.is_empty();
        let defaults = [&self.payload.job_defaults, &self.payload.workflow_defaults];
        let shell_text = match (&step.shell, in_composite) {
            (Some(shell), _) => Some(shell.clone()),
            (None, true) => {
                return Outcome::failure(
                    "required property is missing: shell (a composite action's `run` steps must name their shell)",
                );
            }
            (None, false) => defaults
                .iter()
                .find_map(|defaults| defaults.as_ref().and_then(|d| d.shell.clone())),
        };
        let wd_text = step.working_directory.clone().or_else(|| {
            if in_composite {
                None
            } else {
                defaults.iter().find_map(|defaults| {
                    defaults.as_ref().and_then(|d| d.working_directory.clone())
                })
            }
        });
        let evaluate_default = |text: &str| evaluate_string(text, Site::Step, contexts, host);
        let shell_name = match shell_text.as_deref().map(evaluate_default).transpose() {
            Ok(name) => name,
            Err(error) => return Outcome::failure(format!("shell: {error}")),
        };
        let working_directory = match wd_text.as_deref().map(evaluate_default).transpose() {
            Ok(dir) => dir,
            Err(error) => return Outcome::failure(format!("working-directory: {error}")),
        };
        let (cwd_inside, _) = match self.resolve_working_directory(working_directory.as_deref()) {
            Ok(dirs) => dirs,
            Err(error) => return Outcome::failure(error),
        };
        let files = match self.step_files() {
            Ok(files) => files,
            Err(error) => return Outcome::failure(error),
        };
        let mut process_env = env::step_env(
            &self.default_env,
            &[
                &self.workflow_env,
                &self.job_env,
                &self.github_env,
                &scope.env,
                step_env,
            ],
            &self.path_prepends,
        );
        files.export(&mut process_env);
        process_env.insert("GITHUB_ACTION".to_owned(), self.current_action.clone());
        if let Some(path) = &scope.action_path {
            process_env.insert("GITHUB_ACTION_PATH".to_owned(), path.clone());
        }
        let path_env = process_env.get("PATH").cloned().unwrap_or_default();
        let shell = match shell::resolve(shell_name.as_deref(), &path_env) {
            Ok(shell) => shell,
            Err(error) => return Outcome::failure(error.to_string()),
        };
        let script_host = files.dir_host.join(format!("script{}", shell.extension));
        let script_inside = files.dir_inside.join(format!("script{}", shell.extension));
        if let Err(error) = std::fs::write(&script_host, &script) {
            return Outcome::failure(format!(
                "failed to write `{}`: {error}",
                script_host.display()
            ));
        }
        for line in script.lines() {
            self.log(format!("##[command]{line}"));
        }
        self.log(format!("shell: {}", shell.display()));
        let argv = shell.argv(&script_inside.to_string_lossy());
        let allow_unsecure = process_env
            .get("ACTIONS_ALLOW_UNSECURE_COMMANDS")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        let spec = ProcessSpec {
            argv,
            env: process_env,
            cwd: cwd_inside,
        };
        let mut effects = LineEffects {
            allow_unsecure,
            ..LineEffects::default()
        };
        let step_deadline = match (
            timeout.map(|timeout| Instant::now() + timeout),
            scope.deadline,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let exit = self.run_process(&spec, step_deadline, cancellable, &mut effects);
        self.finish_process(exit, timeout, &files, effects)
    }

    /// Runs a process, feeding its lines through command processing and logging.
    fn run_process(
        &mut self,
        spec: &ProcessSpec,
        step_deadline: Option<Instant>,
        cancellable: bool,
        effects: &mut LineEffects,
    ) -> Result<Exit, String> {
        let sandbox = self.sandbox;
        let no_cancel = CancelHandle::new();
        // After a cancel or a job timeout, `always()` steps still run, bounded only by their
        // own timeout.
        let job_deadline = (!self.timed_out).then_some(self.deadline);
        let deadline = match (step_deadline, job_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let limits = Limits {
            deadline,
            cancel: if cancellable { self.cancel } else { &no_cancel },
            grace: self.options.cancel_grace,
        };
        let mut on_line = |line: String| self.handle_line(line, effects);
        let exit =
            process::run(sandbox, spec, limits, &mut on_line).map_err(|error| error.to_string())?;
        if exit == Exit::TimedOut
            && step_deadline.is_none_or(|step| job_deadline.is_some_and(|job| job < step))
        {
            self.timed_out = true;
        }
        Ok(exit)
    }

    fn finish_process(
        &mut self,
        exit: Result<Exit, String>,
        timeout: Option<Duration>,
        files: &StepFiles,
        effects: LineEffects,
    ) -> Outcome {
        let mut outputs = effects.outputs;
        for (name, value) in effects.env {
            self.github_env.insert(name, value);
        }
        self.path_prepends.extend(effects.path);
        // File commands count even when the step failed, as on GitHub.
        let mut error = effects.error;
        match files.read("GITHUB_ENV", &files.env) {
            Ok(content) => match parse_key_values(&content, "GITHUB_ENV") {
                Ok(pairs) => {
                    for (name, value) in pairs {
                        self.github_env.insert(name, value);
                    }
                }
                Err(parse) => error = error.or(Some(parse.to_string())),
            },
            Err(read) => error = error.or(Some(read)),
        }
        match files.read("GITHUB_OUTPUT", &files.output) {
            Ok(content) => match parse_key_values(&content, "GITHUB_OUTPUT") {
                Ok(pairs) => outputs.extend(pairs),
                Err(parse) => error = error.or(Some(parse.to_string())),
            },
            Err(read) => error = error.or(Some(read)),
        }
        match files.read("GITHUB_PATH", &files.path) {
            Ok(content) => self.path_prepends.extend(parse_path_file(&content)),
            Err(read) => error = error.or(Some(read)),
        }
        match std::fs::metadata(&files.summary) {
            Ok(meta) if meta.len() > MAX_SUMMARY_BYTES => {
                error = error.or(Some(format!(
                    "GITHUB_STEP_SUMMARY: {} bytes is more than the {MAX_SUMMARY_BYTES} bytes allowed",
                    meta.len()
                )));
            }
            Ok(meta) if meta.len() > 0 => {
                if let Ok(markdown) = std::fs::read_to_string(&files.summary) {
                    let masked = self.masker.mask(&markdown).into_owned();
                    self.reporter.step_summary(self.current_step, &masked);
                }
            }
            _ => {}
        }
        let exit_error = match exit {
            Err(error) => Some(error),
            Ok(Exit::Code(0)) => None,
            Ok(Exit::Code(code)) => Some(format!("Process completed with exit code {code}.")),
            Ok(Exit::Signal(signal)) => Some(if self.sandbox.take_out_of_memory() {
                "the step was killed: it ran out of memory".to_owned()
            } else {
                format!("Process was killed by signal {signal}.")
            }),
            Ok(Exit::TimedOut) => Some(match timeout {
                _ if self.timed_out => "the job has exceeded its maximum execution time".to_owned(),
                Some(timeout) => format!(
                    "The action has timed out after {} minutes.",
                    timeout.as_secs_f64() / 60.0
                ),
                // The enclosing composite step's timeout.
                None => "The action has timed out.".to_owned(),
            }),
            Ok(Exit::Cancelled) => {
                return Outcome {
                    outcome: Conclusion::Cancelled,
                    outputs,
                    error: Some("The operation was canceled.".to_owned()),
                };
            }
        };
        match exit_error.or(error) {
            Some(error) => Outcome {
                outcome: Conclusion::Failure,
                outputs,
                error: Some(error),
            },
            None => Outcome::success(outputs),
        }
    }

    fn handle_line(&mut self, line: String, effects: &mut LineEffects) {
        if let Some(token) = &effects.stop_token {
            if line.trim() == format!("::{token}::") {
                effects.stop_token = None;
            } else {
                self.log(line);
            }
            return;
        }
        let Some(command) = parse_command(&line) else {
            self.log(line);
            return;
        };
        match command.name.as_str() {
            "add-mask" => self.masker.add(&command.data),
            "group" => self.log(format!("##[group]{}", command.data)),
            "endgroup" => self.log("##[endgroup]".to_owned()),
            "debug" => {
                if self.options.debug {
                    self.log(format!("##[debug]{}", command.data));
                }
            }
            level @ ("error" | "warning" | "notice") => {
                let level = match level {
                    "error" => AnnotationLevel::Error,
                    "warning" => AnnotationLevel::Warning,
                    _ => AnnotationLevel::Notice,
                };
                let message = self.masker.mask(&command.data).into_owned();
                let prefix = match level {
                    AnnotationLevel::Error => "error",
                    AnnotationLevel::Warning => "warning",
                    AnnotationLevel::Notice => "notice",
                };
                self.log(format!("##[{prefix}]{message}"));
                self.annotate(level, message, command.properties);
            }
            "stop-commands" => {
                if !command.data.is_empty() {
                    effects.stop_token = Some(command.data);
                }
            }
            "set-output" => {
                // Deprecated but still honoured on GitHub, with a warning.
                let warning = "The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files.".to_owned();
                self.annotate(AnnotationLevel::Warning, warning, IndexMap::new());
                if let Some(name) = command.properties.get("name") {
                    effects.outputs.insert(name.clone(), command.data);
                }
            }
            name @ ("set-env" | "add-path") => {
                if effects.allow_unsecure {
                    if name == "add-path" {
                        effects.path.push(command.data);
                    } else if let Some(variable) = command.properties.get("name") {
                        effects.env.push((variable.clone(), command.data));
                    }
                } else {
                    let message = format!(
                        "Unable to process command '{}' successfully. The `{name}` command {UNSECURE_COMMAND_DISABLED}",
                        self.masker.mask(&line)
                    );
                    effects.error.get_or_insert(message);
                }
            }
            "save-state" | "echo" | "add-matcher" | "remove-matcher" => {}
            _ => self.log(line),
        }
    }

    fn annotate(
        &mut self,
        level: AnnotationLevel,
        message: String,
        properties: IndexMap<String, String>,
    ) {
        let number = |key: &str| {
            properties
                .get(key)
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        let text = |key: &str| {
            properties
                .get(key)
                .map(|value| self.masker.mask(value).into_owned())
        };
        let annotation = Annotation {
            step: self.current_step,
            level,
            message,
            title: text("title"),
            file: text("file"),
            line: number("line"),
            end_line: number("endLine"),
            column: number("col"),
            end_column: number("endColumn"),
        };
        self.reporter.annotation(&annotation);
    }

    /// Reports one log line of the current step, masked, within the step's byte budget.
    fn log(&mut self, text: String) {
        if self.truncated {
            return;
        }
        let text = match self.masker.mask(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(masked) => masked,
        };
        self.logged_bytes = self.logged_bytes.saturating_add(text.len() + 1);
        self.line_number += 1;
        let text = if self.logged_bytes > self.options.max_log_bytes_per_step {
            self.truncated = true;
            format!(
                "##[warning]log truncated: the step wrote more than {} bytes; the rest of its output is not kept",
                self.options.max_log_bytes_per_step
            )
        } else {
            text
        };
        self.reporter.log_line(&LogLine {
            step: self.current_step,
            number: self.line_number,
            time: SystemTime::now(),
            text,
        });
    }

    /// The step's working directory as an inside path and a host path: relative to the
    /// workspace, and never outside it.
    fn resolve_working_directory(&self, dir: Option<&str>) -> Result<(PathBuf, PathBuf), String> {
        let workspace = &self.sandbox.paths().workspace;
        let Some(dir) = dir.filter(|dir| !dir.trim().is_empty()) else {
            return Ok((workspace.inside.clone(), workspace.host.clone()));
        };
        let inside = normalize(&workspace.inside.join(dir));
        let Ok(relative) = inside.strip_prefix(normalize(&workspace.inside)) else {
            return Err(format!(
                "working-directory `{dir}` is outside the workspace `{}`",
                workspace.inside.display()
            ));
        };
        let host = workspace.host.join(relative);
        if !host.is_dir() {
            return Err(format!(
                "working-directory `{dir}` does not exist in the workspace"
            ));
        }
        Ok((inside, host))
    }

    /// Fresh, empty file-command files for one step.
    fn step_files(&mut self) -> Result<StepFiles, String> {
        self.file_counter += 1;
        let runner_files = &self.sandbox.paths().runner_files;
        let name = format!("step-{}", self.file_counter);
        let dir_host = runner_files.host_path(&name);
        let dir_inside = runner_files.inside_path(&name);
        std::fs::create_dir_all(&dir_host)
            .map_err(|error| format!("failed to create `{}`: {error}", dir_host.display()))?;
        let files = StepFiles {
            env: dir_host.join("env"),
            output: dir_host.join("output"),
            path: dir_host.join("path"),
            state: dir_host.join("state"),
            summary: dir_host.join("summary"),
            dir_host,
            dir_inside,
        };
        for file in [
            &files.env,
            &files.output,
            &files.path,
            &files.state,
            &files.summary,
        ] {
            std::fs::write(file, b"")
                .map_err(|error| format!("failed to create `{}`: {error}", file.display()))?;
        }
        Ok(files)
    }

    #[allow(clippy::too_many_arguments)] // One step's evaluated pieces; a struct would only rename them.
    fn run_action(
        &mut self,
        step: &StepPayload,
        uses: &str,
        scope: &mut Scope,
        step_env: &IndexMap<String, String>,
        contexts: &Contexts,
        host: &WorkspaceHost,
        timeout: Option<Duration>,
        cancellable: bool,
    ) -> Outcome {
        let mut with = IndexMap::new();
        for (name, text) in &step.with {
            match evaluate_string(text, Site::Step, contexts, host) {
                Ok(value) => {
                    with.insert(name.clone(), value);
                }
                Err(error) => return Outcome::failure(format!("with `{name}`: {error}")),
            }
        }
        match ActionRef::parse(uses) {
            ActionRef::Local(path) => self.run_composite(
                &path,
                &with,
                scope,
                step_env,
                contexts,
                host,
                timeout,
                cancellable,
            ),
            ActionRef::Checkout => self.checkout(&with),
            ActionRef::Docker(image) => Outcome::failure(format!(
                "action `docker://{image}` is not supported: Docker actions need a container runtime; {SUPPORTED}"
            )),
            ActionRef::Remote(name) => {
                Outcome::failure(format!("action `{name}` is not supported: {SUPPORTED}"))
            }
        }
    }

    fn checkout(&mut self, with: &IndexMap<String, String>) -> Outcome {
        let Some(source) = self.options.source.clone() else {
            return Outcome::failure(
                "actions/checkout: this runner has no source provider for the run's code",
            );
        };
        let github = self.base.get("github").cloned().unwrap_or_default();
        let field = |name: &str| {
            github
                .get(name)
                .map(Value::to_coerced_string)
                .unwrap_or_default()
        };
        let repository = with
            .get("repository")
            .filter(|r| !r.is_empty())
            .cloned()
            .unwrap_or_else(|| field("repository"));
        if !repository.eq_ignore_ascii_case(&field("repository")) {
            return Outcome::failure(format!(
                "actions/checkout: checking out another repository (`{repository}`) is not supported"
            ));
        }
        let sha = with
            .get("ref")
            .filter(|r| !r.is_empty())
            .cloned()
            .unwrap_or_else(|| field("sha"));
        let relative = with.get("path").cloned().unwrap_or_default();
        let workspace = &self.sandbox.paths().workspace;
        let destination = normalize(&workspace.host.join(&relative));
        if !destination.starts_with(normalize(&workspace.host)) {
            return Outcome::failure(format!(
                "actions/checkout: path `{relative}` is outside the workspace"
            ));
        }
        if let Err(error) = std::fs::create_dir_all(&destination) {
            return Outcome::failure(format!(
                "actions/checkout: failed to create `{}`: {error}",
                destination.display()
            ));
        }
        self.log(format!(
            "Checking out {repository}@{sha} into {}",
            workspace.inside.join(&relative).display()
        ));
        match source.checkout(&repository, &sha, &destination) {
            Ok(()) => Outcome::success(IndexMap::new()),
            Err(error) => Outcome::failure(format!("actions/checkout: {error}")),
        }
    }

    #[allow(clippy::too_many_arguments)] // One step's evaluated pieces; a struct would only rename them.
    fn run_composite(
        &mut self,
        path: &str,
        with: &IndexMap<String, String>,
        scope: &mut Scope,
        step_env: &IndexMap<String, String>,
        contexts: &Contexts,
        host: &WorkspaceHost,
        timeout: Option<Duration>,
        _cancellable: bool,
    ) -> Outcome {
        let workspace = &self.sandbox.paths().workspace;
        let dir_host = normalize(&workspace.host.join(path));
        if !dir_host.starts_with(normalize(&workspace.host)) {
            return Outcome::failure(format!("action `{path}` is outside the workspace"));
        }
        let key = dir_host
            .strip_prefix(normalize(&workspace.host))
            .map(|relative| format!("./{}", relative.display()))
            .unwrap_or_else(|_| path.to_owned());
        if scope.chain.contains(&key) {
            let mut chain = scope.chain.clone();
            chain.push(key);
            return Outcome::failure(format!(
                "composite action recursion: {}",
                chain.join(" -> ")
            ));
        }
        if scope.chain.len() >= MAX_COMPOSITE_DEPTH {
            return Outcome::failure(format!(
                "composite actions nest more than {MAX_COMPOSITE_DEPTH} levels: {} -> {key}",
                scope.chain.join(" -> ")
            ));
        }
        let action = match actions::load_action(&dir_host, path) {
            Ok(action) => action,
            Err(error) => return Outcome::failure(error.to_string()),
        };
        let steps = match action.runs {
            ActionRuns::Composite(steps) => steps,
            ActionRuns::Unsupported(using) => {
                return Outcome::failure(format!(
                    "action `{path}` runs with `{using}`, which is not supported: {SUPPORTED}"
                ));
            }
        };
        // Inputs: what `with` gives (names match case-insensitively), else the default.
        let mut inputs = IndexMap::new();
        let mut input_env = IndexMap::new();
        for (name, input) in &action.inputs {
            let given = with
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone());
            let value = match (given, &input.default) {
                (Some(value), _) => value,
                (None, Some(default)) => match evaluate_string(default, Site::Step, contexts, host)
                {
                    Ok(value) => value,
                    Err(error) => {
                        return Outcome::failure(format!("input `{name}` default: {error}"));
                    }
                },
                (None, None) => {
                    if input.required {
                        self.annotate(
                            AnnotationLevel::Warning,
                            format!("Input required and not supplied: {name}"),
                            IndexMap::new(),
                        );
                    }
                    String::new()
                }
            };
            input_env.insert(env::input_variable(name), value.clone());
            inputs.insert(name.clone(), Value::String(value));
        }
        for (name, value) in with {
            if !action
                .inputs
                .keys()
                .any(|known| known.eq_ignore_ascii_case(name))
            {
                self.annotate(
                    AnnotationLevel::Warning,
                    format!(
                        "Unexpected input(s) '{name}', valid inputs are [{}]",
                        action
                            .inputs
                            .keys()
                            .map(|k| format!("'{k}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    IndexMap::new(),
                );
                input_env.insert(env::input_variable(name), value.clone());
                inputs.insert(name.clone(), Value::String(value.clone()));
            }
        }
        let mut inner_env = scope.env.clone();
        inner_env.extend(step_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        inner_env.extend(input_env);
        let action_path = workspace.inside.join(
            dir_host
                .strip_prefix(&workspace.host)
                .unwrap_or(Path::new("")),
        );
        let mut chain = scope.chain.clone();
        chain.push(key);
        let mut inner = Scope {
            steps: IndexMap::new(),
            inputs: Value::Object(inputs),
            action_path: Some(normalize(&action_path).to_string_lossy().into_owned()),
            env: inner_env,
            failed: false,
            chain,
            deadline: match (
                timeout.map(|timeout| Instant::now() + timeout),
                scope.deadline,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        };
        self.run_steps(&steps, &mut inner, false);
        let env = self.env_context(&inner, &IndexMap::new());
        let inner_contexts = self.contexts(&inner, &env);
        let inner_host = self.host(&inner);
        let mut outputs = IndexMap::new();
        for (name, text) in &action.outputs {
            match evaluate_string(text, Site::Step, &inner_contexts, &inner_host) {
                Ok(value) => {
                    outputs.insert(name.clone(), value);
                }
                Err(error) => return Outcome::failure(format!("output `{name}`: {error}")),
            }
        }
        if self.cancel.is_cancelled() && inner.failed {
            return Outcome {
                outcome: Conclusion::Cancelled,
                outputs,
                error: None,
            };
        }
        if inner.failed {
            Outcome {
                outcome: Conclusion::Failure,
                outputs,
                error: Some(format!("composite action `{path}` failed")),
            }
        } else {
            Outcome::success(outputs)
        }
    }
}

/// One step's file-command files.
struct StepFiles {
    dir_host: PathBuf,
    dir_inside: PathBuf,
    env: PathBuf,
    output: PathBuf,
    path: PathBuf,
    state: PathBuf,
    summary: PathBuf,
}

impl StepFiles {
    /// Names the files to the step by their inside paths.
    fn export(&self, env: &mut BTreeMap<String, String>) {
        let inside = |file: &str| self.dir_inside.join(file).to_string_lossy().into_owned();
        env.insert("GITHUB_ENV".to_owned(), inside("env"));
        env.insert("GITHUB_OUTPUT".to_owned(), inside("output"));
        env.insert("GITHUB_PATH".to_owned(), inside("path"));
        env.insert("GITHUB_STATE".to_owned(), inside("state"));
        env.insert("GITHUB_STEP_SUMMARY".to_owned(), inside("summary"));
    }

    /// A file's content (a file the step removed reads as empty).
    fn read(&self, name: &str, file: &Path) -> Result<String, String> {
        match std::fs::read(file) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(error) => Err(format!(
                "{name}: failed to read `{}`: {error}",
                file.display()
            )),
        }
    }
}
