//! Property tests over random job graphs with random outcomes: every run completes, every job
//! ends exactly once, no job is queued or started before its needs ended, and the same events
//! at the same times always give the same states and effects.

use std::collections::BTreeMap;

use gantry_engine::{
    Attempt, Conclusion, Effect, EngineConfig, EngineError, Event, JobKey, JobPhase, JobStatus,
    Millis, NewRun, RunId, RunState, RunStatus, TimerKind, apply, create_run,
};
use indexmap::IndexMap;
use proptest::prelude::*;

use crate::harness::{push_trigger, wf, workflow};

#[derive(Debug, Clone)]
struct JobShape {
    needs: Vec<usize>,
    condition: u8,
    continue_on_error: bool,
    matrix: u8,
    fail_fast: bool,
    max_parallel: Option<u8>,
}

fn job_shape(index: usize) -> impl Strategy<Value = JobShape> {
    (
        proptest::collection::vec(0..index.max(1), 0..=index.min(3)),
        0u8..8,
        prop::bool::weighted(0.2),
        0u8..=3,
        any::<bool>(),
        prop::option::of(1u8..=2),
    )
        .prop_map(
            move |(mut needs, condition, continue_on_error, matrix, fail_fast, max_parallel)| {
                needs.retain(|&need| need < index);
                needs.sort_unstable();
                needs.dedup();
                JobShape {
                    needs,
                    condition,
                    continue_on_error,
                    matrix,
                    fail_fast,
                    max_parallel,
                }
            },
        )
}

fn graph() -> impl Strategy<Value = Vec<JobShape>> {
    (1usize..=9).prop_flat_map(|count| (0..count).map(job_shape).collect::<Vec<_>>())
}

fn yaml(shapes: &[JobShape]) -> String {
    let jobs: Vec<(String, String)> = shapes
        .iter()
        .enumerate()
        .map(|(index, shape)| {
            let mut extra = String::new();
            if !shape.needs.is_empty() {
                let needs: Vec<String> = shape.needs.iter().map(|n| format!("j{n}")).collect();
                extra.push_str(&format!("needs: [{}]\n", needs.join(", ")));
            }
            let condition = match shape.condition {
                1 => Some("always()".to_owned()),
                2 => Some("failure()".to_owned()),
                3 => Some("success()".to_owned()),
                4 => Some("cancelled()".to_owned()),
                5 => Some("${{ !cancelled() }}".to_owned()),
                6 => shape.needs.first().map(|n| format!("success('j{n}')")),
                _ => None,
            };
            if let Some(condition) = condition {
                extra.push_str(&format!("if: \"{condition}\"\n"));
            }
            if shape.continue_on_error {
                extra.push_str("continue-on-error: true\n");
            }
            if shape.matrix > 0 {
                let values: Vec<String> = (0..shape.matrix).map(|v| v.to_string()).collect();
                extra.push_str(&format!(
                    "strategy:\n  fail-fast: {}\n  matrix:\n    v: [{}]\n",
                    shape.fail_fast,
                    values.join(", ")
                ));
                if let Some(limit) = shape.max_parallel {
                    extra.push_str(&format!("  max-parallel: {limit}\n"));
                }
            }
            (format!("j{index}"), extra)
        })
        .collect();
    let pairs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    wf(&pairs)
}

/// A recorded run: the events applied with their times, and what came out.
struct Recording {
    events: Vec<(Event, Millis)>,
    effects: Vec<Effect>,
    state: RunState,
}

fn create(yaml: &str) -> (RunState, Vec<Effect>) {
    let workflow = workflow(yaml);
    let decision = create_run(
        NewRun {
            id: RunId(1),
            workflow: &workflow,
            trigger: push_trigger(),
            config: EngineConfig::default(),
        },
        Millis(0),
    )
    .unwrap();
    (decision.state, decision.effects)
}

