//! The one error type of the store boundary.
//!
//! Every method of [`crate::Store`] returns [`StoreError`]; the server maps each variant to an
//! HTTP status in one place (`NotFound` 404, `Conflict` 409, `Invalid` 422, the rest 500).
//! Messages are lowercase without a trailing period, and name the thing at fault.

/// Why a store operation failed. A failed operation has changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A referenced organization, repository, run, job or attempt does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `run 12`.
        what: String,
    },
    /// The operation lost a race or contradicts what is stored: a stale state version or
    /// fencing token, a duplicate name, an idempotency key reused for other content, a job
    /// that is no longer queued.
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted.
        what: String,
    },
    /// A runner's call carries a fencing token that is no longer its job's latest, or whose
    /// attempt has ended: the runner has lost the job.
    #[error("stale fencing token: {what}")]
    StaleToken {
        /// Which token of which job.
        what: String,
    },
    /// The input is malformed: an empty name, a zero page size, a negative weight, a run
    /// builder that refused, a job of another run.
    #[error("invalid input: {what}")]
    Invalid {
        /// What is wrong with it.
        what: String,
    },
    /// Stored data this build cannot read: an unknown status spelling, a JSON column that does
    /// not parse, a schema newer than this build's migrations.
    #[error("stored data is unreadable: {what}")]
    Corrupt {
        /// What could not be read.
        what: String,
    },
    /// The database failed (connection lost, disk full, timeout, ...).
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A write shared a transaction with others (group commit) and that transaction failed
    /// as a whole; nothing of it was stored.
    #[error("database error in a shared transaction: {cause}")]
    BatchFailed {
        /// Why the shared transaction failed.
        cause: String,
    },
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> StoreError {
        StoreError::NotFound { what: what.into() }
    }

    pub(crate) fn conflict(what: impl Into<String>) -> StoreError {
        StoreError::Conflict { what: what.into() }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> StoreError {
        StoreError::Invalid { what: what.into() }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError::Corrupt { what: what.into() }
    }

    /// Whether the database refused the statement for a duplicate key.
    pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
        matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
    }

    /// Whether the database refused the statement for a missing referenced row.
    pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
        matches!(error, sqlx::Error::Database(database) if database.is_foreign_key_violation())
    }
}
