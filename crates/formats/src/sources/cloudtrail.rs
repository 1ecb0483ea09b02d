//! CloudTrail log files (`{"Records":[…]}`) and digest files.
//!
//! The raw of each record is its exact byte span inside the file, found with serde_json's
//! `RawValue`, so the stored message is what CloudTrail wrote (pretty-printed or not) and what
//! a digest's hash chain covers through the file. Every event version (1.0–1.11 and later minor
//! versions) and every `userIdentity` type is accepted: unknown members are kept in `parsed`.
//!
//! A digest file (`CloudTrail-Digest/`) holds no events: it parses to an empty output with
//! `skipped == 1`. A file that stops in the middle of the array keeps the records before the
//! break and rejects the rest as one rejection.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use trailvault_model::{Normalized, Outcome, Resource};

use crate::json::{
    i64_of, nonempty, offset_in, owned, skip_ws, str_of, LineCounter, RECORD_BYTES_MAX,
};
use crate::text::{is_ip, parse_iso8601_ms};
use crate::{activity_from_action, ParseOutput, Rejection};

/// Top-level members only a digest file has.
const DIGEST_KEYS: [&str; 4] = [
    "digestStartTime",
    "digestEndTime",
    "digestSignatureAlgorithm",
    "logFiles",
];

#[derive(Default)]
struct FileShape<'a> {
    records: Vec<&'a RawValue>,
    saw_records: bool,
    saw_digest_key: bool,
}

enum Key {
    Records,
    Digest,
    Other,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "Records" => Key::Records,
            k if DIGEST_KEYS.contains(&k) => Key::Digest,
            _ => Key::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct FileVisitor<'s, 'a>(&'s mut FileShape<'a>);

impl<'de, 's> Visitor<'de> for FileVisitor<'s, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cloudtrail log file object {\"Records\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Records => {
                    self.0.saw_records = true;
                    map.next_value_seed(RecordsSeed(&mut self.0.records))?;
                }
                Key::Digest => {
                    self.0.saw_digest_key = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct RecordsSeed<'s, 'a>(&'s mut Vec<&'a RawValue>);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // `"Records": null` is an empty file.
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            self.0.push(raw);
        }
        Ok(())
    }
}

/// Byte offset of serde_json's 1-based (line, column) error position.
fn error_offset(input: &[u8], e: &serde_json::Error) -> usize {
    let mut start = 0usize;
    for _ in 1..e.line() {
        match memchr::memchr(b'\n', &input[start..]) {
            Some(i) => start += i + 1,
            None => return input.len(),
        }
    }
    (start + e.column().saturating_sub(1)).min(input.len())
}

fn skip_separators(input: &[u8], mut pos: usize) -> usize {
    while pos < input.len() && matches!(input[pos], b' ' | b'\t' | b'\r' | b'\n' | b',') {
        pos += 1;
    }
    pos
}

fn reject_tail(
    out: &mut ParseOutput,
    input: &[u8],
    from: usize,
    lines: &mut LineCounter<'_>,
    reason: String,
) {
    let raw = &input[from.min(input.len())..];
    out.rejections.push(Rejection {
        offset: from as u64,
        line: lines.line_at(from),
        reason,
        raw: raw.to_vec(),
    });
}

/// Parses a CloudTrail log file. A digest file given here is recognised and skipped.
///
/// A file of the shape CloudTrail writes, `{"Records":[…]}` with nothing else, well formed,
/// is read in one pass ([`parse_in_one_pass`]); anything else takes [`parse_general`]. Both
/// give the same output (tested, and fuzzed by `parse_cloudtrail`).
pub fn parse(input: &[u8]) -> ParseOutput {
    if input.iter().all(u8::is_ascii_whitespace) {
        return ParseOutput::default();
    }
    parse_in_one_pass(input).unwrap_or_else(|| parse_general(input))
}

/// `input[pos..]` starts with `token`, after optional whitespace: the position after it.
fn expect(input: &[u8], pos: usize, token: &[u8]) -> Option<usize> {
    let pos = skip_ws(input, pos);
    input[pos..].starts_with(token).then_some(pos + token.len())
}

