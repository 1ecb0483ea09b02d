//! Metric filters (PutMetricFilter / TestMetricFilter shapes) and their evaluation into
//! per-minute aggregates.
//!
//! Invariants:
//! - a [`MetricFilter`] is validated on construction (names, one transformation, at most 3
//!   dimensions, `metricValue` a number or a field the pattern names, namespace rules);
//! - values are aggregated per minute of the event's own timestamp;
//! - `defaultValue` is emitted once per (filter, minute) for a batch that had events in that
//!   minute but no match; a minute with no events gets nothing (CloudWatch's rule, applied per
//!   ingested batch as CloudWatch does);
//! - a filter with dimensions is disabled after 1,000 distinct dimension value sets within one
//!   hour; it stays disabled until it is put again.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use trailvault_model::StoredEvent;

use crate::pattern::{parse_number, FilterPattern, PatternError, PatternKind};

/// Most metric filters per log group.
pub const METRIC_FILTERS_PER_GROUP_MAX: usize = 100;
/// Most dimensions per metric transformation.
pub const DIMENSIONS_MAX: usize = 3;
/// Distinct dimension value sets per filter per hour before the filter is disabled.
pub const DIMENSION_SETS_PER_HOUR_MAX: usize = 1000;
const NAME_CHARS_MAX: usize = 255;
const FILTER_NAME_CHARS_MAX: usize = 512;
const METRIC_VALUE_CHARS_MAX: usize = 100;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// CloudWatch StandardUnit values.
pub const STANDARD_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One `metricTransformations` entry, as on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformation {
    pub metric_name: String,
    pub metric_namespace: String,
    pub metric_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A metric filter as PutMetricFilter takes it and DescribeMetricFilters returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterSpec {
    pub filter_name: String,
    pub filter_pattern: String,
    pub metric_transformations: Vec<MetricTransformation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
}

/// Why a metric filter was refused. Maps to InvalidParameterException.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricFilterError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> MetricFilterError {
    MetricFilterError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Where a transformation takes its value from.
#[derive(Debug, Clone, PartialEq)]
enum ValueSource {
    Literal(f64),
    Field(String),
}

/// A validated, compiled metric filter.
#[derive(Debug, Clone)]
pub struct MetricFilter {
    spec: MetricFilterSpec,
    pattern: FilterPattern,
    value: ValueSource,
}

/// Identity of a metric time series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricKey {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// Sum, SampleCount, Min and Max of the values in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub sum: f64,
    pub sample_count: f64,
    pub min: f64,
    pub max: f64,
}

impl Aggregate {
    pub fn of(value: f64) -> Aggregate {
        Aggregate {
            sum: value,
            sample_count: 1.0,
            min: value,
            max: value,
        }
    }

    pub fn merge(&mut self, other: &Aggregate) {
        self.sum += other.sum;
        self.sample_count += other.sample_count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// One minute of one metric, produced by evaluating a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDatum {
    pub key: MetricKey,
    /// Start of the minute, epoch ms.
    pub minute_ms: i64,
    pub aggregate: Aggregate,
    /// The individual values (bounded), kept for percentile statistics.
    pub values: Vec<f64>,
    pub unit: Option<String>,
}

/// A CloudWatch statistic: `SampleCount | Average | Sum | Minimum | Maximum | pNN`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `pNN` / `pNN.NN`, 0 < NN <= 100.
    Percentile(f64),
}

impl std::str::FromStr for Statistic {
    type Err = String;
    fn from_str(s: &str) -> Result<Statistic, String> {
        Ok(match s {
            "SampleCount" => Statistic::SampleCount,
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => {
                let p = s
                    .strip_prefix('p')
                    .and_then(|n| {
                        let ok = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                        if ok { n.parse::<f64>().ok() } else { None }
                    })
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| format!("{s} is not a statistic (SampleCount, Average, Sum, Minimum, Maximum or pNN)"))?;
                Statistic::Percentile(p)
            }
        })
    }
}

