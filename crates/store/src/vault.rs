//! The vault engine: accepts batches, makes them durable, serves reads over sealed segments
//! and the unsealed tail, and seals the tail into segments.
//!
//! Data directory:
//! ```text
//! LOCK              held (flock) by the one process that owns the directory
//! catalog.sqlite    groups, streams, tags, retention, sealed segments, watermark
//! wal/              write-ahead log (see `wal`)
//! segments/...      sealed Parquet segments (see `layout`), through `Storage`
//! orphans/...       files of an interrupted seal, moved aside at recovery
//! ```
//!
//! Invariants:
//! - Nothing is acknowledged before it is durable: `put_log_events` returns only after the
//!   WAL write holding the batch was synced; `seal_imported` returns only after its segment
//!   files were synced and their catalog commit done.
//! - Reads see one consistent snapshot: the sealed-segment list and the frozen tails change
//!   together under one lock, so an event is read exactly once whether or not a seal ran.
//! - Sealed segments hold only seqs below every seq in the tail: the sealer seals whole
//!   frozen tails, and `seal_imported` reserves seqs only while the tail is empty.
//! - No code path rewrites or deletes a sealed segment; WAL files are removed only when every
//!   event in them is below the sealed watermark committed in the catalog.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use trailvault_model::limits::{
    BATCH_BYTES_MAX, BATCH_EVENTS_MAX, BATCH_SPAN_MS_MAX, EVENT_AGE_MS_MAX, EVENT_BYTES_MAX,
    EVENT_FUTURE_MS_MAX, EVENT_OVERHEAD_BYTES,
};
use trailvault_model::{Normalized, StoredEvent};

use crate::catalog::{
    Catalog, LogGroupMeta, SegmentLookupFilter, SegmentMeta, SqliteCatalog, StreamMeta, StreamRange,
};
use crate::error::{Result, StoreError};
use crate::layout;
use crate::memtable::Memtable;
use crate::storage::Storage;
use crate::wal::{self, WalBatch, WalEvent, WalWriter};

#[derive(Clone)]
pub struct VaultConfig {
    pub data_dir: PathBuf,
    /// Seal the tail once its raw message bytes reach this.
    pub seal_bytes: usize,
    /// Seal the tail once its oldest event has waited this long.
    pub seal_age: Duration,
    /// Decoded segments kept in memory for reads.
    pub segment_cache_bytes: usize,
}

impl VaultConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        VaultConfig {
            data_dir: data_dir.into(),
            seal_bytes: 64 * 1024 * 1024,
            seal_age: Duration::from_secs(60),
            segment_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One event offered to the vault.
#[derive(Debug, Clone, PartialEq)]
pub struct InputEvent {
    pub timestamp_ms: i64,
    pub message: String,
    pub normalized: Option<Box<Normalized>>,
}

/// How strictly a batch is checked.
#[derive(Debug, Clone, Copy)]
pub struct PutOptions {
    /// The push API's rules: chronological order, 24 h span, 14-day / 2-hour window,
    /// retention. Importing history turns them off (the batch is then sorted instead).
    pub cloudwatch_rules: bool,
    pub now_ms: i64,
}

impl PutOptions {
    pub fn api(now_ms: i64) -> Self {
        PutOptions {
            cloudwatch_rules: true,
            now_ms,
        }
    }
    pub fn import(now_ms: i64) -> Self {
        PutOptions {
            cloudwatch_rules: false,
            now_ms,
        }
    }
}

/// One stream's events for [`Vault::seal_imported`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedStream {
    pub group: String,
    pub stream: String,
    pub events: Vec<InputEvent>,
}

/// Indices of skipped events, as CloudWatch reports them in `rejectedLogEventsInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectedInfo {
    pub too_new_start_index: Option<usize>,
    pub too_old_end_index: Option<usize>,
    pub expired_end_index: Option<usize>,
}

impl RejectedInfo {
    pub fn is_empty(&self) -> bool {
        *self == RejectedInfo::default()
    }
}

#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The events as stored (empty when every event was rejected).
    pub stored: Arc<Vec<StoredEvent>>,
    pub rejected: RejectedInfo,
}

/// Which streams of a group a read covers.
#[derive(Debug, Clone)]
pub enum StreamFilter {
    All,
    One(String),
    Names(HashSet<String>),
    Prefix(String),
}

impl StreamFilter {
    pub fn accepts(&self, stream: &str) -> bool {
        match self {
            StreamFilter::All => true,
            StreamFilter::One(s) => s == stream,
            StreamFilter::Names(set) => set.contains(stream),
            StreamFilter::Prefix(p) => stream.starts_with(p.as_str()),
        }
    }
}

/// What a seal did.
#[derive(Debug, Clone, Default)]
pub struct SealReport {
    pub segments: Vec<SegmentMeta>,
    pub events: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

struct GroupState {
    meta: LogGroupMeta,
    /// Statistics including the unsealed tail.
    streams: BTreeMap<String, StreamMeta>,
    /// Statistics of sealed events only: what the catalog holds.
    sealed_streams: BTreeMap<String, StreamMeta>,
    segments: Vec<Arc<SegmentMeta>>,
}

struct State {
    groups: BTreeMap<String, GroupState>,
    active: Memtable,
    frozen: Vec<Arc<Memtable>>,
    writer_failed: Option<String>,
}

enum WriterMsg {
    Append {
        group: String,
        stream: String,
        events: Vec<WalEvent>,
        reply: oneshot::Sender<Result<Arc<Vec<StoredEvent>>>>,
    },
    Freeze {
        reply: oneshot::Sender<Result<Option<Arc<Memtable>>>>,
    },
    /// Reserve `events` sequence numbers for [`Vault::seal_imported`], only while the tail
    /// (active and frozen) is empty; answers the first reserved number, or `None` when the
    /// tail holds events (which must be sealed first: sealed segments hold only seqs below
    /// every tail seq).
    Reserve {
        events: u64,
        reply: oneshot::Sender<Result<Option<u64>>>,
    },
}

/// Queue depth in front of the WAL writer: bounds memory; senders wait when it is full.
const WRITER_QUEUE_MAX: usize = 4096;
/// Most batches folded into one group commit.
const GROUP_COMMIT_BATCHES_MAX: usize = 2048;
/// Events per segment of an import, at most: an hour with more is cut into several
/// segments (about 20 MB of CloudTrail records each), which the cores encode in parallel.
const IMPORT_SEGMENT_EVENTS_MAX: usize = 16_384;
/// Times [`Vault::seal_imported`] seals the tail to get it empty before giving up.
const SEAL_IMPORTED_ATTEMPTS_MAX: usize = 3;
/// Segment files of one seal written (and fsync'd) at once.
const SEGMENT_PUTS_CONCURRENT: usize = 4;

struct Inner {
    cfg: VaultConfig,
    catalog: Box<dyn Catalog>,
    storage: Storage,
    state: RwLock<State>,
    writer: SyncSender<WriterMsg>,
    cache: SegmentCache,
    /// Seals take turns to reserve sequence numbers and encode.
    seal_lock: tokio::sync::Mutex<()>,
    /// ... and to write and commit, in the same order: a seal takes this before it releases
    /// `seal_lock`. An import's seal releases `seal_lock` once encoded, so the next seal
    /// encodes while this one writes, syncs and commits (both cores stay busy).
    commit_lock: tokio::sync::Mutex<()>,
    _lock_file: File,
}

/// A handle to an open vault; cheap to clone.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn validate_group_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= trailvault_model::limits::NAME_LEN_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b));
    if !ok {
        return Err(StoreError::InvalidParameter(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+ and have length between 1 and 512"
        )));
    }
    Ok(())
}

