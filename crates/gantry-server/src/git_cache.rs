//! What triggers keep between events so an event does not redo what the last one did: the
//! open repositories, and workflow files loaded and checked, by blob id.
//!
//! gix is built without its `parallel` feature, so an open repository cannot move between
//! threads; each of tokio's blocking threads (reused between events) keeps its own open
//! repository per path instead. Replacing a source bumps a generation that makes every
//! thread reopen.
//!
//! A workflow file is cached under its path and blob id, so a file that did not change
//! between two commits is neither parsed nor checked again. Its check also read the files it
//! calls, so an entry records what those reads found ([`Dependencies`]): for files of its own
//! repository (`uses: ./.github/workflows/x.yml`, nested ones included) the tree they came
//! from (`.github/workflows`, or the whole commit when a call points elsewhere), for files of
//! other repositories (`OWNER/REPO/PATH@REF`) each file's blob at the ref's commit, or why it
//! could not be read. An entry is only used while all of that is still what the event finds,
//! so a moved branch or a changed file of a called repository is never served stale. The
//! cache holds at most [`WORKFLOW_CAPACITY`] files and forgets the least recently used first.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use gix::ObjectId;

use crate::git::{GitError, GitRepo};

/// The most loaded workflow files kept (a few KB each: the model and the file's text).
pub const WORKFLOW_CAPACITY: usize = 4096;
/// The most repositories a thread keeps open; beyond it the thread closes all of them.
const REPOSITORY_CAPACITY: usize = 256;

/// Bumped when a source is replaced: repositories opened before are opened again.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's open repositories by path, with the generation they were opened in.
    static OPEN: RefCell<HashMap<PathBuf, (u64, GitRepo)>> = RefCell::new(HashMap::new());
}

/// The loaded workflow files, shared by every event.
pub struct GitCache<V> {
    workflows: Mutex<Lru<(String, ObjectId), Cached<V>>>,
}

/// A loaded workflow file and what its check read besides the file itself.
#[derive(Clone)]
pub struct Cached<V> {
    /// What loading and checking the file gave.
    pub value: V,
    /// What the check read.
    pub depends_on: Dependencies,
}

/// What the check of a workflow file read besides the file: called files of its own
/// repository (by the tree they were read from) and of other repositories (one by one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// Which tree of the caller's commit its local called files were read from.
    pub local: LocalFiles,
    /// That tree's id when the check ran (`None` for [`LocalFiles::None`], or when the commit
    /// had no `.github/workflows`).
    pub tree: Option<ObjectId>,
    /// Each file of another repository the check looked up, by key
    /// (`OWNER/REPO/PATH@REF`): its blob then, or why it could not be read. A ref that moves,
    /// a file that changes and a repository that appears all change what a lookup finds now.
    pub remote: Vec<(String, Result<ObjectId, String>)>,
}

/// Where in its own commit a check read called files from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LocalFiles {
    /// Nowhere: it read none.
    #[default]
    None,
    /// Only under `.github/workflows`.
    WorkflowsDir,
    /// Somewhere else too: the whole commit.
    WholeCommit,
}

impl<V: Clone> Default for GitCache<V> {
    fn default() -> Self {
        GitCache {
            workflows: Mutex::new(Lru::new(WORKFLOW_CAPACITY)),
        }
    }
}

impl<V: Clone> GitCache<V> {
    /// The repository at `path`, opened once per thread.
    pub fn repository(&self, path: &Path) -> Result<GitRepo, GitError> {
        let generation = GENERATION.load(Ordering::Acquire);
        OPEN.with_borrow_mut(|open| {
            if let Some((opened_in, repo)) = open.get(path)
                && *opened_in == generation
            {
                return Ok(repo.clone());
            }
            let repo = GitRepo::open(path)?;
            if open.len() >= REPOSITORY_CAPACITY {
                open.clear();
            }
            open.insert(path.to_owned(), (generation, repo.clone()));
            Ok(repo)
        })
    }

    /// Makes every thread open its repositories again (a source was replaced on disk).
    pub fn forget_repositories(&self) {
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached load of the file `path` with blob `blob`, if `unchanged` says that what its
    /// check read is still what it was.
    pub fn workflow(
        &self,
        path: &str,
        blob: ObjectId,
        unchanged: impl FnOnce(&Dependencies) -> bool,
    ) -> Option<V> {
        let cached = lock(&self.workflows).get(&(path.to_owned(), blob))?;
        unchanged(&cached.depends_on).then_some(cached.value)
    }

    /// Keeps the load of the file `path` with blob `blob`.
    pub fn remember_workflow(&self, path: &str, blob: ObjectId, cached: Cached<V>) {
        lock(&self.workflows).insert((path.to_owned(), blob), cached);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only map inserts, removals and clones happen under these locks: none can leave a torn
    // map behind.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A map of bounded size that forgets its least recently used entry first.
struct Lru<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, (V, u64)>,
    /// Each entry's last use, oldest first.
    order: BTreeMap<u64, K>,
}

impl<K: Clone + Eq + Hash, V: Clone> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        let (value, used) = self.entries.get_mut(key)?;
        self.order.remove(used);
        *used = tick;
        self.order.insert(tick, key.clone());
        Some(value.clone())
    }

    fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if let Some((_, used)) = self.entries.remove(&key) {
            self.order.remove(&used);
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (value, self.tick));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get(&"a"), Some(1));
        lru.insert("c", 3);
        assert_eq!(lru.get(&"b"), None);
        assert_eq!(lru.get(&"a"), Some(1));
        assert_eq!(lru.get(&"c"), Some(3));
        lru.insert("c", 4);
        assert_eq!((lru.len(), lru.get(&"c")), (2, Some(4)));
    }

    #[test]
    fn a_cached_workflow_is_used_only_while_its_dependency_is_unchanged() {
        let cache: GitCache<&str> = GitCache::default();
        let blob = ObjectId::empty_blob(gix::hash::Kind::Sha1);
        let tree = ObjectId::empty_tree(gix::hash::Kind::Sha1);
        let depends_on = Dependencies {
            local: LocalFiles::WorkflowsDir,
            tree: Some(tree),
            remote: Vec::new(),
        };
        cache.remember_workflow(
            "ci.yml",
            blob,
            Cached {
                value: "loaded",
                depends_on: depends_on.clone(),
            },
        );
        let same = |now: &Dependencies| *now == depends_on;
        assert_eq!(cache.workflow("ci.yml", blob, same), Some("loaded"));
        assert_eq!(cache.workflow("ci.yml", blob, |_| false), None);
        assert_eq!(cache.workflow("other.yml", blob, same), None);
    }
}