impl std::fmt::Display for Statistic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Average => f.write_str("Average"),
            Statistic::Sum => f.write_str("Sum"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

impl Statistic {
    /// The statistic of one bucket; percentiles use the kept values (nearest rank) and are
    /// `None` without any.
    pub fn apply(&self, agg: &Aggregate, values: &mut [f64]) -> Option<f64> {
        if agg.sample_count <= 0.0 {
            return None;
        }
        Some(match self {
            Statistic::SampleCount => agg.sample_count,
            Statistic::Average => agg.sum / agg.sample_count,
            Statistic::Sum => agg.sum,
            Statistic::Minimum => agg.min,
            Statistic::Maximum => agg.max,
            Statistic::Percentile(p) => {
                if values.is_empty() {
                    return None;
                }
                values.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
                values[rank.clamp(1, values.len()) - 1]
            }
        })
    }
}

/// Values kept per datum for percentiles; beyond this percentiles are approximate.
pub const VALUES_PER_DATUM_MAX: usize = 1000;

/// Per (dimensions, minute): the aggregate and the kept values.
type Buckets = HashMap<(BTreeMap<String, String>, i64), (Aggregate, Vec<f64>)>;

/// Per-filter state that outlives one batch: the dimension-set limit.
#[derive(Debug, Default, Clone)]
pub struct FilterState {
    hour_ms: i64,
    dimension_sets: HashSet<Vec<String>>,
    disabled: bool,
}

impl FilterState {
    pub fn disabled(&self) -> bool {
        self.disabled
    }
}

fn check_name(
    field: &'static str,
    value: &str,
    max: usize,
    forbidden: &[char],
) -> Result<(), MetricFilterError> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(invalid(field, format!("must be 1 to {max} characters")));
    }
    if let Some(c) = value.chars().find(|c| forbidden.contains(c)) {
        return Err(invalid(field, format!("must not contain '{c}'")));
    }
    Ok(())
}

impl MetricFilter {
    /// Validates `spec` as PutMetricFilter does and compiles its pattern.
    pub fn new(spec: MetricFilterSpec) -> Result<MetricFilter, MetricFilterError> {
        check_name(
            "filterName",
            &spec.filter_name,
            FILTER_NAME_CHARS_MAX,
            &[':', '*'],
        )?;
        let pattern = FilterPattern::parse(&spec.filter_pattern)?;
        if spec.metric_transformations.len() != 1 {
            return Err(invalid(
                "metricTransformations",
                "exactly one metric transformation is required",
            ));
        }
        let t = &spec.metric_transformations[0];
        check_name(
            "metricName",
            &t.metric_name,
            NAME_CHARS_MAX,
            &[':', '*', '$'],
        )?;
        check_name(
            "metricNamespace",
            &t.metric_namespace,
            NAME_CHARS_MAX,
            &[':', '*', '$'],
        )?;
        if t.metric_namespace.starts_with("AWS/") {
            return Err(invalid("metricNamespace", "the AWS/ prefix is reserved"));
        }
        let mv = t.metric_value.trim();
        if mv.is_empty() || mv.chars().count() > METRIC_VALUE_CHARS_MAX {
            return Err(invalid(
                "metricValue",
                format!("must be 1 to {METRIC_VALUE_CHARS_MAX} characters"),
            ));
        }
        let fields = pattern.field_names();
        let value = if let Some(n) = parse_number(mv) {
            ValueSource::Literal(n)
        } else if mv.starts_with('$') {
            check_field_ref("metricValue", mv, &pattern, &fields)?;
            ValueSource::Field(mv.to_string())
        } else {
            return Err(invalid(
                "metricValue",
                "must be a number or a field reference like $.field or $name",
            ));
        };
        if t.dimensions.len() > DIMENSIONS_MAX {
            return Err(invalid(
                "dimensions",
                format!("at most {DIMENSIONS_MAX} dimensions are allowed"),
            ));
        }
        for (k, v) in &t.dimensions {
            check_name("dimensions", k, NAME_CHARS_MAX, &[])?;
            check_field_ref("dimensions", v, &pattern, &fields)?;
        }
        if !t.dimensions.is_empty() && t.default_value.is_some() {
            return Err(invalid(
                "defaultValue",
                "a default value cannot be used with dimensions",
            ));
        }
        if let Some(d) = t.default_value {
            if !d.is_finite() {
                return Err(invalid("defaultValue", "must be a finite number"));
            }
        }
        if let Some(u) = &t.unit {
            if !STANDARD_UNITS.contains(&u.as_str()) {
                return Err(invalid(
                    "unit",
                    format!("{u} is not a CloudWatch standard unit"),
                ));
            }
        }
        Ok(MetricFilter {
            spec,
            pattern,
            value,
        })
    }