fn validate_stream_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= trailvault_model::limits::NAME_LEN_MAX
        && !name.contains([':', '*']);
    if !ok {
        return Err(StoreError::InvalidParameter(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]* and have length between 1 and 512"
        )));
    }
    Ok(())
}

fn group_not_found() -> StoreError {
    StoreError::NotFound("The specified log group does not exist.".into())
}

fn stream_not_found() -> StoreError {
    StoreError::NotFound("The specified log stream does not exist.".into())
}

impl Vault {
    /// Open (or create) the vault in `cfg.data_dir`, recovering from the WAL.
    pub async fn open(cfg: VaultConfig) -> Result<Vault> {
        let dir = cfg.data_dir.clone();
        std::fs::create_dir_all(dir.join("wal")).map_err(|e| StoreError::io(&dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        // A vault dropped a moment ago may still be releasing the lock: wait briefly.
        let mut locked = lock_file.try_lock().is_ok();
        for _ in 0..40 {
            if locked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            locked = lock_file.try_lock().is_ok();
        }
        if !locked {
            return Err(StoreError::Unavailable(format!(
                "data directory {} is in use by another trailvault process",
                dir.display()
            )));
        }
        let catalog: Box<dyn Catalog> = Box::new(SqliteCatalog::open(&dir.join("catalog.sqlite"))?);
        let storage = Storage::local(&dir)?;
        Self::open_with(cfg, catalog, storage, lock_file).await
    }

    async fn open_with(
        cfg: VaultConfig,
        catalog: Box<dyn Catalog>,
        storage: Storage,
        lock_file: File,
    ) -> Result<Vault> {
        let snap = catalog.load()?;
        for intent in &snap.seal_intents {
            for key in &intent.keys {
                if storage.exists(key).await? {
                    let to = storage.move_to_orphans(key).await?;
                    tracing::warn!(%key, moved_to = %to, "moved a file of an interrupted seal aside");
                }
            }
            catalog.clear_intent(intent.id)?;
        }
        let mut groups: BTreeMap<String, GroupState> = snap
            .groups
            .into_iter()
            .map(|meta| {
                (
                    meta.name.clone(),
                    GroupState {
                        meta,
                        streams: BTreeMap::new(),
                        sealed_streams: BTreeMap::new(),
                        segments: Vec::new(),
                    },
                )
            })
            .collect();
        for s in snap.streams {
            if let Some(g) = groups.get_mut(&s.group) {
                g.sealed_streams.insert(s.name.clone(), s.clone());
                g.streams.insert(s.name.clone(), s);
            }
        }
        for seg in snap.segments {
            if let Some(g) = groups.get_mut(&seg.group) {
                g.segments.push(Arc::new(seg));
            }
        }
        let watermark = snap.sealed_through_seq;

        // Replay the WAL into the tail.
        let wal_dir = cfg.data_dir.join("wal");
        let files = wal::list_files(&wal_dir)?;
        let mut active = Memtable::default();
        let mut max_seq = watermark;
        let mut append_to: Option<(u64, u64)> = None;
        for (i, (first, path)) in files.iter().enumerate() {
            let last_file = i + 1 == files.len();
            let replay = wal::read_file(path)?;
            if let Some(why) = &replay.torn {
                if !last_file {
                    return Err(StoreError::Corrupt {
                        file: path.clone(),
                        offset: replay.valid_len,
                        what: format!("{why} in a wal file that is not the newest"),
                    });
                }
                tracing::warn!(file = %path.display(), %why, "truncating the torn tail of the wal");
            }
            if last_file {
                append_to = Some((*first, replay.valid_len));
            }
            for batch in replay.batches {
                max_seq = max_seq.max(batch.last_seq());
                if batch.last_seq() <= watermark {
                    continue;
                }
                let g = groups
                    .get_mut(&batch.group)
                    .ok_or_else(|| StoreError::Corrupt {
                        file: path.clone(),
                        offset: 0,
                        what: format!("wal holds events for unknown log group {:?}", batch.group),
                    })?;
                let stored = to_stored(batch, watermark);
                apply_stats(g, &stored);
                active.push(Arc::new(stored));
            }
        }
        let next_seq = max_seq + 1;
        let writer = match append_to {
            Some((first, valid_len)) => WalWriter::open(&wal_dir, first, valid_len)?,
            None => WalWriter::open(&wal_dir, next_seq, 0)?,
        };
        if !active.is_empty() {
            tracing::info!(
                events = active.event_count,
                "recovered unsealed events from the wal"
            );
        }
        let state = RwLock::new(State {
            groups,
            active,
            frozen: Vec::new(),
            writer_failed: None,
        });
        let (tx, rx) = mpsc::sync_channel(WRITER_QUEUE_MAX);
        let inner = Arc::new(Inner {
            cache: SegmentCache::new(cfg.segment_cache_bytes),
            cfg,
            catalog,
            storage,
            state,
            writer: tx,
            seal_lock: tokio::sync::Mutex::new(()),
            commit_lock: tokio::sync::Mutex::new(()),
            _lock_file: lock_file,
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("trailvault-wal".into())
            .spawn(move || writer_loop(weak, rx, writer, next_seq))
            .map_err(|e| StoreError::io("wal writer thread", e))?;
        Ok(Vault { inner })
    }

    pub fn config(&self) -> &VaultConfig {
        &self.inner.cfg
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub fn catalog(&self) -> &dyn Catalog {
        self.inner.catalog.as_ref()
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }

    // ---- log groups and streams ----

    pub fn create_log_group(&self, meta: LogGroupMeta) -> Result<()> {
        validate_group_name(&meta.name)?;
        if meta.name.starts_with("aws/") {
            return Err(StoreError::InvalidParameter(
                "Log group names starting with 'aws/' are reserved".into(),
            ));
        }
        let mut st = self.write_state();
        if st.groups.contains_key(&meta.name) {
            return Err(StoreError::AlreadyExists(
                "The specified log group already exists".into(),
            ));
        }
        self.inner.catalog.create_group(&meta)?;
        st.groups.insert(
            meta.name.clone(),
            GroupState {
                meta,
                streams: BTreeMap::new(),
                sealed_streams: BTreeMap::new(),
                segments: Vec::new(),
            },
        );
        Ok(())
    }

    /// Refused while the group holds any event: the vault never deletes evidence.
    pub fn delete_log_group(&self, name: &str) -> Result<()> {
        let mut st = self.write_state();
        let g = st.groups.get(name).ok_or_else(group_not_found)?;
        let events: u64 = g.streams.values().map(|s| s.event_count).sum();
        if events > 0 || !g.segments.is_empty() || st.active.has_group(name) {
            return Err(StoreError::Refused(format!(
                "log group {name} holds {events} events; trailvault never deletes evidence (events leave only by retention expiry)"
            )));
        }
        self.inner.catalog.delete_group(name)?;
        st.groups.remove(name);
        Ok(())
    }

    pub fn create_log_stream(&self, group: &str, stream: &str) -> Result<()> {
        validate_stream_name(stream)?;
        let mut st = self.write_state();
        let g = st.groups.get_mut(group).ok_or_else(group_not_found)?;
        if g.streams.contains_key(stream) {
            return Err(StoreError::AlreadyExists(
                "The specified log stream already exists".into(),
            ));
        }
        let meta = StreamMeta {
            group: group.into(),
            name: stream.into(),
            created_ms: now_ms(),
            ..StreamMeta::default()
        };
        self.inner.catalog.create_stream(&meta)?;
        g.sealed_streams.insert(stream.into(), meta.clone());
        g.streams.insert(stream.into(), meta);
        Ok(())
    }

    pub fn delete_log_stream(&self, group: &str, stream: &str) -> Result<()> {
        let mut st = self.write_state();
        let in_tail = st.active.has_stream(group, stream);
        let g = st.groups.get_mut(group).ok_or_else(group_not_found)?;
        let s = g.streams.get(stream).ok_or_else(stream_not_found)?;
        if s.event_count > 0 || in_tail {
            return Err(StoreError::Refused(format!(
                "log stream {stream} holds {} events; trailvault never deletes evidence (events leave only by retention expiry)",
                s.event_count
            )));
        }
        self.inner.catalog.delete_stream(group, stream)?;
        g.streams.remove(stream);
        g.sealed_streams.remove(stream);
        Ok(())
    }

    pub fn log_groups(&self) -> Vec<LogGroupMeta> {
        self.read_state()
            .groups
            .values()
            .map(|g| g.meta.clone())
            .collect()
    }

    pub fn log_group(&self, name: &str) -> Result<LogGroupMeta> {
        self.read_state()
            .groups
            .get(name)
            .map(|g| g.meta.clone())
            .ok_or_else(group_not_found)
    }

    /// Bytes the group occupies: sealed segment files plus the raw bytes of its tail.
    pub fn stored_bytes(&self, group: &str) -> u64 {
        let st = self.read_state();
        let Some(g) = st.groups.get(group) else {
            return 0;
        };
        let sealed: u64 = g.segments.iter().map(|s| s.bytes).sum();
        let sealed_raw: u64 = g.segments.iter().map(|s| s.raw_bytes).sum();
        let all_raw: u64 = g.streams.values().map(|s| s.stored_bytes).sum();
        sealed + all_raw.saturating_sub(sealed_raw)
    }

    pub fn log_streams(&self, group: &str) -> Result<Vec<StreamMeta>> {
        let st = self.read_state();
        let g = st.groups.get(group).ok_or_else(group_not_found)?;
        Ok(g.streams.values().cloned().collect())
    }

    pub fn set_retention(&self, group: &str, days: Option<u32>) -> Result<()> {
        if let Some(d) = days {
            if !trailvault_model::limits::RETENTION_DAYS_ALLOWED.contains(&d) {
                return Err(StoreError::InvalidParameter(format!(
                    "1 validation error detected: Value '{d}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {:?}",
                    trailvault_model::limits::RETENTION_DAYS_ALLOWED
                )));
            }
        }
        let mut st = self.write_state();
        let g = st.groups.get_mut(group).ok_or_else(group_not_found)?;
        self.inner.catalog.set_retention(group, days)?;
        g.meta.retention_days = days;
        Ok(())
    }

    /// Replace the group's tags with `f(current)`.
    pub fn update_tags(
        &self,
        group: &str,
        f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<()>,
    ) -> Result<BTreeMap<String, String>> {
        let mut st = self.write_state();
        let g = st.groups.get_mut(group).ok_or_else(group_not_found)?;
        let mut tags = g.meta.tags.clone();
        f(&mut tags)?;
        self.inner.catalog.set_tags(group, &tags)?;
        g.meta.tags = tags.clone();
        Ok(tags)
    }

    // ---- writes ----

    /// Validate a batch, make the accepted events durable, and only then return.
    pub async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        mut events: Vec<InputEvent>,
        opts: PutOptions,
    ) -> Result<PutOutcome> {
        let retention_days = {
            let st = self.read_state();
            if let Some(why) = &st.writer_failed {
                return Err(StoreError::Unavailable(why.clone()));
            }
            let g = st.groups.get(group).ok_or_else(group_not_found)?;
            if !g.streams.contains_key(stream) {
                return Err(stream_not_found());
            }
            g.meta.retention_days
        };
        let rejected = if opts.cloudwatch_rules {
            check_batch(&events, retention_days, opts.now_ms)?
        } else {
            if events.is_empty() {
                return Err(StoreError::InvalidParameter(
                    "a batch needs at least one event".into(),
                ));
            }
            events.sort_by_key(|e| e.timestamp_ms);
            RejectedInfo::default()
        };
        let start = rejected
            .too_old_end_index
            .unwrap_or(0)
            .max(rejected.expired_end_index.unwrap_or(0));
        let end = rejected.too_new_start_index.unwrap_or(events.len());
        if start >= end {
            return Ok(PutOutcome {
                stored: Arc::new(Vec::new()),
                rejected,
            });
        }
        events.truncate(end);
        let accepted: Vec<WalEvent> = events
            .drain(start..)
            .map(|e| WalEvent {
                timestamp_ms: e.timestamp_ms,
                message: e.message,
                normalized: e.normalized,
            })
            .collect();
        let (reply, rx) = oneshot::channel();
        let msg = WriterMsg::Append {
            group: group.to_string(),
            stream: stream.to_string(),
            events: accepted,
            reply,
        };
        self.send(msg).await?;
        let stored = rx
            .await
            .map_err(|_| StoreError::Unavailable("the wal writer stopped".into()))??;
        Ok(PutOutcome { stored, rejected })
    }

    async fn send(&self, msg: WriterMsg) -> Result<()> {
        let tx = self.inner.writer.clone();
        // The queue is bounded; a full queue blocks, so do it off the async workers.
        match tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(msg)) => tokio::task::spawn_blocking(move || tx.send(msg))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
                .map_err(|_| StoreError::Unavailable("the wal writer stopped".into())),
            Err(mpsc::TrySendError::Disconnected(_)) => {
                Err(StoreError::Unavailable("the wal writer stopped".into()))
            }
        }
    }

    // ---- reads ----

    /// Every event of `group` whose stream `filter` accepts and whose timestamp is in
    /// `[start_ms, end_ms)`, sealed and unsealed alike, sorted by (timestamp, seq).
    pub async fn read_events(
        &self,
        group: &str,
        filter: &StreamFilter,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<StoredEvent>> {
        let lo = start_ms.unwrap_or(i64::MIN);
        let hi = end_ms.unwrap_or(i64::MAX);
        let in_range = |ts: i64| ts >= lo && ts < hi;
        let (segments, mut out) = {
            let st = self.read_state();
            let g = st.groups.get(group).ok_or_else(group_not_found)?;
            if let StreamFilter::One(s) = filter {
                if !g.streams.contains_key(s) {
                    return Err(stream_not_found());
                }
            }
            let segments: Vec<Arc<SegmentMeta>> = g
                .segments
                .iter()
                .filter(|seg| {
                    seg.streams
                        .iter()
                        .any(|r| filter.accepts(&r.stream) && r.newest_ms >= lo && r.oldest_ms < hi)
                })
                .cloned()
                .collect();
            let keep = |s: &str| filter.accepts(s);
            let mut tail = Vec::new();
            for mem in std::iter::once(&st.active).chain(st.frozen.iter().map(|m| m.as_ref())) {
                tail.extend(
                    mem.events_of(group, &keep)
                        .filter(|e| in_range(e.timestamp_ms))
                        .cloned(),
                );
            }
            (segments, tail)
        };
        for seg in segments {
            let events = self.segment_events(&seg).await?;
            out.extend(
                events
                    .iter()
                    .filter(|e| filter.accepts(&e.stream) && in_range(e.timestamp_ms))
                    .cloned(),
            );
        }
        out.sort_by_key(|e| (e.timestamp_ms, e.seq));
        Ok(out)
    }

    /// The decoded events of one sealed segment (core columns), through the cache.
    pub async fn segment_events(&self, seg: &SegmentMeta) -> Result<Arc<Vec<StoredEvent>>> {
        if let Some(hit) = self.inner.cache.get(&seg.key) {
            return Ok(hit);
        }
        let bytes = self.inner.storage.get(&seg.key).await?;
        let size = bytes.len();
        let events = tokio::task::spawn_blocking(move || {
            trailvault_segment::decode(bytes, trailvault_segment::Projection::Core)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        let events = Arc::new(events);
        self.inner.cache.put(&seg.key, events.clone(), size * 4);
        Ok(events)
    }

    /// Sealed segments of a group, in seal order.
    pub fn segments(&self, group: &str) -> Result<Vec<Arc<SegmentMeta>>> {
        let st = self.read_state();
        let g = st.groups.get(group).ok_or_else(group_not_found)?;
        Ok(g.segments.clone())
    }

    /// Segments of `group` whose seal time is in `[start_ms, end_ms)`, taken from the same
    /// snapshot readers use (see `seal_now`: seal times are assigned under that lock).
    pub fn segments_sealed_between(
        &self,
        group: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Arc<SegmentMeta>>> {
        let st = self.read_state();
        let g = st.groups.get(group).ok_or_else(group_not_found)?;
        Ok(g.segments
            .iter()
            .filter(|s| s.sealed_at_ms >= start_ms && s.sealed_at_ms < end_ms)
            .cloned()
            .collect())
    }

    /// Bytes and age of the unsealed tail: (raw bytes, oldest ingestion time).
    pub fn tail_stats(&self) -> (usize, Option<i64>) {
        let st = self.read_state();
        (st.active.message_bytes, st.active.oldest_ingestion_ms)
    }

    // ---- sealing ----

    /// Seal the whole unsealed tail into segments now.
    pub async fn seal_now(&self) -> Result<SealReport> {
        let _guard = self.inner.seal_lock.lock().await;
        self.seal_tail().await
    }

    /// Seal the whole unsealed tail; the caller holds `seal_lock`.
    async fn seal_tail(&self) -> Result<SealReport> {
        let (reply, rx) = oneshot::channel();
        self.send(WriterMsg::Freeze { reply }).await?;
        let Some(frozen) = rx
            .await
            .map_err(|_| StoreError::Unavailable("the wal writer stopped".into()))??
        else {
            return Ok(SealReport::default());
        };
        let watermark = frozen.last_seq.expect("a frozen tail holds events");

        // Encode off the async workers, from borrowed events (the frozen tail stays readable
        // until the commit below), one segment per (group, hour of event time), in parallel.
        let tail = frozen.clone();
        let encoded = tokio::task::spawn_blocking(move || -> Result<Vec<Encoded>> {
            let mut parts: Vec<(&str, Vec<&StoredEvent>)> = Vec::new();
            for group in tail.groups() {
                let mut by_hour: BTreeMap<i64, Vec<&StoredEvent>> = BTreeMap::new();
                for e in tail.events_of(group, &|_| true) {
                    by_hour
                        .entry(layout::hour_of(e.timestamp_ms))
                        .or_default()
                        .push(e);
                }
                parts.extend(by_hour.into_values().map(|events| (group, events)));
            }
            parts
                .into_par_iter()
                .map(|(group, events)| encode_segment(group, events))
                .collect()
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;

        // After any import seal still committing (see `commit_lock`).
        let _commit_turn = self.inner.commit_lock.lock().await;
        let (intent, mut metas, filters) = self.put_segments(encoded).await?;

        // Commit: catalog first (durable), then the in-memory snapshot, atomically for readers.
        {
            let mut st = self.write_state();
            let mut new_sealed: Vec<StreamMeta> = Vec::new();
            for group in frozen.groups() {
                let Some(g) = st.groups.get(group) else {
                    continue;
                };
                let mut per_stream: BTreeMap<&str, Vec<&StoredEvent>> = BTreeMap::new();
                for e in frozen.events_of(group, &|_| true) {
                    per_stream.entry(e.stream.as_str()).or_default().push(e);
                }
                for (stream, events) in per_stream {
                    // Copies until the commit succeeds: a failed commit leaves the snapshot
                    // as it was, and the retried seal does not count the events twice.
                    let mut s =
                        g.sealed_streams
                            .get(stream)
                            .cloned()
                            .unwrap_or_else(|| StreamMeta {
                                group: group.to_string(),
                                name: stream.to_string(),
                                created_ms: now_ms(),
                                ..StreamMeta::default()
                            });
                    add_events_to_stats(&mut s, events.into_iter());
                    new_sealed.push(s);
                }
            }
            self.commit_segments(&mut st, intent, &mut metas, &new_sealed, watermark)?;
            for s in new_sealed {
                if let Some(g) = st.groups.get_mut(&s.group) {
                    g.sealed_streams.insert(s.name.clone(), s);
                }
            }
            st.frozen.retain(|f| !Arc::ptr_eq(f, &frozen));
        }
        self.after_seal_commit(metas, &filters, watermark)
    }

    /// Write encoded segments, create-only and each durable (fsync'd) before this returns,
    /// under a seal intent naming all of them: recovery moves the files of an intent that
    /// never committed to `orphans/`. Returns the intent, the catalog rows (seal time still
    /// unset) and the lookup filters.
    async fn put_segments(
        &self,
        encoded: Vec<Encoded>,
    ) -> Result<(i64, Vec<SegmentMeta>, Vec<SegmentLookupFilter>)> {
        let keys: Vec<String> = encoded.iter().map(|(m, _, _)| m.key.clone()).collect();
        let intent = self.inner.catalog.begin_seal(&keys)?;
        // Several at once: each put ends in fsyncs, which overlap well.
        let puts: Vec<_> = encoded
            .iter()
            .map(|(meta, bytes, _)| {
                let (storage, key, bytes) =
                    (self.inner.storage.clone(), meta.key.clone(), bytes.clone());
                async move { storage.put_new(&key, bytes).await }
            })
            .collect();
        futures::stream::iter(puts)
            .buffer_unordered(SEGMENT_PUTS_CONCURRENT)
            .try_collect::<Vec<()>>()
            .await?;
        let mut filters = Vec::new();
        let mut metas: Vec<SegmentMeta> = Vec::with_capacity(encoded.len());
        for (m, _, f) in encoded {
            metas.push(m);
            filters.extend(f);
        }
        Ok((intent, metas, filters))
    }

    /// A seal's commit, with the state's write lock held (`st`): stamps the seal time, commits
    /// the segments, the streams' rows and the watermark in the catalog (durable), then lists
    /// the segments for readers. The seal time is taken under the lock readers of the segment
    /// list hold, so a digest period that ended before it was read can never miss a segment.
    fn commit_segments(
        &self,
        st: &mut State,
        intent: i64,
        metas: &mut [SegmentMeta],
        streams: &[StreamMeta],
        watermark: u64,
    ) -> Result<()> {
        let sealed_at_ms = now_ms();
        for m in metas.iter_mut() {
            m.sealed_at_ms = sealed_at_ms;
        }
        self.inner
            .catalog
            .commit_seal(intent, metas, streams, watermark)?;
        for m in metas.iter() {
            if let Some(g) = st.groups.get_mut(&m.group) {
                g.segments.push(Arc::new(m.clone()));
            }
        }
        Ok(())
    }

    /// What follows a seal's catalog commit: drop the WAL files it covered, store the lookup
    /// filters, report.
    fn after_seal_commit(
        &self,
        metas: Vec<SegmentMeta>,
        filters: &[SegmentLookupFilter],
        watermark: u64,
    ) -> Result<SealReport> {
        wal::remove_sealed(&self.inner.cfg.data_dir.join("wal"), watermark)?;
        // Derived data after the commit: a failure costs lookups speed, never events (a
        // segment without filters is opened; `rebuild_lookup_filters` fills them in).
        if let Err(e) = self.inner.catalog.put_lookup_filters(filters) {
            tracing::warn!(error = %e, "lookup filters of the sealed segments were not stored");
        }
        let report = SealReport {
            events: metas.iter().map(|m| m.event_count).sum(),
            raw_bytes: metas.iter().map(|m| m.raw_bytes).sum(),
            stored_bytes: metas.iter().map(|m| m.bytes).sum(),
            segments: metas,
        };
        tracing::debug!(
            segments = report.segments.len(),
            events = report.events,
            "sealed"
        );
        Ok(report)
    }

    /// Bulk import straight into sealed segments, bypassing the WAL and the tail: numbers
    /// the events (each stream's in time order, as an import put sorts a batch), encodes the
    /// segments of each (group, hour of event time) exactly as the sealer does (cut at
    /// [`IMPORT_SEGMENT_EVENTS_MAX`] events), writes and syncs
    /// every file, then commits the segments, the streams' statistics and the watermark in
    /// one catalog transaction. A stream that does not exist yet is created by that commit,
    /// so an import leaves no empty streams behind and pays no catalog sync per stream.
    /// Nothing of the call is visible, to readers or after a crash, before that commit;
    /// after it, all of it is. Returns what was sealed.
    ///
    /// Sequence numbers come from the WAL writer, like every other write's, and only while
    /// the tail is empty (a non-empty tail is sealed first), so sealed segments keep holding
    /// only seqs below every tail seq and the watermark can advance past the new segments.
    ///
    /// Calls may overlap: one encodes while the one before writes, syncs and commits; the
    /// commits keep the order in which the calls reserved their numbers.
    pub async fn seal_imported(&self, streams: Vec<ImportedStream>) -> Result<SealReport> {
        let mut streams: Vec<ImportedStream> = streams
            .into_iter()
            .filter(|s| !s.events.is_empty())
            .collect();
        if streams.is_empty() {
            return Ok(SealReport::default());
        }
        {
            let st = self.read_state();
            if let Some(why) = &st.writer_failed {
                return Err(StoreError::Unavailable(why.clone()));
            }
            for s in &streams {
                let g = st.groups.get(&s.group).ok_or_else(group_not_found)?;
                if !g.streams.contains_key(&s.stream) {
                    validate_stream_name(&s.stream)?;
                }
            }
        }
        let count: u64 = streams.iter().map(|s| s.events.len() as u64).sum();
        let seal_turn = self.inner.seal_lock.lock().await;
        let mut first_seq = None;
        for _ in 0..SEAL_IMPORTED_ATTEMPTS_MAX {
            let (reply, rx) = oneshot::channel();
            self.send(WriterMsg::Reserve {
                events: count,
                reply,
            })
            .await?;
            first_seq = rx
                .await
                .map_err(|_| StoreError::Unavailable("the wal writer stopped".into()))??;
            if first_seq.is_some() {
                break;
            }
            self.seal_tail().await?;
        }
        let Some(first_seq) = first_seq else {
            // Either writes kept arriving, or a frozen tail of a failed seal is still waiting
            // (it is sealed again only after a restart, from the WAL).
            return Err(StoreError::Unavailable(
                "the unsealed tail could not be emptied before sealing the import".into(),
            ));
        };
        let watermark = first_seq + count - 1;
        let ingestion_time_ms = now_ms();

        // Number and encode off the async workers: the segments of each (group, hour), in
        // parallel.
        let (events, encoded) = tokio::task::spawn_blocking(
            move || -> Result<(Vec<Vec<StoredEvent>>, Vec<Encoded>)> {
                let mut seq = first_seq;
                let events: Vec<Vec<StoredEvent>> = streams
                    .iter_mut()
                    .map(|s| {
                        let mut input = std::mem::take(&mut s.events);
                        input.sort_by_key(|e| e.timestamp_ms);
                        input
                            .into_iter()
                            .map(|e| {
                                seq += 1;
                                StoredEvent {
                                    seq: seq - 1,
                                    group: s.group.clone(),
                                    stream: s.stream.clone(),
                                    timestamp_ms: e.timestamp_ms,
                                    ingestion_time_ms,
                                    message: e.message,
                                    normalized: e.normalized,
                                }
                            })
                            .collect()
                    })
                    .collect();
                let mut parts: BTreeMap<(&str, i64), Vec<&StoredEvent>> = BTreeMap::new();
                for e in events.iter().flatten() {
                    parts
                        .entry((e.group.as_str(), layout::hour_of(e.timestamp_ms)))
                        .or_default()
                        .push(e);
                }
                // Large hours are cut into several segments, biggest first, so the cores
                // finish a seal together instead of one encoding the last big hour alone.
                let mut pieces: Vec<(&str, Vec<&StoredEvent>)> = Vec::new();
                for ((group, _), mut events) in parts {
                    trailvault_segment::sort_for_segment(&mut events);
                    for chunk in events.chunks(IMPORT_SEGMENT_EVENTS_MAX) {
                        pieces.push((group, chunk.to_vec()));
                    }
                }
                pieces.sort_by_key(|(_, events)| std::cmp::Reverse(events.len()));
                let mut encoded = pieces
                    .into_par_iter()
                    .with_max_len(1)
                    .map(|(group, events)| encode_segment(group, events))
                    .collect::<Result<Vec<_>>>()?;
                // Listed in the order the catalog loads them, so a restart changes nothing.
                encoded
                    .sort_by(|(a, ..), (b, ..)| (a.first_seq, &a.key).cmp(&(b.first_seq, &b.key)));
                Ok((events, encoded))
            },
        )
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;

        // Commits keep the order of the reservations: the turn to commit is taken before the
        // next seal may reserve and encode.
        let _commit_turn = self.inner.commit_lock.lock().await;
        drop(seal_turn);
        let (intent, mut metas, filters) = self.put_segments(encoded).await?;
        // Commit: catalog first (durable), then the in-memory snapshot, atomically for readers.
        {
            let mut st = self.write_state();
            let mut sealed_now: Vec<StreamMeta> = Vec::with_capacity(events.len());
            let mut all_now: Vec<StreamMeta> = Vec::with_capacity(events.len());
            for stream_events in &events {
                let first = &stream_events[0];
                let g = st.groups.get(&first.group).ok_or_else(group_not_found)?;
                let fresh = || StreamMeta {
                    group: first.group.clone(),
                    name: first.stream.clone(),
                    created_ms: ingestion_time_ms,
                    ..StreamMeta::default()
                };
                // A stream may come twice in one call: build on what this call already added.
                let find = |metas: &[StreamMeta], base: Option<&StreamMeta>| {
                    metas
                        .iter()
                        .rev()
                        .find(|m| m.group == first.group && m.name == first.stream)
                        .or(base)
                        .cloned()
                        .unwrap_or_else(fresh)
                };
                let mut sealed = find(&sealed_now, g.sealed_streams.get(&first.stream));
                let mut all = find(&all_now, g.streams.get(&first.stream));
                add_events_to_stats(&mut sealed, stream_events.iter());
                add_events_to_stats(&mut all, stream_events.iter());
                sealed_now.push(sealed);
                all_now.push(all);
            }
            self.commit_segments(&mut st, intent, &mut metas, &sealed_now, watermark)?;
            for (sealed, all) in sealed_now.into_iter().zip(all_now) {
                if let Some(g) = st.groups.get_mut(&sealed.group) {
                    g.sealed_streams.insert(sealed.name.clone(), sealed);
                    g.streams.insert(all.name.clone(), all);
                }
            }
        }
        drop(events);
        self.after_seal_commit(metas, &filters, watermark)
    }

    /// Compute and store the lookup filters of every sealed segment that has none (a vault
    /// written before they existed, or a seal whose filters failed to store), from the
    /// segments themselves. Returns how many segments were indexed.
    pub async fn rebuild_lookup_filters(&self) -> Result<usize> {
        let done = self.inner.catalog.segments_with_lookup_filters()?;
        let missing: Vec<Arc<SegmentMeta>> = {
            let st = self.read_state();
            st.groups
                .values()
                .flat_map(|g| g.segments.iter())
                .filter(|m| !done.contains(&m.key))
                .cloned()
                .collect()
        };
        for meta in &missing {
            let bytes = self.inner.storage.get(&meta.key).await?;
            let key = meta.key.clone();
            let filters = tokio::task::spawn_blocking(move || -> Result<_> {
                let events =
                    trailvault_segment::decode(bytes, trailvault_segment::Projection::All)?;
                Ok(lookup_filters_of(&key, &events))
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            self.inner.catalog.put_lookup_filters(&filters)?;
        }
        Ok(missing.len())
    }

    /// Seal whenever the tail reaches `seal_bytes` or its oldest event `seal_age`. Runs until
    /// the vault is dropped.
    pub fn spawn_sealer(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let tick =
            (self.inner.cfg.seal_age / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut backoff = tick;
            loop {
                tokio::time::sleep(backoff).await;
                let Some(inner) = weak.upgrade() else { return };
                let vault = Vault { inner };
                let (bytes, oldest) = vault.tail_stats();
                let age_due = oldest
                    .is_some_and(|t| now_ms() - t >= vault.inner.cfg.seal_age.as_millis() as i64);
                if bytes >= vault.inner.cfg.seal_bytes || age_due {
                    match vault.seal_now().await {
                        Ok(_) => backoff = tick,
                        Err(e) => {
                            tracing::error!(error = %e, "sealing failed; will retry");
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            }
        })
    }
}

/// CloudWatch's batch rules. Returns the skipped ranges or the error that fails the batch.
fn check_batch(
    events: &[InputEvent],
    retention_days: Option<u32>,
    now_ms: i64,
) -> Result<RejectedInfo> {
    if events.is_empty() || events.len() > BATCH_EVENTS_MAX {
        return Err(StoreError::InvalidParameter(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and {BATCH_EVENTS_MAX}"
        )));
    }
    let mut total = 0usize;
    for (i, e) in events.iter().enumerate() {
        if e.message.is_empty() {
            return Err(StoreError::InvalidParameter(format!(
                "1 validation error detected: Value at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
                i + 1
            )));
        }
        let size = e.message.len() + EVENT_OVERHEAD_BYTES;
        if size > EVENT_BYTES_MAX {
            return Err(StoreError::InvalidParameter(format!(
                "Log event too large: event {i} is {size} bytes (message bytes + {EVENT_OVERHEAD_BYTES}); the maximum is {EVENT_BYTES_MAX}"
            )));
        }
        total += size;
    }
    if total > BATCH_BYTES_MAX {
        return Err(StoreError::InvalidParameter(format!(
            "Upload too large: {total} bytes exceeds the {BATCH_BYTES_MAX}-byte limit for one PutLogEvents batch"
        )));
    }
    if events
        .windows(2)
        .any(|w| w[1].timestamp_ms < w[0].timestamp_ms)
    {
        return Err(StoreError::InvalidParameter(
            "Log events in a single PutLogEvents request must be in chronological order.".into(),
        ));
    }
    let oldest_ok = now_ms - EVENT_AGE_MS_MAX;
    let newest_ok = now_ms + EVENT_FUTURE_MS_MAX;
    let too_old = events.partition_point(|e| e.timestamp_ms < oldest_ok);
    let expired = retention_days
        .map(|d| {
            let limit = now_ms - i64::from(d) * 86_400_000;
            events.partition_point(|e| e.timestamp_ms < limit)
        })
        .unwrap_or(0);
    let too_new = events.partition_point(|e| e.timestamp_ms <= newest_ok);
    let start = too_old.max(expired);
    if start < too_new {
        let span = events[too_new - 1].timestamp_ms - events[start].timestamp_ms;
        if span > BATCH_SPAN_MS_MAX {
            return Err(StoreError::InvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into(),
            ));
        }
    }
    Ok(RejectedInfo {
        too_new_start_index: (too_new < events.len()).then_some(too_new),
        too_old_end_index: (too_old > 0).then_some(too_old),
        expired_end_index: (expired > 0).then_some(expired),
    })
}

fn to_stored(batch: WalBatch, watermark: u64) -> Vec<StoredEvent> {
    let WalBatch {
        first_seq,
        ingestion_time_ms,
        group,
        stream,
        events,
    } = batch;
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| StoredEvent {
            seq: first_seq + i as u64,
            group: group.clone(),
            stream: stream.clone(),
            timestamp_ms: e.timestamp_ms,
            ingestion_time_ms,
            message: e.message,
            normalized: e.normalized,
        })
        .filter(|e| e.seq > watermark)
        .collect()
}

/// The lookup filters of the segment `key` holding `events`, ready for the catalog.
/// A sealed segment before its commit: catalog row, file bytes, lookup filters.
type Encoded = (SegmentMeta, Bytes, Vec<SegmentLookupFilter>);

/// Sorts one (group, hour) part into segment order and encodes it, with everything the
/// catalog records of it: stream ranges, SHA-256 of the bytes, the events' Merkle root.
fn encode_segment(group: &str, mut events: Vec<&StoredEvent>) -> Result<Encoded> {
    trailvault_segment::sort_for_segment(&mut events);
    let first_seq = events.iter().map(|e| e.seq).min().unwrap_or(0);
    let last_seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
    let key = layout::segment_key(
        group,
        layout::hour_of(events.first().map_or(0, |e| e.timestamp_ms)),
        first_seq,
        last_seq,
    );
    let (bytes, leaves) = trailvault_integrity::leaf::encode_segment(&events)?;
    let mut streams: Vec<StreamRange> = Vec::new();
    for e in &events {
        match streams.last_mut() {
            Some(r) if r.stream == e.stream => {
                r.event_count += 1;
                r.oldest_ms = r.oldest_ms.min(e.timestamp_ms);
                r.newest_ms = r.newest_ms.max(e.timestamp_ms);
            }
            _ => streams.push(StreamRange {
                stream: e.stream.clone(),
                event_count: 1,
                oldest_ms: e.timestamp_ms,
                newest_ms: e.timestamp_ms,
            }),
        }
    }
    let meta = SegmentMeta {
        key,
        group: group.to_string(),
        first_seq,
        last_seq,
        event_count: events.len() as u64,
        oldest_ms: events.iter().map(|e| e.timestamp_ms).min().unwrap_or(0),
        newest_ms: events.iter().map(|e| e.timestamp_ms).max().unwrap_or(0),
        bytes: bytes.len() as u64,
        raw_bytes: events.iter().map(|e| e.message.len() as u64).sum(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        merkle_root: hex::encode(trailvault_integrity::merkle::root_from_leaf_hashes(&leaves)),
        sealed_at_ms: 0, // set at commit
        streams,
    };
    let filters = lookup_filters_of(&meta.key, &events);
    Ok((meta, Bytes::from(bytes), filters))
}

fn lookup_filters_of<E: std::borrow::Borrow<StoredEvent>>(
    key: &str,
    events: &[E],
) -> Vec<SegmentLookupFilter> {
    trailvault_segment::lookup_index::build(events)
        .into_iter()
        .map(|(attribute, filter)| SegmentLookupFilter {
            segment_key: key.to_string(),
            attribute: attribute.as_str(),
            filter: filter.encode(),
        })
        .collect()
}

fn add_events_to_stats<'a>(s: &mut StreamMeta, events: impl Iterator<Item = &'a StoredEvent>) {
    for e in events {
        s.first_event_ms = Some(
            s.first_event_ms
                .map_or(e.timestamp_ms, |t| t.min(e.timestamp_ms)),
        );
        s.last_event_ms = Some(
            s.last_event_ms
                .map_or(e.timestamp_ms, |t| t.max(e.timestamp_ms)),
        );
        s.last_ingestion_ms = Some(
            s.last_ingestion_ms
                .map_or(e.ingestion_time_ms, |t| t.max(e.ingestion_time_ms)),
        );
        s.event_count += 1;
        s.stored_bytes += e.message.len() as u64;
    }
}

fn apply_stats(g: &mut GroupState, events: &[StoredEvent]) {
    let Some(first) = events.first() else { return };
    let s = g
        .streams
        .entry(first.stream.clone())
        .or_insert_with(|| StreamMeta {
            group: first.group.clone(),
            name: first.stream.clone(),
            created_ms: first.ingestion_time_ms,
            ..StreamMeta::default()
        });
    add_events_to_stats(s, events.iter());
}

type AppendReply = oneshot::Sender<Result<Arc<Vec<StoredEvent>>>>;

fn writer_loop(
    inner: std::sync::Weak<Inner>,
    rx: Receiver<WriterMsg>,
    mut wal: WalWriter,
    mut next_seq: u64,
) {
    let mut pending: Vec<(WalBatch, AppendReply)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while msgs.len() < GROUP_COMMIT_BATCHES_MAX {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let ingestion_time_ms = now_ms();
        for msg in msgs {
            match msg {
                WriterMsg::Append {
                    group,
                    stream,
                    events,
                    reply,
                } => {
                    let n = events.len() as u64;
                    pending.push((
                        WalBatch {
                            first_seq: next_seq,
                            ingestion_time_ms,
                            group,
                            stream,
                            events,
                        },
                        reply,
                    ));
                    next_seq += n;
                }
                WriterMsg::Freeze { reply } => {
                    commit(&inner, &mut wal, &mut pending);
                    let _ = reply.send(freeze(&inner, &mut wal, next_seq));
                }
                WriterMsg::Reserve { events, reply } => {
                    commit(&inner, &mut wal, &mut pending);
                    let st = inner.state.read().unwrap_or_else(|p| p.into_inner());
                    let answer = if let Some(why) = &st.writer_failed {
                        Err(StoreError::Unavailable(why.clone()))
                    } else if st.active.is_empty() && st.frozen.is_empty() {
                        let first = next_seq;
                        next_seq += events;
                        Ok(Some(first))
                    } else {
                        Ok(None)
                    };
                    drop(st);
                    let _ = reply.send(answer);
                }
            }
        }
        commit(&inner, &mut wal, &mut pending);
        if wal.file_bytes() > wal::FILE_BYTES_MAX {
            if let Err(e) = wal.rotate(next_seq) {
                fail_writer(&inner, format!("could not rotate the wal: {e}"));
            }
        }
    }
}

fn fail_writer(inner: &Inner, why: String) {
    tracing::error!(%why, "the wal writer failed; refusing further writes");
    let mut st = inner.state.write().unwrap_or_else(|p| p.into_inner());
    st.writer_failed.get_or_insert(why);
}

/// Write and sync every pending batch, then publish them to readers and acknowledge.
fn commit(inner: &Inner, wal: &mut WalWriter, pending: &mut Vec<(WalBatch, AppendReply)>) {
    if pending.is_empty() {
        return;
    }
    let failed = inner
        .state
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .writer_failed
        .clone();
    if let Some(why) = failed {
        for (_, reply) in pending.drain(..) {
            let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
        }
        return;
    }
    let refs: Vec<&WalBatch> = pending.iter().map(|(b, _)| b).collect();
    if let Err(e) = wal.append(&refs, true) {
        // After a failed sync the file's state is unknown: stop accepting writes rather than
        // acknowledge anything on top of it. Recovery at restart decides from the bytes.
        let why = format!("wal write failed: {e}");
        fail_writer(inner, why.clone());
        for (_, reply) in pending.drain(..) {
            let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
        }
        return;
    }
    let mut st = inner.state.write().unwrap_or_else(|p| p.into_inner());
    let mut replies = Vec::with_capacity(pending.len());
    for (batch, reply) in pending.drain(..) {
        let stored = Arc::new(to_stored(batch, 0));
        if let Some(g) = st.groups.get_mut(&stored[0].group) {
            apply_stats(g, &stored);
        }
        st.active.push(stored.clone());
        replies.push((reply, stored));
    }
    drop(st);
    for (reply, stored) in replies {
        let _ = reply.send(Ok(stored));
    }
}

fn freeze(inner: &Inner, wal: &mut WalWriter, next_seq: u64) -> Result<Option<Arc<Memtable>>> {
    let mut st = inner.state.write().unwrap_or_else(|p| p.into_inner());
    if st.active.is_empty() {
        return Ok(None);
    }
    // Every frozen event now lives in files older than the new one.
    wal.rotate(next_seq)?;
    let frozen = Arc::new(std::mem::take(&mut st.active));
    st.frozen.push(frozen.clone());
    Ok(Some(frozen))
}

/// Decoded segments kept for reads, evicted oldest-first past a byte budget.
struct SegmentCache {
    budget_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, (Arc<Vec<StoredEvent>>, usize)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl SegmentCache {
    fn new(budget_bytes: usize) -> Self {
        SegmentCache {
            budget_bytes,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Vec<StoredEvent>>> {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.map.get(key).map(|(v, _)| v.clone())
    }

    fn put(&self, key: &str, events: Arc<Vec<StoredEvent>>, bytes: usize) {
        if bytes > self.budget_bytes {
            return;
        }
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if c.map.contains_key(key) {
            return;
        }
        while c.bytes + bytes > self.budget_bytes {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some((_, b)) = c.map.remove(&old) {
                c.bytes -= b;
            }
        }
        c.map.insert(key.to_string(), (events, bytes));
        c.order.push_back(key.to_string());
        c.bytes += bytes;
    }
}
