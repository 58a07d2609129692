//! Large graphs: a 1,000-job fan-out/fan-in and a 400-job chain, driven event by event with the
//! in-place [`gantry_engine::RunState::handle`]. Each event must cost time in proportion to the
//! jobs it touches; a scan of the whole run per event would make these take many times longer.

use std::time::{Duration, Instant};

use gantry_engine::{
    Conclusion, EngineConfig, Event, JobStatus, Millis, NewRun, RunId, RunState, create_run,
};
use indexmap::IndexMap;

use crate::harness::{key, push_trigger, wf, workflow};

/// A generous ceiling: these take well under a second on a laptop in a debug build; a
/// quadratic engine takes far longer.
const CEILING: Duration = Duration::from_secs(20);

fn create(yaml: &str) -> RunState {
    let workflow = workflow(yaml);
    create_run(
        NewRun {
            id: RunId(1),
            workflow: &workflow,
            trigger: push_trigger(),
            config: EngineConfig::default(),
        },
        Millis(0),
    )
    .unwrap()
    .state
}

/// Starts and completes every queued job until the run completes; returns the events applied.
fn drive(state: &mut RunState) -> usize {
    let mut events = 0;
    let mut now = 0;
    while state.conclusion.is_none() {
        let queued: Vec<_> = state
            .instances()
            .filter(|i| i.status == JobStatus::Queued)
            .map(|i| (i.key.clone(), i.attempt))
            .collect();
        assert!(!queued.is_empty(), "stuck: nothing queued");
        for (job, attempt) in queued {
            now += 1;
            let started = Event::JobStarted {
                job: job.clone(),
                attempt,
            };
            state.handle(&started, Millis(now)).unwrap();
            let completed = Event::JobCompleted {
                job,
                attempt,
                conclusion: Conclusion::Success,
                outputs: IndexMap::new(),
            };
            state.handle(&completed, Millis(now)).unwrap();
            events += 2;
        }
    }
    events
}

#[test]
fn a_thousand_job_fan_out_and_fan_in() {
    let middle: Vec<String> = (0..998).map(|i| format!("m{i}")).collect();
    let mut jobs: Vec<(String, String)> = vec![("root".into(), String::new())];
    jobs.extend(
        middle
            .iter()
            .map(|id| (id.clone(), "needs: root".to_owned())),
    );
    jobs.push(("sink".into(), format!("needs: [{}]", middle.join(", "))));
    let pairs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut state = create(&wf(&pairs));
    assert_eq!(state.jobs.len(), 1000);
    let started = Instant::now();
    let events = drive(&mut state);
    let elapsed = started.elapsed();
    println!("fan-out/fan-in of 1,000 jobs: {events} events in {elapsed:?}");
    assert_eq!(state.conclusion, Some(Conclusion::Success));
    assert_eq!(events, 2000);
    assert!(elapsed < CEILING, "took {elapsed:?}");
}

#[test]
fn a_four_hundred_job_chain() {
    let jobs: Vec<(String, String)> = (0..400)
        .map(|i| {
            let needs = if i == 0 {
                String::new()
            } else {
                format!("needs: j{}", i - 1)
            };
            (format!("j{i}"), needs)
        })
        .collect();
    let pairs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut state = create(&wf(&pairs));
    let started = Instant::now();
    let events = drive(&mut state);
    let elapsed = started.elapsed();
    println!("chain of 400 jobs: {events} events in {elapsed:?}");
    assert_eq!(state.conclusion, Some(Conclusion::Success));
    assert!(elapsed < CEILING, "took {elapsed:?}");
}

#[test]
fn skipping_a_long_chain_needs_no_deep_stack() {
    // One failure at the head skips 2,000 dependents in one event, without recursion.
    let jobs: Vec<(String, String)> = (0..2000)
        .map(|i| {
            let needs = if i == 0 {
                String::new()
            } else {
                format!("needs: j{}", i - 1)
            };
            (format!("j{i}"), needs)
        })
        .collect();
    let pairs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut state = create(&wf(&pairs));
    let j0 = key("j0");
    let attempt = gantry_engine::Attempt(1);
    state
        .handle(
            &Event::JobStarted {
                job: j0.clone(),
                attempt,
            },
            Millis(1),
        )
        .unwrap();
    let effects = state
        .handle(
            &Event::JobCompleted {
                job: j0,
                attempt,
                conclusion: Conclusion::Failure,
                outputs: IndexMap::new(),
            },
            Millis(2),
        )
        .unwrap();
    assert_eq!(state.conclusion, Some(Conclusion::Failure));
    assert_eq!(effects.len(), 2000 + 1);
}
