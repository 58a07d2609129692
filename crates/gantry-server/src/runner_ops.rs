//! The runner protocol's job operations after a claim: heartbeats, step and log reports and
//! results (one, or a batch whose runs each commit in one transaction). Registration is
//! `runner_registry`'s, claims `claims`', lease expiry `leases`'.
//!
//! Every call after a claim is checked against the lease in memory
//! (right runner, right token) and, for what it writes, against the job's latest token in
//! the store.

use std::collections::HashSet;
use std::sync::Arc;

use gantry_engine::{Event, JobKey, Millis};
use gantry_proto::v1 as proto;
use gantry_store::{
    Claim, FencingToken, JobId, LogAppend, NewLogLine, RunId, RunnerId, StepResult, StoreError,
};

use crate::app::App;
use crate::called::{CalledWorkflows, RunWorkflows};
use crate::convert::{self, ms, now};
use crate::dispatcher::LeaseEntry;
use crate::error::ApiError;
use crate::run_changes::{Step, by_run};

/// The largest checkout served, in bytes of file content.
const MAX_CHECKOUT_BYTES: u64 = 1024 * 1024 * 1024;

/// The results of a batch about one run: each one's position in the batch, its job and the
/// lease it ends.
type ResultJobs = Vec<(usize, JobId, LeaseEntry)>;

/// A stale-token refusal: the runner must stop the job.
fn stale(message: impl Into<String>) -> ApiError {
    ApiError::new(proto::ErrorCode::StaleToken, message)
}

/// The store's refusals of a runner's write, in protocol terms.
fn runner_write_error(error: StoreError) -> ApiError {
    match error {
        StoreError::StaleToken { what } => stale(what),
        other => other.into(),
    }
}

impl App {
    /// When a lease granted or renewed at `at` ends.
    pub(crate) fn lease_deadline(&self, at: Millis) -> Millis {
        at.after(Millis(self.dispatch.settings.lease_ms))
    }

    /// Gives `runner` the lease of a job it claimed (called once the claim has committed).
    pub(crate) fn grant_lease(
        &self,
        runner: RunnerId,
        claim: &Claim,
        key: JobKey,
        attempt: gantry_engine::Attempt,
        deadline: Millis,
    ) {
        let first_lease = {
            let mut state = self.dispatch.lock();
            let first_lease = state.leases.is_empty();
            state.leases.insert(
                claim.job_id,
                LeaseEntry {
                    runner,
                    token: claim.fencing_token,
                    run_id: claim.run_id,
                    key,
                    attempt,
                    deadline,
                    cancel_requested: false,
                },
            );
            if let Some(entry) = state.runners.get_mut(&runner) {
                entry.held.insert(claim.job_id);
                if entry.ephemeral {
                    entry.spent = true;
                }
            }
            first_lease
        };
        // Every lease lasts `lease_ms` from when it was granted or renewed, so a new one never
        // ends before those already held and the watcher's wait stays right; it is woken only
        // when it had nothing to wait for. Waking it per claim cost two scans of the lease
        // table under the dispatcher's lock: claims slowed from ~380/s to ~135/s by 83,000
        // leases (`gantry bench heartbeats --leased 200000`).
        if first_lease {
            self.lease_changed.notify_one();
        }
    }

    /// The job's payload, from the workflow file the run was created from.
    pub(crate) async fn payload(
        &self,
        run_id: RunId,
        state: &gantry_engine::RunState,
        key: &JobKey,
    ) -> Result<proto::JobPayload, ApiError> {
        let workflows = self.workflow_of(run_id).await?;
        // No secret store yet: every secret reads as empty, as an unknown one does on GitHub.
        gantry_engine::job_payload_with_calls(
            state,
            &workflows.workflow,
            workflows.called.as_ref(),
            key,
            &|_| None,
        )
        .map_err(|error| ApiError::internal(&format!("cannot build the payload of {key}: {error}")))
    }

