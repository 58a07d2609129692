//! The runner protocol as a library: registration, claims through the fair queue, leases and
//! their expiry, fencing tokens, step and log reports, cancellation, and org scoping.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gantry_proto::v1::{
    ClaimJob, ClaimJobs, CompleteAttempt, Conclusion, CreateOrganization, CreateRegistrationToken,
    CreateRepository, ErrorCode, Heartbeat, JobAssignment, JobResult, JobResults, JobStatus,
    LogChunk, LogLine, LogQuery, RUNNER_PROTOCOL_VERSION, RegisterRunner, RunStatus,
    SetJobPriority, StepReport, StepStatus, TriggerRun, WaitingReasonKind,
};
use gantry_server::{App, RunnerSettings, Storage, open_store};
use gantry_store::RunnerId;

const HOSTED_TOKEN: &str = "test-hosted-token";

/// An app over the store in `dir`, rebuilt from it as after a restart.
async fn app_with(dir: &Path, settings: RunnerSettings) -> App {
    let store = open_store(&Storage::Sqlite {
        path: dir.join("gantry.sqlite"),
    })
    .await
    .unwrap();
    let app = App::new(store, Default::default()).with_runner_settings(settings);
    app.recover().await.unwrap();
    app.allow_hosted_token(HOSTED_TOKEN).await.unwrap();
    app
}

/// The app of an earlier [`app`] on `dir`, restarted.
async fn app_on(dir: &Path) -> Arc<App> {
    Arc::new(app_with(dir, RunnerSettings::default()).await)
}

async fn app(dir: &Path, settings: RunnerSettings) -> Arc<App> {
    let app = app_with(dir, settings).await;
    for org in ["acme", "other"] {
        let request = CreateOrganization {
            name: org.into(),
            weight: None,
            hosted_concurrency_limit: None,
        };
        app.create_organization(request).await.unwrap();
        let repo = CreateRepository {
            name: "app".into(),
            default_branch: None,
        };
        app.create_repository(org, repo).await.unwrap();
    }
    Arc::new(app)
}

fn registration(token: &str, labels: &[&str]) -> RegisterRunner {
    RegisterRunner {
        token: token.into(),
        name: "runner-1".into(),
        labels: labels.iter().map(|label| label.to_string()).collect(),
        capacity: 1,
        ephemeral: false,
        protocol_version: RUNNER_PROTOCOL_VERSION,
    }
}

async fn runner(app: &App, token: &str, labels: &[&str]) -> RunnerId {
    let registered = app
        .register_runner(registration(token, labels))
        .await
        .unwrap();
    app.authenticate_runner(&registered.credential)
        .await
        .unwrap()
}

async fn trigger(app: &App, org: &str, workflow: &str) -> i64 {
    trigger_in(app, org, "app", workflow).await
}

async fn claim(app: &Arc<App>, runner: RunnerId) -> Option<JobAssignment> {
    app.claim(runner, ClaimJob { wait_ms: 50 }).await.unwrap()
}

async fn complete(app: &App, runner: RunnerId, job: &JobAssignment, conclusion: Conclusion) {
    let request = CompleteAttempt {
        fencing_token: job.fencing_token,
        conclusion,
        outputs: Default::default(),
        message: None,
    };
    app.complete_attempt(runner, gantry_store::JobId(job.job_id), request)
        .await
        .unwrap();
}

fn step(token: i64, index: u32, status: StepStatus, conclusion: Option<Conclusion>) -> StepReport {
    StepReport {
        fencing_token: token,
        index,
        name: format!("step {index}"),
        status,
        conclusion,
        outcome: conclusion,
        error: None,
        time: Utc::now(),
    }
}

fn lines(offset: u64, texts: &[&str], token: i64) -> LogChunk {
    LogChunk {
        fencing_token: token,
        offset,
        lines: texts
            .iter()
            .enumerate()
            .map(|(index, text)| LogLine {
                step: 0,
                number: offset + index as u64 + 1,
                time: Utc::now(),
                text: text.to_string(),
            })
            .collect(),
    }
}

const TWO_JOBS: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo build\n  test:\n    needs: build\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo test\n";

