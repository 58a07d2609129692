//! The conformance suite: what every `Store` must do, written once against `&dyn Store`.
//!
//! Each test takes the `TestDb` it runs on (for tests that reopen the store or share it with
//! spawned tasks) and is declared for every backend in `main.rs`.

use std::collections::BTreeSet;

use gantry_store::{
    BuildRun, CREATED_STATE_VERSION, Conclusion, EndedAttempt, FencingToken, Job, JobId, JobStatus,
    JobUpdate, Lease, NewAttempt, NewOrganization, NewRepository, OrgId, RepoId, RunFilter, RunId,
    RunStatus, RunUpdate, RunnerId, StateChange, StepResult, StepStatus, StoreError, Transition,
    WorkflowRun,
};
use serde_json::json;

use crate::fixtures::{
    assert_conflict, assert_invalid, assert_not_found, build, build_with_document, create, job,
    job_id, new_run, org_and_repo, snapshot, two_jobs,
};
use crate::harness::TestDb;

const CI: &str = ".github/workflows/ci.yml";
const RELEASE: &str = ".github/workflows/release.yml";

fn lease(now_ms: i64) -> Lease {
    Lease {
        now_ms,
        deadline_ms: now_ms + 60_000,
    }
}

pub async fn organizations_and_repositories_round_trip(db: &mut TestDb) {
    let store = db.store();
    let acme = store
        .create_organization(NewOrganization {
            name: "acme".to_owned(),
            weight: 3,
            hosted_concurrency_limit: Some(10),
        })
        .await
        .unwrap();
    let beta = store
        .create_organization(NewOrganization {
            name: "beta".to_owned(),
            weight: 1,
            hosted_concurrency_limit: None,
        })
        .await
        .unwrap();
    assert_eq!((acme.weight, acme.hosted_concurrency_limit), (3, Some(10)));
    assert_eq!(store.get_organization(acme.id).await.unwrap(), acme);
    assert_eq!(store.get_organization_by_name("beta").await.unwrap(), beta);
    assert_eq!(
        store.list_organizations(None, 10).await.unwrap(),
        vec![acme.clone(), beta.clone()]
    );
    assert_eq!(
        store.list_organizations(None, 1).await.unwrap(),
        vec![acme.clone()]
    );
    assert_eq!(
        store.list_organizations(Some(acme.id), 10).await.unwrap(),
        vec![beta.clone()]
    );

    let new_repo = |org_id: OrgId, name: &str, branch: &str| NewRepository {
        org_id,
        name: name.to_owned(),
        default_branch: branch.to_owned(),
    };
    let web = store
        .create_repository(new_repo(acme.id, "web", "main"))
        .await
        .unwrap();
    let api = store
        .create_repository(new_repo(acme.id, "api", "trunk"))
        .await
        .unwrap();
    let beta_web = store
        .create_repository(new_repo(beta.id, "web", "main"))
        .await
        .unwrap();
    assert_ne!(web.id, beta_web.id);
    assert_eq!(api.default_branch, "trunk");
    assert_eq!(store.get_repository(api.id).await.unwrap(), api);
    assert_eq!(
        store.get_repository_by_name("acme", "web").await.unwrap(),
        web
    );
    assert_eq!(
        store.get_repository_by_name("beta", "web").await.unwrap(),
        beta_web
    );
    assert_eq!(
        store.list_repositories(acme.id, None, 10).await.unwrap(),
        vec![web.clone(), api.clone()]
    );
    // Pages follow ids: one repository a page, then nothing after the last.
    assert_eq!(
        store.list_repositories(acme.id, None, 1).await.unwrap(),
        vec![web.clone()]
    );
    assert_eq!(
        store
            .list_repositories(acme.id, Some(web.id), 1)
            .await
            .unwrap(),
        vec![api.clone()]
    );
    assert!(
        store
            .list_repositories(acme.id, Some(api.id), 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(store.get_repository_by_name("acme", "missing").await);
    assert_not_found(store.get_repository_by_name("nobody", "web").await);
    assert_not_found(store.get_organization_by_name("nobody").await);
}

pub async fn duplicate_names_conflict(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    assert_conflict(
        store
            .create_organization(NewOrganization {
                name: "acme".to_owned(),
                weight: 2,
                hosted_concurrency_limit: None,
            })
            .await,
    );
    assert_conflict(
        store
            .create_repository(NewRepository {
                org_id: org.id,
                name: "web".to_owned(),
                default_branch: "other".to_owned(),
            })
            .await,
    );
    assert_eq!(
        store.list_organizations(None, 10).await.unwrap(),
        vec![org.clone()]
    );
    assert_eq!(
        store.list_repositories(org.id, None, 10).await.unwrap(),
        vec![repo]
    );
}

pub async fn malformed_input_is_invalid(db: &mut TestDb) {
    let store = db.store();
    let org = |name: &str, weight, limit| NewOrganization {
        name: name.to_owned(),
        weight,
        hosted_concurrency_limit: limit,
    };
    assert_invalid(store.create_organization(org("", 1, None)).await);
    assert_invalid(store.create_organization(org("acme", 0, None)).await);
    assert_invalid(store.create_organization(org("acme", 1, Some(-1))).await);
    assert_invalid(store.list_organizations(None, 0).await);
    assert_invalid(store.list_repositories(OrgId(1), None, 0).await);
    assert_invalid(store.list_repositories(OrgId(1), None, 100_000).await);
    let (org, repo) = org_and_repo(store, "acme").await;
    assert_invalid(
        store
            .create_repository(NewRepository {
                org_id: org.id,
                name: String::new(),
                default_branch: "main".to_owned(),
            })
            .await,
    );

    let mut no_sha = new_run(repo.id, CI);
    no_sha.sha.clear();
    assert_invalid(store.create_run(no_sha, build(two_jobs()), None).await);
    let mut nameless = job("build", 0, JobStatus::Queued);
    nameless.name.clear();
    assert_invalid(
        store
            .create_run(new_run(repo.id, CI), build(vec![nameless]), None)
            .await,
    );
    for limit in [0, RunFilter::MAX_LIMIT + 1] {
        assert_invalid(
            store
                .list_runs(RunFilter {
                    repo_id: None,
                    status: None,
                    limit,
                    before: None,
                })
                .await,
        );
    }
    let all = RunFilter {
        repo_id: None,
        status: None,
        limit: 10,
        before: None,
    };
    assert!(store.list_runs(all).await.unwrap().runs.is_empty());
    assert_eq!(
        store.list_repositories(org.id, None, 10).await.unwrap(),
        vec![repo]
    );
}

pub async fn unknown_ids_are_not_found_and_change_nothing(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, CI, two_jobs()).await;
    let before = snapshot(store, created.run_id).await;

    let (no_org, no_repo, no_run, no_job) = (
        OrgId(999_999),
        RepoId(999_999),
        RunId(999_999),
        JobId(999_999),
    );
    assert_not_found(store.get_organization(no_org).await);
    assert_not_found(store.list_repositories(no_org, None, 10).await);
    assert_not_found(
        store
            .create_repository(NewRepository {
                org_id: no_org,
                name: "web".to_owned(),
                default_branch: "main".to_owned(),
            })
            .await,
    );
    assert_not_found(store.get_repository(no_repo).await);
    assert_not_found(
        store
            .create_run(new_run(no_repo, CI), build(two_jobs()), Some("key"))
            .await,
    );
    assert_not_found(
        store
            .create_run(new_run(no_repo, CI), build(two_jobs()), None)
            .await,
    );
    assert_not_found(
        store
            .list_runs(RunFilter {
                repo_id: Some(no_repo),
                status: None,
                limit: 10,
                before: None,
            })
            .await,
    );
    assert_not_found(store.get_run(no_run).await);
    assert_not_found(store.get_engine_state(no_run).await);
    assert_not_found(store.list_jobs(no_run).await);
    assert_not_found(
        store
            .apply_transition(Transition::new(no_run, 1, json!({})))
            .await,
    );
    assert_not_found(store.get_job(no_job).await);
    assert_not_found(store.list_attempts(no_job).await);
    assert_not_found(store.list_step_results(no_job).await);
    assert_not_found(store.claim_job(no_job, RunnerId(1), lease(2_000)).await);
    assert_not_found(store.renew_lease(no_job, FencingToken(1), 9_000).await);

    assert_eq!(store.list_organizations(None, 10).await.unwrap(), vec![org]);
    assert_eq!(
        store
            .list_repositories(repo.org_id, None, 10)
            .await
            .unwrap(),
        vec![repo]
    );
    let page = store
        .list_runs(RunFilter {
            repo_id: None,
            status: None,
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(page.runs.len(), 1);
    assert_eq!(snapshot(store, created.run_id).await, before);
}

pub async fn creating_a_run_stores_it_with_its_jobs(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    let mut matrix = job("test", 1, JobStatus::Waiting);
    matrix.priority = 5;
    let created = store
        .create_run(
            new_run(repo.id, CI),
            build(vec![
                job("build", 0, JobStatus::Queued),
                job("test", 0, JobStatus::Waiting),
                matrix.clone(),
            ]),
            None,
        )
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.run_number, 1);
    assert_eq!(created.job_ids.len(), 3);

    let run = store.get_run(created.run_id).await.unwrap();
    assert_eq!(run.id, created.run_id);
    assert_eq!(run.repo_id, repo.id);
    assert_eq!(run.workflow_path, CI);
    assert_eq!(run.workflow_name, "CI");
    assert_eq!((run.run_number, run.attempt), (1, 1));
    assert_eq!(
        (
            run.event_name.as_str(),
            run.git_ref.as_str(),
            run.actor.as_str()
        ),
        ("push", "refs/heads/main", "octocat")
    );
    assert_eq!(run.sha, new_run(repo.id, CI).sha);
    assert_eq!((run.status, run.conclusion), (RunStatus::Queued, None));
    assert_eq!(
        (run.created_at_ms, run.started_at_ms, run.completed_at_ms),
        (1_000, None, None)
    );
    assert_eq!(
        (run.state_version, run.idempotency_key),
        (CREATED_STATE_VERSION, None)
    );

    // The builder saw the run's id and number inside the creating transaction.
    let state = store.get_engine_state(created.run_id).await.unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(
        state.document,
        json!({"run": created.run_id.0, "number": 1, "events": 0})
    );
    assert_eq!(state.spec, Some(json!({"spec of run": created.run_id.0})));

    let jobs = store.list_jobs(created.run_id).await.unwrap();
    assert_eq!(
        jobs.iter().map(|job| job.id).collect::<Vec<_>>(),
        created.job_ids
    );
    let build_job = &jobs[0];
    assert_eq!(build_job.run_id, created.run_id);
    assert_eq!(
        (
            build_job.job_key.as_str(),
            build_job.matrix_index,
            build_job.name.as_str()
        ),
        ("build", 0, "build (0)")
    );
    assert_eq!(
        (build_job.status, build_job.conclusion, build_job.attempt),
        (JobStatus::Queued, None, 1)
    );
    assert_eq!(build_job.runs_on, vec!["ubuntu-latest".to_owned()]);
    assert_eq!(build_job.waiting_reasons, json!([]));
    assert_eq!(build_job.outputs, json!({}));
    assert_eq!(build_job.queued_at_ms, Some(1_000));
    assert_eq!(jobs[1].status, JobStatus::Waiting);
    assert_eq!(
        jobs[1].waiting_reasons,
        json!([{"reason": "needs", "jobs": ["build"]}])
    );
    assert_eq!((jobs[2].matrix_index, jobs[2].priority), (1, 5));
    assert_eq!(store.get_job(jobs[2].id).await.unwrap(), jobs[2]);
    // What a creator keeps in place of reading its rows back.
    let given = [
        job("build", 0, JobStatus::Queued),
        job("test", 0, JobStatus::Waiting),
        matrix,
    ];
    for ((given, stored), id) in given.iter().zip(&jobs).zip(&created.job_ids) {
        assert_eq!(given.stored_as(*id, created.run_id), *stored);
    }

    let queued = store.queued_jobs().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].job, *build_job);
    assert_eq!((queued[0].repo_id, queued[0].org_id), (repo.id, org.id));
    assert!(store.list_attempts(build_job.id).await.unwrap().is_empty());
}