    /// The loaded workflow of a run and the workflows it calls (cached: a run's files never
    /// change).
    async fn workflow_of(&self, run_id: RunId) -> Result<RunWorkflows, ApiError> {
        if let Some(workflows) = self.workflows().get_mut(&run_id) {
            return Ok(workflows.clone());
        }
        let no_longer_loads =
            |what: &str| ApiError::internal(&format!("the {what} of run {run_id} no longer loads"));
        let source = self.store.workflow_source(run_id).await?;
        let workflow = gantry_workflow::load(&source, &gantry_workflow::Limits::default())
            .map_err(|_| no_longer_loads("workflow file"))?;
        let sources = self.store.called_workflows(run_id).await?;
        let called = CalledWorkflows::load(&sources)
            .map_err(|_| no_longer_loads("called workflow files"))?;
        let workflows = RunWorkflows {
            workflow: Arc::new(workflow),
            called: Arc::new(called),
        };
        self.remember_workflow(run_id, workflows.clone());
        Ok(workflows)
    }

    /// Keeps a run's loaded workflows for the claims of its jobs.
    pub(crate) fn remember_workflow(&self, run_id: RunId, workflow: RunWorkflows) {
        let weight = workflow.workflow.jobs.len().max(1);
        self.workflows().insert(run_id, workflow, weight);
    }

    /// The lease of `job` if `runner` holds it under `token`.
    fn held_lease(&self, runner: RunnerId, job: JobId, token: i64) -> Result<LeaseEntry, ApiError> {
        let state = self.dispatch.lock();
        let Some(lease) = state.leases.get(&job) else {
            return Err(stale(format!(
                "job {job} has no live lease (it ended, or its lease expired)"
            )));
        };
        if lease.runner != runner {
            return Err(ApiError::not_found(format!(
                "job {job} is not held by runner {runner}"
            )));
        }
        if lease.token != FencingToken(token) {
            return Err(stale(format!(
                "fencing token {token} of job {job} is stale; the latest is {}",
                lease.token
            )));
        }
        Ok(lease.clone())
    }

    /// `POST /runner/jobs/{job}/heartbeat`: extends the lease; answers with a cancel request.
    pub fn heartbeat(
        &self,
        runner: RunnerId,
        job: JobId,
        request: &proto::Heartbeat,
    ) -> Result<proto::HeartbeatAnswer, ApiError> {
        self.held_lease(runner, job, request.fencing_token)?;
        let lease_ms = self.dispatch.settings.lease_ms;
        let mut state = self.dispatch.lock();
        let lease = state
            .leases
            .get_mut(&job)
            .ok_or_else(|| stale(format!("job {job} has no live lease")))?;
        lease.deadline = now().after(Millis(lease_ms));
        Ok(proto::HeartbeatAnswer {
            cancel_requested: lease.cancel_requested,
            lease_ms,
        })
    }

    /// `POST /runner/jobs/{job}/steps`.
    pub async fn report_step(
        &self,
        runner: RunnerId,
        job: JobId,
        report: proto::StepReport,
    ) -> Result<(), ApiError> {
        let lease = self.held_lease(runner, job, report.fencing_token)?;
        let time = ms(convert::engine_time(report.time));
        let (status, started, ended) = match report.status {
            proto::StepStatus::InProgress => {
                if report.conclusion.is_some() {
                    return Err(ApiError::invalid_field(
                        "conclusion",
                        "a step that started has no conclusion yet",
                    ));
                }
                (gantry_store::StepStatus::InProgress, Some(time), None)
            }
            proto::StepStatus::Completed => {
                if report.conclusion.is_none() {
                    return Err(ApiError::invalid_field(
                        "conclusion",
                        "a step that ended needs its conclusion",
                    ));
                }
                (gantry_store::StepStatus::Completed, None, Some(time))
            }
        };
        let step = StepResult {
            job_id: job,
            attempt: i64::from(lease.attempt.0),
            step_index: i64::from(report.index),
            name: report.name.chars().take(1024).collect(),
            status,
            conclusion: report.conclusion.map(|conclusion| {
                convert::store_conclusion(convert::engine_conclusion(conclusion))
            }),
            started_at_ms: started,
            ended_at_ms: ended,
        };
        let step = match (status, started) {
            // The stored row keeps when it started: read it back into the update.
            (gantry_store::StepStatus::Completed, _) => self.with_start(step).await?,
            _ => step,
        };
        self.store
            .report_step(lease.token, step)
            .await
            .map_err(runner_write_error)?;
        Ok(())
    }

