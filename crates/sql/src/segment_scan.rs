//! Lookups over sealed segments without a query plan. The catalog's segment list (event
//! time range of each file) and the lookup filters (values each file holds, see
//! `trailvault_segment::lookup_index`) pick the files that can hold a match before any is
//! opened; those are read newest first, a few at a time, each with a Parquet row filter so
//! that only matching rows decode the wide columns (`message`): with the offset index, the
//! pages of those columns that hold no match are neither read nor decompressed. Reading
//! stops as soon as the newest `limit` matches are known: no file left can hold a newer one.
//! Parsed footers (with the offset index) are kept for the engine's life, up to
//! [`LOOKUP_FOOTERS_MAX`] files: sealed files never change.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::physical_expr::PhysicalExpr;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    RowFilter,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;
use trailvault_segment::lookup_index::{LookupFilter, LookupKey};

use crate::error::SqlError;
use crate::lookup::{rows_of, LookupEvent, LOOKUP_COLUMNS};

/// Parsed segment footers a lookup engine keeps (about 100 KB each at most).
pub(crate) const LOOKUP_FOOTERS_MAX: usize = 2048;

/// Parsed footers of the segments lookups opened, by segment key.
#[derive(Default)]
pub(crate) struct SegmentFooters {
    parsed: Mutex<HashMap<String, ArrowReaderMetadata>>,
}

impl SegmentFooters {
    fn parsed(&self) -> std::sync::MutexGuard<'_, HashMap<String, ArrowReaderMetadata>> {
        self.parsed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The footer of `file` (the segment `key`), parsed once.
    fn get(&self, key: &str, file: &File) -> Result<ArrowReaderMetadata, SqlError> {
        if let Some(m) = self.parsed().get(key) {
            return Ok(m.clone());
        }
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(file, options)?;
        let mut parsed = self.parsed();
        if parsed.len() >= LOOKUP_FOOTERS_MAX {
            parsed.clear();
        }
        parsed.insert(key.to_string(), meta.clone());
        Ok(meta)
    }
}

/// A sealed segment of the engine's snapshot, as the catalog records it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentRef {
    /// Object key, relative to the data directory.
    pub key: String,
    pub group: String,
    pub oldest_ms: i64,
    pub newest_ms: i64,
    /// File size.
    pub bytes: u64,
}

/// Every segment's filter for one attribute, by segment key.
pub(crate) type FilterMap = HashMap<String, LookupFilter>;

/// The lookup filters of `catalog.sqlite`, loaded per attribute on first use and kept for
/// the engine's life (the engine's segment list is a fixed snapshot too).
pub(crate) struct LookupFilters {
    catalog: PathBuf,
    loaded: Mutex<HashMap<LookupKey, Arc<FilterMap>>>,
}

