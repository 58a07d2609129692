//! Operations without HTTP: runs, completions through `App::complete_job`, concurrency groups
//! across runs, and recovery from the store.

use std::path::Path;
use std::sync::Arc;

use gantry_proto::v1::{
    CompleteJob, Conclusion, CreateOrganization, CreateRepository, ErrorCode, Job, JobStatus,
    RunDetail, RunStatus, TriggerRun, WaitingReasonKind,
};
use gantry_server::{App, Storage, open_store};

async fn app(dir: &Path) -> App {
    let store = open_store(&Storage::Sqlite {
        path: dir.join("gantry.sqlite"),
    })
    .await
    .unwrap();
    let app = App::new(store, Default::default());
    app.recover().await.unwrap();
    app
}

async fn repo(app: &App) {
    let org = CreateOrganization {
        name: "acme".into(),
        weight: None,
        hosted_concurrency_limit: None,
    };
    app.create_organization(org).await.unwrap();
    let repo = CreateRepository {
        name: "app".into(),
        default_branch: None,
    };
    app.create_repository("acme", repo).await.unwrap();
}

fn trigger(workflow: &str) -> TriggerRun {
    TriggerRun {
        workflow_path: ".github/workflows/deploy.yml".into(),
        workflow: workflow.into(),
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: None,
    }
}

fn job<'a>(detail: &'a RunDetail, key: &str) -> &'a Job {
    detail.jobs.iter().find(|job| job.job_key == key).unwrap()
}

async fn complete(app: &App, job: &Job, conclusion: Conclusion) -> Job {
    let request = CompleteJob {
        conclusion,
        outputs: Default::default(),
    };
    let answer = app.complete_job(job.run_id, job.id, request).await.unwrap();
    // The answer (built from the run cache) is what the store holds.
    let stored = app.get_job(job.run_id, job.id).await.unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        serde_json::to_value(&stored).unwrap()
    );
    answer
}

const DEPLOY: &str = "on: push\nconcurrency: deploy\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./ship\n";

#[tokio::test]
async fn a_concurrency_group_holds_the_second_run_until_the_first_completes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let (first, _) = app
        .trigger_run("acme", "app", trigger(DEPLOY), None)
        .await
        .unwrap();
    let (second, _) = app
        .trigger_run("acme", "app", trigger(DEPLOY), None)
        .await
        .unwrap();

    let first = app.get_run(first.id).await.unwrap();
    assert_eq!(job(&first, "ship").status, JobStatus::Queued);
    let waiting = app.get_run(second.id).await.unwrap();
    let ship = job(&waiting, "ship");
    assert_eq!(ship.status, JobStatus::Waiting);
    assert_eq!(
        ship.waiting_reasons[0].kind,
        WaitingReasonKind::ConcurrencyGroup
    );
    assert_eq!(ship.waiting_reasons[0].held_by_run, Some(first.run.id));
    assert_eq!(
        ship.waiting_reasons[0].message,
        format!("concurrency group `deploy` held by run {}", first.run.id)
    );

    complete(&app, job(&first, "ship"), Conclusion::Success).await;
    let granted = app.get_run(second.id).await.unwrap();
    assert_eq!(job(&granted, "ship").status, JobStatus::Queued);
    assert_eq!(app.queued_count(), 1);
}

#[tokio::test]
async fn a_new_app_on_the_same_store_rebuilds_queue_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = {
        let app = app(dir.path()).await;
        repo(&app).await;
        let (first, _) = app
            .trigger_run("acme", "app", trigger(DEPLOY), None)
            .await
            .unwrap();
        let (second, _) = app
            .trigger_run("acme", "app", trigger(DEPLOY), None)
            .await
            .unwrap();
        (first.id, second.id)
    };

    // "Restart": nothing in memory but what the store says.
    let app = app(dir.path()).await;
    assert_eq!(app.queued_count(), 1);
    let detail = app.get_run(first).await.unwrap();
    complete(&app, job(&detail, "ship"), Conclusion::Failure).await;
    let detail = app.get_run(first).await.unwrap();
    assert_eq!(detail.run.status, RunStatus::Completed);
    assert_eq!(detail.run.conclusion, Some(Conclusion::Failure));
    // The rebuilt group hands itself to the second run.
    let second = app.get_run(second).await.unwrap();
    assert_eq!(job(&second, "ship").status, JobStatus::Queued);
}

