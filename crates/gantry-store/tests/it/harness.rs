//! The databases the conformance suite runs on: a fresh SQLite file, or a fresh PostgreSQL
//! schema, each reopenable (to test what survives a restart) and cleaned up afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One test's database and the store open on it.
pub struct TestDb {
    store: Opened,
    place: Place,
    cleaned: bool,
}

enum Opened {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

enum Place {
    Sqlite {
        // Kept so the directory lives as long as the test.
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl TestDb {
    /// A store on a new SQLite file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.db");
        let store = SqliteStore::open(&path).await.unwrap();
        TestDb {
            store: Opened::Sqlite(store),
            place: Place::Sqlite { _dir: dir, path },
            cleaned: false,
        }
    }

    /// A store in a new schema of the test PostgreSQL database, or `None` (after a loud
    /// message) when it is unreachable outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let url = std::env::var("GANTRY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let reachable =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await;
        match reachable {
            Ok(Ok(conn)) => {
                conn.close().await.ok();
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => "connection timed out".to_owned(),
                };
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("PostgreSQL not reachable at {url} and CI=true: {why}");
                }
                eprintln!("!!!! SKIPPED: PostgreSQL not reachable at {url} ({why}) !!!!");
                return None;
            }
        }
        let schema = unique_schema_name();
        let store = open_postgres(&url, &schema).await;
        Some(TestDb {
            store: Opened::Postgres(store),
            place: Place::Postgres { url, schema },
            cleaned: false,
        })
    }

    /// The store under test.
    pub fn store(&self) -> &dyn Store {
        match &self.store {
            Opened::Sqlite(store) => store,
            Opened::Postgres(store) => store,
        }
    }

    /// The store as a shareable handle, for tests that spawn tasks.
    pub fn shared(&self) -> Arc<dyn Store> {
        match &self.store {
            Opened::Sqlite(store) => Arc::new(store.clone()),
            Opened::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Whether the backend batches transitions and claims (group commit): SQLite does;
    /// PostgreSQL writes each in a transaction of its own, concurrently.
    pub fn batches_run_changes(&self) -> bool {
        matches!(self.place, Place::Sqlite { .. })
    }

    /// Makes the commit of any transaction that writes an engine state containing `doomed`
    /// fail: a trigger inserts a row breaking a foreign key checked only at commit. For tests
    /// of what a failed commit answers.
    pub async fn fail_commits_of_doomed_states(&self) {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                sqlx::raw_sql(
                    "CREATE TABLE doom (run_id INTEGER \
                       REFERENCES workflow_runs (id) DEFERRABLE INITIALLY DEFERRED); \
                     CREATE TRIGGER doom AFTER UPDATE OF engine_run ON workflow_runs \
                       WHEN NEW.engine_run LIKE '%doomed%' \
                       BEGIN INSERT INTO doom (run_id) VALUES (-1); END;",
                )
                .execute(&mut conn)
                .await
                .unwrap();
                conn.close().await.unwrap();
            }
            Place::Postgres { url, schema } => {
                let mut conn = PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "CREATE TABLE \"{schema}\".doom (run_id BIGINT \
                       REFERENCES \"{schema}\".workflow_runs (id) DEFERRABLE INITIALLY DEFERRED); \
                     CREATE FUNCTION \"{schema}\".doom() RETURNS trigger LANGUAGE plpgsql AS \
                       $$ BEGIN INSERT INTO \"{schema}\".doom (run_id) VALUES (-1); RETURN NEW; END $$; \
                     CREATE TRIGGER doom AFTER UPDATE ON \"{schema}\".workflow_runs FOR EACH ROW \
                       WHEN (NEW.engine_run LIKE '%doomed%') EXECUTE FUNCTION \"{schema}\".doom();"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Closes the store and opens the same database again, as a restarted server would.
    pub async fn reopen(&mut self) {
        self.close().await;
        self.reopen_closed().await;
    }

    async fn reopen_closed(&mut self) {
        self.store = match &self.place {
            Place::Sqlite { path, .. } => Opened::Sqlite(SqliteStore::open(path).await.unwrap()),
            Place::Postgres { url, schema } => Opened::Postgres(open_postgres(url, schema).await),
        };
    }

    /// Closes the store, runs `sql` on the database itself (to leave it as an older build
    /// would have), and opens it again, which migrates it.
    pub async fn reopen_after(&mut self, sql: &str) {
        self.close().await;
        let sql = AssertSqlSafe(sql.to_owned());
        match &self.place {
            Place::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Place::Postgres { url, schema } => {
                let mut conn = PgConnection::connect(url).await.unwrap();
                let search_path = format!("SET search_path TO \"{schema}\"");
                sqlx::raw_sql(AssertSqlSafe(search_path))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
        self.reopen_closed().await;
    }

    async fn close(&self) {
        match &self.store {
            Opened::Sqlite(store) => store.close().await,
            Opened::Postgres(store) => store.close().await,
        }
    }

    /// Closes the store and drops the PostgreSQL schema.
    pub async fn finish(mut self) {
        self.close().await;
        if let Place::Postgres { url, schema } = &self.place {
            drop_schema(url, schema).await;
        }
        self.cleaned = true;
    }
}

impl Drop for TestDb {
    // A failed test never reaches `finish`: drop its schema here, on a thread of its own since
    // a destructor cannot wait for a future on the test's runtime.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        if let Place::Postgres { url, schema } = &self.place {
            let (url, schema) = (url.clone(), schema.clone());
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(drop_schema(&url, &schema));
            });
            cleanup.join().ok();
        }
    }
}

async fn open_postgres(url: &str, schema: &str) -> PostgresStore {
    PostgresOptions::new(url)
        .with_schema(schema)
        .max_connections(8)
        .connect()
        .await
        .unwrap()
}

async fn drop_schema(url: &str, schema: &str) {
    if let Ok(mut conn) = PgConnection::connect(url).await {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut conn)
        .await
        .ok();
        conn.close().await.ok();
    }
}

/// A schema name no other test of this or a concurrent run uses.
fn unique_schema_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!(
        "gantry_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}
