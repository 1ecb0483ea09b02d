//! CloudWatch Logs limits the vault enforces, named with their unit last.

/// Largest PutLogEvents batch: sum of UTF-8 message bytes plus [`EVENT_OVERHEAD_BYTES`] each.
pub const BATCH_BYTES_MAX: usize = 1_048_576;
/// Per-event overhead counted against [`BATCH_BYTES_MAX`].
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// Largest single event message (CloudWatch's historical 256 KB limit, overhead included).
pub const EVENT_BYTES_MAX: usize = 262_144;
/// Most events in one PutLogEvents call.
pub const BATCH_EVENTS_MAX: usize = 10_000;
/// Events older than this (relative to now) are rejected as too old.
pub const EVENT_AGE_MS_MAX: i64 = 14 * 24 * 3600 * 1000;
/// Events further ahead than this are rejected as too new.
pub const EVENT_FUTURE_MS_MAX: i64 = 2 * 3600 * 1000;
/// The events of one batch must fit in this time span.
pub const BATCH_SPAN_MS_MAX: i64 = 24 * 3600 * 1000;
/// Retention values CloudWatch accepts for PutRetentionPolicy.
pub const RETENTION_DAYS_ALLOWED: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
/// Log group and stream names: 1 to 512 characters.
pub const NAME_LEN_MAX: usize = 512;
/// Tags per resource.
pub const TAGS_MAX: usize = 50;
