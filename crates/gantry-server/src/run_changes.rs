//! The one path every change of a run takes: steps (engine events, with the runner's claim
//! or token that commits with them) computed by the engine on a copy of the run's committed
//! state, written with one version-guarded transition, and only after the commit applied to
//! memory (the run cache, leases, the dispatcher's queue, timers, concurrency groups).
//!
//! [`App::drive_runs`] does this for several runs at once, as a runner's batch of claims or
//! results asks: each run is held ([`crate::run_locks`], in id order so two batches cannot
//! wait for each other) and computed on its own, then all their transitions go to the store in
//! one call, which commits them together ([`gantry_store::Store::apply_transitions`]: a few
//! statements for the whole batch). A run the store refuses (its version moved, a job
//! claimed meanwhile) is computed again alone, as a lone change would be.

use std::collections::VecDeque;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use gantry_engine::{Attempt, Effect, Event, JobKey, Millis, RunState};
use gantry_store::{
    AppliedTransition, Claim, ClaimInTransition, FencingToken, Job, JobId, JobUpdate, Lease, RunId,
    RunnerId, StoreError, Transition,
};

use crate::app::{
    App, CachedRun, MAX_TRANSITION_TRIES, PlannedTransition, log_effects, plan_transition, row_of,
};
use crate::convert::{self, ms, now};
use crate::error::ApiError;

/// One event of a change of a run, with what proves it or commits with it.
#[derive(Debug)]
pub(crate) struct Step {
    pub event: Event,
    /// The fencing token of the runner reporting a `JobCompleted`: the attempt it ends must
    /// hold it.
    pub token: Option<FencingToken>,
    /// The runner's claim a `JobStarted` commits with.
    pub claim: Option<RunnerClaim>,
}

/// `items` grouped by their run: runs in the order they first appear, each run's items in
/// order (a batch of claims or results becomes one transaction per run).
pub(crate) fn by_run<T>(items: impl IntoIterator<Item = (RunId, T)>) -> Vec<(RunId, Vec<T>)> {
    let mut groups: Vec<(RunId, Vec<T>)> = Vec::new();
    let mut position: HashMap<RunId, usize> = HashMap::new();
    for (run, item) in items {
        let index = *position.entry(run).or_insert_with(|| {
            groups.push((run, Vec::new()));
            groups.len() - 1
        });
        groups[index].1.push(item);
    }
    groups
}

/// What a batch of steps did to a run ([`App::drive_runs`]).
pub(crate) struct AppliedSteps {
    /// The run after the steps (as it was, if none was taken).
    pub state: Arc<RunState>,
    /// The claims made, in the order of their steps, with their fencing tokens.
    pub claims: Vec<Claim>,
    /// Per step, in order: taken, or why the engine or the store refused it.
    pub outcomes: Vec<Result<(), ApiError>>,
}

/// A runner's claim of a queued job, made in the same transaction as the engine's "job
/// started" ([`App::drive_runs`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunnerClaim {
    pub job_id: JobId,
    pub runner: RunnerId,
    /// When it is claimed; its lease lasts the dispatcher's `lease_ms` from then.
    pub at: Millis,
}

impl App {
    /// Applies `event` to a run and everything it causes in other runs (concurrency groups);
    /// returns the run after the event. An error is about `event` itself; failures of the
    /// consequences are logged.
    pub(crate) async fn drive(
        &self,
        run_id: RunId,
        event: Event,
        token: Option<FencingToken>,
    ) -> Result<Arc<RunState>, ApiError> {
        let step = Step {
            event,
            token,
            claim: None,
        };
        let (state, deliveries) = self.apply(run_id, &step).await?;
        self.deliver(deliveries).await;
        Ok(state)
    }

    /// One run's steps, as [`App::drive_runs`] applies each run's.
    #[cfg(test)]
    pub(crate) async fn drive_steps(
        &self,
        run_id: RunId,
        steps: &[Step],
    ) -> Result<AppliedSteps, ApiError> {
        let (applied, deliveries) = self.apply_steps(run_id, steps).await?;
        self.deliver(deliveries).await;
        Ok(applied)
    }

