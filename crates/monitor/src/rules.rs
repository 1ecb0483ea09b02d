//! Rule packs: versioned data files (`rules/*.yaml`, compiled in) that expand into metric
//! filters and alarms for one log group. `trailvault rules install cis-aws` is
//! [`RulePack::metric_filters`] + [`RulePack::alarms`] through the normal APIs.
//!
//! Invariant (tested): every rule of every pack parses, and its filter and alarm pass the same
//! validation as PutMetricFilter / PutMetricAlarm.

use serde::{Deserialize, Serialize};

use crate::alarm::{AlarmSpec, ComparisonOperator, TreatMissingData};
use crate::metric::{MetricFilterSpec, MetricTransformation};

const PACK_SOURCES: [&str; 1] = [include_str!("../rules/cis-aws.yaml")];

/// Alarm settings shared by every rule of a pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmDefaults {
    pub statistic: String,
    pub period: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison_operator: ComparisonOperator,
    pub treat_missing_data: TreatMissingData,
}

/// One monitoring control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// The benchmark control id, e.g. "4.3".
    pub cis_control: String,
    /// Security Hub's control id, e.g. "CloudWatch.1" (none for controls it lacks).
    pub security_hub_control: Option<String>,
    pub title: String,
    pub metric_name: String,
    pub pattern: String,
}

/// A named, versioned set of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePack {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub benchmark: String,
    pub metric_namespace: String,
    pub alarm: AlarmDefaults,
    pub rules: Vec<Rule>,
}

/// Every pack shipped with this build.
pub fn rule_packs() -> Vec<RulePack> {
    PACK_SOURCES
        .iter()
        .filter_map(|src| match serde_yaml::from_str::<RulePack>(src) {
            Ok(p) => Some(p),
            Err(e) => {
                // Unreachable for shipped packs (a unit test parses them all).
                tracing::error!(error = %e, "built-in rule pack does not parse");
                None
            }
        })
        .collect()
}

/// The pack with this id.
pub fn rule_pack(id: &str) -> Option<RulePack> {
    rule_packs().into_iter().find(|p| p.id == id)
}

impl RulePack {
    /// Metric filter name for `rule` (unique within a log group).
    pub fn filter_name(&self, rule: &Rule) -> String {
        format!("{}-{}", self.id, rule.id)
    }

    /// Alarm name for `rule`. Metric filter metrics carry no log-group dimension, so one alarm
    /// per rule serves every group the pack is installed on.
    pub fn alarm_name(&self, rule: &Rule) -> String {
        format!("{}-{}", self.id, rule.id)
    }

    /// PutMetricFilter inputs for installing the pack on `group`.
    pub fn metric_filters(&self, group: &str) -> Vec<MetricFilterSpec> {
        self.rules
            .iter()
            .map(|r| MetricFilterSpec {
                filter_name: self.filter_name(r),
                filter_pattern: r.pattern.clone(),
                metric_transformations: vec![MetricTransformation {
                    metric_name: r.metric_name.clone(),
                    metric_namespace: self.metric_namespace.clone(),
                    metric_value: "1".into(),
                    default_value: None,
                    dimensions: Default::default(),
                    unit: None,
                }],
                log_group_name: Some(group.to_string()),
                creation_time: None,
            })
            .collect()
    }

    /// PutMetricAlarm inputs for the pack's alarms (no actions: the installer adds them).
    pub fn alarms(&self, group: &str) -> Vec<AlarmSpec> {
        let a = &self.alarm;
        self.rules
            .iter()
            .map(|r| AlarmSpec {
                alarm_name: self.alarm_name(r),
                alarm_description: Some(format!(
                    "CIS {}{}: {} (log group {group}; {} v{})",
                    r.cis_control,
                    r.security_hub_control
                        .as_ref()
                        .map(|s| format!(" / {s}"))
                        .unwrap_or_default(),
                    r.title,
                    self.id,
                    self.version
                )),
                metric_name: r.metric_name.clone(),
                namespace: self.metric_namespace.clone(),
                dimensions: vec![],
                statistic: Some(a.statistic.clone()),
                extended_statistic: None,
                period: a.period,
                evaluation_periods: a.evaluation_periods,
                datapoints_to_alarm: Some(a.datapoints_to_alarm),
                threshold: a.threshold,
                comparison_operator: a.comparison_operator,
                treat_missing_data: a.treat_missing_data,
                alarm_actions: vec![],
                ok_actions: vec![],
                insufficient_data_actions: vec![],
                actions_enabled: true,
                unit: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::Alarm;
    use crate::metric::MetricFilter;

    #[test]
    fn cis_pack_is_complete_and_valid() {
        let packs = rule_packs();
        assert_eq!(packs.len(), PACK_SOURCES.len());
        let cis = rule_pack("cis-aws").unwrap();
        assert_eq!(cis.rules.len(), 15);
        assert_eq!(cis.metric_namespace, "CISBenchmark");
        let controls: Vec<&str> = cis.rules.iter().map(|r| r.cis_control.as_str()).collect();
        for i in 1..=15 {
            assert!(
                controls.contains(&format!("4.{i}").as_str()),
                "missing control 4.{i}"
            );
        }
        let hub: Vec<&str> = cis
            .rules
            .iter()
            .filter_map(|r| r.security_hub_control.as_deref())
            .collect();
        for i in 1..=14 {
            assert!(
                hub.contains(&format!("CloudWatch.{i}").as_str()),
                "missing CloudWatch.{i}"
            );
        }
        for f in cis.metric_filters("aws-cloudtrail-logs") {
            MetricFilter::new(f).unwrap();
        }
        for a in cis.alarms("aws-cloudtrail-logs") {
            let a = Alarm::new(a).unwrap();
            assert_eq!(a.spec().period, 300);
            assert_eq!(a.spec().threshold, 1.0);
        }
    }
}
