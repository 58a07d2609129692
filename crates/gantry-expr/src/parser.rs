//! Builds the syntax tree from tokens, checking names, arities and nesting depth.
//!
//! The grammar, from loosest to tightest: `||`, `&&`, `== !=`, `< <= > >=`, `!`, then
//! property/index access and calls. Depth is counted exactly where GitHub counts it (each
//! nested expression, each `&&`/`||` chain, each `!`, each access step) so that the same
//! expressions hit "Exceeded max expression depth 50". The recursion of this parser, and of the
//! evaluator over its tree, is bounded by that depth, which is what makes hostile input such as
//! 10,000 nested parentheses fail fast instead of overflowing the stack.

use crate::ast::{BinaryOp, LogicalOp, Node, Step};
use crate::error::{ErrorKind, ExprError, ParseErrorKind};
use crate::functions::Function;
use crate::lexer::{Token, TokenKind, lex};

/// GitHub's limit on how deeply expressions may nest.
pub const MAX_DEPTH: usize = 50;
/// GitHub's limit on the length of one expression, in UTF-16 code units.
pub const MAX_LENGTH: usize = 21_000;
/// The deepest nesting accepted whatever the options say: beyond it, evaluating could need more
/// stack than a thread is guaranteed to have.
pub(crate) const HARD_MAX_DEPTH: usize = 200;

/// What an expression may refer to, and the limits it must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Top-level named values the expression may use (`github`, `env`, ...), matched
    /// case-insensitively. Any other name is the parse error `Unrecognized named-value`.
    pub named_contexts: Vec<String>,
    /// Functions allowed beyond the core ones, by name: any of `hashFiles`, `success`,
    /// `failure`, `always`, `cancelled`. Names this crate does not implement are ignored.
    /// The core functions (`contains`, `startsWith`, `endsWith`, `format`, `join`, `toJSON`,
    /// `fromJSON`, `case`) are always allowed.
    pub extra_functions: Vec<String>,
    /// Whether `success()` and `failure()` accept job ids (`success('build', 'test')`), as they
    /// do in a job's `if:`, where they test only the named needs.
    pub status_functions_take_job_ids: bool,
    /// Maximum nesting depth; GitHub uses [`MAX_DEPTH`]. Values above 200 count as 200.
    pub max_depth: usize,
    /// Maximum length in UTF-16 code units; GitHub uses [`MAX_LENGTH`].
    pub max_length: usize,
}

impl ParseOptions {
    /// Options allowing the given named contexts, only the core functions and GitHub's limits.
    pub fn new<I, S>(named_contexts: I) -> ParseOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ParseOptions {
            named_contexts: named_contexts.into_iter().map(Into::into).collect(),
            ..ParseOptions::default()
        }
    }

    /// The same options with these extra functions allowed as well.
    pub fn with_functions<I, S>(mut self, functions: I) -> ParseOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_functions
            .extend(functions.into_iter().map(Into::into));
        self
    }
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            named_contexts: Vec::new(),
            extra_functions: Vec::new(),
            status_functions_take_job_ids: false,
            max_depth: MAX_DEPTH,
            max_length: MAX_LENGTH,
        }
    }
}

/// Lexes and parses `source`; `Ok(None)` for an expression with no tokens, which evaluates to
/// null.
pub(crate) fn parse_tree(source: &str, options: &ParseOptions) -> Result<Option<Node>, ExprError> {
    parse_tree_measured(source, options).map(|(node, _)| node)
}

/// Like [`parse_tree`], also returning the deepest nesting the parse reached, so callers that
/// embed the tree in a larger expression can tell whether the larger one would still fit.
pub(crate) fn parse_tree_measured(
    source: &str,
    options: &ParseOptions,
) -> Result<(Option<Node>, usize), ExprError> {
    let tokens = lex(source, options.max_length)?;
    let mut parser = Parser {
        source,
        tokens: &tokens,
        next: 0,
        depth: 0,
        max_depth: options.max_depth.min(HARD_MAX_DEPTH),
        contexts: &options.named_contexts,
        extra_functions: &options.extra_functions,
        status_functions_take_job_ids: options.status_functions_take_job_ids,
        deepest: 0,
    };
    let node = parser.parse()?;
    Ok((node, parser.deepest))
}

