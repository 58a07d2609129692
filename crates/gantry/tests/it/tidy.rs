//! Repository hygiene checked on every test run: module docs, no ignored tests, crate
//! descriptions, and the purity invariant of the language and engine crates.

use std::path::{Path, PathBuf};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn workspace_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&repository_root().join("crates"), &mut files);
    assert!(files.len() > 10, "found too few Rust files: {files:?}");
    files
}

#[test]
fn every_module_has_docs() {
    let missing: Vec<_> = workspace_rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "modules without `//!` docs: {missing:#?}"
    );
}

#[test]
fn no_ignored_tests() {
    // Spelled in two halves so this file does not match itself.
    let needle = format!("#[{}]", "ignore");
    let offenders: Vec<_> = workspace_rust_files()
        .into_iter()
        .filter(|path| std::fs::read_to_string(path).unwrap().contains(&needle))
        .collect();
    assert!(offenders.is_empty(), "ignored tests in: {offenders:#?}");
}

#[test]
fn every_crate_says_what_it_is_for() {
    let crates = std::fs::read_dir(repository_root().join("crates")).unwrap();
    for entry in crates.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains("\ndescription = "),
            "{} has no one-line description",
            manifest.display()
        );
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} does not use the workspace lints",
            manifest.display()
        );
    }
}

/// `gantry-expr`, `gantry-workflow` and `gantry-engine` are pure: no files, sockets, processes,
/// environment or clocks in their library code. Time and contents come in as arguments.
#[test]
fn pure_crates_do_no_io() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "SystemTime::now",
        "Instant::now",
        "Utc::now",
        "tokio",
    ];
    for krate in ["gantry-expr", "gantry-workflow", "gantry-engine"] {
        let mut files = Vec::new();
        rust_files(
            &repository_root().join("crates").join(krate).join("src"),
            &mut files,
        );
        // `tests.rs` files are test-only modules (declared under `#[cfg(test)]`).
        for path in files.into_iter().filter(|p| !p.ends_with("tests.rs")) {
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may read corpora; only library code must stay pure.
            let library_code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for word in forbidden {
                assert!(
                    !library_code.contains(word),
                    "{} uses `{word}`, but {krate} must do no IO",
                    path.display()
                );
            }
        }
    }
}

/// Layering rules between crates, read from their manifests: the store does not know the
/// engine (it keeps the engine's state as an opaque document), the wire types know no
/// implementation, and the runner speaks only the wire protocol, never the store or the server.
#[test]
fn crates_depend_only_on_what_their_layer_allows() {
    let forbidden = [
        ("gantry-store", "gantry-engine"),
        ("gantry-runner", "gantry-store"),
        ("gantry-runner", "gantry-server"),
        ("gantry-expr", "gantry-workflow"),
        ("gantry-workflow", "gantry-engine"),
        ("gantry-proto", "gantry-store"),
        ("gantry-proto", "gantry-server"),
        ("gantry-proto", "gantry-engine"),
    ];
    for (krate, dependency) in forbidden {
        let manifest = repository_root()
            .join("crates")
            .join(krate)
            .join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let depends = text.lines().any(|line| {
            line.trim_start().starts_with(&format!("{dependency}."))
                || line.trim_start().starts_with(&format!("{dependency} "))
        });
        assert!(!depends, "{krate} must not depend on {dependency}");
    }
}
