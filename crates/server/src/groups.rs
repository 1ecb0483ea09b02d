//! Log groups, streams, retention and tags.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use trailvault_model::limits::TAGS_MAX;
use trailvault_store::{now_ms, LogGroupMeta, StoreError};

use crate::{ApiError, AppState};

const DESCRIBE_LIMIT_MAX: usize = 50;
const LOG_GROUP_CLASSES: [&str; 3] = ["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"];

pub(crate) fn group_arn(app: &AppState, name: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{name}",
        app.region, app.account_id
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroup {
    log_group_name: String,
    kms_key_id: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > TAGS_MAX {
        return Err(ApiError::new(
            "TooManyTagsException",
            format!("a resource can have at most {TAGS_MAX} tags"),
        ));
    }
    for (k, v) in tags {
        let key_ok = (1..=128).contains(&k.chars().count())
            && k.chars()
                .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
            && !k.starts_with("aws:");
        if !key_ok {
            return Err(ApiError::invalid(format!(
                "tag key {k:?} must be 1-128 letters, digits, spaces or _.:/=+-@ and not start with aws:"
            )));
        }
        if v.chars().count() > 256 {
            return Err(ApiError::invalid(format!(
                "tag value for {k:?} is longer than 256 characters"
            )));
        }
    }
    Ok(())
}

pub fn create_log_group(app: &AppState, req: CreateLogGroup) -> Result<Value, ApiError> {
    check_tags(&req.tags)?;
    let class = req.log_group_class.unwrap_or_else(|| "STANDARD".into());
    if !LOG_GROUP_CLASSES.contains(&class.as_str()) {
        return Err(ApiError::invalid(format!(
            "logGroupClass must be one of {LOG_GROUP_CLASSES:?}"
        )));
    }
    app.vault.create_log_group(LogGroupMeta {
        name: req.log_group_name,
        created_ms: now_ms(),
        retention_days: None,
        kms_key_id: req.kms_key_id,
        log_group_class: class,
        deletion_protection: req.deletion_protection_enabled.unwrap_or(false),
        tags: req.tags,
    })?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroups {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
    log_group_class: Option<String>,
    log_group_identifiers: Option<Vec<String>>,
}

fn check_limit(limit: Option<usize>, max: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(max),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// Accept a log group name or its ARN (with or without the trailing `:*`).
pub(crate) fn group_from_identifier(id: &str) -> String {
    match id.split_once(":log-group:") {
        Some((_, rest)) => rest.trim_end_matches(":*").to_string(),
        None => id.to_string(),
    }
}

pub fn describe_log_groups(app: &AppState, req: DescribeLogGroups) -> Result<Value, ApiError> {
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return Err(ApiError::invalid(
            "logGroupNamePrefix and logGroupNamePattern are mutually exclusive",
        ));
    }
    let limit = check_limit(req.limit, DESCRIBE_LIMIT_MAX)?;
    let after = req.next_token.as_deref().map(|t| {
        crate::token::decode_name(t)
            .ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))
    });
    let after = after.transpose()?;
    let ids: Option<Vec<String>> = req
        .log_group_identifiers
        .map(|v| v.iter().map(|i| group_from_identifier(i)).collect());
    let brief = req.log_group_name_pattern.is_some();
    let mut out = Vec::new();
    let mut more = false;
    for g in app.vault.log_groups() {
        if let Some(p) = &req.log_group_name_prefix {
            if !g.name.starts_with(p.as_str()) {
                continue;
            }
        }
        if let Some(p) = &req.log_group_name_pattern {
            if !g.name.contains(p.as_str()) {
                continue;
            }
        }
        if let Some(c) = &req.log_group_class {
            if &g.log_group_class != c {
                continue;
            }
        }
        if let Some(ids) = &ids {
            if !ids.contains(&g.name) {
                continue;
            }
        }
        if after.as_deref().is_some_and(|a| g.name.as_str() <= a) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        let arn = group_arn(app, &g.name);
        let mut v = json!({
            "logGroupName": g.name,
            "creationTime": g.created_ms,
            "arn": format!("{arn}:*"),
        });
        if !brief {
            v["logGroupArn"] = json!(arn);
            v["metricFilterCount"] = json!(0);
            v["storedBytes"] = json!(app.vault.stored_bytes(&g.name));
            v["logGroupClass"] = json!(g.log_group_class);
            v["deletionProtectionEnabled"] = json!(g.deletion_protection);
            if let Some(d) = g.retention_days {
                v["retentionInDays"] = json!(d);
            }
            if let Some(k) = &g.kms_key_id {
                v["kmsKeyId"] = json!(k);
            }
        }
        out.push(v);
    }
    let mut resp = json!({ "logGroups": out });
    if more {
        let last = out
            .last()
            .and_then(|v| v["logGroupName"].as_str())
            .unwrap_or("");
        resp["nextToken"] = json!(crate::token::encode_name(last));
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOnly {
    log_group_name: String,
}

pub fn delete_log_group(app: &AppState, req: GroupOnly) -> Result<Value, ApiError> {
    app.vault.delete_log_group(&req.log_group_name)?;
    // Only an empty group can be deleted; its metric and subscription filters go with it.
    if let Some(monitor) = &app.monitor {
        monitor.delete_group(&req.log_group_name)?;
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionPolicy {
    log_group_name: String,
    retention_in_days: u32,
}

pub fn put_retention_policy(app: &AppState, req: PutRetentionPolicy) -> Result<Value, ApiError> {
    app.vault
        .set_retention(&req.log_group_name, Some(req.retention_in_days))?;
    Ok(json!({}))
}

pub fn delete_retention_policy(app: &AppState, req: GroupOnly) -> Result<Value, ApiError> {
    app.vault.set_retention(&req.log_group_name, None)?;
    Ok(json!({}))
}

/// The log group a resource ARN names; destinations and other resources are not ours yet.
fn group_of_arn(arn: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "logs" {
        return Err(ApiError::invalid(format!(
            "{arn:?} is not a CloudWatch Logs ARN"
        )));
    }
    match parts[5].strip_prefix("log-group:") {
        Some(name) => Ok(name.trim_end_matches(":*").to_string()),
        None => Err(ApiError::not_found(format!(
            "resource {arn} does not exist in this vault"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResource {
    resource_arn: String,
    tags: BTreeMap<String, String>,
}

fn add_tags(app: &AppState, group: &str, tags: BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.is_empty() {
        return Err(ApiError::invalid("tags must hold at least one tag"));
    }
    check_tags(&tags)?;
    app.vault.update_tags(group, |cur| {
        cur.extend(tags);
        if cur.len() > TAGS_MAX {
            return Err(StoreError::InvalidParameter(format!(
                "a resource can have at most {TAGS_MAX} tags"
            )));
        }
        Ok(())
    })?;
    Ok(())
}

pub fn tag_resource(app: &AppState, req: TagResource) -> Result<Value, ApiError> {
    let group = group_of_arn(&req.resource_arn)?;
    add_tags(app, &group, req.tags).map_err(|e| {
        if e.message.contains("at most") {
            ApiError::new("TooManyTagsException", e.message)
        } else {
            e
        }
    })?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResource {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub fn untag_resource(app: &AppState, req: UntagResource) -> Result<Value, ApiError> {
    let group = group_of_arn(&req.resource_arn)?;
    app.vault.update_tags(&group, |cur| {
        for k in &req.tag_keys {
            cur.remove(k);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResource {
    resource_arn: String,
}

pub fn list_tags_for_resource(app: &AppState, req: ListTagsForResource) -> Result<Value, ApiError> {
    let group = group_of_arn(&req.resource_arn)?;
    Ok(json!({ "tags": app.vault.log_group(&group)?.tags }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagLogGroup {
    log_group_name: String,
    tags: BTreeMap<String, String>,
}

pub fn tag_log_group(app: &AppState, req: TagLogGroup) -> Result<Value, ApiError> {
    add_tags(app, &req.log_group_name, req.tags)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagLogGroup {
    log_group_name: String,
    tags: Vec<String>,
}

pub fn untag_log_group(app: &AppState, req: UntagLogGroup) -> Result<Value, ApiError> {
    app.vault.update_tags(&req.log_group_name, |cur| {
        for k in &req.tags {
            cur.remove(k);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags_log_group(app: &AppState, req: GroupOnly) -> Result<Value, ApiError> {
    Ok(json!({ "tags": app.vault.log_group(&req.log_group_name)?.tags }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogStream {
    log_group_name: String,
    log_stream_name: String,
}

pub fn create_log_stream(app: &AppState, req: CreateLogStream) -> Result<Value, ApiError> {
    app.vault
        .create_log_stream(&req.log_group_name, &req.log_stream_name)?;
    Ok(json!({}))
}

pub fn delete_log_stream(app: &AppState, req: CreateLogStream) -> Result<Value, ApiError> {
    app.vault
        .delete_log_stream(&req.log_group_name, &req.log_stream_name)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreams {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    #[serde(default)]
    descending: bool,
    next_token: Option<String>,
    limit: Option<usize>,
}

pub(crate) fn one_group(
    name: Option<String>,
    identifier: Option<String>,
) -> Result<String, ApiError> {
    match (name, identifier) {
        (Some(n), None) => Ok(n),
        (None, Some(i)) => Ok(group_from_identifier(&i)),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(ApiError::invalid(
            "Should provide either name or ARN of the log group.",
        )),
    }
}

pub fn describe_log_streams(app: &AppState, req: DescribeLogStreams) -> Result<Value, ApiError> {
    let group = one_group(req.log_group_name, req.log_group_identifier)?;
    let limit = check_limit(req.limit, DESCRIBE_LIMIT_MAX)?;
    let by_time = match req.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "orderBy must be LogStreamName or LastEventTime, not {o:?}"
            )))
        }
    };
    if by_time && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let mut streams = app.vault.log_streams(&group)?;
    if let Some(p) = &req.log_stream_name_prefix {
        streams.retain(|s| s.name.starts_with(p.as_str()));
    }
    if by_time {
        streams.sort_by(|a, b| (a.last_event_ms, &a.name).cmp(&(b.last_event_ms, &b.name)));
    }
    if req.descending {
        streams.reverse();
    }
    let offset = match &req.next_token {
        Some(t) => crate::token::decode_offset(t)
            .ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let page: Vec<Value> = streams
        .iter()
        .skip(offset)
        .take(limit)
        .map(|s| {
            let mut v = json!({
                "logStreamName": s.name,
                "creationTime": s.created_ms,
                "arn": format!("{}:log-stream:{}", group_arn(app, &group), s.name),
                "storedBytes": 0,
            });
            if let Some(t) = s.first_event_ms {
                v["firstEventTimestamp"] = json!(t);
            }
            if let Some(t) = s.last_event_ms {
                v["lastEventTimestamp"] = json!(t);
            }
            if let Some(t) = s.last_ingestion_ms {
                v["lastIngestionTime"] = json!(t);
            }
            v
        })
        .collect();
    let mut resp = json!({ "logStreams": page });
    if offset + limit < streams.len() {
        resp["nextToken"] = json!(crate::token::encode_offset(offset + limit));
    }
    Ok(resp)
}
