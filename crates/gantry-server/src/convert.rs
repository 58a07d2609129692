//! Conversions between the engine's, the store's and the wire's spellings of the same facts,
//! and between their id and time types.
//!
//! The three crates keep their own enums on purpose (the store's change only with a migration,
//! the wire's only with an API version); this module is where they meet.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use gantry_engine as engine;
use gantry_proto::v1 as proto;
use gantry_store as store;

/// The current time as the engine counts it: milliseconds since the Unix epoch.
pub fn now() -> engine::Millis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    engine::Millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

/// Engine milliseconds as stored.
pub fn ms(time: engine::Millis) -> i64 {
    i64::try_from(time.0).unwrap_or(i64::MAX)
}

/// A wire timestamp as engine milliseconds (times before the epoch become 0).
pub fn engine_time(time: DateTime<Utc>) -> engine::Millis {
    engine::Millis(u64::try_from(time.timestamp_millis()).unwrap_or(0))
}

/// Stored milliseconds as a wire timestamp.
pub fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored run id as the engine's (stored ids are positive).
pub fn engine_run_id(id: store::RunId) -> engine::RunId {
    engine::RunId(id.0.unsigned_abs())
}

/// The engine's run id as stored.
pub fn store_run_id(id: engine::RunId) -> store::RunId {
    store::RunId(i64::try_from(id.0).unwrap_or(i64::MAX))
}

/// The instance a stored job row is.
pub fn job_key(job: &store::Job) -> engine::JobKey {
    engine::JobKey::new(
        job.job_key.clone(),
        u32::try_from(job.matrix_index).unwrap_or(u32::MAX),
    )
}

pub fn store_run_status(status: engine::RunStatus) -> store::RunStatus {
    match status {
        engine::RunStatus::Queued => store::RunStatus::Queued,
        engine::RunStatus::InProgress => store::RunStatus::InProgress,
        engine::RunStatus::Completed => store::RunStatus::Completed,
    }
}

pub fn store_job_status(status: engine::JobStatus) -> store::JobStatus {
    match status {
        engine::JobStatus::Waiting => store::JobStatus::Waiting,
        engine::JobStatus::Queued => store::JobStatus::Queued,
        engine::JobStatus::InProgress => store::JobStatus::InProgress,
        engine::JobStatus::Completed => store::JobStatus::Completed,
    }
}

pub fn store_conclusion(conclusion: engine::Conclusion) -> store::Conclusion {
    match conclusion {
        engine::Conclusion::Success => store::Conclusion::Success,
        engine::Conclusion::Failure => store::Conclusion::Failure,
        engine::Conclusion::Cancelled => store::Conclusion::Cancelled,
        engine::Conclusion::Skipped => store::Conclusion::Skipped,
    }
}

pub fn engine_conclusion(conclusion: proto::Conclusion) -> engine::Conclusion {
    match conclusion {
        proto::Conclusion::Success => engine::Conclusion::Success,
        proto::Conclusion::Failure => engine::Conclusion::Failure,
        proto::Conclusion::Cancelled => engine::Conclusion::Cancelled,
        proto::Conclusion::Skipped => engine::Conclusion::Skipped,
    }
}

pub fn wire_run_status(status: store::RunStatus) -> proto::RunStatus {
    match status {
        store::RunStatus::Queued => proto::RunStatus::Queued,
        store::RunStatus::InProgress => proto::RunStatus::InProgress,
        store::RunStatus::Completed => proto::RunStatus::Completed,
    }
}

pub fn store_run_status_of_wire(status: proto::RunStatus) -> store::RunStatus {
    match status {
        proto::RunStatus::Queued => store::RunStatus::Queued,
        proto::RunStatus::InProgress => store::RunStatus::InProgress,
        proto::RunStatus::Completed => store::RunStatus::Completed,
    }
}

pub fn wire_job_status(status: store::JobStatus) -> proto::JobStatus {
    match status {
        store::JobStatus::Waiting => proto::JobStatus::Waiting,
        store::JobStatus::Queued => proto::JobStatus::Queued,
        store::JobStatus::InProgress => proto::JobStatus::InProgress,
        store::JobStatus::Completed => proto::JobStatus::Completed,
    }
}