pub async fn a_run_keeps_its_workflow_and_the_workflows_it_calls(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let mut called = new_run(repo.id, CI);
    called.called_workflows.insert(
        "./.github/workflows/build.yml".to_owned(),
        "on: workflow_call\njobs: {}\n".to_owned(),
    );
    called.called_workflows.insert(
        "acme/lib/.github/workflows/x.yml@v1".to_owned(),
        "on:\n  workflow_call: {}\n".to_owned(),
    );
    let with_calls = store
        .create_run(
            called.clone(),
            build(vec![job("a", 0, JobStatus::Queued)]),
            None,
        )
        .await
        .unwrap();
    let without = store
        .create_run(
            new_run(repo.id, CI),
            build(vec![job("a", 0, JobStatus::Queued)]),
            None,
        )
        .await
        .unwrap();
    let source = store.workflow_source(with_calls.run_id).await.unwrap();
    assert_eq!(source, called.workflow_source);
    let kept = store.called_workflows(with_calls.run_id).await.unwrap();
    assert_eq!(kept, called.called_workflows);
    let none = store.called_workflows(without.run_id).await.unwrap();
    assert!(none.is_empty());
    let missing = store.called_workflows(RunId(999_999)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn run_numbers_count_per_workflow(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    let other = store
        .create_repository(NewRepository {
            org_id: org.id,
            name: "api".to_owned(),
            default_branch: "main".to_owned(),
        })
        .await
        .unwrap();
    let mut numbers = Vec::new();
    for (repo_id, path) in [
        (repo.id, CI),
        (repo.id, CI),
        (repo.id, RELEASE),
        (repo.id, CI),
        (other.id, CI),
        (repo.id, RELEASE),
    ] {
        numbers.push(create(store, repo_id, path, two_jobs()).await.run_number);
    }
    assert_eq!(numbers, vec![1, 2, 1, 3, 1, 2]);
}

pub async fn concurrent_creators_get_distinct_gapless_run_numbers(db: &mut TestDb) {
    let store = db.shared();
    let (_, repo) = org_and_repo(&*store, "acme").await;
    let creators = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { create(&*store, repo.id, CI, two_jobs()).await })
        })
        .collect::<Vec<_>>();
    let mut numbers = Vec::new();
    let mut runs = BTreeSet::new();
    for creator in creators {
        let created = creator.await.unwrap();
        numbers.push(created.run_number);
        runs.insert(created.run_id);
        // Created together or alone, the rows are what the creator gave, and the run is at
        // its first version.
        let stored = store.list_jobs(created.run_id).await.unwrap();
        let given: Vec<Job> = two_jobs()
            .iter()
            .zip(&created.job_ids)
            .map(|(job, id)| job.stored_as(*id, created.run_id))
            .collect();
        assert_eq!(stored, given);
        let version = store.get_run(created.run_id).await.unwrap().state_version;
        assert_eq!(version, CREATED_STATE_VERSION);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<i64>>());
    assert_eq!(runs.len(), 20);
    assert_eq!(store.queued_jobs().await.unwrap().len(), 20);
}

