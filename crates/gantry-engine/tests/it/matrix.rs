//! Matrix jobs: instances and their names, the combined result, `fail-fast`, `max-parallel`,
//! matrices read from `needs`, and outputs.

use gantry_engine::{Conclusion, Effect, JobStatus};

use crate::harness::{Sim, key, wf};

const OS_VERSION: &str =
    "strategy:\n  matrix:\n    os: [ubuntu, windows]\n    version: ['1.2', '1.3']";

#[test]
fn one_instance_per_combination_with_github_names() {
    let sim = Sim::new(&wf(&[("build", OS_VERSION)]));
    let names: Vec<&str> = sim.state.instances().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build (ubuntu, 1.2)",
            "build (ubuntu, 1.3)",
            "build (windows, 1.2)",
            "build (windows, 1.3)"
        ]
    );
    assert_eq!(
        sim.queued(),
        ["build[0]", "build[1]", "build[2]", "build[3]"]
    );
}

#[test]
fn the_job_result_combines_its_instances() {
    let mut sim = Sim::new(&wf(&[
        ("build", &format!("{OS_VERSION}\n  fail-fast: false")),
        (
            "report",
            "needs: build\nif: always() && needs.build.result == 'failure'",
        ),
    ]));
    sim.run("build[0]", Conclusion::Success);
    sim.run("build[1]", Conclusion::Failure);
    sim.start("build[2]");
    sim.complete("build[2]", Conclusion::Cancelled);
    assert_eq!(sim.status("report"), JobStatus::Waiting);
    sim.run("build[3]", Conclusion::Success);
    assert_eq!(
        sim.state.job("build").unwrap().result,
        Some(Conclusion::Failure)
    );
    assert_eq!(sim.queued(), ["report"]);
}

#[test]
fn fail_fast_cancels_the_remaining_siblings() {
    let mut sim = Sim::new(&wf(&[(
        "test",
        "strategy:\n  max-parallel: 2\n  matrix:\n    n: [1, 2, 3]",
    )]));
    sim.start("test[0]");
    sim.start("test[1]");
    assert_eq!(sim.status("test[2]"), JobStatus::Waiting);
    sim.complete("test[0]", Conclusion::Failure);
    // The running sibling is asked to stop; the one not started yet ends at once.
    assert_eq!(sim.cancelled_by_last_event(), ["test[1]"]);
    assert_eq!(sim.status("test[1]"), JobStatus::InProgress);
    assert_eq!(sim.conclusion("test[2]"), Some(Conclusion::Cancelled));
    assert_eq!(
        sim.message("test[2]").unwrap(),
        "cancelled because `test (1)` failed (fail-fast)"
    );
    assert_eq!(sim.state.conclusion, None);
    sim.complete("test[1]", Conclusion::Cancelled);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

#[test]
fn without_fail_fast_or_with_continue_on_error_siblings_go_on() {
    for extra in ["  fail-fast: false", "continue-on-error: true"] {
        let mut sim = Sim::new(&wf(&[(
            "test",
            &format!("strategy:\n  matrix:\n    n: [1, 2]\n{extra}"),
        )]));
        sim.start("test[1]");
        sim.run("test[0]", Conclusion::Failure);
        assert!(sim.cancelled_by_last_event().is_empty(), "{extra}");
        assert_eq!(sim.status("test[1]"), JobStatus::InProgress);
    }
}

#[test]
fn max_parallel_limits_instances_queued_or_running() {
    let mut sim = Sim::new(&wf(&[(
        "test",
        "strategy:\n  max-parallel: 2\n  matrix:\n    n: [1, 2, 3, 4]",
    )]));
    assert_eq!(sim.queued(), ["test[0]", "test[1]"]);
    assert_eq!(
        sim.reasons("test[2]"),
        ["max-parallel reached (2 at a time)"]
    );
    sim.start("test[0]");
    assert_eq!(sim.queued(), ["test[1]"]);
    sim.complete("test[0]", Conclusion::Success);
    assert_eq!(sim.queued(), ["test[1]", "test[2]"]);
    sim.run("test[1]", Conclusion::Success);
    sim.run("test[2]", Conclusion::Success);
    sim.run("test[3]", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
}

#[test]
fn a_matrix_read_from_needs_expands_when_they_end() {
    let mut sim = Sim::new(&wf(&[
        ("setup", "outputs:\n  m: ${{ steps.s.outputs.m }}"),
        (
            "build",
            "needs: setup\nstrategy:\n  matrix: ${{ fromJSON(needs.setup.outputs.m) }}",
        ),
        (
            "test",
            "needs: setup\nstrategy:\n  matrix:\n    v: ${{ fromJSON(needs.setup.outputs.versions) }}\n    os: [linux]",
        ),
    ]));
    // Before: one placeholder per deferred job.
    assert_eq!(sim.waiting(), ["build", "test"]);
    assert_eq!(sim.reasons("build"), ["waiting on needs: setup"]);
    sim.start("setup");
    sim.complete_with(
        "setup",
        Conclusion::Success,
        &[
            (
                "m",
                r#"{"os": ["linux", "mac"], "include": [{"os": "bsd", "exp": true}]}"#,
            ),
            ("versions", "[1, 2]"),
        ],
    );
    assert_eq!(
        sim.queued(),
        ["build[0]", "build[1]", "build[2]", "test[0]", "test[1]"]
    );
    let names: Vec<&str> = sim
        .state
        .job("build")
        .unwrap()
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["build (linux)", "build (mac)", "build (bsd, true)"]);
    assert_eq!(
        sim.state.instance(&key("test[1]")).unwrap().name,
        "test (2, linux)"
    );
}

#[test]
fn a_matrix_that_fails_to_expand_fails_the_job() {
    let mut sim = Sim::new(&wf(&[
        ("setup", ""),
        (
            "build",
            "needs: setup\nstrategy:\n  matrix: ${{ fromJSON(needs.setup.outputs.m) }}",
        ),
    ]));
    sim.start("setup");
    sim.complete_with("setup", Conclusion::Success, &[("m", "[1, 2]")]);
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Failure));
    assert!(
        sim.message("build").unwrap().contains("matrix"),
        "{:?}",
        sim.message("build")
    );
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

