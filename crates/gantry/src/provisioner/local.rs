//! The local-process provider, the embedded default: each runner is a `gantry runner
//! --ephemeral` child process of this one, with its own work directory.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::Provider;

/// Runners as child processes.
pub struct LocalProvider {
    server: String,
    token: String,
    labels: Vec<String>,
    work_dir: PathBuf,
    /// Extra `gantry runner` arguments (`--unsafe-host-executor`, `--network`, ...).
    extra: Vec<String>,
    /// Where each runner's log goes (one file per runner), when set.
    log_dir: Option<PathBuf>,
    children: HashMap<String, Child>,
}

impl LocalProvider {
    /// Runners of the server at `server` registering with `token` and `labels`, working
    /// under `work_dir`.
    pub fn new(
        server: &str,
        token: &str,
        labels: &[String],
        work_dir: PathBuf,
        extra: Vec<String>,
        log_dir: Option<PathBuf>,
    ) -> LocalProvider {
        LocalProvider {
            server: server.to_owned(),
            token: token.to_owned(),
            labels: labels.to_vec(),
            work_dir,
            extra,
            log_dir,
            children: HashMap::new(),
        }
    }
}

impl Provider for LocalProvider {
    fn create(&mut self, name: &str) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the gantry executable")?;
        let (stdout, stderr) = match &self.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create `{}`", dir.display()))?;
                let file = std::fs::File::create(dir.join(format!("{name}.log")))
                    .with_context(|| format!("cannot create the log of runner {name}"))?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(exe)
            .arg("runner")
            .args([
                "--server",
                &self.server,
                "--token",
                &self.token,
                "--name",
                name,
            ])
            .arg("--ephemeral")
            .arg("--labels")
            .arg(self.labels.join(","))
            .arg("--work-dir")
            .arg(self.work_dir.join(name))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // A group of its own: a Ctrl-C at the terminal reaches gantry, which cancels the
            // runs and then stops its runners (SIGTERM), not the runners and their jobs'
            // processes directly, which would fail the jobs instead of cancelling them.
            .process_group(0)
            .spawn()
            .context("cannot start a runner process")?;
        tracing::info!(runner = %name, pid = child.id(), "runner launched");
        self.children.insert(name.to_owned(), child);
        Ok(())
    }

    fn delete(&mut self, name: &str) -> anyhow::Result<()> {
        let Some(mut child) = self.children.remove(name) else {
            return Ok(());
        };
        // SIGTERM: the runner stops claiming and reports what it runs before it exits.
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(self.work_dir.join(name));
        tracing::info!(runner = %name, "runner deleted");
        Ok(())
    }

    fn reap(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        self.children.retain(|name, child| match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                tracing::info!(runner = %name, %status, "runner exited");
                gone.push(name.clone());
                false
            }
            Err(_) => {
                gone.push(name.clone());
                false
            }
        });
        for name in &gone {
            let _ = std::fs::remove_dir_all(self.work_dir.join(name));
        }
        gone
    }

    fn alive(&self) -> Vec<String> {
        self.children.keys().cloned().collect()
    }
}
