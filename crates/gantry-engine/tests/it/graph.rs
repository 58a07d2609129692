//! Jobs run in `needs` order: chains, diamonds, and what each waiting job says it waits for.

use gantry_engine::{Conclusion, Effect, JobStatus, RunStatus};

use crate::harness::{Sim, wf};

#[test]
fn a_linear_chain_runs_one_job_after_the_other() {
    let mut sim = Sim::new(&wf(&[("a", ""), ("b", "needs: a"), ("c", "needs: b")]));
    assert_eq!(sim.queued(), ["a"]);
    assert_eq!(sim.waiting(), ["b", "c"]);
    assert_eq!(sim.reasons("b"), ["waiting on needs: a"]);
    assert_eq!(
        sim.reasons("a"),
        ["waiting for a runner with labels: ubuntu-latest"]
    );
    assert_eq!(sim.state.status, RunStatus::Queued);

    sim.start("a");
    assert_eq!(sim.state.status, RunStatus::InProgress);
    assert_eq!(sim.state.started_at, Some(gantry_engine::Millis(sim.now)));
    sim.complete("a", Conclusion::Success);
    assert_eq!(sim.queued(), ["b"]);
    sim.run("b", Conclusion::Success);
    assert_eq!(sim.queued(), ["c"]);
    sim.advance(500);
    let effects = sim.run("c", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
    assert_eq!(sim.state.status, RunStatus::Completed);
    assert!(effects.contains(&Effect::RunCompleted(Conclusion::Success)));
    let completions = sim
        .log
        .iter()
        .filter(|e| matches!(e, Effect::RunCompleted(_)))
        .count();
    assert_eq!(completions, 1);
    let c = sim.state.instance(&crate::harness::key("c")).unwrap();
    assert_eq!(c.completed_at, Some(gantry_engine::Millis(sim.now)));
    assert!(c.queued_at.unwrap() <= c.started_at.unwrap());
}

#[test]
fn a_diamond_joins_when_both_sides_end() {
    let mut sim = Sim::new(&wf(&[
        ("a", ""),
        ("b", "needs: a"),
        ("c", "needs: a"),
        ("d", "needs: [b, c]"),
    ]));
    assert_eq!(sim.reasons("d"), ["waiting on needs: b, c"]);
    sim.run("a", Conclusion::Success);
    assert_eq!(sim.queued(), ["b", "c"]);
    sim.run("c", Conclusion::Success);
    assert_eq!(sim.reasons("d"), ["waiting on needs: b"]);
    assert_eq!(sim.status("d"), JobStatus::Waiting);
    sim.run("b", Conclusion::Success);
    assert_eq!(sim.queued(), ["d"]);
    sim.run("d", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
}

#[test]
fn queue_orders_carry_labels_timeout_and_name() {
    let sim = Sim::new(&wf(&[(
        "build",
        "name: Build it\nruns-on: [self-hosted, '${{ github.event_name }}-box']\ntimeout-minutes: 30\ncontinue-on-error: true",
    )]));
    let order = sim
        .log
        .iter()
        .find_map(|e| match e {
            Effect::QueueJob(order) => Some(order.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(order.name, "Build it");
    assert_eq!(order.labels, ["self-hosted", "push-box"]);
    assert_eq!(order.timeout, gantry_engine::Millis(30 * 60_000));
    assert!(order.continue_on_error);
    assert_eq!(order.attempt, gantry_engine::Attempt(1));
    // A queue timeout is set with the order.
    assert!(sim.log.iter().any(|e| matches!(e, Effect::SetTimer { .. })));
}

#[test]
fn outputs_flow_into_needs() {
    let mut sim = Sim::new(&wf(&[
        ("version", "outputs:\n  v: ${{ steps.v.outputs.v }}"),
        (
            "package",
            "needs: version\nif: needs.version.outputs.v == '1.2'\nruns-on: runner-${{ needs.version.outputs.v }}",
        ),
    ]));
    sim.start("version");
    sim.complete_with("version", Conclusion::Success, &[("v", "1.2")]);
    assert_eq!(sim.queued(), ["package"]);
    let setup = sim
        .state
        .instance(&crate::harness::key("package"))
        .unwrap()
        .setup
        .clone()
        .unwrap();
    assert_eq!(setup.labels, ["runner-1.2"]);
    let needs = sim.state.needs_context("package").unwrap();
    assert_eq!(
        needs.to_json(),
        serde_json::json!({"version": {"result": "success", "outputs": {"v": "1.2"}}})
    );
}

#[test]
fn a_workflow_whose_jobs_all_skip_completes_at_once_as_skipped() {
    let sim = Sim::new(&wf(&[("a", "if: false"), ("b", "needs: a")]));
    assert_eq!(sim.conclusion("a"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("b"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Skipped));
    assert!(sim.log.contains(&Effect::RunCompleted(Conclusion::Skipped)));
}

#[test]
fn state_survives_a_trip_through_json() {
    let mut sim = Sim::new(&wf(&[
        ("a", "strategy:\n  matrix:\n    os: [x, y]"),
        ("b", "needs: a\nconcurrency: deploy"),
    ]));
    sim.run("a[0]", Conclusion::Success);
    let back = crate::harness::stored_round_trip(&sim.state);
    assert_eq!(back, sim.state);
    // And the restored state goes on exactly like the original.
    let mut restored = back;
    let event = gantry_engine::Event::JobStarted {
        job: crate::harness::key("a[1]"),
        attempt: gantry_engine::Attempt(1),
    };
    let now = gantry_engine::Millis(sim.now);
    assert_eq!(
        restored.handle(&event, now),
        sim.state.clone().handle(&event, now)
    );
}