/// The common shape in one pass: each record is deserialized straight from the file into
/// the typed view the normalizer reads, and its span is where that deserializer stopped, so
/// the record's bytes are scanned once instead of once for the span and again for the
/// fields. `None` as soon as anything differs from a well-formed `{"Records":[…]}` (another
/// top-level member, a syntax error, invalid UTF-8): [`parse_general`] then reads the file
/// and words the rejections.
fn parse_in_one_pass(input: &[u8]) -> Option<ParseOutput> {
    let mut pos = expect(input, 0, b"{")?;
    pos = expect(input, pos, b"\"Records\"")?;
    pos = expect(input, pos, b":")?;
    pos = expect(input, pos, b"[")?;
    let mut out = ParseOutput::default();
    let mut lines = LineCounter::new(input);
    pos = skip_ws(input, pos);
    if input.get(pos) == Some(&b']') {
        pos += 1;
    } else {
        loop {
            let start = pos;
            let rest = &input[start..];
            let mut typed = serde_json::Deserializer::from_slice(rest).into_iter::<fast::Event>();
            let record = match typed.next()? {
                Ok(event) => {
                    let end = start + typed.byte_offset();
                    // Members the typed view skips were not checked for UTF-8 (checked here
                    // with SIMD: this pass covers every byte of the file).
                    let raw = simdutf8::basic::from_utf8(&input[start..end]).ok()?;
                    let line = lines.line_at(start);
                    Some((
                        raw,
                        line,
                        checked_size(raw).and_then(|()| event.normalize()),
                    ))
                }
                Err(_) => None,
            };
            let (raw, line, normalized) = match record {
                Some(r) => r,
                // Not the typed shape (a member of an unexpected type, not an object): the
                // record's span, then the same tolerant path the general parser takes.
                None => {
                    let mut raws =
                        serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
                    let raw = raws.next()?.ok()?.get();
                    let line = lines.line_at(start);
                    (raw, line, normalize_checked(raw))
                }
            };
            out.keep(raw, start as u64, line, normalized);
            pos = skip_ws(input, start + raw.len());
            match input.get(pos) {
                Some(b',') => {
                    pos = skip_ws(input, pos + 1);
                    if input.get(pos) == Some(&b']') {
                        return None;
                    }
                }
                Some(b']') => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    pos = expect(input, pos, b"}")?;
    (skip_ws(input, pos) == input.len()).then_some(out)
}

/// Parses a CloudTrail log file of any shape: the records' spans first, then each record.
/// Words every error: a file that stops in the middle keeps the records before the break.
/// Public so tests and fuzzing can hold [`parse`]'s one-pass path to it.
pub fn parse_general(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    if input.iter().all(u8::is_ascii_whitespace) {
        return out;
    }
    let mut shape = FileShape::default();
    let mut de = serde_json::Deserializer::from_slice(input);
    let result = de.deserialize_map(FileVisitor(&mut shape));
    let mut lines = LineCounter::new(input);
    let mut last_end = 0usize;
    for raw in &shape.records {
        let start = offset_in(input, raw.get());
        last_end = start + raw.get().len();
        let line = lines.line_at(start);
        out.keep(raw.get(), start as u64, line, normalize_checked(raw.get()));
    }
    let (error, trailing) = match result {
        Err(e) => (Some(e), false),
        Ok(()) => (de.end().err(), true),
    };
    if let Some(e) = error {
        let from = if trailing {
            error_offset(input, &e)
        } else if !shape.records.is_empty() {
            // Keep every record before the break; the rest is one rejection.
            skip_separators(input, last_end)
        } else if shape.saw_records {
            error_offset(input, &e)
        } else {
            0
        };
        let what = if shape.saw_records || trailing {
            "malformed cloudtrail log file"
        } else {
            "not a cloudtrail log file"
        };
        reject_tail(&mut out, input, from, &mut lines, format!("{what}: {e}"));
        return out;
    }
    if !shape.saw_records {
        if shape.saw_digest_key {
            out.skipped += 1;
        } else {
            reject_tail(
                &mut out,
                input,
                0,
                &mut lines,
                "not a cloudtrail log file: no Records array".into(),
            );
        }
    }
    out
}

/// Parses a CloudTrail digest file: a well-formed digest yields no records and `skipped == 1`
/// (the integrity crate validates digests); anything else is one rejection.
pub fn parse_digest(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    match serde_json::from_slice::<Value>(input) {
        Ok(v) if v.is_object() && DIGEST_KEYS.iter().any(|k| v.get(k).is_some()) => {
            out.skipped = 1;
        }
        Ok(_) => out.rejections.push(Rejection {
            offset: 0,
            line: 1,
            reason: "not a cloudtrail digest file: no digest members".into(),
            raw: input.to_vec(),
        }),
        Err(e) => out.rejections.push(Rejection {
            offset: 0,
            line: 1,
            reason: format!("malformed cloudtrail digest file: {e}"),
            raw: input.to_vec(),
        }),
    }
    out
}

fn checked_size(raw: &str) -> Result<(), String> {
    if raw.len() > RECORD_BYTES_MAX {
        return Err(format!(
            "cloudtrail record is {} bytes, larger than the limit of {RECORD_BYTES_MAX}",
            raw.len()
        ));
    }
    Ok(())
}

/// [`normalize_str`] of a record within the size limit.
fn normalize_checked(raw: &str) -> Result<Normalized, String> {
    checked_size(raw)?;
    normalize_str(raw)
}

/// Normalizes one CloudTrail event given as JSON text. Uses borrowed, typed deserialization
/// (no allocation per field); an event whose members have unexpected JSON types takes the
/// tolerant [`normalize`] path over a `serde_json::Value`. Both give the same result.
pub fn normalize_str(raw: &str) -> Result<Normalized, String> {
    match serde_json::from_str::<fast::Event<'_>>(raw) {
        Ok(event) => event.normalize(),
        Err(_) => {
            let value: Value = serde_json::from_str(raw)
                .map_err(|e| format!("malformed cloudtrail record: {e}"))?;
            normalize(&value)
        }
    }
}

/// True when `v` looks like one CloudTrail event (used to recognise CloudTrail events inside
/// CloudWatch Logs subscription envelopes).
pub fn is_event(v: &Value) -> bool {
    v.is_object() && str_of(v, "eventVersion").is_some() && str_of(v, "eventTime").is_some()
}

fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "Yes" | "yes" => Some(true),
            "false" | "False" | "FALSE" | "No" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The members of an event the normalizer reads, borrowed from either parse path.
#[derive(Default)]
struct Fields<'a> {
    event_time: Option<&'a str>,
    event_name: Option<&'a str>,
    event_source: Option<&'a str>,
    insight_name: Option<&'a str>,
    insight_source: Option<&'a str>,
    region: Option<&'a str>,
    source_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
    request_id: Option<&'a str>,
    event_id: Option<&'a str>,
    recipient_account: Option<&'a str>,
    read_only: Option<bool>,
    id_type: Option<&'a str>,
    id_principal: Option<&'a str>,
    id_arn: Option<&'a str>,
    id_account: Option<&'a str>,
    id_access_key: Option<&'a str>,
    id_user_name: Option<&'a str>,
    id_invoked_by: Option<&'a str>,
    issuer_user_name: Option<&'a str>,
    mfa_authenticated: Option<bool>,
    mfa_used: Option<bool>,
    console_login: Option<&'a str>,
    bytes_in: Option<i64>,
    bytes_out: Option<i64>,
    resources: Vec<Resource>,
}

fn ne(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn own(s: Option<&str>) -> Option<String> {
    ne(s).map(str::to_owned)
}

impl Fields<'_> {
    /// The normalization rules (docs/formats.md, "CloudTrail").
    fn assemble(self) -> Result<Normalized, String> {
        let time_ms = match self.event_time {
            Some(t) => Some(
                parse_iso8601_ms(t)
                    .ok_or_else(|| format!("cloudtrail eventTime {t:?} is not an ISO-8601 time"))?,
            ),
            None => return Err("cloudtrail record has no eventTime".into()),
        };
        let action = ne(self.event_name).or(ne(self.insight_name));
        let service = ne(self.event_source).or(ne(self.insight_source));
        let actor_type = ne(self.id_type);
        let user_name = if actor_type == Some("AssumedRole") {
            ne(self.issuer_user_name).or(ne(self.id_user_name))
        } else {
            ne(self.id_user_name).or(ne(self.issuer_user_name))
        };
        let error_code = ne(self.error_code);
        let console_failure =
            action == Some("ConsoleLogin") && self.console_login == Some("Failure");
        let outcome = if error_code.is_some() || console_failure {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let bytes = match (self.bytes_in, self.bytes_out) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
        };
        Ok(Normalized {
            source: "cloudtrail".into(),
            time_ms,
            account: own(ne(self.recipient_account).or(ne(self.id_account))),
            region: own(self.region),
            service: own(service),
            action: own(action),
            activity: action.map(activity_from_action),
            actor_principal_id: own(self.id_principal),
            actor_arn: own(self.id_arn),
            actor_type: own(actor_type),
            actor_user_name: own(user_name),
            actor_access_key_id: own(self.id_access_key),
            actor_mfa: self.mfa_authenticated.or(self.mfa_used),
            actor_invoked_by: own(self.id_invoked_by),
            src_ip: own(ne(self.source_ip).filter(|s| is_ip(s))),
            user_agent: own(self.user_agent),
            resources: self.resources,
            outcome: Some(outcome),
            error_code: own(error_code),
            error_message: own(self.error_message),
            request_id: own(self.request_id),
            source_event_id: own(self.event_id),
            read_only: self.read_only,
            bytes,
            ..Normalized::default()
        })
    }
}

/// Normalizes one CloudTrail event held as a `serde_json::Value` (the tolerant path: members
/// of unexpected types are ignored). Fails when `value` is not an object with a valid
/// `eventTime` (every CloudTrail event version has one).
///
/// `parsed` is left empty: the raw record is itself the full JSON event (see docs/formats.md).
pub fn normalize(value: &Value) -> Result<Normalized, String> {
    if !value.is_object() {
        return Err("cloudtrail record is not a json object".into());
    }
    let null = Value::Null;
    let identity = value.get("userIdentity").unwrap_or(&null);
    let session = identity.get("sessionContext").unwrap_or(&null);
    let issuer = session.get("sessionIssuer").unwrap_or(&null);
    let insight = value.get("insightDetails").unwrap_or(&null);
    let extra = value.get("additionalEventData").unwrap_or(&null);
    let resources = value
        .get("resources")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .map(|r| Resource {
                    id: owned(nonempty(r, "ARN").or_else(|| nonempty(r, "arn"))),
                    kind: owned(nonempty(r, "type")),
                    owner_account: owned(nonempty(r, "accountId")),
                })
                .collect()
        })
        .unwrap_or_default();
    Fields {
        event_time: str_of(value, "eventTime"),
        event_name: str_of(value, "eventName"),
        event_source: str_of(value, "eventSource"),
        insight_name: str_of(insight, "eventName"),
        insight_source: str_of(insight, "eventSource"),
        region: str_of(value, "awsRegion"),
        source_ip: str_of(value, "sourceIPAddress"),
        user_agent: str_of(value, "userAgent"),
        error_code: str_of(value, "errorCode"),
        error_message: str_of(value, "errorMessage"),
        request_id: str_of(value, "requestID"),
        event_id: str_of(value, "eventID"),
        recipient_account: str_of(value, "recipientAccountId"),
        read_only: value.get("readOnly").and_then(bool_of),
        id_type: str_of(identity, "type"),
        id_principal: str_of(identity, "principalId"),
        id_arn: str_of(identity, "arn"),
        id_account: str_of(identity, "accountId"),
        id_access_key: str_of(identity, "accessKeyId"),
        id_user_name: str_of(identity, "userName"),
        id_invoked_by: str_of(identity, "invokedBy"),
        issuer_user_name: str_of(issuer, "userName"),
        mfa_authenticated: session
            .get("attributes")
            .and_then(|a| a.get("mfaAuthenticated"))
            .and_then(bool_of),
        mfa_used: extra.get("MFAUsed").and_then(bool_of),
        console_login: value
            .get("responseElements")
            .and_then(|r| str_of(r, "ConsoleLogin")),
        bytes_in: i64_of(extra, "bytesTransferredIn"),
        bytes_out: i64_of(extra, "bytesTransferredOut"),
        resources,
    }
    .assemble()
}

