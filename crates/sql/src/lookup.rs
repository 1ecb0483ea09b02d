//! Lookups in the spirit of CloudTrail's `LookupEvents`: one attribute equal to one value,
//! over a time range of any age, newest first.
//!
//! A lookup is an ordinary query on `events`, shaped so that it is answered by pruning
//! rather than by a scan: the time range becomes a predicate on the hive partition columns
//! (whole hours of files are skipped without opening them) and on `timestamp` (row-group
//! statistics); equality on `action`, `actor_user_name`, `actor_access_key_id`, `service` and
//! `source_event_id` is checked against the Parquet bloom filters the segment writer keeps
//! for those columns, so row groups that cannot hold the value are never decoded.

use std::str::FromStr;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::strpos;
use datafusion::prelude::{col, lit, Expr};

use crate::engine::SqlEngine;
use crate::error::SqlError;

/// Most events one lookup returns.
pub const LOOKUP_RESULTS_MAX: usize = 10_000;

/// The attributes `LookupEvents` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupAttribute {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupAttribute {
    pub const ALL: [LookupAttribute; 8] = [
        LookupAttribute::EventId,
        LookupAttribute::EventName,
        LookupAttribute::ReadOnly,
        LookupAttribute::Username,
        LookupAttribute::ResourceType,
        LookupAttribute::ResourceName,
        LookupAttribute::EventSource,
        LookupAttribute::AccessKeyId,
    ];

    /// The name `LookupEvents` uses (`AttributeKey`).
    pub fn as_str(self) -> &'static str {
        match self {
            LookupAttribute::EventId => "EventId",
            LookupAttribute::EventName => "EventName",
            LookupAttribute::ReadOnly => "ReadOnly",
            LookupAttribute::Username => "Username",
            LookupAttribute::ResourceType => "ResourceType",
            LookupAttribute::ResourceName => "ResourceName",
            LookupAttribute::EventSource => "EventSource",
            LookupAttribute::AccessKeyId => "AccessKeyId",
        }
    }

    /// The predicate on `events` that selects events with this attribute equal to `value`.
    pub fn predicate(self, value: &str) -> Result<Expr, SqlError> {
        let eq = |column: &str| col(column).eq(lit(value));
        Ok(match self {
            LookupAttribute::EventId => eq("source_event_id"),
            LookupAttribute::EventName => eq("action"),
            LookupAttribute::Username => eq("actor_user_name"),
            LookupAttribute::EventSource => eq("service"),
            LookupAttribute::AccessKeyId => eq("actor_access_key_id"),
            LookupAttribute::ReadOnly => {
                let flag = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(SqlError::InvalidLookup(format!(
                            "ReadOnly takes true or false, not {value:?}"
                        )))
                    }
                };
                col("read_only").eq(lit(flag))
            }
            // `resources` is the JSON text of the resource list, written by serde with these
            // exact keys and no spaces; a JSON-escaped needle matches the stored text.
            LookupAttribute::ResourceType => contains_json_field("kind", value),
            LookupAttribute::ResourceName => contains_json_field("id", value),
        })
    }
}

fn contains_json_field(key: &str, value: &str) -> Expr {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    let needle = format!("\"{key}\":{quoted}");
    strpos(col("resources"), lit(needle)).gt(lit(0i32))
}

impl FromStr for LookupAttribute {
    type Err = SqlError;

