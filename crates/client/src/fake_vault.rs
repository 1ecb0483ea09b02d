//! A small in-memory CloudWatch Logs server on 127.0.0.1:0 for the client's tests. Every
//! request is checked by `trailvault_auth::verify`, so the tests cover the whole signed round
//! trip; PutLogEvents enforces the batch limits, so the CLI's batching is checked against them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use trailvault_auth::{AccessKey, Credentials, MemoryKeyStore, SignedRequest, VerifyConfig};
use trailvault_model::limits::{
    BATCH_BYTES_MAX, BATCH_EVENTS_MAX, EVENT_BYTES_MAX, EVENT_OVERHEAD_BYTES,
};

use crate::client::{LogsClient, RetryPolicy};

pub const KEY_ID: &str = "TVAKCLIENTTEST000001";
pub const SECRET: &str = "clientTestSecret/clientTestSecret+client";
/// FilterLogEvents pages hold at most this many events, so tests cross pages.
pub const FILTER_PAGE_EVENTS: usize = 3;
/// GetLogEvents pages hold at most this many events.
pub const GET_PAGE_EVENTS: usize = 7;
/// DescribeLogGroups pages hold at most this many groups.
pub const GROUPS_PAGE: usize = 2;

#[derive(Debug, Clone)]
pub struct Event {
    pub stream: String,
    pub timestamp: i64,
    pub message: String,
    pub seq: u64,
}

#[derive(Default)]
pub struct Fake {
    pub groups: BTreeMap<String, BTreeMap<String, Vec<Event>>>,
    /// Every action received with a valid signature, in order.
    pub actions: Vec<String>,
    /// Errors to answer with before handling, first in first out: (status, code).
    pub fail_next: Vec<(u16, &'static str)>,
    /// Sizes (events) of every accepted PutLogEvents batch.
    pub batch_sizes: Vec<usize>,
    seq: u64,
}

pub struct FakeVault {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<Fake>>,
}

impl FakeVault {
    pub async fn start() -> FakeVault {
        let state = Arc::new(Mutex::new(Fake::default()));
        let keys: Arc<MemoryKeyStore> = Arc::new(
            [AccessKey {
                id: KEY_ID.into(),
                secret: SECRET.into(),
                created_ms: 0,
                principal: "tester".into(),
            }]
            .into_iter()
            .collect(),
        );
        let app = axum::Router::new()
            .route("/", axum::routing::any(handle))
            .with_state((state.clone(), keys));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeVault { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> LogsClient {
        LogsClient::new(
            &self.endpoint(),
            Credentials::new(KEY_ID, SECRET),
            "us-east-1",
        )
        .with_retry(RetryPolicy {
            attempts_max: 3,
            backoff_base: std::time::Duration::from_millis(1),
            backoff_cap: std::time::Duration::from_millis(5),
        })
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.state.lock().unwrap()
    }
}

fn err(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("x-amzn-errortype", code.to_string())],
        json!({ "__type": code, "message": message }).to_string(),
    )
        .into_response()
}

type AppState = (Arc<Mutex<Fake>>, Arc<MemoryKeyStore>);

async fn handle(
    State((state, keys)): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = SignedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers: headers.clone(),
        body: body.clone(),
    };
    if let Err(e) = trailvault_auth::verify(
        &req,
        keys.as_ref(),
        SystemTime::now(),
        &VerifyConfig::default(),
    ) {
        return err(400, e.code(), &e.message());
    }
    let action = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("Logs_20140328."))
        .unwrap_or("")
        .to_string();
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-amz-json-1.1")
    );
    let input: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    let mut s = state.lock().unwrap();
    s.actions.push(action.clone());
    if !s.fail_next.is_empty() {
        let (status, code) = s.fail_next.remove(0);
        return err(status, code, "injected failure");
    }
    match dispatch(&mut s, &action, &input) {
        Ok(v) => (StatusCode::OK, v.to_string()).into_response(),
        Err((code, message)) => err(400, code, &message),
    }
}

