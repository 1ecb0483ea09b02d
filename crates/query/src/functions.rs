//! Scalar functions. Every function is total: bad or missing input gives null (or false for
//! the `is*` predicates), never a panic or an error mid-query.

use crate::ast::{Expr, Func};
use crate::value::{Period, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// Longest string a function may build (`concat`, `replace`), in bytes; past it the result is null.
const STRING_BYTES_MAX: usize = 1 << 20;

fn num(v: &Value) -> Option<f64> {
    v.to_num()
}

fn text(v: &Value) -> Option<String> {
    v.to_text().map(|c| c.into_owned())
}

fn num_or_null(n: Option<f64>) -> Value {
    match n {
        Some(x) if x.is_finite() => Value::Num(x),
        _ => Value::Null,
    }
}

fn period_arg(e: &Expr) -> Option<Period> {
    match e {
        Expr::Period(p) => Some(*p),
        _ => None,
    }
}

/// Evaluates `func`; `args` are the evaluated arguments, `raw` the argument expressions (for
/// period literals) and `timestamp_ms` the row's `@timestamp` (for `bin`).
pub(crate) fn call(func: Func, args: &[Value], raw: &[Expr], timestamp_ms: Option<i64>) -> Value {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    match func {
        Func::Abs => num_or_null(num(arg(0)).map(f64::abs)),
        Func::Ceil => num_or_null(num(arg(0)).map(f64::ceil)),
        Func::Floor => num_or_null(num(arg(0)).map(f64::floor)),
        Func::Sqrt => num_or_null(num(arg(0)).filter(|x| *x >= 0.0).map(f64::sqrt)),
        Func::Log => num_or_null(num(arg(0)).filter(|x| *x > 0.0).map(f64::ln)),
        Func::Greatest | Func::Least => {
            let it = args.iter().filter_map(Value::to_num);
            num_or_null(if func == Func::Greatest {
                it.reduce(f64::max)
            } else {
                it.reduce(f64::min)
            })
        }
        Func::IsPresent => Value::Bool(!arg(0).is_null()),
        Func::Coalesce => args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        Func::IsEmpty => Value::Bool(text(arg(0)).is_none_or(|s| s.is_empty())),
        Func::IsBlank => Value::Bool(text(arg(0)).is_none_or(|s| s.trim().is_empty())),
        Func::Concat => {
            let mut out = String::new();
            for v in args {
                if let Some(t) = v.to_text() {
                    out.push_str(&t);
                    if out.len() > STRING_BYTES_MAX {
                        return Value::Null;
                    }
                }
            }
            Value::Str(Arc::from(out))
        }
        Func::Ltrim | Func::Rtrim | Func::Trim => {
            let Some(s) = text(arg(0)) else {
                return Value::Null;
            };
            let set: Option<Vec<char>> = args.get(1).and_then(text).map(|t| t.chars().collect());
            let pred = |c: char| match &set {
                Some(chars) => chars.contains(&c),
                None => c.is_whitespace(),
            };
            let r = match func {
                Func::Ltrim => s.trim_start_matches(pred),
                Func::Rtrim => s.trim_end_matches(pred),
                _ => s.trim_matches(pred),
            };
            Value::str(r)
        }
        Func::Strlen => match arg(0).to_text() {
            Some(s) => Value::Num(s.chars().count() as f64),
            None => Value::Null,
        },
        Func::ToUpper => text(arg(0)).map_or(Value::Null, |s| Value::str(&s.to_uppercase())),
        Func::ToLower => text(arg(0)).map_or(Value::Null, |s| Value::str(&s.to_lowercase())),
        Func::Substr => {
            let Some(s) = text(arg(0)) else {
                return Value::Null;
            };
            let Some(start) = num(arg(1)) else {
                return Value::Null;
            };
            let start = start.max(0.0) as usize;
            let len = match args.get(2) {
                Some(v) => match num(v) {
                    Some(l) => l.max(0.0) as usize,
                    None => return Value::Null,
                },
                None => usize::MAX,
            };
            Value::str(&s.chars().skip(start).take(len).collect::<String>())
        }
        Func::Replace => {
            let (Some(s), Some(from), Some(to)) = (text(arg(0)), text(arg(1)), text(arg(2))) else {
                return Value::Null;
            };
            if from.is_empty() {
                return Value::str(&s);
            }
            let count = s.matches(from.as_str()).count();
            let grows = to.len().saturating_sub(from.len()).saturating_mul(count);
            if s.len().saturating_add(grows) > STRING_BYTES_MAX {
                return Value::Null;
            }
            Value::str(&s.replace(from.as_str(), &to))
        }
        Func::StrContains => match (arg(0).to_text(), arg(1).to_text()) {
            (Some(s), Some(sub)) => Value::Num(if s.contains(sub.as_ref()) { 1.0 } else { 0.0 }),
            _ => Value::Null,
        },
        Func::Bin => match (raw.first().and_then(period_arg), timestamp_ms) {
            (Some(p), Some(ts)) => p.floor(ts).map_or(Value::Null, Value::Time),
            _ => Value::Null,
        },
        Func::DateFloor | Func::DateCeil => {
            let (Some(p), Some(ts)) = (raw.get(1).and_then(period_arg), to_millis(arg(0))) else {
                return Value::Null;
            };
            let r = if func == Func::DateFloor {
                p.floor(ts)
            } else {
                p.ceil(ts)
            };
            r.map_or(Value::Null, Value::Time)
        }
        Func::FromMillis => match num(arg(0)) {
            Some(ms) if ms.is_finite() && ms.abs() < 1e16 => Value::Time(ms as i64),
            _ => Value::Null,
        },
        Func::ToMillis => to_millis(arg(0)).map_or(Value::Null, |ms| Value::Num(ms as f64)),
        Func::IsValidIp => Value::Bool(ip(arg(0)).is_some()),
        Func::IsValidIpV4 => Value::Bool(matches!(ip(arg(0)), Some(IpAddr::V4(_)))),
        Func::IsValidIpV6 => Value::Bool(matches!(ip(arg(0)), Some(IpAddr::V6(_)))),
        Func::IsIpInSubnet | Func::IsIpv4InSubnet | Func::IsIpv6InSubnet => {
            let (Some(addr), Some(net)) = (ip(arg(0)), arg(1).to_text()) else {
                return Value::Bool(false);
            };
            let family_ok = match func {
                Func::IsIpv4InSubnet => addr.is_ipv4(),
                Func::IsIpv6InSubnet => addr.is_ipv6(),
                _ => true,
            };
            Value::Bool(family_ok && in_subnet(addr, &net))
        }
    }
}

/// Epoch milliseconds of a timestamp value, a number of milliseconds, or an ISO-8601 /
/// Insights-formatted timestamp string.
fn to_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Time(t) => Some(*t),
        Value::Num(n) if n.is_finite() && n.abs() < 1e16 => Some(*n as i64),
        Value::Str(s) => {
            if let Some(n) = crate::value::parse_decimal(s) {
                return (n.abs() < 1e16).then_some(n as i64);
            }
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_millis());
            }
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc().timestamp_millis())
        }
        _ => None,
    }
}

