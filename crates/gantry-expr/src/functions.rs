//! The functions an expression may call: their names, arities and which ones need a host.

/// A function known to the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Function {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    Case,
    HashFiles,
    Success,
    Failure,
    Always,
    Cancelled,
}

/// GitHub caps `format` and `hashFiles` at 255 arguments (a .NET `Byte`).
const MAX_LISTED_ARGUMENTS: usize = 255;

impl Function {
    /// Looks a function up by name, ignoring case like GitHub does.
    pub(crate) fn from_name(name: &str) -> Option<Function> {
        const NAMES: [(&str, Function); 13] = [
            ("contains", Function::Contains),
            ("startsWith", Function::StartsWith),
            ("endsWith", Function::EndsWith),
            ("format", Function::Format),
            ("join", Function::Join),
            ("toJSON", Function::ToJson),
            ("fromJSON", Function::FromJson),
            ("case", Function::Case),
            ("hashFiles", Function::HashFiles),
            ("success", Function::Success),
            ("failure", Function::Failure),
            ("always", Function::Always),
            ("cancelled", Function::Cancelled),
        ];
        // Compared without allocating: this runs for every call in every expression.
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, function)| *function)
    }

    /// Core functions are allowed everywhere; the others only where the caller's
    /// [`crate::ParseOptions::extra_functions`] lists them, because they depend on where the
    /// expression runs (a step, a job, the server).
    pub(crate) fn is_core(self) -> bool {
        !matches!(
            self,
            Function::HashFiles
                | Function::Success
                | Function::Failure
                | Function::Always
                | Function::Cancelled
        )
    }

    /// Whether this is one of the status functions whose presence disables the implicit
    /// `success() &&` of an `if:` condition.
    pub(crate) fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Always | Function::Cancelled
        )
    }

    /// The minimum and maximum number of arguments.
    pub(crate) fn arity(self) -> (usize, usize) {
        match self {
            Function::Contains | Function::StartsWith | Function::EndsWith => (2, 2),
            Function::Format => (1, MAX_LISTED_ARGUMENTS),
            Function::Join => (1, 2),
            Function::ToJson | Function::FromJson => (1, 1),
            Function::Case => (3, usize::MAX),
            Function::HashFiles => (1, MAX_LISTED_ARGUMENTS),
            Function::Success | Function::Failure | Function::Always | Function::Cancelled => {
                (0, 0)
            }
        }
    }
}
