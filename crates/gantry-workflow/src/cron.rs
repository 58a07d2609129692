//! `on.schedule` cron expressions: GitHub's five-field POSIX cron syntax, parsed and checked
//! here, with fire times computed by [`croner`] in UTC.
//!
//! # Accepted syntax
//!
//! Exactly five whitespace-separated fields: minute (0-59), hour (0-23), day of month (1-31),
//! month (1-12 or `JAN`-`DEC`) and day of week (0-6 or `SUN`-`SAT`, with 7 also meaning Sunday as
//! in most crons). A field is a comma-separated list of `*`, a value, or a range `a-b`, each
//! optionally followed by a step `/n`; names are case-insensitive. A step after a single value
//! (`5/15`) runs from that value to the end of the field's range, as robfig/cron (which
//! actionlint uses to check schedules) reads it.
//!
//! Rejected, because GitHub's POSIX syntax does not have them: nicknames such as `@daily`
//! (GitHub documents that they are not supported), six- or seven-field expressions with
//! seconds or years, and the `?`, `L`, `W` and `#` extensions of other crons.
//!
//! # Day of month and day of week
//!
//! As in POSIX cron, when both day fields are restricted a day matches if *either* matches:
//! `0 0 13 * 5` fires on every 13th and on every Friday. When one of them is `*`, only the
//! other one counts. A field counts as unrestricted only when it is exactly `*`; `*/1` is a
//! restriction that happens to list every value (Vixie cron treats any field starting with `*`
//! as unrestricted; croner, and so gantry, does not). croner's default mode implements this OR
//! rule; its `dom_and_dow` option, which would AND the fields, stays off.
//!
//! # Frequency and time zone
//!
//! GitHub runs scheduled workflows at most once every 5 minutes, but accepts expressions such
//! as `* * * * *` in the workflow file: the limit is the scheduler's business, not a parse
//! error, so [`CronSchedule::parse`] accepts them. Times are UTC; callers pass the current time
//! in, since this crate reads no clock.

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use std::sync::{Arc, OnceLock};

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed `on.schedule[].cron` expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    source: String,
    /// The expression in croner's plain syntax, and croner's schedule built from it on first
    /// use: most loaded workflows are only validated, and building it up front was a visible
    /// share of loading time.
    normalized: String,
    /// Shared by clones, so a workflow kept loaded and used through copies builds it once.
    cron: Arc<OnceLock<Option<Cron>>>,
    /// False when the day-of-month list names only days that none of the listed months has
    /// (`0 0 30 2 *`): such a schedule is valid but never fires, and answering that up front
    /// spares croner a search to its year limit.
    can_fire: bool,
}

impl CronSchedule {
    /// Parses a five-field cron expression as GitHub accepts it.
    ///
    /// # Errors
    ///
    /// Returns a [`CronError`] naming the expression and the problem: wrong number of fields,
    /// a nickname, a value out of range, an unknown name, a backwards range, a zero step or a
    /// character that is not POSIX cron syntax.
    pub fn parse(expr: &str) -> Result<CronSchedule, CronError> {
        let error = |kind| CronError {
            expr: expr.to_owned(),
            kind,
        };
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err(error(CronErrorKind::Empty));
        }
        if trimmed.starts_with('@') {
            return Err(error(CronErrorKind::Nickname(trimmed.to_owned())));
        }
        let texts: Vec<&str> = trimmed.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = texts[..] else {
            return Err(error(CronErrorKind::FieldCount { found: texts.len() }));
        };
        let parse_field = |field: CronField, text: &str| {
            ParsedField::parse(field, text).map_err(|problem| {
                error(CronErrorKind::Field {
                    field,
                    text: text.to_owned(),
                    problem,
                })
            })
        };
        let fields = [
            parse_field(CronField::Minute, minute)?,
            parse_field(CronField::Hour, hour)?,
            parse_field(CronField::DayOfMonth, day_of_month)?,
            parse_field(CronField::Month, month)?,
            parse_field(CronField::DayOfWeek, day_of_week)?,
        ];
        let [_, _, days, months, weekdays] = &fields;
        let can_fire = !weekdays.unrestricted || days.unrestricted || {
            // Only the day of month decides, so some listed day must exist in a listed month.
            (1..=12)
                .filter(|&month| months.contains(month))
                .any(|month| (1..=longest_month(month)).any(|day| days.contains(day)))
        };

