//! The embedded default: a [`crate::Store`] in one SQLite file.
//!
//! Durability and concurrency are set on open:
//! - `journal_mode=WAL`: readers never block the writer nor the writer them;
//! - `synchronous=FULL`: every commit syncs the WAL before it returns, so a committed
//!   transition survives a crash of the process or of the machine;
//! - a 64 MiB page cache for the writer and a checkpoint every ~40 MiB of WAL (see
//!   [`WRITER_CACHE_KIB`], [`WAL_CHECKPOINT_PAGES`]);
//! - `temp_store=MEMORY` for the writer: a group-commit batch keeps each write, or group of
//!   writes, in a savepoint, whose journal SQLite otherwise spills to a temporary file past
//!   64 KiB; with batches of a few hundred transitions those file writes took about 7 % of
//!   the connection thread, twice what its WAL writes took (`perf`, `gantry bench drain
//!   --batch 16`);
//! - `foreign_keys=ON` on every connection, and a busy timeout (5 s by default) for the rare
//!   wait on another process holding the file;
//! - one writer: the write pool has exactly one connection, so write transactions queue for it
//!   in this process instead of failing with `SQLITE_BUSY`, and each begins with
//!   `BEGIN IMMEDIATE`, taking the write lock up front rather than upgrading mid-transaction;
//!   the writer thread's own connection for batches of transitions
//!   (`sql/direct_transitions.rs`) writes only while it holds that one connection, with the
//!   same durability and cache settings;
//! - reads use a separate pool of read-only connections (4 by default), which see the last
//!   committed state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::StoreError;
use crate::sql::multi_row::{self, Rows, Values};
use crate::sql::{Backend, DirectWriter, Migration, SqlStore};

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

/// The writer's page cache, in KiB (SQLite takes a negative size as KiB): 64 MiB instead of
/// the default 2 MiB, so that a busy server's hot pages (its runs, their jobs and engine
/// states) are not read back from the file for every transition.
pub(crate) const WRITER_CACHE_KIB: &str = "-65536";
/// WAL pages after which a commit copies the WAL into the database file: 10,000 (about
/// 40 MiB) instead of 1,000, so a page rewritten by many transitions is copied once per
/// checkpoint rather than ten times as often.
pub(crate) const WAL_CHECKPOINT_PAGES: &str = "10000";

impl Backend for Sqlite {
    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            version: 1,
            name: "init",
            sql: include_str!("../migrations/sqlite/0001_init.sql"),
        },
        Migration {
            version: 2,
            name: "runners",
            sql: include_str!("../migrations/sqlite/0002_runners.sql"),
        },
        Migration {
            version: 3,
            name: "repository_sources",
            sql: include_str!("../migrations/sqlite/0003_repository_sources.sql"),
        },
        Migration {
            version: 4,
            name: "workflow_errors_and_git_urls",
            sql: include_str!("../migrations/sqlite/0004_workflow_errors_and_git_urls.sql"),
        },
        Migration {
            version: 5,
            name: "called_workflows",
            sql: include_str!("../migrations/sqlite/0005_called_workflows.sql"),
        },
        Migration {
            version: 7,
            name: "runner_groups",
            sql: include_str!("../migrations/sqlite/0007_runner_groups.sql"),
        },
        Migration {
            version: 8,
            name: "engine_spec",
            sql: include_str!("../migrations/sqlite/0008_engine_spec.sql"),
        },
        Migration {
            version: 9,
            name: "engine_state_parts",
            sql: include_str!("../migrations/sqlite/0009_engine_state_parts.sql"),
        },
        Migration {
            version: 10,
            name: "run_documents",
            sql: include_str!("../migrations/sqlite/0010_run_documents.sql"),
        },
        Migration {
            version: 11,
            name: "checks_without_lists",
            sql: include_str!("../migrations/sqlite/0011_checks_without_lists.sql"),
        },
        Migration {
            version: 12,
            name: "idempotency_key_index",
            sql: include_str!("../migrations/sqlite/0012_idempotency_key_index.sql"),
        },
        Migration {
            version: 13,
            name: "recovery_by_unfinished_runs",
            sql: include_str!("../migrations/sqlite/0013_recovery_by_unfinished_runs.sql"),
        },
        Migration {
            version: 14,
            name: "run_versions",
            sql: include_str!("../migrations/sqlite/0014_run_versions.sql"),
        },
    ];
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const PLAN_WRITES: Option<&'static str> = None;
    // Migrations run in a `BEGIN IMMEDIATE` transaction, which already excludes other writers.
    const LOCK_MIGRATIONS: Option<&'static str> = None;
    const BATCH_RUN_CHANGES: bool = true;
    const POSITIONAL_PARAMETERS: bool = true;
    const OWN_WRITER_THREAD: bool = true;
    const PLAN_TOGETHER: Option<&'static str> = None;
    // A compound `SELECT` is limited to 500 terms, and a row is a term of the rows' table.
    const ROWS_PER_STATEMENT: usize = 64;
    const DATA_MODIFYING_CTES: bool = false;

    fn rows_table(rows: &Rows<'_>) -> String {
        multi_row::cast_rows_table(rows)
    }

    fn rows_to_insert(rows: &Rows<'_>) -> String {
        multi_row::values_list(rows)
    }

    fn bind_rows<'q>(
        mut query: Query<'q, Sqlite, SqliteArguments>,
        rows: &Rows<'_>,
    ) -> Query<'q, Sqlite, SqliteArguments> {
        for row in 0..rows.len() {
            for (_, values) in rows.columns() {
                query = match values {
                    Values::Int(values) => query.bind(values[row]),
                    Values::MaybeInt(values) => query.bind(values[row]),
                    Values::Text(values) => query.bind(values[row]),
                    Values::MaybeText(values) => query.bind(values[row]),
                };
            }
        }
        query
    }
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    path: PathBuf,
    readers: u32,
    busy_timeout: Duration,
    write_queue_timeout: Duration,
}

