//! `gantry up`: the server and the provisioner in one process — the whole service on one
//! machine with its embedded defaults (SQLite and the runner token under the data
//! directory, ephemeral local runners in bubblewrap sandboxes). Stops on Ctrl-C or SIGTERM,
//! deleting the runners it launched.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::embedded::EmbeddedServer;
use crate::output;
use crate::provisioner::{
    CommandProvider, HOSTED_LABELS, LocalProvider, PoolConfig, Provider, Provisioner,
};

/// How the provisioner makes runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// `gantry runner --ephemeral` child processes of this one.
    Local,
    /// `--create-command` / `--delete-command` scripts (VMs, cloud machines).
    Command,
}

/// The provisioner's arguments, shared by `gantry up` and `gantry run`.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Runners kept idle and ready when nothing is queued (a warm pool).
    #[arg(long, default_value_t = 1)]
    pub min_idle: usize,
    /// The most runners at once.
    #[arg(long, default_value_t = 4)]
    pub max_runners: usize,
    /// Idle runners beyond `--min-idle` are removed after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout_secs: u64,
    /// How runners are made.
    #[arg(long, value_enum, default_value_t = ProviderKind::Local)]
    pub provider: ProviderKind,
    /// With `--provider command`: the shell command that starts a runner host (its name,
    /// server, token and labels are in `GANTRY_RUNNER_NAME`, `GANTRY_SERVER`,
    /// `GANTRY_RUNNER_TOKEN`, `GANTRY_RUNNER_LABELS`).
    #[arg(long, value_name = "SCRIPT", required_if_eq("provider", "command"))]
    pub create_command: Option<String>,
    /// With `--provider command`: the shell command that removes a runner host.
    #[arg(long, value_name = "SCRIPT", required_if_eq("provider", "command"))]
    pub delete_command: Option<String>,
    /// Local runners run jobs without isolation (trusted workflows only).
    #[arg(long)]
    pub unsafe_host_executor: bool,
    /// Local runners let jobs reach the network.
    #[arg(long)]
    pub network: bool,
}

/// Arguments of `gantry up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the database, the runner token, runner work directories and logs live.
    #[arg(long, value_name = "DIR", default_value = ".gantry")]
    data_dir: PathBuf,
    /// The address to listen on (loopback: there is no user authentication yet).
    #[arg(long, value_name = "ADDR", default_value = gantry_server::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Once up, print where to find it as one JSON line on stdout: `{"server", "data_dir",
    /// "runner_logs", "max_runners", "min_idle"}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pool: PoolArgs,
}

/// A provisioner thread and the flag that stops it.
pub struct RunningPool {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RunningPool {
    /// Starts provisioning runners for the server at `server`.
    pub fn start(
        args: &PoolArgs,
        server: &str,
        token: &str,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<RunningPool> {
        let labels: Vec<String> = HOSTED_LABELS
            .iter()
            .map(|label| label.to_string())
            .collect();
        let provider: Box<dyn Provider> = match args.provider {
            ProviderKind::Local => {
                if !args.unsafe_host_executor {
                    crate::sandbox_setup::ensure_bubblewrap()?;
                }
                let mut extra = Vec::new();
                if args.unsafe_host_executor {
                    extra.push("--unsafe-host-executor".to_owned());
                }
                if args.network {
                    extra.push("--network".to_owned());
                }
                let work_dir =
                    std::path::absolute(data_dir.join("runners")).context("bad data directory")?;
                Box::new(LocalProvider::new(
                    server,
                    token,
                    &labels,
                    work_dir,
                    extra,
                    Some(data_dir.join("logs")),
                ))
            }
            ProviderKind::Command => {
                let (Some(create), Some(delete)) = (&args.create_command, &args.delete_command)
                else {
                    bail!("`--provider command` needs --create-command and --delete-command");
                };
                Box::new(CommandProvider::new(create, delete, server, token, &labels))
            }
        };
        let pool = PoolConfig {
            name_prefix: "gantry-pool-".to_owned(),
            labels,
            min_idle: args.min_idle,
            max: args.max_runners.max(1),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            start_timeout: Duration::from_secs(60),
        };
        let mut provisioner = Provisioner::new(server, pool, provider);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("provisioner".to_owned())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match provisioner.tick() {
                        Ok(tick) if tick.launched + tick.deleted > 0 => {
                            tracing::info!(
                                demand = tick.demand,
                                launched = tick.launched,
                                deleted = tick.deleted,
                                reaped = tick.reaped,
                                "provisioner"
                            );
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(error = %format!("{error:#}"), "provisioner tick failed")
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                provisioner.shutdown();
            })
            .context("cannot start the provisioner")?;
        Ok(RunningPool { stop, thread })
    }

    /// Stops provisioning and deletes the runners it launched.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

/// Runs server and provisioner until stopped.
pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    output::init_logging("info");
    let token = super::server::runner_token_file(&args.data_dir)?;
    let config = gantry_server::ServerConfig {
        listen: args.listen,
        storage: gantry_server::Storage::Sqlite {
            path: args.data_dir.join("gantry.sqlite"),
        },
        max_body_bytes: gantry_proto::v1::DEFAULT_MAX_BODY_BYTES,
        engine: Default::default(),
        runner_token: Some(token.clone()),
        runners: Default::default(),
        mirrors_dir: None,
    };
    let server = EmbeddedServer::start(config)?;
    let pool = RunningPool::start(&args.pool, &server.base, &token, &args.data_dir)?;
    output::message(&format!(
        "gantry is up at {base}\n  data:    {data}\n  runners: up to {max} local ephemeral runners ({min} kept warm), logs in {data}/logs\n  try:     gantry org create acme && gantry repo create acme/app && gantry submit --server {base} --repo acme/app FILE\n  watch:   gantry runs list --server {base}; gantry logs JOB -f --server {base}\nCtrl-C stops it.",
        base = server.base,
        data = args.data_dir.display(),
        max = args.pool.max_runners,
        min = args.pool.min_idle,
    ));
    if args.json {
        let data_dir = std::path::absolute(&args.data_dir).unwrap_or(args.data_dir.clone());
        output::json_line(&serde_json::json!({
            "server": server.base,
            "data_dir": data_dir.to_string_lossy(),
            "runner_logs": data_dir.join("logs").to_string_lossy(),
            "max_runners": args.pool.max_runners,
            "min_idle": args.pool.min_idle,
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    super::runner::stop_on_signals(Arc::clone(&stop))?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    output::message("stopping: removing runners, then the server");
    pool.stop();
    server.stop()?;
    Ok(ExitCode::SUCCESS)
}
