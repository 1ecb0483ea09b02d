//! Amazon Redshift audit logs: the connection log, the user log and the user activity log.
//!
//! Layouts (Amazon Redshift Management Guide, "Database audit logging"):
//! - connection log: one `|`-separated line per event with up to 22 columns, `event` through
//!   `compression` ([`CONNECTION_COLUMNS`]). Older files have fewer trailing columns and end each
//!   line with `|`; both are accepted, and columns past the known ones are kept as `column_<n>`.
//! - user log: one `|`-separated line per change, 11 columns ([`USER_COLUMNS`]).
//! - user activity log: `'<ISO time> UTC [ db=… user=… pid=… userid=… xid=… ]' LOG: <sql>`;
//!   the SQL may continue on following lines, which carry no prefix. A record starts at a line
//!   beginning with `'YYYY-MM-DDT` and runs to the line before the next such line.
//!
//! CHAR values are space-padded: every value is trimmed, and an empty value is `null` in
//! `parsed`. `recordtime` (`Mon, 21 May 2018 01:38:01:601`) and the activity time are UTC.
//!
//! Invariants: never panics; every line of the input ends up in exactly one record (the activity
//! log's records span several lines), one rejection, or `skipped` (blank lines only).

use trailvault_model::{Activity, JsonText, Member, Normalized, Outcome, Resource};

use super::host::{blank, each_line, utc_ms};
use crate::text::{lines, month_from_abbrev, parse_iso8601_ms, Line};
use crate::{ParseOutput, ParsedRecord, Rejection};

/// The `service` every Redshift record is normalized with.
pub const SERVICE: &str = "redshift.amazonaws.com";

/// Connection log columns in file order, newest layout (STL_CONNECTION_LOG).
pub const CONNECTION_COLUMNS: [&str; 22] = [
    "event",
    "recordtime",
    "remotehost",
    "remoteport",
    "pid",
    "dbname",
    "username",
    "authmethod",
    "duration",
    "sslversion",
    "sslcipher",
    "mtu",
    "sslcompression",
    "sslexpansion",
    "iamauthguid",
    "application_name",
    "os_version",
    "driver_version",
    "plugin_name",
    "protocol_version",
    "sessionid",
    "compression",
];
const CONNECTION_INT_COLUMNS: &[&str] =
    &["remoteport", "pid", "duration", "mtu", "protocol_version"];
/// Every documented connection log layout has at least `event` through `duration`.
const CONNECTION_COLUMNS_MIN: usize = 9;

/// User log columns in file order (STL_USERLOG).
pub const USER_COLUMNS: [&str; 11] = [
    "userid",
    "username",
    "oldusername",
    "action",
    "usecreatedb",
    "usesuper",
    "usecatupd",
    "valuntil",
    "pid",
    "xid",
    "recordtime",
];
const USER_INT_COLUMNS: &[&str] = &[
    "userid",
    "usecreatedb",
    "usesuper",
    "usecatupd",
    "valuntil",
    "pid",
    "xid",
];

/// Largest multi-line record (all its lines); larger ones are rejected whole.
pub const MULTILINE_RECORD_BYTES_MAX: usize = 8 << 20;

/// Parses a connection log (`connectionlog`). Source id `redshift-connection`.
pub fn parse_connection(input: &[u8]) -> ParseOutput {
    each_line(input, connection_record)
}

/// Parses a user log (`userlog`). Source id `redshift-user`.
pub fn parse_user(input: &[u8]) -> ParseOutput {
    each_line(input, user_record)
}

/// Splits a `|`-separated line into trimmed values. A single trailing `|` (older layouts) ends
/// the line rather than opening an empty last column.
fn pipe_values(line: &str) -> Vec<&str> {
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').map(|v| v.trim_matches(' ')).collect()
}

/// Builds `parsed` from `names` and `values`: integers as numbers where they parse, empty
/// values as `null`, unnamed trailing values as `column_<n>` (1-based).
fn columns_object(names: &[&str], ints: &[&str], values: &[&str]) -> JsonText {
    let unnamed: Vec<String> = (names.len()..values.len())
        .map(|i| format!("column_{}", i + 1))
        .collect();
    let mut members: Vec<(&str, Member<'_>)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = names
                .get(i)
                .copied()
                .unwrap_or_else(|| unnamed[i - names.len()].as_str());
            let member = if v.is_empty() {
                Member::Null
            } else if ints.contains(&name) {
                v.parse::<i64>().map_or(Member::Str(v), Member::Int)
            } else {
                Member::Str(v)
            };
            (name, member)
        })
        .collect();
    JsonText::object(&mut members)
}

