//! A gantry server inside this process, on its own async runtime: what `gantry up`, `gantry
//! run` and the benchmarks start, so one command needs no other service.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::commands::client::{Client, Reply};

/// A running server.
pub struct EmbeddedServer {
    /// `http://ADDR`.
    pub base: String,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), gantry_server::ServerError>>,
}

impl EmbeddedServer {
    /// Starts a server with `config` on `config.listen` (port 0 picks a free port) and waits
    /// until it answers.
    pub fn start(config: gantry_server::ServerConfig) -> anyhow::Result<EmbeddedServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.listen))
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = runtime.spawn(gantry_server::serve_on(listener, config, async {
            let _ = stopped.await;
        }));
        let base = format!("http://{addr}");
        let client = Client::new(Some(&base));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(
            client.get::<serde_json::Value>("/health"),
            Ok(Reply::Ok(..))
        ) {
            if serving.is_finished() || Instant::now() > deadline {
                let result = runtime.block_on(serving);
                bail!("the server did not start: {result:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(EmbeddedServer {
            base,
            runtime,
            stop,
            serving,
        })
    }

    /// Stops the server and waits for it.
    pub fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.runtime
            .block_on(self.serving)
            .context("the server task failed")?
            .context("the server failed")?;
        Ok(())
    }
}
