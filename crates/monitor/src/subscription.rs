//! Subscription filters: events matching a pattern stream to a destination, at least once,
//! with a durable checkpoint per filter.
//!
//! Destinations (`destinationArn`):
//! - `arn:trailvault:webhook:NAME`, an existing webhook action target: one `POST` per envelope
//!   with the `X-Trailvault-Signature` header the alarm actions use;
//! - `file:///absolute/path`: one envelope per line, appended and `fsync`ed before the batch
//!   counts as accepted;
//! - `arn:trailvault:vault:NAME`, a `vault` action target: another trailvault, where each
//!   matching event (its timestamp and message, not an envelope) is written with PutLogEvents
//!   into the target's log group and stream, signed with the target's access key (see
//!   [`crate::remote`]). A batch counts as accepted when the other vault acknowledged it, i.e.
//!   made it durable. Events it rejects as too old or too new are logged, not retried.
//!
//! The envelope (webhook and file destinations) is CloudWatch's subscription payload (uncompressed): `{"messageType":
//! "DATA_MESSAGE","owner","logGroup","logStream","subscriptionFilters":[NAME],"logEvents":
//! [{"id","timestamp","message"}]}`, one per log stream, split past [`ENVELOPE_EVENTS_MAX`]
//! events or [`ENVELOPE_BYTES_MAX`] message bytes.
//!
//! Delivery runs on its own thread (`monitor-subscriptions`, a single-threaded tokio runtime,
//! one task per filter), fed by the engine's evaluator with every acknowledged batch.
//!
//! Invariants:
//! - the checkpoint of a filter (kv `subscription-checkpoint|GROUP|NAME`) is the highest
//!   vault `seq` handed to the destination, and it is written only *after* the destination
//!   accepted the batch: a restart re-delivers at most the batch that was in flight (at least
//!   once, never a flood);
//! - a destination that fails is retried with exponential backoff forever; nothing behind it
//!   is skipped, so a down destination holds its checkpoint back and never drops events;
//! - each filter's queue holds at most [`QUEUE_BATCHES_MAX`] batches. With an
//!   [`EventSource`], a full queue switches the filter to catch-up (it re-reads the stored
//!   events after its checkpoint, so nothing is lost and the evaluator never waits); without
//!   one, the evaluator waits for room;
//! - on start, every filter catches up from its checkpoint through the [`EventSource`] before
//!   taking live batches;
//! - batches can reach the evaluator out of `seq` order (concurrent requests); a batch below the
//!   checkpoint is still delivered unless its range was delivered recently (the last
//!   [`RECENT_RANGES_MAX`] ranges are remembered) or it is at or below the checkpoint the
//!   filter started from (created or restarted). At least once means a batch in flight when
//!   the process dies (or whose acknowledgement was lost) is sent again after the restart:
//!   the destination may see those events twice, a vault destination as two stored events.
//!   Known limit: a crash in the instant between
//!   a batch's acknowledgement and its hand-over, while a *later* batch of the same group was
//!   already delivered, loses that batch for this filter.
//!
//! A new filter starts after the `seq` the caller gives (the group's newest stored event):
//! like CloudWatch, it streams events ingested after its creation, not history.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use trailvault_model::StoredEvent;

use crate::actions::{signature, ActionKind};
use crate::pattern::{FilterPattern, PatternError};
use crate::remote::{forwarded_events, put_batches, RemoteVault};
use crate::store::{MonitorDb, StoreError};

/// CloudWatch allows two subscription filters per log group.
pub const SUBSCRIPTION_FILTERS_PER_GROUP_MAX: usize = 2;
/// Live batches waiting per filter before it switches to catch-up (or the evaluator waits).
pub const QUEUE_BATCHES_MAX: usize = 256;
/// Events asked from the [`EventSource`] per catch-up read.
pub const CATCH_UP_EVENTS_MAX: usize = 10_000;
/// Most events in one envelope.
pub const ENVELOPE_EVENTS_MAX: usize = 10_000;
/// Most message bytes in one envelope (an envelope always holds at least one event).
pub const ENVELOPE_BYTES_MAX: usize = 1_048_576;
/// Delivered seq ranges remembered per filter to recognise re-submitted batches.
pub const RECENT_RANGES_MAX: usize = 4096;
const FILTER_NAME_CHARS_MAX: usize = 512;
const DESTINATION_CHARS_MAX: usize = 2048;
const BACKOFF_MS_FIRST: u64 = 200;
const BACKOFF_MS_MAX: u64 = 30_000;
const HTTP_TIMEOUT_MS: u64 = 10_000;
const SPEC_KEY: &str = "subscription-filter|";
const CHECKPOINT_KEY: &str = "subscription-checkpoint|";

