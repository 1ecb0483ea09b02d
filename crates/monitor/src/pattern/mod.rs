//! The CloudWatch Logs filter pattern language, compiled once into a matcher.
//!
//! One implementation serves FilterLogEvents, metric filters and subscription filters.
//! Four kinds of pattern exist (see the reference, section 1):
//! - the empty pattern (`""` or blank) matches every event;
//! - unstructured terms: `ERROR "two words" -excluded ?either ?or %regex%`;
//! - JSON patterns: `{ $.a.b[0] = "x*" && ($.n > 1e3 || $.f IS NULL) }`;
//! - space-delimited patterns: `[ip, user, ..., status = 4* && status != 403, bytes > 1000]`.
//!
//! Invariants:
//! - parsing and matching never panic, whatever the input; a syntax error carries the 0-based
//!   character position and what was expected there;
//! - matching is case-sensitive and has no side effects;
//! - a JSON pattern never matches an event that is not a JSON object or array, and a
//!   comparison on a field the event does not have is false (`!=` included); only
//!   `NOT EXISTS` is true for an absent field;
//! - the literal prefilter ([`FilterPattern::prefilter_needles`]) is a *necessary* condition:
//!   an event that contains none of the needles cannot match. For JSON patterns this holds
//!   because needles never contain characters JSON may escape, and events containing a
//!   `\u` escape bypass the prefilter.
//!
//! Documented choices where AWS is silent:
//! - unstructured terms: plain terms are ANDed, `-terms` must all be absent, and when `?terms`
//!   are present at least one of them must occur;
//! - bare (unquoted) terms may contain any character except whitespace and `"`;
//! - in JSON patterns, `<`, `>`, `<=`, `>=` only compare JSON numbers; `=`/`!=` with a numeric
//!   literal compare numerically against a JSON number and textually against a string;
//! - in space-delimited patterns every field is text; numeric comparisons parse it as a number.

mod json;
mod parse;
mod set;
mod space;

use std::fmt;
use std::sync::Arc;

use memchr::memmem;
use regex::Regex;

pub use set::PatternSet;

/// Longest filter pattern CloudWatch accepts, in characters.
pub const PATTERN_CHARS_MAX: usize = 1024;
/// Most `%regex%` expressions in one filter pattern.
pub const PATTERN_REGEXES_MAX: usize = 2;
/// Compiled size cap for one regex, so a pattern cannot make us allocate without bound.
const REGEX_BYTES_MAX: usize = 1 << 20;

/// What went wrong while parsing a pattern, for callers that map errors to API codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A `%regex%` uses a character or construct CloudWatch does not allow.
    RegexNotAllowed,
    /// More than [`PATTERN_REGEXES_MAX`] regexes, or a pattern over [`PATTERN_CHARS_MAX`].
    Limit,
}

/// A filter pattern that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern at column {position}: {message}")]
pub struct PatternError {
    /// 0-based character (not byte) position in the pattern text.
    pub position: usize,
    pub kind: PatternErrorKind,
    /// What was expected there, e.g. "expected a value after '='".
    pub message: String,
}

impl PatternError {
    fn syntax(position: usize, message: impl Into<String>) -> Self {
        PatternError {
            position,
            kind: PatternErrorKind::Syntax,
            message: message.into(),
        }
    }
}

/// A parsed, compiled filter pattern. Cheap to clone (shared).
#[derive(Clone)]
pub struct FilterPattern {
    inner: Arc<Compiled>,
}

impl fmt::Debug for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterPattern")
            .field("source", &self.inner.source)
            .finish()
    }
}

impl PartialEq for FilterPattern {
    fn eq(&self, other: &Self) -> bool {
        self.inner.source == other.inner.source
    }
}

struct Compiled {
    source: String,
    body: Body,
    /// Any-of literal needles: an event containing none of them cannot match.
    needles: Option<Vec<String>>,
}

enum Body {
    All,
    Terms(Terms),
    Json(json::JsonPattern),
    Space(space::SpacePattern),
}

/// Which family of pattern this is; callers use it to decide how to read `$` references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    MatchAll,
    Terms,
    Json,
    SpaceDelimited,
}

struct Terms {
    required: Vec<Term>,
    any: Vec<Term>,
    excluded: Vec<Term>,
}

enum Term {
    Literal(Box<memmem::Finder<'static>>),
    Regex(Regex),
}

impl Term {
    fn found(&self, message: &str) -> bool {
        match self {
            Term::Literal(f) => f.find(message.as_bytes()).is_some(),
            Term::Regex(r) => r.is_match(message),
        }
    }
}

/// Values a matching event yields for the fields its pattern names.
///
/// Keys are written as CloudWatch's TestMetricFilter shows them: `$.eventName` for JSON
/// patterns, `$status` for space-delimited ones. [`Extracted::get`] also resolves `$1`, `$2`...
/// (1-based field positions of a space-delimited pattern).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    values: Vec<(String, String)>,
    positional: Vec<Option<String>>,
}

