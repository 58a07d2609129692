//! The trigger's contexts as the JSON every job's payload carries, made once per run.
//!
//! Each payload ([`crate::payload`]) sends `github`, `inputs` and `vars` as JSON. Made per job,
//! that meant copying the engine's values and converting the copies for every job of the run,
//! and a push event's `github` alone is several kilobytes. [`TriggerJson`] keeps them
//! converted in the run's [`crate::spec::RunSpec`], which every state of the run shares
//! (`RunSpec::payload_contexts`), and `github` with the run attempt in it shared by every
//! payload of that attempt, so a claim no longer copies the event for each job.

use std::sync::{Arc, Mutex, OnceLock};

use crate::spec::TriggerContexts;

/// The trigger's contexts as JSON; `github` without `run_attempt`, which re-runs change.
#[derive(Debug)]
pub(crate) struct TriggerJsonValues {
    github: serde_json::Value,
    pub inputs: serde_json::Value,
    pub vars: serde_json::Value,
    /// `github` with the run attempt last asked for, and that attempt: the jobs of a run
    /// are claimed attempt after attempt, never two attempts at once for long.
    github_of_attempt: Mutex<Option<(u32, Arc<serde_json::Value>)>>,
}

impl TriggerJsonValues {
    /// `github` with `run_attempt` (as text, as GitHub gives it) under `member`.
    pub(crate) fn github(&self, member: &str, run_attempt: u32) -> Arc<serde_json::Value> {
        // Plain data behind the lock: a panic elsewhere cannot leave it torn.
        let mut cached = self
            .github_of_attempt
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((attempt, github)) = &*cached
            && *attempt == run_attempt
        {
            return Arc::clone(github);
        }
        let mut github = self.github.clone();
        if let serde_json::Value::Object(fields) = &mut github {
            fields.insert(member.to_owned(), run_attempt.to_string().into());
        }
        let github = Arc::new(github);
        *cached = Some((run_attempt, Arc::clone(&github)));
        github
    }
}

/// [`TriggerJsonValues`], made when first asked for. Not part of what a spec is: never
/// stored, never copied (a copy of a spec, whose trigger may then be changed, makes its own),
/// and two specs compare equal whatever their caches hold.
#[derive(Debug, Default)]
pub(crate) struct TriggerJson(OnceLock<TriggerJsonValues>);

impl TriggerJson {
    /// The JSON of `trigger`, converted on the first call.
    pub(crate) fn get(&self, trigger: &TriggerContexts) -> &TriggerJsonValues {
        self.0.get_or_init(|| TriggerJsonValues {
            github: trigger.github.to_json(),
            inputs: trigger.inputs.to_json(),
            vars: trigger.vars.to_json(),
            github_of_attempt: Mutex::new(None),
        })
    }
}

impl Clone for TriggerJson {
    fn clone(&self) -> TriggerJson {
        TriggerJson::default()
    }
}

impl PartialEq for TriggerJson {
    fn eq(&self, _other: &TriggerJson) -> bool {
        true
    }
}
