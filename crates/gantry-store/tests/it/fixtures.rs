//! Small builders of store inputs and a snapshot of everything stored about a run.

use gantry_store::{
    BuildRun, CreatedRun, EngineState, Job, JobAttempt, JobId, JobStatus, NewJob, NewOrganization,
    NewRepository, NewRun, Organization, QueuedJob, RepoId, Repository, RunContent, RunId,
    RunStatus, RunningAttempt, StepResult, Store, StoreError, WorkflowRun,
};
use serde_json::json;

/// An organization `name` with a repository `web`.
pub async fn org_and_repo(store: &dyn Store, name: &str) -> (Organization, Repository) {
    let org = store
        .create_organization(NewOrganization {
            name: name.to_owned(),
            weight: 1,
            hosted_concurrency_limit: None,
        })
        .await
        .unwrap();
    let repo = store
        .create_repository(NewRepository {
            org_id: org.id,
            name: "web".to_owned(),
            default_branch: "main".to_owned(),
        })
        .await
        .unwrap();
    (org, repo)
}

/// A push of `refs/heads/main` running `workflow_path`.
pub fn new_run(repo_id: RepoId, workflow_path: &str) -> NewRun {
    NewRun {
        repo_id,
        workflow_path: workflow_path.to_owned(),
        workflow_name: "CI".to_owned(),
        event_name: "push".to_owned(),
        git_ref: "refs/heads/main".to_owned(),
        sha: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        actor: "octocat".to_owned(),
        created_at_ms: 1_000,
        workflow_source: "on: push\njobs: {}\n".to_owned(),
        called_workflows: Default::default(),
    }
}

/// A job instance; queued ones carry a queue time.
pub fn job(key: &str, matrix_index: i64, status: JobStatus) -> NewJob {
    NewJob {
        job_key: key.to_owned(),
        matrix_index,
        name: format!("{key} ({matrix_index})"),
        status,
        attempt: 1,
        runs_on: vec!["ubuntu-latest".to_owned()],
        waiting_reasons: match status {
            JobStatus::Waiting => json!([{"reason": "needs", "jobs": ["build"]}]),
            _ => json!([]),
        },
        priority: 0,
        queued_at_ms: (status == JobStatus::Queued).then_some(1_000),
        started_at_ms: None,
    }
}

/// `build` queued and `test` waiting on it.
pub fn two_jobs() -> Vec<NewJob> {
    vec![
        job("build", 0, JobStatus::Queued),
        job("test", 0, JobStatus::Waiting),
    ]
}

/// A builder that records the run's id and number in the engine state, and its id in the
/// engine spec.
pub fn build(jobs: Vec<NewJob>) -> BuildRun {
    BuildRun::new(move |run| {
        Ok(RunContent {
            status: RunStatus::Queued,
            engine_state: json!({"run": run.run_id.0, "number": run.run_number, "events": 0})
                .into(),
            engine_spec: json!({"spec of run": run.run_id.0}).into(),
            jobs: jobs.clone(),
        })
    })
}

/// A builder of runs of [`two_jobs`] created with the engine document `document` (and an
/// empty spec).
pub fn build_with_document(document: &serde_json::Value) -> BuildRun {
    let document = document.clone();
    BuildRun::new(move |_| {
        Ok(RunContent {
            status: RunStatus::Queued,
            engine_state: document.clone().into(),
            engine_spec: json!({}).into(),
            jobs: two_jobs(),
        })
    })
}

/// Creates a run of `workflow_path` with `jobs`.
pub async fn create(
    store: &dyn Store,
    repo_id: RepoId,
    workflow_path: &str,
    jobs: Vec<NewJob>,
) -> CreatedRun {
    store
        .create_run(new_run(repo_id, workflow_path), build(jobs), None)
        .await
        .unwrap()
}

/// Everything stored about a run and the recovery views.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub run: WorkflowRun,
    pub state: EngineState,
    pub jobs: Vec<Job>,
    pub attempts: Vec<Vec<JobAttempt>>,
    pub steps: Vec<Vec<StepResult>>,
    pub queued: Vec<QueuedJob>,
    pub running: Vec<RunningAttempt>,
}

pub async fn snapshot(store: &dyn Store, run_id: RunId) -> Snapshot {
    let jobs = store.list_jobs(run_id).await.unwrap();
    let mut attempts = Vec::new();
    let mut steps = Vec::new();
    for job in &jobs {
        attempts.push(store.list_attempts(job.id).await.unwrap());
        steps.push(store.list_step_results(job.id).await.unwrap());
    }
    Snapshot {
        run: store.get_run(run_id).await.unwrap(),
        state: store.get_engine_state(run_id).await.unwrap(),
        jobs,
        attempts,
        steps,
        queued: store.queued_jobs().await.unwrap(),
        running: store.running_attempts().await.unwrap(),
    }
}

/// The job of `created` at `index`.
pub fn job_id(created: &CreatedRun, index: usize) -> JobId {
    created.job_ids[index]
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected not found, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Invalid { .. }) => {}
        other => panic!("expected invalid input, got {other:?}"),
    }
}
