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

use crate::json::{i64_of, nonempty, offset_in, owned, str_of, LineCounter, RECORD_BYTES_MAX};
use crate::text::{is_ip, parse_iso8601_ms};
use crate::{activity_from_action, ParseOutput, ParsedRecord, Rejection};

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
pub fn parse(input: &[u8]) -> ParseOutput {
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
        match record(raw.get(), start as u64, line) {
            Ok(r) => out.records.push(r),
            Err(reason) => out.rejections.push(Rejection {
                offset: start as u64,
                line,
                reason,
                raw: raw.get().as_bytes().to_vec(),
            }),
        }
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

fn record(raw: &str, offset: u64, line: u64) -> Result<ParsedRecord, String> {
    if raw.len() > RECORD_BYTES_MAX {
        return Err(format!(
            "cloudtrail record is {} bytes, larger than the limit of {RECORD_BYTES_MAX}",
            raw.len()
        ));
    }
    let value: Value =
        serde_json::from_str(raw).map_err(|e| format!("malformed cloudtrail record: {e}"))?;
    let normalized = normalize(value)?;
    Ok(ParsedRecord {
        raw: raw.to_owned(),
        offset,
        line,
        normalized,
    })
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

/// Normalizes one CloudTrail event; the event becomes `parsed`. Fails when `value` is not an
/// object with a valid `eventTime` (every CloudTrail event version has one).
pub fn normalize(value: Value) -> Result<Normalized, String> {
    if !value.is_object() {
        return Err("cloudtrail record is not a json object".into());
    }
    let time_ms = match str_of(&value, "eventTime") {
        Some(t) => Some(
            parse_iso8601_ms(t)
                .ok_or_else(|| format!("cloudtrail eventTime {t:?} is not an ISO-8601 time"))?,
        ),
        None => return Err("cloudtrail record has no eventTime".into()),
    };
    let null = Value::Null;
    let identity = value.get("userIdentity").unwrap_or(&null);
    let session = identity.get("sessionContext").unwrap_or(&null);
    let issuer = session.get("sessionIssuer").unwrap_or(&null);
    let insight = value.get("insightDetails").unwrap_or(&null);

    let action = nonempty(&value, "eventName").or_else(|| nonempty(insight, "eventName"));
    let service = nonempty(&value, "eventSource").or_else(|| nonempty(insight, "eventSource"));
    let actor_type = nonempty(identity, "type");
    let user_name = if actor_type == Some("AssumedRole") {
        nonempty(issuer, "userName").or_else(|| nonempty(identity, "userName"))
    } else {
        nonempty(identity, "userName").or_else(|| nonempty(issuer, "userName"))
    };
    let mfa = session
        .get("attributes")
        .and_then(|a| a.get("mfaAuthenticated"))
        .and_then(bool_of)
        .or_else(|| {
            value
                .get("additionalEventData")
                .and_then(|a| a.get("MFAUsed"))
                .and_then(bool_of)
        });
    let error_code = nonempty(&value, "errorCode");
    let console_failure = action == Some("ConsoleLogin")
        && value
            .get("responseElements")
            .and_then(|r| str_of(r, "ConsoleLogin"))
            == Some("Failure");
    let outcome = if error_code.is_some() || console_failure {
        Outcome::Failure
    } else {
        Outcome::Success
    };
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
    let src_ip = nonempty(&value, "sourceIPAddress").filter(|s| is_ip(s));
    let bytes = value.get("additionalEventData").and_then(|a| {
        let inb = i64_of(a, "bytesTransferredIn");
        let outb = i64_of(a, "bytesTransferredOut");
        match (inb, outb) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
        }
    });

    let n = Normalized {
        source: "cloudtrail".into(),
        time_ms,
        account: owned(
            nonempty(&value, "recipientAccountId").or_else(|| nonempty(identity, "accountId")),
        ),
        region: owned(nonempty(&value, "awsRegion")),
        service: owned(service),
        action: owned(action),
        activity: action.map(activity_from_action),
        actor_principal_id: owned(nonempty(identity, "principalId")),
        actor_arn: owned(nonempty(identity, "arn")),
        actor_type: owned(actor_type),
        actor_user_name: owned(user_name),
        actor_access_key_id: owned(nonempty(identity, "accessKeyId")),
        actor_mfa: mfa,
        actor_invoked_by: owned(nonempty(identity, "invokedBy")),
        src_ip: owned(src_ip),
        user_agent: owned(nonempty(&value, "userAgent")),
        resources,
        outcome: Some(outcome),
        error_code: owned(error_code),
        error_message: owned(nonempty(&value, "errorMessage")),
        request_id: owned(nonempty(&value, "requestID")),
        source_event_id: owned(nonempty(&value, "eventID")),
        read_only: value.get("readOnly").and_then(bool_of),
        bytes,
        ..Normalized::default()
    };
    Ok(Normalized {
        parsed: Some(value),
        ..n
    })
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
        let n = normalize(v).unwrap();
        assert_eq!(n.actor_user_name.as_deref(), Some("Admin"));
        assert_eq!(n.actor_mfa, Some(true));
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(n.src_ip, None);
        assert_eq!(n.account.as_deref(), Some("111122223333"));
        assert_eq!(n.read_only, Some(false));
    }
}
