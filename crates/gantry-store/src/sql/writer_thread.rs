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
//! The thread runs the store's loop of batches (`SqlStore::write_queued`), which takes the
//! next batch as soon as one has committed. It stops when the last store holding it is
//! dropped (the loop's own store does not hold it), dropping the loop: every caller waiting
//! for an answer holds a store, so a batch dropped then has nobody left to answer and rolls
//! back.

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

    /// Starts `work` on the writer thread without waiting for it; it is dropped when the
    /// thread ends.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(work);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Runs `work` on `writer` and waits for its answer; `None` if it did not finish.
    async fn run<T: Send + 'static>(
        writer: &WriterThread,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = oneshot::channel();
        writer.spawn(async move {
            let _ = answer.send(work.await);
        });
        answered.await.ok()
    }

    #[tokio::test]
    async fn work_runs_on_the_writer_thread_and_its_answer_comes_back() {
        let writer = WriterThread::start().unwrap();
        let name = run(&writer, async {
            std::thread::current().name().map(str::to_owned)
        })
        .await;
        assert_eq!(name, Some(Some("gantry-writer".to_owned())));
    }

    #[tokio::test]
    async fn the_thread_ends_when_the_last_clone_is_dropped() {
        let (writer, thread) = WriterThread::start_joinable().unwrap();
        let again = writer.clone();
        drop(writer);
        assert_eq!(
            run(&again, async { 1 }).await,
            Some(1),
            "a clone still runs work"
        );
        drop(again);
        thread.join().unwrap();
    }
}
