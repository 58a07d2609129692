//! Cron schedules: each minute, the `on.schedule` lines of every git-backed repository's
//! workflows at the head of its default branch, evaluated in UTC, start their runs.
//!
//! Exactly once per minute, whoever fires: a scheduled run's idempotency key is derived from
//! (the minute, the cron line, the workflow file), so a second scheduler on the same store, a
//! retry, or a restart within the minute finds the run already made. After downtime the
//! missed minutes are not replayed (GitHub does the same: a schedule that could not run is
//! skipped); the scheduler fires the current minute only, so a restart never causes a storm.
//! Schedules with a `timezone:` other than UTC are skipped with a warning for now.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use gantry_store::{OrgId, RepoId, Repository};
use gantry_workflow::model::TriggerConfig;

use crate::app::App;
use crate::error::ApiError;
use crate::git::GitRepo;
use crate::webhook::{Changes, EventFacts};

/// The actor of scheduled runs, as on GitHub (the last committer there; a fixed name here).
const SCHEDULER: &str = "gantry-scheduler";
/// How many organizations or repositories the scheduler reads at a time.
const PAGE: u32 = 500;

/// The minute that contains `time`.
fn minute_of(time: DateTime<Utc>) -> DateTime<Utc> {
    time.with_second(0)
        .and_then(|minute| minute.with_nanosecond(0))
        .unwrap_or(time)
}

impl App {
    /// Fires every schedule due in the minute that contains `time`; returns how many runs
    /// were created (runs this minute already had are not counted).
    pub async fn fire_schedules(&self, time: DateTime<Utc>) -> Result<usize, ApiError> {
        let minute = minute_of(time);
        let mut created = 0;
        let mut after: Option<OrgId> = None;
        loop {
            let orgs = self.store.list_organizations(after, PAGE).await?;
            for org in &orgs {
                let mut after_repo: Option<RepoId> = None;
                loop {
                    let repos = self
                        .store
                        .list_repositories(org.id, after_repo, PAGE)
                        .await?;
                    for repo in &repos {
                        let full_name = format!("{}/{}", org.name, repo.name);
                        match self
                            .fire_repository(repo, &org.name, &full_name, minute)
                            .await
                        {
                            Ok(count) => created += count,
                            Err(error) => {
                                tracing::warn!(repo = %full_name, error = %error, "schedules not fired");
                            }
                        }
                    }
                    match repos.last() {
                        Some(last) if repos.len() == PAGE as usize => after_repo = Some(last.id),
                        _ => break,
                    }
                }
            }
            match orgs.last() {
                Some(last) if orgs.len() == PAGE as usize => after = Some(last.id),
                _ => break,
            }
        }
        Ok(created)
    }

    /// The schedules of one repository due in `minute`.
    async fn fire_repository(
        &self,
        repo: &Repository,
        owner: &str,
        full_name: &str,
        minute: DateTime<Utc>,
    ) -> Result<usize, ApiError> {
        let source = match self.store.get_repository_source(repo.id).await {
            Ok(source) => source,
            Err(gantry_store::StoreError::NotFound { .. }) => return Ok(0),
            Err(error) => return Err(error.into()),
        };
        let path = std::path::PathBuf::from(&source.git_path);
        let branch = format!("refs/heads/{}", repo.default_branch);
        let repository = full_name.to_owned();
        // The cron lines of the default branch's head that fire this minute.
        let due = tokio::task::spawn_blocking(move || -> Result<BTreeSet<String>, String> {
            let git = GitRepo::open(&path).map_err(|error| error.to_string())?;
            let Some(head) = git.resolve(&branch).map_err(|error| error.to_string())? else {
                return Ok(BTreeSet::new());
            };
            let mut due = BTreeSet::new();
            for file in git.workflow_files(&head).map_err(|error| error.to_string())? {
                let Ok(text) = file.source else { continue };
                let Ok(workflow) = gantry_workflow::load(&text, &Default::default()) else {
                    continue;
                };
                for trigger in &workflow.on {
                    let TriggerConfig::Schedule(entries) = &trigger.config else {
                        continue;
                    };
                    for entry in entries {
                        if let Some(zone) = &entry.timezone {
                            tracing::warn!(repo = %repository, workflow = %file.path, timezone = %zone.value, "schedules with a time zone are not fired yet");
                            continue;
                        }
                        if entry.cron.value.fires_in_minute(minute) {
                            due.insert(entry.cron.value.source().to_owned());
                        }
                    }
                }
            }
            Ok(due)
        })
        .await
        .map_err(|error| ApiError::internal(&error))?
        .map_err(|error| ApiError::internal(&error))?;
        let mut created = 0;
        for cron in due {
            let facts = EventFacts {
                event_name: "schedule".to_owned(),
                action: None,
                repository: full_name.to_owned(),
                owner: owner.to_owned(),
                git_ref: None,
                sha: None,
                filter_ref: None,
                workflow_name: None,
                actor: SCHEDULER.to_owned(),
                head_ref: String::new(),
                base_ref: String::new(),
                changes: Changes::NotApplicable,
                only_workflow: None,
                inputs: serde_json::Map::new(),
                payload: serde_json::json!({ "schedule": cron }),
                schedule: Some(cron.clone()),
            };
            let delivery = format!("schedule:{}:{cron}", minute.timestamp());
            let outcome = self.offer_event(repo, &source, &facts, &delivery).await?;
            created += outcome.runs.iter().filter(|run| run.created).count();
        }
        Ok(created)
    }

    /// Fires the schedules at the start of every minute, forever; run it as a background
    /// task. Only the current minute is fired: minutes missed while the server was down are
    /// skipped, never replayed.
    pub async fn run_scheduler(self: Arc<App>) {
        loop {
            let now = Utc::now();
            let next = minute_of(now) + chrono::Duration::minutes(1);
            let wait = (next - now).to_std().unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(wait).await;
            match self.fire_schedules(Utc::now()).await {
                Ok(0) => {}
                Ok(created) => tracing::info!(created, "scheduled runs started"),
                Err(error) => tracing::warn!(error = %error, "schedules not fired"),
            }
        }
    }
}
