//! One filter pattern: parsing GitHub's syntax, reporting broken patterns with the character
//! at fault, and translating the pattern to an anchored regular expression.
//!
//! The translation emits exactly one regex unit (an escaped character or a `[...]` class) for
//! every character or class of the pattern, so a following `?` or `+` can be copied to the
//! regex unchanged and still applies to "the preceding character", as GitHub specifies.

use std::fmt;

use std::sync::{Arc, OnceLock};

use regex::{Regex, RegexBuilder};

/// Upper bound on the compiled size of one pattern's regex, in bytes.
///
/// Real patterns are a few dozen characters; the bound keeps a hostile workflow file from making
/// the server build a huge automaton, and still fits patterns thousands of characters long.
const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// Longest accepted pattern, in characters; real filters are a few dozen.
const MAX_PATTERN_CHARS: usize = 1000;

/// Characters that a `\` turns into literals. A `\` before anything else is itself a literal,
/// because file paths may contain a backslash (this is also what actionlint accepts).
const ESCAPABLE: [char; 6] = ['[', '?', '*', '+', '\\', '!'];

/// A parsed branch, tag or path filter pattern, ready to match.
///
/// [`FilterPattern::matches`] reports whether the pattern *body* (without a leading `!`) matches
/// a value; what a match means for a negated pattern is decided by
/// [`matches_filters`](super::matches_filters), which evaluates a whole list in order.
#[derive(Clone)]
pub struct FilterPattern {
    source: String,
    negated: bool,
    /// The translated regex source; compiled on first use, because most loaded workflows are
    /// only validated and compiling every pattern up front dominated loading time.
    translated: String,
    /// Shared by clones: a workflow kept loaded between events is used through copies, and
    /// compiling in a copy of its own cost every webhook event its regexes again (15 % of
    /// `gantry bench triggers`).
    regex: Arc<OnceLock<Option<Regex>>>,
}

impl FilterPattern {
    /// Parses one pattern as written in the workflow file, a leading `!` included.
    ///
    /// # Errors
    ///
    /// Returns a [`FilterError`] naming the problem and the character at fault when the pattern
    /// is empty, is a lone `!`, uses `?`/`+` with nothing repeatable before it, has an empty,
    /// unclosed or malformed `[...]` class, contains a line break, or is too large to compile.
    pub fn parse(pattern: &str) -> Result<FilterPattern, FilterError> {
        // Bounding the length keeps the lazily compiled regex far below its size limit.
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(FilterError::new(pattern, 0, FilterErrorKind::TooComplex));
        }
        let translated = Translator::new(pattern).translate()?;
        Ok(FilterPattern {
            source: pattern.to_owned(),
            negated: translated.negated,
            translated: translated.regex,
            regex: Arc::default(),
        })
    }

    /// Whether the translated regex compiles; the translator guarantees it and tests check it.
    #[cfg(test)]
    pub(crate) fn compiles(&self) -> bool {
        self.regex().is_some()
    }

    /// Whether the regex has been compiled (by this pattern or a clone of it).
    #[cfg(test)]
    pub(crate) fn is_compiled(&self) -> bool {
        self.regex.get().is_some()
    }

    /// The compiled regex; `None` only if the translation produced a regex that does not
    /// compile, which the translator rules out and the tests check.
    fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| {
                RegexBuilder::new(&self.translated)
                    .size_limit(COMPILED_SIZE_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// Whether the pattern body matches the whole of `value`, ignoring a leading `!`.
    ///
    /// For `!README.md` this is true for `README.md`: the pattern matches it, and being negated
    /// means that the match excludes the value.
    pub fn matches(&self, value: &str) -> bool {
        self.regex().is_some_and(|regex| regex.is_match(value))
    }

    /// Whether the pattern starts with `!`, so that a value it matches is excluded.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The pattern as written, a leading `!` included.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The regex is derived from the source; printing it too would only add noise.
        f.debug_tuple("FilterPattern").field(&self.source).finish()
    }
}

impl fmt::Display for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for FilterPattern {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is computed from the source.
        self.source == other.source
    }
}

impl Eq for FilterPattern {}

impl std::str::FromStr for FilterPattern {
    type Err = FilterError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        FilterPattern::parse(pattern)
    }
}

