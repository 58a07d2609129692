//! Jobs calling reusable workflows: inputs, secrets, outputs, results, matrices, nesting,
//! cancellation and re-runs across the called jobs.

use gantry_engine::{
    Conclusion, Effect, EngineConfig, EngineError, Event, JobKey, JobStatus, job_payload_with_calls,
};
use serde_json::json;

use crate::harness::{Called, Sim, push_trigger, workflow};

const BUILD: &str = r#"
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
      debug: {type: boolean, default: false}
      level: {type: number, default: 2}
    secrets:
      token: {required: false}
    outputs:
      artifact:
        value: ${{ jobs.package.outputs.name }}
      compiled:
        value: ${{ jobs.compile.result }}
jobs:
  compile:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ inputs.target }} ${{ secrets.token }} ${{ secrets.OTHER }}
  package:
    needs: compile
    runs-on: ${{ inputs.target }}
    outputs:
      name: ${{ steps.p.outputs.name }}
    steps:
      - id: p
        run: echo
"#;

const CALLER: &str = r#"
on: push
jobs:
  call:
    uses: ./.github/workflows/build.yml
    with:
      target: linux
    secrets:
      token: ${{ secrets.DEPLOY }}-x
  deploy:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ needs.call.outputs.artifact }}
"#;

const USES: &str = "./.github/workflows/build.yml";

fn called() -> Called {
    Called::of(&[(USES, BUILD)])
}

fn sim(caller: &str) -> Sim {
    Sim::calling(caller, &called(), push_trigger(), EngineConfig::default()).unwrap()
}

fn instance_name(sim: &Sim, job: &str) -> String {
    sim.state
        .instance(&JobKey::single(job))
        .unwrap()
        .name
        .clone()
}

/// The payload of `job` with the run's only secrets `DEPLOY` and `OTHER`.
fn payload(sim: &Sim, caller: &str, job: &str) -> gantry_proto::v1::JobPayload {
    let caller = workflow(caller);
    let secrets = |name: &str| match name {
        "DEPLOY" => Some("d3pl0y".to_owned()),
        "OTHER" => Some("other".to_owned()),
        "token" => Some("top-level-token".to_owned()),
        _ => None,
    };
    job_payload_with_calls(
        &sim.state,
        &caller,
        &called(),
        &JobKey::single(job),
        &secrets,
    )
    .unwrap()
}

#[test]
fn inputs_and_secrets_reach_the_called_jobs_and_outputs_reach_later_jobs() {
    let mut sim = sim(CALLER);
    assert_eq!(sim.queued(), ["call/compile"]);
    assert_eq!(instance_name(&sim, "call/compile"), "call / compile");
    assert_eq!(
        sim.reasons("call/package"),
        ["waiting on needs: call/compile"]
    );
    assert_eq!(sim.reasons("deploy"), ["waiting on needs: call"]);

    let compile = payload(&sim, CALLER, "call/compile");
    assert_eq!(
        compile.contexts.inputs,
        json!({"target": "linux", "debug": false, "level": 2})
    );
    // Only what the caller passed, under the called workflow's name: not `OTHER`.
    assert_eq!(compile.contexts.secrets.len(), 1);
    assert_eq!(compile.contexts.secrets["token"], "d3pl0y-x");
    assert_eq!(compile.job_key, "compile");
    assert_eq!(compile.name, "call / compile");

    sim.run("call/compile", Conclusion::Success);
    assert_eq!(sim.queued(), ["call/package"]);
    let package = sim.state.instance(&JobKey::single("call/package")).unwrap();
    assert_eq!(package.setup.as_ref().unwrap().labels, ["linux"]);
    sim.start("call/package");
    sim.complete_with("call/package", Conclusion::Success, &[("name", "app.tar")]);

    let call = sim.state.job("call").unwrap();
    assert_eq!(call.result, Some(Conclusion::Success));
    assert_eq!(call.outputs["artifact"], "app.tar");
    assert_eq!(call.outputs["compiled"], "success");
    assert_eq!(sim.queued(), ["deploy"]);
    let deploy = payload(&sim, CALLER, "deploy");
    assert_eq!(
        deploy.contexts.needs["call"]["outputs"]["artifact"],
        "app.tar"
    );
    sim.run("deploy", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));
}

