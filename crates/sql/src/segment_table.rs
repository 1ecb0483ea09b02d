//! The sealed side of the tables: a DataFusion table over exactly the segment files of the
//! engine's catalog snapshot.
//!
//! Why not a listing of `segments/`: the catalog already names every sealed file with its
//! size, group and hour, so a query neither lists directories nor parses hive paths, and a
//! file a running seal is writing (not yet committed, hence not in the snapshot) is never
//! seen, without a `seq` filter on every row. Files are immutable, so their Parquet footers
//! stay valid in the session's metadata cache for the engine's life. Before a scan, the
//! pushed-down filters drop the files that cannot match (`segment_prune`: catalog time
//! ranges, partition values and lookup filters, then footer statistics); the files left go
//! through DataFusion's own Parquet source (statistics, page index and filter pushdown).

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::catalog::Session;
use datafusion::common::{project_schema, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::Expr;
use object_store::path::Path as ObjectPath;
use object_store::ObjectMeta;

use crate::engine::{table_schema, PARTITION_COLUMNS};
use crate::error::SqlError;
use crate::segment_prune::{PruneFacts, SegmentFile};
use crate::segment_scan::SegmentRef;

/// Segment files of a snapshot as one table of [`table_schema`].
pub(crate) struct SegmentTable {
    schema: SchemaRef,
    files: Vec<SegmentFile>,
    facts: Arc<PruneFacts>,
}

impl std::fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentTable")
            .field("files", &self.files.len())
            .finish()
    }
}

impl SegmentTable {
    pub fn new<'a>(
        data_dir: &Path,
        segments: impl IntoIterator<Item = &'a SegmentRef>,
        facts: Arc<PruneFacts>,
    ) -> Result<SegmentTable, SqlError> {
        let root = std::path::absolute(data_dir).map_err(|e| SqlError::Io {
            path: data_dir.to_path_buf(),
            source: e,
        })?;
        let mut files = Vec::new();
        for s in segments {
            let path = root.join(&s.key);
            let location = ObjectPath::from_absolute_path(&path)
                .map_err(|e| SqlError::Execution(format!("{}: {e}", path.display())))?;
            // A segment holds one hour of event time (the hour in its key).
            let hour: DateTime<Utc> =
                DateTime::from_timestamp_millis(s.oldest_ms).unwrap_or_default();
            let file = PartitionedFile::new_from_meta(ObjectMeta {
                location,
                // Sealed files never change: a fixed modification time keeps cached
                // footers valid.
                last_modified: DateTime::<Utc>::UNIX_EPOCH,
                size: s.bytes,
                e_tag: None,
                version: None,
            })
            .with_partition_values(vec![
                ScalarValue::Utf8(Some(s.group.clone())),
                ScalarValue::Int32(Some(hour.year())),
                ScalarValue::Int32(Some(hour.month() as i32)),
                ScalarValue::Int32(Some(hour.day() as i32)),
                ScalarValue::Int32(Some(hour.hour() as i32)),
            ]);
            files.push(SegmentFile {
                segment: s.clone(),
                file,
            });
        }
        Ok(SegmentTable {
            schema: table_schema(),
            files,
            facts,
        })
    }

    /// `n` groups of about equal bytes, one per partition of the scan.
    fn file_groups(files: &[&SegmentFile], n: usize) -> Vec<FileGroup> {
        let mut files: Vec<PartitionedFile> = files.iter().map(|f| f.file.clone()).collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); n.max(1)];
        for f in files {
            let lightest = groups
                .iter_mut()
                .min_by_key(|(bytes, _)| *bytes)
                .expect("at least one group");
            lightest.0 += f.object_meta.size;
            lightest.1.push(f);
        }
        groups
            .into_iter()
            .filter(|(_, files)| !files.is_empty())
            .map(|(_, files)| FileGroup::new(files))
            .collect()
    }
}

#[async_trait]
impl TableProvider for SegmentTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let files = self
            .facts
            .prune(state, &self.schema, &self.files, filters)
            .await?;
        if files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(project_schema(
                &self.schema,
                projection,
            )?)));
        }
        let partition_fields: Vec<FieldRef> = PARTITION_COLUMNS
            .iter()
            .map(|&c| {
                let ty = if c == "group" {
                    DataType::Utf8
                } else {
                    DataType::Int32
                };
                Arc::new(Field::new(c, ty, false))
            })
            .collect();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(
            TableSchema::builder(trailvault_segment::schema())
                .with_table_partition_cols(partition_fields)
                .build(),
        );
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
            .with_file_groups(Self::file_groups(
                &files,
                state.config().target_partitions(),
            ))
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }

    /// Filters are pushed into the Parquet scan by DataFusion's optimizer (statistics,
    /// page index, row filters) and checked again above it.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}
