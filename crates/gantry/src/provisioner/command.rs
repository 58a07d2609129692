//! The `command` provider: user scripts create and delete runner hosts (VMs, cloud
//! machines, containers). The create command must start a runner that registers with the
//! given name; the provisioner then sees it in the server's runner list like any other.
//!
//! Both run through `sh -c` with the runner's facts in the environment: `GANTRY_SERVER`,
//! `GANTRY_RUNNER_TOKEN`, `GANTRY_RUNNER_NAME` and `GANTRY_RUNNER_LABELS` (comma-separated).
//! A runner is believed alive from its creation until it is deleted, or until it was seen
//! registered and has since left the server's list (an ephemeral runner after its job).

use std::collections::HashSet;
use std::process::Command;

use anyhow::{Context, bail};

use super::Provider;
use crate::commands::client::{Client, Reply};

/// Runners made by user scripts.
pub struct CommandProvider {
    create: String,
    delete: String,
    server: String,
    token: String,
    labels: Vec<String>,
    alive: HashSet<String>,
    /// Runners seen registered at least once.
    seen: HashSet<String>,
}

impl CommandProvider {
    /// Runners made by `create` and removed by `delete` (shell commands).
    pub fn new(
        create: &str,
        delete: &str,
        server: &str,
        token: &str,
        labels: &[String],
    ) -> CommandProvider {
        CommandProvider {
            create: create.to_owned(),
            delete: delete.to_owned(),
            server: server.to_owned(),
            token: token.to_owned(),
            labels: labels.to_vec(),
            alive: HashSet::new(),
            seen: HashSet::new(),
        }
    }

    fn run(&self, script: &str, name: &str) -> anyhow::Result<()> {
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("GANTRY_SERVER", &self.server)
            .env("GANTRY_RUNNER_TOKEN", &self.token)
            .env("GANTRY_RUNNER_NAME", name)
            .env("GANTRY_RUNNER_LABELS", self.labels.join(","))
            .status()
            .with_context(|| format!("cannot run `{script}`"))?;
        if !status.success() {
            bail!("`{script}` failed for runner {name} ({status})");
        }
        Ok(())
    }
}

impl Provider for CommandProvider {
    fn create(&mut self, name: &str) -> anyhow::Result<()> {
        self.run(&self.create, name)?;
        self.alive.insert(name.to_owned());
        Ok(())
    }

    fn delete(&mut self, name: &str) -> anyhow::Result<()> {
        self.alive.remove(name);
        self.seen.remove(name);
        self.run(&self.delete, name)
    }

    fn reap(&mut self) -> Vec<String> {
        let client = Client::new(Some(&self.server));
        let Ok(Reply::Ok(list, _)) = client.get::<gantry_proto::v1::RunnerList>("/runners") else {
            return Vec::new();
        };
        let registered: HashSet<String> =
            list.runners.into_iter().map(|runner| runner.name).collect();
        let gone: Vec<String> = self
            .alive
            .iter()
            .filter(|name| self.seen.contains(*name) && !registered.contains(*name))
            .cloned()
            .collect();
        for name in &gone {
            // Its host is left to the delete command, as when it is deleted on purpose.
            if let Err(error) = self.run(&self.delete, name) {
                tracing::warn!(runner = %name, error = %error, "delete command failed");
            }
            self.alive.remove(name);
            self.seen.remove(name);
        }
        for name in registered {
            if self.alive.contains(&name) {
                self.seen.insert(name);
            }
        }
        gone
    }

    fn alive(&self) -> Vec<String> {
        self.alive.iter().cloned().collect()
    }
}
