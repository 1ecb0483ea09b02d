//! The parsed form of a query: a pipeline of commands over expressions.
//!
//! Field names are interned by the parser: every [`FieldRef`] carries the index of its name in
//! the query's field table, so the executor looks fields up by index, never by string.

use crate::value::Period;
use regex::Regex;
use std::sync::Arc;

/// A reference to a field by name, with its index in the query's field table.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub name: String,
    pub id: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The right-hand side of `like` / `=~`.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `like "text"`: substring match.
    Substring(String),
    /// `like /re/` or `=~ /re/`: unanchored regex search.
    Regex(Regex),
}

/// Scalar (per-row) functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    Ceil,
    Floor,
    Greatest,
    Least,
    Log,
    Sqrt,
    IsPresent,
    Coalesce,
    IsEmpty,
    IsBlank,
    Concat,
    Ltrim,
    Rtrim,
    Trim,
    Strlen,
    ToUpper,
    ToLower,
    Substr,
    Replace,
    StrContains,
    Bin,
    DateFloor,
    DateCeil,
    FromMillis,
    ToMillis,
    IsValidIp,
    IsValidIpV4,
    IsValidIpV6,
    IsIpInSubnet,
    IsIpv4InSubnet,
    IsIpv6InSubnet,
}

impl Func {
    /// Looks a function up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Func> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "abs" => Func::Abs,
            "ceil" => Func::Ceil,
            "floor" => Func::Floor,
            "greatest" => Func::Greatest,
            "least" => Func::Least,
            "log" => Func::Log,
            "sqrt" => Func::Sqrt,
            "ispresent" => Func::IsPresent,
            "coalesce" => Func::Coalesce,
            "isempty" => Func::IsEmpty,
            "isblank" => Func::IsBlank,
            "concat" => Func::Concat,
            "ltrim" => Func::Ltrim,
            "rtrim" => Func::Rtrim,
            "trim" => Func::Trim,
            "strlen" => Func::Strlen,
            "toupper" => Func::ToUpper,
            "tolower" => Func::ToLower,
            "substr" => Func::Substr,
            "replace" => Func::Replace,
            "strcontains" => Func::StrContains,
            "bin" => Func::Bin,
            "datefloor" => Func::DateFloor,
            "dateceil" => Func::DateCeil,
            "frommillis" => Func::FromMillis,
            "tomillis" => Func::ToMillis,
            "isvalidip" => Func::IsValidIp,
            "isvalidipv4" => Func::IsValidIpV4,
            "isvalidipv6" => Func::IsValidIpV6,
            "isipinsubnet" => Func::IsIpInSubnet,
            "isipv4insubnet" => Func::IsIpv4InSubnet,
            "isipv6insubnet" => Func::IsIpv6InSubnet,
            _ => return None,
        })
    }

    /// Accepted argument counts (inclusive); `usize::MAX` for variadic.
    pub fn arity(self) -> (usize, usize) {
        use Func::*;
        match self {
            Abs | Ceil | Floor | Log | Sqrt | IsPresent | IsEmpty | IsBlank | Strlen | ToUpper
            | ToLower | Bin | FromMillis | ToMillis | IsValidIp | IsValidIpV4 | IsValidIpV6 => {
                (1, 1)
            }
            Ltrim | Rtrim | Trim => (1, 2),
            Substr => (2, 3),
            Replace => (3, 3),
            StrContains | DateFloor | DateCeil | IsIpInSubnet | IsIpv4InSubnet | IsIpv6InSubnet => {
                (2, 2)
            }
            Greatest | Least | Coalesce | Concat => (1, usize::MAX),
        }
    }
}

/// Aggregate functions, allowed only inside `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Avg,
    Count,
    CountStar,
    CountDistinct,
    Max,
    Min,
    Pct,
    Stddev,
    Sum,
    Earliest,
    Latest,
    SortsFirst,
    SortsLast,
}

