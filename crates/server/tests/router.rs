//! The router with `oneshot`: signing, dispatch and the AWS error shape, without a socket.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};
use trailvault_auth::Credentials;
use trailvault_server::router;
use trailvault_store::{Vault, VaultConfig};

struct Harness {
    app: axum::Router,
    creds: Credentials,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(VaultConfig::new(dir.path())).await.unwrap();
    let (keys, creds) = common::admin_keys();
    Harness {
        app: router(common::state(vault, keys, "123456789012", None)),
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
        common::call(&self.app, sign_with, action, &body).await
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