/// Every event that fits the run now, each with the time it would happen at.
fn possible_events(state: &RunState, now: u64) -> Vec<(Event, u64)> {
    let config = &state.config;
    let mut events = Vec::new();
    for instance in state.instances() {
        let job = instance.key.clone();
        let attempt = instance.attempt;
        match instance.status {
            JobStatus::Queued => {
                events.push((
                    Event::JobStarted {
                        job: job.clone(),
                        attempt,
                    },
                    now,
                ));
                let due = instance.queued_at.unwrap().after(config.queue_timeout).0;
                let kind = TimerKind::QueueTimeout {
                    job: job.clone(),
                    attempt,
                };
                events.push((Event::TimerFired { kind }, due.max(now)));
                events.push((Event::CancelRequested { job: Some(job) }, now));
            }
            JobStatus::InProgress => {
                for conclusion in [
                    Conclusion::Success,
                    Conclusion::Failure,
                    Conclusion::Cancelled,
                ] {
                    let outputs: IndexMap<String, String> =
                        [("o".to_owned(), job.to_string())].into_iter().collect();
                    events.push((
                        Event::JobCompleted {
                            job: job.clone(),
                            attempt,
                            conclusion,
                            outputs,
                        },
                        now,
                    ));
                }
                events.push((
                    Event::JobLost {
                        job: job.clone(),
                        attempt,
                    },
                    now,
                ));
                let timeout = instance.setup.as_ref().unwrap().timeout;
                let due = instance.started_at.unwrap().after(timeout).0;
                let kind = TimerKind::JobTimeout {
                    job: job.clone(),
                    attempt,
                };
                events.push((Event::TimerFired { kind }, due.max(now)));
                if let Some(asked) = instance.cancel_requested_at {
                    let due = asked.after(config.cancel_grace).0;
                    let kind = TimerKind::CancelGrace { job, attempt };
                    events.push((Event::TimerFired { kind }, due.max(now)));
                }
            }
            JobStatus::Waiting | JobStatus::Completed => {}
        }
    }
    if !state.cancel_requested && state.status != RunStatus::Completed {
        events.push((Event::CancelRequested { job: None }, now));
    }
    events
}

/// Drives a run to completion with `choices` picking among the possible events, checking the
/// invariants after every event.
fn drive(yaml: &str, choices: &[u16], rerun: bool) -> Recording {
    let (mut state, mut effects) = create(yaml);
    check_queued_after_needs(&state, &effects);
    let mut events = Vec::new();
    let mut ended: BTreeMap<(u32, JobKey), usize> = BTreeMap::new();
    count_ended(&state, &effects, &mut ended);
    let mut now = 0u64;
    let mut choices = choices.iter().copied();
    let mut reran = false;
    for _ in 0..5000 {
        if state.status == RunStatus::Completed {
            check_completed(&state);
            if rerun && !reran && state.conclusion != Some(Conclusion::Success) {
                reran = true;
                let event = Event::RerunRequested { failed_only: true };
                match apply(&state, &event, Millis(now)) {
                    Ok(decision) => {
                        events.push((event, Millis(now)));
                        state = decision.state;
                        count_ended(&state, &decision.effects, &mut ended);
                        effects.extend(decision.effects);
                        continue;
                    }
                    // A cancelled run whose jobs all succeeded has nothing to re-run.
                    Err(EngineError::NothingToRerun) => {}
                    Err(error) => panic!("re-run refused: {error}"),
                }
            }
            for ((attempt, key), count) in &ended {
                assert_eq!(*count, 1, "{key} ended {count} times in attempt {attempt}");
            }
            let first_attempt: Vec<&JobKey> = ended
                .keys()
                .filter(|(a, _)| *a == 1)
                .map(|(_, k)| k)
                .collect();
            if !reran {
                let all: Vec<&JobKey> = state.instances().map(|i| &i.key).collect();
                assert_eq!(
                    first_attempt.len(),
                    all.len(),
                    "every instance ends exactly once"
                );
            }
            return Recording {
                events,
                effects,
                state,
            };
        }
        let possible = possible_events(&state, now);
        assert!(!possible.is_empty(), "run is stuck: {state:#?}");
        let choice = usize::from(choices.next().unwrap_or(0)) % possible.len();
        let (event, at) = possible[choice].clone();
        now = at + 1;
        let decision =
            apply(&state, &event, Millis(now)).unwrap_or_else(|e| panic!("{event:?} refused: {e}"));
        check_queued_after_needs(&decision.state, &decision.effects);
        if let Event::JobStarted { job, .. } = &event {
            check_needs_ended(&decision.state, &job.job);
        }
        count_ended(&decision.state, &decision.effects, &mut ended);
        events.push((event, Millis(now)));
        effects.extend(decision.effects);
        state = decision.state;
    }
    panic!("run did not complete in 5000 events");
}

