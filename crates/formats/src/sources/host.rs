//! Host logs users export next to their AWS logs: Apache/Nginx access logs, IIS W3C extended
//! logs, syslog (RFC 5424 and RFC 3164) and Windows event logs (XML or JSON).
//!
//! Line formats (Apache, IIS, syslog) yield one record per line, raw = the line without its
//! `\n` / `\r\n`. Blank lines and IIS `#` directives are counted in `skipped`; every other line
//! is a record or a rejection.
//!
//! RFC 3164 timestamps carry no year. [`parse_syslog`] assumes none: such records keep their
//! timestamp text in `parsed` and have no `time_ms`. [`parse_syslog_with_year`] resolves them
//! with a deterministic rule: the first RFC 3164 record of the input is in `year`, and the year
//! advances by one whenever the month drops by more than six from one RFC 3164 record to the
//! next (December → January), so a file spanning New Year resolves correctly while slightly
//! out-of-order lines do not jump a year. Zoneless times are taken as UTC.
//!
//! Windows events: the input is XML when its first non-blank byte is `<` (one record per
//! `<Event>` element, bare or inside an `<Events>` root, raw = the element's exact bytes), else
//! JSON: newline-delimited or concatenated objects (Winlogbeat, `Get-WinEvent | ConvertTo-Json
//! -Compress`), or one array of them (`ConvertTo-Json` without `-Compress`), one record per
//! object. For XML every `<Event` start tag opens exactly one record or one rejection.
//!
//! Invariant: never panics; nothing is dropped without being counted.

use memchr::memmem;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use trailvault_model::{Activity, JsonText, Normalized, Outcome, Resource};

use crate::activity_from_http_method;
use crate::json::{for_each_value, offset_in, reject_value, LineCounter, RECORD_BYTES_MAX};
use crate::text::{
    days_from_civil, line_str, lines, month_from_abbrev, parse_clf_time_ms, parse_iso8601_ms,
    reject_line, split_fields, Line,
};
use crate::{ParseOutput, ParsedRecord, Rejection};

/// True when a line holds only whitespace.
pub(crate) fn blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// Epoch milliseconds of a UTC civil time; `None` for an impossible date or time.
pub(crate) fn utc_ms(
    year: i64,
    month: u32,
    day: u32,
    h: u32,
    mi: u32,
    s: u32,
    ms: u32,
) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || h > 23 || mi > 59 || s > 60 || ms > 999 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(
        ((days * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60_000
            + i64::from(s) * 1000
            + i64::from(ms),
    )
}

/// A record whose raw text is the whole line.
pub(crate) fn line_record(line: &Line<'_>, raw: &str, normalized: Normalized) -> ParsedRecord {
    ParsedRecord {
        raw: raw.to_owned(),
        offset: line.offset,
        line: line.number,
        normalized: Box::new(normalized),
    }
}

/// Runs `f` on every non-blank line: one record or one rejection per line, blank lines skipped.
pub(crate) fn each_line(
    input: &[u8],
    mut f: impl FnMut(&str) -> Result<Normalized, String>,
) -> ParseOutput {
    let mut out = ParseOutput::default();
    for line in lines(input) {
        if blank(line.bytes) {
            out.skipped += 1;
            continue;
        }
        match line_str(&line).and_then(|s| f(s).map(|n| (s, n))) {
            Ok((s, n)) => out.records.push(line_record(&line, s, n)),
            Err(reason) => reject_line(&mut out, &line, reason),
        }
    }
    out
}

/// `-` and the empty string mean "no value".
fn present(v: &str) -> Option<&str> {
    (!v.is_empty() && v != "-").then_some(v)
}

fn str_value(v: &str) -> Value {
    present(v).map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn http_outcome(status: u16) -> Outcome {
    if status < 400 {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

fn url_resource(path: Option<&str>) -> Vec<Resource> {
    path.map(|p| Resource {
        id: Some(p.to_owned()),
        kind: Some("url".into()),
        owner_account: None,
    })
    .into_iter()
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Apache / Nginx

/// Access log field names in the order of Apache's combined format.
pub const APACHE_COMBINED_FIELDS: [&str; 9] = [
    "remote_host",
    "ident",
    "user",
    "time",
    "request",
    "status",
    "bytes",
    "referer",
    "user_agent",
];

/// Parses Apache/Nginx access logs in the combined format
/// (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`) or the common format (the first
/// seven fields). Extra trailing fields (Nginx's `"$http_x_forwarded_for"`, …) are kept in
/// `parsed.extra`. Source id `apache-combined`.
pub fn parse_apache_combined(input: &[u8]) -> ParseOutput {
    each_line(input, apache_record)
}

/// Undoes Apache's `\"` and `\\` escaping inside quoted fields; other escapes stay as written.
fn unescape_quoted(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn apache_record(line: &str) -> Result<Normalized, String> {
    let mut fields = Vec::with_capacity(10);
    split_fields(line, true, &mut fields)
        .map_err(|e| format!("expected an access log line, found an {e}"))?;
    if fields.len() != 7 && fields.len() < 9 {
        return Err(format!(
            "expected 7 (common) or at least 9 (combined) fields, found {}",
            fields.len()
        ));
    }
    let time_ms = parse_clf_time_ms(fields[3]).ok_or_else(|| {
        format!(
            "expected a time like `10/Oct/2000:13:55:36 -0700`, found `{}`",
            fields[3]
        )
    })?;
    let status: u16 = fields[5]
        .parse()
        .ok()
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| format!("expected a 3-digit http status, found `{}`", fields[5]))?;
    let bytes = match fields[6] {
        "-" => None,
        b => Some(
            b.parse::<i64>()
                .map_err(|_| format!("expected a byte count or `-`, found `{b}`"))?,
        ),
    };
    let request = unescape_quoted(fields[4]);
    let mut parts = request.splitn(3, ' ');
    let (method, uri, protocol) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), p) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            (Some(m.to_owned()), Some(u.to_owned()), p.map(str::to_owned))
        }
        _ => (None, None, None),
    };
    let mut obj = Map::new();
    for (name, value) in APACHE_COMBINED_FIELDS.iter().zip(fields.iter()) {
        let v = match *name {
            "request" | "referer" | "user_agent" => {
                present(value).map_or(Value::Null, |v| Value::String(unescape_quoted(v)))
            }
            "status" => Value::from(status),
            "bytes" => bytes.map_or(Value::Null, Value::from),
            _ => str_value(value),
        };
        obj.insert((*name).to_owned(), v);
    }
    obj.insert(
        "method".into(),
        method.clone().map_or(Value::Null, Value::String),
    );
    obj.insert("uri".into(), uri.clone().map_or(Value::Null, Value::String));
    obj.insert(
        "protocol".into(),
        protocol.map_or(Value::Null, Value::String),
    );
    if fields.len() > 9 {
        let extra = fields[9..]
            .iter()
            .map(|v| Value::String(unescape_quoted(v)))
            .collect();
        obj.insert("extra".into(), Value::Array(extra));
    }
    let host = fields[0];
    Ok(Normalized {
        source: "apache-combined".into(),
        time_ms: Some(time_ms),
        action: method.clone(),
        activity: method.as_deref().map(activity_from_http_method),
        actor_user_name: present(fields[2]).map(str::to_owned),
        src_ip: host
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|_| host.to_owned()),
        user_agent: fields
            .get(8)
            .and_then(|ua| present(ua))
            .map(unescape_quoted),
        resources: url_resource(uri.as_deref()),
        outcome: Some(http_outcome(status)),
        error_code: (status >= 400).then(|| status.to_string()),
        bytes,
        parsed: Some(JsonText::from_value(&Value::Object(obj))),
        ..Normalized::default()
    })
}