    fn from_str(s: &str) -> Result<Self, SqlError> {
        LookupAttribute::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = LookupAttribute::ALL.iter().map(|a| a.as_str()).collect();
                SqlError::InvalidLookup(format!(
                    "unknown attribute {s:?} (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// One event a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupEvent {
    pub seq: u64,
    pub log_group: String,
    pub log_stream: String,
    pub timestamp_ms: i64,
    pub source: Option<String>,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    pub read_only: Option<bool>,
    /// The resource list as JSON text.
    pub resources: Option<String>,
    /// The raw record, byte-exact (for CloudTrail, the `CloudTrailEvent`).
    pub message: String,
}

/// Columns a lookup reads, in [`LookupEvent`] order.
const LOOKUP_COLUMNS: [&str; 13] = [
    "seq",
    "log_group",
    "log_stream",
    "timestamp",
    "source",
    "source_event_id",
    "action",
    "service",
    "actor_user_name",
    "actor_access_key_id",
    "read_only",
    "resources",
    "message",
];

fn ts_lit(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some("UTC".into()),
    ))
}

/// `year*1000000 + month*10000 + day*100 + hour` of `ms`, the key the partition predicate
/// compares.
fn hour_key(ms: i64) -> i64 {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    i64::from(t.year()) * 1_000_000
        + i64::from(t.month()) * 10_000
        + i64::from(t.day()) * 100
        + i64::from(t.hour())
}

fn hour_key_expr() -> Expr {
    let c = |n: &str| datafusion::prelude::cast(col(n), arrow::datatypes::DataType::Int64);
    c("year") * lit(1_000_000i64) + c("month") * lit(10_000i64) + c("day") * lit(100i64) + c("hour")
}

impl SqlEngine {
    /// Events whose `attribute` equals `value` with a timestamp in `[start_ms, end_ms)`,
    /// newest first, at most `max_results` (capped at [`LOOKUP_RESULTS_MAX`]).
    pub async fn lookup(
        &self,
        attribute: LookupAttribute,
        value: &str,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        max_results: usize,
    ) -> Result<Vec<LookupEvent>, SqlError> {
        let mut filter = attribute.predicate(value)?;
        if let Some(start) = start_ms {
            filter = filter
                .and(hour_key_expr().gt_eq(lit(hour_key(start))))
                .and(col("timestamp").gt_eq(ts_lit(start)));
        }
        if let Some(end) = end_ms {
            // The hour holding `end - 1` is the last one that can hold a match.
            filter = filter
                .and(hour_key_expr().lt_eq(lit(hour_key(end.saturating_sub(1)))))
                .and(col("timestamp").lt(ts_lit(end)));
        }
        let limit = max_results.clamp(1, LOOKUP_RESULTS_MAX);
        let df = self
            .context()
            .table("events")
            .await
            .map_err(|e| self.error(e))?
            .filter(filter)
            .and_then(|df| {
                df.sort(vec![
                    col("timestamp").sort(false, false),
                    col("seq").sort(false, false),
                ])
            })
            .and_then(|df| df.limit(0, Some(limit)))
            .and_then(|df| df.select_columns(&LOOKUP_COLUMNS))
            .map_err(|e| self.error(e))?;
        let batches = self.collect(df).await?;
        let mut out = Vec::new();
        for b in &batches {
            rows_of(b, &mut out)?;
        }
        Ok(out)
    }
}

fn rows_of(b: &RecordBatch, out: &mut Vec<LookupEvent>) -> Result<(), SqlError> {
    let bad = |column: &'static str| trailvault_segment::SegmentError::Schema { column };
    let text =
        |i: usize, name: &'static str| b.column(i).as_string_opt::<i32>().ok_or_else(|| bad(name));
    let seq = b
        .column(0)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| bad("seq"))?;
    let group = text(1, "log_group")?;
    let stream = text(2, "log_stream")?;
    let ts = b
        .column(3)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| bad("timestamp"))?;
    let opt = |i: usize, name: &'static str, row: usize| -> Result<Option<String>, SqlError> {
        let a = text(i, name)?;
        Ok((!a.is_null(row)).then(|| a.value(row).to_string()))
    };
    let read_only = b
        .column(10)
        .as_boolean_opt()
        .ok_or_else(|| bad("read_only"))?;
    let message = text(12, "message")?;
    for row in 0..b.num_rows() {
        out.push(LookupEvent {
            seq: seq.value(row),
            log_group: group.value(row).to_string(),
            log_stream: stream.value(row).to_string(),
            timestamp_ms: ts.value(row),
            source: opt(4, "source", row)?,
            event_id: opt(5, "source_event_id", row)?,
            event_name: opt(6, "action", row)?,
            event_source: opt(7, "service", row)?,
            username: opt(8, "actor_user_name", row)?,
            access_key_id: opt(9, "actor_access_key_id", row)?,
            read_only: (!read_only.is_null(row)).then(|| read_only.value(row)),
            resources: opt(11, "resources", row)?,
            message: message.value(row).to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_case_insensitively() {
        for a in LookupAttribute::ALL {
            assert_eq!(
                a.as_str()
                    .to_lowercase()
                    .parse::<LookupAttribute>()
                    .unwrap(),
                a
            );
        }
        assert!("Color".parse::<LookupAttribute>().is_err());
        assert!(LookupAttribute::ReadOnly.predicate("maybe").is_err());
    }

    #[test]
    fn hour_keys_order_like_time() {
        assert_eq!(hour_key(1_763_780_400_000), 2_025_112_203);
        assert!(hour_key(1_763_780_400_000 - 1) < hour_key(1_763_780_400_000));
    }
}
