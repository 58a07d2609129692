//! Trigger filters and schedules through the public API, as the engine uses them: deciding
//! whether a push runs a workflow, and which minutes of a day a schedule fires in.

use chrono::{DateTime, Duration, TimeZone, Utc};
use gantry_workflow::cron::{CronErrorKind, CronSchedule};
use gantry_workflow::filter::{
    FilterErrorKind, FilterPattern, PATH_FILTER_FILE_LIMIT, matches_filters, paths_match,
};

fn patterns(sources: &[&str]) -> Vec<FilterPattern> {
    sources
        .iter()
        .map(|source| FilterPattern::parse(source).unwrap_or_else(|error| panic!("{error}")))
        .collect()
}

fn files(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|path| (*path).to_owned()).collect()
}

/// A push event as the engine sees it: the branch, then the changed files.
struct Push<'a> {
    branch: &'a str,
    changed: Vec<String>,
}

/// `on.push` with `branches` and `paths`: both filters must let the push through.
fn push_runs(branches: &[FilterPattern], paths: &[FilterPattern], push: &Push<'_>) -> bool {
    matches_filters(branches, push.branch) && paths_match(paths, &[], &push.changed)
}

#[test]
fn a_push_runs_when_branch_and_paths_both_match() {
    let branches = patterns(&["main", "releases/**", "!releases/**-alpha"]);
    let paths = patterns(&["src/**", "Cargo.*", "!src/**/*.md"]);

    let code_on_main = Push {
        branch: "main",
        changed: files(&["README.md", "src/lib.rs"]),
    };
    assert!(push_runs(&branches, &paths, &code_on_main));

    let docs_on_main = Push {
        branch: "main",
        changed: files(&["README.md", "src/notes/design.md"]),
    };
    assert!(!push_runs(&branches, &paths, &docs_on_main));

    let code_on_alpha = Push {
        branch: "releases/2.0-alpha",
        changed: files(&["src/lib.rs"]),
    };
    assert!(!push_runs(&branches, &paths, &code_on_alpha));

    let code_on_release = Push {
        branch: "releases/2.0",
        changed: files(&["Cargo.toml"]),
    };
    assert!(push_runs(&branches, &paths, &code_on_release));
}

#[test]
fn a_huge_diff_is_judged_on_its_first_300_files() {
    let mut changed: Vec<String> = (0..PATH_FILTER_FILE_LIMIT)
        .map(|index| format!("docs/page-{index}.md"))
        .collect();
    changed.push("src/main.rs".to_owned());
    assert!(!paths_match(&patterns(&["src/**"]), &[], &changed));
    assert!(!paths_match(&[], &patterns(&["docs/**"]), &changed));
}

#[test]
fn broken_patterns_are_reported_with_the_character_at_fault() {
    let error = FilterPattern::parse("v[0-").unwrap_err();
    assert_eq!(error.kind(), &FilterErrorKind::UnclosedClass);
    assert_eq!((error.pattern(), error.column()), ("v[0-", 2));
    assert_eq!(
        error.to_string(),
        "invalid filter pattern \"v[0-\": `[` is never closed with `]` (character 2)"
    );
}

fn minutes_of_day(schedule: &CronSchedule, day: DateTime<Utc>) -> usize {
    (0..24 * 60)
        .filter(|minute| schedule.fires_in_minute(day + Duration::minutes(*minute)))
        .count()
}

#[test]
fn a_schedule_fires_in_the_minutes_it_names() {
    let day = Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap();
    let every_five = CronSchedule::parse("*/5 * * * *").unwrap();
    assert_eq!(minutes_of_day(&every_five, day), 288);

    // 2024-02-29 is a Thursday: the weekday list fires even though the 13th is far away.
    let thirteenth_or_thursday = CronSchedule::parse("0 9,17 13 * THU").unwrap();
    assert_eq!(minutes_of_day(&thirteenth_or_thursday, day), 2);

    // Walking next_after from midnight visits exactly the firing minutes.
    let mut fired = Vec::new();
    let mut cursor = day - Duration::seconds(1);
    while let Some(next) = thirteenth_or_thursday.next_after(cursor) {
        if next >= day + Duration::days(1) {
            break;
        }
        fired.push(next);
        cursor = next;
    }
    assert_eq!(
        fired,
        [
            Utc.with_ymd_and_hms(2024, 2, 29, 9, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 17, 0, 0).unwrap(),
        ]
    );
}

#[test]
fn schedules_github_rejects_are_errors() {
    let error = CronSchedule::parse("0 */3 * *").unwrap_err();
    assert_eq!(error.kind(), &CronErrorKind::FieldCount { found: 4 });
    assert!(
        error
            .to_string()
            .starts_with("invalid cron \"0 */3 * *\": expected 5 fields, found 4")
    );
    assert!(matches!(
        CronSchedule::parse("@hourly").unwrap_err().kind(),
        CronErrorKind::Nickname(_)
    ));
    // GitHub throttles schedules to once every 5 minutes but accepts the expression.
    assert!(CronSchedule::parse("* * * * *").is_ok());
}
