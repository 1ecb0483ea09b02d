//! [`LogsClient`]: the CloudWatch Logs wire protocol (AWS JSON 1.1) over HTTP, signed with
//! SigV4 by `trailvault-auth`'s signer.
//!
//! Every call is `POST /` with `X-Amz-Target: Logs_20140328.<Action>` and
//! `Content-Type: application/x-amz-json-1.1`. Errors are read as botocore reads them: the code
//! from body `__type` only (cut at the first `:`, text after the last `#`), the message from
//! `message` or `Message`, a non-JSON body becomes the message.
//!
//! Retries: throttling codes and 429/5xx answers, and connection failures, are retried with
//! capped exponential backoff and full jitter, re-signed each time. A retried PutLogEvents can
//! store a batch twice when the first answer was lost after the vault committed it: delivery
//! is at-least-once, as with the AWS SDKs.

use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use trailvault_auth::{Credentials, SignError, SigningParams};
use url::Url;

/// Target prefix of the CloudWatch Logs API version this client speaks.
pub const TARGET_PREFIX: &str = "Logs_20140328.";
/// Content type of AWS JSON 1.1 requests.
pub const CONTENT_TYPE_JSON_1_1: &str = "application/x-amz-json-1.1";
/// The service name in the SigV4 credential scope.
pub const SERVICE: &str = "logs";
/// Response bodies larger than this are refused (a full GetLogEvents page is about 1 MiB of
/// messages; JSON escaping can grow that).
pub const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Error messages longer than this are cut when shown.
const ERROR_MESSAGE_CHARS_MAX: usize = 2048;

/// Codes retried at any HTTP status (the AWS SDKs' throttling and transient set).
/// `LimitExceededException` is left out on purpose: in CloudWatch Logs it means a resource
/// quota (too many groups or filters), which waiting does not fix.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "ServiceUnavailableException",
];
const RETRYABLE_STATUSES: &[u16] = &[429, 500, 502, 503, 504, 509];

#[derive(Debug, Error)]
pub enum ClientError {
    /// The vault answered with an AWS error.
    #[error("{code}: {message}")]
    Service {
        code: String,
        message: String,
        status: u16,
        request_id: Option<String>,
    },
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("could not reach {endpoint}: {source}")]
    Transport {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("could not sign the request: {0}")]
    Sign(#[from] SignError),
    #[error("the answer to {action} is not what the API promises: {reason}")]
    Decode { action: String, reason: String },
    #[error("the answer to {action} is larger than {RESPONSE_BYTES_MAX} bytes")]
    ResponseTooLarge { action: String },
}

impl ClientError {
    /// The AWS error code, for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            ClientError::Service { code, status, .. } => {
                RETRYABLE_CODES.contains(&code.as_str()) || RETRYABLE_STATUSES.contains(status)
            }
            ClientError::Transport { source, .. } => {
                source.is_connect() || source.is_timeout() || source.is_request()
            }
            _ => false,
        }
    }
}

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts_max: u32,
    /// Backoff before retry n is uniform in [0, min(cap, base × 2^(n-1))].
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_max: 5,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let ceiling = exp.min(self.backoff_cap);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(if ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=ms)
        })
    }
}

