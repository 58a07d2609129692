//! The scale-out backend: a [`crate::Store`] in a PostgreSQL database.
//!
//! Reads and writes share one pool; transactions run at PostgreSQL's default `READ COMMITTED`
//! level, which is enough because every check-then-write is a single conditional statement
//! (the state-version check, the claim, the run-number counter) that waits for a concurrent
//! writer of the same row and re-checks its condition after that writer commits. Write
//! transactions are planned as key lookups (`Backend::PLAN_WRITES`), and writes stored
//! together take their rows as arrays and keep one plan (`Backend::PLAN_TOGETHER`). Migrations
//! take a transaction-scoped advisory lock so that replicas starting together migrate once.
//!
//! [`PostgresOptions::with_schema`] puts every table in a schema of its own (created if
//! missing) through the connections' `search_path`: the tests use one schema per test.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Postgres};

use crate::error::StoreError;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use crate::sql::multi_row::{self, Rows, Values};
use crate::sql::{Backend, Migration, SqlStore};

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Postgres>;

impl Backend for Postgres {
    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            version: 1,
            name: "init",
            sql: include_str!("../migrations/postgres/0001_init.sql"),
        },
        Migration {
            version: 2,
            name: "runners",
            sql: include_str!("../migrations/postgres/0002_runners.sql"),
        },
        Migration {
            version: 3,
            name: "repository_sources",
            sql: include_str!("../migrations/postgres/0003_repository_sources.sql"),
        },
        Migration {
            version: 4,
            name: "workflow_errors_and_git_urls",
            sql: include_str!("../migrations/postgres/0004_workflow_errors_and_git_urls.sql"),
        },
        Migration {
            version: 5,
            name: "called_workflows",
            sql: include_str!("../migrations/postgres/0005_called_workflows.sql"),
        },
        Migration {
            version: 7,
            name: "runner_groups",
            sql: include_str!("../migrations/postgres/0007_runner_groups.sql"),
        },
        Migration {
            version: 8,
            name: "engine_spec",
            sql: include_str!("../migrations/postgres/0008_engine_spec.sql"),
        },
        Migration {
            version: 9,
            name: "engine_state_parts",
            sql: include_str!("../migrations/postgres/0009_engine_state_parts.sql"),
        },
        Migration {
            version: 10,
            name: "run_documents",
            sql: include_str!("../migrations/postgres/0010_run_documents.sql"),
        },
        Migration {
            version: 12,
            name: "idempotency_key_index",
            sql: include_str!("../migrations/postgres/0012_idempotency_key_index.sql"),
        },
        Migration {
            version: 13,
            name: "updates_in_place",
            sql: include_str!("../migrations/postgres/0013_updates_in_place.sql"),
        },
        Migration {
            version: 14,
            name: "no_parent_checks_on_hot_rows",
            sql: include_str!("../migrations/postgres/0014_no_parent_checks_on_hot_rows.sql"),
        },
        Migration {
            version: 15,
            name: "run_versions",
            sql: include_str!("../migrations/postgres/0015_run_versions.sql"),
        },
    ];
    const BEGIN_WRITE: &'static str = "BEGIN";
    const PLAN_WRITES: Option<&'static str> = Some(
        "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
         SET LOCAL enable_mergejoin = off",
    );
    // The key is arbitrary but fixed: `gantry` in ASCII.
    const LOCK_MIGRATIONS: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(113723047524985)");
    const BATCH_RUN_CHANGES: bool = false;
    const POSITIONAL_PARAMETERS: bool = false;
    const OWN_WRITER_THREAD: bool = false;
    const PLAN_TOGETHER: Option<&'static str> =
        Some("SET LOCAL plan_cache_mode = force_generic_plan");
    // One array per column: the statement is the same for any number of rows.
    const ROWS_PER_STATEMENT: usize = 10_000;
    const DATA_MODIFYING_CTES: bool = true;

    fn rows_table(rows: &Rows<'_>) -> String {
        multi_row::unnest_table(rows)
    }

    fn rows_to_insert(rows: &Rows<'_>) -> String {
        multi_row::unnest_select(rows)
    }

    fn bind_rows<'q>(
        mut query: Query<'q, Postgres, PgArguments>,
        rows: &Rows<'_>,
    ) -> Query<'q, Postgres, PgArguments> {
        for (_, values) in rows.columns() {
            query = match values {
                Values::Int(values) => query.bind(values.as_slice()),
                Values::MaybeInt(values) => query.bind(values.as_slice()),
                Values::Text(values) => query.bind(values.as_slice()),
                Values::MaybeText(values) => query.bind(values.as_slice()),
            };
        }
        query
    }
}

/// How to connect a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    url: String,
    schema: Option<String>,
    max_connections: u32,
}

