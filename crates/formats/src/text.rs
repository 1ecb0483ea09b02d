//! Shared helpers for line-oriented text formats: line iteration with byte offsets, a tokenizer
//! for space-delimited fields with quoted and bracketed values, and allocation-free time parsing.
//!
//! Invariant: nothing here panics on any input; every malformed value comes back as `None` or
//! an `Err(&'static str)` reason the caller turns into a [`crate::Rejection`].

use trailvault_model::{JsonText, Normalized, ObjectLayout};

use crate::{ParseOutput, ParsedRecord, Rejection};

/// Longest line any text parser accepts. Longer lines are rejected whole (the raw bytes are
/// still kept in the rejection) instead of being tokenized.
pub(crate) const LINE_BYTES_MAX: usize = 1 << 20;

/// One physical line of the input, without its `\n` or `\r\n` terminator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub bytes: &'a [u8],
    /// Byte offset of the first byte of the line in the input.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
}

/// Iterates the lines of `input`. A final line without a terminator is still yielded; an empty
/// input yields nothing, and a trailing newline does not produce an extra empty line.
pub(crate) fn lines(input: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut pos = 0usize;
    let mut number = 0u64;
    std::iter::from_fn(move || {
        if pos >= input.len() {
            return None;
        }
        let start = pos;
        let end = match memchr::memchr(b'\n', &input[start..]) {
            Some(i) => {
                pos = start + i + 1;
                start + i
            }
            None => {
                pos = input.len();
                input.len()
            }
        };
        let mut bytes = &input[start..end];
        if let [rest @ .., b'\r'] = bytes {
            bytes = rest;
        }
        number += 1;
        Some(Line {
            bytes,
            offset: start as u64,
            number,
        })
    })
}

/// Records a rejection for `line` with `reason`.
pub(crate) fn reject_line(out: &mut ParseOutput, line: &Line<'_>, reason: impl Into<String>) {
    out.rejections.push(Rejection {
        offset: line.offset,
        line: line.number,
        reason: reason.into(),
        raw: line.bytes.to_vec(),
    });
}

/// Checks the common preconditions of a text line: valid UTF-8 and within the length limit.
pub(crate) fn line_str<'a>(line: &Line<'a>) -> Result<&'a str, String> {
    if line.bytes.len() > LINE_BYTES_MAX {
        return Err(format!(
            "line is {} bytes, longer than the limit of {LINE_BYTES_MAX}",
            line.bytes.len()
        ));
    }
    std::str::from_utf8(line.bytes).map_err(|e| format!("line is not valid utf-8: {e}"))
}

/// Splits a space-delimited line into fields. A field starting with `"` runs to the next
/// unescaped `"` (the quotes are dropped, `\"` escapes are kept as written); a field starting
/// with `[` runs to the next `]` (brackets dropped) when `brackets` is set (S3 and CLF times;
/// not ELB, whose `[v6]:port` must stay one field). Runs of spaces separate fields.
pub(crate) fn split_fields<'a>(
    line: &'a str,
    brackets: bool,
    fields: &mut Vec<&'a str>,
) -> Result<(), &'static str> {
    fields.clear();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                loop {
                    match b.get(j) {
                        None => return Err("unterminated quoted field"),
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                if b.get(j + 1) == Some(&b',') {
                    // A quoted list such as NLB's `"h2","http/1.1"`: keep the whole token, quotes
                    // and all, up to the next space outside quotes.
                    let token_start = i;
                    let mut quoted = false;
                    let mut k = i;
                    while k < b.len() && (quoted || b[k] != b' ') {
                        match b[k] {
                            b'\\' if quoted => k += 1,
                            b'"' => quoted = !quoted,
                            _ => {}
                        }
                        k += 1;
                    }
                    if quoted || k > b.len() {
                        return Err("unterminated quoted field");
                    }
                    fields.push(
                        line.get(token_start..k)
                            .ok_or("unterminated quoted field")?,
                    );
                    i = k;
                    continue;
                }
                // `j` indexes the closing quote, which is ASCII, so both ends are char boundaries.
                fields.push(line.get(start..j).ok_or("unterminated quoted field")?);
                i = j + 1;
                if i < b.len() && b[i] != b' ' {
                    return Err("quoted field is not followed by a space");
                }
            }
            b'[' if brackets => {
                let start = i + 1;
                let close =
                    memchr::memchr(b']', &b[start..]).ok_or("unterminated bracketed field")?;
                fields.push(&line[start..start + close]);
                i = start + close + 1;
            }
            _ => {
                let start = i;
                let end = memchr::memchr(b' ', &b[start..]).map_or(b.len(), |e| start + e);
                fields.push(&line[start..end]);
                i = end;
            }
        }
    }
    Ok(())
}