pub fn wire_conclusion(conclusion: store::Conclusion) -> proto::Conclusion {
    match conclusion {
        store::Conclusion::Success => proto::Conclusion::Success,
        store::Conclusion::Failure => proto::Conclusion::Failure,
        store::Conclusion::Cancelled => proto::Conclusion::Cancelled,
        store::Conclusion::Skipped => proto::Conclusion::Skipped,
    }
}

/// An engine waiting reason on the wire: the sentence and the facts.
pub fn wire_reason(reason: &engine::WaitReason) -> proto::WaitingReason {
    let mut wire = proto::WaitingReason {
        kind: proto::WaitingReasonKind::Runner,
        message: reason.to_string(),
        jobs: Vec::new(),
        group: None,
        held_by_run: None,
        limit: None,
        labels: Vec::new(),
        in_use: None,
        position: None,
        of: None,
    };
    match reason {
        engine::WaitReason::Needs { jobs } => {
            wire.kind = proto::WaitingReasonKind::Needs;
            wire.jobs = jobs.clone();
        }
        engine::WaitReason::ConcurrencyGroup { group, held_by } => {
            wire.kind = proto::WaitingReasonKind::ConcurrencyGroup;
            wire.group = Some(group.clone());
            wire.held_by_run = held_by.map(|run| store_run_id(run).0);
        }
        engine::WaitReason::MaxParallel { limit } => {
            wire.kind = proto::WaitingReasonKind::MaxParallel;
            wire.limit = u64::try_from(*limit).ok();
        }
        engine::WaitReason::Runner { labels } => wire.labels = labels.clone(),
        engine::WaitReason::NoOnlineRunner { labels, group } => {
            wire.kind = proto::WaitingReasonKind::NoOnlineRunner;
            wire.labels = labels.clone();
            wire.group = group.clone();
        }
        engine::WaitReason::OrgQuota { in_use, limit } => {
            wire.kind = proto::WaitingReasonKind::OrgQuota;
            wire.in_use = Some(u64::from(*in_use));
            wire.limit = Some(u64::from(*limit));
        }
        engine::WaitReason::QueuePosition { position, of } => {
            wire.kind = proto::WaitingReasonKind::QueuePosition;
            wire.position = u64::try_from(*position).ok();
            wire.of = u64::try_from(*of).ok();
        }
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_keep_their_sentence_and_facts() {
        let reason = engine::WaitReason::ConcurrencyGroup {
            group: "deploy".into(),
            held_by: Some(engine::RunId(4)),
        };
        let wire = wire_reason(&reason);
        assert_eq!(wire.kind, proto::WaitingReasonKind::ConcurrencyGroup);
        assert_eq!(wire.message, "concurrency group `deploy` held by run 4");
        assert_eq!(wire.held_by_run, Some(4));
    }

    #[test]
    fn the_dispatchers_reasons_have_kinds_of_their_own() {
        let quota = wire_reason(&engine::WaitReason::OrgQuota {
            in_use: 5,
            limit: 5,
        });
        assert_eq!(quota.kind, proto::WaitingReasonKind::OrgQuota);
        assert_eq!((quota.in_use, quota.limit), (Some(5), Some(5)));
        let position = wire_reason(&engine::WaitReason::QueuePosition { position: 3, of: 9 });
        assert_eq!(position.kind, proto::WaitingReasonKind::QueuePosition);
        assert_eq!((position.position, position.of), (Some(3), Some(9)));
        let offline = wire_reason(&engine::WaitReason::NoOnlineRunner {
            labels: vec!["gpu".into()],
            group: None,
        });
        assert_eq!(offline.kind, proto::WaitingReasonKind::NoOnlineRunner);
        assert_eq!(offline.labels, ["gpu"]);
        assert_eq!(
            serde_json::to_value(position.kind).unwrap(),
            serde_json::json!("queue_position")
        );
    }

    #[test]
    fn ids_and_times_survive_the_trip() {
        assert_eq!(
            store_run_id(engine_run_id(store::RunId(42))),
            store::RunId(42)
        );
        assert_eq!(
            timestamp(ms(engine::Millis(1_500))).timestamp_millis(),
            1_500
        );
    }
}
