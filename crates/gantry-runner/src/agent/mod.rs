//! The runner agent: registers with a server, claims jobs, runs each in a fresh sandbox and
//! reports everything back over the runner protocol (`gantry_proto::v1::runner`).
//!
//! [`Agent::run`] is the loop. It registers (checking that both sides speak
//! [`RUNNER_PROTOCOL_VERSION`]), then a claimer thread asks for jobs (each claim waits up to
//! [`CLAIM_WAIT`] on the server) whenever a slot of the runner's `capacity` is free, and every
//! assignment runs on a thread of its own:
//!
//! 1. a [`heartbeat::Heartbeat`] keeps the lease and turns the server's answers into a cancel
//!    or a lost attempt;
//! 2. the [`Executors`] make a sandbox for the job (the `--platform` whose label the job's
//!    `runs-on` names, else the default), with its directory under the work directory;
//! 3. [`run_job`] runs the payload, reporting to a [`reporter::AgentReporter`];
//! 4. the sandbox is destroyed, always (a guard does it even if the step runner panics);
//! 5. once every log line is delivered, the result is sent with `complete`, repeated until the
//!    server accepts or refuses it, since a lost completion loses the job's result. An attempt
//!    the server called stale is not completed: its result no longer counts.
//!
//! Stopping: setting [`Agent::stop_flag`] (the CLI does on SIGTERM and SIGINT) stops claiming,
//! cancels the running jobs (SIGTERM, grace period, SIGKILL; `always()` steps still run),
//! reports their results and returns. A job the claimer is handed while stopping is run
//! already cancelled, so it is reported too; a claim still open when the loop returns is
//! abandoned, and a job the server hands it then is queued again when its lease expires.
//! `ephemeral` runs exactly one job and returns. Only a refused credential ends the loop with
//! an error; other refusals and transport failures are repeated with [`client::Backoff`].
//!
//! Modules: `client` (the protocol's requests and error classes), `labels` (capabilities,
//! labels, platforms), `reporter` (steps and log lines to the server, batched off the job's
//! thread), `heartbeat` (the lease), `source` (`actions/checkout` from the server).

pub mod client;
pub mod heartbeat;
pub mod http_agent;
pub mod labels;
pub mod reporter;
pub mod source;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use gantry_proto::v1::{
    CompleteAttempt, Conclusion, JobAssignment, RUNNER_PROTOCOL_VERSION, RegisterRunner,
    RunnerRegistration,
};
use indexmap::IndexMap;

use crate::sandbox::{Executor, ResourceLimits, Sandbox, SandboxSpec};
use crate::steps::{CancelHandle, JobResult, RunOptions, run_job};
use client::{Backoff, ClientError, ProtocolClient};
use heartbeat::{Heartbeat, ServerBeat};
use labels::Platform;
use reporter::{AgentReporter, ReporterLimits, ServerSink};

/// How long one claim waits on the server for a job.
pub const CLAIM_WAIT: Duration = Duration::from_secs(30);

/// How often the loop looks at the stop flag while it waits.
const TICK: Duration = Duration::from_millis(100);

/// The fate of one claimed attempt, shared by the job's threads.
#[derive(Debug)]
pub struct Attempt {
    /// Cancels the job's steps.
    pub cancel: CancelHandle,
    lost: AtomicBool,
}

impl Attempt {
    /// An attempt that runs.
    pub fn new(cancel: CancelHandle) -> Attempt {
        Attempt {
            cancel,
            lost: AtomicBool::new(false),
        }
    }

    /// The server no longer counts this attempt (`stale_token`): stop the job and send
    /// nothing more about it.
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    /// Whether [`Attempt::mark_lost`] was called.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The server's URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The registration token.
    pub token: String,
    /// The runner's name.
    pub name: String,
    /// The labels to register with (see [`labels::runner_labels`]).
    pub labels: Vec<String>,
    /// How many jobs run at once (at least 1).
    pub capacity: u32,
    /// Run exactly one job, then return.
    pub ephemeral: bool,
    /// Where job directories are made (`<work_dir>/jobs/<job>-<token>`).
    pub work_dir: PathBuf,
    /// Whether jobs may reach the network.
    pub network: bool,
    /// Every job's resource limits.
    pub limits: ResourceLimits,
    /// How jobs run (the runner name is replaced by [`AgentConfig::name`]).
    pub run_options: RunOptions,
    /// How long each claim waits on the server (at most [`CLAIM_WAIT`] is useful).
    pub claim_wait: Duration,
}

