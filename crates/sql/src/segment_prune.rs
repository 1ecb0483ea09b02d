//! Which segment files a SQL scan opens. The scan's filters become one DataFusion
//! [`PruningPredicate`], evaluated over what the engine knows of each file of its snapshot
//! before DataFusion opens any:
//! 1. from the catalog, with no I/O: the hive partition values (`group`, `year`, `month`,
//!    `day`, `hour`), the event time range (`timestamp` min and max: the catalog's
//!    `oldest_ms` and `newest_ms` are exactly those of the file's rows) and the lookup
//!    filters (per-segment bloom filters over the values of `action`, `service`,
//!    `source_event_id`, `actor_user_name`, `actor_access_key_id` and `read_only`, see
//!    `trailvault_segment::lookup_index`), which answer `column = value` and `IN` lists;
//! 2. for the files left, and only for the columns the filters read: each column's min, max
//!    and null count and the row count, from the file's Parquet footer. Footers come through
//!    the session's metadata cache (the one the Parquet scan itself reads) and the derived
//!    figures are kept here, both for the engine's life: sealed files never change.
//!
//! A file is skipped only when no row of it can satisfy the filters; the filters still run
//! above the scan (pushed down as inexact). Whatever is unknown keeps the file: a segment
//! without lookup filters (sealed before they existed; `Vault::rebuild_lookup_filters`
//! derives them again), a column without statistics, a filter the predicate cannot use. A
//! missing fact costs time, never a row.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::prelude::Expr;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;
use trailvault_segment::lookup_index::LookupKey;

use crate::engine::PARTITION_COLUMNS;
use crate::segment_scan::{LookupFilters, SegmentRef};

/// Footers read at once when a scan first needs them.
const FOOTER_READS_CONCURRENT: usize = 16;

/// One segment file of a snapshot, as the sealed table scans it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    pub segment: SegmentRef,
    /// The file for DataFusion, with the partition values in [`PARTITION_COLUMNS`] order.
    pub file: PartitionedFile,
}

/// Per-file facts shared by every table of an engine, kept for its life.
pub(crate) struct PruneFacts {
    lookup_filters: Arc<LookupFilters>,
    /// Footer figures by segment key, per segment column as first needed.
    footers: Mutex<HashMap<String, FooterFacts>>,
}

#[derive(Debug, Default, Clone)]
struct FooterFacts {
    rows: Option<u64>,
    /// By column index in the segment schema.
    columns: HashMap<usize, ColumnFacts>,
}

#[derive(Debug, Clone)]
struct ColumnFacts {
    /// Null when unknown.
    min: ScalarValue,
    max: ScalarValue,
    nulls: Option<u64>,
}

/// The lookup filter that holds a column's values, and how a literal of the column is
/// written in it.
fn lookup_key_of(column: &str) -> Option<LookupKey> {
    Some(match column {
        "action" => LookupKey::EventName,
        "service" => LookupKey::EventSource,
        "source_event_id" => LookupKey::EventId,
        "actor_user_name" => LookupKey::Username,
        "actor_access_key_id" => LookupKey::AccessKeyId,
        "read_only" => LookupKey::ReadOnly,
        _ => return None,
    })
}

fn indexed_value(key: LookupKey, v: &ScalarValue) -> Option<String> {
    match (key, v) {
        (LookupKey::ReadOnly, ScalarValue::Boolean(Some(b))) => Some(b.to_string()),
        (LookupKey::ReadOnly, _) => None,
        (
            _,
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
        ) => Some(s.clone()),
        _ => None,
    }
}

impl PruneFacts {
    pub fn new(lookup_filters: Arc<LookupFilters>) -> Self {
        PruneFacts {
            lookup_filters,
            footers: Mutex::new(HashMap::new()),
        }
    }

    fn footers(&self) -> std::sync::MutexGuard<'_, HashMap<String, FooterFacts>> {
        self.footers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The files of `files` that can hold a row satisfying every one of `filters` (the
    /// filters DataFusion pushed into the scan, over `schema`, the table's columns).
    pub async fn prune<'a>(
        &self,
        state: &dyn Session,
        schema: &SchemaRef,
        files: &'a [SegmentFile],
        filters: &[Expr],
    ) -> datafusion::error::Result<Vec<&'a SegmentFile>> {
        let all: Vec<&SegmentFile> = files.iter().collect();
        let Some((predicate, columns)) = pruning_predicate(state, schema, filters) else {
            return Ok(all);
        };
        // 1. Catalog facts only.
        let keep = predicate.prune(&FileStatistics {
            files: &all,
            lookup_filters: &self.lookup_filters,
            footer: None,
        })?;
        let left: Vec<&SegmentFile> = all
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();