#[tokio::test]
async fn registration_refuses_bad_tokens_versions_and_forged_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let error = app
        .register_runner(registration("wrong", &["linux"]))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Unauthorized);
    let mut old = registration(HOSTED_TOKEN, &["linux"]);
    old.protocol_version = 99;
    let error = app.register_runner(old).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(
        error.message.contains("protocol version 99"),
        "{}",
        error.message
    );
    let mut greedy = registration(HOSTED_TOKEN, &["linux"]);
    greedy.capacity = 0;
    assert_eq!(
        app.register_runner(greedy).await.unwrap_err().code,
        ErrorCode::InvalidRequest
    );

    let registered = app
        .register_runner(registration(HOSTED_TOKEN, &["Linux", "linux", "X64"]))
        .await
        .unwrap();
    assert_eq!(registered.labels, ["linux", "x64"]);
    assert_eq!(registered.org, None);
    let forged = format!("{}0", registered.credential);
    let error = app.authenticate_runner(&forged).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Unauthorized);
    assert!(app.authenticate_runner("nonsense").await.is_err());
}

#[tokio::test]
async fn a_runner_claims_reports_and_completes_jobs_in_dependency_order() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let runner = runner(&app, HOSTED_TOKEN, &["ubuntu-latest", "linux"]).await;
    let run = trigger(&app, "acme", TWO_JOBS).await;

    let build = claim(&app, runner).await.expect("build is queued");
    assert_eq!(build.payload.job_key, "build");
    assert_eq!(build.payload.steps.len(), 1);
    assert_eq!(build.attempt, 1);
    // Capacity 1: a second claim while holding a job is refused.
    let error = app.claim(runner, ClaimJob::default()).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Conflict);

    let job = gantry_store::JobId(build.job_id);
    let token = build.fencing_token;
    let beat = app
        .heartbeat(
            runner,
            job,
            &Heartbeat {
                fencing_token: token,
            },
        )
        .unwrap();
    assert!(!beat.cancel_requested);
    let stale = app
        .heartbeat(
            runner,
            job,
            &Heartbeat {
                fencing_token: token + 1,
            },
        )
        .unwrap_err();
    assert_eq!(stale.code, ErrorCode::StaleToken);

    // Steps: in order, duplicates accepted, out of order refused.
    app.report_step(runner, job, step(token, 0, StepStatus::InProgress, None))
        .await
        .unwrap();
    app.report_step(runner, job, step(token, 0, StepStatus::InProgress, None))
        .await
        .unwrap();
    let early = app
        .report_step(runner, job, step(token, 1, StepStatus::InProgress, None))
        .await
        .unwrap_err();
    assert_eq!(early.code, ErrorCode::Conflict, "{}", early.message);
    let unstarted = app
        .report_step(
            runner,
            job,
            step(token, 2, StepStatus::Completed, Some(Conclusion::Success)),
        )
        .await
        .unwrap_err();
    assert_eq!(unstarted.code, ErrorCode::Conflict);
    app.report_step(
        runner,
        job,
        step(token, 0, StepStatus::Completed, Some(Conclusion::Success)),
    )
    .await
    .unwrap();

    // Logs: a retried chunk is stored once, a gap is refused, long lines are refused.
    let stored = app
        .append_log(runner, job, lines(0, &["a", "b"], token))
        .await
        .unwrap();
    assert_eq!(stored.stored, 2);
    let again = app
        .append_log(runner, job, lines(0, &["a", "b", "c"], token))
        .await
        .unwrap();
    assert_eq!(again.stored, 3);
    let gap = app
        .append_log(runner, job, lines(7, &["z"], token))
        .await
        .unwrap_err();
    assert_eq!(gap.code, ErrorCode::Conflict);
    let huge = "x".repeat(gantry_proto::v1::MAX_LOG_LINE_BYTES + 1);
    let long = app
        .append_log(runner, job, lines(3, &[&huge], token))
        .await
        .unwrap_err();
    assert_eq!(long.code, ErrorCode::InvalidRequest);
    let log = app
        .job_log(build.job_id, LogQuery::default())
        .await
        .unwrap();
    let texts: Vec<&str> = log.lines.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
    assert!(!log.complete);

    complete(&app, runner, &build, Conclusion::Success).await;
    let after = app
        .heartbeat(
            runner,
            job,
            &Heartbeat {
                fencing_token: token,
            },
        )
        .unwrap_err();
    assert_eq!(after.code, ErrorCode::StaleToken);
    assert!(
        app.job_log(build.job_id, LogQuery::default())
            .await
            .unwrap()
            .complete
    );

    let test = claim(&app, runner)
        .await
        .expect("test is queued after build");
    assert_eq!(test.payload.job_key, "test");
    complete(&app, runner, &test, Conclusion::Success).await;
    let detail = app.get_run(run).await.unwrap();
    assert_eq!(detail.run.status, RunStatus::Completed);
    assert_eq!(detail.run.conclusion, Some(Conclusion::Success));
}