/// Parses `Mon, 21 May 2018 01:38:01:601` (milliseconds after a colon; optional) as UTC.
pub(crate) fn parse_recordtime_ms(s: &str) -> Option<i64> {
    let rest = s.split_once(", ").map_or(s, |(_, r)| r);
    let mut parts = rest.split(' ').filter(|p| !p.is_empty());
    let day: u32 = parts.next()?.parse().ok()?;
    let month = month_from_abbrev(parts.next()?.as_bytes())?;
    let year: i64 = parts.next()?.parse().ok()?;
    let clock = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let mut c = clock.split(':');
    let h: u32 = c.next()?.parse().ok()?;
    let mi: u32 = c.next()?.parse().ok()?;
    let sec: u32 = c.next()?.parse().ok()?;
    let ms: u32 = match c.next() {
        Some(ms) if !ms.is_empty() && ms.len() <= 3 => ms.parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    if c.next().is_some() {
        return None;
    }
    utc_ms(year, month, day, h, mi, sec, ms)
}

/// `::ffff:192.0.2.10` (an IPv4-mapped IPv6 address) is reported as `192.0.2.10`; `[local]`
/// (a Unix socket) has no address.
fn remote_ip(host: &str) -> Option<String> {
    match host {
        "" | "[local]" => None,
        h => match h.strip_prefix("::ffff:") {
            Some(v4) if v4.parse::<std::net::Ipv4Addr>().is_ok() => Some(v4.to_owned()),
            _ => Some(h.to_owned()),
        },
    }
}

fn get<'a>(values: &[&'a str], names: &[&str], name: &str) -> Option<&'a str> {
    let i = names.iter().position(|n| *n == name)?;
    values.get(i).copied().filter(|v| !v.is_empty())
}

fn connection_record(line: &str) -> Result<Normalized, String> {
    let values = pipe_values(line);
    if values.len() < CONNECTION_COLUMNS_MIN {
        return Err(format!(
            "expected at least {CONNECTION_COLUMNS_MIN} `|`-separated connection log columns, found {}",
            values.len()
        ));
    }
    let names = &CONNECTION_COLUMNS[..];
    let event = get(&values, names, "event")
        .ok_or("expected an event name in column 1, found an empty value")?;
    let recordtime = values[1];
    let time_ms = parse_recordtime_ms(recordtime).ok_or_else(|| {
        format!("expected recordtime like `Mon, 21 May 2018 01:38:01:601`, found `{recordtime}`")
    })?;
    let field = |name: &str| get(&values, names, name);
    let outcome = match event {
        "authenticated" => Some(Outcome::Success),
        e if e.contains("failure") || e.contains("failed") => Some(Outcome::Failure),
        _ => None,
    };
    Ok(Normalized {
        source: "redshift-connection".into(),
        time_ms: Some(time_ms),
        service: Some(SERVICE.into()),
        action: Some(event.to_owned()),
        actor_user_name: field("username").map(str::to_owned),
        src_ip: field("remotehost").and_then(remote_ip),
        src_port: field("remoteport").and_then(|p| p.parse().ok()),
        resources: field("dbname")
            .map(|db| Resource {
                id: Some(db.to_owned()),
                kind: Some("database".into()),
                owner_account: None,
            })
            .into_iter()
            .collect(),
        outcome,
        source_event_id: field("sessionid").map(str::to_owned),
        duration_ms: field("duration")
            .and_then(|d| d.parse::<i64>().ok())
            .map(|us| us as f64 / 1000.0),
        parsed: Some(columns_object(names, CONNECTION_INT_COLUMNS, &values)),
        ..Normalized::default()
    })
}

fn user_record(line: &str) -> Result<Normalized, String> {
    let values = pipe_values(line);
    if values.len() < USER_COLUMNS.len() {
        return Err(format!(
            "expected {} `|`-separated user log columns, found {}",
            USER_COLUMNS.len(),
            values.len()
        ));
    }
    let names = &USER_COLUMNS[..];
    let recordtime = values[10];
    let time_ms = parse_recordtime_ms(recordtime).ok_or_else(|| {
        format!("expected recordtime like `Mon, 21 May 2018 01:38:01:601`, found `{recordtime}`")
    })?;
    let userid = values[0];
    if userid.parse::<i64>().is_err() {
        return Err(format!(
            "expected a numeric userid in column 1, found `{userid}`"
        ));
    }
    let field = |name: &str| get(&values, names, name);
    let action = field("action").ok_or("expected an action in column 4, found an empty value")?;
    let activity = match action {
        "create" => Activity::Create,
        "alter" | "rename" => Activity::Update,
        "drop" => Activity::Delete,
        _ => Activity::Other,
    };
    Ok(Normalized {
        source: "redshift-user".into(),
        time_ms: Some(time_ms),
        service: Some(SERVICE.into()),
        action: Some(action.to_owned()),
        activity: Some(activity),
        resources: vec![Resource {
            id: field("username").map(str::to_owned),
            kind: Some("user".into()),
            owner_account: None,
        }],
        parsed: Some(columns_object(names, USER_INT_COLUMNS, &values)),
        ..Normalized::default()
    })
}

