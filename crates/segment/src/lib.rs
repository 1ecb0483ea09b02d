//! The sealed segment: an immutable Parquet file (zstd) holding the events of one log group
//! for one hour of event time.
//!
//! On-disk format (version [`SEGMENT_FORMAT_VERSION`], recorded in the Parquet key-value
//! metadata under [`FORMAT_VERSION_KEY`]):
//! - Parquet data pages v2, PLAIN or dictionary encoded, zstd level 1;
//! - rows sorted by (stream, timestamp, seq), so one stream is a contiguous run;
//! - core columns `seq`, `log_group`, `log_stream`, `timestamp`, `ingestion_time` (UTC ms
//!   timestamps) and `message` (the raw record, byte-exact);
//! - normalized columns named as in [`NORMALIZED_COLUMNS`], all nullable, `resources` and
//!   `parsed` as JSON text.
//!
//! Parquet's own page checksums and footer guard the bytes; the integrity chain hashes the
//! whole file. Decoding asserts the version and the schema, and fails loudly on anything else.

use std::borrow::Borrow;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, PageIndexPolicy};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use trailvault_model::{Activity, JsonText, Normalized, Outcome, Resource, StoredEvent};

pub mod lookup_index;

pub const SEGMENT_FORMAT_VERSION: &str = "1";
pub const FORMAT_VERSION_KEY: &str = "trailvault.segment.version";
/// Rows per Parquet row group: large enough for good compression, small enough that a
/// lookup reads little.
pub const ROW_GROUP_ROWS_MAX: usize = 65_536;

/// The normalized columns, in schema order, after the core columns.
pub const NORMALIZED_COLUMNS: [&str; 29] = [
    "source",
    "event_time",
    "account",
    "region",
    "service",
    "action",
    "activity",
    "actor_principal_id",
    "actor_arn",
    "actor_type",
    "actor_user_name",
    "actor_access_key_id",
    "actor_mfa",
    "actor_invoked_by",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "user_agent",
    "resources",
    "outcome",
    "error_code",
    "error_message",
    "request_id",
    "source_event_id",
    "read_only",
    "bytes",
    "duration_ms",
    "parsed",
];

const CORE_COLUMNS: usize = 6;

/// Columns with a Parquet bloom filter: the equality lookups of `LookupEvents`.
pub const BLOOM_FILTER_COLUMNS: [&str; 5] = [
    "action",
    "actor_user_name",
    "actor_access_key_id",
    "source_event_id",
    "service",
];
/// Columns whose values are (nearly) all distinct: written without a dictionary.
const UNIQUE_VALUE_COLUMNS: [&str; 5] =
    ["seq", "message", "parsed", "request_id", "source_event_id"];
/// Long free text no query prunes by: written without min/max statistics.
const UNPRUNED_TEXT_COLUMNS: [&str; 3] = ["message", "parsed", "error_message"];
/// False-positive rate of the bloom filters.
const BLOOM_FILTER_FPP: f64 = 0.01;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segment is not readable parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("segment arrow data is inconsistent: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(
        "segment format version {found:?} is not supported (expected {SEGMENT_FORMAT_VERSION})"
    )]
    Version { found: Option<String> },
    #[error("segment column {column} is missing or has the wrong type")]
    Schema { column: &'static str },
    #[error("segment row {row}: {what}")]
    Corrupt { row: usize, what: String },
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The Arrow schema of a segment.
pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("log_group", DataType::Utf8, false),
        Field::new("log_stream", DataType::Utf8, false),
        Field::new("timestamp", ts_type(), false),
        Field::new("ingestion_time", ts_type(), false),
        Field::new("message", DataType::Utf8, false),
    ];
    for name in NORMALIZED_COLUMNS {
        let ty = match name {
            "event_time" => ts_type(),
            "actor_mfa" | "read_only" => DataType::Boolean,
            "src_port" | "dst_port" => DataType::Int32,
            "bytes" => DataType::Int64,
            "duration_ms" => DataType::Float64,
            _ => DataType::Utf8,
        };
        fields.push(Field::new(name, ty, true));
    }
    Arc::new(Schema::new(fields))
}

