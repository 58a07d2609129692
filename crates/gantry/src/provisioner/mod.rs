//! The provisioner: launches ephemeral runners for queued demand and reaps them.
//!
//! It watches the server over the API, like any client: the queued jobs its pool's labels can
//! serve (`GET /internal/queue`) and the runners it launched (`GET /runners`, matched by name
//! prefix). Each tick it keeps `queued + min_idle` runners idle or starting, never more than
//! `max` in all; runners beyond `min_idle` that stayed idle longer than `idle_timeout` are
//! deleted. Ephemeral runners leave by themselves after their one job; the provider reaps
//! them. A [`Provider`] is how runners come and go: local processes (`local`, the embedded
//! default) or user scripts (`command`, the hook for VMs and cloud machines).

mod command;
mod local;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gantry_proto::v1 as proto;

use crate::commands::client::{Client, Reply};

pub use command::CommandProvider;
pub use local::LocalProvider;

/// The GitHub-hosted Linux labels the embedded pool serves, so workflows run unchanged.
pub const HOSTED_LABELS: &[&str] = &[
    "ubuntu-latest",
    "ubuntu-24.04",
    "ubuntu-22.04",
    "linux",
    "x64",
];

/// How runners are made and removed.
pub trait Provider: Send {
    /// Starts a runner that registers as `name` with the pool's labels.
    fn create(&mut self, name: &str) -> anyhow::Result<()>;
    /// Removes a runner (asks it to stop; it finishes reporting first).
    fn delete(&mut self, name: &str) -> anyhow::Result<()>;
    /// The runners that are gone by themselves since the last call (ephemeral runners after
    /// their job, crashed ones); they are forgotten.
    fn reap(&mut self) -> Vec<String>;
    /// Every runner still believed alive.
    fn alive(&self) -> Vec<String>;
}

/// The pool's shape.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Runner names start with this (and are how the provisioner finds its own runners).
    pub name_prefix: String,
    /// The labels every runner of the pool has; jobs whose `runs-on` is a subset are demand.
    pub labels: Vec<String>,
    /// Runners kept idle when there is no demand (a warm pool).
    pub min_idle: usize,
    /// The most runners at once.
    pub max: usize,
    /// Idle runners beyond `min_idle` are deleted after this long.
    pub idle_timeout: Duration,
    /// How long a launched runner may take to register before it counts as failed.
    pub start_timeout: Duration,
}

/// What one look at the server found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick {
    /// Queued jobs the pool can serve.
    pub demand: usize,
    /// Runners launched this tick.
    pub launched: usize,
    /// Runners deleted this tick (idle too long, or never registered).
    pub deleted: usize,
    /// Runners reaped this tick (gone by themselves).
    pub reaped: usize,
}

/// The provisioner's state between ticks.
pub struct Provisioner {
    client: Client,
    pool: PoolConfig,
    provider: Box<dyn Provider>,
    /// Launched and not yet registered: when.
    starting: HashMap<String, Instant>,
    /// Registered and idle: since when.
    idle_since: HashMap<String, Instant>,
    serial: u64,
}

/// Whether a job's labels are all among the pool's (case-insensitively).
fn serves(pool: &[String], job: &[String]) -> bool {
    job.iter()
        .all(|label| pool.iter().any(|ours| ours.eq_ignore_ascii_case(label)))
}

impl Provisioner {
    /// A provisioner of `pool` on the server at `server`, making runners with `provider`.
    pub fn new(server: &str, pool: PoolConfig, provider: Box<dyn Provider>) -> Provisioner {
        Provisioner {
            client: Client::new(Some(server)),
            pool,
            provider,
            starting: HashMap::new(),
            idle_since: HashMap::new(),
            serial: 0,
        }
    }

