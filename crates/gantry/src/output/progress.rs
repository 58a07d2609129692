//! How followed runs are shown (`gantry run`, `gantry watch`): a live tree on a terminal,
//! plain lines elsewhere, or JSON only.
//!
//! The follower (`commands::watch`) says what happened — a run appeared, a job changed, a log
//! line arrived, a job or run ended — and a [`Progress`] shows it in one of three ways:
//! - [`Mode::Live`] (stdout is a terminal): one line per run and under it one per job
//!   instance (`indicatif`), with a spinner and the time so far while the job runs, its
//!   waiting reasons while it waits, and its mark, conclusion and duration once it ended; log
//!   lines scroll above the tree as `job-name | text`.
//! - [`Mode::Plain`] (pipes, CI, tests): no escape codes, one line per event:
//!   `run 1 — demo (.github/workflows/ci.yml)`, `  ● setup started`, `setup | text`,
//!   `  ✓ setup success in 0.8s`, `run 1 demo: success in 3.1s` (jobs named `setup [run 1]`
//!   when several runs are followed, as two workflows may both have a `setup`), and for a
//!   job held by something unusual (no online runner, a quota, a concurrency group,
//!   max-parallel) `  ◦ gpu queued: no online runner has …` once it has lasted five seconds.
//! - [`Mode::Json`]: nothing while the runs go; each finished run (`RunDetail`) as one JSON
//!   line on stdout.
//!
//! The text of every line comes from the pure functions at the bottom, so the two human modes
//! say the same things and tests check them without a terminal.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_proto::v1 as proto;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How the runs are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live tree redrawn in place.
    Live,
    /// One line per event, no escape codes.
    Plain,
    /// Only each finished run, as JSON.
    Json,
}

impl Mode {
    /// JSON when asked, the live tree when stdout is a terminal, else plain lines.
    pub fn for_stdout(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stdout().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// Shows followed runs in one [`Mode`].
pub struct Progress {
    mode: Mode,
    tree: Option<Tree>,
    /// Whether more than one run is followed, so lines outside the tree name the run too.
    several_runs: bool,
    /// Jobs whose start has been shown (plain mode), so each start is shown once.
    started: HashSet<i64>,
    /// What holds each waiting job and since when (plain mode), and whether that was shown.
    blocked: HashMap<i64, Blocked>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.tree.is_some() {
            super::set_live_tree(None);
        }
    }
}

/// An unusual wait of one job, as `blocked_text` words it.
struct Blocked {
    text: String,
    since: DateTime<Utc>,
    shown: bool,
}

/// How long an unusual wait lasts before plain output mentions it: `gantry run`'s
/// provisioner starts runners on demand, so "no online runner" is true for a moment at every
/// job and not worth a line.
const BLOCKED_FOR: Duration = Duration::from_secs(5);

/// The live tree's bars.
struct Tree {
    multi: MultiProgress,
    /// Log lines not drawn yet: each draw above the tree redraws the tree, so lines are
    /// drawn in batches (`flush`) rather than one by one.
    pending: Vec<String>,
    /// Each run's header and the last bar under it (where its next job goes).
    runs: HashMap<i64, (ProgressBar, ProgressBar)>,
    jobs: HashMap<i64, JobLine>,
}

/// One job's line in the tree.
struct JobLine {
    bar: ProgressBar,
    /// Whether it is drawn with a spinner; `None` before it was first drawn.
    spinning: Option<bool>,
}

impl Progress {
    /// A view of `runs` runs in `mode`; the live tree draws on stdout.
    pub fn new(mode: Mode, runs: usize) -> Progress {
        let progress = Progress::drawing_to(mode, runs, ProgressDrawTarget::stdout());
        // Logs and messages on stderr share the terminal with the tree: written around it.
        super::set_live_tree(progress.tree.as_ref().map(|tree| tree.multi.clone()));
        progress
    }

