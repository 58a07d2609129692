//! The conformance suite's runner side: registration tokens, runners, step reports and job
//! logs, each guarded by the job's latest fencing token. Declared for both backends in
//! `main.rs` like the rest of the suite.

use gantry_store::{
    Conclusion, FencingToken, JobId, Lease, LogAppend, NewLogLine, NewRegistrationToken, NewRunner,
    RunnerId, StepReported, StepResult, StepStatus, StoreError,
};

use crate::fixtures::{assert_conflict, assert_not_found, create, job_id, org_and_repo, two_jobs};
use crate::harness::TestDb;

fn runner(token_hash: &str) -> NewRunner {
    NewRunner {
        token_hash: token_hash.to_owned(),
        name: "runner-1".to_owned(),
        labels: vec!["linux".to_owned(), "x64".to_owned()],
        capacity: 2,
        ephemeral: true,
        credential_hash: "credential-hash".to_owned(),
        now_ms: 5_000,
    }
}

fn step(job_id: JobId, index: i64, status: StepStatus) -> StepResult {
    StepResult {
        job_id,
        attempt: 1,
        step_index: index,
        name: format!("step {index}"),
        status,
        conclusion: (status == StepStatus::Completed).then_some(Conclusion::Success),
        started_at_ms: Some(3_000),
        ended_at_ms: (status == StepStatus::Completed).then_some(3_500),
    }
}

fn lines(job_id: JobId, token: FencingToken, offset: i64, texts: &[&str]) -> LogAppend {
    LogAppend {
        job_id,
        fencing_token: token,
        offset,
        lines: texts
            .iter()
            .zip(offset + 1..)
            .map(|(text, number)| NewLogLine {
                step_index: 0,
                line_number: number,
                time_ms: 3_000,
                text: (*text).to_owned(),
            })
            .collect(),
    }
}

fn assert_stale<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::StaleToken { .. }) => {}
        other => panic!("expected a stale token, got {other:?}"),
    }
}

pub async fn runners_register_with_valid_tokens_only(db: &mut TestDb) {
    let store = db.store();
    let (org, _) = org_and_repo(store, "acme").await;
    assert_not_found(store.register_runner(runner("unknown")).await);
    store
        .save_registration_token(NewRegistrationToken {
            token_hash: "expired".to_owned(),
            org_id: Some(org.id),
            created_at_ms: 1_000,
            expires_at_ms: Some(4_000),
            runner_group: None,
            repo_ids: None,
        })
        .await
        .unwrap();
    assert_not_found(store.register_runner(runner("expired")).await);
    store
        .save_registration_token(NewRegistrationToken {
            token_hash: "org-token".to_owned(),
            org_id: Some(org.id),
            created_at_ms: 1_000,
            expires_at_ms: Some(10_000),
            runner_group: None,
            repo_ids: None,
        })
        .await
        .unwrap();
    store
        .save_registration_token(NewRegistrationToken {
            token_hash: "hosted".to_owned(),
            org_id: None,
            created_at_ms: 1_000,
            expires_at_ms: None,
            runner_group: None,
            repo_ids: None,
        })
        .await
        .unwrap();
    let own = store.register_runner(runner("org-token")).await.unwrap();
    assert_eq!(own.org_id, Some(org.id));
    assert_eq!((own.capacity, own.ephemeral), (2, true));
    assert_eq!(own.labels, ["linux", "x64"]);
    let hosted = store.register_runner(runner("hosted")).await.unwrap();
    assert_eq!(hosted.org_id, None);
    assert!(hosted.id > own.id);
    assert_eq!(store.get_runner(own.id).await.unwrap(), own);
    assert_eq!(
        store.list_runners().await.unwrap(),
        vec![own.clone(), hosted.clone()]
    );
    store.remove_runner(own.id, 6_000).await.unwrap();
    assert_eq!(store.list_runners().await.unwrap(), vec![hosted]);
    assert_eq!(
        store.get_runner(own.id).await.unwrap().removed_at_ms,
        Some(6_000)
    );
    assert_not_found(store.get_runner(RunnerId(999)).await);
}

