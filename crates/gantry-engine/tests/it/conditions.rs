//! Job-level `if:`: status functions over the needs, skipping and its propagation, and
//! `continue-on-error`.

use gantry_engine::Conclusion;

use crate::harness::{Sim, wf};

#[test]
fn status_functions_see_the_needs() {
    let mut sim = Sim::new(&wf(&[
        ("build", ""),
        ("lint", ""),
        ("after", "needs: build"),
        ("on-failure", "needs: build\nif: failure()"),
        ("always", "needs: build\nif: always()"),
        ("lint-passed", "needs: [build, lint]\nif: success('lint')"),
        (
            "build-passed",
            "needs: [build, lint]\nif: ${{ success('build') }}",
        ),
    ]));
    sim.run("build", Conclusion::Failure);
    sim.run("lint", Conclusion::Success);
    assert_eq!(sim.conclusion("after"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("build-passed"), Some(Conclusion::Skipped));
    assert_eq!(sim.queued(), ["on-failure", "always", "lint-passed"]);
    for job in ["on-failure", "always", "lint-passed"] {
        sim.run(job, Conclusion::Success);
    }
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

#[test]
fn skipping_propagates_until_a_job_asks_otherwise() {
    let mut sim = Sim::new(&wf(&[
        ("a", "if: github.ref == 'refs/heads/release'"),
        ("b", "needs: a"),
        ("c", "needs: b"),
        ("report", "needs: c\nif: always()"),
        ("tidy", "needs: b\nif: ${{ !failure() && !cancelled() }}"),
        ("on-failure", "needs: b\nif: failure()"),
    ]));
    for job in ["a", "b", "c", "on-failure"] {
        assert_eq!(sim.conclusion(job), Some(Conclusion::Skipped), "{job}");
    }
    assert_eq!(sim.queued(), ["report", "tidy"]);
    sim.run("report", Conclusion::Success);
    sim.run("tidy", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
}

#[test]
fn continue_on_error_counts_a_failure_as_success() {
    let mut sim = Sim::new(&wf(&[
        ("flaky", "continue-on-error: true"),
        ("next", "needs: flaky\nif: needs.flaky.result == 'success'"),
    ]));
    sim.run("flaky", Conclusion::Failure);
    assert_eq!(sim.conclusion("flaky"), Some(Conclusion::Failure));
    assert_eq!(
        sim.state.job("flaky").unwrap().result,
        Some(Conclusion::Success)
    );
    assert_eq!(sim.queued(), ["next"]);
    sim.run("next", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
}

#[test]
fn an_if_that_cannot_be_evaluated_fails_the_job() {
    let mut sim = Sim::new(&wf(&[
        ("a", ""),
        ("b", "needs: a\nif: fromJSON(needs.a.outputs.json)"),
    ]));
    sim.start("a");
    sim.complete_with("a", Conclusion::Success, &[("json", "{not json")]);
    assert_eq!(sim.conclusion("b"), Some(Conclusion::Failure));
    assert!(
        sim.message("b")
            .unwrap()
            .starts_with("error evaluating `if`")
    );
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}