/// True for a line that opens a user activity record: `'YYYY-MM-DDT…`.
fn is_activity_start(b: &[u8]) -> bool {
    b.len() >= 12
        && b[0] == b'\''
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b'-'
        && b[6..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..11].iter().all(u8::is_ascii_digit)
        && b[11] == b'T'
}

/// The lines of one multi-line record: the start line and the last line that belongs to it.
struct Span<'a> {
    first: Line<'a>,
    last: Line<'a>,
    /// Blank lines seen after `last`; they join the record only if more text follows.
    blank_after: u64,
}

/// Parses a user activity log (`useractivitylog`). Source id `redshift-activity`.
///
/// Text before the first record start cannot be attributed to a record: each such non-blank
/// line is rejected on its own. Blank lines at the end of a record are skipped, blank lines
/// inside a statement belong to it.
pub fn parse_activity(input: &[u8]) -> ParseOutput {
    multiline_records(input, is_activity_start, "`'yyyy-mm-ddt`", activity_record)
}

/// Groups lines into records that start at a line for which `is_start` holds and run until
/// the next start. `raw` is the exact bytes from the first byte of the start line to the last
/// byte of its last non-blank line. Non-blank lines before the first start are rejected one by
/// one (`start_what` names what a start looks like); trailing blank lines are skipped.
pub(crate) fn multiline_records(
    input: &[u8],
    is_start: impl Fn(&[u8]) -> bool,
    start_what: &str,
    mut parse: impl FnMut(&str) -> Result<Normalized, String>,
) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut current: Option<Span<'_>> = None;
    for line in lines(input) {
        if is_start(line.bytes) {
            if let Some(span) = current.take() {
                finish_span(input, span, &mut out, &mut parse);
            }
            current = Some(Span {
                first: line,
                last: line,
                blank_after: 0,
            });
        } else if let Some(span) = current.as_mut() {
            if blank(line.bytes) {
                span.blank_after += 1;
            } else {
                span.blank_after = 0;
                span.last = line;
            }
        } else if blank(line.bytes) {
            out.skipped += 1;
        } else {
            out.rejections.push(Rejection {
                offset: line.offset,
                line: line.number,
                reason: format!(
                    "expected a record starting with {start_what}, found a continuation line before any record"
                ),
                raw: line.bytes.to_vec(),
            });
        }
    }
    if let Some(span) = current.take() {
        finish_span(input, span, &mut out, &mut parse);
    }
    out
}

fn finish_span(
    input: &[u8],
    span: Span<'_>,
    out: &mut ParseOutput,
    parse: &mut impl FnMut(&str) -> Result<Normalized, String>,
) {
    out.skipped += span.blank_after;
    let start = span.first.offset as usize;
    let end = span.last.offset as usize + span.last.bytes.len();
    let bytes = input.get(start..end).unwrap_or_default();
    let result = if bytes.len() > MULTILINE_RECORD_BYTES_MAX {
        Err(format!(
            "record is {} bytes, larger than the limit of {MULTILINE_RECORD_BYTES_MAX}",
            bytes.len()
        ))
    } else {
        std::str::from_utf8(bytes)
            .map_err(|e| format!("record is not valid utf-8: {e}"))
            .and_then(|raw| parse(raw).map(|n| (raw, n)))
    };
    match result {
        Ok((raw, normalized)) => out.records.push(ParsedRecord {
            raw: raw.to_owned(),
            offset: span.first.offset,
            line: span.first.number,
            normalized: Box::new(normalized),
        }),
        Err(reason) => out.rejections.push(Rejection {
            offset: span.first.offset,
            line: span.first.number,
            reason,
            raw: bytes.to_vec(),
        }),
    }
}

