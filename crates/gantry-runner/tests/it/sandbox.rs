//! Scenarios of the bubblewrap sandbox: each starts real processes in a real sandbox and checks
//! what they can and cannot see or do, and what is left on the host afterwards.
//!
//! Under `CI=true` every scenario runs and an unusable bubblewrap is a failure; elsewhere the
//! scenarios skip, loudly, when the machine cannot make sandboxes (no `bwrap`, not root).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gantry_runner::sandbox::{
    BaseRoot, BubblewrapConfig, BubblewrapExecutor, BubblewrapSandbox, Executor, ProcessSpec,
    ResourceLimits, Sandbox, SandboxError, SandboxSpec, StopSignal, bench_create_destroy,
};

/// The executor with its default configuration, or `None` (after saying so) when this machine
/// cannot make sandboxes and the tests do not run in CI.
fn executor() -> Option<BubblewrapExecutor> {
    match BubblewrapExecutor::new(BubblewrapConfig::default()) {
        Ok(executor) => Some(executor),
        Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true but the bubblewrap sandbox is unusable: {error}")
        }
        Err(error) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: the bubblewrap sandbox is unusable here ({error}); this sandbox scenario did not run !!!!!!!!\n"
            );
            None
        }
    }
}

/// A job's sandbox in a fresh temporary directory.
struct Job {
    sandbox: BubblewrapSandbox,
    // Held so the parent of the job directory outlives the sandbox.
    base: tempfile::TempDir,
}

impl Job {
    fn new(executor: &BubblewrapExecutor, limits: ResourceLimits, network: bool) -> Job {
        let base = tempfile::tempdir().unwrap();
        let sandbox = executor
            .create_sandbox(&SandboxSpec {
                job_dir: base.path().join("job"),
                limits,
                network,
            })
            .unwrap();
        Job { sandbox, base }
    }

    fn job_dir(&self) -> PathBuf {
        self.base.path().join("job")
    }

    /// `sh -c script` in the workspace with a GitHub-like environment.
    fn process(&self, script: &str) -> ProcessSpec {
        let paths = self.sandbox.paths();
        ProcessSpec {
            argv: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
            env: job_env(&self.sandbox),
            cwd: paths.workspace.inside.clone(),
        }
    }

    fn command(&self, script: &str) -> Command {
        let mut command = self.sandbox.command(&self.process(script)).unwrap();
        command.stdin(Stdio::null());
        command
    }

    /// Runs `script` to its end and returns what it printed.
    fn run(&self, script: &str) -> Output {
        let output = self.command(script).output().unwrap();
        eprintln!(
            "--- `{script}` exited {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn stdout(&self, script: &str) -> String {
        String::from_utf8(self.run(script).stdout).unwrap()
    }

    /// Destroys the sandbox and checks nothing of it is left on the host.
    fn destroy_and_check_gone(self) {
        let job_dir = self.job_dir();
        let cgroups = self.sandbox.cgroup_dirs();
        Box::new(self.sandbox).destroy().unwrap();
        assert_nothing_left(&job_dir, &cgroups);
    }
}

/// No directory, cgroup (and so no process: a cgroup with processes cannot be removed) or
/// mount of a destroyed sandbox is left on the host.
fn assert_nothing_left(job_dir: &Path, cgroups: &[PathBuf]) {
    assert!(!job_dir.exists(), "job dir {job_dir:?} left behind");
    for dir in cgroups {
        assert!(!dir.exists(), "cgroup {dir:?} left behind");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let job_dir = job_dir.to_str().unwrap();
    assert!(
        !mounts.contains(job_dir),
        "mount of {job_dir} left behind: {mounts}"
    );
}

fn job_env(sandbox: &dyn Sandbox) -> BTreeMap<String, String> {
    let paths = sandbox.paths();
    BTreeMap::from([
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        ("HOME".to_owned(), "/home/runner".to_owned()),
        (
            "GITHUB_WORKSPACE".to_owned(),
            paths.workspace.inside.display().to_string(),
        ),
        (
            "RUNNER_TEMP".to_owned(),
            paths.temp.inside.display().to_string(),
        ),
    ])
}

/// Polls `condition` until it holds; a scenario that never gets there fails with `what`. The
/// bound only stops a broken sandbox from hanging the suite, it is not a timing assertion.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cgroup_file(sandbox: &BubblewrapSandbox, name: &str) -> Option<PathBuf> {
    sandbox
        .cgroup_dirs()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|file| file.exists())
}

