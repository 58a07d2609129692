//! act's run scenarios (`../shared/corpora/nektos-act`, `expected-outcomes.TestRunEvent.json`)
//! driven through the real engine and step runner: each eligible scenario's workflows are
//! created as runs, every queued job becomes a payload run by the step runner on the host
//! executor in a copy of the scenario's work directory, and the run's result is compared with
//! act's expectation (success or failure, and the expected error text where act gives one).
//!
//! Eligible scenarios need neither Docker (`container:`, `services:`, `docker://` steps,
//! Docker actions) nor JavaScript actions (remote actions other than `actions/checkout`,
//! local actions that run `node*`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gantry_engine::{
    ConcurrencyGroups, Effect, EngineConfig, Event, Millis, NewRun, RunId, TriggerContexts,
    create_run, job_payload,
};
use gantry_expr::Value;
use gantry_runner::steps::{
    CancelHandle, Conclusion, LocalDirectorySource, RecordingReporter, RunOptions,
};
use gantry_workflow::Workflow;
use gantry_workflow::model::{InputType, StepAction, TriggerConfig};

/// The matched count this suite reached; fewer is a regression.
const FLOOR: usize = 33;

fn corpus() -> Option<PathBuf> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/nektos-act"
    ));
    if path.join("expected-outcomes.TestRunEvent.json").is_file() {
        return Some(path);
    }
    let message = format!(
        "act corpus not found at {}: act scenarios NOT RUN",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message} (required under CI=true)");
    }
    eprintln!("\n!!!!!!!! {message} !!!!!!!!\n");
    None
}

#[derive(Debug, serde::Deserialize)]
struct Row {
    workdir: String,
    workflow_dir: String,
    event: String,
    expected_error: Option<String>,
    expect_success: bool,
}

/// Why a scenario is not eligible, if it is not. `sources` are the workflow files' texts: a
/// workflow that writes a `Dockerfile` builds a Docker action from it at run time.
fn ineligible(workflows: &[Workflow], sources: &[String], workdir: &Path) -> Option<String> {
    if sources.iter().any(|source| source.contains("Dockerfile")) {
        return Some("the workflow writes a Dockerfile action".to_owned());
    }
    for workflow in workflows {
        for job in &workflow.jobs {
            if job.container.is_some() {
                return Some(format!("job `{}` has a container", job.id.value));
            }
            if !job.services.is_empty() {
                return Some(format!("job `{}` has services", job.id.value));
            }
            for step in &job.steps {
                if let StepAction::Uses { action, .. } = &step.action
                    && let Some(reason) = action_needs(&action.value, workdir, 0)
                {
                    return Some(reason);
                }
            }
        }
    }
    None
}

