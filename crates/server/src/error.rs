//! The one error type of the HTTP layer, rendered in the AWS JSON 1.1 error shape:
//! status 400 (500 for ServiceUnavailableException), body `{"__type": code, "message": text}`,
//! header `x-amzn-ErrorType`. Client errors are logged at debug level, not as failures;
//! internal details never reach the client.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use trailvault_store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    /// Modeled members of the error beyond `message` (e.g. MalformedQueryException's
    /// `queryCompileError`), merged into the body. `__type` and `message` cannot be overridden.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            extra: None,
        }
    }
    /// Adds a modeled member to the error body.
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(name.to_string(), value);
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", message)
    }
    fn status(&self) -> StatusCode {
        match self.code {
            "ServiceUnavailableException" | "InternalFailure" => StatusCode::INTERNAL_SERVER_ERROR,
            "UnknownOperationException" | "MissingAuthenticationTokenException" => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::AlreadyExists(m) => ApiError::new("ResourceAlreadyExistsException", m),
            StoreError::InvalidParameter(m) => ApiError::invalid(m),
            StoreError::Refused(m) => ApiError::new("ValidationException", m),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "vault unavailable");
                ApiError::new(
                    "ServiceUnavailableException",
                    "The service is unavailable. Retry the request.",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    "ServiceUnavailableException",
                    "The service cannot complete the request.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(code = self.code, message = %self.message, "request refused");
        }
        let mut body = self.extra.unwrap_or_default();
        body.insert("__type".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        let body = serde_json::Value::Object(body);
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        if let Ok(v) = HeaderValue::from_str(self.code) {
            h.insert("x-amzn-errortype", v);
        }
        resp
    }
}
