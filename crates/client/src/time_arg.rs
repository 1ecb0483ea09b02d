//! Time and duration arguments of the CLI.
//!
//! A time is epoch milliseconds (`1795317198000`), RFC 3339 (`2026-11-22T03:13:18Z`, a date
//! alone means its midnight UTC), `now`, or a duration ago (`30s`, `10m`, `2h`, `1d`, `1w`).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A duration like `500ms`, `30s`, `10m`, `2h`, `1d`, `1w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m, 2h or 1d"))?;
    let ms_per: u64 = match unit.trim() {
        "ms" => 1,
        "s" | "sec" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use ms, s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// A time argument, relative ones taken back from `now_ms`.
pub fn parse_time_at(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is too large for epoch milliseconds"));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc).timestamp_millis());
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(d.and_utc().timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |d| d.and_utc().timestamp_millis()));
    }
    let ago = t.strip_suffix("ago").map(str::trim).unwrap_or(t);
    match parse_duration(ago) {
        Ok(d) => Ok(now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
        Err(_) => Err(format!(
            "{s:?} is not a time: use epoch milliseconds, RFC 3339 (2026-11-22T03:13:18Z) \
             or a duration ago (10m, 2h, 1d)"
        )),
    }
}

/// A time argument for clap (relative times are resolved when the command line is parsed).
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_time_at(s, now_ms())
}

/// `2026-11-22T03:13:18.123Z` (UTC, milliseconds), or the raw number if out of range.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_317_198_000;

    #[test]
    fn times_parse_in_every_form() {
        assert_eq!(parse_time_at("1795317198123", NOW), Ok(1_795_317_198_123));
        assert_eq!(parse_time_at("2026-11-22T03:13:18Z", NOW), Ok(NOW));
        assert_eq!(parse_time_at("2026-11-22T04:13:18+01:00", NOW), Ok(NOW));
        assert_eq!(parse_time_at("2026-11-22T03:13:18.5", NOW), Ok(NOW + 500));
        assert_eq!(
            parse_time_at("2026-11-22", NOW),
            Ok(NOW - (3 * 3600 + 13 * 60 + 18) * 1000)
        );
        assert_eq!(parse_time_at("10m", NOW), Ok(NOW - 600_000));
        assert_eq!(parse_time_at("2h ago", NOW), Ok(NOW - 7_200_000));
        assert_eq!(parse_time_at("1d", NOW), Ok(NOW - 86_400_000));
        assert_eq!(parse_time_at("now", NOW), Ok(NOW));
        for bad in ["", "yesterday", "10 parsecs", "-5", "99999999999999999999"] {
            assert!(parse_time_at(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn formatting_is_utc_milliseconds() {
        assert_eq!(format_ms(NOW + 7), "2026-11-22T03:13:18.007Z");
        assert_eq!(format_ms(i64::MAX), i64::MAX.to_string());
    }
}