#[test]
fn a_failing_child_fails_the_caller_and_skips_its_dependents() {
    let mut sim = sim(CALLER);
    sim.run("call/compile", Conclusion::Failure);
    assert_eq!(sim.conclusion("call/package"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Failure));
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

#[test]
fn a_missing_required_input_fails_the_caller_with_its_name() {
    let caller = CALLER.replace("      target: linux\n", "      debug: true\n");
    let mut sim = sim(&caller);
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Failure));
    assert_eq!(
        sim.message("call").as_deref(),
        Some("input `target` is required, but not provided while calling")
    );
    assert_eq!(sim.conclusion("call/compile"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("call/package"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
    assert!(sim.queued().is_empty());
    // Nothing about a caller can be reported by a runner.
    let refused = sim.try_send(Event::JobStarted {
        job: JobKey::single("call"),
        attempt: sim.attempt("call"),
    });
    assert!(matches!(refused, Err(EngineError::WrongStatus { .. })));
}

#[test]
fn a_mistyped_input_fails_the_caller() {
    let caller = CALLER.replace(
        "      target: linux\n",
        "      target: linux\n      level: ${{ github.ref }}\n",
    );
    let sim = sim(&caller);
    assert_eq!(
        sim.message("call").as_deref(),
        Some("input `level` must be a number, got string")
    );
}

#[test]
fn inherited_secrets_are_the_callers_own_and_no_secrets_means_none() {
    let inherit = CALLER
        .replace("      token: ${{ secrets.DEPLOY }}-x\n", "")
        .replace("    secrets:\n", "    secrets: inherit\n");
    let sim_inherit = sim(&inherit);
    let compile = payload(&sim_inherit, &inherit, "call/compile");
    assert_eq!(compile.contexts.secrets["token"], "top-level-token");
    assert_eq!(compile.contexts.secrets["OTHER"], "other");

    let none = CALLER
        .replace("      token: ${{ secrets.DEPLOY }}-x\n", "")
        .replace("    secrets:\n", "");
    let sim_none = sim(&none);
    let compile = payload(&sim_none, &none, "call/compile");
    assert!(compile.contexts.secrets.is_empty());
}

#[test]
fn a_skipped_caller_skips_its_called_jobs() {
    let caller = CALLER.replace(
        "    uses:",
        "    if: github.ref == 'refs/heads/other'\n    uses:",
    );
    let sim = sim(&caller);
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("call/compile"), Some(Conclusion::Skipped));
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Skipped));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Skipped));
}

#[test]
fn a_matrix_caller_calls_once_per_combination() {
    let caller = CALLER.replace(
        "      target: linux\n",
        "      target: ${{ matrix.os }}\n    strategy:\n      matrix:\n        os: [linux, mac]\n",
    );
    let mut sim = sim(&caller);
    assert_eq!(sim.queued(), ["call.0/compile", "call.1/compile"]);
    assert_eq!(
        instance_name(&sim, "call.1/compile"),
        "call (mac) / compile"
    );
    let mac = payload(&sim, &caller, "call.1/compile");
    assert_eq!(mac.contexts.inputs["target"], "mac");
    for combination in ["call.0", "call.1"] {
        sim.run(&format!("{combination}/compile"), Conclusion::Success);
    }
    sim.start("call.1/package");
    sim.complete_with(
        "call.1/package",
        Conclusion::Success,
        &[("name", "mac.tar")],
    );
    assert_eq!(sim.status("call[1]"), JobStatus::Completed);
    assert_eq!(sim.status("call[0]"), JobStatus::Waiting);
    assert!(sim.queued().contains(&"call.0/package".to_owned()));
    let linux = sim
        .state
        .instance(&JobKey::single("call.0/package"))
        .unwrap();
    assert_eq!(linux.setup.as_ref().unwrap().labels, ["linux"]);
    sim.start("call.0/package");
    sim.complete_with(
        "call.0/package",
        Conclusion::Success,
        &[("name", "linux.tar")],
    );
    // As with any matrix job, the outputs of the instance that ended last win.
    assert_eq!(
        sim.state.job("call").unwrap().outputs["artifact"],
        "linux.tar"
    );
    assert_eq!(sim.queued(), ["deploy"]);
}