/// Which columns a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Core columns only: enough to serve GetLogEvents / FilterLogEvents and to hash leaves.
    Core,
    /// Every column, normalized fields included.
    All,
}

/// Sort events into segment order: (stream, timestamp, seq).
/// Generic over owned events and references, so a seal can sort and encode borrowed events.
pub fn sort_for_segment<E: Borrow<StoredEvent>>(events: &mut [E]) {
    events.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        (a.stream.as_str(), a.timestamp_ms, a.seq).cmp(&(b.stream.as_str(), b.timestamp_ms, b.seq))
    });
}

/// Encode events (already in segment order, see [`sort_for_segment`]) as Parquet bytes.
pub fn encode<E: Borrow<StoredEvent>>(events: &[E]) -> Result<Vec<u8>, SegmentError> {
    encode_with_metadata(events, Vec::new())
}

/// [`encode`], with extra key-value metadata in the footer (derived facts about the events,
/// such as their Merkle subtree roots; readers that do not know a key ignore it, so the
/// format version stays the same).
pub fn encode_with_metadata<E: Borrow<StoredEvent>>(
    events: &[E],
    extra: Vec<(String, String)>,
) -> Result<Vec<u8>, SegmentError> {
    let mut writer = SegmentWriter::new(events.iter().map(|e| e.borrow().message.len()).sum())?;
    writer.write(events)?;
    writer.finish(extra)
}

/// Rows per Arrow batch handed to the Parquet writer: a few MB of records, so a batch's copy
/// of them is still in cache when the writer encodes it (and when a caller hashes the same
/// events right after, see [`SegmentWriter::write`]).
pub const BATCH_ROWS: usize = 4_096;

/// Encodes a segment piece by piece: [`SegmentWriter::write`] the events in segment order
/// (see [`sort_for_segment`]), then [`SegmentWriter::finish`] with the footer's extra
/// key-value metadata, which may be derived from the events meanwhile.
pub struct SegmentWriter {
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
}

impl SegmentWriter {
    /// `message_bytes`: the events' total message length, to size the output.
    pub fn new(message_bytes: usize) -> Result<Self, SegmentError> {
        let schema = schema();
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(message_bytes / 3),
            schema.clone(),
            Some(writer_properties()?),
        )?;
        Ok(SegmentWriter { writer, schema })
    }

    /// Encodes `events`, which follow those written before in segment order. A call of at
    /// most [`BATCH_ROWS`] events leaves their messages in cache for the caller.
    pub fn write<E: Borrow<StoredEvent>>(&mut self, events: &[E]) -> Result<(), SegmentError> {
        debug_assert!(events.windows(2).all(|w| {
            let (a, b) = (w[0].borrow(), w[1].borrow());
            (a.stream.as_str(), a.timestamp_ms, a.seq) <= (b.stream.as_str(), b.timestamp_ms, b.seq)
        }));
        for chunk in events.chunks(BATCH_ROWS) {
            self.writer.write(&to_batch(&self.schema, chunk)?)?;
        }
        Ok(())
    }

    /// Writes the footer, with `extra` after the format version, and returns the bytes.
    pub fn finish(mut self, extra: Vec<(String, String)>) -> Result<Vec<u8>, SegmentError> {
        for (k, v) in extra {
            self.writer.append_key_value_metadata(KeyValue::new(k, v));
        }
        Ok(self.writer.into_inner()?)
    }
}

