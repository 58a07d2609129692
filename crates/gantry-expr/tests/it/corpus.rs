//! Locating the shared corpora, which live outside the repository.
//!
//! On a laptop a missing corpus skips the test with a loud message; in CI (`CI=true`) it fails,
//! so a misplaced corpus can never turn the conformance tests into silent passes.

use std::path::PathBuf;

/// The corpus folder `name` under `shared/corpora`, or `None` (after saying so) when it is
/// missing outside CI.
pub fn corpus_dir(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!(
            "corpus folder {} is missing, and CI=true requires it",
            dir.display()
        );
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: corpus folder {} is missing; this conformance test did not run !!!!!!!!\n",
        dir.display()
    );
    None
}