impl Extracted {
    /// The value for `$.a.b`, `$name` or `$N`, if the event had one.
    pub fn get(&self, key: &str) -> Option<&str> {
        if let Some((_, v)) = self.values.iter().find(|(k, _)| k == key) {
            return Some(v);
        }
        let digits = key.strip_prefix('$')?;
        let n: usize = digits.parse().ok()?;
        self.positional.get(n.checked_sub(1)?)?.as_deref()
    }

    /// Every named value, in pattern order (TestMetricFilter's `extractedValues`).
    pub fn values(&self) -> &[(String, String)] {
        &self.values
    }
}

impl FilterPattern {
    /// Parses and compiles `text`. Blank text and `""` match every event.
    pub fn parse(text: &str) -> Result<FilterPattern, PatternError> {
        let compiled = parse::compile(text)?;
        Ok(FilterPattern {
            inner: Arc::new(compiled),
        })
    }

    /// A pattern that matches every event (FilterLogEvents without `filterPattern`).
    pub fn match_all() -> FilterPattern {
        FilterPattern {
            inner: Arc::new(Compiled {
                source: String::new(),
                body: Body::All,
                needles: None,
            }),
        }
    }

    /// The text this pattern was parsed from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    pub fn kind(&self) -> PatternKind {
        match &self.inner.body {
            Body::All => PatternKind::MatchAll,
            Body::Terms(_) => PatternKind::Terms,
            Body::Json(_) => PatternKind::Json,
            Body::Space(_) => PatternKind::SpaceDelimited,
        }
    }

    /// Literal strings of which an event must contain at least one to possibly match, or
    /// `None` when the pattern has no such necessary literal.
    pub fn prefilter_needles(&self) -> Option<&[String]> {
        self.inner.needles.as_deref()
    }

    /// The field references a metric transformation may use with this pattern: `$.a.b`
    /// selectors for JSON patterns, `$name` for space-delimited ones.
    pub fn field_names(&self) -> Vec<String> {
        match &self.inner.body {
            Body::Json(j) => j.selector_names().to_vec(),
            Body::Space(s) => s.field_names(),
            _ => Vec::new(),
        }
    }

    /// True if the pattern matches `message`.
    pub fn matches(&self, message: &str) -> bool {
        if !self.prefilter_passes(message) {
            return false;
        }
        self.matches_unfiltered(message)
    }

    /// Like [`FilterPattern::matches`], skipping the literal prefilter (used by
    /// [`PatternSet`], which runs one combined prefilter for many patterns).
    fn matches_unfiltered(&self, message: &str) -> bool {
        match &self.inner.body {
            Body::All => true,
            Body::Terms(t) => {
                t.required.iter().all(|x| x.found(message))
                    && !t.excluded.iter().any(|x| x.found(message))
                    && (t.any.is_empty() || t.any.iter().any(|x| x.found(message)))
            }
            Body::Json(j) => j.matches(message),
            Body::Space(s) => s.matches(message),
        }
    }

    /// The field values of a matching event; `None` if it does not match.
    pub fn extract(&self, message: &str) -> Option<Extracted> {
        if !self.prefilter_passes(message) {
            return None;
        }
        self.extract_unfiltered(message)
    }

    fn extract_unfiltered(&self, message: &str) -> Option<Extracted> {
        match &self.inner.body {
            Body::All | Body::Terms(_) => self.matches_unfiltered(message).then(Extracted::default),
            Body::Json(j) => j.extract(message),
            Body::Space(s) => s.extract(message),
        }
    }

    fn prefilter_passes(&self, message: &str) -> bool {
        let Some(needles) = &self.inner.needles else {
            return true;
        };
        if matches!(self.inner.body, Body::Json(_)) && message.contains("\\u") {
            return true;
        }
        needles
            .iter()
            .any(|n| memmem::find(message.as_bytes(), n.as_bytes()).is_some())
    }
}

/// A comparison value from a pattern (`"x*"`, `4*`, `1e3`, `%re%`).
#[derive(Debug)]
enum Value {
    Literal { wild: Wild, number: Option<f64> },
    Regex(Regex),
}

/// A string literal with CloudWatch's wildcard rule: `*` may lead and/or trail; a `*` in the
/// middle is a literal character.
#[derive(Debug, Clone)]
struct Wild {
    text: String,
    prefix: bool,
    suffix: bool,
}

impl Wild {
    fn new(raw: &str, allow_wildcards: bool) -> Wild {
        if !allow_wildcards {
            return Wild {
                text: raw.to_string(),
                prefix: false,
                suffix: false,
            };
        }
        let mut text = raw;
        let mut starts = false;
        let mut ends = false;
        if let Some(rest) = text.strip_prefix('*') {
            starts = true;
            text = rest;
        }
        if let Some(rest) = text.strip_suffix('*') {
            ends = true;
            text = rest;
        }
        // `starts` means "anything before": the literal must be a suffix of the field.
        Wild {
            text: text.to_string(),
            prefix: ends,
            suffix: starts,
        }
    }