        // 2. Footer statistics of the columns the filters read (the time range and the
        // partition values are known exactly already).
        let segment = trailvault_segment::schema();
        let wanted: Vec<usize> = columns
            .iter()
            .filter(|c| c.as_str() != "timestamp")
            .filter_map(|c| segment.index_of(c).ok())
            .collect();
        if wanted.is_empty() || left.is_empty() {
            return Ok(left);
        }
        let footer = self.footer_facts(state, &left, &wanted).await?;
        let keep = predicate.prune(&FileStatistics {
            files: &left,
            lookup_filters: &self.lookup_filters,
            footer: Some(&footer),
        })?;
        Ok(left
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect())
    }

    /// Footer figures of `columns` for each of `files`, reading the footers that lack one.
    async fn footer_facts(
        &self,
        state: &dyn Session,
        files: &[&SegmentFile],
        columns: &[usize],
    ) -> datafusion::error::Result<Vec<FooterFacts>> {
        // Owned, so that the reads below are `'static` futures.
        let missing: Vec<(String, ObjectMeta)> = {
            let cached = self.footers();
            files
                .iter()
                .filter(|f| {
                    cached
                        .get(&f.segment.key)
                        .is_none_or(|c| columns.iter().any(|i| !c.columns.contains_key(i)))
                })
                .map(|f| (f.segment.key.clone(), f.file.object_meta.clone()))
                .collect()
        };
        if !missing.is_empty() {
            let store = state
                .runtime_env()
                .object_store(ObjectStoreUrl::local_filesystem())?;
            let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
            let read: Vec<(String, Arc<ParquetMetaData>)> = futures::stream::iter(missing)
                .map(|(key, object_meta)| {
                    let store = store.clone();
                    let cache = cache.clone();
                    async move {
                        let meta = DFParquetMetadata::new(store.as_ref(), &object_meta)
                            .with_file_metadata_cache(Some(cache))
                            .fetch_metadata()
                            .await?;
                        Ok::<_, datafusion::error::DataFusionError>((key, meta))
                    }
                })
                .buffer_unordered(FOOTER_READS_CONCURRENT)
                .try_collect()
                .await?;
            let mut cached = self.footers();
            for (key, meta) in read {
                let facts = cached.entry(key).or_default();
                add_footer_facts(facts, &meta, columns);
            }
        }
        let cached = self.footers();
        Ok(files
            .iter()
            .map(|f| cached.get(&f.segment.key).cloned().unwrap_or_default())
            .collect())
    }
}

/// The filters as one pruning predicate over the table's columns, and the columns it reads;
/// `None` when they cannot prune anything.
fn pruning_predicate(
    state: &dyn Session,
    schema: &SchemaRef,
    filters: &[Expr],
) -> Option<(PruningPredicate, Vec<String>)> {
    // Pushed-down filters name columns qualified by the table; the schema here is bare.
    let unqualified = filters.iter().filter_map(|f| {
        f.clone()
            .transform(|e| {
                Ok(match e {
                    Expr::Column(c) => {
                        Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
                    }
                    e => Transformed::no(e),
                })
            })
            .map(|t| t.data)
            .ok()
    });
    let expr = conjunction(unqualified)?;
    let columns: Vec<String> = expr
        .column_refs()
        .into_iter()
        .map(|c| c.name.clone())
        .collect();
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
    let physical = match state.create_physical_expr(expr, &df_schema) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "scan filters not usable for file pruning");
            return None;
        }
    };
    let predicate = PruningPredicateBuilder::new()
        .with_file_schema(schema.clone())
        .try_build(physical)
        .ok()?;
    (!predicate.always_true()).then_some((predicate, columns))
}

