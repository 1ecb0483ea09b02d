//! Persistent monitoring state in one SQLite file the caller names: 1-minute metric data,
//! alarms with their state and history, action targets, deliveries, subscription checkpoints.
//!
//! On-disk format: table `meta` holds `format_version` (currently 1); opening a file with
//! another version fails loudly instead of guessing. Metric rows are keyed by
//! (namespace, name, dimensions as canonical JSON, minute) and merged on write, so writing the
//! same minute twice adds to it. Data older than [`METRIC_RETENTION_MS`] (15 months) is
//! removed by [`MonitorDb::prune`]; alarm history older than 14 days likewise.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::metric::{Aggregate, MetricDatum, MetricKey, Statistic, VALUES_PER_DATUM_MAX};

/// Metric data is kept at least this long (15 months of 31 days).
pub const METRIC_RETENTION_MS: i64 = 465 * 24 * 3_600_000;
/// Alarm history is kept this long, like CloudWatch.
pub const ALARM_HISTORY_RETENTION_MS: i64 = 14 * 24 * 3_600_000;
const FORMAT_VERSION: &str = "1";
/// Most datapoints one query returns (bounded work per API call).
pub const QUERY_POINTS_MAX: usize = 100_800;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("monitor database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("monitor database has format version {found}, expected {FORMAT_VERSION}")]
    Version { found: String },
    #[error("monitor database row is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
}

/// The shared database handle. Cheap to clone; all access is serialised by one mutex
/// (monitoring writes are small and batched).
#[derive(Clone)]
pub struct MonitorDb {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for MonitorDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MonitorDb")
    }
}

/// One point of a statistic over a period.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatPoint {
    /// Period start, epoch ms.
    pub timestamp_ms: i64,
    pub value: f64,
    pub sample_count: f64,
}

/// A metric query: one series, a time range `[start_ms, end_ms)`, a period and a statistic.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub key: MetricKey,
    pub start_ms: i64,
    pub end_ms: i64,
    pub period_s: u32,
    pub statistic: Statistic,
}

