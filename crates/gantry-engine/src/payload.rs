//! The payload a runner receives for one job instance: [`job_payload`] turns a run's state,
//! its loaded workflow and an instance key into a [`JobPayload`].
//!
//! Pure like the rest of the engine: the secrets' values come from the caller's lookup, and
//! nothing here reads a clock or a file. Step expressions stay templates because `steps.*`,
//! `env` and `job.status` exist only on the runner; what is known at dispatch (`github`,
//! `matrix`, `needs`, `inputs`, `vars`, `strategy`) travels as values.

use gantry_expr::Value;
use gantry_proto::v1::{JobContexts, JobPayload, RunDefaults, StepPayload};
use gantry_workflow::model::{Defaults, EnvMap, OrExpr, Step, StepAction, Workflow};
use indexmap::IndexMap;

use gantry_workflow::contexts::Site;
use gantry_workflow::reusable::WorkflowSource;

use crate::call::CallSecrets;
use crate::eval;
use crate::ids::JobKey;
use crate::setup::matrix_value;
use crate::spec::MatrixSource;
use crate::state::RunState;

/// GitHub's job timeout when `timeout-minutes` is not set.
const DEFAULT_TIMEOUT_MINUTES: f64 = 360.0;

/// Why no payload could be built for an instance.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// The run has no such instance, or the workflow no such job.
    #[error("unknown job `{0}`")]
    UnknownJob(JobKey),
    /// The job uses a feature runners do not support yet; the message names the key.
    #[error("job `{job}` uses `{key}`, which gantry runners do not support yet")]
    Unsupported {
        /// The job id.
        job: String,
        /// The unsupported key (`container`, `services`, `uses`).
        key: &'static str,
    },
}

