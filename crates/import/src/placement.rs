//! Where an imported file's records go (documented in docs/formats.md, "Import placement").
//!
//! - Log group: `awslogs/<format>/<account>/<region>` when the key names both, else
//!   `awslogs/<format>/<account>` when it names the account only, else `import/<format>`;
//!   `--group` overrides it for every file.
//! - Log stream: the source file's key, so one stream holds exactly one file's records and the
//!   stream's event count says how far an import of that file got. `:` and `*` (not allowed
//!   in stream names) and `%` are percent-encoded, which keeps distinct keys distinct; a key
//!   longer than 512 characters keeps its last characters behind a hash of the whole key.
//! - Timestamp: the record's own time; else the delivery date in the key (midnight UTC); else
//!   the object's modification time; else the import's start time.

use sha2::{Digest, Sha256};
use trailvault_formats::{Format, KeyInfo};
use trailvault_model::limits::NAME_LEN_MAX;

/// Quarantined records: stream = the source file's stream name.
pub const QUARANTINE_GROUP: &str = "trailvault/quarantine";
/// One JSON event per completed file.
pub const LEDGER_GROUP: &str = "trailvault/imports";
pub const LEDGER_STREAM: &str = "files";

fn group_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-#".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The default log group of a file of `format` with key information `info`.
pub fn group_for(format: Format, info: &KeyInfo) -> String {
    match (&info.account, &info.region) {
        (Some(a), Some(r)) => format!(
            "awslogs/{}/{}/{}",
            format.id(),
            group_part(a),
            group_part(r)
        ),
        (Some(a), None) => format!("awslogs/{}/{}", format.id(), group_part(a)),
        _ => format!("import/{}", format.id()),
    }
}

/// The log stream name for a source key.
pub fn stream_for(key: &str) -> String {
    let mut s = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => s.push_str("%25"),
            ':' => s.push_str("%3A"),
            '*' => s.push_str("%2A"),
            c => s.push(c),
        }
    }
    if s.is_empty() {
        return "%00".to_owned();
    }
    if s.chars().count() <= NAME_LEN_MAX {
        return s;
    }
    // Keep the tail (the file name is the informative part) behind a hash of the full key.
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..8]);
    let keep = NAME_LEN_MAX - hash.len() - 2;
    let chars: Vec<char> = s.chars().collect();
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{hash}~/{tail}")
}

/// Timestamp used when a record states none (see the module docs).
pub fn fallback_time_ms(info: &KeyInfo, modified_ms: Option<i64>, import_start_ms: i64) -> i64 {
    info.date
        .as_deref()
        .and_then(date_to_ms)
        .or(modified_ms)
        .unwrap_or(import_start_ms)
}

/// `YYYY-MM-DD` to epoch ms at midnight UTC.
fn date_to_ms(date: &str) -> Option<i64> {
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        let info = trailvault_formats::key_info(
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/01/02/111122223333_CloudTrail_eu-west-1_20240102T0000Z_abc.json.gz",
        );
        assert_eq!(
            group_for(Format::Cloudtrail, &info),
            "awslogs/cloudtrail/111122223333/eu-west-1"
        );
        assert_eq!(
            group_for(Format::S3Access, &KeyInfo::default()),
            "import/s3-access"
        );
        let acct_only = KeyInfo {
            account: Some("123456789012".into()),
            ..KeyInfo::default()
        };
        assert_eq!(
            group_for(Format::Cloudfront, &acct_only),
            "awslogs/cloudfront/123456789012"
        );
    }

    #[test]
    fn streams_are_valid_and_injective() {
        assert_eq!(stream_for("a/b.log"), "a/b.log");
        assert_eq!(
            stream_for("x_AWS::EC2::SG_1.json.gz"),
            "x_AWS%3A%3AEC2%3A%3ASG_1.json.gz"
        );
        assert_ne!(stream_for("a:b"), stream_for("a%3Ab"));
        assert_eq!(stream_for("a*"), "a%2A");
        let long = "d/".repeat(400) + "file.log";
        let s = stream_for(&long);
        assert_eq!(s.chars().count(), NAME_LEN_MAX);
        assert!(s.ends_with("/file.log"));
        assert_ne!(s, stream_for(&("e/".repeat(400) + "file.log")));
        assert!(!s.contains([':', '*']));
    }

    #[test]
    fn dates() {
        assert_eq!(date_to_ms("1970-01-01"), Some(0));
        assert_eq!(date_to_ms("2024-03-07"), Some(1_709_769_600_000));
        assert_eq!(date_to_ms("2024-13-07"), None);
        let info = KeyInfo {
            date: Some("2024-03-07".into()),
            ..KeyInfo::default()
        };
        assert_eq!(fallback_time_ms(&info, Some(5), 9), 1_709_769_600_000);
        assert_eq!(fallback_time_ms(&KeyInfo::default(), Some(5), 9), 5);
        assert_eq!(fallback_time_ms(&KeyInfo::default(), None, 9), 9);
    }
}
