//! The trigger's contexts as the JSON every job's payload carries, made once per run.
//!
//! Each payload ([`crate::payload`]) sends `github`, `inputs` and `vars` as JSON. Made per job,
//! that meant copying the engine's values and converting the copies for every job of the run,
//! and a push event's `github` alone is several kilobytes. [`TriggerJson`] keeps them
//! converted in the run's [`crate::spec::RunSpec`], which every state of the run shares
//! (`RunSpec::payload_contexts`).

use std::sync::OnceLock;

use crate::spec::TriggerContexts;

/// The trigger's contexts as JSON; `github` without `run_attempt`, which re-runs change.
#[derive(Debug)]
pub(crate) struct TriggerJsonValues {
    pub github: serde_json::Value,
    pub inputs: serde_json::Value,
    pub vars: serde_json::Value,
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