/// The executors a runner has: one per `--platform` root, and the default.
#[derive(Clone)]
pub struct Executors {
    default: Arc<dyn Executor>,
    platforms: Vec<(Platform, Arc<dyn Executor>)>,
}

impl Executors {
    /// Every job runs in sandboxes of `default`.
    pub fn new(default: Arc<dyn Executor>) -> Executors {
        Executors {
            default,
            platforms: Vec::new(),
        }
    }

    /// Jobs whose `runs-on` names `platform.label` run in sandboxes of `executor` (made with
    /// the platform's root).
    pub fn with_platform(mut self, platform: Platform, executor: Arc<dyn Executor>) -> Executors {
        self.platforms.push((platform, executor));
        self
    }

    /// The executor for a job with these `runs-on` labels: the first platform it names (as
    /// [`labels::choose_platform`]), else the default.
    pub fn choose(&self, runs_on: &[String]) -> &Arc<dyn Executor> {
        self.platforms
            .iter()
            .find(|(platform, _)| platform.matches(runs_on))
            .map_or(&self.default, |(_, executor)| executor)
    }
}

impl std::fmt::Debug for Executors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executors")
            .field("default", &self.default.name())
            .field(
                "platforms",
                &self.platforms.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Registration was refused.
    #[error("registration refused: {0}")]
    Register(ClientError),
    /// The server speaks another protocol version.
    #[error("the server speaks runner protocol {server}, this runner speaks {ours}")]
    ProtocolVersion {
        /// The server's version.
        server: u32,
        /// Ours.
        ours: u32,
    },
    /// A claim was refused in a way repeating cannot fix (a revoked credential).
    #[error("claim refused: {0}")]
    Claim(ClientError),
    /// The work directory cannot be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Stopped before registration succeeded.
    #[error("stopped before the runner was registered")]
    Stopped,
}

/// What the agent did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentSummary {
    /// The registration.
    pub runner_id: i64,
    /// Jobs claimed and run.
    pub jobs: u64,
}

/// The runner agent (see the module docs).
pub struct Agent {
    config: AgentConfig,
    executors: Executors,
    stop: Arc<AtomicBool>,
}

/// What the loop's threads tell it.
enum Message {
    Assigned(Box<JobAssignment>),
    Finished(i64),
    ClaimRefused(ClientError),
}

/// What every job thread shares.
struct JobContext {
    client: ProtocolClient,
    config: AgentConfig,
    executors: Executors,
}

