//! CloudFront standard (legacy) access logs: W3C extended format, tab-separated.
//!
//! `#Version:` and `#Fields:` header lines are skipped (counted in `skipped`); the last
//! `#Fields:` line seen names the columns of the records after it, so files from any era
//! parse. Without a `#Fields:` line the documented 33-field order is assumed. CloudFront
//! URL-encodes values once (spaces as `%20`); `parsed` holds them decoded once.

use std::borrow::Cow;

use trailvault_model::{Normalized, ObjectLayout, Outcome};

use crate::activity_from_http_method;
use crate::text::{
    line_record, line_str, lines, opt, opt_f64, opt_i64, parse_iso8601_ms, reject_line, url_decode,
    Line,
};
use crate::ParseOutput;

/// The documented field order of the standard log.
pub const DEFAULT_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// Most columns a `#Fields:` header may declare.
const FIELDS_MAX: usize = 256;

struct Columns {
    names: Vec<String>,
    layout: ObjectLayout,
    date: Option<usize>,
    time: Option<usize>,
    method: Option<usize>,
    client_ip: Option<usize>,
    client_port: Option<usize>,
    status: Option<usize>,
    user_agent: Option<usize>,
    result_type: Option<usize>,
    detailed_result: Option<usize>,
    request_id: Option<usize>,
    sc_bytes: Option<usize>,
    cs_bytes: Option<usize>,
    time_taken: Option<usize>,
}

impl Columns {
    fn new(names: Vec<String>) -> Columns {
        let pos = |n: &str| names.iter().position(|x| x == n);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Columns {
            layout: ObjectLayout::new(&refs),
            date: pos("date"),
            time: pos("time"),
            method: pos("cs-method"),
            client_ip: pos("c-ip"),
            client_port: pos("c-port"),
            status: pos("sc-status"),
            user_agent: pos("cs(User-Agent)"),
            result_type: pos("x-edge-result-type"),
            detailed_result: pos("x-edge-detailed-result-type"),
            request_id: pos("x-edge-request-id"),
            sc_bytes: pos("sc-bytes"),
            cs_bytes: pos("cs-bytes"),
            time_taken: pos("time-taken"),
            names,
        }
    }
}

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut columns = Columns::new(DEFAULT_FIELDS.iter().map(|s| (*s).to_owned()).collect());
    let mut declared = false;
    let mut values = Vec::with_capacity(40);
    for line in lines(input) {
        if line.bytes.iter().all(u8::is_ascii_whitespace) {
            out.skipped += 1;
            continue;
        }
        let s = match line_str(&line) {
            Ok(s) => s,
            Err(reason) => {
                reject_line(&mut out, &line, reason);
                continue;
            }
        };
        if let Some(header) = s.strip_prefix('#') {
            if let Some(fields) = header.strip_prefix("Fields:") {
                let names: Vec<String> = fields.split_whitespace().map(str::to_owned).collect();
                if names.is_empty() || names.len() > FIELDS_MAX {
                    reject_line(
                        &mut out,
                        &line,
                        format!("#Fields header declares {} fields", names.len()),
                    );
                    continue;
                }
                columns = Columns::new(names);
                declared = true;
            }
            out.skipped += 1;
            continue;
        }
        values.clear();
        values.extend(s.split('\t'));
        record(&mut out, &line, s, &values, &columns, declared);
    }
    out
}

fn record(
    out: &mut ParseOutput,
    line: &Line<'_>,
    s: &str,
    v: &[&str],
    c: &Columns,
    declared: bool,
) {
    if declared && v.len() != c.names.len() {
        reject_line(
            out,
            line,
            format!(
                "cloudfront line has {} fields, the #Fields header declares {}",
                v.len(),
                c.names.len()
            ),
        );
        return;
    }
    if !declared && v.len() > c.names.len() {
        reject_line(
            out,
            line,
            format!(
                "cloudfront line has {} fields, more than the {} documented",
                v.len(),
                c.names.len()
            ),
        );
        return;
    }
    let get = |i: Option<usize>| i.and_then(|i| v.get(i)).and_then(|s| opt(s));
    let Some(time_ms) = get(c.date)
        .zip(get(c.time))
        .and_then(|(d, t)| date_time_ms(d, t))
    else {
        reject_line(out, line, "cloudfront line has no valid date and time");
        return;
    };
    let status: Option<u16> = get(c.status).and_then(|s| s.parse().ok());
    let method = get(c.method);
    let result = get(c.result_type);
    // Most values hold no escape: borrowed, not copied.
    let decoded: Vec<Option<Cow<'_, str>>> = v
        .iter()
        .map(|value| {
            opt(value).map(|x| match x.contains('%') {
                true => Cow::Owned(url_decode(x)),
                false => Cow::Borrowed(x),
            })
        })
        .collect();
    let parsed = c
        .layout
        .render(decoded.len(), |i| decoded[i].as_deref(), &[]);
    let bytes = match (
        get(c.sc_bytes).and_then(opt_i64),
        get(c.cs_bytes).and_then(opt_i64),
    ) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    };
    let n = Normalized {
        source: "cloudfront".into(),
        time_ms: Some(time_ms),
        service: Some("cloudfront.amazonaws.com".into()),
        action: method.map(str::to_owned),
        activity: method.map(activity_from_http_method),
        src_ip: get(c.client_ip).map(str::to_owned),
        src_port: get(c.client_port).and_then(|p| p.parse().ok()),
        user_agent: get(c.user_agent).map(url_decode),
        outcome: Some(match (status, result) {
            (_, Some("Error")) => Outcome::Failure,
            (Some(s), _) if (1..400).contains(&s) => Outcome::Success,
            (Some(s), _) if s >= 400 => Outcome::Failure,
            _ => Outcome::Unknown,
        }),
        error_code: if result == Some("Error") {
            get(c.detailed_result).or(result).map(str::to_owned)
        } else {
            None
        },
        request_id: get(c.request_id).map(str::to_owned),
        bytes,
        duration_ms: get(c.time_taken).and_then(opt_f64).map(|s| s * 1000.0),
        parsed: Some(parsed),
        ..Normalized::default()
    };
    out.records.push(line_record(line, s, n));
}

/// `2024-03-11` + `14:02:31` (UTC) to epoch milliseconds.
fn date_time_ms(date: &str, time: &str) -> Option<i64> {
    if date.len() != 10 || time.len() != 8 {
        return None;
    }
    let mut buf = [0u8; 20];
    buf[..10].copy_from_slice(date.as_bytes());
    buf[10] = b'T';
    buf[11..19].copy_from_slice(time.as_bytes());
    buf[19] = b'Z';
    parse_iso8601_ms(std::str::from_utf8(&buf).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_drives_column_order() {
        let input = b"#Version: 1.0\n#Fields: time date c-ip sc-status cs-method cs(User-Agent)\n14:02:31\t2024-03-11\t192.0.2.1\t404\tGET\tcurl/8%20x\n";
        let out = parse(input);
        assert_eq!(out.skipped, 2);
        assert_eq!(out.records.len(), 1, "{:?}", out.rejections);
        let n = &out.records[0].normalized;
        assert_eq!(n.time_ms, Some(1_710_165_751_000));
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(n.user_agent.as_deref(), Some("curl/8 x"));
        let bad = parse(b"#Fields: date time\n2024-03-11\n");
        assert_eq!(bad.rejections.len(), 1);
    }
}
