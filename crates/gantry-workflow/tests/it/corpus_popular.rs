//! Every real workflow in `workflows-popular/` and every file of actionlint's `testdata/ok/`
//! must load with no error.

use gantry_workflow::Limits;

use crate::corpus::{corpus_dir, files_with_extensions};

fn load_all(relative: &str, skip: impl Fn(&str) -> bool) -> (usize, Vec<String>) {
    let Some(dir) = corpus_dir(relative) else {
        return (0, Vec::new());
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for path in files_with_extensions(&dir, &[".yml", ".yaml"]) {
        let display = path.display().to_string();
        if skip(&display) {
            continue;
        }
        count += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        if let Err(diagnostics) = gantry_workflow::load(&source, &Limits::default()) {
            failures.push(format!("{display}:\n{diagnostics}"));
        }
    }
    (count, failures)
}

#[test]
fn popular_workflows_all_load() {
    // Composite actions (`action.yml`) live in the same tree but are not workflows.
    let (count, failures) = load_all("workflows-popular", |path| {
        path.ends_with("/action.yml") || path.ends_with("/action.yaml")
    });
    println!(
        "workflows-popular: {}/{count} workflows load",
        count - failures.len()
    );
    if count > 0 {
        assert_eq!(count, 402, "the corpus should hold 402 workflows");
    }
    assert!(
        failures.is_empty(),
        "failed to load:\n{}",
        failures.join("\n")
    );
}

#[test]
fn actionlint_ok_files_all_load() {
    let (count, failures) = load_all("actionlint/testdata/ok", |_| false);
    println!(
        "actionlint ok/: {}/{count} files load",
        count - failures.len()
    );
    assert!(
        failures.is_empty(),
        "failed to load:\n{}",
        failures.join("\n")
    );
}