fn writer_properties() -> Result<WriterProperties, SegmentError> {
    let props = WriterProperties::builder()
        // Level 1: on CloudTrail-like data as small as level 3 (3.5% smaller on the import
        // benchmark's tree, 0.1% larger on the shared fixtures) for ~11% less import CPU.
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS_MAX))
        // Data pages v2 compress the values straight from the encoder's buffer; v1 first
        // copies levels and values into one buffer (a second copy of every raw record):
        // 3-4% less import time. PLAIN stays the fallback after a dictionary, as in v1, so
        // every Parquet reader (Athena, Trino, Spark, DuckDB) decodes the values as before.
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_encoding(Encoding::PLAIN)
        .set_created_by("trailvault".to_string())
        .set_key_value_metadata(Some(vec![KeyValue::new(
            FORMAT_VERSION_KEY.to_string(),
            SEGMENT_FORMAT_VERSION.to_string(),
        )]));
    // Bloom filters let a lookup by one of these values skip every row group that cannot
    // hold it; readers that do not use them are unaffected (same format version). Each is
    // sized for a row group of distinct values and folded down to fit once written, so low
    // cardinality columns such as `service` cost little.
    let props = BLOOM_FILTER_COLUMNS.iter().fold(props, |p, c| {
        let c = ColumnPath::from(*c);
        p.set_column_bloom_filter_enabled(c.clone(), true)
            .set_column_bloom_filter_fpp(c.clone(), BLOOM_FILTER_FPP)
            .set_column_bloom_filter_max_ndv(c, ROW_GROUP_ROWS_MAX as u64)
    });
    // Columns of (nearly) unique values: a dictionary never pays off there, and min/max
    // statistics over whole raw records serve no pruning. Skipping both saves encode time.
    let props = UNIQUE_VALUE_COLUMNS.iter().fold(props, |p, c| {
        p.set_column_dictionary_enabled(ColumnPath::from(*c), false)
    });
    let props = UNPRUNED_TEXT_COLUMNS.iter().fold(props, |p, c| {
        p.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::None)
    });
    Ok(props.build())
}