fn count_ended(state: &RunState, effects: &[Effect], ended: &mut BTreeMap<(u32, JobKey), usize>) {
    for effect in effects {
        if let Effect::JobEnded { job, .. } = effect {
            *ended.entry((state.attempt.0, job.clone())).or_default() += 1;
        }
    }
}

fn check_needs_ended(state: &RunState, job: &str) {
    let index = state.spec.job_index(job).unwrap();
    for &need in &state.spec.jobs[index].needs {
        assert_eq!(
            state.jobs[need].phase,
            JobPhase::Ended,
            "{job} ran before a need ended"
        );
    }
}

fn check_queued_after_needs(state: &RunState, effects: &[Effect]) {
    for effect in effects {
        if let Effect::QueueJob(order) = effect {
            check_needs_ended(state, &order.job.job);
        }
    }
}

fn check_completed(state: &RunState) {
    assert!(state.conclusion.is_some());
    for job in &state.jobs {
        assert_eq!(job.phase, JobPhase::Ended, "{} not ended", job.id);
        assert!(
            job.instances
                .iter()
                .all(|i| i.status == JobStatus::Completed)
        );
    }
    let failed = state
        .jobs
        .iter()
        .any(|job| job.result == Some(Conclusion::Failure));
    assert_eq!(failed, state.conclusion == Some(Conclusion::Failure));
}

/// Replays recorded events on a new run.
fn replay(yaml: &str, events: &[(Event, Millis)]) -> (RunState, Vec<Effect>) {
    let (mut state, mut effects) = create(yaml);
    for (event, now) in events {
        let decision = apply(&state, event, *now).unwrap();
        state = decision.state;
        effects.extend(decision.effects);
    }
    (state, effects)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_runs_complete_and_replay_identically(
        shapes in graph(),
        choices in proptest::collection::vec(any::<u16>(), 0..300),
        rerun in any::<bool>(),
    ) {
        let yaml = yaml(&shapes);
        let recording = drive(&yaml, &choices, rerun);
        let (state, effects) = replay(&yaml, &recording.events);
        prop_assert_eq!(&state, &recording.state);
        prop_assert_eq!(&effects, &recording.effects);
        // And the state survives storage.
        let back = crate::harness::stored_round_trip(&state);
        prop_assert_eq!(back, state);
    }
}

#[test]
fn attempts_only_grow() {
    // A small fixed case of the above, kept readable: a lost runner and a re-run both move the
    // attempt forward.
    let yaml = yaml(&[JobShape {
        needs: vec![],
        condition: 0,
        continue_on_error: false,
        matrix: 0,
        fail_fast: true,
        max_parallel: None,
    }]);
    let recording = drive(&yaml, &[0, 3, 0, 1], true);
    let attempt = recording.state.instances().next().unwrap().attempt;
    assert_eq!(attempt, Attempt(3));
    assert_eq!(recording.state.attempt, gantry_engine::RunAttempt(2));
}
