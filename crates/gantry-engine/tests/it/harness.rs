//! Test drivers: a run with its clock, addressed by short job keys (`build`, `build[2]`), and a
//! world of several runs sharing concurrency groups.

use std::collections::BTreeMap;

use gantry_engine::{
    Attempt, Conclusion, ConcurrencyGroups, Effect, EngineConfig, EngineError, Event, JobKey,
    JobStatus, Millis, NewRun, RunId, RunState, TimerKind, TriggerContexts, apply, create_run,
    create_run_with_calls,
};
use gantry_expr::Value;
use gantry_workflow::reusable::WorkflowSource;
use gantry_workflow::{Limits, Workflow};
use indexmap::IndexMap;
use serde_json::json;

/// Loads a workflow, allowing large ones.
pub fn workflow(yaml: &str) -> Workflow {
    let limits = Limits {
        max_workflow_jobs: 5000,
        ..Limits::default()
    };
    gantry_workflow::load(yaml, &limits).unwrap_or_else(|d| panic!("workflow does not load:\n{d}"))
}

/// `state` written the way the server stores it (the document, and the spec apart) and read
/// back.
pub fn stored_round_trip(state: &RunState) -> RunState {
    let document = serde_json::from_str(&serde_json::to_string(state).unwrap()).unwrap();
    let spec = serde_json::to_value(&*state.spec).unwrap();
    RunState::from_stored(document, Some(spec)).unwrap()
}

/// Called workflows by their `uses:` text.
#[derive(Default)]
pub struct Called(pub BTreeMap<String, Workflow>);

impl Called {
    pub fn of(files: &[(&str, &str)]) -> Called {
        Called(
            files
                .iter()
                .map(|(uses, yaml)| (uses.to_string(), workflow(yaml)))
                .collect(),
        )
    }
}

impl WorkflowSource for Called {
    fn workflow(&self, reference: &str) -> Option<&Workflow> {
        self.0.get(reference)
    }
}

/// A push to main.
pub fn push_trigger() -> TriggerContexts {
    TriggerContexts {
        github: Value::from(json!({
            "event_name": "push",
            "ref": "refs/heads/main",
            "repository": "acme/app",
            "run_attempt": "1",
        })),
        inputs: Value::from(json!({})),
        vars: Value::from(json!({})),
    }
}

/// `build` is `build[0]`; `build[2]` is itself.
pub fn key(text: &str) -> JobKey {
    match text.split_once('[') {
        Some((job, rest)) => JobKey::new(job, rest.trim_end_matches(']').parse().unwrap()),
        None => JobKey::single(text),
    }
}

/// The short key of an instance: `build` without a matrix, `build[2]` with one.
pub fn short(state: &RunState, key: &JobKey) -> String {
    let instance = state.instance(key).unwrap();
    if instance.matrix.is_none() {
        key.job.clone()
    } else {
        key.to_string()
    }
}

/// Instances with `status`, as short keys in file order.
pub fn with_status(state: &RunState, status: JobStatus) -> Vec<String> {
    state
        .instances()
        .filter(|instance| instance.status == status)
        .map(|instance| short(state, &instance.key))
        .collect()
}