#[test]
fn the_job_sees_only_its_own_processes() {
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    let listing = job.stdout("ps -e -o pid=,comm=");
    let commands: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    // The sandbox's own init (bwrap), the shell and `ps`: none of the host's processes.
    assert!(
        commands.iter().all(|c| ["bwrap", "sh", "ps"].contains(c)),
        "host processes visible: {listing}"
    );
    assert!(listing.lines().next().unwrap().trim().starts_with("1 "));
    let proc_entries = job.stdout("ls /proc | grep -c '^[0-9]'");
    assert!(
        proc_entries.trim().parse::<u32>().unwrap() <= 4,
        "{proc_entries}"
    );
    job.destroy_and_check_gone();
}

#[test]
fn the_job_cannot_write_the_base_root() {
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    let output =
        job.run("touch /usr/gantry-sandbox-probe; echo x >> /etc/passwd; echo x > /bin/sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Read-only file system").count(),
        3,
        "the base root is writable: {stderr}"
    );
    assert!(!Path::new("/usr/gantry-sandbox-probe").exists());
    // Only an allowlist of the host's `/etc` is there: no shadow passwords, no TLS keys.
    let etc =
        job.run("ls /etc/shadow /etc/ssl/private /etc/sudoers; ls /etc/ssl; cat /etc/resolv.conf");
    let etc_stderr = String::from_utf8_lossy(&etc.stderr);
    assert_eq!(
        etc_stderr.matches("No such file or directory").count(),
        3,
        "{etc_stderr}"
    );
    let etc_stdout = String::from_utf8_lossy(&etc.stdout);
    assert!(
        etc_stdout.starts_with("certs\nopenssl.cnf\n"),
        "{etc_stdout}"
    );
    if let Ok(host_resolv) = std::fs::read_to_string("/etc/resolv.conf") {
        assert!(
            etc_stdout.ends_with(&host_resolv),
            "resolv.conf differs: {etc_stdout}"
        );
    }
    // Only the generated users exist inside.
    let passwd = job.stdout("cat /etc/passwd");
    let users: Vec<&str> = passwd.lines().filter_map(|l| l.split(':').next()).collect();
    assert_eq!(users, ["root", "runner", "nobody"]);
    job.destroy_and_check_gone();
}

#[test]
fn the_job_runs_as_an_unprivileged_user_without_capabilities() {
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    let output = job.stdout(
        "id -u; id -g; id -un; grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status; \
         grep NoNewPrivs /proc/self/status; echo home=$HOME; touch $HOME/f /tmp/f && echo writable; \
         unshare --user true 2>/dev/null || echo no-user-namespaces",
    );
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines[..3], ["1001", "1001", "runner"]);
    for cap in &lines[3..7] {
        assert!(
            cap.ends_with("0000000000000000"),
            "capabilities left: {cap}"
        );
    }
    // Set-user-id programs cannot raise privileges, and the job cannot make namespaces of its
    // own to look for kernel bugs in.
    assert_eq!(
        lines[7].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    assert_eq!(
        lines[8..],
        ["home=/home/runner", "writable", "no-user-namespaces"]
    );
    job.destroy_and_check_gone();
}

#[test]
fn the_job_without_network_reaches_nothing() {
    let Some(executor) = executor() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let job = Job::new(&executor, ResourceLimits::default(), false);
    // 5432 is the host's PostgreSQL in CI; the test's own listener is there on any machine.
    let output = job.stdout(&format!(
        "for port in {port} 5432; do \
           if bash -c \"echo > /dev/tcp/127.0.0.1/$port\" 2>/dev/null; then echo connected $port; else echo refused $port; fi; \
         done; ip -o link | cut -d: -f2"
    ));
    assert_eq!(
        output.lines().map(str::trim).collect::<Vec<_>>(),
        [format!("refused {port}").as_str(), "refused 5432", "lo"]
    );
    job.destroy_and_check_gone();
}

#[test]
fn the_job_with_network_reaches_the_host_loopback() {
    let Some(executor) = executor() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let job = Job::new(&executor, ResourceLimits::default(), true);
    let output = job.stdout(&format!(
        "if bash -c 'echo hello > /dev/tcp/127.0.0.1/{port}'; then echo connected; else echo refused; fi"
    ));
    assert_eq!(output.trim(), "connected");
    // The connection really arrived at the host's listener.
    let (mut stream, _) = listener.accept().unwrap();
    let mut received = String::new();
    std::io::Read::read_to_string(&mut stream, &mut received).unwrap();
    assert_eq!(received, "hello\n");
    job.destroy_and_check_gone();
}

