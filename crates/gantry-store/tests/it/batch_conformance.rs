//! Conformance of group commit beyond creations, and of a claim made inside a transition:
//! concurrent transitions and claims share transactions, a refused one spares its batch
//! mates, a failed commit answers everyone with an error, and a transition's claim commits
//! with it or not at all.

use gantry_store::{
    ClaimInTransition, JobStatus, JobUpdate, Lease, RunId, RunnerId, Store, StoreError, Transition,
};
use serde_json::json;

use crate::fixtures::{
    assert_conflict, assert_not_found, create, job_id, org_and_repo, snapshot, two_jobs,
};
use crate::harness::TestDb;

const CI: &str = ".github/workflows/ci.yml";

fn lease(now_ms: i64) -> Lease {
    Lease {
        now_ms,
        deadline_ms: now_ms + 60_000,
    }
}

/// `count` runs of two jobs (`build` queued, `test` waiting), each at state version 1.
async fn runs(store: &dyn Store, org: &str, count: usize) -> Vec<gantry_store::CreatedRun> {
    let (_, repo) = org_and_repo(store, org).await;
    let mut created = Vec::with_capacity(count);
    for _ in 0..count {
        created.push(create(store, repo.id, CI, two_jobs()).await);
    }
    created
}

/// Concurrent transitions of different runs (sharing transactions where the backend batches
/// them): a stale one among them is refused with the conflict it gets alone and changes
/// nothing; the others all commit.
pub async fn a_stale_transition_among_concurrent_ones_spares_the_others(db: &mut TestDb) {
    let store = db.shared();
    let created = runs(&*store, "acme", 30).await;
    let writers = created
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let store = store.clone();
            let run_id = run.run_id;
            tokio::spawn(async move {
                // Every third is computed from a version the run never had.
                let version = if index % 3 == 0 { 7 } else { 1 };
                let transition = Transition::new(run_id, version, json!({"writer": index}));
                (index, run_id, store.apply_transition(transition).await)
            })
        })
        .collect::<Vec<_>>();
    for writer in writers {
        let (index, run_id, outcome) = writer.await.unwrap();
        let stored = store.get_engine_state(run_id).await.unwrap();
        match (index % 3, outcome) {
            (0, Err(StoreError::Conflict { what })) => {
                assert_eq!(what, format!("run {run_id} is at state version 1, not 7"));
                assert_eq!(stored.version, 1);
                assert_ne!(stored.document, json!({"writer": index}));
            }
            (_, Ok(applied)) if index % 3 != 0 => {
                assert_eq!(applied.state_version, 2);
                assert_eq!(
                    (stored.document, stored.version),
                    (json!({"writer": index}), 2)
                );
            }
            (_, other) => panic!("writer {index}: unexpected {other:?}"),
        }
    }
}

/// Concurrent claims of different jobs (sharing transactions where the backend batches them):
/// a claim of a job that is not queued is refused alone, and the others get their tokens.
pub async fn a_refused_claim_among_concurrent_ones_spares_the_others(db: &mut TestDb) {
    let store = db.shared();
    let created = runs(&*store, "acme", 20).await;
    let claimers = created
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let store = store.clone();
            // Every other claims the waiting `test` job, which is not queued.
            let job = job_id(run, index % 2);
            tokio::spawn(async move {
                let runner = RunnerId(i64::try_from(index).unwrap());
                (index, job, store.claim_job(job, runner, lease(2_000)).await)
            })
        })
        .collect::<Vec<_>>();
    for claimer in claimers {
        let (index, job, outcome) = claimer.await.unwrap();
        let attempts = store.list_attempts(job).await.unwrap();
        match (index % 2, outcome) {
            (1, Err(StoreError::Conflict { what })) => {
                assert_eq!(what, format!("job {job} is waiting, not queued"));
                assert!(attempts.is_empty(), "{attempts:?}");
            }
            (0, Ok(claim)) => {
                assert_eq!((claim.job_id, claim.attempt), (job, 1));
                assert_eq!(attempts.len(), 1);
                assert_eq!(attempts[0].fencing_token, Some(claim.fencing_token));
            }
            (_, other) => panic!("claimer {index}: unexpected {other:?}"),
        }
    }
    assert_eq!(store.running_attempts().await.unwrap().len(), 10);
}

