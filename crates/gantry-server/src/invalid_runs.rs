//! Runs of workflow files that failed to load, as GitHub records them ("Invalid workflow
//! file"): an event that reaches a file which does not parse or validate (or whose reusable
//! workflows do not) creates a run of that file that is completed and failed at once, has no
//! jobs and carries every problem as `file:line:col: message`, so the author sees the mistake
//! where they look for their runs instead of in a server log.
//!
//! The run takes the workflow's next run number and its creation is idempotent per delivery
//! exactly as a valid run's ([`crate::triggers`] derives the key).

use gantry_proto::v1 as proto;
use gantry_store::NewRun;

use crate::app::App;
use crate::convert::{ms, now};
use crate::error::ApiError;
use crate::github::GithubFacts;
use crate::views;

/// A failed run to record for a workflow file.
pub(crate) struct InvalidRun {
    /// The file, e.g. `.github/workflows/ci.yml`.
    pub workflow_path: String,
    /// The workflow's `name:` when the file itself loaded (only its calls were invalid).
    pub workflow_name: Option<String>,
    /// The file's text as read (empty when it could not be read as text).
    pub workflow_source: String,
    /// Every problem, `file:line:col: message`; not empty.
    pub errors: Vec<String>,
    /// The event's facts, for the run's event, ref, commit and actor.
    pub facts: GithubFacts,
    /// Makes the creation idempotent per repository.
    pub idempotency_key: Option<String>,
}

impl App {
    /// Records `invalid` as a completed, failed run without jobs. Returns the run and whether
    /// it was created (false: the idempotency key named an earlier run).
    pub(crate) async fn record_invalid_run(
        &self,
        repo: &gantry_store::Repository,
        invalid: InvalidRun,
    ) -> Result<(proto::Run, bool), ApiError> {
        let InvalidRun {
            workflow_path,
            workflow_name,
            workflow_source,
            errors,
            facts,
            idempotency_key,
        } = invalid;
        // GitHub names such a run after the file, since its `name:` may be what is broken.
        let workflow_name = workflow_name
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| workflow_path.clone());
        let new_run = NewRun {
            repo_id: repo.id,
            workflow_path,
            workflow_name,
            event_name: facts.event_name,
            git_ref: facts.git_ref,
            sha: facts.sha,
            actor: facts.actor,
            created_at_ms: ms(now()),
            workflow_source,
            // It never runs, so nothing it calls is kept.
            called_workflows: Default::default(),
        };
        let created = self
            .store
            .create_invalid_run(new_run, errors, idempotency_key.as_deref())
            .await?;
        if created.created {
            tracing::info!(run_id = %created.run_id, repo = %facts.repository, "run of an invalid workflow file recorded as failed");
        }
        let run = self.store.get_run(created.run_id).await?;
        Ok((views::run(&run, &facts.repository), created.created))
    }
}