/// Where the stored events of a group can be read back from, for catch-up after a restart or
/// a queue overflow. Implemented by the binary over the vault (the monitor crate does not
/// depend on the store).
///
/// Called from a blocking thread, never from an async task, so implementations may block
/// (e.g. `Handle::block_on` on the server's runtime).
pub trait EventSource: Send + Sync {
    /// Stored events of `group` whose `seq` is greater than `after_seq`, in `seq` order, at
    /// most `limit` of them (the lowest). An empty answer means "caught up".
    fn events_after(
        &self,
        group: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, SourceError>;
}

/// An [`EventSource`] could not read; catch-up is retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("event source: {0}")]
pub struct SourceError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// Maps to InvalidParameterException.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// Maps to LimitExceededException.
    #[error("{0}")]
    Limit(String),
    /// Maps to ResourceNotFoundException.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("subscription delivery: {0}")]
    Io(#[from] std::io::Error),
}

/// A subscription filter as PutSubscriptionFilter takes it and DescribeSubscriptionFilters
/// returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilterSpec {
    pub filter_name: String,
    #[serde(default)]
    pub log_group_name: String,
    pub filter_pattern: String,
    pub destination_arn: String,
    /// Accepted and returned; trailvault delivers with its own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `ByLogStream` (the default) or `Random`; one destination per filter makes both the same.
    #[serde(default = "default_distribution")]
    pub distribution: String,
    #[serde(default)]
    pub creation_time: i64,
}

fn default_distribution() -> String {
    "ByLogStream".into()
}

/// A parsed destination ARN.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// `arn:trailvault:webhook:NAME`, the action target's ARN.
    Webhook { arn: String },
    /// `file:///absolute/path`.
    File { path: PathBuf },
    /// `arn:trailvault:vault:NAME`, a `vault` action target's ARN.
    Vault { arn: String },
}

impl Destination {
    pub fn parse(arn: &str) -> Result<Destination, SubscriptionError> {
        let bad = |m: String| Err(SubscriptionError::Invalid(m));
        if arn.is_empty() || arn.chars().count() > DESTINATION_CHARS_MAX {
            return bad(format!(
                "destinationArn must be 1 to {DESTINATION_CHARS_MAX} characters"
            ));
        }
        if arn.starts_with("arn:trailvault:webhook:") {
            return match crate::alarm::parse_action_arn(arn) {
                Some(_) => Ok(Destination::Webhook { arn: arn.into() }),
                None => bad(format!("destinationArn {arn:?} is not a valid webhook ARN")),
            };
        }
        if let Some(name) = arn.strip_prefix("arn:trailvault:vault:") {
            return match crate::alarm::valid_target_name(name) {
                true => Ok(Destination::Vault { arn: arn.into() }),
                false => bad(format!("destinationArn {arn:?} is not a valid vault ARN")),
            };
        }
        if let Some(path) = arn.strip_prefix("file://") {
            if !path.starts_with('/') || path.contains('\0') || path.ends_with('/') {
                return bad(format!(
                    "destinationArn {arn:?} must name an absolute file: file:///path/to/file"
                ));
            }
            return Ok(Destination::File { path: path.into() });
        }
        bad(format!(
            "destinationArn {arn:?} is not supported: use arn:trailvault:webhook:NAME, arn:trailvault:vault:NAME or file:///absolute/path"
        ))
    }
}

