//! Glob patterns with the semantics of `@actions/glob`, which GitHub's `hashFiles` uses.
//!
//! One pattern per line; blank lines and lines starting with `#` are ignored; a leading `!`
//! excludes. Relative patterns are rooted at the workspace, `./` included. `*`, `?` and `[...]`
//! match within one path segment and may match a leading dot; `**` as a whole segment matches
//! any number of segments. `.` (except at the start) and `..` segments are rejected. A trailing
//! `/` matches directories only. Every pattern also matches the descendants of what it
//! matches, and later patterns override earlier ones, so `!dir` excludes everything in `dir`.

use std::path::{Component, Path, PathBuf};

use super::HashFilesError;

/// What a pattern says about a path: bit 1 directories, bit 2 files.
pub(crate) type MatchKind = u8;
pub(crate) const MATCH_DIRECTORY: MatchKind = 1;
pub(crate) const MATCH_FILE: MatchKind = 2;
const MATCH_ALL: MatchKind = MATCH_DIRECTORY | MATCH_FILE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    negate: bool,
    /// Segments of the absolute pattern, below the root `/`.
    segments: Vec<Segment>,
    /// Ended with `/`: matches directories only.
    directories_only: bool,
    /// The `/**` copy added so that a pattern matches its match's descendants; unlike a written
    /// trailing `**`, it does not match the directory itself.
    implicit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `**`.
    Globstar,
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`.
    AnyChar,
    /// `*`.
    AnyRun,
    /// `[...]`: the ranges, and whether the class was negated with `!` or `^`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Parses the pattern lines of all `hashFiles` arguments, rooted at `workspace` (absolute), and
/// adds the implicit descendant patterns.
pub(crate) fn parse_patterns(
    lines: &[String],
    workspace: &Path,
    home: Option<&Path>,
) -> Result<Vec<Pattern>, HashFilesError> {
    let mut patterns = Vec::new();
    for line in lines.iter().flat_map(|argument| argument.split('\n')) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let pattern = parse_pattern(line, workspace, home)?;
        let needs_descendants =
            pattern.directories_only || pattern.segments.last() != Some(&Segment::Globstar);
        if needs_descendants {
            let mut descendants = pattern.clone();
            descendants.segments.push(Segment::Globstar);
            descendants.directories_only = false;
            descendants.implicit = true;
            patterns.push(pattern);
            patterns.push(descendants);
        } else {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

fn parse_pattern(
    line: &str,
    workspace: &Path,
    home: Option<&Path>,
) -> Result<Pattern, HashFilesError> {
    let invalid = |reason: &str| HashFilesError::InvalidPattern {
        pattern: line.to_owned(),
        reason: reason.to_owned(),
    };
    let mut text = line;
    let mut negate = false;
    while let Some(rest) = text.strip_prefix('!') {
        negate = !negate;
        text = rest.trim();
    }
    if text.is_empty() {
        return Err(invalid("the pattern is empty"));
    }
    let written: Vec<&str> = text.split('/').filter(|part| !part.is_empty()).collect();
    for (index, part) in written.iter().enumerate() {
        let literal = literal_text(part);
        if literal.as_deref() == Some("..") || (literal.as_deref() == Some(".") && index > 0) {
            return Err(invalid(
                "relative pathing '.' and '..' is only allowed at the beginning of the pattern",
            ));
        }
    }
    let (root, relative): (Option<&Path>, &[&str]) = if text.starts_with('/') {
        (None, &written)
    } else if written.first() == Some(&".") {
        (Some(workspace), &written[1..])
    } else if written.first() == Some(&"~") {
        // `~` is the home directory; with none known, the pattern can match nothing.
        match home {
            Some(home) => (Some(home), &written[1..]),
            None => return Ok(nothing_pattern(negate)),
        }
    } else {
        (Some(workspace), &written)
    };
    let mut segments: Vec<Segment> = root
        .map(path_segments)
        .unwrap_or_default()
        .into_iter()
        .map(Segment::Literal)
        .collect();
    segments.extend(relative.iter().map(|part| parse_segment(part)));
    Ok(Pattern {
        negate,
        segments,
        directories_only: text.ends_with('/'),
        implicit: false,
    })
}

/// A pattern that matches no path (a `~` pattern when the home directory is unknown).
fn nothing_pattern(negate: bool) -> Pattern {
    Pattern {
        negate,
        segments: vec![Segment::Glob(vec![Token::Class {
            negated: false,
            ranges: Vec::new(),
        }])],
        directories_only: false,
        implicit: true,
    }
}

/// The normal components of an absolute path, as strings.
pub(crate) fn path_segments(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

impl Pattern {
    /// The literal directory before the first glob segment, where a search can start.
    pub(crate) fn search_path(&self) -> PathBuf {
        let mut path = PathBuf::from("/");
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => path.push(text),
                _ => break,
            }
        }
        path
    }

    pub(crate) fn is_negated(&self) -> bool {
        self.negate
    }

    /// How this pattern matches the absolute path whose segments are `item`.
    fn match_kind(&self, item: &[String]) -> MatchKind {
        let matched = if !self.implicit && self.segments.last() == Some(&Segment::Globstar) {
            // @actions/glob appends a `/` here so that `dir/**` also matches `dir`; the empty
            // segment is what that slash adds, and only `**` can match it.
            let mut with_slash = item.to_vec();
            with_slash.push(String::new());
            segments_match(&self.segments, &with_slash)
        } else {
            segments_match(&self.segments, item)
        };
        match (matched, self.directories_only) {
            (false, _) => 0,
            (true, true) => MATCH_DIRECTORY,
            (true, false) => MATCH_ALL,
        }
    }

    /// Whether something below the directory `item` could match.
    fn partially_matches(&self, item: &[String]) -> bool {
        for (index, segment) in self.segments.iter().enumerate() {
            if *segment == Segment::Globstar {
                return true;
            }
            match item.get(index) {
                None => return true,
                Some(name) if segment_matches(segment, name) => {}
                Some(_) => return false,
            }
        }
        item.len() <= self.segments.len()
    }
}

/// The combined verdict of all patterns on a path: later patterns override earlier ones.
pub(crate) fn match_all(patterns: &[Pattern], item: &[String]) -> MatchKind {
    let mut result = 0;
    for pattern in patterns {
        let kind = pattern.match_kind(item);
        if pattern.negate {
            result &= !kind;
        } else {
            result |= kind;
        }
    }
    result
}

/// Whether a directory is worth descending into.
pub(crate) fn worth_descending(patterns: &[Pattern], item: &[String]) -> bool {
    match_all(patterns, item) != 0
        || patterns
            .iter()
            .any(|pattern| !pattern.negate && pattern.partially_matches(item))
}

/// Matches whole paths, `**` spanning any number of segments. Like minimatch, `**` needs at
/// least one segment left to be tried at all, which is why `dir/**` does not match `dir`.
fn segments_match(pattern: &[Segment], item: &[String]) -> bool {
    // reachable[i]: the pattern prefix matched so far can end just before item segment i.
    let mut reachable = vec![false; item.len() + 1];
    reachable[0] = true;
    for segment in pattern {
        let mut next = vec![false; item.len() + 1];
        match segment {
            Segment::Globstar => {
                let mut open = false;
                for index in 0..=item.len() {
                    // `**` starts only where a segment remains, then swallows any number.
                    if index < item.len() && reachable[index] {
                        open = true;
                    }
                    next[index] = open;
                }
            }
            _ => {
                for index in 0..item.len() {
                    if reachable[index] && segment_matches(segment, &item[index]) {
                        next[index + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[item.len()]
}

fn segment_matches(segment: &Segment, name: &str) -> bool {
    match segment {
        Segment::Literal(text) => text == name,
        Segment::Globstar => true,
        // A glob never matches the empty segment a trailing slash makes.
        Segment::Glob(tokens) => !name.is_empty() && tokens_match(tokens, name),
    }
}

/// Wildcard matching within one segment, backtracking only to the last `*`.
fn tokens_match(tokens: &[Token], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let (mut token, mut index) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while index < chars.len() {
        match tokens.get(token) {
            Some(Token::AnyRun) => {
                resume = Some((token, index));
                token += 1;
                continue;
            }
            Some(single) if single_matches(single, chars[index]) => {
                token += 1;
                index += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((star, start)) => {
                token = star + 1;
                index = start + 1;
                resume = Some((star, start + 1));
            }
            None => return false,
        }
    }
    tokens[token..].iter().all(|t| *t == Token::AnyRun)
}

fn single_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Char(expected) => *expected == c,
        Token::AnyChar => true,
        Token::AnyRun => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
        }
    }
}

/// The segment's literal text when it has no wildcard, with escapes removed.
fn literal_text(part: &str) -> Option<String> {
    match parse_segment(part) {
        Segment::Literal(text) => Some(text),
        _ => None,
    }
}

fn parse_segment(part: &str) -> Segment {
    if part == "**" {
        return Segment::Globstar;
    }
    let chars: Vec<char> = part.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        match chars[index] {
            '\\' if index + 1 < chars.len() => {
                tokens.push(Token::Char(chars[index + 1]));
                index += 2;
            }
            '*' => {
                // Consecutive stars within a segment are one `*`.
                if tokens.last() != Some(&Token::AnyRun) {
                    tokens.push(Token::AnyRun);
                }
                index += 1;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                index += 1;
            }
            '[' => match parse_class(&chars, index) {
                Some((class, end)) => {
                    tokens.push(class);
                    index = end;
                }
                // An unclosed `[` is a literal bracket.
                None => {
                    tokens.push(Token::Char('['));
                    index += 1;
                }
            },
            c => {
                tokens.push(Token::Char(c));
                index += 1;
            }
        }
    }
    if tokens.iter().all(|token| matches!(token, Token::Char(_))) {
        let text = tokens
            .iter()
            .filter_map(|token| match token {
                Token::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        return Segment::Literal(text);
    }
    Segment::Glob(tokens)
}

/// Parses `[...]` starting at `start`; returns the class and the index after `]`.
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut index = start + 1;
    let negated = matches!(chars.get(index), Some('!' | '^'));
    if negated {
        index += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(index)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, index + 1));
        }
        first = false;
        if let Some((class_ranges, end)) = posix_class(chars, index) {
            ranges.extend(class_ranges);
            index = end;
            continue;
        }
        let (low, after) = class_char(chars, index)?;
        if chars.get(after) == Some(&'-') && chars.get(after + 1).is_some_and(|c| *c != ']') {
            let (high, end) = class_char(chars, after + 1)?;
            ranges.push((low, high));
            index = end;
        } else {
            ranges.push((low, low));
            index = after;
        }
    }
}

fn class_char(chars: &[char], index: usize) -> Option<(char, usize)> {
    match chars.get(index)? {
        '\\' => chars.get(index + 1).map(|c| (*c, index + 2)),
        c => Some((*c, index + 1)),
    }
}

/// `[:alpha:]` and friends inside a class, as minimatch supports them (ASCII only).
fn posix_class(chars: &[char], start: usize) -> Option<(Vec<(char, char)>, usize)> {
    let rest: String = chars.get(start..)?.iter().take(12).collect();
    let names: [(&str, &[(char, char)]); 9] = [
        ("[:alpha:]", &[('a', 'z'), ('A', 'Z')]),
        ("[:digit:]", &[('0', '9')]),
        ("[:alnum:]", &[('a', 'z'), ('A', 'Z'), ('0', '9')]),
        ("[:upper:]", &[('A', 'Z')]),
        ("[:lower:]", &[('a', 'z')]),
        ("[:space:]", &[(' ', ' '), ('\t', '\r')]),
        ("[:xdigit:]", &[('0', '9'), ('a', 'f'), ('A', 'F')]),
        (
            "[:punct:]",
            &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        ),
        (
            "[:word:]",
            &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')],
        ),
    ];
    names.iter().find_map(|(name, ranges)| {
        rest.starts_with(name)
            .then(|| (ranges.to_vec(), start + name.chars().count()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str) -> Vec<String> {
        path_segments(Path::new(path))
    }

    fn verdict(patterns: &[&str], path: &str) -> MatchKind {
        let lines: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let patterns =
            parse_patterns(&lines, Path::new("/ws"), Some(Path::new("/home/me"))).unwrap();
        match_all(&patterns, &item(path))
    }

    #[track_caller]
    fn check(patterns: &[&str], path: &str, expected: MatchKind) {
        assert_eq!(verdict(patterns, path), expected, "{patterns:?} on {path}");
    }

    #[test]
    fn matches_like_actions_glob() {
        check(&["*.txt"], "/ws/a.txt", MATCH_ALL);
        check(&["*.txt"], "/ws/sub/a.txt", 0);
        check(&["**/*.txt"], "/ws/sub/deep/a.txt", MATCH_ALL);
        check(&["**/*.txt"], "/ws/a.txt", MATCH_ALL);
        check(&["**/*.txt"], "/ws/.hidden.txt", MATCH_ALL);
        check(&["./a?.txt"], "/ws/ab.txt", MATCH_ALL);
        check(&["[ab].txt"], "/ws/b.txt", MATCH_ALL);
        check(&["[!ab].txt"], "/ws/b.txt", 0);
        check(&["[[:digit:]]x"], "/ws/7x", MATCH_ALL);
        check(&["file\\*"], "/ws/file*", MATCH_ALL);
        check(&["file\\*"], "/ws/filex", 0);
        check(&["+(a|b)"], "/ws/+(a|b)", MATCH_ALL);
        check(&["{a,b}"], "/ws/a", 0);
        check(&["/abs/x"], "/abs/x", MATCH_ALL);
        check(&["~/x"], "/home/me/x", MATCH_ALL);
    }

    #[test]
    fn matches_descendants_and_directories() {
        // A matched directory brings its descendants.
        check(&["dir"], "/ws/dir/deep/file", MATCH_ALL);
        check(&["dir-*"], "/ws/dir-3/file", MATCH_ALL);
        // A written trailing `**` matches the directory itself; the implicit one does not.
        check(&["dir/**"], "/ws/dir", MATCH_ALL);
        check(&["dir/*"], "/ws/dir", 0);
        // A trailing slash matches directories only, but still brings descendants.
        check(&["dir/"], "/ws/dir", MATCH_DIRECTORY);
        check(&["dir/"], "/ws/dir/file", MATCH_ALL);
    }

    #[test]
    fn later_negations_exclude() {
        check(&["*.txt", "!b.txt"], "/ws/b.txt", 0);
        check(&["*.txt", "!b.txt"], "/ws/a.txt", MATCH_ALL);
        check(&["**", "!node_modules"], "/ws/node_modules/x/y.js", 0);
        check(&["!b.txt", "*.txt"], "/ws/b.txt", MATCH_ALL);
        check(&["**", "!!b.txt", "! !c.txt"], "/ws/c.txt", MATCH_ALL);
        check(&["# comment", "", "  a.txt  "], "/ws/a.txt", MATCH_ALL);
    }

    #[test]
    fn rejects_relative_pathing_inside_patterns() {
        let workspace = Path::new("/ws");
        for bad in ["../x", "a/../b", "a/./b", "!../x"] {
            let result = parse_patterns(&[bad.to_owned()], workspace, None);
            assert!(
                matches!(result, Err(HashFilesError::InvalidPattern { .. })),
                "{bad}"
            );
        }
        assert!(parse_patterns(&["./x".to_owned()], workspace, None).is_ok());
        assert!(parse_patterns(&["!".to_owned()], workspace, None).is_err());
    }

    #[test]
    fn finds_search_paths_and_prunes() {
        let lines = vec!["src/**/*.rs".to_owned(), "!src/gen".to_owned()];
        let patterns = parse_patterns(&lines, Path::new("/ws"), None).unwrap();
        assert_eq!(patterns[0].search_path(), PathBuf::from("/ws/src"));
        assert!(worth_descending(&patterns, &item("/ws")));
        assert!(worth_descending(&patterns, &item("/ws/src/a/b")));
        assert!(!worth_descending(&patterns, &item("/ws/docs")));
    }
}
