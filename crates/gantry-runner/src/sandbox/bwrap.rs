//! The namespace executor: every process of a job runs under bubblewrap (`bwrap`) in new user,
//! pid, mount, ipc, uts and (unless the job may use the network) net namespaces, as an
//! unprivileged user without capabilities, on a read-only base root, inside the job's cgroup.
//!
//! What a job sees: the base root's `/usr` (with the `/bin`, `/lib`, `/lib64`, `/sbin` links or
//! directories beside it) read-only; an allowlist of `/etc` entries (never the host's whole
//! `/etc`, and never `/etc/ssl/private`) plus a generated `passwd`, `group`, `hostname` and
//! `hosts` that know only `root`, the job user and `nobody`; a fresh `/proc` of its own pid
//! namespace; a minimal `/dev`; writable tmpfs at `/tmp` and at the job user's home; and the job
//! directory, read-write, at a fixed inside path. Nothing else of the host exists inside: not
//! `/root`, `/home`, `/work`, `/sys`, the runner's configuration or other jobs' directories.
//!
//! A process's environment is exactly [`ProcessSpec::env`] plus `PWD`, which bwrap sets to the
//! working directory as a shell would. The host-side `sh` and `bwrap` get an empty environment:
//! the sandbox's pid 1 is a `bwrap`, and the job could read its initial environment.
//!
//! Each [`Sandbox::command`] is its own `bwrap` invocation, so a step's processes share its
//! namespaces, and steps share the job directory and the cgroup. A process that outlives its
//! step's main process is ended with the step's pid namespace.
//!
//! `--die-with-parent` ties the sandbox to the *thread* that spawned the command (the kernel's
//! parent-death signal follows the spawning thread), so the step runner must spawn from a
//! thread that lives as long as the step.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::{debug, warn};

use super::cgroup::{CgroupConfig, CgroupHost, JobCgroup};
use super::{
    Executor, JobPaths, ProcessSpec, ResourceLimits, Sandbox, SandboxError, SandboxSpec, StopSignal,
};

/// What the read-only base of every sandbox is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRoot {
    /// The host's own `/usr` and the top-level links into it, with the host `/etc` entries
    /// listed in [`BubblewrapConfig::host_etc`].
    HostUsr,
    /// A root file system directory (an unpacked image): its `/usr`, top-level links and its
    /// whole `/etc` (it is not the host's), all read-only.
    Directory(PathBuf),
}

/// The user every job process runs as inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUser {
    /// The login name (`runner`, as on GitHub's hosted runners).
    pub name: String,
    /// The user id inside.
    pub uid: u32,
    /// The group id inside.
    pub gid: u32,
    /// `HOME`, a writable tmpfs emptied with each process's sandbox.
    pub home: PathBuf,
}

/// How the bubblewrap executor builds sandboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BubblewrapConfig {
    /// The `bwrap` program.
    pub bwrap: PathBuf,
    /// What the read-only base root is made of.
    pub base_root: BaseRoot,
    /// The host `/etc` entries a job may read under [`BaseRoot::HostUsr`], relative to `/etc`;
    /// entries missing on the host are skipped.
    pub host_etc: Vec<PathBuf>,
    /// The user jobs run as.
    pub user: JobUser,
    /// Where the job directory appears inside (the `inside_root` of [`JobPaths::lay_out`]).
    pub job_dir_inside: PathBuf,
    /// The host name jobs see.
    pub hostname: String,
    /// Where job cgroups are made.
    pub cgroups: CgroupConfig,
}

