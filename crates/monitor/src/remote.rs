//! Forwarding subscription matches to another trailvault: the destination
//! `arn:trailvault:vault:NAME` names a `vault` action target (endpoint, region, access key,
//! log group and stream), and each matching event is written there with PutLogEvents, keeping
//! its timestamp and message.
//!
//! The monitor crate does not speak the wire protocol: the binary injects a [`RemoteVault`]
//! (implemented over the CloudWatch Logs client and its SigV4 signing). This module cuts the
//! events into batches the API accepts ([`put_batches`]).
//!
//! Secrets: the secret access key lives only in the action target (the monitor database, like
//! a webhook secret); DescribeActionTargets redacts it and a subscription filter only holds
//! the target's ARN.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use trailvault_model::limits::{BATCH_BYTES_MAX, BATCH_EVENTS_MAX, BATCH_SPAN_MS_MAX};
use trailvault_model::StoredEvent;

/// Where and as whom to write: the `vault` action target, secret included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteVaultTarget {
    /// `http://host:port` of the other vault.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub log_group_name: String,
    pub log_stream_name: String,
}

/// One forwarded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

/// What the other vault did with an accepted PutLogEvents call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutOutcome {
    /// Events it skipped as too old, too new or expired (`rejectedLogEventsInfo`): sending
    /// them again cannot succeed, so they are reported, not retried.
    pub rejected: usize,
}

pub type PutFuture<'a> = Pin<Box<dyn Future<Output = Result<PutOutcome, String>> + Send + 'a>>;

/// Writes one batch (already within the API's limits, in timestamp order) to another vault.
/// An `Err` means nothing can be assumed stored: the caller retries the whole batch (at least
/// once). Implementations create the target group and stream when they are missing.
pub trait RemoteVault: Send + Sync {
    fn put_log_events<'a>(
        &'a self,
        target: &'a RemoteVaultTarget,
        events: &'a [ForwardedEvent],
    ) -> PutFuture<'a>;
}

/// The matches of one delivery as PutLogEvents wants them: in timestamp order (stable, so
/// events with one timestamp keep their `seq` order).
pub fn forwarded_events(events: &[&StoredEvent]) -> Vec<ForwardedEvent> {
    let mut out: Vec<ForwardedEvent> = events
        .iter()
        .map(|e| ForwardedEvent {
            timestamp_ms: e.timestamp_ms,
            message: e.message.clone(),
        })
        .collect();
    out.sort_by_key(|e| e.timestamp_ms);
    out
}

/// Cuts timestamp-ordered `events` into PutLogEvents batches: at most [`BATCH_EVENTS_MAX`]
/// events, [`BATCH_BYTES_MAX`] bytes (message + 26 each) and [`BATCH_SPAN_MS_MAX`] of time.
/// Every event is in exactly one batch; a batch always holds at least one event (each stored
/// event already passed the same limits when it was put).
pub fn put_batches(events: &[ForwardedEvent]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let first_ts = events[start].timestamp_ms;
        let mut end = start;
        let mut bytes = 0;
        while end < events.len() {
            let size = trailvault_model::limits::EVENT_OVERHEAD_BYTES + events[end].message.len();
            let fits = end - start < BATCH_EVENTS_MAX
                && bytes + size <= BATCH_BYTES_MAX
                && events[end].timestamp_ms - first_ts <= BATCH_SPAN_MS_MAX;
            if end > start && !fits {
                break;
            }
            bytes += size;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, len: usize) -> ForwardedEvent {
        ForwardedEvent {
            timestamp_ms: ts,
            message: "x".repeat(len),
        }
    }

    #[test]
    fn batches_respect_count_bytes_and_span() {
        assert!(put_batches(&[]).is_empty());
        let many: Vec<ForwardedEvent> =
            (0..BATCH_EVENTS_MAX + 1).map(|i| ev(i as i64, 1)).collect();
        assert_eq!(
            put_batches(&many),
            vec![0..BATCH_EVENTS_MAX, BATCH_EVENTS_MAX..BATCH_EVENTS_MAX + 1]
        );
        // Two events of exactly half the byte limit (overhead included) share a batch.
        let half = BATCH_BYTES_MAX / 2 - trailvault_model::limits::EVENT_OVERHEAD_BYTES;
        let big = vec![ev(0, half), ev(0, half), ev(0, half + 1), ev(0, 1)];
        assert_eq!(put_batches(&big), vec![0..2, 2..4]);
        let spread = vec![
            ev(0, 1),
            ev(BATCH_SPAN_MS_MAX, 1),
            ev(BATCH_SPAN_MS_MAX + 1, 1),
        ];
        assert_eq!(put_batches(&spread), vec![0..2, 2..3]);
    }

    #[test]
    fn forwarded_events_are_in_timestamp_order_stably() {
        let mk = |seq, ts, m: &str| StoredEvent {
            seq,
            group: "g".into(),
            stream: "s".into(),
            timestamp_ms: ts,
            ingestion_time_ms: 0,
            message: m.into(),
            normalized: None,
        };
        let (a, b, c) = (mk(1, 5, "a"), mk(2, 3, "b"), mk(3, 5, "c"));
        let out = forwarded_events(&[&a, &b, &c]);
        let msgs: Vec<&str> = out.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["b", "a", "c"]);
    }
}
