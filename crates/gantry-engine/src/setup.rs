//! Evaluating what each job instance is and runs with: its display name, `runs-on`,
//! `timeout-minutes`, `continue-on-error`, `strategy` and `concurrency`, each with the contexts
//! GitHub allows at that key.

use gantry_expr::{Contexts, Value};
use gantry_workflow::contexts::Site;
use indexmap::IndexMap;

use crate::config::EngineConfig;
use crate::eval;
use crate::ids::{Attempt, JobKey, Millis};
use crate::spec::{ConcurrencySpec, JobSpec, MatrixSource, PlannedCombination};
use crate::state::{GroupClaim, InstanceSetup, JobInstance, StrategyState};

/// An instance's settings once evaluated.
pub(crate) struct Prepared {
    /// The name, when `name:` is a template (otherwise the name given at creation stays).
    pub(crate) name: Option<String>,
    /// `runs-on`, timeout, continue-on-error.
    pub(crate) setup: InstanceSetup,
    /// The job-level concurrency group.
    pub(crate) claim: Option<GroupClaim>,
}

/// The instances a job starts with: one per planned combination, one for a job without a
/// matrix, or one placeholder for a matrix expanded later (the flag says which).
pub(crate) fn initial_instances(
    job: &JobSpec,
    contexts: &Contexts,
    attempt: Attempt,
) -> (Vec<JobInstance>, bool) {
    match &job.matrix {
        MatrixSource::Planned(combinations) if !combinations.is_empty() => {
            (instances_for(job, combinations, contexts, attempt), false)
        }
        MatrixSource::Deferred(_) => (vec![placeholder(job, contexts, attempt)], true),
        // No matrix, or one without combinations (which the job's decision skips).
        MatrixSource::None | MatrixSource::Planned(_) => {
            (vec![placeholder(job, contexts, attempt)], false)
        }
    }
}

/// The single instance of a job without (or before) its matrix.
pub(crate) fn placeholder(job: &JobSpec, contexts: &Contexts, attempt: Attempt) -> JobInstance {
    JobInstance::new(
        JobKey::single(job.id.clone()),
        instance_name(job, None, contexts),
        None,
        attempt,
    )
}

/// One instance per matrix combination.
pub(crate) fn instances_for(
    job: &JobSpec,
    combinations: &[PlannedCombination],
    contexts: &Contexts,
    attempt: Attempt,
) -> Vec<JobInstance> {
    combinations
        .iter()
        .enumerate()
        .map(|(index, combination)| {
            let key = JobKey::new(job.id.clone(), u32::try_from(index).unwrap_or(u32::MAX));
            let name = instance_name(job, Some(combination), contexts);
            JobInstance::new(key, name, Some(combination.matrix.clone()), attempt)
        })
        .collect()
}

/// GitHub's display name: a `name:` template evaluated as is, otherwise the name (or id)
/// followed by the combination's values, `build (ubuntu, 1.2)`.
pub(crate) fn instance_name(
    job: &JobSpec,
    combination: Option<&PlannedCombination>,
    contexts: &Contexts,
) -> String {
    if let Some(name) = job.name.as_ref().filter(|name| name.contains("${{")) {
        let mut contexts = contexts.clone();
        if let Some(combination) = combination {
            contexts.insert("matrix".to_owned(), matrix_value(&combination.matrix));
        }
        return eval::template(name, Site::JobStrategyContext, &contexts)
            .map(|value| value.to_coerced_string())
            .unwrap_or_else(|_| name.clone());
    }
    match combination {
        Some(combination) => combination.display_name(job.base_name()),
        None => job.base_name().to_owned(),
    }
}

/// The `matrix` context of a combination.
pub(crate) fn matrix_value(matrix: &IndexMap<String, serde_json::Value>) -> Value {
    Value::Object(
        matrix
            .iter()
            .map(|(key, value)| (key.clone(), Value::from_json(value)))
            .collect(),
    )
}

/// `strategy.fail-fast` and `strategy.max-parallel`, with the contexts of `strategy:`.
pub(crate) fn strategy(job: &JobSpec, contexts: &Contexts) -> Result<StrategyState, String> {
    let fail_fast = match &job.fail_fast {
        None => true,
        Some(setting) => eval::setting_bool(setting, Site::Strategy, contexts)
            .map_err(|e| format!("error evaluating `fail-fast`: {e}"))?,
    };
    let max_parallel = match &job.max_parallel {
        None => None,
        Some(setting) => {
            let value = eval::setting_number(setting, Site::Strategy, contexts)
                .map_err(|e| format!("error evaluating `max-parallel`: {e}"))?;
            if value.is_nan() || value < 1.0 {
                return Err(format!("`max-parallel` must be at least 1, got {value}"));
            }
            // `as` saturates, so an absurd limit is just no limit.
            Some(value.floor() as usize)
        }
    };
    Ok(StrategyState {
        fail_fast,
        max_parallel,
    })
}

