//! CloudWatch Logs subscription-filter envelopes, as Firehose or a Lambda receives them:
//! `{"messageType":"DATA_MESSAGE","owner":…,"logGroup":…,"logStream":…,"logEvents":[…]}`.
//!
//! Input may hold several envelopes back to back, and may be gzip-compressed (as delivered);
//! decompressed size is capped at [`DECOMPRESSED_BYTES_MAX`]. Each `logEvents[].message` is one
//! record and its raw is the message text itself (unescaped), so offsets point at the JSON
//! of the log event that carried it. `CONTROL_MESSAGE` envelopes are health checks: counted in `skipped`.
//!
//! A message that is a CloudTrail event is normalized as CloudTrail (source `cloudtrail`);
//! any other message is kept opaque with the envelope's metadata.

use std::io::Read;

use serde_json::{json, Value};
use trailvault_model::{JsonText, Normalized};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{
    for_each_value, i64_of, nonempty, offset_in, owned, reject_value, str_of, LineCounter,
};
use crate::sources::cloudtrail;
use crate::{ParseOutput, ParsedRecord, Rejection};

/// Largest decompressed payload accepted from a gzip'ed input.
pub const DECOMPRESSED_BYTES_MAX: u64 = 256 << 20;

pub fn parse(input: &[u8]) -> ParseOutput {
    if input.starts_with(&[0x1f, 0x8b]) {
        let mut buf = Vec::new();
        let mut dec = flate2::read::MultiGzDecoder::new(input).take(DECOMPRESSED_BYTES_MAX + 1);
        if let Err(e) = dec.read_to_end(&mut buf) {
            return whole_input_rejected(input, format!("gzip payload does not decompress: {e}"));
        }
        if buf.len() as u64 > DECOMPRESSED_BYTES_MAX {
            return whole_input_rejected(
                input,
                format!("gzip payload decompresses to more than {DECOMPRESSED_BYTES_MAX} bytes"),
            );
        }
        return parse_plain(&buf);
    }
    parse_plain(input)
}

fn whole_input_rejected(input: &[u8], reason: String) -> ParseOutput {
    ParseOutput {
        rejections: vec![Rejection {
            offset: 0,
            line: 1,
            reason,
            raw: input.to_vec(),
        }],
        ..ParseOutput::default()
    }
}

fn parse_plain(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    for_each_value(input, &mut out, |raw, offset, line, out| {
        let env = match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                return reject_value(
                    out,
                    raw,
                    offset,
                    line,
                    "subscription envelope is not a json object",
                )
            }
            Err(e) => return reject_value(out, raw, offset, line, format!("malformed json: {e}")),
        };
        match str_of(&env, "messageType") {
            Some("CONTROL_MESSAGE") => {
                out.skipped += 1;
                return;
            }
            Some("DATA_MESSAGE") => {}
            Some(other) => {
                return reject_value(
                    out,
                    raw,
                    offset,
                    line,
                    format!("unknown subscription messageType {other:?}"),
                )
            }
            None => {
                return reject_value(
                    out,
                    raw,
                    offset,
                    line,
                    "subscription envelope has no messageType",
                )
            }
        }
        for key in ["owner", "logGroup", "logStream"] {
            if nonempty(&env, key).is_none() {
                return reject_value(
                    out,
                    raw,
                    offset,
                    line,
                    format!("subscription envelope has no {key}"),
                );
            }
        }
        // The events' own byte spans, so a rejected event keeps its exact bytes.
        let spans = match serde_json::from_str::<EventSpans<'_>>(raw.get()) {
            Ok(EventSpans {
                log_events: Some(spans),
            }) => spans,
            _ => {
                return reject_value(
                    out,
                    raw,
                    offset,
                    line,
                    "subscription envelope has no logEvents array",
                )
            }
        };
        let mut lines = LineCounter::new(raw.get().as_bytes());
        for span in spans {
            let within = offset_in(raw.get().as_bytes(), span.get());
            let ev_offset = offset + within as u64;
            let ev_line = line + lines.line_at(within) - 1;
            let result = serde_json::from_str::<Value>(span.get())
                .map_err(|e| format!("malformed log event: {e}"))
                .and_then(|event| {
                    let normalized = event_record(&env, &event)?;
                    Ok((
                        str_of(&event, "message").unwrap_or_default().to_owned(),
                        normalized,
                    ))
                });
            match result {
                Ok((message, normalized)) => out.records.push(ParsedRecord {
                    raw: message,
                    offset: ev_offset,
                    line: ev_line,
                    normalized: Box::new(normalized),
                }),
                Err(reason) => out.rejections.push(Rejection {
                    offset: ev_offset,
                    line: ev_line,
                    reason,
                    raw: span.get().as_bytes().to_vec(),
                }),
            }
        }
    });
    out
}

#[derive(Deserialize)]
struct EventSpans<'a> {
    #[serde(borrow, rename = "logEvents")]
    log_events: Option<Vec<&'a RawValue>>,
}

fn event_record(env: &Value, event: &Value) -> Result<Normalized, String> {
    let message = str_of(event, "message").ok_or("log event has no message string")?;
    let timestamp = i64_of(event, "timestamp").ok_or("log event has no numeric timestamp")?;
    let extracted = event.get("extractedFields");
    let account = extracted
        .and_then(|x| nonempty(x, "@aws.account"))
        .or_else(|| nonempty(env, "owner"));
    let region = extracted.and_then(|x| nonempty(x, "@aws.region"));
    if message.trim_start().starts_with('{') {
        if let Ok(inner) = serde_json::from_str::<Value>(message) {
            if cloudtrail::is_event(&inner) {
                if let Ok(mut n) = cloudtrail::normalize(&inner) {
                    if n.account.is_none() {
                        n.account = owned(account);
                    }
                    return Ok(n);
                }
            }
        }
    }
    Ok(Normalized {
        source: "cloudwatch-subscription".into(),
        time_ms: Some(timestamp),
        account: owned(account),
        region: owned(region),
        source_event_id: owned(nonempty(event, "id")),
        parsed: Some(JsonText::from_value(&json!({
            "owner": env.get("owner"),
            "logGroup": env.get("logGroup"),
            "logStream": env.get("logStream"),
            "subscriptionFilters": env.get("subscriptionFilters"),
            "id": event.get("id"),
            "timestamp": timestamp,
            "extractedFields": extracted,
            "message": message,
        }))),
        ..Normalized::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const ENV: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":5,"message":"hello"},{"id":"2","message":"no time"}]}"#;

    #[test]
    fn events_and_bad_event() {
        let out = parse(ENV.as_bytes());
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].raw, "hello");
        assert_eq!(out.rejections.len(), 1);
    }

    #[test]
    fn gzip_payload() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(ENV.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(parse(&gz).records.len(), 1);
        assert_eq!(parse(&gz[..gz.len() / 2]).rejections.len(), 1);
    }
}
