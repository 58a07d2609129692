//! Stored records (and the engine's state where the rows do not say enough) as wire views.

use gantry_engine::{RunState, WaitReason};
use gantry_proto::v1 as proto;
use gantry_store as store;
use indexmap::IndexMap;

use crate::convert::{self, timestamp};

/// An organization on the wire.
pub fn organization(org: &store::Organization) -> proto::Organization {
    proto::Organization {
        id: org.id.0,
        name: org.name.clone(),
        weight: u32::try_from(org.weight).unwrap_or(u32::MAX),
        hosted_concurrency_limit: org
            .hosted_concurrency_limit
            .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX)),
    }
}

/// A repository on the wire.
pub fn repository(repo: &store::Repository, org: &str) -> proto::Repository {
    proto::Repository {
        id: repo.id.0,
        org: org.to_owned(),
        name: repo.name.clone(),
        full_name: format!("{org}/{}", repo.name),
        default_branch: repo.default_branch.clone(),
    }
}

/// A run on the wire.
pub fn run(run: &store::WorkflowRun, full_name: &str) -> proto::Run {
    proto::Run {
        id: run.id.0,
        repository: full_name.to_owned(),
        workflow_path: run.workflow_path.clone(),
        workflow_name: run.workflow_name.clone(),
        run_number: u64::try_from(run.run_number).unwrap_or_default(),
        attempt: u32::try_from(run.attempt).unwrap_or_default(),
        event: run.event_name.clone(),
        git_ref: run.git_ref.clone(),
        sha: run.sha.clone(),
        actor: run.actor.clone(),
        status: convert::wire_run_status(run.status),
        conclusion: run.conclusion.map(convert::wire_conclusion),
        created_at: timestamp(run.created_at_ms),
        started_at: run.started_at_ms.map(timestamp),
        completed_at: run.completed_at_ms.map(timestamp),
        workflow_errors: run.workflow_errors.clone(),
    }
}

/// A job on the wire; `state` supplies the message the row does not keep.
pub fn job(job: &store::Job, state: Option<&RunState>) -> proto::Job {
    let reasons: Vec<WaitReason> =
        serde_json::from_value(job.waiting_reasons.clone()).unwrap_or_default();
    let outputs: IndexMap<String, String> =
        serde_json::from_value(job.outputs.clone()).unwrap_or_default();
    let message = state
        .and_then(|state| state.instance(&convert::job_key(job)))
        .and_then(|instance| instance.message.clone());
    proto::Job {
        id: job.id.0,
        run_id: job.run_id.0,
        job_key: job.job_key.clone(),
        matrix_index: u32::try_from(job.matrix_index).unwrap_or_default(),
        name: job.name.clone(),
        status: convert::wire_job_status(job.status),
        conclusion: job.conclusion.map(convert::wire_conclusion),
        attempt: u32::try_from(job.attempt).unwrap_or_default(),
        labels: job.runs_on.clone(),
        priority: crate::dispatcher::clamp_priority(job.priority),
        waiting_reasons: reasons.iter().map(convert::wire_reason).collect(),
        outputs,
        message,
        queued_at: job.queued_at_ms.map(timestamp),
        started_at: job.started_at_ms.map(timestamp),
        completed_at: job.completed_at_ms.map(timestamp),
    }
}