    /// Applies events produced by the concurrency groups, and what those cause in turn.
    pub(crate) async fn deliver(&self, deliveries: Vec<(RunId, Event)>) {
        let mut work = VecDeque::from(deliveries);
        while let Some((run_id, event)) = work.pop_front() {
            let step = Step {
                event,
                token: None,
                claim: None,
            };
            match self.apply(run_id, &step).await {
                Ok((_, more)) => work.extend(more),
                Err(error) => {
                    tracing::warn!(run_id = %run_id, event = ?step.event, error = %error, "concurrency event refused");
                }
            }
        }
    }

    /// One step on one run: [`App::apply_steps`] with the step's refusal as the error, and
    /// the run after it.
    async fn apply(
        &self,
        run_id: RunId,
        step: &Step,
    ) -> Result<(Arc<RunState>, Vec<(RunId, Event)>), ApiError> {
        let (applied, deliveries) = self.apply_steps(run_id, std::slice::from_ref(step)).await?;
        let AppliedSteps {
            state,
            mut outcomes,
            ..
        } = applied;
        match outcomes.pop() {
            Some(Err(error)) => Err(error),
            _ => Ok((state, deliveries)),
        }
    }

    /// Applies several events to each of several runs (each run at most once): a run's in
    /// one transition (claims of several of its jobs, which commit with the engine's "job
    /// started", so the engine cannot miss a claim and the runner holds the lease before the
    /// dispatcher hears of the start; results of several), the runs' transitions stored
    /// together. Each step the engine or the store refuses is left out with its error, the
    /// others commit. Answers per run, in order; an error is about a run's whole batch
    /// (nothing of it was written).
    pub(crate) async fn drive_runs(
        &self,
        runs: &[(RunId, Vec<Step>)],
    ) -> Vec<Result<AppliedSteps, ApiError>> {
        let turns = self
            .run_locks
            .lock_all(runs.iter().map(|(run_id, _)| *run_id))
            .await;
        let mut answers: Vec<Option<Result<AppliedSteps, ApiError>>> =
            runs.iter().map(|_| None).collect();
        let mut changes = Vec::new();
        let mut transitions = Vec::new();
        for (index, (run_id, steps)) in runs.iter().enumerate() {
            match self.prepare(*run_id, steps).await {
                Ok(Prepared::Nothing(applied)) => answers[index] = Some(Ok(applied)),
                Ok(Prepared::Change(change, transition)) => {
                    changes.push((index, change));
                    transitions.push(*transition);
                }
                Err(error) => answers[index] = Some(Err(error)),
            }
        }
        let stored = match self.store.apply_transitions(transitions).await {
            Ok(stored) => stored,
            Err(error) => {
                let error = ApiError::from(error);
                for (index, _) in changes.drain(..) {
                    answers[index] = Some(Err(error.clone()));
                }
                Vec::new()
            }
        };
        let mut deliveries = Vec::new();
        for ((index, change), stored) in changes.into_iter().zip(stored) {
            let (run_id, steps) = &runs[index];
            let outcome = match stored {
                Ok(applied) => Ok(self.commit(change, applied).await),
                // The store's answer is what the run gets alone, so the run goes again alone,
                // which settles the refusal (computed again, one step at a time, or answered).
                Err(_) => self.apply_steps_in_turn(*run_id, steps).await,
            };
            answers[index] = Some(outcome.map(|(applied, more)| {
                deliveries.extend(more);
                applied
            }));
        }
        drop(turns);
        self.deliver(deliveries).await;
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(ApiError::internal(&"a run of the batch was not answered"))
                })
            })
            .collect()
    }

    /// Steps on one run, in one transaction (with the claims they carry: see
    /// [`App::drive_runs`]); then the in-memory indexes. A step the engine refuses is left
    /// out; if the store refuses the transition without the run having moved (a claim of a
    /// job claimed meanwhile, a stale token), a batch is applied again one step at a time so
    /// that only the refused step fails.
    async fn apply_steps(
        &self,
        run_id: RunId,
        steps: &[Step],
    ) -> Result<(AppliedSteps, Vec<(RunId, Event)>), ApiError> {
        let _turn = self.run_locks.lock(run_id).await;
        self.apply_steps_in_turn(run_id, steps).await
    }

    /// [`App::apply_steps`] once the run is held: computed again while another writer moves
    /// the run under it.
    async fn apply_steps_in_turn(
        &self,
        run_id: RunId,
        steps: &[Step],
    ) -> Result<(AppliedSteps, Vec<(RunId, Event)>), ApiError> {
        for _ in 0..MAX_TRANSITION_TRIES {
            let (change, transition) = match self.prepare(run_id, steps).await? {
                Prepared::Nothing(applied) => return Ok((applied, Vec::new())),
                Prepared::Change(change, transition) => (change, transition),
            };
            match self.store.apply_transition(*transition).await {
                Ok(applied) => return Ok(self.commit(change, applied).await),
                Err(refusal) => match self.refused(change, refusal).await? {
                    Refused::Answered(applied) => return Ok((applied, Vec::new())),
                    Refused::Again => {
                        tracing::debug!(run_id = %run_id, "state changed meanwhile; retrying");
                    }
                    Refused::OneByOne(before) => {
                        return self.apply_one_by_one(run_id, steps, before).await;
                    }
                },
            }
        }
        Err(ApiError::new(
            gantry_proto::v1::ErrorCode::Unavailable,
            format!("run {run_id} is changing too fast; retry"),
        ))
    }

    /// Computes `steps` on a copy of the run's committed state (from the cache, else the
    /// store) and plans the transition that writes what they changed.
    async fn prepare(&self, run_id: RunId, steps: &[Step]) -> Result<Prepared, ApiError> {
        let cached = self.take_cached_run(run_id);
        let (before, version, cached_rows) = match cached {
            Some(cached) => (cached.state, cached.version, cached.rows),
            None => {
                let (state, version, rows) = self.load_state_and_rows(run_id).await?;
                (Arc::new(state), version, Some(rows))
            }
        };
        // The committed state stays as it is (the rows are compared against it, and it is
        // what a refused event leaves); the events change a copy: the one deep copy of the
        // run a change costs.
        let mut state = RunState::clone(&before);
        // Jobs start when they are claimed: the claim writes that time into the job's row,
        // and the engine agreeing spares the transition writing the row a second time.
        let time = steps
            .iter()
            .find_map(|step| step.claim.map(|claim| claim.at))
            .unwrap_or_else(now);
        let mut effects = Vec::new();
        let mut outcomes = Vec::with_capacity(steps.len());
        for step in steps {
            // A refused event changes nothing, so the next one sees the state as if it had
            // not been sent.
            match state.handle(&step.event, time) {
                Ok(caused) => {
                    effects.extend(caused);
                    outcomes.push(Ok(()));
                }
                Err(error) => outcomes.push(Err(ApiError::from(error))),
            }
        }
        let taken: Vec<&Step> = steps
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(step, _)| step)
            .collect();
        if taken.is_empty() {
            self.remember(
                run_id,
                CachedRun {
                    state: Arc::clone(&before),
                    version,
                    rows: cached_rows,
                },
            );
            return Ok(Prepared::Nothing(AppliedSteps {
                state: before,
                claims: Vec::new(),
                outcomes,
            }));
        }
        let mut rows = match cached_rows {
            Some(rows) => rows,
            None => self.store.list_jobs(run_id).await?,
        };
        // A token proves the reporter's claim on the attempt it ends, and only that one.
        let tokens: Vec<(&JobKey, FencingToken)> = taken
            .iter()
            .filter_map(|step| match (&step.event, step.token) {
                (Event::JobCompleted { job, .. }, Some(token)) => Some((job, token)),
                _ => None,
            })
            .collect();
        let claimed: Vec<(RunnerClaim, JobKey, Attempt)> = taken
            .iter()
            .filter_map(|step| match (step.claim, &step.event) {
                (Some(claim), Event::JobStarted { job, attempt }) => {
                    Some((claim, job.clone(), *attempt))
                }
                _ => None,
            })
            .collect();
        // The rows as the claims leave them, which the transition only adds to.
        for (claim, _, _) in &claimed {
            if let Some(row) = row_of(&mut rows, claim.job_id) {
                row.claim(ms(claim.at));
            }
        }
        let mut plan = plan_transition(run_id, version, &before, &state, &rows, &tokens, time)?;
        for (claim, _, _) in &claimed {
            // Started by its claim even when the transition writes nothing more of its row.
            if !plan.statuses.iter().any(|(job, _)| *job == claim.job_id) {
                plan.statuses
                    .push((claim.job_id, gantry_store::JobStatus::InProgress));
            }
        }
        plan.transition.claims = claimed
            .iter()
            .map(|(claim, _, attempt)| ClaimInTransition {
                job_id: claim.job_id,
                attempt: i64::from(attempt.0),
                runner_id: claim.runner,
                lease: Lease {
                    now_ms: ms(claim.at),
                    deadline_ms: ms(self.lease_deadline(claim.at)),
                },
            })
            .collect();
        let PlannedTransition {
            transition,
            statuses,
            new_statuses,
        } = plan;
        let change = Change {
            run_id,
            before,
            version,
            state,
            rows,
            effects,
            outcomes,
            taken: taken.len(),
            claimed,
            updates: transition.job_updates.clone(),
            new_keys: transition
                .new_jobs
                .iter()
                .map(|job| {
                    JobKey::new(
                        job.job_key.clone(),
                        u32::try_from(job.matrix_index).unwrap_or(u32::MAX),
                    )
                })
                .collect(),
            statuses,
            new_statuses,
        };
        Ok(Prepared::Change(Box::new(change), Box::new(transition)))
    }

    /// Brings memory in step with a change the store committed: the run cache, the leases of
    /// its claims, the dispatcher, timers and concurrency groups. Returns what the steps did
    /// and the events the groups answered with.
    async fn commit(
        &self,
        change: Box<Change>,
        applied: AppliedTransition,
    ) -> (AppliedSteps, Vec<(RunId, Event)>) {
        let Change {
            run_id,
            state,
            mut rows,
            effects,
            outcomes,
            claimed,
            updates,
            new_keys,
            statuses: mut plan_statuses,
            new_statuses,
            ..
        } = *change;
        for update in &updates {
            if let Some(row) = row_of(&mut rows, update.job_id) {
                update.apply_to(row);
            }
        }
        let mut changes: Vec<(JobId, JobKey, gantry_store::JobStatus, i64)> = plan_statuses
            .iter()
            .filter_map(|&(id, status)| {
                let row = rows.binary_search_by_key(&id, |row| row.id).ok()?;
                let row = rows.get(row)?;
                Some((id, convert::job_key(row), status, row.priority))
            })
            .collect();
        changes.extend(
            applied
                .new_job_ids
                .iter()
                .zip(new_keys)
                .zip(&new_statuses)
                .map(|((id, key), status)| (*id, key, *status, 0)),
        );
        let cancels: Vec<JobId> = effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::CancelJob { job, .. } => rows
                    .iter()
                    .find(|row| convert::job_key(row) == *job)
                    .map(|row| row.id),
                _ => None,
            })
            .collect();
        let state = Arc::new(state);
        let adds_jobs = !applied.new_job_ids.is_empty();
        self.remember(
            run_id,
            CachedRun {
                state: Arc::clone(&state),
                version: applied.state_version,
                // New rows carry columns only the store fills in: read them anew.
                rows: (!adds_jobs).then_some(rows),
            },
        );
        plan_statuses.extend(applied.new_job_ids.into_iter().zip(new_statuses));
        // The leases first: the dispatcher drops a started job it finds unleased. The store
        // made the claims in the order they were asked.
        for ((request, key, attempt), made) in claimed.into_iter().zip(&applied.claims) {
            let deadline = self.lease_deadline(request.at);
            self.grant_lease(request.runner, made, key, attempt, deadline);
        }
        self.feed_dispatcher(run_id, &state, &changes, &cancels)
            .await;
        let deliveries = self
            .after_commit(run_id, &state, &plan_statuses, &effects)
            .await;
        log_effects(run_id, &effects);
        let applied = AppliedSteps {
            state,
            claims: applied.claims,
            outcomes,
        };
        (applied, deliveries)
    }

    /// What to do about a transition the store refused: a conflict is another writer having
    /// moved the run (compute again), a batch of steps one of which the store refuses (apply
    /// them one by one), or a lone step refused (its answer). Other errors are the caller's.
    async fn refused(&self, change: Box<Change>, refusal: StoreError) -> Result<Refused, ApiError> {
        let StoreError::Conflict { what } = refusal else {
            return Err(refusal.into());
        };
        let current = self.store.get_run(change.run_id).await?;
        if current.state_version != change.version {
            return Ok(Refused::Again);
        }
        if change.taken > 1 {
            return Ok(Refused::OneByOne(change.before));
        }
        let refused = ApiError::conflict(format!("conflict: {what}"));
        let outcomes = change
            .outcomes
            .into_iter()
            .map(|outcome| outcome.and(Err(refused.clone())))
            .collect();
        Ok(Refused::Answered(AppliedSteps {
            state: change.before,
            claims: Vec::new(),
            outcomes,
        }))
    }

    /// A batch the store refused as a whole, applied again one step at a time (the run still
    /// held), so that only the step at fault fails; `before` is the run before the batch.
    async fn apply_one_by_one(
        &self,
        run_id: RunId,
        steps: &[Step],
        before: Arc<RunState>,
    ) -> Result<(AppliedSteps, Vec<(RunId, Event)>), ApiError> {
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut claims = Vec::new();
        let mut deliveries = Vec::new();
        let mut state = before;
        for step in steps {
            let (applied, more) =
                Box::pin(self.apply_steps_in_turn(run_id, std::slice::from_ref(step))).await?;
            outcomes.extend(applied.outcomes);
            claims.extend(applied.claims);
            deliveries.extend(more);
            state = applied.state;
        }
        let applied = AppliedSteps {
            state,
            claims,
            outcomes,
        };
        Ok((applied, deliveries))
    }
}

