//! Calls of reusable workflows kept in another repository (`OWNER/REPO/PATH@REF`): the parts
//! of such a reference, the key a called file's own calls are known by, who may call whom,
//! and reading the called file from the called repository's git source.
//!
//! Every called file of a run is known by a key: the `uses:` text as the run's own workflow
//! writes it, and for the calls written inside a called file, [`call_key`]. A call
//! `./.github/workflows/x.yml` written in a file of another repository means that repository
//! at the same ref (GitHub reads a `./` call from the commit of the file that makes it), so it
//! is keyed `OWNER/REPO/.github/workflows/x.yml@REF` and can never be taken for the calling
//! repository's own `./.github/workflows/x.yml`.
//!
//! Tenancy: GitHub lets a workflow call the reusable workflows of a public repository, or of
//! a private or internal one whose access settings allow it. Gantry has neither visibility
//! nor access settings, so the organization is the boundary: a run calls reusable workflows of
//! its own organization's repositories only, and that holds for calls nested in called files
//! too (they run in the caller's organization, with its secrets).
//!
//! [`RemoteReader`] is blocking (it reads git, and may fetch a mirror) and is used inside
//! `spawn_blocking`, like every git read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use gantry_store::StoreError;
use gix::ObjectId;

use crate::app::App;
use crate::git::{GitError, GitRepo};
use crate::git_cache::GitCache;
use crate::mirror;

/// A reference to a workflow file of another repository, `OWNER/REPO/PATH@REF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteRef<'a> {
    /// The organization.
    pub(crate) owner: &'a str,
    /// The repository's name within it.
    pub(crate) repo: &'a str,
    /// The file's path in the repository, e.g. `.github/workflows/build.yml`.
    pub(crate) path: &'a str,
    /// A branch, a tag or a full commit id.
    pub(crate) git_ref: &'a str,
}

impl<'a> RemoteRef<'a> {
    /// Reads `OWNER/REPO/PATH@REF`; anything else is an error that says what was expected.
    pub(crate) fn parse(uses: &'a str) -> Result<RemoteRef<'a>, String> {
        let invalid = || {
            format!(
                "`{uses}` is not a reusable workflow gantry can read: expected \
                 ./.github/workflows/FILE.yml or OWNER/REPO/.github/workflows/FILE.yml@REF"
            )
        };
        if uses.starts_with("./") || uses.contains("${{") {
            return Err(invalid());
        }
        let (location, git_ref) = uses.split_once('@').ok_or_else(invalid)?;
        let mut parts = location.splitn(3, '/');
        let (Some(owner), Some(repo), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let plain = |part: &str| !part.is_empty() && part != "." && part != "..";
        let clean_ref = !git_ref.is_empty() && !git_ref.chars().any(char::is_whitespace);
        if !plain(owner) || !plain(repo) || !path.split('/').all(plain) || !clean_ref {
            return Err(invalid());
        }
        Ok(RemoteRef {
            owner,
            repo,
            path,
            git_ref,
        })
    }

    /// `OWNER/REPO`.
    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

/// The key of the call `uses` written in the called file keyed `from` (`None`: in the run's
/// own workflow): a `./` call inside a file of another repository names that repository at
/// the same ref; every other call is keyed by its text.
pub(crate) fn call_key(from: Option<&str>, uses: &str) -> String {
    let remote = from.and_then(|from| RemoteRef::parse(from).ok());
    match (remote, uses.strip_prefix("./")) {
        (Some(remote), Some(path)) => {
            format!("{}/{}/{path}@{}", remote.owner, remote.repo, remote.git_ref)
        }
        _ => uses.to_owned(),
    }
}

/// What the store knows of a called repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KnownRepository {
    /// It has a git source: the path the server opens, and the origin when it is a mirror.
    Source {
        /// The repository (or mirror) on disk.
        git_path: PathBuf,
        /// The origin of a mirror.
        git_url: Option<String>,
    },
    /// It exists but has no git source.
    NoSource,
    /// No repository has that name.
    Unknown,
}

/// Looks a repository up by organization and name (the store, from a blocking thread); an
/// `Err` is a failure of the store, not an unknown repository.
pub(crate) type RepositoryLookup = dyn Fn(&str, &str) -> Result<KnownRepository, String> + Send;

/// A called file of another repository as read from git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteFile {
    /// Its blob: what a cached check of a caller compares.
    pub(crate) blob: ObjectId,
    /// Its text; `Err` when it is not UTF-8 or too large.
    pub(crate) source: Result<String, String>,
}

/// Reads called files of other repositories for one event (or one API request) of a
/// repository of organization `org`, looking each repository and ref up once.
pub(crate) struct RemoteReader<'a, V> {
    org: String,
    cache: &'a GitCache<V>,
    lookup: &'a RepositoryLookup,
    /// Each called repository: opened, or why it cannot be read.
    repositories: RefCell<HashMap<String, Result<Opened, String>>>,
    /// Each (repository, ref): its commit, or why there is none.
    commits: RefCell<HashMap<(String, String), Result<String, String>>>,
}

