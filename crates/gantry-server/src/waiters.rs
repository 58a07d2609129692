//! Claims waiting for work. A long-polling claim that finds nothing to pick waits here, and a
//! job queued wakes one waiting claim whose runner can take it, the longest waiting first.
//! Ringing every waiting claim for every job had each of them take the dispatcher's lock and
//! find nothing: with 64 idle runners, 63 wasted wake-ups per job.
//!
//! Each waiter has a bell of its own (a [`Notify`] keeps a wake-up that comes before the
//! claim listens), and is taken out of the line when woken, so one job wakes one claim.

use std::collections::VecDeque;
use std::sync::Arc;

use gantry_engine::dispatch::RunnerView;
use gantry_store::RunnerId;
use tokio::sync::Notify;

/// A waiting claim's place in line, to leave it by.
pub(crate) type WaiterId = u64;

/// The claims waiting for work, longest waiting first.
#[derive(Default)]
pub(crate) struct Waiters {
    line: VecDeque<Waiter>,
    next_id: WaiterId,
}

struct Waiter {
    id: WaiterId,
    runner: RunnerId,
    view: RunnerView,
    bell: Arc<Notify>,
}

impl Waiters {
    /// Puts a claim of `runner` at the end of the line; it waits on the returned bell.
    pub(crate) fn add(&mut self, runner: RunnerId, view: RunnerView) -> (WaiterId, Arc<Notify>) {
        self.next_id += 1;
        let bell = Arc::new(Notify::new());
        self.line.push_back(Waiter {
            id: self.next_id,
            runner,
            view,
            bell: Arc::clone(&bell),
        });
        (self.next_id, bell)
    }

    /// Takes a claim out of the line: true if it was still waiting, false if it had been
    /// woken (and taken out) already.
    pub(crate) fn remove(&mut self, id: WaiterId) -> bool {
        match self.line.iter().position(|waiter| waiter.id == id) {
            Some(index) => {
                self.line.remove(index);
                true
            }
            None => false,
        }
    }

    /// Wakes the longest-waiting claim for which `wanted` holds (its runner can take the
    /// job); false if none could.
    pub(crate) fn wake_one(&mut self, wanted: impl Fn(RunnerId, &RunnerView) -> bool) -> bool {
        let Some(index) = self
            .line
            .iter()
            .position(|waiter| wanted(waiter.runner, &waiter.view))
        else {
            return false;
        };
        if let Some(waiter) = self.line.remove(index) {
            waiter.bell.notify_one();
        }
        true
    }

    /// Wakes every waiting claim (what frees up may suit any of them).
    pub(crate) fn wake_all(&mut self) {
        for waiter in self.line.drain(..) {
            waiter.bell.notify_one();
        }
    }

    /// How many claims wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.line.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_engine::dispatch::LabelSet;

    fn view(label: &str) -> RunnerView {
        RunnerView::hosted(LabelSet::new([label]))
    }

    #[tokio::test]
    async fn a_wake_up_goes_to_the_longest_waiting_claim_that_wants_it() {
        let mut waiters = Waiters::default();
        let (_, linux_first) = waiters.add(RunnerId(1), view("linux"));
        let (_, gpu) = waiters.add(RunnerId(2), view("gpu"));
        let (_, linux_second) = waiters.add(RunnerId(3), view("linux"));

        assert!(waiters.wake_one(|_, view| view.labels.iter().any(|l| l == "gpu")));
        // Woken before it listens: the bell keeps the wake-up.
        gpu.notified().await;
        assert!(waiters.wake_one(|_, view| view.labels.iter().any(|l| l == "linux")));
        linux_first.notified().await;
        assert_eq!(waiters.len(), 1);
        assert!(!waiters.wake_one(|_, view| view.labels.iter().any(|l| l == "gpu")));

        waiters.wake_all();
        linux_second.notified().await;
        assert_eq!(waiters.len(), 0);
    }

    #[test]
    fn leaving_says_whether_the_claim_was_still_waiting() {
        let mut waiters = Waiters::default();
        let (first, _) = waiters.add(RunnerId(1), view("linux"));
        let (second, _) = waiters.add(RunnerId(1), view("linux"));
        assert!(waiters.wake_one(|_, _| true));
        assert!(!waiters.remove(first), "the first was woken");
        assert!(waiters.remove(second));
        assert!(!waiters.remove(second));
    }
}