    /// A view of `runs` runs in `mode` whose live tree draws on `target`.
    fn drawing_to(mode: Mode, runs: usize, target: ProgressDrawTarget) -> Progress {
        let tree = (mode == Mode::Live).then(|| Tree {
            multi: MultiProgress::with_draw_target(target),
            pending: Vec::new(),
            runs: HashMap::new(),
            jobs: HashMap::new(),
        });
        Progress {
            mode,
            tree,
            several_runs: runs > 1,
            started: HashSet::new(),
            blocked: HashMap::new(),
        }
    }

    /// A run to follow, shown once before its jobs.
    pub fn run_appeared(&mut self, run: &proto::Run) {
        match (&mut self.tree, self.mode) {
            (Some(tree), _) => {
                let header = tree.multi.add(ProgressBar::new_spinner());
                header.set_style(style_running(RUN_GOING));
                header.set_message(run_header(run));
                header.enable_steady_tick(Duration::from_millis(100));
                tree.runs.insert(run.id, (header.clone(), header));
            }
            (None, Mode::Plain) => super::line(&run_header(run)),
            (None, _) => {}
        }
    }

    /// A job as the server last described it (new or changed).
    pub fn job_changed(&mut self, job: &proto::Job, now: DateTime<Utc>) {
        if self.mode == Mode::Plain {
            // A job seen only once it ended still shows its start, in the runs' job order.
            let started = job.status == proto::JobStatus::InProgress
                || (job.status == proto::JobStatus::Completed && job.started_at.is_some());
            if started {
                self.show_started(job);
            } else if let Some(text) = self.blocked_long_enough(job, now) {
                super::line(&format!("  {text}"));
            }
            return;
        }
        let Some(tree) = &mut self.tree else {
            return;
        };
        let line = match tree.jobs.get_mut(&job.id) {
            Some(line) => line,
            None => {
                let Some((_, last)) = tree.runs.get_mut(&job.run_id) else {
                    return;
                };
                let bar = tree.multi.insert_after(last, ProgressBar::new_spinner());
                *last = bar.clone();
                tree.jobs.entry(job.id).or_insert(JobLine {
                    bar,
                    spinning: None,
                })
            }
        };
        if line.bar.is_finished() {
            return;
        }
        // A job that ran spins until `job_ended` shows its end, which waits for its log.
        let spinning = match job.status {
            proto::JobStatus::InProgress => true,
            proto::JobStatus::Completed => job.started_at.is_some(),
            proto::JobStatus::Waiting | proto::JobStatus::Queued => false,
        };
        if line.spinning != Some(spinning) {
            // Styles and the ticker thread change only when the job starts or stops running,
            // not at every poll.
            if spinning {
                line.bar.set_style(style_running(JOB_RUNNING));
                line.bar.enable_steady_tick(Duration::from_millis(100));
            } else {
                line.bar.disable_steady_tick();
                line.bar.set_style(style_still(JOB_STILL));
            }
            line.spinning = Some(spinning);
        }
        if spinning {
            line.bar.set_message(running_message(job, now));
        } else if job.status != proto::JobStatus::Completed {
            line.bar.set_message(waiting_message(job));
        }
    }

    /// One line of a job's log.
    pub fn log_line(&mut self, job: &proto::Job, line: &proto::JobLogLine) {
        let text = log_text(&self.label(job), line);
        match (&mut self.tree, self.mode) {
            (Some(tree), _) => tree.pending.push(text),
            (None, Mode::Plain) => {
                self.show_started(job);
                super::line(&text);
            }
            (None, _) => {}
        }
    }

    /// Draws the log lines that came since the last call (live tree: the caller calls it a
    /// few times a second; the other modes print each line as it comes).
    pub fn flush(&mut self) {
        if let Some(tree) = &mut self.tree
            && !tree.pending.is_empty()
        {
            let _ = tree.multi.println(tree.pending.join("\n"));
            tree.pending.clear();
        }
    }

    /// A job ended and its whole log has been shown.
    pub fn job_ended(&mut self, job: &proto::Job) {
        self.flush();
        match (&self.tree, self.mode) {
            (Some(tree), _) => {
                if let Some(line) = tree.jobs.get(&job.id) {
                    line.bar.disable_steady_tick();
                    line.bar.set_style(style_still(JOB_STILL));
                    line.bar.finish_with_message(ended_text(job, &job.name));
                }
            }
            (None, Mode::Plain) => {
                if job.started_at.is_some() {
                    self.show_started(job);
                }
                super::line(&format!("  {}", ended_text(job, &self.label(job))));
            }
            (None, _) => {}
        }
    }

