//! Metric filters (CloudWatch Logs API), and alarms, metrics and action targets (trailvault
//! serves CloudWatch's PutMetricAlarm / DescribeAlarms / DescribeAlarmHistory / SetAlarmState
//! and ListMetrics / GetMetricStatistics shapes over the same AWS JSON 1.1 endpoint).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use trailvault_monitor::alarm::{AlarmQuery, AlarmSpec, AlarmState};
use trailvault_monitor::engine::{EngineError, MonitorEngine};
use trailvault_monitor::metric::{MetricFilterSpec, MetricKey, Statistic};
use trailvault_monitor::store::{MetricQuery, QUERY_POINTS_MAX};

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
pub struct ListMetrics {
    namespace: Option<String>,
    metric_name: Option<String>,
}

/// ListMetrics: every series metric filters have produced data for (CloudWatch's shape).
pub fn list_metrics(app: &AppState, req: ListMetrics) -> Result<Value, ApiError> {
    let keys = engine(app)?
        .db()
        .list_metrics(req.namespace.as_deref())
        .map_err(EngineError::from)?;
    let metrics: Vec<Value> = keys
        .into_iter()
        .filter(|k| req.metric_name.as_ref().is_none_or(|n| *n == k.name))
        .map(|k| {
            let dimensions: Vec<Value> = k
                .dimensions
                .iter()
                .map(|(name, value)| json!({ "Name": name, "Value": value }))
                .collect();
            json!({ "Namespace": k.namespace, "MetricName": k.name, "Dimensions": dimensions })
        })
        .collect();
    Ok(json!({ "Metrics": metrics }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricStatistics {
    namespace: String,
    metric_name: String,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    start_time: Value,
    end_time: Value,
    period: u32,
    #[serde(default)]
    statistics: Vec<String>,
    #[serde(default)]
    extended_statistics: Vec<String>,
}

/// CloudWatch returns at most this many datapoints per statistic and request.
const DATAPOINTS_MAX: i64 = 1440;

/// A timestamp as AWS JSON protocols send it (epoch seconds, fractions allowed) or as an
/// ISO 8601 / RFC 3339 string; epoch milliseconds.
fn timestamp_ms(v: &Value, member: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "{member} must be epoch seconds or an ISO 8601 time, got {v}"
        ))
    };
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(|s| (s * 1000.0).round() as i64)
            .ok_or_else(bad),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// GetMetricStatistics: the metric filters' data as statistics per period, CloudWatch's shape
/// (`Datapoints` with one member per requested statistic, percentiles under
/// `ExtendedStatistics`, `Timestamp` in epoch seconds), oldest first.
pub fn get_metric_statistics(app: &AppState, req: GetMetricStatistics) -> Result<Value, ApiError> {
    let start_ms = timestamp_ms(&req.start_time, "StartTime")?;
    let end_ms = timestamp_ms(&req.end_time, "EndTime")?;
    if start_ms >= end_ms {
        return Err(ApiError::invalid("StartTime must be before EndTime"));
    }
    if req.period == 0 || !req.period.is_multiple_of(60) {
        return Err(ApiError::invalid(
            "Period must be a positive multiple of 60 seconds (data is kept per minute)",
        ));
    }
    if req.period as usize > QUERY_POINTS_MAX * 60 {
        return Err(ApiError::invalid(format!(
            "Period must be at most {} seconds (70 days)",
            QUERY_POINTS_MAX * 60
        )));
    }
    if req.statistics.is_empty() == req.extended_statistics.is_empty() {
        return Err(ApiError::invalid(
            "exactly one of Statistics or ExtendedStatistics must be given",
        ));
    }
    let period_ms = i64::from(req.period) * 1000;
    let periods = (end_ms - start_ms + period_ms - 1) / period_ms;
    if periods > DATAPOINTS_MAX {
        return Err(ApiError::invalid(format!(
            "the request would return {periods} datapoints; at most {DATAPOINTS_MAX} (use a longer Period or a shorter time range)"
        )));
    }
    let mut statistics = Vec::new();
    for (s, extended) in req
        .statistics
        .iter()
        .map(|s| (s, false))
        .chain(req.extended_statistics.iter().map(|s| (s, true)))
    {
        let stat: Statistic = s.parse().map_err(ApiError::invalid)?;
        if extended != matches!(stat, Statistic::Percentile(_)) {
            return Err(ApiError::invalid(format!(
                "{s}: Statistics takes SampleCount|Average|Sum|Minimum|Maximum, ExtendedStatistics takes pNN"
            )));
        }
        statistics.push((s.clone(), stat, extended));
    }
    let key = MetricKey {
        namespace: req.namespace,
        name: req.metric_name.clone(),
        dimensions: req
            .dimensions
            .into_iter()
            .map(|d| (d.name, d.value))
            .collect(),
    };
    let db = engine(app)?.db();
    // One store query reads at most QUERY_POINTS_MAX minutes of data: read in spans of whole
    // periods that fit, so no period is split and none is cut short.
    let periods_per_span = (QUERY_POINTS_MAX as i64 * 60_000 / period_ms).max(1);
    let mut points: BTreeMap<i64, Value> = BTreeMap::new();
    for (name, statistic, extended) in statistics {
        let mut from = start_ms;
        while from < end_ms {
            let to = ((from.div_euclid(period_ms) + periods_per_span) * period_ms).min(end_ms);
            let series = db
                .query_metric(&MetricQuery {
                    key: key.clone(),
                    start_ms: from,
                    end_ms: to,
                    period_s: req.period,
                    statistic,
                })
                .map_err(EngineError::from)?;
            for p in series {
                let point = points
                    .entry(p.timestamp_ms)
                    .or_insert_with(|| json!({ "Timestamp": p.timestamp_ms as f64 / 1000.0 }));
                if extended {
                    point["ExtendedStatistics"][name.as_str()] = json!(p.value);
                } else {
                    point[name.as_str()] = json!(p.value);
                }
            }
            from = to;
        }
    }
    Ok(json!({
        "Label": req.metric_name,
        "Datapoints": points.into_values().collect::<Vec<_>>(),
    }))
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
