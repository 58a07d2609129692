//! What the dispatcher is told: ids, normalized label sets, queued jobs, runners and
//! per-organization settings.
//!
//! The ids are the dispatcher's own newtypes so the engine does not depend on the store: the
//! server maps its database ids onto them one to one. Repository and run ids are global (a
//! repository belongs to exactly one organization, a run to exactly one repository).

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::Millis;

macro_rules! dispatch_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

dispatch_id!(
    /// An organization (tenant), as numbered by the server.
    OrgRef
);
dispatch_id!(
    /// A repository; it belongs to one organization.
    RepoRef
);
dispatch_id!(
    /// A workflow run; it belongs to one repository.
    RunRef
);
dispatch_id!(
    /// One queued job attempt: the unit the queue hands to a runner.
    QueuedJobRef
);

/// A set of runner labels, normalized the way GitHub compares them: case-insensitive
/// (lowercased), without duplicates, sorted. Cloning is cheap (shared), and the hash is computed
/// once, so looking a label set up in a map does not re-read its strings.
#[derive(Debug, Clone)]
pub struct LabelSet(Arc<Labels>);

#[derive(Debug)]
struct Labels {
    hash: u64,
    labels: Box<[Box<str>]>,
}

impl LabelSet {
    /// The normalized set of `labels`.
    pub fn new<I, S>(labels: I) -> LabelSet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut labels: Vec<Box<str>> = labels
            .into_iter()
            .map(|label| label.as_ref().to_lowercase().into_boxed_str())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        let mut hasher = std::hash::DefaultHasher::new();
        labels.hash(&mut hasher);
        LabelSet(Arc::new(Labels {
            hash: hasher.finish(),
            labels: labels.into(),
        }))
    }

    /// Whether every label of `self` is one of `other`'s: a job with labels `self` may run on
    /// a runner with labels `other`. Both are sorted, so this is one merge walk.
    pub fn is_subset_of(&self, other: &LabelSet) -> bool {
        let mut theirs = other.0.labels.iter();
        'ours: for label in self.0.labels.iter() {
            for candidate in theirs.by_ref() {
                match candidate.cmp(label) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => continue 'ours,
                    std::cmp::Ordering::Greater => return false,
                }
            }
            return false;
        }
        true
    }

    /// The labels, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.labels.iter().map(|label| &**label)
    }

    /// The labels as owned strings, sorted (for messages and wait reasons).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    /// How many labels the set holds.
    pub fn len(&self) -> usize {
        self.0.labels.len()
    }

    /// Whether the set is empty (a job without `runs-on` labels fits any runner).
    pub fn is_empty(&self) -> bool {
        self.0.labels.is_empty()
    }
}

impl Default for LabelSet {
    fn default() -> LabelSet {
        LabelSet::new(std::iter::empty::<&str>())
    }
}

impl PartialEq for LabelSet {
    fn eq(&self, other: &LabelSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.labels == other.0.labels)
    }
}

impl Eq for LabelSet {}

impl Hash for LabelSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl PartialOrd for LabelSet {
    fn partial_cmp(&self, other: &LabelSet) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LabelSet {
    fn cmp(&self, other: &LabelSet) -> std::cmp::Ordering {
        self.0.labels.cmp(&other.0.labels)
    }
}

impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0.labels.join(", "))
    }
}

/// Runner group names compare case-insensitively, like labels.
pub(crate) fn normalize_group(group: Option<&str>) -> Option<Box<str>> {
    group.map(|name| name.to_lowercase().into_boxed_str())
}

/// Whether two runner group names are the same, ignoring case, without allocating.
pub(crate) fn same_group(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// One job waiting for a runner, as the server pushes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// The job attempt.
    pub job: QueuedJobRef,
    /// Its organization.
    pub org: OrgRef,
    /// Its repository (of `org`).
    pub repo: RepoRef,
    /// Its run (of `repo`).
    pub run: RunRef,
    /// The evaluated `runs-on` labels: a runner must have all of them.
    pub labels: LabelSet,
    /// `runs-on: { group: … }`: only runners of this group may take the job, and a runner of a
    /// group takes only jobs that name it. Compared case-insensitively.
    pub group: Option<String>,
    /// Higher runs first inside its run; 0 by default. Waiting raises it (aging).
    pub priority: i32,
    /// When the job was queued; aging counts from here and FIFO order follows it.
    pub enqueued_at: Millis,
    /// An infrastructure retry (its runner was lost): it goes to the front of its
    /// organization's queue, ahead of the fair-share order.
    pub front: bool,
}

impl QueuedJob {
    /// A job with default priority, no runner group and not at the front.
    pub fn new(
        job: QueuedJobRef,
        org: OrgRef,
        repo: RepoRef,
        run: RunRef,
        labels: LabelSet,
        enqueued_at: Millis,
    ) -> QueuedJob {
        QueuedJob {
            job,
            org,
            repo,
            run,
            labels,
            group: None,
            priority: 0,
            enqueued_at,
            front: false,
        }
    }
}