    /// A completed step's row with the start time its earlier report stored.
    async fn with_start(&self, mut step: StepResult) -> Result<StepResult, ApiError> {
        let stored = self.store.list_step_results(step.job_id).await?;
        step.started_at_ms = stored
            .iter()
            .find(|row| row.attempt == step.attempt && row.step_index == step.step_index)
            .and_then(|row| row.started_at_ms);
        Ok(step)
    }

    /// `POST /runner/jobs/{job}/logs`.
    pub async fn append_log(
        &self,
        runner: RunnerId,
        job: JobId,
        chunk: proto::LogChunk,
    ) -> Result<proto::LogChunkAccepted, ApiError> {
        let lease = self.held_lease(runner, job, chunk.fencing_token)?;
        if chunk.lines.len() > proto::MAX_LOG_LINES_PER_CHUNK {
            return Err(ApiError::invalid_field(
                "lines",
                format!(
                    "a chunk carries at most {} lines, got {}",
                    proto::MAX_LOG_LINES_PER_CHUNK,
                    chunk.lines.len()
                ),
            ));
        }
        let mut lines = Vec::with_capacity(chunk.lines.len());
        for (index, line) in chunk.lines.into_iter().enumerate() {
            if line.text.len() > proto::MAX_LOG_LINE_BYTES {
                return Err(ApiError::invalid_field(
                    &format!("lines[{index}].text"),
                    format!(
                        "a line is at most {} bytes, got {}",
                        proto::MAX_LOG_LINE_BYTES,
                        line.text.len()
                    ),
                ));
            }
            if line.number == 0 {
                return Err(ApiError::invalid_field(
                    &format!("lines[{index}].number"),
                    "line numbers start at 1",
                ));
            }
            lines.push(NewLogLine {
                step_index: i64::from(line.step),
                line_number: i64::try_from(line.number).unwrap_or(i64::MAX),
                time_ms: ms(convert::engine_time(line.time)),
                text: line.text,
            });
        }
        let stored = self
            .store
            .append_log(LogAppend {
                job_id: job,
                fencing_token: lease.token,
                offset: i64::try_from(chunk.offset).unwrap_or(i64::MAX),
                lines,
            })
            .await
            .map_err(runner_write_error)?;
        self.ring_log(job);
        Ok(proto::LogChunkAccepted {
            stored: u64::try_from(stored).unwrap_or(0),
        })
    }

    /// `GET /runner/jobs/{job}/source`: the run's commit as a tar archive, from the
    /// repository's git source, for `actions/checkout`. Only the run's own repository.
    pub async fn job_source(
        &self,
        runner: RunnerId,
        job: JobId,
        query: proto::SourceQuery,
    ) -> Result<Vec<u8>, ApiError> {
        let lease = self.held_lease(runner, job, query.fencing_token)?;
        let run = self.store.get_run(lease.run_id).await?;
        let repo = self.store.get_repository(run.repo_id).await?;
        let full_name = self.full_name(run.repo_id).await?;
        if let Some(asked) = &query.repository
            && !asked.eq_ignore_ascii_case(&full_name)
        {
            return Err(ApiError::not_found(format!(
                "only the run's own repository `{full_name}` can be checked out, not `{asked}`"
            )));
        }
        let source = self.repository_source(&repo, &full_name).await?;
        let path = std::path::PathBuf::from(&source.git_path);
        let sha = run.sha.clone();
        let url = source.git_url.clone();
        tokio::task::spawn_blocking(move || {
            // A mirror this node lacks is cloned first; an origin out of reach may come back
            // (503, as for events).
            crate::mirror::ensure(url.as_deref(), &path)
                .map_err(|error| ApiError::new(proto::ErrorCode::Unavailable, error.to_string()))?;
            crate::git::GitRepo::open(&path)
                .and_then(|repo| repo.archive(&sha, MAX_CHECKOUT_BYTES))
                .map_err(|error| match error {
                    crate::git::GitError::Missing { .. } => ApiError::not_found(error.to_string()),
                    other => ApiError::new(proto::ErrorCode::InvalidRequest, other.to_string()),
                })
        })
        .await
        .map_err(|error| ApiError::internal(&error))?
    }

