//! A run's job states, shared between copies of the run until one of them changes a job.
//!
//! The server keeps a run's committed state and computes the next one on a copy. Copying a
//! 1,000-job run deep cost more than the event itself (and dropping the old copy as much
//! again), though an event changes a handful of jobs. So each job's state sits behind an
//! `Arc`: copying the run copies pointers, and a job is copied only when it is about to
//! change (`IndexMut`, [`JobStates::get_mut`] and [`JobStates::iter_mut`] copy a shared job
//! first). A job still shared by two copies is the same in both ([`JobStates::same_job`]), so
//! finding what an event changed costs a pointer comparison per job it did not touch.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::state::JobState;

/// The jobs of a run, in file order; serializes as a list of job states.
#[derive(Debug, Clone, Default)]
pub struct JobStates(Vec<Arc<JobState>>);

impl JobStates {
    /// How many jobs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Job `index`.
    pub fn get(&self, index: usize) -> Option<&JobState> {
        self.0.get(index).map(|job| &**job)
    }

    /// Job `index`, to change (copied first if another copy of the run shares it).
    pub fn get_mut(&mut self, index: usize) -> Option<&mut JobState> {
        self.0.get_mut(index).map(Arc::make_mut)
    }

    /// The jobs in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &JobState> + ExactSizeIterator {
        self.0.iter().map(|job| &**job)
    }

    /// The jobs in order, to change (each copied first if shared).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut JobState> {
        self.0.iter_mut().map(Arc::make_mut)
    }

    /// Whether job `index` is the same here and in `other`: shared by both, or equal.
    pub fn same_job(&self, other: &JobStates, index: usize) -> bool {
        match (self.0.get(index), other.0.get(index)) {
            (Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs) || mine == theirs,
            (None, None) => true,
            _ => false,
        }
    }
}

impl Index<usize> for JobStates {
    type Output = JobState;

    fn index(&self, index: usize) -> &JobState {
        &self.0[index]
    }
}

impl IndexMut<usize> for JobStates {
    fn index_mut(&mut self, index: usize) -> &mut JobState {
        Arc::make_mut(&mut self.0[index])
    }
}

impl PartialEq for JobStates {
    fn eq(&self, other: &JobStates) -> bool {
        self.len() == other.len() && (0..self.len()).all(|index| self.same_job(other, index))
    }
}

impl FromIterator<JobState> for JobStates {
    fn from_iter<I: IntoIterator<Item = JobState>>(jobs: I) -> JobStates {
        JobStates(jobs.into_iter().map(Arc::new).collect())
    }
}

impl<'a> IntoIterator for &'a JobStates {
    type Item = &'a JobState;
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, Arc<JobState>>, fn(&'a Arc<JobState>) -> &'a JobState>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|job| &**job)
    }
}

impl Serialize for JobStates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for JobStates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JobStates, D::Error> {
        Ok(Vec::<JobState>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::state::{JobPhase, StrategyState};

    fn job(id: &str) -> JobState {
        JobState {
            id: id.to_owned(),
            phase: JobPhase::Waiting,
            result: None,
            outputs: Default::default(),
            waiting_on: Default::default(),
            message: None,
            matrix_pending: false,
            strategy: StrategyState::default(),
            instances: Vec::new(),
            active: 0,
            unfinished: 0,
            next_release: 0,
        }
    }

    #[test]
    fn a_copy_shares_every_job_until_one_is_changed() {
        let jobs: JobStates = ["a", "b", "c"].into_iter().map(job).collect();
        let mut copy = jobs.clone();
        copy[1].phase = JobPhase::Decided;
        assert!(copy.same_job(&jobs, 0) && copy.same_job(&jobs, 2));
        assert!(!copy.same_job(&jobs, 1));
        assert!(Arc::ptr_eq(&copy.0[0], &jobs.0[0]));
        assert!(!Arc::ptr_eq(&copy.0[1], &jobs.0[1]));
        // The original is untouched.
        assert_eq!(jobs[1].phase, JobPhase::Waiting);
        assert_ne!(copy, jobs);
    }

    #[test]
    fn a_job_changed_back_to_what_it_was_is_the_same() {
        let jobs: JobStates = ["a"].into_iter().map(job).collect();
        let mut copy = jobs.clone();
        copy[0].phase = JobPhase::Decided;
        copy[0].phase = JobPhase::Waiting;
        assert!(copy.same_job(&jobs, 0));
        assert_eq!(copy, jobs);
    }

    #[test]
    fn serializes_as_a_list_of_job_states() {
        let jobs: JobStates = ["a", "b"].into_iter().map(job).collect();
        let text = serde_json::to_string(&jobs).unwrap();
        let plain: Vec<JobState> = serde_json::from_str(&text).unwrap();
        assert_eq!(plain.len(), 2);
        assert_eq!(serde_json::to_string(&plain).unwrap(), text);
        let back: JobStates = serde_json::from_str(&text).unwrap();
        assert_eq!(back, jobs);
    }
}
