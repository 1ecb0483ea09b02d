//! Where imported events are written: straight into a vault's data directory (embedded) or
//! through a running vault's CloudWatch Logs API.
//!
//! Both offer the same operations: make a group exist, open a stream and learn how many
//! events it already holds, write one file's events and record the file in the import ledger
//! ([`Sink::write_file`]), and read the ledger. Resuming relies on two facts: a file's
//! records are stored in file order, in pieces stored whole or not at all, and a file enters
//! the ledger only once all of them are stored. So the stream's event count is exactly the
//! number of the file's leading records already stored.
//!
//! - Embedded, files are staged in memory and sealed straight into segments
//!   ([`Vault::seal_imported`]) a few tens of MB at a time, together with their ledger
//!   entries: one catalog transaction makes a set of files' events and their entries visible
//!   and durable at once, after every segment file was synced. No WAL, no tail.
//! - Through the API, a file's events go out in PutLogEvents batches, each acknowledged
//!   durable by the server, and the ledger entries follow in batches of their own.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use trailvault_client::{ClientError, LogsClient, RetryPolicy};
use trailvault_model::limits::{BATCH_BYTES_MAX, BATCH_EVENTS_MAX, EVENT_OVERHEAD_BYTES};
use trailvault_store::{
    now_ms, ImportedStream, InputEvent, LogGroupMeta, StoreError, StreamFilter, Vault,
};

use crate::placement::{LEDGER_GROUP, LEDGER_STREAM};

/// Serialized PutLogEvents request bytes kept under this (the server accepts 8 MiB; the
/// normalized form travels next to each message).
const REQUEST_BYTES_TARGET: usize = 6 * 1024 * 1024;
/// Attempts per batch through the API before the import stops.
const PUT_ATTEMPTS_MAX: u32 = 6;
/// Completed files recorded in the ledger per write, through the API.
const LEDGER_FLUSH_ENTRIES: usize = 256;
/// Embedded: seals of staged files in flight at once (see [`Vault::seal_imported`]).
pub const SEALS_IN_FLIGHT: usize = 2;

// One sink exists per run, so the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Sink {
    Embedded {
        vault: Vault,
        groups: Mutex<HashSet<String>>,
        /// Per group, the event count of every stream, taken the first time the import
        /// touches the group and kept current by this process (which holds the vault's lock).
        streams: tokio::sync::Mutex<HashMap<String, HashMap<String, u64>>>,
        /// Files written but not yet sealed (see [`Sink::write_file`]).
        staged: Mutex<Staged>,
        /// A permit per seal in flight: [`SEALS_IN_FLIGHT`] at once, so one encodes while the
        /// one before writes and commits (the vault keeps their commits in order).
        sealing: tokio::sync::Semaphore,
    },
    Api {
        client: LogsClient,
        /// The same client without automatic retries: a retried PutLogEvents whose first
        /// answer was lost would store the batch twice, so puts are retried here, after
        /// recounting the stream.
        put_client: LogsClient,
        groups: Mutex<HashSet<String>>,
        /// Entries of files whose events are stored, waiting for the next ledger write.
        ledger: Mutex<Vec<LedgerEntry>>,
    },
}

/// Files whose events wait, in memory, to be sealed together with their ledger entries.
#[derive(Default)]
pub struct Staged {
    streams: Vec<ImportedStream>,
    ledger: Vec<LedgerEntry>,
    message_bytes: usize,
}

/// The part of one file's records bound for one stream, not yet stored there.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPart {
    pub group: String,
    pub stream: String,
    /// Events the stream held before (from [`Sink::open_stream`]).
    pub stored_before: u64,
    pub events: Vec<InputEvent>,
}

/// One completed file, as the ledger records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LedgerEntry {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub format: String,
    pub group: String,
    pub stream: String,
    /// Records of the file stored as events.
    pub records: u64,
    /// Records of the file quarantined.
    pub quarantined: u64,
    /// Set when the file as a whole was quarantined (unreadable compression, over the cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_quarantined: Option<String>,
    pub imported_ms: i64,
}

fn is_already_exists(e: &StoreError) -> bool {
    matches!(e, StoreError::AlreadyExists(_))
}

