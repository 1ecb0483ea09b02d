//! Amazon RDS database audit logs: the MySQL / MariaDB audit plugin and PostgreSQL pgaudit.
//!
//! MySQL / MariaDB (and Aurora MySQL advanced auditing): one line per event,
//! `timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode`
//! ([`MYSQL_AUDIT_FIELDS`]). The timestamp is `YYYYMMDD HH:MM:SS` (UTC) or, on Aurora, epoch
//! microseconds. `object` is single-quoted with `\'`, `\\`, `\n`, `\r` and `\t` escapes; any
//! other field may be empty. Fields after `retcode` (RDS appends some) are kept in
//! `parsed.extra`.
//!
//! PostgreSQL: lines with the RDS `log_line_prefix` `%t:%r:%u@%d:[%p]:`, e.g.
//! `2018-05-21 01:38:02 UTC:198.51.100.7(51234):alice@mydb:[12345]:LOG:  AUDIT: SESSION,…`.
//! A record starts at a line beginning with a `YYYY-MM-DD HH:MM:SS` time and includes the
//! following lines that do not (multi-line statements). `AUDIT:` messages have their CSV fields
//! parsed ([`PGAUDIT_FIELDS`]); every other message (connection authorized, errors, statements
//! logged by `log_statement`, …) is still a record, with the prefix fields, the severity and the
//! message text parsed, because an audit trail must not lose them.
//!
//! Invariants: never panics; every line is in exactly one record, one rejection or `skipped`
//! (blank lines only).

use std::cell::RefCell;

use csv_core::ReadRecordResult;
use serde_json::{Map, Value};
use trailvault_model::{Activity, JsonText, Normalized, Outcome, Resource};

use super::host::{each_line, utc_ms};
use super::redshift::{multiline_records, sql_activity, sql_verb};
use crate::text::parse_iso8601_ms;
use crate::ParseOutput;

/// The `service` RDS records are normalized with.
pub const SERVICE: &str = "rds.amazonaws.com";

/// MySQL / MariaDB audit plugin fields in line order.
pub const MYSQL_AUDIT_FIELDS: [&str; 10] = [
    "timestamp",
    "serverhost",
    "username",
    "host",
    "connectionid",
    "queryid",
    "operation",
    "database",
    "object",
    "retcode",
];

/// pgaudit's CSV fields after `AUDIT: `, in order.
pub const PGAUDIT_FIELDS: [&str; 9] = [
    "audit_type",
    "statement_id",
    "substatement_id",
    "class",
    "command",
    "object_type",
    "object_name",
    "statement",
    "parameter",
];
/// pgaudit always writes the fields through `statement`; `parameter` may be cut off.
const PGAUDIT_FIELDS_MIN: usize = 8;

/// Parses MySQL / MariaDB audit plugin lines. Source id `rds-mysql-audit`.
pub fn parse_mysql_audit(input: &[u8]) -> ParseOutput {
    each_line(input, mysql_record)
}

/// Splits an audit line on commas; a field that starts with `'` runs to the matching
/// unescaped `'` and is unescaped. Returns the values and whether each was quoted.
fn split_audit_fields(line: &str) -> Result<Vec<(String, bool)>, String> {
    let mut fields = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        if chars.peek().is_some_and(|(_, c)| *c == '\'') {
            let (open, _) = chars.next().unwrap_or((0, '\''));
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "expected a closing `'` for the field opened at column {}, found the end of the line",
                            open + 1
                        ))
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, c)) => value.push(c),
                        None => value.push('\\'),
                    },
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                }
            }
            fields.push((value, true));
            match chars.next() {
                None => return Ok(fields),
                Some((_, ',')) => {}
                Some((i, c)) => {
                    return Err(format!(
                        "expected `,` after a quoted field, found `{c}` at column {}",
                        i + 1
                    ))
                }
            }
        } else {
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => {
                        fields.push((value, false));
                        return Ok(fields);
                    }
                    Some((_, ',')) => break,
                    Some((_, c)) => value.push(c),
                }
            }
            fields.push((value, false));
        }
    }
}

/// `20180521 01:38:02` (UTC) or Aurora's epoch microseconds.
fn mysql_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) && b.len() >= 13 {
        return s.parse::<i64>().ok().map(|us| us / 1000);
    }
    if b.len() != 17 || b[8] != b' ' || b[11] != b':' || b[14] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    utc_ms(
        i64::from(n(0..4)?),
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(12..14)?,
        n(15..17)?,
        0,
    )
}