fn to_batch<E: Borrow<StoredEvent>>(
    schema: &SchemaRef,
    events: &[E],
) -> Result<RecordBatch, SegmentError> {
    let n = events.len();
    let mut seq = UInt64Builder::with_capacity(n);
    // Builders sized up front: growing one copies its values again.
    let mut group =
        StringBuilder::with_capacity(n, events.iter().map(|e| e.borrow().group.len()).sum());
    let mut stream =
        StringBuilder::with_capacity(n, events.iter().map(|e| e.borrow().stream.len()).sum());
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut ingest = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut message =
        StringBuilder::with_capacity(n, events.iter().map(|e| e.borrow().message.len()).sum());
    for e in events.iter().map(Borrow::borrow) {
        seq.append_value(e.seq);
        group.append_value(&e.group);
        stream.append_value(&e.stream);
        ts.append_value(e.timestamp_ms);
        ingest.append_value(e.ingestion_time_ms);
        message.append_value(&e.message);
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(group.finish()),
        Arc::new(stream.finish()),
        Arc::new(ts.finish()),
        Arc::new(ingest.finish()),
        Arc::new(message.finish()),
    ];
    let norm: Vec<Option<&Normalized>> = events
        .iter()
        .map(|e| e.borrow().normalized.as_deref())
        .collect();
    // Borrowed, not cloned: one allocation per value and column adds up to tens of millions
    // for a large import.
    let text = |f: &dyn Fn(&Normalized) -> Option<&str>| -> ArrayRef {
        let bytes = norm.iter().map(|x| x.and_then(f).map_or(0, str::len)).sum();
        let mut b = StringBuilder::with_capacity(n, bytes);
        for n in &norm {
            b.append_option(n.and_then(f));
        }
        Arc::new(b.finish())
    };
    let owned = |f: &dyn Fn(&Normalized) -> Option<String>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for n in &norm {
            b.append_option(n.and_then(f));
        }
        Arc::new(b.finish())
    };
    let flag = |f: &dyn Fn(&Normalized) -> Option<bool>| -> ArrayRef {
        let mut b = BooleanBuilder::with_capacity(n);
        for x in &norm {
            b.append_option(x.and_then(f));
        }
        Arc::new(b.finish())
    };
    let port = |f: &dyn Fn(&Normalized) -> Option<u16>| -> ArrayRef {
        let mut b = Int32Builder::with_capacity(n);
        for x in &norm {
            b.append_option(x.and_then(f).map(i32::from));
        }
        Arc::new(b.finish())
    };
    for name in NORMALIZED_COLUMNS {
        let col: ArrayRef = match name {
            "source" => text(&|n| Some(n.source.as_str()).filter(|s| !s.is_empty())),
            "event_time" => {
                let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
                for x in &norm {
                    b.append_option(x.and_then(|x| x.time_ms));
                }
                Arc::new(b.finish())
            }
            "account" => text(&|n| n.account.as_deref()),
            "region" => text(&|n| n.region.as_deref()),
            "service" => text(&|n| n.service.as_deref()),
            "action" => text(&|n| n.action.as_deref()),
            "activity" => text(&|n| n.activity.map(|a| a.as_str())),
            "actor_principal_id" => text(&|n| n.actor_principal_id.as_deref()),
            "actor_arn" => text(&|n| n.actor_arn.as_deref()),
            "actor_type" => text(&|n| n.actor_type.as_deref()),
            "actor_user_name" => text(&|n| n.actor_user_name.as_deref()),
            "actor_access_key_id" => text(&|n| n.actor_access_key_id.as_deref()),
            "actor_mfa" => flag(&|n| n.actor_mfa),
            "actor_invoked_by" => text(&|n| n.actor_invoked_by.as_deref()),
            "src_ip" => text(&|n| n.src_ip.as_deref()),
            "src_port" => port(&|n| n.src_port),
            "dst_ip" => text(&|n| n.dst_ip.as_deref()),
            "dst_port" => port(&|n| n.dst_port),
            "user_agent" => text(&|n| n.user_agent.as_deref()),
            "resources" => owned(&|n| {
                (!n.resources.is_empty())
                    .then(|| serde_json::to_string(&n.resources).unwrap_or_default())
            }),
            "outcome" => text(&|n| n.outcome.map(|o| o.as_str())),
            "error_code" => text(&|n| n.error_code.as_deref()),
            "error_message" => text(&|n| n.error_message.as_deref()),
            "request_id" => text(&|n| n.request_id.as_deref()),
            "source_event_id" => text(&|n| n.source_event_id.as_deref()),
            "read_only" => flag(&|n| n.read_only),
            "bytes" => {
                let mut b = Int64Builder::with_capacity(n);
                for x in &norm {
                    b.append_option(x.and_then(|x| x.bytes));
                }
                Arc::new(b.finish())
            }
            "duration_ms" => {
                let mut b = Float64Builder::with_capacity(n);
                for x in &norm {
                    b.append_option(x.and_then(|x| x.duration_ms));
                }
                Arc::new(b.finish())
            }
            "parsed" => text(&|n| n.parsed.as_ref().map(JsonText::as_str)),
            _ => unreachable!("every normalized column is listed above"),
        };
        columns.push(col);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Decode a segment's bytes back into events, in stored order.
pub fn decode(bytes: Bytes, projection: Projection) -> Result<Vec<StoredEvent>, SegmentError> {
    SegmentReader::open(bytes, false)?.events(projection, None)
}

/// A segment opened once for several reads: footer parsed, format version checked.
pub struct SegmentReader {
    bytes: Bytes,
    metadata: ArrowReaderMetadata,
}

impl SegmentReader {
    /// Open `bytes`. With `page_index`, the pages' offsets are read too, so a read of a few
    /// rows ([`Self::events`] with a range) decodes only the pages holding them.
    pub fn open(bytes: Bytes, page_index: bool) -> Result<Self, SegmentError> {
        // The columns' types follow from the Parquet schema alone; decoding the embedded
        // Arrow schema as well would double the cost of opening a small segment.
        let options = ArrowReaderOptions::new()
            .with_skip_arrow_metadata(true)
            .with_offset_index_policy(if page_index {
                PageIndexPolicy::Optional
            } else {
                PageIndexPolicy::Skip
            });
        let metadata = ArrowReaderMetadata::load(&bytes, options)?;
        let reader = SegmentReader { bytes, metadata };
        let found = reader.metadata_value(FORMAT_VERSION_KEY);
        if found.as_deref() != Some(SEGMENT_FORMAT_VERSION) {
            return Err(SegmentError::Version { found });
        }
        Ok(reader)
    }

    /// Rows (events) in the segment.
    pub fn num_rows(&self) -> usize {
        self.metadata.metadata().file_metadata().num_rows().max(0) as usize
    }

    /// The footer's value for key-value metadata `key` (see [`encode_with_metadata`]).
    pub fn metadata_value(&self, key: &str) -> Option<String> {
        self.metadata
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    }

    fn builder(&self) -> ParquetRecordBatchReaderBuilder<Bytes> {
        ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.bytes.clone(),
            self.metadata.clone(),
        )
        .with_batch_size(8192)
    }

    /// The row holding event `seq`, reading the `seq` column only.
    pub fn row_of_seq(&self, seq: u64) -> Result<Option<usize>, SegmentError> {
        let builder = self.builder();
        let mask = ProjectionMask::roots(builder.parquet_schema(), [0]);
        let mut row = 0;
        for batch in builder.with_projection(mask).build()? {
            let batch = batch?;
            let seqs = column(&batch, "seq")?
                .as_primitive_opt::<UInt64Type>()
                .ok_or(SegmentError::Schema { column: "seq" })?;
            if let Some(i) = seqs.values().iter().position(|&s| s == seq) {
                return Ok(Some(row + i));
            }
            row += batch.num_rows();
        }
        Ok(None)
    }

    /// The events of `rows` (all of them with `None`), in stored order.
    pub fn events(
        &self,
        projection: Projection,
        rows: Option<Range<usize>>,
    ) -> Result<Vec<StoredEvent>, SegmentError> {
        let mut builder = self.builder();
        if projection == Projection::Core {
            let mask = ProjectionMask::roots(builder.parquet_schema(), 0..CORE_COLUMNS);
            builder = builder.with_projection(mask);
        }
        let total = self.num_rows();
        let want = rows.unwrap_or(0..total);
        let (start, end) = (want.start.min(total), want.end.min(total));
        if (start, end) != (0, total) {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(start),
                RowSelector::select(end.saturating_sub(start)),
                RowSelector::skip(total - end.max(start)),
            ]));
        }
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        for batch in builder.build()? {
            from_batch(&batch?, &mut out)?;
        }
        Ok(out)
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a ArrayRef, SegmentError> {
    batch
        .column_by_name(name)
        .ok_or(SegmentError::Schema { column: name })
}