impl SubscriptionFilterSpec {
    /// Checks names, the pattern and the destination; returns the compiled pieces.
    fn compile(&self) -> Result<(FilterPattern, Destination), SubscriptionError> {
        let n = self.filter_name.chars().count();
        if n == 0
            || n > FILTER_NAME_CHARS_MAX
            || self.filter_name.contains([':', '*'])
            || self.filter_name.contains('|')
        {
            return Err(SubscriptionError::Invalid(format!(
                "filterName must be 1 to {FILTER_NAME_CHARS_MAX} characters without ':', '*' or '|'"
            )));
        }
        if !matches!(self.distribution.as_str(), "ByLogStream" | "Random") {
            return Err(SubscriptionError::Invalid(
                "distribution must be ByLogStream or Random".into(),
            ));
        }
        let pattern = FilterPattern::parse(&self.filter_pattern)?;
        Ok((pattern, Destination::parse(&self.destination_arn)?))
    }
}

fn spec_key(group: &str, name: &str) -> String {
    format!("{SPEC_KEY}{group}|{name}")
}

fn checkpoint_key(group: &str, name: &str) -> String {
    format!("{CHECKPOINT_KEY}{group}|{name}")
}

/// The CloudWatch subscription envelopes for `events` (already matched), one per stream in
/// order of first appearance, split by [`ENVELOPE_EVENTS_MAX`] / [`ENVELOPE_BYTES_MAX`].
pub fn envelopes(
    owner: &str,
    group: &str,
    filter_name: &str,
    events: &[&StoredEvent],
) -> Vec<String> {
    let mut streams: Vec<(&str, Vec<&StoredEvent>)> = Vec::new();
    for e in events {
        match streams.iter_mut().find(|(s, _)| *s == e.stream) {
            Some((_, v)) => v.push(e),
            None => streams.push((&e.stream, vec![e])),
        }
    }
    let mut out = Vec::new();
    for (stream, evs) in streams {
        let mut start = 0;
        while start < evs.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < evs.len()
                && end - start < ENVELOPE_EVENTS_MAX
                && (end == start || bytes + evs[end].message.len() <= ENVELOPE_BYTES_MAX)
            {
                bytes += evs[end].message.len();
                end += 1;
            }
            let log_events: Vec<serde_json::Value> = evs[start..end]
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "id": e.event_id(),
                        "timestamp": e.timestamp_ms,
                        "message": e.message,
                    })
                })
                .collect();
            out.push(
                serde_json::json!({
                    "messageType": "DATA_MESSAGE",
                    "owner": owner,
                    "logGroup": group,
                    "logStream": stream,
                    "subscriptionFilters": [filter_name],
                    "logEvents": log_events,
                })
                .to_string(),
            );
            start = end;
        }
    }
    out
}

/// Seq ranges delivered lately, to skip re-submitted batches below the checkpoint.
#[derive(Default)]
struct RecentRanges(VecDeque<(u64, u64)>);

impl RecentRanges {
    fn add(&mut self, lo: u64, hi: u64) {
        if self.0.len() >= RECENT_RANGES_MAX {
            self.0.pop_front();
        }
        self.0.push_back((lo, hi));
    }

    fn contains(&self, seq: u64) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= seq && seq <= hi)
    }
}

#[derive(Default)]
struct FeedQueue {
    batches: VecDeque<Arc<Vec<StoredEvent>>>,
    /// Batches were not queued (overflow) or the feed just started: read from the source.
    catch_up: bool,
}

/// One running filter.
struct Feed {
    spec: SubscriptionFilterSpec,
    pattern: FilterPattern,
    destination: Destination,
    queue: Mutex<FeedQueue>,
    room: Condvar,
    wake: tokio::sync::Notify,
    stop: AtomicBool,
    /// Highest delivered seq (mirrors the stored checkpoint).
    checkpoint: AtomicU64,
    /// The checkpoint when the feed started: everything at or below it was delivered before
    /// or predates the filter, so a batch the evaluator hands over late is never re-sent.
    floor: u64,
}

struct Shared {
    db: MonitorDb,
    source: Option<Arc<dyn EventSource>>,
    remote: Option<Arc<dyn RemoteVault>>,
    owner: String,
    client: reqwest::Client,
}

/// The subscription filters of every group and their delivery tasks.
pub(crate) struct Subscriptions {
    shared: Arc<Shared>,
    feeds: RwLock<HashMap<String, Vec<Arc<Feed>>>>,
    runtime: tokio::runtime::Handle,
    stop_tx: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Highest seq offered so far: the start of a filter created without a caller-given seq.
    seen_seq: AtomicU64,
}

