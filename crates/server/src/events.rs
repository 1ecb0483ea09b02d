//! PutLogEvents, GetLogEvents, FilterLogEvents.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};
use trailvault_model::StoredEvent;
use trailvault_monitor::pattern::FilterPattern;
use trailvault_store::{now_ms, InputEvent, PutOptions, StreamFilter};

use crate::groups::one_group;
use crate::token::{decode_cursor, encode_cursor, Cursor};
use crate::{ApiError, AppState};

const EVENTS_LIMIT_MAX: usize = 10_000;
/// A page of events stops growing past this many message bytes (CloudWatch: 1 MB).
const PAGE_BYTES_MAX: usize = 1_048_576;
const STREAM_NAMES_MAX: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEvents {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
    /// trailvault extension for importing history: accept events of any age and in any
    /// order (they are sorted). The request is still signed and size-limited.
    #[serde(default, rename = "trailvaultImport")]
    import: bool,
}

#[derive(Deserialize)]
pub struct InputLogEvent {
    timestamp: i64,
    message: String,
    /// trailvault extension: the importer's normalized form of `message`. Derived data only;
    /// the raw message stays the evidence. AWS clients never send it.
    #[serde(default, rename = "trailvaultNormalized")]
    normalized: Option<Box<trailvault_model::Normalized>>,
}

pub async fn put_log_events(app: &AppState, req: PutLogEvents) -> Result<Value, ApiError> {
    let events = req
        .log_events
        .into_iter()
        .map(|e| InputEvent {
            timestamp_ms: e.timestamp,
            message: e.message,
            normalized: e.normalized,
        })
        .collect();
    let out = app
        .vault
        .put_log_events(
            &req.log_group_name,
            &req.log_stream_name,
            events,
            if req.import {
                PutOptions::import(now_ms())
            } else {
                PutOptions::api(now_ms())
            },
        )
        .await?;
    crate::metrics::record_acknowledged(out.stored.len());
    if let Some(monitor) = &app.monitor {
        if !out.stored.is_empty() {
            // Never hold the acknowledgement for monitoring: when its queue is full, hand the
            // batch over from a blocking thread instead.
            if let Err(events) = monitor.try_submit(&req.log_group_name, out.stored.clone()) {
                let monitor = monitor.clone();
                let group = req.log_group_name.clone();
                tokio::task::spawn_blocking(move || monitor.submit(&group, events));
            }
        }
    }
    let mut resp = json!({});
    if let Some(last) = out.stored.last() {
        resp["nextSequenceToken"] = json!(format!("{:056}", last.seq));
    }
    if !out.rejected.is_empty() {
        let mut info = json!({});
        if let Some(i) = out.rejected.too_new_start_index {
            info["tooNewLogEventStartIndex"] = json!(i);
        }
        if let Some(i) = out.rejected.too_old_end_index {
            info["tooOldLogEventEndIndex"] = json!(i);
        }
        if let Some(i) = out.rejected.expired_end_index {
            info["expiredLogEventEndIndex"] = json!(i);
        }
        resp["rejectedLogEventsInfo"] = info;
    }
    Ok(resp)
}

fn check_events_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(EVENTS_LIMIT_MAX),
        Some(n) if (1..=EVENTS_LIMIT_MAX).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {EVENTS_LIMIT_MAX}"
        ))),
    }
}

fn bad_token() -> ApiError {
    ApiError::invalid("The specified nextToken is invalid.")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<usize>,
    start_from_head: Option<bool>,
}

fn key(e: &StoredEvent) -> Cursor {
    (e.timestamp_ms, e.seq)
}

/// Take events from the front while the page has room (always at least one).
fn page_len<'a>(events: impl Iterator<Item = &'a StoredEvent>, limit: usize) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for e in events.take(limit) {
        bytes += e.message.len() + 26;
        if n > 0 && bytes > PAGE_BYTES_MAX {
            break;
        }
        n += 1;
    }
    n
}

