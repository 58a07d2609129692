//! The API's operations, one method of [`App`] each: validate the request, call the store and
//! the engine, answer with wire views. The HTTP layer (`routes`) only extracts and responds.

use std::sync::{Arc, Mutex};

use gantry_engine::{Effect, Event, NewRun as EngineRun, TriggerContexts, create_run_with_calls};
use gantry_expr::Value;
use gantry_proto::v1 as proto;
use gantry_store::{
    AllocatedRun, BuildRun, CREATED_STATE_VERSION, Job, JobId, JobStatus, Lease, NewOrganization,
    NewRepository, NewRun, OrgId, RepoId, RunContent, RunFilter, RunId, RunnerId, StateDocument,
    StoreError,
};
use gantry_workflow::Limits;
use proto::{ErrorCode, ErrorDetail};

use crate::app::{App, CachedRun, job_values};
use crate::called::{CalledWorkflows, RunWorkflows};
use crate::convert::{self, ms, now};
use crate::error::ApiError;
use crate::github::{self, GithubFacts};
use crate::remote_calls::RemoteReader;
use crate::resolve_calls::{GitCalls, resolve_calls};
use crate::views;

/// How many jobs of a list view carry the dispatcher's waiting reasons.
const LISTED_WHY: usize = 100;

/// Default and largest page sizes.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// The runner id the internal start/complete routes claim jobs as, until runners exist.
const INTERNAL_RUNNER: RunnerId = RunnerId(0);
/// The lease of an internal claim.
const INTERNAL_LEASE_MS: i64 = 10 * 60 * 1000;

impl App {
    /// `POST /orgs`.
    pub async fn create_organization(
        &self,
        request: proto::CreateOrganization,
    ) -> Result<proto::Organization, ApiError> {
        check_name("name", &request.name)?;
        let weight = request.weight.unwrap_or(1);
        if weight == 0 {
            return Err(ApiError::invalid_field("weight", "must be at least 1"));
        }
        let org = self
            .store
            .create_organization(NewOrganization {
                name: request.name,
                weight: i64::from(weight),
                hosted_concurrency_limit: request.hosted_concurrency_limit.map(i64::from),
            })
            .await?;
        tracing::info!(org = %org.name, org_id = %org.id, "organization created");
        Ok(views::organization(&org))
    }

    /// `GET /orgs`.
    pub async fn list_organizations(
        &self,
        query: proto::ListQuery,
    ) -> Result<proto::OrganizationList, ApiError> {
        let limit = page_size(query.limit)?;
        let after = parse_cursor(query.cursor.as_deref())?.map(OrgId);
        let orgs = self.store.list_organizations(after, limit).await?;
        let next_cursor = (orgs.len() == limit as usize)
            .then(|| orgs.last().map(|org| org.id.0.to_string()))
            .flatten();
        Ok(proto::OrganizationList {
            items: orgs.iter().map(views::organization).collect(),
            next_cursor,
        })
    }

    /// `GET /orgs/{org}`.
    pub async fn get_organization(&self, name: &str) -> Result<proto::Organization, ApiError> {
        let org = self.organization(name).await?;
        Ok(views::organization(&org))
    }

    async fn organization(&self, name: &str) -> Result<gantry_store::Organization, ApiError> {
        self.store
            .get_organization_by_name(name)
            .await
            .map_err(|error| match error {
                StoreError::NotFound { .. } => {
                    ApiError::not_found(format!("organization `{name}` not found"))
                }
                other => other.into(),
            })
    }

    /// `POST /orgs/{org}/repos`.
    pub async fn create_repository(
        &self,
        org: &str,
        request: proto::CreateRepository,
    ) -> Result<proto::Repository, ApiError> {
        check_name("name", &request.name)?;
        let default_branch = request.default_branch.unwrap_or_else(|| "main".to_owned());
        if default_branch.trim().is_empty() || default_branch.len() > 255 {
            return Err(ApiError::invalid_field(
                "default_branch",
                "must be 1 to 255 characters",
            ));
        }
        let organization = self.organization(org).await?;
        let repo = self
            .store
            .create_repository(NewRepository {
                org_id: organization.id,
                name: request.name,
                default_branch,
            })
            .await?;
        tracing::info!(org = %org, repo = %repo.name, repo_id = %repo.id, "repository created");
        Ok(views::repository(&repo, &organization.name))
    }

