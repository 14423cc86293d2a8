//! The `.lnir` lexer: a streaming tokenizer over the source text with line:col positions.
//!
//! Tokens borrow from the source where possible, so lexing a file with millions of constant
//! values allocates nothing per number.

use std::borrow::Cow;
use std::fmt;

/// A 1-based source position (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A parse error before it becomes [`crate::Error::Parse`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PErr {
    pub pos: Pos,
    pub msg: String,
}

impl PErr {
    pub fn new(pos: Pos, msg: impl Into<String>) -> Self {
        PErr {
            pos,
            msg: msg.into(),
        }
    }
}

impl From<PErr> for crate::Error {
    fn from(e: PErr) -> Self {
        crate::Error::Parse {
            line: e.pos.line,
            col: e.pos.col,
            msg: e.msg,
        }
    }
}

pub(crate) type PResult<T> = Result<T, PErr>;

/// Token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A bare word: keyword, op name, attribute key, enum value, dtype, `nan`, `-inf`.
    Word,
    /// `%name` or `%"quoted name"`; the text is the (unescaped) name.
    Value,
    /// `@123`; the text is the digits.
    At,
    /// A number literal: `-12`, `0.5`, `1e-7`, `0x7fc00001`.
    Num,
    /// A quoted string; the text is unescaped.
    Str,
    /// One of `= ( ) { } [ ] , : #`.
    Punct(char),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub text: Cow<'a, str>,
    pub pos: Pos,
}

impl fmt::Display for Token<'_> {
    /// How the token is named in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Word | Kind::Num => write!(f, "'{}'", self.text),
            Kind::Value => write!(f, "'%{}'", self.text),
            Kind::At => write!(f, "'@{}'", self.text),
            Kind::Str => write!(f, "string {:?}", self.text),
            Kind::Punct(c) => write!(f, "'{c}'"),
            Kind::Eof => f.write_str("end of input"),
        }
    }
}

