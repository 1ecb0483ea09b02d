//! Metric filters (CloudWatch Logs API), and alarms, metrics and action targets (trailvault
//! serves CloudWatch's PutMetricAlarm / DescribeAlarms / DescribeAlarmHistory / SetAlarmState
//! shapes over the same AWS JSON 1.1 endpoint).

use serde::Deserialize;
use serde_json::{json, Value};
use trailvault_monitor::alarm::{AlarmQuery, AlarmSpec, AlarmState};
use trailvault_monitor::engine::{EngineError, MonitorEngine};
use trailvault_monitor::metric::MetricFilterSpec;

use crate::{ApiError, AppState};

fn engine(app: &AppState) -> Result<&MonitorEngine, ApiError> {
    app.monitor.as_deref().ok_or_else(|| {
        ApiError::new(
            "ServiceUnavailableException",
            "monitoring is not enabled on this vault",
        )
    })
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Limit(m) => ApiError::new("LimitExceededException", m),
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::MetricFilter(e) => ApiError::invalid(e.to_string()),
            EngineError::Alarm(e) => ApiError::invalid(e.to_string()),
            other => {
                tracing::error!(error = %other, "monitoring failed");
                ApiError::new(
                    "ServiceUnavailableException",
                    "The service cannot complete the request.",
                )
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutMetricFilter {
    log_group_name: String,
    #[serde(flatten)]
    spec: MetricFilterSpec,
}

pub fn put_metric_filter(app: &AppState, req: PutMetricFilter) -> Result<Value, ApiError> {
    app.vault.log_group(&req.log_group_name)?;
    engine(app)?.put_metric_filter(&req.log_group_name, req.spec)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeMetricFilters {
    log_group_name: Option<String>,
    filter_name_prefix: Option<String>,
    metric_name: Option<String>,
    metric_namespace: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

pub fn describe_metric_filters(
    app: &AppState,
    req: DescribeMetricFilters,
) -> Result<Value, ApiError> {
    if req.filter_name_prefix.is_some() && req.log_group_name.is_none() {
        return Err(ApiError::invalid("filterNamePrefix requires logGroupName"));
    }
    let metric = match (&req.metric_name, &req.metric_namespace) {
        (Some(n), Some(ns)) => Some((n.as_str(), ns.as_str())),
        (None, None) => None,
        _ => {
            return Err(ApiError::invalid(
                "metricName and metricNamespace must be given together",
            ))
        }
    };
    if let Some(g) = &req.log_group_name {
        app.vault.log_group(g)?;
    }
    let limit = req.limit.unwrap_or(50).clamp(1, 50);
    let all = engine(app)?.describe_metric_filters(
        req.log_group_name.as_deref(),
        req.filter_name_prefix.as_deref(),
        metric,
    )?;
    let offset = match &req.next_token {
        Some(t) => crate::token::decode_offset(t)
            .ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let page: Vec<&MetricFilterSpec> = all.iter().skip(offset).take(limit).collect();
    let mut resp = json!({ "metricFilters": page });
    if offset + limit < all.len() {
        resp["nextToken"] = json!(crate::token::encode_offset(offset + limit));
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteMetricFilter {
    log_group_name: String,
    filter_name: String,
}

pub fn delete_metric_filter(app: &AppState, req: DeleteMetricFilter) -> Result<Value, ApiError> {
    app.vault.log_group(&req.log_group_name)?;
    engine(app)?.delete_metric_filter(&req.log_group_name, &req.filter_name)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMetricFilter {
    filter_pattern: String,
    log_event_messages: Vec<String>,
}

pub fn test_metric_filter(req: TestMetricFilter) -> Result<Value, ApiError> {
    let out = trailvault_monitor::metric::test_metric_filter(
        &req.filter_pattern,
        &req.log_event_messages,
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    serde_json::to_value(out).map_err(|e| ApiError::invalid(e.to_string()))
}

pub fn put_metric_alarm(app: &AppState, spec: AlarmSpec) -> Result<Value, ApiError> {
    engine(app)?.put_alarm(spec)?;
    Ok(json!({}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarms {
    #[serde(default)]
    alarm_names: Vec<String>,
    alarm_name_prefix: Option<String>,
    state_value: Option<AlarmState>,
}

pub fn describe_alarms(app: &AppState, req: DescribeAlarms) -> Result<Value, ApiError> {
    if !req.alarm_names.is_empty() && req.alarm_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "AlarmNames and AlarmNamePrefix are mutually exclusive",
        ));
    }
    let alarms = engine(app)?
        .db()
        .describe_alarms(&AlarmQuery {
            names: req.alarm_names,
            prefix: req.alarm_name_prefix,
            state: req.state_value,
        })
        .map_err(EngineError::from)?;
    Ok(json!({ "MetricAlarms": alarms }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistory {
    alarm_name: Option<String>,
    history_item_type: Option<String>,
    start_date: Option<i64>,
    end_date: Option<i64>,
    max_records: Option<usize>,
}

pub fn describe_alarm_history(
    app: &AppState,
    req: DescribeAlarmHistory,
) -> Result<Value, ApiError> {
    let items = engine(app)?
        .db()
        .alarm_history(
            req.alarm_name.as_deref(),
            req.history_item_type.as_deref(),
            req.start_date,
            req.end_date,
            req.max_records.unwrap_or(100),
        )
        .map_err(EngineError::from)?;
    Ok(json!({ "AlarmHistoryItems": items }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmState {
    alarm_name: String,
    state_value: AlarmState,
    state_reason: String,
    state_reason_data: Option<String>,
}

pub fn set_alarm_state(app: &AppState, req: SetAlarmState) -> Result<Value, ApiError> {
    engine(app)?.set_alarm_state(
        &req.alarm_name,
        req.state_value,
        &req.state_reason,
        req.state_reason_data.as_deref(),
    )?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteAlarms {
    alarm_names: Vec<String>,
}

pub fn delete_alarms(app: &AppState, req: DeleteAlarms) -> Result<Value, ApiError> {
    engine(app)?
        .db()
        .delete_alarms(&req.alarm_names)
        .map_err(EngineError::from)?;
    Ok(json!({}))
}

pub fn put_action_target(
    app: &AppState,
    target: trailvault_monitor::actions::ActionTarget,
) -> Result<Value, ApiError> {
    engine(app)?
        .db()
        .put_action_target(&target)
        .map_err(EngineError::from)?;
    Ok(json!({ "arn": target.arn() }))
}

pub fn describe_action_targets(app: &AppState) -> Result<Value, ApiError> {
    let targets: Vec<_> = engine(app)?
        .db()
        .describe_action_targets()
        .map_err(EngineError::from)?
        .into_iter()
        .map(|t| {
            let arn = t.arn();
            let mut v = serde_json::to_value(t.redacted()).unwrap_or_default();
            v["arn"] = json!(arn);
            v
        })
        .collect();
    Ok(json!({ "targets": targets }))
}