fn mysql_record(line: &str) -> Result<Normalized, String> {
    let fields = split_audit_fields(line)?;
    if fields.len() < MYSQL_AUDIT_FIELDS.len() {
        return Err(format!(
            "expected {} comma-separated audit fields, found {}",
            MYSQL_AUDIT_FIELDS.len(),
            fields.len()
        ));
    }
    let ts = &fields[0].0;
    let time_ms = mysql_time_ms(ts).ok_or_else(|| {
        format!("expected a timestamp like `20180521 01:38:02` or epoch microseconds, found `{ts}`")
    })?;
    let mut obj = Map::new();
    for (name, (value, quoted)) in MYSQL_AUDIT_FIELDS.iter().zip(&fields) {
        let v = match *name {
            "connectionid" | "queryid" | "retcode" if !value.is_empty() => Value::from(
                value
                    .parse::<i64>()
                    .map_err(|_| format!("expected an integer {name}, found `{value}`"))?,
            ),
            "timestamp" => Value::String(value.clone()),
            _ if value.is_empty() && !quoted => Value::Null,
            _ => Value::String(value.clone()),
        };
        obj.insert((*name).to_owned(), v);
    }
    if fields.len() > MYSQL_AUDIT_FIELDS.len() {
        let extra = fields[MYSQL_AUDIT_FIELDS.len()..]
            .iter()
            .map(|(v, _)| Value::String(v.clone()))
            .collect();
        obj.insert("extra".into(), Value::Array(extra));
    }
    let get = |i: usize| Some(fields[i].0.as_str()).filter(|v| !v.is_empty());
    let operation = get(6).map(str::to_owned);
    let retcode = get(9).and_then(|r| r.parse::<i64>().ok());
    let object = get(8);
    let activity = match operation.as_deref() {
        Some(op) if op.starts_with("QUERY") => object.and_then(sql_verb).map(|v| sql_activity(&v)),
        Some("READ") => Some(Activity::Read),
        _ => None,
    };
    let outcome = match (operation.as_deref(), retcode) {
        (Some("FAILED_CONNECT"), _) => Some(Outcome::Failure),
        (_, Some(0)) => Some(Outcome::Success),
        (_, Some(_)) => Some(Outcome::Failure),
        (_, None) => None,
    };
    let host = get(3);
    Ok(Normalized {
        source: "rds-mysql-audit".into(),
        time_ms: Some(time_ms),
        service: Some(SERVICE.into()),
        action: operation,
        activity,
        actor_user_name: get(2).map(str::to_owned),
        src_ip: host
            .filter(|h| h.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_owned),
        resources: get(7)
            .map(|db| Resource {
                id: Some(db.to_owned()),
                kind: Some("database".into()),
                owner_account: None,
            })
            .into_iter()
            .collect(),
        outcome,
        error_code: retcode.filter(|r| *r != 0).map(|r| r.to_string()),
        parsed: Some(JsonText::from_value(&Value::Object(obj))),
        ..Normalized::default()
    })
}

/// Parses PostgreSQL logs with the RDS prefix, pgaudit `AUDIT:` lines in full (see the module
/// docs). Source id `rds-postgres-audit`.
pub fn parse_postgres_audit(input: &[u8]) -> ParseOutput {
    multiline_records(
        input,
        is_postgres_start,
        "`yyyy-mm-dd hh:mm:ss`",
        postgres_record,
    )
}

fn is_postgres_start(b: &[u8]) -> bool {
    let d = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    b.len() >= 19
        && d(0..4)
        && b[4] == b'-'
        && d(5..7)
        && b[7] == b'-'
        && d(8..10)
        && b[10] == b' '
        && d(11..13)
        && b[13] == b':'
        && d(14..16)
        && b[16] == b':'
        && d(17..19)
}

/// Finds `:[<pid>]:` and returns (index of its `:`, pid, index just past it).
fn find_pid(s: &str) -> Option<(usize, &str, usize)> {
    let mut from = 0;
    while let Some(i) = s[from..].find(":[").map(|i| from + i) {
        let digits = &s[i + 2..];
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 && digits[n..].starts_with("]:") {
            return Some((i, &digits[..n], i + 2 + n + 2));
        }
        from = i + 2;
    }
    None
}

