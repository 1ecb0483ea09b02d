//! AWS Config: configuration history and snapshot files, and the notifications Config sends.
//!
//! Input is one or more JSON values (a delivered file holds one; notifications saved one per
//! line or back to back are also accepted):
//! - `{"fileVersion": …, "configurationItems": [ci, …]}` (history and snapshot files): one record
//!   per configuration item, raw = the item's exact byte span in the file;
//! - a bare notification message `{"messageType": …}` (what SNS carries in `Message`): one record,
//!   raw = the whole message. `ConfigurationItemChangeNotification` is normalized from its
//!   `configurationItem`, `OversizedConfigurationItemChangeNotification` from its
//!   `configurationItemSummary`; other message types (delivery started/completed, compliance
//!   changes, …) are kept with what they state at the top level;
//! - a bare configuration item (an object with `configurationItemCaptureTime`): one record.
//!
//! The empty `ConfigWritabilityCheckFile` holds no value and yields nothing.
//!
//! Invariants: never panics; every configuration item and every top-level value other than a
//! history or snapshot file becomes exactly one record or one rejection; malformed JSON is
//! rejected up to the next line that opens a JSON value.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use trailvault_model::{Activity, JsonText, Normalized, Resource};

use crate::json::{for_each_value, offset_in, reject_value, LineCounter};
use crate::text::parse_iso8601_ms;
use crate::ParseOutput;

/// The `service` every Config record is normalized with.
pub const SERVICE: &str = "config.amazonaws.com";

/// Parses AWS Config files and notifications. Source id `config`.
pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    for_each_value(input, &mut out, top_level);
    out
}

/// Only the members that decide what a top-level value is; the rest is read per record.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow, rename = "configurationItems")]
    configuration_items: Option<Vec<&'a RawValue>>,
    #[serde(rename = "messageType")]
    message_type: Option<Value>,
    #[serde(rename = "configurationItemCaptureTime")]
    capture_time: Option<Value>,
}

fn top_level(raw: &RawValue, offset: u64, line: u64, out: &mut ParseOutput) {
    if !raw.get().starts_with('{') {
        return reject_value(
            out,
            raw,
            offset,
            line,
            "expected a config history file, snapshot file, notification or configuration item object, found another json value",
        );
    }
    let top: Top<'_> = match serde_json::from_str(raw.get()) {
        Ok(t) => t,
        Err(e) => {
            return reject_value(
                out,
                raw,
                offset,
                line,
                format!("expected `configurationItems` to be an array: {e}"),
            )
        }
    };
    if let Some(items) = top.configuration_items {
        let mut lines = LineCounter::new(raw.get().as_bytes());
        for item in items {
            let rel = offset_in(raw.get().as_bytes(), item.get());
            let item_line = line + lines.line_at(rel) - 1;
            one_record(item, offset + rel as u64, item_line, out, item_record);
        }
    } else if top.message_type.is_some() {
        one_record(raw, offset, line, out, notification_record);
    } else if top.capture_time.is_some() {
        one_record(raw, offset, line, out, item_record);
    } else {
        reject_value(
            out,
            raw,
            offset,
            line,
            "expected `configurationItems`, `messageType` or `configurationItemCaptureTime`, found none",
        );
    }
}

fn one_record(
    raw: &RawValue,
    offset: u64,
    line: u64,
    out: &mut ParseOutput,
    normalize: fn(&Map<String, Value>) -> Result<Normalized, String>,
) {
    let result = match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(obj)) => normalize(&obj).map(|mut n| {
            n.parsed = Some(JsonText::from_value(&Value::Object(obj)));
            n
        }),
        Ok(_) => Err("expected a json object, found another json value".into()),
        Err(e) => Err(format!("malformed json: {e}")),
    };
    out.keep(raw.get(), offset, line, result);
}