pub async fn an_idempotency_key_returns_the_same_run(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    let first = store
        .create_run(new_run(repo.id, CI), build(two_jobs()), Some("delivery-1"))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(
        store
            .get_run(first.run_id)
            .await
            .unwrap()
            .idempotency_key
            .as_deref(),
        Some("delivery-1")
    );

    // The same request again creates nothing and never calls the builder.
    let refuse = BuildRun::new(|_| Err("the builder must not be called".to_owned()));
    let again = store
        .create_run(new_run(repo.id, CI), refuse, Some("delivery-1"))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.run_id, again.run_number, &again.job_ids),
        (first.run_id, first.run_number, &first.job_ids)
    );

    // The key reused for another commit is a conflict.
    let mut other_commit = new_run(repo.id, CI);
    other_commit.sha = "f".repeat(40);
    assert_conflict(
        store
            .create_run(other_commit, build(two_jobs()), Some("delivery-1"))
            .await,
    );

    // Keys are per repository.
    let other = store
        .create_repository(NewRepository {
            org_id: org.id,
            name: "api".to_owned(),
            default_branch: "main".to_owned(),
        })
        .await
        .unwrap();
    let elsewhere = store
        .create_run(new_run(other.id, CI), build(two_jobs()), Some("delivery-1"))
        .await
        .unwrap();
    assert!(elsewhere.created);

    // No run number was spent on the replays.
    assert_eq!(create(store, repo.id, CI, two_jobs()).await.run_number, 2);
    let page = store
        .list_runs(RunFilter {
            repo_id: Some(repo.id),
            status: None,
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(page.runs.len(), 2);
}

pub async fn concurrent_creators_with_one_idempotency_key_create_one_run(db: &mut TestDb) {
    let store = db.shared();
    let (_, repo) = org_and_repo(&*store, "acme").await;
    let creators = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_run(new_run(repo.id, CI), build(two_jobs()), Some("delivery-7"))
                    .await
                    .unwrap()
            })
        })
        .collect::<Vec<_>>();
    let mut results = Vec::new();
    for creator in creators {
        results.push(creator.await.unwrap());
    }
    assert_eq!(results.iter().filter(|created| created.created).count(), 1);
    let first = &results[0];
    for created in &results {
        assert_eq!(
            (created.run_id, created.run_number, &created.job_ids),
            (first.run_id, 1, &first.job_ids)
        );
    }
    assert_eq!(store.queued_jobs().await.unwrap().len(), 1);
    assert_eq!(create(&*store, repo.id, CI, two_jobs()).await.run_number, 2);
}

pub async fn a_refused_creation_stores_nothing(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let refuse = BuildRun::new(|_| Err("invalid concurrency group".to_owned()));
    match store
        .create_run(new_run(repo.id, CI), refuse, Some("k"))
        .await
    {
        Err(StoreError::Invalid { what }) => assert!(what.contains("invalid concurrency group")),
        other => panic!("expected invalid input, got {other:?}"),
    }
    // A duplicate job fails on its insert, after the run and the first job were written.
    let duplicate = vec![
        job("build", 0, JobStatus::Queued),
        job("build", 0, JobStatus::Queued),
    ];
    assert_conflict(
        store
            .create_run(new_run(repo.id, CI), build(duplicate), Some("k"))
            .await,
    );
    let all = RunFilter {
        repo_id: None,
        status: None,
        limit: 10,
        before: None,
    };
    assert!(store.list_runs(all).await.unwrap().runs.is_empty());
    assert!(store.queued_jobs().await.unwrap().is_empty());
    // Neither the run number nor the key was used up.
    let created = store
        .create_run(new_run(repo.id, CI), build(two_jobs()), Some("k"))
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.run_number, 1);
}

/// Concurrent creations share transactions (group commit): a refused one among them must
/// change nothing and take nothing from the others.
pub async fn refused_creations_among_concurrent_ones_spare_the_others(db: &mut TestDb) {
    let store = db.shared();
    let (_, repo) = org_and_repo(&*store, "acme").await;
    let creators = (0..30)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                let content = match index % 3 {
                    0 => BuildRun::new(|_| Err("refused by the builder".to_owned())),
                    1 => build(vec![
                        job("build", 0, JobStatus::Queued),
                        job("build", 0, JobStatus::Queued),
                    ]),
                    _ => build(two_jobs()),
                };
                (
                    index,
                    store.create_run(new_run(repo.id, CI), content, None).await,
                )
            })
        })
        .collect::<Vec<_>>();
    let mut numbers = Vec::new();
    for creator in creators {
        let (index, result) = creator.await.unwrap();
        match (index % 3, result) {
            (0, Err(StoreError::Invalid { what })) => assert!(what.contains("refused")),
            (1, Err(StoreError::Conflict { .. })) => {}
            (2, Ok(created)) => {
                assert_eq!(store.list_jobs(created.run_id).await.unwrap().len(), 2);
                numbers.push(created.run_number);
            }
            (_, other) => panic!("creator {index}: unexpected {other:?}"),
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=10).collect::<Vec<i64>>());
    assert_eq!(store.queued_jobs().await.unwrap().len(), 10);
}

