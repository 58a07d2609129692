//! Runs of workflow files that failed to load: stored ended and failed with their errors,
//! numbered among the workflow's other runs, idempotent, and refused without errors.

use gantry_store::{Conclusion, RunStatus};

use crate::fixtures::{assert_invalid, build, create, new_run, org_and_repo, two_jobs};
use crate::harness::TestDb;

const CI: &str = ".github/workflows/ci.yml";

fn errors() -> Vec<String> {
    vec![
        format!("{CI}:3:5: unknown key `job`"),
        format!("{CI}:7:1: `runs-on` is missing"),
    ]
}

pub async fn an_invalid_workflow_file_is_recorded_as_a_failed_run(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    let first = create(store, repo.id, CI, two_jobs()).await;

    let invalid = store
        .create_invalid_run(new_run(repo.id, CI), errors(), Some("delivery-1"))
        .await
        .unwrap();
    assert!(invalid.created);
    assert!(invalid.job_ids.is_empty());
    // It takes the workflow's next number, and the next valid run the one after.
    assert_eq!(invalid.run_number, first.run_number + 1);
    assert_eq!(
        create(store, repo.id, CI, two_jobs()).await.run_number,
        invalid.run_number + 1
    );

    let run = store.get_run(invalid.run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.conclusion, Some(Conclusion::Failure));
    assert_eq!(run.completed_at_ms, Some(run.created_at_ms));
    assert_eq!(run.started_at_ms, None);
    assert_eq!(run.workflow_errors, errors());
    assert!(store.list_jobs(invalid.run_id).await.unwrap().is_empty());
    let state = store.get_engine_state(invalid.run_id).await.unwrap();
    assert_eq!(
        (state.document, state.spec),
        (serde_json::Value::Null, None)
    );
    // Valid runs carry no errors.
    let valid = store.get_run(first.run_id).await.unwrap();
    assert!(valid.workflow_errors.is_empty());

    // The same delivery again finds the run, whichever way it is asked.
    let again = store
        .create_invalid_run(new_run(repo.id, CI), errors(), Some("delivery-1"))
        .await
        .unwrap();
    assert_eq!((again.run_id, again.created), (invalid.run_id, false));
    let as_valid = store
        .create_run(new_run(repo.id, CI), build(two_jobs()), Some("delivery-1"))
        .await
        .unwrap();
    assert_eq!((as_valid.run_id, as_valid.created), (invalid.run_id, false));
}

pub async fn an_invalid_run_without_errors_is_refused_and_stores_nothing(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    assert_invalid(
        store
            .create_invalid_run(new_run(repo.id, CI), Vec::new(), None)
            .await,
    );
    assert_invalid(
        store
            .create_invalid_run(new_run(repo.id, CI), vec![String::new()], None)
            .await,
    );
    // No run number was spent.
    assert_eq!(create(store, repo.id, CI, two_jobs()).await.run_number, 1);
}
