//! The catalog: log groups, streams, tags, retention, the list of sealed segments and the
//! sealed watermark.
//!
//! [`Catalog`] is the interface; [`SqliteCatalog`] is the embedded default (one file,
//! `catalog.sqlite`, WAL journal, `synchronous=FULL`). A shared PostgreSQL catalog implements
//! the same trait. Invariants:
//! - A segment is *sealed* exactly when its row is committed here; the same transaction
//!   advances the watermark, so "sealed" and "no longer needed in the WAL" change together.
//! - Rows in `segments` are never updated or deleted by any code path (retention expiry will
//!   add its own records, not remove these).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogGroupMeta {
    pub name: String,
    pub created_ms: i64,
    pub retention_days: Option<u32>,
    pub kms_key_id: Option<String>,
    pub log_group_class: String,
    pub deletion_protection: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub group: String,
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
    pub event_count: u64,
    pub stored_bytes: u64,
}

/// Where one stream's events sit inside a segment, for pruning reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRange {
    pub stream: String,
    pub event_count: u64,
    pub oldest_ms: i64,
    pub newest_ms: i64,
}

/// A sealed segment as the catalog records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Object key relative to the storage root, e.g.
    /// `segments/group=app%2Fweb/year=2026/month=11/day=22/hour=03/<first>-<last>.parquet`.
    pub key: String,
    pub group: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub event_count: u64,
    pub oldest_ms: i64,
    pub newest_ms: i64,
    /// Size of the stored file.
    pub bytes: u64,
    /// Sum of the raw message bytes it holds (for the sealed-per-raw-byte ratio).
    pub raw_bytes: u64,
    /// Hex SHA-256 of the stored file bytes.
    pub sha256: String,
    /// Hex RFC 6962 Merkle root over the events' canonical leaves.
    pub merkle_root: String,
    pub sealed_at_ms: i64,
    pub streams: Vec<StreamRange>,
}

/// Everything the vault loads at start.
#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    pub groups: Vec<LogGroupMeta>,
    pub streams: Vec<StreamMeta>,
    pub segments: Vec<SegmentMeta>,
    /// Every sequence number at or below this is in a sealed segment.
    pub sealed_through_seq: u64,
    pub seal_intents: Vec<SealIntent>,
}

/// Written before a seal writes any file, removed when the seal commits. One left behind
/// names the files an interrupted seal may have written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealIntent {
    pub id: i64,
    pub keys: Vec<String>,
}

pub trait Catalog: Send + Sync {
    fn load(&self) -> Result<CatalogSnapshot>;
    fn create_group(&self, group: &LogGroupMeta) -> Result<()>;
    fn delete_group(&self, name: &str) -> Result<()>;
    fn create_stream(&self, stream: &StreamMeta) -> Result<()>;
    fn delete_stream(&self, group: &str, name: &str) -> Result<()>;
    fn set_retention(&self, group: &str, days: Option<u32>) -> Result<()>;
    fn set_tags(&self, group: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    fn begin_seal(&self, keys: &[String]) -> Result<i64>;
    /// Atomically: record the segments, update stream statistics (creating a stream not yet
    /// in the catalog: an import creates its streams with their first events), advance the
    /// watermark and drop the intent.
    fn commit_seal(
        &self,
        intent_id: i64,
        segments: &[SegmentMeta],
        streams: &[StreamMeta],
        sealed_through_seq: u64,
    ) -> Result<()>;
    /// Forget an intent whose files were dealt with during recovery.
    fn clear_intent(&self, intent_id: i64) -> Result<()>;
    fn get_setting(&self, key: &str) -> Result<Option<String>>;
    fn put_setting(&self, key: &str, value: &str) -> Result<()>;
    /// Store lookup filters (derived data, written after the seal committed); replaces the
    /// filter already stored for the same segment and attribute.
    fn put_lookup_filters(&self, filters: &[SegmentLookupFilter]) -> Result<()>;
    /// Keys of the segments that have lookup filters.
    fn segments_with_lookup_filters(&self) -> Result<HashSet<String>>;
    /// Every segment's filter for one attribute (`LookupKey::as_str`), as (segment key,
    /// encoded filter).
    fn lookup_filters(&self, attribute: &str) -> Result<Vec<(String, Vec<u8>)>>;
}

/// One segment's lookup filter for one attribute (`trailvault_segment::lookup_index`).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentLookupFilter {
    pub segment_key: String,
    pub attribute: &'static str,
    /// `LookupFilter::encode`, format `LOOKUP_FILTER_FORMAT`.
    pub filter: Vec<u8>,
}