type Answer = Result<Value, (&'static str, String)>;

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn dispatch(s: &mut Fake, action: &str, input: &Value) -> Answer {
    let group = str_of(input, "logGroupName").to_string();
    let not_found = || {
        (
            "ResourceNotFoundException",
            "The specified log group does not exist.".to_string(),
        )
    };
    match action {
        "CreateLogGroup" => {
            if s.groups.contains_key(&group) {
                return Err(("ResourceAlreadyExistsException", "exists".into()));
            }
            s.groups.insert(group, BTreeMap::new());
            Ok(json!({}))
        }
        "CreateLogStream" => {
            let stream = str_of(input, "logStreamName").to_string();
            let g = s.groups.get_mut(&group).ok_or_else(not_found)?;
            if g.contains_key(&stream) {
                return Err(("ResourceAlreadyExistsException", "exists".into()));
            }
            g.insert(stream, Vec::new());
            Ok(json!({}))
        }
        "DescribeLogGroups" => {
            let prefix = str_of(input, "logGroupNamePrefix");
            let names: Vec<&String> = s.groups.keys().filter(|n| n.starts_with(prefix)).collect();
            let from: usize = str_of(input, "nextToken").parse().unwrap_or(0);
            let page: Vec<Value> = names
                .iter()
                .skip(from)
                .take(GROUPS_PAGE)
                .map(|n| json!({ "logGroupName": n, "creationTime": 1_795_317_198_000i64, "storedBytes": 0 }))
                .collect();
            let mut out = json!({ "logGroups": page });
            if from + GROUPS_PAGE < names.len() {
                out["nextToken"] = json!((from + GROUPS_PAGE).to_string());
            }
            Ok(out)
        }
        "PutLogEvents" => {
            let stream = str_of(input, "logStreamName").to_string();
            let events = input["logEvents"].as_array().cloned().unwrap_or_default();
            if events.is_empty() || events.len() > BATCH_EVENTS_MAX {
                return Err((
                    "InvalidParameterException",
                    format!("{} events", events.len()),
                ));
            }
            let mut bytes = 0;
            let mut last = i64::MIN;
            for e in &events {
                let m = str_of(e, "message");
                let size = m.len() + EVENT_OVERHEAD_BYTES;
                if m.is_empty() || size > EVENT_BYTES_MAX {
                    return Err((
                        "InvalidParameterException",
                        format!("event of {size} bytes"),
                    ));
                }
                bytes += size;
                let ts = e["timestamp"].as_i64().unwrap_or(0);
                if ts < last {
                    return Err(("InvalidParameterException", "out of order".into()));
                }
                last = ts;
                if m.contains("REFUSE_BATCH") {
                    return Err(("InvalidParameterException", "refused on purpose".into()));
                }
            }
            if bytes > BATCH_BYTES_MAX {
                return Err((
                    "InvalidParameterException",
                    format!("batch of {bytes} bytes"),
                ));
            }
            // Leading events whose message starts with "OLD " are reported as too old.
            let too_old = events
                .iter()
                .take_while(|e| str_of(e, "message").starts_with("OLD "))
                .count();
            let mut seq = s.seq;
            let g = s.groups.get_mut(&group).ok_or_else(not_found)?;
            let st = g.get_mut(&stream).ok_or_else(not_found)?;
            for e in &events[too_old..] {
                seq += 1;
                st.push(Event {
                    stream: stream.clone(),
                    timestamp: e["timestamp"].as_i64().unwrap_or(0),
                    message: str_of(e, "message").to_string(),
                    seq,
                });
            }
            s.seq = seq;
            s.batch_sizes.push(events.len());
            let mut out = json!({ "nextSequenceToken": "ignored" });
            if too_old > 0 {
                out["rejectedLogEventsInfo"] = json!({ "tooOldLogEventEndIndex": too_old });
            }
            Ok(out)
        }
        "GetLogEvents" => {
            let stream = str_of(input, "logStreamName");
            let events = s
                .groups
                .get(&group)
                .and_then(|g| g.get(stream))
                .ok_or_else(not_found)?;
            let start_t = input["startTime"].as_i64().unwrap_or(i64::MIN);
            let end_t = input["endTime"].as_i64().unwrap_or(i64::MAX);
            let matching: Vec<&Event> = events
                .iter()
                .filter(|e| e.timestamp >= start_t && e.timestamp < end_t)
                .collect();
            let limit = (input["limit"].as_u64().unwrap_or(10_000) as usize).min(GET_PAGE_EVENTS);
            let token = str_of(input, "nextToken");
            let head = input["startFromHead"].as_bool().unwrap_or(false);
            let (from, to) = if let Some(i) = token.strip_prefix("f/") {
                let from: usize = i.parse().unwrap_or(0);
                (from, (from + limit).min(matching.len()))
            } else if let Some(i) = token.strip_prefix("b/") {
                let to: usize = i.parse().unwrap_or(0);
                (to.saturating_sub(limit), to)
            } else if head {
                (0, limit.min(matching.len()))
            } else {
                (matching.len().saturating_sub(limit), matching.len())
            };
            let page: Vec<Value> = matching[from..to]
                .iter()
                .map(|e| json!({ "timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp }))
                .collect();
            Ok(json!({
                "events": page,
                "nextForwardToken": format!("f/{to}"),
                "nextBackwardToken": format!("b/{from}"),
            }))
        }
        "FilterLogEvents" => {
            let g = s.groups.get(&group).ok_or_else(not_found)?;
            let prefix = str_of(input, "logStreamNamePrefix");
            let start_t = input["startTime"].as_i64().unwrap_or(i64::MIN);
            let pattern = str_of(input, "filterPattern");
            let mut all: Vec<&Event> = g
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .flat_map(|(_, evs)| evs.iter())
                .filter(|e| e.timestamp >= start_t && e.message.contains(pattern))
                .collect();
            all.sort_by_key(|e| (e.timestamp, e.seq));
            let from: usize = str_of(input, "nextToken").parse().unwrap_or(0);
            let page: Vec<Value> = all
                .iter()
                .skip(from)
                .take(FILTER_PAGE_EVENTS)
                .map(|e| {
                    json!({
                        "logStreamName": e.stream,
                        "timestamp": e.timestamp,
                        "message": e.message,
                        "ingestionTime": e.timestamp,
                        "eventId": e.seq.to_string(),
                    })
                })
                .collect();
            let mut out = json!({ "events": page, "searchedLogStreams": [] });
            if from + FILTER_PAGE_EVENTS < all.len() {
                out["nextToken"] = json!((from + FILTER_PAGE_EVENTS).to_string());
            }
            Ok(out)
        }
        other => Err((
            "UnknownOperationException",
            format!("unknown action {other}"),
        )),
    }
}
