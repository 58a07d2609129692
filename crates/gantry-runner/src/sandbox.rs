//! Where a job's processes run: the [`Executor`] makes one fresh [`Sandbox`] per job and the
//! step runner starts every process of the job through it.
//!
//! The interface is a command wrapper rather than a process API: a sandbox turns "run this
//! program with exactly this environment in this directory" into a [`std::process::Command`]
//! that does so inside it (for the namespace executor, `bwrap … -- program`). The step runner
//! keeps ownership of pipes, exit codes and timeouts, and the sandbox keeps ownership of what
//! isolates and limits the job: namespaces, mounts, the cgroup, and everything left behind.
//!
//! Every sandbox has one directory tree on the host, [`JobPaths`], that holds what the job may
//! write and keep between its steps (the workspace, the temp and tool-cache directories, the
//! file-command files such as `GITHUB_ENV`). The same tree appears inside the sandbox under
//! fixed paths, so the step runner writes a file on the host side and names it to the job by
//! its inside path.

mod host;

pub use host::{HostExecutor, HostSandbox};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod bench;
mod bwrap;
mod cgroup;

pub use bench::{BenchReport, bench_create_destroy};
pub use bwrap::{BaseRoot, BubblewrapConfig, BubblewrapExecutor, BubblewrapSandbox, JobUser};
pub use cgroup::CgroupConfig;

/// Resource limits of one job; `None` leaves a resource unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceLimits {
    /// Memory (resident plus swap where the kernel accounts it), in bytes.
    pub memory_bytes: Option<u64>,
    /// Number of processes and threads alive at once.
    pub max_pids: Option<u64>,
    /// CPU time per wall-clock second, in thousandths of a core (1000 = one full core).
    pub cpu_millicores: Option<u64>,
}

/// What a job's sandbox is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// An empty host directory owned by this job; the sandbox lays out [`JobPaths`] in it and
    /// removes it when destroyed.
    pub job_dir: PathBuf,
    /// The job's limits.
    pub limits: ResourceLimits,
    /// Whether the job may reach the network (off unless the runner is configured so).
    pub network: bool,
}

/// One directory of the job, as the host and as the job see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDir {
    /// Where it is on the host (the step runner reads and writes here).
    pub host: PathBuf,
    /// Where the job's processes see it.
    pub inside: PathBuf,
}

impl SharedDir {
    /// The inside path of `relative` under this directory.
    pub fn inside_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.inside.join(relative)
    }

    /// The host path of `relative` under this directory.
    pub fn host_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.host.join(relative)
    }
}

/// The writable directories a job keeps between its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaths {
    /// `GITHUB_WORKSPACE`: where the repository is checked out and steps start.
    pub workspace: SharedDir,
    /// `RUNNER_TEMP`: emptied with the sandbox.
    pub temp: SharedDir,
    /// `RUNNER_TOOL_CACHE`.
    pub tool_cache: SharedDir,
    /// Where the step runner puts each step's file-command files (`GITHUB_ENV`, `GITHUB_OUTPUT`,
    /// `GITHUB_PATH`, `GITHUB_STEP_SUMMARY`) and its script files.
    pub runner_files: SharedDir,
}

impl JobPaths {
    /// Creates the job's directories under `job_dir` on the host (`workspace`, `temp`,
    /// `tool-cache`, `runner-files`) and names them as the job sees them under `inside_root`:
    /// the namespace executor mounts `job_dir` at a fixed place, the host executor passes
    /// `job_dir` itself.
    pub fn lay_out(job_dir: &Path, inside_root: &Path) -> Result<JobPaths, SandboxError> {
        let shared = |name: &str| -> Result<SharedDir, SandboxError> {
            let host = job_dir.join(name);
            std::fs::create_dir_all(&host).map_err(|source| SandboxError::Io {
                what: format!("failed to create `{}`", host.display()),
                source,
            })?;
            Ok(SharedDir {
                host,
                inside: inside_root.join(name),
            })
        };
        Ok(JobPaths {
            workspace: shared("workspace")?,
            temp: shared("temp")?,
            tool_cache: shared("tool-cache")?,
            runner_files: shared("runner-files")?,
        })
    }
}

/// A process to start inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The program and its arguments; the program is looked up on `PATH` of `env` inside.
    pub argv: Vec<String>,
    /// The whole environment of the process: nothing else is inherited.
    pub env: BTreeMap<String, String>,
    /// The working directory, an inside path.
    pub cwd: PathBuf,
}

/// How a sandbox could not be made, used or removed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The host lacks what this executor needs (a tool, a kernel feature, a permission).
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),
    /// A host operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path or tool.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A request that cannot be honoured (for example a working directory outside the
    /// job's directories).
    #[error("{0}")]
    Invalid(String),
}

/// Signals the step runner sends to everything running in a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ask politely (cancellation's first step).
    Terminate,
    /// Stop now (after the grace period, or at a timeout).
    Kill,
}

/// Makes sandboxes. One executor serves the whole runner; it is chosen at start (the
/// namespace executor by default, the host executor only behind `--unsafe-host-executor`).
pub trait Executor: Send + Sync {
    /// A short name for logs and errors, e.g. `bubblewrap` or `host`.
    fn name(&self) -> &'static str;

    /// Makes a fresh sandbox for one job: its directories laid out under `spec.job_dir`, its
    /// limits in force before any process starts.
    fn create(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError>;
}

/// One job's isolated environment. Dropping it without [`Sandbox::destroy`] is a bug that
/// leaves things behind; implementations also try their best in `Drop`.
pub trait Sandbox: Send + Sync {
    /// The job's directories.
    fn paths(&self) -> &JobPaths;

    /// A command that starts `process` inside the sandbox. Its standard streams are the
    /// caller's to set; it starts in a new session, so signals to the runner do not reach it.
    fn command(&self, process: &ProcessSpec) -> Result<Command, SandboxError>;

    /// Sends `signal` to every process still running in the sandbox, whoever started it
    /// (daemons the job forked off included).
    fn signal_all(&self, signal: StopSignal) -> Result<(), SandboxError>;

    /// Whether the job was stopped by the kernel for exceeding its memory limit since the last
    /// call (so a killed step can say why).
    fn take_out_of_memory(&self) -> bool;

    /// Kills what is left and removes everything the sandbox made: processes, mounts, cgroups
    /// and the job directory.
    fn destroy(self: Box<Self>) -> Result<(), SandboxError>;
}