    /// A run ended with every job's end shown.
    pub fn run_ended(&mut self, detail: &proto::RunDetail) -> anyhow::Result<()> {
        self.flush();
        match (&self.tree, self.mode) {
            (Some(tree), _) => {
                if let Some((header, _)) = tree.runs.get(&detail.run.id) {
                    header.set_style(style_still(RUN_ENDED));
                    header.finish_with_message(format!(
                        "{} {}",
                        mark(detail.run.conclusion),
                        run_ended_text(&detail.run)
                    ));
                }
            }
            (None, Mode::Plain) => super::line(&run_ended_text(&detail.run)),
            (None, _) => super::json_line(&serde_json::to_value(detail)?),
        }
        // A run of an invalid workflow file has no jobs: its errors are what there is to see.
        if self.mode != Mode::Json {
            for line in crate::commands::runs::workflow_error_lines(&detail.run) {
                match &self.tree {
                    Some(tree) => {
                        let _ = tree.multi.println(format!("  {line}"));
                    }
                    None => super::line(&format!("  {line}")),
                }
            }
        }
        Ok(())
    }

    /// A problem worth telling people about while following (a log stream that gave up).
    pub fn note(&mut self, text: &str) {
        self.flush();
        match &self.tree {
            Some(tree) => {
                let _ = tree.multi.println(text);
            }
            None => super::message(text),
        }
    }

    /// The text of job's unusual wait, once, when it has lasted [`BLOCKED_FOR`] by `now`.
    fn blocked_long_enough(&mut self, job: &proto::Job, now: DateTime<Utc>) -> Option<String> {
        let Some(text) = blocked_text(job, &self.label(job)) else {
            self.blocked.remove(&job.id);
            return None;
        };
        let blocked = self.blocked.entry(job.id).or_insert_with(|| Blocked {
            text: text.clone(),
            since: now,
            shown: false,
        });
        if blocked.text != text {
            *blocked = Blocked {
                text,
                since: now,
                shown: false,
            };
        }
        if blocked.shown || between(blocked.since, now) < BLOCKED_FOR {
            return None;
        }
        blocked.shown = true;
        Some(blocked.text.clone())
    }

    /// How lines outside the tree name a job: its name, with its run when several runs are
    /// followed (two workflows may both have a `build`).
    fn label(&self, job: &proto::Job) -> String {
        if self.several_runs {
            format!("{} [run {}]", job.name, job.run_id)
        } else {
            job.name.clone()
        }
    }

