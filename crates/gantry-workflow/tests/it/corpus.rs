//! Finding the shared test corpora (`../shared/corpora` beside the project).
//!
//! Outside CI a missing corpus skips its test with a loud message; under `CI=true` it fails.

use std::path::{Path, PathBuf};

/// The corpus folder `relative` (e.g. `workflows-popular`), or `None` when it is missing
/// outside CI.
pub fn corpus_dir(relative: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(relative);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "corpus {} is missing, and CI=true requires it",
            dir.display()
        );
    }
    eprintln!("!!!! SKIPPED: corpus {} is missing !!!!", dir.display());
    None
}

/// Every file under `dir` (recursively) whose name ends with one of `extensions`, sorted.
pub fn files_with_extensions(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if extensions
                .iter()
                .any(|ext| path.to_string_lossy().ends_with(ext))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