#[tokio::test]
async fn completing_a_job_twice_or_as_skipped_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(app(dir.path()).await);
    repo(&app).await;
    let (run, created) = app
        .trigger_run("acme", "app", trigger(DEPLOY), Some("k".into()))
        .await
        .unwrap();
    assert!(created);
    let (again, created) = app
        .trigger_run("acme", "app", trigger(DEPLOY), Some("k".into()))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, run.id);

    let detail = app.get_run(run.id).await.unwrap();
    let ship = job(&detail, "ship").clone();
    let skipped = CompleteJob {
        conclusion: Conclusion::Skipped,
        outputs: Default::default(),
    };
    let error = app
        .complete_job(run.id, ship.id, skipped)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    let done = complete(&app, &ship, Conclusion::Success).await;
    assert_eq!(done.conclusion, Some(Conclusion::Success));
    let twice = CompleteJob {
        conclusion: Conclusion::Success,
        outputs: Default::default(),
    };
    let error = app.complete_job(run.id, ship.id, twice).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Conflict);
    let error = app
        .complete_job(
            run.id + 1,
            ship.id,
            CompleteJob {
                conclusion: Conclusion::Success,
                outputs: Default::default(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn an_invalid_workflow_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let error = app
        .trigger_run("acme", "app", trigger("on: push\njobs: {}\n"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WorkflowInvalid);
    let runs = app.list_runs(None, Default::default()).await.unwrap();
    assert!(runs.items.is_empty());
}

/// A run triggered through the API for an event its `on:` does not list is refused at the
/// `on:` entry, and nothing is stored; a reusable workflow cannot be triggered on its own.
#[tokio::test]
async fn an_event_the_workflow_does_not_listen_to_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let workflow = "on:\n  pull_request:\n  workflow_call:\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'true'\n";
    for event in ["push", "workflow_call"] {
        let mut request = trigger(workflow);
        request.event = Some(event.to_owned());
        let error = app
            .trigger_run("acme", "app", request, None)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::WorkflowInvalid);
        assert!(
            error.message.contains(&format!("`{event}`")),
            "{}",
            error.message
        );
        let detail = &error.details[0];
        assert_eq!((detail.line, detail.col), (Some(2), Some(3)));
        assert_eq!(
            detail.message,
            format!("`on:` lists pull_request, workflow_call, not `{event}`")
        );
    }
    assert!(
        app.list_runs(None, Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mut request = trigger(workflow);
    request.event = Some("pull_request".to_owned());
    app.trigger_run("acme", "app", request, None).await.unwrap();
}

#[tokio::test]
async fn a_deferred_matrix_adds_its_jobs_when_its_need_ends() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let workflow = "on: push\njobs:\n  setup:\n    runs-on: ubuntu-latest\n    outputs:\n      targets: ${{ steps.t.outputs.list }}\n    steps:\n      - id: t\n        run: echo\n  build:\n    needs: setup\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        target: ${{ fromJSON(needs.setup.outputs.targets) }}\n    steps:\n      - run: make ${{ matrix.target }}\n";
    let (run, _) = app
        .trigger_run("acme", "app", trigger(workflow), None)
        .await
        .unwrap();
    let detail = app.get_run(run.id).await.unwrap();
    assert_eq!(
        detail.jobs.len(),
        2,
        "setup and one placeholder for the matrix"
    );
    let request = CompleteJob {
        conclusion: Conclusion::Success,
        outputs: [(
            "targets".to_owned(),
            r#"["x86", "arm", "riscv"]"#.to_owned(),
        )]
        .into_iter()
        .collect(),
    };
    app.complete_job(run.id, job(&detail, "setup").id, request)
        .await
        .unwrap();
    let detail = app.get_run(run.id).await.unwrap();
    let builds: Vec<&Job> = detail
        .jobs
        .iter()
        .filter(|job| job.job_key == "build")
        .collect();
    assert_eq!(builds.len(), 3, "{:#?}", detail.jobs);
    assert!(builds.iter().all(|job| job.status == JobStatus::Queued));
    assert_eq!(app.queued_count(), 3);
    for build in builds {
        complete(&app, build, Conclusion::Success).await;
    }
    let detail = app.get_run(run.id).await.unwrap();
    assert_eq!(detail.run.conclusion, Some(Conclusion::Success));
}

const DEFERRED: &str = "\
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      targets: ${{ steps.list.outputs.targets }}
    steps:
      - id: list
        run: ./list
  test:
    needs: setup
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: ${{ fromJSON(needs.setup.outputs.targets) }}
    steps:
      - run: ./test ${{ matrix.target }}
";

async fn complete_with(app: &App, job: &Job, targets: &str) {
    let request = CompleteJob {
        conclusion: Conclusion::Success,
        outputs: [("targets".to_owned(), targets.to_owned())].into(),
    };
    app.complete_job(job.run_id, job.id, request).await.unwrap();
}

fn test_names(detail: &RunDetail) -> Vec<String> {
    let mut names: Vec<String> = detail
        .jobs
        .iter()
        .filter(|job| job.job_key == "test")
        .map(|job| job.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_rerun_of_a_deferred_matrix_lists_only_the_new_attempts_instances() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let run = app
        .trigger_run("acme", "app", trigger(DEFERRED), None)
        .await
        .unwrap()
        .0
        .id;
    let detail = app.get_run(run).await.unwrap();
    app.start_job(run, job(&detail, "setup").id).await.unwrap();
    complete_with(&app, job(&detail, "setup"), r#"["a","b","c"]"#).await;
    let detail = app.get_run(run).await.unwrap();
    assert_eq!(test_names(&detail), ["test (a)", "test (b)", "test (c)"]);
    for test in detail.jobs.iter().filter(|job| job.job_key == "test") {
        app.start_job(run, test.id).await.unwrap();
        complete(&app, test, Conclusion::Success).await;
    }
    assert_eq!(
        app.get_run(run).await.unwrap().run.status,
        RunStatus::Completed
    );

    // Attempt 2: the matrix waits for `setup` again as one job, and then has two instances.
    let rerun = gantry_proto::v1::Rerun { failed_only: false };
    app.rerun(run, rerun).await.unwrap();
    let detail = app.get_run(run).await.unwrap();
    assert_eq!(detail.jobs.len(), 2, "{:#?}", detail.jobs);
    assert_eq!(job(&detail, "test").status, JobStatus::Waiting);
    app.start_job(run, job(&detail, "setup").id).await.unwrap();
    complete_with(&app, job(&detail, "setup"), r#"["a","b"]"#).await;
    let detail = app.get_run(run).await.unwrap();
    assert_eq!(test_names(&detail), ["test (a)", "test (b)"]);
    assert!(
        detail
            .jobs
            .iter()
            .all(|job| job.attempt == 2 || job.job_key == "setup"),
        "{:#?}",
        detail.jobs
    );
    assert_eq!(app.list_jobs(run).await.unwrap().items.len(), 3);
}

const CALLER: &str = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/build.yml\n    with:\n      target: prod\n  after:\n    needs: call\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ needs.call.outputs.artifact }}\n";
const CALLED: &str = "on:\n  workflow_call:\n    inputs:\n      target:\n        type: string\n        required: true\n    outputs:\n      artifact:\n        value: ${{ jobs.build.outputs.artifact }}\njobs:\n  build:\n    runs-on: ubuntu-latest\n    outputs:\n      artifact: ${{ inputs.target }}\n    steps:\n      - run: make\n";

fn calling(called: &[(&str, &str)]) -> TriggerRun {
    TriggerRun {
        called_workflows: Some(
            called
                .iter()
                .map(|(uses, text)| (uses.to_string(), text.to_string()))
                .collect(),
        ),
        ..trigger(CALLER)
    }
}

#[tokio::test]
async fn the_api_runs_called_workflows_given_with_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let request = calling(&[("./.github/workflows/build.yml", CALLED)]);
    let (run, created) = app.trigger_run("acme", "app", request, None).await.unwrap();
    assert!(created);
    let detail = app.get_run(run.id).await.unwrap();
    let build = job(&detail, "call/build");
    assert_eq!(build.name, "call / build");
    assert_eq!(build.status, JobStatus::Queued);
    // The caller is in progress while its called jobs are, though no runner holds it.
    let call = job(&detail, "call");
    assert_eq!(call.status, JobStatus::InProgress);
    assert!(
        call.started_at.is_some() && call.waiting_reasons.is_empty(),
        "{call:?}"
    );
    let request = CompleteJob {
        conclusion: Conclusion::Success,
        outputs: [("artifact".to_owned(), "prod".to_owned())]
            .into_iter()
            .collect(),
    };
    app.complete_job(run.id, build.id, request).await.unwrap();
    let detail = app.get_run(run.id).await.unwrap();
    assert_eq!(job(&detail, "call").conclusion, Some(Conclusion::Success));
    assert_eq!(job(&detail, "after").status, JobStatus::Queued);
}

/// A caller's own `concurrency` group across runs: the second run's call waits, with the
/// group's reason on the caller's row, until the first run's call has ended.
#[tokio::test]
async fn a_callers_concurrency_group_holds_the_second_runs_call() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let grouped = CALLER.replace(
        "  call:\n    uses:",
        "  call:\n    concurrency: deploy\n    uses:",
    );
    let request = || TriggerRun {
        workflow: grouped.clone(),
        ..calling(&[("./.github/workflows/build.yml", CALLED)])
    };
    let (first, _) = app
        .trigger_run("acme", "app", request(), None)
        .await
        .unwrap();
    let (second, _) = app
        .trigger_run("acme", "app", request(), None)
        .await
        .unwrap();
    let first = app.get_run(first.id).await.unwrap();
    assert_eq!(job(&first, "call/build").status, JobStatus::Queued);
    assert_eq!(job(&first, "call").status, JobStatus::InProgress);
    let waiting = app.get_run(second.id).await.unwrap();
    assert_eq!(job(&waiting, "call/build").status, JobStatus::Waiting);
    assert_eq!(job(&waiting, "call").status, JobStatus::Waiting);
    let reason = &job(&waiting, "call").waiting_reasons[0];
    assert_eq!(reason.kind, WaitingReasonKind::ConcurrencyGroup);
    assert_eq!(reason.held_by_run, Some(first.run.id));

    complete(&app, job(&first, "call/build"), Conclusion::Success).await;
    let first = app.get_run(first.run.id).await.unwrap();
    assert_eq!(job(&first, "call").conclusion, Some(Conclusion::Success));
    let granted = app.get_run(second.id).await.unwrap();
    assert_eq!(job(&granted, "call/build").status, JobStatus::Queued);
    assert_eq!(job(&granted, "call").status, JobStatus::InProgress);
}

#[tokio::test]
async fn the_api_refuses_calls_without_their_file_or_with_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let missing = app
        .trigger_run("acme", "app", trigger(CALLER), None)
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::WorkflowInvalid);
    assert_eq!(
        (missing.details[0].line, missing.details[0].col),
        (Some(4), Some(11))
    );
    assert!(
        missing.details[0]
            .message
            .contains("`./.github/workflows/build.yml` was not given"),
        "{missing:?}"
    );

    let broken = calling(&[(
        "./.github/workflows/build.yml",
        "on: push\njobs:\n  x:\n    stepz: []\n",
    )]);
    let error = app
        .trigger_run("acme", "app", broken, None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WorkflowInvalid);
    assert_eq!(
        error.details[0].field.as_deref(),
        Some("called_workflows../.github/workflows/build.yml")
    );
    assert!(error.details[0].line.is_some());

    let without_input = calling(&[(
        "./.github/workflows/build.yml",
        &CALLED.replace(
            "required: true",
            "required: true\n      other:\n        type: number\n        required: true",
        ),
    )]);
    let error = app
        .trigger_run("acme", "app", without_input, None)
        .await
        .unwrap_err();
    assert!(
        error.details[0].message.contains("input other is required"),
        "{error:?}"
    );
    // Nothing was stored for the refused triggers.
    let runs = app.list_runs(None, Default::default()).await.unwrap();
    assert!(runs.items.is_empty());
}