fn client_code_is(e: &ClientError, code: &str) -> bool {
    e.code() == Some(code)
}

/// Cuts events into batches within CloudWatch's limits: at most 10,000 events and 1,048,576
/// bytes counting 26 bytes per event; the serialized size (API mode) is kept under
/// [`REQUEST_BYTES_TARGET`]. Never returns an empty batch.
/// Each item is (message bytes, serialized request bytes).
pub fn batch_ranges(items: &[(usize, usize)]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes, mut req) = (0, 0usize, 0usize);
    for (i, &(msg, r)) in items.iter().enumerate() {
        let b = msg + EVENT_OVERHEAD_BYTES;
        if i > start
            && (i - start >= BATCH_EVENTS_MAX
                || bytes + b > BATCH_BYTES_MAX
                || req + r > REQUEST_BYTES_TARGET)
        {
            out.push(start..i);
            start = i;
            bytes = 0;
            req = 0;
        }
        bytes += b;
        req += r;
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}

impl Sink {
    pub fn embedded(vault: Vault) -> Sink {
        Sink::Embedded {
            vault,
            groups: Mutex::new(HashSet::new()),
            streams: tokio::sync::Mutex::new(HashMap::new()),
            staged: Mutex::new(Staged::default()),
            sealing: tokio::sync::Semaphore::new(SEALS_IN_FLIGHT),
        }
    }

    pub fn api(client: LogsClient) -> Sink {
        let put_client = client.clone().with_retry(RetryPolicy {
            attempts_max: 1,
            ..RetryPolicy::default()
        });
        Sink::Api {
            client,
            put_client,
            groups: Mutex::new(HashSet::new()),
            ledger: Mutex::new(Vec::new()),
        }
    }

    fn known_groups(&self) -> &Mutex<HashSet<String>> {
        match self {
            Sink::Embedded { groups, .. } | Sink::Api { groups, .. } => groups,
        }
    }

