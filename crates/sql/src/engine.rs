//! The SQL engine: one DataFusion session over a vault's sealed segments and unsealed tail.
//!
//! Tables:
//! - `events`: every log group, columns [`VIEW_COLUMNS`] (the segment columns plus the hive
//!   partition columns `year`, `month`, `day`, `hour` of event time);
//! - one table per log group, named exactly as the group (`SELECT * FROM "app/web"`), the
//!   same columns.
//!
//! How the answer stays exact whether an event sits in a segment or the tail: the engine
//! takes one snapshot of the sealed segment list and notes `sealed_through_seq`, the highest
//! seq any listed segment holds. Sealed segments hold every seq up to it and the tail only
//! seqs above it (the vault seals whole frozen tails, in seq order), so the tables are
//! `the snapshot's segment files UNION ALL tail WHERE seq > sealed_through_seq` (a seal
//! running meanwhile writes files the snapshot does not name). The tail is read after the
//! snapshot; if a seal committed in between, the engine retries.
//!
//! The sealed side is a [`SegmentTable`] over the snapshot's files, with the hive partition
//! columns `group`, `year`, `month`, `day`, `hour` taken from the catalog; `log_group` in the
//! tables *is* the `group` partition column, and each group's table reads only that group's
//! files. Before a scan opens anything, its filters drop the files that cannot match
//! (`segment_prune`: the catalog's time ranges, partition values and lookup filters, then
//! the footers' statistics); Parquet row-group statistics, the page index and bloom filters
//! prune inside the files left.
//!
//! Memory is bounded by a fair spill pool of [`SqlOptions::memory_limit_bytes`]: operators
//! that can spill do so, the others fail with [`SqlError::MemoryLimit`]. Dropping the stream
//! returned by [`SqlEngine::query_stream`] cancels the query.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{col, ident, lit, DataFrame, Expr, SessionConfig, SessionContext};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trailvault_model::StoredEvent;
use trailvault_store::{StreamFilter, Vault};

use crate::error::SqlError;
use crate::segment_prune::PruneFacts;
use crate::segment_scan::{LookupFilters, SegmentFooters, SegmentRef};
use crate::segment_table::SegmentTable;

/// Default query memory: 1 GiB.
pub const MEMORY_LIMIT_BYTES_DEFAULT: usize = 1 << 30;
/// A seal committing between the snapshot and the tail read makes the engine start over;
/// this bounds how often.
const SNAPSHOT_ATTEMPTS_MAX: usize = 5;
/// Rows per record batch of the in-memory tail.
const TAIL_BATCH_ROWS: usize = 8192;
/// Parsed Parquet footers (with page indexes) kept by the session: enough for the segment
/// files of a few years of hourly segments, so repeated queries do not parse them again.
const METADATA_CACHE_BYTES_MAX: usize = 512 << 20;

/// Hive partition columns of `segments/`, after the file columns, as DataFusion appends them.
pub const PARTITION_COLUMNS: [&str; 5] = ["group", "year", "month", "day", "hour"];

/// Columns of `events` and of every per-group table, in order.
pub fn view_columns() -> Vec<&'static str> {
    let mut cols = vec![
        "seq",
        "log_group",
        "log_stream",
        "timestamp",
        "ingestion_time",
        "message",
    ];
    cols.extend(trailvault_segment::NORMALIZED_COLUMNS);
    cols.extend(["year", "month", "day", "hour"]);
    cols
}

#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Query memory pool size; spilling operators spill beyond it, others fail cleanly.
    pub memory_limit_bytes: usize,
    /// Parallelism of a query (DataFusion's target partitions); 0 = the number of cores.
    pub target_partitions: usize,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            memory_limit_bytes: MEMORY_LIMIT_BYTES_DEFAULT,
            target_partitions: 0,
        }
    }
}

/// What the tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataScope {
    /// Sealed segments and the unsealed tail: the same events `Vault::read_events` returns.
    SealedAndTail,
    /// Sealed segments only (the data directory is owned by a running server, whose tail is
    /// in its memory and WAL).
    SealedOnly,
}

/// A SQL session over one vault.
pub struct SqlEngine {
    ctx: SessionContext,
    groups: Vec<String>,
    scope: DataScope,
    sealed_through_seq: u64,
    tail_events: usize,
    memory_limit_bytes: usize,
    data_dir: PathBuf,
    /// The sealed segments of the snapshot, for lookups.
    segments: Vec<SegmentRef>,
    /// The unsealed events, for lookups.
    tail_table: Arc<MemTable>,
    filters: Arc<LookupFilters>,
    lookup_footers: Arc<SegmentFooters>,
}

