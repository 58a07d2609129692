//! Golden files: each example value serializes to exactly the JSON in `tests/golden/NAME.json`
//! and that JSON deserializes back to the same value. A change to the wire format shows up as a
//! diff of those files; `GANTRY_BLESS=1 cargo test -p gantry-proto` rewrites them.

use std::fmt::Debug;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use gantry_proto::v1::*;
use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

/// Compares `value`'s JSON with the golden file and reads the file back into `value`.
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(name: &str, value: &T) {
    let actual = serde_json::to_string_pretty(value).unwrap() + "\n";
    let path = golden_path(name);
    if std::env::var_os("GANTRY_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {} ({error}); run with GANTRY_BLESS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{name}: the JSON differs from {}; if the change is meant, run with GANTRY_BLESS=1",
        path.display()
    );
    let back: T = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        &back, value,
        "{name}: the golden file reads back differently"
    );
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

fn outputs(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn organization() -> Organization {
    Organization {
        id: 1,
        name: "acme".into(),
        weight: 2,
        hosted_concurrency_limit: Some(20),
    }
}

fn repository() -> Repository {
    Repository {
        id: 3,
        org: "acme".into(),
        name: "app".into(),
        full_name: "acme/app".into(),
        default_branch: "main".into(),
    }
}

fn run() -> Run {
    Run {
        id: 42,
        repository: "acme/app".into(),
        workflow_path: ".github/workflows/ci.yml".into(),
        workflow_name: "demo".into(),
        run_number: 7,
        attempt: 1,
        event: "push".into(),
        git_ref: "refs/heads/main".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        actor: "octocat".into(),
        status: RunStatus::InProgress,
        conclusion: None,
        created_at: at(0),
        started_at: Some(at(2)),
        completed_at: None,
        workflow_errors: vec![],
    }
}

fn running_job() -> Job {
    Job {
        id: 100,
        run_id: 42,
        job_key: "setup".into(),
        matrix_index: 0,
        name: "setup".into(),
        status: JobStatus::Completed,
        conclusion: Some(Conclusion::Success),
        attempt: 1,
        labels: vec!["ubuntu-latest".into()],
        priority: 0,
        waiting_reasons: vec![],
        outputs: outputs(&[("version", "1.42")]),
        message: None,
        queued_at: Some(at(0)),
        started_at: Some(at(2)),
        completed_at: Some(at(9)),
    }
}

fn waiting_job() -> Job {
    Job {
        id: 101,
        run_id: 42,
        job_key: "release".into(),
        matrix_index: 0,
        name: "release".into(),
        status: JobStatus::Waiting,
        conclusion: None,
        attempt: 1,
        labels: vec![],
        priority: 2,
        waiting_reasons: vec![
            WaitingReason {
                kind: WaitingReasonKind::ConcurrencyGroup,
                message: "concurrency group `deploy` held by run 41".into(),
                jobs: vec![],
                group: Some("deploy".into()),
                held_by_run: Some(41),
                limit: None,
                labels: vec![],
                in_use: None,
                position: None,
                of: None,
            },
            WaitingReason {
                kind: WaitingReasonKind::Needs,
                message: "waiting on needs: test, lint".into(),
                jobs: vec!["test".into(), "lint".into()],
                group: None,
                held_by_run: None,
                limit: None,
                labels: vec![],
                in_use: None,
                position: None,
                of: None,
            },
            WaitingReason {
                kind: WaitingReasonKind::OrgQuota,
                message: "org quota 5 of 5 in use".into(),
                jobs: vec![],
                group: None,
                held_by_run: None,
                limit: Some(5),
                labels: vec![],
                in_use: Some(5),
                position: None,
                of: None,
            },
        ],
        outputs: IndexMap::new(),
        message: None,
        queued_at: None,
        started_at: None,
        completed_at: None,
    }
}

fn queued_job() -> Job {
    Job {
        id: 102,
        run_id: 42,
        job_key: "test".into(),
        matrix_index: 1,
        name: "test (python, large, typed)".into(),
        status: JobStatus::Queued,
        conclusion: None,
        attempt: 2,
        labels: vec!["ubuntu-latest".into()],
        priority: 0,
        waiting_reasons: vec![WaitingReason {
            kind: WaitingReasonKind::Runner,
            message: "waiting for a runner with labels: ubuntu-latest".into(),
            jobs: vec![],
            group: None,
            held_by_run: None,
            limit: None,
            labels: vec!["ubuntu-latest".into()],
            in_use: None,
            position: None,
            of: None,
        }],
        outputs: IndexMap::new(),
        message: Some("runner lost; queued again as attempt 2".into()),
        queued_at: Some(at(30)),
        started_at: None,
        completed_at: None,
    }
}

#[test]
fn organizations() {
    check(
        "create_organization",
        &CreateOrganization {
            name: "acme".into(),
            weight: Some(2),
            hosted_concurrency_limit: Some(20),
        },
    );
    check(
        "create_organization_minimal",
        &CreateOrganization {
            name: "acme".into(),
            weight: None,
            hosted_concurrency_limit: None,
        },
    );
    check("organization", &organization());
    check(
        "organization_list",
        &OrganizationList {
            items: vec![organization()],
            next_cursor: Some("1".into()),
        },
    );
}

#[test]
fn repositories() {
    check(
        "create_repository",
        &CreateRepository {
            name: "app".into(),
            default_branch: Some("trunk".into()),
        },
    );
    check("repository", &repository());
    check(
        "repository_list",
        &RepositoryList {
            items: vec![repository()],
            next_cursor: None,
        },
    );
}

#[test]
fn runs() {
    check("trigger_run", &TriggerRun {
        workflow_path: ".github/workflows/ci.yml".into(),
        workflow: "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n".into(),
        event: Some("push".into()),
        git_ref: Some("refs/heads/main".into()),
        sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        actor: Some("octocat".into()),
        payload: Some(json!({"head_commit": {"message": "fix"}})),
        inputs: None,
        called_workflows: None,
    });
    check(
        "trigger_run_minimal",
        &TriggerRun {
            workflow_path: ".github/workflows/ci.yml".into(),
            workflow: "on: push\n".into(),
            event: None,
            git_ref: None,
            sha: None,
            actor: None,
            payload: None,
            inputs: None,
            called_workflows: None,
        },
    );
    check("run", &run());
    let completed = Run {
        status: RunStatus::Completed,
        conclusion: Some(Conclusion::Failure),
        completed_at: Some(at(60)),
        attempt: 2,
        ..run()
    };
    check(
        "run_list",
        &RunList {
            items: vec![completed, run()],
            next_cursor: Some("41".into()),
        },
    );
    check(
        "run_invalid_workflow",
        &Run {
            status: RunStatus::Completed,
            conclusion: Some(Conclusion::Failure),
            started_at: None,
            completed_at: Some(at(0)),
            workflow_errors: vec![
                ".github/workflows/ci.yml:4:5: unknown key `step`".into(),
                ".github/workflows/build.yml: the file is not UTF-8".into(),
            ],
            ..run()
        },
    );
    check(
        "run_detail",
        &RunDetail {
            run: run(),
            jobs: vec![running_job(), queued_job(), waiting_job()],
        },
    );
    check(
        "job_list",
        &JobList {
            items: vec![running_job()],
        },
    );
    check("rerun_failed", &Rerun { failed_only: true });
    check("set_job_priority", &SetJobPriority { priority: 10 });
    check(
        "complete_job",
        &CompleteJob {
            conclusion: Conclusion::Success,
            outputs: outputs(&[("version", "1.42")]),
        },
    );
}

#[test]
fn errors() {
    check(
        "error_not_found",
        &ErrorBody::new(ErrorCode::NotFound, "repository `acme/nope` not found"),
    );
    check(
        "error_workflow_invalid",
        &ErrorBody {
            error: ApiError {
                code: ErrorCode::WorkflowInvalid,
                message: "the workflow has 2 problems".into(),
                details: vec![
                    ErrorDetail {
                        line: Some(5),
                        col: Some(12),
                        field: None,
                        message: "job `build` needs the unknown job \"nope\"".into(),
                    },
                    ErrorDetail {
                        line: Some(7),
                        col: Some(16),
                        field: None,
                        message: "unexpected end of expression".into(),
                    },
                ],
            },
        },
    );
    check(
        "health",
        &Health {
            status: "ok".into(),
            version: "0.1.0".into(),
            queued_jobs: 3,
        },
    );
}

#[test]
fn requests_reject_unknown_fields() {
    let error = serde_json::from_value::<CreateOrganization>(json!({"name": "a", "wieght": 2}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `wieght`"), "{error}");
    let error = serde_json::from_value::<TriggerRun>(
        json!({"workflow_path": "a.yml", "workflow": "", "branch": "main"}),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown field `branch`"), "{error}");
    assert!(serde_json::from_value::<Rerun>(json!({"failed": true})).is_err());
    assert_eq!(
        serde_json::from_value::<Rerun>(json!({})).unwrap(),
        Rerun::default()
    );
}

#[test]
fn codes_spell_as_on_the_wire() {
    for code in [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::WorkflowInvalid,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
    for status in [
        JobStatus::Waiting,
        JobStatus::Queued,
        JobStatus::InProgress,
        JobStatus::Completed,
    ] {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    for status in [
        RunStatus::Queued,
        RunStatus::InProgress,
        RunStatus::Completed,
    ] {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    for conclusion in [
        Conclusion::Success,
        Conclusion::Failure,
        Conclusion::Cancelled,
        Conclusion::Skipped,
    ] {
        assert_eq!(
            serde_json::to_value(conclusion).unwrap(),
            json!(conclusion.as_str())
        );
    }
}

fn templates(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    outputs(pairs)
}

#[test]
fn job_payload() {
    let payload = JobPayload {
        run_id: 42,
        job_id: Some(102),
        job_key: "test".into(),
        matrix_index: 1,
        name: "test (python)".into(),
        attempt: 1,
        run_attempt: 1,
        contexts: JobContexts {
            github: json!({"event_name": "push", "ref": "refs/heads/main", "sha": "0123456789abcdef0123456789abcdef01234567", "repository": "acme/app"}).into(),
            matrix: json!({"lang": "python"}),
            needs: json!({"setup": {"result": "success", "outputs": {"version": "1.42"}}}),
            inputs: json!({}),
            vars: json!({"REGION": "eu"}),
            strategy: json!({"fail-fast": true, "job-index": 1, "job-total": 2, "max-parallel": 2}),
            secrets: templates(&[("TOKEN", "s3cr3t")]),
        },
        workflow_env: templates(&[("CI_LEVEL", "full")]),
        job_env: templates(&[("VERSION", "${{ needs.setup.outputs.version }}")]),
        workflow_defaults: Some(RunDefaults {
            shell: Some("bash".into()),
            working_directory: None,
        }),
        job_defaults: Some(RunDefaults {
            shell: None,
            working_directory: Some("src".into()),
        }),
        steps: vec![
            StepPayload {
                uses: Some("actions/checkout@v4".into()),
                ..StepPayload::default()
            },
            StepPayload {
                id: Some("build".into()),
                name: Some("Build ${{ matrix.lang }}".into()),
                condition: Some("${{ success() }}".into()),
                run: Some("make build\necho \"ok=1\" >> \"$GITHUB_OUTPUT\"".into()),
                shell: Some("bash".into()),
                working_directory: Some("app".into()),
                env: templates(&[("TOKEN", "${{ secrets.TOKEN }}")]),
                continue_on_error: Some("false".into()),
                timeout_minutes: Some("10".into()),
                ..StepPayload::default()
            },
            StepPayload {
                uses: Some("./.github/actions/report".into()),
                with: templates(&[("ok", "${{ steps.build.outputs.ok }}")]),
                ..StepPayload::default()
            },
        ],
        outputs: templates(&[("ok", "${{ steps.build.outputs.ok }}")]),
        timeout_minutes: 360.0,
    };
    check("job_payload", &payload);
    let unknown = serde_json::to_value(&payload).unwrap();
    let mut unknown = unknown.as_object().unwrap().clone();
    unknown.insert("surprise".into(), json!(1));
    assert!(serde_json::from_value::<JobPayload>(serde_json::Value::Object(unknown)).is_err());
}

#[test]
fn hooks() {
    check(
        "set_repository_source",
        &SetRepositorySource {
            git_path: Some("/srv/git/app.git".into()),
            git_url: None,
            webhook_secret: Some("s3cret".into()),
        },
    );
    check(
        "set_repository_source_url",
        &SetRepositorySource {
            git_path: None,
            git_url: Some("https://git.example/acme/app.git".into()),
            webhook_secret: None,
        },
    );
    check(
        "repository_source",
        &RepositorySource {
            repository: "acme/app".into(),
            git_path: "/srv/git/app.git".into(),
            git_url: None,
            has_webhook_secret: true,
        },
    );
    check(
        "repository_source_url",
        &RepositorySource {
            repository: "acme/app".into(),
            git_path: "/var/lib/gantry/git/acme/app.git".into(),
            git_url: Some("https://git.example/acme/app.git".into()),
            has_webhook_secret: false,
        },
    );
    check(
        "received_push",
        &ReceivedPush {
            updates: vec![RefUpdate {
                before: "0".repeat(40),
                after: "a".repeat(40),
                git_ref: "refs/heads/main".into(),
            }],
            pusher: Some("octocat".into()),
        },
    );
    check(
        "hook_outcome",
        &HookOutcome {
            runs: vec![TriggeredRun {
                run: run(),
                created: true,
            }],
            skipped: vec![SkippedWorkflow {
                workflow_path: ".github/workflows/docs.yml".into(),
                reason: "none of the 1 changed files matches `paths`".into(),
            }],
            invalid: vec![InvalidWorkflow {
                workflow_path: ".github/workflows/broken.yml".into(),
                errors: vec![".github/workflows/broken.yml:3:5: unknown key `job`".into()],
            }],
            ignored: vec!["refs/heads/old was deleted".into()],
        },
    );
}