// ---------------------------------------------------------------------------------------------
// IIS

/// Parses IIS W3C extended logs. `#Software`, `#Version`, `#Date` and `#Fields` directives are
/// skipped; `#Fields` names the space-separated columns of the lines that follow (a file may
/// restart its header midway when IIS restarts). In header fields (`cs(…)`, `sc(…)`) a `+`
/// stands for a space and is decoded; the URI stem and query stay as written. Times are UTC.
/// Source id `iis`.
pub fn parse_iis(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut names: Option<Vec<String>> = None;
    for line in lines(input) {
        if blank(line.bytes) || line.bytes.first() == Some(&b'#') {
            if let Some(rest) = line.bytes.strip_prefix(b"#Fields:") {
                let rest = String::from_utf8_lossy(rest);
                names = Some(rest.split_whitespace().map(str::to_owned).collect());
            }
            out.skipped += 1;
            continue;
        }
        let result = line_str(&line).and_then(|s| match &names {
            Some(names) => iis_record(s, names).map(|n| (s, n)),
            None => {
                Err("expected a #Fields directive before the first record, found a record".into())
            }
        });
        match result {
            Ok((s, n)) => out.records.push(line_record(&line, s, n)),
            Err(reason) => reject_line(&mut out, &line, reason),
        }
    }
    out
}