impl AggFunc {
    pub fn from_name(name: &str) -> Option<AggFunc> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "avg" => AggFunc::Avg,
            "count" => AggFunc::Count,
            "count_distinct" => AggFunc::CountDistinct,
            "max" => AggFunc::Max,
            "min" => AggFunc::Min,
            "pct" | "percentile" => AggFunc::Pct,
            "stddev" => AggFunc::Stddev,
            "sum" => AggFunc::Sum,
            "earliest" => AggFunc::Earliest,
            "latest" => AggFunc::Latest,
            "sortsfirst" => AggFunc::SortsFirst,
            "sortslast" => AggFunc::SortsLast,
            _ => return None,
        })
    }
}

/// One aggregate call inside `stats`; `pct` carries its percentile.
#[derive(Debug, Clone)]
pub struct AggCall {
    pub func: AggFunc,
    /// `None` only for `count(*)`.
    pub arg: Option<Expr>,
    /// Percentile for `pct`, 0..=100.
    pub percentile: f64,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Field(FieldRef),
    Str(Arc<str>),
    Num(f64),
    Period(Period),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Like {
        expr: Box<Expr>,
        pattern: Pattern,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Call(Func, Vec<Expr>),
    /// The result of the stats command's aggregate number `.0` (only in stats outputs).
    Agg(usize),
}

impl Expr {
    /// Calls `f` on every field this expression reads (aggregate slots excluded).
    pub fn visit_fields(&self, f: &mut dyn FnMut(&FieldRef)) {
        match self {
            Expr::Field(r) => f(r),
            Expr::Str(_) | Expr::Num(_) | Expr::Period(_) | Expr::Agg(_) => {}
            Expr::Neg(e) | Expr::Not(e) => e.visit_fields(f),
            Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.visit_fields(f);
                b.visit_fields(f);
            }
            Expr::Like { expr, .. } => expr.visit_fields(f),
            Expr::In { expr, list, .. } => {
                expr.visit_fields(f);
                list.iter().for_each(|e| e.visit_fields(f));
            }
            Expr::Call(_, args) => args.iter().for_each(|e| e.visit_fields(f)),
        }
    }

    /// Whether evaluating this expression needs the row's `@timestamp` implicitly (`bin`).
    pub fn uses_bin(&self) -> bool {
        match self {
            Expr::Call(Func::Bin, _) => true,
            Expr::Call(_, args) => args.iter().any(Expr::uses_bin),
            Expr::Neg(e) | Expr::Not(e) => e.uses_bin(),
            Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.uses_bin() || b.uses_bin()
            }
            Expr::Like { expr, .. } => expr.uses_bin(),
            Expr::In { expr, list, .. } => expr.uses_bin() || list.iter().any(Expr::uses_bin),
            _ => false,
        }
    }
}

/// An expression with the output field it is stored under (its alias, or its own text).
#[derive(Debug, Clone)]
pub struct Projection {
    pub expr: Expr,
    pub target: FieldRef,
}

#[derive(Debug, Clone)]
pub struct SortKeySpec {
    pub expr: Expr,
    pub descending: bool,
}

#[derive(Debug, Clone)]
pub enum ParsePattern {
    /// `"... * ..."`: compiled to a regex with one capture per `*`.
    Glob { text: String, regex: Regex },
    /// `/...(?<name>...).../`: named groups become fields.
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub struct ParseCommand {
    pub source: Expr,
    pub pattern: ParsePattern,
    /// Target fields, in capture-group order (glob) or named-group order (regex).
    pub targets: Vec<FieldRef>,
}

#[derive(Debug, Clone)]
pub struct StatsCommand {
    pub aggs: Vec<AggCall>,
    /// Output expressions over [`Expr::Agg`] slots.
    pub outputs: Vec<Projection>,
    pub by: Vec<Projection>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Fields(Vec<Projection>),
    Display(Vec<FieldRef>),
    Filter(Expr),
    Stats(StatsCommand),
    Sort(Vec<SortKeySpec>),
    Limit(usize),
    Parse(ParseCommand),
    Dedup(Vec<FieldRef>),
}