fn str_member<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn time_member(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match str_member(obj, key) {
        None => Ok(None),
        Some(t) => parse_iso8601_ms(t)
            .map(Some)
            .ok_or_else(|| format!("expected an iso 8601 {key}, found `{t}`")),
    }
}

/// What a configuration item status says happened to the resource.
fn status_activity(status: &str) -> Activity {
    match status {
        "ResourceDiscovered" => Activity::Create,
        "OK" => Activity::Update,
        "ResourceDeleted" | "ResourceDeletedNotRecorded" => Activity::Delete,
        _ => Activity::Other,
    }
}

/// Normalizes the members a configuration item (or an item summary, or a compliance
/// notification) shares: account, region, resource and capture time.
fn ci_fields(ci: &Map<String, Value>, n: &mut Normalized) -> Result<(), String> {
    n.time_ms = time_member(ci, "configurationItemCaptureTime")?;
    n.account = str_member(ci, "awsAccountId").map(str::to_owned);
    n.region = str_member(ci, "awsRegion").map(str::to_owned);
    let id = str_member(ci, "resourceId").or_else(|| str_member(ci, "ARN"));
    let kind = str_member(ci, "resourceType");
    if id.is_some() || kind.is_some() {
        n.resources.push(Resource {
            id: id.map(str::to_owned),
            kind: kind.map(str::to_owned),
            owner_account: n.account.clone(),
        });
    }
    n.source_event_id = match ci.get("configurationStateId") {
        Some(Value::Number(v)) => Some(v.to_string()),
        Some(Value::String(v)) if !v.is_empty() => Some(v.clone()),
        _ => None,
    };
    Ok(())
}

fn item_record(ci: &Map<String, Value>) -> Result<Normalized, String> {
    let mut n = Normalized {
        source: "config".into(),
        service: Some(SERVICE.into()),
        ..Normalized::default()
    };
    ci_fields(ci, &mut n)?;
    if n.time_ms.is_none() {
        return Err(
            "expected configurationItemCaptureTime in the configuration item, found none".into(),
        );
    }
    let status = str_member(ci, "configurationItemStatus");
    n.action = status.map(str::to_owned);
    n.activity = status.map(status_activity);
    Ok(n)
}

fn notification_record(msg: &Map<String, Value>) -> Result<Normalized, String> {
    let message_type =
        str_member(msg, "messageType").ok_or("expected messageType to be a non-empty string")?;
    let mut n = Normalized {
        source: "config".into(),
        service: Some(SERVICE.into()),
        action: Some(message_type.to_owned()),
        ..Normalized::default()
    };
    let item = ["configurationItem", "configurationItemSummary"]
        .iter()
        .find_map(|k| msg.get(*k).and_then(Value::as_object));
    match item {
        Some(ci) => {
            ci_fields(ci, &mut n)?;
            let change = msg
                .get("configurationItemDiff")
                .and_then(|d| d.get("changeType"))
                .or_else(|| ci.get("changeType"))
                .and_then(Value::as_str);
            n.activity = match change {
                Some("CREATE") => Some(Activity::Create),
                Some("UPDATE") => Some(Activity::Update),
                Some("DELETE") => Some(Activity::Delete),
                _ => str_member(ci, "configurationItemStatus").map(status_activity),
            };
        }
        None => ci_fields(msg, &mut n)?,
    }
    if n.time_ms.is_none() {
        n.time_ms = time_member(msg, "notificationCreationTime")?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_item_and_bad_values() {
        let input = br#"{"configurationItemCaptureTime":"2018-05-21T01:45:12.345Z","configurationItemStatus":"ResourceDeleted","resourceId":"r-1","awsAccountId":"123456789012"}
[1,2]
{"configurationItems":[{"configurationItemCaptureTime":"nope"}, 7]}
{"configurationItems": 5}
"#;
        let out = parse(input);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].normalized.activity, Some(Activity::Delete));
        assert_eq!(out.rejections.len(), 4, "{:#?}", out.rejections);
        assert!(out.rejections[1].reason.contains("nope"));
    }
}
