//! The harness every router test shares: a vault in a temp dir, an in-memory admin key, and
//! signed calls through the router with `oneshot`.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use trailvault_auth::{AccessKey, Credentials, MemoryKeyStore, SigningParams, VerifyConfig};
use trailvault_server::AppState;
use trailvault_store::Vault;

/// An admin key held in memory, and the credentials that sign with it.
pub fn admin_keys() -> (Arc<MemoryKeyStore>, Credentials) {
    let key = AccessKey::generate("admin").unwrap();
    let creds = Credentials::new(&key.id, &key.secret);
    let keys = MemoryKeyStore::default();
    keys.insert(key);
    (Arc::new(keys), creds)
}

pub fn state(
    vault: Vault,
    keys: Arc<MemoryKeyStore>,
    account_id: &str,
    monitor: Option<Arc<trailvault_monitor::MonitorEngine>>,
) -> Arc<AppState> {
    Arc::new(AppState {
        vault,
        keys,
        verify: VerifyConfig::default(),
        account_id: account_id.into(),
        region: "us-east-1".into(),
        monitor,
        integrity_status: Default::default(),
    })
}

/// Call `action` through the router, signed with `creds` (unsigned when `None`).
pub async fn call(
    app: &axum::Router,
    creds: Option<&Credentials>,
    action: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let body = body.to_string().into_bytes();
    let url = url::Url::parse("http://vault.test/").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_str(&format!("Logs_20140328.{action}")).unwrap(),
    );
    if let Some(creds) = creds {
        let params = SigningParams {
            credentials: creds,
            region: "us-east-1",
            service: "logs",
            time: SystemTime::now(),
        };
        headers.extend(trailvault_auth::sign("POST", &url, &headers, &body, &params).unwrap());
    }
    let mut req = Request::post("/").body(Body::from(body)).unwrap();
    *req.headers_mut() = headers;
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