impl Agent {
    /// An agent that will run jobs with `executors`.
    pub fn new(config: AgentConfig, executors: Executors) -> Agent {
        Agent {
            config,
            executors,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Setting this flag stops the agent gracefully (see the module docs); signal handlers
    /// set it.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Registers, then claims and runs jobs until stopped (or after one job when ephemeral).
    pub fn run(self) -> Result<AgentSummary, AgentError> {
        let jobs_dir = self.config.work_dir.join("jobs");
        std::fs::create_dir_all(&jobs_dir).map_err(|source| AgentError::Io {
            what: format!("failed to create `{}`", jobs_dir.display()),
            source,
        })?;
        let mut client = ProtocolClient::new(&self.config.server);
        let registration = self.register(&client)?;
        tracing::info!(
            runner_id = registration.runner_id,
            labels = ?registration.labels,
            org = registration.org.as_deref().unwrap_or("(hosted)"),
            "runner registered"
        );
        client.set_credential(registration.credential.clone());
        let context = Arc::new(JobContext {
            client,
            config: self.config.clone(),
            executors: self.executors.clone(),
        });
        let jobs = self.serve(&context)?;
        Ok(AgentSummary {
            runner_id: registration.runner_id,
            jobs,
        })
    }

    fn register(&self, client: &ProtocolClient) -> Result<RunnerRegistration, AgentError> {
        let request = RegisterRunner {
            token: self.config.token.clone(),
            name: self.config.name.clone(),
            labels: self.config.labels.clone(),
            capacity: self.config.capacity.max(1),
            ephemeral: self.config.ephemeral,
            protocol_version: RUNNER_PROTOCOL_VERSION,
        };
        let stop = Arc::clone(&self.stop);
        let backoff = Backoff {
            max: Duration::from_secs(30),
            ..Backoff::default()
        };
        let registration = backoff
            .retry(
                "registering",
                |_| stop.load(Ordering::SeqCst),
                || client.register(&request),
            )
            .map_err(|error| match error {
                _ if self.stop.load(Ordering::SeqCst) => AgentError::Stopped,
                error => AgentError::Register(error),
            })?;
        if registration.protocol_version != RUNNER_PROTOCOL_VERSION {
            return Err(AgentError::ProtocolVersion {
                server: registration.protocol_version,
                ours: RUNNER_PROTOCOL_VERSION,
            });
        }
        Ok(registration)
    }

    /// The claim-and-run loop; returns how many jobs were claimed.
    fn serve(&self, context: &Arc<JobContext>) -> Result<u64, AgentError> {
        let (messages, inbox) = mpsc::channel::<Message>();
        let (permits, permit_inbox) = mpsc::channel::<()>();
        let slots = if self.config.ephemeral {
            1
        } else {
            self.config.capacity.max(1)
        };
        for _ in 0..slots {
            let _ = permits.send(());
        }
        let mut permits = Some(permits);
        // The claimer is detached: while stopping it may sit in a claim for up to the claim
        // wait, and the process need not wait for that.
        spawn_claimer(
            context.client.clone(),
            self.config.claim_wait,
            Arc::clone(&self.stop),
            permit_inbox,
            messages.clone(),
        );

        let mut running: HashMap<i64, Arc<Attempt>> = HashMap::new();
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        let mut claimed = 0u64;
        let mut stopping = false;
        let mut failure = None;
        loop {
            if !stopping && self.stop.load(Ordering::SeqCst) {
                tracing::info!(
                    running = running.len(),
                    "stopping: no more claims, cancelling running jobs"
                );
                stopping = true;
            }
            if stopping {
                permits = None;
                for attempt in running.values() {
                    attempt.cancel.cancel();
                }
                if running.is_empty() {
                    break;
                }
            }
            if self.config.ephemeral && claimed >= 1 && running.is_empty() {
                break;
            }
            match inbox.recv_timeout(TICK) {
                Ok(Message::Assigned(assignment)) => {
                    claimed += 1;
                    let attempt = Arc::new(Attempt::new(CancelHandle::new()));
                    if stopping {
                        attempt.cancel.cancel();
                    }
                    running.insert(assignment.job_id, Arc::clone(&attempt));
                    let context = Arc::clone(context);
                    let messages = messages.clone();
                    let job_id = assignment.job_id;
                    let thread = std::thread::Builder::new()
                        .name(format!("job-{job_id}"))
                        .spawn(move || {
                            // Whatever happens in the job, the loop must hear that it ended, or
                            // it would wait for it forever when stopping.
                            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                run_assignment(&context, &assignment, &attempt)
                            }));
                            if ran.is_err() {
                                tracing::error!(job_id, "the job's thread panicked");
                            }
                            let _ = messages.send(Message::Finished(job_id));
                        });
                    match thread {
                        Ok(thread) => threads.push(thread),
                        Err(error) => {
                            // The job was claimed but cannot run: its lease expires and the
                            // server hands it out again.
                            tracing::error!(%error, job_id, "cannot start a job thread");
                            running.remove(&job_id);
                        }
                    }
                }
                Ok(Message::Finished(job_id)) => {
                    running.remove(&job_id);
                    if let Some(permits) = permits.as_ref().filter(|_| !self.config.ephemeral) {
                        let _ = permits.send(());
                    }
                }
                Ok(Message::ClaimRefused(error)) => {
                    tracing::error!(%error, "the server refuses this runner's claims; stopping");
                    failure = Some(AgentError::Claim(error));
                    stopping = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        drop(permits);
        for thread in threads {
            let _ = thread.join();
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(claimed),
        }
    }
}

/// Starts the thread that claims one job per permit it receives and hands it to the loop.
fn spawn_claimer(
    client: ProtocolClient,
    wait: Duration,
    stop: Arc<AtomicBool>,
    permits: mpsc::Receiver<()>,
    messages: mpsc::Sender<Message>,
) {
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    let claimer = move || {
        let backoff = Backoff {
            max: Duration::from_secs(30),
            ..Backoff::default()
        };
        // Blocks until a slot is free; ends when the loop drops its permits.
        while permits.recv().is_ok() {
            let mut failures = 0;
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match client.claim(wait_ms) {
                    Ok(Some(assignment)) => {
                        tracing::info!(
                            job_id = assignment.job_id,
                            run_id = assignment.run_id,
                            attempt = assignment.attempt,
                            "job claimed"
                        );
                        let job_id = assignment.job_id;
                        if messages
                            .send(Message::Assigned(Box::new(assignment)))
                            .is_err()
                        {
                            // The loop is gone (stopped meanwhile): the lease expires and the
                            // server hands the job to another runner.
                            tracing::warn!(
                                job_id,
                                "claimed a job while exiting; its lease will expire"
                            );
                            return;
                        }
                        break;
                    }
                    Ok(None) => failures = 0,
                    // Only a refused credential is final. Other refusals can pass: the server
                    // answers `conflict` while it still counts a job that just ended against
                    // this runner's capacity.
                    Err(error @ ClientError::Unauthorized(_)) => {
                        let _ = messages.send(Message::ClaimRefused(error));
                        return;
                    }
                    Err(error) => {
                        failures += 1;
                        let pause = backoff.pause(failures);
                        tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "claim failed; retrying");
                        sleep_unless_stopped(pause, &stop);
                    }
                }
            }
        }
    };
    if let Err(error) = std::thread::Builder::new()
        .name("claimer".to_owned())
        .spawn(claimer)
    {
        tracing::error!(%error, "cannot start the claimer thread");
    }
}