impl Subscriptions {
    /// Starts the delivery thread and every stored filter (each catching up first).
    pub(crate) fn open(
        db: MonitorDb,
        source: Option<Arc<dyn EventSource>>,
        remote: Option<Arc<dyn RemoteVault>>,
        owner: String,
    ) -> Result<Subscriptions, SubscriptionError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("monitor-subscriptions".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async move {
                    let _ = stop_rx.await;
                });
            })?;
        let runtime = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("the subscription thread did not start"))??;
        let subs = Subscriptions {
            shared: Arc::new(Shared {
                db,
                source,
                remote,
                owner,
                client,
            }),
            feeds: RwLock::new(HashMap::new()),
            runtime,
            stop_tx: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            seen_seq: AtomicU64::new(0),
        };
        for (key, value) in subs.shared.db.kv_scan(SPEC_KEY)? {
            let spec: SubscriptionFilterSpec = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
            let checkpoint = subs.stored_checkpoint(&spec)?.unwrap_or(0);
            subs.start(spec, checkpoint)?;
        }
        Ok(subs)
    }

    fn stored_checkpoint(&self, spec: &SubscriptionFilterSpec) -> Result<Option<u64>, StoreError> {
        match self
            .shared
            .db
            .kv_get(&checkpoint_key(&spec.log_group_name, &spec.filter_name))?
        {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("subscription checkpoint {v:?}"))),
        }
    }

    fn start(
        &self,
        spec: SubscriptionFilterSpec,
        checkpoint: u64,
    ) -> Result<(), SubscriptionError> {
        let (pattern, destination) = spec.compile()?;
        let feed = Arc::new(Feed {
            spec,
            pattern,
            destination,
            queue: Mutex::new(FeedQueue {
                batches: VecDeque::new(),
                catch_up: true,
            }),
            room: Condvar::new(),
            wake: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            checkpoint: AtomicU64::new(checkpoint),
            floor: checkpoint,
        });
        let mut feeds = self.feeds.write().unwrap_or_else(|p| p.into_inner());
        let list = feeds.entry(feed.spec.log_group_name.clone()).or_default();
        if let Some(old) = list
            .iter()
            .position(|f| f.spec.filter_name == feed.spec.filter_name)
        {
            list.remove(old).halt();
        }
        list.push(feed.clone());
        self.runtime.spawn(run_feed(feed, self.shared.clone()));
        Ok(())
    }

    /// PutSubscriptionFilter: creates (starting after `start_after_seq`, or after the newest
    /// batch seen when `None`) or replaces by name, keeping a replaced filter's checkpoint.
    pub(crate) fn put(
        &self,
        group: &str,
        mut spec: SubscriptionFilterSpec,
        start_after_seq: Option<u64>,
        now_ms: i64,
    ) -> Result<(), SubscriptionError> {
        spec.log_group_name = group.to_string();
        if let (_, Destination::Vault { arn }) = spec.compile()? {
            self.check_vault_target(&arn)?;
        }
        let existing = self.describe(group, None)?;
        let replacing = existing.iter().find(|f| f.filter_name == spec.filter_name);
        if replacing.is_none() && existing.len() >= SUBSCRIPTION_FILTERS_PER_GROUP_MAX {
            return Err(SubscriptionError::Limit(format!(
                "Resource limit exceeded: a log group may have at most {SUBSCRIPTION_FILTERS_PER_GROUP_MAX} subscription filters"
            )));
        }
        spec.creation_time = replacing.map(|f| f.creation_time).unwrap_or(now_ms);
        let checkpoint = match self.stored_checkpoint(&spec)? {
            Some(c) if replacing.is_some() => c,
            _ => {
                let c = start_after_seq.unwrap_or_else(|| self.seen_seq.load(Ordering::SeqCst));
                self.shared
                    .db
                    .kv_put(&checkpoint_key(group, &spec.filter_name), &c.to_string())?;
                c
            }
        };
        let text = serde_json::to_string(&spec).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.shared
            .db
            .kv_put(&spec_key(group, &spec.filter_name), &text)?;
        self.start(spec, checkpoint)
    }

    /// A vault destination must name an existing `vault` target, and this process must have a
    /// client to reach it.
    fn check_vault_target(&self, arn: &str) -> Result<(), SubscriptionError> {
        if self.shared.remote.is_none() {
            return Err(SubscriptionError::Invalid(
                "this vault was started without a client for vault destinations".into(),
            ));
        }
        match self.shared.db.action_target(arn)? {
            Some(t) if t.remote_vault().is_some() => Ok(()),
            Some(_) => Err(SubscriptionError::Invalid(format!(
                "{arn} is not a vault target"
            ))),
            None => Err(SubscriptionError::Invalid(format!(
                "no action target {arn}: create it with PutActionTarget (type vault) first"
            ))),
        }
    }

    /// DescribeSubscriptionFilters for one group, ordered by name.
    pub(crate) fn describe(
        &self,
        group: &str,
        name_prefix: Option<&str>,
    ) -> Result<Vec<SubscriptionFilterSpec>, SubscriptionError> {
        let prefix = format!("{SPEC_KEY}{group}|{}", name_prefix.unwrap_or(""));
        let mut out = Vec::new();
        for (key, value) in self.shared.db.kv_scan(&prefix)? {
            let spec: SubscriptionFilterSpec = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
            if spec.log_group_name == group {
                out.push(spec);
            }
        }
        Ok(out)
    }

    /// DeleteSubscriptionFilter: stops delivery and forgets the checkpoint.
    pub(crate) fn delete(&self, group: &str, name: &str) -> Result<(), SubscriptionError> {
        if self.shared.db.kv_get(&spec_key(group, name))?.is_none() {
            return Err(SubscriptionError::NotFound(
                "The specified subscription filter does not exist.".into(),
            ));
        }
        {
            let mut feeds = self.feeds.write().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = feeds.get_mut(group) {
                list.retain(|f| {
                    let keep = f.spec.filter_name != name;
                    if !keep {
                        f.halt();
                    }
                    keep
                });
                if list.is_empty() {
                    feeds.remove(group);
                }
            }
        }
        self.shared.db.kv_delete(&spec_key(group, name))?;
        self.shared.db.kv_delete(&checkpoint_key(group, name))?;
        Ok(())
    }

    /// Removes every filter of a deleted group.
    pub(crate) fn delete_group(&self, group: &str) -> Result<(), SubscriptionError> {
        for spec in self.describe(group, None)? {
            self.delete(group, &spec.filter_name)?;
        }
        Ok(())
    }

    /// The delivered checkpoint of a running filter.
    pub(crate) fn checkpoint(&self, group: &str, name: &str) -> Option<u64> {
        self.feeds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)?
            .iter()
            .find(|f| f.spec.filter_name == name)
            .map(|f| f.checkpoint.load(Ordering::SeqCst))
    }

    /// Hands an acknowledged batch to the group's filters. Never blocks when an event source
    /// is configured; otherwise waits while a filter's queue is full.
    pub(crate) fn offer(&self, group: &str, events: &Arc<Vec<StoredEvent>>) {
        if let Some(max) = events.iter().map(|e| e.seq).max() {
            self.seen_seq.fetch_max(max, Ordering::SeqCst);
        }
        let feeds = self
            .feeds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned();
        let Some(feeds) = feeds else { return };
        for feed in feeds {
            let mut q = feed.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.batches.len() >= QUEUE_BATCHES_MAX {
                if self.shared.source.is_some() {
                    // The events are stored: read them back later instead of holding them.
                    q.batches.clear();
                    q.catch_up = true;
                } else {
                    while q.batches.len() >= QUEUE_BATCHES_MAX && !feed.stop.load(Ordering::SeqCst)
                    {
                        q = feed
                            .room
                            .wait_timeout(q, Duration::from_millis(200))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    q.batches.push_back(events.clone());
                }
            } else {
                q.batches.push_back(events.clone());
            }
            drop(q);
            feed.wake.notify_one();
        }
    }

    pub(crate) fn shutdown(&self) {
        for list in self
            .feeds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            for f in list {
                f.halt();
            }
        }
        if let Some(tx) = self
            .stop_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Feed {
    fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.room.notify_all();
        self.wake.notify_one();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The next step: `Some(None)` to catch up, `Some(Some(batch))` for a live batch.
    fn next(&self) -> Option<Option<Arc<Vec<StoredEvent>>>> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.catch_up {
            q.catch_up = false;
            // Everything queued so far is stored too; the catch-up read covers it.
            q.batches.clear();
            self.room.notify_all();
            return Some(None);
        }
        let b = q.batches.pop_front()?;
        self.room.notify_all();
        Some(Some(b))
    }
}

