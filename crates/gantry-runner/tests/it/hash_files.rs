//! `hashFiles` against nektos/act's fixtures, with the digests GitHub's algorithm gives, and
//! against small workspaces made here for what those fixtures do not cover.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gantry_expr::{Contexts, ParseOptions, Value, parse};
use gantry_runner::{HashFilesError, WorkspaceHost, hash_files, matching_files};
use serde_json::Value as Json;

/// The corpus folder `name`, or `None` (after saying so) when it is missing outside CI; in CI
/// (`CI=true`) a missing corpus fails the test.
fn corpus_dir(name: &str) -> Option<PathBuf> {
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

#[test]
fn act_fixtures_hash_like_github() {
    let Some(dir) = corpus_dir("nektos-act") else {
        return;
    };
    let corpus: Json =
        serde_json::from_str(&fs::read_to_string(dir.join("hashFiles.cases.json")).unwrap())
            .unwrap();
    // "pkg/exprparser/testdata (fixtures copied alongside)"
    let workdir = corpus["workdir"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let workspace = dir.join(workdir);
    let host = WorkspaceHost::new(&workspace);
    let options = ParseOptions::new(Vec::<String>::new()).with_functions(["hashFiles"]);
    let cases = corpus["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let source = case["expr"].as_str().unwrap();
        let expected = case["expected_github_algorithm"].as_str().unwrap();
        let value = parse(source, &options)
            .unwrap()
            .evaluate(&Contexts::new(), &host);
        if value != Ok(Value::from(expected)) {
            failures.push(format!("{source}: expected {expected:?}, got {value:?}"));
        }
        // The files, in order, must be the ones the digest was computed over.
        let arguments: Vec<String> = source
            .trim_start_matches("hashFiles(")
            .trim_end_matches(')')
            .split(", ")
            .map(|argument| argument.trim_matches('\'').to_owned())
            .collect();
        let canonical = workspace.canonicalize().unwrap();
        let files: Vec<String> = matching_files(&workspace, &arguments)
            .unwrap()
            .iter()
            .map(|file| {
                file.strip_prefix(&canonical)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let expected_files: Vec<String> = case["matched_files_in_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| file.as_str().unwrap().to_owned())
            .collect();
        if files != expected_files {
            failures.push(format!(
                "{source}: expected files {expected_files:?}, got {files:?}"
            ));
        }
    }
    println!(
        "hashFiles cases: {}/{} passed",
        cases.len() - failures.len().min(cases.len()),
        cases.len()
    );
    for failure in &failures {
        println!("  FAILED {failure}");
    }
    assert_eq!(cases.len(), 8);
    assert!(failures.is_empty());
}

/// A scratch workspace under the system temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(files: &[(&str, &str)]) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gantry-runner-hash-files-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        for (path, content) in files {
            let path = dir.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn files(&self, patterns: &[&str]) -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let root = self.0.canonicalize().unwrap();
        matching_files(&self.0, &patterns)
            .unwrap()
            .iter()
            .map(|file| {
                file.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn walks_depth_first_in_byte_order() {
    let scratch = Scratch::new(&[
        ("a.txt", "1"),
        ("a/b.txt", "2"),
        ("B.txt", "3"),
        ("a-c/d.txt", "4"),
    ]);
    // "a" sorts before "a-c" and "a.txt", and its contents come right after it.
    assert_eq!(
        scratch.files(&["**"]),
        ["B.txt", "a/b.txt", "a-c/d.txt", "a.txt"]
    );
    assert_eq!(scratch.files(&["a*"]), ["a/b.txt", "a-c/d.txt", "a.txt"]);
    assert_eq!(
        scratch.files(&["**/*.txt", "!a"]),
        ["B.txt", "a-c/d.txt", "a.txt"]
    );
    // Literal patterns are separate search paths, visited in pattern order.
    assert_eq!(scratch.files(&["a.txt\nB.txt"]), ["a.txt", "B.txt"]);
    assert!(scratch.files(&["nothing/**"]).is_empty());
}

#[test]
fn ignores_files_outside_the_workspace() {
    let outer = Scratch::new(&[("outside.txt", "x"), ("ws/inside.txt", "y")]);
    let workspace = outer.0.join("ws");
    let root = outer.0.canonicalize().unwrap();
    let absolute = format!("{}/**", root.display());
    let files = matching_files(&workspace, &[absolute]).unwrap();
    assert_eq!(files, vec![root.join("ws/inside.txt")]);
    let elsewhere = format!("{}/outside.txt", root.display());
    assert!(matching_files(&workspace, &[elsewhere]).unwrap().is_empty());
    let error = matching_files(&workspace, &["../outside.txt".to_owned()]).unwrap_err();
    assert!(
        matches!(error, HashFilesError::InvalidPattern { .. }),
        "{error}"
    );
}

#[test]
fn hashes_with_githubs_algorithm() {
    // Digests computed independently: sha256 over the concatenated raw sha256 of each file.
    let scratch = Scratch::new(&[("x", "hello\n"), ("y/a", "a"), ("y/b", "b")]);
    let hash = |patterns: &[&str]| {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        hash_files(&scratch.0, &patterns).unwrap()
    };
    assert_eq!(
        hash(&["x"]),
        "ecb65bb98f9d905b70458986c39fcbad7715e5f2fcc3b1f07767d7c83e2438cc"
    );
    assert_eq!(
        hash(&["y/*"]),
        "e5a01fee14e0ed5c48714f22180f25ad8365b53f9779f79dc4a3d7e93963f94a"
    );
    assert_eq!(hash(&["--FOLLOW-symbolic-links", "y"]), hash(&["y/*"]));
    assert_eq!(hash(&["missing"]), "");
    let error = hash_files(&scratch.0, &["--bogus".to_owned(), "x".to_owned()]).unwrap_err();
    assert!(matches!(error, HashFilesError::InvalidOption(_)));
}

#[cfg(unix)]
#[test]
fn hashes_links_to_files_but_not_to_directories() {
    let scratch = Scratch::new(&[("real/file.txt", "data")]);
    std::os::unix::fs::symlink(scratch.0.join("real/file.txt"), scratch.0.join("link.txt"))
        .unwrap();
    std::os::unix::fs::symlink(scratch.0.join("real"), scratch.0.join("linkdir")).unwrap();
    assert_eq!(scratch.files(&["**"]), ["link.txt", "real/file.txt"]);
    let follow = |patterns: &[&str]| -> Vec<String> {
        let mut arguments = vec!["--follow-symbolic-links".to_owned()];
        arguments.extend(patterns.iter().map(|p| (*p).to_owned()));
        let root = scratch.0.canonicalize().unwrap();
        matching_files(&scratch.0, &arguments)
            .unwrap()
            .iter()
            .map(|file| {
                file.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    assert_eq!(
        follow(&["**"]),
        ["link.txt", "linkdir/file.txt", "real/file.txt"]
    );
    std::os::unix::fs::symlink(scratch.0.join("gone"), scratch.0.join("dangling")).unwrap();
    assert!(matching_files(&scratch.0, &["**".to_owned()]).is_err());
    assert_eq!(
        follow(&["**"]),
        ["link.txt", "linkdir/file.txt", "real/file.txt"]
    );
}

#[test]
fn host_reports_failures_as_expression_errors() {
    let scratch = Scratch::new(&[("x", "1")]);
    let host = WorkspaceHost::new(&scratch.0);
    let options = ParseOptions::default().with_functions(["hashFiles"]);
    let error = parse("hashFiles('../x')", &options)
        .unwrap()
        .evaluate(&Contexts::new(), &host)
        .unwrap_err();
    assert!(
        error
            .message
            .starts_with("hashFiles('../x') failed: invalid pattern"),
        "{error}"
    );
    assert_eq!(host.workspace(), Path::new(&scratch.0));
}