    /// `GET /orgs/{org}/repos`.
    pub async fn list_repositories(
        &self,
        org: &str,
        query: proto::ListQuery,
    ) -> Result<proto::RepositoryList, ApiError> {
        let limit = page_size(query.limit)?;
        let after = parse_cursor(query.cursor.as_deref())?.map(RepoId);
        let organization = self.organization(org).await?;
        let repos = self
            .store
            .list_repositories(organization.id, after, limit)
            .await?;
        let next_cursor = (repos.len() == limit as usize)
            .then(|| repos.last().map(|repo| repo.id.0.to_string()))
            .flatten();
        Ok(proto::RepositoryList {
            items: repos
                .iter()
                .map(|repo| views::repository(repo, &organization.name))
                .collect(),
            next_cursor,
        })
    }

    pub(crate) async fn repository(
        &self,
        org: &str,
        name: &str,
    ) -> Result<gantry_store::Repository, ApiError> {
        if let Some(repo) = self.lookups.repository(org, name) {
            return Ok(repo);
        }
        let repo =
            self.store
                .get_repository_by_name(org, name)
                .await
                .map_err(|error| match error {
                    StoreError::NotFound { .. } => {
                        ApiError::not_found(format!("repository `{org}/{name}` not found"))
                    }
                    other => other.into(),
                })?;
        self.lookups.keep_repository(org, name, &repo);
        Ok(repo)
    }

    /// `GET /repos/{org}/{repo}`.
    pub async fn get_repository(
        &self,
        org: &str,
        name: &str,
    ) -> Result<proto::Repository, ApiError> {
        let repo = self.repository(org, name).await?;
        Ok(views::repository(&repo, org))
    }

    /// `POST /repos/{org}/{repo}/runs`: loads the workflow (422 with every diagnostic, nothing
    /// stored), then creates the run and its jobs in one transaction. Returns the run and
    /// whether it was created (false: the idempotency key named an earlier run).
    pub async fn trigger_run(
        &self,
        org: &str,
        name: &str,
        request: proto::TriggerRun,
        idempotency_key: Option<String>,
    ) -> Result<(proto::Run, bool), ApiError> {
        check_text("workflow_path", &request.workflow_path, 255)?;
        let event = request.event.unwrap_or_else(|| "push".to_owned());
        check_text("event", &event, 100)?;
        let sha = request.sha.unwrap_or_else(|| "0".repeat(40));
        check_text("sha", &sha, 64)?;
        let actor = request.actor.unwrap_or_else(|| "gantry".to_owned());
        check_text("actor", &actor, 255)?;
        if let Some(key) = &idempotency_key {
            check_text("Idempotency-Key", key, 255)?;
        }
        let repo = self.repository(org, name).await?;
        let git_ref = request
            .git_ref
            .unwrap_or_else(|| format!("refs/heads/{}", repo.default_branch));
        check_text("ref", &git_ref, 255)?;

        let workflow = self
            .lookups
            .workflow(&request.workflow, |text| {
                gantry_workflow::load(text, &Limits::default())
            })
            .map_err(|diagnostics| workflow_invalid(&diagnostics))?;
        check_listens(&workflow, &event)?;
        let called = self
            .api_calls(org, &workflow, request.called_workflows.as_ref())
            .await?;
        let facts = GithubFacts {
            repository: format!("{org}/{name}"),
            owner: org.to_owned(),
            event_name: event,
            payload: request.payload.unwrap_or_else(|| serde_json::json!({})),
            git_ref,
            sha,
            actor,
            default_branch: repo.default_branch.clone(),
            head_ref: String::new(),
            base_ref: String::new(),
        };
        let inputs =
            serde_json::Value::Object(request.inputs.unwrap_or_default().into_iter().collect());
        self.start_run(
            &repo,
            StartRun {
                workflow,
                workflow_path: request.workflow_path,
                workflow_source: request.workflow,
                called,
                facts,
                inputs,
                idempotency_key,
            },
        )
        .await
    }

