//! Workflow commands: lines like `::error file=a.rs,line=3::message` a step prints to ask the
//! runner for something (annotations, masks, log groups, stopping command processing).
//!
//! This module only parses; the step loop decides what each command does.

use indexmap::IndexMap;

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowCommand {
    /// The command name as written (`error`, `add-mask`, a stop token, ...).
    pub name: String,
    /// `key=value` properties, unescaped.
    pub properties: IndexMap<String, String>,
    /// The text after the second `::`, unescaped.
    pub data: String,
}

/// Parses `line` as a workflow command: `::name[ key=value[,key=value]...]::data`, leading
/// whitespace allowed. `None` when the line is ordinary output.
pub fn parse_command(line: &str) -> Option<WorkflowCommand> {
    let line = line.trim_start().trim_end_matches(['\r', '\n']);
    let rest = line.strip_prefix("::")?;
    let end = rest.find("::")?;
    let (head, data) = (&rest[..end], &rest[end + 2..]);
    let (name, properties_text) = match head.find(' ') {
        Some(space) => (&head[..space], head[space + 1..].trim()),
        None => (head, ""),
    };
    if name.is_empty() {
        return None;
    }
    let mut properties = IndexMap::new();
    for pair in properties_text
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
    {
        if let Some((key, value)) = pair.split_once('=') {
            properties.insert(key.trim().to_owned(), unescape_property(value));
        }
    }
    Some(WorkflowCommand {
        name: name.to_owned(),
        properties,
        data: unescape_data(data),
    })
}

/// GitHub's escaping of command data: `%25` `%0D` `%0A`.
pub fn unescape_data(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

/// Properties escape `:` and `,` too.
fn unescape_property(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command's name, properties and data, as expected.
    type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    fn check(line: &str, expect: Option<Expected<'_>>) {
        let parsed = parse_command(line);
        let expected = expect.map(|(name, properties, data)| WorkflowCommand {
            name: name.to_owned(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data: data.to_owned(),
        });
        assert_eq!(parsed, expected, "{line}");
    }

    #[test]
    fn commands_parse_with_properties_and_escapes() {
        check("::group::Build", Some(("group", &[], "Build")));
        check("::endgroup::", Some(("endgroup", &[], "")));
        check(
            "::error file=app.js,line=10,col=15::Something%0Awent wrong%25",
            Some((
                "error",
                &[("file", "app.js"), ("line", "10"), ("col", "15")],
                "Something\nwent wrong%",
            )),
        );
        check(
            "  ::warning title=a%3Ab%2Cc::x::y",
            Some(("warning", &[("title", "a:b,c")], "x::y")),
        );
        check("::add-mask::s3cr3t\r", Some(("add-mask", &[], "s3cr3t")));
        check("::my-token::", Some(("my-token", &[], "")));
    }

    #[test]
    fn ordinary_lines_are_not_commands() {
        check("hello", None);
        check(":: no end", None);
        check("::::data", None);
        check("echo ::error::x", None);
    }
}