    /// Queued jobs this pool can serve.
    fn demand(&self) -> anyhow::Result<usize> {
        let mut demand = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/internal/queue?limit=500&cursor={cursor}"),
                None => "/internal/queue?limit=500".to_owned(),
            };
            let page = match self.client.get::<proto::JobList>(&path)? {
                Reply::Ok(page, _) => page,
                Reply::Refused(error, status) => {
                    anyhow::bail!("the queue is not readable ({status}): {error}")
                }
            };
            demand += page
                .items
                .iter()
                .filter(|job| serves(&self.pool.labels, &job.labels))
                .count();
            // The queue pages by job id: the next page starts after the last one.
            match page.items.last() {
                Some(last) if page.items.len() == 500 => cursor = Some(last.id.to_string()),
                _ => return Ok(demand),
            }
        }
    }

    /// Our registered runners: name → whether it holds a job.
    fn registered(&self) -> anyhow::Result<HashMap<String, bool>> {
        let list = match self.client.get::<proto::RunnerList>("/runners")? {
            Reply::Ok(list, _) => list,
            Reply::Refused(error, status) => {
                anyhow::bail!("the runners are not readable ({status}): {error}")
            }
        };
        Ok(list
            .runners
            .into_iter()
            .filter(|runner| runner.name.starts_with(&self.pool.name_prefix))
            .map(|runner| (runner.name, !runner.jobs.is_empty()))
            .collect())
    }

    /// One look at the server and the decisions it leads to.
    pub fn tick(&mut self) -> anyhow::Result<Tick> {
        let mut tick = Tick {
            reaped: self.provider.reap().len(),
            ..Tick::default()
        };
        let alive: Vec<String> = self.provider.alive();
        self.starting.retain(|name, _| alive.contains(name));
        self.idle_since.retain(|name, _| alive.contains(name));
        tick.demand = self.demand()?;
        let registered = self.registered()?;
        let now = Instant::now();
        let mut idle = 0;
        for name in &alive {
            match registered.get(name) {
                Some(true) => {
                    self.starting.remove(name);
                    self.idle_since.remove(name);
                }
                Some(false) => {
                    self.starting.remove(name);
                    self.idle_since.entry(name.clone()).or_insert(now);
                    idle += 1;
                }
                None => {
                    let since = *self.starting.entry(name.clone()).or_insert(now);
                    if now.duration_since(since) > self.pool.start_timeout {
                        tracing::warn!(runner = %name, "runner never registered; deleting it");
                        self.provider.delete(name)?;
                        self.starting.remove(name);
                        tick.deleted += 1;
                    }
                }
            }
        }
        let ready = idle + self.starting.len();
        let wanted = tick.demand + self.pool.min_idle;
        let room = self.pool.max.saturating_sub(self.provider.alive().len());
        for _ in 0..wanted.saturating_sub(ready).min(room) {
            self.serial += 1;
            let name = format!(
                "{}{}-{}",
                self.pool.name_prefix,
                std::process::id(),
                self.serial
            );
            self.provider.create(&name)?;
            self.starting.insert(name, now);
            tick.launched += 1;
        }
        // Beyond the warm pool and the demand, idle runners time out, oldest first.
        let mut surplus = ready.saturating_sub(wanted);
        let mut expired: Vec<(Instant, String)> = self
            .idle_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) > self.pool.idle_timeout)
            .map(|(name, since)| (*since, name.clone()))
            .collect();
        expired.sort();
        for (_, name) in expired {
            if surplus == 0 {
                break;
            }
            self.provider.delete(&name)?;
            self.idle_since.remove(&name);
            surplus -= 1;
            tick.deleted += 1;
        }
        Ok(tick)
    }

    /// Deletes every runner it launched (on shutdown).
    pub fn shutdown(&mut self) {
        for name in self.provider.alive() {
            if let Err(error) = self.provider.delete(&name) {
                tracing::warn!(runner = %name, error = %error, "cannot delete runner");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_serves_jobs_whose_labels_it_has() {
        let pool: Vec<String> = HOSTED_LABELS
            .iter()
            .map(|label| label.to_string())
            .collect();
        assert!(serves(&pool, &["ubuntu-latest".to_owned()]));
        assert!(serves(&pool, &["Linux".to_owned(), "X64".to_owned()]));
        assert!(serves(&pool, &[]));
        assert!(!serves(&pool, &["windows-latest".to_owned()]));
        assert!(!serves(&pool, &["linux".to_owned(), "gpu".to_owned()]));
    }
}
