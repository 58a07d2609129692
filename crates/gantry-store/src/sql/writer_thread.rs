//! The thread batches of SQLite writes run on: a single-threaded async runtime of the
//! store's own ([`super::Backend::OWN_WRITER_THREAD`]).
//!
//! A batch is a chain of statements, each a round trip to SQLite's connection thread, and
//! every round trip ends with the batch's task being woken to send the next one. On the
//! server's runtime that wake-up waits its turn behind whatever the workers are doing (HTTP
//! requests, JSON, the engine), so under load the single writer connection sat idle between
//! statements: it was busy about half of each batch (`perf` of `gantry bench drain`), and a
//! claim at 1,000 jobs/s over HTTP waited p50 105–140 ms against 25 ms here. Here the
//! batch's task is the only work of its thread, so it is woken as soon as an answer arrives.
//!
//! The thread stops when the last store holding it is dropped. A running batch holds a store,
//! so that happens only between batches.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A running writer thread and its runtime; cloned with the store.
#[derive(Debug, Clone)]
pub(crate) struct WriterThread {
    runtime: Handle,
    /// Dropped with the last clone, which ends the thread.
    _stop: Arc<oneshot::Sender<()>>,
}

impl WriterThread {
    /// Starts the thread.
    pub fn start() -> std::io::Result<WriterThread> {
        Self::start_joinable().map(|(writer, _thread)| writer)
    }

    /// Starts the thread; its handle says when it has ended.
    fn start_joinable() -> std::io::Result<(WriterThread, std::thread::JoinHandle<()>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gantry-writer".to_owned())
            .spawn(move || {
                // Runs the spawned batches until every store is gone; the runtime is dropped
                // here, outside any async context.
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })?;
        let writer = WriterThread {
            runtime: handle,
            _stop: Arc::new(stop),
        };
        Ok((writer, thread))
    }

    /// Runs `work` on the writer thread and waits for it. `None` when it did not finish (it
    /// panicked, or the thread is stopping).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        self.runtime.spawn(work).await.ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_writer_thread_and_its_answer_comes_back() {
        let writer = WriterThread::start().unwrap();
        let name = writer
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await;
        assert_eq!(name, Some(Some("gantry-writer".to_owned())));
    }

    #[tokio::test]
    async fn a_panicking_batch_is_reported_as_unfinished_and_the_thread_goes_on() {
        let writer = WriterThread::start().unwrap();
        let panicked: Option<()> = writer.run(async { panic!("a broken batch") }).await;
        assert_eq!(panicked, None);
        assert_eq!(writer.run(async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn the_thread_ends_when_the_last_clone_is_dropped() {
        let (writer, thread) = WriterThread::start_joinable().unwrap();
        let again = writer.clone();
        drop(writer);
        assert_eq!(
            again.run(async { 1 }).await,
            Some(1),
            "a clone still runs work"
        );
        drop(again);
        thread.join().unwrap();
    }
}
