//! The step runner end to end on the host executor: a workflow's job turned into a payload by
//! the engine, run in a fresh sandbox, and what the reporter saw checked.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gantry_engine::{
    EngineConfig, Millis, NewRun, RunId, TriggerContexts, create_run, job_payload,
};
use gantry_expr::Value;
use gantry_runner::sandbox::{Executor, HostExecutor, SandboxSpec};
use gantry_runner::steps::{
    AnnotationLevel, CancelHandle, Conclusion, JobPayload, JobReporter, LocalDirectorySource,
    RecordingReporter, RunOptions, run_job,
};

/// The payload of `job` in `source`, with `TOKEN` as the only secret there is.
pub fn payload(source: &str, job: &str) -> JobPayload {
    let workflow = gantry_workflow::load(source, &Default::default()).unwrap();
    let trigger = TriggerContexts {
        github: Value::from_json(&serde_json::json!({
            "event_name": "push",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "ref": "refs/heads/main",
            "repository": "acme/app",
            "actor": "octocat",
            "event": {"head_commit": {"message": "hello"}},
        })),
        inputs: Value::Object(Default::default()),
        vars: Value::Object(Default::default()),
    };
    let created = create_run(
        NewRun {
            id: RunId(1),
            workflow: &workflow,
            trigger,
            config: EngineConfig::default(),
        },
        Millis(0),
    )
    .unwrap();
    let secrets = |name: &str| (name == "TOKEN").then(|| "hunter2-secret".to_owned());
    job_payload(
        &created.state,
        &workflow,
        &gantry_engine::JobKey::single(job),
        &secrets,
    )
    .unwrap()
}

pub fn options() -> RunOptions {
    RunOptions {
        path: std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()),
        cancel_grace: Duration::from_millis(200),
        ..RunOptions::default()
    }
}

/// Runs `payload` in a fresh host sandbox; `prepare` may fill the workspace first.
pub fn run_with(
    payload: &JobPayload,
    options: &RunOptions,
    prepare: impl FnOnce(&Path),
    reporter: &mut dyn JobReporter,
    cancel: &CancelHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = HostExecutor::new()
        .create(&SandboxSpec {
            job_dir: dir.path().join("job"),
            limits: Default::default(),
            network: false,
        })
        .unwrap();
    prepare(&sandbox.paths().workspace.host);
    run_job(payload, sandbox.as_ref(), options, reporter, cancel);
    sandbox.destroy().unwrap();
}

fn run(source: &str) -> RecordingReporter {
    let mut reporter = RecordingReporter::default();
    run_with(
        &payload(source, "job"),
        &options(),
        |_| {},
        &mut reporter,
        &CancelHandle::new(),
    );
    reporter
}

