//! The unsealed tail: acknowledged events that are durable in the WAL but not yet in a
//! sealed segment. Batches are kept as the `Arc`s the writer produced, so the same
//! allocation serves readers, the sealer and the monitoring engine.

use std::collections::HashMap;
use std::sync::Arc;

use trailvault_model::StoredEvent;

/// One stream's acknowledged batches, in acknowledgement order.
type StreamBatches = Vec<Arc<Vec<StoredEvent>>>;

#[derive(Debug, Default)]
pub struct Memtable {
    /// group → stream → batches.
    groups: HashMap<String, HashMap<String, StreamBatches>>,
    pub message_bytes: usize,
    pub event_count: usize,
    pub oldest_ingestion_ms: Option<i64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

impl Memtable {
    pub fn push(&mut self, batch: Arc<Vec<StoredEvent>>) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        self.first_seq.get_or_insert(first.seq);
        self.last_seq = Some(last.seq);
        self.oldest_ingestion_ms
            .get_or_insert(first.ingestion_time_ms);
        self.event_count += batch.len();
        self.message_bytes += batch.iter().map(|e| e.message.len()).sum::<usize>();
        self.groups
            .entry(first.group.clone())
            .or_default()
            .entry(first.stream.clone())
            .or_default()
            .push(batch);
    }

    pub fn is_empty(&self) -> bool {
        self.event_count == 0
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    pub fn has_stream(&self, group: &str, stream: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.contains_key(stream))
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Every event of a group, optionally only of the streams `keep` accepts.
    pub fn events_of<'a>(
        &'a self,
        group: &str,
        keep: &'a dyn Fn(&str) -> bool,
    ) -> impl Iterator<Item = &'a StoredEvent> + 'a {
        self.groups
            .get(group)
            .into_iter()
            .flat_map(|streams| streams.iter())
            .filter(move |(s, _)| keep(s))
            .flat_map(|(_, batches)| batches.iter())
            .flat_map(|b| b.iter())
    }
}
