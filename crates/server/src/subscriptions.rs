//! PutSubscriptionFilter, DescribeSubscriptionFilters, DeleteSubscriptionFilter over the
//! monitor engine (delivery, checkpoints and the 2-per-group limit live there).

use serde::Deserialize;
use serde_json::{json, Value};
use trailvault_monitor::engine::EngineError;
use trailvault_monitor::subscription::{SubscriptionError, SubscriptionFilterSpec};
use trailvault_store::StreamFilter;

use crate::{ApiError, AppState};

const DESCRIBE_LIMIT_MAX: usize = 50;

fn engine(app: &AppState) -> Result<&trailvault_monitor::MonitorEngine, ApiError> {
    app.monitor.as_deref().ok_or_else(|| {
        ApiError::new(
            "ServiceUnavailableException",
            "monitoring is not enabled on this vault",
        )
    })
}

fn api_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Subscription(SubscriptionError::Invalid(m)) => ApiError::invalid(m),
        EngineError::Subscription(SubscriptionError::Pattern(p)) => {
            ApiError::invalid(p.to_string())
        }
        EngineError::Subscription(SubscriptionError::Limit(m)) => {
            ApiError::new("LimitExceededException", m)
        }
        EngineError::Subscription(SubscriptionError::NotFound(m)) => ApiError::not_found(m),
        other => other.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutSubscriptionFilter {
    log_group_name: String,
    #[serde(flatten)]
    spec: SubscriptionFilterSpec,
}

pub async fn put_subscription_filter(
    app: &AppState,
    req: PutSubscriptionFilter,
) -> Result<Value, ApiError> {
    let engine = engine(app)?;
    app.vault.log_group(&req.log_group_name)?;
    // A new filter streams what arrives after it exists, like CloudWatch: start after the
    // group's newest stored event. (Replacing a filter keeps its checkpoint instead.)
    let newest = app
        .vault
        .read_events(&req.log_group_name, &StreamFilter::All, None, None)
        .await?
        .iter()
        .map(|e| e.seq)
        .max()
        .unwrap_or(0);
    engine
        .put_subscription_filter(&req.log_group_name, req.spec, Some(newest))
        .map_err(api_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSubscriptionFilters {
    log_group_name: String,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

pub fn describe_subscription_filters(
    app: &AppState,
    req: DescribeSubscriptionFilters,
) -> Result<Value, ApiError> {
    let engine = engine(app)?;
    app.vault.log_group(&req.log_group_name)?;
    let limit = match req.limit {
        None => DESCRIBE_LIMIT_MAX,
        Some(n) if (1..=DESCRIBE_LIMIT_MAX).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {DESCRIBE_LIMIT_MAX}"
            )))
        }
    };
    let all = engine
        .describe_subscription_filters(&req.log_group_name, req.filter_name_prefix.as_deref())
        .map_err(api_error)?;
    let offset = match &req.next_token {
        Some(t) => crate::token::decode_offset(t)
            .ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let page: Vec<&SubscriptionFilterSpec> = all.iter().skip(offset).take(limit).collect();
    let mut resp = json!({ "subscriptionFilters": page });
    if offset + limit < all.len() {
        resp["nextToken"] = json!(crate::token::encode_offset(offset + limit));
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSubscriptionFilter {
    log_group_name: String,
    filter_name: String,
}

pub fn delete_subscription_filter(
    app: &AppState,
    req: DeleteSubscriptionFilter,
) -> Result<Value, ApiError> {
    let engine = engine(app)?;
    app.vault.log_group(&req.log_group_name)?;
    engine
        .delete_subscription_filter(&req.log_group_name, &req.filter_name)
        .map_err(api_error)?;
    Ok(json!({}))
}