#[tokio::test]
async fn a_silent_runner_loses_its_job_which_is_retried_then_fails_as_runner_lost() {
    let dir = tempfile::tempdir().unwrap();
    let settings = RunnerSettings {
        heartbeat_interval_ms: 20,
        lease_ms: 150,
    };
    let app = app(dir.path(), settings).await;
    let watcher = tokio::spawn(Arc::clone(&app).run_lease_watcher());
    let first = runner(&app, HOSTED_TOKEN, &["ubuntu-latest"]).await;
    let second = runner(&app, HOSTED_TOKEN, &["ubuntu-latest"]).await;
    let third = runner(&app, HOSTED_TOKEN, &["ubuntu-latest"]).await;
    let run = trigger(
        &app,
        "acme",
        "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps:\n      - run: sleep 1\n",
    )
    .await;

    let lost = claim(&app, first).await.unwrap();
    // The lease expires; the job comes back as attempt 2 for another runner.
    let retry = app
        .claim(second, ClaimJob { wait_ms: 5_000 })
        .await
        .unwrap()
        .expect("the lost job is queued again");
    assert_eq!(retry.job_id, lost.job_id);
    assert_eq!(retry.attempt, 2);
    assert!(retry.fencing_token > lost.fencing_token);
    // The first runner comes back: told its token is stale, and its result is ignored.
    let late = CompleteAttempt {
        fencing_token: lost.fencing_token,
        conclusion: Conclusion::Success,
        outputs: Default::default(),
        message: None,
    };
    let error = app
        .complete_attempt(first, gantry_store::JobId(lost.job_id), late)
        .await
        .unwrap_err();
    assert!(
        matches!(error.code, ErrorCode::StaleToken | ErrorCode::NotFound),
        "{error:?}"
    );
    // Lost twice more: the default of two infrastructure retries is used up.
    let again = app
        .claim(third, ClaimJob { wait_ms: 5_000 })
        .await
        .unwrap()
        .expect("a second retry");
    assert_eq!(again.attempt, 3);
    for _ in 0..100 {
        let detail = app.get_run(run).await.unwrap();
        if detail.run.status == RunStatus::Completed {
            assert_eq!(detail.run.conclusion, Some(Conclusion::Failure));
            assert_eq!(detail.jobs[0].message.as_deref(), Some("runner lost"));
            watcher.abort();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job never failed as runner lost");
}

#[tokio::test]
async fn cancellation_reaches_the_runner_at_its_next_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let runner = runner(&app, HOSTED_TOKEN, &["ubuntu-latest"]).await;
    let run = trigger(&app, "acme", TWO_JOBS).await;
    let build = claim(&app, runner).await.unwrap();
    app.cancel_run(run).await.unwrap();
    let beat = app
        .heartbeat(
            runner,
            gantry_store::JobId(build.job_id),
            &Heartbeat {
                fencing_token: build.fencing_token,
            },
        )
        .unwrap();
    assert!(beat.cancel_requested);
    complete(&app, runner, &build, Conclusion::Cancelled).await;
    let detail = app.get_run(run).await.unwrap();
    assert_eq!(detail.run.conclusion, Some(Conclusion::Cancelled));
    assert!(
        claim(&app, runner).await.is_none(),
        "the cancelled run's jobs are gone"
    );
}

#[tokio::test]
async fn self_hosted_runners_serve_only_their_organization_and_labels_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let token = app
        .create_registration_token("other", CreateRegistrationToken::default())
        .await
        .unwrap();
    let registered = app
        .register_runner(registration(&token.token, &["linux", "gpu"]))
        .await
        .unwrap();
    assert_eq!(registered.org.as_deref(), Some("other"));
    assert!(registered.labels.iter().any(|label| label == "self-hosted"));
    let theirs = app
        .authenticate_runner(&registered.credential)
        .await
        .unwrap();

    let gpu = "on: push\njobs:\n  train:\n    runs-on: [self-hosted, gpu]\n    steps:\n      - run: train\n";
    let acme_run = trigger(&app, "acme", gpu).await;
    assert!(
        claim(&app, theirs).await.is_none(),
        "another org's job stays invisible"
    );
    let detail = app.get_run(acme_run).await.unwrap();
    let kinds: Vec<WaitingReasonKind> = detail.jobs[0]
        .waiting_reasons
        .iter()
        .map(|reason| reason.kind)
        .collect();
    assert!(
        kinds.contains(&WaitingReasonKind::NoOnlineRunner),
        "{kinds:?}"
    );
    assert_eq!(detail.jobs[0].status, JobStatus::Queued);

    trigger(&app, "other", gpu).await;
    let mine = claim(&app, theirs).await.expect("its own org's job");
    assert_eq!(mine.payload.job_key, "train");
    let hosted = runner(&app, HOSTED_TOKEN, &["ubuntu-latest"]).await;
    assert!(
        claim(&app, hosted).await.is_none(),
        "labels must be a subset"
    );
}

