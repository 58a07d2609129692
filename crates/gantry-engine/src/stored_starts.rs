//! Starts kept in job rows rather than in state documents.
//!
//! A runner's claim starts one instance of its job, and the server writes that start to the
//! job's row (in progress, the claim's fencing token and time) in the same transaction as
//! the run's state. Writing the job's state document as well stored the same fact twice: a
//! job state of ~500 bytes serialized and upserted for every claim, a fifth of what a drain
//! wrote to the database per job. So a job whose only change is that instances started
//! ([`changed_only_by_starts`]) keeps its stored document until its next change (usually its
//! completion), and a state read back from the store takes its starts from the rows again
//! ([`RunState::restore_start`]).

use crate::ids::{Attempt, JobKey, Millis};
use crate::state::{JobInstance, JobState, RunState};
use crate::status::{JobStatus, RunStatus};

impl JobInstance {
    /// Starts the instance at `at`: running, waiting for nothing.
    pub(crate) fn start(&mut self, at: Millis) {
        self.status = JobStatus::InProgress;
        self.started_at = Some(at);
        self.reasons.clear();
    }
}

impl RunState {
    /// Notes that a job of the run started at `at`: the run is in progress from its first.
    pub(crate) fn note_start(&mut self, at: Millis) {
        if self.status == RunStatus::Queued {
            self.status = RunStatus::InProgress;
        }
        self.started_at.get_or_insert(at);
    }

    /// Applies a start that a job row shows and the stored document does not: the instance
    /// `key`, queued at `attempt`, started at `at` (as the engine starts it on a claim, without
    /// the job timeout it sets then: a state read back gets its timers from the instances).
    /// Returns whether it applied; an instance elsewhere (at another attempt, running or
    /// ended) is left alone.
    pub fn restore_start(&mut self, key: &JobKey, attempt: Attempt, at: Millis) -> bool {
        let Some(job) = self.spec.job_index(&key.job) else {
            return false;
        };
        let Ok(index) = usize::try_from(key.index) else {
            return false;
        };
        let startable = self
            .jobs
            .get(job)
            .and_then(|state| state.instances.get(index))
            .is_some_and(|instance| {
                instance.status == JobStatus::Queued && instance.attempt == attempt
            });
        if !startable {
            return false;
        }
        if let Some(instance) = self
            .jobs
            .get_mut(job)
            .and_then(|state| state.instances.get_mut(index))
        {
            instance.start(at);
        }
        self.note_start(at);
        true
    }
}

/// Whether job state `after` differs from `before` only by instances that started (queued
/// before, running after, at the same attempt): then its stored document may stay `before`,
/// the starts being in the job rows.
pub fn changed_only_by_starts(before: &JobState, after: &JobState) -> bool {
    let started = |was: &JobInstance, now: &JobInstance| {
        was.status == JobStatus::Queued
            && now.status == JobStatus::InProgress
            && now.attempt == was.attempt
    };
    // Most changes (a completion, a loss) start nothing: they are told apart without the
    // copy below.
    if before.instances.len() != after.instances.len()
        || !before
            .instances
            .iter()
            .zip(&after.instances)
            .any(|(was, now)| started(was, now))
    {
        return false;
    }
    let mut undone = after.clone();
    for (was, now) in before.instances.iter().zip(undone.instances.iter_mut()) {
        if started(was, now) {
            now.status = was.status;
            now.started_at = was.started_at;
            now.reasons.clone_from(&was.reasons);
        }
    }
    undone == *before
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::stored::tests::new_run;
    use crate::{Conclusion, Event};

    /// A new run of two independent jobs, both queued.
    fn queued_run() -> RunState {
        new_run(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: make}]\n  \
             b:\n    runs-on: x\n    steps: [{run: test}]\n",
        )
    }

    fn completed(job: &str) -> Event {
        Event::JobCompleted {
            job: JobKey::single(job),
            attempt: Attempt(1),
            conclusion: Conclusion::Success,
            outputs: Default::default(),
        }
    }

    fn started(job: &str) -> Event {
        Event::JobStarted {
            job: JobKey::single(job),
            attempt: Attempt(1),
        }
    }

    /// A start restored from a row is the start the engine makes on a claim, to the run's
    /// fields: the document that skipped it reads back as the state that made it.
    #[test]
    fn a_restored_start_is_the_engines_start() {
        let before = queued_run();
        let mut claimed = before.clone();
        claimed.handle(&started("a"), Millis(5)).unwrap();
        let mut restored = before.clone();
        assert!(restored.restore_start(&JobKey::single("a"), Attempt(1), Millis(5)));
        assert_eq!(restored, claimed);
        assert_eq!(restored.status, RunStatus::InProgress);
        assert_eq!(restored.started_at, Some(Millis(5)));
        // A later start leaves the run's own start as it was.
        assert!(restored.restore_start(&JobKey::single("b"), Attempt(1), Millis(9)));
        assert_eq!(restored.started_at, Some(Millis(5)));
    }

    /// Only a queued instance at the row's attempt is started: a row of an older attempt, a
    /// running or ended instance, or an unknown job changes nothing.
    #[test]
    fn a_start_is_restored_only_where_it_is_missing() {
        let mut state = queued_run();
        let a = JobKey::single("a");
        assert!(!state.restore_start(&a, Attempt(2), Millis(5)));
        assert!(!state.restore_start(&JobKey::single("nope"), Attempt(1), Millis(5)));
        assert!(!state.restore_start(&JobKey::new("a".to_owned(), 3), Attempt(1), Millis(5)));
        assert_eq!(state, queued_run());
        state.handle(&started("a"), Millis(5)).unwrap();
        let running = state.clone();
        assert!(!state.restore_start(&a, Attempt(1), Millis(6)));
        assert_eq!(state, running);
        state.handle(&completed("a"), Millis(7)).unwrap();
        let ended = state.clone();
        assert!(!state.restore_start(&a, Attempt(1), Millis(8)));
        assert_eq!(state, ended);
    }

    /// A claim's change to its job is only a start; a completion, a loss (a new attempt) or
    /// no change at all is not.
    #[test]
    fn only_a_start_is_a_change_only_by_starts() {
        let before = queued_run();
        let mut state = before.clone();
        state.handle(&started("a"), Millis(5)).unwrap();
        assert!(changed_only_by_starts(&before.jobs[0], &state.jobs[0]));
        assert!(!changed_only_by_starts(&before.jobs[0], &before.jobs[0]));

        let mut lost = state.clone();
        let loss = Event::JobLost {
            job: JobKey::single("a"),
            attempt: Attempt(1),
        };
        lost.handle(&loss, Millis(6)).unwrap();
        assert!(!changed_only_by_starts(&state.jobs[0], &lost.jobs[0]));
        let mut restarted = lost.clone();
        let second = Event::JobStarted {
            job: JobKey::single("a"),
            attempt: Attempt(2),
        };
        restarted.handle(&second, Millis(7)).unwrap();
        assert!(changed_only_by_starts(&lost.jobs[0], &restarted.jobs[0]));
        // Queued at attempt 1, running at attempt 2: more than a start.
        assert!(!changed_only_by_starts(&before.jobs[0], &restarted.jobs[0]));

        let mut done = state.clone();
        done.handle(&completed("a"), Millis(8)).unwrap();
        assert!(!changed_only_by_starts(&state.jobs[0], &done.jobs[0]));
    }
}