/// Builds the payload of instance `key` of `state`'s run, whose workflow is `workflow` (the
/// same file the run was created from). `secret` answers a secret's value by name; only the
/// secrets the job's expressions reference are asked for, and unknown ones are left out (they
/// read as empty strings, as on GitHub).
pub fn job_payload(
    state: &RunState,
    workflow: &Workflow,
    key: &JobKey,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<JobPayload, PayloadError> {
    job_payload_with_calls(
        state,
        workflow,
        &crate::call::NoCalledWorkflows,
        key,
        secret,
    )
}

/// [`job_payload`] for a run whose jobs call reusable workflows: `called` answers each `uses:`
/// text with the called workflow (as given to [`crate::create_run_with_calls`]). A job of a
/// called workflow gets its own file's steps and env, its call's `inputs`, and only the
/// secrets its caller passed (`secrets: inherit` passes the caller's own).
pub fn job_payload_with_calls(
    state: &RunState,
    workflow: &Workflow,
    called: &dyn WorkflowSource,
    key: &JobKey,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<JobPayload, PayloadError> {
    let unknown = || PayloadError::UnknownJob(key.clone());
    let job_index = state.spec.job_index(&key.job).ok_or_else(unknown)?;
    let job_spec = &state.spec.jobs[job_index];
    let workflow = match job_spec.parent {
        None => workflow,
        Some(parent) => state.spec.jobs[parent.job]
            .reusable
            .as_deref()
            .and_then(|uses| called.workflow(uses))
            .ok_or_else(unknown)?,
    };
    let job = workflow
        .jobs
        .iter()
        .find(|job| job.id.value == job_spec.local_id())
        .ok_or_else(unknown)?;
    let instance = state.instance(key).ok_or_else(unknown)?;
    let job_state = state.job(&key.job).ok_or_else(unknown)?;
    let unsupported = |key: &'static str| PayloadError::Unsupported {
        job: job.id.value.clone(),
        key,
    };
    if job.uses.is_some() {
        return Err(unsupported("uses"));
    }
    if job.container.is_some() {
        return Err(unsupported("container"));
    }
    if !job.services.is_empty() {
        return Err(unsupported("services"));
    }

    // As `RunState::job_base_contexts`, but from JSON made once per run.
    let (github, mut inputs, vars) = state.spec.payload_contexts(state.attempt.0);
    if let Some(called) = state.called_inputs(job_index) {
        inputs = called.to_json();
    }
    let matrix = instance
        .matrix
        .as_ref()
        .map_or(serde_json::json!({}), |combination| {
            serde_json::Value::Object(combination.clone().into_iter().collect())
        });
    let job_total = match &state.spec.jobs[job_index].matrix {
        MatrixSource::Planned(combinations) => combinations.len(),
        _ => job_state.instances.len(),
    };
    let max_parallel = job_state.strategy.max_parallel.unwrap_or(job_total);
    let strategy = serde_json::json!({
        "fail-fast": job_state.strategy.fail_fast,
        "job-index": key.index,
        "job-total": job_total,
        "max-parallel": max_parallel,
    });
    let needs = state
        .needs_context(&key.job)
        .map_or(serde_json::json!({}), |needs| needs.to_json());

    let steps: Vec<StepPayload> = job.steps.iter().map(step_payload).collect();
    let workflow_env = env_map(&workflow.env);
    let job_env = env_map(&job.env);
    let outputs: IndexMap<String, String> = job
        .outputs
        .iter()
        .map(|(name, value)| (name.value.clone(), value.value.clone()))
        .collect();
    let secrets = referenced_secrets(&workflow_env, &job_env, &steps, &outputs)
        .into_iter()
        .filter_map(|name| passed_secret(state, job_index, &name, secret).map(|v| (name, v)))
        .collect();

    let timeout_minutes = instance
        .setup
        .as_ref()
        .map_or(DEFAULT_TIMEOUT_MINUTES, |setup| {
            setup.timeout.0 as f64 / 60_000.0
        });
    Ok(JobPayload {
        run_id: state.id.0,
        job_id: None,
        // `github.job`: the key under `jobs:` in the job's own file (`build`, not `call/build`).
        job_key: job_spec.local_id().to_owned(),
        matrix_index: key.index,
        name: instance.name.clone(),
        attempt: instance.attempt.0,
        run_attempt: state.attempt.0,
        contexts: JobContexts {
            github,
            matrix,
            needs,
            inputs,
            vars,
            strategy,
            secrets,
        },
        workflow_env,
        job_env,
        workflow_defaults: workflow.defaults.as_ref().map(run_defaults),
        job_defaults: job.defaults.as_ref().map(run_defaults),
        steps,
        outputs,
        timeout_minutes,
    })
}

fn env_map(env: &EnvMap) -> IndexMap<String, String> {
    env.iter()
        .map(|(name, value)| (name.value.clone(), value.value.clone()))
        .collect()
}

fn run_defaults(defaults: &Defaults) -> RunDefaults {
    RunDefaults {
        shell: defaults.shell.as_ref().map(|shell| shell.value.clone()),
        working_directory: defaults
            .working_directory
            .as_ref()
            .map(|dir| dir.value.clone()),
    }
}

/// A literal or template setting as the text the runner evaluates.
fn setting_text<T: ToString>(setting: &OrExpr<T>) -> String {
    match setting {
        OrExpr::Literal(value) => value.value.to_string(),
        OrExpr::Expr(text) => text.value.clone(),
    }
}

fn step_payload(step: &Step) -> StepPayload {
    let mut payload = StepPayload {
        id: step.id.as_ref().map(|id| id.value.clone()),
        name: step.name.as_ref().map(|name| name.value.clone()),
        condition: step.condition.as_ref().map(|text| text.value.clone()),
        env: env_map(&step.env),
        continue_on_error: step.continue_on_error.as_ref().map(setting_text),
        timeout_minutes: step.timeout_minutes.as_ref().map(setting_text),
        ..StepPayload::default()
    };
    match &step.action {
        StepAction::Run {
            script,
            shell,
            working_directory,
        } => {
            payload.run = Some(script.value.clone());
            payload.shell = shell.as_ref().map(|shell| shell.value.clone());
            payload.working_directory = working_directory.as_ref().map(|dir| dir.value.clone());
        }
        StepAction::Uses { action, with } => {
            payload.uses = Some(action.value.clone());
            payload.with = with
                .iter()
                .map(|(name, value)| (name.value.clone(), value.value.clone()))
                .collect();
        }
    }
    payload
}

/// The secret names the job's templates mention as `secrets.NAME` or `secrets['NAME']`, in
/// first-mention order (case kept as first written; GitHub's secret names are
/// case-insensitive, so later spellings that differ only in case are the same secret).
fn referenced_secrets(
    workflow_env: &IndexMap<String, String>,
    job_env: &IndexMap<String, String>,
    steps: &[StepPayload],
    outputs: &IndexMap<String, String>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut scan = |text: &str| {
        for name in secret_names_in(text) {
            if !names.iter().any(|known| known.eq_ignore_ascii_case(&name)) {
                names.push(name);
            }
        }
    };
    workflow_env.values().for_each(|text| scan(text));
    job_env.values().for_each(|text| scan(text));
    outputs.values().for_each(|text| scan(text));
    for step in steps {
        let fields = [
            &step.name,
            &step.condition,
            &step.run,
            &step.shell,
            &step.working_directory,
            &step.continue_on_error,
            &step.timeout_minutes,
        ];
        fields.into_iter().flatten().for_each(|text| scan(text));
        step.with.values().for_each(|text| scan(text));
        step.env.values().for_each(|text| scan(text));
    }
    names
}

/// The value of secret `name` as job `job` sees it: the run's own for a job of the top-level
/// workflow; for a job of a called workflow, what its caller passed (`inherit`: the caller's
/// own secret; a mapping: the mapped template evaluated with the caller's secrets; nothing
/// otherwise, so an unpassed secret reads as empty).
fn passed_secret(
    state: &RunState,
    job: usize,
    name: &str,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let Some(parent) = state.spec.jobs[job].parent else {
        return secret(name);
    };
    let call = state.spec.jobs[parent.job].call.as_ref()?;
    match &call.secrets {
        CallSecrets::None => None,
        CallSecrets::Inherit => passed_secret(state, parent.job, name, secret),
        CallSecrets::Map(map) => {
            let template = map
                .iter()
                .find(|(passed, _)| passed.eq_ignore_ascii_case(name))
                .map(|(_, template)| template)?;
            let mut secrets = IndexMap::new();
            for used in secret_names_in(template) {
                if let Some(value) = passed_secret(state, parent.job, &used, secret) {
                    secrets.insert(used, Value::from(value.as_str()));
                }
            }
            let mut contexts = state.job_base_contexts(parent.job);
            contexts.insert("secrets".to_owned(), Value::Object(secrets));
            contexts.insert("needs".to_owned(), state.needs_value(parent.job));
            let caller = state.jobs[parent.job].instances.get(parent.instance)?;
            let matrix = caller.matrix.as_ref().map_or(Value::Null, matrix_value);
            contexts.insert("matrix".to_owned(), matrix);
            eval::template(template, Site::JobEnv, &contexts)
                .ok()
                .map(|value| value.to_coerced_string())
        }
    }
}

/// Secret names in one template. A cheap textual scan rather than a parse: a name mentioned
/// outside an expression is asked for too, which only costs a lookup, while a parse would miss
/// names in templates that fail to parse (those fail the step anyway).
fn secret_names_in(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut names = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("secrets") {
        let start = from + found + "secrets".len();
        from = start;
        let rest = &text[start..];
        let name: String = if let Some(after_dot) = rest.strip_prefix('.') {
            after_dot
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect()
        } else if let Some(after_bracket) = rest.strip_prefix('[') {
            let inner = after_bracket.trim_start();
            let Some(quoted) = inner.strip_prefix('\'') else {
                continue;
            };
            quoted.split('\'').next().unwrap_or_default().to_owned()
        } else {
            continue;
        };
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, Millis, NewRun, RunId, TriggerContexts, create_run};

    fn payload_for(source: &str, key: JobKey) -> Result<JobPayload, PayloadError> {
        let workflow = gantry_workflow::load(source, &Default::default()).unwrap();
        let trigger = TriggerContexts {
            github: Value::from_json(&serde_json::json!({"event_name": "push", "sha": "abc"})),
            inputs: Value::Object(IndexMap::new()),
            vars: Value::Object(IndexMap::new()),
        };
        let created = create_run(
            NewRun {
                id: RunId(7),
                workflow: &workflow,
                trigger,
                config: EngineConfig::default(),
            },
            Millis(0),
        )
        .unwrap();
        let secrets = |name: &str| (name == "TOKEN").then(|| "s3cr3t".to_owned());
        job_payload(&created.state, &workflow, &key, &secrets)
    }

    #[test]
    fn a_matrix_instance_carries_its_combination_and_only_referenced_secrets() {
        let source = r#"
on: push
env:
  LEVEL: full
jobs:
  test:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    strategy:
      matrix:
        lang: [rust, python]
    env:
      TOKEN: ${{ secrets.TOKEN }}
    defaults:
      run:
        working-directory: src
    outputs:
      ok: ${{ steps.build.outputs.ok }}
    steps:
      - id: build
        run: echo "${{ matrix.lang }} ${{ secrets['OTHER'] }}"
        shell: bash
        continue-on-error: true
      - uses: ./local
        with:
          x: "1"
"#;
        let payload = payload_for(source, JobKey::new("test", 1)).unwrap();
        assert_eq!(payload.run_id, 7);
        assert_eq!(
            payload.contexts.matrix,
            serde_json::json!({"lang": "python"})
        );
        assert_eq!(payload.contexts.strategy["job-index"], 1);
        assert_eq!(payload.contexts.strategy["job-total"], 2);
        assert_eq!(payload.contexts.github["event_name"], "push");
        assert_eq!(payload.contexts.github["run_attempt"], "1");
        assert_eq!(
            payload.contexts.secrets.get("TOKEN").map(String::as_str),
            Some("s3cr3t")
        );
        assert_eq!(payload.contexts.secrets.len(), 1, "OTHER has no value");
        assert_eq!(payload.workflow_env["LEVEL"], "full");
        assert_eq!(
            payload.job_defaults.unwrap().working_directory.as_deref(),
            Some("src")
        );
        assert_eq!(payload.steps[0].continue_on_error.as_deref(), Some("true"));
        assert_eq!(payload.steps[0].shell.as_deref(), Some("bash"));
        assert_eq!(payload.steps[1].uses.as_deref(), Some("./local"));
        assert_eq!(payload.outputs["ok"], "${{ steps.build.outputs.ok }}");
        assert_eq!(payload.timeout_minutes, 5.0);
    }

    /// The trigger's contexts are converted once per run; each payload still carries the
    /// run attempt it is built in, and the same contexts the run's expressions see.
    #[test]
    fn payloads_carry_the_trigger_contexts_of_their_run_attempt() {
        let source = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: true\n";
        let workflow = gantry_workflow::load(source, &Default::default()).unwrap();
        let trigger = TriggerContexts {
            github: Value::from_json(&serde_json::json!({"event_name": "push", "sha": "abc"})),
            inputs: Value::from_json(&serde_json::json!({"level": 3})),
            vars: Value::from_json(&serde_json::json!({"REGION": "eu"})),
        };
        let new_run = NewRun {
            id: RunId(7),
            workflow: &workflow,
            trigger,
            config: EngineConfig::default(),
        };
        let mut state = create_run(new_run, Millis(0)).unwrap().state;
        let key = JobKey::single("a");
        let none = |_: &str| None;
        let first = job_payload(&state, &workflow, &key, &none).unwrap();
        let seen = state.job_base_contexts(0);
        assert_eq!(*first.contexts.github, seen["github"].to_json());
        // Every payload of the attempt shares its `github` (a push's event is kilobytes).
        let second = job_payload(&state, &workflow, &key, &none).unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &first.contexts.github,
            &second.contexts.github
        ));
        assert_eq!(first.contexts.inputs, serde_json::json!({"level": 3}));
        assert_eq!(first.contexts.vars, serde_json::json!({"REGION": "eu"}));

        // A copy of the spec with another trigger converts its own.
        let mut spec = crate::RunSpec::clone(&state.spec);
        spec.trigger.vars = Value::from_json(&serde_json::json!({"REGION": "us"}));
        let mut copy = state.clone();
        copy.spec = std::sync::Arc::new(spec);
        let copied = job_payload(&copy, &workflow, &key, &none).unwrap();
        assert_eq!(copied.contexts.vars, serde_json::json!({"REGION": "us"}));

        state.attempt = crate::RunAttempt(2);
        let again = job_payload(&state, &workflow, &key, &none).unwrap();
        assert_eq!(again.contexts.github["run_attempt"], "2");
        assert_eq!(again.contexts.github["sha"], "abc");
        assert_eq!(
            *again.contexts.github,
            state.job_base_contexts(0)["github"].to_json()
        );
        assert_eq!(first.contexts.github["run_attempt"], "1");
    }

    #[test]
    fn containers_services_and_reusable_calls_are_refused_by_name() {
        let container = "on: push\njobs:\n  a:\n    runs-on: x\n    container: node:20\n    steps:\n      - run: true\n";
        let error = payload_for(container, JobKey::single("a")).unwrap_err();
        assert!(error.to_string().contains("`container`"), "{error}");
        let services = "on: push\njobs:\n  a:\n    runs-on: x\n    services:\n      db:\n        image: postgres\n    steps:\n      - run: true\n";
        let error = payload_for(services, JobKey::single("a")).unwrap_err();
        assert!(error.to_string().contains("`services`"), "{error}");
        let unknown = payload_for(container, JobKey::single("nope")).unwrap_err();
        assert_eq!(unknown, PayloadError::UnknownJob(JobKey::single("nope")));
    }

    #[test]
    fn secret_names_are_found_in_both_spellings() {
        assert_eq!(
            secret_names_in("${{ secrets.A_1 }} ${{ SECRETS['b-2'] }} secrets"),
            vec!["A_1".to_owned(), "b-2".to_owned()]
        );
    }
}
