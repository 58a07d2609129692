//! Matrix job display names, as GitHub builds them: `job (v1, v2, ...)`.
//!
//! The values are walked depth first (mapping keys left out) and every scalar becomes a segment:
//! strings as they are, booleans as `true`/`false`, numbers as .NET prints a double with 15
//! significant digits (`1.17`, `14`, `1E+15`). Nulls and empty strings are skipped. A name longer
//! than 100 UTF-16 code units is cut to 97 and ends with `...`.

use serde_json::Value;

/// GitHub's cap on a job display name, in UTF-16 code units.
const MAX_NAME_UTF16_LEN: usize = 100;
const ELLIPSIS: &str = "...";

/// `job_name (segments)` from the scalars inside `values`; `job_name` alone when there are none.
pub(super) fn job_display_name<'a>(
    job_name: &str,
    values: impl DoubleEndedIterator<Item = &'a Value>,
) -> String {
    let segments: Vec<String> = scalars_depth_first(values)
        .filter_map(segment)
        .filter(|segment| !segment.is_empty())
        .collect();
    let name = if segments.is_empty() {
        job_name.to_owned()
    } else {
        format!("{job_name} ({})", segments.join(", "))
    };
    truncate(name)
}

/// The scalars inside `values`, in document order, without recursion (values nest arbitrarily).
fn scalars_depth_first<'a>(
    values: impl DoubleEndedIterator<Item = &'a Value>,
) -> impl Iterator<Item = &'a Value> {
    // A stack holding the values still to visit, the next one on top.
    let mut pending: Vec<&'a Value> = values.rev().collect();
    std::iter::from_fn(move || {
        while let Some(value) = pending.pop() {
            match value {
                Value::Array(items) => pending.extend(items.iter().rev()),
                Value::Object(mapping) => pending.extend(mapping.values().rev()),
                scalar => return Some(scalar),
            }
        }
        None
    })
}

fn segment(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_f64().map(format_number),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A number as .NET's `double.ToString("G15", InvariantCulture)` prints it: 15 significant
/// digits, trailing zeros dropped, scientific notation (`1E+15`, `1.5E-07`) when the exponent is
/// below -4 or above 14.
pub(super) fn format_number(number: f64) -> String {
    if number.is_nan() {
        return "NaN".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .to_owned();
    }
    let sign = if number.is_sign_negative() { "-" } else { "" };
    if number == 0.0 {
        // .NET Core 3.0 and later print negative zero as "-0".
        return format!("{sign}0");
    }
    // Rounded to 15 significant digits: "d.dddddddddddddde<exponent>".
    let scientific = format!("{:.14e}", number.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return scientific;
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    if (-5 < exponent) && (exponent < 15) {
        format!("{sign}{}", fixed_point(digits, exponent))
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        let magnitude = exponent.unsigned_abs();
        format!("{sign}{first}{fraction}E{exponent_sign}{magnitude:02}")
    }
}

/// `digits` (no leading zero, no trailing zeros) times ten to `exponent`, written out.
fn fixed_point(digits: &str, exponent: i32) -> String {
    if exponent < 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        return format!("0.{zeros}{digits}");
    }
    let integer_len = exponent.unsigned_abs() as usize + 1;
    if digits.len() <= integer_len {
        format!("{digits}{}", "0".repeat(integer_len - digits.len()))
    } else {
        let (integer, fraction) = digits.split_at(integer_len);
        format!("{integer}.{fraction}")
    }
}

/// Cuts `name` as GitHub does, counting UTF-16 code units; a character is never split.
fn truncate(name: String) -> String {
    if name.encode_utf16().count() <= MAX_NAME_UTF16_LEN {
        return name;
    }
    let budget = MAX_NAME_UTF16_LEN - ELLIPSIS.len();
    let mut used = 0;
    let mut cut = String::new();
    for c in name.chars() {
        used += c.len_utf16();
        if used > budget {
            break;
        }
        cut.push(c);
    }
    cut.push_str(ELLIPSIS);
    cut
}