#[tokio::test]
async fn an_ephemeral_runner_is_removed_after_its_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let mut request = registration(HOSTED_TOKEN, &["ubuntu-latest"]);
    request.ephemeral = true;
    let registered = app.register_runner(request).await.unwrap();
    let runner = app
        .authenticate_runner(&registered.credential)
        .await
        .unwrap();
    trigger(&app, "acme", TWO_JOBS).await;
    let build = claim(&app, runner).await.unwrap();
    complete(&app, runner, &build, Conclusion::Success).await;
    let error = app
        .authenticate_runner(&registered.credential)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Unauthorized);
    assert!(app.list_runners().await.unwrap().runners.is_empty());
}

const FOUR_JOBS: &str = "\
on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
  second:
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
  low:
    needs: [first, second]
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
  high:
    needs: [first, second]
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
";

#[tokio::test]
async fn a_higher_priority_job_of_the_same_run_is_claimed_first() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let worker = runner(&app, HOSTED_TOKEN, &["ubuntu-latest"]).await;
    let run = trigger(&app, "acme", FOUR_JOBS).await;
    let jobs = app.list_jobs(run).await.unwrap().items;
    let id = |key: &str| jobs.iter().find(|job| job.job_key == key).unwrap().id;
    let raise = |job: i64, priority: i32| {
        let app = Arc::clone(&app);
        async move {
            app.set_job_priority(run, job, SetJobPriority { priority })
                .await
        }
    };

    // Queued together, `first` would go first (same time, lower id): a priority on `second`
    // moves it ahead in the queue.
    assert_eq!(raise(id("second"), 5).await.unwrap().priority, 5);
    assert_eq!(app.job_by_id(id("second")).await.unwrap().priority, 5);
    assert_eq!(app.job_by_id(id("first")).await.unwrap().priority, 0);
    let second = claim(&app, worker).await.unwrap();
    assert_eq!(second.job_id, id("second"));
    complete(&app, worker, &second, Conclusion::Success).await;

    // A waiting job keeps its priority until it is queued.
    raise(id("high"), 3).await.unwrap();
    let first = claim(&app, worker).await.unwrap();
    assert_eq!(first.job_id, id("first"));
    complete(&app, worker, &first, Conclusion::Success).await;
    let high = claim(&app, worker).await.unwrap();
    assert_eq!(high.job_id, id("high"));

    // A completed job's priority no longer matters: a conflict.
    let error = raise(id("second"), 9).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Conflict);
    // The job is found by its id alone, with why it waits.
    let low = app.job_by_id(id("low")).await.unwrap();
    assert_eq!(low.status, JobStatus::Queued);
    assert!(
        low.waiting_reasons
            .iter()
            .any(|reason| reason.kind == WaitingReasonKind::QueuePosition),
        "{:?}",
        low.waiting_reasons
    );
    assert_eq!(
        app.job_by_id(999_999).await.unwrap_err().code,
        ErrorCode::NotFound
    );
}