impl SqliteOptions {
    /// Options for the database file at `path` (created if missing).
    pub fn new(path: impl AsRef<Path>) -> SqliteOptions {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            write_queue_timeout: Duration::from_secs(30),
        }
    }

    /// How many read-only connections to keep (at least 1).
    pub fn readers(mut self, readers: u32) -> SqliteOptions {
        self.readers = readers.max(1);
        self
    }

    /// How long a statement waits for another process's lock on the file.
    pub fn busy_timeout(mut self, timeout: Duration) -> SqliteOptions {
        self.busy_timeout = timeout;
        self
    }

    /// How long a write waits for the single writer connection before failing.
    pub fn write_queue_timeout(mut self, timeout: Duration) -> SqliteOptions {
        self.write_queue_timeout = timeout;
        self
    }

    /// Opens (creating if needed) and migrates the database.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(&self.path)
            .busy_timeout(self.busy_timeout)
            .foreign_keys(true);
        // The writer is opened first: it creates the file and switches it to WAL, which is a
        // property of the file that the read-only connections then find.
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.write_queue_timeout)
            .connect_with(
                connect
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .pragma("cache_size", WRITER_CACHE_KIB)
                    .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
                    .pragma("temp_store", "MEMORY"),
            )
            .await?;
        let reads = SqlitePoolOptions::new()
            .max_connections(self.readers)
            .connect_with(connect.read_only(true))
            .await?;
        // Opened after sqlx's writer has created the file; it prepares nothing until its first
        // batch, after the migrations.
        let direct = DirectWriter::open(
            &self.path,
            self.busy_timeout,
            WRITER_CACHE_KIB,
            WAL_CHECKPOINT_PAGES,
        )
        .map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))?;
        SqlStore::from_pools(reads, writes, Some(direct)).await
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) and migrates the database file at `path` with the default
    /// [`SqliteOptions`].
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteOptions::new(path).open().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::Row;

    use super::SqliteStore;

    /// The value of a `PRAGMA` statement, as text.
    async fn pragma(pool: &sqlx::SqlitePool, statement: &'static str) -> String {
        let row = sqlx::query(statement).fetch_one(pool).await.unwrap();
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|value| value.to_string()))
            .unwrap()
    }

    /// A batch of creations looks its idempotency keys up through their own index, not by
    /// reading every run.
    #[tokio::test]
    async fn creations_find_idempotency_keys_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("gantry.db"))
            .await
            .unwrap();
        let keys = crate::sql::queries::positional(&crate::sql::queries::existing_keys(2));
        let plan = query_plan(&store, &keys, &["a", "b"]).await;
        assert!(
            plan.contains("USING INDEX workflow_runs_by_idempotency_key"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN workflow_runs"), "{plan}");
    }

    /// What SQLite's planner does with `statement` bound to `arguments`, a step a line.
    async fn query_plan(store: &SqliteStore, statement: &str, arguments: &[&str]) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for argument in arguments {
            query = query.bind(*argument);
        }
        let steps: Vec<String> = query
            .fetch_all(&store.writes)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        steps.join("\n")
    }

    /// Recovery after a restart reads the runs that have not completed and their jobs, not
    /// every job ever run (no index names a job's status or an attempt's end: migration 13).
    #[tokio::test]
    async fn recovery_reads_only_unfinished_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("gantry.db"))
            .await
            .unwrap();
        for (statement, table) in [
            (crate::sql::queries::QUEUED_JOBS, "jobs"),
            (crate::sql::queries::RUNNING_ATTEMPTS, "job_attempts"),
        ] {
            let plan = query_plan(&store, statement, &[]).await;
            assert!(
                plan.contains("USING INDEX workflow_runs_by_status"),
                "{plan}"
            );
            assert!(!plan.contains(&format!("SCAN {table}")), "{plan}");
            assert!(!plan.contains("SCAN jobs"), "{plan}");
        }
    }

    #[tokio::test]
    async fn the_writer_is_single_durable_and_the_readers_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("gantry.db"))
            .await
            .unwrap();
        assert_eq!(store.writes.options().get_max_connections(), 1);
        assert!(
            store.writer.is_some(),
            "batches run on the store's own thread"
        );
        assert_eq!(pragma(&store.writes, "PRAGMA journal_mode").await, "wal");
        // 2 is FULL: the WAL is synced at every commit.
        assert_eq!(pragma(&store.writes, "PRAGMA synchronous").await, "2");
        assert_eq!(pragma(&store.writes, "PRAGMA foreign_keys").await, "1");
        assert_eq!(pragma(&store.writes, "PRAGMA busy_timeout").await, "5000");
        assert_eq!(
            pragma(&store.writes, "PRAGMA cache_size").await,
            super::WRITER_CACHE_KIB
        );
        assert_eq!(
            pragma(&store.writes, "PRAGMA wal_autocheckpoint").await,
            super::WAL_CHECKPOINT_PAGES
        );
        // 2 is MEMORY: a batch's savepoint journal never spills to a temporary file.
        assert_eq!(pragma(&store.writes, "PRAGMA temp_store").await, "2");
        assert_eq!(pragma(&store.reads, "PRAGMA journal_mode").await, "wal");
        let write = sqlx::query("INSERT INTO organizations (name, weight) VALUES ('x', 1)")
            .execute(&store.reads)
            .await;
        assert!(write.is_err(), "a reader connection could write");
        store.close().await;
    }
}