fn iis_record(line: &str, names: &[String]) -> Result<Normalized, String> {
    let values: Vec<&str> = line.split(' ').collect();
    if values.len() != names.len() {
        return Err(format!(
            "expected {} space-separated fields as named by #Fields, found {}",
            names.len(),
            values.len()
        ));
    }
    let mut obj = Map::new();
    for (name, value) in names.iter().zip(&values) {
        let v = match present(value) {
            None => Value::Null,
            Some(v)
                if name.starts_with("cs(") || name.starts_with("sc(") || name.starts_with("s(") =>
            {
                Value::String(v.replace('+', " "))
            }
            Some(v) => Value::String(v.to_owned()),
        };
        obj.insert(name.clone(), v);
    }
    let get = |name: &str| obj.get(name).and_then(Value::as_str);
    let time_ms = match (get("date"), get("time")) {
        (Some(d), Some(t)) => Some(parse_iso8601_ms(&format!("{d}T{t}Z")).ok_or_else(|| {
            format!("expected date yyyy-mm-dd and time hh:mm:ss, found `{d} {t}`")
        })?),
        _ => None,
    };
    let status = match get("sc-status") {
        Some(s) => Some(
            s.parse::<u16>()
                .map_err(|_| format!("expected a numeric sc-status, found `{s}`"))?,
        ),
        None => None,
    };
    let int = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
    let method = get("cs-method").map(str::to_owned);
    Ok(Normalized {
        source: "iis".into(),
        time_ms,
        action: method.clone(),
        activity: method.as_deref().map(activity_from_http_method),
        actor_user_name: get("cs-username").map(str::to_owned),
        src_ip: get("c-ip").map(str::to_owned),
        src_port: get("c-port").and_then(|p| p.parse().ok()),
        dst_ip: get("s-ip").map(str::to_owned),
        dst_port: get("s-port").and_then(|p| p.parse().ok()),
        user_agent: get("cs(User-Agent)").map(str::to_owned),
        resources: url_resource(get("cs-uri-stem")),
        outcome: status.map(http_outcome),
        error_code: status.filter(|s| *s >= 400).map(|s| s.to_string()),
        bytes: int("sc-bytes"),
        duration_ms: int("time-taken").map(|t| t as f64),
        parsed: Some(JsonText::from_value(&Value::Object(obj))),
        ..Normalized::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Syslog

/// Parses syslog lines, RFC 5424 or RFC 3164, each line on its own. RFC 3164 records get no
/// `time_ms` (their timestamp has no year; see the module docs). Source id `syslog`.
pub fn parse_syslog(input: &[u8]) -> ParseOutput {
    syslog_lines(input, None)
}

/// Like [`parse_syslog`], resolving RFC 3164 timestamps with `year` as the year of the first
/// such record, advancing on a New Year rollover (see the module docs).
pub fn parse_syslog_with_year(input: &[u8], year: i32) -> ParseOutput {
    syslog_lines(input, Some(year))
}

/// State of the RFC 3164 year rule: the current year and the month of the last record.
struct YearRule {
    year: i64,
    last_month: Option<u32>,
}

impl YearRule {
    fn year_for(&mut self, month: u32) -> i64 {
        if let Some(last) = self.last_month {
            if last > month + 6 {
                self.year += 1;
            }
        }
        self.last_month = Some(month);
        self.year
    }
}

fn syslog_lines(input: &[u8], year: Option<i32>) -> ParseOutput {
    let mut rule = year.map(|y| YearRule {
        year: i64::from(y),
        last_month: None,
    });
    each_line(input, |line| syslog_record(line, rule.as_mut()))
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

fn syslog_record(line: &str, rule: Option<&mut YearRule>) -> Result<Normalized, String> {
    let mut obj = Map::new();
    let mut rest = line;
    if let Some(after) = line.strip_prefix('<') {
        let close = after
            .find('>')
            .filter(|c| (1..=3).contains(c))
            .ok_or("expected `<pri>` with 1 to 3 digits, found an unterminated priority")?;
        let pri: u8 = after[..close]
            .parse()
            .ok()
            .filter(|p| *p <= 191)
            .ok_or_else(|| {
                format!(
                    "expected a priority between 0 and 191, found `{}`",
                    &after[..close]
                )
            })?;
        obj.insert("priority".into(), Value::from(pri));
        obj.insert(
            "facility".into(),
            Value::from(FACILITIES[usize::from(pri / 8)]),
        );
        obj.insert(
            "severity".into(),
            Value::from(SEVERITIES[usize::from(pri % 8)]),
        );
        rest = &after[close + 1..];
        if let Some(body) = rest.strip_prefix("1 ") {
            return rfc5424(body, obj);
        }
    }
    rfc3164(rest, obj, rule)
}

fn rfc5424(body: &str, mut obj: Map<String, Value>) -> Result<Normalized, String> {
    obj.insert("format".into(), Value::from("rfc5424"));
    obj.insert("version".into(), Value::from(1));
    let mut parts = body.splitn(6, ' ');
    let mut next = |what: &str| {
        parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("expected the rfc 5424 {what} field, found the end of the line"))
    };
    let timestamp = next("timestamp")?;
    let hostname = next("hostname")?;
    let app = next("app-name")?;
    let procid = next("procid")?;
    let msgid = next("msgid")?;
    let sd_and_msg = parts
        .next()
        .ok_or("expected rfc 5424 structured data, found the end of the line")?;
    let time_ms = match timestamp {
        "-" => None,
        t => Some(
            parse_iso8601_ms(t)
                .ok_or_else(|| format!("expected an rfc 3339 timestamp, found `{t}`"))?,
        ),
    };
    let (sd, msg) = structured_data(sd_and_msg)?;
    for (k, v) in [
        ("timestamp", timestamp),
        ("hostname", hostname),
        ("app_name", app),
        ("procid", procid),
        ("msgid", msgid),
    ] {
        obj.insert(k.into(), str_value(v));
    }
    obj.insert("structured_data".into(), sd);
    let msg = msg.map(|m| m.strip_prefix('\u{feff}').unwrap_or(m));
    obj.insert("message".into(), msg.map_or(Value::Null, Value::from));
    Ok(syslog_normalized(
        time_ms,
        hostname,
        present(app),
        present(msgid),
        obj,
    ))
}

/// Parses RFC 5424 STRUCTURED-DATA (`-` or `[id k="v" …]…`), returning it as
/// `{id: {k: v}}` and the message that follows, if any.
fn structured_data(s: &str) -> Result<(Value, Option<&str>), String> {
    let mut sd = Map::new();
    let rest = if let Some(r) = s.strip_prefix('-') {
        r
    } else {
        let b = s.as_bytes();
        let mut i = 0;
        while b.get(i) == Some(&b'[') {
            i += 1;
            let id_end = s[i..].find([' ', ']']).map(|e| i + e).ok_or(
                "expected `]` closing a structured data element, found the end of the line",
            )?;
            let id = &s[i..id_end];
            i = id_end;
            let mut params = Map::new();
            loop {
                match b.get(i) {
                    Some(b']') => {
                        i += 1;
                        break;
                    }
                    Some(b' ') => {
                        i += 1;
                        let eq = s[i..].find('=').map(|e| i + e).ok_or_else(|| {
                            format!("expected `name=\"value\"` in structured data element `{id}`, found no `=`")
                        })?;
                        let name = &s[i..eq];
                        if b.get(eq + 1) != Some(&b'"') {
                            return Err(format!(
                                "expected a quoted value for structured data parameter `{name}`"
                            ));
                        }
                        let mut value = String::new();
                        let mut j = eq + 2;
                        loop {
                            match b.get(j) {
                                None => {
                                    return Err(format!(
                                        "expected a closing quote for structured data parameter `{name}`, found the end of the line"
                                    ))
                                }
                                Some(b'\\') if matches!(b.get(j + 1), Some(b'"' | b'\\' | b']')) => {
                                    value.push(char::from(b[j + 1]));
                                    j += 2;
                                }
                                Some(b'"') => break,
                                Some(_) => {
                                    let ch = s[j..].chars().next().unwrap_or('\u{fffd}');
                                    value.push(ch);
                                    j += ch.len_utf8();
                                }
                            }
                        }
                        params.insert(name.to_owned(), Value::String(value));
                        i = j + 1;
                    }
                    _ => {
                        return Err(format!(
                            "expected `]` or a parameter in structured data element `{id}`"
                        ))
                    }
                }
            }
            sd.insert(id.to_owned(), Value::Object(params));
        }
        if i == 0 {
            return Err("expected structured data `-` or `[`, found something else".into());
        }
        &s[i..]
    };
    let msg = match rest {
        "" => None,
        r => Some(
            r.strip_prefix(' ')
                .ok_or("expected a space between structured data and the message")?,
        ),
    };
    let sd = if sd.is_empty() {
        Value::Null
    } else {
        Value::Object(sd)
    };
    Ok((sd, msg))
}

fn rfc3164(
    body: &str,
    mut obj: Map<String, Value>,
    rule: Option<&mut YearRule>,
) -> Result<Normalized, String> {
    obj.insert("format".into(), Value::from("rfc3164"));
    let b = body.as_bytes();
    // rsyslog's file format writes an RFC 3339 time in the RFC 3164 layout.
    let (timestamp, time_ms, rest) = if b.len() >= 4 && b[..4].iter().all(u8::is_ascii_digit) {
        let (t, r) = body.split_once(' ').unwrap_or((body, ""));
        let ms = parse_iso8601_ms(t)
            .ok_or_else(|| format!("expected an rfc 3339 timestamp, found `{t}`"))?;
        (t, Some(ms), r)
    } else {
        let ts = body
            .get(..15)
            // ASCII only: the slicing below is by byte offset.
            .filter(|t| t.is_ascii() && b.get(15).is_none_or(|c| *c == b' '))
            .ok_or_else(|| {
                format!(
                    "expected a timestamp like `Mar  1 14:02:11`, found `{}`",
                    body.get(..15).unwrap_or(body)
                )
            })?;
        let tb = ts.as_bytes();
        let month = month_from_abbrev(&tb[..3]);
        let day: Option<u32> = ts[4..6].trim_start().parse().ok();
        let clock: Vec<Option<u32>> = ts[7..].split(':').map(|p| p.parse().ok()).collect();
        let (Some(month), Some(day), [Some(h), Some(mi), Some(s)], b' ', b' ') =
            (month, day, clock.as_slice(), tb[3], tb[6])
        else {
            return Err(format!(
                "expected a timestamp like `Mar  1 14:02:11`, found `{ts}`"
            ));
        };
        if utc_ms(2000, month, day, *h, *mi, *s, 0).is_none() {
            return Err(format!("expected a valid date and time, found `{ts}`"));
        }
        let time_ms = rule.and_then(|r| {
            let year = r.year_for(month);
            utc_ms(year, month, day, *h, *mi, *s, 0)
        });
        (ts, time_ms, body.get(16..).unwrap_or(""))
    };
    obj.insert("timestamp".into(), Value::from(timestamp));
    // HOSTNAME is optional in practice: a first word that looks like a tag is the tag.
    let (first, after_first) = rest.split_once(' ').unwrap_or((rest, ""));
    let (hostname, tagged) = if first.ends_with(':') || first.ends_with("]:") {
        (None, rest)
    } else {
        (present(first), after_first)
    };
    let (tag, pid, message) = split_tag(tagged);
    obj.insert("hostname".into(), hostname.map_or(Value::Null, Value::from));
    obj.insert("app_name".into(), tag.map_or(Value::Null, Value::from));
    obj.insert("procid".into(), pid.map_or(Value::Null, Value::from));
    obj.insert("message".into(), Value::from(message));
    Ok(syslog_normalized(
        time_ms,
        hostname.unwrap_or(""),
        tag,
        None,
        obj,
    ))
}

/// Splits `tag[pid]: message` or `tag: message`; text without a tag is all message.
fn split_tag(s: &str) -> (Option<&str>, Option<&str>, &str) {
    let (word, after) = s.split_once(' ').unwrap_or((s, ""));
    let Some(word) = word.strip_suffix(':') else {
        return (None, None, s);
    };
    if word.is_empty() || word.len() > 64 {
        return (None, None, s);
    }
    match word.split_once('[') {
        Some((tag, pid)) => match pid.strip_suffix(']') {
            Some(pid) if !tag.is_empty() => (Some(tag), Some(pid), after),
            _ => (None, None, s),
        },
        None => (Some(word), None, after),
    }
}

fn syslog_normalized(
    time_ms: Option<i64>,
    hostname: &str,
    app: Option<&str>,
    msgid: Option<&str>,
    obj: Map<String, Value>,
) -> Normalized {
    Normalized {
        source: "syslog".into(),
        time_ms,
        service: app.map(str::to_owned),
        action: msgid.map(str::to_owned),
        src_ip: hostname
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|_| hostname.to_owned()),
        parsed: Some(JsonText::from_value(&Value::Object(obj))),
        ..Normalized::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Windows events

/// Keyword bits of the Security log.
const KEYWORD_AUDIT_FAILURE: u64 = 0x0010_0000_0000_0000;
const KEYWORD_AUDIT_SUCCESS: u64 = 0x0020_0000_0000_0000;
/// Logon events whose `Target*` fields name the user acting (the subject is the service that
/// reported the logon); for other events the subject acts on the target.
const TARGET_IS_ACTOR: &[i64] = &[4624, 4625, 4634, 4647, 4768, 4771, 4776];
/// Positions of `EventData` values in `Get-WinEvent`'s unnamed `Properties` array.
const PROPERTIES_4624: &[(&str, usize)] = &[
    ("SubjectUserSid", 0),
    ("SubjectUserName", 1),
    ("SubjectDomainName", 2),
    ("TargetUserSid", 4),
    ("TargetUserName", 5),
    ("TargetDomainName", 6),
    ("LogonType", 8),
    ("WorkstationName", 11),
    ("IpAddress", 18),
    ("IpPort", 19),
];
const PROPERTIES_4625: &[(&str, usize)] = &[
    ("SubjectUserSid", 0),
    ("SubjectUserName", 1),
    ("SubjectDomainName", 2),
    ("TargetUserSid", 4),
    ("TargetUserName", 5),
    ("TargetDomainName", 6),
    ("Status", 7),
    ("SubStatus", 9),
    ("LogonType", 10),
    ("WorkstationName", 13),
    ("IpAddress", 19),
    ("IpPort", 20),
];

/// Parses Windows event logs exported as XML or JSON (see the module docs). Source id
/// `windows-event`.
pub fn parse_windows_event(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    match input.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {}
        Some(b'<') => windows_xml(input, &mut out),
        Some(_) => windows_json(input, &mut out),
    }
    out
}

fn windows_json(input: &[u8], out: &mut ParseOutput) {
    for_each_value(input, out, |raw, offset, line, out| {
        if raw.get().starts_with('[') {
            let items: Vec<&RawValue> = match serde_json::from_str(raw.get()) {
                Ok(items) => items,
                Err(e) => {
                    return reject_value(
                        out,
                        raw,
                        offset,
                        line,
                        format!("expected an array of events: {e}"),
                    )
                }
            };
            let mut counter = LineCounter::new(raw.get().as_bytes());
            for item in items {
                let rel = offset_in(raw.get().as_bytes(), item.get());
                let item_line = line + counter.line_at(rel) - 1;
                windows_json_value(item, offset + rel as u64, item_line, out);
            }
        } else {
            windows_json_value(raw, offset, line, out);
        }
    });
}

fn windows_json_value(raw: &RawValue, offset: u64, line: u64, out: &mut ParseOutput) {
    let value: Value = match serde_json::from_str(raw.get()) {
        Ok(v) => v,
        Err(e) => return reject_value(out, raw, offset, line, format!("malformed json: {e}")),
    };
    match windows_json_record(value) {
        Ok(normalized) => out.records.push(ParsedRecord {
            raw: raw.get().to_owned(),
            offset,
            line,
            normalized: Box::new(normalized),
        }),
        Err(reason) => reject_value(out, raw, offset, line, reason),
    }
}

/// The fields normalization reads, from any of the supported shapes.
#[derive(Default)]
struct WinFields {
    event_id: Option<i64>,
    provider: Option<String>,
    time_ms: Option<i64>,
    record_id: Option<String>,
    keywords_bits: Option<u64>,
    keyword_names: Vec<String>,
    data: Map<String, Value>,
    user_sid: Option<String>,
    outcome_hint: Option<Outcome>,
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `0x8020000000000000`, a decimal string, or a (possibly negative, as PowerShell's Int64
/// prints it) number.
fn keyword_bits(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)),
        Value::String(s) => match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s
                .parse::<u64>()
                .ok()
                .or_else(|| s.parse::<i64>().ok().map(|i| i as u64)),
        },
        _ => None,
    }
}

/// `/Date(1710166931123)/` (Windows PowerShell 5.1) or an ISO 8601 string (PowerShell 7).
fn windows_json_time(v: &Value) -> Option<i64> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => {
            return o
                .get("value")
                .or_else(|| o.get("SystemTime"))
                .and_then(windows_json_time)
        }
        _ => return None,
    };
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits = inner.split(['+', '-']).find(|p| !p.is_empty())?;
        let ms: i64 = digits.parse().ok()?;
        return Some(if inner.starts_with('-') { -ms } else { ms });
    }
    parse_iso8601_ms(s)
}