#[derive(Clone)]
struct Opened {
    repo: GitRepo,
    path: PathBuf,
    url: Option<String>,
}

impl<'a, V: Clone> RemoteReader<'a, V> {
    /// A reader for runs of organization `org`.
    pub(crate) fn new(org: &str, cache: &'a GitCache<V>, lookup: &'a RepositoryLookup) -> Self {
        RemoteReader {
            org: org.to_owned(),
            cache,
            lookup,
            repositories: RefCell::default(),
            commits: RefCell::default(),
        }
    }

    /// The file `key` names, or why it cannot be read (a message for the caller's load
    /// error). `Err` only for a failure of git or the store.
    pub(crate) fn read(&self, key: &str) -> Result<Result<RemoteFile, String>, GitError> {
        let (repo, blob) = match self.locate(key)? {
            Ok(found) => found,
            Err(refused) => return Ok(Err(refused)),
        };
        let path = RemoteRef::parse(key).map_or(key, |remote| remote.path);
        let source = repo.workflow_text(blob, path)?;
        Ok(Ok(RemoteFile { blob, source }))
    }

    /// The blob of the file `key` names, or why it cannot be read: what [`RemoteReader::read`]
    /// would find, without reading the file.
    pub(crate) fn blob(&self, key: &str) -> Result<Result<ObjectId, String>, GitError> {
        Ok(self.locate(key)?.map(|(_, blob)| blob))
    }

    fn locate(&self, key: &str) -> Result<Result<(GitRepo, ObjectId), String>, GitError> {
        let remote = match RemoteRef::parse(key) {
            Ok(remote) => remote,
            Err(message) => return Ok(Err(message)),
        };
        if remote.owner != self.org {
            return Ok(Err(format!(
                "the called workflow `{key}` is in organization `{}`: a workflow may only call \
                 reusable workflows of its own organization (`{}`)",
                remote.owner, self.org
            )));
        }
        let opened = match self.repository(&remote)? {
            Ok(opened) => opened,
            Err(message) => return Ok(Err(format!("the called workflow `{key}`: {message}"))),
        };
        let commit = match self.commit(&remote, &opened)? {
            Ok(commit) => commit,
            Err(message) => return Ok(Err(format!("the called workflow `{key}`: {message}"))),
        };
        match opened.repo.file_blob(&commit, remote.path)? {
            Some(blob) => Ok(Ok((opened.repo, blob))),
            None => Ok(Err(format!(
                "the called workflow `{key}` does not exist: `{}` has no file `{}` at `{}` \
                 (commit {commit})",
                remote.full_name(),
                remote.path,
                remote.git_ref
            ))),
        }
    }

    /// The called repository, opened once.
    fn repository(&self, remote: &RemoteRef<'_>) -> Result<Result<Opened, String>, GitError> {
        let name = remote.full_name();
        if let Some(known) = self.repositories.borrow().get(&name) {
            return Ok(known.clone());
        }
        let known = (self.lookup)(remote.owner, remote.repo).map_err(|message| GitError::Read {
            what: format!("repository `{name}`"),
            message,
        })?;
        let opened = match known {
            KnownRepository::Unknown => Err(format!("repository `{name}` is not known to gantry")),
            KnownRepository::NoSource => Err(format!(
                "repository `{name}` has no git source to read it from (`gantry repo add --path` or `--url`)"
            )),
            // A source that cannot be opened (moved, deleted) is the caller's load error, as
            // an unknown repository is, rather than a failure of every event of the caller.
            KnownRepository::Source { git_path, git_url } => {
                match mirror::ensure(git_url.as_deref(), &git_path)
                    .map_err(|error| GitError::Open {
                        path: git_path.clone(),
                        message: error.to_string(),
                    })
                    .and_then(|()| self.cache.repository(&git_path))
                {
                    Ok(repo) => Ok(Opened {
                        repo,
                        path: git_path,
                        url: git_url,
                    }),
                    Err(error @ GitError::Open { .. }) => Err(format!(
                        "the git source of repository `{name}` cannot be read: {error}"
                    )),
                    Err(error) => return Err(error),
                }
            }
        };
        self.repositories.borrow_mut().insert(name, opened.clone());
        Ok(opened)
    }