/// A pattern that [`FilterPattern::parse`] rejected: the pattern, the character at fault and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern {pattern:?}: {kind}{}", at_character(.column))]
pub struct FilterError {
    pattern: String,
    column: usize,
    kind: FilterErrorKind,
}

fn at_character(column: &usize) -> String {
    match column {
        0 => String::new(),
        column => format!(" (character {column})"),
    }
}

impl FilterError {
    fn new(pattern: &str, column: usize, kind: FilterErrorKind) -> FilterError {
        FilterError {
            pattern: pattern.to_owned(),
            column,
            kind,
        }
    }

    /// The rejected pattern, as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The 1-based position, in characters, of the character at fault in the pattern, or 0
    /// when the problem is the pattern as a whole (empty, or too large to compile).
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong with the pattern.
    pub fn kind(&self) -> &FilterErrorKind {
        &self.kind
    }
}

/// The ways a filter pattern can be broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// The pattern is the empty string.
    #[error("a pattern cannot be empty")]
    Empty,
    /// The pattern is `!` alone.
    #[error("`!` must be followed by a pattern")]
    LoneNegation,
    /// `?` or `+` has no character or class before it to repeat.
    #[error(
        "`{quantifier}` repeats the preceding character, but no plain character or `[...]` \
         comes before it; write `\\{quantifier}` to match it literally"
    )]
    QuantifierWithoutOperand {
        /// The `?` or `+` at fault.
        quantifier: char,
    },
    /// `[]` lists no character.
    #[error("`[]` must list at least one character")]
    EmptyClass,
    /// A `[` has no matching `]`.
    #[error("`[` is never closed with `]`")]
    UnclosedClass,
    /// A range in a class ends with `-]`.
    #[error("a range in `[...]` has no end character")]
    RangeWithoutEnd,
    /// A range in a class starts after it ends, like `[9-0]`.
    #[error("the range `{start}-{end}` in `[...]` runs backwards")]
    ReversedRange {
        /// The first character of the range.
        start: char,
        /// The last character of the range.
        end: char,
    },
    /// The pattern contains a line feed or carriage return.
    #[error("a pattern cannot contain a line break")]
    LineBreak,
    /// The translated regex exceeds the compiled-size limit.
    #[error("the pattern is too long (at most 1000 characters)")]
    TooComplex,
}

/// The outcome of translating one pattern.
struct Translated {
    negated: bool,
    regex: String,
}

/// Walks the characters of one pattern and builds the equivalent regex.
struct Translator<'a> {
    pattern: &'a str,
    chars: Vec<char>,
    /// Index in `chars` of the first character after a leading `!`.
    body_start: usize,
    regex: String,
    /// Whether the last unit emitted is a single character or class that a following `?` or
    /// `+` may repeat. Wildcards, quantifiers and the start of the pattern are not.
    repeatable: bool,
}