/// `-` (and the empty string) mean "no value" in every AWS access log.
pub(crate) fn opt(field: &str) -> Option<&str> {
    match field {
        "" | "-" => None,
        f => Some(f),
    }
}

pub(crate) fn opt_string(field: &str) -> Option<String> {
    opt(field).map(str::to_owned)
}

pub(crate) fn opt_i64(field: &str) -> Option<i64> {
    opt(field).and_then(|f| f.parse().ok())
}

pub(crate) fn opt_f64(field: &str) -> Option<f64> {
    opt(field)
        .and_then(|f| f.parse().ok())
        .filter(|v: &f64| v.is_finite())
}

/// Splits `host:port`, `[v6]:port` or a bare host. Returns `(ip, port)`.
pub(crate) fn split_host_port(field: &str) -> (Option<String>, Option<u16>) {
    let Some(field) = opt(field) else {
        return (None, None);
    };
    if let Some(rest) = field.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            return (Some(host.to_owned()), port.parse().ok());
        }
        return (Some(rest.trim_end_matches(']').to_owned()), None);
    }
    match field.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') => (Some(host.to_owned()), port.parse().ok()),
        _ => (Some(field.to_owned()), None),
    }
}

/// True when `s` is an IPv4 or IPv6 address (CloudTrail's sourceIPAddress is often a DNS name).
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn civil_ms(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(((days * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60_000 + i64::from(s) * 1000)
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` into epoch milliseconds. A time
/// without a zone is taken as UTC (NLB and CloudFront write UTC without saying so).
pub(crate) fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let base = civil_ms(
        digits(&b[0..4])?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )?;
    let mut rest = &b[19..];
    let mut ms = 0i64;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = &tail[..n];
        for i in 0..3 {
            ms = ms * 10 + frac.get(i).map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &tail[n..];
    }
    let offset_ms = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let (hh, mm) = match zone {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                _ => return None,
            };
            let off = i64::from(hh * 60 + mm) * 60_000;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some(base + ms - offset_ms)
}

pub(crate) fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|x| x.as_slice() == m)
        .map(|i| i as u32 + 1)
}

/// Parses the common log format time `06/Feb/2019:00:00:38 +0000` (brackets already removed).
pub(crate) fn parse_clf_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let base = civil_ms(
        digits(&b[7..11])?,
        month_from_abbrev(&b[3..6])?,
        digits(&b[0..2])?,
        digits(&b[12..14])?,
        digits(&b[15..17])?,
        digits(&b[18..20])?,
    )?;
    let off = i64::from(digits(&b[22..24])? * 60 + digits(&b[24..26])?) * 60_000;
    match b[21] {
        b'+' => Some(base - off),
        b'-' => Some(base + off),
        _ => None,
    }
}

/// Decodes `%XX` escapes; invalid escapes and invalid UTF-8 are kept as written.
pub(crate) fn url_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map_or_else(|_| s.to_owned(), |c| c.into_owned())
}

/// The `parsed` object of a delimited text record: every field by its documented name, as
/// written, with `-` as null. Values stay strings so ids with leading zeros survive. Values
/// past the named fields go under the layout's extra member, if it has one.
pub(crate) fn fields_json(layout: &ObjectLayout, values: &[&str]) -> JsonText {
    let extra = values.get(layout.name_count()..).unwrap_or_default();
    layout.render(values.len(), |i| opt(values[i]), extra)
}

/// Builds a record from a whole line (raw is the line without its terminator).
pub(crate) fn line_record(line: &Line<'_>, raw: &str, normalized: Normalized) -> ParsedRecord {
    ParsedRecord {
        raw: raw.to_owned(),
        offset: line.offset,
        line: line.number,
        normalized: Box::new(normalized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_track_offsets_and_strip_crlf() {
        let v: Vec<_> = lines(b"a\r\nbb\n\nccc")
            .map(|l| (l.bytes, l.offset, l.number))
            .collect();
        assert_eq!(
            v,
            vec![
                (&b"a"[..], 0, 1),
                (&b"bb"[..], 3, 2),
                (&b""[..], 6, 3),
                (&b"ccc"[..], 7, 4)
            ]
        );
        assert_eq!(lines(b"x\n").count(), 1);
        assert_eq!(lines(b"").count(), 0);
    }

    #[test]
    fn split_handles_quotes_and_brackets() {
        let mut f = Vec::new();
        split_fields(
            r#"a [06/Feb/2019:00:00:38 +0000] "GET / HTTP/1.1" "x \"y\"" -"#,
            true,
            &mut f,
        )
        .unwrap();
        assert_eq!(
            f,
            vec![
                "a",
                "06/Feb/2019:00:00:38 +0000",
                "GET / HTTP/1.1",
                r#"x \"y\""#,
                "-"
            ]
        );
        assert!(split_fields(r#"a "b"#, true, &mut f).is_err());
        assert!(split_fields("a [b", true, &mut f).is_err());
        assert!(split_fields(r#"a "b"c"#, true, &mut f).is_err());
        split_fields(r#"h2 "h2","http/1.1" x"#, false, &mut f).unwrap();
        assert_eq!(f, vec!["h2", r#""h2","http/1.1""#, "x"]);
        assert!(split_fields(r#"a "b\"#, true, &mut f).is_err());
        split_fields("[::1]:80 x", false, &mut f).unwrap();
        assert_eq!(f, vec!["[::1]:80", "x"]);
    }

    #[test]
    fn iso_times() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601_ms("2018-07-02T22:23:00.186641Z"),
            Some(1_530_570_180_186)
        );
        assert_eq!(
            parse_iso8601_ms("2020-10-13T22:10:01.006481+0000"),
            parse_iso8601_ms("2020-10-13T22:10:01.006Z")
        );
        assert_eq!(
            parse_iso8601_ms("2020-10-13T23:10:01+01:00"),
            parse_iso8601_ms("2020-10-13T22:10:01Z")
        );
        assert_eq!(
            parse_iso8601_ms("2018-12-20T02:59:40"),
            Some(1_545_274_780_000)
        );
        assert_eq!(parse_iso8601_ms("2025-10-21TT00:52:27Z"), None);
        assert_eq!(parse_iso8601_ms("2025-13-21T00:52:27Z"), None);
        assert_eq!(parse_iso8601_ms("2025-1"), None);
    }

    #[test]
    fn clf_times() {
        assert_eq!(
            parse_clf_time_ms("06/Feb/2019:00:00:38 +0000"),
            Some(1_549_411_238_000)
        );
        assert_eq!(
            parse_clf_time_ms("06/Feb/2019:01:00:38 +0100"),
            Some(1_549_411_238_000)
        );
        assert_eq!(parse_clf_time_ms("06/Foo/2019:00:00:38 +0000"), None);
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            split_host_port("192.0.2.1:80"),
            (Some("192.0.2.1".into()), Some(80))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            (Some("2001:db8::1".into()), Some(443))
        );
        assert_eq!(
            split_host_port("2001:db8::1"),
            (Some("2001:db8::1".into()), None)
        );
        assert_eq!(split_host_port("-"), (None, None));
    }
}