fn activity_record(raw: &str) -> Result<Normalized, String> {
    const LOG: &str = "]' LOG:";
    let first_line = raw.lines().next().unwrap_or(raw);
    let close = first_line
        .find(LOG)
        .ok_or("expected `]' LOG:` after the record header, found none")?;
    let header = &raw[1..close];
    let mut query = &raw[close + LOG.len()..];
    query = query.strip_prefix(' ').unwrap_or(query);
    let (time, rest) = header
        .split_once(' ')
        .ok_or("expected `<time> UTC [ … ]` in the record header, found no space")?;
    let time_ms = parse_iso8601_ms(time).ok_or_else(|| {
        format!("expected an iso 8601 time like `2018-05-21T06:00:09Z`, found `{time}`")
    })?;
    let (zone, context) = rest
        .split_once('[')
        .ok_or("expected `[ db=… user=… ]` in the record header, found no `[`")?;
    let mut members: Vec<(&str, Member<'_>)> = vec![
        ("recordtime", Member::Str(time)),
        ("zone", Member::Str(zone.trim())),
    ];
    for pair in context.split_whitespace() {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!(
                "expected `key=value` in the record header, found `{pair}`"
            ));
        };
        let member = match k {
            "pid" | "userid" | "xid" => v.parse::<i64>().map_or(Member::Str(v), Member::Int),
            _ => Member::Str(v),
        };
        members.push((k, member));
    }
    members.push(("query", Member::Str(query)));
    // A repeated key counts once, with its last value (as in the object).
    let last_text = |name: &str| match members.iter().rev().find(|(k, _)| *k == name) {
        Some((_, Member::Str(s))) => Some((*s).to_owned()),
        _ => None,
    };
    let db = last_text("db");
    let user = last_text("user");
    let verb = sql_verb(query);
    Ok(Normalized {
        source: "redshift-activity".into(),
        time_ms: Some(time_ms),
        service: Some(SERVICE.into()),
        action: verb.clone(),
        activity: verb.as_deref().map(sql_activity),
        actor_user_name: user,
        resources: db
            .map(|db| Resource {
                id: Some(db),
                kind: Some("database".into()),
                owner_account: None,
            })
            .into_iter()
            .collect(),
        parsed: Some(JsonText::object(&mut members)),
        ..Normalized::default()
    })
}

/// The first keyword of an SQL statement, upper-cased (`select …` → `SELECT`).
pub(crate) fn sql_verb(sql: &str) -> Option<String> {
    let word: String = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .take(32)
        .collect();
    (!word.is_empty()).then(|| word.to_ascii_uppercase())
}

/// What an SQL statement does to its object, from its first keyword.
pub(crate) fn sql_activity(verb: &str) -> Activity {
    match verb.to_ascii_uppercase().as_str() {
        "SELECT" | "SHOW" | "DESCRIBE" | "EXPLAIN" | "WITH" | "FETCH" | "UNLOAD" | "VALUES" => {
            Activity::Read
        }
        "INSERT" | "CREATE" | "COPY" => Activity::Create,
        "UPDATE" | "ALTER" | "GRANT" | "REVOKE" | "SET" | "RENAME" | "COMMENT" | "MERGE" => {
            Activity::Update
        }
        "DELETE" | "DROP" | "TRUNCATE" => Activity::Delete,
        _ => Activity::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordtime() {
        assert_eq!(
            parse_recordtime_ms("Mon, 21 May 2018 01:38:01:601"),
            Some(1_526_866_681_601)
        );
        assert_eq!(
            parse_recordtime_ms("Mon, 21 May 2018 01:38:01"),
            Some(1_526_866_681_000)
        );
        assert_eq!(parse_recordtime_ms("Mon, 21 Foo 2018 01:38:01:601"), None);
        assert_eq!(parse_recordtime_ms("Mon, 21 May 2018 01:38:01:6012"), None);
        assert_eq!(parse_recordtime_ms(""), None);
    }

    #[test]
    fn old_layout_with_trailing_pipe() {
        let out = parse_connection(
            b"authenticated |Tue, 04 Feb 2020 10:00:00:000|::ffff:192.0.2.1 |5432 |123|dev |bob |password |0|TLSv1.2 |AES |0| | | | |\n",
        );
        assert_eq!(out.rejections, vec![]);
        let n = &out.records[0].normalized;
        assert_eq!(n.src_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(n.outcome, Some(Outcome::Success));
        let parsed = n.parsed.as_ref().unwrap().to_value();
        assert_eq!(parsed["application_name"], serde_json::Value::Null);
        assert!(parsed.get("os_version").is_none());
    }

    #[test]
    fn activity_start_detection() {
        assert!(is_activity_start(
            b"'2018-05-21T01:38:02Z UTC [ db=dev ]' LOG: x"
        ));
        assert!(!is_activity_start(b"  FROM t"));
        assert!(!is_activity_start(b"'2018-05-21 01:38"));
    }

    #[test]
    fn sql_verbs() {
        assert_eq!(sql_verb("  select 1").as_deref(), Some("SELECT"));
        assert_eq!(sql_verb("(SELECT 1)").as_deref(), Some("SELECT"));
        assert_eq!(sql_verb(";"), None);
        assert_eq!(sql_activity("drop"), Activity::Delete);
    }
}
