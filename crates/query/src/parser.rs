//! Recursive-descent parser from tokens to [`Command`]s.
//!
//! Invariants: never panics; every error carries the location of the offending token and,
//! where it applies, what was expected there. Regexes are compiled here with a size limit, so
//! a query that parses cannot fail later on a pattern.

use crate::ast::*;
use crate::error::SyntaxError;
use crate::lexer::{Tok, Token};
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::Arc;

/// Compiled size limit for any regex in a query, in bytes.
const REGEX_BYTES_MAX: usize = 2 << 20;
/// Deepest expression nesting accepted (guards the recursive descent).
const EXPR_DEPTH_MAX: usize = 64;
/// Largest `limit` Insights accepts.
pub const LIMIT_ROWS_MAX: usize = 10_000;

const COMMANDS: &str = "a command (fields, display, filter, stats, sort, limit, parse, dedup)";

/// Field names of a query, interned to dense indexes.
#[derive(Debug, Clone, Default)]
pub struct FieldTable {
    pub names: Vec<String>,
    index: HashMap<String, usize>,
}

impl FieldTable {
    pub fn intern(&mut self, name: &str) -> FieldRef {
        if let Some(&id) = self.index.get(name) {
            return FieldRef {
                name: name.to_string(),
                id,
            };
        }
        let id = self.names.len();
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        FieldRef {
            name: name.to_string(),
            id,
        }
    }
}

pub(crate) struct Parser<'s> {
    chars: Vec<char>,
    toks: Vec<Token>,
    pos: usize,
    pub fields: FieldTable,
    /// Aggregates collected while parsing a `stats` command; `None` elsewhere.
    aggs: Option<Vec<AggCall>>,
    in_agg: bool,
    seen_stats: bool,
    depth: usize,
    _src: std::marker::PhantomData<&'s str>,
}

type PResult<T> = Result<T, SyntaxError>;

