//! Timeouts, lost runners, and events that no longer fit the run (refused, changing nothing).

use gantry_engine::{
    Attempt, Conclusion, Effect, EngineError, Event, JobStatus, Millis, TimerKind,
};

use crate::harness::{Sim, key, outputs, wf};

#[test]
fn a_job_running_past_its_timeout_is_cancelled() {
    let mut sim = Sim::new(&wf(&[
        ("build", "timeout-minutes: 10"),
        ("next", "needs: build"),
    ]));
    let effects = sim.start("build");
    let timer = TimerKind::JobTimeout {
        job: key("build"),
        attempt: Attempt(1),
    };
    assert!(effects.contains(&Effect::SetTimer {
        at: Millis(sim.now + 10 * 60_000),
        kind: timer.clone(),
    }));
    sim.advance(10 * 60_000 - 1);
    assert!(matches!(
        sim.fire(timer.clone()),
        Err(EngineError::TimerNotDue { .. })
    ));
    sim.advance(1);
    sim.fire(timer.clone()).unwrap();
    assert_eq!(sim.cancelled_by_last_event(), ["build"]);
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Cancelled));
    assert_eq!(
        sim.message("build").unwrap(),
        "the job exceeded its timeout of 10m"
    );
    assert_eq!(sim.conclusion("next"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
    // The runner's late report and the timer firing again are refused.
    let late = sim.try_send(Event::JobCompleted {
        job: key("build"),
        attempt: Attempt(1),
        conclusion: Conclusion::Success,
        outputs: outputs(&[]),
    });
    assert!(matches!(late, Err(EngineError::WrongStatus { .. })));
    assert!(sim.fire(timer).is_err());
}

#[test]
fn a_job_no_runner_picks_up_fails_after_a_day() {
    let mut sim = Sim::new(&wf(&[("build", "runs-on: gpu")]));
    let timer = TimerKind::QueueTimeout {
        job: key("build"),
        attempt: Attempt(1),
    };
    assert!(sim.log.contains(&Effect::SetTimer {
        at: Millis(sim.now + 24 * 3_600_000),
        kind: timer.clone(),
    }));
    sim.advance(24 * 3_600_000);
    sim.fire(timer).unwrap();
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Failure));
    assert_eq!(
        sim.message("build").unwrap(),
        "no runner picked the job up within 24h"
    );
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

#[test]
fn a_lost_runner_is_retried_then_the_job_fails() {
    let mut sim = Sim::new(&wf(&[("build", "")]));
    for retry in 1..=2 {
        sim.start("build");
        let attempt = sim.attempt("build");
        let effects = sim.send(Event::JobLost {
            job: key("build"),
            attempt,
        });
        assert_eq!(sim.status("build"), JobStatus::Queued);
        assert_eq!(sim.attempt("build"), Attempt(retry + 1));
        let order = effects.iter().find_map(|e| match e {
            Effect::QueueJob(order) => Some(order.attempt),
            _ => None,
        });
        assert_eq!(order, Some(Attempt(retry + 1)));
        // The old attempt can no longer report anything.
        let stale = sim.try_send(Event::JobCompleted {
            job: key("build"),
            attempt,
            conclusion: Conclusion::Success,
            outputs: outputs(&[]),
        });
        assert!(matches!(stale, Err(EngineError::StaleAttempt { .. })));
    }
    sim.start("build");
    let attempt = sim.attempt("build");
    sim.send(Event::JobLost {
        job: key("build"),
        attempt,
    });
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Failure));
    assert_eq!(sim.message("build").unwrap(), "runner lost");
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

/// What a refused event's error must look like.
type Expected = fn(&EngineError) -> bool;

#[test]
fn stale_and_impossible_events_are_refused_and_change_nothing() {
    let mut sim = Sim::new(&wf(&[("a", ""), ("b", "needs: a")]));
    let completed = |job: &str, attempt: u32, conclusion| Event::JobCompleted {
        job: key(job),
        attempt: Attempt(attempt),
        conclusion,
        outputs: outputs(&[]),
    };
    let cases: Vec<(Event, Expected)> = vec![
        (completed("nope", 1, Conclusion::Success), |e| {
            matches!(e, EngineError::UnknownJob(_))
        }),
        (completed("a[3]", 1, Conclusion::Success), |e| {
            matches!(e, EngineError::UnknownJob(_))
        }),
        (completed("a", 1, Conclusion::Success), |e| {
            matches!(e, EngineError::WrongStatus { .. })
        }),
        (completed("b", 1, Conclusion::Success), |e| {
            matches!(e, EngineError::WrongStatus { .. })
        }),
        (
            Event::JobStarted {
                job: key("a"),
                attempt: Attempt(2),
            },
            |e| matches!(e, EngineError::StaleAttempt { .. }),
        ),
        (
            Event::JobStarted {
                job: key("b"),
                attempt: Attempt(1),
            },
            |e| matches!(e, EngineError::WrongStatus { .. }),
        ),
        (Event::RerunRequested { failed_only: false }, |e| {
            *e == EngineError::RunNotCompleted
        }),
        (Event::ConcurrencyGranted { job: None }, |e| {
            matches!(e, EngineError::UnexpectedConcurrency(_))
        }),
    ];
    for (event, expected) in cases {
        let before = sim.state.clone();
        let error = sim.try_send(event.clone()).unwrap_err();
        assert!(expected(&error), "{event:?} gave {error}");
        assert_eq!(sim.state, before);
    }

    sim.start("a");
    let skipped = sim.try_send(completed("a", 1, Conclusion::Skipped));
    assert_eq!(skipped, Err(EngineError::InvalidConclusion));
    sim.complete("a", Conclusion::Success);
    let again = sim.try_send(completed("a", 1, Conclusion::Success));
    assert!(matches!(again, Err(EngineError::WrongStatus { .. })));
    assert_eq!(
        again.unwrap_err().to_string(),
        "job `a[0]` is completed, so it cannot be completed"
    );
}
