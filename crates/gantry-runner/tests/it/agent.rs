//! Scenarios of the runner agent against a scripted fake server: a plain HTTP/1.1 listener
//! that answers the runner protocol's requests as a test script says and records them. They
//! check what goes over the wire (the credential, fencing tokens, contiguous log offsets, step
//! reports around their lines, the completion) and how the agent reacts to cancellation and
//! stale tokens, independently of the real server.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_runner::agent::{Agent, AgentConfig, Executors};
use gantry_runner::sandbox::HostExecutor;
use serde_json::{Value, json};

use crate::steps::{options, payload};

/// One request the fake server received.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    authorization: Option<String>,
    body: Value,
}

/// What the fake server answers: a status and a body (`Value::Null` for none).
type Answer = (u16, Value);

/// The fake server's script and record.
#[derive(Default)]
struct Script {
    requests: Vec<Request>,
    /// Claim answers, in order; when empty, claims answer 204 after a short wait.
    claims: VecDeque<Answer>,
    /// Heartbeat answers, in order; when empty, "go on".
    heartbeats: VecDeque<Answer>,
    /// The answer to registration, instead of a welcome.
    register: Option<Answer>,
    /// Completion answers, in order; when empty, 204.
    completes: VecDeque<Answer>,
}

struct FakeServer {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeServer {
    fn start(script: Script) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(script));
        let shared = Arc::clone(&script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let script = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &script));
            }
        });
        FakeServer { url, script }
    }

    fn requests(&self, suffix: &str) -> Vec<Request> {
        self.script
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|request| request.path.ends_with(suffix))
            .cloned()
            .collect()
    }
}