/// The filters of one attribute, read from an open catalog connection (read-only readers
/// of `catalog.sqlite` use it too). A catalog created before the filters existed has none.
pub fn query_lookup_filters(conn: &Connection, attribute: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut stmt = match conn.prepare(
        "SELECT segment_key, filter FROM lookup_filters WHERE attribute = ?1 AND format = ?2",
    ) {
        Ok(s) => s,
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e.into()),
    };
    let rows = stmt.query_map(
        params![
            attribute,
            trailvault_segment::lookup_index::LOOKUP_FILTER_FORMAT
        ],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_groups (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    retention_days INTEGER,
    kms_key_id TEXT,
    log_group_class TEXT NOT NULL,
    deletion_protection INTEGER NOT NULL,
    tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_streams (
    log_group TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_event_ms INTEGER,
    last_event_ms INTEGER,
    last_ingestion_ms INTEGER,
    event_count INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (log_group, name)
);
CREATE TABLE IF NOT EXISTS segments (
    key TEXT PRIMARY KEY,
    log_group TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    oldest_ms INTEGER NOT NULL,
    newest_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    raw_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    merkle_root TEXT NOT NULL,
    sealed_at_ms INTEGER NOT NULL,
    streams TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_by_group ON segments (log_group, oldest_ms);
CREATE TABLE IF NOT EXISTS seal_intents (id INTEGER PRIMARY KEY AUTOINCREMENT, keys TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Derived from the segments (rebuildable), never evidence: see put_lookup_filters.
CREATE TABLE IF NOT EXISTS lookup_filters (
    attribute TEXT NOT NULL,
    segment_key TEXT NOT NULL,
    format INTEGER NOT NULL,
    filter BLOB NOT NULL,
    PRIMARY KEY (attribute, segment_key)
) WITHOUT ROWID;
";

const SCHEMA_VERSION: &str = "1";

/// The embedded catalog.
pub struct SqliteCatalog {
    conn: Mutex<Connection>,
}

impl SqliteCatalog {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let cat = SqliteCatalog {
            conn: Mutex::new(conn),
        };
        match cat.get_setting("schema_version")? {
            None => cat.put_setting("schema_version", SCHEMA_VERSION)?,
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(StoreError::Corrupt {
                    file: path.to_path_buf(),
                    offset: 0,
                    what: format!("catalog schema version {v} is not supported"),
                })
            }
        }
        Ok(cat)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Catalog(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

impl Catalog for SqliteCatalog {
    fn load(&self) -> Result<CatalogSnapshot> {
        let sealed_through_seq = self
            .get_setting("sealed_through_seq")?
            .map(|v| v.parse::<u64>())
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                file: "catalog.sqlite".into(),
                offset: 0,
                what: format!("sealed_through_seq is not a number: {e}"),
            })?
            .unwrap_or(0);
        let mut snap = CatalogSnapshot {
            sealed_through_seq,
            ..CatalogSnapshot::default()
        };
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, created_ms, retention_days, kms_key_id, log_group_class,
                    deletion_protection, tags FROM log_groups ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                LogGroupMeta {
                    name: r.get(0)?,
                    created_ms: r.get(1)?,
                    retention_days: r.get(2)?,
                    kms_key_id: r.get(3)?,
                    log_group_class: r.get(4)?,
                    deletion_protection: r.get(5)?,
                    tags: BTreeMap::new(),
                },
                r.get::<_, String>(6)?,
            ))
        })?;
        for row in rows {
            let (mut g, tags) = row?;
            g.tags = serde_json::from_str(&tags).map_err(json_err)?;
            snap.groups.push(g);
        }
        let mut stmt = conn.prepare(
            "SELECT log_group, name, created_ms, first_event_ms, last_event_ms,
                    last_ingestion_ms, event_count, stored_bytes FROM log_streams",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StreamMeta {
                group: r.get(0)?,
                name: r.get(1)?,
                created_ms: r.get(2)?,
                first_event_ms: r.get(3)?,
                last_event_ms: r.get(4)?,
                last_ingestion_ms: r.get(5)?,
                event_count: r.get::<_, i64>(6)? as u64,
                stored_bytes: r.get::<_, i64>(7)? as u64,
            })
        })?;
        for row in rows {
            snap.streams.push(row?);
        }
        let mut stmt = conn.prepare(
            "SELECT key, log_group, first_seq, last_seq, event_count, oldest_ms, newest_ms, bytes,
                    raw_bytes, sha256, merkle_root, sealed_at_ms, streams
             FROM segments ORDER BY first_seq, key",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                SegmentMeta {
                    key: r.get(0)?,
                    group: r.get(1)?,
                    first_seq: r.get::<_, i64>(2)? as u64,
                    last_seq: r.get::<_, i64>(3)? as u64,
                    event_count: r.get::<_, i64>(4)? as u64,
                    oldest_ms: r.get(5)?,
                    newest_ms: r.get(6)?,
                    bytes: r.get::<_, i64>(7)? as u64,
                    raw_bytes: r.get::<_, i64>(8)? as u64,
                    sha256: r.get(9)?,
                    merkle_root: r.get(10)?,
                    sealed_at_ms: r.get(11)?,
                    streams: Vec::new(),
                },
                r.get::<_, String>(12)?,
            ))
        })?;
        for row in rows {
            let (mut s, streams) = row?;
            s.streams = serde_json::from_str(&streams).map_err(json_err)?;
            snap.segments.push(s);
        }
        let mut stmt = conn.prepare("SELECT id, keys FROM seal_intents ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, keys) = row?;
            snap.seal_intents.push(SealIntent {
                id,
                keys: serde_json::from_str(&keys).map_err(json_err)?,
            });
        }
        Ok(snap)
    }

    fn create_group(&self, g: &LogGroupMeta) -> Result<()> {
        let tags = serde_json::to_string(&g.tags).map_err(json_err)?;
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO log_groups VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                g.name,
                g.created_ms,
                g.retention_days,
                g.kms_key_id,
                g.log_group_class,
                g.deletion_protection,
                tags
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(
                "The specified log group already exists".into(),
            ));
        }
        Ok(())
    }

    fn delete_group(&self, name: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM log_streams WHERE log_group = ?1", [name])?;
        tx.execute("DELETE FROM log_groups WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }

    fn create_stream(&self, s: &StreamMeta) -> Result<()> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO log_streams (log_group, name, created_ms) VALUES (?1, ?2, ?3)",
            params![s.group, s.name, s.created_ms],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(
                "The specified log stream already exists".into(),
            ));
        }
        Ok(())
    }

    fn delete_stream(&self, group: &str, name: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM log_streams WHERE log_group = ?1 AND name = ?2",
            [group, name],
        )?;
        Ok(())
    }

    fn set_retention(&self, group: &str, days: Option<u32>) -> Result<()> {
        self.conn().execute(
            "UPDATE log_groups SET retention_days = ?2 WHERE name = ?1",
            params![group, days],
        )?;
        Ok(())
    }

    fn set_tags(&self, group: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags = serde_json::to_string(tags).map_err(json_err)?;
        self.conn().execute(
            "UPDATE log_groups SET tags = ?2 WHERE name = ?1",
            params![group, tags],
        )?;
        Ok(())
    }

    fn begin_seal(&self, keys: &[String]) -> Result<i64> {
        let keys = serde_json::to_string(keys).map_err(json_err)?;
        let conn = self.conn();
        conn.execute("INSERT INTO seal_intents (keys) VALUES (?1)", [keys])?;
        Ok(conn.last_insert_rowid())
    }

    fn commit_seal(
        &self,
        intent_id: i64,
        segments: &[SegmentMeta],
        streams: &[StreamMeta],
        sealed_through_seq: u64,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for s in segments {
            let streams = serde_json::to_string(&s.streams).map_err(json_err)?;
            tx.execute(
                "INSERT INTO segments VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    s.key,
                    s.group,
                    s.first_seq as i64,
                    s.last_seq as i64,
                    s.event_count as i64,
                    s.oldest_ms,
                    s.newest_ms,
                    s.bytes as i64,
                    s.raw_bytes as i64,
                    s.sha256,
                    s.merkle_root,
                    s.sealed_at_ms,
                    streams
                ],
            )?;
        }
        for s in streams {
            tx.execute(
                "INSERT INTO log_streams (log_group, name, created_ms, first_event_ms,
                        last_event_ms, last_ingestion_ms, event_count, stored_bytes)
                 VALUES (?1, ?2, ?8, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (log_group, name) DO UPDATE SET first_event_ms = ?3,
                        last_event_ms = ?4, last_ingestion_ms = ?5, event_count = ?6,
                        stored_bytes = ?7",
                params![
                    s.group,
                    s.name,
                    s.first_event_ms,
                    s.last_event_ms,
                    s.last_ingestion_ms,
                    s.event_count as i64,
                    s.stored_bytes as i64,
                    s.created_ms
                ],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO settings VALUES ('sealed_through_seq', ?1)",
            [sealed_through_seq.to_string()],
        )?;
        tx.execute("DELETE FROM seal_intents WHERE id = ?1", [intent_id])?;
        tx.commit()?;
        Ok(())
    }

    fn clear_intent(&self, intent_id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM seal_intents WHERE id = ?1", [intent_id])?;
        Ok(())
    }

    fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO settings VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(())
    }

    fn put_lookup_filters(&self, filters: &[SegmentLookupFilter]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT OR REPLACE INTO lookup_filters (attribute, segment_key, format, filter) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for f in filters {
                stmt.execute(params![
                    f.attribute,
                    f.segment_key,
                    trailvault_segment::lookup_index::LOOKUP_FILTER_FORMAT,
                    f.filter
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn segments_with_lookup_filters(&self) -> Result<HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT DISTINCT segment_key FROM lookup_filters")?;
        let keys = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(keys.collect::<std::result::Result<_, _>>()?)
    }

    fn lookup_filters(&self, attribute: &str) -> Result<Vec<(String, Vec<u8>)>> {
        query_lookup_filters(&self.conn(), attribute)
    }
}
