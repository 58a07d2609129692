//! Conversions between numbers and strings with the JavaScript rules GitHub's engines follow.
//!
//! GitHub's expression engines agree with JavaScript's `Number(string)` when a string is coerced
//! to a number, and print numbers the way JavaScript does after rounding them to 15 decimals.
//! Rust's own parsing and printing differ in many corners (`0x10`, `" 1 "`, `1e21`, `1e-7`),
//! so both directions are spelled out here.

/// Whether `c` is whitespace for JavaScript: `WhiteSpace` or `LineTerminator`, the set that both
/// `String.prototype.trim` and the regular expression `\s` use.
///
/// This differs from [`char::is_whitespace`]: JavaScript counts U+FEFF but not U+0085.
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JavaScript's `Number(text)`: surrounding whitespace is ignored, an empty string is 0,
/// `0x`/`0o`/`0b` prefixes are accepted without a sign, decimal literals may carry a sign, a
/// leading or trailing dot and an exponent, and anything else is NaN.
pub(crate) fn parse_js_number(text: &str) -> f64 {
    let trimmed = text.trim_matches(is_js_whitespace);
    if trimmed.is_empty() {
        return 0.0;
    }
    let bytes = trimmed.as_bytes();
    if bytes.len() >= 2 && bytes[0] == b'0' {
        let radix = match bytes[1] {
            b'x' | b'X' => Some(16),
            b'o' | b'O' => Some(8),
            b'b' | b'B' => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            return parse_radix_integer(&trimmed[2..], radix);
        }
    }
    parse_decimal(trimmed)
}

