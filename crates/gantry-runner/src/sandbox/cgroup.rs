//! One control group per job: where its memory, process count and CPU time are limited, how
//! every process it left behind is found and signalled, and how the kernel tells that it ran out
//! of memory.
//!
//! Both kernel interfaces are handled. Under cgroup v1 each controller is its own hierarchy
//! (`/sys/fs/cgroup/memory`, `pids`, `cpu`, `freezer`), so a job has one directory per
//! hierarchy and each of its processes is entered into all of them; under cgroup v2 (a single
//! unified hierarchy, recognised by `cgroup.controllers` at the mount root) a job has one
//! directory. Job groups live under a parent group (`gantry` by default) directly below the
//! mount root, so they never depend on where the runner itself was started.
//!
//! Processes are put into the group by the command that starts them (see
//! [`JobCgroup::enter_script`]): it writes its own pid into every `cgroup.procs` before it
//! `exec`s the sandbox, so nothing the job runs is ever outside the group, without any code
//! running between `fork` and `exec` in the runner.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{ResourceLimits, SandboxError, StopSignal};

/// Where job control groups are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupConfig {
    /// Where the cgroup file systems are mounted (`/sys/fs/cgroup`).
    pub mount_root: PathBuf,
    /// The parent group of every job group, made below the mount root (of each v1 hierarchy).
    pub parent: String,
}

impl Default for CgroupConfig {
    fn default() -> CgroupConfig {
        CgroupConfig {
            mount_root: PathBuf::from("/sys/fs/cgroup"),
            parent: "gantry".to_owned(),
        }
    }
}

/// The CPU bandwidth period: quotas are expressed per 100 ms, the kernel's default.
const CPU_PERIOD_MICROS: u64 = 100_000;
/// The smallest quota the kernel accepts per period.
const CPU_MIN_QUOTA_MICROS: u64 = 1_000;
/// How long a group may take to empty after everything in it was killed.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long freezing may take before signals are sent anyway.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// The cgroup layout of this host, found once when the executor starts.
#[derive(Debug, Clone)]
pub(crate) enum CgroupHost {
    /// Separate hierarchies; the parent group's directory in each.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
        /// The freezer lets a signal reach every process at once, so a fork bomb cannot
        /// outrun it; without it, signalling repeats until the group is empty.
        freezer: Option<PathBuf>,
    },
    /// The unified hierarchy; the parent group's directory.
    V2 { parent: PathBuf },
}

