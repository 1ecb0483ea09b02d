//! The router with `oneshot`: signing, dispatch and the AWS error shape, without a socket.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use trailvault_auth::{AccessKey, Credentials, MemoryKeyStore, SigningParams, VerifyConfig};
use trailvault_server::{router, AppState};
use trailvault_store::{Vault, VaultConfig};

struct Harness {
    app: axum::Router,
    creds: Credentials,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(VaultConfig::new(dir.path())).await.unwrap();
    let key = AccessKey::generate("admin").unwrap();
    let creds = Credentials::new(&key.id, &key.secret);
    let keys = MemoryKeyStore::default();
    keys.insert(key);
    let state = Arc::new(AppState {
        vault,
        keys: Arc::new(keys),
        verify: VerifyConfig::default(),
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        monitor: None,
        integrity_status: Default::default(),
    });
    Harness {
        app: router(state),
        creds,
        _dir: dir,
    }
}

impl Harness {
    async fn call(
        &self,
        action: &str,
        body: Value,
        sign_with: Option<&Credentials>,
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
        if let Some(creds) = sign_with {
            let params = SigningParams {
                credentials: creds,
                region: "eu-west-1",
                service: "logs",
                time: SystemTime::now(),
            };
            let added = trailvault_auth::sign("POST", &url, &headers, &body, &params).unwrap();
            headers.extend(added);
        }
        let mut req = Request::post("/").body(Body::from(body)).unwrap();
        *req.headers_mut() = headers;
        let resp = self.app.clone().oneshot(req).await.unwrap();
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
}

#[tokio::test]
async fn unsigned_requests_get_the_aws_error_shape() {
    let h = harness().await;
    let (status, body) = h.call("DescribeLogGroups", json!({}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_signature() {
    let h = harness().await;
    let wrong = Credentials::new(
        &h.creds.access_key_id,
        "not-the-secret-not-the-secret-not-the-sec",
    );
    let (status, body) = h.call("DescribeLogGroups", json!({}), Some(&wrong)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "InvalidSignatureException");
}

#[tokio::test]
async fn signed_requests_create_put_and_read() {
    let h = harness().await;
    let c = Some(&h.creds);
    let (s, _) = h
        .call("CreateLogGroup", json!({"logGroupName": "g"}), c)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = h
        .call("CreateLogGroup", json!({"logGroupName": "g"}), c)
        .await;
    assert_eq!(
        (s, body["__type"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("ResourceAlreadyExistsException")
        )
    );
    h.call(
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
        c,
    )
    .await;
    let now = trailvault_store::now_ms();
    let (s, body) = h
        .call("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s",
            "logEvents": [{"timestamp": now, "message": "{\"eventName\":\"ConsoleLogin\"}"}, {"timestamp": now + 1, "message": "plain"}]}), c)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, body) = h
        .call(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.eventName = \"ConsoleLogin\" }"}),
            c,
        )
        .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    let (s, body) = h
        .call(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.x = "}),
            c,
        )
        .await;
    assert_eq!(
        (s, body["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameterException"))
    );
    let (_, body) = h.call("DescribeLogGroups", json!({}), c).await;
    assert_eq!(
        body["logGroups"][0]["arn"],
        "arn:aws:logs:us-east-1:123456789012:log-group:g:*"
    );
    let (s, body) = h.call("NoSuchThing", json!({}), c).await;
    assert_eq!(
        (s, body["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("UnknownOperationException"))
    );
}
