//! Crash safety (issue 3, item 6): a workload of runs driven through the API while the server
//! is killed with SIGKILL at random moments and restarted. Every run must reach the end state
//! the engine computes for it without crashes, with no job lost, duplicated or completed
//! twice.
//!
//! The size is `GANTRY_CRASH_RUNS` (default 50 runs, two of them 100-job DAGs); the seed of
//! the kill schedule is `GANTRY_CRASH_SEED`; `GANTRY_CRASH_DATABASE_URL` runs it on an empty
//! PostgreSQL database instead of SQLite. A second test always runs a smaller workload (20
//! runs) on PostgreSQL in a schema of its own (required under `CI=true`, see
//! `support::postgres_server_args`). The tests print their figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_engine::{
    Conclusion, EngineConfig, Event, JobStatus, Millis, NewRun, RunId, RunState, TriggerContexts,
    apply, create_run,
};
use serde_json::{Value, json};

use crate::support::{Server, demo_workflow, postgres_server_args};

/// A small deterministic generator (xorshift) for the kill schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// The workflow of run `index`: the demo, a chain, a fan-out/fan-in, or a 100-job DAG.
fn workflow(index: usize) -> String {
    let job = |id: &str, needs: &[String]| {
        let needs = if needs.is_empty() {
            String::new()
        } else {
            format!("    needs: [{}]\n", needs.join(", "))
        };
        format!("  {id}:\n{needs}    runs-on: ubuntu-latest\n    steps:\n      - run: echo {id}\n")
    };
    let mut yaml = String::from("on: push\njobs:\n");
    if index.is_multiple_of(25) {
        // Ten layers of ten jobs, each needing two jobs of the layer before.
        for layer in 0..10 {
            for column in 0..10 {
                let needs: Vec<String> = if layer == 0 {
                    Vec::new()
                } else {
                    vec![
                        format!("j{}_{}", layer - 1, column),
                        format!("j{}_{}", layer - 1, (column + 3) % 10),
                    ]
                };
                yaml.push_str(&job(&format!("j{layer}_{column}"), &needs));
            }
        }
        return yaml;
    }
    match index % 3 {
        0 => return std::fs::read_to_string(demo_workflow()).unwrap(),
        1 => {
            let mut previous: Vec<String> = Vec::new();
            for step in ["a", "b", "c", "d", "e"] {
                yaml.push_str(&job(step, &previous));
                previous = vec![step.to_owned()];
            }
        }
        _ => {
            yaml.push_str(&job("root", &[]));
            let leaves: Vec<String> = (0..8).map(|leaf| format!("leaf{leaf}")).collect();
            for leaf in &leaves {
                yaml.push_str(&job(leaf, &["root".to_owned()]));
            }
            yaml.push_str(&job("join", &leaves));
        }
    }
    yaml
}

/// The result the driver reports for a job: a few fail, the same ones in every execution.
fn decide(index: usize, job_key: &str, matrix_index: u64) -> Conclusion {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{index}/{job_key}/{matrix_index}").bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    if hash.is_multiple_of(11) {
        Conclusion::Failure
    } else {
        Conclusion::Success
    }
}

fn wire(conclusion: Conclusion) -> &'static str {
    conclusion.as_str()
}

/// The end state without crashes: the engine alone, completing every queued job with the
/// driver's decision until nothing is queued.
fn reference(index: usize) -> RunState {
    let loaded = gantry_workflow::load(&workflow(index), &Default::default()).unwrap();
    let trigger = TriggerContexts {
        github: gantry_expr::Value::from(json!({ "event_name": "push", "ref": "refs/heads/main" })),
        ..TriggerContexts::default()
    };
    let new = NewRun {
        id: RunId(1),
        workflow: &loaded,
        trigger,
        config: EngineConfig::default(),
    };
    let mut state = create_run(new, Millis(0)).unwrap().state;
    loop {
        let queued: Vec<_> = state
            .instances()
            .filter(|instance| instance.status == JobStatus::Queued)
            .map(|instance| (instance.key.clone(), instance.attempt))
            .collect();
        if queued.is_empty() {
            return state;
        }
        for (key, attempt) in queued {
            let started = Event::JobStarted {
                job: key.clone(),
                attempt,
            };
            state = apply(&state, &started, Millis(1)).unwrap().state;
            let conclusion = decide(index, &key.job, u64::from(key.index));
            let completed = Event::JobCompleted {
                job: key,
                attempt,
                conclusion,
                outputs: Default::default(),
            };
            state = apply(&state, &completed, Millis(2)).unwrap().state;
        }
    }
}

