//! The expression language's `==`, which GitHub uses to match include/exclude entries.
//!
//! It is JavaScript's abstract equality with two changes: strings compare case-insensitively
//! and arrays/objects are never coerced (they equal only themselves, so never a literal).
//! Mixed scalar types are compared as numbers: `'14' == 14`, `null == false`, `'' == 0`.
//!
//! This mirrors the coercion rules of the expression evaluator; it lives here because matching
//! happens on plain JSON values with no expression to parse.

use serde_json::Value;

/// A value reduced to what the comparison looks at.
#[derive(Clone, Copy)]
enum Operand<'a> {
    Null,
    Boolean(bool),
    Number(f64),
    String(&'a str),
    /// An array or object: equal to nothing but itself, and never itself here.
    Collection,
}

impl<'a> Operand<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            None | Some(Value::Null) => Self::Null,
            Some(Value::Bool(b)) => Self::Boolean(*b),
            // serde_json numbers are always finite; `as_f64` only fails for arbitrary precision.
            Some(Value::Number(n)) => Self::Number(n.as_f64().unwrap_or(f64::NAN)),
            Some(Value::String(s)) => Self::String(s),
            Some(Value::Array(_) | Value::Object(_)) => Self::Collection,
        }
    }

    fn to_number(self) -> f64 {
        match self {
            Self::Null => 0.0,
            Self::Boolean(b) => f64::from(u8::from(b)),
            Self::Number(n) => n,
            Self::String(s) => parse_number(s),
            Self::Collection => f64::NAN,
        }
    }
}

/// `left == right` in the expression language; a missing `left` is `null`.
pub(super) fn expression_equals(left: Option<&Value>, right: &Value) -> bool {
    let (mut left, mut right) = (Operand::of(left), Operand::of(Some(right)));
    // Coerce until both sides have the same kind or no rule applies; at most two rounds, as a
    // boolean/null side becomes a number and a number/string pair becomes two numbers.
    loop {
        match (left, right) {
            (Operand::Null, Operand::Null) => return true,
            (Operand::Boolean(l), Operand::Boolean(r)) => return l == r,
            // NaN is unequal to everything, which `f64`'s `==` already does.
            (Operand::Number(l), Operand::Number(r)) => return l == r,
            (Operand::String(l), Operand::String(r)) => return eq_ignore_case(l, r),
            (Operand::Number(_), Operand::String(s)) => right = Operand::Number(parse_number(s)),
            (Operand::String(s), Operand::Number(_)) => left = Operand::Number(parse_number(s)),
            (Operand::Boolean(_) | Operand::Null, _) => left = Operand::Number(left.to_number()),
            (_, Operand::Boolean(_) | Operand::Null) => right = Operand::Number(right.to_number()),
            _ => return false,
        }
    }
}

/// Case-insensitive string equality, as .NET's `OrdinalIgnoreCase`: characters are compared
/// after simple (one-to-one) upper-casing.
pub(super) fn eq_ignore_case(left: &str, right: &str) -> bool {
    left.chars()
        .map(simple_upper)
        .eq(right.chars().map(simple_upper))
}

fn simple_upper(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        // Characters whose upper case is several characters (`ß`) fold to themselves.
        _ => c,
    }
}

/// A string as a number, following JavaScript's `Number()` as the expression language does:
/// blank is 0, decimal with optional sign/fraction/exponent, `0x`/`0o` integers of up to 32
/// bits, `Infinity`/`-Infinity`; anything else is NaN.
pub(super) fn parse_number(text: &str) -> f64 {
    let text = text.trim();
    if text.is_empty() {
        return 0.0;
    }
    if is_decimal(text) {
        return text.parse().unwrap_or(f64::NAN);
    }
    if let Some(digits) = text.strip_prefix("0x") {
        return radix_integer(digits, 16);
    }
    if let Some(digits) = text.strip_prefix("0o") {
        return radix_integer(digits, 8);
    }
    match text {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?` — checked by hand because
/// Rust's float parser also accepts `inf` and `NaN`, which JavaScript's `Number()` does not.
fn is_decimal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = |at: &mut usize| {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    };
    let mut mantissa_digits = digits(&mut at);
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        mantissa_digits += digits(&mut at);
    }
    if mantissa_digits == 0 {
        return false;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        at += usize::from(matches!(bytes.get(at), Some(b'+' | b'-')));
        if digits(&mut at) == 0 {
            return false;
        }
    }
    at == bytes.len()
}

/// A hexadecimal or octal integer as .NET reads it into a 32-bit signed integer: the bits of
/// values up to `u32::MAX` are kept (so `0xFFFFFFFF` is -1); larger values are NaN.
fn radix_integer(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return f64::NAN;
    }
    match u32::from_str_radix(digits, radix) {
        Ok(bits) => f64::from(i32::from_ne_bytes(bits.to_ne_bytes())),
        Err(_) => f64::NAN,
    }
}