fn postgres_record(raw: &str) -> Result<Normalized, String> {
    let time_text = &raw[..19];
    let after_time = &raw[19..];
    // `%t` ends with a zone name: `2018-05-21 01:38:02 UTC:`.
    let (zone, rest) = match after_time.strip_prefix(' ') {
        Some(r) => r
            .split_once(':')
            .ok_or("expected `:` after the time zone of the log line prefix, found none")?,
        None => (
            "",
            after_time.strip_prefix(':').ok_or(
                "expected `:` after the time of the log line prefix, found something else",
            )?,
        ),
    };
    let time_ms = match zone {
        "" | "UTC" | "GMT" | "Z" => parse_iso8601_ms(time_text),
        z if z.starts_with(['+', '-']) => parse_iso8601_ms(&format!("{time_text}{z}")),
        // A named zone other than UTC cannot be resolved without a zone database.
        _ => None,
    };
    if time_ms.is_none() && matches!(zone, "" | "UTC" | "GMT" | "Z") {
        return Err(format!("expected a valid time, found `{time_text}`"));
    }
    let (pid_at, pid, message_at) = find_pid(rest)
        .ok_or("expected the rds log line prefix `%t:%r:%u@%d:[%p]:`, found no `:[pid]:`")?;
    let (remote, user_db) = rest[..pid_at]
        .rsplit_once(':')
        .ok_or("expected `%r:%u@%d` in the log line prefix, found no `:`")?;
    let (user, db) = user_db.split_once('@').unwrap_or((user_db, ""));
    let (host, port) = match remote.strip_suffix(')').and_then(|r| r.rsplit_once('(')) {
        Some((h, p)) => (h, p.parse::<u16>().ok()),
        None => (remote, None),
    };
    let message = &rest[message_at..];
    let (severity, text) = message
        .split_once(':')
        .map_or(("", message), |(s, t)| (s, t.trim_start_matches(' ')));
    let mut obj = Map::new();
    let opt = |v: &str| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::String(v.to_owned())
        }
    };
    obj.insert("time".into(), Value::String(time_text.to_owned()));
    obj.insert("zone".into(), opt(zone));
    obj.insert("remote_host".into(), opt(host));
    obj.insert("remote_port".into(), port.map_or(Value::Null, Value::from));
    obj.insert("user".into(), opt(user));
    obj.insert("database".into(), opt(db));
    obj.insert(
        "pid".into(),
        pid.parse::<i64>().map_or(Value::Null, Value::from),
    );
    obj.insert("severity".into(), opt(severity));
    let mut n = Normalized {
        source: "rds-postgres-audit".into(),
        time_ms,
        service: Some(SERVICE.into()),
        actor_user_name: (!user.is_empty()).then(|| user.to_owned()),
        src_ip: host
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|_| host.to_owned()),
        src_port: port,
        outcome: matches!(severity, "ERROR" | "FATAL" | "PANIC").then_some(Outcome::Failure),
        ..Normalized::default()
    };
    if !db.is_empty() {
        n.resources.push(Resource {
            id: Some(db.to_owned()),
            kind: Some("database".into()),
            owner_account: None,
        });
    }
    match text.strip_prefix("AUDIT: ") {
        Some(csv_text) => {
            let audit = pgaudit_fields(csv_text)?;
            let field = |name: &str| {
                audit
                    .get(name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
            };
            let command = field("command").map(str::to_owned);
            n.activity = command
                .as_deref()
                .and_then(sql_verb)
                .map(|v| sql_activity(&v));
            if let Some(name) = field("object_name") {
                n.resources.push(Resource {
                    id: Some(name.to_owned()),
                    kind: field("object_type").map(str::to_owned),
                    owner_account: None,
                });
            }
            n.action = command;
            obj.insert("audit".into(), Value::Object(audit));
        }
        None => {
            obj.insert("message".into(), Value::String(text.to_owned()));
        }
    }
    n.parsed = Some(JsonText::from_value(&Value::Object(obj)));
    Ok(n)
}

thread_local! {
    /// Building a CSV reader compiles its state machine: once per thread, not per record
    /// (that was 70% of parsing pgaudit lines).
    static PGAUDIT_CSV: RefCell<csv_core::Reader> = RefCell::new(csv_core::Reader::new());
}