/// The sealed side of a snapshot.
struct Sealed {
    groups: Vec<String>,
    /// Highest seq held by a listed segment (0 when none).
    through_seq: u64,
    /// Segments per group, to detect a seal that committed during the snapshot.
    segment_counts: BTreeMap<String, usize>,
    /// Sealed event count per (group, stream), to find the streams that have a tail.
    sealed_per_stream: BTreeMap<(String, String), u64>,
    segments: Vec<SegmentRef>,
}

impl SqlEngine {
    /// SQL over an open vault: sealed segments and the unsealed tail.
    pub async fn from_vault(vault: &Vault, opts: SqlOptions) -> Result<SqlEngine, SqlError> {
        let data_dir = vault.config().data_dir.clone();
        for _ in 0..SNAPSHOT_ATTEMPTS_MAX {
            let sealed = sealed_from_vault(vault)?;
            let tail = read_tail(vault, &sealed).await?;
            let again = sealed_from_vault(vault)?;
            if again.segment_counts == sealed.segment_counts {
                return Self::build(&data_dir, sealed, tail, DataScope::SealedAndTail, &opts).await;
            }
        }
        Err(SqlError::Busy(
            "segments kept being sealed while the query snapshot was taken".into(),
        ))
    }

    /// SQL over the sealed segments of a data directory, read without opening the vault
    /// (which another process may hold): the catalog is read read-only and the Parquet files
    /// directly. Events not yet sealed are not included.
    pub async fn open_sealed(data_dir: &Path, opts: SqlOptions) -> Result<SqlEngine, SqlError> {
        let sealed = sealed_from_catalog(data_dir)?;
        Self::build(data_dir, sealed, Vec::new(), DataScope::SealedOnly, &opts).await
    }

    async fn build(
        data_dir: &Path,
        sealed: Sealed,
        tail: Vec<StoredEvent>,
        scope: DataScope,
        opts: &SqlOptions,
    ) -> Result<SqlEngine, SqlError> {
        let ctx = session(opts)?;
        let schema = table_schema();
        let filters = Arc::new(LookupFilters::new(data_dir));
        let facts = Arc::new(PruneFacts::new(filters.clone()));
        let tail_events = tail.len();
        let tail_table = Arc::new(MemTable::try_new(
            schema.clone(),
            vec![tail_batches(&schema, tail)?],
        )?);

        // The sealed side reads exactly the snapshot's files (no filter needed to hide a
        // seal running meanwhile); each group's table reads only that group's files.
        let sealed_df = |segments: Vec<&SegmentRef>| -> Result<DataFrame, SqlError> {
            let table = SegmentTable::new(data_dir, segments, facts.clone())?;
            Ok(ctx.read_table(Arc::new(table))?.select(view_exprs(true))?)
        };
        let tail_df = ctx
            .read_table(tail_table.clone())?
            .filter(col("seq").gt(lit(sealed.through_seq)))?
            .select(view_exprs(false))?;
        let events = sealed_df(sealed.segments.iter().collect())?.union(tail_df.clone())?;
        for g in &sealed.groups {
            let of_group = sealed.segments.iter().filter(|s| &s.group == g).collect();
            let view = sealed_df(of_group)?
                .union(
                    tail_df
                        .clone()
                        .filter(col("log_group").eq(lit(g.as_str())))?,
                )?
                .into_view();
            ctx.register_table(TableReference::bare(g.as_str()), view)?;
        }
        ctx.register_table("events", events.into_view())?;
        Ok(SqlEngine {
            ctx,
            groups: sealed.groups,
            scope,
            sealed_through_seq: sealed.through_seq,
            tail_events,
            memory_limit_bytes: opts.memory_limit_bytes,
            data_dir: data_dir.to_path_buf(),
            segments: sealed.segments,
            tail_table,
            filters,
            lookup_footers: Arc::default(),
        })
    }