fn sleep_unless_stopped(pause: Duration, stop: &AtomicBool) {
    let deadline = std::time::Instant::now() + pause;
    while std::time::Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(TICK.min(pause));
    }
}

/// Runs one claimed job from sandbox to completion (see the module docs, steps 1 to 5).
fn run_assignment(context: &JobContext, assignment: &JobAssignment, attempt: &Arc<Attempt>) {
    let job_id = assignment.job_id;
    let token = assignment.fencing_token;
    let client = &context.client;
    let heartbeat = Heartbeat::start(
        ServerBeat {
            client: client.clone(),
            job_id,
            fencing_token: token,
        },
        Duration::from_millis(assignment.heartbeat_interval_ms),
        Arc::clone(attempt),
    );
    let mut reporter = AgentReporter::start(
        ServerSink {
            client: client.clone(),
            job_id,
        },
        Arc::clone(attempt),
        token,
        ReporterLimits::default(),
    );
    let executor = executor_for(context, assignment);
    let spec = SandboxSpec {
        job_dir: context
            .config
            .work_dir
            .join("jobs")
            .join(format!("{job_id}-{token}")),
        limits: context.config.limits,
        network: context.config.network,
    };
    let options = RunOptions {
        runner_name: context.config.name.clone(),
        // `actions/checkout` fetches the run's commit from the server under this claim.
        source: Some(Arc::new(source::ServerSource::new(
            client.clone(),
            job_id,
            token,
        ))),
        ..context.config.run_options.clone()
    };
    let result = match executor.create(&spec) {
        Ok(sandbox) => {
            let sandbox = SandboxGuard(Some(sandbox));
            let result = match sandbox.0.as_deref() {
                Some(inside) => std::panic::catch_unwind(AssertUnwindSafe(|| {
                    run_job(
                        &assignment.payload,
                        inside,
                        &options,
                        &mut reporter,
                        &attempt.cancel,
                    )
                }))
                .unwrap_or_else(|_| failed("the runner failed while running the job")),
                None => failed("the job's sandbox is gone"),
            };
            sandbox.destroy();
            result
        }
        Err(error) => {
            tracing::error!(%error, job_id, executor = executor.name(), "cannot make the job's sandbox");
            failed(format!("the runner cannot make the job's sandbox: {error}"))
        }
    };
    let stats = reporter.finish();
    tracing::info!(
        job_id,
        conclusion = %result.conclusion,
        lines_sent = stats.lines_sent,
        lines_dropped = stats.lines_dropped,
        "job ended"
    );
    if attempt.is_lost() {
        tracing::warn!(job_id, "the attempt is stale; its result is not sent");
    } else {
        complete(client, job_id, token, &result, attempt);
    }
    heartbeat.stop();
}

