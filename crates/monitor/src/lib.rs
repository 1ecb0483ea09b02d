//! trailvault-monitor: filter patterns, metric filters, alarms and automated responses.
//!
//! - [`pattern`]: the CloudWatch Logs filter pattern language, compiled into fast matchers.
//! - [`engine`]: [`MonitorEngine`], the threads that evaluate batches, alarms and actions.
//! - [`metric`]: metric filters (PutMetricFilter / TestMetricFilter) and per-minute aggregates.
//! - [`actions`]: signed webhooks, commands and the alarms log-group record on transitions.
//! - [`alarm`]: alarms, CloudWatch's missing-data evaluation, state and history.
//! - [`rules`]: rule packs (CIS AWS Foundations) as versioned data files.
//! - [`subscription`]: subscription filters streaming matches to a destination at least once.
//! - [`remote`]: the "another trailvault" destination (PutLogEvents through an injected client).
//! - [`store`]: the SQLite file holding metric data, alarms, history and checkpoints.

pub mod actions;
pub mod alarm;
pub mod engine;
pub mod metric;
pub mod pattern;
pub mod remote;
pub mod rules;
pub mod store;
pub mod subscription;

pub use actions::{ActionDispatcher, ActionKind, ActionTarget, AlarmSink};
pub use alarm::{evaluate, Alarm, AlarmSpec, AlarmState, Evaluation, Transition};
pub use engine::{EngineConfig, EngineError, MonitorEngine};
pub use metric::{MetricFilter, MetricFilterSpec, MetricTransformation, Statistic};
pub use pattern::{
    Extracted, FilterPattern, PatternError, PatternErrorKind, PatternKind, PatternSet,
};
pub use remote::{RemoteVault, RemoteVaultTarget};
pub use rules::{rule_pack, rule_packs, Rule, RulePack};
pub use store::{MonitorDb, StoreError};
pub use subscription::{
    Destination, EventSource, SourceError, SubscriptionError, SubscriptionFilterSpec,
};