        // croner gets the value lists spelled out, so its reading of steps, names and ranges
        // cannot differ from the one checked above; `*` is kept as is because the day fields'
        // OR rule depends on it.
        let normalized = fields
            .iter()
            .map(ParsedField::normalized)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(CronSchedule {
            source: expr.to_owned(),
            normalized,
            cron: Arc::default(),
            can_fire,
        })
    }

    /// croner's schedule; `None` only if croner refused the normalized expression, which the
    /// field checks rule out (a property test checks it), so such a schedule never fires.
    fn cron(&self) -> Option<&Cron> {
        self.cron
            .get_or_init(|| {
                CronParser::builder()
                    .seconds(Seconds::Disallowed)
                    .year(Year::Disallowed)
                    .dom_and_dow(false)
                    .build()
                    .parse(&self.normalized)
                    .ok()
            })
            .as_ref()
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the schedule fires at all. It does not when its days of month exist in none of
    /// its months (`0 0 31 4,6 *`); GitHub accepts such a schedule, so parsing does too, and
    /// validation may warn about it.
    pub fn can_fire(&self) -> bool {
        self.can_fire
    }

    /// The first minute strictly after `after` at which the schedule fires, or `None` when it
    /// never fires again (no matching day exists, or the next one is past croner's year 5000).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.can_fire {
            return None;
        }
        // croner starts an exclusive search at the next whole second; dropping the fraction
        // first keeps "strictly after" true for inputs like 10:00:59.5.
        let whole_second = after.with_nanosecond(0)?;
        self.cron()?.find_next_occurrence(&whole_second, false).ok()
    }

    /// Whether the schedule fires in the minute that contains `minute` (its seconds and
    /// fraction are ignored).
    pub fn fires_in_minute(&self, minute: DateTime<Utc>) -> bool {
        let Some(start) = minute
            .with_second(0)
            .and_then(|start| start.with_nanosecond(0))
        else {
            return false;
        };
        self.can_fire
            && self
                .cron()
                .is_some_and(|cron| cron.is_time_matching(&start).unwrap_or(false))
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is computed from the source.
        self.source == other.source
    }
}

impl Eq for CronSchedule {}

/// The most days `month` (1-12) can have; February counts its leap day.
fn longest_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A cron expression that [`CronSchedule::parse`] rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron {expr:?}: {kind}")]
pub struct CronError {
    expr: String,
    kind: CronErrorKind,
}

impl CronError {
    /// The rejected expression, as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// What is wrong with the expression.
    pub fn kind(&self) -> &CronErrorKind {
        &self.kind
    }
}

/// The ways a cron expression can be invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronErrorKind {
    /// The expression is empty or only whitespace.
    #[error("the expression is empty")]
    Empty,
    /// A nickname such as `@daily`.
    #[error(
        "nicknames such as `{0}` are not supported by GitHub; write the five fields, \
         for example \"0 0 * * *\" for every day at midnight"
    )]
    Nickname(String),
    /// Not exactly five fields.
    #[error("expected 5 fields, found {found}{}", field_count_hint(.found))]
    FieldCount {
        /// How many whitespace-separated fields the expression has.
        found: usize,
    },
    /// One field is malformed.
    #[error("{field} field {text:?}: {problem}")]
    Field {
        /// Which field.
        field: CronField,
        /// The field as written.
        text: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
}

fn field_count_hint(found: &usize) -> &'static str {
    if *found > 5 {
        " (minute hour day-of-month month day-of-week; GitHub has no seconds or year field)"
    } else {
        " (minute hour day-of-month month day-of-week)"
    }
}

/// The five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Minute, 0-59.
    Minute,
    /// Hour, 0-23.
    Hour,
    /// Day of month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or `JAN`-`DEC`.
    Month,
    /// Day of week, 0-6 or `SUN`-`SAT`, 7 also being Sunday.
    DayOfWeek,
}

