//! trailvault-report: cross-source timelines and management reports, read from a data
//! directory without a server.
//!
//! - [`timeline`]: `trailvault timeline --actor | --access-key | --ip`, one ordered view of
//!   everything a principal, key or address did across every source format.
//! - [`report`]: `trailvault report --from --to --format html|md`, activity, top principals,
//!   failed logins, root usage, IAM / security group / KMS changes, alarms fired, integrity
//!   status, storage per group, and [`anomaly`] baselines with ranked deviations.
//! - [`svg`]: the charts, as inline SVG built here (the HTML page needs no script and no
//!   network to render).
//! - [`source`]: reading events with their normalized form, embedded or, when a server holds
//!   the directory, from the sealed segment files alone.
//!
//! Invariants: reading never writes events, never seals, and never creates a data directory.

pub mod anomaly;
pub mod report;
pub mod source;
pub mod svg;
pub mod timeline;

pub use report::{run_report, ReportArgs};
pub use timeline::{run_timeline, TimelineArgs};

use anyhow::bail;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A time on the command line: RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC), epoch ms,
/// `now`, or an age before `now_ms` such as `14d`, `12h`, `30m`.
pub fn parse_time_arg(s: &str, now_ms: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    let age = |unit: char, ms: i64| -> Option<i64> {
        let n: i64 = s.strip_suffix(unit)?.parse().ok()?;
        Some(now_ms.saturating_sub(n.saturating_mul(ms)))
    };
    if let Some(t) = age('d', DAY_MS)
        .or_else(|| age('h', HOUR_MS))
        .or_else(|| age('m', 60_000))
    {
        return Ok(t);
    }
    match trailvault_integrity::time::parse_user_time(s) {
        Some(t) => Ok(t),
        None => bail!(
            "{s:?} is not a time (use RFC 3339, YYYY-MM-DD, epoch ms, now, or an age like 7d)"
        ),
    }
}

/// `2025-03-15T09:30:00Z` (milliseconds shown only when not zero).
pub fn fmt_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms % 1000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// Escape text for HTML and SVG element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        let now = 1_742_032_800_000; // 2025-03-15T10:00:00Z
        assert_eq!(parse_time_arg("now", now).unwrap(), now);
        assert_eq!(parse_time_arg("1d", now).unwrap(), now - DAY_MS);
        assert_eq!(parse_time_arg("2h", now).unwrap(), now - 2 * HOUR_MS);
        assert_eq!(
            parse_time_arg("2025-03-15", now).unwrap(),
            1_741_996_800_000
        );
        assert_eq!(
            parse_time_arg("2025-03-15T10:00:00Z", now).unwrap(),
            1_742_032_800_000
        );
        assert_eq!(parse_time_arg("12345", now).unwrap(), 12345);
        assert!(parse_time_arg("yesterday-ish", now).is_err());
        assert_eq!(fmt_time(now), "2025-03-15T10:00:00Z");
        assert_eq!(fmt_time(now + 5), "2025-03-15T10:00:00.005Z");
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