    /// `POST /runner/jobs/{job}/complete`: the attempt's result, through the engine.
    pub async fn complete_attempt(
        &self,
        runner: RunnerId,
        job: JobId,
        request: proto::CompleteAttempt,
    ) -> Result<(), ApiError> {
        let mut outcomes = self.complete_attempts(runner, vec![(job, request)]).await;
        outcomes.pop().unwrap_or(Ok(()))
    }

    /// `POST /runner/results`: several attempts' results, each taken or refused on its own.
    pub async fn report_results(
        &self,
        runner: RunnerId,
        request: proto::JobResults,
    ) -> Result<proto::JobResultOutcomes, ApiError> {
        let count = request.results.len();
        if count == 0 || count > proto::MAX_BATCH_JOBS as usize {
            return Err(ApiError::invalid_field(
                "results",
                format!(
                    "must hold 1 to {} results, got {count}",
                    proto::MAX_BATCH_JOBS
                ),
            ));
        }
        let mut seen = HashSet::with_capacity(count);
        for (index, result) in request.results.iter().enumerate() {
            if !seen.insert(result.job_id) {
                return Err(ApiError::invalid_field(
                    &format!("results[{index}].job_id"),
                    format!("job {} has an earlier result in this batch", result.job_id),
                ));
            }
        }
        let results: Vec<(JobId, proto::CompleteAttempt)> = request
            .results
            .into_iter()
            .map(|result| (JobId(result.job_id), result.into_attempt()))
            .collect();
        let jobs: Vec<JobId> = results.iter().map(|(job, _)| *job).collect();
        let outcomes = self.complete_attempts(runner, results).await;
        Ok(proto::JobResultOutcomes {
            outcomes: jobs
                .into_iter()
                .zip(outcomes)
                .map(|(job, outcome)| proto::JobResultOutcome {
                    job_id: job.0,
                    error: outcome.err().map(|error| error.body().error),
                })
                .collect(),
        })
    }