pub async fn listing_runs_pages_newest_first(db: &mut TestDb) {
    let store = db.store();
    let (org, web) = org_and_repo(store, "acme").await;
    let api = store
        .create_repository(NewRepository {
            org_id: org.id,
            name: "api".to_owned(),
            default_branch: "main".to_owned(),
        })
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut web_runs = Vec::new();
    let mut completed_web_runs = Vec::new();
    for index in 0..17 {
        let repo_id = if index % 3 == 2 { api.id } else { web.id };
        let created = create(store, repo_id, CI, two_jobs()).await;
        all.push(created.run_id);
        if repo_id == web.id {
            web_runs.push(created.run_id);
            if index % 2 == 0 {
                let mut complete = Transition::new(created.run_id, 1, json!({"done": true}));
                complete.run = Some(RunUpdate {
                    attempt: 1,
                    status: RunStatus::Completed,
                    conclusion: Some(Conclusion::Success),
                    started_at_ms: Some(2_000),
                    completed_at_ms: Some(3_000),
                });
                store.apply_transition(complete).await.unwrap();
                completed_web_runs.push(created.run_id);
            }
        }
    }
    for ids in [&mut all, &mut web_runs, &mut completed_web_runs] {
        ids.reverse();
    }

    let pages = |repo_id: Option<RepoId>, status: Option<RunStatus>, limit: u32| async move {
        let mut seen = Vec::new();
        let mut before = None;
        let mut pages = 0;
        loop {
            let page = store
                .list_runs(RunFilter {
                    repo_id,
                    status,
                    limit,
                    before,
                })
                .await
                .unwrap();
            assert!(page.runs.len() <= limit as usize);
            seen.extend(page.runs.iter().map(|run| run.id));
            pages += 1;
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        (seen, pages)
    };
    assert_eq!(pages(None, None, 5).await, (all.clone(), 4));
    assert_eq!(pages(None, None, 17).await, (all.clone(), 1));
    assert_eq!(pages(None, None, 1000).await, (all.clone(), 1));
    assert_eq!(pages(Some(web.id), None, 4).await.0, web_runs);
    assert_eq!(
        pages(None, Some(RunStatus::Completed), 2).await.0,
        completed_web_runs
    );
    let queued_web = web_runs
        .iter()
        .filter(|id| !completed_web_runs.contains(id))
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(
        pages(Some(web.id), Some(RunStatus::Queued), 3).await.0,
        queued_web
    );
    let completed = store
        .list_runs(RunFilter {
            repo_id: None,
            status: Some(RunStatus::Completed),
            limit: 1,
            before: None,
        })
        .await
        .unwrap();
    let run = &completed.runs[0];
    assert_eq!(
        (
            run.status,
            run.conclusion,
            run.completed_at_ms,
            run.state_version
        ),
        (
            RunStatus::Completed,
            Some(Conclusion::Success),
            Some(3_000),
            2
        )
    );
}

pub async fn a_transition_changes_run_and_jobs_together(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, CI, two_jobs()).await;
    let (build_id, test_id) = (job_id(&created, 0), job_id(&created, 1));
    let claim = store
        .claim_job(build_id, RunnerId(7), lease(1_500))
        .await
        .unwrap();

    let build_job = store.get_job(build_id).await.unwrap();
    let test_job = store.get_job(test_id).await.unwrap();
    let mut transition = Transition::new(created.run_id, 1, json!({"events": 1}));
    transition.run = Some(RunUpdate {
        attempt: 1,
        status: RunStatus::InProgress,
        conclusion: None,
        started_at_ms: Some(1_500),
        completed_at_ms: None,
    });
    transition.job_updates = vec![
        JobUpdate {
            status: JobStatus::Completed,
            conclusion: Some(Conclusion::Success),
            outputs: json!({"version": "1.2.3"}),
            completed_at_ms: Some(4_000),
            ..JobUpdate::from_job(&build_job)
        },
        JobUpdate {
            status: JobStatus::Queued,
            waiting_reasons: json!([]),
            queued_at_ms: Some(4_000),
            ..JobUpdate::from_job(&test_job)
        },
    ];
    transition.new_jobs = vec![
        job("deploy", 0, JobStatus::Waiting),
        job("deploy", 1, JobStatus::Waiting),
    ];
    transition.ended_attempts = vec![EndedAttempt {
        job_id: build_id,
        attempt: 1,
        fencing_token: Some(claim.fencing_token),
        ended_at_ms: 4_000,
        result: Conclusion::Success,
    }];
    transition.step_results = (0..2)
        .map(|step_index| StepResult {
            job_id: build_id,
            attempt: 1,
            step_index,
            name: format!("step {step_index}"),
            status: StepStatus::Completed,
            conclusion: Some(Conclusion::Success),
            started_at_ms: Some(2_000 + step_index),
            ended_at_ms: Some(3_000 + step_index),
        })
        .collect();
    let applied = store.apply_transition(transition).await.unwrap();
    assert_eq!(applied.state_version, 2);
    assert_eq!(applied.new_job_ids.len(), 2);

    let run = store.get_run(created.run_id).await.unwrap();
    assert_eq!(
        (run.status, run.started_at_ms, run.state_version),
        (RunStatus::InProgress, Some(1_500), 2)
    );
    let state = store.get_engine_state(created.run_id).await.unwrap();
    assert_eq!((state.document, state.version), (json!({"events": 1}), 2));
    // The spec was stored once, with the run, and the transition left it as it was.
    assert_eq!(state.spec, Some(json!({"spec of run": created.run_id.0})));
    let build_job = store.get_job(build_id).await.unwrap();
    assert_eq!(
        (build_job.status, build_job.conclusion, build_job.outputs),
        (
            JobStatus::Completed,
            Some(Conclusion::Success),
            json!({"version": "1.2.3"})
        )
    );
    let test_job = store.get_job(test_id).await.unwrap();
    assert_eq!(
        (test_job.status, test_job.queued_at_ms),
        (JobStatus::Queued, Some(4_000))
    );
    let jobs = store.list_jobs(created.run_id).await.unwrap();
    assert_eq!(
        jobs[2..].iter().map(|job| job.id).collect::<Vec<_>>(),
        applied.new_job_ids
    );
    assert_eq!(jobs[3].job_key, "deploy");
    assert_eq!(jobs[3].matrix_index, 1);
    let attempts = store.list_attempts(build_id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].ended_at_ms, attempts[0].result),
        (Some(4_000), Some(Conclusion::Success))
    );
    let steps = store.list_step_results(build_id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].started_at_ms, Some(2_001));
    assert!(store.running_attempts().await.unwrap().is_empty());
    let queued = store.queued_jobs().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].job.id, test_id);

    // A step reported again replaces its row.
    let mut update = Transition::new(created.run_id, 2, json!({"events": 2}));
    update.step_results = vec![StepResult {
        conclusion: Some(Conclusion::Failure),
        ..steps[1].clone()
    }];
    assert_eq!(
        store.apply_transition(update).await.unwrap().state_version,
        3
    );
    let steps = store.list_step_results(build_id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].conclusion, Some(Conclusion::Failure));
}

/// A run with one claimed job, one step reported and a second job waiting.
async fn busy_run(db: &TestDb) -> (RunId, JobId, JobId, FencingToken) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, CI, two_jobs()).await;
    let (build_id, test_id) = (job_id(&created, 0), job_id(&created, 1));
    let claim = store
        .claim_job(build_id, RunnerId(7), lease(1_500))
        .await
        .unwrap();
    let mut transition = Transition::new(created.run_id, 1, json!({"events": 1}));
    transition.step_results = vec![StepResult {
        job_id: build_id,
        attempt: 1,
        step_index: 0,
        name: "checkout".to_owned(),
        status: StepStatus::InProgress,
        conclusion: None,
        started_at_ms: Some(1_600),
        ended_at_ms: None,
    }];
    store.apply_transition(transition).await.unwrap();
    (created.run_id, build_id, test_id, claim.fencing_token)
}

/// A transition touching every table, computed from `version`.
async fn full_transition(
    db: &TestDb,
    run_id: RunId,
    version: i64,
    build_id: JobId,
    test_id: JobId,
    token: FencingToken,
) -> Transition {
    let store = db.store();
    let build_job = store.get_job(build_id).await.unwrap();
    let test_job = store.get_job(test_id).await.unwrap();
    let mut transition = Transition::new(run_id, version, json!({"events": "stale"}));
    transition.run = Some(RunUpdate {
        attempt: 1,
        status: RunStatus::Completed,
        conclusion: Some(Conclusion::Failure),
        started_at_ms: Some(1),
        completed_at_ms: Some(2),
    });
    transition.job_updates = vec![
        JobUpdate {
            status: JobStatus::Completed,
            conclusion: Some(Conclusion::Failure),
            ..JobUpdate::from_job(&build_job)
        },
        JobUpdate {
            status: JobStatus::Queued,
            ..JobUpdate::from_job(&test_job)
        },
    ];
    transition.new_jobs = vec![job("deploy", 0, JobStatus::Queued)];
    transition.new_attempts = vec![NewAttempt {
        job_id: test_id,
        attempt: 1,
    }];
    transition.ended_attempts = vec![EndedAttempt {
        job_id: build_id,
        attempt: 1,
        fencing_token: Some(token),
        ended_at_ms: 5_000,
        result: Conclusion::Failure,
    }];
    transition.step_results = vec![StepResult {
        job_id: build_id,
        attempt: 1,
        step_index: 0,
        name: "checkout".to_owned(),
        status: StepStatus::Completed,
        conclusion: Some(Conclusion::Failure),
        started_at_ms: Some(1_600),
        ended_at_ms: Some(5_000),
    }];
    transition
}

pub async fn a_stale_transition_changes_nothing(db: &mut TestDb) {
    let (run_id, build_id, test_id, token) = busy_run(db).await;
    let store = db.store();
    let before = snapshot(store, run_id).await;
    assert_eq!(before.run.state_version, 2);
    for stale in [0, 1, 3, 17] {
        let transition = full_transition(db, run_id, stale, build_id, test_id, token).await;
        assert_conflict(store.apply_transition(transition).await);
        assert_eq!(snapshot(store, run_id).await, before);
    }
    // The same transition at the right version applies once, then is stale.
    let transition = full_transition(db, run_id, 2, build_id, test_id, token).await;
    let applied = store.apply_transition(transition.clone()).await.unwrap();
    assert_eq!(applied.state_version, 3);
    let after = snapshot(store, run_id).await;
    assert_ne!(after, before);
    assert_conflict(store.apply_transition(transition).await);
    assert_eq!(snapshot(store, run_id).await, after);
}