const SECRET_VAR: &str = "GANTRY_TEST_RUNNER_TOKEN";
const SECRET: &str = "gantry-runner-secret-5f0c1e9a";

#[test]
fn the_job_cannot_read_the_runners_credentials_or_environment() {
    // The runner's own environment must hold the secret, and setting a variable in this
    // process needs `unsafe`: so the test runs itself again with the variable set.
    if std::env::var_os(SECRET_VAR).is_none() {
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sandbox::the_job_cannot_read_the_runners_credentials_or_environment",
                "--nocapture",
            ])
            .env(SECRET_VAR, SECRET)
            .status()
            .unwrap();
        assert!(status.success(), "the scenario failed in the child run");
        return;
    }
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    // The runner's credentials beside the job's directory, as the runner keeps its config.
    let runner_config = job.base.path().join("runner-config");
    std::fs::create_dir(&runner_config).unwrap();
    let credentials = runner_config.join("credentials.json");
    std::fs::write(&credentials, format!("{{\"token\": \"{SECRET}\"}}")).unwrap();

    // The secret is searched for in two halves so that the script's own command line (which
    // the job can read) does not hold it.
    let (head, tail) = SECRET.split_at(10);
    let output = job.run(&format!(
        "cat {credentials}; ls {config} /root /work; \
         env; cat /proc/[0-9]*/environ | tr '\\0' '\\n'; \
         head={head}; tail={tail}; \
         grep -rs \"$head$tail\" /etc /home /tmp /run /var /opt /proc/1/environ 2>/dev/null; true",
        credentials = credentials.display(),
        config = runner_config.display(),
    ));
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !everything.contains(SECRET),
        "the job found the runner's secret"
    );
    assert!(
        !everything.contains(SECRET_VAR),
        "the job saw the runner's environment"
    );

    // The job's environment is exactly the one asked for.
    let env_process = ProcessSpec {
        argv: vec!["env".to_owned()],
        ..job.process("")
    };
    let output = job.sandbox.command(&env_process).unwrap().output().unwrap();
    let mut seen: BTreeMap<String, String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    // bwrap names the working directory in `PWD`, as a shell would; nothing else is added.
    assert_eq!(
        seen.remove("PWD").as_deref(),
        env_process.cwd.to_str(),
        "PWD is the working directory"
    );
    assert_eq!(seen, env_process.env);
    job.destroy_and_check_gone();
}

#[test]
fn a_fork_bomb_is_capped_by_the_pids_limit_and_killed() {
    let Some(executor) = executor() else { return };
    let max_pids = 32;
    let job = Job::new(
        &executor,
        ResourceLimits {
            max_pids: Some(max_pids),
            ..ResourceLimits::default()
        },
        false,
    );
    // The main process `exec`s so that it needs no fork of its own once the bomb has gone off.
    let mut child = job
        .command("bomb() { bomb | bomb & }; bomb; exec sleep 1000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let events = cgroup_file(&job.sandbox, "pids.events").unwrap();
    wait_until("the pids limit refused a fork", || {
        let text = std::fs::read_to_string(&events).unwrap();
        text.lines()
            .any(|line| line.starts_with("max ") && line != "max 0")
    });
    let current = cgroup_file(&job.sandbox, "pids.current").unwrap();
    let count: u64 = std::fs::read_to_string(current)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        count <= max_pids,
        "{count} processes over a limit of {max_pids}"
    );

    job.sandbox.signal_all(StopSignal::Kill).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    wait_until("the killed bomb left the cgroup", || {
        job.sandbox.pids().unwrap().is_empty()
    });
    job.destroy_and_check_gone();
}

#[test]
fn a_memory_hog_is_killed_and_reported() {
    let Some(executor) = executor() else { return };
    let job = Job::new(
        &executor,
        ResourceLimits {
            memory_bytes: Some(64 << 20),
            ..ResourceLimits::default()
        },
        false,
    );
    assert!(!job.sandbox.take_out_of_memory());
    // `tail` keeps the last line whole, and /dev/zero has no line ends: it holds everything.
    let output = job.run("head -c 512M /dev/zero | tail >/dev/null && echo survived");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "the hog got its memory");
    assert!(job.sandbox.take_out_of_memory());
    // Reported once per kill.
    assert!(!job.sandbox.take_out_of_memory());
    // Below the limit, the job runs normally.
    let output = job.run("head -c 8M /dev/zero | tail | wc -c");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "8388608");
    assert!(!job.sandbox.take_out_of_memory());
    job.destroy_and_check_gone();
}

