//! Integration tests of `gantry-store`: one conformance suite, run against every backend.
//!
//! Each test of `conformance` is written once against `&dyn Store` and runs twice: on a fresh
//! SQLite file in a temporary directory, and on PostgreSQL at `GANTRY_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) in a fresh schema of its own, dropped
//! afterwards. PostgreSQL is required when `CI=true`; elsewhere an unreachable server skips
//! the PostgreSQL half with a loud message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod batch_conformance;
mod conformance;
mod fixtures;
mod harness;
mod invalid_run_conformance;
mod runner_conformance;
mod source_conformance;

/// Declares each conformance test once per backend: `sqlite::name` and `postgres::name`.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut db = crate::harness::TestDb::sqlite().await;
                    crate::conformance_of::$name(&mut db).await;
                    db.finish().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(mut db) = crate::harness::TestDb::postgres().await else {
                        return;
                    };
                    crate::conformance_of::$name(&mut db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

/// Both halves of the suite under one name, for the macro.
mod conformance_of {
    pub use crate::batch_conformance::*;
    pub use crate::conformance::*;
    pub use crate::invalid_run_conformance::*;
    pub use crate::runner_conformance::*;
    pub use crate::source_conformance::*;
}

conformance_tests!(
    a_claim_in_a_transition_leaves_its_row_as_job_claim_says,
    transitions_of_several_runs_apply_together_each_answered_as_alone,
    an_invalid_workflow_file_is_recorded_as_a_failed_run,
    an_invalid_run_without_errors_is_refused_and_stores_nothing,
    repository_sources_are_set_replaced_and_read,
    runners_register_with_valid_tokens_only,
    runners_inherit_their_tokens_group_and_repositories,
    step_reports_follow_the_steps_order_under_the_latest_token,
    logs_append_without_gaps_or_duplicates,
    organizations_and_repositories_round_trip,
    duplicate_names_conflict,
    malformed_input_is_invalid,
    unknown_ids_are_not_found_and_change_nothing,
    creating_a_run_stores_it_with_its_jobs,
    a_run_keeps_its_workflow_and_the_workflows_it_calls,
    run_numbers_count_per_workflow,
    concurrent_creators_get_distinct_gapless_run_numbers,
    refused_creations_among_concurrent_ones_spare_the_others,
    an_idempotency_key_returns_the_same_run,
    concurrent_creators_with_one_idempotency_key_create_one_run,
    a_refused_creation_stores_nothing,
    listing_runs_pages_newest_first,
    a_transition_changes_run_and_jobs_together,
    a_stale_transition_changes_nothing,
    a_transition_writes_the_run_fields_and_only_the_jobs_it_changed,
    attempts_and_steps_of_another_runs_job_are_refused,
    a_transition_updates_a_thousand_job_rows,
    of_two_concurrent_transitions_exactly_one_wins,
    a_failing_transition_changes_nothing,
    claims_hand_out_increasing_fencing_tokens,
    concurrent_claims_of_one_job_have_one_winner,
    a_stale_transition_among_concurrent_ones_spares_the_others,
    a_refused_claim_among_concurrent_ones_spares_the_others,
    a_batch_whose_commit_fails_answers_every_caller_with_an_error,
    a_claim_in_a_transition_commits_with_it_or_not_at_all,
    a_stale_fencing_token_is_refused,
    a_priority_change_moves_the_state_version_and_spares_completed_jobs,
    recovery_reads_back_queued_jobs_and_leases_after_reopening,
    migrations_are_idempotent,
    migration_8_copies_the_spec_out_of_older_states,
    migration_10_moves_the_documents_out_of_the_runs_row,
    migration_to_run_versions_keeps_versions_and_splits_whole_documents,
);