impl LookupFilters {
    pub fn new(data_dir: &Path) -> Self {
        LookupFilters {
            catalog: data_dir.join("catalog.sqlite"),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn of(&self, key: LookupKey) -> Result<Arc<FilterMap>, SqlError> {
        if let Some(m) = self.loaded().get(&key) {
            return Ok(m.clone());
        }
        let map = Arc::new(self.load(key)?);
        self.loaded().insert(key, map.clone());
        Ok(map)
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, HashMap<LookupKey, Arc<FilterMap>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, key: LookupKey) -> Result<FilterMap, SqlError> {
        use rusqlite::{Connection, OpenFlags};
        if !self.catalog.is_file() {
            return Ok(FilterMap::new());
        }
        // Read-only: the vault (maybe another process) owns the catalog.
        let conn = Connection::open_with_flags(
            &self.catalog,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let rows = trailvault_store::catalog::query_lookup_filters(&conn, key.as_str())?;
        let mut map = FilterMap::with_capacity(rows.len());
        for (segment, bytes) in rows {
            match LookupFilter::decode(&bytes) {
                Ok(f) => {
                    map.insert(segment, f);
                }
                // Derived data: an unreadable filter only means the segment gets opened.
                Err(e) => {
                    tracing::warn!(%segment, error = %e, "ignoring an unreadable lookup filter")
                }
            }
        }
        Ok(map)
    }
}

/// What to match in each segment: a predicate over some of the segment's columns.
pub(crate) struct SegmentPredicate {
    /// Evaluated on batches holding exactly `columns` (file order).
    pub expr: Arc<dyn PhysicalExpr>,
    /// Root column indices of the segment schema the predicate reads, ascending.
    pub columns: Vec<usize>,
}

/// The newest `limit` events of `candidates` (already sorted newest first by `newest_ms`)
/// that match `predicate`, newest first, and how many files were read.
pub(crate) async fn newest_matches(
    data_dir: &Path,
    footers: &Arc<SegmentFooters>,
    candidates: Vec<SegmentRef>,
    predicate: Arc<SegmentPredicate>,
    limit: usize,
) -> Result<(Vec<LookupEvent>, usize), SqlError> {
    let wave = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut found: Vec<LookupEvent> = Vec::new();
    let mut next = 0;
    while next < candidates.len() {
        if found.len() >= limit {
            // `found` is sorted and cut to `limit`: a file whose newest event is older than
            // the last kept one cannot change the answer, nor can any file after it.
            let floor = found[limit - 1].timestamp_ms;
            if candidates[next].newest_ms < floor {
                break;
            }
        }
        let end = (next + wave).min(candidates.len());
        let mut tasks = Vec::with_capacity(end - next);
        for seg in &candidates[next..end] {
            let path = data_dir.join(&seg.key);
            let key = seg.key.clone();
            let predicate = predicate.clone();
            let footers = footers.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                read_matches(&path, &key, &footers, &predicate)
            }));
        }
        for t in tasks {
            let rows = t
                .await
                .map_err(|e| SqlError::Execution(format!("segment read task failed: {e}")))??;
            found.extend(rows);
        }
        sort_newest_first(&mut found);
        found.truncate(limit);
        next = end;
    }
    Ok((found, next))
}

/// Lookup order: newest event time first, then highest seq.
pub(crate) fn sort_newest_first(events: &mut [LookupEvent]) {
    events.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms, e.seq)));
}

/// The events of one segment file matching the predicate.
fn read_matches(
    path: &Path,
    key: &str,
    footers: &SegmentFooters,
    predicate: &SegmentPredicate,
) -> Result<Vec<LookupEvent>, SqlError> {
    let io = |e| SqlError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = File::open(path).map_err(io)?;
    let footer = footers.get(key, &file)?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, footer);
    check_schema(builder.schema(), path)?;
    let parquet_schema = builder.parquet_schema();
    let filter_mask = ProjectionMask::roots(parquet_schema, predicate.columns.iter().copied());
    let segment = trailvault_segment::schema();
    let mut output: Vec<usize> = LOOKUP_COLUMNS
        .iter()
        .map(|c| segment.index_of(c))
        .collect::<Result<_, _>>()?;
    output.sort_unstable();
    let output_mask = ProjectionMask::roots(parquet_schema, output);
    let expr = predicate.expr.clone();
    let row_filter = RowFilter::new(vec![Box::new(ArrowPredicateFn::new(
        filter_mask,
        move |batch| -> Result<BooleanArray, ArrowError> {
            let value = expr
                .evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            value
                .as_boolean_opt()
                .cloned()
                .ok_or_else(|| ArrowError::ComputeError("lookup predicate is not boolean".into()))
        },
    ))]);
    let reader = builder
        .with_row_filter(row_filter)
        .with_projection(output_mask)
        .with_batch_size(8192)
        .build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let order: Vec<usize> = LOOKUP_COLUMNS
            .iter()
            .map(|c| batch.schema().index_of(c))
            .collect::<Result<_, _>>()?;
        rows_of(&batch.project(&order)?, &mut out)?;
    }
    Ok(out)
}

/// A file whose columns are not the segment schema's is refused, not misread.
fn check_schema(found: &SchemaRef, path: &Path) -> Result<(), SqlError> {
    let expected = trailvault_segment::schema();
    let same = found.fields().len() == expected.fields().len()
        && found
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same {
        Ok(())
    } else {
        Err(SqlError::Execution(format!(
            "{} does not have the segment schema",
            path.display()
        )))
    }
}
