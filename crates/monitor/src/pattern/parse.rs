//! Recursive-descent parser for filter patterns. Works on characters so error positions are
//! character columns, as a user counts them.

use memchr::memmem;
use regex::{Regex, RegexBuilder};

use super::json::{JsonPattern, Seg};
use super::space::{SpaceItem, SpacePattern};
use super::{
    parse_number, Body, Compiled, Expr, PatternError, PatternErrorKind, Term, Terms, Test, Value,
    Wild, PATTERN_CHARS_MAX, PATTERN_REGEXES_MAX, REGEX_BYTES_MAX,
};

pub(super) fn compile(text: &str) -> Result<Compiled, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > PATTERN_CHARS_MAX {
        return Err(PatternError {
            position: PATTERN_CHARS_MAX,
            kind: PatternErrorKind::Limit,
            message: format!("a filter pattern may have at most {PATTERN_CHARS_MAX} characters"),
        });
    }
    let mut p = Parser {
        chars,
        pos: 0,
        regexes: 0,
    };
    p.skip_ws();
    let (body, needles) = if p.at_end() || p.rest_is_empty_quotes() {
        (Body::All, None)
    } else {
        match p.peek() {
            Some('{') => {
                let j = p.parse_json()?;
                let needles = j.needles();
                (Body::Json(j), needles)
            }
            Some('[') => {
                let s = p.parse_space()?;
                let needles = s.needles();
                (Body::Space(s), needles)
            }
            _ => p.parse_terms()?,
        }
    };
    Ok(Compiled {
        source: text.to_string(),
        body,
        needles,
    })
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    regexes: usize,
}