/// A transition whose commit fails (a deferred constraint, checked only at commit) takes its
/// whole batch down: every caller of that batch gets an error and nothing of it is stored,
/// while callers of other batches commit as usual. Where transitions are not batched
/// (PostgreSQL), only the doomed one fails.
pub async fn a_batch_whose_commit_fails_answers_every_caller_with_an_error(db: &mut TestDb) {
    let batches = db.batches_run_changes();
    db.fail_commits_of_doomed_states().await;
    let store = db.shared();
    let mut shared_failures = 0;
    for round in 0..10 {
        let created = runs(&*store, &format!("org{round}"), 30).await;
        let writers = created
            .iter()
            .enumerate()
            .map(|(index, run)| {
                let store = store.clone();
                let run_id = run.run_id;
                tokio::spawn(async move {
                    let document = if index == 15 {
                        json!({"doomed": true})
                    } else {
                        json!({"writer": index})
                    };
                    let transition = Transition::new(run_id, 1, document);
                    (index, run_id, store.apply_transition(transition).await)
                })
            })
            .collect::<Vec<_>>();
        for writer in writers {
            let (index, run_id, outcome) = writer.await.unwrap();
            let stored = store.get_engine_state(run_id).await.unwrap();
            match outcome {
                Ok(applied) => {
                    assert_ne!(index, 15, "the doomed transition committed");
                    assert_eq!((applied.state_version, stored.version), (2, 2));
                }
                Err(StoreError::BatchFailed { cause }) => {
                    assert!(cause.contains("commit failed"), "{cause}");
                    assert_eq!(stored.version, 1, "writer {index} failed but was stored");
                    if index != 15 {
                        shared_failures += 1;
                    }
                }
                // Alone in its batch, the doomed transition gets its own commit's error.
                Err(StoreError::Database(_)) if index == 15 => assert_eq!(stored.version, 1),
                Err(other) => panic!("writer {index}: unexpected {other:?}"),
            }
        }
        if !batches {
            assert_eq!(
                shared_failures, 0,
                "a transition failed with another's commit"
            );
            return;
        }
        if shared_failures > 0 {
            return;
        }
    }
    panic!("in ten rounds the doomed transition never shared a batch");
}

/// The run's `build` job (queued) moved to in progress, as the engine's "job started" would.
async fn started(
    store: &dyn Store,
    run_id: RunId,
    version: i64,
    build: gantry_store::JobId,
) -> Transition {
    let row = store.get_job(build).await.unwrap();
    let mut transition = Transition::new(run_id, version, json!({"started": "build"}));
    transition.job_updates = vec![JobUpdate {
        status: JobStatus::InProgress,
        started_at_ms: Some(2_000),
        ..JobUpdate::from_job(&row)
    }];
    transition
}

