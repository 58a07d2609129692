//! Test fixtures shared by the crate's unit tests: an app on a fresh SQLite file with one
//! organization, one repository and one run of a single job (or of two independent ones).

use std::sync::Arc;

use gantry_proto::v1 as proto;
use gantry_store::{Claim, Job, Lease, RunId, RunnerId};

use gantry_engine::{Attempt, Event, Millis};

use crate::convert::{self, ms, now};
use crate::run_changes::{RunnerClaim, Step};

use crate::app::App;

/// The app, the temporary directory that holds its store, and the jobs of its one run.
pub(crate) struct OneJob {
    pub app: Arc<App>,
    /// The run's first job.
    pub job: Job,
    /// All of the run's jobs, by id.
    pub jobs: Vec<Job>,
    _dir: tempfile::TempDir,
}

/// An app whose `acme/app` has one run of one queued job.
pub(crate) async fn one_job() -> OneJob {
    run_of(
        "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n",
    )
    .await
}

/// An app whose `acme/app` has one run of two queued jobs.
pub(crate) async fn two_jobs() -> OneJob {
    run_of("on: push\njobs:\n  one:\n    runs-on: ubuntu-latest\n    steps: [{run: 'true'}]\n  two:\n    runs-on: ubuntu-latest\n    steps: [{run: 'true'}]\n").await
}

/// An app whose `acme/app` has one run of `workflow`.
async fn run_of(workflow: &str) -> OneJob {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&crate::Storage::Sqlite {
        path: dir.path().join("gantry.sqlite"),
    })
    .await
    .unwrap();
    let app = Arc::new(App::new(store, Default::default()));
    app.recover().await.unwrap();
    app.create_organization(proto::CreateOrganization {
        name: "acme".into(),
        weight: None,
        hosted_concurrency_limit: None,
    })
    .await
    .unwrap();
    app.create_repository(
        "acme",
        proto::CreateRepository {
            name: "app".into(),
            default_branch: None,
        },
    )
    .await
    .unwrap();
    let run = trigger(&app, workflow).await;
    let jobs = app.store.list_jobs(run).await.unwrap();
    OneJob {
        app,
        job: jobs[0].clone(),
        jobs,
        _dir: dir,
    }
}

/// Triggers a run of `workflow` (as `.github/workflows/ci.yml`) in `acme/app`.
pub(crate) async fn trigger(app: &App, workflow: &str) -> RunId {
    let trigger = proto::TriggerRun {
        workflow_path: ".github/workflows/ci.yml".into(),
        workflow: workflow.into(),
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: None,
    };
    let (run, _) = app.trigger_run("acme", "app", trigger, None).await.unwrap();
    RunId(run.id)
}

impl OneJob {
    /// Claims the job in the store only, as runner 5 with a lease of `lease_ms` from now: a
    /// claim whose start the engine has not heard of yet.
    pub async fn claim_in_store(&self, lease_ms: i64) -> Claim {
        let time = ms(now());
        self.app
            .store
            .claim_job(
                self.job.id,
                RunnerId(5),
                Lease {
                    now_ms: time,
                    deadline_ms: time + lease_ms,
                },
            )
            .await
            .unwrap()
    }
}

/// The engine's "job started" of `job`'s first attempt with runner 7's claim made `at`.
pub(crate) fn start(job: &Job, at: Millis) -> Step {
    Step {
        event: Event::JobStarted {
            job: convert::job_key(job),
            attempt: Attempt(1),
        },
        token: None,
        claim: Some(RunnerClaim {
            job_id: job.id,
            runner: RunnerId(7),
            at,
        }),
    }
}
