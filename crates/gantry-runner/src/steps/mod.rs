//! The step runner: runs one job's steps inside a [`Sandbox`] as GitHub's runner does.
//!
//! [`run_job`] takes a [`JobPayload`], a sandbox made for the job, [`RunOptions`], a
//! [`JobReporter`] that receives everything the agent forwards to the server (steps starting
//! and ending, ordered log lines, annotations, summaries, the job's result) and a
//! [`CancelHandle`] the agent triggers to cancel the job.
//!
//! Module map, one job each: `env` assembles a step's environment, `shell` turns `shell:` into
//! a command line, `file_commands` parses `GITHUB_ENV`/`GITHUB_OUTPUT`/`GITHUB_PATH`,
//! `commands` parses workflow commands (`::error::` ...), `mask` hides secrets, `contexts`
//! evaluates expressions with the job's contexts, `process` streams one process's output with
//! its time limit and cancellation, `actions` reads composite actions and holds the checkout
//! source, and `job` is the step loop that ties them together.

mod actions;
mod commands;
mod contexts;
mod env;
mod file_commands;
mod job;
mod mask;
mod process;
mod shell;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

pub use actions::{
    ActionError, ActionManifest, ActionRef, LocalDirectorySource, SourceError, SourceProvider,
    copy_tree, load_action, parse_action,
};
pub use commands::{WorkflowCommand, parse_command};
pub use env::{default_env, input_variable, step_env};
pub use file_commands::{FileCommandError, parse_key_values, parse_path_file};
pub use gantry_proto::v1::{Conclusion, JobPayload};
pub use job::run_job;
pub use mask::{MASK, Masker};
pub use shell::{Shell, ShellError};

use crate::sandbox::Sandbox;

/// How the runner runs jobs.
#[derive(Clone)]
pub struct RunOptions {
    /// `RUNNER_NAME` and `runner.name`.
    pub runner_name: String,
    /// `RUNNER_OS` (`Linux`).
    pub runner_os: String,
    /// `RUNNER_ARCH` (`X64`, `ARM64`, ...).
    pub runner_arch: String,
    /// The base `PATH` of every step.
    pub path: String,
    /// Between SIGTERM and SIGKILL when a step is cancelled or times out (GitHub: 7.5 s).
    pub cancel_grace: Duration,
    /// Log bytes kept per step; the rest is dropped with a notice (the pipe is still drained).
    pub max_log_bytes_per_step: usize,
    /// Step debug logging (`::debug::` lines shown, `RUNNER_DEBUG=1`).
    pub debug: bool,
    /// Where `actions/checkout` gets the code; without one, checkout fails with a message.
    pub source: Option<Arc<dyn SourceProvider>>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            runner_name: "gantry".to_owned(),
            runner_os: "Linux".to_owned(),
            runner_arch: runner_arch().to_owned(),
            path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            cancel_grace: Duration::from_millis(7500),
            max_log_bytes_per_step: 64 * 1024 * 1024,
            debug: false,
            source: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("runner_name", &self.runner_name)
            .field("path", &self.path)
            .field("cancel_grace", &self.cancel_grace)
            .field("max_log_bytes_per_step", &self.max_log_bytes_per_step)
            .field("source", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

/// GitHub's spelling of this machine's architecture.
pub fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "x86" => "X86",
        "aarch64" => "ARM64",
        "arm" => "ARM",
        other => other,
    }
}

/// The agent's handle to cancel a running job; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A handle not cancelled yet.
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Cancels the job: the running step's processes get SIGTERM, then SIGKILL after the
    /// grace period; only steps whose `if:` holds after a cancel (`always()`, `cancelled()`)
    /// still run.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A step as it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// Its position in the job's `steps` (0-based).
    pub index: usize,
    /// `id:`, when set.
    pub id: Option<String>,
    /// The display name (`name:` evaluated, or GitHub's `Run <first line>` / `Run <action>`).
    pub name: String,
}

/// One line of a step's log, masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The step's index.
    pub step: usize,
    /// 1 for the step's first line, then one more per line.
    pub number: u64,
    /// When the runner read it.
    pub time: SystemTime,
    /// The text, without the line break.
    pub text: String,
}

/// How serious an annotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    /// `::error`, or a step failure.
    Error,
    /// `::warning`.
    Warning,
    /// `::notice`.
    Notice,
}