const CHAIN: &str = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: a\n  b:\n    needs: a\n    runs-on: ubuntu-latest\n    steps:\n      - run: b\n";

/// A run stored before its spec was kept apart has the spec inside its state document: it
/// still drives after a restart, its states load again (with the spec inside, or the stored
/// one) after another restart, and the next change of the run's own fields writes them
/// without the spec.
#[tokio::test]
async fn a_state_stored_with_its_spec_inside_still_drives_and_is_rewritten_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = {
        let app = app(dir.path()).await;
        repo(&app).await;
        let (run, _) = app
            .trigger_run("acme", "app", trigger(CHAIN), None)
            .await
            .unwrap();
        run.id
    };
    let store = open_store(&Storage::Sqlite {
        path: dir.path().join("gantry.sqlite"),
    })
    .await
    .unwrap();
    let stored_id = gantry_store::RunId(run_id);
    let stored = store.get_engine_state(stored_id).await.unwrap();
    assert!(stored.document.get("spec").is_none(), "{}", stored.document);
    let mut document = stored.document;
    document["spec"] = stored.spec.clone().unwrap();
    let old_format = gantry_store::Transition::new(stored_id, stored.version, document);
    store.apply_transition(old_format).await.unwrap();

    let app = app(dir.path()).await;
    let detail = app.get_run(run_id).await.unwrap();
    complete(&app, job(&detail, "a"), Conclusion::Success).await;
    let detail = app.get_run(run_id).await.unwrap();
    assert_eq!(job(&detail, "b").status, JobStatus::Queued);

    // Read back from the store, the state knows `a` ended; the run's end rewrites its own
    // fields, without the spec.
    let app = self::app(dir.path()).await;
    complete(&app, job(&detail, "b"), Conclusion::Success).await;
    let detail = app.get_run(run_id).await.unwrap();
    assert_eq!(detail.run.conclusion, Some(Conclusion::Success));
    let stored = store.get_engine_state(stored_id).await.unwrap();
    assert!(stored.document.get("spec").is_none(), "{}", stored.document);
}