impl<'a> Translator<'a> {
    fn new(pattern: &'a str) -> Translator<'a> {
        Translator {
            pattern,
            chars: pattern.chars().collect(),
            body_start: 0,
            // `(?s)` lets `.` (from `**`) match a line feed too, which a file name may contain.
            regex: String::from("(?s)^"),
            repeatable: false,
        }
    }

    fn error(&self, index: usize, kind: FilterErrorKind) -> FilterError {
        FilterError::new(self.pattern, index + 1, kind)
    }

    fn translate(mut self) -> Result<Translated, FilterError> {
        if self.chars.is_empty() {
            return Err(FilterError::new(self.pattern, 0, FilterErrorKind::Empty));
        }
        // Workflow values come from YAML, where a block scalar can smuggle in a line break;
        // GitHub names never contain one, so it can only be a mistake.
        if let Some(index) = self.chars.iter().position(|&c| c == '\n' || c == '\r') {
            return Err(self.error(index, FilterErrorKind::LineBreak));
        }
        let negated = self.chars.first() == Some(&'!');
        if negated {
            if self.chars.len() == 1 {
                return Err(self.error(0, FilterErrorKind::LoneNegation));
            }
            self.body_start = 1;
        }

        let mut index = self.body_start;
        while let Some(&c) = self.chars.get(index) {
            index = match c {
                '\\' => self.escape(index),
                '*' => self.star(index),
                '?' | '+' => self.quantifier(index, c)?,
                '[' => self.class(index)?,
                other => {
                    self.literal(other);
                    index + 1
                }
            };
        }
        self.regex.push('$');
        Ok(Translated {
            negated,
            regex: self.regex,
        })
    }

    /// Emits one literal character as a single regex unit.
    fn literal(&mut self, c: char) {
        push_escaped(&mut self.regex, c);
        self.repeatable = true;
    }

    /// Handles a `\` at `index` and returns the index after what it consumed.
    fn escape(&mut self, index: usize) -> usize {
        match self.chars.get(index + 1) {
            Some(&escaped) if ESCAPABLE.contains(&escaped) => {
                self.literal(escaped);
                index + 2
            }
            _ => {
                self.literal('\\');
                index + 1
            }
        }
    }

    /// Handles `*` or `**` at `index` and returns the index after what it consumed.
    fn star(&mut self, index: usize) -> usize {
        self.repeatable = false;
        if self.chars.get(index + 1) != Some(&'*') {
            self.regex.push_str("[^/]*");
            return index + 1;
        }
        // A `**` that is a whole path component followed by `/` may also stand for no directory
        // at all: GitHub's examples have `**/README.md` match `README.md` and `docs/**/*.md`
        // match `docs/README.md`. Elsewhere (`**.js`, `docs/**`, `a**/b`) it is any text.
        let starts_component = index == self.body_start || self.chars.get(index - 1) == Some(&'/');
        if starts_component && self.chars.get(index + 2) == Some(&'/') {
            self.regex.push_str("(?:.*/)?");
            index + 3
        } else {
            self.regex.push_str(".*");
            index + 2
        }
    }

    /// Handles `?` or `+` at `index` and returns the index after it.
    fn quantifier(&mut self, index: usize, quantifier: char) -> Result<usize, FilterError> {
        if !self.repeatable {
            return Err(self.error(
                index,
                FilterErrorKind::QuantifierWithoutOperand { quantifier },
            ));
        }
        // The previous unit is one character or one class, so the regex quantifier means
        // exactly what GitHub's does. It is not repeatable again: `a??` and `a+?` are errors,
        // as in actionlint, rather than regex's lazy quantifiers.
        self.regex.push(quantifier);
        self.repeatable = false;
        Ok(index + 1)
    }

    /// Handles a `[...]` class opening at `open` and returns the index after its `]`.
    ///
    /// Inside a class every character is literal except `]`, which closes it, and `-` between
    /// two characters, which makes a range; `\` does not escape there.
    fn class(&mut self, open: usize) -> Result<usize, FilterError> {
        let mut index = open + 1;
        if self.chars.get(index) == Some(&']') {
            return Err(self.error(index, FilterErrorKind::EmptyClass));
        }
        let mut class = String::from("[");
        loop {
            let Some(&c) = self.chars.get(index) else {
                return Err(self.error(open, FilterErrorKind::UnclosedClass));
            };
            if c == ']' {
                break;
            }
            if self.chars.get(index + 1) != Some(&'-') {
                push_escaped(&mut class, c);
                index += 1;
                continue;
            }
            match self.chars.get(index + 2) {
                None => return Err(self.error(open, FilterErrorKind::UnclosedClass)),
                Some(']') => return Err(self.error(index + 2, FilterErrorKind::RangeWithoutEnd)),
                Some(&end) if c > end => {
                    return Err(
                        self.error(index + 2, FilterErrorKind::ReversedRange { start: c, end })
                    );
                }
                Some(&end) => {
                    push_escaped(&mut class, c);
                    class.push('-');
                    push_escaped(&mut class, end);
                    index += 3;
                }
            }
        }
        class.push(']');
        self.regex.push_str(&class);
        self.repeatable = true;
        Ok(index + 1)
    }
}

/// Appends `c` so that the regex reads it literally, both outside and inside a `[...]` class
/// (the regex crate accepts an escaped metacharacter in either place).
fn push_escaped(regex: &mut String, c: char) {
    let mut buffer = [0; 4];
    regex.push_str(&regex::escape(c.encode_utf8(&mut buffer)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the regex a pattern translates to.
    fn check_translation(pattern: &str, expect: &str) {
        let translated = Translator::new(pattern).translate().unwrap();
        assert_eq!(translated.regex, expect, "pattern {pattern:?}");
    }

    /// Checks that a pattern is rejected with `kind` at `column`.
    fn check_error(pattern: &str, column: usize, kind: FilterErrorKind) {
        let error = FilterPattern::parse(pattern).unwrap_err();
        assert_eq!(
            (error.column(), error.kind()),
            (column, &kind),
            "pattern {pattern:?}: {error}"
        );
    }

    #[test]
    fn translations() {
        check_translation("main", "(?s)^main$");
        check_translation("feature/*", "(?s)^feature/[^/]*$");
        check_translation("docs/**", "(?s)^docs/.*$");
        check_translation("**/README.md", r"(?s)^(?:.*/)?README\.md$");
        check_translation("docs/**/*.md", r"(?s)^docs/(?:.*/)?[^/]*\.md$");
        check_translation("a**/b", "(?s)^a.*/b$");
        check_translation("**.js", r"(?s)^.*\.js$");
        check_translation("*.jsx?", r"(?s)^[^/]*\.jsx?$");
        check_translation("v[12].[0-9]+", r"(?s)^v[12]\.[0-9]+$");
        check_translation("!**/*.md", r"(?s)^(?:.*/)?[^/]*\.md$");
        check_translation(r"a\*b\?\+\[\\\!", r"(?s)^a\*b\?\+\[\\!$");
        check_translation(r"foo\bar", r"(?s)^foo\\bar$");
        check_translation(r"end\", r"(?s)^end\\$");
        check_translation("[-a-c^]", r"(?s)^[\-a-c\^]$");
        check_translation("a!b", "(?s)^a!b$");
        check_translation("!!x", "(?s)^!x$");
        check_translation("[x]+", "(?s)^[x]+$");
    }

    #[test]
    fn rejected_patterns() {
        check_error("", 0, FilterErrorKind::Empty);
        check_error("!", 1, FilterErrorKind::LoneNegation);
        let question = FilterErrorKind::QuantifierWithoutOperand { quantifier: '?' };
        let plus = FilterErrorKind::QuantifierWithoutOperand { quantifier: '+' };
        check_error("?foo", 1, question.clone());
        check_error("+foo", 1, plus.clone());
        check_error("!+foo", 2, plus.clone());
        check_error("v*+", 3, plus.clone());
        check_error("v**?", 4, question.clone());
        check_error("a??", 3, question.clone());
        check_error("a+?", 3, question);
        check_error("a++", 3, plus);
        check_error("v[0-", 2, FilterErrorKind::UnclosedClass);
        check_error("v[0-9", 2, FilterErrorKind::UnclosedClass);
        check_error("[", 1, FilterErrorKind::UnclosedClass);
        check_error("a[]", 3, FilterErrorKind::EmptyClass);
        check_error("[0-]", 4, FilterErrorKind::RangeWithoutEnd);
        let reversed = FilterErrorKind::ReversedRange {
            start: '9',
            end: '0',
        };
        check_error("v[9-0]", 5, reversed);
        check_error("foo\nbar", 4, FilterErrorKind::LineBreak);
        check_error("foo\r", 4, FilterErrorKind::LineBreak);
    }

    #[test]
    fn accepted_edge_cases() {
        // Quantifiers after an escaped character or a class are fine; `!` after the first
        // character and `]` outside a class are literals.
        for pattern in [r"\*+", r"\??", "[ab]?", "a!", "]", "a]b", "[x]", "*", "**"] {
            FilterPattern::parse(pattern).unwrap();
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let error = FilterPattern::parse("v[9-0]").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid filter pattern \"v[9-0]\": the range `9-0` in `[...]` runs backwards \
             (character 5)"
        );
        let error = FilterPattern::parse("").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid filter pattern \"\": a pattern cannot be empty"
        );
        let error = FilterPattern::parse("*+").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid filter pattern \"*+\": `+` repeats the preceding character, but no plain \
             character or `[...]` comes before it; write `\\+` to match it literally (character 2)"
        );
    }

    #[test]
    fn too_large_patterns_are_errors() {
        let pattern = "[a-z]+".repeat(50_000);
        let error = FilterPattern::parse(&pattern).unwrap_err();
        assert_eq!(error.kind(), &FilterErrorKind::TooComplex);
    }

    #[test]
    fn the_longest_accepted_patterns_compile() {
        for body in ["[a-z]+", "**/", "a?", "\\*"] {
            let pattern = body.repeat(1000 / body.len());
            let parsed = FilterPattern::parse(&pattern).unwrap();
            assert!(parsed.regex().is_some(), "{pattern} did not compile");
        }
    }
}