    /// Log groups with a table, in name order.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn scope(&self) -> DataScope {
        self.scope
    }

    /// Highest seq of the sealed snapshot the tables read.
    pub fn sealed_through_seq(&self) -> u64 {
        self.sealed_through_seq
    }

    /// Unsealed events held in memory for the tables.
    pub fn tail_events(&self) -> usize {
        self.tail_events
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plan a read-only query (no DDL, DML or `SET`).
    pub async fn sql(&self, query: &str) -> Result<DataFrame, SqlError> {
        let options = datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(query, options)
            .await
            .map_err(|e| self.error(e))
    }

    /// Run a query to completion.
    pub async fn query(&self, query: &str) -> Result<Vec<RecordBatch>, SqlError> {
        let df = self.sql(query).await?;
        df.collect().await.map_err(|e| self.error(e))
    }

    /// Run a query as a stream of batches; dropping the stream cancels the query.
    pub async fn query_stream(&self, query: &str) -> Result<SendableRecordBatchStream, SqlError> {
        let df = self.sql(query).await?;
        df.execute_stream().await.map_err(|e| self.error(e))
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn segments(&self) -> &[SegmentRef] {
        &self.segments
    }

    pub(crate) fn lookup_footers(&self) -> &Arc<SegmentFooters> {
        &self.lookup_footers
    }

    pub(crate) fn lookup_filters(&self) -> &LookupFilters {
        &self.filters
    }

    /// The unsealed events with the columns of `events`.
    pub(crate) fn tail_frame(&self) -> Result<DataFrame, SqlError> {
        Ok(self
            .ctx
            .read_table(self.tail_table.clone())?
            .filter(col("seq").gt(lit(self.sealed_through_seq)))?
            .select(view_exprs(false))?)
    }

    /// Convert a DataFusion error met while running a query of this engine.
    pub fn error(&self, e: datafusion::error::DataFusionError) -> SqlError {
        SqlError::from_datafusion(e, self.memory_limit_bytes)
    }

    /// Run a DataFrame built on [`SqlEngine::context`] to completion.
    pub(crate) async fn collect(&self, df: DataFrame) -> Result<Vec<RecordBatch>, SqlError> {
        df.collect().await.map_err(|e| self.error(e))
    }
}

fn session(opts: &SqlOptions) -> Result<SessionContext, SqlError> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(opts.memory_limit_bytes),
        NonZeroUsize::new(3).expect("3 is not zero"),
    );
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_metadata_cache_limit(METADATA_CACHE_BYTES_MAX)
        .build_arc()?;
    let mut config = SessionConfig::new().with_information_schema(true);
    if opts.target_partitions > 0 {
        config = config.with_target_partitions(opts.target_partitions);
    }
    let o = config.options_mut();
    // Filters evaluated while decoding (late materialization): lookups then decode the
    // message column only for matching rows.
    o.execution.parquet.pushdown_filters = true;
    o.execution.parquet.reorder_filters = true;
    o.execution.parquet.bloom_filter_on_read = true;
    o.execution.parquet.enable_page_index = true;
    o.execution.collect_statistics = true;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Segment columns plus the partition columns, as the sealed table exposes them.
pub(crate) fn table_schema() -> SchemaRef {
    let seg = trailvault_segment::schema();
    let mut fields: Vec<Field> = seg.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("group", DataType::Utf8, false));
    for p in ["year", "month", "day", "hour"] {
        fields.push(Field::new(p, DataType::Int32, false));
    }
    Arc::new(Schema::new(fields))
}

/// The view's projection; on the sealed side `log_group` is the `group` partition column
/// (equal by construction of the key) so filters on it prune directories.
fn view_exprs(sealed: bool) -> Vec<Expr> {
    view_columns()
        .into_iter()
        .map(|c| match c {
            "log_group" if sealed => ident("group").alias("log_group"),
            c => ident(c),
        })
        .collect()
}

/// The tail as record batches of [`table_schema`]: encoded with the segment codec itself, so
/// its columns are those of a sealed segment by construction.
fn tail_batches(
    schema: &SchemaRef,
    mut tail: Vec<StoredEvent>,
) -> Result<Vec<RecordBatch>, SqlError> {
    trailvault_segment::sort_for_segment(&mut tail);
    let mut out = Vec::new();
    for chunk in tail.chunks(trailvault_segment::ROW_GROUP_ROWS_MAX) {
        let bytes = Bytes::from(trailvault_segment::encode(chunk)?);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
            .with_batch_size(TAIL_BATCH_ROWS)
            .build()?;
        for batch in reader {
            let batch = batch?;
            out.push(with_partition_columns(schema, &batch)?);
        }
    }
    Ok(out)
}

