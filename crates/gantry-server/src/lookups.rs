//! What triggering a run through the API reads but that never changes once made: a
//! repository by its name, and a loaded workflow by its file's text. Kept in memory so that a
//! burst of triggers does not read the same repository row and parse the same file again for
//! each run (together about 7 % of `bench ingest`'s samples in a profile).
//!
//! Both are safe to keep: repositories are never renamed, changed or deleted (their git
//! source lives apart, in `repository_sources`), and loading a workflow depends on its text
//! alone. Misses (an unknown repository, a file that does not load) are not kept, so a
//! repository created later, by this server or another on the same database, is found.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gantry_workflow::Workflow;
use sha2::{Digest, Sha256};

use crate::recent::RecentMap;

/// Repositories kept before the map starts over (they are small and few).
const REPOSITORIES: usize = 10_000;
/// About how many workflow files are kept, weighed by their jobs.
const WORKFLOW_JOBS: usize = 20_000;

/// The caches (see the module docs).
pub(crate) struct Lookups {
    repositories: Mutex<HashMap<(String, String), gantry_store::Repository>>,
    workflows: Mutex<RecentMap<[u8; 32], Arc<Workflow>>>,
}

impl Default for Lookups {
    fn default() -> Lookups {
        Lookups {
            repositories: Mutex::new(HashMap::new()),
            workflows: Mutex::new(RecentMap::new(WORKFLOW_JOBS)),
        }
    }
}

impl Lookups {
    /// The repository `org/name`, if it was seen.
    pub(crate) fn repository(&self, org: &str, name: &str) -> Option<gantry_store::Repository> {
        let repositories = self
            .repositories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        repositories
            .get(&(org.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Keeps a repository read from the store under the names it was asked by.
    pub(crate) fn keep_repository(&self, org: &str, name: &str, repo: &gantry_store::Repository) {
        let mut repositories = self
            .repositories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if repositories.len() >= REPOSITORIES {
            repositories.clear();
        }
        repositories.insert((org.to_owned(), name.to_owned()), repo.clone());
    }

    /// The workflow loaded from `source`, loading it with `load` on a miss; a load that
    /// fails is not kept.
    pub(crate) fn workflow<E>(
        &self,
        source: &str,
        load: impl FnOnce(&str) -> Result<Workflow, E>,
    ) -> Result<Arc<Workflow>, E> {
        let key: [u8; 32] = Sha256::digest(source.as_bytes()).into();
        if let Some(found) = self.workflows().get_mut(&key) {
            return Ok(Arc::clone(found));
        }
        let workflow = Arc::new(load(source)?);
        let weight = workflow.jobs.len().max(1);
        self.workflows().insert(key, Arc::clone(&workflow), weight);
        Ok(workflow)
    }

    fn workflows(&self) -> std::sync::MutexGuard<'_, RecentMap<[u8; 32], Arc<Workflow>>> {
        self.workflows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const FILE: &str = "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: make}]\n";

    #[test]
    fn a_file_is_loaded_once_and_a_failed_load_is_not_kept() {
        let lookups = Lookups::default();
        let loads = std::cell::Cell::new(0);
        let load = |text: &str| {
            loads.set(loads.get() + 1);
            gantry_workflow::load(text, &Default::default())
        };
        let first = lookups.workflow(FILE, load).unwrap();
        let second = lookups.workflow(FILE, load).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(loads.get(), 1);
        // Another text is another file.
        lookups.workflow(&format!("{FILE}# more\n"), load).unwrap();
        assert_eq!(loads.get(), 2);
        let bad = "on: push\njobs: 3\n";
        assert!(lookups.workflow(bad, load).is_err());
        assert!(lookups.workflow(bad, load).is_err());
        assert_eq!(loads.get(), 4);
    }

    #[test]
    fn repositories_are_kept_by_name() {
        let lookups = Lookups::default();
        assert!(lookups.repository("acme", "web").is_none());
        let repo = gantry_store::Repository {
            id: gantry_store::RepoId(3),
            org_id: gantry_store::OrgId(1),
            name: "web".to_owned(),
            default_branch: "main".to_owned(),
        };
        lookups.keep_repository("acme", "web", &repo);
        assert_eq!(lookups.repository("acme", "web"), Some(repo));
        assert!(lookups.repository("acme", "api").is_none());
    }
}