impl PostgresOptions {
    /// Options for the database at `url` (`postgres://user@host:port/database`).
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            schema: None,
            max_connections: 10,
        }
    }

    /// Keeps every table in `schema` (created if missing): letters, digits and `_`, not
    /// starting with a digit.
    pub fn with_schema(mut self, schema: impl Into<String>) -> PostgresOptions {
        self.schema = Some(schema.into());
        self
    }

    /// The size of the connection pool (at least 1).
    pub fn max_connections(mut self, max_connections: u32) -> PostgresOptions {
        self.max_connections = max_connections.max(1);
        self
    }

    /// Connects, creates the schema if asked, and migrates.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let mut connect = PgConnectOptions::from_str(&self.url)?;
        if let Some(schema) = &self.schema {
            if !is_plain_identifier(schema) {
                return Err(StoreError::invalid(format!(
                    "schema name `{schema}` is not a plain identifier"
                )));
            }
            let mut conn = PgConnection::connect_with(&connect).await?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            connect = connect.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .connect_with(connect)
            .await?;
        SqlStore::from_pools(pool.clone(), pool, None).await
    }
}

impl SqlStore<Postgres> {
    /// Connects to and migrates the database at `url` with the default [`PostgresOptions`].
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresOptions::new(url).connect().await
    }
}

