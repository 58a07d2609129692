//! Splits expression text into tokens, with GitHub's rules for what is a number, a string, a
//! keyword or an identifier.
//!
//! The rules are unusual in places and are kept on purpose: a `.` starts a number unless it
//! follows something that can be dereferenced; `-` and `+` always start a number (there is no
//! arithmetic); a number or identifier runs until a boundary character, so `1x` or `a@b` is one
//! bad symbol; keywords are case-sensitive and are plain identifiers after a dot.

use crate::error::{ErrorKind, ExprError};
use crate::number::{is_js_whitespace, parse_js_number};
use crate::text::utf16_len;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    Bang,
    BangEqual,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    And,
    Or,
    Star,
    Number(f64),
    /// A string literal's value, with `''` unescaped.
    String(String),
    Identifier,
    True,
    False,
    Null,
    Eof,
}

/// A token and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte range of the raw text in the source.
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// 1-based position in UTF-16 code units, as error messages report it.
    pub(crate) position: usize,
}

impl Token {
    /// The raw text of the token, as error messages quote it.
    pub(crate) fn text<'s>(&self, source: &'s str) -> &'s str {
        source.get(self.start..self.end).unwrap_or("")
    }
}

/// Tokenizes `source`, ending with an [`TokenKind::Eof`] token.
pub(crate) fn lex(source: &str, max_length: usize) -> Result<Vec<Token>, ExprError> {
    if utf16_len(source) > max_length {
        return Err(ExprError::new(
            ErrorKind::Lexing,
            format!("Exceeded max expression length {max_length}"),
            0,
            source,
        ));
    }
    let mut lexer = Lexer {
        source,
        offset: 0,
        offset16: 0,
        start: 0,
        start16: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'s> {
    source: &'s str,
    /// Byte offset of the next character.
    offset: usize,
    /// UTF-16 offset of the next character.
    offset16: usize,
    /// Start of the current token, in bytes and in UTF-16 code units.
    start: usize,
    start16: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            self.start = self.offset;
            self.start16 = self.offset16;
            self.advance();
            match c {
                '(' => self.push(TokenKind::LeftParen),
                ')' => self.push(TokenKind::RightParen),
                '[' => self.push(TokenKind::LeftBracket),
                ']' => self.push(TokenKind::RightBracket),
                ',' => self.push(TokenKind::Comma),
                '*' => self.push(TokenKind::Star),
                '.' => {
                    if matches!(
                        self.previous_kind(),
                        Some(
                            TokenKind::Identifier
                                | TokenKind::RightBracket
                                | TokenKind::RightParen
                                | TokenKind::Star
                        )
                    ) {
                        self.push(TokenKind::Dot);
                    } else {
                        self.number()?;
                    }
                }
                '-' | '+' => self.number()?,
                '!' => {
                    let kind = if self.eat('=') {
                        TokenKind::BangEqual
                    } else {
                        TokenKind::Bang
                    };
                    self.push(kind);
                }
                '<' => {
                    let kind = if self.eat('=') {
                        TokenKind::LessEqual
                    } else {
                        TokenKind::Less
                    };
                    self.push(kind);
                }
                '>' => {
                    let kind = if self.eat('=') {
                        TokenKind::GreaterEqual
                    } else {
                        TokenKind::Greater
                    };
                    self.push(kind);
                }
                // A lone `=`, `&` or `|` is read on to the next boundary and reported as one
                // bad symbol, which is what GitHub quotes in its message.
                '=' => {
                    if self.eat('=') {
                        self.push(TokenKind::EqualEqual);
                    } else {
                        self.identifier()?;
                    }
                }
                '&' => {
                    if self.eat('&') {
                        self.push(TokenKind::And);
                    } else {
                        self.identifier()?;
                    }
                }
                '|' => {
                    if self.eat('|') {
                        self.push(TokenKind::Or);
                    } else {
                        self.identifier()?;
                    }
                }
                ' ' | '\t' | '\r' | '\n' => {}
                '\'' => self.string()?,
                c if c.is_ascii_digit() => self.number()?,
                _ => self.identifier()?,
            }
        }
        self.start = self.offset;
        self.start16 = self.offset16;
        self.push(TokenKind::Eof);
        Ok(())
    }

    fn peek(&self) -> Option<char> {
        self.source[self.offset..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.source[self.offset..].chars();
        chars.next();
        chars.next()
    }

    fn advance(&mut self) {
        if let Some(c) = self.peek() {
            self.offset += c.len_utf8();
            self.offset16 += c.len_utf16();
        }
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn previous_kind(&self) -> Option<&TokenKind> {
        self.tokens.last().map(|token| &token.kind)
    }

    fn lexeme(&self) -> &str {
        &self.source[self.start..self.offset]
    }

    fn push(&mut self, kind: TokenKind) {
        self.tokens.push(Token {
            kind,
            start: self.start,
            end: self.offset,
            position: self.start16 + 1,
        });
    }

    fn unexpected_symbol(&self, symbol: &str) -> ExprError {
        ExprError::new(
            ErrorKind::Lexing,
            format!("Unexpected symbol: '{symbol}'"),
            self.start16 + 1,
            self.source,
        )
    }

    /// A number runs to the next boundary (dots included) and must be what JavaScript's
    /// `Number()` accepts.
    fn number(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            if is_boundary(c) && c != '.' {
                break;
            }
            self.advance();
        }
        let value = parse_js_number(self.lexeme());
        if value.is_nan() {
            return Err(self.unexpected_symbol(self.lexeme()));
        }
        self.push(TokenKind::Number(value));
        Ok(())
    }

    /// A string runs to the next `'` that is not doubled.
    fn string(&mut self) -> Result<(), ExprError> {
        loop {
            match self.peek() {
                None => {
                    let rest = &self.source[self.start..];
                    return Err(self.unexpected_symbol(rest));
                }
                Some('\'') if self.peek_second() == Some('\'') => {
                    self.advance();
                    self.advance();
                }
                Some('\'') => {
                    self.advance();
                    break;
                }
                Some(_) => self.advance(),
            }
        }
        let raw = &self.source[self.start + 1..self.offset - 1];
        let value = raw.replace("''", "'");
        self.push(TokenKind::String(value));
        Ok(())
    }

    /// An identifier or keyword runs to the next boundary and must be `[A-Za-z_][A-Za-z0-9_-]*`.
    fn identifier(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            if is_boundary(c) {
                break;
            }
            self.advance();
        }
        let lexeme = self.lexeme();
        if !is_legal_identifier(lexeme) {
            return Err(self.unexpected_symbol(lexeme));
        }
        // After a dot every word is a property name, so `foo.true` reads the key "true".
        let kind = if self.previous_kind() == Some(&TokenKind::Dot) {
            TokenKind::Identifier
        } else {
            match lexeme {
                "true" => TokenKind::True,
                "false" => TokenKind::False,
                "null" => TokenKind::Null,
                "NaN" => TokenKind::Number(f64::NAN),
                "Infinity" => TokenKind::Number(f64::INFINITY),
                _ => TokenKind::Identifier,
            }
        };
        self.push(kind);
        Ok(())
    }
}

