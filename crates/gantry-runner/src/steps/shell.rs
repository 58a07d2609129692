//! Shells: how a `run` step's `shell:` becomes a command line, as GitHub's runner builds it on
//! Linux.
//!
//! | `shell:`        | command                                        | script file |
//! |-----------------|------------------------------------------------|-------------|
//! | (unspecified)   | `bash -e {0}`, or `sh -e {0}` without bash     | `.sh`       |
//! | `bash`          | `bash --noprofile --norc -eo pipefail {0}`     | `.sh`       |
//! | `sh`            | `sh -e {0}`                                    | `.sh`       |
//! | `python`        | `python {0}`                                   | `.py`       |
//! | `pwsh`          | `pwsh -command ". '{0}'"`                      | `.ps1`      |
//! | `powershell`    | `powershell -command ". '{0}'"`                | `.ps1`      |
//! | anything with `{0}` | the template split on whitespace           | none        |
//!
//! GitHub logs the unspecified default as `bash -e {0}` (no `pipefail`); an explicit
//! `shell: bash` adds `--noprofile --norc -o pipefail`. We follow that exactly.

use std::path::Path;

/// Why a shell could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A name that is neither a known shell nor a template with `{0}`.
    #[error(
        "unknown shell `{0}`: use bash, sh, python, pwsh, powershell, or a command template containing {{0}}"
    )]
    Unknown(String),
    /// `cmd` only exists on Windows.
    #[error("shell `{0}` is only available on Windows runners")]
    WindowsOnly(String),
}

/// A resolved shell: the command line template and the script file's extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// The program and its arguments; `{0}` stands for the script's path.
    pub template: Vec<String>,
    /// The script file's extension (with the dot), empty for custom templates.
    pub extension: &'static str,
}

impl Shell {
    /// The command line for the script at `script` (an inside path).
    pub fn argv(&self, script: &str) -> Vec<String> {
        self.template
            .iter()
            .map(|part| part.replace("{0}", script))
            .collect()
    }

    /// The template as GitHub prints it in the step's header, e.g. `bash -e {0}`.
    pub fn display(&self) -> String {
        self.template.join(" ")
    }
}

/// Splits a command template into arguments the way the runner's process launcher does:
/// on whitespace, with `"..."` and `'...'` grouping (quotes removed) and `\"` / `\\`
/// escapes inside double quotes.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                while let Some(inner) = chars.next() {
                    match inner {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                            current.extend(chars.next());
                        }
                        other => current.push(other),
                    }
                }
            }
            '\'' => {
                in_word = true;
                for inner in chars.by_ref() {
                    if inner == '\'' {
                        break;
                    }
                    current.push(inner);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Resolves `shell` (`None` when neither the step nor `defaults.run` names one); `path` is the
/// step's `PATH`, searched for bash when the shell is unspecified.
pub fn resolve(shell: Option<&str>, path: &str) -> Result<Shell, ShellError> {
    let posix = |template: &str| Shell {
        template: words(template),
        extension: ".sh",
    };
    let Some(name) = shell.map(str::trim).filter(|name| !name.is_empty()) else {
        return Ok(if find_program("bash", path) {
            posix("bash -e {0}")
        } else {
            posix("sh -e {0}")
        });
    };
    Ok(match name {
        "bash" => posix("bash --noprofile --norc -eo pipefail {0}"),
        "sh" => posix("sh -e {0}"),
        "python" => Shell {
            template: words("python {0}"),
            extension: ".py",
        },
        "pwsh" | "powershell" => Shell {
            template: vec![name.to_owned(), "-command".to_owned(), ". '{0}'".to_owned()],
            extension: ".ps1",
        },
        "cmd" => return Err(ShellError::WindowsOnly(name.to_owned())),
        custom if custom.contains("{0}") => Shell {
            template: words(custom),
            extension: "",
        },
        other => return Err(ShellError::Unknown(other.to_owned())),
    })
}

/// Whether `program` is an executable file in one of `path`'s directories.
fn find_program(program: &str, path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .any(|candidate| {
            std::fs::metadata(&candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(shell: Option<&str>, path: &str) -> Vec<String> {
        resolve(shell, path).unwrap().argv("/s/x.sh")
    }

    #[test]
    fn known_shells_take_githubs_arguments() {
        let host = "/usr/bin:/bin";
        assert_eq!(
            argv(Some("bash"), host),
            [
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "/s/x.sh"
            ]
        );
        assert_eq!(argv(Some("sh"), host), ["sh", "-e", "/s/x.sh"]);
        assert_eq!(argv(Some("python"), host), ["python", "/s/x.sh"]);
        assert_eq!(
            argv(Some("pwsh"), host),
            ["pwsh", "-command", ". '/s/x.sh'"]
        );
        assert_eq!(resolve(Some("python"), host).unwrap().extension, ".py");
        assert_eq!(
            argv(Some(r#"bash -c "cat {0}" 'a b'"#), host),
            ["bash", "-c", "cat /s/x.sh", "a b"]
        );
        assert_eq!(
            argv(Some("perl -w {0} --flag"), host),
            ["perl", "-w", "/s/x.sh", "--flag"]
        );
    }

    #[test]
    fn the_default_is_bash_when_present_else_sh() {
        assert_eq!(argv(None, "/usr/bin:/bin"), ["bash", "-e", "/s/x.sh"]);
        assert_eq!(argv(None, "/nonexistent"), ["sh", "-e", "/s/x.sh"]);
        assert_eq!(argv(Some("  "), "/nonexistent"), ["sh", "-e", "/s/x.sh"]);
    }

    #[test]
    fn unknown_shells_are_named() {
        let error = resolve(Some("fish"), "/bin").unwrap_err();
        assert!(
            error.to_string().starts_with("unknown shell `fish`"),
            "{error}"
        );
        assert!(matches!(
            resolve(Some("cmd"), "/bin"),
            Err(ShellError::WindowsOnly(_))
        ));
    }
}