/// Characters allowed in an unquoted value name (after `%`).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A streaming lexer.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    off: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            off: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.off..].chars().next()
    }

    fn peek_char2(&self) -> Option<char> {
        let mut it = self.src[self.off..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.off += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    /// Skip whitespace and `;` line comments.
    fn skip_trivia(&mut self) {
        while let Some(c) = self.peek_char() {
            if c.is_whitespace() {
                self.bump();
            } else if c == ';' {
                while let Some(c) = self.peek_char() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.off;
        while self.peek_char().is_some_and(&f) {
            self.bump();
        }
        &self.src[start..self.off]
    }

    /// The next token.
    pub fn next_token(&mut self) -> PResult<Token<'a>> {
        self.skip_trivia();
        let pos = self.pos();
        let tok = |kind, text| Ok(Token { kind, text, pos });
        let Some(c) = self.peek_char() else {
            return tok(Kind::Eof, Cow::Borrowed(""));
        };
        match c {
            '=' | '(' | ')' | '{' | '}' | '[' | ']' | ',' | ':' | '#' => {
                self.bump();
                tok(Kind::Punct(c), Cow::Borrowed(""))
            }
            '"' => {
                let s = self.string()?;
                tok(Kind::Str, s)
            }
            '%' => {
                self.bump();
                if self.peek_char() == Some('"') {
                    let s = self.string()?;
                    tok(Kind::Value, s)
                } else {
                    let s = self.take_while(is_name_char);
                    if s.is_empty() {
                        return Err(PErr::new(pos, "expected a value name after '%'"));
                    }
                    tok(Kind::Value, Cow::Borrowed(s))
                }
            }
            '@' => {
                self.bump();
                let s = self.take_while(|c| c.is_ascii_digit());
                if s.is_empty() {
                    return Err(PErr::new(pos, "expected a constant number after '@'"));
                }
                tok(Kind::At, Cow::Borrowed(s))
            }
            '-' if self.peek_char2().is_some_and(is_word_start) => {
                let start = self.off;
                self.bump();
                self.take_while(is_word_char);
                tok(Kind::Word, Cow::Borrowed(&self.src[start..self.off]))
            }
            '-' | '0'..='9' => self.number(pos),
            c if is_word_start(c) => {
                let start = self.off;
                let w = self.take_while(is_word_char);
                // Fixed-point dtypes with a negative fraction: `fix8_-2`, `ufix16_-4`.
                if (w.starts_with("fix") || w.starts_with("ufix"))
                    && w.ends_with('_')
                    && self.peek_char() == Some('-')
                    && self.peek_char2().is_some_and(|c| c.is_ascii_digit())
                {
                    self.bump();
                    self.take_while(|c| c.is_ascii_digit());
                }
                tok(Kind::Word, Cow::Borrowed(&self.src[start..self.off]))
            }
            c => Err(PErr::new(pos, format!("unexpected character {c:?}"))),
        }
    }

    fn number(&mut self, pos: Pos) -> PResult<Token<'a>> {
        let start = self.off;
        if self.peek_char() == Some('-') {
            self.bump();
        }
        if !self.peek_char().is_some_and(|c| c.is_ascii_digit()) {
            return Err(PErr::new(pos, "expected a digit after '-'"));
        }
        let rest = &self.src[self.off..];
        if rest.starts_with("0x") || rest.starts_with("0X") {
            self.bump();
            self.bump();
            if self.take_while(|c| c.is_ascii_hexdigit()).is_empty() {
                return Err(PErr::new(pos, "expected hex digits after '0x'"));
            }
        } else {
            self.take_while(|c| c.is_ascii_digit());
            if self.peek_char() == Some('.') {
                self.bump();
                self.take_while(|c| c.is_ascii_digit());
            }
            if matches!(self.peek_char(), Some('e' | 'E')) {
                self.bump();
                if matches!(self.peek_char(), Some('+' | '-')) {
                    self.bump();
                }
                if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                    return Err(PErr::new(pos, "expected exponent digits in number"));
                }
            }
        }
        if self
            .peek_char()
            .is_some_and(|c| is_word_char(c) || c == '.')
        {
            let bad = self.pos();
            return Err(PErr::new(bad, "malformed number"));
        }
        Ok(Token {
            kind: Kind::Num,
            text: Cow::Borrowed(&self.src[start..self.off]),
            pos,
        })
    }

    fn string(&mut self) -> PResult<Cow<'a, str>> {
        let open = self.pos();
        self.bump(); // opening quote
        let start = self.off;
        // Fast path: no escapes.
        loop {
            match self.peek_char() {
                None => return Err(PErr::new(open, "unterminated string")),
                Some('"') => {
                    let s = &self.src[start..self.off];
                    self.bump();
                    return Ok(Cow::Borrowed(s));
                }
                Some('\\') => break,
                Some('\n') => {
                    return Err(PErr::new(open, "unterminated string (newline in string)"))
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        let mut out = String::from(&self.src[start..self.off]);
        loop {
            let here = self.pos();
            match self.bump() {
                None => return Err(PErr::new(open, "unterminated string")),
                Some('"') => return Ok(Cow::Owned(out)),
                Some('\n') => {
                    return Err(PErr::new(open, "unterminated string (newline in string)"))
                }
                Some('\\') => {
                    let c = match self.bump() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('u') => self.unicode_escape(here)?,
                        _ => return Err(PErr::new(here, "unknown escape in string")),
                    };
                    out.push(c);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `\u{XXXX}` (after the `u`).
    fn unicode_escape(&mut self, pos: Pos) -> PResult<char> {
        let bad = || PErr::new(pos, "malformed \\u{...} escape");
        if self.bump() != Some('{') {
            return Err(bad());
        }
        let hex = self.take_while(|c| c.is_ascii_hexdigit());
        if self.bump() != Some('}') || hex.is_empty() || hex.len() > 6 {
            return Err(bad());
        }
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(bad)
    }
}

/// Quote and escape a string for `.lnir`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value name as printed after `%`: bare when it only has name characters, else quoted.
pub(crate) fn name(s: &str) -> String {
    if !s.is_empty() && s.chars().all(is_name_char) {
        s.to_string()
    } else {
        quote(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, String)> {
        let mut lx = Lexer::new(src);
        let mut v = Vec::new();
        loop {
            let t = lx.next_token().unwrap();
            if t.kind == Kind::Eof {
                return v;
            }
            v.push((t.kind, t.text.into_owned()));
        }
    }

    #[test]
    fn lexes_names_numbers_and_dtypes() {
        let toks = kinds(r#"%a.b %"x/y:z" @12 -1.5e-7 0x7fc00001 fix8_-2 -inf ; comment"#);
        assert_eq!(
            toks,
            vec![
                (Kind::Value, "a.b".into()),
                (Kind::Value, "x/y:z".into()),
                (Kind::At, "12".into()),
                (Kind::Num, "-1.5e-7".into()),
                (Kind::Num, "0x7fc00001".into()),
                (Kind::Word, "fix8_-2".into()),
                (Kind::Word, "-inf".into()),
            ]
        );
    }

    #[test]
    fn string_escapes_round_trip() {
        let s = "a\"b\\c\nd\te\u{1}f\u{e9}";
        let q = quote(s);
        let mut lx = Lexer::new(&q);
        assert_eq!(lx.next_token().unwrap().text, s);
    }
}