pub async fn a_transition_writes_the_run_fields_and_only_the_jobs_it_changed(db: &mut TestDb) {
    let (_, repo) = org_and_repo(db.store(), "acme").await;
    let job = |id: &str, events: u32| json!({"id": id, "events": events});
    let created_state =
        json!({"status": "queued", "jobs": [job("a", 0), job("b", 0), job("c", 0)]});
    let builder = || build_with_document(&created_state);
    let created = db
        .store()
        .create_run(new_run(repo.id, CI), builder(), None)
        .await
        .unwrap();
    let run_id = created.run_id;
    let change = |status: &str, jobs: Vec<(u32, serde_json::Value)>| StateChange {
        run: Some(json!({ "status": status }).into()),
        jobs: jobs
            .into_iter()
            .map(|(index, job)| (index, job.into()))
            .collect(),
    };
    assert_eq!(
        stored_state(db.store(), run_id).await.document,
        created_state
    );

    let first = Transition::new(run_id, 1, change("in_progress", vec![(1, job("b", 1))]));
    db.store().apply_transition(first).await.unwrap();
    let expected =
        json!({"status": "in_progress", "jobs": [job("a", 0), job("b", 1), job("c", 0)]});
    assert_eq!(stored_state(db.store(), run_id).await.document, expected);

    // A later transition keeps the jobs the earlier one wrote.
    let second = Transition::new(run_id, 2, change("completed", vec![(2, job("c", 1))]));
    db.store().apply_transition(second).await.unwrap();
    let expected = json!({"status": "completed", "jobs": [job("a", 0), job("b", 1), job("c", 1)]});
    assert_eq!(stored_state(db.store(), run_id).await.document, expected);

    // A stale one writes none of its jobs.
    let stale = Transition::new(run_id, 2, change("queued", vec![(0, job("a", 9))]));
    assert_conflict(db.store().apply_transition(stale).await);
    assert_eq!(stored_state(db.store(), run_id).await.document, expected);

    // With the run's columns too: written with the jobs, or neither when stale.
    let columns = |status| RunUpdate {
        attempt: 1,
        status,
        conclusion: None,
        started_at_ms: Some(10),
        completed_at_ms: None,
    };
    let mut third = Transition::new(run_id, 3, change("in_progress", vec![(0, job("a", 2))]));
    third.run = Some(columns(RunStatus::InProgress));
    db.store().apply_transition(third).await.unwrap();
    let expected =
        json!({"status": "in_progress", "jobs": [job("a", 2), job("b", 1), job("c", 1)]});
    assert_eq!(stored_state(db.store(), run_id).await.document, expected);
    let run = db.store().get_run(run_id).await.unwrap();
    assert_eq!(
        (run.status, run.started_at_ms),
        (RunStatus::InProgress, Some(10))
    );
    let mut stale = Transition::new(run_id, 3, change("completed", vec![(1, job("b", 9))]));
    stale.run = Some(columns(RunStatus::Completed));
    assert_conflict(db.store().apply_transition(stale).await);
    assert_eq!(stored_state(db.store(), run_id).await.document, expected);
    assert_eq!(db.store().get_run(run_id).await.unwrap(), run);

    // Without the run's fields and columns: the version moves, the job is written, the
    // run's fields and columns stay as the last transition that wrote them left them.
    let only_jobs = |version, jobs: Vec<(u32, serde_json::Value)>| {
        let mut change = change("unused", jobs);
        change.run = None;
        Transition::new(run_id, version, change)
    };
    db.store()
        .apply_transition(only_jobs(4, vec![(1, job("b", 2))]))
        .await
        .unwrap();
    let expected =
        json!({"status": "in_progress", "jobs": [job("a", 2), job("b", 2), job("c", 1)]});
    let state = stored_state(db.store(), run_id).await;
    assert_eq!((state.document, state.version), (expected.clone(), 5));
    let moved = db.store().get_run(run_id).await.unwrap();
    assert_eq!(
        moved,
        WorkflowRun {
            state_version: 5,
            ..run
        }
    );
    assert_conflict(
        db.store()
            .apply_transition(only_jobs(4, vec![(1, job("b", 9))]))
            .await,
    );
    assert_eq!(stored_state(db.store(), run_id).await.document, expected);

    // The parts are joined the same way after a restart.
    db.reopen().await;
    let state = stored_state(db.store(), run_id).await;
    assert_eq!((state.document, state.version), (expected, 5));

    // A whole document is written as its parts: the run's fields and every job it lists.
    let created = db
        .store()
        .create_run(new_run(repo.id, CI), builder(), None)
        .await
        .unwrap();
    let whole = json!({"status": "in_progress", "jobs": [job("a", 5), job("b", 5), job("c", 5)]});
    let transition = Transition::new(created.run_id, 1, whole.clone());
    db.store().apply_transition(transition).await.unwrap();
    let state = stored_state(db.store(), created.run_id).await;
    assert_eq!(state.document, whole);
}

pub async fn attempts_and_steps_of_another_runs_job_are_refused(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let mine = create(store, repo.id, CI, two_jobs()).await;
    let theirs = create(store, repo.id, CI, two_jobs()).await;
    let (my_build, their_build) = (job_id(&mine, 0), job_id(&theirs, 0));
    let step = |job_id| StepResult {
        job_id,
        attempt: 1,
        step_index: 0,
        name: "make".to_owned(),
        status: StepStatus::InProgress,
        conclusion: None,
        started_at_ms: Some(2_000),
        ended_at_ms: None,
    };
    let both = [mine.run_id, theirs.run_id];
    let before = snapshots(store, &both).await;
    type Edit<'a> = Box<dyn Fn(&mut Transition) + 'a>;
    let naming_theirs: [Edit<'_>; 3] = [
        Box::new(|t| {
            t.new_attempts = vec![NewAttempt {
                job_id: their_build,
                attempt: 1,
            }]
        }),
        Box::new(|t| {
            t.ended_attempts = vec![EndedAttempt {
                job_id: their_build,
                attempt: 1,
                fencing_token: None,
                ended_at_ms: 2_000,
                result: Conclusion::Cancelled,
            }]
        }),
        Box::new(|t| t.step_results = vec![step(their_build)]),
    ];
    for name_theirs in &naming_theirs {
        let mut transition = Transition::new(mine.run_id, 1, json!({"events": 1}));
        name_theirs(&mut transition);
        assert_not_found(store.apply_transition(transition).await);
        assert_eq!(snapshots(store, &both).await, before);
    }
    // Rows are updated together: one of another run among them refuses them all.
    let mut transition = Transition::new(mine.run_id, 1, json!({"events": 1}));
    let renamed = |job: Job, name: &str| JobUpdate {
        name: name.to_owned(),
        ..JobUpdate::from_job(&job)
    };
    let my_test = store.get_job(job_id(&mine, 1)).await.unwrap();
    let their_job = store.get_job(their_build).await.unwrap();
    transition.job_updates = vec![renamed(my_test.clone(), "t1"), renamed(their_job, "x")];
    assert_not_found(store.apply_transition(transition).await);
    assert_eq!(snapshots(store, &both).await, before);
    // A job named twice takes its last values.
    let mut transition = Transition::new(mine.run_id, 1, json!({"events": 1}));
    let my_build_row = store.get_job(my_build).await.unwrap();
    transition.job_updates = vec![
        renamed(my_test.clone(), "first"),
        renamed(my_build_row, "build"),
        renamed(my_test, "last"),
    ];
    store.apply_transition(transition).await.unwrap();
    assert_eq!(store.get_job(job_id(&mine, 1)).await.unwrap().name, "last");

    // A job of the run that the transition does not otherwise touch is looked up and found.
    let mut transition = Transition::new(mine.run_id, 2, json!({"events": 2}));
    transition.new_attempts = vec![NewAttempt {
        job_id: my_build,
        attempt: 1,
    }];
    transition.step_results = vec![step(my_build)];
    store.apply_transition(transition).await.unwrap();
    assert_eq!(store.list_attempts(my_build).await.unwrap().len(), 1);
    assert_eq!(store.list_step_results(my_build).await.unwrap().len(), 1);
}

pub async fn a_transition_updates_a_thousand_job_rows(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    // A fan-out's root completing makes every leaf ready: a thousand rows in one transition,
    // more than one statement of the store carries.
    let leaves: Vec<_> = (0..1_000)
        .map(|index| job("leaf", index, JobStatus::Waiting))
        .collect();
    let created = create(store, repo.id, CI, leaves).await;
    let rows = store.list_jobs(created.run_id).await.unwrap();
    let mut transition = Transition::new(created.run_id, 1, json!({"events": 1}));
    transition.job_updates = rows
        .iter()
        .map(|row| JobUpdate {
            status: JobStatus::Queued,
            queued_at_ms: Some(5_000),
            waiting_reasons: json!([]),
            ..JobUpdate::from_job(row)
        })
        .collect();
    store.apply_transition(transition).await.unwrap();
    let rows = store.list_jobs(created.run_id).await.unwrap();
    assert_eq!(rows.len(), 1_000);
    assert!(rows.iter().all(|row| row.status == JobStatus::Queued
        && row.queued_at_ms == Some(5_000)
        && row.waiting_reasons == json!([])));
    assert_eq!(store.queued_jobs().await.unwrap().len(), 1_000);
}