/// The fields of the first CSV record in `text` (RFC 4180 quoting, any line terminator); `None`
/// when `text` holds no record.
fn first_csv_record(text: &str) -> Option<Vec<String>> {
    PGAUDIT_CSV.with_borrow_mut(|reader| {
        reader.reset();
        let mut input = text.as_bytes();
        // Sized for a common record; both grow when a record needs more (tested).
        let mut out = vec![0; text.len().clamp(64, 512)];
        let mut ends = vec![0; 16];
        let (mut written, mut fields) = (0, 0);
        loop {
            let (result, nin, nout, nend) =
                reader.read_record(input, &mut out[written..], &mut ends[fields..]);
            // Field ends count from the start of the record, across calls.
            input = &input[nin..];
            written += nout;
            fields += nend;
            match result {
                // All input taken: the next call, given nothing, marks the end of the input.
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return None,
            }
        }
        let mut start = 0;
        Some(
            ends[..fields]
                .iter()
                .map(|&end| {
                    // Cut at ASCII delimiters of a `str`: always UTF-8.
                    let field = String::from_utf8_lossy(&out[start..end]).into_owned();
                    start = end;
                    field
                })
                .collect(),
        )
    })
}

fn pgaudit_fields(text: &str) -> Result<Map<String, Value>, String> {
    let Some(record) = first_csv_record(text) else {
        return Err("expected pgaudit csv fields after `AUDIT: `, found none".into());
    };
    if record.len() < PGAUDIT_FIELDS_MIN {
        return Err(format!(
            "expected at least {PGAUDIT_FIELDS_MIN} pgaudit csv fields, found {}",
            record.len()
        ));
    }
    let mut obj = Map::new();
    for (i, value) in record.iter().enumerate() {
        let name = PGAUDIT_FIELDS
            .get(i)
            .map_or_else(|| format!("field_{}", i + 1), |n| (*n).to_owned());
        let v = match name.as_str() {
            "statement_id" | "substatement_id" => value
                .parse::<i64>()
                .map_or_else(|_| Value::String(value.to_owned()), Value::from),
            _ => Value::String(value.to_owned()),
        };
        obj.insert(name, v);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_csv_record_reads_what_the_csv_crate_reads() {
        let many_fields = (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let long_field = format!("a,\"{}\",b", "x\"\"y".repeat(300));
        for text in [
            "",
            "\n",
            "a,b",
            ",,",
            "a,\"b,c\",d",
            "\"x\"\"y\"\nnext,line",
            "a,\"multi\nline\",b\r\nc",
            "\"unterminated",
            "SESSION,1,1,READ,SELECT,,,\"SELECT 'O''Brien'\",<not logged>",
            // More fields than the first `ends` buffer holds, a field longer than `out`.
            &many_fields,
            &long_field,
        ] {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let mut record = csv::StringRecord::new();
            let read = reader.read_record(&mut record).expect("csv reads a str");
            let want = read.then(|| record.iter().map(str::to_owned).collect::<Vec<_>>());
            assert_eq!(first_csv_record(text), want, "{text:?}");
            // The reader is reused: a second read gives the same.
            assert_eq!(first_csv_record(text), want, "{text:?} again");
        }
    }

    #[test]
    fn audit_fields_unescape() {
        let f = split_audit_fields(r"a,'it\'s, \\ ok',,b").unwrap();
        assert_eq!(
            f,
            vec![
                ("a".into(), false),
                (r"it's, \ ok".into(), true),
                (String::new(), false),
                ("b".into(), false)
            ]
        );
        assert!(split_audit_fields("a,'open").is_err());
        assert!(split_audit_fields("a,'x'y").is_err());
    }

    #[test]
    fn mysql_times() {
        assert_eq!(mysql_time_ms("20180521 01:38:01"), Some(1_526_866_681_000));
        assert_eq!(mysql_time_ms("1526866681601123"), Some(1_526_866_681_601));
        assert_eq!(mysql_time_ms("20181321 01:38:01"), None);
    }

    #[test]
    fn pid_finder() {
        assert_eq!(
            find_pid("1.2.3.4(5):u@d:[42]:LOG:  x"),
            Some((14, "42", 20))
        );
        assert_eq!(find_pid("[local]:u@d:[x]:LOG"), None);
    }
}