    pub fn spec(&self) -> &MetricFilterSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.filter_name
    }

    pub fn pattern(&self) -> &FilterPattern {
        &self.pattern
    }

    pub fn transformation(&self) -> &MetricTransformation {
        &self.spec.metric_transformations[0]
    }

    /// The value and dimension set one matching event contributes, or `None` when a field
    /// it needs is absent or not numeric (CloudWatch skips such events).
    pub fn datum_for(
        &self,
        extracted: &crate::pattern::Extracted,
    ) -> Option<(f64, BTreeMap<String, String>)> {
        let value = match &self.value {
            ValueSource::Literal(n) => *n,
            ValueSource::Field(f) => parse_number(extracted.get(f)?.trim())?,
        };
        let mut dims = BTreeMap::new();
        for (k, v) in &self.transformation().dimensions {
            dims.insert(k.clone(), extracted.get(v)?.to_string());
        }
        Some((value, dims))
    }

    /// Evaluates one batch of events into per-minute data. `state` carries the dimension-set
    /// limit across batches. `matched` gives, per event, the extracted values when it matched
    /// (so a caller evaluating many filters can run one [`crate::PatternSet`]); use
    /// [`MetricFilter::evaluate`] for the simple case.
    pub fn aggregate(
        &self,
        events: &[StoredEvent],
        matched: &mut dyn FnMut(usize) -> Option<crate::pattern::Extracted>,
        state: &mut FilterState,
    ) -> Vec<MetricDatum> {
        if state.disabled {
            return Vec::new();
        }
        let t = self.transformation();
        let mut buckets: Buckets = HashMap::new();
        let mut minutes_seen: Vec<i64> = Vec::new();
        let mut minutes_matched: HashSet<i64> = HashSet::new();
        for (i, ev) in events.iter().enumerate() {
            let minute = ev.timestamp_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            if minutes_seen.last() != Some(&minute) && !minutes_seen.contains(&minute) {
                minutes_seen.push(minute);
            }
            let Some(x) = matched(i) else { continue };
            let Some((value, dims)) = self.datum_for(&x) else {
                continue;
            };
            minutes_matched.insert(minute);
            if !dims.is_empty() {
                let hour = ev.timestamp_ms.div_euclid(HOUR_MS);
                if hour != state.hour_ms {
                    state.hour_ms = hour;
                    state.dimension_sets.clear();
                }
                state
                    .dimension_sets
                    .insert(dims.values().cloned().collect());
                if state.dimension_sets.len() > DIMENSION_SETS_PER_HOUR_MAX {
                    tracing::warn!(filter = %self.spec.filter_name, "metric filter disabled: too many distinct dimension values in one hour");
                    state.disabled = true;
                    return Vec::new();
                }
            }
            let e = buckets.entry((dims, minute)).or_insert_with(|| {
                (
                    Aggregate {
                        sum: 0.0,
                        sample_count: 0.0,
                        min: f64::INFINITY,
                        max: f64::NEG_INFINITY,
                    },
                    Vec::new(),
                )
            });
            e.0.merge(&Aggregate::of(value));
            if e.1.len() < VALUES_PER_DATUM_MAX {
                e.1.push(value);
            }
        }
        if let Some(d) = t.default_value {
            for m in minutes_seen {
                if !minutes_matched.contains(&m) {
                    buckets.insert((BTreeMap::new(), m), (Aggregate::of(d), vec![d]));
                }
            }
        }
        let mut out: Vec<MetricDatum> = buckets
            .into_iter()
            .map(
                |((dimensions, minute_ms), (aggregate, values))| MetricDatum {
                    key: MetricKey {
                        namespace: t.metric_namespace.clone(),
                        name: t.metric_name.clone(),
                        dimensions,
                    },
                    minute_ms,
                    aggregate,
                    values,
                    unit: t.unit.clone(),
                },
            )
            .collect();
        out.sort_by(|a, b| (a.minute_ms, &a.key).cmp(&(b.minute_ms, &b.key)));
        out
    }

    /// Evaluates a batch with this filter's own pattern.
    pub fn evaluate(&self, events: &[StoredEvent], state: &mut FilterState) -> Vec<MetricDatum> {
        self.aggregate(
            events,
            &mut |i| self.pattern.extract(&events[i].message),
            state,
        )
    }
}

