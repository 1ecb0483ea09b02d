//! Reading events with their normalized form out of a data directory, for a time range.
//!
//! Two ways in:
//! - **Embedded**: open the [`Vault`] (it takes the directory's exclusive lock). Sealed
//!   segments are decoded here with every column (the vault's own segment reads carry the core
//!   columns only), and the unsealed tail comes from `read_events`.
//! - **Segments only**: when another process (a running server) holds the directory, list the
//!   Parquet files under `segments/` and decode them directly. No catalog, no tail: sealed data
//!   only, and the caller is told so through [`DataSource::note`].
//!
//! Invariants: an event is visited at most once (tail events are told apart from sealed ones
//! by their sequence number: everything sealed is at or below the sealed watermark); events
//! outside `[start_ms, end_ms)` are never visited; segments whose time span misses the range
//! are never read. Records without a normalized form are normalized on the fly when their
//! message is one CloudTrail event (events pushed through PutLogEvents); the rest are counted
//! as unnormalized and skipped.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use trailvault_model::{Normalized, StoredEvent};
use trailvault_segment::Projection;
use trailvault_store::{layout, StoreError, StreamFilter, Vault, VaultConfig};

/// Largest segment file read into memory.
pub const SEGMENT_BYTES_MAX: u64 = 4 << 30;
/// Most segment files the catalog-free listing walks (a bound on directory traversal).
pub const LISTED_SEGMENTS_MAX: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("data directory {0} does not exist")]
    NoDataDir(PathBuf),
    #[error("opening the vault: {0}")]
    Vault(#[from] StoreError),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("segment {key} is larger than {SEGMENT_BYTES_MAX} bytes")]
    TooLarge { key: String },
    #[error("segment {key}: {source}")]
    Segment {
        key: String,
        source: trailvault_segment::SegmentError,
    },
    #[error("decoding task failed: {0}")]
    Task(String),
}

/// A sealed segment file as this module sees it, from the catalog or from the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub group: String,
    /// Key relative to the data directory (`segments/group=.../....parquet`).
    pub key: String,
    pub bytes: u64,
    /// Event-time span; from the catalog, or the partition hour when listed.
    pub oldest_ms: i64,
    pub newest_ms: i64,
}

/// One event offered to a visitor.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub group: &'a str,
    pub stream: &'a str,
    pub seq: u64,
    pub timestamp_ms: i64,
    pub normalized: &'a Normalized,
    /// True when the event is still in the unsealed tail.
    pub unsealed: bool,
}

/// What a scan saw besides the events it visited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub segments_read: usize,
    pub segments_pruned: usize,
    pub events_visited: u64,
    /// Events in range that have no normalized form and could not be normalized.
    pub events_unnormalized: u64,
}

enum Access {
    Vault(Vault),
    SegmentsOnly,
}

/// An opened data directory.
pub struct DataSource {
    root: PathBuf,
    access: Access,
}

impl DataSource {
    /// Open `root` embedded, or segments-only when a server holds it.
    pub async fn open(root: &Path) -> Result<DataSource, SourceError> {
        if !root.is_dir() {
            return Err(SourceError::NoDataDir(root.to_path_buf()));
        }
        let mut cfg = VaultConfig::new(root);
        // This process decodes segments itself; the vault's cache would hold a second copy.
        cfg.segment_cache_bytes = 0;
        match Vault::open(cfg).await {
            Ok(v) => Ok(DataSource {
                root: root.to_path_buf(),
                access: Access::Vault(v),
            }),
            Err(StoreError::Unavailable(_)) => Ok(Self::segments_only(root)),
            Err(e) => Err(e.into()),
        }
    }