/// Whether the action `uses` needs Docker or JavaScript (looking inside local composites).
fn action_needs(uses: &str, workdir: &Path, depth: usize) -> Option<String> {
    if let Some(image) = uses.strip_prefix("docker://") {
        return Some(format!("docker image {image}"));
    }
    if !uses.starts_with("./") {
        let name = uses.split('@').next().unwrap_or(uses);
        return (!name.eq_ignore_ascii_case("actions/checkout"))
            .then(|| format!("remote action {uses}"));
    }
    let dir = workdir.join(uses);
    let text = ["action.yml", "action.yaml"]
        .iter()
        .find_map(|name| std::fs::read_to_string(dir.join(name)).ok());
    let Some(text) = text else {
        // act's shared fixtures under `testdata/actions/` (Docker and JavaScript actions)
        // were not copied. Other actions without a manifest are written by the workflow
        // itself at run time (`shell: cp {0} action.yml`; workflows that write a Dockerfile
        // are caught by `writes_dockerfile`) or are act's "non-existent action" scenario.
        if uses.starts_with("./actions/") && !workdir.join("actions").is_dir() {
            return Some(format!(
                "{uses} is one of act's testdata/actions fixtures, not in the corpus"
            ));
        }
        return None;
    };
    let manifest: serde_json::Value = match serde_saphyr::from_str(&text) {
        Ok(manifest) => manifest,
        Err(_) => return None,
    };
    let using = manifest["runs"]["using"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if using.starts_with("node") {
        return Some(format!("JavaScript action {uses}"));
    }
    if using == "docker" {
        return Some(format!("Docker action {uses}"));
    }
    if depth < 5
        && let Some(steps) = manifest["runs"]["steps"].as_array()
    {
        for step in steps {
            if let Some(inner) = step["uses"].as_str()
                && let Some(reason) = action_needs(inner, workdir, depth + 1)
            {
                return Some(reason);
            }
        }
    }
    None
}

fn engine_conclusion(conclusion: Conclusion) -> gantry_engine::Conclusion {
    match conclusion {
        Conclusion::Success => gantry_engine::Conclusion::Success,
        Conclusion::Failure => gantry_engine::Conclusion::Failure,
        Conclusion::Cancelled => gantry_engine::Conclusion::Cancelled,
        Conclusion::Skipped => gantry_engine::Conclusion::Skipped,
    }
}

/// What a run of one workflow came to.
struct Outcome {
    success: bool,
    messages: Vec<String>,
}

/// The `inputs` context of a dispatch or call: declared defaults (booleans as booleans),
/// overlaid by the event's `inputs`.
fn inputs(workflow: &Workflow, payload: &serde_json::Value) -> serde_json::Value {
    let mut inputs = serde_json::Map::new();
    for trigger in &workflow.on {
        let declared = match &trigger.config {
            TriggerConfig::WorkflowDispatch { inputs } => inputs,
            TriggerConfig::WorkflowCall { inputs, .. } => inputs,
            _ => continue,
        };
        for input in declared {
            let boolean = input.kind == InputType::Boolean;
            let mut value = input
                .default
                .as_ref()
                .map_or(serde_json::Value::Null, |node| node.to_json());
            if let Some(given) = payload["inputs"].get(&input.id.value) {
                value = given.clone();
            }
            if boolean && let Some(text) = value.as_str() {
                value = serde_json::Value::Bool(text.eq_ignore_ascii_case("true"));
            }
            if !value.is_null() {
                inputs.insert(input.id.value.clone(), value);
            }
        }
    }
    serde_json::Value::Object(inputs)
}

fn run_workflow(workflow: &Workflow, event: &str, workdir: &Path, scenario: &Path) -> Outcome {
    // act reads the event from `event.json` beside the workflow when there is one.
    let payload: serde_json::Value = std::fs::read_to_string(scenario.join("event.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let github = serde_json::json!({
        "event_name": event,
        "event": payload.clone(),
        "sha": "0000000000000000000000000000000000000000",
        "ref": "refs/heads/main",
        "ref_name": "main",
        "ref_type": "branch",
        "repository": "nektos/act",
        "repository_owner": "nektos",
        "actor": "nektos/act",
        "workflow": workflow.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "graphql_url": "https://api.github.com/graphql",
        "run_number": "1",
        "retention_days": "0",
    });
    let trigger = TriggerContexts {
        github: Value::from_json(&github),
        inputs: Value::from_json(&inputs(workflow, &payload)),
        vars: Value::Object(Default::default()),
    };
    let mut messages = Vec::new();
    let created = match create_run(
        NewRun {
            id: RunId(1),
            workflow,
            trigger,
            config: EngineConfig::default(),
        },
        Millis(0),
    ) {
        Ok(created) => created,
        Err(error) => {
            return Outcome {
                success: false,
                messages: vec![error.to_string()],
            };
        }
    };
    let mut state = created.state;
    let mut effects: VecDeque<Effect> = created.effects.into();
    let mut groups = ConcurrencyGroups::new();
    let options = RunOptions {
        path: std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()),
        cancel_grace: std::time::Duration::from_millis(500),
        source: Some(Arc::new(LocalDirectorySource::new(workdir))),
        ..RunOptions::default()
    };
    let mut now = 1;
    let mut run_conclusion = None;
    let apply = |state: &mut gantry_engine::RunState,
                 event: Event,
                 now: u64,
                 effects: &mut VecDeque<Effect>,
                 messages: &mut Vec<String>| {
        match state.handle(&event, Millis(now)) {
            Ok(more) => effects.extend(more),
            Err(error) => messages.push(format!("engine refused {event:?}: {error}")),
        }
    };
    let mut steps = 0;
    while let Some(effect) = effects.pop_front() {
        steps += 1;
        assert!(steps < 10_000, "the run does not settle");
        now += 1;
        for delivery in groups.handle(RunId(1), &effect) {
            apply(&mut state, delivery.event, now, &mut effects, &mut messages);
        }
        match effect {
            Effect::QueueJob(order) => {
                let started = Event::JobStarted {
                    job: order.job.clone(),
                    attempt: order.attempt,
                };
                apply(&mut state, started, now, &mut effects, &mut messages);
                let (conclusion, outputs) = match job_payload(&state, workflow, &order.job, &|_| {
                    None
                }) {
                    Ok(mut payload) => {
                        // act's scenarios expect act's environment, which sets `ACT`.
                        payload
                            .workflow_env
                            .shift_insert(0, "ACT".to_owned(), "true".to_owned());
                        let mut reporter = RecordingReporter::default();
                        crate::steps::run_with(
                            &payload,
                            &options,
                            |workspace| {
                                gantry_runner::steps::copy_tree(workdir, workspace).unwrap()
                            },
                            &mut reporter,
                            &CancelHandle::new(),
                        );
                        let result = reporter.result.clone().unwrap();
                        for ended in &reporter.ended {
                            if let Some(error) = &ended.error {
                                messages.push(format!("{} / {}: {error}", order.job, ended.name));
                            }
                        }
                        if let Some(message) = &result.message {
                            messages.push(format!("{}: {message}", order.job));
                        }
                        (result.conclusion, result.outputs)
                    }
                    Err(error) => {
                        messages.push(error.to_string());
                        (Conclusion::Failure, Default::default())
                    }
                };
                if conclusion == Conclusion::Failure {
                    messages.push(format!("Job '{}' failed", order.job.job));
                }
                let completed = Event::JobCompleted {
                    job: order.job,
                    attempt: order.attempt,
                    conclusion: engine_conclusion(conclusion),
                    outputs,
                };
                apply(&mut state, completed, now, &mut effects, &mut messages);
            }
            Effect::RunCompleted(conclusion) => run_conclusion = Some(conclusion),
            _ => {}
        }
    }
    for job in &state.jobs {
        if let Some(message) = &job.message {
            messages.push(format!("job `{}`: {message}", job.id));
        }
        for instance in &job.instances {
            if let Some(message) = &instance.message {
                messages.push(format!("{}: {message}", instance.key));
            }
        }
    }
    if run_conclusion.is_none() {
        messages.push("the run did not complete".to_owned());
    }
    Outcome {
        success: run_conclusion == Some(gantry_engine::Conclusion::Success),
        messages,
    }
}

