//! Claims: a runner asks for up to as many jobs as it has free slots (`POST /runner/claim`
//! for one, `POST /runner/claims` for a batch), waiting up to `wait_ms` for the first.
//!
//! The jobs are picked from the dispatcher's fair queue under its lock, then claimed in the
//! store and started in the engine: the picks of one run in one transition that hands out
//! their fencing tokens, the runs' transitions of a batch stored together
//! ([`App::drive_runs`]). A pick the store or the engine refuses (the job was cancelled
//! or claimed meanwhile) writes nothing and is dropped; if nothing of a batch could be taken,
//! the claim looks again.

use std::sync::Arc;
use std::time::Duration;

use gantry_engine::{Attempt, Event, JobKey};
use gantry_proto::v1 as proto;
use gantry_store::{JobId, JobStatus, RunId, RunnerId, StoreError};
use tokio::sync::Notify;

use crate::app::App;
use crate::convert::{self, now};
use crate::dispatcher;
use crate::error::ApiError;
use crate::run_changes::{AppliedSteps, RunnerClaim, Step, by_run};
use crate::runner_registry::unauthorized;
use crate::waiters::WaiterId;

impl App {
    /// `POST /runner/claim`: a job for the runner, waiting up to `wait_ms` for one.
    pub async fn claim(
        self: &Arc<App>,
        runner: RunnerId,
        request: proto::ClaimJob,
    ) -> Result<Option<proto::JobAssignment>, ApiError> {
        let batch = proto::ClaimJobs {
            wait_ms: request.wait_ms,
            max_jobs: 1,
        };
        Ok(self.claim_jobs(runner, batch).await?.jobs.pop())
    }

