//! actionlint's invalid workflows (`testdata/err/*.yaml` with expected `.out` diagnostics):
//! the files whose errors are in an orchestrator's domain (syntax, keys, types, ids, needs,
//! matrix, events, cron, globs, expression syntax and context availability) must be rejected,
//! with a diagnostic on each expected line.
//!
//! Out of domain, and not checked: actionlint's static type inference of expressions
//! (`property "x" is not defined`), shellcheck/pyflakes, action metadata, runner labels,
//! untrusted-input advice, deprecated commands, and lints about files GitHub runs as written
//! (unused anchors, excludes that match nothing, crons under five minutes, required inputs
//! with defaults).

use std::collections::BTreeSet;

use gantry_workflow::Limits;

use crate::corpus::{corpus_dir, files_with_extensions};

/// Whether an expected actionlint diagnostic is something gantry must also report.
fn in_domain(message: &str, rule: &str) -> bool {
    // actionlint's advice about files GitHub runs as written: style, not errors.
    const LINTS: &[&str] = &[
        "runs too frequently",
        "is defined but not used",
        "does not match in matrix",
        "its default value will never be used",
    ];
    if LINTS.iter().any(|lint| message.contains(lint)) {
        return false;
    }
    match rule {
        "syntax-check" | "events" | "glob" | "matrix" | "id" | "job-needs" | "permissions" => true,
        "expression" => {
            message.starts_with("context \"")
                || message.contains("while lexing")
                || message.contains("while parsing")
                || message.starts_with("undefined variable")
                || message.contains("unexpected end of input")
        }
        _ => false,
    }
}

/// Expected lines with an in-domain diagnostic, from a `.out` file.
fn expected_lines(out: &str) -> BTreeSet<u32> {
    out.lines()
        .filter_map(|line| {
            // `<file>:<line>:<col>: <message> [<rule>]`
            let mut parts = line.splitn(4, ':');
            let _file = parts.next()?;
            let line_number: u32 = parts.next()?.trim().parse().ok()?;
            let _col = parts.next()?;
            let rest = parts.next()?.trim();
            let rule_start = rest.rfind(" [")?;
            let rule = rest[rule_start + 2..].trim_end_matches(']');
            in_domain(&rest[..rule_start], rule).then_some(line_number)
        })
        .collect()
}

#[test]
fn actionlint_invalid_workflows_are_rejected_on_the_right_lines() {
    let Some(dir) = corpus_dir("actionlint/testdata/err") else {
        return;
    };
    let mut relevant = 0;
    let mut rejected = 0;
    let mut all_lines_found = 0;
    let mut some_line_found = 0;
    let mut misses = Vec::new();
    for path in files_with_extensions(&dir, &[".yaml", ".yml"]) {
        let out_path = path.with_extension("out");
        let Ok(out) = std::fs::read_to_string(&out_path) else {
            continue;
        };
        let expected = expected_lines(&out);
        if expected.is_empty() {
            continue;
        }
        relevant += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        match gantry_workflow::load(&source, &Limits::default()) {
            Ok(_) => misses.push(format!(
                "{name}: accepted; expected errors on lines {expected:?}"
            )),
            Err(diagnostics) => {
                rejected += 1;
                let ours: BTreeSet<u32> = diagnostics.0.iter().map(|d| d.pos.line).collect();
                let missing: Vec<u32> = expected.difference(&ours).copied().collect();
                if missing.len() < expected.len() {
                    some_line_found += 1;
                }
                if missing.is_empty() {
                    all_lines_found += 1;
                } else {
                    misses.push(format!(
                        "{name}: no diagnostic on lines {missing:?}; ours:\n{diagnostics}"
                    ));
                }
            }
        }
    }
    println!(
        "actionlint err/: {rejected}/{relevant} in-domain files rejected, {some_line_found}/{relevant} with a diagnostic on an expected line, {all_lines_found}/{relevant} on every expected line"
    );
    for miss in &misses {
        println!("  {miss}");
    }
    if relevant > 0 {
        assert_eq!(
            rejected, relevant,
            "every in-domain invalid file must be rejected"
        );
        // A floor that only rises: fewer files with every expected line is a regression.
        assert!(
            all_lines_found >= 31,
            "only {all_lines_found}/{relevant} files have a diagnostic on every expected line"
        );
    }
}