impl CgroupHost {
    /// Finds the cgroup version, checks the controllers a job needs and makes the parent
    /// groups.
    pub(crate) fn detect(config: &CgroupConfig) -> Result<CgroupHost, SandboxError> {
        let root = &config.mount_root;
        let controllers_file = root.join("cgroup.controllers");
        if controllers_file.exists() {
            let controllers = read_file(&controllers_file)?;
            for needed in ["memory", "pids", "cpu"] {
                if !controllers.split_whitespace().any(|c| c == needed) {
                    return Err(SandboxError::Unavailable(format!(
                        "the cgroup v2 controller `{needed}` is not available in `{}`",
                        controllers_file.display()
                    )));
                }
            }
            let parent = root.join(&config.parent);
            make_dir(&parent)?;
            // Job groups can only use the controllers their parent hands down.
            for group in [root.as_path(), parent.as_path()] {
                write_file(&group.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
            }
            debug!(parent = %parent.display(), "using cgroup v2");
            let host = CgroupHost::V2 { parent };
            host.reap_stale();
            return Ok(host);
        }
        let hierarchy = |name: &str| -> Result<PathBuf, SandboxError> {
            let mount = root.join(name);
            if !mount.join("cgroup.procs").exists() {
                return Err(SandboxError::Unavailable(format!(
                    "neither cgroup v2 (`{}`) nor the cgroup v1 `{name}` hierarchy (`{}`) is mounted",
                    controllers_file.display(),
                    mount.display()
                )));
            }
            let parent = mount.join(&config.parent);
            make_dir(&parent)?;
            Ok(parent)
        };
        let memory = hierarchy("memory")?;
        let pids = hierarchy("pids")?;
        let cpu = hierarchy("cpu")?;
        let freezer = match hierarchy("freezer") {
            Ok(freezer) => Some(freezer),
            Err(error) => {
                warn!(%error, "no cgroup v1 freezer: signals will be repeated until the job is gone");
                None
            }
        };
        debug!(memory = %memory.display(), "using cgroup v1");
        let host = CgroupHost::V1 {
            memory,
            pids,
            cpu,
            freezer,
        };
        host.reap_stale();
        Ok(host)
    }

    /// The parent group's directory in every hierarchy.
    fn parents(&self) -> Vec<&Path> {
        match self {
            CgroupHost::V1 {
                memory,
                pids,
                cpu,
                freezer,
            } => {
                let mut parents = vec![memory.as_path(), pids.as_path(), cpu.as_path()];
                parents.extend(freezer.as_deref());
                parents
            }
            CgroupHost::V2 { parent } => vec![parent.as_path()],
        }
    }

    /// Removes the empty job groups of runners that are gone (a runner that was killed
    /// cannot clean up; its jobs died with it through `--die-with-parent`). A group is
    /// named after its runner's pid, so groups of a live runner sharing the parent are left
    /// alone, and the kernel refuses to remove a group that still holds processes.
    fn reap_stale(&self) {
        for parent in self.parents() {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(runner_pid) = name
                    .to_str()
                    .and_then(|name| name.strip_prefix("job-"))
                    .and_then(|rest| rest.split_once('-'))
                    .and_then(|(pid, _)| pid.parse::<u32>().ok())
                else {
                    continue;
                };
                if Path::new("/proc").join(runner_pid.to_string()).exists() {
                    continue;
                }
                match std::fs::remove_dir(entry.path()) {
                    Ok(()) => debug!(group = %entry.path().display(), "removed stale job cgroup"),
                    Err(error) => {
                        warn!(group = %entry.path().display(), %error, "cannot remove stale job cgroup")
                    }
                }
            }
        }
    }

    /// Makes a new group for one job with `limits` in force. Processes running `supervisor`
    /// (the sandbox's own processes) are spared polite signals: see [`JobCgroup::signal_all`].
    pub(crate) fn create_job(
        &self,
        limits: &ResourceLimits,
        supervisor: &Path,
    ) -> Result<JobCgroup, SandboxError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        // A group left by an earlier runner with the same pid is skipped, not reused: it may
        // still hold processes.
        for _ in 0..1000 {
            let name = format!(
                "job-{}-{}",
                std::process::id(),
                NEXT_ID.fetch_add(1, Ordering::Relaxed)
            );
            match self.try_create_job(&name, limits, supervisor) {
                Ok(Some(group)) => return Ok(group),
                Ok(None) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(SandboxError::Unavailable(
            "could not find a free job cgroup name".to_owned(),
        ))
    }

    fn try_create_job(
        &self,
        name: &str,
        limits: &ResourceLimits,
        supervisor: &Path,
    ) -> Result<Option<JobCgroup>, SandboxError> {
        let mut group = match self {
            CgroupHost::V1 {
                memory,
                pids,
                cpu,
                freezer,
            } => JobCgroup {
                layout: Layout::V1 {
                    memory: memory.join(name),
                    pids: pids.join(name),
                    cpu: cpu.join(name),
                    freezer: freezer.as_ref().map(|f| f.join(name)),
                },
                made: Vec::new(),
                oom_kills_seen: AtomicU64::new(0),
                signalling: Mutex::new(()),
                supervisor: supervisor.to_owned(),
                removed: false,
            },
            CgroupHost::V2 { parent } => JobCgroup {
                layout: Layout::V2 {
                    dir: parent.join(name),
                },
                made: Vec::new(),
                oom_kills_seen: AtomicU64::new(0),
                signalling: Mutex::new(()),
                supervisor: supervisor.to_owned(),
                removed: false,
            },
        };
        for dir in group.layout.dirs() {
            match std::fs::create_dir(&dir) {
                Ok(()) => group.made.push(dir),
                Err(error) if error.kind() == ErrorKind::AlreadyExists && group.made.is_empty() => {
                    warn!(dir = %dir.display(), "stale job cgroup exists, trying another name");
                    return Ok(None);
                }
                Err(source) => {
                    let error = SandboxError::Io {
                        what: format!("failed to create `{}`", dir.display()),
                        source,
                    };
                    // Removing what was made is best effort: the first error is the one to report.
                    let _ = group.remove();
                    return Err(error);
                }
            }
        }
        if let Err(error) = group.set_limits(limits) {
            let _ = group.remove();
            return Err(error);
        }
        Ok(Some(group))
    }
}

/// Where one job's group is.
#[derive(Debug)]
enum Layout {
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
        freezer: Option<PathBuf>,
    },
    V2 {
        dir: PathBuf,
    },
}