const JOIN: &str = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: a\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: b\n  c:\n    needs: [a, b]\n    runs-on: ubuntu-latest\n    steps:\n      - run: c\n";

/// The stored waiting reasons of job `key` of a run.
async fn stored_reasons(dir: &Path, run_id: i64, key: &str) -> serde_json::Value {
    let store = open_store(&Storage::Sqlite {
        path: dir.join("gantry.sqlite"),
    })
    .await
    .unwrap();
    let jobs = store.list_jobs(gantry_store::RunId(run_id)).await.unwrap();
    let job = jobs.into_iter().find(|job| job.job_key == key).unwrap();
    job.waiting_reasons
}

/// An event rewrites only the rows of jobs it changed, and a job whose need ended is one of
/// them: its stored reason stops naming that need.
#[tokio::test]
async fn a_dependents_stored_waiting_reason_drops_each_need_as_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    repo(&app).await;
    let (run, _) = app
        .trigger_run("acme", "app", trigger(JOIN), None)
        .await
        .unwrap();
    let needs = |jobs: &[&str]| serde_json::json!([{"reason": "needs", "jobs": jobs}]);
    assert_eq!(
        stored_reasons(dir.path(), run.id, "c").await,
        needs(&["a", "b"])
    );

    let detail = app.get_run(run.id).await.unwrap();
    complete(&app, job(&detail, "a"), Conclusion::Success).await;
    assert_eq!(stored_reasons(dir.path(), run.id, "c").await, needs(&["b"]));
    let detail = app.get_run(run.id).await.unwrap();
    assert_eq!(job(&detail, "c").waiting_reasons[0].jobs, ["b"]);

    complete(&app, job(&detail, "b"), Conclusion::Success).await;
    let detail = app.get_run(run.id).await.unwrap();
    assert_eq!(job(&detail, "c").status, JobStatus::Queued);
}