/// A CloudWatch Logs API client for one endpoint, identity and region.
#[derive(Debug, Clone)]
pub struct LogsClient {
    endpoint: String,
    url: Result<Url, String>,
    credentials: Credentials,
    region: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl LogsClient {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:4740`). An invalid endpoint is reported
    /// by the first call.
    pub fn new(endpoint: &str, credentials: Credentials, region: &str) -> LogsClient {
        let url = Url::parse(endpoint)
            .map_err(|e| e.to_string())
            .and_then(|u| match u.scheme() {
                "http" if u.host_str().is_some() => Ok(u),
                // Built without a TLS stack to keep the client small; a TLS-terminating proxy
                // in front of the vault serves https.
                "https" => Err(
                    "https endpoints are not supported by this build; use http:// \
                                (terminate TLS in a proxy in front of the vault)"
                        .to_string(),
                ),
                s => Err(format!(
                    "expected an http:// URL with a host, got scheme {s:?}"
                )),
            });
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        LogsClient {
            endpoint: endpoint.to_string(),
            url,
            credentials,
            region: region.to_string(),
            http,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> LogsClient {
        self.retry = retry;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Call `action` with a JSON request body; the JSON answer (`{}` for an empty one).
    pub async fn call(&self, action: &str, body: Value) -> Result<Value, ClientError> {
        // `Value` always serializes (its map keys are strings).
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        self.call_encoded(action, bytes.into()).await
    }

    /// Call `action` with an already encoded JSON body (for callers that build large bodies
    /// once, e.g. benchmarks and bulk writers).
    pub async fn call_encoded(
        &self,
        action: &str,
        bytes: bytes::Bytes,
    ) -> Result<Value, ClientError> {
        let url = self
            .url
            .as_ref()
            .map_err(|reason| ClientError::InvalidEndpoint {
                endpoint: self.endpoint.clone(),
                reason: reason.clone(),
            })?;
        let mut attempt = 1;
        loop {
            match self.attempt(url, action, &bytes).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.retry.attempts_max => {
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        url: &Url,
        action: &str,
        body: &bytes::Bytes,
    ) -> Result<Value, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_JSON_1_1),
        );
        let target = HeaderValue::from_str(&format!("{TARGET_PREFIX}{action}")).map_err(|_| {
            ClientError::Decode {
                action: action.to_string(),
                reason: "the action name cannot be sent in a header".into(),
            }
        })?;
        headers.insert(HeaderName::from_static("x-amz-target"), target);
        let added = trailvault_auth::sign(
            "POST",
            url,
            &headers,
            body,
            &SigningParams {
                credentials: &self.credentials,
                region: &self.region,
                service: SERVICE,
                time: SystemTime::now(),
            },
        )?;
        headers.extend(added);
        let transport = |source| ClientError::Transport {
            endpoint: self.endpoint.clone(),
            source,
        };
        let mut resp = self
            .http
            .post(url.clone())
            .headers(headers)
            .body(body.clone())
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut data = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if data.len() + chunk.len() > RESPONSE_BYTES_MAX {
                return Err(ClientError::ResponseTooLarge {
                    action: action.to_string(),
                });
            }
            data.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            if data.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Object(Default::default()));
            }
            return serde_json::from_slice(&data).map_err(|e| ClientError::Decode {
                action: action.to_string(),
                reason: e.to_string(),
            });
        }
        let (code, message) = parse_error_body(status, &data);
        Err(ClientError::Service {
            code,
            message,
            status,
            request_id,
        })
    }

    async fn call_typed<T: DeserializeOwned>(
        &self,
        action: &str,
        body: Value,
    ) -> Result<T, ClientError> {
        let v = self.call(action, body).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode {
            action: action.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn create_log_group(&self, group: &str) -> Result<(), ClientError> {
        self.call(
            "CreateLogGroup",
            serde_json::json!({ "logGroupName": group }),
        )
        .await
        .map(drop)
    }

    pub async fn create_log_stream(&self, group: &str, stream: &str) -> Result<(), ClientError> {
        self.call(
            "CreateLogStream",
            serde_json::json!({ "logGroupName": group, "logStreamName": stream }),
        )
        .await
        .map(drop)
    }

    /// One page of DescribeLogGroups.
    pub async fn describe_log_groups(
        &self,
        prefix: Option<&str>,
        next_token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DescribeLogGroupsPage, ClientError> {
        let mut body = serde_json::Map::new();
        if let Some(p) = prefix {
            body.insert("logGroupNamePrefix".into(), p.into());
        }
        if let Some(t) = next_token {
            body.insert("nextToken".into(), t.into());
        }
        if let Some(l) = limit {
            body.insert("limit".into(), l.into());
        }
        self.call_typed("DescribeLogGroups", Value::Object(body))
            .await
    }

    /// Every log group (following `nextToken`), as the AWS CLI's paginator does.
    pub async fn describe_all_log_groups(
        &self,
        prefix: Option<&str>,
    ) -> Result<Vec<LogGroup>, ClientError> {
        let mut groups = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .describe_log_groups(prefix, token.as_deref(), None)
                .await?;
            groups.extend(page.log_groups);
            match page.next_token.filter(|t| !t.is_empty()) {
                None => return Ok(groups),
                Some(t) if Some(&t) == token.as_ref() => {
                    return Err(ClientError::Decode {
                        action: "DescribeLogGroups".into(),
                        reason: "The same next token was received twice".into(),
                    })
                }
                Some(t) => token = Some(t),
            }
        }
    }

    pub async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[InputLogEvent],
    ) -> Result<PutLogEventsResponse, ClientError> {
        self.call_typed(
            "PutLogEvents",
            serde_json::json!({
                "logGroupName": group,
                "logStreamName": stream,
                "logEvents": events,
            }),
        )
        .await
    }

    pub async fn get_log_events(
        &self,
        req: &GetLogEventsRequest,
    ) -> Result<GetLogEventsPage, ClientError> {
        let body = serde_json::to_value(req).map_err(|e| ClientError::Decode {
            action: "GetLogEvents".into(),
            reason: e.to_string(),
        })?;
        self.call_typed("GetLogEvents", body).await
    }

    pub async fn filter_log_events(
        &self,
        req: &FilterLogEventsRequest,
    ) -> Result<FilterLogEventsPage, ClientError> {
        let body = serde_json::to_value(req).map_err(|e| ClientError::Decode {
            action: "FilterLogEvents".into(),
            reason: e.to_string(),
        })?;
        self.call_typed("FilterLogEvents", body).await
    }
}

/// `(code, message)` of an error answer, read as botocore's JSON protocol parser reads it.
pub fn parse_error_body(status: u16, body: &[u8]) -> (String, String) {
    let cut = |s: &str| -> String {
        if s.chars().count() > ERROR_MESSAGE_CHARS_MAX {
            s.chars().take(ERROR_MESSAGE_CHARS_MAX).collect::<String>() + "…"
        } else {
            s.to_string()
        }
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            let code = map
                .get("__type")
                .and_then(Value::as_str)
                .map(|t| {
                    let t = t.split(':').next().unwrap_or(t);
                    t.rsplit('#').next().unwrap_or(t).to_string()
                })
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| status.to_string());
            let message = map
                .get("message")
                .or_else(|| map.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (code, cut(&message))
        }
        _ => (
            status.to_string(),
            cut(String::from_utf8_lossy(body).trim()),
        ),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub log_group_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsPage {
    #[serde(default)]
    pub log_groups: Vec<LogGroup>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputLogEvent {
    pub timestamp: i64,
    pub message: String,
}

/// Which events of a PutLogEvents batch the vault skipped (indices into the batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    /// First too-new event (inclusive): it and every later one were skipped.
    pub too_new_log_event_start_index: Option<usize>,
    /// Events before this index (exclusive) were too old.
    pub too_old_log_event_end_index: Option<usize>,
    /// Events before this index (exclusive) were older than the group's retention.
    pub expired_log_event_end_index: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    #[serde(default)]
    pub next_sequence_token: Option<String>,
    #[serde(default)]
    pub rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    pub start_from_head: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    pub timestamp: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsPage {
    #[serde(default)]
    pub events: Vec<OutputLogEvent>,
    #[serde(default)]
    pub next_forward_token: Option<String>,
    #[serde(default)]
    pub next_backward_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsRequest {
    pub log_group_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream_name_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    #[serde(default)]
    pub log_stream_name: String,
    pub timestamp: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_time: Option<i64>,
    #[serde(default)]
    pub event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsPage {
    #[serde(default)]
    pub events: Vec<FilteredLogEvent>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_parse_like_botocore() {
        assert_eq!(
            parse_error_body(
                400,
                br#"{"__type":"ResourceNotFoundException","message":"nope"}"#
            ),
            ("ResourceNotFoundException".into(), "nope".into())
        );
        assert_eq!(
            parse_error_body(
                400,
                br#"{"__type":"com.amazonaws.logs#InvalidParameterException:extra","Message":"m"}"#
            ),
            ("InvalidParameterException".into(), "m".into())
        );
        assert_eq!(
            parse_error_body(502, b"<html>bad gateway</html>"),
            ("502".into(), "<html>bad gateway</html>".into())
        );
        assert_eq!(parse_error_body(503, b"{}"), ("503".into(), "".into()));
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy {
            attempts_max: 10,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(350),
        };
        for retry in 1..40 {
            let d = p.backoff(retry);
            assert!(d <= Duration::from_millis(350), "{retry}: {d:?}");
            if retry == 1 {
                assert!(d <= Duration::from_millis(100));
            }
        }
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        let svc = |code: &str, status| ClientError::Service {
            code: code.into(),
            message: String::new(),
            status,
            request_id: None,
        };
        assert!(svc("ThrottlingException", 400).is_retryable());
        assert!(svc("InternalFailure", 500).is_retryable());
        assert!(svc("ServiceUnavailableException", 500).is_retryable());
        assert!(!svc("InvalidParameterException", 400).is_retryable());
        assert!(!svc("LimitExceededException", 400).is_retryable());
        assert!(!svc("InvalidSignatureException", 400).is_retryable());
    }
}
