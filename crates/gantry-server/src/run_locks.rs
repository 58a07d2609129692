//! One change at a time per run: changes of one run wait for each other in the server
//! instead of racing for its state version.
//!
//! Every change is still guarded by the version it was computed from (another node, or a
//! change made outside the engine, can move a run), so this is not what keeps the store
//! consistent; it is what keeps concurrent changes of one run from each reading the run
//! anew, computing, and all but one being refused and recomputed. Batched claims spread over
//! the same runs made that common: eight claimers of 256 jobs each hit every run of a
//! 100-job workflow about ten times at once.

use std::sync::{Arc, Mutex};

use foldhash::HashMap;
use gantry_store::RunId;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The lock of every run being changed; a run's entry goes when its last holder or waiter
/// leaves.
#[derive(Default)]
pub(crate) struct RunLocks {
    locks: Mutex<HashMap<RunId, Arc<AsyncMutex<()>>>>,
}

/// A run held for one change.
pub(crate) struct RunGuard<'a> {
    locks: &'a RunLocks,
    run: RunId,
    lock: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl RunLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<AsyncMutex<()>>>> {
        // Plain data: a panic elsewhere cannot leave the map half-changed.
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until no other change of `run` is under way, and holds it until the guard drops.
    pub(crate) async fn lock(&self, run: RunId) -> RunGuard<'_> {
        let lock = Arc::clone(self.map().entry(run).or_default());
        let guard = Arc::clone(&lock).lock_owned().await;
        RunGuard {
            locks: self,
            run,
            lock,
            guard: Some(guard),
        }
    }

    /// Holds several runs for one change of them all: in id order (each once), so that two
    /// such changes over overlapping runs cannot each hold a run the other waits for.
    pub(crate) async fn lock_all(
        &self,
        runs: impl IntoIterator<Item = RunId>,
    ) -> Vec<RunGuard<'_>> {
        let mut runs: Vec<RunId> = runs.into_iter().collect();
        runs.sort_unstable();
        runs.dedup();
        let mut guards = Vec::with_capacity(runs.len());
        for run in runs {
            guards.push(self.lock(run).await);
        }
        guards
    }

    /// How many runs have an entry (held or waited for).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // The map's reference and ours: nobody else holds or waits (a newcomer clones the
        // lock under the map's lock, which this holds).
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Changes of one run never overlap; changes of different runs do; the map empties.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_of_one_run_take_turns_and_the_map_empties() {
        let locks = Arc::new(RunLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _held = locks.lock(RunId(1)).await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(locks.len(), 0);

        let first = locks.lock(RunId(1)).await;
        let other = tokio::time::timeout(std::time::Duration::from_secs(5), locks.lock(RunId(2)))
            .await
            .expect("another run is not held up");
        assert_eq!(locks.len(), 2);
        drop((first, other));
        assert_eq!(locks.len(), 0);
    }

    /// Batches over overlapping runs, each naming them in another order, all get through:
    /// runs are held in id order, so none holds a run another waits for while waiting for
    /// one that other holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_over_overlapping_runs_never_wait_for_each_other() {
        let locks = Arc::new(RunLocks::default());
        let tasks: Vec<_> = (0..32)
            .map(|task| {
                let locks = locks.clone();
                tokio::spawn(async move {
                    let mut runs: Vec<RunId> = (1..=6).map(RunId).collect();
                    runs.rotate_left(task % 6);
                    if task % 2 == 1 {
                        runs.reverse();
                    }
                    // A run named twice is held once.
                    runs.push(runs[0]);
                    let held = locks.lock_all(runs).await;
                    assert_eq!(held.len(), 6);
                    tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                })
            })
            .collect();
        let all = futures_util::future::join_all(tasks);
        let done = tokio::time::timeout(std::time::Duration::from_secs(10), all)
            .await
            .expect("no batch waits forever");
        assert!(done.iter().all(Result::is_ok));
        assert_eq!(locks.len(), 0);
    }
}