impl CronField {
    /// The smallest and largest value the field accepts.
    fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }

    /// The names the field accepts, the first standing for its smallest value.
    fn names(self) -> &'static [&'static str] {
        const MONTHS: [&str; 12] = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            CronField::Month => &MONTHS,
            CronField::DayOfWeek => &WEEKDAYS,
            _ => &[],
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        })
    }
}

/// What is wrong with one field of a cron expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// A character that POSIX cron does not have, such as `?`, `#` or `.`.
    #[error("`{0}` is not cron syntax GitHub supports (numbers, names, `*`, `,`, `-` and `/` are)")]
    UnsupportedCharacter(char),
    /// Two commas in a row, or a comma at either end.
    #[error("the list has an empty element")]
    EmptyElement,
    /// An element that is not `*`, a value or a range, optionally with a step.
    #[error("`{0}` is not `*`, a value or a range `a-b`, optionally followed by `/step`")]
    Malformed(String),
    /// A word that is neither a number nor one of the field's names.
    #[error("`{value}` is not a number{}", names_hint(.names))]
    UnknownValue {
        /// The word as written.
        value: String,
        /// The names the field accepts, such as `"JAN-DEC"`, or empty.
        names: &'static str,
    },
    /// A number outside the field's bounds.
    #[error("{value} is out of range {min}-{max}")]
    OutOfRange {
        /// The number as written.
        value: String,
        /// The smallest value allowed.
        min: u32,
        /// The largest value allowed.
        max: u32,
    },
    /// A range whose start is after its end.
    #[error("the range {start}-{end} runs backwards")]
    ReversedRange {
        /// The start of the range.
        start: u32,
        /// The end of the range.
        end: u32,
    },
    /// A step of zero, or one that is not a number.
    #[error("the step `{0}` must be a whole number of at least 1")]
    InvalidStep(String),
}

fn names_hint(names: &str) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" or a name {names}")
    }
}

/// One field after checking: the set of values it selects.
struct ParsedField {
    field: CronField,
    /// Bit `n` is set when value `n` is selected; every bound fits in 64 bits.
    values: u64,
    /// Whether the field is exactly `*`, which the day fields' OR rule treats specially.
    unrestricted: bool,
}

impl ParsedField {
    fn parse(field: CronField, text: &str) -> Result<ParsedField, FieldProblem> {
        if let Some(c) = text
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/')))
        {
            return Err(FieldProblem::UnsupportedCharacter(c));
        }
        let mut values = 0_u64;
        for element in text.split(',') {
            values |= parse_element(field, element)?;
        }
        if field == CronField::DayOfWeek && values & (1 << 7) != 0 {
            // 7 is another spelling of Sunday.
            values = (values & !(1 << 7)) | 1;
        }
        Ok(ParsedField {
            field,
            values,
            unrestricted: text == "*",
        })
    }

    fn contains(&self, value: u32) -> bool {
        value < 64 && self.values & (1 << value) != 0
    }