/// An annotation a step made (`::error file=...::msg`) or the runner made about a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// The step's index.
    pub step: usize,
    /// Error, warning or notice.
    pub level: AnnotationLevel,
    /// The message, masked.
    pub message: String,
    /// `title=`.
    pub title: Option<String>,
    /// `file=`.
    pub file: Option<String>,
    /// `line=`.
    pub line: Option<u64>,
    /// `endLine=`.
    pub end_line: Option<u64>,
    /// `col=`.
    pub column: Option<u64>,
    /// `endColumn=`.
    pub end_column: Option<u64>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// The step's index.
    pub index: usize,
    /// `id:`, when set.
    pub id: Option<String>,
    /// The display name.
    pub name: String,
    /// `steps.<id>.outcome`: before `continue-on-error`.
    pub outcome: Conclusion,
    /// `steps.<id>.conclusion`: after `continue-on-error`.
    pub conclusion: Conclusion,
    /// Why it failed, when the runner knows (exit code, unknown shell, timeout, ...).
    pub error: Option<String>,
}

/// How the job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// Success, failure or cancelled.
    pub conclusion: Conclusion,
    /// The job's `outputs`, evaluated after the steps.
    pub outputs: indexmap::IndexMap<String, String>,
    /// Why the job failed as a whole, when it did not come from a step (a job timeout, a
    /// sandbox failure).
    pub message: Option<String>,
}

/// Receives what a job does, in order. The agent forwards it to the server; tests record it.
pub trait JobReporter {
    /// A step is about to run (also for steps whose `if:` skips them).
    fn step_started(&mut self, step: &StepInfo);
    /// A log line of the running step.
    fn log_line(&mut self, line: &LogLine);
    /// An annotation of the running step.
    fn annotation(&mut self, annotation: &Annotation);
    /// The step's `GITHUB_STEP_SUMMARY` Markdown, when it wrote one.
    fn step_summary(&mut self, step: usize, markdown: &str) {
        let _ = (step, markdown);
    }
    /// A step has ended.
    fn step_ended(&mut self, result: &StepResult);
    /// The job has ended; nothing follows.
    fn job_ended(&mut self, result: &JobResult);
}

/// A [`JobReporter`] that keeps everything, for tests and local runs.
#[derive(Debug, Clone, Default)]
pub struct RecordingReporter {
    /// Steps as they started.
    pub started: Vec<StepInfo>,
    /// Every log line.
    pub lines: Vec<LogLine>,
    /// Every annotation.
    pub annotations: Vec<Annotation>,
    /// Summaries by step.
    pub summaries: Vec<(usize, String)>,
    /// Steps as they ended.
    pub ended: Vec<StepResult>,
    /// The job's result.
    pub result: Option<JobResult>,
}

impl RecordingReporter {
    /// The log lines of step `index`, as text.
    pub fn step_log(&self, index: usize) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|line| line.step == index)
            .map(|line| line.text.as_str())
            .collect()
    }
}

impl JobReporter for RecordingReporter {
    fn step_started(&mut self, step: &StepInfo) {
        self.started.push(step.clone());
    }
    fn log_line(&mut self, line: &LogLine) {
        self.lines.push(line.clone());
    }
    fn annotation(&mut self, annotation: &Annotation) {
        self.annotations.push(annotation.clone());
    }
    fn step_summary(&mut self, step: usize, markdown: &str) {
        self.summaries.push((step, markdown.to_owned()));
    }
    fn step_ended(&mut self, result: &StepResult) {
        self.ended.push(result.clone());
    }
    fn job_ended(&mut self, result: &JobResult) {
        self.result = Some(result.clone());
    }
}

/// `path` with `.` removed and `..` applied, without touching the file system.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other.as_os_str()),
        }
    }
    normal
}

/// Runs a job in `sandbox` (convenience for callers that own nothing else): see [`run_job`].
pub fn run_job_recorded(
    payload: &JobPayload,
    sandbox: &dyn Sandbox,
    options: &RunOptions,
    cancel: &CancelHandle,
) -> RecordingReporter {
    let mut reporter = RecordingReporter::default();
    run_job(payload, sandbox, options, &mut reporter, cancel);
    reporter
}
