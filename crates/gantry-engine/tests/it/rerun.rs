//! Re-running a completed run: all jobs, or the failed ones and their dependents.

use gantry_engine::{Attempt, Conclusion, EngineError, Event, JobStatus, RunAttempt, RunStatus};

use crate::harness::{Sim, key, outputs, wf};

#[test]
fn rerun_all_starts_a_new_attempt_of_every_job() {
    let mut sim = Sim::new(&wf(&[("a", ""), ("b", "needs: a")]));
    sim.run("a", Conclusion::Success);
    sim.run("b", Conclusion::Failure);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
    sim.send(Event::RerunRequested { failed_only: false });
    assert_eq!(sim.state.attempt, RunAttempt(2));
    assert_eq!(sim.state.status, RunStatus::Queued);
    assert_eq!(sim.state.conclusion, None);
    assert_eq!(sim.queued(), ["a"]);
    assert_eq!(sim.attempt("a"), Attempt(2));
    assert_eq!(sim.reasons("b"), ["waiting on needs: a"]);
    // Reports for the first attempt are refused.
    let stale = sim.try_send(Event::JobStarted {
        job: key("a"),
        attempt: Attempt(1),
    });
    assert!(matches!(stale, Err(EngineError::StaleAttempt { .. })));
    sim.run("a", Conclusion::Success);
    sim.run("b", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
    assert_eq!(
        sim.try_send(Event::RerunRequested { failed_only: true }),
        Err(EngineError::NothingToRerun)
    );
}

#[test]
fn rerun_failed_keeps_what_succeeded() {
    let mut sim = Sim::new(&wf(&[
        ("setup", ""),
        (
            "test",
            "needs: setup\nstrategy:\n  fail-fast: false\n  matrix:\n    n: [1, 2]",
        ),
        ("deploy", "needs: test"),
        ("docs", ""),
    ]));
    sim.start("setup");
    sim.complete_with("setup", Conclusion::Success, &[("v", "1")]);
    sim.run("test[0]", Conclusion::Success);
    sim.run("test[1]", Conclusion::Failure);
    sim.run("docs", Conclusion::Success);
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));

    sim.send(Event::RerunRequested { failed_only: true });
    assert_eq!(sim.queued(), ["test[1]"]);
    assert_eq!(sim.attempt("test[1]"), Attempt(2));
    // Kept as they were.
    for job in ["setup", "test[0]", "docs"] {
        assert_eq!(sim.status(job), JobStatus::Completed, "{job}");
        assert_eq!(sim.attempt(job), Attempt(1), "{job}");
    }
    assert_eq!(sim.reasons("deploy"), ["waiting on needs: test"]);
    assert_eq!(
        sim.state.needs_context("test").unwrap().to_json()["setup"]["outputs"]["v"],
        "1"
    );
    sim.run("test[1]", Conclusion::Success);
    sim.run("deploy", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
    assert_eq!(sim.state.attempt, RunAttempt(2));
}

#[test]
fn rerun_reexpands_a_deferred_matrix_that_is_rerun_as_a_dependent() {
    let mut sim = Sim::new(&wf(&[
        ("setup", ""),
        (
            "build",
            "needs: setup\nstrategy:\n  matrix:\n    n: ${{ fromJSON(needs.setup.outputs.n) }}",
        ),
    ]));
    sim.start("setup");
    sim.complete_with("setup", Conclusion::Failure, &[]);
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Skipped));
    sim.send(Event::RerunRequested { failed_only: true });
    sim.start("setup");
    sim.send(Event::JobCompleted {
        job: key("setup"),
        attempt: Attempt(2),
        conclusion: Conclusion::Success,
        outputs: outputs(&[("n", "[1, 2, 3]")]),
    });
    assert_eq!(sim.queued(), ["build[0]", "build[1]", "build[2]"]);
    assert_eq!(sim.attempt("build[2]"), Attempt(2));
}
