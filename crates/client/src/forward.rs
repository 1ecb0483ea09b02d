//! [`VaultForwarder`]: the monitor's [`RemoteVault`] over [`LogsClient`], so subscription
//! filters can deliver to another trailvault (`arn:trailvault:vault:NAME`) with the same
//! signing and error handling as every other call of this client.
//!
//! One [`LogsClient`] (and its connection pool) is kept per target identity. A missing target
//! group or stream is created once and the batch sent again. Retries are left to the caller
//! (the subscription feed retries a batch forever with backoff), so each call is one attempt.

use std::collections::HashMap;
use std::sync::Mutex;

use trailvault_auth::Credentials;
use trailvault_monitor::remote::{
    ForwardedEvent, PutFuture, PutOutcome, RemoteVault, RemoteVaultTarget,
};

use crate::client::{ClientError, InputLogEvent, PutLogEventsResponse};
use crate::{LogsClient, RetryPolicy};

/// Target identities kept before the cache is cleared (targets are few; this bounds a flood
/// of rotated keys).
const CLIENTS_MAX: usize = 64;

#[derive(Default)]
pub struct VaultForwarder {
    clients: Mutex<HashMap<RemoteVaultTarget, LogsClient>>,
}

impl VaultForwarder {
    fn client(&self, target: &RemoteVaultTarget) -> LogsClient {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= CLIENTS_MAX && !clients.contains_key(target) {
            clients.clear();
        }
        clients
            .entry(target.clone())
            .or_insert_with(|| {
                let credentials = Credentials {
                    access_key_id: target.access_key_id.clone(),
                    secret_access_key: target.secret_access_key.clone(),
                    session_token: None,
                    source: "a vault action target".into(),
                };
                LogsClient::new(&target.endpoint, credentials, &target.region).with_retry(
                    RetryPolicy {
                        attempts_max: 1,
                        ..RetryPolicy::default()
                    },
                )
            })
            .clone()
    }

    async fn put(
        &self,
        target: &RemoteVaultTarget,
        events: &[ForwardedEvent],
    ) -> Result<PutOutcome, ClientError> {
        let client = self.client(target);
        let input: Vec<InputLogEvent> = events
            .iter()
            .map(|e| InputLogEvent {
                timestamp: e.timestamp_ms,
                message: e.message.clone(),
            })
            .collect();
        let (group, stream) = (&target.log_group_name, &target.log_stream_name);
        let resp = match client.put_log_events(group, stream, &input).await {
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                ensure_exists(client.create_log_group(group).await)?;
                ensure_exists(client.create_log_stream(group, stream).await)?;
                client.put_log_events(group, stream, &input).await?
            }
            other => other?,
        };
        Ok(PutOutcome {
            rejected: rejected(&resp, events.len()),
        })
    }
}

fn ensure_exists(r: Result<(), ClientError>) -> Result<(), ClientError> {
    match r {
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(()),
        other => other,
    }
}

/// How many of `len` events the answer says were skipped.
fn rejected(resp: &PutLogEventsResponse, len: usize) -> usize {
    let Some(info) = resp.rejected_log_events_info else {
        return 0;
    };
    let old = info
        .too_old_log_event_end_index
        .max(info.expired_log_event_end_index)
        .unwrap_or(0)
        .min(len);
    let new = info
        .too_new_log_event_start_index
        .map(|i| len.saturating_sub(i.max(old)))
        .unwrap_or(0);
    old + new
}

impl RemoteVault for VaultForwarder {
    fn put_log_events<'a>(
        &'a self,
        target: &'a RemoteVaultTarget,
        events: &'a [ForwardedEvent],
    ) -> PutFuture<'a> {
        Box::pin(async move { self.put(target, events).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RejectedLogEventsInfo;

    #[test]
    fn rejected_counts_both_ends_once() {
        let resp =
            |old: Option<usize>, expired: Option<usize>, new: Option<usize>| PutLogEventsResponse {
                next_sequence_token: None,
                rejected_log_events_info: Some(RejectedLogEventsInfo {
                    too_new_log_event_start_index: new,
                    too_old_log_event_end_index: old,
                    expired_log_event_end_index: expired,
                }),
            };
        assert_eq!(rejected(&PutLogEventsResponse::default(), 10), 0);
        assert_eq!(rejected(&resp(Some(2), None, None), 10), 2);
        assert_eq!(rejected(&resp(Some(2), Some(3), Some(8)), 10), 5);
        assert_eq!(rejected(&resp(None, None, Some(0)), 10), 10);
        assert_eq!(rejected(&resp(Some(6), None, Some(4)), 10), 10);
    }
}
