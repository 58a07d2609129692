//! Repositories by git URL: a bare mirror in the server's data directory, cloned with gitoxide
//! when the repository is registered (and again by a node that lacks it when an event comes)
//! and fetched again when an event names a commit the mirror does not have yet (a webhook
//! usually arrives before anyone would have fetched).
//!
//! The mirror fetches every branch and tag onto the same names (`+refs/heads/*:refs/heads/*`,
//! `+refs/tags/*:refs/tags/*`), so reading it is reading the origin as of the last fetch.
//! The URL is kept in the store, not in the mirror's config, so the store stays the one record
//! of where a repository comes from. All of it is blocking (callers use `spawn_blocking`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::remote::Direction;

/// What the mirror fetches: branches and tags onto the same names, forced (the origin's
/// history may be rewritten; the mirror follows it).
const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Why a mirror could not be made or updated.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The URL does not parse as a git URL.
    #[error("`{url}` is not a git URL: {message}")]
    BadUrl {
        /// The URL.
        url: String,
        /// gix's reason.
        message: String,
    },
    /// The mirror directory could not be made.
    #[error("cannot create the mirror `{path}`: {message}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The origin could not be reached or read (unreachable, not a repository, refused).
    #[error("cannot fetch from `{url}`: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// gix's reason.
        message: String,
    },
}

/// Checks that `url` parses as a git URL (`https://`, `ssh://`, `git@host:path`, `file://`,
/// a path), before anything is created for it.
pub fn check_url(url: &str) -> Result<(), MirrorError> {
    gix::url::parse(gix::bstr::BStr::new(url))
        .map(drop)
        .map_err(|error| MirrorError::BadUrl {
            url: url.to_owned(),
            message: error.to_string(),
        })
}

/// Makes sure a repository registered by `url` has its mirror at `path` on this node: a
/// replica of a PostgreSQL server that did not register it (or lost its disk) clones it from
/// the stored URL. Nothing to do for a repository by path (`url` is `None`).
pub fn ensure(url: Option<&str>, path: &Path) -> Result<(), MirrorError> {
    match url {
        Some(url) if !path.exists() => clone_mirror(url, path),
        _ => Ok(()),
    }
}

/// Makes `path` a bare mirror of `url` (replacing whatever a failed earlier attempt left
/// there) and fetches it once. On failure nothing is left at `path`.
pub fn clone_mirror(url: &str, path: &Path) -> Result<(), MirrorError> {
    check_url(url)?;
    let create = |message: String| MirrorError::Create {
        path: path.to_owned(),
        message,
    };
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|error| create(error.to_string()))?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| create(error.to_string()))?;
    }
    gix::init_bare(path).map_err(|error| create(error.to_string()))?;
    let fetched = fetch(url, path);
    if fetched.is_err() {
        // A mirror that never fetched is no mirror: leave no half-made directory behind.
        let _ = std::fs::remove_dir_all(path);
    }
    fetched
}

/// Fetches the origin's branches and tags into the mirror at `path`.
pub fn fetch(url: &str, path: &Path) -> Result<(), MirrorError> {
    let failed = |message: String| MirrorError::Fetch {
        url: url.to_owned(),
        message,
    };
    let repo = gix::open(path).map_err(|error| failed(error.to_string()))?;
    let remote = repo
        .remote_at(url)
        .and_then(|remote| remote.with_refspecs(MIRROR_REFSPECS, Direction::Fetch))
        .map_err(|error| failed(error.to_string()))?;
    let connection = remote
        .connect(Direction::Fetch)
        .map_err(|error| failed(error.to_string()))?;
    let interrupt = AtomicBool::new(false);
    connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|error| failed(error.to_string()))?
        .receive(gix::progress::Discard, &interrupt)
        .map_err(|error| failed(error.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_anything_is_made() {
        assert!(check_url("https://git.example/acme/app.git").is_ok());
        assert!(check_url("file:///srv/git/app.git").is_ok());
        let error = check_url("https://").unwrap_err().to_string();
        assert!(error.starts_with("`https://` is not a git URL"), "{error}");
    }

    #[test]
    fn a_failed_clone_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("not-a-repository");
        std::fs::create_dir(&origin).unwrap();
        let mirror = dir.path().join("mirrors/app.git");
        let url = format!("file://{}", origin.display());
        let error = clone_mirror(&url, &mirror).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("cannot fetch from `{url}`")),
            "{error}"
        );
        assert!(!mirror.exists());
    }
}