    /// The field in the plain numeric syntax croner reads: `*` or the full list of values.
    fn normalized(&self) -> String {
        if self.unrestricted {
            return String::from("*");
        }
        let (min, max) = self.field.bounds();
        (min..=max)
            .filter(|&value| self.contains(value))
            .map(|value| value.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Parses one list element (`*`, `v`, `a-b`, each optionally `/step`) into a value set.
fn parse_element(field: CronField, element: &str) -> Result<u64, FieldProblem> {
    if element.is_empty() {
        return Err(FieldProblem::EmptyElement);
    }
    let malformed = || FieldProblem::Malformed(element.to_owned());
    let (min, max) = field.bounds();
    let (base, step) = match element.split_once('/') {
        None => (element, None),
        Some((base, step)) => (base, Some(parse_step(step)?)),
    };
    let (start, end) = if base == "*" {
        // Sunday is already 0, so `*` in the day-of-week field stops at 6.
        let max = if field == CronField::DayOfWeek {
            6
        } else {
            max
        };
        (min, max)
    } else if let Some((start, end)) = base.split_once('-') {
        let start = parse_value(field, start, false)
            .map_err(|problem| problem.unwrap_or_else(malformed))?;
        let end =
            parse_value(field, end, true).map_err(|problem| problem.unwrap_or_else(malformed))?;
        if start > end {
            return Err(FieldProblem::ReversedRange { start, end });
        }
        (start, end)
    } else {
        let value =
            parse_value(field, base, false).map_err(|problem| problem.unwrap_or_else(malformed))?;
        // A step after a single value runs to the end of the field, as in robfig/cron.
        (value, if step.is_some() { max } else { value })
    };
    let step = step.unwrap_or(1);
    Ok((start..=end)
        .step_by(step)
        .fold(0_u64, |values, value| values | (1_u64 << value)))
}

/// Parses a step, which must be a positive number.
fn parse_step(text: &str) -> Result<usize, FieldProblem> {
    match text.parse::<usize>() {
        Ok(step) if step >= 1 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(step),
        _ => Err(FieldProblem::InvalidStep(text.to_owned())),
    }
}

/// Parses a number or name of `field`; `range_end` makes `SUN` mean 7 so `FRI-SUN` is valid.
///
/// `Err(None)` means the text is not a value at all (empty, or `*` or `/` in the wrong place),
/// which the caller reports as a malformed element.
fn parse_value(field: CronField, text: &str, range_end: bool) -> Result<u32, Option<FieldProblem>> {
    let (min, max) = field.bounds();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(None);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let out_of_range = || FieldProblem::OutOfRange {
            value: text.to_owned(),
            min,
            max,
        };
        // Too many digits for u32 is out of range as well.
        let value = text.parse::<u32>().map_err(|_| Some(out_of_range()))?;
        return if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(Some(out_of_range()))
        };
    }
    let named = field
        .names()
        .iter()
        .zip(min..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text));
    match named {
        Some((_, 0)) if field == CronField::DayOfWeek && range_end => Ok(7),
        Some((_, value)) => Ok(value),
        None => Err(Some(FieldProblem::UnknownValue {
            value: text.to_owned(),
            names: match field {
                CronField::Month => "JAN-DEC",
                CronField::DayOfWeek => "SUN-SAT",
                _ => "",
            },
        })),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn schedule(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr).unwrap()
    }

    /// Checks the next `expect.len()` fire times of `expr` after `after`.
    fn check_next(expr: &str, after: &str, expect: &[&str]) {
        let schedule = schedule(expr);
        let mut cursor = at(after);
        for expected in expect {
            let next = schedule.next_after(cursor).unwrap();
            assert_eq!(next, at(expected), "{expr} after {cursor}");
            cursor = next;
        }
    }