fn windows_json_record(value: Value) -> Result<Normalized, String> {
    let Value::Object(obj) = &value else {
        return Err("expected a windows event json object, found another json value".into());
    };
    let mut f = WinFields::default();
    let winlog = obj.get("winlog").and_then(Value::as_object);
    let event = obj.get("event").and_then(Value::as_object);
    if let Some(w) = winlog {
        // Winlogbeat / Elastic Agent.
        f.event_id = w.get("event_id").and_then(as_i64);
        f.provider = w.get("provider_name").and_then(as_text);
        f.record_id = w.get("record_id").and_then(as_text);
        if let Some(Value::Array(k)) = w.get("keywords") {
            f.keyword_names = k.iter().filter_map(as_text).collect();
        }
        if let Some(Value::Object(d)) = w.get("event_data") {
            f.data = d.clone();
        }
        f.user_sid = w
            .get("user")
            .and_then(|u| u.get("identifier"))
            .and_then(as_text);
    }
    if let Some(e) = event {
        f.event_id = f.event_id.or_else(|| e.get("code").and_then(as_i64));
        f.provider = f
            .provider
            .take()
            .or_else(|| e.get("provider").and_then(as_text));
        f.outcome_hint = match e.get("outcome").and_then(Value::as_str) {
            Some("success") => Some(Outcome::Success),
            Some("failure") => Some(Outcome::Failure),
            _ => None,
        };
    }
    // Get-WinEvent | ConvertTo-Json, and flattened exports.
    let first = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k));
    f.event_id = f
        .event_id
        .or_else(|| first(&["Id", "EventID", "EventId"]).and_then(as_i64));
    f.provider = f.provider.take().or_else(|| {
        first(&["ProviderName", "Provider", "SourceName"]).and_then(|p| match p {
            Value::Object(o) => o.get("Name").and_then(as_text),
            v => as_text(v),
        })
    });
    f.time_ms = first(&["@timestamp", "TimeCreated", "TimeGenerated"]).and_then(windows_json_time);
    f.record_id = f
        .record_id
        .take()
        .or_else(|| first(&["RecordId", "EventRecordID", "RecordNumber"]).and_then(as_text));
    if f.keyword_names.is_empty() {
        if let Some(Value::Array(k)) = first(&["KeywordsDisplayNames"]) {
            f.keyword_names = k.iter().filter_map(as_text).collect();
        }
    }
    f.keywords_bits = first(&["Keywords"]).and_then(keyword_bits);
    if f.data.is_empty() {
        if let Some(Value::Object(d)) = first(&["EventData"]) {
            f.data = d.clone();
        } else if let Some(Value::Array(props)) = first(&["Properties"]) {
            let positions = match f.event_id {
                Some(4624) => PROPERTIES_4624,
                Some(4625) => PROPERTIES_4625,
                _ => &[],
            };
            for (name, i) in positions {
                if let Some(v) = props.get(*i).and_then(|p| p.get("Value")) {
                    f.data.insert((*name).to_owned(), v.clone());
                }
            }
        }
    }
    f.user_sid = f
        .user_sid
        .take()
        .or_else(|| first(&["UserId"]).and_then(as_text));
    if f.event_id.is_none() {
        return Err("expected a windows event with an event id (winlog.event_id, Id or EventID), found none".into());
    }
    Ok(windows_normalized(f, value))
}

