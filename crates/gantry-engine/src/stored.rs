//! A run's state as it is stored: a state document written after every event, and the
//! compiled workflow ([`crate::RunSpec`]) written once, when the run is created.
//!
//! The spec never changes during a run (a re-run is a new attempt of the same run, with the
//! same spec), yet it is most of a run's state: writing it with every event made every event
//! cost in proportion to the size of the workflow. So serializing a [`RunState`] leaves it out,
//! and reading a state takes the spec apart. Documents written before the split carry their
//! own spec; those still load, and their own spec is the one used.
//!
//! After an event the server writes only what changed: the run's own fields
//! ([`RunState::run_fields`], the document without its `jobs`) and the jobs whose state
//! changed, each serialized alone; the store keeps the rest as it was.

use serde::Serialize;
use serde_json::Value;

use crate::config::EngineConfig;
use crate::ids::{Millis, RunAttempt, RunId};
use crate::state::{GroupClaim, RunState};
use crate::status::{Conclusion, RunStatus};

/// The name of the spec in a state document written before the spec was stored apart.
const SPEC_FIELD: &str = "spec";

/// Why a stored state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredStateError {
    /// The document has no spec and none was given.
    #[error("the state document has no spec and no stored spec was given")]
    MissingSpec,
    /// The document or the spec is not what the engine writes.
    #[error("the state document does not parse: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// A run's state without its jobs and spec: serializes as the state's document does, minus
/// its `jobs` member. Two are equal when their documents would be: a transition whose run
/// fields equal those before it need not write them.
#[derive(Debug, PartialEq, Serialize)]
pub struct RunFields<'a> {
    id: &'a RunId,
    attempt: &'a RunAttempt,
    status: &'a RunStatus,
    conclusion: &'a Option<Conclusion>,
    created_at: &'a Millis,
    started_at: &'a Option<Millis>,
    completed_at: &'a Option<Millis>,
    cancel_requested: &'a bool,
    concurrency: &'a Option<GroupClaim>,
    config: &'a EngineConfig,
}