struct Parser<'t> {
    source: &'t str,
    tokens: &'t [Token],
    /// Index of the next token to read.
    next: usize,
    depth: usize,
    max_depth: usize,
    /// Allowed named values; matched ASCII-case-insensitively, as identifiers are ASCII. Kept
    /// borrowed: building a set per parse was a large share of loading a workflow.
    contexts: &'t [String],
    /// Allowed functions beyond the core ones, by name.
    extra_functions: &'t [String],
    status_functions_take_job_ids: bool,
    /// The deepest nesting reached so far.
    deepest: usize,
}

/// A parsed operand and whether access steps may follow it: GitHub allows them after a
/// context, a call or a parenthesised expression, not after a literal.
type Operand = (Node, bool);

impl Parser<'_> {
    fn parse(&mut self) -> Result<Option<Node>, ExprError> {
        if self.at_end() {
            return Ok(None);
        }
        let node = self.expression()?;
        if !self.at_end() {
            return Err(self.error(ParseErrorKind::UnexpectedSymbol, self.next));
        }
        Ok(Some(node))
    }

    fn expression(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let node = self.logical_or()?;
        self.leave(1);
        Ok(node)
    }

    fn logical_or(&mut self) -> Result<Node, ExprError> {
        let first = self.logical_and()?;
        if !self.check(&TokenKind::Or) {
            return Ok(first);
        }
        self.enter()?;
        let mut args = vec![first];
        while self.eat(&TokenKind::Or) {
            args.push(self.logical_and()?);
        }
        self.leave(1);
        Ok(Node::Logical {
            op: LogicalOp::Or,
            args,
        })
    }

    fn logical_and(&mut self) -> Result<Node, ExprError> {
        let first = self.equality()?;
        if !self.check(&TokenKind::And) {
            return Ok(first);
        }
        self.enter()?;
        let mut args = vec![first];
        while self.eat(&TokenKind::And) {
            args.push(self.equality()?);
        }
        self.leave(1);
        Ok(Node::Logical {
            op: LogicalOp::And,
            args,
        })
    }

    fn equality(&mut self) -> Result<Node, ExprError> {
        let first = self.comparison()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek_kind() {
                TokenKind::EqualEqual => BinaryOp::Equal,
                TokenKind::BangEqual => BinaryOp::NotEqual,
                _ => break,
            };
            self.next += 1;
            rest.push((op, self.comparison()?));
        }
        Ok(binary(first, rest))
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek_kind() {
                TokenKind::Greater => BinaryOp::Greater,
                TokenKind::GreaterEqual => BinaryOp::GreaterEqual,
                TokenKind::Less => BinaryOp::Less,
                TokenKind::LessEqual => BinaryOp::LessEqual,
                _ => break,
            };
            self.next += 1;
            rest.push((op, self.unary()?));
        }
        Ok(binary(first, rest))
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat(&TokenKind::Bang) {
            self.enter()?;
            let inner = self.unary()?;
            self.leave(1);
            return Ok(Node::Not(Box::new(inner)));
        }
        self.access()
    }

    fn access(&mut self) -> Result<Node, ExprError> {
        let (base, indexable) = self.call()?;
        if !indexable {
            return Ok(base);
        }
        let mut steps = Vec::new();
        loop {
            if self.eat(&TokenKind::LeftBracket) {
                let step = if self.eat(&TokenKind::Star) {
                    Step::Star
                } else {
                    Step::Index(self.expression()?)
                };
                self.expect(&TokenKind::RightBracket)?;
                self.enter()?;
                steps.push(step);
            } else if self.eat(&TokenKind::Dot) {
                self.enter()?;
                let step = if self.check(&TokenKind::Identifier) {
                    let name = self.tokens[self.next].text(self.source).to_owned();
                    self.next += 1;
                    Step::Index(Node::String(name))
                } else if self.eat(&TokenKind::Star) {
                    Step::Star
                } else {
                    return Err(self.error(ParseErrorKind::UnexpectedSymbol, self.next));
                };
                steps.push(step);
            } else {
                break;
            }
        }
        self.leave(steps.len());
        if steps.is_empty() {
            return Ok(base);
        }
        Ok(Node::Access {
            base: Box::new(base),
            steps,
        })
    }

    fn call(&mut self) -> Result<Operand, ExprError> {
        if !self.check(&TokenKind::Identifier) {
            return self.primary();
        }
        let name_index = self.next;
        self.next += 1;
        let name = self.tokens[name_index].text(self.source);
        if !self.eat(&TokenKind::LeftParen) {
            if !self
                .contexts
                .iter()
                .any(|known| known.eq_ignore_ascii_case(name))
            {
                return Err(self.error(ParseErrorKind::UnrecognizedNamedValue, name_index));
            }
            return Ok((Node::Context(name.to_owned()), true));
        }
        let mut args = Vec::new();
        while !self.eat(&TokenKind::RightParen) {
            args.push(self.expression()?);
            if !self.check(&TokenKind::RightParen) {
                self.expect(&TokenKind::Comma)?;
            }
        }
        let function = self.resolve_function(name_index, args.len())?;
        Ok((
            Node::Call {
                function,
                position: self.tokens[name_index].position,
                args,
            },
            true,
        ))
    }

    fn resolve_function(&self, name_index: usize, count: usize) -> Result<Function, ExprError> {
        let name = self.tokens[name_index].text(self.source);
        let Some(function) = Function::from_name(name).filter(|function| {
            function.is_core()
                || self
                    .extra_functions
                    .iter()
                    .any(|extra| Function::from_name(extra) == Some(*function))
        }) else {
            return Err(self.error(ParseErrorKind::UnrecognizedFunction, name_index));
        };
        let (min, mut max) = function.arity();
        if self.status_functions_take_job_ids
            && matches!(function, Function::Success | Function::Failure)
        {
            max = usize::MAX;
        }
        if count < min {
            return Err(self.error(ParseErrorKind::TooFewParameters, name_index));
        }
        if count > max {
            return Err(self.error(ParseErrorKind::TooManyParameters, name_index));
        }
        if function == Function::Case && count.is_multiple_of(2) {
            return Err(self.error(ParseErrorKind::EvenParameters, name_index));
        }
        Ok(function)
    }

    fn primary(&mut self) -> Result<Operand, ExprError> {
        let literal = match self.peek_kind() {
            TokenKind::False => Some(Node::Boolean(false)),
            TokenKind::True => Some(Node::Boolean(true)),
            TokenKind::Null => Some(Node::Null),
            TokenKind::Number(value) => Some(Node::Number(*value)),
            TokenKind::String(value) => Some(Node::String(value.clone())),
            _ => None,
        };
        if let Some(literal) = literal {
            self.next += 1;
            return Ok((literal, false));
        }
        if self.eat(&TokenKind::LeftParen) {
            let inner = self.expression()?;
            if self.at_end() {
                return Err(self.error(ParseErrorKind::UnexpectedEndOfExpression, self.next - 1));
            }
            self.expect(&TokenKind::RightParen)?;
            return Ok((inner, true));
        }
        Err(self.error(ParseErrorKind::UnexpectedSymbol, self.next))
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        self.deepest = self.deepest.max(self.depth);
        if self.depth > self.max_depth {
            return Err(self.error(ParseErrorKind::ExceededMaxDepth(self.max_depth), self.next));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth -= levels;
    }

    fn peek_kind(&self) -> &TokenKind {
        self.tokens
            .get(self.next)
            .map_or(&TokenKind::Eof, |token| &token.kind)
    }

    fn at_end(&self) -> bool {
        *self.peek_kind() == TokenKind::Eof
    }

    fn check(&self, kind: &TokenKind) -> bool {
        self.peek_kind() == kind
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.check(kind) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<(), ExprError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.error(ParseErrorKind::UnexpectedSymbol, self.next))
        }
    }

    /// A parse error about the token at `index`. Running into the end of the input is reported
    /// against the last real token as "Unexpected end of expression", which says more than
    /// quoting an invisible end-of-input token.
    fn error(&self, kind: ParseErrorKind, index: usize) -> ExprError {
        let (kind, index) = match self.tokens.get(index) {
            Some(token) if token.kind == TokenKind::Eof && index > 0 => {
                let kind = match kind {
                    ParseErrorKind::UnexpectedSymbol => ParseErrorKind::UnexpectedEndOfExpression,
                    other => other,
                };
                (kind, index - 1)
            }
            _ => (kind, index),
        };
        let (text, position) = self
            .tokens
            .get(index)
            .map_or(("", 0), |token| (token.text(self.source), token.position));
        ExprError::new(
            ErrorKind::Parsing,
            kind.describe(text),
            position,
            self.source,
        )
    }
}

fn binary(first: Node, rest: Vec<(BinaryOp, Node)>) -> Node {
    if rest.is_empty() {
        return first;
    }
    Node::Binary {
        first: Box::new(first),
        rest,
    }
}
