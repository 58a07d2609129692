//! How the batch paths write job rows: job updates as the rows of a multi-row statement, and a
//! claimed job whose row the same transition updates claimed and updated by one statement.
//!
//! The engine's "job started" follows every claim, and its job update rewrites the row the
//! claim has just changed (status, start time, waiting reasons). Written one after the other,
//! that is two row writes of the same job in one transaction: two B-tree record rewrites on
//! SQLite, two row versions (the first never heap-only, its status is in a partial index's
//! predicate) on PostgreSQL. Together they are one write that leaves the row as the two
//! would: the update's values, the next fencing token, and only if the job was queued at the
//! claimed attempt.
//!
//! A transition alone (`transition_in`) keeps the two statements: it is the path that finds
//! and names the cause of a refusal.

use super::multi_row::Rows;
use super::{require_at_least, require_text, to_json};
use crate::error::StoreError;
use crate::ids::RunId;
use crate::model::{ClaimInTransition, JobUpdate, Transition};

/// A job update checked and with its JSON columns encoded, ready to be a row.
#[derive(Debug)]
pub(super) struct EncodedUpdate<'a> {
    pub run_id: RunId,
    pub update: &'a JobUpdate,
    runs_on: String,
    waiting_reasons: String,
    outputs: String,
}

impl<'a> EncodedUpdate<'a> {
    /// Checks `update` (of a job of run `run_id`) and encodes its JSON columns.
    pub fn new(run_id: RunId, update: &'a JobUpdate) -> Result<EncodedUpdate<'a>, StoreError> {
        require_text("job name", &update.name)?;
        require_at_least("job attempt", update.attempt, 1)?;
        Ok(EncodedUpdate {
            run_id,
            update,
            runs_on: to_json("runs-on labels", &update.runs_on)?,
            waiting_reasons: to_json("waiting reasons", &update.waiting_reasons)?,
            outputs: to_json("outputs", &update.outputs)?,
        })
    }

    /// The rows of `updates`: the columns `queries::update_jobs` reads from its table `v`.
    pub fn rows<'r>(updates: &'r [EncodedUpdate<'a>]) -> Rows<'r> {
        let all = || updates.iter().map(|encoded| encoded.update);
        Rows::new()
            .int("run_id", updates.iter().map(|encoded| encoded.run_id.0))
            .int("id", all().map(|update| update.job_id.0))
            .text("name", all().map(|update| update.name.as_str()))
            .text("status", all().map(|update| update.status.as_str()))
            .maybe_text(
                "conclusion",
                all().map(|update| update.conclusion.map(|conclusion| conclusion.as_str())),
            )
            .int("attempt", all().map(|update| update.attempt))
            .text(
                "runs_on",
                updates.iter().map(|encoded| encoded.runs_on.as_str()),
            )
            .text(
                "waiting_reasons",
                updates
                    .iter()
                    .map(|encoded| encoded.waiting_reasons.as_str()),
            )
            .text(
                "outputs",
                updates.iter().map(|encoded| encoded.outputs.as_str()),
            )
            .int("priority", all().map(|update| update.priority))
            .maybe_int("queued_at_ms", all().map(|update| update.queued_at_ms))
            .maybe_int("started_at_ms", all().map(|update| update.started_at_ms))
            .maybe_int(
                "completed_at_ms",
                all().map(|update| update.completed_at_ms),
            )
    }

    /// Its JSON columns, encoded: runs-on labels, waiting reasons and outputs.
    pub fn json(&self) -> [&String; 3] {
        [&self.runs_on, &self.waiting_reasons, &self.outputs]
    }
}

/// A transition's claims and job updates, as the batch paths write them.
#[derive(Debug, Default)]
pub(super) struct ClaimWrites<'a> {
    /// Every claim in the transition's order, with the update written by the same statement
    /// when there is one.
    pub claims: Vec<(&'a ClaimInTransition, Option<&'a JobUpdate>)>,
    /// The updates left to write after the claims, in the transition's order.
    pub updates: Vec<&'a JobUpdate>,
}

impl<'a> ClaimWrites<'a> {
    /// Pairs each claim with the update of its job, if the transition updates that job
    /// exactly once (a job updated twice keeps its updates in order, after its claim).
    pub fn of(transition: &'a Transition) -> ClaimWrites<'a> {
        let updates_of = |claim: &ClaimInTransition| {
            transition
                .job_updates
                .iter()
                .filter(|update| update.job_id == claim.job_id)
                .count()
        };
        let claims: Vec<_> = transition
            .claims
            .iter()
            .map(|claim| {
                let update = (updates_of(claim) == 1)
                    .then(|| {
                        transition
                            .job_updates
                            .iter()
                            .find(|update| update.job_id == claim.job_id)
                    })
                    .flatten();
                (claim, update)
            })
            .collect();
        let updates = transition
            .job_updates
            .iter()
            .filter(|update| {
                !claims
                    .iter()
                    .any(|(_, folded)| folded.is_some_and(|folded| std::ptr::eq(folded, *update)))
            })
            .collect();
        ClaimWrites { claims, updates }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::{JobId, RunId, RunnerId};
    use crate::model::Lease;
    use crate::status::JobStatus;

    fn claim(job: i64) -> ClaimInTransition {
        ClaimInTransition {
            job_id: JobId(job),
            attempt: 1,
            runner_id: RunnerId(1),
            lease: Lease {
                now_ms: 1,
                deadline_ms: 2,
            },
        }
    }

    fn update(job: i64, status: JobStatus) -> JobUpdate {
        JobUpdate {
            job_id: JobId(job),
            name: format!("job {job}"),
            status,
            conclusion: None,
            attempt: 1,
            runs_on: Vec::new(),
            waiting_reasons: json!([]),
            outputs: json!({}),
            priority: 0,
            queued_at_ms: None,
            started_at_ms: None,
            completed_at_ms: None,
        }
    }

    #[test]
    fn a_claim_takes_the_one_update_of_its_job_and_leaves_the_others() {
        let mut transition = Transition::new(RunId(1), 1, json!({}));
        transition.claims = vec![claim(10), claim(11), claim(12)];
        transition.job_updates = vec![
            update(13, JobStatus::Completed),
            update(10, JobStatus::InProgress),
            update(12, JobStatus::InProgress),
            update(12, JobStatus::Completed),
        ];
        let writes = ClaimWrites::of(&transition);
        let paired: Vec<(i64, Option<JobStatus>)> = writes
            .claims
            .iter()
            .map(|(claim, update)| (claim.job_id.0, update.map(|update| update.status)))
            .collect();
        // Job 11 has no update; job 12 has two, which stay apart and in order.
        assert_eq!(
            paired,
            [(10, Some(JobStatus::InProgress)), (11, None), (12, None)]
        );
        let left: Vec<(i64, JobStatus)> = writes
            .updates
            .iter()
            .map(|update| (update.job_id.0, update.status))
            .collect();
        assert_eq!(
            left,
            [
                (13, JobStatus::Completed),
                (12, JobStatus::InProgress),
                (12, JobStatus::Completed)
            ]
        );
    }
}