impl Default for BubblewrapConfig {
    fn default() -> BubblewrapConfig {
        BubblewrapConfig {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            base_root: BaseRoot::HostUsr,
            // Name resolution, TLS roots, the dynamic linker's cache, time zone and the
            // `alternatives` links tools are found through: what programs read, nothing that
            // configures or authenticates the host. `/etc/ssl/private` is left out on purpose.
            host_etc: [
                "resolv.conf",
                "nsswitch.conf",
                "host.conf",
                "gai.conf",
                "ssl/certs",
                "ssl/openssl.cnf",
                "ca-certificates",
                "ca-certificates.conf",
                "alternatives",
                "ld.so.cache",
                "ld.so.conf",
                "ld.so.conf.d",
                "localtime",
                "timezone",
                "protocols",
                "services",
                "mime.types",
                "os-release",
                "debian_version",
                "bash.bashrc",
                "profile",
                "inputrc",
                "locale.alias",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            user: JobUser {
                name: "runner".to_owned(),
                uid: 1001,
                gid: 1001,
                home: PathBuf::from("/home/runner"),
            },
            job_dir_inside: PathBuf::from("/home/runner/work/_job"),
            hostname: "gantry".to_owned(),
            cgroups: CgroupConfig::default(),
        }
    }
}

/// What every sandbox of one executor shares.
#[derive(Debug)]
struct Shared {
    config: BubblewrapConfig,
    cgroups: CgroupHost,
    /// The `bwrap` program as the kernel names it in `/proc/<pid>/exe` (links resolved).
    bwrap_exe: PathBuf,
    /// The `bwrap` arguments every process gets: namespaces, user, base root, `/proc`, `/dev`
    /// and the tmpfs mounts.
    base_args: Vec<OsString>,
    /// The `/etc` jobs see, kept as long as a sandbox may bind it.
    etc: SandboxEtc,
}

/// The namespace executor (see the module docs).
#[derive(Debug, Clone)]
pub struct BubblewrapExecutor {
    shared: Arc<Shared>,
}

impl BubblewrapExecutor {
    /// Checks that bubblewrap works here (installed, user namespaces allowed), finds the cgroup
    /// layout and prepares what every sandbox shares.
    pub fn new(config: BubblewrapConfig) -> Result<BubblewrapExecutor, SandboxError> {
        if !config.bwrap.is_file() {
            return Err(SandboxError::Unavailable(format!(
                "bubblewrap is not installed (no `{}`): install it with `apt-get install -y bubblewrap`, \
                 or on a trusted self-hosted machine run jobs without isolation with the runner's \
                 `--unsafe-host-executor` flag",
                config.bwrap.display()
            )));
        }
        let etc = SandboxEtc::new(&config)?;
        let base_args = base_args(&config, &etc)?;
        probe(&config, &base_args)?;
        let bwrap_exe =
            std::fs::canonicalize(&config.bwrap).unwrap_or_else(|_| config.bwrap.clone());
        let cgroups_unavailable = |error: SandboxError| {
            SandboxError::Unavailable(format!(
                "cannot make job cgroups ({error}): the runner needs root (or a delegated cgroup) \
                 to limit jobs, or on a trusted self-hosted machine the `--unsafe-host-executor` flag"
            ))
        };
        let cgroups = CgroupHost::detect(&config.cgroups).map_err(cgroups_unavailable)?;
        // The parent groups may exist but not be writable by this user: find out now rather
        // than at the first job.
        let mut probe = cgroups
            .create_job(&ResourceLimits::default(), &bwrap_exe)
            .map_err(cgroups_unavailable)?;
        probe.destroy().map_err(cgroups_unavailable)?;
        Ok(BubblewrapExecutor {
            shared: Arc::new(Shared {
                bwrap_exe,
                config,
                cgroups,
                base_args,
                etc,
            }),
        })
    }

    /// Like [`Executor::create`], returning the concrete sandbox.
    pub fn create_sandbox(&self, spec: &SandboxSpec) -> Result<BubblewrapSandbox, SandboxError> {
        self.shared.etc.refresh();
        let cgroup = self
            .shared
            .cgroups
            .create_job(&spec.limits, &self.shared.bwrap_exe)?;
        std::fs::create_dir_all(&spec.job_dir).map_err(|source| SandboxError::Io {
            what: format!("failed to create `{}`", spec.job_dir.display()),
            source,
        })?;
        let paths = JobPaths::lay_out(&spec.job_dir, &self.shared.config.job_dir_inside)?;
        debug!(job_dir = %spec.job_dir.display(), network = spec.network, "sandbox created");
        Ok(BubblewrapSandbox {
            shared: Arc::clone(&self.shared),
            job_dir: spec.job_dir.clone(),
            network: spec.network,
            paths,
            cgroup,
            destroyed: false,
        })
    }
}

impl Executor for BubblewrapExecutor {
    fn name(&self) -> &'static str {
        "bubblewrap"
    }

    fn create(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(Box::new(self.create_sandbox(spec)?))
    }
}

/// One job's sandbox under bubblewrap.
#[derive(Debug)]
pub struct BubblewrapSandbox {
    shared: Arc<Shared>,
    job_dir: PathBuf,
    network: bool,
    paths: JobPaths,
    cgroup: JobCgroup,
    destroyed: bool,
}