    fn show_started(&mut self, job: &proto::Job) {
        if self.mode == Mode::Plain && self.started.insert(job.id) {
            super::line(&format!("  ● {} started", self.label(job)));
        }
    }
}

/// A run's header while it goes: spinner and text.
const RUN_GOING: &str = "{spinner:.cyan} {wide_msg}";
/// A job line while it runs, indented under its run.
const JOB_RUNNING: &str = "  {spinner:.cyan} {wide_msg}";
/// A job line while it waits or once it ended (the mark is part of the text).
const JOB_STILL: &str = "  {wide_msg}";
/// A run's header once it ended.
const RUN_ENDED: &str = "{wide_msg}";

fn style_running(template: &str) -> ProgressStyle {
    // The templates are this module's constants, checked by a test: a bad one is a bug here.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

fn style_still(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `run 1 — demo (.github/workflows/ci.yml)`; the path alone when the workflow has no
/// `name:` (its name is then the path).
pub fn run_header(run: &proto::Run) -> String {
    if run.workflow_name == run.workflow_path {
        format!("run {} — {}", run.id, run.workflow_path)
    } else {
        format!(
            "run {} — {} ({})",
            run.id, run.workflow_name, run.workflow_path
        )
    }
}

/// `run 1 demo: success in 3.1s` (from the run's creation to its end).
pub fn run_ended_text(run: &proto::Run) -> String {
    let conclusion = run
        .conclusion
        .map_or("none", |conclusion| conclusion.as_str());
    let took = run
        .completed_at
        .map(|end| format!(" in {}", duration_text(between(run.created_at, end))))
        .unwrap_or_default();
    format!("run {} {}: {conclusion}{took}", run.id, run.workflow_name)
}

/// `setup | text`, or `setup (attempt 2) | text` for a later attempt's line.
pub fn log_text(job_name: &str, line: &proto::JobLogLine) -> String {
    if line.attempt > 1 {
        format!("{job_name} (attempt {}) | {}", line.attempt, line.text)
    } else {
        format!("{job_name} | {}", line.text)
    }
}

/// `✓ setup success in 0.8s — message`, the job named `label`.
pub fn ended_text(job: &proto::Job, label: &str) -> String {
    let conclusion = job
        .conclusion
        .map_or("none", |conclusion| conclusion.as_str());
    let took = match (job.started_at, job.completed_at) {
        (Some(start), Some(end)) => format!(" in {}", duration_text(between(start, end))),
        _ => String::new(),
    };
    let why = job
        .message
        .as_deref()
        .map(|message| format!(" — {message}"))
        .unwrap_or_default();
    format!("{} {label} {conclusion}{took}{why}", mark(job.conclusion))
}

/// `setup 12s` for a running job (the spinner is drawn before it).
pub fn running_message(job: &proto::Job, now: DateTime<Utc>) -> String {
    match job.started_at {
        Some(start) => format!("{} {}", job.name, duration_text(between(start, now))),
        None => job.name.clone(),
    }
}

/// `◦ test (python) queued: no online runner has the labels ubuntu-latest; …`.
pub fn waiting_message(job: &proto::Job) -> String {
    let reasons: Vec<&str> = job
        .waiting_reasons
        .iter()
        .map(|reason| reason.message.as_str())
        .collect();
    if reasons.is_empty() {
        format!("◦ {} {}", job.name, job.status.as_str())
    } else {
        format!(
            "◦ {} {}: {}",
            job.name,
            job.status.as_str(),
            reasons.join("; ")
        )
    }
}

/// For plain lines: `◦ gpu-job queued: no online runner has …` when a waiting job is held by
/// something other than the usual waits (its needs, its turn in the queue), which a log in CI
/// should explain; `None` otherwise. Queue positions change at every poll, so they are left out.
pub fn blocked_text(job: &proto::Job, label: &str) -> Option<String> {
    let reasons: Vec<&str> = job
        .waiting_reasons
        .iter()
        .filter(|reason| {
            !matches!(
                reason.kind,
                proto::WaitingReasonKind::Needs
                    | proto::WaitingReasonKind::Runner
                    | proto::WaitingReasonKind::QueuePosition
            )
        })
        .map(|reason| reason.message.as_str())
        .collect();
    (!reasons.is_empty())
        .then(|| format!("◦ {label} {}: {}", job.status.as_str(), reasons.join("; ")))
}

/// The mark of a conclusion: ✓ success, − skipped, ⊘ cancelled, ✗ anything else.
pub fn mark(conclusion: Option<proto::Conclusion>) -> &'static str {
    match conclusion {
        Some(proto::Conclusion::Success) => "✓",
        Some(proto::Conclusion::Skipped) => "−",
        Some(proto::Conclusion::Cancelled) => "⊘",
        _ => "✗",
    }
}

fn between(start: DateTime<Utc>, end: DateTime<Utc>) -> Duration {
    // Clocks of a remote server may be ahead of ours: a negative span shows as zero.
    (end - start).to_std().unwrap_or_default()
}

/// `0.8s`, `12s`, `2m 03s`, `1h 02m`.
pub fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 10 {
        format!("{:.1}s", duration.as_secs_f64())
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> proto::Job {
        serde_json::from_value(serde_json::json!({
            "id": 7, "run_id": 1, "job_key": "test", "matrix_index": 0,
            "name": "test (python)", "status": "completed", "conclusion": "failure",
            "attempt": 1, "labels": ["ubuntu-latest"], "waiting_reasons": [], "outputs": {},
            "message": "exit code 4", "queued_at": null,
            "started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:12Z"
        }))
        .unwrap()
    }

    #[test]
    fn ended_jobs_show_mark_conclusion_duration_and_why() {
        assert_eq!(
            ended_text(&job(), "test (python)"),
            "✗ test (python) failure in 12s — exit code 4"
        );
        let skipped = proto::Job {
            conclusion: Some(proto::Conclusion::Skipped),
            started_at: None,
            message: None,
            ..job()
        };
        assert_eq!(
            ended_text(&skipped, "test (python)"),
            "− test (python) skipped"
        );
    }

    #[test]
    fn waiting_jobs_show_their_reasons_and_running_ones_their_time() {
        let reason: proto::WaitingReason = serde_json::from_value(serde_json::json!({
            "kind": "needs", "message": "needs setup", "jobs": ["setup"]
        }))
        .unwrap();
        let waiting = proto::Job {
            status: proto::JobStatus::Waiting,
            waiting_reasons: vec![reason],
            ..job()
        };
        assert_eq!(
            waiting_message(&waiting),
            "◦ test (python) waiting: needs setup"
        );
        let queued = proto::Job {
            status: proto::JobStatus::Queued,
            ..job()
        };
        assert_eq!(waiting_message(&queued), "◦ test (python) queued");
        let now = "2026-01-01T00:02:03Z".parse().unwrap();
        assert_eq!(running_message(&job(), now), "test (python) 2m 03s");
    }

    #[test]
    fn plain_lines_explain_only_unusual_waits() {
        let reason = |kind: &str, message: &str| -> proto::WaitingReason {
            serde_json::from_value(serde_json::json!({ "kind": kind, "message": message })).unwrap()
        };
        let usual = proto::Job {
            status: proto::JobStatus::Queued,
            waiting_reasons: vec![
                reason("needs", "waiting on needs: setup"),
                reason("runner", "waiting for a runner with labels: gpu"),
                reason("queue_position", "position 2 of 3"),
            ],
            ..job()
        };
        assert_eq!(blocked_text(&usual, "test (python)"), None);
        let blocked = proto::Job {
            waiting_reasons: vec![
                reason("runner", "waiting for a runner with labels: gpu"),
                reason("no_online_runner", "no online runner has the labels gpu"),
                reason("queue_position", "position 2 of 3"),
            ],
            ..usual.clone()
        };
        let text = "◦ test (python) queued: no online runner has the labels gpu";
        assert_eq!(
            blocked_text(&blocked, "test (python)").as_deref(),
            Some(text)
        );

        // Plain output mentions it once it has lasted a while, and only once.
        let mut progress = Progress::new(Mode::Plain, 1);
        let at = |second: u32| -> DateTime<Utc> {
            format!("2026-01-01T00:00:{second:02}Z").parse().unwrap()
        };
        assert_eq!(progress.blocked_long_enough(&blocked, at(0)), None);
        assert_eq!(progress.blocked_long_enough(&blocked, at(4)), None);
        assert_eq!(
            progress.blocked_long_enough(&blocked, at(5)).as_deref(),
            Some(text)
        );
        assert_eq!(progress.blocked_long_enough(&blocked, at(9)), None);
        // A wait that ends and comes back starts over.
        assert_eq!(progress.blocked_long_enough(&usual, at(10)), None);
        assert_eq!(progress.blocked_long_enough(&blocked, at(11)), None);
        assert_eq!(
            progress.blocked_long_enough(&blocked, at(16)).as_deref(),
            Some(text)
        );
    }

    #[test]
    fn lines_outside_the_tree_name_the_run_when_several_are_followed() {
        assert_eq!(Progress::new(Mode::Plain, 1).label(&job()), "test (python)");
        assert_eq!(
            Progress::new(Mode::Plain, 2).label(&job()),
            "test (python) [run 1]"
        );
    }

    #[test]
    fn log_lines_carry_the_job_name_and_later_attempts() {
        let line: proto::JobLogLine = serde_json::from_value(serde_json::json!({
            "seq": 0, "attempt": 1, "step": 0, "number": 1,
            "time": "2026-01-01T00:00:00Z", "text": "hello"
        }))
        .unwrap();
        assert_eq!(log_text("setup", &line), "setup | hello");
        let retried = proto::JobLogLine { attempt: 2, ..line };
        assert_eq!(log_text("setup", &retried), "setup (attempt 2) | hello");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration_text(Duration::from_millis(800)), "0.8s");
        assert_eq!(duration_text(Duration::from_secs(42)), "42s");
        assert_eq!(duration_text(Duration::from_secs(123)), "2m 03s");
        assert_eq!(duration_text(Duration::from_secs(3720)), "1h 02m");
    }

    /// The live tree on an in-memory terminal: jobs under their run in the API's order, a
    /// waiting job's reasons, log lines above the tree, marks and durations once ended.
    #[test]
    fn the_live_tree_shows_jobs_under_their_run_with_logs_above() {
        let term = indicatif::InMemoryTerm::new(20, 100);
        let mut progress = Progress::drawing_to(
            Mode::Live,
            1,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        let run: proto::Run = serde_json::from_value(serde_json::json!({
            "id": 1, "repository": "local/app", "workflow_path": ".github/workflows/ci.yml",
            "workflow_name": "ci", "run_number": 1, "attempt": 1, "event": "push",
            "ref": "refs/heads/main", "sha": "abc", "actor": "me", "status": "in_progress",
            "conclusion": null, "created_at": "2026-01-01T00:00:00Z",
            "started_at": null, "completed_at": "2026-01-01T00:00:13Z"
        }))
        .unwrap();
        progress.run_appeared(&run);
        let now = "2026-01-01T00:00:05Z".parse().unwrap();
        let setup = proto::Job {
            id: 6,
            name: "setup".into(),
            status: proto::JobStatus::InProgress,
            conclusion: None,
            message: None,
            completed_at: None,
            ..job()
        };
        progress.job_changed(&setup, now);
        let reason: proto::WaitingReason = serde_json::from_value(serde_json::json!({
            "kind": "needs", "message": "waiting on needs: setup", "jobs": ["setup"]
        }))
        .unwrap();
        let test = proto::Job {
            status: proto::JobStatus::Waiting,
            waiting_reasons: vec![reason],
            ..job()
        };
        progress.job_changed(&test, now);
        let line: proto::JobLogLine = serde_json::from_value(serde_json::json!({
            "seq": 0, "attempt": 1, "step": 0, "number": 1,
            "time": "2026-01-01T00:00:01Z", "text": "hello"
        }))
        .unwrap();
        progress.log_line(&setup, &line);
        progress.flush();
        let screen = term.contents();
        let at = |text: &str| {
            screen
                .find(text)
                .unwrap_or_else(|| panic!("missing `{text}` in:\n{screen}"))
        };
        assert!(at("setup | hello") < at("run 1 — ci (.github/workflows/ci.yml)"));
        assert!(at("run 1 — ci") < at("setup 5.0s"));
        assert!(at("setup 5.0s") < at("◦ test (python) waiting: waiting on needs: setup"));

        progress.job_ended(&proto::Job {
            status: proto::JobStatus::Completed,
            conclusion: Some(proto::Conclusion::Success),
            completed_at: Some("2026-01-01T00:00:06Z".parse().unwrap()),
            started_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..setup
        });
        progress.job_ended(&job());
        let detail = proto::RunDetail {
            run: proto::Run {
                status: proto::RunStatus::Completed,
                conclusion: Some(proto::Conclusion::Failure),
                ..run
            },
            jobs: Vec::new(),
        };
        progress.run_ended(&detail).unwrap();
        let screen = term.contents();
        assert!(screen.contains("✗ run 1 ci: failure in 13s"), "{screen}");
        assert!(screen.contains("  ✓ setup success in 6.0s"), "{screen}");
        assert!(
            screen.contains("  ✗ test (python) failure in 12s — exit code 4"),
            "{screen}"
        );
    }

    #[test]
    fn every_template_is_valid() {
        for template in [RUN_GOING, JOB_RUNNING, JOB_STILL, RUN_ENDED] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
}