impl Layout {
    fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1 {
                memory,
                pids,
                cpu,
                freezer,
            } => {
                let mut dirs = vec![memory.clone(), pids.clone(), cpu.clone()];
                dirs.extend(freezer.clone());
                dirs
            }
            Layout::V2 { dir } => vec![dir.clone()],
        }
    }

    /// The control files to write, in order, to put `limits` in force.
    fn limit_writes(&self, limits: &ResourceLimits) -> Vec<LimitWrite> {
        let mut writes = Vec::new();
        let mut write = |file: PathBuf, value: String, only_if_present: bool| {
            writes.push(LimitWrite {
                file,
                value,
                only_if_present,
            });
        };
        match self {
            Layout::V1 {
                memory, pids, cpu, ..
            } => {
                if let Some(bytes) = limits.memory_bytes {
                    write(
                        memory.join("memory.limit_in_bytes"),
                        bytes.to_string(),
                        false,
                    );
                    // Memory plus swap may not be set below memory alone, so it comes second.
                    write(
                        memory.join("memory.memsw.limit_in_bytes"),
                        bytes.to_string(),
                        true,
                    );
                }
                if let Some(max) = limits.max_pids {
                    write(pids.join("pids.max"), max.to_string(), false);
                }
                if let Some(millicores) = limits.cpu_millicores {
                    write(
                        cpu.join("cpu.cfs_period_us"),
                        CPU_PERIOD_MICROS.to_string(),
                        false,
                    );
                    write(
                        cpu.join("cpu.cfs_quota_us"),
                        cpu_quota_micros(millicores).to_string(),
                        false,
                    );
                }
            }
            Layout::V2 { dir } => {
                if let Some(bytes) = limits.memory_bytes {
                    write(dir.join("memory.max"), bytes.to_string(), false);
                    // No swap on top of the memory limit, so the limit covers both.
                    write(dir.join("memory.swap.max"), "0".to_owned(), true);
                }
                if let Some(max) = limits.max_pids {
                    write(dir.join("pids.max"), max.to_string(), false);
                }
                if let Some(millicores) = limits.cpu_millicores {
                    write(
                        dir.join("cpu.max"),
                        format!("{} {CPU_PERIOD_MICROS}", cpu_quota_micros(millicores)),
                        false,
                    );
                }
            }
        }
        writes
    }

    /// The directory whose `cgroup.procs` lists every process of the job.
    fn procs_dir(&self) -> &Path {
        match self {
            Layout::V1 { pids, .. } => pids,
            Layout::V2 { dir } => dir,
        }
    }
}

/// One write of a control file that sets a limit.
#[derive(Debug, PartialEq, Eq)]
struct LimitWrite {
    file: PathBuf,
    value: String,
    /// Skipped when the file does not exist (swap accounting is optional in the kernel).
    only_if_present: bool,
}

/// One job's control group (a directory per v1 hierarchy, or one v2 directory).
#[derive(Debug)]
pub(crate) struct JobCgroup {
    layout: Layout,
    /// The directories actually made, removed in reverse order.
    made: Vec<PathBuf>,
    /// The kernel's OOM-kill counter when last asked.
    oom_kills_seen: AtomicU64,
    /// Freezing and thawing must not interleave between two callers.
    signalling: Mutex<()>,
    /// The program of the sandbox's own processes (see [`JobCgroup::signal_all`]).
    supervisor: PathBuf,
    removed: bool,
}