/// Serves one connection: one request, then `Connection: close`.
fn serve(stream: TcpStream, script: &Mutex<Script>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut length = 0;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = Request {
        path: path.clone(),
        authorization,
        body,
    };
    let (status, answer) = answer(&request, script);
    let text = if answer.is_null() {
        String::new()
    } else {
        answer.to_string()
    };
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        _ => "Error",
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn answer(request: &Request, script: &Mutex<Script>) -> Answer {
    let mut locked = script.lock().unwrap();
    locked.requests.push(request.clone());
    let path = request
        .path
        .strip_prefix("/api/v1")
        .unwrap_or(&request.path);
    if path == "/runners/register" {
        if let Some(answer) = locked.register.clone() {
            return answer;
        }
        return (
            200,
            json!({
                "runner_id": 7,
                "credential": "cred-123",
                "protocol_version": 1,
                "labels": request.body["labels"],
                "heartbeat_interval_ms": 50,
                "lease_ms": 1000,
            }),
        );
    }
    if path == "/runner/claim" {
        if let Some(answer) = locked.claims.pop_front() {
            return answer;
        }
        drop(locked);
        std::thread::sleep(Duration::from_millis(50));
        return (204, Value::Null);
    }
    if path.ends_with("/heartbeat") {
        return locked
            .heartbeats
            .pop_front()
            .unwrap_or((200, json!({"cancel_requested": false, "lease_ms": 1000})));
    }
    if path.ends_with("/logs") {
        let stored: u64 = locked
            .requests
            .iter()
            .filter(|r| r.path.ends_with("/logs"))
            .map(|r| r.body["lines"].as_array().map_or(0, Vec::len) as u64)
            .sum();
        return (200, json!({ "stored": stored }));
    }
    if path.ends_with("/complete")
        && let Some(answer) = locked.completes.pop_front()
    {
        return answer;
    }
    if path.ends_with("/steps") || path.ends_with("/complete") {
        return (204, Value::Null);
    }
    (
        404,
        json!({"error": {"code": "not_found", "message": "no route"}}),
    )
}

fn assignment(job_id: i64, token: i64, source: &str, job: &str) -> Answer {
    (
        200,
        json!({
            "job_id": job_id,
            "run_id": 1,
            "attempt": 1,
            "fencing_token": token,
            "heartbeat_interval_ms": 50,
            "lease_ms": 1000,
            "payload": payload(source, job),
        }),
    )
}

fn config(url: &str, work_dir: PathBuf) -> AgentConfig {
    AgentConfig {
        server: url.to_owned(),
        token: "reg-token".to_owned(),
        name: "fake-runner".to_owned(),
        labels: vec!["linux".to_owned()],
        capacity: 1,
        ephemeral: true,
        work_dir,
        network: false,
        limits: Default::default(),
        run_options: options(),
        claim_wait: Duration::from_millis(200),
    }
}

fn agent(url: &str, work_dir: PathBuf) -> Agent {
    Agent::new(
        config(url, work_dir),
        Executors::new(Arc::new(HostExecutor::new())),
    )
}

/// Every log line the fake server got, with each chunk's offset checked.
fn log_texts(server: &FakeServer, token: i64) -> Vec<(u64, String)> {
    let mut expected_offset = 0;
    let mut lines = Vec::new();
    for request in server.requests("/logs") {
        assert_eq!(request.body["fencing_token"], token);
        assert_eq!(
            request.body["offset"], expected_offset,
            "{:#}",
            request.body
        );
        for line in request.body["lines"].as_array().unwrap() {
            lines.push((
                line["step"].as_u64().unwrap(),
                line["text"].as_str().unwrap().to_owned(),
            ));
            expected_offset += 1;
        }
    }
    lines
}

const JOB: &str = r#"
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      answer: ${{ steps.compute.outputs.answer }}
    steps:
      - id: compute
        run: |
          echo "computing"
          echo "answer=42" >> "$GITHUB_OUTPUT"
      - run: |
          for i in $(seq 1 1500); do echo "line $i"; done
          echo "::warning file=a.txt,line=2::look"
"#;

#[test]
fn an_ephemeral_agent_runs_one_job_and_reports_everything() {
    let server = FakeServer::start(Script {
        claims: [assignment(11, 5, JOB, "build")].into(),
        ..Script::default()
    });
    let work = tempfile::tempdir().unwrap();
    let summary = agent(&server.url, work.path().to_owned()).run().unwrap();
    assert_eq!(summary.runner_id, 7);
    assert_eq!(summary.jobs, 1);

    let register = &server.requests("/runners/register")[0];
    assert_eq!(register.body["token"], "reg-token");
    assert_eq!(register.body["protocol_version"], 1);
    assert_eq!(register.body["ephemeral"], true);
    assert_eq!(register.authorization, None);
    for request in server.requests("/claim") {
        assert_eq!(request.authorization.as_deref(), Some("Bearer cred-123"));
    }
    assert_eq!(server.requests("/claim").len(), 1, "ephemeral: one claim");

    // The step runner's own lines (`##[command]...`, `shell: ...`) are sent too.
    let lines = log_texts(&server, 5);
    assert!(lines.contains(&(0, "computing".to_owned())), "{lines:?}");
    let counted: Vec<&String> = lines
        .iter()
        .filter(|(step, text)| *step == 1 && (text.starts_with("line ") || text.starts_with("::")))
        .map(|(_, text)| text)
        .collect();
    assert_eq!(
        counted.len(),
        1501,
        "{:?} {:?}",
        &counted[..3],
        &counted[counted.len() - 3..]
    );
    assert_eq!(counted[0], "line 1");
    assert_eq!(counted[1499], "line 1500");
    assert_eq!(counted[1500], "::warning file=a.txt,line=2::look");

    let steps = server.requests("/jobs/11/steps");
    let statuses: Vec<(u64, &str)> = steps
        .iter()
        .map(|r| {
            (
                r.body["index"].as_u64().unwrap(),
                r.body["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (0, "in_progress"),
            (0, "completed"),
            (1, "in_progress"),
            (1, "completed")
        ]
    );

    let complete = server.requests("/jobs/11/complete");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].body["fencing_token"], 5);
    assert_eq!(complete[0].body["conclusion"], "success");
    assert_eq!(complete[0].body["outputs"]["answer"], "42");
    // The sandbox's job directory is gone.
    let left: Vec<_> = std::fs::read_dir(work.path().join("jobs"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

const SLOW: &str = r#"
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo started; sleep 30; echo "not reached"
      - if: always()
        run: echo "cleanup"
"#;

#[test]
fn a_cancel_from_the_server_stops_the_job_and_reports_it_cancelled() {
    let cancel = (200, json!({"cancel_requested": true, "lease_ms": 1000}));
    let server = FakeServer::start(Script {
        claims: [assignment(12, 9, SLOW, "slow")].into(),
        heartbeats: [cancel].into(),
        ..Script::default()
    });
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    agent(&server.url, work.path().to_owned()).run().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    let complete = server.requests("/jobs/12/complete");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].body["conclusion"], "cancelled");
    let texts: Vec<String> = log_texts(&server, 9).into_iter().map(|(_, t)| t).collect();
    assert!(texts.contains(&"started".to_owned()), "{texts:?}");
    assert!(texts.contains(&"cleanup".to_owned()), "{texts:?}");
    assert!(!texts.contains(&"not reached".to_owned()), "{texts:?}");
}

#[test]
fn a_stale_token_stops_the_job_and_sends_no_result() {
    let stale = (
        409,
        json!({"error": {"code": "stale_token", "message": "the job moved on"}}),
    );
    let server = FakeServer::start(Script {
        claims: [assignment(13, 3, SLOW, "slow")].into(),
        heartbeats: [stale].into(),
        ..Script::default()
    });
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    agent(&server.url, work.path().to_owned()).run().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(server.requests("/jobs/13/complete").is_empty());
}

#[test]
fn the_stop_flag_cancels_running_jobs_and_reports_them() {
    let server = FakeServer::start(Script {
        claims: [assignment(14, 4, SLOW, "slow")].into(),
        ..Script::default()
    });
    let work = tempfile::tempdir().unwrap();
    let mut config = config(&server.url, work.path().to_owned());
    config.ephemeral = false;
    config.capacity = 2;
    let agent = Agent::new(config, Executors::new(Arc::new(HostExecutor::new())));
    let stop = agent.stop_flag();
    let running = std::thread::spawn(move || agent.run());
    // Wait until the job printed its first line, then stop the agent.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.requests("/jobs/14/logs").is_empty() {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let summary = running.join().unwrap().unwrap();
    assert_eq!(summary.jobs, 1);
    let complete = server.requests("/jobs/14/complete");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].body["conclusion"], "cancelled");
}