#[test]
fn act_scenarios() {
    let Some(corpus) = corpus() else {
        return;
    };
    let text = std::fs::read_to_string(corpus.join("expected-outcomes.TestRunEvent.json")).unwrap();
    let rows: Vec<Row> = serde_json::from_str(&text).unwrap();
    let total = rows.len();
    let (mut eligible, mut matched) = (0, 0);
    let mut report = Vec::new();
    for row in &rows {
        let workdir = corpus.join(&row.workdir);
        let dir = workdir.join(&row.workflow_dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| {
                        path.extension()
                            .is_some_and(|ext| ext == "yml" || ext == "yaml")
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let mut workflows = Vec::new();
        let mut sources = Vec::new();
        let mut load_errors = Vec::new();
        for file in &files {
            let source = std::fs::read_to_string(file).unwrap();
            match gantry_workflow::load(&source, &Default::default()) {
                Ok(workflow) => {
                    if workflow
                        .on
                        .iter()
                        .any(|trigger| trigger.event.value == row.event)
                    {
                        workflows.push(workflow);
                        sources.push(source);
                    }
                }
                Err(error) => load_errors.push(format!("{}: {error}", file.display())),
            }
        }
        let name = format!("{} ({})", row.workflow_dir, row.event);
        if let Some(reason) = ineligible(&workflows, &sources, &workdir) {
            report.push(format!("  skip   {name}: {reason}"));
            continue;
        }
        eligible += 1;
        let mut success = load_errors.is_empty() && !workflows.is_empty();
        let mut messages = load_errors;
        if workflows.is_empty() && messages.is_empty() {
            messages.push(format!(
                "no workflow in {} runs on {}",
                dir.display(),
                row.event
            ));
        }
        for workflow in &workflows {
            let outcome = run_workflow(workflow, &row.event, &workdir, &dir);
            success &= outcome.success;
            messages.extend(outcome.messages);
        }
        let error_matches = row.expected_error.as_ref().is_none_or(|expected| {
            let expected = expected.to_ascii_lowercase();
            messages
                .iter()
                .any(|message| message.to_ascii_lowercase().contains(&expected))
        });
        let ok = success == row.expect_success && (success || error_matches);
        if ok {
            matched += 1;
            report.push(format!("  match  {name}"));
        } else {
            report.push(format!(
                "  MISS   {name}: expected {}{}, got {}: {}",
                if row.expect_success {
                    "success"
                } else {
                    "failure"
                },
                row.expected_error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default(),
                if success { "success" } else { "failure" },
                messages.join(" | ").chars().take(600).collect::<String>()
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    println!("act scenarios: matched {matched} of {eligible} eligible ({total} total)");
    assert!(
        matched >= FLOOR,
        "act scenarios: matched {matched}, below the floor of {FLOOR}"
    );
}