/// A transition with claims claims the jobs (attempt, runner, token, lease) and changes the
/// run in one commit; refused — a job not queued, at another attempt, of another run, or
/// the state version stale, even when another claim of it would do — it changes nothing at
/// all.
pub async fn a_claim_in_a_transition_commits_with_it_or_not_at_all(db: &mut TestDb) {
    let store = db.store();
    let created = runs(store, "acme", 2).await;
    let (run, other) = (&created[0], &created[1]);
    let (build, test) = (job_id(run, 0), job_id(run, 1));
    let claim = |job_id, attempt| ClaimInTransition {
        job_id,
        attempt,
        runner_id: RunnerId(4),
        lease: lease(2_000),
    };
    let before = snapshot(store, run.run_id).await;
    let refusals = [
        (claim(test, 1), 1, "not queued"),
        (claim(build, 2), 1, "attempt"),
        (claim(job_id(other, 0), 1), 1, "of another run"),
        (claim(build, 1), 5, "stale version"),
    ];
    let refusals = refusals
        .into_iter()
        .map(|(wanted, version, why)| (vec![wanted], version, why))
        .chain([(vec![claim(build, 1), claim(test, 1)], 1, "one of two")]);
    for (wanted, version, why) in refusals {
        let mut transition = started(store, run.run_id, version, build).await;
        transition.claims = wanted;
        let outcome = store.apply_transition(transition).await;
        if why == "of another run" {
            assert_not_found(outcome);
        } else {
            assert_conflict(outcome);
        }
        assert_eq!(snapshot(store, run.run_id).await, before, "{why}");
    }
    assert!(store.running_attempts().await.unwrap().is_empty());

    let mut transition = started(store, run.run_id, 1, build).await;
    transition.claims = vec![claim(build, 1)];
    let applied = store.apply_transition(transition).await.unwrap();
    assert_eq!(applied.state_version, 2);
    let [token] = applied.claims[..] else {
        panic!("one claim asked, {:?} made", applied.claims);
    };
    assert_eq!(
        (token.job_id, token.run_id, token.attempt),
        (build, run.run_id, 1)
    );
    let after = snapshot(store, run.run_id).await;
    assert_eq!(after.state.document, json!({"started": "build"}));
    assert_eq!(after.jobs[0].status, JobStatus::InProgress);
    let running = &after.running;
    assert_eq!(running.len(), 1);
    assert_eq!(
        (
            running[0].job_id,
            running[0].runner_id,
            running[0].fencing_token,
            running[0].lease_deadline_ms
        ),
        (build, Some(RunnerId(4)), token.fencing_token, Some(62_000))
    );
    // The token is the job's latest: a plain claim is now refused, a renewal accepted.
    assert_conflict(store.claim_job(build, RunnerId(9), lease(3_000)).await);
    store
        .renew_lease(build, token.fencing_token, 90_000)
        .await
        .unwrap();

    // Two queued jobs claimed by one transition: each gets its own token and attempt row.
    let other_build = job_id(other, 0);
    let queue_test = {
        let row = store.get_job(job_id(other, 1)).await.unwrap();
        let mut transition = Transition::new(other.run_id, 1, json!({"queued": "test"}));
        transition.job_updates = vec![JobUpdate {
            status: JobStatus::Queued,
            ..JobUpdate::from_job(&row)
        }];
        transition
    };
    store.apply_transition(queue_test).await.unwrap();
    let mut both = Transition::new(other.run_id, 2, json!({"started": "both"}));
    both.claims = vec![claim(job_id(other, 1), 1), claim(other_build, 1)];
    let applied = store.apply_transition(both).await.unwrap();
    let claimed: Vec<_> = applied
        .claims
        .iter()
        .map(|claim| (claim.job_id, claim.run_id, claim.attempt))
        .collect();
    assert_eq!(
        claimed,
        [
            (job_id(other, 1), other.run_id, 1),
            (other_build, other.run_id, 1)
        ]
    );
    let running = store.running_attempts().await.unwrap();
    for claim in &applied.claims {
        let attempt = running
            .iter()
            .find(|attempt| attempt.job_id == claim.job_id);
        assert_eq!(
            attempt.map(|attempt| (attempt.runner_id, attempt.fencing_token)),
            Some((Some(RunnerId(4)), claim.fencing_token))
        );
    }
}

/// The run's changes a transition of the engine writes: its columns (in progress from
/// 2,000), its fields as `document`, and `job` moved to `status`.
async fn moved(
    store: &dyn Store,
    run_id: RunId,
    version: i64,
    document: serde_json::Value,
    job: (gantry_store::JobId, JobStatus),
) -> Transition {
    let row = store.get_job(job.0).await.unwrap();
    let mut transition = Transition::new(run_id, version, document);
    transition.run = Some(gantry_store::RunUpdate {
        attempt: 1,
        status: gantry_store::RunStatus::InProgress,
        conclusion: None,
        started_at_ms: Some(2_000),
        completed_at_ms: None,
    });
    transition.job_updates = vec![JobUpdate {
        status: job.1,
        started_at_ms: Some(2_000),
        ..JobUpdate::from_job(&row)
    }];
    transition
}

/// What a refused transition must leave alone: its run's row, state, jobs and attempts.
async fn run_snapshot(
    store: &dyn Store,
    run_id: RunId,
) -> (
    gantry_store::WorkflowRun,
    gantry_store::EngineState,
    Vec<gantry_store::Job>,
    Vec<Vec<gantry_store::JobAttempt>>,
) {
    let snapshot = snapshot(store, run_id).await;
    (
        snapshot.run,
        snapshot.state,
        snapshot.jobs,
        snapshot.attempts,
    )
}

