//! Values flowing through a query, their coercions, ordering and display.
//!
//! Insights is loosely typed: a field holds a string, a number, a boolean or a timestamp, and
//! operators coerce. The rules here, in one place:
//! - numeric context (arithmetic, numeric functions, `sum`/`avg`): numbers as they are, timestamps
//!   as epoch milliseconds, booleans as 1/0, strings when they parse as a decimal number;
//! - `=`/`!=`/`in`: numerically when one side is not a string and both sides coerce, else as text;
//! - `<`/`<=`/`>`/`>=`: numerically when both sides coerce, else as text;
//! - display: integers without a fractional part, timestamps as `YYYY-MM-DD HH:MM:SS.mmm` (UTC),
//!   booleans as `1`/`0`; absent values are left out of a result row.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

/// One value. Cloning is cheap: strings are shared.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(Arc<str>),
    Num(f64),
    Bool(bool),
    /// Epoch milliseconds, displayed as a timestamp.
    Time(i64),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The number this value stands for in a numeric context.
    pub fn to_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Time(t) => Some(*t as f64),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Str(s) => parse_decimal(s),
            Value::Null => None,
        }
    }

    /// The text shown for this value; `None` for null.
    pub fn to_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Null => None,
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Num(n) => Some(Cow::Owned(format_num(*n))),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "1" } else { "0" })),
            Value::Time(t) => Some(Cow::Owned(format_time(*t))),
        }
    }

    /// Truthiness in `filter`: true booleans, non-zero numbers, non-empty strings.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Time(_) => true,
            Value::Str(s) => !s.is_empty(),
        }
    }
}

/// Parses a decimal number as written in logs; rejects `inf`, `nan` and other words that
/// `f64::from_str` would accept.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let t = s.trim();
    let first = t.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if t.bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Numbers as Insights shows them: integers without `.0`.
pub fn format_num(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC; out-of-range times fall back to the raw milliseconds.
pub fn format_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

/// `=` semantics; `None` when either side is null.
pub fn values_equal(a: &Value, b: &Value) -> Option<bool> {
    if a.is_null() || b.is_null() {
        return None;
    }
    let textual = matches!(a, Value::Str(_)) && matches!(b, Value::Str(_));
    if !textual {
        if let (Some(x), Some(y)) = (a.to_num(), b.to_num()) {
            return Some(x == y);
        }
    }
    Some(a.to_text() == b.to_text())
}

/// `<`-family semantics; `None` when either side is null.
pub fn values_compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if let (Some(x), Some(y)) = (a.to_num(), b.to_num()) {
        return x.partial_cmp(&y);
    }
    Some(a.to_text().cmp(&b.to_text()))
}

/// A value reduced to a totally ordered, hashable key, for sorting, grouping and dedup.
/// Numbers (and anything that coerces to one) sort before text; null sorts last.
#[derive(Debug, Clone)]
pub enum SortKey {
    Num(f64),
    Text(Arc<str>),
    Null,
}

impl SortKey {
    pub fn of(v: &Value) -> SortKey {
        match v {
            Value::Null => SortKey::Null,
            Value::Str(s) => match parse_decimal(s) {
                Some(n) => SortKey::Num(n),
                None => SortKey::Text(s.clone()),
            },
            other => match other.to_num() {
                Some(n) => SortKey::Num(n),
                None => SortKey::Null,
            },
        }
    }
    fn rank(&self) -> u8 {
        match self {
            SortKey::Num(_) => 0,
            SortKey::Text(_) => 1,
            SortKey::Null => 2,
        }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}
impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SortKey {}

/// Exact identity of a value for grouping, `count_distinct` and `dedup`: unlike [`SortKey`],
/// `"01"` and `"1"` stay different groups, as the displayed values differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Null,
    Str(Arc<str>),
    Num(u64),
    Bool(bool),
    Time(i64),
}

impl GroupKey {
    pub fn of(v: &Value) -> GroupKey {
        match v {
            Value::Null => GroupKey::Null,
            Value::Str(s) => GroupKey::Str(s.clone()),
            // Normalise -0.0 so it groups with 0.
            Value::Num(n) => GroupKey::Num(if *n == 0.0 { 0 } else { n.to_bits() }),
            Value::Bool(b) => GroupKey::Bool(*b),
            Value::Time(t) => GroupKey::Time(*t),
        }
    }
}

/// Units of a time period literal such as `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl PeriodUnit {
    pub fn parse(s: &str) -> Option<PeriodUnit> {
        Some(match s {
            "ms" => PeriodUnit::Millisecond,
            "s" | "sec" => PeriodUnit::Second,
            "m" | "min" => PeriodUnit::Minute,
            "h" | "hr" => PeriodUnit::Hour,
            "d" => PeriodUnit::Day,
            "w" => PeriodUnit::Week,
            "mo" | "mon" => PeriodUnit::Month,
            "q" | "qtr" => PeriodUnit::Quarter,
            "y" | "yr" => PeriodUnit::Year,
            _ => return None,
        })
    }
    fn suffix(self) -> &'static str {
        match self {
            PeriodUnit::Millisecond => "ms",
            PeriodUnit::Second => "s",
            PeriodUnit::Minute => "m",
            PeriodUnit::Hour => "h",
            PeriodUnit::Day => "d",
            PeriodUnit::Week => "w",
            PeriodUnit::Month => "mo",
            PeriodUnit::Quarter => "q",
            PeriodUnit::Year => "y",
        }
    }
}