pub async fn runners_inherit_their_tokens_group_and_repositories(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    let grouped = NewRegistrationToken {
        token_hash: "grouped".to_owned(),
        org_id: Some(org.id),
        created_at_ms: 1_000,
        expires_at_ms: Some(10_000),
        runner_group: Some("gpu-farm".to_owned()),
        repo_ids: Some(vec![repo.id]),
    };
    store
        .save_registration_token(grouped.clone())
        .await
        .unwrap();
    let farm = store.register_runner(runner("grouped")).await.unwrap();
    assert_eq!(farm.runner_group.as_deref(), Some("gpu-farm"));
    assert_eq!(farm.repo_ids, Some(vec![repo.id]));
    assert_eq!(store.get_runner(farm.id).await.unwrap(), farm);

    let hosted_in_a_group = NewRegistrationToken {
        token_hash: "hosted-grouped".to_owned(),
        org_id: None,
        ..grouped
    };
    match store.save_registration_token(hosted_in_a_group).await {
        Err(StoreError::Invalid { what }) => assert!(what.contains("runner group"), "{what}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_not_found(store.register_runner(runner("hosted-grouped")).await);
}

pub async fn step_reports_follow_the_steps_order_under_the_latest_token(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, ".github/workflows/ci.yml", two_jobs()).await;
    let build = job_id(&created, 0);
    let lease = Lease {
        now_ms: 2_000,
        deadline_ms: 60_000,
    };
    let claim = store.claim_job(build, RunnerId(7), lease).await.unwrap();
    let token = claim.fencing_token;

    assert_stale(
        store
            .report_step(
                FencingToken(token.0 + 1),
                step(build, 0, StepStatus::InProgress),
            )
            .await,
    );
    let started = store
        .report_step(token, step(build, 0, StepStatus::InProgress))
        .await;
    assert_eq!(started.unwrap(), StepReported::Stored);
    let again = store
        .report_step(token, step(build, 0, StepStatus::InProgress))
        .await;
    assert_eq!(again.unwrap(), StepReported::Duplicate);
    assert_conflict(
        store
            .report_step(token, step(build, 1, StepStatus::InProgress))
            .await,
    );
    assert_conflict(
        store
            .report_step(token, step(build, 2, StepStatus::Completed))
            .await,
    );
    let ended = store
        .report_step(token, step(build, 0, StepStatus::Completed))
        .await;
    assert_eq!(ended.unwrap(), StepReported::Stored);
    assert_conflict(
        store
            .report_step(token, step(build, 0, StepStatus::InProgress))
            .await,
    );
    let next = store
        .report_step(token, step(build, 1, StepStatus::InProgress))
        .await;
    assert_eq!(next.unwrap(), StepReported::Stored);
    let steps = store.list_step_results(build).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].status, StepStatus::Completed);
    assert_eq!(steps[1].status, StepStatus::InProgress);
}

pub async fn logs_append_without_gaps_or_duplicates(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, ".github/workflows/ci.yml", two_jobs()).await;
    let build = job_id(&created, 0);
    let lease = Lease {
        now_ms: 2_000,
        deadline_ms: 60_000,
    };
    let token = store
        .claim_job(build, RunnerId(7), lease)
        .await
        .unwrap()
        .fencing_token;

    assert_eq!(
        store
            .append_log(lines(build, token, 0, &["a", "b"]))
            .await
            .unwrap(),
        2
    );
    // A retry of the same chunk plus one more line stores only the new line.
    assert_eq!(
        store
            .append_log(lines(build, token, 0, &["a", "b", "c"]))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .append_log(lines(build, token, 1, &["b"]))
            .await
            .unwrap(),
        3
    );
    assert_conflict(store.append_log(lines(build, token, 5, &["gap"])).await);
    assert_stale(
        store
            .append_log(lines(build, FencingToken(token.0 + 1), 3, &["d"]))
            .await,
    );

    let all = store.read_log(build, None, 100).await.unwrap();
    let texts: Vec<&str> = all.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
    assert_eq!(
        all.iter().map(|line| line.seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let rest = store.read_log(build, Some(0), 1).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].text, "b");
    assert_not_found(store.read_log(JobId(9_999), None, 10).await);
    assert!(
        store
            .read_log(job_id(&created, 1), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