fn is_boundary(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | ')' | ']' | ',' | '.' | '!' | '>' | '<' | '=' | '&' | '|'
    ) || is_js_whitespace(c)
}

fn is_legal_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        lex(source, 21_000)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    fn check_error(source: &str, expected: &str) {
        let error = lex(source, 21_000).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Lexing);
        assert_eq!(error.to_string(), expected, "lexing {source:?}");
    }

    #[test]
    fn reads_dots_as_numbers_or_dereferences() {
        use TokenKind::*;
        assert_eq!(kinds("a.b"), vec![Identifier, Dot, Identifier, Eof]);
        assert_eq!(kinds(".5"), vec![Number(0.5), Eof]);
        assert_eq!(
            kinds("a[0].b"),
            vec![
                Identifier,
                LeftBracket,
                Number(0.0),
                RightBracket,
                Dot,
                Identifier,
                Eof
            ]
        );
        assert_eq!(kinds("a.true"), vec![Identifier, Dot, Identifier, Eof]);
        assert_eq!(kinds("-Infinity"), vec![Number(f64::NEG_INFINITY), Eof]);
    }

    #[test]
    fn unescapes_every_doubled_quote() {
        assert_eq!(
            kinds("'a''b''c'"),
            vec![TokenKind::String("a'b'c".to_owned()), TokenKind::Eof]
        );
    }

    #[test]
    fn reports_bad_symbols_with_utf16_positions() {
        check_error(
            "1 =2",
            "Unexpected symbol: '=2'. Located at position 3 within expression: 1 =2",
        );
        check_error(
            "'😊' @",
            "Unexpected symbol: '@'. Located at position 6 within expression: '😊' @",
        );
        check_error(
            "'abc",
            "Unexpected symbol: ''abc'. Located at position 1 within expression: 'abc",
        );
        check_error(
            "true.x",
            "Unexpected symbol: '.x'. Located at position 5 within expression: true.x",
        );
    }

    #[test]
    fn rejects_overlong_expressions() {
        let error = lex("1234", 3).unwrap_err();
        assert_eq!(error.message, "Exceeded max expression length 3");
    }
}