/// The `strategy` context of instance `index` of `total`.
/// The job's contexts plus one instance's `strategy` and `matrix`.
pub(crate) fn instance_contexts(
    contexts: &Contexts,
    strategy: StrategyState,
    index: usize,
    total: usize,
    instance: &JobInstance,
) -> Contexts {
    let mut contexts = contexts.clone();
    contexts.insert(
        "strategy".to_owned(),
        strategy_value(strategy, index, total),
    );
    let matrix = instance.matrix.as_ref().map_or(Value::Null, matrix_value);
    contexts.insert("matrix".to_owned(), matrix);
    contexts
}

pub(crate) fn strategy_value(strategy: StrategyState, index: usize, total: usize) -> Value {
    let mut fields = IndexMap::new();
    fields.insert("fail-fast".to_owned(), Value::Boolean(strategy.fail_fast));
    fields.insert("job-index".to_owned(), Value::Number(index as f64));
    fields.insert("job-total".to_owned(), Value::Number(total as f64));
    let max_parallel = strategy.max_parallel.unwrap_or(total);
    fields.insert(
        "max-parallel".to_owned(),
        Value::Number(max_parallel as f64),
    );
    Value::Object(fields)
}

/// Evaluates an instance's settings; `contexts` holds `github`, `inputs`, `vars`, `needs`,
/// `strategy` and `matrix`.
pub(crate) fn prepare(
    job: &JobSpec,
    contexts: &Contexts,
    config: &EngineConfig,
) -> Result<Prepared, String> {
    let site = Site::JobStrategyContext;
    let text = |template: &str, key: &str| {
        eval::template(template, site, contexts)
            .map(|value| value.to_coerced_string())
            .map_err(|e| format!("error evaluating `{key}`: {e}"))
    };
    let name = match job.name.as_deref().filter(|name| name.contains("${{")) {
        Some(name) => Some(text(name, "name")?),
        None => None,
    };
    let mut labels = Vec::new();
    for label in &job.runs_on {
        let value = eval::template(label, site, contexts)
            .map_err(|e| format!("error evaluating `runs-on`: {e}"))?;
        eval::labels(value, &mut labels);
    }
    let runner_group = match &job.runner_group {
        Some(group) => Some(text(group, "runs-on.group")?),
        None => None,
    };
    let minutes = match &job.timeout_minutes {
        None => config.default_timeout_minutes,
        Some(setting) => eval::setting_number(setting, site, contexts)
            .map_err(|e| format!("error evaluating `timeout-minutes`: {e}"))?,
    };
    if minutes.is_nan() || minutes <= 0.0 {
        return Err(format!("`timeout-minutes` must be positive, got {minutes}"));
    }
    let continue_on_error = match &job.continue_on_error {
        None => false,
        Some(setting) => eval::setting_bool(setting, site, contexts)
            .map_err(|e| format!("error evaluating `continue-on-error`: {e}"))?,
    };
    let claim = match &job.concurrency {
        Some(concurrency) => group_claim(concurrency, site, contexts)?,
        None => None,
    };
    Ok(Prepared {
        name,
        setup: InstanceSetup {
            labels,
            runner_group,
            timeout: Millis::from_minutes(minutes),
            continue_on_error,
        },
        claim,
    })
}

/// The settings an instance runs with when nothing was evaluated (it never is queued without
/// them; this keeps the code free of panics).
pub(crate) fn fallback_setup(config: &EngineConfig) -> InstanceSetup {
    InstanceSetup {
        labels: Vec::new(),
        runner_group: None,
        timeout: Millis::from_minutes(config.default_timeout_minutes),
        continue_on_error: false,
    }
}

/// Evaluates a `concurrency:` block; an empty group name means no group.
pub(crate) fn group_claim(
    concurrency: &ConcurrencySpec,
    site: Site,
    contexts: &Contexts,
) -> Result<Option<GroupClaim>, String> {
    let group = eval::template(&concurrency.group, site, contexts)
        .map_err(|e| format!("error evaluating `concurrency.group`: {e}"))?
        .to_coerced_string();
    if group.is_empty() {
        return Ok(None);
    }
    let cancel_in_progress = match &concurrency.cancel_in_progress {
        None => false,
        Some(setting) => eval::setting_bool(setting, site, contexts)
            .map_err(|e| format!("error evaluating `cancel-in-progress`: {e}"))?,
    };
    Ok(Some(GroupClaim::new(group, cancel_in_progress)))
}