fn strings<'a>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a arrow_array::StringArray, SegmentError> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or(SegmentError::Schema { column: name })
}

fn from_batch(batch: &RecordBatch, out: &mut Vec<StoredEvent>) -> Result<(), SegmentError> {
    let seq = column(batch, "seq")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or(SegmentError::Schema { column: "seq" })?;
    let group = strings(batch, "log_group")?;
    let stream = strings(batch, "log_stream")?;
    let ts = column(batch, "timestamp")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or(SegmentError::Schema {
            column: "timestamp",
        })?;
    let ingest = column(batch, "ingestion_time")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or(SegmentError::Schema {
            column: "ingestion_time",
        })?;
    let message = strings(batch, "message")?;
    let normalized = batch.num_columns() > CORE_COLUMNS;
    for row in 0..batch.num_rows() {
        if seq.is_null(row) || group.is_null(row) || stream.is_null(row) || message.is_null(row) {
            return Err(SegmentError::Corrupt {
                row,
                what: "a core column is null".into(),
            });
        }
        out.push(StoredEvent {
            seq: seq.value(row),
            group: group.value(row).to_string(),
            stream: stream.value(row).to_string(),
            timestamp_ms: ts.value(row),
            ingestion_time_ms: ingest.value(row),
            message: message.value(row).to_string(),
            normalized: if normalized {
                normalized_at(batch, row)?.map(Box::new)
            } else {
                None
            },
        });
    }
    Ok(())
}

