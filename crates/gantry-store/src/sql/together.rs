//! Writes of a batch stored together: which ones may be, and the savepoint around them.
//!
//! A batch's writes run one after another on the leader's connection; each costs a handful of
//! statements, each a round trip to SQLite's writer thread or to PostgreSQL. Creations
//! (`create_together.rs`) and transitions (`transitions_together.rs`) of a batch are instead
//! stored a few statements for the whole group. Only writes that cannot be refused for a
//! reason of their own go together; if anything still goes wrong, the savepoint around the
//! group is rolled back and each write is made alone, so each gets the answer it would get
//! alone.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Connection, Encode, Executor, IntoArguments, Type};

use super::group_commit::{Content, PendingWrite, Performed};
use super::{Backend, SqlStore};
use crate::error::StoreError;
use crate::model::{AppliedTransition, CreatedRun};

/// What became of writes offered to [`SqlStore::store_together`].
pub(super) enum Together {
    /// Stored; each is answered once the batch commits.
    Stored(Vec<Performed>),
    /// Not stored (the savepoint was rolled back): to be made one by one.
    Apart(Vec<PendingWrite>),
    /// The transaction is unusable: every write of the batch fails with this cause.
    Broken(String, Vec<PendingWrite>),
}

/// What became of a batch offered to [`SqlStore::store_batch_together`].
pub(super) enum WholeBatch {
    /// Stored (or failed as a whole) and answered.
    Done,
    /// Not a batch to store that way: to be written as usual.
    NotTried(Vec<PendingWrite>),
    /// Refused and rolled back: each write is to be made alone.
    Refused(Vec<PendingWrite>),
}

/// The groups a batch splits into: creations that may go together, transitions that may go
/// together, and the writes to make one by one.
pub(super) struct Groups {
    pub creations: Vec<PendingWrite>,
    pub transitions: Vec<PendingWrite>,
    pub others: Vec<PendingWrite>,
}

/// Splits a batch. Creations go together if built from a workflow (not invalid files) with
/// no idempotency key or one no other creation of the batch carries. Transitions go together
/// if they write the run's fields and columns both or neither, add no jobs, and no other
/// transition of the batch is of their run or claims one of their jobs (so none can see
/// another's changes).
pub(super) fn partition(batch: Vec<PendingWrite>) -> Groups {
    let kinds = kinds(&batch);
    let mut groups = Groups {
        creations: Vec::new(),
        transitions: Vec::new(),
        others: Vec::new(),
    };
    for (pending, kind) in batch.into_iter().zip(kinds) {
        match kind {
            Kind::Creation => groups.creations.push(pending),
            Kind::Transition => groups.transitions.push(pending),
            Kind::Other => groups.others.push(pending),
        }
    }
    groups
}

/// Whether every write of a non-empty batch is a transition that may go together
/// ([`partition`]'s rule).
pub(super) fn all_go_together(batch: &[PendingWrite]) -> bool {
    !batch.is_empty()
        && kinds(batch)
            .into_iter()
            .all(|kind| matches!(kind, Kind::Transition))
}