impl BubblewrapSandbox {
    /// The job's cgroup directories (one per v1 hierarchy, or one under v2).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroup.dirs()
    }

    /// The host pids of every process of the job.
    pub fn pids(&self) -> Result<Vec<i32>, SandboxError> {
        self.cgroup.pids()
    }

    fn tear_down(&mut self) -> Result<(), SandboxError> {
        if self.destroyed {
            return Ok(());
        }
        // Processes first: they hold the mounts (which live only in their mount namespaces)
        // and may still write into the job directory.
        self.cgroup.destroy()?;
        match std::fs::remove_dir_all(&self.job_dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SandboxError::Io {
                    what: format!("failed to remove `{}`", self.job_dir.display()),
                    source,
                });
            }
        }
        self.destroyed = true;
        debug!(job_dir = %self.job_dir.display(), "sandbox destroyed");
        Ok(())
    }
}

impl Sandbox for BubblewrapSandbox {
    fn paths(&self) -> &JobPaths {
        &self.paths
    }

    fn command(&self, process: &ProcessSpec) -> Result<Command, SandboxError> {
        validate(process)?;
        let mut bwrap_args = self.shared.base_args.clone();
        if self.network {
            bwrap_args.push("--share-net".into());
        }
        bwrap_args.extend([
            "--bind".into(),
            self.job_dir.clone().into_os_string(),
            self.shared.config.job_dir_inside.clone().into_os_string(),
            "--chdir".into(),
            process.cwd.clone().into_os_string(),
            "--clearenv".into(),
        ]);
        for (name, value) in &process.env {
            bwrap_args.extend(["--setenv".into(), name.into(), value.into()]);
        }
        bwrap_args.push("--".into());
        bwrap_args.extend(process.argv.iter().map(OsString::from));

        // `sh` joins the job's cgroup and then becomes `bwrap`: the whole job is limited from
        // its first instruction, with no code run between fork and exec in the runner.
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(JobCgroup::enter_script())
            .arg("gantry-sandbox")
            .args(self.cgroup.procs_files())
            .arg("--")
            .arg(&self.shared.config.bwrap)
            .args(bwrap_args)
            // The runner's environment (its credentials among it) must not reach even the
            // sandbox's pid 1, whose initial environment the job could read.
            .env_clear()
            // Keyboard signals to the runner's process group do not reach the job.
            .process_group(0);
        Ok(command)
    }

    fn signal_all(&self, signal: StopSignal) -> Result<(), SandboxError> {
        self.cgroup.signal_all(signal)
    }

    fn take_out_of_memory(&self) -> bool {
        self.cgroup.take_out_of_memory()
    }

    fn destroy(mut self: Box<Self>) -> Result<(), SandboxError> {
        self.tear_down()
    }
}

impl Drop for BubblewrapSandbox {
    fn drop(&mut self) {
        if !self.destroyed {
            warn!(job_dir = %self.job_dir.display(), "sandbox dropped without destroy, cleaning up");
            if let Err(error) = self.tear_down() {
                warn!(job_dir = %self.job_dir.display(), %error, "failed to clean up dropped sandbox");
            }
        }
    }
}

/// Refuses what `bwrap` would misread or the kernel would refuse.
fn validate(process: &ProcessSpec) -> Result<(), SandboxError> {
    if process.argv.is_empty() {
        return Err(SandboxError::Invalid(
            "a process needs a program".to_owned(),
        ));
    }
    if !process.cwd.is_absolute() {
        return Err(SandboxError::Invalid(format!(
            "the working directory `{}` is not an absolute inside path",
            process.cwd.display()
        )));
    }
    for name in process.env.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(SandboxError::Invalid(format!(
                "`{name}` is not a valid environment variable name"
            )));
        }
    }
    Ok(())
}

/// The `/etc` every sandbox binds: one host directory made when the executor starts, holding
/// the generated `passwd`, `group`, `hostname` and `hosts` and, under [`BaseRoot::HostUsr`],
/// copies of the allowlisted host files (refreshed when the host's change, so an updated
/// `resolv.conf` reaches new jobs) and mount points for the allowlisted host directories.
/// One bind of a prepared directory costs a sandbox far less than a bind per file.
#[derive(Debug)]
struct SandboxEtc {
    dir: tempfile::TempDir,
    /// Host files copied in, with the modification time and length of the last copy.
    copied: Mutex<Vec<(PathBuf, Option<FileStamp>)>>,
    /// Host directories bound over their mount points in `dir`, as absolute paths.
    bound_dirs: Vec<PathBuf>,
}

