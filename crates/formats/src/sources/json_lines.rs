//! Generic JSON lines: one JSON value per record (newline-delimited, pretty-printed or
//! concatenated). The raw is the value's exact span and is itself the parsed record, so
//! `parsed` stays empty (see [`crate::ParsedRecord::parsed_json`]). The time is taken
//! from the first of `timestamp`, `time`, `@timestamp`, `eventTime` that holds an ISO-8601
//! string or epoch milliseconds.

use serde_json::Value;
use trailvault_model::Normalized;

use crate::json::{for_each_value, reject_value};
use crate::text::parse_iso8601_ms;
use crate::{ParseOutput, ParsedRecord};

const TIME_KEYS: [&str; 4] = ["timestamp", "time", "@timestamp", "eventTime"];

/// Epoch milliseconds from a JSON time member: ISO-8601 strings, or numbers taken as
/// milliseconds when large enough and as seconds otherwise.
pub(crate) fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_iso8601_ms(s),
        Value::Number(n) => {
            let x = n.as_f64()?;
            if !x.is_finite() {
                return None;
            }
            // Seconds until the year 5138 are below 1e11; milliseconds since 1973 are above.
            Some(if x.abs() < 1e11 {
                (x * 1000.0) as i64
            } else {
                x as i64
            })
        }
        _ => None,
    }
}

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    for_each_value(
        input,
        &mut out,
        |raw, offset, line, out| match serde_json::from_str::<Value>(raw.get()) {
            Ok(value) => {
                let time_ms = TIME_KEYS
                    .iter()
                    .find_map(|k| value.get(k).and_then(time_of));
                out.records.push(ParsedRecord {
                    raw: raw.get().to_owned(),
                    offset,
                    line,
                    normalized: Box::new(Normalized {
                        source: "json-lines".into(),
                        time_ms,
                        ..Normalized::default()
                    }),
                });
            }
            Err(e) => reject_value(out, raw, offset, line, format!("malformed json: {e}")),
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times() {
        let out = parse(
            b"{\"time\":\"2020-01-01T00:00:00Z\"}\n{\"timestamp\":1577836800}\nnot json\n[1]",
        );
        assert_eq!(out.records.len(), 3);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.records[0].normalized.time_ms, Some(1_577_836_800_000));
        assert_eq!(out.records[1].normalized.time_ms, Some(1_577_836_800_000));
        assert_eq!(out.records[2].raw, "[1]");
    }
}