async fn run_feed(feed: Arc<Feed>, shared: Arc<Shared>) {
    let mut recent = RecentRanges::default();
    while !feed.stopped() {
        let notified = feed.wake.notified();
        let step = feed.next();
        match step {
            None => {
                // Bounded wait so a missed wake-up or a stop is noticed.
                let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
            }
            Some(None) => catch_up(&feed, &shared, &mut recent).await,
            Some(Some(batch)) => {
                let checkpoint = feed.checkpoint.load(Ordering::SeqCst);
                let fresh: Vec<&StoredEvent> = batch
                    .iter()
                    .filter(|e| {
                        e.seq > feed.floor && (e.seq > checkpoint || !recent.contains(e.seq))
                    })
                    .collect();
                let (Some(lo), Some(hi)) = (
                    batch.iter().map(|e| e.seq).min(),
                    batch.iter().map(|e| e.seq).max(),
                ) else {
                    continue;
                };
                if !fresh.is_empty() && !deliver(&feed, &shared, &fresh).await {
                    return;
                }
                recent.add(lo, hi);
                advance(&feed, &shared, hi);
            }
        }
    }
}

async fn catch_up(feed: &Arc<Feed>, shared: &Arc<Shared>, recent: &mut RecentRanges) {
    let Some(source) = shared.source.clone() else {
        return;
    };
    let mut backoff_ms = BACKOFF_MS_FIRST;
    loop {
        if feed.stopped() {
            return;
        }
        let after = feed.checkpoint.load(Ordering::SeqCst);
        let group = feed.spec.log_group_name.clone();
        let src = source.clone();
        let read = tokio::task::spawn_blocking(move || {
            src.events_after(&group, after, CATCH_UP_EVENTS_MAX)
        })
        .await;
        let mut events = match read {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => {
                tracing::warn!(filter = feed.spec.filter_name, error = %e, "subscription catch-up read failed; retrying");
                sleep_backoff(&mut backoff_ms).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "subscription catch-up task failed; retrying");
                sleep_backoff(&mut backoff_ms).await;
                continue;
            }
        };
        backoff_ms = BACKOFF_MS_FIRST;
        events.retain(|e| e.seq > after);
        events.sort_by_key(|e| e.seq);
        let Some(hi) = events.last().map(|e| e.seq) else {
            return;
        };
        let full = events.len() >= CATCH_UP_EVENTS_MAX;
        let refs: Vec<&StoredEvent> = events.iter().collect();
        if !deliver(feed, shared, &refs).await {
            return;
        }
        // The read covered every stored event of the group in (after, hi].
        recent.add(after + 1, hi);
        advance(feed, shared, hi);
        if !full {
            return;
        }
    }
}