/// Outputs from pairs.
pub fn outputs(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One run and its clock.
pub struct Sim {
    pub state: RunState,
    pub now: u64,
    /// Effects of the last event.
    pub effects: Vec<Effect>,
    /// Every effect since creation.
    pub log: Vec<Effect>,
}

impl Sim {
    pub fn new(yaml: &str) -> Sim {
        Sim::with(yaml, push_trigger(), EngineConfig::default())
    }

    pub fn with(yaml: &str, trigger: TriggerContexts, config: EngineConfig) -> Sim {
        Sim::calling(yaml, &Called::default(), trigger, config).unwrap()
    }

    /// A run of `yaml` whose jobs call the reusable workflows in `called`.
    pub fn calling(
        yaml: &str,
        called: &Called,
        trigger: TriggerContexts,
        config: EngineConfig,
    ) -> Result<Sim, EngineError> {
        let workflow = workflow(yaml);
        let now = 1_000;
        let decision = create_run_with_calls(
            NewRun {
                id: RunId(1),
                workflow: &workflow,
                trigger,
                config,
            },
            called,
            Millis(now),
        )?;
        Ok(Sim {
            state: decision.state,
            now,
            log: decision.effects.clone(),
            effects: decision.effects,
        })
    }

    /// Applies an event with [`apply`], checking that a refused event changes nothing.
    pub fn try_send(&mut self, event: Event) -> Result<Vec<Effect>, EngineError> {
        match apply(&self.state, &event, Millis(self.now)) {
            Ok(decision) => {
                self.state = decision.state;
                self.effects = decision.effects.clone();
                self.log.extend(decision.effects.iter().cloned());
                Ok(decision.effects)
            }
            Err(error) => {
                let mut copy = self.state.clone();
                assert_eq!(copy.handle(&event, Millis(self.now)), Err(error.clone()));
                assert_eq!(copy, self.state, "a refused event changed the state");
                Err(error)
            }
        }
    }

    pub fn send(&mut self, event: Event) -> Vec<Effect> {
        let description = format!("{event:?}");
        self.try_send(event)
            .unwrap_or_else(|e| panic!("{description} refused: {e}"))
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    pub fn attempt(&self, job: &str) -> Attempt {
        self.state.instance(&key(job)).unwrap().attempt
    }

    pub fn start(&mut self, job: &str) -> Vec<Effect> {
        let attempt = self.attempt(job);
        self.send(Event::JobStarted {
            job: key(job),
            attempt,
        })
    }

    pub fn complete_with(
        &mut self,
        job: &str,
        conclusion: Conclusion,
        pairs: &[(&str, &str)],
    ) -> Vec<Effect> {
        let attempt = self.attempt(job);
        self.send(Event::JobCompleted {
            job: key(job),
            attempt,
            conclusion,
            outputs: outputs(pairs),
        })
    }

    pub fn complete(&mut self, job: &str, conclusion: Conclusion) -> Vec<Effect> {
        self.complete_with(job, conclusion, &[])
    }

    /// Starts and completes a job with `conclusion`.
    pub fn run(&mut self, job: &str, conclusion: Conclusion) -> Vec<Effect> {
        self.start(job);
        self.complete(job, conclusion)
    }

    pub fn fire(&mut self, kind: TimerKind) -> Result<Vec<Effect>, EngineError> {
        self.try_send(Event::TimerFired { kind })
    }

    pub fn status(&self, job: &str) -> JobStatus {
        self.state.instance(&key(job)).unwrap().status
    }

    pub fn conclusion(&self, job: &str) -> Option<Conclusion> {
        self.state.instance(&key(job)).unwrap().conclusion
    }

    pub fn message(&self, job: &str) -> Option<String> {
        self.state.instance(&key(job)).unwrap().message.clone()
    }

    pub fn reasons(&self, job: &str) -> Vec<String> {
        self.state
            .wait_reasons(&key(job))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn queued(&self) -> Vec<String> {
        with_status(&self.state, JobStatus::Queued)
    }

    pub fn waiting(&self) -> Vec<String> {
        with_status(&self.state, JobStatus::Waiting)
    }

    pub fn run_conclusion(&self) -> Option<Conclusion> {
        self.state.conclusion
    }

    /// The jobs the last event asked runners to cancel.
    pub fn cancelled_by_last_event(&self) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::CancelJob { job, .. } => Some(short(&self.state, job)),
                _ => None,
            })
            .collect()
    }
}

/// Several runs sharing one repository's concurrency groups; concurrency effects are routed
/// through [`ConcurrencyGroups`] and its answers delivered, like the server will.
pub struct World {
    pub runs: BTreeMap<u64, RunState>,
    pub groups: ConcurrencyGroups,
    pub now: u64,
}

impl World {
    pub fn new() -> World {
        World {
            runs: BTreeMap::new(),
            groups: ConcurrencyGroups::new(),
            now: 1_000,
        }
    }

    pub fn create(&mut self, id: u64, yaml: &str) {
        let workflow = workflow(yaml);
        let decision = create_run(
            NewRun {
                id: RunId(id),
                workflow: &workflow,
                trigger: push_trigger(),
                config: EngineConfig::default(),
            },
            Millis(self.now),
        )
        .unwrap();
        self.runs.insert(id, decision.state);
        self.route(id, decision.effects);
    }

    pub fn send(&mut self, run: u64, event: Event) {
        let state = self.runs.get_mut(&run).unwrap();
        let effects = state
            .handle(&event, Millis(self.now))
            .unwrap_or_else(|e| panic!("run {run}: {event:?} refused: {e}"));
        self.route(run, effects);
    }

    fn route(&mut self, run: u64, effects: Vec<Effect>) {
        for effect in effects {
            for delivery in self.groups.handle(RunId(run), &effect) {
                self.send(delivery.run.0, delivery.event);
            }
        }
    }

    pub fn run(&self, run: u64) -> &RunState {
        &self.runs[&run]
    }

    pub fn start(&mut self, run: u64, job: &str) {
        let attempt = self.run(run).instance(&key(job)).unwrap().attempt;
        self.send(
            run,
            Event::JobStarted {
                job: key(job),
                attempt,
            },
        );
    }

    pub fn complete(&mut self, run: u64, job: &str, conclusion: Conclusion) {
        let attempt = self.run(run).instance(&key(job)).unwrap().attempt;
        self.send(
            run,
            Event::JobCompleted {
                job: key(job),
                attempt,
                conclusion,
                outputs: IndexMap::new(),
            },
        );
    }

    pub fn queued(&self, run: u64) -> Vec<String> {
        with_status(self.run(run), JobStatus::Queued)
    }
}

/// A workflow from `(job id, extra lines)` pairs; each job gets `runs-on` (unless the extra
/// lines set it) and one step. Extra lines are written at job level (4 spaces).
pub fn wf(jobs: &[(&str, &str)]) -> String {
    wf_with("", jobs)
}

/// [`wf`] with workflow-level lines (such as `concurrency:`) after `on: push`.
pub fn wf_with(top: &str, jobs: &[(&str, &str)]) -> String {
    let mut yaml = format!("on: push\n{top}jobs:\n");
    for (id, extra) in jobs {
        yaml.push_str(&format!("  {id}:\n"));
        for line in extra.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
        if !extra.contains("runs-on:") {
            yaml.push_str("    runs-on: ubuntu-latest\n");
        }
        yaml.push_str("    steps:\n      - run: echo hi\n");
    }
    yaml
}