fn windows_normalized(f: WinFields, parsed: Value) -> Normalized {
    let data = |name: &str| {
        f.data
            .get(name)
            .and_then(as_text)
            .filter(|v| present(v).is_some())
    };
    let event_id = f.event_id.unwrap_or_default();
    let (first, second) = if TARGET_IS_ACTOR.contains(&event_id) {
        ("Target", "Subject")
    } else {
        ("Subject", "Target")
    };
    let (actor_name, actor_sid) = match data(&format!("{first}UserName")) {
        Some(name) => (Some(name), data(&format!("{first}UserSid"))),
        None => (
            data(&format!("{second}UserName")),
            data(&format!("{second}UserSid")),
        ),
    };
    let names = |n: &str| f.keyword_names.iter().any(|k| k.eq_ignore_ascii_case(n));
    let outcome = match event_id {
        4625 => Some(Outcome::Failure),
        4624 => Some(Outcome::Success),
        _ => match f.keywords_bits {
            Some(k) if k & KEYWORD_AUDIT_FAILURE != 0 => Some(Outcome::Failure),
            Some(k) if k & KEYWORD_AUDIT_SUCCESS != 0 => Some(Outcome::Success),
            _ if names("Audit Failure") => Some(Outcome::Failure),
            _ if names("Audit Success") => Some(Outcome::Success),
            _ => f.outcome_hint,
        },
    };
    let error_code = if event_id == 4625 {
        data("SubStatus")
            .filter(|s| s != "0x0")
            .or_else(|| data("Status"))
    } else {
        None
    };
    Normalized {
        source: "windows-event".into(),
        time_ms: f.time_ms,
        service: f.provider.clone(),
        action: f.event_id.map(|id| id.to_string()),
        activity: match event_id {
            4720 | 4741 => Some(Activity::Create),
            4726 | 4743 => Some(Activity::Delete),
            4738 | 4742 | 4723 | 4724 => Some(Activity::Update),
            _ => None,
        },
        actor_principal_id: actor_sid.or_else(|| f.user_sid.clone()),
        actor_user_name: actor_name,
        src_ip: data("IpAddress"),
        src_port: data("IpPort")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p != 0),
        outcome,
        error_code,
        source_event_id: f.record_id.clone(),
        parsed: Some(JsonText::from_value(&parsed)),
        ..Normalized::default()
    }
}