fn ip(v: &Value) -> Option<IpAddr> {
    v.to_text()?.trim().parse().ok()
}

/// Whether `addr` lies in `cidr` (`a.b.c.d/n` or `x::/n`; a bare address means /32 or /128).
pub(crate) fn in_subnet(addr: IpAddr, cidr: &str) -> bool {
    let (net, prefix) = match cidr.trim().split_once('/') {
        Some((n, p)) => (n, p.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = prefix.unwrap_or(32);
            if p > 32 {
                return false;
            }
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = prefix.unwrap_or(128);
            if p > 128 {
                return false;
            }
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::str(x)
    }

    #[test]
    fn string_functions() {
        assert_eq!(
            call(
                Func::Substr,
                &[s("abcdef"), Value::Num(2.0), Value::Num(3.0)],
                &[],
                None
            ),
            s("cde")
        );
        assert_eq!(
            call(Func::Substr, &[s("abc"), Value::Num(5.0)], &[], None),
            s("")
        );
        assert_eq!(call(Func::Trim, &[s("  a b  ")], &[], None), s("a b"));
        assert_eq!(
            call(Func::Ltrim, &[s("xxaxx"), s("x")], &[], None),
            s("axx")
        );
        assert_eq!(
            call(Func::Replace, &[s("a.b.c"), s("."), s("/")], &[], None),
            s("a/b/c")
        );
        assert_eq!(
            call(Func::StrContains, &[s("hello"), s("ell")], &[], None),
            Value::Num(1.0)
        );
        assert_eq!(
            call(
                Func::Concat,
                &[s("a"), Value::Null, Value::Num(3.0)],
                &[],
                None
            ),
            s("a3")
        );
        assert_eq!(
            call(Func::IsBlank, &[s("  ")], &[], None),
            Value::Bool(true)
        );
        assert_eq!(
            call(Func::IsEmpty, &[s(" ")], &[], None),
            Value::Bool(false)
        );
        assert_eq!(
            call(Func::Strlen, &[s("héllo")], &[], None),
            Value::Num(5.0)
        );
    }

    #[test]
    fn numeric_functions() {
        assert_eq!(
            call(
                Func::Greatest,
                &[Value::Num(1.0), s("7"), s("x")],
                &[],
                None
            ),
            Value::Num(7.0)
        );
        assert_eq!(
            call(Func::Sqrt, &[Value::Num(-1.0)], &[], None),
            Value::Null
        );
        assert_eq!(
            call(Func::Log, &[Value::Num(1.0)], &[], None),
            Value::Num(0.0)
        );
        assert_eq!(call(Func::Floor, &[s("2.7")], &[], None), Value::Num(2.0));
    }

    #[test]
    fn subnets() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(in_subnet(a, "10.0.0.0/8"));
        assert!(!in_subnet(a, "10.0.0.0/16"));
        assert!(in_subnet(a, "0.0.0.0/0"));
        assert!(!in_subnet(a, "10.0.0.0/33"));
        assert!(!in_subnet(a, "2001:db8::/32"));
        let b: IpAddr = "2001:db8::5".parse().unwrap();
        assert!(in_subnet(b, "2001:db8::/32"));
        assert!(in_subnet(b, "2001:db8::5"));
    }

    #[test]
    fn time_functions() {
        assert_eq!(
            call(Func::ToMillis, &[s("2023-11-14T22:13:20Z")], &[], None),
            Value::Num(1_700_000_000_000.0)
        );
        assert_eq!(
            call(Func::FromMillis, &[Value::Num(5.0)], &[], None),
            Value::Time(5)
        );
        assert_eq!(
            call(Func::FromMillis, &[Value::Num(1e300)], &[], None),
            Value::Null
        );
    }
}
