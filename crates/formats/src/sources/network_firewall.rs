//! AWS Network Firewall logs (alert, flow, tls, http): one JSON object per line as delivered
//! (pretty-printed objects are accepted too), Suricata's EVE record under `event`. A record
//! without `firewall_name` or an `event` object is rejected.

use serde_json::Value;
use trailvault_model::{Normalized, Outcome, Resource};

use crate::json::{for_each_value, i64_of, nonempty, owned, reject_value, str_of};
use crate::sources::json_lines::time_of;
use crate::text::parse_iso8601_ms;
use crate::{activity_from_http_method, ParseOutput};

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    for_each_value(input, &mut out, |raw, offset, line, out| {
        let value = match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) => v,
            Err(e) => return reject_value(out, raw, offset, line, format!("malformed json: {e}")),
        };
        out.keep(raw.get(), offset, line, normalize(&value));
    });
    out
}

fn port_of(v: &Value, key: &str) -> Option<u16> {
    i64_of(v, key).and_then(|p| u16::try_from(p).ok())
}

/// `event_timestamp` is epoch seconds as a string in delivered logs, ISO-8601 in some samples.
fn event_timestamp_ms(v: &Value) -> Option<i64> {
    match v.get("event_timestamp")? {
        Value::String(s) => parse_iso8601_ms(s).or_else(|| s.parse::<i64>().ok().map(|x| x * 1000)),
        other => time_of(other),
    }
}

/// `parsed` is left empty: the raw record is itself the JSON object (docs/formats.md).
pub fn normalize(value: &Value) -> Result<Normalized, String> {
    let firewall =
        nonempty(value, "firewall_name").ok_or("network firewall record has no firewall_name")?;
    let event = value
        .get("event")
        .filter(|e| e.is_object())
        .ok_or("network firewall record has no event object")?;
    let time_ms = str_of(event, "timestamp")
        .and_then(parse_iso8601_ms)
        .or_else(|| event_timestamp_ms(value))
        .ok_or("network firewall record has no valid timestamp")?;
    let null = Value::Null;
    let alert = event.get("alert").unwrap_or(&null);
    let http = event.get("http").unwrap_or(&null);
    let netflow = event.get("netflow").unwrap_or(&null);
    let revocation = event.get("revocation_check").unwrap_or(&null);
    let alert_action = str_of(alert, "action");
    let outcome = match (alert_action, str_of(revocation, "action")) {
        (Some("blocked"), _) | (_, Some("DROP" | "REJECT")) => Outcome::Failure,
        (Some("allowed"), _) | (_, Some("PASS")) => Outcome::Success,
        _ => Outcome::Unknown,
    };
    let az = nonempty(value, "availability_zone");
    // An AZ name is its region plus one letter (us-east-1a); AZ ids (use1-az1) are not.
    let region = az
        .filter(|a| {
            a.ends_with(|c: char| c.is_ascii_lowercase()) && a.contains('-') && !a.contains("-az")
        })
        .map(|a| &a[..a.len() - 1]);
    let duration_ms = str_of(netflow, "start")
        .and_then(parse_iso8601_ms)
        .zip(str_of(netflow, "end").and_then(parse_iso8601_ms))
        .map(|(s, e)| (e - s).max(0) as f64);
    let method = nonempty(http, "http_method");
    Ok(Normalized {
        source: "network-firewall".into(),
        time_ms: Some(time_ms),
        region: owned(region),
        service: Some("network-firewall.amazonaws.com".into()),
        action: owned(nonempty(event, "event_type")),
        activity: method.map(activity_from_http_method),
        src_ip: owned(nonempty(event, "src_ip")),
        src_port: port_of(event, "src_port"),
        dst_ip: owned(nonempty(event, "dest_ip")),
        dst_port: port_of(event, "dest_port"),
        user_agent: owned(nonempty(http, "http_user_agent")),
        resources: vec![Resource {
            id: Some(firewall.to_owned()),
            kind: Some("AWS::NetworkFirewall::Firewall".into()),
            owner_account: None,
        }],
        outcome: Some(outcome),
        error_code: alert
            .get("signature_id")
            .filter(|_| alert_action == Some("blocked"))
            .map(|s| s.to_string()),
        error_message: owned(nonempty(alert, "signature"))
            .filter(|_| alert_action == Some("blocked"))
            .or_else(|| {
                event
                    .get("tls_error")
                    .and_then(|t| owned(nonempty(t, "error_message")))
            }),
        source_event_id: event
            .get("flow_id")
            .filter(|f| f.is_number())
            .map(|f| f.to_string()),
        bytes: i64_of(netflow, "bytes"),
        duration_ms,
        ..Normalized::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_string_timestamp_and_block() {
        let out = parse(br#"{"firewall_name":"fw","availability_zone":"us-east-1a","event_timestamp":"1602627001","event":{"event_type":"alert","src_ip":"192.0.2.1","src_port":1,"dest_ip":"192.0.2.2","dest_port":443,"alert":{"action":"blocked","signature_id":7,"signature":"bad"}}}"#);
        assert_eq!(out.records.len(), 1, "{:?}", out.rejections);
        let n = &out.records[0].normalized;
        assert_eq!(n.time_ms, Some(1_602_627_001_000));
        assert_eq!(n.region.as_deref(), Some("us-east-1"));
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(n.error_code.as_deref(), Some("7"));
    }
}