/// `strategy.max-parallel` on a caller limits how many of its calls run at once: the next
/// combination's call starts when one has ended, and the waiting ones say why.
#[test]
fn max_parallel_limits_how_many_calls_run_at_once() {
    let caller = CALLER.replace(
        "      target: linux\n",
        "      target: ${{ matrix.os }}\n    strategy:\n      max-parallel: 1\n      matrix:\n        os: [linux, mac, windows]\n",
    );
    let mut sim = sim(&caller);
    assert_eq!(sim.queued(), ["call.0/compile"]);
    assert_eq!(
        sim.reasons("call[1]"),
        ["max-parallel reached (1 at a time)"]
    );
    for combination in 0..3 {
        let compile = format!("call.{combination}/compile");
        assert_eq!(
            sim.queued(),
            std::slice::from_ref(&compile),
            "combination {combination}"
        );
        sim.run(&compile, Conclusion::Success);
        sim.run(&format!("call.{combination}/package"), Conclusion::Success);
        assert_eq!(
            sim.conclusion(&format!("call[{combination}]")),
            Some(Conclusion::Success)
        );
    }
    assert_eq!(sim.queued(), ["deploy"]);
}

#[test]
fn fail_fast_cancels_the_other_combinations_calls() {
    let caller = CALLER.replace(
        "      target: linux\n",
        "      target: ${{ matrix.os }}\n    strategy:\n      matrix:\n        os: [linux, mac]\n",
    );
    let mut sim = sim(&caller);
    sim.start("call.1/compile");
    sim.run("call.0/compile", Conclusion::Failure);
    assert_eq!(sim.conclusion("call[0]"), Some(Conclusion::Failure));
    assert_eq!(sim.cancelled_by_last_event(), ["call.1/compile"]);
    assert_eq!(
        sim.conclusion("call.1/package"),
        Some(Conclusion::Cancelled)
    );
    sim.complete("call.1/compile", Conclusion::Cancelled);
    assert_eq!(sim.conclusion("call[1]"), Some(Conclusion::Cancelled));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

const OUTER: &str = r#"
on:
  workflow_call:
    outputs:
      leaf:
        value: ${{ jobs.mid.outputs.leaf }}
jobs:
  mid:
    uses: ./.github/workflows/inner.yml
    with:
      word: ${{ inputs.word }}-mid
"#;

const INNER: &str = r#"
on:
  workflow_call:
    inputs:
      word: {type: string, required: true}
    outputs:
      leaf:
        value: ${{ jobs.leaf.outputs.said }}
jobs:
  leaf:
    runs-on: ubuntu-latest
    outputs:
      said: ${{ steps.s.outputs.said }}
    steps:
      - id: s
        run: echo ${{ inputs.word }}
"#;

#[test]
fn nested_calls_run_and_pass_outputs_up() {
    let outer = OUTER.replace(
        "on:\n  workflow_call:\n",
        "on:\n  workflow_call:\n    inputs:\n      word: {type: string, required: true}\n",
    );
    let called = Called::of(&[
        ("./.github/workflows/outer.yml", &outer),
        ("./.github/workflows/inner.yml", INNER),
    ]);
    let caller = "on: push\njobs:\n  top:\n    uses: ./.github/workflows/outer.yml\n    with:\n      word: hi\n  after:\n    needs: top\n    runs-on: x\n    steps:\n      - run: echo ${{ needs.top.outputs.leaf }}\n";
    let mut sim = Sim::calling(caller, &called, push_trigger(), EngineConfig::default()).unwrap();
    assert_eq!(sim.queued(), ["top/mid/leaf"]);
    assert_eq!(instance_name(&sim, "top/mid/leaf"), "top / mid / leaf");
    let leaf = job_payload_with_calls(
        &sim.state,
        &workflow(caller),
        &called,
        &JobKey::single("top/mid/leaf"),
        &|_| None,
    )
    .unwrap();
    assert_eq!(leaf.contexts.inputs, json!({"word": "hi-mid"}));
    sim.start("top/mid/leaf");
    sim.complete_with("top/mid/leaf", Conclusion::Success, &[("said", "hi-mid")]);
    assert_eq!(sim.state.job("top").unwrap().outputs["leaf"], "hi-mid");
    assert_eq!(sim.queued(), ["after"]);
}

#[test]
fn calls_nested_deeper_than_github_allows_are_refused() {
    let recursive =
        "on:\n  workflow_call:\njobs:\n  again:\n    uses: ./.github/workflows/self.yml\n";
    let called = Called::of(&[("./.github/workflows/self.yml", recursive)]);
    let caller = "on: push\njobs:\n  top:\n    uses: ./.github/workflows/self.yml\n";
    let error = Sim::calling(caller, &called, push_trigger(), EngineConfig::default())
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("nested reusable workflow depth exceeded 10"),
        "{error}"
    );
}

