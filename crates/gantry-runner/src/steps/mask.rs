//! Masking: every secret and every value added with `::add-mask::` is replaced by `***` in
//! each log line, annotation and summary before it leaves the runner.
//!
//! Masking works line by line, as GitHub's does: a value with line breaks is registered as a
//! whole and line by line, so each of its lines is masked wherever it appears. A value split
//! across two log lines by the program (or by the line-length cap) cannot be recognised.

use std::borrow::Cow;

/// What replaces a masked value.
pub const MASK: &str = "***";

/// The set of values to hide.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a value that contains another is replaced whole.
    values: Vec<String>,
}

impl Masker {
    /// A masker hiding nothing yet.
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Hides `value` from now on (and each of its lines when it has several). Empty values
    /// and whitespace are ignored: masking them would mask every line.
    pub fn add(&mut self, value: &str) {
        let mut add_one = |candidate: &str| {
            let candidate = candidate.trim_end_matches('\r');
            if candidate.trim().is_empty() || self.values.iter().any(|known| known == candidate) {
                return;
            }
            self.values.push(candidate.to_owned());
        };
        add_one(value);
        if value.contains('\n') {
            value.split('\n').for_each(add_one);
        }
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Whether anything is masked.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every occurrence of a masked value replaced by [`MASK`]. Overlapping
    /// occurrences are merged into one mask so no part of any value survives.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for value in &self.values {
            let mut from = 0;
            while let Some(found) = text[from..].find(value.as_str()) {
                let start = from + found;
                spans.push((start, start + value.len()));
                // Step one character, not the whole value, so overlapping occurrences are
                // found too.
                let step = text[start..].chars().next().map_or(1, char::len_utf8);
                from = start + step;
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut masked = String::with_capacity(text.len());
        let mut written = 0;
        let mut current: Option<(usize, usize)> = None;
        for (start, end) in spans {
            match current {
                Some((_, current_end)) if start <= current_end => {
                    if let Some(span) = current.as_mut() {
                        span.1 = span.1.max(end);
                    }
                }
                _ => {
                    if let Some((span_start, span_end)) = current {
                        masked.push_str(&text[written..span_start]);
                        masked.push_str(MASK);
                        written = span_end;
                    }
                    current = Some((start, end));
                }
            }
        }
        if let Some((span_start, span_end)) = current {
            masked.push_str(&text[written..span_start]);
            masked.push_str(MASK);
            written = span_end;
        }
        masked.push_str(&text[written..]);
        Cow::Owned(masked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_are_replaced_longest_first_and_overlaps_merge() {
        let mut masker = Masker::new();
        masker.add("abc");
        masker.add("abcdef");
        masker.add("");
        masker.add("  ");
        assert_eq!(masker.mask("x abcdef y abc"), "x *** y ***");
        let mut overlap = Masker::new();
        overlap.add("aba");
        assert_eq!(overlap.mask("ababa!"), "***!");
        assert_eq!(overlap.mask("nothing"), "nothing");
    }

    #[test]
    fn each_line_of_a_multi_line_value_is_masked() {
        let mut masker = Masker::new();
        masker.add("first-line\nsecond-line\n");
        assert_eq!(masker.mask("got first-line"), "got ***");
        assert_eq!(masker.mask("second-line!"), "***!");
    }

    proptest! {
        #[test]
        fn a_masked_value_never_appears_in_output(
            secrets in proptest::collection::vec("[a-z0-9]{2,10}", 1..4),
            pieces in proptest::collection::vec("[a-z0-9 \\n]{0,20}", 0..8),
        ) {
            let mut masker = Masker::new();
            for secret in &secrets {
                masker.add(secret);
            }
            // Weave the secrets between random pieces, then cut the text into lines.
            let mut text = String::new();
            for (index, piece) in pieces.iter().enumerate() {
                text.push_str(piece);
                text.push_str(&secrets[index % secrets.len()]);
            }
            for line in text.split('\n') {
                let masked = masker.mask(line);
                for secret in &secrets {
                    prop_assert!(!masked.contains(secret.as_str()), "{secret} in {masked}");
                }
            }
        }

        #[test]
        fn lines_of_a_multi_line_secret_are_masked_in_any_line(
            lines in proptest::collection::vec("[a-z]{3,8}", 2..4),
            prefix in "[A-Z ]{0,5}",
            suffix in "[A-Z ]{0,5}",
        ) {
            let mut masker = Masker::new();
            masker.add(&lines.join("\n"));
            for line in &lines {
                let masked = masker.mask(&format!("{prefix}{line}{suffix}")).into_owned();
                for secret_line in &lines {
                    prop_assert!(!masked.contains(secret_line.as_str()));
                }
            }
        }
    }
}