/// Records `hi` as delivered (memory, then the database) unless the feed was stopped.
fn advance(feed: &Feed, shared: &Shared, hi: u64) {
    if feed.stopped() || hi <= feed.checkpoint.load(Ordering::SeqCst) {
        return;
    }
    feed.checkpoint.store(hi, Ordering::SeqCst);
    let key = checkpoint_key(&feed.spec.log_group_name, &feed.spec.filter_name);
    if let Err(e) = shared.db.kv_put(&key, &hi.to_string()) {
        // Memory is ahead of disk: a restart re-delivers from the older checkpoint.
        tracing::error!(error = %e, "cannot store a subscription checkpoint");
    }
}

async fn sleep_backoff(backoff_ms: &mut u64) {
    tokio::time::sleep(Duration::from_millis(*backoff_ms)).await;
    *backoff_ms = (*backoff_ms * 2).min(BACKOFF_MS_MAX);
}

/// Delivers the matching events of `events`, retrying until the destination accepts them.
/// Returns false only when the feed was stopped first.
async fn deliver(feed: &Feed, shared: &Shared, events: &[&StoredEvent]) -> bool {
    let matching: Vec<&StoredEvent> = events
        .iter()
        .copied()
        .filter(|e| feed.pattern.matches(&e.message))
        .collect();
    if matching.is_empty() {
        return true;
    }
    if let Destination::Vault { arn } = &feed.destination {
        return forward(feed, shared, arn, &matching).await;
    }
    let bodies = envelopes(
        &shared.owner,
        &feed.spec.log_group_name,
        &feed.spec.filter_name,
        &matching,
    );
    let mut backoff_ms = BACKOFF_MS_FIRST;
    let mut sent = 0;
    while sent < bodies.len() {
        if feed.stopped() {
            return false;
        }
        match send(feed, shared, &bodies[sent..]).await {
            Ok(n) => {
                sent += n;
                backoff_ms = BACKOFF_MS_FIRST;
            }
            Err((n, e)) => {
                sent += n;
                tracing::warn!(
                    filter = feed.spec.filter_name,
                    destination = feed.spec.destination_arn,
                    error = %e,
                    "subscription delivery failed; retrying"
                );
                sleep_backoff(&mut backoff_ms).await;
            }
        }
    }
    true
}