    /// Checks that `expr` is rejected with the message `invalid cron "<expr>": <problem>`.
    fn check_error(expr: &str, problem: &str) {
        let error = CronSchedule::parse(expr).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid cron {expr:?}: {problem}")
        );
    }

    #[test]
    fn accepts_posix_syntax() {
        for expr in [
            "* * * * *",
            "*/5 * * * *",
            "0 */3 * * *",
            "30 5 * * 1-5",
            "30 5,17 * * 1,3",
            "0 0 1 JAN,jul *",
            "0 0 * * MON-FRI",
            "0 0 * * fri-sun",
            "0 0 * * 7",
            "0 0 * * 0-7",
            "0 0 * * MON-SUN",
            "0-59/15 0-23/6 1-31/2 1-12/3 0-6/2",
            "5/15 * * * *",
            "  0 0 * * *  ",
            "0\t0 * * *",
            "00 05 * * *",
            "0 0 31 2 *",
        ] {
            let schedule = schedule(expr);
            assert_eq!(schedule.source(), expr);
        }
    }

    #[test]
    fn rejects_with_named_problems() {
        const FIELDS: &str = "(minute hour day-of-month month day-of-week)";
        check_error("* * *", &format!("expected 5 fields, found 3 {FIELDS}"));
        check_error("0 */3 * *", &format!("expected 5 fields, found 4 {FIELDS}"));
        check_error(
            "0 0 0 * * *",
            "expected 5 fields, found 6 (minute hour day-of-month month day-of-week; \
             GitHub has no seconds or year field)",
        );
        check_error("", "the expression is empty");
        check_error("   ", "the expression is empty");
        check_error(
            "@daily",
            "nicknames such as `@daily` are not supported by GitHub; write the five fields, \
             for example \"0 0 * * *\" for every day at midnight",
        );
        let unsupported = "is not cron syntax GitHub supports (numbers, names, `*`, `,`, `-` \
                           and `/` are)";
        let malformed = "is not `*`, a value or a range `a-b`, optionally followed by `/step`";
        let step = "must be a whole number of at least 1";
        for (expr, problem) in [
            (
                "60 * * * *",
                "minute field \"60\": 60 is out of range 0-59".to_owned(),
            ),
            (
                "* 24 * * *",
                "hour field \"24\": 24 is out of range 0-23".to_owned(),
            ),
            (
                "* * 0 * *",
                "day-of-month field \"0\": 0 is out of range 1-31".to_owned(),
            ),
            (
                "* * 32 * *",
                "day-of-month field \"32\": 32 is out of range 1-31".to_owned(),
            ),
            (
                "* * * 13 *",
                "month field \"13\": 13 is out of range 1-12".to_owned(),
            ),
            (
                "* * * * 8",
                "day-of-week field \"8\": 8 is out of range 0-7".to_owned(),
            ),
            (
                "* * * * 99999999999",
                "day-of-week field \"99999999999\": 99999999999 is out of range 0-7".to_owned(),
            ),
            (
                "5-1 * * * *",
                "minute field \"5-1\": the range 5-1 runs backwards".to_owned(),
            ),
            (
                "0 0 * * SAT-MON",
                "day-of-week field \"SAT-MON\": the range 6-1 runs backwards".to_owned(),
            ),
            (
                "*/0 * * * *",
                format!("minute field \"*/0\": the step `0` {step}"),
            ),
            (
                "*/x * * * *",
                format!("minute field \"*/x\": the step `x` {step}"),
            ),
            (
                "*/5/2 * * * *",
                format!("minute field \"*/5/2\": the step `5/2` {step}"),
            ),
            (
                "1,,2 * * * *",
                "minute field \"1,,2\": the list has an empty element".to_owned(),
            ),
            (
                "/5 * * * *",
                format!("minute field \"/5\": `/5` {malformed}"),
            ),
            (
                "1-2-3 * * * *",
                format!("minute field \"1-2-3\": `1-2-3` {malformed}"),
            ),
            (
                "0 0 ? * MON",
                format!("day-of-month field \"?\": `?` {unsupported}"),
            ),
            (
                "0 0 * * 5#2",
                format!("day-of-week field \"5#2\": `#` {unsupported}"),
            ),
            (
                "0 0 L * *",
                "day-of-month field \"L\": `L` is not a number".to_owned(),
            ),
            (
                "0 0 15W * *",
                "day-of-month field \"15W\": `15W` is not a number".to_owned(),
            ),
            (
                "0 0 * * 5L",
                "day-of-week field \"5L\": `5L` is not a number or a name SUN-SAT".to_owned(),
            ),
            (
                "0 0 * FOO *",
                "month field \"FOO\": `FOO` is not a number or a name JAN-DEC".to_owned(),
            ),
            (
                "MON * * * *",
                "minute field \"MON\": `MON` is not a number".to_owned(),
            ),
            (
                "0 0 * JAN MONDAY",
                "day-of-week field \"MONDAY\": `MONDAY` is not a number or a name SUN-SAT"
                    .to_owned(),
            ),
        ] {
            check_error(expr, &problem);
        }
    }

    #[test]
    fn next_fire_times() {
        check_next(
            "*/5 * * * *",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T00:05:00Z", "2024-01-01T00:10:00Z"],
        );
        // Strictly after: a fire time exactly at `after` is skipped, a fraction is not lost.
        check_next(
            "0 * * * *",
            "2024-01-01T10:00:00Z",
            &["2024-01-01T11:00:00Z"],
        );
        check_next(
            "* * * * *",
            "2024-01-01T10:00:59.999Z",
            &["2024-01-01T10:01:00Z"],
        );
        check_next(
            "* * * * *",
            "2024-01-01T10:00:00.001Z",
            &["2024-01-01T10:01:00Z"],
        );
        // Month and year ends.
        check_next(
            "0 0 1 * *",
            "2024-01-31T23:59:00Z",
            &["2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"],
        );
        check_next(
            "59 23 31 12 *",
            "2024-06-01T00:00:00Z",
            &["2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"],
        );
        check_next(
            "0 0 31 * *",
            "2024-04-01T00:00:00Z",
            &[
                "2024-05-31T00:00:00Z",
                "2024-07-31T00:00:00Z",
                "2024-08-31T00:00:00Z",
            ],
        );
        // Leap days: only leap years have a 29 February.
        check_next(
            "0 12 29 2 *",
            "2024-03-01T00:00:00Z",
            &["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"],
        );
        check_next(
            "0 12 29 2 *",
            "2096-03-01T00:00:00Z",
            &["2104-02-29T12:00:00Z"],
        );
        // Names, steps after a value, and 7 as Sunday. 2024-01-07 is a Sunday.
        check_next(
            "30 5 * JAN SUN",
            "2024-01-01T00:00:00Z",
            &["2024-01-07T05:30:00Z", "2024-01-14T05:30:00Z"],
        );
        check_next(
            "0 0 * * 7",
            "2024-01-01T00:00:00Z",
            &["2024-01-07T00:00:00Z"],
        );
        check_next(
            "0 0 * * FRI-SUN",
            "2024-01-01T00:00:00Z",
            &[
                "2024-01-05T00:00:00Z",
                "2024-01-06T00:00:00Z",
                "2024-01-07T00:00:00Z",
                "2024-01-12T00:00:00Z",
            ],
        );
        check_next(
            "10/20 * * * *",
            "2024-01-01T00:00:00Z",
            &[
                "2024-01-01T00:10:00Z",
                "2024-01-01T00:30:00Z",
                "2024-01-01T00:50:00Z",
                "2024-01-01T01:10:00Z",
            ],
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored_when_both_restricted() {
        // 2024-09-13 is a Friday; every 13th and every Friday fire.
        check_next(
            "0 0 13 * FRI",
            "2024-09-01T00:00:00Z",
            &[
                "2024-09-06T00:00:00Z",
                "2024-09-13T00:00:00Z",
                "2024-09-20T00:00:00Z",
                "2024-09-27T00:00:00Z",
                "2024-10-04T00:00:00Z",
                "2024-10-11T00:00:00Z",
                "2024-10-13T00:00:00Z",
            ],
        );
        // With one of them `*`, only the other counts.
        check_next(
            "0 0 13 * *",
            "2024-09-01T00:00:00Z",
            &["2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z"],
        );
        check_next(
            "0 0 * * FRI",
            "2024-09-07T00:00:00Z",
            &["2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z"],
        );
        // `*/1` is a restriction: OR-ed with Monday it selects every day.
        check_next(
            "0 0 */1 * MON",
            "2024-09-01T00:00:00Z",
            &["2024-09-02T00:00:00Z", "2024-09-03T00:00:00Z"],
        );
        // An impossible day of month still fires on the listed weekdays.
        check_next(
            "0 0 30 2 MON",
            "2024-01-31T00:00:00Z",
            &["2024-02-05T00:00:00Z"],
        );
    }

    #[test]
    fn schedules_that_never_fire() {
        for expr in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 FEB *"] {
            let schedule = schedule(expr);
            assert!(!schedule.can_fire(), "{expr}");
            assert_eq!(schedule.next_after(at("2024-01-01T00:00:00Z")), None);
            assert!(!schedule.fires_in_minute(at("2024-02-29T00:00:00Z")));
        }
        assert!(schedule("0 0 29 2 *").can_fire());
        assert!(schedule("0 0 31 2,3 *").can_fire());
    }

    #[test]
    fn fires_in_minute_ignores_seconds() {
        let schedule = schedule("30 5 * * 1-5");
        // 2024-01-01 is a Monday, 2024-01-06 a Saturday.
        assert!(schedule.fires_in_minute(at("2024-01-01T05:30:00Z")));
        assert!(schedule.fires_in_minute(at("2024-01-01T05:30:59.9Z")));
        assert!(!schedule.fires_in_minute(at("2024-01-01T05:31:00Z")));
        assert!(!schedule.fires_in_minute(at("2024-01-06T05:30:00Z")));
    }

    #[test]
    fn next_after_the_last_representable_year_is_none() {
        let end = Utc.with_ymd_and_hms(5000, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(schedule("0 0 1 1 *").next_after(end), None);
    }

    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_owned()),
            (0..8_u32).prop_map(|value| value.to_string()),
            (0..8_u32, 0..8_u32).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1..25_u32).prop_map(|step| format!("*/{step}")),
        ]
    }

    fn field(offset: u32) -> impl Strategy<Value = String> {
        prop::collection::vec(element(), 1..3).prop_map(move |elements| {
            elements
                .iter()
                .map(|element| shift(element, offset))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// Adds `offset` to the numbers of an element, so day-of-month and month start at 1.
    fn shift(element: &str, offset: u32) -> String {
        if element.starts_with('*') || offset == 0 {
            return element.to_owned();
        }
        element
            .split('-')
            .map(|number| (number.parse::<u32>().unwrap() + offset).to_string())
            .collect::<Vec<_>>()
            .join("-")
    }

    fn expression() -> impl Strategy<Value = String> {
        (
            prop_oneof![field(0), (0..60_u32).prop_map(|m| m.to_string())],
            prop_oneof![field(0), (0..24_u32).prop_map(|h| h.to_string())],
            prop_oneof![
                Just("*".to_owned()),
                field(1),
                (25..32_u32).prop_map(|d| d.to_string())
            ],
            prop_oneof![Just("*".to_owned()), field(1)],
            prop_oneof![Just("*".to_owned()), field(0)],
        )
            .prop_map(|(minute, hour, day, month, weekday)| {
                format!("{minute} {hour} {day} {month} {weekday}")
            })
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // 2000-01-01 to about 2100, to the millisecond.
        (946_684_800_000_i64..4_102_444_800_000)
            .prop_map(|millis| DateTime::from_timestamp_millis(millis).unwrap())
    }

    /// How many minutes after `after` the brute-force check walks.
    const BRUTE_FORCE_MINUTES: i64 = 3 * 24 * 60;

    proptest! {
        #[test]
        fn next_after_agrees_with_fires_in_minute(expr in expression(), after in instant()) {
            let schedule = schedule(&expr);
            let next = schedule.next_after(after);
            if let Some(next) = next {
                prop_assert!(next > after);
                prop_assert_eq!((next.second(), next.nanosecond()), (0, 0));
                prop_assert!(schedule.fires_in_minute(next));
            }
            // No minute strictly between `after` and the next fire time fires.
            let first_minute = after.with_second(0).unwrap().with_nanosecond(0).unwrap()
                + Duration::minutes(1);
            let mut minute = first_minute;
            while minute < first_minute + Duration::minutes(BRUTE_FORCE_MINUTES) {
                if Some(minute) == next {
                    break;
                }
                prop_assert!(!schedule.fires_in_minute(minute), "{} fires at {}", expr, minute);
                minute += Duration::minutes(1);
            }
            // A schedule that can fire does so within 8 years: the longest wait is for a
            // 29 February across a century year that is not a leap year, such as 2100.
            if schedule.can_fire() {
                prop_assert!(next.is_some_and(|next| next.year() <= after.year() + 8));
            }
        }

        #[test]
        fn next_after_is_monotonic(expr in expression(), a in instant(), b in instant()) {
            let schedule = schedule(&expr);
            let (early, late) = (a.min(b), a.max(b));
            prop_assert!(schedule.next_after(early) <= schedule.next_after(late));
            if let Some(next) = schedule.next_after(early) {
                prop_assert!(schedule.next_after(next).is_none_or(|after_next| after_next > next));
            }
        }

        #[test]
        fn random_text_never_panics(expr in any::<String>(), after in instant()) {
            if let Ok(schedule) = CronSchedule::parse(&expr) {
                let _ = schedule.next_after(after);
                let _ = schedule.fires_in_minute(after);
            }
        }

        #[test]
        fn croner_accepts_every_schedule_that_parses(expr in "[0-9*/,A-Za-z -]{0,30}") {
            if let Ok(schedule) = CronSchedule::parse(&expr) {
                prop_assert!(schedule.cron().is_some(), "croner refused {}", expr);
            }
        }
    }
}
