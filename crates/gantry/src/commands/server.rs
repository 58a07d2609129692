//! `gantry server`: the control plane on one machine.
//!
//! SQLite under `--data-dir` by default, PostgreSQL with `--database-url`; loopback only
//! unless `--listen` says otherwise (there is no authentication yet). Logs go to stderr;
//! `GANTRY_LOG` sets the filter (default `info`). Stops on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
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
}

/// Runs the server until it is stopped.
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let storage = match args.database_url {
        Some(url) => Storage::Postgres {
            url,
            schema: args.database_schema,
        },
        None => Storage::Sqlite {
            path: args.data_dir.join("gantry.sqlite"),
        },
    };
    let config = ServerConfig {
        listen: args.listen,
        storage,
        max_body_bytes: args.max_body_bytes,
        engine: Default::default(),
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
