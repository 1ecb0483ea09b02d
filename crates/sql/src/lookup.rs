//! Lookups in the spirit of CloudTrail's `LookupEvents`: one attribute equal to one value,
//! over a time range of any age, newest first.
//!
//! A lookup is answered from indexes rather than by a scan: the catalog's time range of each
//! segment and the lookup filters written at seal time (one bloom filter per segment and
//! attribute, `trailvault_segment::lookup_index`) pick the segments that can hold a match;
//! only those are opened, newest first, and reading stops once the newest `max_results`
//! are known (`segment_scan`). The unsealed tail is filtered in memory. The predicate is
//! one DataFusion expression, so a lookup matches exactly what the same SQL would.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::functions::expr_fn::strpos;
use datafusion::prelude::{col, lit, Expr};
use trailvault_segment::lookup_index::LookupKey;

use crate::engine::SqlEngine;
use crate::error::SqlError;
use crate::segment_scan::{self, SegmentPredicate, SegmentRef};

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

    /// The lookup filters' name for this attribute.
    pub fn index_key(self) -> LookupKey {
        match self {
            LookupAttribute::EventId => LookupKey::EventId,
            LookupAttribute::EventName => LookupKey::EventName,
            LookupAttribute::ReadOnly => LookupKey::ReadOnly,
            LookupAttribute::Username => LookupKey::Username,
            LookupAttribute::ResourceType => LookupKey::ResourceType,
            LookupAttribute::ResourceName => LookupKey::ResourceName,
            LookupAttribute::EventSource => LookupKey::EventSource,
            LookupAttribute::AccessKeyId => LookupKey::AccessKeyId,
        }
    }

    /// `value` as the lookup filters hold it (`ReadOnly` as `true` / `false`).
    fn indexed_value(self, value: &str) -> String {
        match self {
            LookupAttribute::ReadOnly => value.to_ascii_lowercase(),
            _ => value.to_string(),
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

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupStats {
    /// Sealed segments in the engine's snapshot.
    pub segments: usize,
    /// Segments whose time range and lookup filter admit a match.
    pub candidates: usize,
    /// Segments opened (newest first, until the answer was known).
    pub read: usize,
}

/// Columns a lookup reads, in [`LookupEvent`] order.
pub(crate) const LOOKUP_COLUMNS: [&str; 13] = [
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
        self.lookup_with_stats(attribute, value, start_ms, end_ms, max_results)
            .await
            .map(|(events, _)| events)
    }

    /// [`SqlEngine::lookup`], also saying how many segments it considered and read.
    pub async fn lookup_with_stats(
        &self,
        attribute: LookupAttribute,
        value: &str,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        max_results: usize,
    ) -> Result<(Vec<LookupEvent>, LookupStats), SqlError> {
        let mut filter = attribute.predicate(value)?;
        if let Some(start) = start_ms {
            filter = filter.and(col("timestamp").gt_eq(ts_lit(start)));
        }
        if let Some(end) = end_ms {
            filter = filter.and(col("timestamp").lt(ts_lit(end)));
        }
        let limit = max_results.clamp(1, LOOKUP_RESULTS_MAX);

        // Sealed: only the segments whose time range and filter admit a match are opened.
        let filters = self.lookup_filters().of(attribute.index_key())?;
        let indexed = attribute.indexed_value(value);
        let mut candidates: Vec<SegmentRef> = self
            .segments()
            .iter()
            .filter(|s| start_ms.is_none_or(|t| s.newest_ms >= t))
            .filter(|s| end_ms.is_none_or(|t| s.oldest_ms < t))
            .filter(|s| filters.get(&s.key).is_none_or(|f| f.may_contain(&indexed)))
            .cloned()
            .collect();
        candidates.sort_by_key(|s| std::cmp::Reverse(s.newest_ms));
        let mut stats = LookupStats {
            segments: self.segments().len(),
            candidates: candidates.len(),
            read: 0,
        };
        let predicate = Arc::new(self.segment_predicate(filter.clone())?);
        let (mut found, read) = segment_scan::newest_matches(
            self.data_dir(),
            self.lookup_footers(),
            candidates,
            predicate,
            limit,
        )
        .await?;
        stats.read = read;

        if self.tail_events() > 0 {
            let df = self
                .tail_frame()?
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
            for b in &self.collect(df).await? {
                rows_of(b, &mut found)?;
            }
            segment_scan::sort_newest_first(&mut found);
            found.truncate(limit);
        }
        Ok((found, stats))
    }

    /// `filter` compiled against the segment columns it reads, for a Parquet row filter.
    fn segment_predicate(&self, filter: Expr) -> Result<SegmentPredicate, SqlError> {
        let segment = trailvault_segment::schema();
        let mut columns: Vec<usize> = filter
            .column_refs()
            .into_iter()
            .map(|c| segment.index_of(&c.name))
            .collect::<Result<_, _>>()?;
        columns.sort_unstable();
        columns.dedup();
        let schema = DFSchema::try_from(segment.project(&columns)?)?;
        let expr = self
            .context()
            .create_physical_expr(filter, &schema)
            .map_err(|e| self.error(e))?;
        Ok(SegmentPredicate { expr, columns })
    }
}

pub(crate) fn rows_of(b: &RecordBatch, out: &mut Vec<LookupEvent>) -> Result<(), SqlError> {
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
}
