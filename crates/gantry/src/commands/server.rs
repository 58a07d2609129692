//! `gantry server`: the control plane on one machine.
//!
//! SQLite under `--data-dir` by default, PostgreSQL with `--database-url`; loopback only
//! unless `--listen` says otherwise (there is no authentication yet). Logs go to stderr;
//! `GANTRY_LOG` sets the filter (default `info`). Stops on Ctrl-C or SIGTERM. Hosted runners
//! register with `--runner-token`, or the token kept in `DATA_DIR/runner-token`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gantry_server::{ServerConfig, Storage};

/// Arguments of `gantry server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where the SQLite database lives (ignored with `--database-url`).
    #[arg(long, value_name = "DIR", default_value = ".gantry")]
    data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user@host:port/db`) instead of SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// With `--database-url`: keep gantry's tables in this schema (created if missing).
    #[arg(long, value_name = "NAME", requires = "database_url")]
    database_schema: Option<String>,
    /// The address to listen on; loopback by default because there is no authentication yet.
    #[arg(long, value_name = "ADDR", default_value = gantry_server::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The largest accepted request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = gantry_proto::v1::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// The hosted pool's runner registration token. Without it, the token in
    /// `DATA_DIR/runner-token` is used, made on first start.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GANTRY_RUNNER_TOKEN",
        hide_env_values = true
    )]
    runner_token: Option<String>,
    /// How often runners heartbeat a claimed job, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    heartbeat_interval_ms: u64,
    /// A claimed job whose runner is silent this long is lost and queued again.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    lease_ms: u64,
}

/// The hosted pool's registration token kept in the data directory, made on first use
/// (readable by the owner only).
pub fn runner_token_file(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("runner-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create `{}`", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
        .context("cannot read /dev/urandom for a runner token")?;
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let token = format!("gantry-hosted.{token}");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(token)
}

/// Runs the server until it is stopped.
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    crate::output::init_logging("info");
    let storage = match args.database_url {
        Some(url) => Storage::Postgres {
            url,
            schema: args.database_schema,
        },
        None => Storage::Sqlite {
            path: args.data_dir.join("gantry.sqlite"),
        },
    };
    let runner_token = match args.runner_token {
        Some(token) => token,
        None => {
            let token = runner_token_file(&args.data_dir)?;
            tracing::info!(path = %args.data_dir.join("runner-token").display(), "hosted runners register with the token in this file");
            token
        }
    };
    let config = ServerConfig {
        listen: args.listen,
        storage,
        max_body_bytes: args.max_body_bytes,
        engine: Default::default(),
        runner_token: Some(runner_token),
        runners: gantry_server::RunnerSettings {
            heartbeat_interval_ms: args.heartbeat_interval_ms.max(100),
            lease_ms: args.lease_ms.max(args.heartbeat_interval_ms.max(100) * 2),
        },
        // In the data directory whatever the backend: replicas of a PostgreSQL server each
        // keep their own (a missing mirror is cloned again from the stored URL).
        mirrors_dir: Some(args.data_dir.join("mirrors")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(gantry_server::serve(config, shutdown_signal()))
        .map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}

/// Watches for Ctrl-C and SIGTERM on a thread of its own (with its own small runtime, as the
/// commands that need it block their main thread): `first` runs on the first signal, and a
/// second one logs `second` as a warning and exits at once with 130 (`interrupt::INTERRUPTED`).
pub(crate) fn on_signals(
    first: impl FnOnce() + Send + 'static,
    second: &'static str,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal listener")?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                shutdown_signal().await;
                first();
                shutdown_signal().await;
                tracing::warn!("{second}");
                std::process::exit(i32::from(super::interrupt::INTERRUPTED));
            });
        })
        .context("cannot start the signal listener")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (also `gantry runner`'s stop signal).
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupted; shutting down"),
        () = terminate => tracing::info!("terminated; shutting down"),
    }
}