/// Adds the figures of `columns` from a footer.
fn add_footer_facts(facts: &mut FooterFacts, meta: &ParquetMetaData, columns: &[usize]) {
    let segment = trailvault_segment::schema();
    let row_groups = meta.row_groups();
    facts.rows = Some(row_groups.iter().map(|r| r.num_rows().max(0) as u64).sum());
    let parquet_schema = meta.file_metadata().schema_descr();
    for &i in columns {
        if facts.columns.contains_key(&i) {
            continue;
        }
        let field = segment.field(i);
        let unknown = || ColumnFacts {
            min: ScalarValue::try_new_null(field.data_type()).unwrap_or(ScalarValue::Null),
            max: ScalarValue::try_new_null(field.data_type()).unwrap_or(ScalarValue::Null),
            nulls: None,
        };
        let figures = StatisticsConverter::try_new(field.name(), &segment, parquet_schema)
            .ok()
            .and_then(|conv| {
                let mins = conv.row_group_mins(row_groups.iter()).ok()?;
                let maxes = conv.row_group_maxes(row_groups.iter()).ok()?;
                let nulls = conv.row_group_null_counts(row_groups.iter()).ok()?;
                Some(ColumnFacts {
                    min: fold(&mins, std::cmp::Ordering::Less)?,
                    max: fold(&maxes, std::cmp::Ordering::Greater)?,
                    nulls: (nulls.null_count() == 0).then(|| nulls.values().iter().sum()),
                })
            });
        facts.columns.insert(i, figures.unwrap_or_else(unknown));
    }
}

/// The least (`Less`) or greatest (`Greater`) of a row-group statistic over a file; null
/// when any row group's is unknown or there is none.
fn fold(values: &ArrayRef, keep: std::cmp::Ordering) -> Option<ScalarValue> {
    let null = ScalarValue::try_new_null(values.data_type()).ok()?;
    if values.is_empty() || values.null_count() > 0 {
        return Some(null);
    }
    let mut best = ScalarValue::try_from_array(values, 0).ok()?;
    for i in 1..values.len() {
        let v = ScalarValue::try_from_array(values, i).ok()?;
        match v.partial_cmp(&best) {
            Some(o) if o == keep => best = v,
            Some(_) => {}
            None => return Some(null),
        }
    }
    Some(best)
}

/// The facts of a list of files, as DataFusion's pruning reads them (one container per file).
struct FileStatistics<'a> {
    files: &'a [&'a SegmentFile],
    lookup_filters: &'a LookupFilters,
    /// Footer figures, one per file, when read.
    footer: Option<&'a [FooterFacts]>,
}

impl FileStatistics<'_> {
    fn bound(&self, column: &Column, min: bool) -> Option<ArrayRef> {
        let name = column.name();
        if let Some(i) = PARTITION_COLUMNS.iter().position(|c| *c == name) {
            let values = self
                .files
                .iter()
                .map(|f| f.file.partition_values[i].clone());
            return ScalarValue::iter_to_array(values).ok();
        }
        if name == "timestamp" {
            let values = self.files.iter().map(|f| {
                let ms = if min {
                    f.segment.oldest_ms
                } else {
                    f.segment.newest_ms
                };
                ScalarValue::TimestampMillisecond(Some(ms), Some("UTC".into()))
            });
            return ScalarValue::iter_to_array(values).ok();
        }
        let footer = self.footer?;
        let i = trailvault_segment::schema().index_of(name).ok()?;
        let values = footer
            .iter()
            .map(|f| {
                f.columns
                    .get(&i)
                    .map(|c| if min { c.min.clone() } else { c.max.clone() })
            })
            .collect::<Option<Vec<_>>>()?;
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for FileStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, true)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, false)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let name = column.name();
        if name == "timestamp" || PARTITION_COLUMNS.contains(&name) {
            return Some(Arc::new(UInt64Array::from(vec![0u64; self.files.len()])));
        }
        let footer = self.footer?;
        let i = trailvault_segment::schema().index_of(name).ok()?;
        let counts: UInt64Array = footer
            .iter()
            .map(|f| f.columns.get(&i).and_then(|c| c.nulls))
            .collect();
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: UInt64Array = self.footer?.iter().map(|f| f.rows).collect();
        Some(Arc::new(counts))
    }

    #[allow(clippy::mutable_key_type)] // the trait's signature: ScalarValue keys, never mutated
    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        let key = lookup_key_of(column.name())?;
        let wanted: Vec<String> = values
            .iter()
            .map(|v| indexed_value(key, v))
            .collect::<Option<_>>()?;
        let filters = match self.lookup_filters.of(key) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "lookup filters unreadable; files are opened");
                return None;
            }
        };
        // False: no value of the file is any of `wanted`. Unknown otherwise (a bloom
        // filter never proves presence).
        Some(
            self.files
                .iter()
                .map(|f| match filters.get(&f.segment.key) {
                    Some(filter) if !wanted.iter().any(|v| filter.may_contain(v)) => Some(false),
                    _ => None,
                })
                .collect(),
        )
    }
}
