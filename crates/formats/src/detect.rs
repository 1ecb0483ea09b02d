//! Naming a file's format from its object key (AWS delivery layouts) and, failing that, from
//! its first bytes; and reading account, region and service out of a key.
//!
//! Rules (also in docs/formats.md): the key is tried first, because AWS's delivery layouts are
//! unambiguous; content sniffing only answers when the first line matches one format's shape
//! exactly. Both return `None` rather than guess: the importer reports such a file.
//! `head` must be decompressed bytes.

use crate::sources::vpc_flow;
use crate::text::{parse_clf_time_ms, parse_iso8601_ms};
use crate::Format;

/// What an AWS delivery key says about its file. Every field is optional: keys outside the
/// AWS layouts give an empty `KeyInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInfo {
    /// The 12-digit account the logs belong to.
    pub account: Option<String>,
    /// `o-…` for organization trails.
    pub organization_id: Option<String>,
    pub region: Option<String>,
    /// The service folder or file-name part as AWS writes it: `CloudTrail`,
    /// `CloudTrail-Digest`, `CloudTrail-Insight`, `elasticloadbalancing`, `vpcflowlogs`,
    /// `redshift`, `Config`, `WAFLogs`, `network-firewall`, `cloudfront`, `s3`.
    pub service: Option<String>,
    /// Delivery date `YYYY-MM-DD` from the path (unpadded month/day are padded).
    pub date: Option<String>,
    /// The resource the file is about: load balancer, Redshift cluster, CloudFront
    /// distribution, source bucket of S3 access logs, flow log id, firewall name.
    pub resource: Option<String>,
    /// Sub-type named in the key: Redshift `connectionlog`/`userlog`/`useractivitylog`,
    /// Config `ConfigHistory`/`ConfigSnapshot`, Network Firewall `alert`/`flow`/`tls`.
    pub log_type: Option<String>,
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn strip_compression(name: &str) -> &str {
    for ext in [".gz", ".zst", ".zip", ".bz2"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s;
        }
    }
    name
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_region(s: &str) -> bool {
    // us-east-1, ap-southeast-2, us-gov-west-1, cn-north-1, eu-central-2 ...
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn all_digits(s: &str, n: std::ops::RangeInclusive<usize>) -> bool {
    n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `<dist>.YYYY-MM-DD-HH.<unique>` (after removing `.gz`): returns the distribution id.
fn cloudfront_distribution(name: &str) -> Option<&str> {
    let mut parts = strip_compression(name).split('.');
    let dist = parts.next()?;
    let stamp = parts.next()?;
    let unique = parts.next()?;
    if parts.next().is_some() || unique.is_empty() {
        return None;
    }
    let ok_dist = (6..=20).contains(&dist.len())
        && dist
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let s = stamp.as_bytes();
    let ok_stamp = s.len() == 13
        && s[4] == b'-'
        && s[7] == b'-'
        && s[10] == b'-'
        && [&stamp[0..4], &stamp[5..7], &stamp[8..10], &stamp[11..13]]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    (ok_dist && ok_stamp).then_some(dist)
}

/// S3 access-log object names end with `YYYY-mm-DD-HH-MM-SS-<16 uppercase alphanumerics>`
/// (usually hex; any prefix glued on).
fn is_s3_access_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.len() < 36 {
        return false;
    }
    let tail = &b[b.len() - 36..];
    let (stamp, unique) = tail.split_at(19);
    unique[0] == b'-'
        && unique[1..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && stamp.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 10 | 13 | 16 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// Files AWS writes next to logs that hold no records: Config's writability check, ELB's
/// test file, CUR manifests, S3 "folder" markers.
pub fn is_skippable(key: &str) -> bool {
    let name = file_name(key);
    key.ends_with('/')
        || name.is_empty()
        || name == "ConfigWritabilityCheckFile"
        || name == "ELBAccessLogTestFile"
        || name.ends_with("-Manifest.json")
        || name.ends_with("_$folder$")
}

/// Reads the account, organization, region, service, date and resource out of `key`.
pub fn key_info(key: &str) -> KeyInfo {
    let mut info = KeyInfo::default();
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let name = file_name(key);

    // Hive-style partitions (VPC flow logs with Hive-compatible prefixes).
    for seg in &segs {
        if let Some((k, v)) = seg.split_once('=') {
            match k {
                "aws-account-id" => info.account = Some(v.to_owned()),
                "aws-service" => info.service = Some(v.to_owned()),
                "aws-region" => info.region = Some(v.to_owned()),
                _ => {}
            }
        }
    }
    let hive = |k: &str| segs.iter().find_map(|s| s.strip_prefix(k));
    if let (Some(y), Some(m), Some(d)) = (hive("year="), hive("month="), hive("day=")) {
        info.date = make_date(y, m, d);
    }

    if let Some(i) = segs.iter().position(|s| *s == "AWSLogs") {
        let mut j = i + 1;
        if segs.get(j).is_some_and(|s| s.starts_with("o-")) {
            info.organization_id = segs.get(j).map(|s| (*s).to_owned());
            j += 1;
        }
        if segs.get(j).is_some_and(|s| is_account(s)) {
            info.account = segs.get(j).map(|s| (*s).to_owned());
            j += 1;
        }
        if let Some(service) = segs.get(j).filter(|s| **s != name) {
            info.service = Some((*service).to_owned());
            j += 1;
            // Network Firewall puts the log type before the region.
            if *service == "network-firewall" {
                if let Some(t) = segs.get(j).filter(|s| !is_region(s)) {
                    info.log_type = Some((*t).to_owned());
                    j += 1;
                }
            }
            if let Some(region) = segs.get(j).filter(|s| is_region(s)) {
                info.region = Some((*region).to_owned());
                j += 1;
            }
            if *service == "WAFLogs" || *service == "network-firewall" {
                // `WAFLogs/<region>/<web-acl>/…`, `network-firewall/<type>/<region>/<fw>/…`
                if let Some(r) = segs.get(j).filter(|s| !all_digits(s, 4..=4) && **s != name) {
                    info.resource = Some((*r).to_owned());
                    j += 1;
                }
            }
            if let (Some(y), Some(m), Some(d)) = (segs.get(j), segs.get(j + 1), segs.get(j + 2)) {
                if let Some(date) = make_date(y, m, d) {
                    info.date = Some(date);
                }
            }
            if segs.contains(&"ConfigHistory") {
                info.log_type = Some("ConfigHistory".into());
            } else if segs.contains(&"ConfigSnapshot") {
                info.log_type = Some("ConfigSnapshot".into());
            }
        }
    }

    let stem = strip_compression(name);
    let parts: Vec<&str> = stem.split('_').collect();
    // <acct>_redshift_<region>_<cluster>_<logtype>_<timestamp>
    if let Some(p) = parts.iter().position(|s| *s == "redshift") {
        if parts.len() >= p + 5 {
            info.service.get_or_insert_with(|| "redshift".into());
            if is_account(parts[0]) {
                info.account.get_or_insert_with(|| parts[0].to_owned());
            }
            info.region.get_or_insert_with(|| parts[p + 1].to_owned());
            let logtype_at = parts.len() - 2;
            info.resource = Some(parts[p + 2..logtype_at].join("_"));
            info.log_type = Some(parts[logtype_at].to_owned());
        }
    }
    // <acct>_elasticloadbalancing_<region>_<lb>_<end>_<ip>_<random>.log
    if let Some(p) = parts.iter().position(|s| *s == "elasticloadbalancing") {
        if parts.len() >= p + 6 {
            info.region.get_or_insert_with(|| parts[p + 1].to_owned());
            info.resource = Some(parts[p + 2..parts.len() - 3].join("_"));
        }
    }
    // <acct>_vpcflowlogs_<region>_<fl-id>_<time>_<hash>.log
    if let Some(p) = parts.iter().position(|s| *s == "vpcflowlogs") {
        if parts.len() >= p + 5 {
            info.region.get_or_insert_with(|| parts[p + 1].to_owned());
            info.resource = Some(parts[p + 2].to_owned());
        }
    }
    if let Some(dist) = cloudfront_distribution(name) {
        info.service.get_or_insert_with(|| "cloudfront".into());
        info.resource = Some(dist.to_owned());
        let stamp = &stem[dist.len() + 1..dist.len() + 11];
        info.date = Some(stamp.to_owned());
    } else if info.service.is_none() && is_s3_access_name(stem) {
        info.service = Some("s3".into());
        let stamp = &stem[stem.len() - 36..stem.len() - 26];
        info.date = Some(stamp.to_owned());
        // Partitioned: [prefix]<acct>/<region>/<bucket>/<YYYY>/<MM>/<DD>/<name>
        if segs.len() >= 7 {
            let n = segs.len();
            if is_account(segs[n - 7]) && is_region(segs[n - 6]) {
                info.account = Some(segs[n - 7].to_owned());
                info.region = Some(segs[n - 6].to_owned());
                info.resource = Some(segs[n - 5].to_owned());
            }
        }
    }
    info
}

fn make_date(y: &str, m: &str, d: &str) -> Option<String> {
    if !all_digits(y, 4..=4) || !all_digits(m, 1..=2) || !all_digits(d, 1..=2) {
        return None;
    }
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| format!("{y}-{m:02}-{d:02}"))
}

/// Names the format of a file from its key, then from its first (decompressed) bytes.
/// `None` when neither is conclusive.
pub fn detect(key: &str, head: &[u8]) -> Option<Format> {
    detect_key(key).or_else(|| detect_content(head))
}

/// Format from the object key or file name alone.
pub fn detect_key(key: &str) -> Option<Format> {
    if is_skippable(key) {
        return None;
    }
    let name = file_name(key);
    let has = |seg: &str| key.split('/').any(|s| s == seg);
    if has("CloudTrail-Digest") || name.contains("_CloudTrail-Digest_") {
        return Some(Format::CloudtrailDigest);
    }
    if has("CloudTrail")
        || has("CloudTrail-Insight")
        || name.contains("_CloudTrail_")
        || name.contains("_CloudTrail-Insight_")
    {
        return Some(Format::Cloudtrail);
    }
    if has("elasticloadbalancing") || name.contains("_elasticloadbalancing_") {
        return Some(if name.contains("_app.") {
            Format::Alb
        } else if name.contains("_net.") {
            Format::Nlb
        } else {
            Format::ElbClassic
        });
    }
    if has("vpcflowlogs")
        || name.contains("_vpcflowlogs_")
        || key.contains("aws-service=vpcflowlogs")
    {
        return Some(Format::VpcFlow);
    }
    if name.contains("_redshift_") || has("redshift") {
        if name.contains("_connectionlog_") {
            return Some(Format::RedshiftConnection);
        }
        if name.contains("_useractivitylog_") {
            return Some(Format::RedshiftActivity);
        }
        if name.contains("_userlog_") {
            return Some(Format::RedshiftUser);
        }
    }
    if (has("Config") && (has("ConfigHistory") || has("ConfigSnapshot")))
        || name.contains("_Config_")
    {
        return Some(Format::Config);
    }
    if has("WAFLogs") || key.starts_with("aws-waf-logs-") || key.contains("/aws-waf-logs-") {
        return Some(Format::Waf);
    }
    if has("network-firewall") || name.contains("_network-firewall_") {
        return Some(Format::NetworkFirewall);
    }
    if cloudfront_distribution(name).is_some() {
        return Some(Format::Cloudfront);
    }
    if is_s3_access_name(strip_compression(name)) {
        return Some(Format::S3Access);
    }
    None
}

fn first_line(head: &[u8]) -> &[u8] {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    let end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = &head[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Format from the first bytes of the (decompressed) content alone.
pub fn detect_content(head: &[u8]) -> Option<Format> {
    let line = first_line(head);
    if line.is_empty() || head.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    if text.starts_with('{') {
        return detect_json(head, text);
    }
    if text.starts_with("#Version:")
        || text.starts_with("#Fields:")
        || text.starts_with("#Software:")
    {
        if contains(head, b"x-edge-location") {
            return Some(Format::Cloudfront);
        }
        if contains(head, b"Microsoft Internet Information Services")
            || contains(head, b"s-sitename")
            || contains(head, b"s-ip")
        {
            return Some(Format::Iis);
        }
        return None;
    }
    if text.starts_with("Enable AccessLog for ELB:") {
        return Some(Format::Alb);
    }
    if text.starts_with("<Event") || text.starts_with("<?xml") && contains(head, b"<Event") {
        return Some(Format::WindowsEvent);
    }
    if text.starts_with("identity/LineItemId") || (text.contains("lineItem/") && text.contains(','))
    {
        return Some(Format::Cur);
    }
    if let Some(f) = detect_access_line(text) {
        return Some(f);
    }
    if text.split_ascii_whitespace().count() > 1 && vpc_flow_header(text) {
        return Some(Format::VpcFlow);
    }
    detect_other_text(text)
}

fn vpc_flow_header(text: &str) -> bool {
    text.split_ascii_whitespace()
        .all(|t| vpc_flow::KNOWN_FIELDS.contains(&t))
}

fn detect_json(head: &[u8], first: &str) -> Option<Format> {
    let window = &head[..head.len().min(4096)];
    if contains(window, b"\"Records\"") {
        return Some(Format::Cloudtrail);
    }
    if contains(window, b"\"digestStartTime\"")
        || contains(window, b"\"digestPublicKeyFingerprint\"")
    {
        return Some(Format::CloudtrailDigest);
    }
    if contains(window, b"\"messageType\"") && contains(window, b"\"logEvents\"") {
        return Some(Format::CloudwatchSubscription);
    }
    if contains(window, b"\"configurationItems\"")
        || contains(window, b"\"configurationItem\"")
        || contains(window, b"\"configurationItemVersion\"")
    {
        return Some(Format::Config);
    }
    if contains(window, b"\"webaclId\"") {
        return Some(Format::Waf);
    }
    if contains(window, b"\"firewall_name\"") {
        return Some(Format::NetworkFirewall);
    }
    // A complete JSON object on the first line: newline-delimited JSON of an unknown kind.
    serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .filter(serde_json::Value::is_object)
        .map(|_| Format::JsonLines)
}

fn detect_access_line(text: &str) -> Option<Format> {
    let mut tok = text.split(' ');
    let t0 = tok.next()?;
    let t1 = tok.next().unwrap_or("");
    let t2 = tok.next().unwrap_or("");
    let t3 = tok.next().unwrap_or("");
    if ["http", "https", "h2", "grpcs", "ws", "wss"].contains(&t0) && parse_iso8601_ms(t1).is_some()
    {
        return Some(Format::Alb);
    }
    if t0 == "tls" && parse_iso8601_ms(t2).is_some() {
        return Some(Format::Nlb);
    }
    if parse_iso8601_ms(t0).is_some() && t2.contains(':') && (t3.contains(':') || t3 == "-") {
        return Some(Format::ElbClassic);
    }
    // S3: 64-hex canonical owner id, bucket, then the bracketed time.
    if t0.len() == 64 && t0.bytes().all(|b| b.is_ascii_hexdigit()) && t2.starts_with('[') {
        let time = text
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(t, _)| t);
        if time.and_then(parse_clf_time_ms).is_some() {
            return Some(Format::S3Access);
        }
    }
    // Apache/Nginx combined: host ident user [time] "request"
    if text.contains(" [") && text.contains("] \"") {
        let time = text
            .split_once(" [")
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(t, _)| t);
        if time.and_then(parse_clf_time_ms).is_some() && t0.parse::<std::net::IpAddr>().is_ok() {
            return Some(Format::ApacheCombined);
        }
    }
    None
}

fn detect_other_text(text: &str) -> Option<Format> {
    const REDSHIFT_EVENTS: [&str; 6] = [
        "initiating session |",
        "authenticated |",
        "disconnecting session |",
        "set application_name |",
        "authentication failure |",
        "Terminating session |",
    ];
    if REDSHIFT_EVENTS.iter().any(|p| text.starts_with(p)) {
        return Some(Format::RedshiftConnection);
    }
    if text.starts_with('\'') && text.contains(" UTC [ db=") {
        return Some(Format::RedshiftActivity);
    }
    let pipes: Vec<&str> = text.split('|').collect();
    if pipes.len() == 11 && all_digits(pipes[0].trim(), 1..=10) {
        return Some(Format::RedshiftUser);
    }
    // Syslog: <PRI> then "1 " (RFC 5424) or a month abbreviation (RFC 3164).
    if let Some(rest) = text.strip_prefix('<') {
        if let Some((pri, after)) = rest.split_once('>') {
            if all_digits(pri, 1..=3)
                && (after.starts_with("1 ")
                    || crate::text::month_from_abbrev(after.as_bytes().get(..3).unwrap_or(b""))
                        .is_some())
            {
                return Some(Format::Syslog);
            }
        }
    }
    // RDS MySQL audit: `YYYYMMDD HH:MM:SS,host,…` or Aurora's epoch microseconds.
    let first_csv = text.split(',').next().unwrap_or("");
    let csv_fields = text.split(',').count();
    if csv_fields >= 9 {
        let b = first_csv.as_bytes();
        // Bytes, not str slices: a multi-byte character may straddle byte 8.
        let dated = b.len() == 17 && b[..8].iter().all(u8::is_ascii_digit) && b[8] == b' ';
        let epoch_us = all_digits(first_csv, 16..=16);
        if dated || epoch_us {
            return Some(Format::RdsMysqlAudit);
        }
    }
    if text.contains(" UTC:") && text.contains("AUDIT: ") {
        return Some(Format::RdsPostgresAudit);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_character_at_a_slice_offset_is_not_a_panic() {
        // Found by the `detect` fuzz target: 17-byte first field with U+FFFD across byte 8.
        let head = "\u{1}\0\0~ U\u{FFFD}/\u{F}\0\u{7F}\u{8}\u{FFFD},,,,,,,,\0\0\0,,,,,,,,,,,,,,";
        assert_eq!(detect("", head.as_bytes()), None);
    }

    #[test]
    fn keys() {
        let k = "logs/AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2024/01/02/111122223333_CloudTrail_us-east-1_20240102T0000Z_abcdefABCDEF0123.json.gz";
        assert_eq!(detect_key(k), Some(Format::Cloudtrail));
        let i = key_info(k);
        assert_eq!(i.account.as_deref(), Some("111122223333"));
        assert_eq!(i.organization_id.as_deref(), Some("o-abc123"));
        assert_eq!(i.region.as_deref(), Some("us-east-1"));
        assert_eq!(i.service.as_deref(), Some("CloudTrail"));
        assert_eq!(i.date.as_deref(), Some("2024-01-02"));
        assert_eq!(
            detect_key("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/02/x.json.gz"),
            Some(Format::CloudtrailDigest)
        );
        let alb = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/123456789012_elasticloadbalancing_us-east-2_app.my-lb.50dc6c495c0c9188_20180702T2220Z_192.0.2.1_5a2dyd2k.log.gz";
        assert_eq!(detect_key(alb), Some(Format::Alb));
        assert_eq!(
            key_info(alb).resource.as_deref(),
            Some("app.my-lb.50dc6c495c0c9188")
        );
        assert_eq!(
            detect_key(
                "AWSLogs/1/elasticloadbalancing/r/x_elasticloadbalancing_r_net.a.b_t_i_r.log.gz"
            ),
            Some(Format::Nlb)
        );
        assert_eq!(
            detect_key("AWSLogs/123456789012/elasticloadbalancing/us-east-1/2015/05/13/123456789012_elasticloadbalancing_us-east-1_my-lb_20150513T2340Z_192.0.2.1_abc.log"),
            Some(Format::ElbClassic)
        );
        let rs = "AWSLogs/123456789012/redshift/us-east-1/2018/05/21/123456789012_redshift_us-east-1_my_cluster_connectionlog_2018-05-21T01:38.gz";
        assert_eq!(detect_key(rs), Some(Format::RedshiftConnection));
        let ri = key_info(rs);
        assert_eq!(ri.resource.as_deref(), Some("my_cluster"));
        assert_eq!(ri.log_type.as_deref(), Some("connectionlog"));
        let cfg = "AWSLogs/123456789012/Config/us-east-1/2024/3/7/ConfigHistory/123456789012_Config_us-east-1_ConfigHistory_AWS::EC2::SecurityGroup_20240307T000000Z_20240307T060000Z_1.json.gz";
        assert_eq!(detect_key(cfg), Some(Format::Config));
        assert_eq!(key_info(cfg).date.as_deref(), Some("2024-03-07"));
        assert!(is_skippable(
            "AWSLogs/123456789012/Config/ConfigWritabilityCheckFile"
        ));
        assert_eq!(
            detect_key("AWSLogs/123456789012/Config/ConfigWritabilityCheckFile"),
            None
        );
        let cf = "cf/E2EXAMPLE1ABCD.2024-03-11-14.a1b2c3d4.gz";
        assert_eq!(detect_key(cf), Some(Format::Cloudfront));
        assert_eq!(key_info(cf).resource.as_deref(), Some("E2EXAMPLE1ABCD"));
        let s3 = "logs/123456789012/us-west-1/amzn-s3-demo-bucket1/2019/02/06/2019-02-06-00-00-38-3E57427F3EXAMPLE";
        assert_eq!(detect_key(s3), Some(Format::S3Access));
        let si = key_info(s3);
        assert_eq!(si.resource.as_deref(), Some("amzn-s3-demo-bucket1"));
        assert_eq!(si.account.as_deref(), Some("123456789012"));
        assert_eq!(
            detect_key("access-logs/2019-02-06-00-00-38-0123456789ABCDEF"),
            Some(Format::S3Access)
        );
        let vpc = "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=01/day=02/x.log.gz";
        assert_eq!(detect_key(vpc), Some(Format::VpcFlow));
        assert_eq!(key_info(vpc).region.as_deref(), Some("us-east-1"));
        assert_eq!(detect_key("random/file.txt"), None);
    }

    #[test]
    fn contents() {
        assert_eq!(
            detect_content(b"{\"Records\":[]}"),
            Some(Format::Cloudtrail)
        );
        assert_eq!(detect_content(b"  \n{\"a\":1}\n"), Some(Format::JsonLines));
        assert_eq!(detect_content(b"{\"a\":"), None);
        assert_eq!(detect_content(b"hello world"), None);
        assert_eq!(detect_content(b""), None);
        assert_eq!(detect_content(b"\x1f\x8b\x08"), None);
        assert_eq!(
            detect_content(b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"),
            Some(Format::VpcFlow)
        );
        assert_eq!(
            detect_content(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed"),
            Some(Format::Syslog)
        );
        assert_eq!(
            detect_content(b"192.0.2.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326 \"-\" \"x\""),
            Some(Format::ApacheCombined)
        );
        assert_eq!(
            detect_content(
                b"20240101 10:00:00,ip-10-0-0-1,admin,192.0.2.1,12,34,QUERY,db,'select 1',0"
            ),
            Some(Format::RdsMysqlAudit)
        );
    }
}
