//! Group commit for run creation: concurrent `create_run` calls share one transaction.
//!
//! Creating a run is a handful of small statements, but its commit is a disk flush (SQLite
//! with `synchronous=FULL`, PostgreSQL's WAL flush), and on PostgreSQL every creation of a
//! workflow's runs also waits for that workflow's run-number row. One transaction per run caps
//! ingest at one flush per run. Here each caller queues its request and then takes the leader
//! lock; whoever holds it takes every request queued so far and runs them as one batch: one
//! transaction, each request inside a savepoint of its own (so one refused request changes
//! nothing and does not sink the others), one commit, then every caller gets its answer. While
//! a batch commits the next one gathers, so batches grow with the load and a lone request
//! still goes straight through.
//!
//! A caller whose request was taken by an earlier leader finds the queue empty when it gets
//! the lock, and its answer already sent.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::model::{BuildRun, CreatedRun, NewRun};

/// What a queued creation stores besides the run's fixed facts.
pub(crate) enum Content {
    /// A run of a loaded workflow: the engine builds its state and jobs.
    Build(BuildRun),
    /// A run of a workflow file that failed to load: completed, failed, no jobs, these errors.
    Invalid(Vec<String>),
}

/// One queued `create_run` call.
pub(crate) struct PendingCreation {
    pub run: NewRun,
    pub content: Content,
    pub idempotency_key: Option<String>,
    pub reply: oneshot::Sender<Result<CreatedRun, StoreError>>,
}

/// The queue of creations waiting for a batch, and the lock its leader holds.
#[derive(Default)]
pub(crate) struct CreationQueue {
    pending: Mutex<Vec<PendingCreation>>,
    leader: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CreationQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreationQueue")
            .field("pending", &self.lock_pending().len())
            .finish()
    }
}

impl CreationQueue {
    /// Queues a creation; its answer arrives on the receiver once a leader has run it.
    pub fn push(
        &self,
        run: NewRun,
        content: Content,
        idempotency_key: Option<String>,
    ) -> oneshot::Receiver<Result<CreatedRun, StoreError>> {
        let (reply, answer) = oneshot::channel();
        self.lock_pending().push(PendingCreation {
            run,
            content,
            idempotency_key,
            reply,
        });
        answer
    }

    /// Waits to lead: while the guard lives, no other batch is being formed here.
    pub async fn lead(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.leader.lock().await
    }

    /// Everything queued so far (empty when an earlier leader took this caller's request).
    pub fn take(&self) -> Vec<PendingCreation> {
        std::mem::take(&mut *self.lock_pending())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<PendingCreation>> {
        // Only `Vec` pushes and takes happen under the lock: a panic cannot leave it torn.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