/// A request that survives the server being killed: retried until the server answers.
/// Returns whether a try went unanswered.
fn retrying<T>(mut request: impl FnMut() -> Option<T>) -> (T, bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut interrupted = false;
    loop {
        match request() {
            Some(value) => return (value, interrupted),
            None => {
                interrupted = true;
                assert!(Instant::now() < deadline, "server unreachable for 120 s");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `(status, body)`, or `None` when the server did not answer (killed mid-request).
fn try_request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Option<(u16, Value)> {
    let url = format!("{base}{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let response = match method {
        "GET" => agent.get(&url).call(),
        _ => {
            let mut request = agent.post(&url).header("content-type", "application/json");
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            request.send(body.map(Value::to_string).unwrap_or_default().as_bytes())
        }
    };
    let mut response = response.ok()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

#[test]
fn runs_reach_the_same_end_state_when_the_server_is_killed_at_random() {
    let runs: usize = std::env::var("GANTRY_CRASH_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(50);
    let database = std::env::var("GANTRY_CRASH_DATABASE_URL").ok();
    let server = match &database {
        Some(url) => Server::start_with(&["--database-url", url]),
        None => Server::start(),
    };
    crash_scenario(server, runs, database.is_some());
}

#[test]
fn runs_reach_the_same_end_state_when_a_postgresql_server_is_killed_at_random() {
    let Some(args) = postgres_server_args() else {
        return;
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crash_scenario(Server::start_with(&args), 20, true);
}

/// Submits `runs` runs, completes their jobs through the API while the server is killed and
/// restarted at random, and checks every run's end state.
fn crash_scenario(server: Server, runs: usize, postgres: bool) {
    let seed: u64 = std::env::var("GANTRY_CRASH_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let started = Instant::now();
    server.create_repo("acme", "app");
    // The driver talks to the URL, which a restart keeps; it never waits for the killer, so
    // kills land in the middle of requests and transactions.
    let url = server.url.clone();
    let shared = Arc::new(Mutex::new(server));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));

    // The killer: SIGKILL at random moments, then a restart on the same data.
    let killer = {
        let done = Arc::clone(&done);
        let kills = Arc::clone(&kills);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut rng = Rng(seed);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(rng.between(100, 600)));
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let mut server = shared.lock().unwrap();
                server.restart();
                kills.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    // Submit every run; an idempotency key per run makes a retried submission harmless.
    let mut run_index: HashMap<i64, usize> = HashMap::new();
    for index in 0..runs {
        let body = json!({ "workflow_path": format!(".github/workflows/w{index}.yml"), "workflow": workflow(index) });
        let key = format!("run-{index}");
        let ((status, run), _) = retrying(|| {
            try_request(
                &url,
                "POST",
                "/api/v1/repos/acme/app/runs",
                Some(&body),
                Some(&key),
            )
        });
        assert!(
            status == 201 || status == 200,
            "submit {index}: {status} {run}"
        );
        run_index.insert(run["id"].as_i64().unwrap(), index);
    }
    assert_eq!(run_index.len(), runs, "a submission was duplicated or lost");

    // Drive: complete every queued job with the driver's decision, once.
    let mut completed_by_driver: HashMap<i64, usize> = HashMap::new();
    let mut interrupted_completions = 0usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(
            Instant::now() < deadline,
            "the workload did not finish in 600 s"
        );
        let ((status, queue), _) =
            retrying(|| try_request(&url, "GET", "/api/v1/internal/queue?limit=500", None, None));
        assert_eq!(status, 200, "{queue}");
        let jobs = queue["items"].as_array().unwrap().clone();
        if jobs.is_empty() {
            let ((_, open), _) = retrying(|| {
                try_request(
                    &url,
                    "GET",
                    "/api/v1/runs?status=queued&limit=1",
                    None,
                    None,
                )
                .zip(try_request(
                    &url,
                    "GET",
                    "/api/v1/runs?status=in_progress&limit=1",
                    None,
                    None,
                ))
                .map(|(queued, running)| (200, json!([queued.1["items"], running.1["items"]])))
            });
            if open[0].as_array().unwrap().is_empty() && open[1].as_array().unwrap().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        for job in jobs {
            let (run, id) = (job["run_id"].as_i64().unwrap(), job["id"].as_i64().unwrap());
            let index = run_index[&run];
            let conclusion = decide(
                index,
                job["job_key"].as_str().unwrap(),
                job["matrix_index"].as_u64().unwrap(),
            );
            let path = format!("/api/v1/internal/runs/{run}/jobs/{id}/complete");
            let body =
                json!({ "conclusion": wire(conclusion), "outputs": { "driver": format!("{id}") } });
            let ((status, answer), interrupted) =
                retrying(|| try_request(&url, "POST", &path, Some(&body), None));
            match status {
                200 => {}
                // The first try committed before the server died: the job must show exactly
                // what the driver reported, and the server must refuse it a second time.
                409 if interrupted => {
                    let ((_, now), _) = retrying(|| {
                        try_request(
                            &url,
                            "GET",
                            &format!("/api/v1/runs/{run}/jobs/{id}"),
                            None,
                            None,
                        )
                    });
                    assert_eq!(now["status"], "completed", "{now}");
                    assert_eq!(now["conclusion"], wire(conclusion), "{now}");
                    assert_eq!(now["outputs"]["driver"], format!("{id}"), "{now}");
                    interrupted_completions += 1;
                }
                _ => panic!("complete job {id} of run {run}: {status} {answer}"),
            }
            *completed_by_driver.entry(id).or_default() += 1;
        }
    }
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();

    // Every run against its reference: status, conclusion and every job.
    let mut jobs_checked = 0usize;
    let mut ran: HashSet<i64> = HashSet::new();
    let server = shared.lock().unwrap();
    for (&run, &index) in &run_index {
        let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
        let expected = reference(index);
        assert_eq!(
            detail["run"]["status"], "completed",
            "run {run}: {detail:#}"
        );
        assert_eq!(
            detail["run"]["conclusion"],
            expected.conclusion.unwrap().as_str(),
            "run {run}"
        );
        assert_eq!(detail["run"]["attempt"], 1);
        let mut actual: BTreeMap<(String, u64), &Value> = BTreeMap::new();
        for job in detail["jobs"].as_array().unwrap() {
            let key = (
                job["job_key"].as_str().unwrap().to_owned(),
                job["matrix_index"].as_u64().unwrap(),
            );
            assert!(
                actual.insert(key, job).is_none(),
                "run {run}: duplicated job {job}"
            );
        }
        assert_eq!(
            actual.len(),
            expected.instances().count(),
            "run {run}: job count"
        );
        for instance in expected.instances() {
            let job = actual[&(instance.key.job.clone(), u64::from(instance.key.index))];
            assert_eq!(job["status"], "completed", "run {run}: {job}");
            assert_eq!(
                job["conclusion"],
                instance.conclusion.unwrap().as_str(),
                "run {run}: {job}"
            );
            assert_eq!(job["attempt"], 1, "run {run}: {job}");
            let id = job["id"].as_i64().unwrap();
            let reported = completed_by_driver.get(&id).copied().unwrap_or(0);
            let ran_here = instance.started_at.is_some();
            assert_eq!(
                reported,
                usize::from(ran_here),
                "run {run}: job {job} completed {reported} times"
            );
            if ran_here {
                assert_eq!(
                    job["outputs"]["driver"],
                    format!("{id}"),
                    "run {run}: {job}"
                );
                ran.insert(id);
            }
            jobs_checked += 1;
        }
    }
    assert_eq!(server.get_ok("/api/v1/health")["queued_jobs"], 0);
    let kills = kills.load(Ordering::SeqCst);
    println!(
        "crash safety ({}): {runs} runs, {jobs_checked} jobs ({} run by the driver), {kills} SIGKILLs, \
         {interrupted_completions} completions interrupted by a kill and found committed, {:.1} s",
        if postgres { "postgresql" } else { "sqlite" },
        ran.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills > 0,
        "the server was never killed; the workload was too short"
    );
}
