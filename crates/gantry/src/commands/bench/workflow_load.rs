//! `gantry bench workflow-load`: parse + validate + plan throughput over a folder of workflows,
//! against plain YAML parsing of the same files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use gantry_workflow::Limits;
use serde_json::json;

use super::median;
use crate::output;

/// Arguments of `gantry bench workflow-load`.
#[derive(Debug, Args)]
pub struct WorkflowLoadArgs {
    /// Folder searched recursively for `*.yml` / `*.yaml` workflows (`action.yml` is skipped).
    #[arg(default_value = "../shared/corpora/workflows-popular")]
    dir: PathBuf,
    /// Timed rounds over all files; the median round is reported.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &WorkflowLoadArgs) -> anyhow::Result<ExitCode> {
    let files = read_workflows(&args.dir)?;
    if files.is_empty() {
        bail!("no workflow files under `{}`", args.dir.display());
    }
    let limits = Limits::default();
    let mut invalid = 0;
    for (_, source) in &files {
        if gantry_workflow::load(source, &limits).is_err() {
            invalid += 1;
        }
    }
    let bytes: usize = files.iter().map(|(_, source)| source.len()).sum();
    let mut gantry_rates = Vec::with_capacity(args.rounds);
    let mut peer_rates = Vec::with_capacity(args.rounds);
    let mut event_rates = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds.max(1) {
        // Alternate the two so drift in machine load hits both alike.
        let started = Instant::now();
        for (_, source) in &files {
            if let Ok(workflow) = gantry_workflow::load(source, &limits) {
                std::hint::black_box(gantry_workflow::plan::plan(&workflow, &limits).ok());
            }
        }
        gantry_rates.push(files.len() as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        for (_, source) in &files {
            std::hint::black_box(serde_saphyr::from_str::<serde_json::Value>(source).ok());
        }
        peer_rates.push(files.len() as f64 / started.elapsed().as_secs_f64());

        // The ceiling: the YAML parser's event stream alone, building nothing.
        let started = Instant::now();
        for (_, source) in &files {
            let events = serde_saphyr::granit_parser::Parser::new_from_str(source)
                .take_while(Result::is_ok)
                .count();
            std::hint::black_box(events);
        }
        event_rates.push(files.len() as f64 / started.elapsed().as_secs_f64());
    }
    let gantry_median = median(&mut gantry_rates);
    let peer_median = median(&mut peer_rates);
    let events_median = median(&mut event_rates);
    let figures = json!({
        "benchmark": "workflow-load",
        "dir": args.dir.display().to_string(),
        "files": files.len(),
        "bytes": bytes,
        "invalid_files": invalid,
        "rounds": args.rounds,
        "gantry_files_per_second_median": gantry_median.round(),
        "peer_yaml_only_files_per_second_median": peer_median.round(),
        "yaml_events_only_files_per_second_median": events_median.round(),
        "gantry_to_peer_ratio": (gantry_median / peer_median * 100.0).round() / 100.0,
    });
    if args.json {
        output::json_line(&figures);
    } else {
        output::line(&format!(
            "workflow-load: {} files ({} KiB, {invalid} invalid), {} rounds\n  gantry parse+validate+plan:        {:.0} files/s (median)\n  peer, serde-saphyr to JSON values: {:.0} files/s (median)\n  ceiling, YAML parser events only:  {:.0} files/s (median)\n  ratio gantry/peer:                 {:.2}",
            files.len(),
            bytes / 1024,
            args.rounds,
            gantry_median,
            peer_median,
            events_median,
            gantry_median / peer_median
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_workflows(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("failed to read `{}`", current.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("failed to read `{}`", current.display()))?
                .path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                pending.push(path);
            } else if (name.ends_with(".yml") || name.ends_with(".yaml"))
                && !name.starts_with("action.")
            {
                let source = std::fs::read_to_string(&path)
                    .with_context(|| format!("failed to read `{}`", path.display()))?;
                found.push((path, source));
            }
        }
    }
    found.sort();
    Ok(found)
}