#[test]
fn a_skipped_deferred_matrix_job_ends_as_one_skipped_job() {
    let mut sim = Sim::new(&wf(&[
        ("setup", ""),
        (
            "build",
            "needs: setup\nstrategy:\n  matrix: ${{ fromJSON(needs.setup.outputs.m) }}",
        ),
    ]));
    sim.run("setup", Conclusion::Failure);
    assert_eq!(sim.state.job("build").unwrap().instances.len(), 1);
    assert_eq!(sim.conclusion("build"), Some(Conclusion::Skipped));
}

#[test]
fn matrix_outputs_last_completed_instance_wins() {
    let mut sim = Sim::new(&wf(&[
        (
            "build",
            "strategy:\n  matrix:\n    n: [1, 2, 3]\noutputs:\n  v: ${{ steps.s.outputs.v }}",
        ),
        ("use", "needs: build"),
    ]));
    for (job, value) in [
        ("build[2]", "three"),
        ("build[0]", "one"),
        ("build[1]", "two"),
    ] {
        sim.start(job);
        sim.complete_with(job, Conclusion::Success, &[("v", value)]);
    }
    let outputs = &sim.state.job("build").unwrap().outputs;
    assert_eq!(outputs.get("v").map(String::as_str), Some("two"));
    let order = sim.effects.iter().find_map(|e| match e {
        Effect::QueueJob(order) => Some(order.job.clone()),
        _ => None,
    });
    assert_eq!(order, Some(key("use")));
}

#[test]
fn strategy_and_matrix_contexts_reach_instance_settings() {
    let sim = Sim::new(&wf(&[(
        "build",
        "strategy:\n  matrix:\n    os: [a, b]\nruns-on: ${{ matrix.os }}-${{ strategy.job-index }}-of-${{ strategy.job-total }}\ntimeout-minutes: ${{ strategy.job-index == 0 && 5 || 7 }}",
    )]));
    let labels: Vec<Vec<String>> = sim
        .state
        .instances()
        .map(|i| i.setup.clone().unwrap().labels)
        .collect();
    assert_eq!(
        labels,
        [vec!["a-0-of-2".to_owned()], vec!["b-1-of-2".to_owned()]]
    );
    let timeouts: Vec<u64> = sim
        .state
        .instances()
        .map(|i| i.setup.clone().unwrap().timeout.0 / 60_000)
        .collect();
    assert_eq!(timeouts, [5, 7]);
}
