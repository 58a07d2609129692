//! Cancelling a run or one job: what ends at once, what is asked to stop, and what still runs
//! because its `if:` says so.

use gantry_engine::{Conclusion, EngineError, Event, JobStatus, RunStatus};

use crate::harness::{Sim, key, wf};

#[test]
fn cancelling_a_run_keeps_always_jobs() {
    let mut sim = Sim::new(&wf(&[
        ("build", ""),
        ("lint", ""),
        ("deploy", "needs: build"),
        ("cleanup", "needs: build\nif: always()"),
        ("notify", "needs: build\nif: cancelled()"),
        ("explicit", "needs: build\nif: success()"),
    ]));
    sim.start("build");
    let effects = sim.send(Event::CancelRequested { job: None });
    assert_eq!(sim.cancelled_by_last_event(), ["build"]);
    assert!(!effects.is_empty());
    // Not running: ends at once.
    assert_eq!(sim.conclusion("lint"), Some(Conclusion::Cancelled));
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Cancelled));
    // Running: ends when its runner says so.
    assert_eq!(sim.status("build"), JobStatus::InProgress);
    for job in ["cleanup", "notify", "explicit"] {
        assert_eq!(sim.status(job), JobStatus::Waiting, "{job}");
    }
    // A second cancel changes nothing.
    assert!(sim.send(Event::CancelRequested { job: None }).is_empty());

    sim.complete("build", Conclusion::Cancelled);
    assert_eq!(sim.queued(), ["cleanup", "notify"]);
    assert_eq!(sim.conclusion("explicit"), Some(Conclusion::Cancelled));
    assert_eq!(sim.state.status, RunStatus::InProgress);
    sim.run("cleanup", Conclusion::Success);
    sim.run("notify", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
}

#[test]
fn a_running_always_job_is_not_asked_to_stop() {
    let mut sim = Sim::new(&wf(&[("build", ""), ("report", "if: always()")]));
    sim.start("build");
    sim.start("report");
    sim.send(Event::CancelRequested { job: None });
    assert_eq!(sim.cancelled_by_last_event(), ["build"]);
    sim.complete("build", Conclusion::Cancelled);
    sim.complete("report", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
}

#[test]
fn a_runner_that_never_confirms_is_cut_off_after_the_grace_period() {
    let mut sim = Sim::new(&wf(&[("build", "")]));
    sim.start("build");
    sim.send(Event::CancelRequested { job: None });
    let attempt = sim.attempt("build");
    let grace = gantry_engine::TimerKind::CancelGrace {
        job: key("build"),
        attempt,
    };
    assert!(matches!(
        sim.fire(grace.clone()),
        Err(EngineError::TimerNotDue { .. })
    ));
    sim.advance(5 * 60_000);
    sim.fire(grace).unwrap();
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Cancelled));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
}

#[test]
fn cancelling_one_job_skips_its_dependents() {
    let mut sim = Sim::new(&wf(&[
        ("a", ""),
        ("b", "needs: a"),
        ("c", "needs: a\nif: always()"),
        ("d", ""),
    ]));
    sim.send(Event::CancelRequested {
        job: Some(key("a")),
    });
    assert_eq!(sim.conclusion("a"), Some(Conclusion::Cancelled));
    assert_eq!(sim.conclusion("b"), Some(Conclusion::Skipped));
    assert_eq!(sim.queued(), ["c", "d"]);
    sim.run("c", Conclusion::Success);
    sim.run("d", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
    let refused = sim.try_send(Event::CancelRequested { job: None });
    assert_eq!(refused, Err(EngineError::RunCompleted));
}

#[test]
fn a_job_cancelled_while_waiting_on_needs_stays_cancelled() {
    let mut sim = Sim::new(&wf(&[("a", ""), ("b", "needs: a"), ("c", "needs: b")]));
    sim.send(Event::CancelRequested {
        job: Some(key("b")),
    });
    assert_eq!(sim.conclusion("b"), Some(Conclusion::Cancelled));
    assert_eq!(
        sim.state.job("b").unwrap().phase,
        gantry_engine::JobPhase::Waiting
    );
    sim.run("a", Conclusion::Success);
    assert_eq!(
        sim.state.job("b").unwrap().result,
        Some(Conclusion::Cancelled)
    );
    assert_eq!(sim.conclusion("c"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
}