    /// The commit `remote`'s ref names, looked up once; a mirror is fetched first when it
    /// lacks the ref (the origin may have it already).
    fn commit(
        &self,
        remote: &RemoteRef<'_>,
        opened: &Opened,
    ) -> Result<Result<String, String>, GitError> {
        let key = (remote.full_name(), remote.git_ref.to_owned());
        if let Some(known) = self.commits.borrow().get(&key) {
            return Ok(known.clone());
        }
        let mut commit = find_commit(&opened.repo, remote.git_ref)?;
        if commit.is_none()
            && let Some(url) = &opened.url
        {
            if let Err(error) = mirror::fetch(url, &opened.path) {
                tracing::warn!(repo = %key.0, error = %error, "mirror fetch for a called workflow failed");
                let refused = Err(format!("cannot fetch `{}` from its origin: {error}", key.0));
                self.commits.borrow_mut().insert(key, refused.clone());
                return Ok(refused);
            }
            commit = find_commit(&opened.repo, remote.git_ref)?;
        }
        let found = commit.ok_or_else(|| {
            format!(
                "`{}` is not a branch, tag or commit of `{}`",
                remote.git_ref, key.0
            )
        });
        self.commits.borrow_mut().insert(key, found.clone());
        Ok(found)
    }
}

impl App {
    /// Looks called repositories up in the store from a blocking thread (where a
    /// [`RemoteReader`] runs), by blocking that thread on the store's future.
    pub(crate) fn repository_lookup(&self) -> Box<RepositoryLookup> {
        let store = Arc::clone(&self.store);
        let runtime = tokio::runtime::Handle::current();
        Box::new(move |owner: &str, name: &str| {
            runtime.block_on(async {
                let repo = match store.get_repository_by_name(owner, name).await {
                    Ok(repo) => repo,
                    Err(StoreError::NotFound { .. }) => return Ok(KnownRepository::Unknown),
                    Err(error) => return Err(error.to_string()),
                };
                match store.get_repository_source(repo.id).await {
                    Ok(source) => Ok(KnownRepository::Source {
                        git_path: PathBuf::from(source.git_path),
                        git_url: source.git_url,
                    }),
                    Err(StoreError::NotFound { .. }) => Ok(KnownRepository::NoSource),
                    Err(error) => Err(error.to_string()),
                }
            })
        })
    }
}

/// The commit a branch, tag or full commit id names in `repo`, if it has it.
fn find_commit(repo: &GitRepo, git_ref: &str) -> Result<Option<String>, GitError> {
    let Some(sha) = repo.resolve(git_ref)? else {
        return Ok(None);
    };
    match repo.peel_to_commit(&sha) {
        Ok(commit) => Ok(Some(commit)),
        Err(GitError::Missing { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_other_repositories_are_read_strictly() {
        let remote = RemoteRef::parse("acme/lib/.github/workflows/build.yml@v1.2").unwrap();
        assert_eq!(
            remote,
            RemoteRef {
                owner: "acme",
                repo: "lib",
                path: ".github/workflows/build.yml",
                git_ref: "v1.2",
            }
        );
        assert_eq!(remote.full_name(), "acme/lib");
        for bad in [
            "./.github/workflows/build.yml",
            "acme/lib/.github/workflows/build.yml",
            "acme/build.yml@v1",
            "acme//build.yml@v1",
            "acme/lib/../secret.yml@v1",
            "acme/lib/.github/workflows/build.yml@",
            "acme/lib/x.yml@${{ inputs.ref }}",
        ] {
            let error = RemoteRef::parse(bad).unwrap_err();
            assert!(error.contains("OWNER/REPO"), "{bad}: {error}");
        }
    }

    #[test]
    fn local_calls_inside_a_remote_file_name_its_repository_at_the_same_ref() {
        let remote = "acme/lib/.github/workflows/build.yml@main";
        assert_eq!(
            call_key(Some(remote), "./.github/workflows/test.yml"),
            "acme/lib/.github/workflows/test.yml@main"
        );
        // The run's own file and local called files keep their `./` calls as written.
        assert_eq!(
            call_key(None, "./.github/workflows/test.yml"),
            "./.github/workflows/test.yml"
        );
        assert_eq!(
            call_key(
                Some("./.github/workflows/a.yml"),
                "./.github/workflows/test.yml"
            ),
            "./.github/workflows/test.yml"
        );
        // A call of yet another repository is keyed by its text wherever it is written.
        assert_eq!(
            call_key(Some(remote), "acme/other/.github/workflows/x.yml@v2"),
            "acme/other/.github/workflows/x.yml@v2"
        );
    }
}
