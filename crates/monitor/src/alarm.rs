//! Metric alarms in the spirit of PutMetricAlarm / DescribeAlarms / DescribeAlarmHistory /
//! SetAlarmState, and CloudWatch's evaluation algorithm with missing data.
//!
//! Evaluation ([`evaluate`]) is a pure function of the alarm, the statistic per period, the
//! time and the current state. It looks at [`evaluation_range`] slots (more than N), the newest
//! being the period containing `now` (so an alarm can fire within seconds of the data), and:
//! - with at least N real datapoints, uses the newest N real ones;
//! - otherwise fills as few missing slots as possible per TreatMissingData (`breaching`,
//!   `notBreaching`); for `missing` and `ignore` missing slots are unknown: ALARM if the real
//!   breaching points already reach M, OK if even all unknowns breaching could not, ALARM by
//!   CloudWatch's "oldest breaching point at least M periods old, all newer points breaching or
//!   missing" rule, else INSUFFICIENT_DATA (`missing`) or the current state (`ignore`);
//! - with every slot missing: `missing` → INSUFFICIENT_DATA, `ignore` → current state,
//!   `breaching` → ALARM, `notBreaching` → OK.
//!
//! Persistence (state, history) is on [`MonitorDb`]; every state change writes its history
//! item in the same transaction.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::metric::{MetricKey, Statistic};
use crate::store::{MonitorDb, StatPoint, StoreError};

