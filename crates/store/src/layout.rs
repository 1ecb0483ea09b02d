//! Object key layout. Hive-style partitions so DuckDB, Athena, Trino and Spark can read the
//! archive directly, in the spirit of AWS's `AWSLogs/<account>/<service>/<region>/YYYY/MM/DD`:
//!
//! ```text
//! segments/group=<group>/year=YYYY/month=MM/day=DD/hour=HH/<first_seq>-<last_seq>.parquet
//! ```
//!
//! `<group>` is the log group name with `/` and `#` percent-encoded, so one path segment
//! names one group and the mapping is reversible. The hour is the hour of event time.

use chrono::{DateTime, Datelike, Timelike, Utc};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

pub const SEGMENTS_PREFIX: &str = "segments";

/// Characters a log group may contain that cannot stand in one path segment.
const GROUP_ESCAPES: &AsciiSet = &CONTROLS.add(b'/').add(b'#').add(b'%');

pub fn encode_group(group: &str) -> String {
    utf8_percent_encode(group, GROUP_ESCAPES).to_string()
}

pub fn decode_group(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Start of the hour holding `ts_ms`, in epoch milliseconds.
pub fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(3_600_000) * 3_600_000
}

pub fn segment_key(group: &str, hour_ms: i64, first_seq: u64, last_seq: u64) -> String {
    let t: DateTime<Utc> = DateTime::from_timestamp_millis(hour_ms).unwrap_or_default();
    format!(
        "{SEGMENTS_PREFIX}/group={}/year={:04}/month={:02}/day={:02}/hour={:02}/{first_seq:020}-{last_seq:020}.parquet",
        encode_group(group),
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_partitioned_and_group_names_reversible() {
        let k = segment_key("aws/cloudtrail#x", 1_763_780_400_000, 5, 9);
        assert_eq!(
            k,
            "segments/group=aws%2Fcloudtrail%23x/year=2025/month=11/day=22/hour=03/00000000000000000005-00000000000000000009.parquet"
        );
        assert_eq!(decode_group("aws%2Fcloudtrail%23x"), "aws/cloudtrail#x");
        assert_eq!(hour_of(-1), -3_600_000);
    }
}
