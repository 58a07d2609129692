//! A real `gantry server` for scenario tests: started on a free loopback port with a temporary
//! data directory, killed (SIGKILL) or restarted on demand, and its log printed when the test
//! fails. Plus a small JSON client that sends raw bodies, so tests can send malformed ones.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A server process and where its state lives.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    port: u16,
    data_dir: tempfile::TempDir,
    log: PathBuf,
    extra: Vec<String>,
    agent: ureq::Agent,
}

/// The PostgreSQL scenario tests run against (`GANTRY_TEST_DATABASE_URL`, default the local
/// one), as `gantry server` arguments with a schema of the test's own. `None` (with a loud
/// message) when it cannot be reached outside CI; under `CI=true` an unreachable database fails
/// the test instead, so CI never skips the PostgreSQL scenarios.
pub fn postgres_server_args() -> Option<Vec<String>> {
    static SCHEMAS: AtomicUsize = AtomicUsize::new(0);
    let url = std::env::var("GANTRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    // The host and port: after the scheme and any `user@`, before the database path.
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let address = rest.split(['/', '?']).next().unwrap_or(rest);
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .is_some_and(|address| {
            TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
        });
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL at {url} is required under CI=true"
        );
        eprintln!("SKIPPED: PostgreSQL at {url} is not reachable; set GANTRY_TEST_DATABASE_URL");
        return None;
    }
    let schema = format!(
        "gantry_scenario_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |time| time.as_millis())
    );
    Some(vec![
        "--database-url".to_owned(),
        url,
        "--database-schema".to_owned(),
        schema,
    ])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server with an empty data directory.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let log = data_dir.path().join("server.log");
        let port = free_port();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut server = Server {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            data_dir,
            log,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            agent,
        };
        server.spawn();
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra)
            .env("GANTRY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.agent.get(format!("{}/api/v1/health", self.url)).call()
                && response.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {status} before it was ready");
            }
            assert!(Instant::now() < deadline, "server not ready after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a request with a raw body (JSON content type) and reads the JSON answer.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            (_, body) => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("unsupported method {other}"),
                };
                // An empty body goes without a content type, as a bare `curl -X POST` sends it.
                let bare = body.is_some_and(<[u8]>::is_empty);
                if !bare
                    && !headers
                        .iter()
                        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                {
                    request = request.header("content-type", "application/json");
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body.unwrap_or(b"{}"))
            }
        };
        let mut response = response.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.raw("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.raw("POST", path, Some(body.to_string().as_bytes()), &[])
    }

    /// `POST`, expecting `status`.
    pub fn post_ok(&self, path: &str, body: &Value, status: u16) -> Value {
        let (got, answer) = self.post(path, body);
        assert_eq!(got, status, "POST {path}: {answer}");
        answer
    }

    /// `GET`, expecting 200.
    pub fn get_ok(&self, path: &str) -> Value {
        let (status, answer) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer
    }

    /// Creates organization `org` and repository `org/repo`.
    pub fn create_repo(&self, org: &str, repo: &str) {
        self.post_ok("/api/v1/orgs", &serde_json::json!({ "name": org }), 201);
        self.post_ok(
            &format!("/api/v1/orgs/{org}/repos"),
            &serde_json::json!({ "name": repo }),
            201,
        );
    }

    /// Runs the `gantry` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(args)
            .env("GANTRY_SERVER", &self.url)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- gantry server log ({}) -----\n{}",
                self.log.display(),
                self.log()
            );
        }
        self.drop_schema();
    }
}

impl Server {
    /// The value the server was started with for `flag`, if any.
    fn argument(&self, flag: &str) -> Option<&str> {
        let at = self.extra.iter().position(|argument| argument == flag)?;
        self.extra.get(at + 1).map(String::as_str)
    }

    /// Drops the PostgreSQL schema of a server started with [`postgres_server_args`] (each
    /// such server has a schema of its own), so that test runs leave none behind. Failing to
    /// drop it is said, not a test failure: the test's outcome is already decided.
    fn drop_schema(&self) {
        let (Some(url), Some(schema)) = (
            self.argument("--database-url"),
            self.argument("--database-schema"),
        ) else {
            return;
        };
        let dropped = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())
            .and_then(|runtime| {
                runtime.block_on(async {
                    use sqlx::Connection;
                    let mut connection = sqlx::PgConnection::connect(url)
                        .await
                        .map_err(|error| error.to_string())?;
                    // The schema name is this file's own (`gantry_scenario_…`), never input.
                    let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                        .execute(&mut connection)
                        .await
                        .map_err(|error| error.to_string())?;
                    connection.close().await.map_err(|error| error.to_string())
                })
            });
        if let Err(error) = dropped {
            eprintln!("could not drop the test schema {schema}: {error}");
        }
    }
}

/// The demo workflow's path.
pub fn demo_workflow() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/.github/workflows/ci.yml")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
