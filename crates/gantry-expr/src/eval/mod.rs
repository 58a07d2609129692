//! Walks a syntax tree and computes its value.
//!
//! Evaluation never panics and never recurses deeper than the parser allowed. `&&` and `||`
//! short-circuit and return the deciding operand itself, not a boolean, as on GitHub.

mod access;
mod compare;
mod data;
mod format;
mod functions;
mod json;
mod memory;

pub use memory::DEFAULT_MAX_MEMORY;

use crate::Contexts;
use crate::ast::{LogicalOp, Node, Step};
use crate::error::{ErrorKind, ExprError};
use crate::host::Host;
use crate::value::{Value, lookup_key};
use access::Index;
use data::{Data, Text};
use memory::{Memory, result_size};

/// Limits for one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluateOptions {
    /// The memory budget in GitHub's accounting (strings cost 2 bytes per UTF-16 code unit);
    /// GitHub's default is [`DEFAULT_MAX_MEMORY`].
    pub max_memory: usize,
}

impl Default for EvaluateOptions {
    fn default() -> EvaluateOptions {
        EvaluateOptions {
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// Evaluates `root`, an expression parsed from `source`.
pub(crate) fn evaluate(
    root: Option<&Node>,
    source: &str,
    contexts: &Contexts,
    host: &dyn Host,
    options: &EvaluateOptions,
) -> Result<Value, ExprError> {
    let Some(root) = root else {
        return Ok(Value::Null);
    };
    let mut evaluator = Evaluator {
        contexts,
        host,
        source,
        memory: Memory::new(options.max_memory),
    };
    evaluator.eval(root, 0).map(|data| data.to_value())
}

struct Evaluator<'a> {
    contexts: &'a Contexts,
    host: &'a dyn Host,
    source: &'a str,
    memory: Memory,
}

impl<'a> Evaluator<'a> {
    fn eval(&mut self, node: &'a Node, depth: usize) -> Result<Data<'a>, ExprError> {
        let result = match node {
            Node::Null => Data::Null,
            Node::Boolean(b) => Data::Boolean(*b),
            Node::Number(n) => Data::Number(*n),
            Node::String(text) => Data::String(Text::Borrowed(text)),
            Node::Context(name) => lookup_key(self.contexts, name)
                .map(Data::from_value)
                .unwrap_or(Data::Null),
            Node::Access { base, steps } => {
                let mut current = self.eval(base, depth + 1)?;
                for step in steps {
                    let index = match step {
                        Step::Star => Index::Star,
                        Step::Index(index) => Index::from_data(&self.eval(index, depth + 1)?),
                    };
                    current = access::apply(&current, &index);
                }
                current
            }
            Node::Not(inner) => Data::Boolean(!self.eval(inner, depth + 1)?.is_truthy()),
            Node::Binary { first, rest } => {
                let mut left = self.eval(first, depth + 1)?;
                for (op, operand) in rest {
                    let right = self.eval(operand, depth + 1)?;
                    left = Data::Boolean(compare::apply(*op, &left, &right));
                }
                left
            }
            Node::Logical { op, args } => {
                let mut result = Data::Null;
                for arg in args {
                    result = self.eval(arg, depth + 1)?;
                    let decided = match op {
                        LogicalOp::And => !result.is_truthy(),
                        LogicalOp::Or => result.is_truthy(),
                    };
                    if decided {
                        break;
                    }
                }
                result
            }
            Node::Call {
                function,
                position,
                args,
            } => self.call(*function, *position, args, depth)?,
        };
        let text = match &result {
            Data::String(text) => Some(text.as_str()),
            _ => None,
        };
        let size = result_size(text);
        let position = match node {
            Node::Call { position, .. } => *position,
            _ => 0,
        };
        self.memory
            .charge(depth, size, result.is_primitive())
            .map_err(|_| self.out_of_memory(position))?;
        Ok(result)
    }

    fn error(&self, message: impl Into<String>, position: usize) -> ExprError {
        ExprError::new(ErrorKind::Evaluation, message, position, self.source)
    }

    fn out_of_memory(&self, position: usize) -> ExprError {
        self.error("The maximum allowed memory size was exceeded", position)
    }
}