fn all_text(reporter: &RecordingReporter) -> String {
    reporter
        .lines
        .iter()
        .map(|line| line.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn conclusion(reporter: &RecordingReporter) -> Conclusion {
    reporter.result.as_ref().unwrap().conclusion
}

fn step_error(reporter: &RecordingReporter, index: usize) -> String {
    reporter.ended[index].error.clone().unwrap_or_default()
}

#[test]
fn env_precedence_file_commands_and_outputs() {
    let reporter = run(r#"
on: push
env:
  A: workflow
  B: workflow
  C: workflow
jobs:
  job:
    runs-on: ubuntu-latest
    env:
      B: job
      C: job
    outputs:
      greeting: ${{ steps.out.outputs.greeting }}
      multi: ${{ steps.out.outputs.multi }}
    steps:
      - run: |
          echo "C=github_env" >> "$GITHUB_ENV"
          echo "D=github_env" >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/bin" && printf '#!/bin/sh\necho from-path\n' > "$RUNNER_TEMP/bin/hello" && chmod +x "$RUNNER_TEMP/bin/hello"
          echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
      - env:
          D: step
        run: |
          [ "$A/$B/$C/$D" = "workflow/job/github_env/step" ] || { echo "got $A/$B/$C/$D"; exit 1; }
          [ "${{ env.C }}" = github_env ] || exit 1
          [ "$CI" = true ] && [ "$GITHUB_ACTIONS" = true ] && [ "$GITHUB_SHA" = 0123456789abcdef0123456789abcdef01234567 ]
          [ "$(pwd)" = "$GITHUB_WORKSPACE" ] && [ "$RUNNER_OS" = Linux ] && [ -n "$HOME" ]
          [ "$(hello)" = from-path ]
          [ "$GITHUB_EVENT_NAME" = push ] && grep -q hello "$GITHUB_EVENT_PATH"
      - id: out
        run: |
          echo "greeting=hi ${{ github.actor }}" >> "$GITHUB_OUTPUT"
          printf 'multi<<EOF\nline 1\nline 2\nEOF\n' >> "$GITHUB_OUTPUT"
      - run: '[ "${{ steps.out.outputs.greeting }}" = "hi octocat" ] && [ "${{ steps.out.outcome }}" = success ]'
      - id: named
        run: '[ "$GITHUB_ACTION" = named ] && [ "${{ github.action }}" = named ] && [ "${{ job.status }}" = success ]'
"#);
    assert_eq!(
        conclusion(&reporter),
        Conclusion::Success,
        "{}",
        all_text(&reporter)
    );
    let outputs = &reporter.result.as_ref().unwrap().outputs;
    assert_eq!(outputs["greeting"], "hi octocat");
    assert_eq!(outputs["multi"], "line 1\nline 2");
}

#[test]
fn secrets_and_added_masks_never_reach_the_log() {
    let reporter = run(r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - env:
          TOKEN: ${{ secrets.TOKEN }}
        run: |
          echo "token is $TOKEN"
          echo "::add-mask::dynamic-value-42"
          echo "later dynamic-value-42 here"
          echo "::warning file=a.txt,line=3::warned about $TOKEN"
          echo "$TOKEN" >&2
          echo "summary: $TOKEN" >> "$GITHUB_STEP_SUMMARY"
"#);
    assert_eq!(
        conclusion(&reporter),
        Conclusion::Success,
        "{}",
        all_text(&reporter)
    );
    let text = all_text(&reporter);
    assert!(!text.contains("hunter2-secret"), "{text}");
    // The script itself is echoed before the mask exists (as on GitHub); its output is not.
    let output: Vec<&str> = reporter
        .lines
        .iter()
        .map(|line| line.text.as_str())
        .filter(|line| !line.starts_with("##[command]"))
        .collect();
    assert!(!output.join("\n").contains("dynamic-value-42"), "{text}");
    assert!(text.contains("token is ***"), "{text}");
    assert!(text.contains("later *** here"), "{text}");
    let warning = &reporter.annotations[0];
    assert_eq!(warning.level, AnnotationLevel::Warning);
    assert_eq!(warning.message, "warned about ***");
    assert_eq!(warning.file.as_deref(), Some("a.txt"));
    assert_eq!(warning.line, Some(3));
    assert_eq!(reporter.summaries, vec![(0, "summary: ***\n".to_owned())]);
    // Line numbers count up within the step.
    let numbers: Vec<u64> = reporter.lines.iter().map(|line| line.number).collect();
    assert!(numbers.windows(2).all(|pair| pair[1] == pair[0] + 1));
}

#[test]
fn shells_defaults_and_custom_templates() {
    let reporter = run(r#"
on: push
defaults:
  run:
    shell: sh
jobs:
  job:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: sub
    steps:
      - run: '[ -z "${BASH+x}" ] && echo "sh in $(basename "$(pwd)")"'
        working-directory: .
      - run: mkdir -p sub/deeper
        working-directory: .
      - run: 'test "$(basename "$(pwd)")" = sub'
      - shell: bash
        run: '[[ -n "$BASH" ]] && echo bash-ok'
      - shell: bash
        continue-on-error: true
        id: pipefail
        run: 'false | true'
      - shell: python
        run: print("from python")
      - shell: 'bash -c "cat {0}"'
        run: echo custom-template-ran
"#);
    let text = all_text(&reporter);
    let outcomes: Vec<_> = reporter
        .ended
        .iter()
        .map(|e| (e.outcome, e.conclusion))
        .collect();
    assert_eq!(
        reporter.ended[4].outcome,
        Conclusion::Failure,
        "pipefail: {text}"
    );
    assert_eq!(reporter.ended[4].conclusion, Conclusion::Success);
    assert_eq!(
        conclusion(&reporter),
        Conclusion::Success,
        "{outcomes:?}\n{text}"
    );
    assert!(text.contains("sh in workspace"), "{text}");
    assert!(text.contains("from python"), "{text}");
    assert!(text.contains("echo custom-template-ran"), "{text}");
}

#[test]
fn bad_input_ends_as_clear_step_errors() {
    let reporter = run(r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - shell: fish
        run: echo never
        continue-on-error: true
      - working-directory: ../..
        run: echo never
        continue-on-error: true
      - run: printf 'X<<EOF\nno end\n' >> "$GITHUB_OUTPUT"
        continue-on-error: true
      - run: echo "::set-env name=X::y"
        continue-on-error: true
      - uses: actions/setup-node@v4
        continue-on-error: true
      - uses: ./missing-action
        continue-on-error: true
      - run: exit 3
"#);
    assert!(step_error(&reporter, 0).contains("unknown shell `fish`"));
    assert!(step_error(&reporter, 1).contains("outside the workspace"));
    assert!(step_error(&reporter, 2).contains("matching delimiter not found `EOF`"));
    assert!(step_error(&reporter, 3).contains("`set-env` command is disabled"));
    let unsupported = step_error(&reporter, 4);
    assert!(unsupported.contains("actions/setup-node@v4") && unsupported.contains("composite"));
    assert!(step_error(&reporter, 5).contains("./missing-action"));
    assert_eq!(
        step_error(&reporter, 6),
        "Process completed with exit code 3."
    );
    for index in 0..6 {
        assert_eq!(reporter.ended[index].outcome, Conclusion::Failure);
        assert_eq!(reporter.ended[index].conclusion, Conclusion::Success);
    }
    assert_eq!(conclusion(&reporter), Conclusion::Failure);
}

#[test]
fn status_functions_decide_which_steps_run_after_a_failure() {
    let reporter = run(r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - id: bad
        run: exit 1
      - run: echo skipped
      - if: failure() && steps.bad.outcome == 'failure'
        run: echo after-failure
      - if: always()
        run: echo always
      - if: cancelled()
        run: echo never
"#);
    let outcomes: Vec<Conclusion> = reporter.ended.iter().map(|e| e.outcome).collect();
    use Conclusion::*;
    assert_eq!(outcomes, [Failure, Skipped, Success, Success, Skipped]);
    assert_eq!(conclusion(&reporter), Failure);
}

#[test]
fn a_step_timeout_kills_the_step() {
    let reporter = run(r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - timeout-minutes: 0.005
        run: sleep 600
      - if: always()
        timeout-minutes: 0.005
        run: exec >/dev/null 2>&1; sleep 600
      - if: always()
        run: echo cleanup
"#);
    assert_eq!(reporter.ended[0].outcome, Conclusion::Failure);
    let timed_out = |index: usize| step_error(&reporter, index).contains("timed out");
    assert!(timed_out(0), "{:?}", reporter.ended[0]);
    // A process that closed its output is still watched by the clock.
    assert!(timed_out(1), "{:?}", reporter.ended[1]);
    assert_eq!(reporter.ended[2].outcome, Conclusion::Success);
    assert_eq!(conclusion(&reporter), Conclusion::Failure);
}

/// Cancels the job when the running step prints `started`.
struct CancelOnOutput {
    inner: RecordingReporter,
    cancel: CancelHandle,
}

impl JobReporter for CancelOnOutput {
    fn step_started(&mut self, step: &gantry_runner::steps::StepInfo) {
        self.inner.step_started(step)
    }
    fn log_line(&mut self, line: &gantry_runner::steps::LogLine) {
        if line.text == "started" {
            self.cancel.cancel();
        }
        self.inner.log_line(line)
    }
    fn annotation(&mut self, annotation: &gantry_runner::steps::Annotation) {
        self.inner.annotation(annotation)
    }
    fn step_ended(&mut self, result: &gantry_runner::steps::StepResult) {
        self.inner.step_ended(result)
    }
    fn job_ended(&mut self, result: &gantry_runner::steps::JobResult) {
        self.inner.job_ended(result)
    }
}

#[test]
fn cancelling_stops_the_running_step_and_runs_only_always_steps() {
    let source = r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - run: echo started; sleep 600
      - run: echo not-after-cancel
      - if: always()
        run: echo cleanup-ran
"#;
    let cancel = CancelHandle::new();
    let mut reporter = CancelOnOutput {
        inner: RecordingReporter::default(),
        cancel: cancel.clone(),
    };
    run_with(
        &payload(source, "job"),
        &options(),
        |_| {},
        &mut reporter,
        &cancel,
    );
    let recorded = reporter.inner;
    let outcomes: Vec<Conclusion> = recorded.ended.iter().map(|e| e.outcome).collect();
    use Conclusion::*;
    assert_eq!(outcomes, [Cancelled, Skipped, Success]);
    assert!(all_text(&recorded).contains("cleanup-ran"));
    assert_eq!(conclusion(&recorded), Cancelled);
}

#[test]
fn a_gigabyte_of_output_is_drained_and_capped() {
    let source = r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - run: head -c 1073741824 /dev/zero | tr '\0' 'a' | fold -w 4096
      - run: echo still-running
"#;
    let options = RunOptions {
        max_log_bytes_per_step: 1024 * 1024,
        ..options()
    };
    let mut reporter = RecordingReporter::default();
    run_with(
        &payload(source, "job"),
        &options,
        |_| {},
        &mut reporter,
        &CancelHandle::new(),
    );
    assert_eq!(conclusion(&reporter), Conclusion::Success);
    let first: usize = reporter.step_log(0).iter().map(|line| line.len() + 1).sum();
    assert!(first < 1024 * 1024 + 4096 * 2, "{first} bytes kept");
    assert!(
        reporter
            .step_log(0)
            .last()
            .unwrap()
            .contains("log truncated")
    );
    assert!(reporter.step_log(1).contains(&"still-running"));
}

#[test]
fn composite_actions_with_inputs_outputs_and_recursion() {
    let source = r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    outputs:
      said: ${{ steps.greet.outputs.said }}
    steps:
      - id: greet
        uses: ./actions/greet
        with:
          who: gantry
      - run: '[ "${{ steps.greet.outputs.said }}" = "hello gantry (3)" ]'
      - uses: ./actions/slow
        timeout-minutes: 0.005
        continue-on-error: true
      - uses: ./actions/loop-a
"#;
    let write = |root: &Path| {
        let action = |name: &str, text: &str| {
            std::fs::create_dir_all(root.join("actions").join(name)).unwrap();
            std::fs::write(root.join("actions").join(name).join("action.yml"), text).unwrap();
        };
        action(
            "greet",
            r#"
inputs:
  who:
    required: true
  times:
    default: "3"
outputs:
  said:
    value: ${{ steps.say.outputs.text }}
runs:
  using: composite
  steps:
    - id: say
      shell: bash
      run: |
        [ "$INPUT_WHO" = gantry ] && [ -f "${{ github.action_path }}/action.yml" ]
        echo "text=hello ${{ inputs.who }} (${{ inputs.times }})" >> "$GITHUB_OUTPUT"
"#,
        );
        action(
            "loop-a",
            "runs:\n  using: composite\n  steps:\n    - uses: ./actions/loop-b\n",
        );
        action(
            "loop-b",
            "runs:\n  using: composite\n  steps:\n    - uses: ./actions/loop-a\n",
        );
    };
    let mut reporter = RecordingReporter::default();
    run_with(
        &payload(source, "job"),
        &options(),
        write,
        &mut reporter,
        &CancelHandle::new(),
    );
    assert_eq!(
        reporter.ended[0].outcome,
        Conclusion::Success,
        "{}",
        all_text(&reporter)
    );
    assert_eq!(
        reporter.ended[1].outcome,
        Conclusion::Success,
        "{}",
        all_text(&reporter)
    );
    assert_eq!(
        reporter.result.as_ref().unwrap().outputs["said"],
        "hello gantry (3)"
    );
    let text = all_text(&reporter);
    assert!(
        text.contains(
            "composite action recursion: ./actions/loop-a -> ./actions/loop-b -> ./actions/loop-a"
        ),
        "{text}"
    );
    assert_eq!(conclusion(&reporter), Conclusion::Failure);
}

#[test]
fn checkout_copies_the_source_into_the_workspace() {
    let source_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(source_dir.path().join("src")).unwrap();
    std::fs::write(source_dir.path().join("src/main.txt"), "checked out").unwrap();
    let options = RunOptions {
        source: Some(Arc::new(LocalDirectorySource::new(source_dir.path()))),
        ..options()
    };
    let source = r#"
on: push
jobs:
  job:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: grep -q "checked out" src/main.txt
"#;
    let mut reporter = RecordingReporter::default();
    run_with(
        &payload(source, "job"),
        &options,
        |_| {},
        &mut reporter,
        &CancelHandle::new(),
    );
    assert_eq!(
        conclusion(&reporter),
        Conclusion::Success,
        "{}",
        all_text(&reporter)
    );
}
