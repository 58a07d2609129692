//! Resolving scalars to null, booleans, numbers or strings with the YAML 1.2 core schema, the
//! schema GitHub's parser follows: `yes`, `on` and `off` are strings, `0755` is a number.

use std::borrow::Cow;

use crate::yaml::NodeValue;

/// The value of a plain (unquoted, untagged) scalar.
pub fn resolve_plain(text: Cow<'_, str>) -> NodeValue<'_> {
    match text.as_ref() {
        "" | "~" | "null" | "Null" | "NULL" => NodeValue::Null,
        "true" | "True" | "TRUE" => NodeValue::Bool(true),
        "false" | "False" | "FALSE" => NodeValue::Bool(false),
        // Most plain scalars are words (`ubuntu-latest`); only these can start a number.
        _ if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) => {
            NodeValue::String(text)
        }
        _ => match number(&text) {
            Some(number) => NodeValue::Number(number),
            None => NodeValue::String(text),
        },
    }
}

/// The value of a scalar with an explicit core-schema tag (`!!str`, `!!int`, …); `None` when the
/// text does not fit the tag or the tag is not one of the core schema's.
pub fn resolve_tagged<'a>(suffix: &str, text: Cow<'a, str>) -> Option<NodeValue<'a>> {
    let text_ref = text.as_ref();
    match suffix {
        "str" => Some(NodeValue::String(text)),
        "null" => {
            matches!(text_ref, "" | "~" | "null" | "Null" | "NULL").then_some(NodeValue::Null)
        }
        "bool" => match text_ref {
            "true" | "True" | "TRUE" => Some(NodeValue::Bool(true)),
            "false" | "False" | "FALSE" => Some(NodeValue::Bool(false)),
            _ => None,
        },
        "int" => integer(text_ref).map(NodeValue::Number),
        "float" => number(text_ref).map(NodeValue::Number),
        _ => None,
    }
}

/// A core-schema number: decimal, `0o` octal, `0x` hex integers, floats with an optional
/// exponent, `.inf` and `.nan` in their three spellings.
fn number(text: &str) -> Option<f64> {
    integer(text).or_else(|| float(text))
}

fn integer(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return radix(octal, 8);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok()
}

fn radix(digits: &str, base: u32) -> Option<f64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(base)) {
        return None;
    }
    // Saturating through f64 keeps huge literals finite-or-infinite instead of failing.
    Some(
        digits
            .chars()
            .filter_map(|c| c.to_digit(base))
            .fold(0.0, |value, digit| {
                value * f64::from(base) + f64::from(digit)
            }),
    )
}

fn float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        ".nan" | ".NaN" | ".NAN" if unsigned.len() == text.len() => return Some(f64::NAN),
        _ => {}
    }
    // [0-9]* ( . [0-9]* )? ( [eE] [-+]? [0-9]+ )?, with at least one digit before the exponent.
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(index) => (&unsigned[..index], Some(&unsigned[index + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits_ok(whole) || !digits_ok(fraction) {
        return None;
    }
    if let Some(exponent) = exponent {
        let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        if exponent.is_empty() || !digits_ok(exponent) {
            return None;
        }
    }
    // Rust's parser accepts this grammar; overflowing literals become infinity, as on GitHub.
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: NodeValue) {
        let resolved = resolve_plain(Cow::Borrowed(text));
        match (&resolved, &expected) {
            (NodeValue::Number(a), NodeValue::Number(b)) if a.is_nan() && b.is_nan() => {}
            _ => assert_eq!(resolved, expected, "{text:?}"),
        }
    }

    #[test]
    fn core_schema() {
        use NodeValue::{Bool, Null, Number, String};
        check("", Null);
        check("~", Null);
        check("NULL", Null);
        check("True", Bool(true));
        check("yes", String("yes".into()));
        check("on", String("on".into()));
        check("0755", Number(755.0));
        check("0x1F", Number(31.0));
        check("0o17", Number(15.0));
        check("-12", Number(-12.0));
        check("3.10", Number(3.1));
        check(".5", Number(0.5));
        check("1e3", Number(1000.0));
        check("-.inf", Number(f64::NEG_INFINITY));
        check(".NaN", Number(f64::NAN));
        check("1_000", String("1_000".into()));
        check("1.2.3", String("1.2.3".into()));
        check("e3", String("e3".into()));
        check("-", String("-".into()));
        check(".", String(".".into()));
        check("1e999", Number(f64::INFINITY));
        check("v1", String("v1".into()));
    }

    #[test]
    fn tags_must_fit_their_text() {
        assert_eq!(
            resolve_tagged("str", "123".into()),
            Some(NodeValue::String("123".into()))
        );
        assert_eq!(
            resolve_tagged("int", "12".into()),
            Some(NodeValue::Number(12.0))
        );
        assert_eq!(resolve_tagged("int", "1.5".into()), None);
        assert_eq!(
            resolve_tagged("bool", "FALSE".into()),
            Some(NodeValue::Bool(false))
        );
        assert_eq!(resolve_tagged("bool", "yes".into()), None);
        assert_eq!(resolve_tagged("binary", "aGk=".into()), None);
    }
}
