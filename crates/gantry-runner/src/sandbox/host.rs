//! The host executor: runs a job's processes directly on the runner's machine, with no
//! isolation beyond a cleared environment and a process group per process.
//!
//! Only for trusted self-hosted runners (the CLI hides it behind `--unsafe-host-executor`) and
//! for tests of the step runner. What it does promise: every process starts with exactly the
//! environment it is given, in its own process group (so signals to the runner do not reach it
//! and [`Sandbox::signal_all`] can reach everything it forked that stayed in the group), and
//! destroying the sandbox kills those groups and removes the job directory.
//!
//! Because [`Sandbox::command`] hands back a [`Command`] the caller spawns, the sandbox never
//! sees the child's pid. Each process therefore starts through `/bin/sh`, which writes its own
//! pid (the new group's id, since it is the group leader) to a file under the job directory
//! and then `exec`s the real program: the pid stays the same and nothing is added to the
//! environment.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Executor, JobPaths, ProcessSpec, Sandbox, SandboxError, SandboxSpec, StopSignal};

/// The directory under the job directory where process-group ids are recorded.
const GROUPS_DIR: &str = ".host-process-groups";

/// Makes [`HostSandbox`]es.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostExecutor;

impl HostExecutor {
    /// The host executor.
    pub fn new() -> HostExecutor {
        HostExecutor
    }
}

impl Executor for HostExecutor {
    fn name(&self) -> &'static str {
        "host"
    }

    fn create(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError> {
        if spec.limits != Default::default() {
            tracing::warn!(job_dir = %spec.job_dir.display(), "the host executor does not enforce resource limits");
        }
        let groups = spec.job_dir.join(GROUPS_DIR);
        std::fs::create_dir_all(&groups).map_err(|source| SandboxError::Io {
            what: format!("failed to create `{}`", groups.display()),
            source,
        })?;
        let paths = JobPaths::lay_out(&spec.job_dir, &spec.job_dir)?;
        Ok(Box::new(HostSandbox {
            job_dir: spec.job_dir.clone(),
            paths,
            next_process: AtomicU64::new(0),
            destroyed: false,
        }))
    }
}

/// One job's directory on the host and the process groups started for it.
#[derive(Debug)]
pub struct HostSandbox {
    job_dir: PathBuf,
    paths: JobPaths,
    next_process: AtomicU64,
    destroyed: bool,
}

impl HostSandbox {
    fn group_ids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir(self.job_dir.join(GROUPS_DIR)) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .filter_map(|text| text.trim().parse::<i32>().ok())
            // Never signal group 0 or 1 (the runner's own group or init) by mistake.
            .filter(|pid| *pid > 1)
            .collect()
    }

    fn kill_groups(&self, signal: StopSignal) {
        let signal = match signal {
            StopSignal::Terminate => rustix::process::Signal::TERM,
            StopSignal::Kill => rustix::process::Signal::KILL,
        };
        for group in self.group_ids() {
            if let Some(pid) = rustix::process::Pid::from_raw(group) {
                // A group that has already ended answers ESRCH, which is what we want.
                let _ = rustix::process::kill_process_group(pid, signal);
            }
        }
    }

    fn remove(&mut self) -> Result<(), SandboxError> {
        self.kill_groups(StopSignal::Kill);
        self.destroyed = true;
        match std::fs::remove_dir_all(&self.job_dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SandboxError::Io {
                what: format!("failed to remove `{}`", self.job_dir.display()),
                source,
            }),
        }
    }
}

impl Sandbox for HostSandbox {
    fn paths(&self) -> &JobPaths {
        &self.paths
    }

    fn command(&self, process: &ProcessSpec) -> Result<Command, SandboxError> {
        let Some(program) = process.argv.first() else {
            return Err(SandboxError::Invalid("empty command line".to_owned()));
        };
        if !process.cwd.starts_with(&self.job_dir) {
            return Err(SandboxError::Invalid(format!(
                "working directory `{}` is outside the job directory",
                process.cwd.display()
            )));
        }
        let number = self.next_process.fetch_add(1, Ordering::Relaxed);
        let record = self.job_dir.join(GROUPS_DIR).join(number.to_string());
        let mut command = Command::new("/bin/sh");
        // `$0` is the record file, `"$@"` the real command line; `exec` keeps the pid, which
        // is the group id because the process leads its own group. The shell exports `PWD`
        // on its own, so it is removed unless the caller asked for it.
        let script = if process.env.contains_key("PWD") {
            "echo $$ > \"$0\" && exec \"$@\""
        } else {
            "echo $$ > \"$0\" && unset PWD && exec \"$@\""
        };
        command
            .arg("-c")
            .arg(script)
            .arg(&record)
            .arg(program)
            .args(&process.argv[1..])
            .env_clear()
            .envs(&process.env)
            .current_dir(&process.cwd)
            .process_group(0);
        Ok(command)
    }

    fn signal_all(&self, signal: StopSignal) -> Result<(), SandboxError> {
        self.kill_groups(signal);
        Ok(())
    }

    fn take_out_of_memory(&self) -> bool {
        false
    }

    fn destroy(mut self: Box<Self>) -> Result<(), SandboxError> {
        self.remove()
    }
}

impl Drop for HostSandbox {
    fn drop(&mut self) {
        if !self.destroyed
            && let Err(error) = self.remove()
        {
            tracing::warn!(%error, "host sandbox dropped without destroy and not fully removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sandbox() -> (tempfile::TempDir, Box<dyn Sandbox>) {
        let dir = tempfile::tempdir().unwrap();
        let spec = SandboxSpec {
            job_dir: dir.path().join("job"),
            limits: Default::default(),
            network: false,
        };
        let sandbox = HostExecutor::new().create(&spec).unwrap();
        (dir, sandbox)
    }

    #[test]
    fn processes_see_exactly_the_given_environment() {
        let (_dir, sandbox) = sandbox();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_owned(), "/usr/bin:/bin".to_owned());
        env.insert("ONLY".to_owned(), "this".to_owned());
        let spec = ProcessSpec {
            argv: vec!["env".to_owned()],
            env,
            cwd: sandbox.paths().workspace.inside.clone(),
        };
        let output = sandbox.command(&spec).unwrap().output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|line| line.split('=').next())
            .collect();
        names.sort();
        assert_eq!(names, ["ONLY", "PATH"], "{text}");
    }

    #[test]
    fn signal_all_reaches_background_processes_and_destroy_removes_the_directory() {
        let (_dir, sandbox) = sandbox();
        let job_dir = sandbox
            .paths()
            .workspace
            .host
            .parent()
            .unwrap()
            .to_path_buf();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_owned(), "/usr/bin:/bin".to_owned());
        let spec = ProcessSpec {
            argv: vec!["sh".into(), "-c".into(), "sleep 600 & echo $!; wait".into()],
            env,
            cwd: sandbox.paths().workspace.inside.clone(),
        };
        let mut child = sandbox
            .command(&spec)
            .unwrap()
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        sandbox.signal_all(StopSignal::Kill).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        // The background sleeper holds the pipe open: the pipe ends only once it is dead too.
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        sandbox.destroy().unwrap();
        assert!(!job_dir.exists());
    }

    #[test]
    fn a_working_directory_outside_the_job_is_refused() {
        let (_dir, sandbox) = sandbox();
        let spec = ProcessSpec {
            argv: vec!["true".into()],
            env: BTreeMap::new(),
            cwd: PathBuf::from("/"),
        };
        assert!(matches!(
            sandbox.command(&spec),
            Err(SandboxError::Invalid(_))
        ));
    }
}
