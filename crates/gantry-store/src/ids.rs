//! Identifiers of stored rows: organizations, repositories, runs, jobs and runners.
//!
//! Each is a newtype over the database's `BIGINT` key so that a run id can never be passed
//! where a job id is expected; each serializes as its bare number.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// An organization (a tenant).
    OrgId
);
id_type!(
    /// A repository of an organization.
    RepoId
);
id_type!(
    /// A workflow run; ids grow with creation, so newer runs have larger ids.
    RunId
);
id_type!(
    /// One job instance of a run (one matrix combination).
    JobId
);
id_type!(
    /// A runner, as the runner registry names it; the store keeps it without a foreign key.
    RunnerId
);
