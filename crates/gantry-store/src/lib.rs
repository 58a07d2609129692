//! Durable state: the [`Store`] trait, its SQLite and PostgreSQL implementations, and their
//! migrations.
//!
//! The store is gantry's source of truth. The server's in-memory indexes (the dispatcher's
//! fair queue, the lease watcher) are rebuilt from it after a restart
//! ([`Store::queued_jobs`], [`Store::running_attempts`]), and every state change is one
//! transaction: a run with all its jobs ([`Store::create_run`]), one engine decision
//! ([`Store::apply_transition`], guarded by the run's state version), one claim
//! ([`Store::claim_job`], which hands out a fencing token).
//!
//! The store does not depend on the engine: it keeps the engine's per-run state as an opaque
//! JSON document with a version, next to the columns the server queries.
//!
//! Module map: `store` is the trait, `model` the records and inputs, `ids` and `status` their
//! parts, `runners` the records of runners, their tokens and job logs, `error` the one error
//! type; `sql` is the implementation shared by both backends
//! (statements in `sql/queries.rs`, migrations run by `sql/migrate.rs` from the `.sql` files
//! under `migrations/`), and `sqlite` and `postgres` open each backend.
//!
//! ```
//! use gantry_store::{NewOrganization, SqliteStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gantry_store::StoreError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("gantry.db")).await?;
//! let org = store
//!     .create_organization(NewOrganization {
//!         name: "acme".to_owned(),
//!         weight: 1,
//!         hosted_concurrency_limit: None,
//!     })
//!     .await?;
//! // The server holds the store as a trait object and does not care which backend it is.
//! let shared: std::sync::Arc<dyn Store> = std::sync::Arc::new(store);
//! assert_eq!(shared.get_organization_by_name("acme").await?, org);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod error;
mod ids;
mod model;
mod postgres;
mod runners;
mod sources;
mod sql;
mod sqlite;
mod status;
mod store;

pub use error::StoreError;
pub use ids::{JobId, OrgId, RepoId, RunId, RunnerId};
pub use model::{
    AllocatedRun, AppliedTransition, BuildRun, CREATED_STATE_VERSION, Claim, ClaimInTransition,
    CreatedRun, EndedAttempt, EngineState, FencingToken, Job, JobAttempt, JobUpdate, Lease,
    NewAttempt, NewJob, NewOrganization, NewRepository, NewRun, Organization, QueuedJob,
    Repository, RunContent, RunFilter, RunPage, RunUpdate, RunningAttempt, StateChange,
    StateDocument, StepResult, Transition, WorkflowRun,
};
pub use postgres::{PostgresOptions, PostgresStore};
pub use runners::{
    LogAppend, LogLineRecord, NewLogLine, NewRegistrationToken, NewRunner, RunnerRecord,
    StepReported,
};
pub use sources::RepositorySource;
pub use sql::{Backend, Migration, SqlStore};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use status::{Conclusion, JobStatus, RunStatus, StepStatus};
pub use store::{Store, StoreFuture};