/// What is stored about each of `runs`.
async fn snapshots(
    store: &dyn gantry_store::Store,
    runs: &[RunId],
) -> Vec<crate::fixtures::Snapshot> {
    let mut snapshots = Vec::with_capacity(runs.len());
    for &run_id in runs {
        snapshots.push(snapshot(store, run_id).await);
    }
    snapshots
}

async fn stored_state(store: &dyn gantry_store::Store, run_id: RunId) -> gantry_store::EngineState {
    store.get_engine_state(run_id).await.unwrap()
}

pub async fn of_two_concurrent_transitions_exactly_one_wins(db: &mut TestDb) {
    let store = db.shared();
    let (_, repo) = org_and_repo(&*store, "acme").await;
    let created = create(&*store, repo.id, CI, two_jobs()).await;
    let build_id = job_id(&created, 0);
    let writers = (0..10)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let build_job = store.get_job(build_id).await.unwrap();
                let mut transition = Transition::new(created.run_id, 1, json!({"writer": writer}));
                transition.job_updates = vec![JobUpdate {
                    priority: writer,
                    ..JobUpdate::from_job(&build_job)
                }];
                (writer, store.apply_transition(transition).await)
            })
        })
        .collect::<Vec<_>>();
    let mut winners = Vec::new();
    for writer in writers {
        let (writer, outcome) = writer.await.unwrap();
        match outcome {
            Ok(applied) => {
                assert_eq!(applied.state_version, 2);
                winners.push(writer);
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("writer {writer} failed: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let state = store.get_engine_state(created.run_id).await.unwrap();
    assert_eq!(
        (state.document, state.version),
        (json!({"writer": winners[0]}), 2)
    );
    assert_eq!(store.get_job(build_id).await.unwrap().priority, winners[0]);
}

pub async fn a_failing_transition_changes_nothing(db: &mut TestDb) {
    let (run_id, build_id, test_id, token) = busy_run(db).await;
    let store = db.store();
    let (_, other_repo) = org_and_repo(store, "other").await;
    let other_run = create(store, other_repo.id, CI, two_jobs()).await;
    let before = snapshot(store, run_id).await;

    // Each of these passes the version check and fails on a later statement.
    let full = || full_transition(db, run_id, 2, build_id, test_id, token);
    let foreign_job = store.get_job(job_id(&other_run, 0)).await.unwrap();
    let mut job_of_another_run = full().await;
    job_of_another_run
        .job_updates
        .push(JobUpdate::from_job(&foreign_job));
    assert_not_found(store.apply_transition(job_of_another_run).await);

    let mut duplicate_job = full().await;
    duplicate_job
        .new_jobs
        .push(job("build", 0, JobStatus::Queued));
    assert_conflict(store.apply_transition(duplicate_job).await);

    let mut unknown_attempt = full().await;
    unknown_attempt.step_results[0].attempt = 9;
    assert_not_found(store.apply_transition(unknown_attempt).await);

    let mut unknown_ended = full().await;
    unknown_ended.ended_attempts[0].attempt = 9;
    assert_not_found(store.apply_transition(unknown_ended).await);

    let mut duplicate_attempt = full().await;
    duplicate_attempt.new_attempts.push(NewAttempt {
        job_id: build_id,
        attempt: 1,
    });
    assert_conflict(store.apply_transition(duplicate_attempt).await);

    let mut foreign_step = full().await;
    foreign_step.step_results[0].job_id = foreign_job.id;
    assert_not_found(store.apply_transition(foreign_step).await);

    let mut bad_new_job = full().await;
    bad_new_job.new_jobs[0].job_key.clear();
    assert_invalid(store.apply_transition(bad_new_job).await);

    assert_eq!(snapshot(store, run_id).await, before);
    // And the transition itself is still good.
    let applied = store.apply_transition(full().await).await.unwrap();
    assert_eq!(applied.state_version, 3);
}

/// Ends the job's current attempt as lost and queues it again as the next attempt, as the
/// engine does when a lease expires.
async fn requeue(db: &TestDb, run_id: RunId, job_id: JobId) {
    let store = db.store();
    let job = store.get_job(job_id).await.unwrap();
    let version = store.get_run(run_id).await.unwrap().state_version;
    let mut transition = Transition::new(run_id, version, json!({"requeued": job.attempt}));
    transition.ended_attempts = vec![EndedAttempt {
        job_id,
        attempt: job.attempt,
        fencing_token: None,
        ended_at_ms: 9_000,
        result: Conclusion::Failure,
    }];
    transition.job_updates = vec![JobUpdate {
        status: JobStatus::Queued,
        attempt: job.attempt + 1,
        queued_at_ms: Some(9_000),
        ..JobUpdate::from_job(&job)
    }];
    store.apply_transition(transition).await.unwrap();
}

pub async fn claims_hand_out_increasing_fencing_tokens(db: &mut TestDb) {
    let store = db.store();
    let (org, repo) = org_and_repo(store, "acme").await;
    let mut jobs = two_jobs();
    jobs[0].waiting_reasons = json!([{"reason": "runner", "labels": ["ubuntu-latest"]}]);
    let created = create(store, repo.id, CI, jobs).await;
    let (build_id, test_id) = (job_id(&created, 0), job_id(&created, 1));
    let queued = store.get_job(build_id).await.unwrap();

    let first = store
        .claim_job(build_id, RunnerId(7), lease(2_000))
        .await
        .unwrap();
    assert_eq!(
        (first.job_id, first.run_id, first.attempt),
        (build_id, created.run_id, 1)
    );
    let job = store.get_job(build_id).await.unwrap();
    assert_eq!(
        (job.status, job.started_at_ms),
        (JobStatus::InProgress, Some(2_000))
    );
    // The claim changes the row as `Job::claim` says (callers keep rows by it).
    let mut claimed = queued;
    claimed.claim(2_000);
    assert_eq!(job, claimed);
    let attempts = store.list_attempts(build_id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (
            attempts[0].runner_id,
            attempts[0].fencing_token,
            attempts[0].lease_deadline_ms,
            attempts[0].started_at_ms,
            attempts[0].ended_at_ms
        ),
        (
            Some(RunnerId(7)),
            Some(first.fencing_token),
            Some(62_000),
            Some(2_000),
            None
        )
    );
    let running = store.running_attempts().await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(
        (
            running[0].job_id,
            running[0].run_id,
            running[0].repo_id,
            running[0].org_id,
            running[0].fencing_token
        ),
        (
            build_id,
            created.run_id,
            repo.id,
            org.id,
            first.fencing_token
        )
    );
    assert!(store.queued_jobs().await.unwrap().is_empty());

    // Claiming again, or claiming a job that is not queued, is a conflict.
    assert_conflict(store.claim_job(build_id, RunnerId(8), lease(2_100)).await);
    assert_conflict(store.claim_job(test_id, RunnerId(8), lease(2_100)).await);

    // Each requeue and claim gives a larger token.
    let mut tokens = vec![first.fencing_token];
    for round in 2..=4 {
        requeue(db, created.run_id, build_id).await;
        let claim = store
            .claim_job(build_id, RunnerId(round), lease(10_000 * round))
            .await
            .unwrap();
        assert_eq!(claim.attempt, round);
        tokens.push(claim.fencing_token);
    }
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "{tokens:?}"
    );
    let attempts = store.list_attempts(build_id).await.unwrap();
    assert_eq!(attempts.len(), 4);
    assert!(
        attempts[..3]
            .iter()
            .all(|attempt| attempt.ended_at_ms.is_some())
    );
    let running = store.running_attempts().await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(
        (running[0].attempt, running[0].fencing_token),
        (4, tokens[3])
    );
}

pub async fn concurrent_claims_of_one_job_have_one_winner(db: &mut TestDb) {
    let store = db.shared();
    let (_, repo) = org_and_repo(&*store, "acme").await;
    let created = create(&*store, repo.id, CI, two_jobs()).await;
    let build_id = job_id(&created, 0);
    let claimers = (0..10)
        .map(|runner| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_job(build_id, RunnerId(runner), lease(2_000))
                    .await
            })
        })
        .collect::<Vec<_>>();
    let mut winners = Vec::new();
    for claimer in claimers {
        match claimer.await.unwrap() {
            Ok(claim) => winners.push(claim),
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("claim failed: {other}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let running = store.running_attempts().await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].fencing_token, winners[0].fencing_token);
    assert_eq!(store.list_attempts(build_id).await.unwrap().len(), 1);
}

pub async fn a_stale_fencing_token_is_refused(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, CI, two_jobs()).await;
    let build_id = job_id(&created, 0);
    let old = store
        .claim_job(build_id, RunnerId(1), lease(2_000))
        .await
        .unwrap();
    store
        .renew_lease(build_id, old.fencing_token, 70_000)
        .await
        .unwrap();
    assert_eq!(
        store.running_attempts().await.unwrap()[0].lease_deadline_ms,
        Some(70_000)
    );

    requeue(db, created.run_id, build_id).await;
    let new = store
        .claim_job(build_id, RunnerId(2), lease(10_000))
        .await
        .unwrap();
    let before = snapshot(store, created.run_id).await;

    // The old runner can neither renew nor end anything.
    assert_conflict(store.renew_lease(build_id, old.fencing_token, 99_000).await);
    let version = store.get_run(created.run_id).await.unwrap().state_version;
    let mut late_result = Transition::new(created.run_id, version, json!({"late": true}));
    late_result.ended_attempts = vec![EndedAttempt {
        job_id: build_id,
        attempt: 2,
        fencing_token: Some(old.fencing_token),
        ended_at_ms: 11_000,
        result: Conclusion::Success,
    }];
    assert_conflict(store.apply_transition(late_result).await);
    assert_eq!(snapshot(store, created.run_id).await, before);

    // The new holder renews; once its attempt ends, nobody can.
    store
        .renew_lease(build_id, new.fencing_token, 80_000)
        .await
        .unwrap();
    let running = store.running_attempts().await.unwrap();
    assert_eq!(
        (running[0].fencing_token, running[0].lease_deadline_ms),
        (new.fencing_token, Some(80_000))
    );
    let job = store.get_job(build_id).await.unwrap();
    let mut finished = Transition::new(created.run_id, version, json!({"finished": true}));
    finished.ended_attempts = vec![EndedAttempt {
        job_id: build_id,
        attempt: 2,
        fencing_token: Some(new.fencing_token),
        ended_at_ms: 12_000,
        result: Conclusion::Success,
    }];
    finished.job_updates = vec![JobUpdate {
        status: JobStatus::Completed,
        conclusion: Some(Conclusion::Success),
        completed_at_ms: Some(12_000),
        ..JobUpdate::from_job(&job)
    }];
    store.apply_transition(finished).await.unwrap();
    assert_conflict(store.renew_lease(build_id, new.fencing_token, 90_000).await);
    assert!(store.running_attempts().await.unwrap().is_empty());
}

pub async fn recovery_reads_back_queued_jobs_and_leases_after_reopening(db: &mut TestDb) {
    let (queued, running, states) = {
        let store = db.store();
        let (_, repo) = org_and_repo(store, "acme").await;
        let mut states = Vec::new();
        for index in 0..3 {
            let created = create(
                store,
                repo.id,
                CI,
                vec![
                    job("build", 0, JobStatus::Queued),
                    job("lint", 0, JobStatus::Queued),
                    job("test", 0, JobStatus::Waiting),
                ],
            )
            .await;
            store
                .claim_job(job_id(&created, 0), RunnerId(index), lease(1_000 * index))
                .await
                .unwrap();
            states.push(store.get_engine_state(created.run_id).await.unwrap());
        }
        let queued = store.queued_jobs().await.unwrap();
        let running = store.running_attempts().await.unwrap();
        assert_eq!((queued.len(), running.len()), (3, 3));
        assert!(queued.iter().all(|queued| queued.job.job_key == "lint"));
        assert_eq!(
            running
                .iter()
                .map(|attempt| attempt.lease_deadline_ms)
                .collect::<Vec<_>>(),
            vec![Some(60_000), Some(61_000), Some(62_000)]
        );
        (queued, running, states)
    };

    db.reopen().await;
    let store = db.store();
    assert_eq!(store.queued_jobs().await.unwrap(), queued);
    assert_eq!(store.running_attempts().await.unwrap(), running);
    for state in states {
        assert_eq!(store.get_engine_state(state.run_id).await.unwrap(), state);
    }
}

pub async fn migrations_are_idempotent(db: &mut TestDb) {
    let store = db.store();
    assert_eq!(store.migrate().await.unwrap(), Vec::<i64>::new());
    let (org, _) = org_and_repo(store, "acme").await;
    db.reopen().await;
    let store = db.store();
    assert_eq!(store.migrate().await.unwrap(), Vec::<i64>::new());
    assert_eq!(store.get_organization(org.id).await.unwrap(), org);
}

/// A run created before version 8 kept its spec inside its state document: the migration
/// copies it out (key order intact), so the run keeps its spec once its state is rewritten
/// without it, and leaves runs without a spec alone.
pub async fn migration_8_copies_the_spec_out_of_older_states(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let old = create(store, repo.id, CI, two_jobs()).await;
    let without = create(store, repo.id, CI, two_jobs()).await;
    // Keys out of alphabetical order: the copy must keep the text's order.
    let old_state =
        r#"{"status":"queued","spec":{"zeta":1,"alpha":{"b":[1,2],"a":"x"}},"jobs":[]}"#;
    // Back to the layout before version 8 (and 10, which moved the documents out of the row).
    db.reopen_after(&format!(
        "{BEFORE_VERSION_10}\
         UPDATE workflow_runs SET engine_state = '{old_state}' WHERE id = {old};\
         UPDATE workflow_runs SET engine_state = '{{\"status\":\"queued\"}}' WHERE id = {without};\
         ALTER TABLE workflow_runs DROP COLUMN engine_spec;\
         DELETE FROM schema_migrations WHERE version = 8;",
        old = old.run_id.0,
        without = without.run_id.0,
    ))
    .await;
    let store = db.store();
    let state = store.get_engine_state(old.run_id).await.unwrap();
    // The document is left as it was: the engine still reads a spec inside it.
    assert_eq!(state.document.to_string(), old_state);
    assert_eq!(
        state.spec.map(|spec| spec.to_string()).as_deref(),
        Some(r#"{"zeta":1,"alpha":{"b":[1,2],"a":"x"}}"#)
    );
    let state = store.get_engine_state(without.run_id).await.unwrap();
    assert_eq!(state.spec, None);
}

/// Puts a store of the current version back to version 9's layout: a run's documents in its
/// row, no `run_documents`.
const BEFORE_VERSION_10: &str = "\
    ALTER TABLE workflow_runs ADD COLUMN engine_state TEXT NOT NULL DEFAULT 'null';\
    ALTER TABLE workflow_runs ADD COLUMN engine_spec TEXT;\
    ALTER TABLE workflow_runs ADD COLUMN workflow_source TEXT NOT NULL DEFAULT '';\
    ALTER TABLE workflow_runs ADD COLUMN called_workflows TEXT NOT NULL DEFAULT '{}';\
    UPDATE workflow_runs SET \
        engine_state = (SELECT d.engine_state FROM run_documents AS d WHERE d.run_id = id), \
        engine_spec = (SELECT d.engine_spec FROM run_documents AS d WHERE d.run_id = id), \
        workflow_source = (SELECT d.workflow_source FROM run_documents AS d WHERE d.run_id = id), \
        called_workflows = \
            (SELECT d.called_workflows FROM run_documents AS d WHERE d.run_id = id);\
    DROP TABLE run_documents;\
    DELETE FROM schema_migrations WHERE version = 10;";

/// Version 10 moves what a run never changes (its creation document, compiled workflow,
/// workflow file and called files) out of its row: runs stored before it read back the same,
/// transitions go on from where they were, and new runs are created beside them.
pub async fn migration_10_moves_the_documents_out_of_the_runs_row(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let mut with_calls = new_run(repo.id, CI);
    with_calls.workflow_source = "on: push\njobs:\n  a: {uses: ./b.yml}\n".to_owned();
    with_calls
        .called_workflows
        .insert("./b.yml".to_owned(), "on: workflow_call\n".to_owned());
    // Documents with jobs, so that a transition's job states join them.
    let with_jobs = || {
        BuildRun::new(|run| {
            Ok(gantry_store::RunContent {
                status: RunStatus::Queued,
                engine_state: json!({"run": run.run_id.0, "jobs": [{"job": "a"}, {"job": "b"}]})
                    .into(),
                engine_spec: json!({"spec of run": run.run_id.0}).into(),
                jobs: two_jobs(),
            })
        })
    };
    let called = store
        .create_run(with_calls.clone(), with_jobs(), None)
        .await
        .unwrap();
    let moved = store
        .create_run(new_run(repo.id, CI), with_jobs(), None)
        .await
        .unwrap();
    let change = StateChange {
        run: Some(json!({"status": "in_progress"}).into()),
        jobs: vec![(1, json!({"job": "b"}).into())],
    };
    store
        .apply_transition(Transition::new(moved.run_id, 1, change))
        .await
        .unwrap();
    let before = [
        snapshot(store, called.run_id).await,
        snapshot(store, moved.run_id).await,
    ];

    db.reopen_after(BEFORE_VERSION_10).await;
    let store = db.store();
    let after = [
        snapshot(store, called.run_id).await,
        snapshot(store, moved.run_id).await,
    ];
    assert_eq!(after, before);
    let source = store.workflow_source(called.run_id).await.unwrap();
    assert_eq!(source, with_calls.workflow_source);
    let kept = store.called_workflows(called.run_id).await.unwrap();
    assert_eq!(kept, with_calls.called_workflows);

    let next = StateChange {
        run: Some(json!({"status": "completed"}).into()),
        jobs: vec![(0, json!({"job": "a", "done": true}).into())],
    };
    store
        .apply_transition(Transition::new(moved.run_id, 2, next))
        .await
        .unwrap();
    let state = store.get_engine_state(moved.run_id).await.unwrap();
    assert_eq!(state.version, 3);
    assert_eq!(
        state.document,
        json!({"status": "completed", "jobs": [{"job": "a", "done": true}, {"job": "b"}]})
    );
    let later = create(store, repo.id, CI, two_jobs()).await;
    let state = store.get_engine_state(later.run_id).await.unwrap();
    assert_eq!(state.document["run"], json!(later.run_id.0));
}

/// The version that moved a run's state version into `run_versions` (PostgreSQL 15, SQLite
/// 14) keeps every run's version, and splits a whole document (fields and `jobs`) that a run's
/// last transition wrote into its parts, so that the job states written beside it later are
/// read: its jobs win over older job states stored beside it.
pub async fn migration_to_run_versions_keeps_versions_and_splits_whole_documents(db: &mut TestDb) {
    let job = |id: &str, events: u32| json!({"id": id, "events": events});
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = json!({"status": "queued", "jobs": [job("a", 0), job("b", 0)]});
    let with_jobs = || build_with_document(&created);
    let parts = store
        .create_run(new_run(repo.id, CI), with_jobs(), None)
        .await
        .unwrap();
    let whole = store
        .create_run(new_run(repo.id, CI), with_jobs(), None)
        .await
        .unwrap();
    let change = StateChange {
        run: Some(json!({"status": "in_progress"}).into()),
        jobs: vec![(1, job("b", 1).into())],
    };
    store
        .apply_transition(Transition::new(parts.run_id, 1, change))
        .await
        .unwrap();
    let before = snapshot(store, parts.run_id).await;
    let whole_document = json!({"status": "in_progress", "jobs": [job("a", 3), job("b", 3)]});

    // Back to the layout before: the version in the run's row, and a whole document beside an
    // older job state, as a writer of whole documents left them.
    db.reopen_after(&format!(
        "ALTER TABLE workflow_runs ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;\
         UPDATE workflow_runs SET state_version = \
             (SELECT v.state_version FROM run_versions AS v WHERE v.run_id = id);\
         DROP TABLE run_versions;\
         UPDATE workflow_runs SET engine_run = '{whole_document}' WHERE id = {whole};\
         INSERT INTO engine_jobs (run_id, job_index, state) VALUES ({whole}, 0, '{older}');\
         DELETE FROM schema_migrations WHERE name = 'run_versions';",
        whole = whole.run_id.0,
        older = job("a", 1),
    ))
    .await;
    let store = db.store();
    assert_eq!(snapshot(store, parts.run_id).await, before);
    let state = stored_state(store, whole.run_id).await;
    assert_eq!((&state.document, state.version), (&whole_document, 1));

    // A transition writing a job and not the run's fields: the rest of the document stays.
    let change = StateChange {
        run: None,
        jobs: vec![(1, job("b", 4).into())],
    };
    store
        .apply_transition(Transition::new(whole.run_id, 1, change))
        .await
        .unwrap();
    let state = stored_state(store, whole.run_id).await;
    assert_eq!(
        (state.document, state.version),
        (
            json!({"status": "in_progress", "jobs": [job("a", 3), job("b", 4)]}),
            2
        )
    );
    let later = create(store, repo.id, CI, two_jobs()).await;
    assert_eq!(stored_state(store, later.run_id).await.version, 1);
}

pub async fn a_priority_change_moves_the_state_version_and_spares_completed_jobs(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let created = create(store, repo.id, CI, two_jobs()).await;
    let build_id = job_id(&created, 0);
    let test_id = job_id(&created, 1);
    let before = store.get_run(created.run_id).await.unwrap();
    let state_before = store.get_engine_state(created.run_id).await.unwrap();

    let changed = store.set_job_priority(build_id, 7).await.unwrap();
    assert_eq!(changed.priority, 7);
    assert_eq!(store.get_job(build_id).await.unwrap().priority, 7);
    // A waiting job's priority may change too; negative values are allowed.
    assert_eq!(
        store.set_job_priority(test_id, -3).await.unwrap().priority,
        -3
    );
    // The document is untouched, but its version moved once per change, so a transition
    // computed from the old rows is refused.
    let state_after = store.get_engine_state(created.run_id).await.unwrap();
    assert_eq!(state_after.document, state_before.document);
    assert_eq!(state_after.version, before.state_version + 2);
    let stale = Transition::new(created.run_id, before.state_version, json!({"stale": true}));
    assert_conflict(store.apply_transition(stale).await);
    // The queue is rebuilt with the new priority.
    let queued = store.queued_jobs().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].job.priority, 7);

    // A completed job keeps its priority: a conflict that changes nothing.
    let mut finish = Transition::new(created.run_id, state_after.version, json!({"done": 1}));
    let build_job = store.get_job(build_id).await.unwrap();
    finish.job_updates = vec![JobUpdate {
        status: JobStatus::Completed,
        conclusion: Some(Conclusion::Success),
        completed_at_ms: Some(2_000),
        ..JobUpdate::from_job(&build_job)
    }];
    store.apply_transition(finish).await.unwrap();
    let frozen = snapshot(store, created.run_id).await;
    assert_conflict(store.set_job_priority(build_id, 1).await);
    assert_eq!(snapshot(store, created.run_id).await, frozen);
    assert_not_found(store.set_job_priority(JobId(999_999), 1).await);
}