/// The executor of the platform the job's `runs-on` names. The assignment does not carry
/// `runs-on`, so with platforms configured the job's labels are read from the viewer API;
/// when that fails the default base root is used (and said).
fn executor_for<'a>(context: &'a JobContext, assignment: &JobAssignment) -> &'a Arc<dyn Executor> {
    if context.executors.platforms.is_empty() {
        return &context.executors.default;
    }
    match context.client.job(assignment.run_id, assignment.job_id) {
        Ok(job) => context.executors.choose(&job.labels),
        Err(error) => {
            tracing::warn!(%error, job_id = assignment.job_id, "cannot read the job's runs-on labels; using the default platform");
            &context.executors.default
        }
    }
}

/// Sends the attempt's result until the server accepts or refuses it.
fn complete(
    client: &ProtocolClient,
    job_id: i64,
    token: i64,
    result: &JobResult,
    attempt: &Attempt,
) {
    let request = CompleteAttempt {
        fencing_token: token,
        conclusion: result.conclusion,
        outputs: result.outputs.clone(),
        message: result.message.clone(),
    };
    let backoff = Backoff {
        max: Duration::from_secs(30),
        ..Backoff::default()
    };
    // No attempt limit: only the server can end this (accept, refuse, or call the token stale
    // to the heartbeat still running meanwhile).
    match backoff.retry(
        "completing the job",
        |_| attempt.is_lost(),
        || client.complete(job_id, &request),
    ) {
        Ok(()) => tracing::info!(job_id, "result reported"),
        Err(ClientError::StaleToken(message)) => {
            tracing::warn!(job_id, %message, "the server no longer counts this attempt; result dropped")
        }
        Err(error) => tracing::error!(job_id, %error, "the server refused the job's result"),
    }
}

fn failed(message: impl Into<String>) -> JobResult {
    JobResult {
        conclusion: Conclusion::Failure,
        outputs: IndexMap::new(),
        message: Some(message.into()),
    }
}

/// Destroys the sandbox when dropped, so no way out of a job leaves one behind.
struct SandboxGuard(Option<Box<dyn Sandbox>>);

impl SandboxGuard {
    fn destroy(mut self) {
        self.destroy_now();
    }

    fn destroy_now(&mut self) {
        if let Some(sandbox) = self.0.take()
            && let Err(error) = sandbox.destroy()
        {
            tracing::error!(%error, "cannot destroy the job's sandbox");
        }
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        self.destroy_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::HostExecutor;

    #[test]
    fn executors_follow_the_first_platform_the_job_names() {
        let default: Arc<dyn Executor> = Arc::new(HostExecutor::new());
        let jammy: Arc<dyn Executor> = Arc::new(HostExecutor::new());
        let cuda: Arc<dyn Executor> = Arc::new(HostExecutor::new());
        let executors = Executors::new(Arc::clone(&default))
            .with_platform(
                "ubuntu-22.04=/roots/jammy".parse().unwrap(),
                Arc::clone(&jammy),
            )
            .with_platform("gpu=/roots/cuda".parse().unwrap(), Arc::clone(&cuda));
        let chosen = |labels: &[&str]| {
            let labels: Vec<String> = labels.iter().map(|label| label.to_string()).collect();
            Arc::clone(executors.choose(&labels))
        };
        assert!(Arc::ptr_eq(&chosen(&["ubuntu-latest"]), &default));
        assert!(Arc::ptr_eq(&chosen(&["UBUNTU-22.04"]), &jammy));
        assert!(Arc::ptr_eq(&chosen(&["linux", "gpu"]), &cuda));
        assert!(Arc::ptr_eq(&chosen(&["gpu", "ubuntu-22.04"]), &jammy));
        assert!(Arc::ptr_eq(&chosen(&[]), &default));
    }

    #[test]
    fn a_lost_attempt_is_cancelled() {
        let attempt = Attempt::new(CancelHandle::new());
        assert!(!attempt.is_lost() && !attempt.cancel.is_cancelled());
        attempt.mark_lost();
        assert!(attempt.is_lost() && attempt.cancel.is_cancelled());
    }
}