/// A time period such as `5m` or `1mo`, used by `bin`, `datefloor` and `dateceil`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub amount: i64,
    pub unit: PeriodUnit,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl Period {
    /// Fixed-length periods in milliseconds; `None` for calendar periods (months and longer).
    fn fixed_ms(self) -> Option<i64> {
        let unit_ms = match self.unit {
            PeriodUnit::Millisecond => 1,
            PeriodUnit::Second => 1_000,
            PeriodUnit::Minute => 60_000,
            PeriodUnit::Hour => 3_600_000,
            PeriodUnit::Day => 86_400_000,
            PeriodUnit::Week => 7 * 86_400_000,
            PeriodUnit::Month | PeriodUnit::Quarter | PeriodUnit::Year => return None,
        };
        Some(unit_ms * self.amount)
    }

    fn months(self) -> i64 {
        match self.unit {
            PeriodUnit::Quarter => 3 * self.amount,
            PeriodUnit::Year => 12 * self.amount,
            _ => self.amount,
        }
    }

    /// The start of the period containing `ms`: fixed periods are aligned to the Unix epoch
    /// (weeks to Mondays), calendar periods to whole months since year 0 (so `1y` starts on January 1st).
    pub fn floor(self, ms: i64) -> Option<i64> {
        if let Some(p) = self.fixed_ms() {
            // Weeks start on Monday (ISO); the epoch fell on a Thursday, four days later.
            let offset = if self.unit == PeriodUnit::Week {
                4 * 86_400_000
            } else {
                0
            };
            let shifted = ms.checked_sub(offset)?;
            return shifted.div_euclid(p).checked_mul(p)?.checked_add(offset);
        }
        use chrono::Datelike;
        let t = chrono::DateTime::from_timestamp_millis(ms)?;
        let month_index = t.year() as i64 * 12 + t.month0() as i64;
        let start = month_index - month_index.rem_euclid(self.months());
        month_start_ms(start)
    }

    /// The end of the period containing `ms` (the next period's start), or `ms` itself when it
    /// is already on a boundary.
    pub fn ceil(self, ms: i64) -> Option<i64> {
        let floor = self.floor(ms)?;
        if floor == ms {
            return Some(ms);
        }
        if let Some(p) = self.fixed_ms() {
            return floor.checked_add(p);
        }
        use chrono::Datelike;
        let t = chrono::DateTime::from_timestamp_millis(floor)?;
        let month_index = t.year() as i64 * 12 + t.month0() as i64;
        month_start_ms(month_index + self.months())
    }
}

fn month_start_ms(month_index: i64) -> Option<i64> {
    let year = i32::try_from(month_index.div_euclid(12)).ok()?;
    let month = u32::try_from(month_index.rem_euclid(12)).ok()? + 1;
    let date = chrono::NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_rules() {
        assert_eq!(format_num(3.0), "3");
        assert_eq!(format_num(2.5), "2.5");
        assert_eq!(format_num(-0.0), "0");
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(Value::Bool(true).to_text().unwrap(), "1");
    }

    #[test]
    fn coercions() {
        assert_eq!(parse_decimal(" 42 "), Some(42.0));
        assert_eq!(parse_decimal("inf"), None);
        assert_eq!(parse_decimal("NaN"), None);
        assert_eq!(parse_decimal("1e3"), Some(1000.0));
        assert_eq!(parse_decimal("12abc"), None);
        assert_eq!(
            values_equal(&Value::str("200"), &Value::Num(200.0)),
            Some(true)
        );
        assert_eq!(
            values_equal(&Value::str("01"), &Value::str("1")),
            Some(false)
        );
        assert_eq!(values_equal(&Value::Null, &Value::Num(1.0)), None);
        assert_eq!(
            values_compare(&Value::str("9"), &Value::str("10")),
            Some(Ordering::Less)
        );
        assert_eq!(
            values_compare(&Value::str("b"), &Value::str("a")),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn sort_keys_are_total() {
        let mut keys = [
            SortKey::Null,
            SortKey::of(&Value::str("b")),
            SortKey::of(&Value::Num(f64::NAN)),
            SortKey::of(&Value::str("10")),
            SortKey::of(&Value::Num(2.0)),
        ];
        keys.sort();
        assert!(matches!(keys[4], SortKey::Null));
        assert!(matches!(&keys[3], SortKey::Text(t) if &**t == "b"));
    }

    #[test]
    fn periods_floor_and_ceil() {
        let five_min = Period {
            amount: 5,
            unit: PeriodUnit::Minute,
        };
        assert_eq!(five_min.floor(1_000_000), Some(900_000));
        assert_eq!(five_min.ceil(1_000_000), Some(1_200_000));
        assert_eq!(five_min.ceil(900_000), Some(900_000));
        assert_eq!(five_min.floor(-1), Some(-300_000));
        let month = Period {
            amount: 1,
            unit: PeriodUnit::Month,
        };
        // 2023-11-14 22:13:20 -> 2023-11-01, 2023-12-01
        assert_eq!(
            format_time(month.floor(1_700_000_000_000).unwrap()),
            "2023-11-01 00:00:00.000"
        );
        assert_eq!(
            format_time(month.ceil(1_700_000_000_000).unwrap()),
            "2023-12-01 00:00:00.000"
        );
        let quarter = Period {
            amount: 1,
            unit: PeriodUnit::Quarter,
        };
        assert_eq!(
            format_time(quarter.floor(1_700_000_000_000).unwrap()),
            "2023-10-01 00:00:00.000"
        );
        assert_eq!(month.floor(i64::MAX), None);
        let week = Period {
            amount: 1,
            unit: PeriodUnit::Week,
        };
        // 2023-11-14 is a Tuesday.
        assert_eq!(
            format_time(week.floor(1_700_000_000_000).unwrap()),
            "2023-11-13 00:00:00.000"
        );
    }
}
