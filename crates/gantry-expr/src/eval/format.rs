//! The `format` function.
//!
//! `{N}` inserts argument N (counted after the format string) as a coerced string, `{{` and
//! `}}` are literal braces, and anything else with a brace is "The following format string is
//! invalid". An index past the last argument is "references more arguments than were
//! supplied". `{N:spec}` is accepted by the grammar but, as on GitHub, no value here takes
//! format specifiers. Only the arguments the string refers to are evaluated, each once, after the
//! whole string has been checked, as GitHub's engine does.

/// One piece of a checked format string.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Segment<'f> {
    Literal(&'f str),
    /// A literal brace from `{{` or `}}`.
    Brace(char),
    Argument {
        index: usize,
        specifiers: Option<String>,
    },
}

/// Why a format string was rejected; the message quotes the whole string.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FormatError {
    Invalid,
    TooFewArguments,
}

impl FormatError {
    pub(crate) fn message(&self, format: &str) -> String {
        match self {
            FormatError::Invalid => format!("The following format string is invalid: {format}"),
            FormatError::TooFewArguments => format!(
                "The following format string references more arguments than were supplied: {format}"
            ),
        }
    }
}

/// Splits `format` into segments, given how many arguments follow it.
pub(crate) fn parse_format(
    format: &str,
    argument_count: usize,
) -> Result<Vec<Segment<'_>>, FormatError> {
    let bytes = format.as_bytes();
    let mut segments = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let left = find(bytes, b'{', index);
        let right = find(bytes, b'}', index);
        match (left, right) {
            (Some(left), right) if right.is_none_or(|right| right > left) => {
                if bytes.get(left + 1) == Some(&b'{') {
                    push_literal(&mut segments, &format[index..left]);
                    segments.push(Segment::Brace('{'));
                    index = left + 2;
                    continue;
                }
                let Some((argument, specifiers, closing)) = read_argument(format, left + 1) else {
                    return Err(FormatError::Invalid);
                };
                if argument >= argument_count {
                    return Err(FormatError::TooFewArguments);
                }
                push_literal(&mut segments, &format[index..left]);
                segments.push(Segment::Argument {
                    index: argument,
                    specifiers,
                });
                index = closing + 1;
            }
            (_, Some(right)) => {
                if bytes.get(right + 1) != Some(&b'}') {
                    return Err(FormatError::Invalid);
                }
                push_literal(&mut segments, &format[index..right]);
                segments.push(Segment::Brace('}'));
                index = right + 2;
            }
            (_, None) => {
                push_literal(&mut segments, &format[index..]);
                break;
            }
        }
    }
    Ok(segments)
}

fn find(bytes: &[u8], needle: u8, from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|offset| from + offset)
}

fn push_literal<'f>(segments: &mut Vec<Segment<'f>>, text: &'f str) {
    if !text.is_empty() {
        segments.push(Segment::Literal(text));
    }
}

/// Reads `N}` or `N:specifiers}` starting at `start`; returns the index, the specifiers and the
/// offset of the closing brace. GitHub reads N as a byte, so 256 and above are invalid.
fn read_argument(format: &str, start: usize) -> Option<(usize, Option<String>, usize)> {
    let bytes = format.as_bytes();
    let digits = bytes
        .get(start..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let index: u8 = format.get(start..start + digits)?.parse().ok()?;
    let after = start + digits;
    match bytes.get(after) {
        Some(b'}') => Some((usize::from(index), None, after)),
        Some(b':') => {
            let mut specifiers = String::new();
            let mut position = after + 1;
            loop {
                match bytes.get(position) {
                    None => return None,
                    Some(b'}') if bytes.get(position + 1) == Some(&b'}') => {
                        specifiers.push('}');
                        position += 2;
                    }
                    Some(b'}') => return Some((usize::from(index), Some(specifiers), position)),
                    Some(_) => {
                        let c = format.get(position..)?.chars().next()?;
                        specifiers.push(c);
                        position += c.len_utf8();
                    }
                }
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(format: &str, count: usize, expected: Result<Vec<Segment<'_>>, FormatError>) {
        assert_eq!(parse_format(format, count), expected, "format {format:?}");
    }

    #[test]
    fn splits_format_strings() {
        use Segment::*;
        check(
            "a{0}b",
            1,
            Ok(vec![
                Literal("a"),
                Argument {
                    index: 0,
                    specifiers: None,
                },
                Literal("b"),
            ]),
        );
        check("{{0}}", 1, Ok(vec![Brace('{'), Literal("0"), Brace('}')]));
        check(
            "{0:x}",
            1,
            Ok(vec![Argument {
                index: 0,
                specifiers: Some("x".to_owned()),
            }]),
        );
        check("{1}", 1, Err(FormatError::TooFewArguments));
        check("{0", 1, Err(FormatError::Invalid));
        check("{256}", 255, Err(FormatError::Invalid));
        check("{0}}", 1, Err(FormatError::Invalid));
        check("}{0}", 1, Err(FormatError::Invalid));
        check("{a}", 1, Err(FormatError::Invalid));
        check("{0 }", 1, Err(FormatError::Invalid));
    }
}
