//! The control plane: the HTTP API (axum) over the store and the engine.
//!
//! [`serve`] opens the store (SQLite under the data directory, or PostgreSQL), applies its
//! migrations, rebuilds the in-memory indexes from it ([`App::recover`]) and serves API v1
//! until the shutdown future resolves. Everything a route does is an [`App`] method, usable
//! without HTTP: tests and the crash-safety driver complete jobs with [`App::complete_job`].
//!
//! Module map: `app` holds the store, the indexes and the one path every run change takes
//! (load, engine, one guarded transaction, then memory); `ops` the API operations; `routes`
//! the HTTP handlers; `extract` strict request parsing; `error` the error type and the one
//! code-to-status mapping; `views` and `convert` turn records into wire types; `openapi` the
//! generated document. The git triggers: `git` reads repositories (gitoxide), `webhook`
//! verifies and reads GitHub payloads, `github` builds the `github` context, `triggers` offers
//! an event to a commit's workflows, `resolve_calls` and `remote_calls` follow their reusable
//! workflow calls to the called files (other repositories' included), `hooks` and
//! `hook_routes` the operations and routes.
//!
//! Until authentication exists the server listens on loopback only by default.

#![forbid(unsafe_code)]

mod app;
mod called;
mod claims;
mod convert;
mod credentials;
mod dispatcher;
mod error;
mod extract;
mod feed;
mod git;
mod git_cache;
pub mod github;
mod hook_routes;
mod hooks;
mod invalid_runs;
mod job_routes;
mod leases;
mod logs;
mod lookups;
mod mirror;
mod openapi;
mod ops;
mod recent;
mod remote_calls;
mod resolve_calls;
mod routes;
mod run_changes;
mod run_locks;
mod runner_ops;
mod runner_registry;
mod runner_routes;
mod schedules;
#[cfg(test)]
mod test_support;
mod timers;
mod triggers;
mod views;
mod waiters;
pub mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use gantry_engine::EngineConfig;
use gantry_store::{PostgresOptions, SqliteOptions, Store, StoreError};

pub use app::{App, Recovery};
pub use dispatcher::RunnerSettings;
pub use error::{ApiError, status_of};
pub use hooks::WebhookHeaders;
pub use openapi::document_json as openapi_json;

/// The address the server listens on unless told otherwise: loopback only, because there is
/// no authentication yet.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// An SQLite file (created if missing).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://user@host:port/database`.
        url: String,
        /// Keep every table in this schema (created if missing) instead of the connection's
        /// default, so several servers or benchmarks can share one database.
        schema: Option<String>,
    },
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where the state lives.
    pub storage: Storage,
    /// The largest accepted request body.
    pub max_body_bytes: usize,
    /// The engine's retries, timeouts and limits for new runs.
    pub engine: EngineConfig,
    /// The hosted pool's registration token (kept as a hash); `None` accepts only tokens
    /// made for organizations.
    pub runner_token: Option<String>,
    /// Heartbeat interval and lease length.
    pub runners: RunnerSettings,
    /// Where mirrors of repositories registered by git URL live; `None`: beside the SQLite
    /// file, and none for PostgreSQL (URLs are then refused).
    pub mirrors_dir: Option<PathBuf>,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened or migrated.
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    /// The indexes could not be rebuilt from the store.
    #[error("cannot rebuild the server's state from the store: {0}")]
    Recover(ApiError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

/// Opens (creating and migrating as needed) the configured store.
pub async fn open_store(storage: &Storage) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match storage {
        Storage::Sqlite { path } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|error| StoreError::Invalid {
                    what: format!("cannot create `{}`: {error}", dir.display()),
                })?;
            }
            Arc::new(SqliteOptions::new(path).open().await?)
        }
        Storage::Postgres { url, schema } => {
            let mut options = PostgresOptions::new(url.clone());
            if let Some(schema) = schema {
                options = options.with_schema(schema.clone());
            }
            Arc::new(options.connect().await?)
        }
    })
}

/// Opens the store, rebuilds the queue index, and serves until `shutdown` resolves; the rest
/// of the in-memory state is rebuilt in the background ([`App::recover_open_runs`]).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_on(listener, config, shutdown).await
}

/// [`serve`] on a listener the caller bound (benchmarks and tests bind port 0 and read the
/// address first); `config.listen` is not used.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let store = open_store(&config.storage).await?;
    let mut app = App::new(store, config.engine.clone()).with_runner_settings(config.runners);
    // Mirrors of repositories registered by URL live in the data directory (`gantry server`
    // names it, for PostgreSQL too), else beside the SQLite file; without either, URLs are
    // refused.
    let sqlite_dir = match &config.storage {
        Storage::Sqlite { path } => path.parent().map(|dir| dir.join("mirrors")),
        Storage::Postgres { .. } => None,
    };
    if let Some(dir) = config.mirrors_dir.clone().or(sqlite_dir) {
        app = app.with_mirrors_dir(dir);
    }
    let app = Arc::new(app);
    if let Some(token) = &config.runner_token {
        app.allow_hosted_token(token)
            .await
            .map_err(ServerError::Recover)?;
    }
    let queued_jobs = app.recover_queue().await.map_err(ServerError::Recover)?;
    tracing::info!(queued_jobs, "queue rebuilt from the store");
    // The open runs' timers, groups and unheard claims are rebuilt while serving, so a
    // restart with many open runs is not a long outage; what needs them waits for them.
    let background = Arc::clone(&app);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match background.recover_open_runs().await {
            Ok(recovery) => tracing::info!(
                open_runs = recovery.open_runs,
                claims_replayed = recovery.claims_replayed,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "open runs recovered from the store"
            ),
            Err(error) => tracing::error!(error = %error, "cannot recover the open runs"),
        }
    });
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(addr = %addr, "listening beyond loopback without authentication");
    }
    tracing::info!(addr = %addr, "listening");
    let timers = tokio::spawn(Arc::clone(&app).run_timers());
    let leases = tokio::spawn(Arc::clone(&app).run_lease_watcher());
    let scheduler = tokio::spawn(Arc::clone(&app).run_scheduler());
    let result = axum::serve(listener, routes::router(app, config.max_body_bytes))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve);
    timers.abort();
    leases.abort();
    scheduler.abort();
    tracing::info!("server stopped");
    result
}