#[test]
fn a_refused_registration_is_an_error() {
    let refused = (
        401,
        json!({"error": {"code": "unauthorized", "message": "bad token"}}),
    );
    let server = FakeServer::start(Script {
        register: Some(refused),
        ..Script::default()
    });
    let work = tempfile::tempdir().unwrap();
    let error = agent(&server.url, work.path().to_owned())
        .run()
        .unwrap_err();
    assert!(error.to_string().contains("unauthorized"), "{error}");
    assert!(server.requests("/claim").is_empty());
}

#[test]
fn refused_claims_and_failed_completions_are_repeated() {
    let busy = (
        409,
        json!({"error": {"code": "conflict", "message": "the runner holds its capacity"}}),
    );
    let down = (
        503,
        json!({"error": {"code": "unavailable", "message": "try later"}}),
    );
    let server = FakeServer::start(Script {
        claims: [busy, assignment(15, 2, JOB, "build")].into(),
        completes: [down.clone(), down].into(),
        ..Script::default()
    });
    let work = tempfile::tempdir().unwrap();
    let summary = agent(&server.url, work.path().to_owned()).run().unwrap();
    assert_eq!(summary.jobs, 1);
    assert_eq!(server.requests("/claim").len(), 2);
    let complete = server.requests("/jobs/15/complete");
    assert_eq!(complete.len(), 3, "two refusals, then accepted");
    assert!(complete.iter().all(|r| r.body["conclusion"] == "success"));
}