impl JobCgroup {
    /// Every directory of the group (for tests and logs).
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        self.layout.dirs()
    }

    /// The `cgroup.procs` files a process writes its pid into to join the group.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.layout
            .dirs()
            .into_iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    /// A `sh -c` script that writes its own pid into each file given as an argument up to
    /// `--`, then `exec`s the rest of its arguments: the process, and so everything it starts,
    /// is in the group before the job's code runs. It exits with 125 if joining fails.
    pub(crate) fn enter_script() -> &'static str {
        r#"pid=$$
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  echo "$pid" > "$1" || { echo "gantry sandbox: failed to join cgroup $1" >&2; exit 125; }
  shift
done
shift
exec "$@""#
    }

    fn set_limits(&self, limits: &ResourceLimits) -> Result<(), SandboxError> {
        for write in self.layout.limit_writes(limits) {
            // Swap limits exist only where the kernel accounts swap.
            if write.only_if_present && !write.file.exists() {
                debug!(path = %write.file.display(), "no swap accounting, memory limit excludes swap");
                continue;
            }
            write_file(&write.file, &write.value)?;
        }
        Ok(())
    }

    /// The pids of every process in the group.
    pub(crate) fn pids(&self) -> Result<Vec<i32>, SandboxError> {
        let path = self.layout.procs_dir().join("cgroup.procs");
        let text = read_file(&path)?;
        Ok(text
            .lines()
            .filter_map(|line| line.trim().parse::<i32>().ok())
            .collect())
    }

    /// Sends `signal` to every process in the group. A polite signal spares the sandbox's own
    /// processes (bwrap): were they to die first, the kernel would kill the job's pid
    /// namespace at once, and the job's processes would get no time to end cleanly. They end
    /// by themselves once the job's main process has.
    pub(crate) fn signal_all(&self, signal: StopSignal) -> Result<(), SandboxError> {
        let _serialised = self
            .signalling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (StopSignal::Kill, Layout::V2 { dir }) = (signal, &self.layout) {
            let kill = dir.join("cgroup.kill");
            if kill.exists() {
                return write_file(&kill, "1");
            }
        }
        let Some((file, frozen, thawed)) = self.freeze_file() else {
            // Without a freezer, new processes may appear while signalling: repeat until a
            // pass finds nobody (bounded, as the pids limit bounds the job). A polite signal is
            // sent once, since its receivers may take their time to end.
            for _ in 0..100 {
                if self.signal_listed(signal)? == 0 || signal == StopSignal::Terminate {
                    break;
                }
            }
            return Ok(());
        };
        write_file(&file, frozen)?;
        self.wait_frozen();
        let signalled = self.signal_listed(signal);
        // Thawing must happen whatever signalling did: a frozen job never ends.
        write_file(&file, thawed)?;
        signalled.map(|_| ())
    }

    /// The freezer's control file and the values that freeze and thaw.
    fn freeze_file(&self) -> Option<(PathBuf, &'static str, &'static str)> {
        match &self.layout {
            Layout::V1 { freezer, .. } => freezer
                .as_ref()
                .map(|dir| (dir.join("freezer.state"), "FROZEN", "THAWED")),
            Layout::V2 { dir } => {
                let file = dir.join("cgroup.freeze");
                file.exists().then_some((file, "1", "0"))
            }
        }
    }

    fn wait_frozen(&self) {
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        loop {
            let frozen = match &self.layout {
                Layout::V1 { freezer, .. } => freezer.as_ref().is_none_or(|dir| {
                    read_file(&dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
                }),
                Layout::V2 { dir } => read_file(&dir.join("cgroup.events"))
                    .is_ok_and(|events| counter(&events, "frozen") == Some(1)),
            };
            if frozen {
                return;
            }
            if Instant::now() >= deadline {
                warn!(group = %self.layout.procs_dir().display(), "job cgroup did not freeze in time, signalling anyway");
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Signals every listed process; returns how many were found.
    fn signal_listed(&self, signal: StopSignal) -> Result<usize, SandboxError> {
        let kernel_signal = match signal {
            StopSignal::Terminate => rustix::process::Signal::TERM,
            StopSignal::Kill => rustix::process::Signal::KILL,
        };
        let pids = self.pids()?;
        for &raw in &pids {
            let Some(pid) = rustix::process::Pid::from_raw(raw) else {
                continue;
            };
            if signal == StopSignal::Terminate && self.is_supervisor(raw) {
                continue;
            }
            match rustix::process::kill_process(pid, kernel_signal) {
                // The process ended between listing and signalling.
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(error) => {
                    return Err(SandboxError::Io {
                        what: format!("failed to signal process {raw} of the job"),
                        source: error.into(),
                    });
                }
            }
        }
        Ok(pids.len())
    }

    /// Whether process `pid` runs the sandbox's own program.
    fn is_supervisor(&self, pid: i32) -> bool {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == self.supervisor)
    }

    /// Whether the kernel killed a process of the job for lack of memory since the last call.
    pub(crate) fn take_out_of_memory(&self) -> bool {
        let (path, key) = match &self.layout {
            Layout::V1 { memory, .. } => (memory.join("memory.oom_control"), "oom_kill"),
            Layout::V2 { dir } => (dir.join("memory.events"), "oom_kill"),
        };
        let kills = match read_file(&path) {
            Ok(text) => counter(&text, key).unwrap_or(0),
            Err(error) => {
                warn!(%error, "cannot read the job's out-of-memory counter");
                return false;
            }
        };
        let before = self.oom_kills_seen.swap(kills, Ordering::Relaxed);
        kills > before
    }

    /// Kills everything in the group, waits until it is empty and removes its directories.
    pub(crate) fn destroy(&mut self) -> Result<(), SandboxError> {
        if self.removed {
            return Ok(());
        }
        // The usual case is a job whose processes all ended: no freezing needed.
        if !self.pids()?.is_empty() {
            self.signal_all(StopSignal::Kill)?;
        }
        let deadline = Instant::now() + EMPTY_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        loop {
            let left = self.pids()?;
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(SandboxError::Io {
                    what: format!(
                        "job cgroup `{}` still holds processes {left:?} after they were killed",
                        self.layout.procs_dir().display()
                    ),
                    source: std::io::Error::from(ErrorKind::TimedOut),
                });
            }
            // Killing again covers processes forked while the first kill was on its way.
            self.signal_all(StopSignal::Kill)?;
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.remove()
    }

    /// Removes the group's directories (which must be empty of processes).
    fn remove(&mut self) -> Result<(), SandboxError> {
        let mut first_error = None;
        while let Some(dir) = self.made.pop() {
            if let Err(error) = remove_group_dir(&dir) {
                warn!(dir = %dir.display(), %error, "failed to remove job cgroup");
                first_error.get_or_insert(error);
            }
        }
        self.removed = true;
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for JobCgroup {
    fn drop(&mut self) {
        if !self.removed
            && let Err(error) = self.destroy()
        {
            warn!(%error, "failed to remove job cgroup on drop");
        }
    }
}

/// Removes one cgroup directory; a process that just exited may keep it busy for a moment.
fn remove_group_dir(dir: &Path) -> Result<(), SandboxError> {
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) if error.raw_os_error() == Some(16) && Instant::now() < deadline => {
                // EBUSY: an exiting process has not been released yet.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(source) => {
                return Err(SandboxError::Io {
                    what: format!("failed to remove `{}`", dir.display()),
                    source,
                });
            }
        }
    }
}

/// The CFS quota for `millicores` per period, at least the kernel's minimum.
fn cpu_quota_micros(millicores: u64) -> u64 {
    (millicores.saturating_mul(CPU_PERIOD_MICROS) / 1000).max(CPU_MIN_QUOTA_MICROS)
}

/// The value of `key` in a `key value` per line file (`memory.events`, `memory.oom_control`).
fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

fn make_dir(dir: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
        what: format!("failed to create `{}`", dir.display()),
        source,
    })
}