/// Typed, borrowed views of the members the normalizer reads; everything else is skipped
/// without being materialised. A type mismatch fails the whole event, which then takes the
/// tolerant `Value` path.
mod fast {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;
    use trailvault_model::{Normalized, Resource};

    use super::Fields;

    type S<'a> = Option<Text<'a>>;

    fn s<'x>(v: &'x S<'_>) -> Option<&'x str> {
        v.as_ref().map(|t| &*t.0)
    }

    /// A JSON string, borrowed from the input unless it holds escapes. (`Option<Cow<str>>`
    /// with `#[serde(borrow)]` still copies every string: serde borrows only a bare `Cow`.)
    pub(super) struct Text<'a>(Cow<'a, str>);

    impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Cow<'de, str>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Cow::Borrowed(v))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Cow::Owned(v.to_owned()))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                    Ok(Cow::Owned(v))
                }
            }
            d.deserialize_str(V).map(Text)
        }
    }

    /// `true`/`false` as JSON booleans or as the strings CloudTrail also uses.
    #[derive(Clone, Copy)]
    pub(super) struct Flag(pub Option<bool>);

    impl<'de> Deserialize<'de> for Flag {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Flag;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a boolean or a boolean string")
                }
                fn visit_bool<E: de::Error>(self, b: bool) -> Result<Flag, E> {
                    Ok(Flag(Some(b)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                    Ok(Flag(super::bool_of(&serde_json::Value::String(
                        v.to_owned(),
                    ))))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                    Ok(Flag(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// An integer that may be written as a float (`576.0`) or be absent.
    #[derive(Clone, Copy)]
    pub(super) struct Int(pub Option<i64>);

    impl<'de> Deserialize<'de> for Int {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Int;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a number")
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                    Ok(Int(Some(v)))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                    Ok(Int(i64::try_from(v).ok()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                    Ok(Int(Some(v as i64)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                    Ok(Int(v.parse().ok()))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Int, E> {
                    Ok(Int(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Issuer<'a> {
        #[serde(borrow)]
        user_name: S<'a>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Attributes {
        mfa_authenticated: Option<Flag>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Session<'a> {
        attributes: Option<Attributes>,
        #[serde(borrow)]
        session_issuer: Option<Issuer<'a>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Identity<'a> {
        #[serde(borrow, rename = "type")]
        kind: S<'a>,
        #[serde(borrow)]
        principal_id: S<'a>,
        #[serde(borrow)]
        arn: S<'a>,
        #[serde(borrow)]
        account_id: S<'a>,
        #[serde(borrow)]
        access_key_id: S<'a>,
        #[serde(borrow)]
        user_name: S<'a>,
        #[serde(borrow)]
        invoked_by: S<'a>,
        #[serde(borrow)]
        session_context: Option<Session<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Res<'a> {
        #[serde(borrow, rename = "ARN")]
        arn_upper: S<'a>,
        #[serde(borrow)]
        arn: S<'a>,
        #[serde(borrow, rename = "type")]
        kind: S<'a>,
        #[serde(borrow)]
        account_id: S<'a>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Insight<'a> {
        #[serde(borrow)]
        event_name: S<'a>,
        #[serde(borrow)]
        event_source: S<'a>,
    }

    #[derive(Deserialize, Default)]
    struct Extra {
        #[serde(rename = "MFAUsed")]
        mfa_used: Option<Flag>,
        #[serde(rename = "bytesTransferredIn")]
        bytes_in: Option<Int>,
        #[serde(rename = "bytesTransferredOut")]
        bytes_out: Option<Int>,
    }

    #[derive(Deserialize, Default)]
    struct Response<'a> {
        #[serde(borrow, rename = "ConsoleLogin")]
        console_login: S<'a>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Event<'a> {
        #[serde(borrow)]
        event_time: S<'a>,
        #[serde(borrow)]
        event_name: S<'a>,
        #[serde(borrow)]
        event_source: S<'a>,
        #[serde(borrow)]
        aws_region: S<'a>,
        #[serde(borrow, rename = "sourceIPAddress")]
        source_ip_address: S<'a>,
        #[serde(borrow)]
        user_agent: S<'a>,
        #[serde(borrow)]
        error_code: S<'a>,
        #[serde(borrow)]
        error_message: S<'a>,
        #[serde(borrow, rename = "requestID")]
        request_id: S<'a>,
        #[serde(borrow, rename = "eventID")]
        event_id: S<'a>,
        #[serde(borrow)]
        recipient_account_id: S<'a>,
        read_only: Option<Flag>,
        #[serde(borrow)]
        user_identity: Option<Identity<'a>>,
        #[serde(borrow)]
        insight_details: Option<Insight<'a>>,
        additional_event_data: Option<Extra>,
        #[serde(borrow)]
        response_elements: Option<Response<'a>>,
        #[serde(borrow)]
        resources: Option<Vec<Res<'a>>>,
    }

    impl Event<'_> {
        pub(super) fn normalize(&self) -> Result<Normalized, String> {
            let default_id = Identity::default();
            let id = self.user_identity.as_ref().unwrap_or(&default_id);
            let session = id.session_context.as_ref();
            let issuer = session.and_then(|s| s.session_issuer.as_ref());
            let insight = self.insight_details.as_ref();
            let extra = self.additional_event_data.as_ref();
            Fields {
                event_time: s(&self.event_time),
                event_name: s(&self.event_name),
                event_source: s(&self.event_source),
                insight_name: insight.and_then(|i| s(&i.event_name)),
                insight_source: insight.and_then(|i| s(&i.event_source)),
                region: s(&self.aws_region),
                source_ip: s(&self.source_ip_address),
                user_agent: s(&self.user_agent),
                error_code: s(&self.error_code),
                error_message: s(&self.error_message),
                request_id: s(&self.request_id),
                event_id: s(&self.event_id),
                recipient_account: s(&self.recipient_account_id),
                read_only: self.read_only.and_then(|f| f.0),
                id_type: s(&id.kind),
                id_principal: s(&id.principal_id),
                id_arn: s(&id.arn),
                id_account: s(&id.account_id),
                id_access_key: s(&id.access_key_id),
                id_user_name: s(&id.user_name),
                id_invoked_by: s(&id.invoked_by),
                issuer_user_name: issuer.and_then(|i| s(&i.user_name)),
                mfa_authenticated: session
                    .and_then(|s| s.attributes.as_ref())
                    .and_then(|a| a.mfa_authenticated)
                    .and_then(|f| f.0),
                mfa_used: extra.and_then(|e| e.mfa_used).and_then(|f| f.0),
                console_login: self
                    .response_elements
                    .as_ref()
                    .and_then(|r| s(&r.console_login)),
                bytes_in: extra.and_then(|e| e.bytes_in).and_then(|i| i.0),
                bytes_out: extra.and_then(|e| e.bytes_out).and_then(|i| i.0),
                resources: self
                    .resources
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| Resource {
                        id: super::own(s(&r.arn_upper).filter(|a| !a.is_empty()).or(s(&r.arn))),
                        kind: super::own(s(&r.kind)),
                        owner_account: super::own(s(&r.account_id)),
                    })
                    .collect(),
            }
            .assemble()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn strings_are_borrowed_unless_escaped() {
            let t: Text<'_> = serde_json::from_str(r#""plain""#).expect("string");
            assert!(matches!(t.0, Cow::Borrowed("plain")));
            let t: Text<'_> = serde_json::from_str(r#""a\"b""#).expect("string");
            assert!(matches!(&t.0, Cow::Owned(s) if s == "a\"b"));
            assert!(serde_json::from_str::<Text<'_>>("7").is_err());
            // The field type the typed view used before, for contrast: serde copies it.
            let c: Option<Cow<'_, str>> = serde_json::from_str(r#""plain""#).expect("string");
            assert!(matches!(c, Some(Cow::Owned(_))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailvault_model::Activity;

    #[test]
    fn raw_is_the_exact_byte_span() {
        let input = br#"{"Records":[ {"eventVersion":"1.0","eventTime":"2014-03-06T21:22:54Z","eventName":"GetObject"} ,
{ "eventVersion" : "1.10", "eventTime":"2024-01-01T00:00:00Z", "eventName":"DeleteBucket", "errorCode":"AccessDenied"}]}"#;
        let out = parse(input);
        assert!(out.rejections.is_empty(), "{:?}", out.rejections);
        assert_eq!(out.records.len(), 2);
        let r = &out.records[1];
        assert_eq!(r.line, 2);
        assert_eq!(
            &input[r.offset as usize..r.offset as usize + r.raw.len()],
            r.raw.as_bytes()
        );
        assert!(r.raw.starts_with("{ \"eventVersion\" : \"1.10\""));
        assert_eq!(r.normalized.activity, Some(Activity::Delete));
        assert_eq!(r.normalized.outcome, Some(Outcome::Failure));
        assert_eq!(out.records[0].normalized.activity, Some(Activity::Read));
    }

    #[test]
    fn the_common_shape_takes_the_one_pass_path() {
        let input = br#" { "Records" : [ {"eventTime":"2020-01-01T00:00:00Z"},
            {"eventTime":"2020-01-01T00:00:01Z","eventName":7} , 3 ] }
"#;
        let out = parse_in_one_pass(input).expect("one pass");
        assert_eq!((out.records.len(), out.rejections.len()), (2, 1));
        assert_eq!(out, parse_general(input));
        assert!(parse_in_one_pass(br#"{"Records":[]}"#).is_some());
        for other in [
            &br#"{"Records":[{"eventTime":"2020-01-01T00:00:00Z"},]}"#[..],
            br#"{"Records":[],"digestStartTime":"x"}"#,
            br#"{"x":1,"Records":[]}"#,
            br#"{"Records":[{"eventTime":"2020-01-01T00:00:00Z"}]} junk"#,
            b"{\"Records\":[{\"eventTime\":\"2020-01-01T00:00:00Z\",\"k\":\"\xff\"}]}",
        ] {
            assert!(parse_in_one_pass(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn truncated_file_keeps_good_records_and_rejects_the_rest() {
        let input = br#"{"Records":[{"eventVersion":"1.05","eventTime":"2020-01-01T00:00:00Z"},{"eventVersion":"1.05","eventTi"#;
        let out = parse(input);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.rejections.len(), 1);
        assert!(out.rejections[0]
            .raw
            .starts_with(b"{\"eventVersion\":\"1.05\",\"eventTi"));
    }

    #[test]
    fn bad_members_are_rejected_one_by_one() {
        let input = br#"{"Records":[1,{"eventTime":"nope"},{"eventVersion":"1.0"},{"eventTime":"2020-01-01T00:00:00Z"}]}"#;
        let out = parse(input);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.rejections.len(), 3);
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let out = parse(br#"{"Records":[]} junk"#);
        assert_eq!(out.records.len(), 0);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].raw, b"junk");
    }

    #[test]
    fn digest_and_non_trail_json() {
        let out = parse(br#"{"awsAccountId":"1","digestStartTime":"x","logFiles":[]}"#);
        assert_eq!(
            (out.records.len(), out.rejections.len(), out.skipped),
            (0, 0, 1)
        );
        let out = parse_digest(br#"{"awsAccountId":"1","digestStartTime":"x","logFiles":[]}"#);
        assert_eq!(
            (out.records.len(), out.rejections.len(), out.skipped),
            (0, 0, 1)
        );
        assert_eq!(parse(br#"{"a":1}"#).rejections.len(), 1);
        assert_eq!(parse(br#"[1,2]"#).rejections.len(), 1);
        assert_eq!(parse_digest(br#"{"a":1}"#).rejections.len(), 1);
        assert_eq!(parse(b"").records_read(), 0);
    }

    #[test]
    fn identity_variants() {
        let v: Value = serde_json::from_str(
            r#"{"eventVersion":"1.02","eventTime":"2020-01-01T00:00:00Z","eventName":"ConsoleLogin",
            "userIdentity":{"type":"AssumedRole","principalId":"AROA:bob","arn":"arn:aws:sts::1:assumed-role/Admin/bob",
              "accountId":"111122223333","accessKeyId":"ASIA",
              "sessionContext":{"attributes":{"mfaAuthenticated":"true"},"sessionIssuer":{"userName":"Admin"}}},
            "responseElements":{"ConsoleLogin":"Failure"},"sourceIPAddress":"signin.amazonaws.com","readOnly":"false"}"#,
        )
        .unwrap();
        let n = normalize(&v).unwrap();
        assert_eq!(normalize_str(&v.to_string()), Ok(n.clone()));
        assert_eq!(n.actor_user_name.as_deref(), Some("Admin"));
        assert_eq!(n.actor_mfa, Some(true));
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(n.src_ip, None);
        assert_eq!(n.account.as_deref(), Some("111122223333"));
        assert_eq!(n.read_only, Some(false));
    }
}