/// Transitions of several runs applied in one call (claims, then completions): each is
/// answered as it would be alone (a stale version, a claim of a job not queued, an attempt
/// ended with another token are refused with their own errors and change nothing of their
/// runs), and the others all commit with their claims, rows and ended attempts.
pub async fn transitions_of_several_runs_apply_together_each_answered_as_alone(db: &mut TestDb) {
    let store = db.store();
    let created = runs(store, "acme", 6).await;
    let claim = |job_id| ClaimInTransition {
        job_id,
        attempt: 1,
        runner_id: RunnerId(3),
        lease: lease(2_000),
    };
    let stale_run = created[2].run_id;
    let not_queued_run = created[4].run_id;
    let before_stale = run_snapshot(store, stale_run).await;
    let before_not_queued = run_snapshot(store, not_queued_run).await;
    let mut starts = Vec::new();
    for (index, run) in created.iter().enumerate() {
        let build = job_id(run, 0);
        let version = if run.run_id == stale_run { 5 } else { 1 };
        let mut transition = moved(
            store,
            run.run_id,
            version,
            json!({"started": index}),
            (build, JobStatus::InProgress),
        )
        .await;
        // One run claims its waiting `test` job instead.
        let claimed = if run.run_id == not_queued_run {
            job_id(run, 1)
        } else {
            build
        };
        transition.claims = vec![claim(claimed)];
        starts.push(transition);
    }
    let answers = store.apply_transitions(starts).await.unwrap();
    assert_eq!(answers.len(), created.len());
    let mut tokens = Vec::new();
    for ((index, run), answer) in created.iter().enumerate().zip(answers) {
        match answer {
            Err(StoreError::Conflict { what }) if run.run_id == stale_run => assert_eq!(
                what,
                format!("run {stale_run} is at state version 1, not 5")
            ),
            Err(StoreError::Conflict { what }) if run.run_id == not_queued_run => {
                assert_eq!(
                    what,
                    format!("job {} is waiting, not queued", job_id(run, 1))
                );
            }
            Ok(applied) => {
                assert_eq!(applied.state_version, 2, "run {index}");
                let [made] = applied.claims[..] else {
                    panic!("run {index}: {:?}", applied.claims);
                };
                assert_eq!(
                    (made.job_id, made.run_id, made.attempt),
                    (job_id(run, 0), run.run_id, 1)
                );
                let after = snapshot(store, run.run_id).await;
                assert_eq!(after.state.document, json!({"started": index}));
                assert_eq!(after.state.version, 2);
                assert_eq!(after.run.status, gantry_store::RunStatus::InProgress);
                assert_eq!(after.jobs[0].status, JobStatus::InProgress);
                assert_eq!(after.attempts[0].len(), 1);
                assert_eq!(
                    (
                        after.attempts[0][0].runner_id,
                        after.attempts[0][0].fencing_token
                    ),
                    (Some(RunnerId(3)), Some(made.fencing_token))
                );
                tokens.push((run, made.fencing_token));
            }
            other => panic!("run {index}: unexpected {other:?}"),
        }
    }
    assert_eq!(tokens.len(), 4);
    assert_eq!(run_snapshot(store, stale_run).await, before_stale);
    assert_eq!(run_snapshot(store, not_queued_run).await, before_not_queued);

    // The claimed jobs complete together; one reports with a token it never held.
    let forged = tokens[1].0.run_id;
    let before_forged = run_snapshot(store, forged).await;
    let mut completions = Vec::new();
    for (run, token) in &tokens {
        let build = job_id(run, 0);
        let mut transition = moved(
            store,
            run.run_id,
            2,
            json!({"completed": run.run_id.0}),
            (build, JobStatus::Completed),
        )
        .await;
        let token = if run.run_id == forged {
            gantry_store::FencingToken(token.0 + 100)
        } else {
            *token
        };
        transition.ended_attempts = vec![gantry_store::EndedAttempt {
            job_id: build,
            attempt: 1,
            fencing_token: Some(token),
            ended_at_ms: 3_000,
            result: gantry_store::Conclusion::Success,
        }];
        completions.push(transition);
    }
    let answers = store.apply_transitions(completions).await.unwrap();
    for ((run, _), answer) in tokens.iter().zip(answers) {
        let after = snapshot(store, run.run_id).await;
        if run.run_id == forged {
            assert_conflict(answer);
            continue;
        }
        assert_eq!(answer.unwrap().state_version, 3);
        assert_eq!(after.jobs[0].status, JobStatus::Completed);
        assert_eq!(
            (
                after.attempts[0][0].ended_at_ms,
                after.attempts[0][0].result
            ),
            (Some(3_000), Some(gantry_store::Conclusion::Success))
        );
    }
    assert_eq!(run_snapshot(store, forged).await, before_forged);
    assert_eq!(store.running_attempts().await.unwrap().len(), 1);

    // With nothing to refuse, the batch goes together: the two runs refused above start
    // and the forged one completes with its own token.
    let mut batch = Vec::new();
    for run_id in [stale_run, not_queued_run] {
        let run = created.iter().find(|run| run.run_id == run_id).unwrap();
        let mut transition = moved(
            store,
            run_id,
            1,
            json!({"started": "late"}),
            (job_id(run, 0), JobStatus::InProgress),
        )
        .await;
        transition.claims = vec![claim(job_id(run, 0))];
        batch.push(transition);
    }
    let (forged_run, forged_token) = tokens[1];
    let mut completion = moved(
        store,
        forged,
        2,
        json!({"completed": "late"}),
        (job_id(forged_run, 0), JobStatus::Completed),
    )
    .await;
    completion.ended_attempts = vec![gantry_store::EndedAttempt {
        job_id: job_id(forged_run, 0),
        attempt: 1,
        fencing_token: Some(forged_token),
        ended_at_ms: 4_000,
        result: gantry_store::Conclusion::Failure,
    }];
    batch.push(completion);
    let answers = store.apply_transitions(batch).await.unwrap();
    let versions: Vec<i64> = answers
        .into_iter()
        .map(|answer| answer.unwrap().state_version)
        .collect();
    assert_eq!(versions, [2, 2, 3]);
    let running = store.running_attempts().await.unwrap();
    let mut running: Vec<_> = running.iter().map(|attempt| attempt.run_id).collect();
    running.sort_unstable();
    assert_eq!(running, [stale_run, not_queued_run]);
    let forged_after = snapshot(store, forged).await;
    assert_eq!(forged_after.state.document, json!({"completed": "late"}));
    assert_eq!(
        forged_after.attempts[0][0].result,
        Some(gantry_store::Conclusion::Failure)
    );
}