#[test]
fn a_call_without_its_workflow_fails_when_it_starts() {
    let sim = Sim::new(CALLER);
    assert_eq!(
        sim.message("call").as_deref(),
        Some("the reusable workflow `./.github/workflows/build.yml` was not given with the run")
    );
}

#[test]
fn cancelling_the_run_cancels_the_called_jobs_and_the_caller() {
    let mut sim = sim(CALLER);
    sim.start("call/compile");
    sim.send(Event::CancelRequested { job: None });
    assert_eq!(sim.cancelled_by_last_event(), ["call/compile"]);
    assert_eq!(sim.conclusion("call/package"), Some(Conclusion::Cancelled));
    assert_eq!(sim.status("call"), JobStatus::Waiting);
    sim.complete("call/compile", Conclusion::Cancelled);
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Cancelled));
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Cancelled));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
}

#[test]
fn cancelling_the_caller_cancels_its_called_jobs() {
    let mut sim = sim(CALLER);
    sim.start("call/compile");
    sim.send(Event::CancelRequested {
        job: Some(JobKey::single("call")),
    });
    assert_eq!(sim.cancelled_by_last_event(), ["call/compile"]);
    sim.complete("call/compile", Conclusion::Cancelled);
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Cancelled));
    assert_eq!(sim.conclusion("deploy"), Some(Conclusion::Skipped));
}

#[test]
fn rerun_failed_runs_the_failed_called_job_again_inside_its_caller() {
    let mut sim = sim(CALLER);
    sim.run("call/compile", Conclusion::Success);
    sim.run("call/package", Conclusion::Failure);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
    sim.send(Event::RerunRequested { failed_only: true });
    assert_eq!(sim.queued(), ["call/package"]);
    assert_eq!(sim.conclusion("call/compile"), Some(Conclusion::Success));
    assert_eq!(sim.attempt("call/package").0, 2);
    sim.start("call/package");
    sim.complete_with(
        "call/package",
        Conclusion::Success,
        &[("name", "again.tar")],
    );
    assert_eq!(
        sim.state.job("call").unwrap().outputs["artifact"],
        "again.tar"
    );
    sim.run("deploy", Conclusion::Success);
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Success));

    sim.send(Event::RerunRequested { failed_only: false });
    assert_eq!(sim.queued(), ["call/compile"]);
}