/// Whether `name` can be used as an SQL identifier without quoting rules mattering.
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use sqlx::{AssertSqlSafe, Postgres};

    use super::{PostgresOptions, PostgresStore, is_plain_identifier};
    use crate::sql::multi_row::{self, Rows};
    use crate::sql::{begin_write, queries as q};

    /// The generic plan of `statement` (prepared as `name`) executed with `arguments`.
    async fn generic_plan(
        conn: &mut sqlx::PgConnection,
        name: &str,
        statement: &str,
        arguments: &str,
    ) -> String {
        let prepare = format!("PREPARE {name} AS {statement}");
        sqlx::raw_sql(AssertSqlSafe(prepare))
            .execute(&mut *conn)
            .await
            .unwrap();
        let explain = format!("EXPLAIN (COSTS OFF) EXECUTE {name}({arguments})");
        let lines: Vec<String> = sqlx::query_scalar(AssertSqlSafe(explain))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        lines.join("\n")
    }

    /// The PostgreSQL the tests use (`GANTRY_TEST_DATABASE_URL`, or the local server's `test`).
    fn test_database_url() -> String {
        std::env::var("GANTRY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// A store of one connection in a fresh schema `schema`, or `None` (with a loud message)
    /// when PostgreSQL is not reachable outside CI.
    async fn test_store(schema: &str) -> Option<PostgresStore> {
        let url = test_database_url();
        match PostgresOptions::new(&url)
            .with_schema(schema)
            .max_connections(1)
            .connect()
            .await
        {
            Ok(store) => Some(store),
            Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("PostgreSQL not reachable at {url} and CI=true: {error}")
            }
            Err(error) => {
                eprintln!("!!!! SKIPPED: PostgreSQL not reachable at {url} ({error}) !!!!");
                None
            }
        }
    }

    /// Drops the schema of a [`test_store`].
    async fn drop_schema(store: &PostgresStore, schema: &str) {
        sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .execute(&store.writes)
            .await
            .unwrap();
    }

    /// Inserts an organization, a repository and `runs` runs in progress at state version
    /// `version`, each with its run fields and one queued job, in the order creations
    /// insert them.
    async fn seed_runs(store: &PostgresStore, runs: i64, version: i64) {
        let sql = format!(
            "INSERT INTO organizations (name, weight) VALUES ('acme', 1); \
             INSERT INTO repositories (org_id, name, default_branch) VALUES (1, 'app', 'main'); \
             INSERT INTO workflow_runs (repo_id, workflow_path, workflow_name, run_number, \
                 attempt, event_name, git_ref, sha, actor, status, created_at_ms, engine_run) \
                 SELECT 1, '.github/workflows/ci.yml', 'ci', n, 1, 'push', 'refs/heads/main', \
                 repeat('a', 40), 'octocat', 'in_progress', 0, repeat('r', 120) \
                 FROM generate_series(1, {runs}) AS n; \
             INSERT INTO run_versions (run_id, state_version) \
                 SELECT id, {version} FROM workflow_runs ORDER BY id; \
             INSERT INTO jobs (run_id, job_key, matrix_index, name, status, attempt, runs_on, \
                 waiting_reasons, outputs, priority) \
                 SELECT id, 'build', 0, 'build', 'queued', 1, '[\"linux\"]', '[]', '{{}}', 0 \
                 FROM workflow_runs ORDER BY id;"
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&store.writes)
            .await
            .unwrap();
    }

    /// A batch of creations looks its idempotency keys up through their own index, not by
    /// reading every run (the keys of a batch may be of several repositories, so the unique
    /// constraint on repository and key cannot serve it).
    #[tokio::test]
    async fn creations_find_idempotency_keys_by_index() {
        let schema = format!("gantry_unit_keys_{}", std::process::id());
        let Some(store) = test_store(&schema).await else {
            return;
        };
        let mut tx = store
            .writes
            .begin_with(begin_write::<Postgres>(None))
            .await
            .unwrap();
        PostgresStore::plan_together(&mut tx).await.unwrap();
        let planned = generic_plan(&mut tx, "keys", &q::existing_keys(2), "'a', 'b'").await;
        tx.rollback().await.unwrap();
        drop_schema(&store, &schema).await;
        assert!(
            planned.contains("workflow_runs_by_idempotency_key"),
            "{planned}"
        );
        assert!(!planned.contains("Seq Scan"), "{planned}");
    }

    /// Writes plan their statements as key lookups, and writes stored together keep one
    /// generic plan: planned on an empty table (as each connection first plans them), the
    /// multi-row end of attempts is otherwise a sequential scan kept as the table grows.
    #[tokio::test]
    async fn writes_plan_key_lookups_once() {
        let schema = format!("gantry_unit_plans_{}", std::process::id());
        let Some(store) = test_store(&schema).await else {
            return;
        };
        let rows = Rows::new()
            .int("job_id", [1])
            .int("attempt", [1])
            .int("ended_at_ms", [1])
            .text("result", ["success"])
            .maybe_int("token", [None]);
        let statement = q::end_attempts(&multi_row::unnest_table(&rows));
        let arguments = "'{1}', '{1}', '{1}', '{success}', '{NULL}'";
        let show = "SHOW plan_cache_mode";

        let mut tx = store
            .writes
            .begin_with(begin_write::<Postgres>(None))
            .await
            .unwrap();
        let seqscan = "SHOW enable_seqscan";
        let seqscan_in_write: String = sqlx::query_scalar(seqscan)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        PostgresStore::plan_together(&mut tx).await.unwrap();
        let together: String = sqlx::query_scalar(show).fetch_one(&mut *tx).await.unwrap();
        let planned = generic_plan(&mut tx, "ends_in_write", &statement, arguments).await;
        tx.rollback().await.unwrap();

        let mut conn = store.writes.acquire().await.unwrap();
        let after: String = sqlx::query_scalar(show)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let seqscan_after: String = sqlx::query_scalar(seqscan)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await
            .unwrap();
        let unplanned = generic_plan(&mut conn, "ends_alone", &statement, arguments).await;
        sqlx::raw_sql("RESET plan_cache_mode; DEALLOCATE ALL")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        drop_schema(&store, &schema).await;

        // The planner settings hold for the write transaction and end with it.
        assert_eq!([seqscan_in_write, seqscan_after], ["off", "on"]);
        assert_eq!(
            [together.as_str(), after.as_str()],
            ["force_generic_plan", "auto"]
        );
        assert!(
            planned.contains("Index Scan using job_attempts_pkey"),
            "{planned}"
        );
        assert!(!planned.contains("Seq Scan"), "{planned}");
        assert!(
            unplanned.contains("Seq Scan on job_attempts"),
            "{unplanned}"
        );
    }

    /// A transition's updates leave every index alone ("heap-only tuple" updates, counted by
    /// PostgreSQL per transaction): a job's claim and its attempt's end change no indexed
    /// column, and the pages that inserts filled keep room for a row's next version
    /// (migration 13).
    #[tokio::test]
    async fn transitions_update_rows_in_place() {
        let schema = format!("gantry_unit_in_place_{}", std::process::id());
        let Some(store) = test_store(&schema).await else {
            return;
        };
        // Enough runs, each with a job, an attempt and an engine state, to fill the first
        // pages of every table the way creations and claims fill them.
        seed_runs(&store, 400, 0).await;
        sqlx::raw_sql(
            "INSERT INTO job_attempts (job_id, attempt, fencing_token, started_at_ms) \
                 SELECT id, 1, 1, 0 FROM jobs ORDER BY id; \
             INSERT INTO engine_jobs (run_id, job_index, state) \
                 SELECT id, 0, repeat('s', 300) FROM workflow_runs ORDER BY id;",
        )
        .execute(&store.writes)
        .await
        .unwrap();

        let mut tx = store.writes.begin().await.unwrap();
        let (first_run, first_job): (i64, i64) =
            sqlx::query_as("SELECT min(run_id), min(id) FROM jobs")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        sqlx::query(q::MOVE_RUN_VERSION)
            .bind(first_run)
            .bind(0_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(q::UPDATE_RUN_FIELDS)
            .bind(first_run)
            .bind("r".repeat(120))
            .execute(&mut *tx)
            .await
            .unwrap();
        let upsert = q::upsert_engine_jobs(q::ENGINE_JOB_ROW);
        sqlx::query(AssertSqlSafe(upsert))
            .bind(first_run)
            .bind(0_i64)
            .bind("t".repeat(300))
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(q::CLAIM_JOB)
            .bind(first_job)
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(q::END_ATTEMPT)
            .bind(first_job)
            .bind(1_i64)
            .bind(2_i64)
            .bind("success")
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        let mut counts = Vec::new();
        let tables = [
            "run_versions",
            "workflow_runs",
            "engine_jobs",
            "jobs",
            "job_attempts",
        ];
        for table in tables {
            let (updated, in_place): (i64, i64) = sqlx::query_as(
                "SELECT pg_stat_get_xact_tuples_updated($1::regclass), \
                 pg_stat_get_xact_tuples_hot_updated($1::regclass)",
            )
            .bind(table)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            counts.push((table, updated, in_place));
        }
        tx.rollback().await.unwrap();
        drop_schema(&store, &schema).await;

        assert_eq!(
            counts,
            [
                ("run_versions", 1, 1),
                ("workflow_runs", 1, 1),
                ("engine_jobs", 1, 1),
                ("jobs", 1, 1),
                ("job_attempts", 1, 1)
            ]
        );
    }

    /// The rows every claim, job end and run creation inserts check no foreign key (each
    /// check is a trigger that looks the parent up and locks it; migration 14), and the rows
    /// that runners' reports name keep theirs.
    #[tokio::test]
    async fn hot_rows_check_no_parents() {
        let schema = format!("gantry_unit_parents_{}", std::process::id());
        let Some(store) = test_store(&schema).await else {
            return;
        };
        let checked: Vec<String> = sqlx::query_scalar(
            "SELECT conrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = current_schema()::regnamespace \
             ORDER BY 1",
        )
        .fetch_all(&store.writes)
        .await
        .unwrap();
        drop_schema(&store, &schema).await;
        let unchecked = [
            "job_attempts",
            "jobs",
            "engine_jobs",
            "run_documents",
            "run_versions",
        ];
        for table in unchecked {
            assert!(!checked.iter().any(|name| name == table), "{checked:?}");
        }
        for table in ["step_results", "job_log_lines", "workflow_runs"] {
            assert!(checked.iter().any(|name| name == table), "{checked:?}");
        }
    }

    /// A priority change takes its run's version before the job's row, the order every
    /// transition takes them in: a transition that holds the version and then updates the
    /// job waits for nothing, and the priority change waits for it (in the other order
    /// PostgreSQL finds a deadlock and aborts one of the two).
    #[tokio::test]
    async fn a_priority_change_locks_in_the_order_transitions_do() {
        let schema = format!("gantry_unit_lock_order_{}", std::process::id());
        let Some(store) = test_store(&schema).await else {
            return;
        };
        seed_runs(&store, 1, 1).await;
        let (run_id, job_id): (i64, i64) = sqlx::query_as("SELECT run_id, id FROM jobs")
            .fetch_one(&store.writes)
            .await
            .unwrap();
        let store = std::sync::Arc::new(store);

        // A transition's first step, its version moved, in a transaction on a connection of
        // its own (the store's one connection is left to the priority change).
        let url = test_database_url();
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
            .execute(&mut connection)
            .await
            .unwrap();
        let mut transition = sqlx::Connection::begin(&mut connection).await.unwrap();
        sqlx::query(q::MOVE_RUN_VERSION)
            .bind(run_id)
            .bind(1_i64)
            .fetch_one(&mut *transition)
            .await
            .unwrap();
        let priority = tokio::spawn({
            let store = std::sync::Arc::clone(&store);
            async move { crate::Store::set_job_priority(&*store, crate::JobId(job_id), 5).await }
        });
        // Time for the priority change to take whatever it takes before it waits.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let updated = sqlx::query("UPDATE jobs SET waiting_reasons = '[]' WHERE id = $1")
            .bind(job_id)
            .execute(&mut *transition)
            .await;
        assert!(updated.is_ok(), "{updated:?}");
        transition.commit().await.unwrap();
        let changed = priority.await.unwrap().unwrap();
        assert_eq!(changed.priority, 5);
        let version: i64 = sqlx::query_scalar(q::SELECT_STATE_VERSION)
            .bind(run_id)
            .fetch_one(&store.writes)
            .await
            .unwrap();
        assert_eq!(version, 3);
        drop_schema(&store, &schema).await;
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(is_plain_identifier("gantry_test_12"));
        assert!(!is_plain_identifier("1abc"));
        assert!(!is_plain_identifier("a\"; DROP"));
        assert!(!is_plain_identifier(""));
    }
}