/// Writes `matching` to another vault, batch after batch, each retried until accepted.
/// Returns false only when the feed was stopped first.
async fn forward(feed: &Feed, shared: &Shared, arn: &str, matching: &[&StoredEvent]) -> bool {
    let events = forwarded_events(matching);
    let mut backoff_ms = BACKOFF_MS_FIRST;
    for range in put_batches(&events) {
        let batch = &events[range];
        loop {
            if feed.stopped() {
                return false;
            }
            match put_remote(shared, arn, batch).await {
                Ok(rejected) => {
                    if rejected > 0 {
                        tracing::warn!(
                            filter = feed.spec.filter_name,
                            destination = arn,
                            rejected,
                            "the destination vault rejected events as too old or too new"
                        );
                    }
                    backoff_ms = BACKOFF_MS_FIRST;
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        filter = feed.spec.filter_name,
                        destination = arn,
                        error = %e,
                        "subscription forwarding failed; retrying"
                    );
                    sleep_backoff(&mut backoff_ms).await;
                }
            }
        }
    }
    true
}

/// One PutLogEvents call to the vault `arn` names; the number of events it rejected.
async fn put_remote(
    shared: &Shared,
    arn: &str,
    batch: &[crate::remote::ForwardedEvent],
) -> Result<usize, String> {
    let remote = shared
        .remote
        .as_ref()
        .ok_or("this vault has no client for vault destinations")?;
    // Read on every call so a replaced target (e.g. a rotated key) takes effect.
    let target = shared
        .db
        .action_target(arn)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no action target {arn}"))?
        .remote_vault()
        .ok_or_else(|| format!("{arn} is not a vault target"))?;
    Ok(remote.put_log_events(&target, batch).await?.rejected)
}