/// The group of each write of a batch, in order.
fn kinds(batch: &[PendingWrite]) -> Vec<Kind> {
    let mut keys: HashMap<&str, usize> = HashMap::new();
    let mut runs: HashMap<i64, usize> = HashMap::new();
    let mut claimed: HashMap<i64, usize> = HashMap::new();
    for pending in batch {
        match pending {
            PendingWrite::Create {
                idempotency_key: Some(key),
                ..
            } => *keys.entry(key).or_default() += 1,
            PendingWrite::Transition { transition, .. } => {
                *runs.entry(transition.run_id.0).or_default() += 1;
                for claim in &transition.claims {
                    *claimed.entry(claim.job_id.0).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let mut kinds = Vec::with_capacity(batch.len());
    for pending in batch {
        let kind = match pending {
            PendingWrite::Create {
                content: Content::Build(_),
                idempotency_key,
                ..
            } if idempotency_key
                .as_deref()
                .is_none_or(|key| keys.get(key) == Some(&1)) =>
            {
                Kind::Creation
            }
            PendingWrite::Transition { transition, .. }
                if transition.run.is_some() == transition.engine_state.run.is_some()
                    && transition.new_jobs.is_empty()
                    && runs.get(&transition.run_id.0) == Some(&1)
                    && transition
                        .claims
                        .iter()
                        .all(|claim| claimed.get(&claim.job_id.0) == Some(&1)) =>
            {
                Kind::Transition
            }
            _ => Kind::Other,
        };
        kinds.push(kind);
    }
    kinds
}

/// Which group a write of a batch falls in.
enum Kind {
    Creation,
    Transition,
    Other,
}

/// The answers of a group stored together, in the group's order.
pub(super) enum Stored {
    Runs(Vec<CreatedRun>),
    Transitions(Vec<AppliedTransition>),
}

impl Stored {
    /// Pairs each write of the group with its answer.
    fn performed(self, writes: Vec<PendingWrite>) -> Vec<Performed> {
        match self {
            Stored::Runs(created) => writes
                .into_iter()
                .zip(created)
                .filter_map(|(pending, created)| match pending {
                    PendingWrite::Create { reply, .. } => {
                        Some(Performed::new(reply, Ok(created), |_| true))
                    }
                    _ => None,
                })
                .collect(),
            Stored::Transitions(applied) => writes
                .into_iter()
                .zip(applied)
                .filter_map(|(pending, applied)| match pending {
                    PendingWrite::Transition { reply, .. } => {
                        Some(Performed::new(reply, Ok(applied), |_| true))
                    }
                    _ => None,
                })
                .collect(),
        }
    }
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> String: sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    /// Runs [`Backend::PLAN_TOGETHER`], if the backend has one, for the rest of `tx`.
    pub(crate) async fn plan_together(tx: &mut DB::Connection) -> Result<(), StoreError> {
        if let Some(statement) = DB::PLAN_TOGETHER {
            sqlx::raw_sql(statement).execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Stores a batch made only of transitions that may go together ([`all_go_together`]) in
    /// a transaction of its own, without a savepoint, the planning setting sent with its
    /// `BEGIN`: a PostgreSQL runner's batch of claims or results, which otherwise took nine
    /// round trips for four statements' work. A refusal rolls the transaction back and hands
    /// the batch back to be made one by one. Stores with a [`super::DirectWriter`] store such
    /// batches there instead.
    pub(super) async fn store_batch_together(&self, batch: Vec<PendingWrite>) -> WholeBatch {
        if self.direct.is_some() || batch.len() < 2 || !all_go_together(&batch) {
            return WholeBatch::NotTried(batch);
        }
        let begin = super::begin_write::<DB>(DB::PLAN_TOGETHER);
        let Ok(mut tx) = self.writes.begin_with(begin).await else {
            // The usual way meets the same failure and answers with it.
            return WholeBatch::NotTried(batch);
        };
        let applied = match Self::transition_together(&mut tx, &batch).await {
            Ok(applied) => applied,
            Err(_) => {
                // Dropping the transaction rolls it back even if this rollback fails.
                let _ = tx.rollback().await;
                return WholeBatch::Refused(batch);
            }
        };
        let performed = Stored::Transitions(applied).performed(batch);
        super::answer_committed(tx.commit().await, performed);
        WholeBatch::Done
    }

    /// Stores a group from [`partition`] (all creations or all transitions) together in a
    /// savepoint of the batch's transaction, or leaves them all to be made one by one.
    pub(super) async fn store_together(
        tx: &mut DB::Connection,
        writes: Vec<PendingWrite>,
    ) -> Together {
        let mut savepoint = match Connection::begin(&mut *tx).await {
            Ok(savepoint) => savepoint,
            Err(error) => return Together::Broken(format!("savepoint failed: {error}"), writes),
        };
        if let Err(error) = Self::plan_together(&mut savepoint).await {
            return Together::Broken(format!("planning setting failed: {error}"), writes);
        }
        let stored = match writes.first() {
            Some(PendingWrite::Create { .. }) => Self::insert_together(&mut savepoint, &writes)
                .await
                .map(Stored::Runs),
            Some(PendingWrite::Transition { .. }) => {
                Self::transition_together(&mut savepoint, &writes)
                    .await
                    .map(Stored::Transitions)
            }
            _ => Err(StoreError::invalid(
                "only creations or transitions go together",
            )),
        };
        match stored {
            Ok(stored) => match savepoint.commit().await {
                Ok(()) => Together::Stored(stored.performed(writes)),
                Err(error) => Together::Broken(format!("savepoint failed: {error}"), writes),
            },
            // Each will meet the cause again alone and be answered with it.
            Err(_) => match savepoint.rollback().await {
                Ok(()) => Together::Apart(writes),
                Err(error) => Together::Broken(format!("savepoint failed: {error}"), writes),
            },
        }
    }
}
