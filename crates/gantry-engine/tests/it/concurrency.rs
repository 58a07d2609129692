//! Concurrency groups across runs: one running, one pending, the newest pending wins, and
//! `cancel-in-progress`.

use gantry_engine::{Conclusion, JobStatus, RunId, RunStatus};

use crate::harness::{World, key, wf, wf_with};

fn reasons(world: &World, run: u64, job: &str) -> Vec<String> {
    world
        .run(run)
        .wait_reasons(&key(job))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_newer_pending_run_supersedes_the_older_one() {
    let yaml = wf_with("concurrency: Deploy\n", &[("build", "")]);
    let mut world = World::new();
    world.create(1, &yaml);
    world.create(2, &yaml);
    assert_eq!(world.queued(1), ["build"]);
    assert!(world.queued(2).is_empty());
    assert_eq!(
        reasons(&world, 2, "build"),
        ["concurrency group `Deploy` held by run 1"]
    );

    // Group names compare without case.
    world.create(3, &wf_with("concurrency: deploy\n", &[("build", "")]));
    let superseded = world.run(2);
    assert_eq!(superseded.status, RunStatus::Completed);
    assert_eq!(superseded.conclusion, Some(Conclusion::Cancelled));
    let build = superseded.instance(&key("build")).unwrap();
    assert_eq!(build.message.as_deref(), Some("superseded by run 3"));
    assert_eq!(
        reasons(&world, 3, "build"),
        ["concurrency group `deploy` held by run 1"]
    );

    world.start(1, "build");
    world.complete(1, "build", Conclusion::Success);
    assert_eq!(world.run(1).conclusion, Some(Conclusion::Success));
    assert_eq!(world.queued(3), ["build"]);
    let group = world.groups.group("DEPLOY").unwrap();
    assert_eq!(group.running.as_ref().map(|h| h.run), Some(RunId(3)));
    assert!(group.pending.is_none());
}

#[test]
fn cancel_in_progress_cancels_the_running_run() {
    let yaml = wf_with(
        "concurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true\n",
        &[("build", ""), ("report", "needs: build\nif: always()")],
    );
    let mut world = World::new();
    world.create(1, &yaml);
    world.start(1, "build");
    world.create(2, &yaml);
    let first = world.run(1);
    assert!(first.cancel_requested);
    let build = first.instance(&key("build")).unwrap();
    assert!(build.cancel_requested_at.is_some());
    assert_eq!(
        reasons(&world, 2, "build"),
        ["concurrency group `ci-refs/heads/main` held by run 1"]
    );
    world.complete(1, "build", Conclusion::Cancelled);
    // `always()` still runs in the cancelled run, which keeps the group until it ends.
    assert_eq!(world.queued(1), ["report"]);
    assert!(world.queued(2).is_empty());
    world.start(1, "report");
    world.complete(1, "report", Conclusion::Success);
    assert_eq!(world.run(1).conclusion, Some(Conclusion::Cancelled));
    assert_eq!(world.queued(2), ["build"]);
}

#[test]
fn job_level_groups_hold_jobs_across_runs() {
    let yaml = wf(&[
        ("test", ""),
        ("deploy", "needs: test\nconcurrency: prod-${{ github.ref }}"),
    ]);
    let mut world = World::new();
    world.create(1, &yaml);
    world.create(2, &yaml);
    for run in [1, 2] {
        world.start(run, "test");
        world.complete(run, "test", Conclusion::Success);
    }
    assert_eq!(world.queued(1), ["deploy"]);
    assert_eq!(
        world.run(2).instance(&key("deploy")).unwrap().status,
        JobStatus::Waiting
    );
    assert_eq!(
        reasons(&world, 2, "deploy"),
        ["concurrency group `prod-refs/heads/main` held by run 1"]
    );
    world.start(1, "deploy");
    world.complete(1, "deploy", Conclusion::Success);
    assert_eq!(world.queued(2), ["deploy"]);
}

#[test]
fn matrix_siblings_in_one_group_supersede_each_other_like_on_github() {
    let yaml = wf(&[(
        "deploy",
        "strategy:\n  matrix:\n    n: [1, 2, 3]\nconcurrency: one-at-a-time",
    )]);
    let mut world = World::new();
    world.create(1, &yaml);
    let run = world.run(1);
    assert_eq!(world.queued(1), ["deploy[0]"]);
    let middle = run.instance(&key("deploy[1]")).unwrap();
    assert_eq!(middle.conclusion, Some(Conclusion::Cancelled));
    assert_eq!(middle.message.as_deref(), Some("superseded by run 1"));
    world.start(1, "deploy[0]");
    world.complete(1, "deploy[0]", Conclusion::Success);
    assert_eq!(world.queued(1), ["deploy[2]"]);
}

#[test]
fn cancelling_a_pending_run_withdraws_it_from_the_group() {
    let yaml = wf_with("concurrency: g\n", &[("build", "")]);
    let mut world = World::new();
    world.create(1, &yaml);
    world.create(2, &yaml);
    world.send(2, gantry_engine::Event::CancelRequested { job: None });
    assert_eq!(world.run(2).conclusion, Some(Conclusion::Cancelled));
    assert!(world.groups.group("g").unwrap().pending.is_none());
    world.start(1, "build");
    world.complete(1, "build", Conclusion::Success);
    assert!(world.groups.group("g").is_none());
}