    /// Creates a run of a loaded workflow with its trigger's facts: the one path every run
    /// creation takes (the API's `trigger_run`, webhooks, reported pushes). Returns the run
    /// and whether it was created (false: the idempotency key named an earlier run).
    pub(crate) async fn start_run(
        &self,
        repo: &gantry_store::Repository,
        start: StartRun,
    ) -> Result<(proto::Run, bool), ApiError> {
        let StartRun {
            workflow,
            workflow_path,
            workflow_source,
            called,
            facts,
            inputs,
            idempotency_key,
        } = start;
        let workflow_name = workflow
            .name
            .as_ref()
            .map(|name| name.value.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| workflow_path.clone());
        let full_name = facts.repository.clone();

        let time = now();
        let new_run = NewRun {
            repo_id: repo.id,
            workflow_path: workflow_path.clone(),
            workflow_name: workflow_name.clone(),
            event_name: facts.event_name.clone(),
            git_ref: facts.git_ref.clone(),
            sha: facts.sha.clone(),
            actor: facts.actor.clone(),
            created_at_ms: ms(time),
            workflow_source,
            called_workflows: called.sources(),
        };
        let inputs = if facts.event_name == "workflow_dispatch" {
            // A manual run: inputs checked against the declared ones, defaults filled in.
            let provided: indexmap::IndexMap<String, serde_json::Value> = match inputs {
                serde_json::Value::Object(map) => map.into_iter().collect(),
                _ => indexmap::IndexMap::new(),
            };
            let inputs = gantry_workflow::dispatch::dispatch_inputs(&workflow, &provided)
                .map_err(|problems| ApiError::invalid_field("inputs", problems.join("; ")))?;
            serde_json::Value::Object(inputs)
        } else {
            inputs
        };
        let engine_config = self.engine.clone();
        // The builder runs inside the store's transaction; what it decided last (the content
        // stored) comes out here.
        let outcome: Arc<Mutex<Option<Result<Built, String>>>> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&outcome);
        let loaded = RunWorkflows {
            workflow: Arc::clone(&workflow),
            called: Arc::clone(&called),
        };
        let build = BuildRun::new(move |allocated: AllocatedRun| {
            let github = github::github_context(
                &facts,
                &workflow_name,
                &workflow_path,
                github::RunNumbers {
                    run_id: allocated.run_id.0,
                    run_number: allocated.run_number,
                    run_attempt: 1,
                },
            );
            let built = build_run(
                &workflow,
                called.as_ref(),
                github,
                inputs.clone(),
                engine_config.clone(),
                allocated,
                time,
            );
            let content = built
                .as_ref()
                .map(|built| built.content.clone())
                .map_err(Clone::clone);
            *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(built);
            content
        });
        let created = self
            .store
            .create_run(new_run, build, idempotency_key.as_deref())
            .await;
        let built = outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let created = match (created, &built) {
            (Ok(created), _) => created,
            (Err(_), Some(Err(message))) => {
                return Err(ApiError::new(ErrorCode::WorkflowInvalid, message.clone()));
            }
            (Err(error), _) => return Err(error.into()),
        };
        if created.created {
            self.set_owner(created.run_id, repo.id, repo.org_id);
            self.remember_workflow(created.run_id, loaded);
            if let Some(Ok(built)) = built {
                let state = Arc::new(built.state);
                let mut rows: Vec<Job> = built
                    .content
                    .jobs
                    .iter()
                    .zip(&created.job_ids)
                    .map(|(job, id)| job.stored_as(*id, created.run_id))
                    .collect();
                rows.sort_by_key(|row| row.id);
                // Before the dispatcher hears of the jobs: their claims find the run here.
                self.remember_created(
                    created.run_id,
                    CachedRun {
                        state: Arc::clone(&state),
                        version: CREATED_STATE_VERSION,
                        rows: Some(rows),
                    },
                );
                let changes: Vec<_> = created
                    .job_ids
                    .iter()
                    .copied()
                    .zip(built.content.jobs.iter())
                    .map(|(id, job)| {
                        let key = gantry_engine::JobKey::new(
                            job.job_key.clone(),
                            u32::try_from(job.matrix_index).unwrap_or(u32::MAX),
                        );
                        (id, key, job.status, job.priority)
                    })
                    .collect();
                self.feed_dispatcher(created.run_id, &state, &changes, &[])
                    .await;
                let statuses: Vec<(JobId, JobStatus)> = created
                    .job_ids
                    .iter()
                    .copied()
                    .zip(built.content.jobs.iter().map(|job| job.status))
                    .collect();
                let deliveries = self
                    .after_commit(created.run_id, &state, &statuses, &built.effects)
                    .await;
                self.deliver(deliveries).await;
            }
            tracing::info!(run_id = %created.run_id, repo = %full_name, jobs = created.job_ids.len(), "run created");
        } else {
            tracing::info!(run_id = %created.run_id, "idempotency key matched an existing run");
        }
        // The answer reads the run again. Answering instead from a row the creation returned
        // made signed webhooks that each start a run 12 % slower (four pairs, 432–457 against
        // 493–515 events/s, `bench triggers`, 2026-11-27), with API triggers unchanged; the
        // likely cause is the group commit forming smaller batches when answers come back
        // sooner (a yield before the leader takes its batch did not help). Not understood
        // yet, so the measured path stays.
        let run = self.store.get_run(created.run_id).await?;
        Ok((views::run(&run, &full_name), created.created))
    }

    /// `GET /runs` and `GET /repos/{org}/{repo}/runs`.
    pub async fn list_runs(
        &self,
        repo: Option<(&str, &str)>,
        query: proto::RunListQuery,
    ) -> Result<proto::RunList, ApiError> {
        let limit = page_size(query.limit)?;
        let before = parse_cursor(query.cursor.as_deref())?.map(RunId);
        let repo_id: Option<RepoId> = match repo {
            Some((org, name)) => Some(self.repository(org, name).await?.id),
            None => None,
        };
        let page = self
            .store
            .list_runs(RunFilter {
                repo_id,
                status: query.status.map(convert::store_run_status_of_wire),
                limit,
                before,
            })
            .await?;
        let mut items = Vec::with_capacity(page.runs.len());
        for run in &page.runs {
            let full_name = self.full_name(run.repo_id).await?;
            items.push(views::run(run, &full_name));
        }
        Ok(proto::RunList {
            items,
            next_cursor: page.next.map(|id| id.0.to_string()),
        })
    }

    async fn run_record(&self, run_id: i64) -> Result<gantry_store::WorkflowRun, ApiError> {
        self.store
            .get_run(RunId(run_id))
            .await
            .map_err(|error| match error {
                StoreError::NotFound { .. } => {
                    ApiError::not_found(format!("run {run_id} not found"))
                }
                other => other.into(),
            })
    }

    async fn run_view(&self, run_id: RunId) -> Result<proto::Run, ApiError> {
        let run = self.store.get_run(run_id).await?;
        let full_name = self.full_name(run.repo_id).await?;
        Ok(views::run(&run, &full_name))
    }

    /// `GET /runs/{run}`: the run with its jobs and their waiting reasons.
    pub async fn get_run(&self, run_id: i64) -> Result<proto::RunDetail, ApiError> {
        let run = self.run_record(run_id).await?;
        let full_name = self.full_name(run.repo_id).await?;
        let jobs = self.job_views(run.id).await?;
        Ok(proto::RunDetail {
            run: views::run(&run, &full_name),
            jobs,
        })
    }

    async fn job_views(&self, run_id: RunId) -> Result<Vec<proto::Job>, ApiError> {
        let rows = self.store.list_jobs(run_id).await?;
        if rows.is_empty() {
            // A run of an invalid workflow file has neither jobs nor a state to describe them.
            return Ok(Vec::new());
        }
        let listed: Vec<(&Job, proto::Job)> = self
            .with_state(run_id, |state| {
                rows.iter()
                    // Rows of instances the current attempt does not have (a deferred matrix
                    // that waits to expand again after a re-run, or expanded to fewer
                    // combinations) belong to an earlier attempt: kept for their logs, not
                    // listed as the run's jobs.
                    .filter(|row| state.instance(&convert::job_key(row)).is_some())
                    .map(|row| (row, views::job(row, Some(state))))
                    .collect()
            })
            .await?;
        let online = self.dispatch.online_views(now());
        let mut explained = 0;
        Ok(listed
            .into_iter()
            .map(|(row, view)| {
                // The dispatcher's reasons cost a replay of the organization's queue each:
                // a list explains its first queued jobs, and `GET /jobs/{job}` explains any.
                if row.status == JobStatus::Queued && explained < LISTED_WHY {
                    explained += 1;
                    self.with_dispatch_reasons(row, view, &online)
                } else {
                    view
                }
            })
            .collect())
    }

    /// Adds the dispatcher's reasons to a queued job's view: no online runner, its
    /// organization's quota, its place in the queue. `online` are the runners online now.
    fn with_dispatch_reasons(
        &self,
        row: &Job,
        mut view: proto::Job,
        online: &[gantry_engine::dispatch::RunnerView],
    ) -> proto::Job {
        if row.status == JobStatus::Queued {
            let reasons = self
                .dispatch
                .lock()
                .queue
                .reasons(crate::dispatcher::job_ref(row.id), online)
                .unwrap_or_default();
            view.waiting_reasons
                .extend(reasons.iter().map(convert::wire_reason));
        }
        view
    }

    /// `GET /runs/{run}/jobs`.
    pub async fn list_jobs(&self, run_id: i64) -> Result<proto::JobList, ApiError> {
        let run = self.run_record(run_id).await?;
        Ok(proto::JobList {
            items: self.job_views(run.id).await?,
        })
    }

    pub(crate) async fn job_record(&self, run_id: i64, job_id: i64) -> Result<Job, ApiError> {
        let not_found = || ApiError::not_found(format!("job {job_id} of run {run_id} not found"));
        match self.store.get_job(JobId(job_id)).await {
            Ok(job) if job.run_id == RunId(run_id) => Ok(job),
            Ok(_) | Err(StoreError::NotFound { .. }) => Err(not_found()),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn job_view(&self, job_id: JobId) -> Result<proto::Job, ApiError> {
        let job = self.store.get_job(job_id).await?;
        let view = self
            .with_state(job.run_id, |state| views::job(&job, Some(state)))
            .await?;
        let online = self.dispatch.online_views(now());
        Ok(self.with_dispatch_reasons(&job, view, &online))
    }

    /// The view of a job of a run that just changed: from the run's cached state and rows
    /// when the cache holds them (they are what the change committed), else from the store.
    async fn job_view_of_run(&self, run_id: RunId, job_id: JobId) -> Result<proto::Job, ApiError> {
        let Some((job, view)) = self.cached_job_view(run_id, job_id) else {
            return self.job_view(job_id).await;
        };
        let online = self.dispatch.online_views(now());
        Ok(self.with_dispatch_reasons(&job, view, &online))
    }

    /// `GET /runs/{run}/jobs/{job}`.
    pub async fn get_job(&self, run_id: i64, job_id: i64) -> Result<proto::Job, ApiError> {
        let job = self.job_record(run_id, job_id).await?;
        self.job_view(job.id).await
    }

    /// `POST /runs/{run}/cancel`: queued and waiting jobs end at once, running ones are asked
    /// to stop; a completed run is a conflict.
    pub async fn cancel_run(&self, run_id: i64) -> Result<proto::Run, ApiError> {
        let run = self.run_record(run_id).await?;
        self.drive(run.id, Event::CancelRequested { job: None }, None)
            .await?;
        tracing::info!(run_id = %run.id, "run cancel requested");
        self.run_view(run.id).await
    }

    /// `POST /runs/{run}/jobs/{job}/cancel`.
    pub async fn cancel_job(&self, run_id: i64, job_id: i64) -> Result<proto::Job, ApiError> {
        let job = self.job_record(run_id, job_id).await?;
        let event = Event::CancelRequested {
            job: Some(convert::job_key(&job)),
        };
        self.drive(job.run_id, event, None).await?;
        tracing::info!(run_id = %job.run_id, job_id = %job.id, "job cancel requested");
        self.job_view(job.id).await
    }

    /// `POST /runs/{run}/rerun`: a new run attempt; a run not completed is a conflict.
    pub async fn rerun(&self, run_id: i64, request: proto::Rerun) -> Result<proto::Run, ApiError> {
        let run = self.run_record(run_id).await?;
        let event = Event::RerunRequested {
            failed_only: request.failed_only,
        };
        let state = self.drive(run.id, event, None).await?;
        tracing::info!(run_id = %run.id, attempt = %state.attempt, failed_only = request.failed_only, "run re-run");
        self.run_view(run.id).await
    }

    /// `POST /internal/runs/{run}/jobs/{job}/start`: claims a queued job as the internal
    /// runner and tells the engine it started. A job already in progress is returned as is.
    pub async fn start_job(&self, run_id: i64, job_id: i64) -> Result<proto::Job, ApiError> {
        let job = self.job_record(run_id, job_id).await?;
        self.start(&job).await?;
        self.job_view(job.id).await
    }

    /// Claims and starts `job` if it is queued; returns the claim's token when it claimed.
    async fn start(&self, job: &Job) -> Result<Option<gantry_store::FencingToken>, ApiError> {
        match job.status {
            JobStatus::Queued => {}
            JobStatus::InProgress => {
                // Claimed before a crash that came before the engine heard of it.
                self.replay_claim(job).await?;
                return Ok(None);
            }
            JobStatus::Waiting | JobStatus::Completed => {
                return Err(ApiError::conflict(format!(
                    "job {} is {}, so it cannot be started",
                    job.id, job.status
                )));
            }
        }
        let time = ms(now());
        let claim = self
            .store
            .claim_job(
                job.id,
                INTERNAL_RUNNER,
                Lease {
                    now_ms: time,
                    deadline_ms: time.saturating_add(INTERNAL_LEASE_MS),
                },
            )
            .await?;
        self.claimed(job, time);
        let event = Event::JobStarted {
            job: convert::job_key(job),
            attempt: gantry_engine::Attempt(u32::try_from(claim.attempt).unwrap_or(u32::MAX)),
        };
        if let Err(error) = self.drive(job.run_id, event, None).await {
            // Recovery may have replayed this very claim to the engine in between.
            let key = convert::job_key(job);
            if !self
                .started_in_store(job.run_id, &key, claim.attempt)
                .await?
            {
                return Err(error);
            }
        }
        tracing::info!(run_id = %job.run_id, job_id = %job.id, attempt = claim.attempt, "job started");
        Ok(Some(claim.fencing_token))
    }

    /// `POST /internal/runs/{run}/jobs/{job}/complete`: what a runner's result will do once
    /// the runner protocol exists. A queued job is started first; a completed one is a
    /// conflict.
    pub async fn complete_job(
        &self,
        run_id: i64,
        job_id: i64,
        request: proto::CompleteJob,
    ) -> Result<proto::Job, ApiError> {
        if request.conclusion == proto::Conclusion::Skipped {
            return Err(ApiError::invalid_field(
                "conclusion",
                "a job cannot be completed as `skipped`",
            ));
        }
        let job = self.job_record(run_id, job_id).await?;
        let claims = job.status == JobStatus::Queued;
        let token = self.start(&job).await?;
        // Only a claim moves the row on (its attempt); an in-progress job's is as read.
        let job = if claims {
            self.store.get_job(job.id).await?
        } else {
            job
        };
        let event = Event::JobCompleted {
            job: convert::job_key(&job),
            attempt: gantry_engine::Attempt(u32::try_from(job.attempt).unwrap_or(u32::MAX)),
            conclusion: convert::engine_conclusion(request.conclusion),
            outputs: request.outputs,
        };
        self.drive(job.run_id, event, token).await?;
        tracing::info!(run_id = %job.run_id, job_id = %job.id, conclusion = %request.conclusion, "job completed");
        self.job_view_of_run(job.run_id, job.id).await
    }

    /// `GET /internal/queue`: the queued jobs as the in-memory index has them.
    pub async fn queue(&self, query: proto::ListQuery) -> Result<proto::JobList, ApiError> {
        let limit = page_size(query.limit)?;
        let after = parse_cursor(query.cursor.as_deref())?;
        let ids = self.queued_job_ids(usize::MAX);
        let mut items = Vec::new();
        for id in ids
            .into_iter()
            .filter(|id| after.is_none_or(|after| id.0 > after))
            .take(limit as usize)
        {
            match self.store.get_job(id).await {
                Ok(job) => items.push(views::job(&job, None)),
                Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(proto::JobList { items })
    }
}

/// What the run builder made, kept for after the commit.
struct Built {
    content: RunContent,
    effects: Vec<Effect>,
    /// The run's first state, for the dispatcher.
    state: gantry_engine::RunState,
}

/// A run to create: the loaded workflow, its file and the trigger's facts.
pub(crate) struct StartRun {
    /// The loaded, validated workflow.
    pub workflow: Arc<gantry_workflow::Workflow>,
    /// Its file, e.g. `.github/workflows/ci.yml`.
    pub workflow_path: String,
    /// Its text, kept with the run (claims build job payloads from it).
    pub workflow_source: String,
    /// The reusable workflows it calls, kept with the run too.
    pub called: Arc<CalledWorkflows>,
    /// What the `github` context is made of.
    pub facts: GithubFacts,
    /// The `inputs` context.
    pub inputs: serde_json::Value,
    /// Makes the creation idempotent per repository.
    pub idempotency_key: Option<String>,
}

/// The engine's run for the allocated id and number: its state and first jobs.
fn build_run(
    workflow: &gantry_workflow::Workflow,
    called: &CalledWorkflows,
    github: serde_json::Value,
    inputs: serde_json::Value,
    config: gantry_engine::EngineConfig,
    allocated: AllocatedRun,
    time: gantry_engine::Millis,
) -> Result<Built, String> {
    let trigger = TriggerContexts {
        github: Value::from(github),
        inputs: Value::from(inputs),
        vars: Value::from(serde_json::json!({})),
    };
    let decision = create_run_with_calls(
        EngineRun {
            id: convert::engine_run_id(allocated.run_id),
            workflow,
            trigger,
            config,
        },
        called,
        time,
    )
    .map_err(|error| error.to_string())?;
    let jobs = decision
        .state
        .instances()
        .filter_map(|instance| job_values(&decision.state, &instance.key))
        .collect();
    let engine_state =
        StateDocument::serialize(&decision.state).map_err(|error| error.to_string())?;
    // Stored once: the state written on every event leaves the spec out.
    let engine_spec =
        StateDocument::serialize(&*decision.state.spec).map_err(|error| error.to_string())?;
    Ok(Built {
        content: RunContent {
            status: convert::store_run_status(decision.state.status),
            engine_state,
            engine_spec,
            jobs,
        },
        effects: decision.effects,
        state: decision.state,
    })
}

impl App {
    /// The API's called workflow files, loaded and checked against the workflow; calls of
    /// other repositories without a given file are read from those repositories' git sources
    /// (organization `org`'s only). A file that does not load, a call without its file (or
    /// whose file cannot be read, saying why) and a call the file does not accept (inputs,
    /// secrets, permissions, nesting) are all 422, with `line:col` (in the given file for the
    /// first, in the workflow for the others).
    async fn api_calls(
        &self,
        org: &str,
        workflow: &Arc<gantry_workflow::Workflow>,
        sources: Option<&indexmap::IndexMap<String, String>>,
    ) -> Result<Arc<CalledWorkflows>, ApiError> {
        let mut called = given_calls(sources)?;
        let unread_remote = |called: &CalledWorkflows| {
            !called
                .missing_where(workflow, |key| !key.starts_with("./"))
                .is_empty()
        };
        let mut diagnostics = gantry_workflow::Diagnostics::default();
        if unread_remote(&called) {
            let shared = Arc::clone(workflow);
            let cache = Arc::clone(&self.git_cache);
            let lookup = self.repository_lookup();
            let org = org.to_owned();
            let (read, resolution) = tokio::task::spawn_blocking(move || {
                let remote = RemoteReader::new(&org, &cache, &*lookup);
                let reader = GitCalls {
                    local: None,
                    remote: &remote,
                };
                let resolution = resolve_calls(&shared, &mut called, &reader);
                (called, resolution)
            })
            .await
            .map_err(|error| ApiError::internal(&error))?;
            called = read;
            let resolution = resolution.map_err(|error| ApiError::internal(&error))?;
            diagnostics.0.extend(
                resolution
                    .problems
                    .iter()
                    .map(|problem| problem.diagnostic()),
            );
            // What could not be read was reported just now; only missing local files remain.
            diagnostics.0.extend(
                called
                    .missing_where(workflow, |key| key.starts_with("./"))
                    .0,
            );
        } else {
            diagnostics.0.extend(called.missing(workflow).0);
        }
        diagnostics.0.extend(
            gantry_workflow::reusable::check_calls(workflow, &called, &Default::default()).0,
        );
        if !diagnostics.is_empty() {
            return Err(workflow_invalid(&diagnostics.finish()));
        }
        Ok(Arc::new(called))
    }
}

/// The API's called workflow files, loaded: each file that does not load is 422 with its
/// `line:col`, under the field `called_workflows.<uses>`.
fn given_calls(
    sources: Option<&indexmap::IndexMap<String, String>>,
) -> Result<CalledWorkflows, ApiError> {
    let empty = indexmap::IndexMap::new();
    let called = CalledWorkflows::load(sources.unwrap_or(&empty)).map_err(|problems| {
        let mut details = Vec::new();
        for (uses, diagnostics) in &problems {
            let mut error = workflow_invalid(diagnostics);
            for detail in &mut error.details {
                detail.field = Some(format!("called_workflows.{uses}"));
            }
            details.append(&mut error.details);
        }
        ApiError {
            code: ErrorCode::WorkflowInvalid,
            message: format!(
                "{} called workflow file{} invalid",
                problems.len(),
                if problems.len() == 1 { " is" } else { "s are" }
            ),
            details,
        }
    })?;
    Ok(called)
}

/// The 422 answer: every diagnostic with its `line:col`.
fn workflow_invalid(diagnostics: &gantry_workflow::Diagnostics) -> ApiError {
    let count = diagnostics.0.len();
    ApiError {
        code: ErrorCode::WorkflowInvalid,
        message: format!(
            "the workflow is invalid: {count} problem{}",
            if count == 1 { "" } else { "s" }
        ),
        details: diagnostics
            .0
            .iter()
            .map(|diagnostic| ErrorDetail {
                line: (diagnostic.pos.line > 0).then_some(diagnostic.pos.line),
                col: (diagnostic.pos.col > 0).then_some(diagnostic.pos.col),
                field: None,
                message: diagnostic.message.clone(),
            })
            .collect(),
    }
}

/// Refuses an API trigger for an event the workflow's `on:` does not list, as GitHub would
/// never start it for one (422, at the first `on:` entry). Filters (branches, paths, types)
/// are not applied: the caller chose this run explicitly. `workflow_call` is listed by
/// reusable workflows but is never an event of its own. A manual run's trigger is checked
/// with its inputs (`start_run`), whose message says what a dispatch needs.
fn check_listens(workflow: &gantry_workflow::Workflow, event: &str) -> Result<(), ApiError> {
    if event == "workflow_dispatch" {
        return Ok(());
    }
    let listed = workflow
        .on
        .iter()
        .any(|trigger| trigger.event.value == event && event != "workflow_call");
    if listed {
        return Ok(());
    }
    let events: Vec<&str> = workflow
        .on
        .iter()
        .map(|trigger| trigger.event.value.as_str())
        .collect();
    let pos = workflow.on.first().map(|trigger| trigger.event.pos);
    Err(ApiError {
        code: ErrorCode::WorkflowInvalid,
        message: format!("the workflow does not run on `{event}`"),
        details: vec![ErrorDetail {
            line: pos.map(|pos| pos.line).filter(|line| *line > 0),
            col: pos.map(|pos| pos.col).filter(|col| *col > 0),
            field: Some("event".to_owned()),
            message: format!(
                "`on:` lists {}, not `{event}`",
                if events.is_empty() {
                    "no event".to_owned()
                } else {
                    events.join(", ")
                }
            ),
        }],
    })
}

/// Organization and repository names: what fits in a path segment and a git remote.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be 1 to 100 letters, digits, `-`, `_` or `.`",
        ))
    }
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.len() > max || text.chars().any(char::is_control) {
        Err(ApiError::invalid_field(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ))
    } else {
        Ok(())
    }
}

fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    match cursor {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|&id| id > 0)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field("cursor", "not a cursor this server gave")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_a_path_segment() {
        assert!(check_name("name", "acme-corp.io_2").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(101)] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_and_pages_are_checked() {
        assert_eq!(parse_cursor(Some("12")).unwrap(), Some(12));
        assert!(parse_cursor(Some("abc")).is_err());
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }

    #[tokio::test]
    async fn a_created_run_is_kept_as_stored_for_its_first_change() {
        let fixture = crate::test_support::two_jobs().await;
        let app = &fixture.app;
        let run_id = fixture.job.run_id;
        let ids: Vec<JobId> = fixture.jobs.iter().map(|job| job.id).collect();
        let kept = app
            .cached_rows(run_id, &ids)
            .expect("the created run is kept with its rows");
        let stored: Vec<Option<Job>> = fixture.jobs.iter().cloned().map(Some).collect();
        assert_eq!(kept, stored);
        let kept = app.take_cached_run(run_id).expect("and its state");
        let (loaded, version) = app.load_state(run_id).await.unwrap();
        assert_eq!(kept.version, version);
        assert_eq!(
            serde_json::to_value(&*kept.state).unwrap(),
            serde_json::to_value(&loaded).unwrap()
        );
    }
}
