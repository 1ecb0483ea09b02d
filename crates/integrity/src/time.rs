//! Timestamps as the digests write them: ISO 8601 UTC, CloudTrail style
//! (`2015-08-17T14:01:31Z`), with milliseconds only when they are not zero.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn iso(ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    if ms.rem_euclid(1000) == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

pub fn parse_iso(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// `YYYYMMDDTHHMMSSZ`, as in digest object names.
pub fn compact(ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `YYYY/MM/DD`, the date folders of digest keys.
pub fn date_path(ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    t.format("%Y/%m/%d").to_string()
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Parse a user-given time: RFC 3339, `YYYY-MM-DD`, or epoch milliseconds.
pub fn parse_user_time(s: &str) -> Option<i64> {
    if let Some(ms) = parse_iso(s) {
        return Some(ms);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(d.and_utc().timestamp_millis());
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(iso(1_439_820_091_000), "2015-08-17T14:01:31Z");
        assert_eq!(iso(1_439_820_091_250), "2015-08-17T14:01:31.250Z");
        assert_eq!(
            parse_iso("2015-08-17T14:01:31.250Z"),
            Some(1_439_820_091_250)
        );
        assert_eq!(compact(1_439_820_091_000), "20150817T140131Z");
        assert_eq!(date_path(1_439_820_091_000), "2015/08/17");
        assert_eq!(parse_user_time("2015-08-17"), Some(1_439_769_600_000));
        assert_eq!(parse_user_time("5"), Some(5));
    }
}