#[test]
fn a_lost_runner_of_a_called_job_is_retried() {
    let mut sim = sim(CALLER);
    sim.start("call/compile");
    let attempt = sim.attempt("call/compile");
    sim.send(Event::JobLost {
        job: JobKey::single("call/compile"),
        attempt,
    });
    assert_eq!(sim.queued(), ["call/compile"]);
    sim.run("call/compile", Conclusion::Success);
    assert_eq!(sim.queued(), ["call/package"]);
}

#[test]
fn the_state_of_a_run_with_calls_round_trips_through_json() {
    let mut sim = sim(CALLER);
    sim.run("call/compile", Conclusion::Success);
    let back = crate::harness::stored_round_trip(&sim.state);
    assert_eq!(back, sim.state);
    sim.state = back;
    sim.start("call/package");
    sim.complete_with("call/package", Conclusion::Success, &[("name", "n")]);
    assert_eq!(sim.state.job("call").unwrap().outputs["artifact"], "n");
}

#[test]
fn a_caller_whose_matrix_reads_needs_fails_with_a_message() {
    let caller = CALLER
        .replace(
            "  call:\n",
            "  setup:\n    runs-on: x\n    steps:\n      - run: echo\n  call:\n    needs: setup\n    strategy:\n      matrix:\n        os: ${{ fromJSON(needs.setup.outputs.list) }}\n",
        )
        .replace("      target: linux\n", "      target: ${{ matrix.os }}\n");
    let mut sim = sim(&caller);
    sim.start("setup");
    sim.complete_with("setup", Conclusion::Success, &[("list", "[\"a\"]")]);
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Failure));
    assert!(
        sim.message("call")
            .unwrap()
            .contains("matrix that reads `needs`"),
        "{:?}",
        sim.message("call")
    );
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Failure));
}

/// A caller's own `concurrency` group holds its call: the called jobs wait until the group is
/// granted (the caller waits with the group's reason), and the group is released when the
/// call ends.
#[test]
fn a_callers_concurrency_group_holds_its_call_until_granted() {
    let caller = CALLER.replace(
        "  call:\n    uses:",
        "  call:\n    concurrency: deploy-${{ github.ref }}\n    uses:",
    );
    let mut sim = sim(&caller);
    let call = JobKey::single("call");
    assert!(sim.queued().is_empty(), "{:?}", sim.queued());
    let asked = sim.effects.iter().any(|effect| {
        matches!(effect, Effect::AcquireConcurrency { group, job: Some(job), .. }
            if group == "deploy-refs/heads/main" && *job == call)
    });
    assert!(asked, "{:?}", sim.effects);
    assert_eq!(sim.status("call"), JobStatus::Waiting);

    sim.send(Event::ConcurrencyGranted {
        job: Some(call.clone()),
    });
    assert_eq!(sim.queued(), ["call/compile"]);
    sim.run("call/compile", Conclusion::Success);
    let ended = sim.run("call/package", Conclusion::Success);
    let released = ended.iter().any(|effect| {
        matches!(effect, Effect::ReleaseConcurrency { job: Some(job), .. } if *job == call)
    });
    assert!(released, "{ended:?}");
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Success));
}

/// A caller waiting for its group that is cancelled ends its called jobs with it.
#[test]
fn a_caller_cancelled_while_waiting_for_its_group_cancels_its_called_jobs() {
    let caller = CALLER.replace(
        "  call:\n    uses:",
        "  call:\n    concurrency: deploy\n    uses:",
    );
    let mut sim = sim(&caller);
    sim.send(Event::CancelRequested { job: None });
    assert_eq!(sim.conclusion("call"), Some(Conclusion::Cancelled));
    assert_eq!(sim.conclusion("call/compile"), Some(Conclusion::Cancelled));
    assert_eq!(sim.conclusion("call/package"), Some(Conclusion::Cancelled));
    assert_eq!(sim.run_conclusion(), Some(Conclusion::Cancelled));
}