fn is_kw(tok: &Tok, kw: &str) -> bool {
    matches!(tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

impl<'s> Parser<'s> {
    pub(crate) fn new(src: &'s str, toks: Vec<Token>) -> Self {
        Parser {
            chars: src.chars().collect(),
            toks,
            pos: 0,
            fields: FieldTable::default(),
            aggs: None,
            in_agg: false,
            seen_stats: false,
            depth: 0,
            _src: std::marker::PhantomData,
        }
    }

    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].end
        }
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.chars[start.min(self.chars.len())..end.min(self.chars.len())]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    }

    fn expected(&self, what: &str) -> SyntaxError {
        let t = self.peek();
        t.error(
            Some(what),
            format!("expected {what}, found {}", t.tok.describe()),
        )
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> PResult<Token> {
        if self.peek().tok == tok {
            Ok(self.bump())
        } else {
            Err(self.expected(what))
        }
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if is_kw(&self.peek().tok, kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    pub(crate) fn parse_query(&mut self) -> PResult<Vec<Command>> {
        let mut commands = Vec::new();
        let mut dedup_at: Option<Token> = None;
        loop {
            let start_tok = self.peek().clone();
            let cmd = self.parse_command()?;
            if let Some(d) = &dedup_at {
                if !matches!(cmd, Command::Limit(_)) {
                    return Err(start_tok.error(
                        Some("`limit` (the only command allowed after `dedup`)"),
                        format!(
                            "only `limit` may follow `dedup` (line {}, column {})",
                            d.line, d.column
                        ),
                    ));
                }
            }
            if matches!(cmd, Command::Dedup(_)) {
                dedup_at = Some(start_tok);
            }
            commands.push(cmd);
            if self.eat(&Tok::Pipe) {
                continue;
            }
            if self.peek().tok == Tok::Eof {
                return Ok(commands);
            }
            return Err(self.expected("`|` or end of query"));
        }
    }

    fn parse_command(&mut self) -> PResult<Command> {
        let t = self.peek().clone();
        let Tok::Ident(name) = &t.tok else {
            return Err(self.expected(COMMANDS));
        };
        let lname = name.to_ascii_lowercase();
        match lname.as_str() {
            "fields" => {
                self.bump();
                Ok(Command::Fields(self.projection_list(false)?))
            }
            "display" => {
                self.bump();
                Ok(Command::Display(self.field_list()?))
            }
            "filter" => {
                self.bump();
                Ok(Command::Filter(self.expr()?))
            }
            "stats" => {
                self.bump();
                self.parse_stats()
            }
            "sort" => {
                self.bump();
                let mut keys = Vec::new();
                loop {
                    let expr = self.expr()?;
                    let descending = if self.eat_kw("desc") {
                        true
                    } else {
                        self.eat_kw("asc");
                        false
                    };
                    keys.push(SortKeySpec { expr, descending });
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                Ok(Command::Sort(keys))
            }
            "limit" => {
                self.bump();
                let nt = self.peek().clone();
                match nt.tok {
                    Tok::Num(n) if n.fract() == 0.0 && n >= 1.0 && n <= LIMIT_ROWS_MAX as f64 => {
                        self.bump();
                        Ok(Command::Limit(n as usize))
                    }
                    Tok::Num(_) => Err(nt.error(
                        Some("a whole number from 1 to 10000"),
                        format!("limit must be a whole number from 1 to {LIMIT_ROWS_MAX}"),
                    )),
                    _ => Err(self.expected("a number of rows")),
                }
            }
            "parse" => {
                self.bump();
                self.parse_parse()
            }
            "dedup" => {
                self.bump();
                Ok(Command::Dedup(self.field_list()?))
            }
            "pattern" | "anomaly" | "diff" | "unmask" | "unnest" | "lookup" | "join"
            | "filterindex" | "source" => {
                Err(t.error(Some(COMMANDS), format!("command `{name}` is not supported")))
            }
            _ => Err(t.error(
                Some(COMMANDS),
                format!("expected {COMMANDS}, found {}", t.tok.describe()),
            )),
        }
    }

    fn field_name(&mut self) -> PResult<FieldRef> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Ident(s) if !is_reserved(s) => {
                self.bump();
                Ok(self.fields.intern(s))
            }
            Tok::Quoted(s) => {
                self.bump();
                Ok(self.fields.intern(s))
            }
            _ => Err(self.expected("a field name")),
        }
    }

    fn field_list(&mut self) -> PResult<Vec<FieldRef>> {
        let mut out = vec![self.field_name()?];
        while self.eat(&Tok::Comma) {
            out.push(self.field_name()?);
        }
        Ok(out)
    }

    fn projection(&mut self, stats_output: bool) -> PResult<Projection> {
        let start_tok = self.peek().clone();
        let expr = self.expr()?;
        let end = self.prev_end();
        let target = if self.eat_kw("as") {
            self.field_name()?
        } else if let Expr::Field(f) = &expr {
            f.clone()
        } else {
            let text = self.text(start_tok.start, end);
            self.fields.intern(&text)
        };
        if stats_output {
            let mut contains_agg = false;
            let mut stray: Option<String> = None;
            check_stats_output(&expr, &mut contains_agg, &mut stray);
            if let Some(name) = stray {
                return Err(start_tok.error(
                    Some("an aggregate function"),
                    format!("field `{name}` in stats must be inside an aggregate function"),
                ));
            }
            if !contains_agg {
                return Err(start_tok.error(
                    Some("an aggregate function"),
                    "stats expression must use an aggregate function".into(),
                ));
            }
        }
        Ok(Projection { expr, target })
    }

    fn projection_list(&mut self, stats_output: bool) -> PResult<Vec<Projection>> {
        let mut out = vec![self.projection(stats_output)?];
        while self.eat(&Tok::Comma) {
            out.push(self.projection(stats_output)?);
        }
        Ok(out)
    }

    fn parse_stats(&mut self) -> PResult<Command> {
        self.aggs = Some(Vec::new());
        let outputs = self.projection_list(true);
        let aggs = self.aggs.take().unwrap_or_default();
        let outputs = outputs?;
        let by = if self.eat_kw("by") {
            self.projection_list(false)?
        } else {
            Vec::new()
        };
        self.seen_stats = true;
        Ok(Command::Stats(StatsCommand { aggs, outputs, by }))
    }

    fn parse_parse(&mut self) -> PResult<Command> {
        let src_tok = self.peek().clone();
        let source = match &src_tok.tok {
            Tok::Ident(_) | Tok::Quoted(_) => Expr::Field(self.field_name()?),
            // `parse "glob" as ...` reads @message, as Insights does.
            Tok::Str(_) | Tok::Regex(_) => Expr::Field(self.fields.intern("@message")),
            _ => return Err(self.expected("a field to parse, then a glob string or /regex/")),
        };
        let pat_tok = self.peek().clone();
        match pat_tok.tok.clone() {
            Tok::Str(glob) => {
                self.bump();
                let stars = glob.matches('*').count();
                if stars == 0 {
                    return Err(pat_tok.error(
                        Some("a glob with at least one `*`"),
                        "parse glob has no `*` to capture".into(),
                    ));
                }
                if !self.eat_kw("as") {
                    return Err(self.expected("`as` and the names of the captured fields"));
                }
                let names_tok = self.peek().clone();
                let targets = self.field_list()?;
                if targets.len() != stars {
                    return Err(names_tok.error(
                        Some(&format!("{stars} field names")),
                        format!(
                            "parse glob has {stars} `*` but {} field names",
                            targets.len()
                        ),
                    ));
                }
                let regex = compile_regex(&glob_to_regex(&glob), &pat_tok)?;
                Ok(Command::Parse(ParseCommand {
                    source,
                    pattern: ParsePattern::Glob { text: glob, regex },
                    targets,
                }))
            }
            Tok::Regex(re) => {
                self.bump();
                let regex = compile_regex(&re, &pat_tok)?;
                let names: Vec<String> =
                    regex.capture_names().flatten().map(String::from).collect();
                if names.is_empty() {
                    return Err(pat_tok.error(
                        Some("named capture groups `(?<name>...)`"),
                        "parse regex has no named capture groups".into(),
                    ));
                }
                if is_kw(&self.peek().tok, "as") {
                    return Err(self.expected(
                        "`|` or end of query (a parse regex names its fields with `(?<name>...)`)",
                    ));
                }
                let targets = names.iter().map(|n| self.fields.intern(n)).collect();
                Ok(Command::Parse(ParseCommand {
                    source,
                    pattern: ParsePattern::Regex(regex),
                    targets,
                }))
            }
            _ => Err(self.expected("a glob string or /regex/")),
        }
    }

    // ---- expressions, lowest precedence first ----

    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        self.depth += 1;
        if self.depth > EXPR_DEPTH_MAX {
            let t = self.peek().clone();
            self.depth -= 1;
            return Err(t.error(None, "expression nested too deeply".into()));
        }
        let r = self.or_expr();
        self.depth -= 1;
        r
    }

    fn or_expr(&mut self) -> PResult<Expr> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") {
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        let mut left = self.not_expr()?;
        while self.eat_kw("and") {
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> PResult<Expr> {
        if self.eat_kw("not") {
            self.depth += 1;
            if self.depth > EXPR_DEPTH_MAX {
                let t = self.peek().clone();
                return Err(t.error(None, "expression nested too deeply".into()));
            }
            let inner = self.not_expr();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> PResult<Expr> {
        let left = self.additive()?;
        let t = self.peek().clone();
        let op = match t.tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let right = self.additive()?;
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(right)));
        }
        if t.tok == Tok::Match {
            self.bump();
            let pattern = self.pattern(true)?;
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                negated: false,
            });
        }
        let negated = is_kw(&t.tok, "not")
            && (is_kw(&self.peek_at(1).tok, "like") || is_kw(&self.peek_at(1).tok, "in"));
        if negated {
            self.bump();
        }
        if self.eat_kw("like") {
            let pattern = self.pattern(false)?;
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                negated,
            });
        }
        if self.eat_kw("in") {
            self.expect(Tok::LBracket, "`[` starting the list of values")?;
            let mut list = Vec::new();
            if !self.eat(&Tok::RBracket) {
                loop {
                    list.push(self.additive()?);
                    if self.eat(&Tok::RBracket) {
                        break;
                    }
                    self.expect(Tok::Comma, "`,` or `]`")?;
                }
            }
            return Ok(Expr::In {
                expr: Box::new(left),
                list,
                negated,
            });
        }
        Ok(left)
    }

    fn pattern(&mut self, regex_only: bool) -> PResult<Pattern> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Regex(re) => {
                self.bump();
                Ok(Pattern::Regex(compile_regex(re, &t)?))
            }
            Tok::Str(s) if !regex_only => {
                self.bump();
                Ok(Pattern::Substring(s.clone()))
            }
            // `=~ "re"` is accepted as a regex written in a string.
            Tok::Str(s) => {
                self.bump();
                Ok(Pattern::Regex(compile_regex(s, &t)?))
            }
            _ => Err(self.expected(if regex_only {
                "a /regex/"
            } else {
                "a \"string\" or /regex/"
            })),
        }
    }

    fn additive(&mut self) -> PResult<Expr> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> PResult<Expr> {
        let mut left = self.power()?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.power()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn power(&mut self) -> PResult<Expr> {
        let base = self.unary()?;
        if self.eat(&Tok::Caret) {
            // Right-associative: 2^3^2 = 2^(3^2).
            self.depth += 1;
            if self.depth > EXPR_DEPTH_MAX {
                let t = self.peek().clone();
                return Err(t.error(None, "expression nested too deeply".into()));
            }
            let exp = self.power();
            self.depth -= 1;
            return Ok(Expr::Binary(BinOp::Pow, Box::new(base), Box::new(exp?)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.eat(&Tok::Minus) {
            self.depth += 1;
            if self.depth > EXPR_DEPTH_MAX {
                let t = self.peek().clone();
                return Err(t.error(None, "expression nested too deeply".into()));
            }
            let inner = self.unary();
            self.depth -= 1;
            return Ok(match inner? {
                Expr::Num(n) => Expr::Num(-n),
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.eat(&Tok::Plus) {
            self.depth += 1;
            if self.depth > EXPR_DEPTH_MAX {
                let t = self.peek().clone();
                return Err(t.error(None, "expression nested too deeply".into()));
            }
            let inner = self.unary();
            self.depth -= 1;
            return inner;
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Num(n) => {
                self.bump();
                Ok(Expr::Num(*n))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Str(Arc::from(s.as_str())))
            }
            Tok::Period(p) => {
                self.bump();
                Ok(Expr::Period(*p))
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Quoted(s) => {
                self.bump();
                Ok(Expr::Field(self.fields.intern(s)))
            }
            Tok::Ident(name) if self.peek_at(1).tok == Tok::LParen => {
                let name = name.clone();
                self.bump();
                self.bump();
                self.call(&name, &t)
            }
            Tok::Ident(name) if !is_reserved(name) => {
                self.bump();
                Ok(Expr::Field(self.fields.intern(name)))
            }
            _ => Err(self.expected("a field, value or function call")),
        }
    }

    /// Parses the arguments of `name(` (both tokens consumed) up to the closing `)`.
    fn call(&mut self, name: &str, name_tok: &Token) -> PResult<Expr> {
        if let Some(agg) = AggFunc::from_name(name) {
            return self.agg_call(agg, name_tok);
        }
        let Some(func) = Func::from_name(name) else {
            return Err(name_tok.error(
                Some("a function name"),
                format!("unknown function `{name}`"),
            ));
        };
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                args.push(self.expr()?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(Tok::Comma, "`,` or `)`")?;
            }
        }
        let (lo, hi) = func.arity();
        if args.len() < lo || args.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(name_tok.error(
                Some(&format!("{want} arguments")),
                format!(
                    "function `{name}` takes {want} arguments, got {}",
                    args.len()
                ),
            ));
        }
        let period_arg = match func {
            Func::Bin => Some(0),
            Func::DateFloor | Func::DateCeil => Some(1),
            _ => None,
        };
        if let Some(i) = period_arg {
            if !matches!(args[i], Expr::Period(_)) {
                return Err(name_tok.error(
                    Some("a time period such as 5m"),
                    format!("function `{name}` needs a time period such as 5m, 1h or 1d"),
                ));
            }
        }
        Ok(Expr::Call(func, args))
    }

    fn agg_call(&mut self, func: AggFunc, name_tok: &Token) -> PResult<Expr> {
        let name = match &name_tok.tok {
            Tok::Ident(n) => n.clone(),
            _ => String::new(),
        };
        if self.aggs.is_none() || self.in_agg {
            if self.seen_stats && !self.in_agg {
                // After stats, `count(*)` names the column stats produced.
                let mut depth = 1usize;
                while depth > 0 {
                    match self.bump().tok {
                        Tok::LParen => depth += 1,
                        Tok::RParen => depth -= 1,
                        Tok::Eof => return Err(self.expected("`)`")),
                        _ => {}
                    }
                }
                let text = self.text(name_tok.start, self.prev_end());
                return Ok(Expr::Field(self.fields.intern(&text)));
            }
            let msg = if self.in_agg {
                format!("aggregate function `{name}` cannot be nested in another aggregate")
            } else {
                format!("aggregate function `{name}` is only allowed in stats")
            };
            return Err(name_tok.error(None, msg));
        }
        self.in_agg = true;
        let r = self.agg_args(func, &name, name_tok);
        self.in_agg = false;
        let call = r?;
        let aggs = self.aggs.get_or_insert_with(Vec::new);
        aggs.push(call);
        Ok(Expr::Agg(aggs.len() - 1))
    }

    fn agg_args(&mut self, func: AggFunc, name: &str, name_tok: &Token) -> PResult<AggCall> {
        if func == AggFunc::Count {
            if self.eat(&Tok::RParen) {
                return Ok(AggCall {
                    func: AggFunc::CountStar,
                    arg: None,
                    percentile: 0.0,
                });
            }
            if self.peek().tok == Tok::Star && self.peek_at(1).tok == Tok::RParen {
                self.bump();
                self.bump();
                return Ok(AggCall {
                    func: AggFunc::CountStar,
                    arg: None,
                    percentile: 0.0,
                });
            }
        }
        if self.peek().tok == Tok::RParen {
            return Err(self.expected(&format!("an argument to `{name}`")));
        }
        let arg = self.expr()?;
        let mut percentile = 0.0;
        if func == AggFunc::Pct {
            self.expect(Tok::Comma, "`,` and the percentile")?;
            let t = self.peek().clone();
            match t.tok {
                Tok::Num(p) if (0.0..=100.0).contains(&p) => {
                    self.bump();
                    percentile = p;
                }
                _ => return Err(self.expected("a percentile from 0 to 100")),
            }
        }
        if self.peek().tok == Tok::Comma {
            return Err(name_tok.error(
                Some("`)`"),
                format!("aggregate function `{name}` takes one argument"),
            ));
        }
        self.expect(Tok::RParen, "`)`")?;
        Ok(AggCall {
            func,
            arg: Some(arg),
            percentile,
        })
    }
}

fn is_reserved(s: &str) -> bool {
    ["and", "or", "not", "in", "like", "as", "by", "asc", "desc"]
        .iter()
        .any(|k| s.eq_ignore_ascii_case(k))
}

fn check_stats_output(e: &Expr, contains_agg: &mut bool, stray: &mut Option<String>) {
    match e {
        Expr::Agg(_) => *contains_agg = true,
        Expr::Field(f) => {
            if stray.is_none() {
                *stray = Some(f.name.clone());
            }
        }
        Expr::Str(_) | Expr::Num(_) | Expr::Period(_) => {}
        Expr::Neg(a) | Expr::Not(a) => check_stats_output(a, contains_agg, stray),
        Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
            check_stats_output(a, contains_agg, stray);
            check_stats_output(b, contains_agg, stray);
        }
        Expr::Like { expr, .. } => check_stats_output(expr, contains_agg, stray),
        Expr::In { expr, list, .. } => {
            check_stats_output(expr, contains_agg, stray);
            list.iter()
                .for_each(|x| check_stats_output(x, contains_agg, stray));
        }
        Expr::Call(Func::Bin, _) => {
            if stray.is_none() {
                *stray = Some("@timestamp".into());
            }
        }
        Expr::Call(_, args) => args
            .iter()
            .for_each(|x| check_stats_output(x, contains_agg, stray)),
    }
}

fn compile_regex(re: &str, at: &Token) -> PResult<Regex> {
    RegexBuilder::new(re)
        .size_limit(REGEX_BYTES_MAX)
        .dfa_size_limit(REGEX_BYTES_MAX)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last).to_string();
            at.error(
                Some("a valid regular expression"),
                format!("invalid regular expression: {last}"),
            )
        })
}

