use serde::{Deserialize, Serialize};

use crate::JsonText;

/// The normalized form of a record, one schema across every source, modelled on OCSF
/// API Activity (class 6003) and its neighbours. Every field is optional: a source fills
/// what it knows. `parsed` keeps the full parsed record as JSON so nothing is lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Normalized {
    /// Source format id, e.g. `cloudtrail`, `s3-access`, `alb`, `vpc-flow`.
    pub source: String,
    /// Event time in epoch milliseconds, when the record states one.
    pub time_ms: Option<i64>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The service that produced or handled the event (e.g. `ec2.amazonaws.com`).
    pub service: Option<String>,
    /// Action or event name (CloudTrail eventName, S3 operation, HTTP method, ...).
    pub action: Option<String>,
    pub activity: Option<Activity>,
    pub actor_principal_id: Option<String>,
    pub actor_arn: Option<String>,
    pub actor_type: Option<String>,
    pub actor_user_name: Option<String>,
    pub actor_access_key_id: Option<String>,
    pub actor_mfa: Option<bool>,
    pub actor_invoked_by: Option<String>,
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<String>,
    pub dst_port: Option<u16>,
    pub user_agent: Option<String>,
    pub resources: Vec<Resource>,
    pub outcome: Option<Outcome>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub request_id: Option<String>,
    /// The source's own event id (CloudTrail eventID, ALB trace id, ...).
    pub source_event_id: Option<String>,
    pub read_only: Option<bool>,
    pub bytes: Option<i64>,
    pub duration_ms: Option<f64>,
    /// The full parsed record, as JSON text (for JSON sources whose raw record is itself the
    /// full event, absent: the raw record is it).
    pub parsed: Option<JsonText>,
}

/// OCSF activity: what the action did to its resource, where known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    Create,
    Read,
    Update,
    Delete,
    Other,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Create => "create",
            Activity::Read => "read",
            Activity::Update => "update",
            Activity::Delete => "delete",
            Activity::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub owner_account: Option<String>,
}
