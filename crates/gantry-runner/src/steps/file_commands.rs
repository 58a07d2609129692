//! File commands: the files a step appends to (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH`,
//! `GITHUB_STATE`, `GITHUB_STEP_SUMMARY`), parsed after the step ends.
//!
//! `GITHUB_ENV`, `GITHUB_OUTPUT` and `GITHUB_STATE` hold `NAME=value` lines or multi-line
//! values written as `NAME<<DELIMITER`, the value's lines, then the delimiter alone on a line.

/// A file that could not be read as its format requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileCommandError {
    /// `NAME<<DELIMITER` without the closing delimiter line.
    #[error("{file}: invalid value: matching delimiter not found `{delimiter}`")]
    MissingDelimiter {
        /// The file's variable name (`GITHUB_ENV`, ...).
        file: String,
        /// The delimiter that never came.
        delimiter: String,
    },
    /// A line that is neither `NAME=value` nor `NAME<<DELIMITER`, or has an empty name.
    #[error("{file}: invalid format `{line}`")]
    InvalidLine {
        /// The file's variable name.
        file: String,
        /// The line, cut to a readable length.
        line: String,
    },
}

/// Reads the `NAME=value` / `NAME<<DELIMITER` pairs of `content`, in order. `file` names the
/// file in errors.
pub fn parse_key_values(
    content: &str,
    file: &str,
) -> Result<Vec<(String, String)>, FileCommandError> {
    let mut pairs = Vec::new();
    let mut lines = content
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        let invalid = || FileCommandError::InvalidLine {
            file: file.to_owned(),
            line: line.chars().take(80).collect(),
        };
        match (equals, heredoc) {
            (Some(equals), heredoc) if heredoc.is_none_or(|heredoc| equals < heredoc) => {
                let name = &line[..equals];
                if name.is_empty() {
                    return Err(invalid());
                }
                pairs.push((name.to_owned(), line[equals + 1..].to_owned()));
            }
            (_, Some(heredoc)) => {
                let name = &line[..heredoc];
                let delimiter = &line[heredoc + 2..];
                if name.is_empty() || delimiter.is_empty() {
                    return Err(invalid());
                }
                let mut value: Vec<&str> = Vec::new();
                let mut closed = false;
                for value_line in lines.by_ref() {
                    if value_line == delimiter {
                        closed = true;
                        break;
                    }
                    value.push(value_line);
                }
                if !closed {
                    return Err(FileCommandError::MissingDelimiter {
                        file: file.to_owned(),
                        delimiter: delimiter.to_owned(),
                    });
                }
                pairs.push((name.to_owned(), value.join("\n")));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(pairs)
}

/// The directories of a `GITHUB_PATH` file, in the order they were written (each one goes in
/// front of `PATH`, so the last written is searched first).
pub fn parse_path_file(content: &str) -> Vec<String> {
    content
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(content: &str) -> Vec<(String, String)> {
        parse_key_values(content, "GITHUB_ENV").unwrap()
    }

    #[test]
    fn simple_and_multi_line_values() {
        assert_eq!(
            pairs("A=1\n\nB=x=y\r\nC<<EOF\nline 1\nline 2\nEOF\nD<<X\nX\nE=\n"),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x=y".to_owned()),
                ("C".to_owned(), "line 1\nline 2".to_owned()),
                ("D".to_owned(), String::new()),
                ("E".to_owned(), String::new()),
            ]
        );
        // `=` before `<<` makes a plain value that contains `<<`.
        assert_eq!(pairs("A=b<<c"), vec![("A".to_owned(), "b<<c".to_owned())]);
    }

    #[test]
    fn a_broken_delimiter_is_a_clear_error() {
        let error = parse_key_values("A<<EOF\nvalue\nEOFX\n", "GITHUB_OUTPUT").unwrap_err();
        assert_eq!(
            error.to_string(),
            "GITHUB_OUTPUT: invalid value: matching delimiter not found `EOF`"
        );
        assert!(matches!(
            parse_key_values("no separator\n", "GITHUB_ENV"),
            Err(FileCommandError::InvalidLine { .. })
        ));
        assert!(parse_key_values("=value\n", "GITHUB_ENV").is_err());
    }

    #[test]
    fn path_lines_are_trimmed_and_empty_ones_skipped() {
        assert_eq!(parse_path_file("/a\n\n  /b  \n"), vec!["/a", "/b"]);
    }
}