/// A parse glob as a regex: literal text escaped, each `*` a lazy capture, except a final `*`,
/// which takes the rest of the value. Unanchored, and `.` spans newlines.
pub(crate) fn glob_to_regex(glob: &str) -> String {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut re = String::from("(?s)");
    for (i, part) in parts.iter().enumerate() {
        re.push_str(&regex::escape(part));
        if i + 1 < parts.len() {
            let last_star = i + 2 == parts.len() && parts[i + 1].is_empty();
            re.push_str(if last_star { "(.*)" } else { "(.*?)" });
        }
    }
    re
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn parse(q: &str) -> Result<Vec<Command>, SyntaxError> {
        let toks = tokenize(q)?;
        Parser::new(q, toks).parse_query()
    }

    #[test]
    fn precedence_and_not_in() {
        let cmds = parse("filter a = 1 or b = 2 and not c in [1, 2] | limit 5").unwrap();
        let Command::Filter(Expr::Or(_, right)) = &cmds[0] else {
            panic!("{cmds:?}")
        };
        assert!(matches!(**right, Expr::And(_, _)));
        let cmds = parse("filter x not in [\"a\"] and y not like /b/").unwrap();
        let Command::Filter(Expr::And(l, r)) = &cmds[0] else {
            panic!()
        };
        assert!(matches!(**l, Expr::In { negated: true, .. }));
        assert!(matches!(**r, Expr::Like { negated: true, .. }));
    }

    #[test]
    fn stats_names_default_to_their_text() {
        let cmds = parse("stats count(*), avg(bytes) as a by src, bin(5m)").unwrap();
        let Command::Stats(s) = &cmds[0] else {
            panic!()
        };
        assert_eq!(s.outputs[0].target.name, "count(*)");
        assert_eq!(s.outputs[1].target.name, "a");
        assert_eq!(s.by[1].target.name, "bin(5m)");
        assert_eq!(s.aggs.len(), 2);
    }

    #[test]
    fn errors_have_locations_and_expectations() {
        let e = parse("filter a = 1 |\n stats count(*) by").unwrap_err();
        assert_eq!((e.line, e.column), (2, 19));
        assert!(e.message.contains("expected a field"), "{}", e.message);
        let e = parse("fields a | dedup a | sort a").unwrap_err();
        assert_eq!(e.column, 22);
        let e = parse("filter count(*) > 1").unwrap_err();
        assert!(e.message.contains("only allowed in stats"));
        let e = parse("stats foo(x)").unwrap_err();
        assert_eq!(
            (e.column, e.message.as_str()),
            (7, "unknown function `foo`")
        );
        let e = parse("stats count(*) by x | limit 0").unwrap_err();
        assert_eq!(e.column, 29);
        let e = parse("stats x").unwrap_err();
        assert!(e.message.contains("inside an aggregate"));
        let e = parse("filter a like /(/").unwrap_err();
        assert!(e.message.starts_with("invalid regular expression"));
        assert_eq!(e.column, 15);
        let e = parse("parse @message \"* *\" as a").unwrap_err();
        assert!(e.message.contains("2 `*` but 1"));
    }

    #[test]
    fn glob_regex() {
        assert_eq!(glob_to_regex("[*] *"), "(?s)\\[(.*?)\\] (.*)");
        assert_eq!(glob_to_regex("a=*,"), "(?s)a=(.*?),");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let q = format!("filter {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&q).is_err());
        let q = format!("filter {}1", "-".repeat(5000));
        assert!(parse(&q).is_err());
        let q = format!("filter {}1", "not ".repeat(5000));
        assert!(parse(&q).is_err());
    }
}