/// Byte offset of the next `<Event` start tag (not `<Events>`, `<EventData>`, …) at or after
/// `from`.
fn next_event_start(input: &[u8], from: usize) -> Option<usize> {
    let finder = memmem::Finder::new(b"<Event");
    let mut pos = from;
    while pos < input.len() {
        let at = pos + finder.find(&input[pos..])?;
        if matches!(
            input.get(at + 6),
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
        ) {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

fn windows_xml(input: &[u8], out: &mut ParseOutput) {
    let mut counter = LineCounter::new(input);
    let mut pos = 0;
    while let Some(start) = next_event_start(input, pos) {
        let line = counter.line_at(start);
        match read_xml_event(&input[start..]) {
            Ok((len, parsed)) => {
                let bytes = &input[start..start + len];
                let end = start + len;
                let result = if len > RECORD_BYTES_MAX {
                    Err(format!(
                        "event is {len} bytes, larger than the limit of {RECORD_BYTES_MAX}"
                    ))
                } else {
                    std::str::from_utf8(bytes)
                        .map_err(|e| format!("event is not valid utf-8: {e}"))
                        .and_then(|raw| xml_record(parsed).map(|n| (raw, n)))
                };
                match result {
                    Ok((raw, normalized)) => out.records.push(ParsedRecord {
                        raw: raw.to_owned(),
                        offset: start as u64,
                        line,
                        normalized: Box::new(normalized),
                    }),
                    Err(reason) => out.rejections.push(Rejection {
                        offset: start as u64,
                        line,
                        reason,
                        raw: bytes.to_vec(),
                    }),
                }
                pos = end;
            }
            Err(reason) => {
                let next = next_event_start(input, start + 1).unwrap_or(input.len());
                let raw = input[start..next].trim_ascii_end();
                out.rejections.push(Rejection {
                    offset: start as u64,
                    line,
                    reason,
                    raw: raw.to_vec(),
                });
                pos = next;
            }
        }
    }
}

/// Attributes of an element as a JSON object of strings.
fn xml_attributes(e: &BytesStart<'_>) -> Result<Map<String, Value>, String> {
    let mut attrs = Map::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("malformed xml attribute: {e}"))?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| format!("malformed xml attribute value: {e}"))?;
        attrs.insert(key, Value::String(value.into_owned()));
    }
    Ok(attrs)
}