    /// Makes `group` exist (an existing group is fine).
    pub async fn ensure_group(&self, group: &str) -> anyhow::Result<()> {
        if self
            .known_groups()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(group)
        {
            return Ok(());
        }
        match self {
            Sink::Embedded { vault, .. } => {
                let meta = LogGroupMeta {
                    name: group.to_owned(),
                    created_ms: now_ms(),
                    retention_days: None,
                    kms_key_id: None,
                    log_group_class: "STANDARD".to_owned(),
                    deletion_protection: false,
                    tags: Default::default(),
                };
                match vault.create_log_group(meta) {
                    Ok(()) => {}
                    Err(e) if is_already_exists(&e) => {}
                    Err(e) => return Err(e).with_context(|| format!("creating log group {group}")),
                }
            }
            Sink::Api { client, .. } => match client.create_log_group(group).await {
                Ok(()) => {}
                Err(e) if client_code_is(&e, "ResourceAlreadyExistsException") => {}
                Err(e) => return Err(e).with_context(|| format!("creating log group {group}")),
            },
        }
        self.known_groups()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.to_owned());
        Ok(())
    }

    /// Opens `stream` in `group` (which must exist) and returns how many events it holds.
    /// Through the API the stream is created now; embedded, by the seal of its first events.
    pub async fn open_stream(&self, group: &str, stream: &str) -> anyhow::Result<u64> {
        match self {
            Sink::Embedded { vault, streams, .. } => {
                let mut all = streams.lock().await;
                if !all.contains_key(group) {
                    let snapshot = vault
                        .log_streams(group)
                        .with_context(|| format!("listing streams of {group}"))?
                        .into_iter()
                        .map(|s| (s.name, s.event_count))
                        .collect();
                    all.insert(group.to_owned(), snapshot);
                }
                let known = all.get_mut(group).ok_or_else(|| anyhow!("unreachable"))?;
                // A new stream is created by the seal that stores its first events (one
                // catalog commit for many files, none left empty by an interrupted run);
                // this process holds the vault's lock, so nothing else creates it meanwhile.
                Ok(*known.entry(stream.to_owned()).or_insert(0))
            }
            Sink::Api { client, .. } => match client.create_log_stream(group, stream).await {
                Ok(()) => Ok(0),
                Err(e) if client_code_is(&e, "ResourceAlreadyExistsException") => {
                    self.count_api(group, stream).await
                }
                Err(e) => {
                    Err(e).with_context(|| format!("creating log stream {stream} in {group}"))
                }
            },
        }
    }

    /// Events in a stream, counted by paging GetLogEvents (DescribeLogStreams has no count).
    async fn count_api(&self, group: &str, stream: &str) -> anyhow::Result<u64> {
        let Sink::Api { client, .. } = self else {
            bail!("count_api on an embedded sink");
        };
        let mut count = 0u64;
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "logGroupName": group,
                "logStreamName": stream,
                "startFromHead": true,
                "limit": 10_000,
            });
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let page = client
                .call("GetLogEvents", body)
                .await
                .with_context(|| format!("counting events of {group}/{stream}"))?;
            let n = page["events"].as_array().map_or(0, Vec::len) as u64;
            count += n;
            let next = page["nextForwardToken"].as_str().map(str::to_owned);
            if n == 0 || next.is_none() || next == token {
                return Ok(count);
            }
            token = next;
        }
    }

    /// Stores one file's parts (its events, its quarantined records) and records the file in
    /// the ledger, never before all of them are durable.
    ///
    /// Embedded, the file is staged; once the staged files' messages reach the vault's
    /// `seal_bytes`, they are sealed, with their ledger entries, in one
    /// [`Vault::seal_imported`] (this call then waits for it). [`Sink::flush`] seals the rest.
    /// Through the API, the parts are put now, batch by batch, and the entry waits for the
    /// next ledger write.
    pub async fn write_file(
        &self,
        parts: Vec<StreamPart>,
        entry: LedgerEntry,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Embedded {
                vault,
                streams,
                staged,
                ..
            } => {
                {
                    let mut all = streams.lock().await;
                    for p in &parts {
                        if let Some(n) = all.get_mut(&p.group).and_then(|g| g.get_mut(&p.stream)) {
                            *n += p.events.len() as u64;
                        }
                    }
                }
                let full = {
                    let mut st = staged.lock().unwrap_or_else(|p| p.into_inner());
                    for p in parts {
                        st.message_bytes += p.events.iter().map(|e| e.message.len()).sum::<usize>();
                        st.streams.push(ImportedStream {
                            group: p.group,
                            stream: p.stream,
                            events: p.events,
                        });
                    }
                    st.ledger.push(entry);
                    st.message_bytes >= vault.config().seal_bytes
                };
                if full {
                    self.seal_staged(false).await?;
                }
            }
            Sink::Api { ledger, .. } => {
                for p in parts {
                    self.append_api(&p.group, &p.stream, p.events, p.stored_before)
                        .await?;
                }
                let full = {
                    let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                    l.push(entry);
                    l.len() >= LEDGER_FLUSH_ENTRIES
                };
                if full {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    /// Records every file written so far: seals the staged files (embedded) or writes the
    /// waiting ledger entries (API).
    pub async fn flush(&self) -> anyhow::Result<()> {
        match self {
            Sink::Embedded { .. } => self.seal_staged(true).await,
            Sink::Api { ledger, .. } => {
                let batch = std::mem::take(&mut *ledger.lock().unwrap_or_else(|p| p.into_inner()));
                self.append_ledger(&batch).await
            }
        }
    }

    /// Seals the staged files and their ledger entries in one commit; unless `all`, only when
    /// they are still over the threshold once this call's turn comes (another call may have
    /// sealed them meanwhile). With `all`, waits for the seals in flight too, so everything
    /// written before is recorded when this returns.
    async fn seal_staged(&self, all: bool) -> anyhow::Result<()> {
        let Sink::Embedded {
            vault,
            staged,
            sealing,
            streams: counts,
            ..
        } = self
        else {
            bail!("seal_staged on an api sink");
        };
        let permits = if all { SEALS_IN_FLIGHT as u32 } else { 1 };
        let _turn = sealing
            .acquire_many(permits)
            .await
            .expect("the sink never closes its seal semaphore");
        let Staged {
            mut streams,
            ledger,
            message_bytes,
        } = {
            let mut st = staged.lock().unwrap_or_else(|p| p.into_inner());
            if st.ledger.is_empty() || (!all && st.message_bytes < vault.config().seal_bytes) {
                return Ok(());
            }
            std::mem::take(&mut *st)
        };
        self.ensure_group(LEDGER_GROUP).await?;
        self.open_stream(LEDGER_GROUP, LEDGER_STREAM).await?;
        let events = ledger_events(&ledger)?;
        let entries = events.len() as u64;
        streams.push(ImportedStream {
            group: LEDGER_GROUP.to_owned(),
            stream: LEDGER_STREAM.to_owned(),
            events,
        });
        vault.seal_imported(streams).await.with_context(|| {
            format!(
                "sealing {} imported files ({message_bytes} bytes of records)",
                ledger.len()
            )
        })?;
        if let Some(n) = counts
            .lock()
            .await
            .get_mut(LEDGER_GROUP)
            .and_then(|g| g.get_mut(LEDGER_STREAM))
        {
            *n += entries;
        }
        Ok(())
    }

    /// Appends `events` to an open stream through the API, in batches, in order.
    /// `stored_before` is the stream's count before (from [`Sink::open_stream`]); used to
    /// recount after an uncertain failure.
    async fn append_api(
        &self,
        group: &str,
        stream: &str,
        events: Vec<InputEvent>,
        stored_before: u64,
    ) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let bodies: Vec<Value> = events.iter().map(event_json).collect();
        let sizes: Vec<_> = events
            .iter()
            .zip(&bodies)
            .map(|(e, v)| (e.message.len(), v.to_string().len() + 1))
            .collect();
        let ranges = batch_ranges(&sizes);
        let mut stored = stored_before;
        for r in ranges {
            self.put_api(group, stream, &bodies[r.clone()], &mut stored)
                .await?;
        }
        Ok(())
    }

    async fn put_api(
        &self,
        group: &str,
        stream: &str,
        batch: &[Value],
        stored: &mut u64,
    ) -> anyhow::Result<()> {
        let Sink::Api { put_client, .. } = self else {
            bail!("put_api on an embedded sink");
        };
        let body = json!({
            "logGroupName": group,
            "logStreamName": stream,
            "logEvents": batch,
            "trailvaultImport": true,
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match put_client.call("PutLogEvents", body.clone()).await {
                Ok(resp) => {
                    if let Some(info) = resp.get("rejectedLogEventsInfo") {
                        bail!("the vault rejected events of {group}/{stream} although the import flag was set: {info}");
                    }
                    *stored += batch.len() as u64;
                    return Ok(());
                }
                Err(e) => e,
            };
            let definite = matches!(&err, ClientError::Service { status, .. } if *status >= 400 && *status < 500 && *status != 429 && !err.code().is_some_and(|c| c.contains("Throttl")));
            if definite || attempt >= PUT_ATTEMPTS_MAX {
                return Err(err).with_context(|| format!("writing to {group}/{stream}"));
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
            // The batch may have been stored before the answer was lost: look.
            let now = self.count_api(group, stream).await?;
            if now == *stored + batch.len() as u64 {
                *stored = now;
                return Ok(());
            }
            if now != *stored {
                bail!("{group}/{stream} holds {now} events, expected {} or {}: another writer is using the stream", *stored, *stored + batch.len() as u64);
            }
        }
    }

    /// Every ledger entry, by key (a key imported into several groups has several).
    pub async fn load_ledger(&self) -> anyhow::Result<HashMap<String, Vec<LedgerEntry>>> {
        let messages: Vec<String> = match self {
            Sink::Embedded { vault, .. } => {
                if vault.log_group(LEDGER_GROUP).is_err() {
                    return Ok(HashMap::new());
                }
                vault
                    .read_events(
                        LEDGER_GROUP,
                        &StreamFilter::One(LEDGER_STREAM.to_owned()),
                        None,
                        None,
                    )
                    .await
                    .or_else(|e| match e {
                        StoreError::NotFound(_) => Ok(Vec::new()),
                        e => Err(e),
                    })
                    .context("reading the import ledger")?
                    .into_iter()
                    .map(|e| e.message)
                    .collect()
            }
            Sink::Api { client, .. } => {
                let mut out = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let mut body = json!({
                        "logGroupName": LEDGER_GROUP,
                        "logStreamName": LEDGER_STREAM,
                        "startFromHead": true,
                    });
                    if let Some(t) = &token {
                        body["nextToken"] = json!(t);
                    }
                    let page = match client.call("GetLogEvents", body).await {
                        Ok(p) => p,
                        Err(e) if client_code_is(&e, "ResourceNotFoundException") => break,
                        Err(e) => return Err(e).context("reading the import ledger"),
                    };
                    let events = page["events"].as_array().cloned().unwrap_or_default();
                    let n = events.len();
                    out.extend(
                        events
                            .into_iter()
                            .filter_map(|e| e["message"].as_str().map(str::to_owned)),
                    );
                    let next = page["nextForwardToken"].as_str().map(str::to_owned);
                    if n == 0 || next.is_none() || next == token {
                        break;
                    }
                    token = next;
                }
                out
            }
        };
        let mut ledger: HashMap<String, Vec<LedgerEntry>> = HashMap::new();
        for m in messages {
            // A ledger line that does not parse is ignored: the file is then re-checked
            // against its stream's count, which is exact anyway.
            if let Ok(entry) = serde_json::from_str::<LedgerEntry>(&m) {
                ledger.entry(entry.key.clone()).or_default().push(entry);
            }
        }
        Ok(ledger)
    }

    /// Appends entries to the ledger through the API, after the files' events were stored
    /// (each PutLogEvents acknowledgement means durable).
    async fn append_ledger(&self, entries: &[LedgerEntry]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.ensure_group(LEDGER_GROUP).await?;
        let before = self.open_stream(LEDGER_GROUP, LEDGER_STREAM).await?;
        let events = ledger_events(entries)?;
        self.append_api(LEDGER_GROUP, LEDGER_STREAM, events, before)
            .await
    }

    /// Ends a run: records every file written ([`Sink::flush`]); embedded, also seals what
    /// the vault's tail may hold (a run of an older version that stopped half-way).
    pub async fn finish(&self) -> anyhow::Result<()> {
        self.flush().await?;
        if let Sink::Embedded { vault, .. } = self {
            vault.seal_now().await.context("sealing the vault's tail")?;
        }
        Ok(())
    }
}

fn event_json(e: &InputEvent) -> Value {
    let mut v = json!({ "timestamp": e.timestamp_ms, "message": e.message });
    if let Some(n) = &e.normalized {
        if let Ok(n) = serde_json::to_value(n) {
            v["trailvaultNormalized"] = n;
        }
    }
    v
}

/// Ledger entries as the events of the ledger stream (one JSON document each, stamped now).
fn ledger_events(entries: &[LedgerEntry]) -> anyhow::Result<Vec<InputEvent>> {
    let now = now_ms();
    entries
        .iter()
        .map(|e| {
            Ok(InputEvent {
                timestamp_ms: now,
                message: serde_json::to_string(e)?,
                normalized: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(len: usize) -> (usize, usize) {
        (len, 0)
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let events: Vec<_> = (0..25_000).map(|_| ev(1)).collect();
        let r = batch_ranges(&events);
        assert_eq!(r, vec![0..10_000, 10_000..20_000, 20_000..25_000]);

        // 4 events of 300,000 bytes: 3 fit in 1 MiB (900,078), the 4th does not.
        let events: Vec<_> = (0..4).map(|_| ev(300_000)).collect();
        assert_eq!(batch_ranges(&events), vec![0..3, 3..4]);
        // Exactly at the limit is allowed.
        let exact = BATCH_BYTES_MAX - EVENT_OVERHEAD_BYTES;
        assert_eq!(batch_ranges(&[ev(exact)]), vec![0..1]);
        assert_eq!(batch_ranges(&[ev(exact), ev(0)]), vec![0..1, 1..2]);
        assert!(batch_ranges(&[]).is_empty());
        // The request-size bound.
        let events: Vec<_> = (0..10).map(|_| (10, REQUEST_BYTES_TARGET / 4)).collect();
        let r = batch_ranges(&events);
        assert_eq!(r, vec![0..4, 4..8, 8..10]);
    }
}