    /// Attempts' results through the engine: each run's in one transition, the runs'
    /// transitions stored together ([`App::drive_runs`]). One outcome per result, in order.
    async fn complete_attempts(
        &self,
        runner: RunnerId,
        results: Vec<(JobId, proto::CompleteAttempt)>,
    ) -> Vec<Result<(), ApiError>> {
        let mut outcomes: Vec<Result<(), ApiError>> = Vec::with_capacity(results.len());
        let mut taken = Vec::with_capacity(results.len());
        for (index, (job, request)) in results.into_iter().enumerate() {
            let lease = if request.conclusion == proto::Conclusion::Skipped {
                Err(ApiError::invalid_field(
                    "conclusion",
                    "a job cannot be completed as `skipped`",
                ))
            } else {
                self.held_lease(runner, job, request.fencing_token)
            };
            let lease = match lease {
                Ok(lease) => lease,
                Err(error) => {
                    outcomes.push(Err(error));
                    continue;
                }
            };
            outcomes.push(Ok(()));
            if let Some(message) = &request.message {
                tracing::info!(job_id = %job, message, "job result message");
            }
            let step = Step {
                event: Event::JobCompleted {
                    job: lease.key.clone(),
                    attempt: lease.attempt,
                    conclusion: convert::engine_conclusion(request.conclusion),
                    outputs: request.outputs,
                },
                token: Some(lease.token),
                claim: None,
            };
            taken.push((lease.run_id, ((index, job, lease), step)));
        }
        // Each run's results as its steps, and the jobs they are about.
        let (batch, jobs): (Vec<_>, Vec<(RunId, ResultJobs)>) = by_run(taken)
            .into_iter()
            .map(|(run_id, items)| {
                let (jobs, steps): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                ((run_id, steps), (run_id, jobs))
            })
            .unzip();
        let applied = self.drive_runs(&batch).await;
        for ((run_id, jobs), applied) in jobs.into_iter().zip(applied) {
            let run_outcomes: Vec<Result<(), ApiError>> = match applied {
                Ok(applied) => applied.outcomes,
                Err(error) => vec![Err(error); jobs.len()],
            };
            for ((index, job, lease), outcome) in jobs.into_iter().zip(run_outcomes) {
                outcomes[index] = match outcome {
                    Ok(()) => {
                        self.dispatch.forget(job);
                        self.ring_log(job);
                        tracing::info!(run_id = %run_id, job_id = %job, runner_id = %runner, "job completed by runner");
                        Ok(())
                    }
                    Err(error) if error.code == proto::ErrorCode::Conflict => {
                        // The engine had already ended the attempt (a timeout, a cancel's
                        // grace).
                        self.dispatch.forget(job);
                        Err(stale(format!(
                            "job {job} attempt {} has already ended: {}",
                            lease.attempt, error.message
                        )))
                    }
                    Err(error) => Err(error),
                };
            }
        }
        self.retire_if_spent(runner).await;
        outcomes
    }