    /// `POST /runner/claims`: up to `max_jobs` jobs for the runner (no more than its free
    /// capacity), waiting up to `wait_ms` for the first.
    pub async fn claim_jobs(
        self: &Arc<App>,
        runner: RunnerId,
        request: proto::ClaimJobs,
    ) -> Result<proto::JobAssignments, ApiError> {
        if request.wait_ms > proto::MAX_CLAIM_WAIT_MS {
            return Err(ApiError::invalid_field(
                "wait_ms",
                format!("at most {}", proto::MAX_CLAIM_WAIT_MS),
            ));
        }
        if request.max_jobs == 0 || request.max_jobs > proto::MAX_BATCH_JOBS {
            return Err(ApiError::invalid_field(
                "max_jobs",
                format!(
                    "must be 1 to {}, got {}",
                    proto::MAX_BATCH_JOBS,
                    request.max_jobs
                ),
            ));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(request.wait_ms);
        let mut may_wait = true;
        loop {
            let picked = match self.pick_for(runner, request.max_jobs as usize, may_wait)? {
                Picked::Jobs(picked) => picked,
                Picked::Nothing => return Ok(proto::JobAssignments { jobs: Vec::new() }),
                Picked::Wait(id, bell) => {
                    let mut waiting = Waiting {
                        app: self,
                        id,
                        left: false,
                    };
                    let woken = tokio::time::timeout_at(deadline, bell.notified()).await;
                    let still_waiting = waiting.leave();
                    // Out of time but woken meanwhile: the job that woke it is looked at once
                    // more rather than left to the next claim.
                    may_wait = woken.is_ok();
                    if !may_wait && still_waiting {
                        return Ok(proto::JobAssignments { jobs: Vec::new() });
                    }
                    continue;
                }
            };
            // Once a claim has committed, the dispatcher must hold its lease even if the
            // runner hangs up meanwhile (which drops this request's future): the rest runs
            // as its own task. An answer nobody reads is then a lease that expires, and the
            // job is queued again.
            let app = Arc::clone(self);
            let taken = tokio::spawn(async move { app.take(runner, picked).await })
                .await
                .map_err(|error| ApiError::internal(&format!("claim task failed: {error}")))?;
            let jobs = taken?;
            if !jobs.is_empty() {
                return Ok(proto::JobAssignments { jobs });
            }
        }
    }

    /// Picks up to `wanted` jobs for `runner` from the fair queue (no more than its free
    /// slots), with their runs. Finding none, the claim gets in line for work if it
    /// `may_wait`: in the same turn of the lock, so no job queued after the look is missed.
    fn pick_for(
        &self,
        runner: RunnerId,
        wanted: usize,
        may_wait: bool,
    ) -> Result<Picked, ApiError> {
        let mut state = self.dispatch.lock();
        let Some(entry) = state.runners.get(&runner) else {
            return Err(unauthorized(format!("runner {runner} is not registered")));
        };
        if entry.spent {
            return Err(ApiError::conflict(format!(
                "runner {runner} is ephemeral and has had its job"
            )));
        }
        if entry.held.len() >= entry.capacity {
            return Err(ApiError::conflict(format!(
                "runner {runner} already holds {} jobs, its capacity",
                entry.capacity
            )));
        }
        // An ephemeral runner runs one job, whatever its capacity says.
        let free = if entry.ephemeral {
            1
        } else {
            entry.capacity - entry.held.len()
        };
        let view = entry.view.clone();
        let time = now();
        let mut picked = Vec::new();
        while picked.len() < wanted.min(free) {
            let Some(job) = state.queue.pick(&view, time) else {
                break;
            };
            let Some(run) = state.queue.job(job).map(|queued| RunId(queued.run.0)) else {
                // Picked but unknown to the queue: cannot happen; give it back.
                let _ = state.queue.release(job);
                break;
            };
            picked.push((dispatcher::job_id(job), run));
        }
        if !picked.is_empty() {
            return Ok(Picked::Jobs(picked));
        }
        if !may_wait {
            return Ok(Picked::Nothing);
        }
        let (id, bell) = state.waiters.add(runner, view);
        Ok(Picked::Wait(id, bell))
    }

    /// Claims and starts picked jobs, each run's in one transaction, the runs' transactions
    /// stored together ([`App::drive_runs`]). Returns the assignments of the jobs taken; jobs
    /// that had moved on are dropped.
    async fn take(
        &self,
        runner: RunnerId,
        picked: Vec<(JobId, RunId)>,
    ) -> Result<Vec<proto::JobAssignment>, ApiError> {
        let mut failure = None;
        let mut batch = Vec::new();
        for (run_id, jobs) in by_run(picked.into_iter().map(|(job, run)| (run, job))) {
            match self.claim_steps(runner, run_id, &jobs).await {
                Ok(steps) if steps.is_empty() => {}
                Ok(steps) => batch.push((run_id, steps)),
                Err(error) => failure = Some(error),
            }
        }
        let applied = self.drive_runs(&batch).await;
        let mut assignments = Vec::new();
        for ((run_id, steps), applied) in batch.iter().zip(applied) {
            let taken = match applied {
                Ok(applied) => self.assignments(*run_id, steps, applied).await,
                Err(error) => {
                    self.release(steps.iter().filter_map(|step| step.claim));
                    Err(error)
                }
            };
            match taken {
                Ok(taken) => assignments.extend(taken),
                Err(error) => failure = Some(error),
            }
        }
        // Jobs taken from other runs are leased: hand them out even if one run failed.
        match failure {
            Some(error) if assignments.is_empty() => Err(error),
            _ => Ok(assignments),
        }
    }

    /// Gives picked jobs back to the fair queue (nothing was written for them).
    fn release(&self, claims: impl IntoIterator<Item = RunnerClaim>) {
        let mut state = self.dispatch.lock();
        for claim in claims {
            state.release(claim.job_id);
        }
    }

    /// The claims of picked jobs of one run as engine steps ("job started" with the claim);
    /// a job gone, cancelled or ended since it was queued is forgotten by the queue.
    async fn claim_steps(
        &self,
        runner: RunnerId,
        run_id: RunId,
        jobs: &[JobId],
    ) -> Result<Vec<Step>, ApiError> {
        let at = now();
        let claim = |job_id| RunnerClaim { job_id, runner, at };
        let rows = match self.claimable(run_id, jobs).await {
            Ok(rows) => rows,
            Err(error) => {
                self.release(jobs.iter().copied().map(claim));
                return Err(error);
            }
        };
        let mut steps = Vec::with_capacity(rows.len());
        for (job_id, row) in jobs.iter().zip(rows) {
            match row {
                Some(Queued { key, attempt }) => {
                    let attempt = Attempt(u32::try_from(attempt).unwrap_or(u32::MAX));
                    steps.push(Step {
                        event: Event::JobStarted { job: key, attempt },
                        token: None,
                        claim: Some(claim(*job_id)),
                    });
                }
                _ => self.dispatch.forget(*job_id),
            }
        }
        Ok(steps)
    }

    /// The assignments of a run's claims that committed; a step refused (the job cancelled,
    /// timed out or claimed by another since it was read) wrote nothing and is forgotten.
    async fn assignments(
        &self,
        run_id: RunId,
        steps: &[Step],
        applied: AppliedSteps,
    ) -> Result<Vec<proto::JobAssignment>, ApiError> {
        let mut claims = applied.claims.iter();
        let mut assignments = Vec::with_capacity(applied.claims.len());
        for (step, outcome) in steps.iter().zip(&applied.outcomes) {
            let (Some(request), Event::JobStarted { job: key, attempt }) =
                (step.claim, &step.event)
            else {
                continue;
            };
            if let Err(error) = outcome {
                tracing::info!(job_id = %request.job_id, error = %error.message, "picked job no longer claimable");
                self.dispatch.forget(request.job_id);
                continue;
            }
            let Some(claim) = claims.next() else {
                return Err(ApiError::internal(&format!(
                    "the start of job {} committed without its claim",
                    request.job_id
                )));
            };
            let mut payload = self.payload(run_id, &applied.state, key).await?;
            payload.job_id = Some(claim.job_id.0);
            tracing::info!(run_id = %run_id, job_id = %claim.job_id, runner_id = %request.runner, attempt = claim.attempt, "job claimed");
            assignments.push(proto::JobAssignment {
                job_id: claim.job_id.0,
                run_id: run_id.0,
                attempt: attempt.0,
                fencing_token: claim.fencing_token.0,
                heartbeat_interval_ms: self.dispatch.settings.heartbeat_interval_ms,
                lease_ms: self.dispatch.settings.lease_ms,
                payload,
            });
        }
        Ok(assignments)
    }

    /// Which of `jobs` of a run are still queued, with their instance and attempt (`None`
    /// for one not found or not queued): from the run cache when it holds the run's rows,
    /// else from the store.
    async fn claimable(
        &self,
        run_id: RunId,
        jobs: &[JobId],
    ) -> Result<Vec<Option<Queued>>, ApiError> {
        if let Some(rows) = self.cached_rows_as(run_id, jobs, Queued::of) {
            return Ok(rows.into_iter().map(Option::flatten).collect());
        }
        let mut rows = Vec::with_capacity(jobs.len());
        for &job in jobs {
            match self.store.get_job(job).await {
                Ok(row) if row.run_id == run_id => rows.push(Queued::of(&row)),
                Ok(_) | Err(StoreError::NotFound { .. }) => rows.push(None),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(rows)
    }
}

/// What a claim needs of a queued job's row: the rest is not copied.
struct Queued {
    key: JobKey,
    attempt: i64,
}

impl Queued {
    /// The instance and attempt of a row still queued.
    fn of(row: &gantry_store::Job) -> Option<Queued> {
        (row.status == JobStatus::Queued).then(|| Queued {
            key: convert::job_key(row),
            attempt: row.attempt,
        })
    }
}

/// What a look at the queue found for a claim.
enum Picked {
    /// Jobs picked, with their runs.
    Jobs(Vec<(JobId, RunId)>),
    /// None, and the claim may not wait.
    Nothing,
    /// None: the claim is in line for work and waits on the bell.
    Wait(WaiterId, Arc<Notify>),
}

/// A claim's place in line for work while it waits. A claim dropped while waiting (its
/// runner hung up) leaves the line; if it had been woken, what woke it goes to the others.
struct Waiting<'a> {
    app: &'a App,
    id: WaiterId,
    left: bool,
}

impl Waiting<'_> {
    /// Leaves the line: true if still waiting, false if woken.
    fn leave(&mut self) -> bool {
        self.left = true;
        self.app.dispatch.stop_waiting(self.id)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.left && !self.app.dispatch.stop_waiting(self.id) {
            self.app.dispatch.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;
    use gantry_engine::dispatch::{LabelSet, RunnerView};

    /// A hosted runner of `labels` on `app`.
    async fn runner(app: &App, labels: &[&str]) -> RunnerId {
        app.allow_hosted_token("hosted").await.unwrap();
        let registered = app
            .register_runner(proto::RegisterRunner {
                token: "hosted".into(),
                name: "runner".into(),
                labels: labels.iter().map(|label| label.to_string()).collect(),
                capacity: 1,
                ephemeral: false,
                protocol_version: proto::RUNNER_PROTOCOL_VERSION,
            })
            .await
            .unwrap();
        app.authenticate_runner(&registered.credential)
            .await
            .unwrap()
    }

    fn waiting(app: &App) -> usize {
        app.dispatch.lock().waiters.len()
    }

    /// Waits until `count` claims are in line (the claims run as tasks).
    async fn until_waiting(app: &App, count: usize) {
        for _ in 0..200 {
            if waiting(app) == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{} claims wait, not {count}", waiting(app));
    }

    /// A queued job wakes one waiting claim, the longest waiting of those whose runner can
    /// take it: the others stay in line, unbothered.
    #[tokio::test]
    async fn a_queued_job_wakes_one_claim_that_can_take_it() {
        let fixture = test_support::one_job().await;
        let app = &fixture.app;
        // The fixture's job goes to a first runner, so the queue is empty.
        let first = runner(app, &["ubuntu-latest"]).await;
        let request = proto::ClaimJob { wait_ms: 0 };
        assert!(app.claim(first, request).await.unwrap().is_some());

        let gpu = runner(app, &["gpu"]).await;
        let linux: Vec<RunnerId> = [
            runner(app, &["ubuntu-latest"]).await,
            runner(app, &["ubuntu-latest"]).await,
        ]
        .into();
        let claim = |runner| {
            let app = Arc::clone(app);
            tokio::spawn(async move {
                app.claim(runner, proto::ClaimJob { wait_ms: 5_000 })
                    .await
                    .unwrap()
            })
        };
        let gpu_claim = claim(gpu);
        until_waiting(app, 1).await;
        let mut linux_claims = linux.iter().map(|runner| claim(*runner));
        let longest = linux_claims.next().unwrap();
        until_waiting(app, 2).await;
        let other = linux_claims.next().unwrap();
        until_waiting(app, 3).await;

        test_support::trigger(
            app,
            "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps: [{run: 'true'}]\n",
        )
        .await;
        let assignment = longest
            .await
            .unwrap()
            .expect("the longest-waiting linux claim");
        assert_eq!(assignment.attempt, 1);
        // The gpu claim and the other linux claim were not woken.
        assert_eq!(waiting(app), 2);
        other.abort();
        gpu_claim.abort();
    }

    /// A claim woken but gone before it looked (its runner hung up) hands its wake-up on to
    /// the claims still waiting.
    #[tokio::test]
    async fn a_claim_gone_after_its_wake_up_passes_it_on() {
        let fixture = test_support::one_job().await;
        let app = &fixture.app;
        let view = RunnerView::hosted(LabelSet::new(["linux"]));
        let (gone, _) = app.dispatch.lock().waiters.add(RunnerId(1), view.clone());
        let (_, next) = app.dispatch.lock().waiters.add(RunnerId(2), view);
        assert!(
            app.dispatch
                .lock()
                .waiters
                .wake_one(|runner, _| runner == RunnerId(1))
        );
        drop(Waiting {
            app,
            id: gone,
            left: false,
        });
        tokio::time::timeout(Duration::from_secs(5), next.notified())
            .await
            .expect("the next claim is woken");
        assert_eq!(waiting(app), 0);
    }
}