fn check_field_ref(
    field: &'static str,
    r: &str,
    pattern: &FilterPattern,
    names: &[String],
) -> Result<(), MetricFilterError> {
    match pattern.kind() {
        PatternKind::Json => {
            if !r.starts_with("$.") && !r.starts_with("$[") {
                return Err(invalid(
                    field,
                    format!("{r}: JSON patterns take selectors like $.field"),
                ));
            }
            if !names.iter().any(|n| n == r) {
                return Err(invalid(
                    field,
                    format!("{r} must appear in the filter pattern"),
                ));
            }
        }
        PatternKind::SpaceDelimited => {
            let positional = r[1..].parse::<usize>().ok();
            let ok = match positional {
                Some(n) => n >= 1 && n <= names.len() + 1,
                None => names.iter().any(|n| n == r),
            };
            if !ok {
                return Err(invalid(
                    field,
                    format!("{r} must name a field of the filter pattern"),
                ));
            }
        }
        PatternKind::Terms | PatternKind::MatchAll => {
            return Err(invalid(
                field,
                format!("{r}: field references need a JSON or space-delimited pattern"),
            ));
        }
    }
    Ok(())
}

/// One TestMetricFilter match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterMatch {
    pub event_number: u64,
    pub event_message: String,
    pub extracted_values: BTreeMap<String, String>,
}

/// TestMetricFilter's response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetricFilterResult {
    pub matches: Vec<MetricFilterMatch>,
}

/// Most messages TestMetricFilter accepts.
pub const TEST_MESSAGES_MAX: usize = 50;