#[test]
fn signal_all_ends_a_tree_with_a_daemonized_child() {
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    // The daemon double-forks into its own session and is nobody's child but init's.
    let mut child = job
        .command(
            "(setsid sh -c 'sleep 1000 & exec sleep 1001' &); \
             sleep 1002 & echo ready; exec sleep 1003",
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    wait_until("every sleep started", || {
        let listing = Command::new("ps")
            .args(["-o", "args=", "-p"])
            .arg(
                job.sandbox
                    .pids()
                    .unwrap()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        ["sleep 1000", "sleep 1001", "sleep 1002", "sleep 1003"]
            .iter()
            .all(|sleep| listing.contains(sleep))
    });

    job.sandbox.signal_all(StopSignal::Terminate).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    wait_until("every process of the job ended", || {
        job.sandbox.pids().unwrap().is_empty()
    });
    job.destroy_and_check_gone();
}

#[test]
fn terminate_lets_the_job_clean_up_before_it_ends() {
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    let mut child = job
        .command(
            "trap 'echo cleaned > cleanup.txt; exit 0' TERM; echo ready; \
             while :; do sleep 1; done",
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    job.sandbox.signal_all(StopSignal::Terminate).unwrap();
    // The trap ran and its exit status came through: the sandbox did not die under the job.
    assert!(child.wait().unwrap().success());
    let workspace = &job.sandbox.paths().workspace;
    assert_eq!(
        std::fs::read_to_string(workspace.host_path("cleanup.txt")).unwrap(),
        "cleaned\n"
    );
    job.destroy_and_check_gone();
}

#[test]
fn the_workspace_is_shared_with_the_host_and_destroy_removes_everything() {
    let Some(executor) = executor() else { return };
    let job = Job::new(
        &executor,
        ResourceLimits {
            memory_bytes: Some(256 << 20),
            max_pids: Some(128),
            cpu_millicores: Some(500),
        },
        false,
    );
    // The limits are in force in the job's cgroup (v1 file names, or v2's).
    let limit = |v1: &str, v2: &str| {
        let file = cgroup_file(&job.sandbox, v1)
            .or_else(|| cgroup_file(&job.sandbox, v2))
            .unwrap();
        std::fs::read_to_string(file).unwrap().trim().to_owned()
    };
    assert_eq!(limit("memory.limit_in_bytes", "memory.max"), "268435456");
    assert_eq!(limit("pids.max", "pids.max"), "128");
    assert!(
        ["50000", "50000 100000"].contains(&limit("cpu.cfs_quota_us", "cpu.max").as_str()),
        "half a core"
    );
    let paths = job.sandbox.paths().clone();
    assert!(paths.workspace.host.starts_with(job.job_dir()));
    assert!(paths.workspace.inside.starts_with("/home/runner/work/_job"));
    // The step runner writes on the host side and names the file by its inside path.
    std::fs::write(
        paths.runner_files.host_path("script.sh"),
        "echo from-runner\n",
    )
    .unwrap();
    let output = job.stdout(&format!(
        "sh {script} && echo built > result.txt && mkdir -p out && echo artifact > out/a && pwd",
        script = paths.runner_files.inside_path("script.sh").display()
    ));
    assert_eq!(
        output.lines().collect::<Vec<_>>(),
        ["from-runner", paths.workspace.inside.to_str().unwrap()]
    );
    assert_eq!(
        std::fs::read_to_string(paths.workspace.host_path("result.txt")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(paths.workspace.host_path("out/a")).unwrap(),
        "artifact\n"
    );
    // A process still running at the end is part of what destroy removes.
    let mut straggler = job.command("exec sleep 1000").spawn().unwrap();
    wait_until("the straggler started", || {
        !job.sandbox.pids().unwrap().is_empty()
    });
    let job_dir = job.job_dir();
    let cgroups = job.sandbox.cgroup_dirs();
    Box::new(job.sandbox).destroy().unwrap();
    assert!(!straggler.wait().unwrap().success());
    assert_nothing_left(&job_dir, &cgroups);
}

#[test]
fn a_dropped_sandbox_is_cleaned_up_too() {
    let Some(executor) = executor() else { return };
    let job = Job::new(&executor, ResourceLimits::default(), false);
    let job_dir = job.job_dir();
    let cgroups = job.sandbox.cgroup_dirs();
    drop(job.sandbox);
    assert_nothing_left(&job_dir, &cgroups);
}

#[test]
fn missing_bubblewrap_names_the_fix() {
    let error = BubblewrapExecutor::new(BubblewrapConfig {
        bwrap: PathBuf::from("/nonexistent/bwrap"),
        ..BubblewrapConfig::default()
    })
    .unwrap_err();
    let SandboxError::Unavailable(message) = error else {
        panic!("expected Unavailable, got {error:?}")
    };
    assert!(
        message.contains("apt-get install -y bubblewrap"),
        "{message}"
    );
    assert!(message.contains("--unsafe-host-executor"), "{message}");
}

#[test]
fn bubblewrap_that_cannot_make_namespaces_names_the_fix() {
    // A stand-in for bwrap on a kernel with user namespaces turned off.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Another test's fork may briefly hold the script open for writing (ETXTBSY): try again.
    let error = loop {
        let error = BubblewrapExecutor::new(BubblewrapConfig {
            bwrap: fake.clone(),
            ..BubblewrapConfig::default()
        })
        .unwrap_err();
        match &error {
            SandboxError::Io { source, .. } if source.raw_os_error() == Some(26) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => break error,
        }
    };
    let SandboxError::Unavailable(message) = error else {
        panic!("expected Unavailable, got {error:?}")
    };
    assert!(
        message.contains("No permissions to create new namespace"),
        "{message}"
    );
    assert!(message.contains("user namespaces"), "{message}");
    assert!(message.contains("--unsafe-host-executor"), "{message}");
}

#[test]
fn the_benchmark_reports_sorted_percentiles() {
    let Some(executor) = executor() else { return };
    let base = tempfile::tempdir().unwrap();
    let report = bench_create_destroy(&executor as &dyn Executor, base.path(), 3).unwrap();
    assert_eq!(report.executor, "bubblewrap");
    assert_eq!(report.samples_micros.len(), 3);
    assert!(report.samples_micros.is_sorted());
    assert!(report.p50_micros <= report.p90_micros);
    assert!(report.p99_micros <= report.max_micros);
    assert!(report.peer_p50_micros <= report.peer_p99_micros);
    // Every round destroyed its sandbox.
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
}

#[test]
fn a_root_file_system_directory_can_be_the_base_root() {
    if executor().is_none() {
        return;
    }
    // A minimal image: the host's /usr through a link, merged-/usr links, its own /etc.
    let image = tempfile::tempdir().unwrap();
    let root = image.path();
    std::os::unix::fs::symlink("/usr", root.join("usr")).unwrap();
    for name in ["bin", "sbin", "lib", "lib64"] {
        if Path::new("/").join(name).exists() {
            std::os::unix::fs::symlink(format!("usr/{name}"), root.join(name)).unwrap();
        }
    }
    std::fs::create_dir(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/image-release"), "gantry-test-image\n").unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nimage:x:7:7::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let executor = BubblewrapExecutor::new(BubblewrapConfig {
        base_root: BaseRoot::Directory(root.to_owned()),
        ..BubblewrapConfig::default()
    })
    .unwrap();
    let job = Job::new(&executor, ResourceLimits::default(), false);
    let output = job.stdout("cat /etc/image-release; id -un; ls /etc/ssl 2>&1 | grep -c 'No such'");
    // The image's own /etc, with the job user laid over its passwd, and nothing of the host's.
    assert_eq!(
        output.lines().collect::<Vec<_>>(),
        ["gantry-test-image", "runner", "1"]
    );
    job.destroy_and_check_gone();
}

#[test]
fn empty_cgroups_of_a_runner_that_is_gone_are_removed_at_start() {
    if executor().is_none() {
        return;
    }
    // A pid above the kernel's maximum (2^22) never belongs to a live runner.
    let stale_name = "job-999999999-0";
    let probe = Job::new(&executor().unwrap(), ResourceLimits::default(), false);
    let stale: Vec<PathBuf> = probe
        .sandbox
        .cgroup_dirs()
        .iter()
        .map(|dir| dir.with_file_name(stale_name))
        .collect();
    probe.destroy_and_check_gone();
    for dir in &stale {
        std::fs::create_dir_all(dir).unwrap();
    }
    let _executor = executor().unwrap();
    for dir in &stale {
        assert!(!dir.exists(), "stale cgroup {dir:?} left");
    }
}
