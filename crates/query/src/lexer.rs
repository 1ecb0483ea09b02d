//! Tokenizer for the Insights query language.
//!
//! Invariants: never panics on any input; every token carries its 0-based character span and
//! 1-based line/column so that every syntax error can point at the text. A `/` starts a regex
//! literal unless it follows an operand (then it is division); the one exception is `parse
//! FIELD /re/`, where the regex follows the source field.

use crate::error::SyntaxError;
use crate::value::{Period, PeriodUnit};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: command, keyword, function or field name (`userIdentity.arn`, `@message`).
    Ident(String),
    /// A backtick-quoted field name.
    Quoted(String),
    Str(String),
    Regex(String),
    Num(f64),
    Period(Period),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Percent,
    Eof,
}

impl Tok {
    /// How the token is described in "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Quoted(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Regex(s) => format!("regex /{s}/"),
            Tok::Num(n) => format!("number {}", crate::value::format_num(*n)),
            Tok::Period(p) => format!("time period {p}"),
            Tok::Pipe => "`|`".into(),
            Tok::Comma => "`,`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Match => "`=~`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
            Tok::Caret => "`^`".into(),
            Tok::Percent => "`%`".into(),
            Tok::Eof => "end of query".into(),
        }
    }

    /// Whether a `/` after this token means division rather than a regex.
    fn is_operand(&self) -> bool {
        match self {
            Tok::Ident(s) => !is_keyword(s),
            Tok::Quoted(_)
            | Tok::Str(_)
            | Tok::Num(_)
            | Tok::Period(_)
            | Tok::RParen
            | Tok::RBracket
            | Tok::Regex(_) => true,
            _ => false,
        }
    }
}

fn is_keyword(s: &str) -> bool {
    ["and", "or", "not", "in", "like", "as", "by"]
        .iter()
        .any(|k| s.eq_ignore_ascii_case(k))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// 0-based character offsets, end exclusive.
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub column: u32,
}

impl Token {
    pub(crate) fn error(&self, expected: Option<&str>, message: String) -> SyntaxError {
        SyntaxError {
            line: self.line,
            column: self.column,
            start: self.start,
            end: self.end.max(self.start + 1),
            expected: expected.map(str::to_string),
            message,
        }
    }
}

struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    column: u32,
    _src: std::marker::PhantomData<&'a str>,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '@' || c == '$'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '$'
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut cur = Cursor {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
        _src: std::marker::PhantomData,
    };
    let mut out: Vec<Token> = Vec::new();
    loop {
        // Whitespace and comments.
        while let Some(c) = cur.peek() {
            if c.is_whitespace() {
                cur.bump();
            } else if c == '#' {
                while let Some(c) = cur.peek() {
                    if c == '\n' {
                        break;
                    }
                    cur.bump();
                }
            } else {
                break;
            }
        }
        let (start, line, column) = (cur.pos, cur.line, cur.column);
        let err = |cur: &Cursor, expected: Option<&str>, message: String| SyntaxError {
            line,
            column,
            start,
            end: cur.pos.max(start + 1),
            expected: expected.map(str::to_string),
            message,
        };
        let Some(c) = cur.peek() else {
            out.push(Token {
                tok: Tok::Eof,
                start,
                end: start,
                line,
                column,
            });
            return Ok(out);
        };
        let tok = if is_ident_start(c) {
            let mut s = String::new();
            while let Some(c) = cur.peek() {
                if !is_ident_continue(c) {
                    break;
                }
                s.push(c);
                cur.bump();
            }
            Tok::Ident(s)
        } else if c.is_ascii_digit()
            || (c == '.' && cur.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut s = String::new();
            while let Some(c) = cur.peek() {
                if c.is_ascii_digit() || c == '.' {
                    s.push(c);
                    cur.bump();
                } else {
                    break;
                }
            }
            // An exponent only when digits follow, so `1e` stays an error below.
            if matches!(cur.peek(), Some('e' | 'E'))
                && (cur.peek_at(1).is_some_and(|d| d.is_ascii_digit())
                    || (matches!(cur.peek_at(1), Some('+' | '-'))
                        && cur.peek_at(2).is_some_and(|d| d.is_ascii_digit())))
            {
                s.push('e');
                cur.bump();
                if let Some(sign @ ('+' | '-')) = cur.peek() {
                    s.push(sign);
                    cur.bump();
                }
                while let Some(c) = cur.peek().filter(char::is_ascii_digit) {
                    s.push(c);
                    cur.bump();
                }
            }
            let mut unit = String::new();
            while let Some(c) = cur.peek() {
                if !is_ident_continue(c) {
                    break;
                }
                unit.push(c);
                cur.bump();
            }
            let n: f64 = s.parse().map_err(|_| {
                err(
                    &cur,
                    Some("a number"),
                    format!("invalid number `{s}{unit}`"),
                )
            })?;
            if unit.is_empty() {
                Tok::Num(n)
            } else {
                let unit_parsed = PeriodUnit::parse(&unit).ok_or_else(|| {
                    err(
                        &cur,
                        Some("a time unit (ms, s, m, h, d, w, mo, q, y)"),
                        format!("invalid time period `{s}{unit}`: unknown unit `{unit}`"),
                    )
                })?;
                if n.fract() != 0.0 || !(1.0..=1_000_000.0).contains(&n) {
                    return Err(err(
                        &cur,
                        Some("a whole number of time units"),
                        format!("invalid time period `{s}{unit}`"),
                    ));
                }
                Tok::Period(Period {
                    amount: n as i64,
                    unit: unit_parsed,
                })
            }
        } else if c == '"' || c == '\'' {
            cur.bump();
            let mut s = String::new();
            loop {
                match cur.bump() {
                    None => {
                        return Err(err(
                            &cur,
                            Some("closing quote"),
                            "unterminated string".into(),
                        ))
                    }
                    Some(q) if q == c => break,
                    Some('\\') => match cur.bump() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some(e @ ('\\' | '"' | '\'')) => s.push(e),
                        // Unknown escapes are kept so regex-like text survives.
                        Some(e) => {
                            s.push('\\');
                            s.push(e);
                        }
                        None => {
                            return Err(err(
                                &cur,
                                Some("closing quote"),
                                "unterminated string".into(),
                            ))
                        }
                    },
                    Some(ch) => s.push(ch),
                }
            }
            Tok::Str(s)
        } else if c == '`' {
            cur.bump();
            let mut s = String::new();
            loop {
                match cur.bump() {
                    None => {
                        return Err(err(
                            &cur,
                            Some("closing backtick"),
                            "unterminated backtick field name".into(),
                        ))
                    }
                    Some('`') => break,
                    Some(ch) => s.push(ch),
                }
            }
            if s.is_empty() {
                return Err(err(&cur, Some("a field name"), "empty field name".into()));
            }
            Tok::Quoted(s)
        } else if c == '/' && !regex_is_division(&out) {
            cur.bump();
            let mut s = String::new();
            loop {
                match cur.bump() {
                    None | Some('\n') => {
                        return Err(err(
                            &cur,
                            Some("closing `/`"),
                            "unterminated regular expression".into(),
                        ))
                    }
                    Some('/') => break,
                    Some('\\') => match cur.bump() {
                        Some('/') => s.push('/'),
                        Some(e) => {
                            s.push('\\');
                            s.push(e);
                        }
                        None => {
                            return Err(err(
                                &cur,
                                Some("closing `/`"),
                                "unterminated regular expression".into(),
                            ))
                        }
                    },
                    Some(ch) => s.push(ch),
                }
            }
            Tok::Regex(s)
        } else {
            cur.bump();
            match c {
                '|' => Tok::Pipe,
                ',' => Tok::Comma,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '+' => Tok::Plus,
                '-' => Tok::Minus,
                '*' => Tok::Star,
                '/' => Tok::Slash,
                '^' => Tok::Caret,
                '%' => Tok::Percent,
                '=' => {
                    if cur.peek() == Some('~') {
                        cur.bump();
                        Tok::Match
                    } else {
                        if cur.peek() == Some('=') {
                            cur.bump();
                        }
                        Tok::Eq
                    }
                }
                '!' if cur.peek() == Some('=') => {
                    cur.bump();
                    Tok::Ne
                }
                '<' => match cur.peek() {
                    Some('=') => {
                        cur.bump();
                        Tok::Le
                    }
                    Some('>') => {
                        cur.bump();
                        Tok::Ne
                    }
                    _ => Tok::Lt,
                },
                '>' => {
                    if cur.peek() == Some('=') {
                        cur.bump();
                        Tok::Ge
                    } else {
                        Tok::Gt
                    }
                }
                other => {
                    return Err(err(&cur, None, format!("unexpected character `{other}`")));
                }
            }
        };
        out.push(Token {
            tok,
            start,
            end: cur.pos,
            line,
            column,
        });
    }
}

/// Decides whether a `/` at this point is division (after an operand) or opens a regex.
fn regex_is_division(prev: &[Token]) -> bool {
    let Some(last) = prev.last() else {
        return false;
    };
    // `parse FIELD /re/`: the field is an operand, yet a regex follows.
    if prev.len() >= 2 {
        if let Tok::Ident(cmd) = &prev[prev.len() - 2].tok {
            let cmd_starts = prev.len() == 2 || prev[prev.len() - 3].tok == Tok::Pipe;
            if cmd_starts && cmd.eq_ignore_ascii_case("parse") {
                return false;
            }
        }
    }
    last.tok.is_operand()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn slash_is_regex_or_division_by_context() {
        assert_eq!(
            toks("filter a like /x\\/y/ and b / 2 > 1"),
            vec![
                Tok::Ident("filter".into()),
                Tok::Ident("a".into()),
                Tok::Ident("like".into()),
                Tok::Regex("x/y".into()),
                Tok::Ident("and".into()),
                Tok::Ident("b".into()),
                Tok::Slash,
                Tok::Num(2.0),
                Tok::Gt,
                Tok::Num(1.0),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("parse @message /(?<a>\\d+)/")[2],
            Tok::Regex("(?<a>\\d+)".into())
        );
    }

    #[test]
    fn periods_comments_and_positions() {
        let t = tokenize("stats count(*) # note\n by bin(5m)").unwrap();
        let by = &t[5];
        assert_eq!(by.tok, Tok::Ident("by".into()));
        assert_eq!((by.line, by.column, by.start), (2, 2, 23));
        assert_eq!(
            t[8].tok,
            Tok::Period(Period {
                amount: 5,
                unit: PeriodUnit::Minute
            })
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = tokenize("filter a = \"abc").unwrap_err();
        assert_eq!((e.line, e.column), (1, 12));
        let e = tokenize("stats count(*) by bin(5x)").unwrap_err();
        assert_eq!((e.line, e.column), (1, 23));
        assert!(e.message.contains("unknown unit"));
        let e = tokenize("filter a ! b").unwrap_err();
        assert_eq!(e.column, 10);
    }
}