    /// Read `root` without the catalog or the lock: sealed segment files only.
    pub fn segments_only(root: &Path) -> DataSource {
        DataSource {
            root: root.to_path_buf(),
            access: Access::SegmentsOnly,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The vault, when the directory was opened embedded.
    pub fn vault(&self) -> Option<&Vault> {
        match &self.access {
            Access::Vault(v) => Some(v),
            Access::SegmentsOnly => None,
        }
    }

    /// What the reader should know about completeness, if anything.
    pub fn note(&self) -> Option<String> {
        match self.access {
            Access::Vault(_) => None,
            Access::SegmentsOnly => Some(format!(
                "{} is in use by another trailvault process: read its sealed segment files \
                 directly (sealed data only; events not yet sealed are missing)",
                self.root.display()
            )),
        }
    }

    /// Every sealed segment file, grouped by log group, in key order.
    pub async fn segment_files(&self) -> Result<Vec<SegmentFile>, SourceError> {
        match &self.access {
            Access::Vault(v) => {
                let mut out = Vec::new();
                for g in v.log_groups() {
                    for s in v.segments(&g.name)? {
                        out.push(SegmentFile {
                            group: g.name.clone(),
                            key: s.key.clone(),
                            bytes: s.bytes,
                            oldest_ms: s.oldest_ms,
                            newest_ms: s.newest_ms,
                        });
                    }
                }
                Ok(out)
            }
            Access::SegmentsOnly => {
                let root = self.root.clone();
                tokio::task::spawn_blocking(move || list_segment_files(&root))
                    .await
                    .map_err(|e| SourceError::Task(e.to_string()))?
            }
        }
    }

    /// Visit every normalized event with timestamp in `[start_ms, end_ms)`. Events come
    /// segment by segment (then the tail), not in global time order.
    pub async fn scan(
        &self,
        start_ms: i64,
        end_ms: i64,
        mut visit: impl FnMut(EventRef<'_>),
    ) -> Result<ScanStats, SourceError> {
        let mut stats = ScanStats::default();
        let files = self.segment_files().await?;
        for f in files {
            if f.newest_ms < start_ms || f.oldest_ms >= end_ms {
                stats.segments_pruned += 1;
                continue;
            }
            let events = self.read_segment(&f).await?;
            stats.segments_read += 1;
            for e in &events {
                offer(e, false, start_ms, end_ms, &mut stats, &mut visit);
            }
        }
        if let Access::Vault(v) = &self.access {
            for g in v.log_groups() {
                // The tail holds only events above the sealed watermark; `read_events` also
                // returns sealed events (core columns), which were visited above.
                let watermark = v
                    .segments(&g.name)?
                    .iter()
                    .map(|s| s.last_seq)
                    .max()
                    .unwrap_or(0);
                let events = v
                    .read_events(&g.name, &StreamFilter::All, Some(start_ms), Some(end_ms))
                    .await?;
                for e in events.iter().filter(|e| e.seq > watermark) {
                    offer(e, true, start_ms, end_ms, &mut stats, &mut visit);
                }
            }
        }
        Ok(stats)
    }

    async fn read_segment(&self, f: &SegmentFile) -> Result<Vec<StoredEvent>, SourceError> {
        let path = self.root.join(&f.key);
        let key = f.key.clone();
        tokio::task::spawn_blocking(move || {
            let len = std::fs::metadata(&path)
                .map_err(|source| SourceError::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            if len > SEGMENT_BYTES_MAX {
                return Err(SourceError::TooLarge { key });
            }
            let bytes = std::fs::read(&path).map_err(|source| SourceError::Io {
                path: path.clone(),
                source,
            })?;
            trailvault_segment::decode(Bytes::from(bytes), Projection::All)
                .map_err(|source| SourceError::Segment { key, source })
        })
        .await
        .map_err(|e| SourceError::Task(e.to_string()))?
    }
}

fn offer(
    e: &StoredEvent,
    unsealed: bool,
    start_ms: i64,
    end_ms: i64,
    stats: &mut ScanStats,
    visit: &mut impl FnMut(EventRef<'_>),
) {
    if e.timestamp_ms < start_ms || e.timestamp_ms >= end_ms {
        return;
    }
    let owned;
    let n = match &e.normalized {
        Some(n) => n.as_ref(),
        None => match normalize_on_the_fly(&e.message) {
            Some(n) => {
                owned = n;
                &owned
            }
            None => {
                stats.events_unnormalized += 1;
                return;
            }
        },
    };
    stats.events_visited += 1;
    visit(EventRef {
        group: &e.group,
        stream: &e.stream,
        seq: e.seq,
        timestamp_ms: e.timestamp_ms,
        normalized: n,
        unsealed,
    });
}

/// The normalized form of a raw message that is one CloudTrail event (as pushed through
/// PutLogEvents, e.g. by CloudTrail's own CloudWatch Logs delivery).
pub fn normalize_on_the_fly(message: &str) -> Option<Normalized> {
    let t = message.trim_start();
    if !t.starts_with('{') || !t.contains("\"eventVersion\"") {
        return None;
    }
    trailvault_formats::sources::cloudtrail::normalize_str(message.trim()).ok()
}

/// List `segments/group=*/year=*/month=*/day=*/hour=*/*.parquet` under `root`. The time span
/// of a listed file is its partition hour (segments hold one hour of event time).
pub fn list_segment_files(root: &Path) -> Result<Vec<SegmentFile>, SourceError> {
    let base = root.join(layout::SEGMENTS_PREFIX);
    let mut out = Vec::new();
    if !base.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![(base, Vec::<String>::new())];
    while let Some((dir, parts)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| SourceError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| SourceError::Io {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ty = entry.file_type().map_err(|source| SourceError::Io {
                path: entry.path(),
                source,
            })?;
            if ty.is_dir() && parts.len() < 5 && name.contains('=') {
                let mut p = parts.clone();
                p.push(name);
                stack.push((entry.path(), p));
            } else if ty.is_file() && parts.len() == 5 && name.ends_with(".parquet") {
                let Some(file) = segment_file_of(&parts, &name, entry.metadata().ok()) else {
                    continue;
                };
                out.push(file);
                if out.len() >= LISTED_SEGMENTS_MAX {
                    break;
                }
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn segment_file_of(
    parts: &[String],
    name: &str,
    meta: Option<std::fs::Metadata>,
) -> Option<SegmentFile> {
    let value = |i: usize, k: &str| parts[i].strip_prefix(k)?.strip_prefix('=');
    let group = layout::decode_group(value(0, "group")?);
    let num = |i: usize, k: &str| value(i, k)?.parse::<u32>().ok();
    let hour =
        chrono::NaiveDate::from_ymd_opt(num(1, "year")? as i32, num(2, "month")?, num(3, "day")?)?
            .and_hms_opt(num(4, "hour")?, 0, 0)?
            .and_utc()
            .timestamp_millis();
    Some(SegmentFile {
        group,
        key: format!("{}/{}/{name}", layout::SEGMENTS_PREFIX, parts.join("/")),
        bytes: meta.map_or(0, |m| m.len()),
        oldest_ms: hour,
        newest_ms: hour + 3_599_999,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_path_gives_group_and_hour() {
        let parts: Vec<String> = [
            "group=aws%2Fcloudtrail",
            "year=2025",
            "month=03",
            "day=15",
            "hour=09",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = segment_file_of(&parts, "1-2.parquet", None).unwrap();
        assert_eq!(f.group, "aws/cloudtrail");
        assert_eq!(f.oldest_ms, 1_742_029_200_000);
        assert_eq!(f.newest_ms - f.oldest_ms, 3_599_999);
        assert!(f
            .key
            .starts_with("segments/group=aws%2Fcloudtrail/year=2025/"));
        let bad: Vec<String> = parts
            .iter()
            .map(|p| p.replace("month=03", "month=13"))
            .collect();
        assert!(segment_file_of(&bad, "1-2.parquet", None).is_none());
    }

    #[test]
    fn only_cloudtrail_events_are_normalized_on_the_fly() {
        let ct = r#"{"eventVersion":"1.08","eventTime":"2025-03-15T09:00:00Z","eventName":"GetUser","eventSource":"iam.amazonaws.com","userIdentity":{"type":"IAMUser","userName":"alice"}}"#;
        let n = normalize_on_the_fly(ct).unwrap();
        assert_eq!(n.actor_user_name.as_deref(), Some("alice"));
        assert!(normalize_on_the_fly("plain text line").is_none());
        assert!(normalize_on_the_fly(r#"{"eventVersion": 1"#).is_none());
    }
}