    /// Removes an ephemeral runner once its job has ended.
    async fn retire_if_spent(&self, runner: RunnerId) {
        let spent = self
            .dispatch
            .lock()
            .runners
            .get(&runner)
            .is_some_and(|entry| entry.spent && entry.held.is_empty());
        if spent {
            if let Err(error) = self.store.remove_runner(runner, ms(now())).await {
                tracing::warn!(runner_id = %runner, error = %error, "cannot remove ephemeral runner");
            }
            self.dispatch.lock().runners.remove(&runner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_changes::RunnerClaim;
    use gantry_store::Job;

    /// A claim commits, then the run is cancelled before the claim's "job started": the
    /// cancelling transition ends the claimed attempt, so no attempt stays open (and no lease
    /// is rebuilt for it after a restart), and the late start is refused.
    #[tokio::test]
    async fn a_job_cancelled_between_claim_and_start_ends_its_attempt() {
        let fixture = crate::test_support::one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        let time = now();
        let claim = fixture.claim_in_store(60_000).await;
        app.claimed(job, ms(time));
        app.cancel_run(job.run_id.0).await.unwrap();

        let attempts = app.store.list_attempts(job.id).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert!(attempts[0].ended_at_ms.is_some(), "{attempts:?}");
        assert!(app.store.running_attempts().await.unwrap().is_empty());
        let late = Event::JobStarted {
            job: convert::job_key(job),
            attempt: gantry_engine::Attempt(u32::try_from(claim.attempt).unwrap()),
        };
        let error = app.drive(job.run_id, late, None).await.err().unwrap();
        assert_eq!(error.code, proto::ErrorCode::Conflict, "{error:?}");
    }

    /// A runner's claim and the engine's "job started" are one transaction: a claim the store
    /// refuses leaves the engine's state untouched, and an accepted one leaves the job claimed,
    /// started and leased at once.
    #[tokio::test]
    async fn a_claim_and_its_start_commit_together_or_not_at_all() {
        let fixture = crate::test_support::one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        let key = convert::job_key(job);
        let claim = RunnerClaim {
            job_id: job.id,
            runner: RunnerId(7),
            at: now(),
        };
        let started = |claim: RunnerClaim| Step {
            event: Event::JobStarted {
                job: key.clone(),
                attempt: gantry_engine::Attempt(1),
            },
            token: None,
            claim: Some(claim),
        };
        let queued = |state: &gantry_engine::RunState| {
            state.instance(&key).unwrap().status == gantry_engine::JobStatus::Queued
        };

        // Another claim got the job row first: the engine would start it, the store refuses
        // the claim, and the start is not written either.
        fixture.claim_in_store(60_000).await;
        let version = app.store.get_run(job.run_id).await.unwrap().state_version;
        let refused = app
            .drive_steps(job.run_id, &[started(claim)])
            .await
            .unwrap();
        assert!(refused.claims.is_empty());
        let [Err(error)] = &refused.outcomes[..] else {
            panic!("{:?}", refused.outcomes);
        };
        assert_eq!(error.code, proto::ErrorCode::Conflict);
        let (state, after) = app.load_document(job.run_id).await.unwrap();
        assert!(queued(&state));
        assert_eq!(after, version);

        // On a fresh job the claim commits with the start and the runner holds the lease.
        let fresh = crate::test_support::one_job().await;
        let (app, job) = (&fresh.app, &fresh.job);
        let claim = RunnerClaim {
            job_id: job.id,
            ..claim
        };
        let applied = app
            .drive_steps(job.run_id, &[started(claim)])
            .await
            .unwrap();
        let token = applied.claims[0].fencing_token;
        let (state, _) = app.load_state(job.run_id).await.unwrap();
        assert_eq!(
            state.instance(&key).unwrap().status,
            gantry_engine::JobStatus::InProgress
        );
        let running = app.store.running_attempts().await.unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!(
            (running[0].runner_id, running[0].fencing_token),
            (Some(RunnerId(7)), token)
        );
        let lease = app.dispatch.lock().leases.get(&job.id).cloned().unwrap();
        assert_eq!((lease.runner, lease.token), (RunnerId(7), token));
    }

    /// A claim leaves its job's stored document as it was (the job's row has the start, see
    /// `gantry_engine::changed_only_by_starts`); the state read back from the store has the
    /// start all the same, at the claim's time, and the job completes from it.
    #[tokio::test]
    async fn a_claims_start_is_read_back_from_its_row() {
        let fixture = crate::test_support::one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        let key = convert::job_key(job);
        let start = crate::test_support::start(job, now());
        let applied = app.drive_steps(job.run_id, &[start]).await.unwrap();
        let token = applied.claims[0].fencing_token;

        let (document, _) = app.load_document(job.run_id).await.unwrap();
        let stored = document.instance(&key).unwrap();
        assert_eq!(stored.status, gantry_engine::JobStatus::Queued);
        app.forget_cached_run(job.run_id);
        let (state, _) = app.load_state(job.run_id).await.unwrap();
        let row = app.store.get_job(job.id).await.unwrap();
        let instance = state.instance(&key).unwrap();
        assert_eq!(instance.status, gantry_engine::JobStatus::InProgress);
        let claimed_at = u64::try_from(row.started_at_ms.unwrap()).unwrap();
        assert_eq!(instance.started_at, Some(Millis(claimed_at)));
        assert_eq!(state.status, gantry_engine::RunStatus::InProgress);

        let done = proto::CompleteAttempt {
            fencing_token: token.0,
            conclusion: proto::Conclusion::Success,
            outputs: Default::default(),
            message: None,
        };
        app.complete_attempt(RunnerId(7), job.id, done)
            .await
            .unwrap();
        let row = app.store.get_job(job.id).await.unwrap();
        assert_eq!(row.status, gantry_store::JobStatus::Completed);
        let (document, _) = app.load_document(job.run_id).await.unwrap();
        assert_eq!(
            document.conclusion,
            Some(gantry_engine::Conclusion::Success)
        );
    }

    /// The store refuses a batch of two claims as a whole because one of the jobs was
    /// claimed meanwhile: the batch is applied again one claim at a time, so only that one
    /// fails and the other job is claimed and started by this batch.
    #[tokio::test]
    async fn a_batch_with_a_claim_the_store_refuses_takes_the_others() {
        let fixture = crate::test_support::two_jobs().await;
        let (app, run_id) = (&fixture.app, fixture.job.run_id);
        fixture.claim_in_store(60_000).await;
        let at = now();
        let steps: Vec<Step> = fixture
            .jobs
            .iter()
            .map(|job| crate::test_support::start(job, at))
            .collect();
        let applied = app.drive_steps(run_id, &steps).await.unwrap();
        let codes: Vec<Option<proto::ErrorCode>> = applied
            .outcomes
            .iter()
            .map(|outcome| outcome.as_ref().err().map(|error| error.code))
            .collect();
        assert_eq!(codes, [Some(proto::ErrorCode::Conflict), None]);
        let claimed: Vec<JobId> = applied.claims.iter().map(|claim| claim.job_id).collect();
        assert_eq!(claimed, [fixture.jobs[1].id]);
        // Job 0 was claimed meanwhile: the engine, reading the run again after the refusal,
        // has that claim's start from the job's row; job 1 started with its own claim.
        let statuses = app
            .with_state(run_id, |state| {
                let status = |job: &Job| state.instance(&convert::job_key(job)).unwrap().status;
                [status(&fixture.jobs[0]), status(&fixture.jobs[1])]
            })
            .await
            .unwrap();
        assert_eq!(
            statuses,
            [
                gantry_engine::JobStatus::InProgress,
                gantry_engine::JobStatus::InProgress
            ]
        );
    }

    /// Claims of two runs go to the store together; one run's batch holds a job claimed
    /// meanwhile: that pick alone fails, and every other claim of both runs is made.
    #[tokio::test]
    async fn runs_driven_together_answer_each_step_as_alone() {
        let fixture = crate::test_support::two_jobs().await;
        let app = &fixture.app;
        let first = fixture.job.run_id;
        let second = crate::test_support::trigger(
            app,
            "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps: [{run: 'true'}]\n",
        )
        .await;
        let second_jobs = app.store.list_jobs(second).await.unwrap();
        fixture.claim_in_store(60_000).await;
        let at = now();
        let start = |job| crate::test_support::start(job, at);
        let batch = vec![
            (first, fixture.jobs.iter().map(start).collect()),
            (second, second_jobs.iter().map(start).collect()),
        ];
        let answers = app.drive_runs(&batch).await;
        let codes: Vec<Vec<Option<proto::ErrorCode>>> = answers
            .iter()
            .map(|answer| {
                let applied = answer.as_ref().unwrap();
                applied
                    .outcomes
                    .iter()
                    .map(|outcome| outcome.as_ref().err().map(|error| error.code))
                    .collect()
            })
            .collect();
        assert_eq!(
            codes,
            [vec![Some(proto::ErrorCode::Conflict), None], vec![None]]
        );
        let claimed: Vec<Vec<JobId>> = answers
            .iter()
            .map(|answer| {
                let applied = answer.as_ref().unwrap();
                applied.claims.iter().map(|claim| claim.job_id).collect()
            })
            .collect();
        assert_eq!(claimed, [vec![fixture.jobs[1].id], vec![second_jobs[0].id]]);
        for job in [&fixture.jobs[1], &second_jobs[0]] {
            let (state, _) = app.load_state(job.run_id).await.unwrap();
            assert_eq!(
                state.instance(&convert::job_key(job)).unwrap().status,
                gantry_engine::JobStatus::InProgress
            );
            assert!(app.dispatch.lock().leases.contains_key(&job.id));
        }
    }
}