fn with_partition_columns(
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch, SqlError> {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMillisecondType;
    let n = batch.num_rows();
    let groups = batch
        .column_by_name("log_group")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or(trailvault_segment::SegmentError::Schema {
            column: "log_group",
        })?;
    let ts = batch
        .column_by_name("timestamp")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or(trailvault_segment::SegmentError::Schema {
            column: "timestamp",
        })?;
    let mut group = StringBuilder::with_capacity(n, n * 16);
    let mut parts: [Int32Builder; 4] = std::array::from_fn(|_| Int32Builder::with_capacity(n));
    for row in 0..n {
        group.append_value(groups.value(row));
        let t: DateTime<Utc> = DateTime::from_timestamp_millis(ts.value(row)).unwrap_or_default();
        parts[0].append_value(t.year());
        parts[1].append_value(t.month() as i32);
        parts[2].append_value(t.day() as i32);
        parts[3].append_value(t.hour() as i32);
    }
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(group.finish()));
    for mut p in parts {
        columns.push(Arc::new(p.finish()));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn sealed_from_vault(vault: &Vault) -> Result<Sealed, SqlError> {
    let mut sealed = Sealed {
        groups: Vec::new(),
        through_seq: 0,
        segment_counts: BTreeMap::new(),
        sealed_per_stream: BTreeMap::new(),
        segments: Vec::new(),
    };
    for meta in vault.log_groups() {
        let segments = vault.segments(&meta.name)?;
        for seg in &segments {
            sealed.through_seq = sealed.through_seq.max(seg.last_seq);
            sealed.segments.push(SegmentRef {
                key: seg.key.clone(),
                group: meta.name.clone(),
                oldest_ms: seg.oldest_ms,
                newest_ms: seg.newest_ms,
                bytes: seg.bytes,
            });
            for r in &seg.streams {
                *sealed
                    .sealed_per_stream
                    .entry((meta.name.clone(), r.stream.clone()))
                    .or_default() += r.event_count;
            }
        }
        sealed
            .segment_counts
            .insert(meta.name.clone(), segments.len());
        sealed.groups.push(meta.name);
    }
    sealed.groups.sort();
    Ok(sealed)
}

/// The unsealed events of every group: those with a seq above the snapshot's. Only streams
/// whose event count exceeds their sealed count are read, so a fully sealed vault costs no
/// segment reads here.
async fn read_tail(vault: &Vault, sealed: &Sealed) -> Result<Vec<StoredEvent>, SqlError> {
    let mut tail = Vec::new();
    for group in &sealed.groups {
        let streams = match vault.log_streams(group) {
            Ok(s) => s,
            // Deleted since the snapshot: nothing of it is read.
            Err(trailvault_store::StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let with_tail: HashSet<String> = streams
            .into_iter()
            .filter(|s| {
                let key = (group.clone(), s.name.clone());
                s.event_count > sealed.sealed_per_stream.get(&key).copied().unwrap_or(0)
            })
            .map(|s| s.name)
            .collect();
        if with_tail.is_empty() {
            continue;
        }
        let events = vault
            .read_events(group, &StreamFilter::Names(with_tail), None, None)
            .await?;
        tail.extend(events.into_iter().filter(|e| e.seq > sealed.through_seq));
    }
    Ok(tail)
}

/// The sealed snapshot from `catalog.sqlite`, opened read-only (a server may own the vault).
fn sealed_from_catalog(data_dir: &Path) -> Result<Sealed, SqlError> {
    use rusqlite::{Connection, OpenFlags};
    let path: PathBuf = data_dir.join("catalog.sqlite");
    if !path.is_file() {
        return Err(SqlError::NotAVault(data_dir.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut groups: Vec<String> = conn
        .prepare("SELECT name FROM log_groups")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    groups.sort();
    let mut sealed = Sealed {
        groups,
        through_seq: 0,
        segment_counts: BTreeMap::new(),
        sealed_per_stream: BTreeMap::new(),
        segments: Vec::new(),
    };
    let mut stmt =
        conn.prepare("SELECT last_seq, key, log_group, oldest_ms, newest_ms, bytes FROM segments")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            SegmentRef {
                key: r.get(1)?,
                group: r.get(2)?,
                oldest_ms: r.get(3)?,
                newest_ms: r.get(4)?,
                bytes: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            },
        ))
    })?;
    for row in rows {
        let (last_seq, segment) = row?;
        sealed.through_seq = sealed.through_seq.max(u64::try_from(last_seq).unwrap_or(0));
        *sealed
            .segment_counts
            .entry(segment.group.clone())
            .or_default() += 1;
        sealed.segments.push(segment);
    }
    Ok(sealed)
}