impl SandboxEtc {
    fn new(config: &BubblewrapConfig) -> Result<SandboxEtc, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix("gantry-sandbox-etc-")
            .tempdir()
            .map_err(|source| SandboxError::Io {
                what: "failed to create the sandbox's `/etc` directory".to_owned(),
                source,
            })?;
        let user = &config.user;
        let generated = [
            (
                "passwd",
                format!(
                    "root:x:0:0:root:/root:/usr/sbin/nologin\n\
                     {name}:x:{uid}:{gid}:{name}:{home}:/bin/bash\n\
                     nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                    name = user.name,
                    uid = user.uid,
                    gid = user.gid,
                    home = user.home.display(),
                ),
            ),
            (
                "group",
                format!(
                    "root:x:0:\n{name}:x:{gid}:\nnogroup:x:65534:\n",
                    name = user.name,
                    gid = user.gid
                ),
            ),
            ("hostname", format!("{}\n", config.hostname)),
            (
                "hosts",
                format!(
                    "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                    config.hostname
                ),
            ),
        ];
        for (name, content) in generated {
            write_new_file(&dir.path().join(name), content.as_bytes())?;
        }
        let mut copied = Vec::new();
        let mut bound_dirs = Vec::new();
        if config.base_root == BaseRoot::HostUsr {
            let host_etc = Path::new("/etc");
            for entry in &config.host_etc {
                let source = host_etc.join(entry);
                let inside = dir.path().join(entry);
                // `metadata` follows links: a dangling `resolv.conf` link is left out rather
                // than failing every job.
                match std::fs::metadata(&source) {
                    Ok(meta) if meta.is_dir() => {
                        make_dirs(&inside)?;
                        bound_dirs.push(source);
                    }
                    Ok(_) => {
                        if let Some(parent) = inside.parent() {
                            make_dirs(parent)?;
                        }
                        copied.push((entry.clone(), None));
                    }
                    Err(_) => debug!(path = %source.display(), "host /etc entry missing, skipped"),
                }
            }
        }
        let etc = SandboxEtc {
            dir,
            copied: Mutex::new(copied),
            bound_dirs,
        };
        etc.refresh();
        Ok(etc)
    }

    /// Copies the host files that changed since the last copy. A copy replaces the old one by
    /// rename, so a running job reads either the old or the new file, never half of one.
    fn refresh(&self) {
        let mut copied = self
            .copied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (entry, stamp) in copied.iter_mut() {
            let source = Path::new("/etc").join(&*entry);
            let Ok(meta) = std::fs::metadata(&source) else {
                continue;
            };
            let current = meta.modified().ok().map(|time| (time, meta.len()));
            if current.is_some() && current == *stamp {
                continue;
            }
            let target = self.dir.path().join(&*entry);
            let staging = target.with_extension("gantry-new");
            let result =
                std::fs::copy(&source, &staging).and_then(|_| std::fs::rename(&staging, &target));
            match result {
                Ok(()) => *stamp = current,
                Err(error) => {
                    warn!(path = %source.display(), %error, "failed to copy host /etc file for jobs")
                }
            }
        }
    }
}

/// When a file was last changed and its length: a copy is redone when either differs.
type FileStamp = (SystemTime, u64);

fn write_new_file(path: &Path, content: &[u8]) -> Result<(), SandboxError> {
    std::fs::write(path, content).map_err(|source| SandboxError::Io {
        what: format!("failed to write `{}`", path.display()),
        source,
    })
}

fn make_dirs(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(path).map_err(|source| SandboxError::Io {
        what: format!("failed to create `{}`", path.display()),
        source,
    })
}

