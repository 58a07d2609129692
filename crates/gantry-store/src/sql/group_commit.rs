//! Group commit for run writes: concurrent creations, transitions and claims share one
//! transaction.
//!
//! Each of these writes is a handful of small statements, but its commit is a disk flush
//! (SQLite with `synchronous=FULL`, PostgreSQL's WAL flush), and SQLite has one writer: one
//! transaction per write caps a server at one flush per run created, job claimed or job
//! completed. Here each caller queues its write and then takes the leader lock; whoever holds
//! it takes every write queued so far and runs them as one batch: one transaction, each write
//! inside a savepoint of its own (so one refused write — a stale state version, a job no
//! longer queued, an existing run — changes nothing and does not sink the others), one
//! commit, then every caller gets its answer. While a batch commits the next one gathers, so
//! batches grow with the load and a lone write still goes straight through, without a
//! savepoint.
//!
//! A caller whose write was taken by an earlier leader finds the queue empty when it gets the
//! lock, and its answer already sent. Answers go out only after the commit, so a caller told
//! of a refusal that reads the store again sees what its batch mates wrote.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::ids::{JobId, RunnerId};
use crate::model::{AppliedTransition, BuildRun, Claim, CreatedRun, Lease, NewRun, Transition};

/// What a queued creation stores besides the run's fixed facts.
pub(crate) enum Content {
    /// A run of a loaded workflow: the engine builds its state and jobs.
    Build(BuildRun),
    /// A run of a workflow file that failed to load: completed, failed, no jobs, these errors.
    Invalid(Vec<String>),
}

/// Where a write's answer goes.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One queued write and where its answer goes.
pub(crate) enum PendingWrite {
    /// A `create_run` or `create_invalid_run` call.
    Create {
        run: NewRun,
        content: Content,
        idempotency_key: Option<String>,
        reply: Reply<CreatedRun>,
    },
    /// An `apply_transition` call.
    Transition {
        transition: Transition,
        reply: Reply<AppliedTransition>,
    },
    /// A `claim_job` call.
    Claim {
        job_id: JobId,
        runner_id: RunnerId,
        lease: Lease,
        reply: Reply<Claim>,
    },
}

impl PendingWrite {
    /// Answers a write that was not stored because its batch failed as a whole.
    pub fn fail(self, cause: &str) {
        let error = || StoreError::BatchFailed {
            cause: cause.to_owned(),
        };
        // A caller that went away needs no answer.
        match self {
            PendingWrite::Create { reply, .. } => {
                let _ = reply.send(Err(error()));
            }
            PendingWrite::Transition { reply, .. } => {
                let _ = reply.send(Err(error()));
            }
            PendingWrite::Claim { reply, .. } => {
                let _ = reply.send(Err(error()));
            }
        }
    }
}

/// A write that has run inside its batch's transaction: whether it is to be kept, and its
/// answer, sent once the batch's fate is known.
pub(crate) struct Performed {
    /// Whether its changes stay (its savepoint is released) or go (rolled back).
    pub keep: bool,
    /// Sends the write's own result, or — with an error — that error instead.
    deliver: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

impl Performed {
    /// A write's result and where it goes; `keep` says which successes change the store
    /// (a creation that found its idempotency key's run changes nothing).
    pub fn new<T: Send + 'static>(
        reply: Reply<T>,
        result: Result<T, StoreError>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Performed {
        let keep = result.as_ref().is_ok_and(keep);
        Performed {
            keep,
            deliver: Box::new(move |failure| {
                let answer = match failure {
                    Some(error) => Err(error),
                    None => result,
                };
                // A caller that went away needs no answer.
                let _ = reply.send(answer);
            }),
        }
    }

    /// Sends the write's own result: its batch committed (or it was refused and rolled back,
    /// which it is either way).
    pub fn answer(self) {
        (self.deliver)(None);
    }

    /// Sends `error` instead of the write's result: its transaction did not commit.
    pub fn fail(self, error: StoreError) {
        (self.deliver)(Some(error));
    }
}

/// The queue of writes waiting for a batch, and the lock its leader holds (PostgreSQL) or the
/// bell that wakes the writer thread (SQLite).
#[derive(Default)]
pub(crate) struct WriteQueue {
    pending: Mutex<Vec<PendingWrite>>,
    leader: tokio::sync::Mutex<()>,
    bell: tokio::sync::Notify,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue")
            .field("pending", &self.lock_pending().len())
            .finish()
    }
}

impl WriteQueue {
    /// Queues several writes at once, so that one batch takes them all (unless one that is
    /// being formed took them first: then that one); their answers arrive in order.
    pub fn push_all<T>(
        &self,
        makes: impl IntoIterator<Item = impl FnOnce(Reply<T>) -> PendingWrite>,
    ) -> Vec<oneshot::Receiver<Result<T, StoreError>>> {
        let mut pending = self.lock_pending();
        makes
            .into_iter()
            .map(|make| {
                let (reply, answer) = oneshot::channel();
                pending.push(make(reply));
                answer
            })
            .collect()
    }

    /// Waits to lead: while the guard lives, no other batch is being formed here.
    pub async fn lead(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.leader.lock().await
    }

    /// Tells the writer thread that writes are queued. Rung while it is busy, it finds them
    /// when its batch ends (the bell keeps one ring).
    pub fn ring(&self) {
        self.bell.notify_one();
    }

    /// Waits for [`WriteQueue::ring`].
    pub async fn rung(&self) {
        self.bell.notified().await;
    }

    /// Everything queued so far (empty when an earlier leader took this caller's write).
    pub fn take(&self) -> Vec<PendingWrite> {
        std::mem::take(&mut *self.lock_pending())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<PendingWrite>> {
        // Only `Vec` pushes and takes happen under the lock: a panic cannot leave it torn.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