pub async fn get_log_events(app: &AppState, req: GetLogEvents) -> Result<Value, ApiError> {
    let group = one_group(req.log_group_name, req.log_group_identifier)?;
    let limit = check_events_limit(req.limit)?;
    let token = match &req.next_token {
        Some(t) => {
            let (kind, c) = decode_cursor(t).ok_or_else(bad_token)?;
            if kind == 'c' {
                return Err(bad_token());
            }
            Some((kind, c))
        }
        None => None,
    };
    let all = app
        .vault
        .read_events(
            &group,
            &StreamFilter::One(req.log_stream_name.clone()),
            req.start_time,
            req.end_time,
        )
        .await?;
    let forward = match token {
        Some((kind, _)) => kind == 'f',
        None => req.start_from_head.unwrap_or(false),
    };
    let page: &[StoredEvent] = if forward {
        let from = match token {
            Some((_, c)) => all.partition_point(|e| key(e) <= c),
            None => 0,
        };
        let n = page_len(all[from..].iter(), limit);
        &all[from..from + n]
    } else {
        let to = match token {
            Some((_, c)) => all.partition_point(|e| key(e) < c),
            None => all.len(),
        };
        let n = page_len(all[..to].iter().rev(), limit);
        &all[to - n..to]
    };
    let (fwd, bwd) = match (page.first(), page.last()) {
        (Some(first), Some(last)) => (
            encode_cursor('f', key(last)),
            encode_cursor('b', key(first)),
        ),
        // An empty page: hand back the token that was passed in, as CloudWatch does.
        _ => match &req.next_token {
            Some(t) => (t.clone(), t.clone()),
            None => {
                let start = req.start_time.unwrap_or(i64::MIN);
                (
                    encode_cursor('f', (start.saturating_sub(1), u64::MAX)),
                    encode_cursor('b', (start, 0)),
                )
            }
        },
    };
    let events: Vec<Value> = page
        .iter()
        .map(|e| {
            json!({
                "timestamp": e.timestamp_ms,
                "message": e.message,
                "ingestionTime": e.ingestion_time_ms,
            })
        })
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": fwd,
        "nextBackwardToken": bwd,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

pub async fn filter_log_events(app: &AppState, req: FilterLogEvents) -> Result<Value, ApiError> {
    let group = one_group(req.log_group_name, req.log_group_identifier)?;
    let limit = check_events_limit(req.limit)?;
    let filter = match (req.log_stream_names, req.log_stream_name_prefix) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive",
            ))
        }
        (Some(names), None) => {
            if names.is_empty() || names.len() > STREAM_NAMES_MAX {
                return Err(ApiError::invalid(format!(
                    "logStreamNames must hold 1 to {STREAM_NAMES_MAX} names"
                )));
            }
            StreamFilter::Names(names.into_iter().collect::<HashSet<_>>())
        }
        (None, Some(p)) => StreamFilter::Prefix(p),
        (None, None) => StreamFilter::All,
    };
    let pattern = match req.filter_pattern.as_deref() {
        Some(p) => Some(FilterPattern::parse(p).map_err(|e| ApiError::invalid(e.to_string()))?),
        None => None,
    };
    let after = match &req.next_token {
        Some(t) => match decode_cursor(t) {
            Some(('c', c)) => Some(c),
            _ => return Err(bad_token()),
        },
        None => None,
    };
    let all = app
        .vault
        .read_events(&group, &filter, req.start_time, req.end_time)
        .await?;
    let from = after.map_or(0, |c| all.partition_point(|e| key(e) <= c));
    let mut page = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    let mut more = false;
    for e in &all[from..] {
        if pattern.as_ref().is_some_and(|p| !p.matches(&e.message)) {
            continue;
        }
        bytes += e.message.len() + 26;
        if page.len() == limit || (!page.is_empty() && bytes > PAGE_BYTES_MAX) {
            more = true;
            break;
        }
        last = Some(key(e));
        page.push(json!({
            "logStreamName": e.stream,
            "timestamp": e.timestamp_ms,
            "message": e.message,
            "ingestionTime": e.ingestion_time_ms,
            "eventId": e.event_id(),
        }));
    }
    let mut resp = json!({ "events": page, "searchedLogStreams": [] });
    if let (true, Some(c)) = (more, last) {
        resp["nextToken"] = json!(encode_cursor('c', c));
    }
    Ok(resp)
}