impl RunState {
    /// The run's own fields, to store apart from its jobs.
    pub fn run_fields(&self) -> RunFields<'_> {
        // Every field named, so that a field added to the state cannot be left out here.
        let RunState {
            id,
            attempt,
            status,
            conclusion,
            created_at,
            started_at,
            completed_at,
            cancel_requested,
            concurrency,
            jobs: _,
            config,
            spec: _,
            unended: _,
        } = self;
        RunFields {
            id,
            attempt,
            status,
            conclusion,
            created_at,
            started_at,
            completed_at,
            cancel_requested,
            concurrency,
            config,
        }
    }

    /// Reads a state back from a stored `document` (what serializing a [`RunState`] wrote) and
    /// the run's stored `spec` (what serializing its [`RunSpec`] wrote). A document written
    /// before the spec was stored apart carries its own spec, which wins; `spec` may then be
    /// `None`.
    pub fn from_stored(
        mut document: Value,
        spec: Option<Value>,
    ) -> Result<RunState, StoredStateError> {
        if let Value::Object(fields) = &mut document
            && !fields.contains_key(SPEC_FIELD)
        {
            // Deserialized in place with the rest, into the state's one `Arc`.
            fields.insert(
                SPEC_FIELD.to_owned(),
                spec.ok_or(StoredStateError::MissingSpec)?,
            );
        }
        let mut state: RunState = serde_json::from_value(document)?;
        state.unended = state.jobs.iter().filter(|job| !job.is_ended()).count();
        Ok(state)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Conclusion, EngineConfig, Event, JobKey, Millis, NewRun, RunId, create_run};

    /// A new run (id 7, created at 0) of the workflow file `source`.
    pub(crate) fn new_run(source: &str) -> RunState {
        let workflow = gantry_workflow::load(source, &Default::default()).unwrap();
        let new = NewRun {
            id: RunId(7),
            workflow: &workflow,
            trigger: Default::default(),
            config: EngineConfig::default(),
        };
        create_run(new, Millis(0)).unwrap().state
    }

    /// A run of `a` then `b`, with `a` completed (so the state is not the initial one).
    fn run_with_a_done() -> RunState {
        let mut state = new_run(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: make}]\n  \
             b:\n    needs: a\n    runs-on: x\n    steps: [{run: test}]\n",
        );
        let a = JobKey::single("a");
        let attempt = crate::Attempt(1);
        let started = Event::JobStarted {
            job: a.clone(),
            attempt,
        };
        state.handle(&started, Millis(1)).unwrap();
        let completed = Event::JobCompleted {
            job: a,
            attempt,
            conclusion: Conclusion::Success,
            outputs: Default::default(),
        };
        state.handle(&completed, Millis(2)).unwrap();
        state
    }

    #[test]
    fn the_document_leaves_the_spec_out_and_reads_back_with_it() {
        let state = run_with_a_done();
        let document = serde_json::to_value(&state).unwrap();
        assert!(document.get(SPEC_FIELD).is_none(), "{document}");
        let spec = serde_json::to_value(&*state.spec).unwrap();
        let back = RunState::from_stored(document, Some(spec)).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn the_run_fields_are_the_document_without_its_jobs() {
        let mut state = run_with_a_done();
        // Every optional run field set, so that one left out would show.
        state.conclusion = Some(Conclusion::Failure);
        state.started_at = Some(Millis(1));
        state.completed_at = Some(Millis(3));
        state.cancel_requested = true;
        state.concurrency = Some(GroupClaim {
            group: "deploy".to_owned(),
            cancel_in_progress: true,
            state: crate::ClaimState::Granted,
        });
        let mut document = serde_json::to_value(&state).unwrap();
        let jobs = document.as_object_mut().unwrap().remove("jobs").unwrap();
        assert_eq!(jobs.as_array().unwrap().len(), 2);
        assert_eq!(serde_json::to_value(state.run_fields()).unwrap(), document);
    }

    #[test]
    fn a_document_written_with_its_spec_still_loads_and_its_spec_wins() {
        let state = run_with_a_done();
        let mut document = serde_json::to_value(&state).unwrap();
        let spec = serde_json::to_value(&*state.spec).unwrap();
        document
            .as_object_mut()
            .unwrap()
            .insert(SPEC_FIELD.to_owned(), spec);
        assert_eq!(
            RunState::from_stored(document.clone(), None).unwrap(),
            state
        );
        // A stored spec that disagrees is not the one used.
        let other = serde_json::json!({"nonsense": true});
        assert_eq!(RunState::from_stored(document, Some(other)).unwrap(), state);
    }

    #[test]
    fn a_document_without_a_spec_needs_one() {
        let state = run_with_a_done();
        let document = serde_json::to_value(&state).unwrap();
        let error = RunState::from_stored(document.clone(), None).unwrap_err();
        assert!(matches!(error, StoredStateError::MissingSpec), "{error}");
        let bad_spec = serde_json::json!({"jobs": "not a list"});
        let error = RunState::from_stored(document, Some(bad_spec)).unwrap_err();
        assert!(matches!(error, StoredStateError::Invalid(_)), "{error}");
    }

    #[test]
    fn the_jobs_not_ended_are_counted_again_when_a_state_is_read_back() {
        let state = run_with_a_done();
        let spec = serde_json::to_value(&*state.spec).unwrap();
        let mut document = serde_json::to_value(&state).unwrap();
        assert!(document.get("unended").is_none(), "{document}");
        let back = RunState::from_stored(document.clone(), Some(spec.clone())).unwrap();
        assert_eq!(back.unended, 1);
        // A document written when the count was stored: its count is not the one used.
        document
            .as_object_mut()
            .unwrap()
            .insert("unended".to_owned(), serde_json::json!(5));
        let back = RunState::from_stored(document, Some(spec)).unwrap();
        assert_eq!(back.unended, 1);
        assert_eq!(back, state);
    }

    #[test]
    fn only_the_first_start_and_the_last_end_change_the_run_fields() {
        let mut state = new_run(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: make}]\n  \
             b:\n    runs-on: x\n    steps: [{run: test}]\n",
        );
        let attempt = crate::Attempt(1);
        let mut events = Vec::new();
        for job in ["a", "b"] {
            let job = JobKey::single(job);
            events.push(Event::JobStarted {
                job: job.clone(),
                attempt,
            });
            events.push(Event::JobCompleted {
                job,
                attempt,
                conclusion: Conclusion::Success,
                outputs: Default::default(),
            });
        }
        // a starts, a ends, b starts, b ends.
        let mut changed = Vec::new();
        for (at, event) in (1..).zip(&events) {
            let before = state.clone();
            state.handle(event, Millis(at)).unwrap();
            changed.push(before.run_fields() != state.run_fields());
        }
        assert_eq!(changed, [true, false, false, true]);
    }
}