    fn is_match(&self, field: &str) -> bool {
        match (self.suffix, self.prefix) {
            (false, false) => field == self.text,
            (true, false) => field.ends_with(&self.text),
            (false, true) => field.starts_with(&self.text),
            (true, true) => field.contains(&self.text),
        }
    }
}

/// One test applied to a field.
#[derive(Debug)]
enum Test {
    Exists,
    NotExists,
    IsNull,
    IsTrue,
    IsFalse,
    Eq(Value),
    Ne(Value),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
}

/// Boolean combination of field tests. `field` indexes the selector (JSON) or the field
/// position (space-delimited).
#[derive(Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Test { field: usize, test: Test },
}

impl Expr {
    fn eval(&self, check: &mut impl FnMut(usize, &Test) -> bool) -> bool {
        match self {
            Expr::And(v) => v.iter().all(|e| e.eval(check)),
            Expr::Or(v) => v.iter().any(|e| e.eval(check)),
            Expr::Test { field, test } => check(*field, test),
        }
    }
}

/// A field value as a test sees it.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Missing,
    Null,
    Bool(bool),
    Number(f64, &'a str),
    Text(&'a str),
    /// An object or array: exists, but compares to nothing.
    Composite,
}

/// Strict number syntax for literals and space-delimited fields: optional sign, digits with
/// an optional fraction, optional exponent. Rejects `inf`, `nan`, hex and the empty string.
pub fn parse_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Applies `test` to `value`. `text_is_number` is true for space-delimited fields, where every
/// field is text and numeric comparisons read it as a number.
fn apply_test(test: &Test, value: Scalar<'_>, text_is_number: bool) -> bool {
    let number = |v: Scalar<'_>| -> Option<f64> {
        match v {
            Scalar::Number(n, _) => Some(n),
            Scalar::Text(t) if text_is_number => parse_number(t),
            _ => None,
        }
    };
    match test {
        Test::Exists => !matches!(value, Scalar::Missing),
        Test::NotExists => matches!(value, Scalar::Missing),
        Test::IsNull => matches!(value, Scalar::Null),
        Test::IsTrue => matches!(value, Scalar::Bool(true)),
        Test::IsFalse => matches!(value, Scalar::Bool(false)),
        Test::Eq(v) => value_equals(v, value, text_is_number) == Some(true),
        Test::Ne(v) => value_equals(v, value, text_is_number) == Some(false),
        Test::Lt(x) => number(value).is_some_and(|n| n < *x),
        Test::Le(x) => number(value).is_some_and(|n| n <= *x),
        Test::Gt(x) => number(value).is_some_and(|n| n > *x),
        Test::Ge(x) => number(value).is_some_and(|n| n >= *x),
    }
}

/// `Some(equal)` for a comparable scalar, `None` when the field is absent, null or composite
/// (so neither `=` nor `!=` matches).
fn value_equals(v: &Value, field: Scalar<'_>, text_is_number: bool) -> Option<bool> {
    let text: &str = match field {
        Scalar::Missing | Scalar::Null | Scalar::Composite => return None,
        Scalar::Bool(true) => "true",
        Scalar::Bool(false) => "false",
        Scalar::Number(_, t) => t,
        Scalar::Text(t) => t,
    };
    match v {
        Value::Regex(r) => Some(r.is_match(text)),
        Value::Literal { wild, number } => {
            let field_number = match field {
                Scalar::Number(n, _) => Some(n),
                Scalar::Text(t) if text_is_number => parse_number(t),
                _ => None,
            };
            if let (Some(lit), Some(n)) = (number, field_number) {
                if !wild.prefix && !wild.suffix {
                    return Some(*lit == n);
                }
            }
            Some(wild.is_match(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_strict_grammar() {
        assert_eq!(parse_number("10e-3"), Some(0.01));
        assert_eq!(parse_number("+1000"), Some(1000.0));
        assert_eq!(parse_number("-1.5E2"), Some(-150.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("5."), Some(5.0));
        for bad in ["", "+", ".", "1e", "inf", "NaN", "0x10", "1 2", "1e+"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn wildcards_only_lead_or_trail() {
        assert!(Wild::new("*Event", true).is_match("MyEvent"));
        assert!(!Wild::new("*Event", true).is_match("EventX"));
        assert!(Wild::new("Event*", true).is_match("EventX"));
        assert!(Wild::new("*ven*", true).is_match("Event"));
        assert!(Wild::new("a*b", true).is_match("a*b"));
        assert!(!Wild::new("a*b", true).is_match("axb"));
    }

    #[test]
    fn extracted_resolves_positions() {
        let e = Extracted {
            values: vec![("$ip".into(), "1.2.3.4".into())],
            positional: vec![Some("1.2.3.4".into()), None],
        };
        assert_eq!(e.get("$ip"), Some("1.2.3.4"));
        assert_eq!(e.get("$1"), Some("1.2.3.4"));
        assert_eq!(e.get("$2"), None);
        assert_eq!(e.get("$0"), None);
        assert_eq!(e.get("$9"), None);
    }
}