fn write_file(path: &Path, value: &str) -> Result<(), SandboxError> {
    std::fs::write(path, value).map_err(|source| SandboxError::Io {
        what: format!("failed to write `{value}` to `{}`", path.display()),
        source,
    })
}

fn read_file(path: &Path) -> Result<String, SandboxError> {
    std::fs::read_to_string(path).map_err(|source| SandboxError::Io {
        what: format!("failed to read `{}`", path.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_is_per_period_and_never_below_the_kernel_minimum() {
        assert_eq!(cpu_quota_micros(1000), 100_000);
        assert_eq!(cpu_quota_micros(2500), 250_000);
        assert_eq!(cpu_quota_micros(1), CPU_MIN_QUOTA_MICROS);
    }

    fn writes(layout: &Layout, limits: &ResourceLimits) -> Vec<(String, String, bool)> {
        layout
            .limit_writes(limits)
            .into_iter()
            .map(|w| (w.file.display().to_string(), w.value, w.only_if_present))
            .collect()
    }

    fn all_limits() -> ResourceLimits {
        ResourceLimits {
            memory_bytes: Some(256 << 20),
            max_pids: Some(64),
            cpu_millicores: Some(1500),
        }
    }

    #[test]
    fn v1_limits_go_to_each_hierarchy_with_swap_after_memory() {
        let layout = Layout::V1 {
            memory: PathBuf::from("/cg/memory/gantry/j"),
            pids: PathBuf::from("/cg/pids/gantry/j"),
            cpu: PathBuf::from("/cg/cpu/gantry/j"),
            freezer: None,
        };
        let s =
            |file: &str, value: &str, optional: bool| (file.to_owned(), value.to_owned(), optional);
        assert_eq!(
            writes(&layout, &all_limits()),
            [
                s(
                    "/cg/memory/gantry/j/memory.limit_in_bytes",
                    "268435456",
                    false
                ),
                s(
                    "/cg/memory/gantry/j/memory.memsw.limit_in_bytes",
                    "268435456",
                    true
                ),
                s("/cg/pids/gantry/j/pids.max", "64", false),
                s("/cg/cpu/gantry/j/cpu.cfs_period_us", "100000", false),
                s("/cg/cpu/gantry/j/cpu.cfs_quota_us", "150000", false),
            ]
        );
        assert!(writes(&layout, &ResourceLimits::default()).is_empty());
    }

    #[test]
    fn v2_limits_go_to_one_directory_without_swap() {
        let layout = Layout::V2 {
            dir: PathBuf::from("/cg/gantry/j"),
        };
        let s =
            |file: &str, value: &str, optional: bool| (file.to_owned(), value.to_owned(), optional);
        assert_eq!(
            writes(&layout, &all_limits()),
            [
                s("/cg/gantry/j/memory.max", "268435456", false),
                s("/cg/gantry/j/memory.swap.max", "0", true),
                s("/cg/gantry/j/pids.max", "64", false),
                s("/cg/gantry/j/cpu.max", "150000 100000", false),
            ]
        );
    }

    #[test]
    fn v2_is_recognised_by_its_controllers_file() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let config = CgroupConfig {
            mount_root: root.path().to_owned(),
            parent: "gantry".to_owned(),
        };
        let host = CgroupHost::detect(&config).unwrap();
        assert!(
            matches!(&host, CgroupHost::V2 { parent } if parent == &root.path().join("gantry"))
        );
        // The parent hands the job groups their controllers.
        assert_eq!(
            std::fs::read_to_string(root.path().join("gantry/cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );

        std::fs::write(root.path().join("cgroup.controllers"), "cpu io\n").unwrap();
        let error = CgroupHost::detect(&config).unwrap_err();
        assert!(error.to_string().contains("`memory`"), "{error}");
    }

    #[test]
    fn counters_are_read_by_key() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(counter(v1, "oom_kill"), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(v2, "oom_kill"), Some(1));
        assert_eq!(counter(v2, "missing"), None);
    }
}