/// Parses `[+-]` followed by `Infinity` or a decimal literal; NaN when the text is anything else.
fn parse_decimal(text: &str) -> f64 {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if unsigned == "Infinity" {
        return if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    // The grammar was checked above, so Rust's correctly rounded parser sees only inputs on
    // which it agrees with JavaScript.
    text.parse::<f64>().unwrap_or(f64::NAN)
}

/// `digits [. digits] [e [+-] digits]` or `. digits [e ...]`, with at least one mantissa digit.
fn is_decimal_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut index = 0;
    let integer_digits = count_digits(&bytes[index..]);
    index += integer_digits;
    let mut fraction_digits = 0;
    if bytes.get(index) == Some(&b'.') {
        index += 1;
        fraction_digits = count_digits(&bytes[index..]);
        index += fraction_digits;
    }
    if integer_digits == 0 && fraction_digits == 0 {
        return false;
    }
    if matches!(bytes.get(index), Some(b'e' | b'E')) {
        index += 1;
        if matches!(bytes.get(index), Some(b'+' | b'-')) {
            index += 1;
        }
        let exponent_digits = count_digits(&bytes[index..]);
        if exponent_digits == 0 {
            return false;
        }
        index += exponent_digits;
    }
    index == bytes.len()
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Parses the digits of a `0x`, `0o` or `0b` literal, rounding to the nearest double like
/// JavaScript does for integers wider than 53 bits.
fn parse_radix_integer(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let bits_per_digit = radix.trailing_zeros();
    let mut accumulator: u128 = 0;
    let mut dropped_bits: i32 = 0;
    let mut dropped_nonzero = false;
    for c in digits.chars() {
        let Some(digit) = c.to_digit(radix) else {
            return f64::NAN;
        };
        if accumulator >> (128 - bits_per_digit) == 0 {
            accumulator = (accumulator << bits_per_digit) | u128::from(digit);
        } else {
            // Only 53 bits survive anyway; remember the rest as a count and a sticky bit so
            // that rounding still sees whether the dropped tail was zero.
            dropped_bits = dropped_bits.saturating_add(bits_per_digit as i32);
            dropped_nonzero |= digit != 0;
        }
    }
    if dropped_nonzero {
        accumulator |= 1;
    }
    let mut value = accumulator as f64;
    let mut remaining = dropped_bits;
    // Multiplying by powers of two is exact until the result overflows to infinity.
    while remaining > 0 && value.is_finite() {
        let step = remaining.min(512);
        value *= 2f64.powi(step);
        remaining -= step;
    }
    value
}

/// JavaScript's `Number.prototype.toString()`: the shortest digits that round-trip, in plain
/// notation for magnitudes in `[1e-7, 1e21)` and exponent notation (`1e+21`, `1.5e-7`) outside.
pub(crate) fn js_number_to_string(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // `{:e}` yields the shortest round-trip digits as `d.ddde±x`; only the layout differs.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i64;
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        let mut text = digits;
        text.extend(std::iter::repeat_n('0', (n - k) as usize));
        text
    } else if 0 < n && n <= 21 {
        let (integer, fraction) = digits.split_at(n as usize);
        format!("{integer}.{fraction}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exponent = n - 1;
        let exponent_sign = if exponent >= 0 { '+' } else { '-' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{exponent_sign}{}", exponent.abs())
        } else {
            format!("{first}.{rest}e{exponent_sign}{}", exponent.abs())
        }
    };
    format!("{sign}{body}")
}

/// The string a number becomes when an expression coerces it (format, join, interpolation,
/// object keys): GitHub rounds to 15 decimals first, so `0.1 + 0.2`-style noise and digits
/// beyond double precision never show, then prints like JavaScript.
pub(crate) fn coerce_number_to_string(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() || value.abs() >= 1e21 {
        // `toFixed` falls back to `toString` here, and parsing that back is the identity.
        return js_number_to_string(value);
    }
    let fixed = to_fixed_15(value);
    let rounded = fixed.parse::<f64>().unwrap_or(value);
    js_number_to_string(rounded)
}

/// JavaScript's `value.toFixed(15)` for finite values below 1e21.
fn to_fixed_15(value: f64) -> String {
    let magnitude = value.abs();
    let sign = if value < 0.0 { "-" } else { "" };
    // Rust rounds exact halfway cases to even while `toFixed` rounds them away from zero. A
    // double is exactly halfway at the 16th decimal only when its lowest set bit is 2^-16
    // (its decimal expansion then has exactly 16 digits, the last being 5).
    let scaled = magnitude * 65536.0;
    if scaled.fract() == 0.0 && scaled % 2.0 == 1.0 {
        let exact = format!("{magnitude:.16}");
        let truncated = &exact[..exact.len() - 1];
        return format!("{sign}{}", increment_last_decimal_digit(truncated));
    }
    format!("{sign}{magnitude:.15}")
}

/// Adds one unit in the last place to a plain decimal string such as `"0.000015258789062"`.
fn increment_last_decimal_digit(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut index = bytes.len();
    while index > 0 {
        index -= 1;
        match bytes[index] {
            b'.' => continue,
            b'9' => bytes[index] = b'0',
            digit => {
                bytes[index] = digit + 1;
                return String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    let mut carried = String::from("1");
    carried.push_str(&String::from_utf8_lossy(&bytes));
    carried
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(text: &str, expected: f64) {
        let actual = parse_js_number(text);
        if expected.is_nan() {
            assert!(actual.is_nan(), "{text:?} should be NaN, got {actual}");
        } else {
            assert_eq!(actual, expected, "parsing {text:?}");
            assert_eq!(
                actual.is_sign_negative(),
                expected.is_sign_negative(),
                "sign of {text:?}"
            );
        }
    }

    #[test]
    fn parses_like_javascript_number() {
        check_parse("", 0.0);
        check_parse("   ", 0.0);
        check_parse(" 12 ", 12.0);
        check_parse("\u{FEFF}7", 7.0);
        check_parse("\u{85}7", f64::NAN);
        check_parse("-0", -0.0);
        check_parse("+.5", 0.5);
        check_parse("5.", 5.0);
        check_parse(".", f64::NAN);
        check_parse("1e", f64::NAN);
        check_parse("1e+", f64::NAN);
        check_parse("1E-2", 0.01);
        check_parse("0x1F", 31.0);
        check_parse("0X1f", 31.0);
        check_parse("0o17", 15.0);
        check_parse("0b101", 5.0);
        check_parse("0x", f64::NAN);
        check_parse("-0x10", f64::NAN);
        check_parse("0x1g", f64::NAN);
        check_parse("Infinity", f64::INFINITY);
        check_parse("-Infinity", f64::NEG_INFINITY);
        check_parse("infinity", f64::NAN);
        check_parse("inf", f64::NAN);
        check_parse("NaN", f64::NAN);
        check_parse("1_000", f64::NAN);
        check_parse("1e400", f64::INFINITY);
        check_parse("0x20000000000001", 9007199254740992.0);
        check_parse("0x20000000000003", 9007199254740996.0);
        check_parse(&format!("0x{}", "f".repeat(300)), f64::INFINITY);
    }

    fn check_to_string(value: f64, expected: &str) {
        assert_eq!(
            js_number_to_string(value),
            expected,
            "toString of {value:e}"
        );
    }

    #[test]
    fn prints_like_javascript_to_string() {
        check_to_string(0.0, "0");
        check_to_string(-0.0, "0");
        check_to_string(1.0, "1");
        check_to_string(-1.5, "-1.5");
        check_to_string(123456789.0, "123456789");
        check_to_string(1e21, "1e+21");
        check_to_string(1.5e21, "1.5e+21");
        check_to_string(123456789012345680000.0, "123456789012345680000");
        check_to_string(1e-7, "1e-7");
        check_to_string(1.5e-7, "1.5e-7");
        check_to_string(0.000001, "0.000001");
        check_to_string(0.1 + 0.2, "0.30000000000000004");
        check_to_string(f64::NAN, "NaN");
        check_to_string(f64::NEG_INFINITY, "-Infinity");
        check_to_string(5e-324, "5e-324");
        check_to_string(f64::MAX, "1.7976931348623157e+308");
    }

    fn check_coerce(value: f64, expected: &str) {
        assert_eq!(
            coerce_number_to_string(value),
            expected,
            "coercing {value:e}"
        );
    }

    #[test]
    fn coerces_with_fifteen_decimals() {
        check_coerce(0.1 + 0.2, "0.3");
        check_coerce(0.845_512_408_225_570_1, "0.84551240822557");
        check_coerce(123456.789, "123456.789");
        check_coerce(-0.0, "0");
        check_coerce(1e-7, "1e-7");
        check_coerce(1e-16, "0");
        check_coerce(-1e-16, "0");
        check_coerce(6e-16, "1e-15");
        check_coerce(1e21, "1e+21");
        check_coerce(2f64.powi(-16), "0.000015258789063");
        check_coerce(-(2f64.powi(-16)), "-0.000015258789063");
        check_coerce(3.0 * 2f64.powi(-16), "0.000045776367188");
        check_coerce(f64::INFINITY, "Infinity");
        check_coerce(f64::NAN, "NaN");
        check_coerce(9007199254740993.0, "9007199254740992");
    }
}