async fn trigger_in(app: &App, org: &str, repo: &str, workflow: &str) -> i64 {
    let request = TriggerRun {
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
    app.trigger_run(org, repo, request, None)
        .await
        .unwrap()
        .0
        .id
}

const GROUPED: &str = "on: push\njobs:\n  train:\n    runs-on:\n      group: GPU-Farm\n      labels: [linux]\n    steps:\n      - run: train\n";
const PLAIN: &str =
    "on: push\njobs:\n  lint:\n    runs-on: [self-hosted, linux]\n    steps:\n      - run: lint\n";

#[tokio::test]
async fn a_runner_group_takes_only_its_jobs_of_its_repositories_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let lib = CreateRepository {
        name: "lib".into(),
        default_branch: None,
    };
    app.create_repository("acme", lib).await.unwrap();
    let request = CreateRegistrationToken {
        group: Some("gpu-farm".into()),
        repositories: Some(vec!["app".into()]),
        ..Default::default()
    };
    let token = app
        .create_registration_token("acme", request)
        .await
        .unwrap();
    assert_eq!(token.group.as_deref(), Some("gpu-farm"));
    assert_eq!(token.repositories, Some(vec!["app".to_owned()]));
    let registered = app
        .register_runner(registration(&token.token, &["linux"]))
        .await
        .unwrap();
    assert_eq!(registered.group.as_deref(), Some("gpu-farm"));
    let grouped = app
        .authenticate_runner(&registered.credential)
        .await
        .unwrap();
    let plain_token = app
        .create_registration_token("acme", CreateRegistrationToken::default())
        .await
        .unwrap();
    let plain_registered = app
        .register_runner(registration(&plain_token.token, &["linux"]))
        .await
        .unwrap();
    let plain = app
        .authenticate_runner(&plain_registered.credential)
        .await
        .unwrap();

    // Another repository's grouped job and an ungrouped job are not the group runner's.
    trigger_in(&app, "acme", "lib", GROUPED).await;
    trigger_in(&app, "acme", "app", PLAIN).await;
    assert!(claim(&app, grouped).await.is_none());
    let lint = claim(&app, plain)
        .await
        .expect("the ungrouped runner's job");
    assert_eq!(lint.payload.job_key, "lint");
    complete(&app, plain, &lint, Conclusion::Success).await;
    assert!(
        claim(&app, plain).await.is_none(),
        "a grouped job never goes to a runner outside the group"
    );

    // After a restart the queued grouped job still names its group.
    let run = trigger_in(&app, "acme", "app", GROUPED).await;
    drop(app);
    let app = app_on(dir.path()).await;
    // Every call of a runner carries its credential: the restarted server loads it then.
    for credential in [&plain_registered.credential, &registered.credential] {
        app.authenticate_runner(credential).await.unwrap();
    }
    assert!(claim(&app, plain).await.is_none());
    let train = claim(&app, grouped).await.expect("its group's job");
    assert_eq!(train.payload.job_key, "train");
    assert_eq!(train.run_id, run);
    let listed = app.list_runners().await.unwrap().runners;
    let listed = listed.iter().find(|r| r.id == grouped.0).unwrap();
    assert_eq!(listed.group.as_deref(), Some("gpu-farm"));
    assert_eq!(listed.repositories, Some(vec!["app".to_owned()]));
}

#[tokio::test]
async fn registration_tokens_refuse_unknown_repositories_and_bad_group_names() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let unknown = CreateRegistrationToken {
        repositories: Some(vec!["app".into(), "nope".into()]),
        ..Default::default()
    };
    let error = app
        .create_registration_token("acme", unknown)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(
        error.message.contains("repositories[1]"),
        "{}",
        error.message
    );
    assert!(error.message.contains("`nope`"), "{}", error.message);
    for bad in [
        CreateRegistrationToken {
            group: Some("  ".into()),
            ..Default::default()
        },
        CreateRegistrationToken {
            repositories: Some(vec![]),
            ..Default::default()
        },
    ] {
        let error = app
            .create_registration_token("acme", bad)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{}", error.message);
    }
}

const THREE_JOBS: &str = "\
on: push
jobs:
  one:
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
  two:
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
  three:
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
";

/// A runner of capacity `capacity` with the hosted token.
async fn runner_of_capacity(app: &App, capacity: u32) -> RunnerId {
    let mut request = registration(HOSTED_TOKEN, &["ubuntu-latest"]);
    request.capacity = capacity;
    let registered = app.register_runner(request).await.unwrap();
    app.authenticate_runner(&registered.credential)
        .await
        .unwrap()
}

fn result(job: &JobAssignment, fencing_token: i64, conclusion: Conclusion) -> JobResult {
    JobResult {
        job_id: job.job_id,
        fencing_token,
        conclusion,
        outputs: Default::default(),
        message: None,
    }
}