/// An element on the path from `<Event>` down, with what is collected for it.
struct Open {
    name: String,
    attrs: Map<String, Value>,
    text: String,
}

/// Reads one `<Event>` element from the start of `bytes`. Returns its length in bytes and its
/// content as `{"System": {…}, "EventData": {…}, "UserData": {…}, "RenderingInfo": {…}}`:
/// System children become strings (text) or objects (attributes, plus `#text`), `<Data Name=…>`
/// become named members (unnamed ones go to `EventData.Data` in order), and the leaves of
/// UserData and RenderingInfo become members by element name.
fn read_xml_event(bytes: &[u8]) -> Result<(usize, Map<String, Value>), String> {
    let mut reader = Reader::from_reader(bytes);
    let mut path: Vec<Open> = Vec::new();
    let mut sections: Map<String, Value> = Map::new();
    let mut unnamed_data: Vec<Value> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed xml at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(e) | Event::Empty(e)
                if path.is_empty() && e.local_name().as_ref() != b"Event" =>
            {
                return Err("expected an <Event> element, found another element".into());
            }
            Event::Start(e) => path.push(Open {
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                attrs: xml_attributes(&e)?,
                text: String::new(),
            }),
            Event::Empty(e) => {
                let open = Open {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    attrs: xml_attributes(&e)?,
                    text: String::new(),
                };
                if path.is_empty() {
                    return Ok((reader.buffer_position() as usize, sections));
                }
                close_xml_element(&path, open, &mut sections, &mut unnamed_data);
            }
            Event::Text(t) => {
                if let Some(top) = path.last_mut() {
                    let s = t
                        .xml_content()
                        .map_err(|e| format!("malformed xml text: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(top) = path.last_mut() {
                    let s = c
                        .decode()
                        .map_err(|e| format!("malformed xml cdata: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r
                            .decode()
                            .map_err(|e| format!("malformed xml entity: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                format!("expected a predefined xml entity, found `&{name};`")
                            })?
                            .to_owned()
                    }
                    Err(e) => return Err(format!("malformed xml character reference: {e}")),
                };
                if let Some(top) = path.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                let Some(open) = path.pop() else {
                    return Err("expected a start tag, found an end tag".into());
                };
                if path.is_empty() {
                    if !unnamed_data.is_empty() {
                        let data = sections
                            .entry("EventData")
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(d) = data {
                            d.insert("Data".into(), Value::Array(unnamed_data));
                        }
                    }
                    return Ok((reader.buffer_position() as usize, sections));
                }
                close_xml_element(&path, open, &mut sections, &mut unnamed_data);
            }
            Event::Eof => return Err("expected </Event>, found the end of the input".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

fn close_xml_element(
    path: &[Open],
    open: Open,
    sections: &mut Map<String, Value>,
    unnamed_data: &mut Vec<Value>,
) {
    // `path[0]` is <Event>; `path[1]`, when present, is the section.
    let Some(section) = path.get(1).map(|s| s.name.as_str()) else {
        // A direct child of <Event>: an empty section such as <EventData/>.
        sections
            .entry(open.name)
            .or_insert_with(|| Value::Object(Map::new()));
        return;
    };
    let target = sections
        .entry(section.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(target) = target else {
        return;
    };
    match section {
        "EventData" if open.name == "Data" => {
            match open.attrs.get("Name").and_then(Value::as_str) {
                Some(name) => {
                    target.insert(name.to_owned(), Value::String(open.text));
                }
                None => unnamed_data.push(Value::String(open.text)),
            }
        }
        "System" if path.len() == 2 => {
            let value = if open.attrs.is_empty() {
                Value::String(open.text)
            } else {
                let mut attrs = open.attrs;
                if !open.text.trim().is_empty() {
                    attrs.insert("#text".into(), Value::String(open.text));
                }
                Value::Object(attrs)
            };
            target.insert(open.name, value);
        }
        _ if open.text.trim().is_empty() && open.attrs.is_empty() => {}
        _ => {
            let value = if open.text.trim().is_empty() {
                Value::Object(open.attrs)
            } else {
                Value::String(open.text)
            };
            target.insert(open.name, value);
        }
    }
}

fn xml_record(sections: Map<String, Value>) -> Result<Normalized, String> {
    let system = sections
        .get("System")
        .and_then(Value::as_object)
        .ok_or("expected a <System> element in <Event>, found none")?;
    let text = |name: &str| match system.get(name) {
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Object(o)) => o
            .get("#text")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned()),
        _ => None,
    };
    let attr = |name: &str, attr: &str| {
        system
            .get(name)
            .and_then(|v| v.get(attr))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let event_id = text("EventID").ok_or("expected <EventID> in <System>, found none")?;
    let event_id: i64 = event_id
        .parse()
        .map_err(|_| format!("expected a numeric <EventID>, found `{event_id}`"))?;
    let time_ms = match attr("TimeCreated", "SystemTime") {
        Some(t) => Some(parse_iso8601_ms(&t).ok_or_else(|| {
            format!(
                "expected TimeCreated SystemTime like `2024-03-11T14:02:11.1234567Z`, found `{t}`"
            )
        })?),
        None => None,
    };
    let mut keyword_names = Vec::new();
    if let Some(Value::String(k)) = sections.get("RenderingInfo").and_then(|r| r.get("Keyword")) {
        keyword_names.push(k.clone());
    }
    let f = WinFields {
        event_id: Some(event_id),
        provider: attr("Provider", "Name"),
        time_ms,
        record_id: text("EventRecordID"),
        keywords_bits: text("Keywords").and_then(|k| keyword_bits(&Value::String(k))),
        keyword_names,
        data: sections
            .get("EventData")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        user_sid: attr("Security", "UserID"),
        outcome_hint: None,
    };
    Ok(windows_normalized(f, Value::Object(sections)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_ms_checks_calendar() {
        assert_eq!(utc_ms(1970, 1, 1, 0, 0, 0, 0), Some(0));
        assert!(utc_ms(2024, 2, 29, 0, 0, 0, 0).is_some());
        assert_eq!(utc_ms(2023, 2, 29, 0, 0, 0, 0), None);
        assert_eq!(utc_ms(2023, 4, 31, 0, 0, 0, 0), None);
        assert_eq!(utc_ms(2023, 13, 1, 0, 0, 0, 0), None);
    }

    #[test]
    fn year_rule_rolls_over_new_year_only() {
        let mut r = YearRule {
            year: 2023,
            last_month: None,
        };
        assert_eq!(r.year_for(12), 2023);
        assert_eq!(r.year_for(1), 2024);
        assert_eq!(r.year_for(3), 2024);
        assert_eq!(r.year_for(2), 2024);
    }

    #[test]
    fn tags() {
        assert_eq!(
            split_tag("sshd[42]: hi there"),
            (Some("sshd"), Some("42"), "hi there")
        );
        assert_eq!(split_tag("cron: x"), (Some("cron"), None, "x"));
        assert_eq!(split_tag("no tag here"), (None, None, "no tag here"));
    }

    #[test]
    fn event_start_skips_other_elements() {
        let x = b"<Events><EventData/><Event xmlns='x'>";
        assert_eq!(next_event_start(x, 0), Some(20));
    }

    #[test]
    fn keyword_forms() {
        assert_eq!(
            keyword_bits(&Value::from("0x8010000000000000")),
            Some(0x8010_0000_0000_0000)
        );
        assert_eq!(
            keyword_bits(&Value::from(-9_214_364_837_600_034_816_i64)),
            Some(0x8020_0000_0000_0000)
        );
        assert_eq!(
            windows_json_time(&Value::from("/Date(1710166931123)/")),
            Some(1_710_166_931_123)
        );
    }
}
