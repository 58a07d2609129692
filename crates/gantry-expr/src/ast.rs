//! The syntax tree the parser builds and the evaluator walks.
//!
//! Chains that GitHub's grammar builds left-deep (`a == b == c`, `a.b.c[0]`) are stored flat
//! so that neither evaluation nor dropping recurses once per link: a 20,000-character chain of
//! `==` must not exhaust the stack.

use crate::functions::Function;

/// An expression node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Boolean(bool),
    Number(f64),
    String(String),
    /// A top-level named value such as `github`, as written.
    Context(String),
    /// Property, index and filter steps applied in order to `base`.
    Access {
        base: Box<Node>,
        steps: Vec<Step>,
    },
    Not(Box<Node>),
    /// `first op1 second op2 third ...`, evaluated left to right.
    Binary {
        first: Box<Node>,
        rest: Vec<(BinaryOp, Node)>,
    },
    /// `a && b && c` or `a || b || c`, short-circuiting and returning an operand.
    Logical {
        op: LogicalOp,
        args: Vec<Node>,
    },
    Call {
        function: Function,
        /// 1-based UTF-16 position of the function name, for evaluation errors.
        position: usize,
        args: Vec<Node>,
    },
}

/// One step of an access chain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.*` or `[*]`.
    Star,
    /// `.name` (a string literal) or `[expression]`.
    Index(Node),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogicalOp {
    And,
    Or,
}

impl Node {
    /// Moves every recorded source position `by` UTF-16 units to the right, for a tree that is
    /// placed inside a longer expression text.
    pub(crate) fn shift_positions(&mut self, by: usize) {
        self.for_each_mut(&mut |node| {
            if let Node::Call { position, .. } = node {
                *position += by;
            }
        });
    }

    /// Calls `visit` on this node, then on every node below it, allowing changes.
    fn for_each_mut(&mut self, visit: &mut dyn FnMut(&mut Node)) {
        visit(self);
        match self {
            Node::Null
            | Node::Boolean(_)
            | Node::Number(_)
            | Node::String(_)
            | Node::Context(_) => {}
            Node::Access { base, steps } => {
                base.for_each_mut(visit);
                for step in steps {
                    if let Step::Index(index) = step {
                        index.for_each_mut(visit);
                    }
                }
            }
            Node::Not(inner) => inner.for_each_mut(visit),
            Node::Binary { first, rest } => {
                first.for_each_mut(visit);
                for (_, operand) in rest {
                    operand.for_each_mut(visit);
                }
            }
            Node::Logical { args, .. } | Node::Call { args, .. } => {
                for arg in args {
                    arg.for_each_mut(visit);
                }
            }
        }
    }

    /// Calls `visit` on this node and every node below it.
    pub(crate) fn for_each(&self, visit: &mut dyn FnMut(&Node)) {
        visit(self);
        match self {
            Node::Null
            | Node::Boolean(_)
            | Node::Number(_)
            | Node::String(_)
            | Node::Context(_) => {}
            Node::Access { base, steps } => {
                base.for_each(visit);
                for step in steps {
                    if let Step::Index(index) = step {
                        index.for_each(visit);
                    }
                }
            }
            Node::Not(inner) => inner.for_each(visit),
            Node::Binary { first, rest } => {
                first.for_each(visit);
                for (_, operand) in rest {
                    operand.for_each(visit);
                }
            }
            Node::Logical { args, .. } | Node::Call { args, .. } => {
                for arg in args {
                    arg.for_each(visit);
                }
            }
        }
    }
}