/// Steps computed on a run: nothing to write (no step was taken), or a change and the
/// transition that stores it.
enum Prepared {
    Nothing(AppliedSteps),
    Change(Box<Change>, Box<Transition>),
}

/// A run's steps computed and planned, waiting for the store's answer to their transition.
struct Change {
    run_id: RunId,
    /// The committed state they were computed from (what a refusal leaves) and its version.
    before: Arc<RunState>,
    version: i64,
    /// The state after them.
    state: RunState,
    /// The run's job rows before them.
    rows: Vec<Job>,
    effects: Vec<Effect>,
    /// Per step: taken, or why the engine refused it.
    outcomes: Vec<Result<(), ApiError>>,
    /// How many steps the engine took.
    taken: usize,
    /// The claims the transition makes, with the instance and attempt each starts.
    claimed: Vec<(RunnerClaim, JobKey, Attempt)>,
    /// The job rows the transition updates.
    updates: Vec<JobUpdate>,
    /// The instances of the jobs it adds, in order.
    new_keys: Vec<JobKey>,
    /// Existing jobs whose row changes, with their new status.
    statuses: Vec<(JobId, gantry_store::JobStatus)>,
    /// The statuses of the jobs it adds, in order.
    new_statuses: Vec<gantry_store::JobStatus>,
}