impl MonitorDb {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<MonitorDb, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'format_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('format_version', ?1)",
                    [FORMAT_VERSION],
                )?;
            }
            Some(v) if v == FORMAT_VERSION => {}
            Some(found) => return Err(StoreError::Version { found }),
        }
        Ok(MonitorDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Merges per-minute data into the store.
    pub fn put_metric_data(&self, data: &[MetricDatum]) -> Result<(), StoreError> {
        if data.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut get = tx.prepare_cached(
                "SELECT sum, count, min, max, vals FROM metric_minutes WHERE namespace=?1 AND name=?2 AND dims=?3 AND minute_ms=?4",
            )?;
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO metric_minutes(namespace, name, dims, minute_ms, sum, count, min, max, vals, unit) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
            )?;
            for d in data {
                let dims = dims_json(&d.key.dimensions);
                let existing = get
                    .query_row(
                        params![d.key.namespace, d.key.name, dims, d.minute_ms],
                        |r| {
                            Ok((
                                Aggregate {
                                    sum: r.get(0)?,
                                    sample_count: r.get(1)?,
                                    min: r.get(2)?,
                                    max: r.get(3)?,
                                },
                                r.get::<_, String>(4)?,
                            ))
                        },
                    )
                    .optional()?;
                let (agg, mut vals) = match existing {
                    Some((mut a, v)) => {
                        a.merge(&d.aggregate);
                        (a, parse_vals(&v)?)
                    }
                    None => (d.aggregate, Vec::new()),
                };
                for v in &d.values {
                    if vals.len() >= VALUES_PER_DATUM_MAX {
                        break;
                    }
                    vals.push(*v);
                }
                let vals_text =
                    serde_json::to_string(&vals).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                put.execute(params![
                    d.key.namespace,
                    d.key.name,
                    dims,
                    d.minute_ms,
                    agg.sum,
                    agg.sample_count,
                    agg.min,
                    agg.max,
                    vals_text,
                    d.unit
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The statistic per period over `[start_ms, end_ms)`; periods without data are absent.
    /// Periods under 60 s see each minute's data at the minute's start (data is kept per minute).
    pub fn query_metric(&self, q: &MetricQuery) -> Result<Vec<StatPoint>, StoreError> {
        if q.period_s == 0 {
            return Err(StoreError::Invalid("period must be positive".into()));
        }
        let period_ms = i64::from(q.period_s) * 1000;
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT minute_ms, sum, count, min, max, vals FROM metric_minutes WHERE namespace=?1 AND name=?2 AND dims=?3 AND minute_ms>=?4 AND minute_ms<?5 ORDER BY minute_ms LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![
                q.key.namespace,
                q.key.name,
                dims_json(&q.key.dimensions),
                q.start_ms,
                q.end_ms,
                QUERY_POINTS_MAX as i64
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Aggregate {
                        sum: r.get(1)?,
                        sample_count: r.get(2)?,
                        min: r.get(3)?,
                        max: r.get(4)?,
                    },
                    r.get::<_, String>(5)?,
                ))
            },
        )?;
        let mut buckets: BTreeMap<i64, (Aggregate, Vec<f64>)> = BTreeMap::new();
        for row in rows {
            let (minute, agg, vals) = row?;
            let bucket = minute.div_euclid(period_ms) * period_ms;
            let vals = if matches!(q.statistic, Statistic::Percentile(_)) {
                parse_vals(&vals)?
            } else {
                Vec::new()
            };
            match buckets.get_mut(&bucket) {
                Some((a, v)) => {
                    a.merge(&agg);
                    v.extend(vals);
                }
                None => {
                    buckets.insert(bucket, (agg, vals));
                }
            }
        }
        Ok(buckets
            .into_iter()
            .filter_map(|(ts, (agg, mut vals))| {
                let value = q.statistic.apply(&agg, &mut vals)?;
                Some(StatPoint {
                    timestamp_ms: ts,
                    value,
                    sample_count: agg.sample_count,
                })
            })
            .collect())
    }

    /// Every series stored, optionally within one namespace (ListMetrics).
    pub fn list_metrics(&self, namespace: Option<&str>) -> Result<Vec<MetricKey>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT namespace, name, dims FROM metric_minutes WHERE (?1 IS NULL OR namespace = ?1) ORDER BY namespace, name, dims LIMIT 10000",
        )?;
        let rows = stmt.query_map(params![namespace], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (namespace, name, dims) = row?;
            let dimensions: BTreeMap<String, String> = serde_json::from_str(&dims)
                .map_err(|e| StoreError::Corrupt(format!("dimensions {dims:?}: {e}")))?;
            out.push(MetricKey {
                namespace,
                name,
                dimensions,
            });
        }
        Ok(out)
    }

    /// Removes metric data past retention and alarm history older than 14 days.
    pub fn prune(&self, now_ms: i64) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "DELETE FROM metric_minutes WHERE minute_ms < ?1",
            [now_ms - METRIC_RETENTION_MS],
        )?;
        conn.execute(
            "DELETE FROM alarm_history WHERE ts_ms < ?1",
            [now_ms - ALARM_HISTORY_RETENTION_MS],
        )?;
        Ok(())
    }

    /// A small key-value table for checkpoints and configuration (bounded by callers).
    pub fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR REPLACE INTO kv(key, value) VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(())
    }

    pub fn kv_delete(&self, key: &str) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute("DELETE FROM kv WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Keys starting with `prefix`, with their values, in key order.
    pub fn kv_scan(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT key, value FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )?;
        let rows = stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn dims_json(d: &BTreeMap<String, String>) -> String {
    // BTreeMap serialises in key order, so equal maps give equal text.
    serde_json::to_string(d).unwrap_or_else(|_| "{}".into())
}

fn parse_vals(text: &str) -> Result<Vec<f64>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("values: {e}")))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metric_minutes(
    namespace TEXT NOT NULL, name TEXT NOT NULL, dims TEXT NOT NULL, minute_ms INTEGER NOT NULL,
    sum REAL NOT NULL, count REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    vals TEXT NOT NULL, unit TEXT,
    PRIMARY KEY(namespace, name, dims, minute_ms)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metric_minutes_time ON metric_minutes(minute_ms);
CREATE TABLE IF NOT EXISTS alarms(
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
    reason_data TEXT, state_updated_ms INTEGER NOT NULL, config_updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_history(
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    item_type TEXT NOT NULL, summary TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alarm_history_name ON alarm_history(name, ts_ms);
CREATE TABLE IF NOT EXISTS deliveries(
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, alarm TEXT NOT NULL,
    target TEXT NOT NULL, attempt INTEGER NOT NULL, ok INTEGER NOT NULL, detail TEXT NOT NULL);
";

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MetricKey {
        MetricKey {
            namespace: "ns".into(),
            name: "m".into(),
            dimensions: BTreeMap::new(),
        }
    }

    fn datum(minute_ms: i64, v: f64) -> MetricDatum {
        MetricDatum {
            key: key(),
            minute_ms,
            aggregate: Aggregate::of(v),
            values: vec![v],
            unit: None,
        }
    }

    #[test]
    fn merges_minutes_and_queries_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let db = MonitorDb::open(&path).unwrap();
        db.put_metric_data(&[datum(0, 1.0), datum(60_000, 5.0)])
            .unwrap();
        db.put_metric_data(&[datum(0, 3.0), datum(600_000, 9.0)])
            .unwrap();
        drop(db);
        let db = MonitorDb::open(&path).unwrap();
        let q = |statistic, period_s| MetricQuery {
            key: key(),
            start_ms: 0,
            end_ms: 3_600_000,
            period_s,
            statistic,
        };
        let sums = db.query_metric(&q(Statistic::Sum, 60)).unwrap();
        assert_eq!(
            sums.iter()
                .map(|p| (p.timestamp_ms, p.value))
                .collect::<Vec<_>>(),
            vec![(0, 4.0), (60_000, 5.0), (600_000, 9.0)]
        );
        let five = db.query_metric(&q(Statistic::Sum, 300)).unwrap();
        assert_eq!(
            five.iter().map(|p| p.value).collect::<Vec<_>>(),
            vec![9.0, 9.0]
        );
        assert_eq!(
            db.query_metric(&q(Statistic::SampleCount, 300)).unwrap()[0].value,
            3.0
        );
        assert_eq!(
            db.query_metric(&q(Statistic::Average, 300)).unwrap()[0].value,
            3.0
        );
        assert_eq!(
            db.query_metric(&q(Statistic::Minimum, 300)).unwrap()[0].value,
            1.0
        );
        assert_eq!(
            db.query_metric(&q(Statistic::Maximum, 300)).unwrap()[0].value,
            5.0
        );
        assert_eq!(
            db.query_metric(&q(Statistic::Percentile(50.0), 300))
                .unwrap()[0]
                .value,
            3.0
        );
        assert_eq!(db.list_metrics(Some("ns")).unwrap(), vec![key()]);
        db.prune(METRIC_RETENTION_MS + 60_001).unwrap();
        assert_eq!(db.query_metric(&q(Statistic::Sum, 60)).unwrap().len(), 1);
    }
}