/// The `bwrap` arguments shared by every process of every sandbox.
fn base_args(config: &BubblewrapConfig, etc: &SandboxEtc) -> Result<Vec<OsString>, SandboxError> {
    let generated_etc = etc.dir.path();
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&std::ffi::OsStr]| {
        args.extend(items.iter().map(|item| item.to_os_string()));
    };
    let user = &config.user;
    let uid = user.uid.to_string();
    let gid = user.gid.to_string();
    push(&[
        "--unshare-all".as_ref(),
        // `--unshare-all` only tries the user namespace; a job must never run without one.
        "--unshare-user".as_ref(),
        // A job cannot make user namespaces of its own, which keeps the kernel surface small.
        "--disable-userns".as_ref(),
        "--die-with-parent".as_ref(),
        "--new-session".as_ref(),
        "--cap-drop".as_ref(),
        "ALL".as_ref(),
        "--uid".as_ref(),
        uid.as_ref(),
        "--gid".as_ref(),
        gid.as_ref(),
        "--hostname".as_ref(),
        config.hostname.as_ref(),
    ]);

    let root = match &config.base_root {
        BaseRoot::HostUsr => Path::new("/"),
        BaseRoot::Directory(dir) => dir.as_path(),
    };
    let usr = root.join("usr");
    if !usr.is_dir() {
        return Err(SandboxError::Unavailable(format!(
            "the sandbox base root has no `{}` directory",
            usr.display()
        )));
    }
    push(&["--ro-bind".as_ref(), usr.as_os_str(), "/usr".as_ref()]);
    // Merged-/usr systems have links here, older ones directories: keep whichever there is.
    for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let source = root.join(name);
        let inside = Path::new("/").join(name);
        match std::fs::symlink_metadata(&source) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&source).map_err(|error| SandboxError::Io {
                    what: format!("failed to read the link `{}`", source.display()),
                    source: error,
                })?;
                push(&["--symlink".as_ref(), target.as_os_str(), inside.as_os_str()]);
            }
            Ok(meta) if meta.is_dir() => {
                push(&["--ro-bind".as_ref(), source.as_os_str(), inside.as_os_str()]);
            }
            _ => {}
        }
    }

    let etc_dir = etc;
    let etc = Path::new("/etc");
    match &config.base_root {
        BaseRoot::HostUsr => {
            push(&[
                "--ro-bind".as_ref(),
                generated_etc.as_os_str(),
                etc.as_os_str(),
            ]);
            for source in &etc_dir.bound_dirs {
                push(&["--ro-bind".as_ref(), source.as_os_str(), source.as_os_str()]);
            }
        }
        BaseRoot::Directory(dir) => {
            let image_etc = dir.join("etc");
            if image_etc.is_dir() {
                push(&["--ro-bind".as_ref(), image_etc.as_os_str(), etc.as_os_str()]);
            }
            // Files can only be bound over ones that exist in the read-only image.
            for name in ["passwd", "group", "hostname", "hosts"] {
                if image_etc.join(name).is_file() {
                    let source = generated_etc.join(name);
                    let inside = etc.join(name);
                    push(&["--ro-bind".as_ref(), source.as_os_str(), inside.as_os_str()]);
                }
            }
            let host_resolv = etc.join("resolv.conf");
            if image_etc.join("resolv.conf").is_file() && host_resolv.exists() {
                push(&[
                    "--ro-bind".as_ref(),
                    host_resolv.as_os_str(),
                    host_resolv.as_os_str(),
                ]);
            }
        }
    }

    push(&[
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--perms".as_ref(),
        "1777".as_ref(),
        "--tmpfs".as_ref(),
        "/tmp".as_ref(),
        "--tmpfs".as_ref(),
        user.home.as_os_str(),
    ]);
    Ok(args)
}

/// Runs `true` in a sandbox without cgroup or job directory, to tell a missing kernel feature
/// (user namespaces disabled, a too old `bwrap`) before any job is accepted.
fn probe(config: &BubblewrapConfig, base_args: &[OsString]) -> Result<(), SandboxError> {
    let output = Command::new(&config.bwrap)
        .args(base_args)
        .args(["--", "true"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SandboxError::Io {
            what: format!("failed to run `{}`", config.bwrap.display()),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(SandboxError::Unavailable(format!(
        "`{}` cannot make a sandbox ({}: {}): user namespaces may be disabled (check \
         `sysctl user.max_user_namespaces` and, on Debian and Ubuntu, \
         `kernel.unprivileged_userns_clone` and `kernel.apparmor_restrict_unprivileged_userns`), \
         or bubblewrap is older than 0.8 (`apt-get install -y bubblewrap`); on a trusted \
         self-hosted machine the runner's `--unsafe-host-executor` flag runs jobs without \
         isolation",
        config.bwrap.display(),
        output.status,
        stderr.trim()
    )))
}