/// Most actions per action list (CloudWatch allows 5).
pub const ACTIONS_PER_LIST_MAX: usize = 5;
const ALARM_NAME_CHARS_MAX: usize = 255;
const DESCRIPTION_CHARS_MAX: usize = 1024;
const DIMENSIONS_MAX: usize = 30;
const DAY_S: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl std::str::FromStr for AlarmState {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, AlarmError> {
        match s {
            "OK" => Ok(AlarmState::Ok),
            "ALARM" => Ok(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
            _ => Err(AlarmError::Invalid(format!(
                "{s} is not an alarm state (OK, ALARM, INSUFFICIENT_DATA)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    pub fn breaches(&self, value: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
            ComparisonOperator::GreaterThanThreshold => value > threshold,
            ComparisonOperator::LessThanThreshold => value < threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    fn words(&self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "greater than or equal to",
            ComparisonOperator::GreaterThanThreshold => "greater than",
            ComparisonOperator::LessThanThreshold => "less than",
            ComparisonOperator::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TreatMissingData {
    #[default]
    #[serde(rename = "missing")]
    Missing,
    #[serde(rename = "breaching")]
    Breaching,
    #[serde(rename = "notBreaching")]
    NotBreaching,
    #[serde(rename = "ignore")]
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

fn yes() -> bool {
    true
}

/// PutMetricAlarm's input (and the configuration part of DescribeAlarms' output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmSpec {
    pub alarm_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_description: Option<String>,
    pub metric_name: String,
    pub namespace: String,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    pub period: u32,
    pub evaluation_periods: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<u32>,
    pub threshold: f64,
    pub comparison_operator: ComparisonOperator,
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    #[serde(default, rename = "OKActions")]
    pub ok_actions: Vec<String>,
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    #[serde(default = "yes")]
    pub actions_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlarmError {
    /// Maps to InvalidParameterValue / ValidationError.
    #[error("{0}")]
    Invalid(String),
    #[error("alarm {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for AlarmError {
    fn from(e: StoreError) -> Self {
        AlarmError::Store(e.to_string())
    }
}

impl From<rusqlite::Error> for AlarmError {
    fn from(e: rusqlite::Error) -> Self {
        AlarmError::Store(e.to_string())
    }
}

/// A validated alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    spec: AlarmSpec,
    statistic: Statistic,
}

/// Whether `arn` names an action target of ours: `arn:trailvault:webhook:NAME` or
/// `arn:trailvault:command:NAME`. Returns (kind, name).
pub fn parse_action_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:trailvault:")?;
    let (kind, name) = rest.split_once(':')?;
    (matches!(kind, "webhook" | "command") && valid_target_name(name)).then_some((kind, name))
}

/// Action target names: 1 to 255 of `A-Z a-z 0-9 - _ .`.
pub fn valid_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn check_len(field: &str, v: &str, max: usize) -> Result<(), AlarmError> {
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(AlarmError::Invalid(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(())
}

impl Alarm {
    /// Validates `spec` against CloudWatch's limits.
    pub fn new(spec: AlarmSpec) -> Result<Alarm, AlarmError> {
        check_len("AlarmName", &spec.alarm_name, ALARM_NAME_CHARS_MAX)?;
        if spec.alarm_name.chars().any(char::is_control) {
            return Err(AlarmError::Invalid(
                "AlarmName must not contain control characters".into(),
            ));
        }
        if let Some(d) = &spec.alarm_description {
            if d.chars().count() > DESCRIPTION_CHARS_MAX {
                return Err(AlarmError::Invalid(format!(
                    "AlarmDescription must be at most {DESCRIPTION_CHARS_MAX} characters"
                )));
            }
        }
        check_len("MetricName", &spec.metric_name, 255)?;
        check_len("Namespace", &spec.namespace, 255)?;
        if spec.dimensions.len() > DIMENSIONS_MAX {
            return Err(AlarmError::Invalid(format!(
                "at most {DIMENSIONS_MAX} dimensions are allowed"
            )));
        }
        for d in &spec.dimensions {
            check_len("Dimension name", &d.name, 255)?;
            check_len("Dimension value", &d.value, 1024)?;
        }
        let statistic = match (&spec.statistic, &spec.extended_statistic) {
            (Some(s), None) if !s.starts_with('p') => s.parse::<Statistic>().map_err(AlarmError::Invalid)?,
            (None, Some(s)) if s.starts_with('p') => s.parse::<Statistic>().map_err(AlarmError::Invalid)?,
            (Some(_), Some(_)) => return Err(AlarmError::Invalid("Statistic and ExtendedStatistic are mutually exclusive".into())),
            (None, None) => return Err(AlarmError::Invalid("one of Statistic or ExtendedStatistic is required".into())),
            (Some(s), None) | (None, Some(s)) => return Err(AlarmError::Invalid(format!("{s} is not valid here: Statistic takes SampleCount|Average|Sum|Minimum|Maximum, ExtendedStatistic takes pNN"))),
        };
        let p = spec.period;
        if !(matches!(p, 10 | 20 | 30) || (p >= 60 && p.is_multiple_of(60))) {
            return Err(AlarmError::Invalid(
                "Period must be 10, 20, 30 or a multiple of 60".into(),
            ));
        }
        let n = spec.evaluation_periods;
        if n == 0 {
            return Err(AlarmError::Invalid(
                "EvaluationPeriods must be at least 1".into(),
            ));
        }
        let m = spec.datapoints_to_alarm.unwrap_or(n);
        if m == 0 || m > n {
            return Err(AlarmError::Invalid(
                "DatapointsToAlarm must be between 1 and EvaluationPeriods".into(),
            ));
        }
        let span_max_s = if p < 3600 { DAY_S } else { 7 * DAY_S };
        if u64::from(p) * u64::from(n) > span_max_s {
            return Err(AlarmError::Invalid(format!(
                "Period * EvaluationPeriods must be at most {} seconds",
                span_max_s
            )));
        }
        if !spec.threshold.is_finite() {
            return Err(AlarmError::Invalid(
                "Threshold must be a finite number".into(),
            ));
        }
        for (list, actions) in [
            ("AlarmActions", &spec.alarm_actions),
            ("OKActions", &spec.ok_actions),
            ("InsufficientDataActions", &spec.insufficient_data_actions),
        ] {
            if actions.len() > ACTIONS_PER_LIST_MAX {
                return Err(AlarmError::Invalid(format!(
                    "{list} may hold at most {ACTIONS_PER_LIST_MAX} actions"
                )));
            }
            if let Some(bad) = actions.iter().find(|a| parse_action_arn(a).is_none()) {
                return Err(AlarmError::Invalid(format!("{list}: {bad} is not an action target (arn:trailvault:webhook:NAME or arn:trailvault:command:NAME)")));
            }
        }
        Ok(Alarm { spec, statistic })
    }

    pub fn spec(&self) -> &AlarmSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.alarm_name
    }

    pub fn statistic(&self) -> Statistic {
        self.statistic
    }

    pub fn metric_key(&self) -> MetricKey {
        MetricKey {
            namespace: self.spec.namespace.clone(),
            name: self.spec.metric_name.clone(),
            dimensions: self
                .spec
                .dimensions
                .iter()
                .map(|d| (d.name.clone(), d.value.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    pub fn period_ms(&self) -> i64 {
        i64::from(self.spec.period) * 1000
    }

    fn m(&self) -> usize {
        self.spec
            .datapoints_to_alarm
            .unwrap_or(self.spec.evaluation_periods) as usize
    }

    fn n(&self) -> usize {
        self.spec.evaluation_periods as usize
    }

    /// The actions for entering `state`, empty when actions are disabled.
    pub fn actions_for(&self, state: AlarmState) -> &[String] {
        if !self.spec.actions_enabled {
            return &[];
        }
        match state {
            AlarmState::Alarm => &self.spec.alarm_actions,
            AlarmState::Ok => &self.spec.ok_actions,
            AlarmState::InsufficientData => &self.spec.insufficient_data_actions,
        }
    }
}

/// How many period slots an evaluation looks at: more than N, as CloudWatch does.
pub fn evaluation_range(alarm: &Alarm) -> usize {
    alarm.n() + 2
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub new_state: AlarmState,
    pub reason: String,
    /// StateReasonData as JSON.
    pub reason_data: serde_json::Value,
    /// The datapoints that decided the state (period start, value), oldest first.
    pub datapoints: Vec<StatPoint>,
}

/// The pure core: the new state from slots (oldest first, `None` = missing).
pub fn decide(alarm: &Alarm, slots: &[Option<f64>], current: AlarmState) -> AlarmState {
    let (n, m) = (alarm.n(), alarm.m());
    let op = alarm.spec.comparison_operator;
    let thr = alarm.spec.threshold;
    let breaches = |v: f64| op.breaches(v, thr);
    let real: Vec<(usize, f64)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let verdict = |b: usize| {
        if b >= m {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        }
    };
    if real.len() >= n {
        let b = real[real.len() - n..]
            .iter()
            .filter(|(_, v)| breaches(*v))
            .count();
        return verdict(b);
    }
    let treat = alarm.spec.treat_missing_data;
    if real.is_empty() {
        return match treat {
            TreatMissingData::Missing => AlarmState::InsufficientData,
            TreatMissingData::Ignore => current,
            TreatMissingData::Breaching => verdict(n),
            TreatMissingData::NotBreaching => AlarmState::Ok,
        };
    }
    let fill = n - real.len();
    let real_breaching = real.iter().filter(|(_, v)| breaches(*v)).count();
    match treat {
        TreatMissingData::Breaching => verdict(real_breaching + fill),
        TreatMissingData::NotBreaching => verdict(real_breaching),
        TreatMissingData::Missing | TreatMissingData::Ignore => {
            if real_breaching >= m {
                return AlarmState::Alarm;
            }
            // CloudWatch: ALARM when the oldest breaching point is at least M periods old and
            // every newer point is breaching or missing.
            if let Some(&(oldest, _)) = real.iter().find(|(_, v)| breaches(*v)) {
                let age = slots.len() - oldest;
                let newer_ok = slots[oldest..].iter().all(|s| s.is_none_or(breaches));
                if age >= m && newer_ok {
                    return AlarmState::Alarm;
                }
            }
            if real_breaching + fill < m {
                return AlarmState::Ok;
            }
            if treat == TreatMissingData::Missing {
                AlarmState::InsufficientData
            } else {
                current
            }
        }
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
        .unwrap_or_default()
}

fn short(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%d/%m/%y %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Evaluates `alarm` at `now_ms` over `datapoints` (the alarm's statistic per period, keyed by
/// period start; points outside the evaluation range are ignored).
pub fn evaluate(
    alarm: &Alarm,
    datapoints: &[StatPoint],
    now_ms: i64,
    current: AlarmState,
) -> Evaluation {
    let period = alarm.period_ms();
    let range = evaluation_range(alarm);
    let newest = now_ms.div_euclid(period) * period;
    let oldest = newest - (range as i64 - 1) * period;
    let mut slots: Vec<Option<f64>> = vec![None; range];
    let mut points: Vec<Option<StatPoint>> = vec![None; range];
    for p in datapoints {
        if p.timestamp_ms < oldest
            || p.timestamp_ms > newest
            || (p.timestamp_ms - oldest) % period != 0
        {
            continue;
        }
        let i = ((p.timestamp_ms - oldest) / period) as usize;
        slots[i] = Some(p.value);
        points[i] = Some(*p);
    }
    let new_state = decide(alarm, &slots, current);
    let n = alarm.n();
    let real: Vec<StatPoint> = points.iter().flatten().copied().collect();
    let used: Vec<StatPoint> = real[real.len().saturating_sub(n)..].to_vec();
    let spec = &alarm.spec;
    let thr = spec.threshold;
    let missing_in_window = n.saturating_sub(used.len());
    let listed = used
        .iter()
        .map(|p| format!("{:?} ({})", p.value, short(p.timestamp_ms)))
        .collect::<Vec<_>>()
        .join(", ");
    let reason = match new_state {
        AlarmState::InsufficientData => format!(
            "Insufficient Data: {} datapoint{} {} unknown.",
            n,
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" }
        ),
        _ if current == new_state
            && spec.treat_missing_data == TreatMissingData::Ignore
            && used.len() < n =>
        {
            format!(
                "Missing data ignored: state kept at {}.",
                new_state.as_str()
            )
        }
        _ => {
            let breaching = used
                .iter()
                .filter(|p| spec.comparison_operator.breaches(p.value, thr))
                .count();
            let (count, verb) = if new_state == AlarmState::Alarm {
                (breaching, "")
            } else {
                (used.len() - breaching, "not ")
            };
            let mut r = if used.is_empty() {
                format!(
                    "Threshold Crossed: no datapoints were received for {n} period{}",
                    if n == 1 { "" } else { "s" }
                )
            } else {
                format!(
                    "Threshold Crossed: {count} out of the last {} datapoints [{listed}] {} {verb}{} the threshold ({thr:?})",
                    used.len(),
                    if count == 1 { "was" } else { "were" },
                    spec.comparison_operator.words()
                )
            };
            if missing_in_window > 0 {
                let how = match spec.treat_missing_data {
                    TreatMissingData::Breaching => "Breaching",
                    TreatMissingData::NotBreaching => "NonBreaching",
                    _ => "Missing",
                };
                r.push_str(&format!(
                    " and {missing_in_window} missing datapoint{} {} treated as [{how}]",
                    if missing_in_window == 1 { "" } else { "s" },
                    if missing_in_window == 1 {
                        "was"
                    } else {
                        "were"
                    }
                ));
            }
            r.push('.');
            r
        }
    };
    let reason_data = serde_json::json!({
        "version": "1.0",
        "queryDate": iso(now_ms),
        "startDate": iso(oldest),
        "statistic": alarm.statistic.to_string(),
        "period": spec.period,
        "recentDatapoints": used.iter().map(|p| p.value).collect::<Vec<_>>(),
        "threshold": thr,
        "evaluatedDatapoints": used.iter().map(|p| serde_json::json!({
            "timestamp": iso(p.timestamp_ms), "sampleCount": p.sample_count, "value": p.value
        })).collect::<Vec<_>>(),
    });
    Evaluation {
        new_state,
        reason,
        reason_data,
        datapoints: used,
    }
}

/// DescribeAlarms' `MetricAlarms` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricAlarm {
    #[serde(flatten)]
    pub spec: AlarmSpec,
    pub alarm_arn: String,
    pub state_value: AlarmState,
    pub state_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason_data: Option<String>,
    /// Epoch ms.
    pub state_updated_timestamp: i64,
    pub alarm_configuration_updated_timestamp: i64,
}

/// DescribeAlarmHistory's `AlarmHistoryItems` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmHistoryItem {
    pub alarm_name: String,
    pub alarm_type: String,
    /// Epoch ms.
    pub timestamp: i64,
    /// ConfigurationUpdate | StateUpdate | Action.
    pub history_item_type: String,
    pub history_summary: String,
    pub history_data: String,
}

/// A state change, as actions and the `trailvault/alarms` log group see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub alarm_name: String,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    pub reason: String,
    pub reason_data: serde_json::Value,
    pub timestamp_ms: i64,
    pub datapoints: Vec<StatPoint>,
}

/// Filters for DescribeAlarms (all optional; `names` and `prefix` are exclusive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmQuery {
    pub names: Vec<String>,
    pub prefix: Option<String>,
    pub state: Option<AlarmState>,
}

pub fn alarm_arn(name: &str) -> String {
    format!("arn:trailvault:cloudwatch:local:000000000000:alarm:{name}")
}

fn state_of(s: &str) -> Result<AlarmState, rusqlite::Error> {
    s.parse().map_err(|e: AlarmError| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl MonitorDb {
    /// PutMetricAlarm: creates or replaces; a new alarm starts in INSUFFICIENT_DATA, a
    /// replaced one keeps its state.
    pub fn put_alarm(&self, spec: AlarmSpec, now_ms: i64) -> Result<Alarm, AlarmError> {
        let alarm = Alarm::new(spec)?;
        let text =
            serde_json::to_string(alarm.spec()).map_err(|e| AlarmError::Store(e.to_string()))?;
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let exists: Option<String> = tx
            .query_row(
                "SELECT name FROM alarms WHERE name = ?1",
                [alarm.name()],
                |r| r.get(0),
            )
            .optional()?;
        let summary = if exists.is_some() {
            tx.execute(
                "UPDATE alarms SET spec = ?2, config_updated_ms = ?3 WHERE name = ?1",
                params![alarm.name(), text, now_ms],
            )?;
            format!("Alarm \"{}\" updated", alarm.name())
        } else {
            tx.execute(
                "INSERT INTO alarms(name, spec, state, reason, reason_data, state_updated_ms, config_updated_ms) VALUES (?1, ?2, 'INSUFFICIENT_DATA', 'Unchecked: Initial alarm creation', NULL, ?3, ?3)",
                params![alarm.name(), text, now_ms],
            )?;
            format!("Alarm \"{}\" created", alarm.name())
        };
        tx.execute(
            "INSERT INTO alarm_history(name, ts_ms, item_type, summary, data) VALUES (?1, ?2, 'ConfigurationUpdate', ?3, ?4)",
            params![alarm.name(), now_ms, summary, text],
        )?;
        tx.commit()?;
        Ok(alarm)
    }

    /// DeleteAlarms; unknown names are an error, as in CloudWatch (nothing is deleted then).
    pub fn delete_alarms(&self, names: &[String]) -> Result<(), AlarmError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for n in names {
            if tx.execute("DELETE FROM alarms WHERE name = ?1", [n])? == 0 {
                return Err(AlarmError::NotFound(n.clone()));
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// All alarms (validated again on read: corrupt rows are an error, not skipped).
    pub fn alarms(&self) -> Result<Vec<(Alarm, AlarmState)>, AlarmError> {
        self.describe_alarms(&AlarmQuery::default())?
            .into_iter()
            .map(|m| {
                let state = m.state_value;
                Alarm::new(m.spec).map(|a| (a, state))
            })
            .collect()
    }

    /// DescribeAlarms.
    pub fn describe_alarms(&self, q: &AlarmQuery) -> Result<Vec<MetricAlarm>, AlarmError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT name, spec, state, reason, reason_data, state_updated_ms, config_updated_ms FROM alarms ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                state_of(&r.get::<_, String>(2)?)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, spec, state, reason, reason_data, su, cu) = row?;
            if !q.names.is_empty() && !q.names.contains(&name) {
                continue;
            }
            if q.prefix
                .as_ref()
                .is_some_and(|p| !name.starts_with(p.as_str()))
                || q.state.is_some_and(|s| s != state)
            {
                continue;
            }
            let spec: AlarmSpec = serde_json::from_str(&spec)
                .map_err(|e| AlarmError::Store(format!("alarm {name} is corrupt: {e}")))?;
            out.push(MetricAlarm {
                alarm_arn: alarm_arn(&name),
                spec,
                state_value: state,
                state_reason: reason,
                state_reason_data: reason_data,
                state_updated_timestamp: su,
                alarm_configuration_updated_timestamp: cu,
            });
        }
        Ok(out)
    }

    /// Records a state change and its history item; `None` when the alarm is already in
    /// `new_state` (no transition, nothing written).
    pub fn transition_alarm(
        &self,
        name: &str,
        new_state: AlarmState,
        reason: &str,
        reason_data: &serde_json::Value,
        datapoints: &[StatPoint],
        now_ms: i64,
    ) -> Result<Option<Transition>, AlarmError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let old: Option<String> = tx
            .query_row("SELECT state FROM alarms WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let old = state_of(&old.ok_or_else(|| AlarmError::NotFound(name.to_string()))?)?;
        if old == new_state {
            return Ok(None);
        }
        let data_text = reason_data.to_string();
        tx.execute(
            "UPDATE alarms SET state = ?2, reason = ?3, reason_data = ?4, state_updated_ms = ?5 WHERE name = ?1",
            params![name, new_state.as_str(), reason, data_text, now_ms],
        )?;
        let history = serde_json::json!({
            "version": "1.0",
            "oldState": {"stateValue": old.as_str()},
            "newState": {"stateValue": new_state.as_str(), "stateReason": reason, "stateReasonData": reason_data},
        });
        tx.execute(
            "INSERT INTO alarm_history(name, ts_ms, item_type, summary, data) VALUES (?1, ?2, 'StateUpdate', ?3, ?4)",
            params![name, now_ms, format!("Alarm updated from {} to {}", old.as_str(), new_state.as_str()), history.to_string()],
        )?;
        tx.commit()?;
        Ok(Some(Transition {
            alarm_name: name.to_string(),
            old_state: old,
            new_state,
            reason: reason.to_string(),
            reason_data: reason_data.clone(),
            timestamp_ms: now_ms,
            datapoints: datapoints.to_vec(),
        }))
    }

    /// SetAlarmState: forces a state (for testing actions); the next evaluation may change it
    /// back. `reason_data` must be JSON when given.
    pub fn set_alarm_state(
        &self,
        name: &str,
        state: AlarmState,
        reason: &str,
        reason_data: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Transition>, AlarmError> {
        if reason.chars().count() > 1023 {
            return Err(AlarmError::Invalid(
                "StateReason must be at most 1023 characters".into(),
            ));
        }
        let data = match reason_data {
            Some(t) => serde_json::from_str(t)
                .map_err(|e| AlarmError::Invalid(format!("StateReasonData is not JSON: {e}")))?,
            None => serde_json::Value::Null,
        };
        self.transition_alarm(name, state, reason, &data, &[], now_ms)
    }

    /// Adds an `Action` history item (delivery outcomes).
    pub fn record_alarm_action(
        &self,
        name: &str,
        summary: &str,
        data: &serde_json::Value,
        now_ms: i64,
    ) -> Result<(), AlarmError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO alarm_history(name, ts_ms, item_type, summary, data) VALUES (?1, ?2, 'Action', ?3, ?4)",
            params![name, now_ms, summary, data.to_string()],
        )?;
        Ok(())
    }

    /// DescribeAlarmHistory: newest first, at most `max_records` (1 to 100).
    pub fn alarm_history(
        &self,
        name: Option<&str>,
        item_type: Option<&str>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        max_records: usize,
    ) -> Result<Vec<AlarmHistoryItem>, AlarmError> {
        let limit = max_records.clamp(1, 100) as i64;
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT name, ts_ms, item_type, summary, data FROM alarm_history
             WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR item_type = ?2)
               AND (?3 IS NULL OR ts_ms >= ?3) AND (?4 IS NULL OR ts_ms < ?4)
             ORDER BY ts_ms DESC, id DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![name, item_type, start_ms, end_ms, limit], |r| {
            Ok(AlarmHistoryItem {
                alarm_name: r.get(0)?,
                alarm_type: "MetricAlarm".into(),
                timestamp: r.get(1)?,
                history_item_type: r.get(2)?,
                history_summary: r.get(3)?,
                history_data: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: u32, m: u32, treat: TreatMissingData) -> AlarmSpec {
        AlarmSpec {
            alarm_name: "a".into(),
            alarm_description: None,
            metric_name: "m".into(),
            namespace: "ns".into(),
            dimensions: vec![],
            statistic: Some("Sum".into()),
            extended_statistic: None,
            period: 60,
            evaluation_periods: n,
            datapoints_to_alarm: Some(m),
            threshold: 1.0,
            comparison_operator: ComparisonOperator::GreaterThanOrEqualToThreshold,
            treat_missing_data: treat,
            alarm_actions: vec![],
            ok_actions: vec![],
            insufficient_data_actions: vec![],
            actions_enabled: true,
            unit: None,
        }
    }

    /// `0` not breaching, `X` breaching, `-` missing; oldest first.
    fn slots(s: &str) -> Vec<Option<f64>> {
        s.split_whitespace()
            .map(|t| match t {
                "0" => Some(0.0),
                "X" => Some(5.0),
                _ => None,
            })
            .collect()
    }

    use AlarmState::{Alarm as A, InsufficientData as I, Ok as O};
    use TreatMissingData::{Breaching, Ignore, Missing, NotBreaching};

    #[test]
    fn missing_data_table() {
        // (N, M, slots oldest→newest, current, [missing, ignore, breaching, notBreaching])
        let table: &[(u32, u32, &str, AlarmState, [AlarmState; 4])] = &[
            // AWS's documented 3-of-3 examples.
            (3, 3, "0 - X - X", O, [O, O, O, O]),
            (3, 3, "- - - - -", O, [I, O, A, O]),
            (3, 3, "- - - - -", A, [I, A, A, O]),
            (3, 3, "0 X X - X", O, [A, A, A, A]),
            (3, 3, "- - X - -", O, [A, A, A, O]),
            (3, 3, "- - - - X", O, [I, O, A, O]),
            (3, 3, "X - - - -", O, [A, A, A, O]),
            (3, 3, "0 - - - -", A, [O, O, O, O]),
            // Premature-alarm avoidance keeps the state under ignore.
            (3, 3, "- - - - X", A, [I, A, A, O]),
            // At least N real points: the newest N real ones decide.
            (3, 3, "X X X 0 -", O, [O, O, O, O]),
            (3, 3, "0 X X X -", O, [A, A, A, A]),
            // M of N, not consecutive.
            (3, 2, "X 0 X - -", O, [A, A, A, A]),
            (5, 2, "- - - 0 X - -", O, [A, A, A, O]),
            (5, 2, "0 0 0 0 X - -", O, [O, O, O, O]),
            // CIS shape: 1 of 1.
            (1, 1, "- - X", O, [A, A, A, A]),
            (1, 1, "X - -", O, [A, A, A, A]),
            (1, 1, "- - -", A, [I, A, A, O]),
            (1, 1, "X - 0", A, [O, O, O, O]),
        ];
        for (n, m, s, current, want) in table {
            for (treat, want) in [Missing, Ignore, Breaching, NotBreaching]
                .into_iter()
                .zip(want)
            {
                let alarm = Alarm::new(spec(*n, *m, treat)).unwrap();
                let got = decide(&alarm, &slots(s), *current);
                assert_eq!(got, *want, "{m}/{n} `{s}` from {current:?} with {treat:?}");
            }
        }
    }

    #[test]
    fn evaluate_places_points_in_slots_and_explains() {
        let alarm = Alarm::new(spec(1, 1, NotBreaching)).unwrap();
        let now = 10 * 60_000 + 5_000;
        let pts = [StatPoint {
            timestamp_ms: 10 * 60_000,
            value: 3.0,
            sample_count: 3.0,
        }];
        let e = evaluate(&alarm, &pts, now, AlarmState::Ok);
        assert_eq!(e.new_state, AlarmState::Alarm);
        assert!(
            e.reason
                .starts_with("Threshold Crossed: 1 out of the last 1 datapoints [3.0 ("),
            "{}",
            e.reason
        );
        assert_eq!(e.reason_data["recentDatapoints"][0], 3.0);
        // Out of range: treated as missing.
        let e = evaluate(&alarm, &pts, now + 10 * 60_000, AlarmState::Alarm);
        assert_eq!(e.new_state, AlarmState::Ok);
    }

    #[test]
    fn validation_limits() {
        let mut s = spec(3, 3, Missing);
        s.period = 45;
        assert!(Alarm::new(s).is_err());
        let mut s = spec(3, 4, Missing);
        s.datapoints_to_alarm = Some(4);
        assert!(Alarm::new(s).is_err());
        let mut s = spec(1441, 1, Missing);
        s.period = 60;
        assert!(Alarm::new(s).is_err());
        let mut s = spec(1, 1, Missing);
        s.statistic = None;
        s.extended_statistic = Some("p99.9".into());
        assert_eq!(
            Alarm::new(s).unwrap().statistic(),
            Statistic::Percentile(99.9)
        );
        let mut s = spec(1, 1, Missing);
        s.alarm_actions = vec!["arn:aws:sns:x".into()];
        assert!(Alarm::new(s).is_err());
        let mut s = spec(1, 1, Missing);
        s.period = 10;
        s.alarm_actions = vec!["arn:trailvault:webhook:ops".into()];
        assert!(Alarm::new(s).is_ok());
        let json = r#"{"AlarmName":"x","MetricName":"m","Namespace":"n","Statistic":"Sum","Period":300,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanOrEqualToThreshold","TreatMissingData":"notBreaching","OKActions":["arn:trailvault:command:fix"]}"#;
        let s: AlarmSpec = serde_json::from_str(json).unwrap();
        assert!(s.actions_enabled);
        assert_eq!(s.ok_actions.len(), 1);
        Alarm::new(s).unwrap();
    }

    #[test]
    fn state_and_history_persist() {
        let dir = tempfile::tempdir().unwrap();
        let db = MonitorDb::open(&dir.path().join("m.db")).unwrap();
        db.put_alarm(spec(1, 1, Missing), 1000).unwrap();
        let t = db
            .set_alarm_state("a", AlarmState::Alarm, "testing", Some("{}"), 2000)
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.old_state, t.new_state),
            (AlarmState::InsufficientData, AlarmState::Alarm)
        );
        assert!(db
            .set_alarm_state("a", AlarmState::Alarm, "again", None, 2500)
            .unwrap()
            .is_none());
        db.put_alarm(spec(1, 1, Missing), 3000).unwrap();
        let d = db
            .describe_alarms(&AlarmQuery {
                state: Some(AlarmState::Alarm),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].state_reason, "testing");
        let json = serde_json::to_value(&d[0]).unwrap();
        assert_eq!(json["StateValue"], "ALARM");
        assert_eq!(json["AlarmName"], "a");
        let h = db.alarm_history(Some("a"), None, None, None, 100).unwrap();
        assert_eq!(
            h.iter()
                .map(|i| i.history_item_type.as_str())
                .collect::<Vec<_>>(),
            vec!["ConfigurationUpdate", "StateUpdate", "ConfigurationUpdate"]
        );
        assert!(db
            .set_alarm_state("nope", AlarmState::Ok, "x", None, 1)
            .is_err());
        db.delete_alarms(&["a".into()]).unwrap();
        assert!(db
            .describe_alarms(&AlarmQuery::default())
            .unwrap()
            .is_empty());
    }
}
