//! The only crate that knows HTTP and the AWS wire protocol.
//!
//! Every request enters through [`handle`]: it reads the body under a size limit,
//! authenticates the SigV4 signature (the single authorization point: the authenticated
//! principal is checked against the action before anything runs), then dispatches on
//! `X-Amz-Target: Logs_20140328.<Action>` to the handler of that action. Protocol types stay
//! here; the store and the other crates never see JSON requests.

mod error;
mod events;
mod groups;
pub mod metrics;
mod monitoring;
mod queries;
mod subscriptions;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde::de::DeserializeOwned;
use trailvault_auth::{KeyStore, SignedRequest, VerifyConfig};
use trailvault_store::Vault;

pub use error::ApiError;

/// Largest request body accepted. A full PutLogEvents batch is 1 MiB of messages; JSON
/// escaping can grow that, so allow a generous multiple and refuse the rest up front.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024 * 1024;
pub const TARGET_PREFIX: &str = "Logs_20140328.";

/// What the server needs from the rest of the vault.
pub struct AppState {
    /// Metric filters, alarms and actions; every acknowledged batch is handed to it.
    pub monitor: Option<Arc<trailvault_monitor::engine::MonitorEngine>>,
    pub vault: Vault,
    pub keys: Arc<dyn KeyStore>,
    pub verify: VerifyConfig,
    /// Account id used in ARNs.
    pub account_id: String,
    /// Region used in ARNs when the request's scope names none.
    pub region: String,
    /// The last full validation of the digest chain (a `ValidationSummary` as JSON), written
    /// by the vault's periodic validator; `None` until the first one finishes.
    pub integrity_status: Arc<std::sync::RwLock<Option<serde_json::Value>>>,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/", any(handle))
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// Serve until the future `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn handle(
    State(app): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rid = request_id();
    let mut resp = match handle_inner(&app, method, uri, headers, body).await {
        Ok(json) => {
            let mut r = json.to_string().into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            r
        }
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn handle_inner(
    app: &AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<serde_json::Value, ApiError> {
    let body = axum::body::to_bytes(body, REQUEST_BYTES_MAX)
        .await
        .map_err(|_| {
            ApiError::invalid(format!(
                "request body is larger than {REQUEST_BYTES_MAX} bytes"
            ))
        })?;
    let signed = SignedRequest {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers: headers.clone(),
        body: body.clone(),
    };
    let principal = trailvault_auth::verify(
        &signed,
        app.keys.as_ref(),
        std::time::SystemTime::now(),
        &app.verify,
    )
    .map_err(|e| ApiError::new(e.code(), e.message()))?;
    if method != Method::POST {
        return Err(ApiError::new(
            "UnknownOperationException",
            "requests must be POST / with X-Amz-Target",
        ));
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(action) = target.strip_prefix(TARGET_PREFIX) else {
        return Err(ApiError::new(
            "UnknownOperationException",
            format!("unknown operation target {target:?}"),
        ));
    };
    tracing::debug!(action, principal = %principal.name, "request");
    dispatch(app, action, &body).await
}

async fn dispatch(
    app: &AppState,
    action: &str,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    match action {
        "CreateLogGroup" => groups::create_log_group(app, parse(body)?),
        "DescribeLogGroups" => groups::describe_log_groups(app, parse(body)?),
        "DeleteLogGroup" => groups::delete_log_group(app, parse(body)?),
        "PutRetentionPolicy" => groups::put_retention_policy(app, parse(body)?),
        "DeleteRetentionPolicy" => groups::delete_retention_policy(app, parse(body)?),
        "TagResource" => groups::tag_resource(app, parse(body)?),
        "UntagResource" => groups::untag_resource(app, parse(body)?),
        "ListTagsForResource" => groups::list_tags_for_resource(app, parse(body)?),
        "TagLogGroup" => groups::tag_log_group(app, parse(body)?),
        "UntagLogGroup" => groups::untag_log_group(app, parse(body)?),
        "ListTagsLogGroup" => groups::list_tags_log_group(app, parse(body)?),
        "CreateLogStream" => groups::create_log_stream(app, parse(body)?),
        "DescribeLogStreams" => groups::describe_log_streams(app, parse(body)?),
        "DeleteLogStream" => groups::delete_log_stream(app, parse(body)?),
        "PutLogEvents" => events::put_log_events(app, parse(body)?).await,
        "GetLogEvents" => events::get_log_events(app, parse(body)?).await,
        "FilterLogEvents" => events::filter_log_events(app, parse(body)?).await,
        "StartQuery" => queries::start_query(app, parse(body)?),
        "GetQueryResults" => queries::get_query_results(app, parse(body)?),
        "StopQuery" => queries::stop_query(app, parse(body)?),
        "DescribeQueries" => queries::describe_queries(app, parse(body)?),
        "PutMetricFilter" => monitoring::put_metric_filter(app, parse(body)?),
        "DescribeMetricFilters" => monitoring::describe_metric_filters(app, parse(body)?),
        "DeleteMetricFilter" => monitoring::delete_metric_filter(app, parse(body)?),
        "TestMetricFilter" => monitoring::test_metric_filter(parse(body)?),
        "PutMetricAlarm" => monitoring::put_metric_alarm(app, parse(body)?),
        "DescribeAlarms" => monitoring::describe_alarms(app, parse(body)?),
        "DescribeAlarmHistory" => monitoring::describe_alarm_history(app, parse(body)?),
        "SetAlarmState" => monitoring::set_alarm_state(app, parse(body)?),
        "ListMetrics" => monitoring::list_metrics(app, parse(body)?),
        "GetMetricStatistics" => monitoring::get_metric_statistics(app, parse(body)?),
        "DeleteAlarms" => monitoring::delete_alarms(app, parse(body)?),
        "PutActionTarget" => monitoring::put_action_target(app, parse(body)?),
        "DescribeActionTargets" => monitoring::describe_action_targets(app),
        "PutSubscriptionFilter" => subscriptions::put_subscription_filter(app, parse(body)?).await,
        "DescribeSubscriptionFilters" => {
            subscriptions::describe_subscription_filters(app, parse(body)?)
        }
        "DeleteSubscriptionFilter" => subscriptions::delete_subscription_filter(app, parse(body)?),
        "DescribeValidationStatus" => Ok(describe_validation_status(app)),
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("operation {other} is not supported by this vault"),
        )),
    }
}

/// trailvault extension: the last full validation of the digest chain.
fn describe_validation_status(app: &AppState) -> serde_json::Value {
    let status = app
        .integrity_status
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match status {
        Some(s) => serde_json::json!({ "status": "Complete", "lastValidation": s }),
        None => serde_json::json!({ "status": "NotYetRun" }),
    }
}

/// Parse a request body; `{}` for an empty one. Malformed JSON or wrong member types are a
/// SerializationException, as AWS JSON services answer.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            "InvalidParameterException"
        } else {
            "SerializationException"
        };
        ApiError::new(code, format!("could not read the request: {e}"))
    })
}