/// Characters that end an unquoted value inside JSON and space-delimited patterns.
fn ends_bare_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '{' | '}' | '[' | ']' | '&' | '|' | ',' | '"')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Characters CloudWatch allows inside `%regex%` besides ASCII letters and digits.
fn regex_char_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            ' ' | ':'
                | '_'
                | '#'
                | '='
                | '@'
                | '/'
                | ';'
                | ','
                | '-'
                | '^'
                | '$'
                | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
                | '\\'
                | '*'
                | '+'
                | '.'
        )
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn rest_is_empty_quotes(&self) -> bool {
        let rest: String = self.chars[self.pos..].iter().collect();
        rest.trim() == "\"\""
    }

    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && s.chars().zip(&self.chars[self.pos..]).all(|(a, b)| a == *b)
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    /// Eats a keyword (case-insensitive) that is not followed by a name character.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let n = kw.chars().count();
        if self.chars.len() < self.pos + n {
            return false;
        }
        let same = kw
            .chars()
            .zip(&self.chars[self.pos..])
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
        let boundary = self
            .chars
            .get(self.pos + n)
            .is_none_or(|c| !is_name_char(*c));
        if same && boundary {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError::syntax(self.pos, message))
    }

    fn expect_end(&mut self) -> Result<(), PatternError> {
        self.skip_ws();
        if self.at_end() {
            Ok(())
        } else {
            self.err("expected end of pattern")
        }
    }

    /// A `"..."` string; `\"` and `\\` are escapes. The cursor is on the opening quote.
    fn quoted(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(PatternError::syntax(
                        start,
                        "expected a closing '\"' for this quoted string",
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') if matches!(self.peek_at(1), Some('"' | '\\')) => {
                    out.push(self.peek_at(1).unwrap_or('\\'));
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A `%regex%`; the cursor is on the opening `%`. Enforces CloudWatch's character set and
    /// the per-pattern regex quota.
    fn regex(&mut self) -> Result<Regex, PatternError> {
        let start = self.pos;
        if self.regexes >= PATTERN_REGEXES_MAX {
            return Err(PatternError {
                position: start,
                kind: PatternErrorKind::Limit,
                message: format!(
                    "a filter pattern may contain at most {PATTERN_REGEXES_MAX} regular expressions"
                ),
            });
        }
        self.pos += 1;
        let mut src = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(PatternError::syntax(
                    start,
                    "expected a closing '%' for this regular expression",
                ));
            };
            if c == '%' {
                self.pos += 1;
                break;
            }
            if c == '\\' {
                // An escape takes the next character whatever it is (`\%`, `\.`, `\d`).
                match self.peek_at(1) {
                    Some(next) if next.is_ascii() && !next.is_ascii_control() => {
                        if next.is_ascii_alphabetic() && !"dDwWsSbBtnr".contains(next) {
                            return Err(PatternError {
                                position: self.pos,
                                kind: PatternErrorKind::RegexNotAllowed,
                                message: format!(
                                    "escape '\\{next}' is not allowed in a regular expression"
                                ),
                            });
                        }
                        src.push('\\');
                        src.push(next);
                        self.pos += 2;
                        continue;
                    }
                    _ => {
                        return Err(PatternError {
                            position: self.pos,
                            kind: PatternErrorKind::RegexNotAllowed,
                            message: "expected a character after '\\' in a regular expression"
                                .into(),
                        })
                    }
                }
            }
            if !regex_char_allowed(c) {
                let why = match c {
                    '(' | ')' => " (groups and parentheses are not supported)",
                    _ if !c.is_ascii() => " (only ASCII characters are supported)",
                    _ => "",
                };
                return Err(PatternError {
                    position: self.pos,
                    kind: PatternErrorKind::RegexNotAllowed,
                    message: format!("character '{c}' is not allowed in a regular expression{why}"),
                });
            }
            src.push(c);
            self.pos += 1;
        }
        if src.is_empty() {
            return Err(PatternError::syntax(
                start,
                "expected a regular expression between '%' signs",
            ));
        }
        self.regexes += 1;
        RegexBuilder::new(&src)
            .size_limit(REGEX_BYTES_MAX)
            .dfa_size_limit(REGEX_BYTES_MAX)
            .build()
            .map_err(|e| PatternError {
                position: start,
                kind: PatternErrorKind::RegexNotAllowed,
                message: format!("invalid regular expression: {}", first_line(&e.to_string())),
            })
    }

    // ---- unstructured terms ----

    fn parse_terms(&mut self) -> Result<(Body, Option<Vec<String>>), PatternError> {
        let mut required = Vec::new();
        let mut any = Vec::new();
        let mut excluded = Vec::new();
        // Literal text of each term, to build the prefilter.
        let mut required_text: Vec<String> = Vec::new();
        let mut any_text: Vec<Option<String>> = Vec::new();
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else { break };
            let mode = match c {
                '-' | '?' if self.peek_at(1).is_some_and(|n| !n.is_whitespace()) => {
                    self.pos += 1;
                    c
                }
                '-' | '?' => return self.err(format!("expected a term after '{c}'")),
                _ => ' ',
            };
            let (term, text) = match self.peek() {
                Some('"') => {
                    let s = self.quoted()?;
                    (
                        Term::Literal(Box::new(memmem::Finder::new(s.as_bytes()).into_owned())),
                        Some(s),
                    )
                }
                Some('%') => (Term::Regex(self.regex()?), None),
                _ => {
                    let mut s = String::new();
                    while let Some(ch) = self.peek().filter(|ch| !ch.is_whitespace() && *ch != '"')
                    {
                        s.push(ch);
                        self.pos += 1;
                    }
                    if s.is_empty() {
                        return self.err("expected a term");
                    }
                    (
                        Term::Literal(Box::new(memmem::Finder::new(s.as_bytes()).into_owned())),
                        Some(s),
                    )
                }
            };
            match mode {
                '-' => excluded.push(term),
                '?' => {
                    any.push(term);
                    any_text.push(text);
                }
                _ => {
                    required.push(term);
                    if let Some(t) = text {
                        required_text.push(t);
                    }
                }
            }
        }
        // Prefilter: the longest required literal, else all `?` literals if each is literal.
        let needles = if let Some(longest) = required_text
            .iter()
            .filter(|t| !t.is_empty())
            .max_by_key(|t| t.len())
        {
            Some(vec![longest.clone()])
        } else if !any_text.is_empty()
            && any_text
                .iter()
                .all(|t| t.as_ref().is_some_and(|t| !t.is_empty()))
        {
            Some(any_text.into_iter().flatten().collect())
        } else {
            None
        };
        Ok((
            Body::Terms(Terms {
                required,
                any,
                excluded,
            }),
            needles,
        ))
    }

    // ---- JSON patterns ----

    fn parse_json(&mut self) -> Result<JsonPattern, PatternError> {
        self.pos += 1; // '{'
        let mut b = JsonPattern::builder();
        let expr = self.json_or(&mut b)?;
        self.skip_ws();
        if !self.eat("}") {
            return self.err("expected '&&', '||' or '}'");
        }
        self.expect_end()?;
        Ok(b.finish(expr))
    }

    fn json_or(&mut self, b: &mut super::json::Builder) -> Result<Expr, PatternError> {
        let mut items = vec![self.json_and(b)?];
        loop {
            self.skip_ws();
            if self.eat("||") {
                items.push(self.json_and(b)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::Or(Vec::new()))
        } else {
            Expr::Or(items)
        })
    }

    fn json_and(&mut self, b: &mut super::json::Builder) -> Result<Expr, PatternError> {
        let mut items = vec![self.json_primary(b)?];
        loop {
            self.skip_ws();
            if self.eat("&&") {
                items.push(self.json_primary(b)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::And(Vec::new()))
        } else {
            Expr::And(items)
        })
    }

    fn json_primary(&mut self, b: &mut super::json::Builder) -> Result<Expr, PatternError> {
        self.skip_ws();
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let e = self.json_or(b)?;
                self.skip_ws();
                if !self.eat(")") {
                    return self.err("expected '&&', '||' or ')'");
                }
                Ok(e)
            }
            Some('$') => {
                let (segs, name) = self.selector()?;
                let field = b.selector(segs, name);
                let test = self.test_after_field(true)?;
                Ok(Expr::Test { field, test })
            }
            _ => self.err("expected a selector starting with '$' or '('"),
        }
    }

    /// `$.a.b[0]`; the cursor is on `$`.
    fn selector(&mut self) -> Result<(Vec<Seg>, String), PatternError> {
        let start = self.pos;
        self.pos += 1;
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    let mut name = String::new();
                    while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
                        name.push(c);
                        self.pos += 1;
                    }
                    if name.is_empty() {
                        return self.err("expected a field name after '.'");
                    }
                    segs.push(Seg::Key(name));
                }
                Some('[') => {
                    self.pos += 1;
                    let mut digits = String::new();
                    while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                        digits.push(c);
                        self.pos += 1;
                    }
                    let Ok(index) = digits.parse::<usize>() else {
                        return self.err("expected an array index");
                    };
                    if !self.eat("]") {
                        return self.err("expected ']' after the array index");
                    }
                    segs.push(Seg::Index(index));
                }
                _ => break,
            }
        }
        if segs.is_empty() {
            return self.err("expected '.' or '[' after '$'");
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        Ok((segs, name))
    }

    /// After a field: `= value`, `!= value`, `< n` ..., `IS NULL|TRUE|FALSE`, `NOT EXISTS`.
    /// `json` enables the JSON-only postfix forms.
    fn test_after_field(&mut self, json: bool) -> Result<Test, PatternError> {
        self.skip_ws();
        if json && self.eat_keyword("IS") {
            self.skip_ws();
            if self.eat_keyword("NULL") {
                return Ok(Test::IsNull);
            }
            if self.eat_keyword("TRUE") {
                return Ok(Test::IsTrue);
            }
            if self.eat_keyword("FALSE") {
                return Ok(Test::IsFalse);
            }
            return self.err("expected NULL, TRUE or FALSE after 'IS'");
        }
        if json && self.eat_keyword("NOT") {
            self.skip_ws();
            if self.eat_keyword("EXISTS") {
                return Ok(Test::NotExists);
            }
            return self.err("expected EXISTS after 'NOT'");
        }
        let op = ["!=", "<=", ">=", "=", "<", ">"]
            .into_iter()
            .find(|op| self.eat(op));
        let Some(op) = op else {
            return if json {
                self.err("expected a comparison operator (=, !=, <, >, <=, >=), IS or NOT EXISTS")
            } else {
                self.err("expected a comparison operator (=, !=, <, >, <=, >=)")
            };
        };
        self.skip_ws();
        let value_pos = self.pos;
        match self.peek() {
            None => return self.err(format!("expected a value after '{op}'")),
            Some(c) if c != '"' && ends_bare_value(c) => {
                return self.err(format!("expected a value after '{op}'"))
            }
            _ => {}
        }
        if matches!(op, "<" | ">" | "<=" | ">=") {
            let raw = self.bare_value();
            let Some(n) = parse_number(&raw) else {
                return Err(PatternError::syntax(
                    value_pos,
                    format!("expected a number after '{op}'"),
                ));
            };
            return Ok(match op {
                "<" => Test::Lt(n),
                "<=" => Test::Le(n),
                ">" => Test::Gt(n),
                _ => Test::Ge(n),
            });
        }
        let value = match self.peek() {
            Some('%') => Value::Regex(self.regex()?),
            Some('"') => {
                let s = self.quoted()?;
                if s == "*" {
                    return self.star_test(op, value_pos);
                }
                let number = parse_number(&s);
                Value::Literal {
                    wild: Wild::new(&s, true),
                    number,
                }
            }
            _ => {
                let raw = self.bare_value();
                if raw == "*" {
                    return self.star_test(op, value_pos);
                }
                let number = parse_number(&raw);
                Value::Literal {
                    wild: Wild::new(&raw, true),
                    number,
                }
            }
        };
        Ok(if op == "=" {
            Test::Eq(value)
        } else {
            Test::Ne(value)
        })
    }

    fn star_test(&self, op: &str, pos: usize) -> Result<Test, PatternError> {
        if op == "=" {
            Ok(Test::Exists)
        } else {
            Err(PatternError::syntax(
                pos,
                "expected a value other than '*' after '!=' (use NOT EXISTS)",
            ))
        }
    }

    fn bare_value(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| !ends_bare_value(*c)) {
            s.push(c);
            self.pos += 1;
        }
        s
    }

    // ---- space-delimited patterns ----

    fn parse_space(&mut self) -> Result<SpacePattern, PatternError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        let mut ellipsis = None;
        loop {
            self.skip_ws();
            let item_pos = self.pos;
            if self.eat("...") {
                if ellipsis.is_some() {
                    return Err(PatternError::syntax(
                        item_pos,
                        "expected at most one '...' in a space-delimited pattern",
                    ));
                }
                ellipsis = Some(items.len());
                items.push(SpaceItem {
                    name: String::new(),
                    cond: None,
                    ellipsis: true,
                });
            } else {
                let name = self.field_name()?;
                self.skip_ws();
                let cond = if matches!(self.peek(), Some(',' | ']')) {
                    None
                } else if !matches!(self.peek(), Some('=' | '!' | '<' | '>')) {
                    return self.err("expected ',', ']' or a comparison operator");
                } else {
                    // Re-read from the name: the condition may repeat it (`s = 4* && s != 403`).
                    self.pos = item_pos;
                    Some(self.space_or(&name, items.len())?)
                };
                items.push(SpaceItem {
                    name,
                    cond,
                    ellipsis: false,
                });
            }
            self.skip_ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                break;
            }
            return self.err("expected ',' or ']'");
        }
        self.expect_end()?;
        if items.len() > 256 {
            return Err(PatternError {
                position: 0,
                kind: PatternErrorKind::Limit,
                message: "a space-delimited pattern may have at most 256 fields".into(),
            });
        }
        Ok(SpacePattern::new(items, ellipsis))
    }

    fn field_name(&mut self) -> Result<String, PatternError> {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
            name.push(c);
            self.pos += 1;
        }
        if name.is_empty() {
            return self.err("expected a field name or '...'");
        }
        Ok(name)
    }

    fn space_or(&mut self, name: &str, index: usize) -> Result<Expr, PatternError> {
        let mut items = vec![self.space_and(name, index)?];
        loop {
            self.skip_ws();
            if self.eat("||") {
                items.push(self.space_and(name, index)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::Or(Vec::new()))
        } else {
            Expr::Or(items)
        })
    }

    fn space_and(&mut self, name: &str, index: usize) -> Result<Expr, PatternError> {
        let mut items = vec![self.space_primary(name, index)?];
        loop {
            self.skip_ws();
            if self.eat("&&") {
                items.push(self.space_primary(name, index)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::And(Vec::new()))
        } else {
            Expr::And(items)
        })
    }

    fn space_primary(&mut self, name: &str, index: usize) -> Result<Expr, PatternError> {
        self.skip_ws();
        if self.eat("(") {
            let e = self.space_or(name, index)?;
            self.skip_ws();
            if !self.eat(")") {
                return self.err("expected '&&', '||' or ')'");
            }
            return Ok(e);
        }
        let at = self.pos;
        let got = self.field_name()?;
        if got != name {
            return Err(PatternError::syntax(
                at,
                format!("expected field name '{name}' (a condition may only test its own field)"),
            ));
        }
        let test = self.test_after_field(false)?;
        Ok(Expr::Test { field: index, test })
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}