/// What became of a transition the store refused ([`App::refused`]).
enum Refused {
    /// The steps' answers: the lone step taken was refused.
    Answered(AppliedSteps),
    /// The run moved meanwhile: compute again.
    Again,
    /// One of several steps sank the transition: apply them one at a time from this state.
    OneByOne(Arc<RunState>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::JobStatus;

    /// A claim's transition writes the job's row through the claim alone (the engine's
    /// start agrees with it), and the rows kept in memory are the stored ones.
    #[tokio::test]
    async fn a_claim_writes_its_job_row_once() {
        let fixture = crate::test_support::one_job().await;
        let (app, job) = (&fixture.app, &fixture.job);
        let at = now();
        let start = || crate::test_support::start(job, at);
        let Ok(Prepared::Change(change, transition)) = app.prepare(job.run_id, &[start()]).await
        else {
            panic!("the claim changes the run");
        };
        assert!(transition.job_updates.is_empty(), "{transition:?}");
        assert_eq!(transition.claims.len(), 1);
        assert!(change.statuses.contains(&(job.id, JobStatus::InProgress)));

        app.drive_steps(job.run_id, &[start()]).await.unwrap();
        let stored = app.store.get_job(job.id).await.unwrap();
        assert_eq!(
            (stored.status, stored.started_at_ms),
            (JobStatus::InProgress, Some(ms(at)))
        );
        assert_eq!(
            app.cached_rows(job.run_id, &[job.id]),
            Some(vec![Some(stored)])
        );
    }
}