/// TestMetricFilter: which of `messages` the pattern matches (1-based `eventNumber`) and the
/// values it extracts.
pub fn test_metric_filter(
    pattern: &str,
    messages: &[String],
) -> Result<TestMetricFilterResult, MetricFilterError> {
    if messages.is_empty() || messages.len() > TEST_MESSAGES_MAX {
        return Err(invalid(
            "logEventMessages",
            format!("must hold 1 to {TEST_MESSAGES_MAX} messages"),
        ));
    }
    let p = FilterPattern::parse(pattern)?;
    let matches = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let x = p.extract(m)?;
            Some(MetricFilterMatch {
                event_number: i as u64 + 1,
                event_message: m.clone(),
                extracted_values: x.values().iter().cloned().collect(),
            })
        })
        .collect();
    Ok(TestMetricFilterResult { matches })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, msg: &str) -> StoredEvent {
        StoredEvent {
            seq: 0,
            group: "g".into(),
            stream: "s".into(),
            timestamp_ms: ts,
            ingestion_time_ms: ts,
            message: msg.into(),
            normalized: None,
        }
    }

    fn spec(
        pattern: &str,
        value: &str,
        default: Option<f64>,
        dims: &[(&str, &str)],
    ) -> MetricFilterSpec {
        MetricFilterSpec {
            filter_name: "f".into(),
            filter_pattern: pattern.into(),
            metric_transformations: vec![MetricTransformation {
                metric_name: "m".into(),
                metric_namespace: "ns".into(),
                metric_value: value.into(),
                default_value: default,
                dimensions: dims
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                unit: None,
            }],
            log_group_name: None,
            creation_time: None,
        }
    }

    #[test]
    fn validation_rejects_what_cloudwatch_rejects() {
        let bad = [
            spec("{ $.a = 1 }", "$.b", None, &[]),
            spec("ERROR", "$.a", None, &[]),
            spec("{ $.a = 1 }", "abc", None, &[]),
            spec("[ip, status]", "$bytes", None, &[]),
            spec("{ $.a = * }", "1", Some(0.0), &[("A", "$.a")]),
            spec(
                "{ $.a = * && $.b = * && $.c = * && $.d = * }",
                "1",
                None,
                &[("A", "$.a"), ("B", "$.b"), ("C", "$.c"), ("D", "$.d")],
            ),
            spec("{ $.a = }", "1", None, &[]),
        ];
        for s in bad {
            assert!(MetricFilter::new(s.clone()).is_err(), "{s:?}");
        }
        let mut s = spec("ERROR", "1", None, &[]);
        s.metric_transformations[0].metric_namespace = "a:b".into();
        assert!(MetricFilter::new(s).is_err());
        let mut s = spec("ERROR", "1", None, &[]);
        s.metric_transformations[0].unit = Some("Parsecs".into());
        assert!(MetricFilter::new(s).is_err());
        for ok in [
            spec("{ $.a = * }", "$.a", None, &[("A", "$.a")]),
            spec(
                "[ip, status, bytes]",
                "$bytes",
                None,
                &[("Status", "$status")],
            ),
            spec("[ip, status, bytes]", "$3", Some(0.0), &[]),
            spec("", "1", Some(0.0), &[]),
        ] {
            MetricFilter::new(ok).unwrap();
        }
    }

    #[test]
    fn aggregates_per_minute_with_default_value() {
        let f = MetricFilter::new(spec("{ $.latency > 0 }", "$.latency", Some(0.0), &[])).unwrap();
        let events = vec![
            ev(60_000, r#"{"latency": 5}"#),
            ev(61_000, r#"{"latency": 7}"#),
            ev(62_000, r#"{"other": 1}"#),
            ev(120_500, r#"{"other": 1}"#),
        ];
        let out = f.evaluate(&events, &mut FilterState::default());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].minute_ms, 60_000);
        assert_eq!(
            out[0].aggregate,
            Aggregate {
                sum: 12.0,
                sample_count: 2.0,
                min: 5.0,
                max: 7.0
            }
        );
        assert_eq!(out[1].minute_ms, 120_000);
        assert_eq!(out[1].aggregate, Aggregate::of(0.0));
    }

    #[test]
    fn dimensions_split_series_and_disable_past_the_limit() {
        let f = MetricFilter::new(spec(
            "[ip, status, bytes]",
            "$bytes",
            None,
            &[("Status", "$status")],
        ))
        .unwrap();
        let events = vec![
            ev(0, "1.1.1.1 200 10"),
            ev(1, "1.1.1.1 404 3"),
            ev(2, "1.1.1.1 200 5"),
        ];
        let out = f.evaluate(&events, &mut FilterState::default());
        assert_eq!(out.len(), 2);
        let s200 = out
            .iter()
            .find(|d| d.key.dimensions["Status"] == "200")
            .unwrap();
        assert_eq!(s200.aggregate.sum, 15.0);
        let many: Vec<StoredEvent> = (0..1001).map(|i| ev(i, &format!("ip {i} 1"))).collect();
        let mut st = FilterState::default();
        assert!(f.evaluate(&many, &mut st).is_empty());
        assert!(st.disabled());
    }

    #[test]
    fn test_metric_filter_shape() {
        let r = test_metric_filter(
            "[ip, user, status = 4*]",
            &["a b 404".into(), "a b 200".into()],
        )
        .unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["matches"][0]["eventNumber"], 1);
        assert_eq!(json["matches"][0]["extractedValues"]["$status"], "404");
        assert_eq!(r.matches.len(), 1);
    }
}