/// A batch claim hands out no more than the runner's free capacity, from several runs at
/// once, each job leased under its own token; a batch of results takes each valid one and
/// refuses the others one by one, and the runner's freed slots can be claimed again.
#[tokio::test]
async fn a_batch_claim_takes_up_to_the_free_capacity_and_results_are_taken_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let runner = runner_of_capacity(&app, 5).await;
    let runs = [
        trigger(&app, "acme", THREE_JOBS).await,
        trigger(&app, "acme", THREE_JOBS).await,
    ];
    let batch = ClaimJobs {
        wait_ms: 50,
        max_jobs: 10,
    };
    let claimed = app.claim_jobs(runner, batch.clone()).await.unwrap().jobs;
    assert_eq!(claimed.len(), 5, "capacity 5: {claimed:?}");
    let from: std::collections::BTreeSet<i64> = claimed.iter().map(|job| job.run_id).collect();
    assert_eq!(from, runs.into_iter().collect());
    for job in &claimed {
        assert_eq!(job.payload.job_id, Some(job.job_id));
        let row = app.job_by_id(job.job_id).await.unwrap();
        assert_eq!(row.status, JobStatus::InProgress, "{row:?}");
    }
    let full = app.claim_jobs(runner, batch.clone()).await.unwrap_err();
    assert_eq!(full.code, ErrorCode::Conflict, "{full:?}");

    let results = JobResults {
        results: vec![
            result(&claimed[0], claimed[0].fencing_token, Conclusion::Success),
            result(
                &claimed[1],
                claimed[1].fencing_token + 1,
                Conclusion::Success,
            ),
            result(&claimed[2], claimed[2].fencing_token, Conclusion::Failure),
        ],
    };
    let outcomes = app.report_results(runner, results).await.unwrap().outcomes;
    let codes: Vec<Option<ErrorCode>> = outcomes
        .iter()
        .map(|outcome| outcome.error.as_ref().map(|error| error.code))
        .collect();
    assert_eq!(codes, [None, Some(ErrorCode::StaleToken), None]);
    let ids: Vec<i64> = outcomes.iter().map(|outcome| outcome.job_id).collect();
    assert_eq!(
        ids,
        [claimed[0].job_id, claimed[1].job_id, claimed[2].job_id]
    );
    let status = |index: usize| {
        let app = Arc::clone(&app);
        let id = claimed[index].job_id;
        async move { app.job_by_id(id).await.unwrap() }
    };
    assert_eq!(status(0).await.conclusion, Some(Conclusion::Success));
    assert_eq!(status(1).await.status, JobStatus::InProgress);
    assert_eq!(status(2).await.conclusion, Some(Conclusion::Failure));

    // Two slots are free again and one job is still queued: the batch takes it alone.
    let last = app.claim_jobs(runner, batch).await.unwrap().jobs;
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(claimed.iter().all(|job| job.job_id != last[0].job_id));
}

/// A batch claim or a batch of results that is malformed is refused whole, naming the
/// field, and changes nothing.
#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), RunnerSettings::default()).await;
    let runner = runner_of_capacity(&app, 4).await;
    trigger(&app, "acme", THREE_JOBS).await;
    for max_jobs in [0, 257] {
        let request = ClaimJobs {
            wait_ms: 0,
            max_jobs,
        };
        let error = app.claim_jobs(runner, request).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.contains("`max_jobs`"), "{error:?}");
    }
    let request = ClaimJobs {
        wait_ms: 0,
        max_jobs: 2,
    };
    let claimed = app.claim_jobs(runner, request).await.unwrap().jobs;
    assert_eq!(claimed.len(), 2);

    let empty = JobResults { results: vec![] };
    let error = app.report_results(runner, empty).await.unwrap_err();
    assert!(error.message.contains("`results`"), "{error:?}");
    let twice = JobResults {
        results: vec![
            result(&claimed[0], claimed[0].fencing_token, Conclusion::Success),
            result(&claimed[1], claimed[1].fencing_token, Conclusion::Success),
            result(&claimed[0], claimed[0].fencing_token, Conclusion::Failure),
        ],
    };
    let error = app.report_results(runner, twice).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(error.message.contains("`results[2].job_id`"), "{error:?}");
    for job in &claimed {
        let row = app.job_by_id(job.job_id).await.unwrap();
        assert_eq!(row.status, JobStatus::InProgress, "{row:?}");
    }
}