/// A transition that claims a job and writes no row of its own leaves the job's row as
/// `Job::claim` says (in progress, started at the claim, waiting on nothing), whether the
/// runs' transitions go together or one goes alone: callers keep their rows by it instead of
/// writing the row a second time.
pub async fn a_claim_in_a_transition_leaves_its_row_as_job_claim_says(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let mut created = Vec::new();
    for _ in 0..4 {
        let mut jobs = two_jobs();
        jobs[0].waiting_reasons = json!([{"reason": "runner", "labels": ["ubuntu-latest"]}]);
        created.push(create(store, repo.id, CI, jobs).await);
    }
    let claimed_alone = created.pop().expect("four runs");
    let claim_of = |run: &gantry_store::CreatedRun| {
        let mut transition = Transition::new(run.run_id, 1, json!({"claimed": true}));
        transition.claims = vec![ClaimInTransition {
            job_id: job_id(run, 0),
            attempt: 1,
            runner_id: RunnerId(3),
            lease: lease(2_500),
        }];
        transition
    };
    let mut expected = Vec::new();
    for run in created.iter().chain([&claimed_alone]) {
        let mut row = store.get_job(job_id(run, 0)).await.unwrap();
        row.claim(2_500);
        expected.push(row);
    }
    let answers = store
        .apply_transitions(created.iter().map(claim_of).collect())
        .await
        .unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    store
        .apply_transition(claim_of(&claimed_alone))
        .await
        .unwrap();
    for (run, expected) in created.iter().chain([&claimed_alone]).zip(expected) {
        assert_eq!(store.get_job(job_id(run, 0)).await.unwrap(), expected);
    }
}