/// Which jobs a runner may serve besides its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerScope {
    /// A runner of the hosted pool: serves every organization, within each organization's
    /// hosted concurrency limit. Hosted runners belong to no runner group.
    Hosted,
    /// A self-hosted runner: serves only its organization and is not subject to the hosted
    /// limit.
    SelfHosted(SelfHostedScope),
}

/// The reach of a self-hosted runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfHostedScope {
    /// The organization that registered the runner.
    pub org: OrgRef,
    /// When set, only jobs of these repositories (a runner group restricted to selected
    /// repositories).
    pub repos: Option<BTreeSet<RepoRef>>,
    /// The runner's group: it takes only jobs that name this group, and jobs that name a group
    /// go only to runners of that group.
    pub group: Option<String>,
}

/// A runner asking for work: its labels and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerView {
    /// The runner's labels.
    pub labels: LabelSet,
    /// Whom it serves.
    pub scope: RunnerScope,
}

impl RunnerView {
    /// A hosted runner with `labels`.
    pub fn hosted(labels: LabelSet) -> RunnerView {
        RunnerView {
            labels,
            scope: RunnerScope::Hosted,
        }
    }

    /// A self-hosted runner of `org` with `labels`, serving every repository, no group.
    pub fn self_hosted(labels: LabelSet, org: OrgRef) -> RunnerView {
        RunnerView {
            labels,
            scope: RunnerScope::SelfHosted(SelfHostedScope {
                org,
                repos: None,
                group: None,
            }),
        }
    }

    /// The runner's group, normalized (hosted runners have none).
    pub(crate) fn group(&self) -> Option<&str> {
        match &self.scope {
            RunnerScope::Hosted => None,
            RunnerScope::SelfHosted(scope) => scope.group.as_deref(),
        }
    }

    /// Where a job picked by this runner runs.
    pub fn placement(&self) -> Placement {
        match self.scope {
            RunnerScope::Hosted => Placement::Hosted,
            RunnerScope::SelfHosted(_) => Placement::SelfHosted,
        }
    }

    /// Whether this runner may take `job` at all: labels, group and scope (the hosted limit,
    /// which changes with time, is not part of this).
    pub fn can_take(&self, job: &QueuedJob) -> bool {
        let groups_match = match (self.group(), job.group.as_deref()) {
            (None, None) => true,
            (Some(ours), Some(theirs)) => same_group(ours, theirs),
            _ => false,
        };
        let scope_allows = match &self.scope {
            RunnerScope::Hosted => true,
            RunnerScope::SelfHosted(scope) => {
                scope.org == job.org
                    && scope
                        .repos
                        .as_ref()
                        .is_none_or(|repos| repos.contains(&job.repo))
            }
        };
        groups_match && scope_allows && job.labels.is_subset_of(&self.labels)
    }
}

/// Where a running job runs: only hosted runners count toward an organization's hosted limit
/// and its fair share of the hosted pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// On a runner of the hosted pool.
    Hosted,
    /// On one of the organization's own runners.
    SelfHosted,
}

/// An organization's share of the hosted pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSettings {
    /// Its weight among organizations with demand (1 ..= [`OrgSettings::MAX_WEIGHT`]).
    pub weight: u32,
    /// At most this many jobs on hosted runners at once; `None` is unlimited.
    pub hosted_limit: Option<u32>,
}

impl OrgSettings {
    /// The largest weight: shares are compared in 32.32 fixed point, which is exact for two
    /// weights whose product stays below 2^32.
    pub const MAX_WEIGHT: u32 = 65_535;
}

impl Default for OrgSettings {
    fn default() -> OrgSettings {
        OrgSettings {
            weight: 1,
            hosted_limit: None,
        }
    }
}

/// How the queue orders jobs inside a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// A waiting job gains one priority point per `aging_step` of waiting, so low priority is
    /// never starved; `None` turns aging off (strict priority, then FIFO).
    pub aging_step: Option<Millis>,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            aging_step: Some(Millis::MINUTE),
        }
    }
}

impl QueueConfig {
    /// The job's order key inside its run (higher first). Aging is continuous: a job's
    /// effective priority at `now` is `priority + (now − enqueued_at) / step`, so comparing two
    /// jobs at any instant compares `priority × step − enqueued_at`, which does not depend on
    /// `now`. The order is therefore static and kept in an ordinary sorted set.
    pub(crate) fn score(&self, priority: i32, enqueued_at: Millis) -> i128 {
        let step = match self.aging_step {
            Some(step) => i128::from(step.0.max(1)),
            // Without aging the priority dominates any enqueue time.
            None => 1i128 << 64,
        };
        i128::from(priority) * step - i128::from(enqueued_at.0)
    }
}
