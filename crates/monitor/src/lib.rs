//! trailvault-monitor: filter patterns, metric filters, alarms and automated responses.
//!
//! - [`pattern`]: the CloudWatch Logs filter pattern language, compiled into fast matchers.

pub mod pattern;

pub use pattern::{
    Extracted, FilterPattern, PatternError, PatternErrorKind, PatternKind, PatternSet,
};