fn normalized_at(batch: &RecordBatch, row: usize) -> Result<Option<Normalized>, SegmentError> {
    let text = |name: &'static str| -> Result<Option<String>, SegmentError> {
        let a = strings(batch, name)?;
        Ok((!a.is_null(row)).then(|| a.value(row).to_string()))
    };
    let flag = |name: &'static str| -> Result<Option<bool>, SegmentError> {
        let a = column(batch, name)?
            .as_boolean_opt()
            .ok_or(SegmentError::Schema { column: name })?;
        Ok((!a.is_null(row)).then(|| a.value(row)))
    };
    let port = |name: &'static str| -> Result<Option<u16>, SegmentError> {
        let a = column(batch, name)?
            .as_primitive_opt::<Int32Type>()
            .ok_or(SegmentError::Schema { column: name })?;
        Ok((!a.is_null(row))
            .then(|| a.value(row))
            .and_then(|p| u16::try_from(p).ok()))
    };
    let Some(source) = text("source")? else {
        return Ok(None);
    };
    let event_time = column(batch, "event_time")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or(SegmentError::Schema {
            column: "event_time",
        })?;
    let bytes = column(batch, "bytes")?
        .as_primitive_opt::<Int64Type>()
        .ok_or(SegmentError::Schema { column: "bytes" })?;
    let duration = column(batch, "duration_ms")?
        .as_primitive_opt::<Float64Type>()
        .ok_or(SegmentError::Schema {
            column: "duration_ms",
        })?;
    let corrupt = |what: String| SegmentError::Corrupt { row, what };
    let resources: Vec<Resource> = match text("resources")? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| corrupt(format!("resources is not valid json: {e}")))?,
        None => Vec::new(),
    };
    let parsed = match text("parsed")? {
        Some(json) => Some(
            JsonText::parse(json).map_err(|e| corrupt(format!("parsed is not valid json: {e}")))?,
        ),
        None => None,
    };
    let activity = match text("activity")?.as_deref() {
        None => None,
        Some("create") => Some(Activity::Create),
        Some("read") => Some(Activity::Read),
        Some("update") => Some(Activity::Update),
        Some("delete") => Some(Activity::Delete),
        Some("other") => Some(Activity::Other),
        Some(other) => return Err(corrupt(format!("unknown activity {other:?}"))),
    };
    let outcome = match text("outcome")?.as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("unknown") => Some(Outcome::Unknown),
        Some(other) => return Err(corrupt(format!("unknown outcome {other:?}"))),
    };
    Ok(Some(Normalized {
        source,
        time_ms: (!event_time.is_null(row)).then(|| event_time.value(row)),
        account: text("account")?,
        region: text("region")?,
        service: text("service")?,
        action: text("action")?,
        activity,
        actor_principal_id: text("actor_principal_id")?,
        actor_arn: text("actor_arn")?,
        actor_type: text("actor_type")?,
        actor_user_name: text("actor_user_name")?,
        actor_access_key_id: text("actor_access_key_id")?,
        actor_mfa: flag("actor_mfa")?,
        actor_invoked_by: text("actor_invoked_by")?,
        src_ip: text("src_ip")?,
        src_port: port("src_port")?,
        dst_ip: text("dst_ip")?,
        dst_port: port("dst_port")?,
        user_agent: text("user_agent")?,
        resources,
        outcome,
        error_code: text("error_code")?,
        error_message: text("error_message")?,
        request_id: text("request_id")?,
        source_event_id: text("source_event_id")?,
        read_only: flag("read_only")?,
        bytes: (!bytes.is_null(row)).then(|| bytes.value(row)),
        duration_ms: (!duration.is_null(row)).then(|| duration.value(row)),
        parsed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(seq: u64, stream: &str, ts: i64, message: &str) -> StoredEvent {
        StoredEvent {
            seq,
            group: "g/1".into(),
            stream: stream.into(),
            timestamp_ms: ts,
            ingestion_time_ms: ts + 5,
            message: message.into(),
            normalized: None,
        }
    }

    #[test]
    fn normalized_fields_round_trip() {
        let mut e = event(7, "s", 1_700_000_000_000, "{\"eventName\":\"X\"}");
        e.normalized = Some(Box::new(Normalized {
            source: "cloudtrail".into(),
            time_ms: Some(1_700_000_000_001),
            account: Some("123456789012".into()),
            action: Some("X".into()),
            activity: Some(Activity::Update),
            actor_mfa: Some(false),
            src_port: Some(443),
            resources: vec![Resource {
                id: Some("arn:aws:s3:::b".into()),
                kind: Some("AWS::S3::Bucket".into()),
                owner_account: None,
            }],
            outcome: Some(Outcome::Failure),
            bytes: Some(12),
            duration_ms: Some(1.5),
            parsed: Some(JsonText::from_value(&serde_json::json!({"eventName": "X"}))),
            ..Normalized::default()
        }));
        let bytes = encode(std::slice::from_ref(&e)).unwrap();
        let back = decode(Bytes::from(bytes.clone()), Projection::All).unwrap();
        assert_eq!(back, vec![e.clone()]);
        let core = decode(Bytes::from(bytes), Projection::Core).unwrap();
        assert_eq!(core[0].normalized, None);
        assert_eq!(core[0].message, e.message);
    }

    #[test]
    fn extra_footer_metadata_round_trips_and_changes_no_event() {
        let e = event(1, "s", 1_700_000_000_000, "m");
        let plain = encode(std::slice::from_ref(&e)).unwrap();
        let with = encode_with_metadata(
            std::slice::from_ref(&e),
            vec![("trailvault.test".into(), "v".into())],
        )
        .unwrap();
        let reader = SegmentReader::open(Bytes::from(with), true).unwrap();
        let events = reader.events(Projection::Core, None).unwrap();
        let value = reader.metadata_value("trailvault.test");
        assert_eq!(
            (events[0].message.as_str(), value.as_deref()),
            ("m", Some("v"))
        );
        let none = SegmentReader::open(Bytes::from(plain), false)
            .unwrap()
            .metadata_value("trailvault.test");
        assert_eq!(none, None);
    }

    #[test]
    fn row_ranges_and_seq_positions_match_a_whole_decode() {
        // Several pages per column (2 MB of messages), in several streams so that row order
        // is not seq order.
        let n = 20_000u64;
        let mut events: Vec<StoredEvent> = (0..n)
            .map(|i| {
                let stream = format!("s{}", i % 3);
                event(
                    i + 1,
                    &stream,
                    1_700_000_000_000 + i as i64,
                    &format!("m{i}"),
                )
            })
            .collect();
        sort_for_segment(&mut events);
        let bytes = Bytes::from(encode(&events).unwrap());
        for page_index in [false, true] {
            let reader = SegmentReader::open(bytes.clone(), page_index).unwrap();
            assert_eq!(reader.num_rows(), events.len());
            let edge = 13_001;
            for range in [
                0..1,
                0..32,
                1_000..1_032,
                edge - 10..edge + 22,
                n as usize - 7..n as usize,
            ] {
                let got = reader
                    .events(Projection::Core, Some(range.clone()))
                    .unwrap();
                let want: Vec<&str> = events[range.clone()]
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect();
                let got: Vec<&str> = got.iter().map(|e| e.message.as_str()).collect();
                assert_eq!(got, want, "rows {range:?}, page index {page_index}");
            }
            for row in [0, 7, 10_000, edge, n as usize - 1] {
                let seq = events[row].seq;
                assert_eq!(reader.row_of_seq(seq).unwrap(), Some(row), "seq {seq}");
            }
            assert_eq!(reader.row_of_seq(n + 1).unwrap(), None);
        }
    }

    #[test]
    fn lookup_columns_carry_bloom_filters() {
        let mut e = event(1, "s", 1_700_000_000_000, "m");
        e.normalized = Some(Box::new(Normalized {
            source: "cloudtrail".into(),
            action: Some("ConsoleLogin".into()),
            ..Normalized::default()
        }));
        let bytes = Bytes::from(encode(&[e]).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let rg = reader.metadata().row_group(0);
        for c in rg.columns() {
            let name = c.column_path().string();
            let expected = BLOOM_FILTER_COLUMNS.contains(&name.as_str());
            assert_eq!(c.bloom_filter_offset().is_some(), expected, "{name}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(Bytes::from_static(b"PAR1 not really"), Projection::All).is_err());
        assert!(decode(Bytes::new(), Projection::Core).is_err());
    }

    proptest! {
        #[test]
        fn events_round_trip(raw in proptest::collection::vec(
            (0u8..4, -1_000_000i64..1_000_000, "\\PC{1,40}"), 0..200)) {
            let mut events: Vec<StoredEvent> = raw.iter().enumerate()
                .map(|(i, (s, ts, m))| event(i as u64, &format!("s{s}"), *ts, m))
                .collect();
            sort_for_segment(&mut events);
            let bytes = encode(&events).unwrap();
            let back = decode(Bytes::from(bytes), Projection::All).unwrap();
            prop_assert_eq!(back, events);
        }
    }
}