/// Sends envelopes in order; returns how many were accepted (and the error that stopped it).
async fn send(feed: &Feed, shared: &Shared, bodies: &[String]) -> Result<usize, (usize, String)> {
    match &feed.destination {
        Destination::File { path } => {
            let path = path.clone();
            let mut text = String::new();
            for b in bodies {
                text.push_str(b);
                text.push('\n');
            }
            let n = bodies.len();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                f.write_all(text.as_bytes())?;
                f.sync_data()
            })
            .await
            .map_err(|e| (0, e.to_string()))?
            .map_err(|e| (0, e.to_string()))?;
            Ok(n)
        }
        Destination::Webhook { arn } => {
            let target = shared
                .db
                .action_target(arn)
                .map_err(|e| (0, e.to_string()))?
                .ok_or_else(|| (0, format!("no action target {arn}")))?;
            let ActionKind::Webhook {
                url,
                secret,
                timeout_ms,
                ..
            } = target.kind
            else {
                return Err((0, format!("{arn} is not a webhook")));
            };
            for (i, body) in bodies.iter().enumerate() {
                let result = shared
                    .client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header(
                        "X-Trailvault-Signature",
                        signature(secret.as_bytes(), body.as_bytes()),
                    )
                    .timeout(Duration::from_millis(timeout_ms.unwrap_or(HTTP_TIMEOUT_MS)))
                    .body(body.clone())
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => return Err((i, format!("HTTP {}", r.status().as_u16()))),
                    Err(e) => return Err((i, format!("request failed: {e}"))),
                }
            }
            Ok(bodies.len())
        }
        Destination::Vault { arn } => Err((0, format!("{arn} takes events, not envelopes"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, stream: &str, msg: &str) -> StoredEvent {
        StoredEvent {
            seq,
            group: "g".into(),
            stream: stream.into(),
            timestamp_ms: 1_000 + seq as i64,
            ingestion_time_ms: 2_000,
            message: msg.into(),
            normalized: None,
        }
    }

    #[test]
    fn destinations_parse_and_reject() {
        assert_eq!(
            Destination::parse("file:///var/x.log").unwrap(),
            Destination::File {
                path: "/var/x.log".into()
            }
        );
        assert!(matches!(
            Destination::parse("arn:trailvault:webhook:ops").unwrap(),
            Destination::Webhook { .. }
        ));
        assert_eq!(
            Destination::parse("arn:trailvault:vault:central").unwrap(),
            Destination::Vault {
                arn: "arn:trailvault:vault:central".into()
            }
        );
        for bad in [
            "",
            "file://relative",
            "file:///dir/",
            "arn:trailvault:webhook:",
            "arn:aws:lambda:us-east-1:1:function:f",
            "arn:trailvault:command:x",
            "arn:trailvault:vault:",
            "arn:trailvault:vault:a/b",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn envelopes_group_by_stream_and_split() {
        let a = ev(1, "s1", "one");
        let b = ev(2, "s2", "two");
        let c = ev(3, "s1", "three");
        let out = envelopes("123", "g", "f", &[&a, &b, &c]);
        assert_eq!(out.len(), 2);
        let first: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(first["messageType"], "DATA_MESSAGE");
        assert_eq!(first["owner"], "123");
        assert_eq!(first["logGroup"], "g");
        assert_eq!(first["logStream"], "s1");
        assert_eq!(first["subscriptionFilters"], serde_json::json!(["f"]));
        assert_eq!(first["logEvents"][1]["message"], "three");
        assert_eq!(first["logEvents"][1]["id"], c.event_id());
        assert_eq!(first["logEvents"][1]["timestamp"], 1_003);
        let big = "x".repeat(ENVELOPE_BYTES_MAX / 2 + 1);
        let events: Vec<StoredEvent> = (0..3).map(|i| ev(i, "s", &big)).collect();
        let refs: Vec<&StoredEvent> = events.iter().collect();
        assert_eq!(envelopes("1", "g", "f", &refs).len(), 3);
    }

    #[test]
    fn spec_validation() {
        let spec = |name: &str, pattern: &str, dist: &str| SubscriptionFilterSpec {
            filter_name: name.into(),
            log_group_name: "g".into(),
            filter_pattern: pattern.into(),
            destination_arn: "file:///tmp/x".into(),
            role_arn: None,
            distribution: dist.into(),
            creation_time: 0,
        };
        assert!(spec("ok", "ERROR", "Random").compile().is_ok());
        assert!(spec("", "ERROR", "Random").compile().is_err());
        assert!(spec("a|b", "ERROR", "Random").compile().is_err());
        assert!(spec("ok", "{ $.a = ", "Random").compile().is_err());
        assert!(spec("ok", "", "Sideways").compile().is_err());
    }

    #[test]
    fn recent_ranges_are_bounded() {
        let mut r = RecentRanges::default();
        for i in 0..(RECENT_RANGES_MAX as u64 + 10) {
            r.add(i * 10, i * 10 + 5);
        }
        assert!(!r.contains(0));
        assert!(r.contains(RECENT_RANGES_MAX as u64 * 10 + 3));
        assert!(!r.contains(RECENT_RANGES_MAX as u64 * 10 + 7));
    }
}
