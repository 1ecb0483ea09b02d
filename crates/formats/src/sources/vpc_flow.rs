//! VPC (and Transit Gateway) flow logs: space-separated values, `-` when not applicable.
//!
//! S3-delivered files start with a header line naming the fields, in whatever (custom) order
//! the flow log was created with; that header drives the columns of the lines after it and is
//! counted in `skipped`. Without a header the default version-2 order is assumed. A line whose
//! value count differs from the header's field count is rejected. NODATA and SKIPDATA lines are
//! records (their outcome is unknown).

use trailvault_model::{Normalized, ObjectLayout, Outcome, Resource};

use crate::text::{
    fields_json, line_record, line_str, lines, opt, opt_i64, reject_line, split_host_port, Line,
};
use crate::ParseOutput;

/// The default (version 2) format.
pub const DEFAULT_FIELDS: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Every field name of versions 2 through 8 and of Transit Gateway flow logs.
pub const KNOWN_FIELDS: [&str; 60] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
    "resource-type",
    "tgw-id",
    "tgw-attachment-id",
    "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id",
    "tgw-src-vpc-id",
    "tgw-dst-vpc-id",
    "tgw-src-subnet-id",
    "tgw-dst-subnet-id",
    "tgw-src-eni",
    "tgw-dst-eni",
    "tgw-src-az-id",
    "tgw-dst-az-id",
    "tgw-pair-attachment-id",
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
    "src-vpc-account-id",
    "dst-vpc-account-id",
];

/// Most fields a header may name.
const FIELDS_MAX: usize = 128;

/// Resources named by a flow record, with their CloudFormation type.
const RESOURCE_FIELDS: [(&str, &str); 8] = [
    ("interface-id", "AWS::EC2::NetworkInterface"),
    ("vpc-id", "AWS::EC2::VPC"),
    ("subnet-id", "AWS::EC2::Subnet"),
    ("instance-id", "AWS::EC2::Instance"),
    ("tgw-id", "AWS::EC2::TransitGateway"),
    ("tgw-attachment-id", "AWS::EC2::TransitGatewayAttachment"),
    ("ecs-cluster-arn", "AWS::ECS::Cluster"),
    ("ecs-task-arn", "AWS::ECS::Task"),
];

/// True when `line` is a header: only lowercase field-name tokens, at least one known.
fn is_header(line: &str) -> bool {
    let mut known = false;
    for tok in line.split_ascii_whitespace() {
        let ok = tok.starts_with(|c: char| c.is_ascii_lowercase())
            && tok
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return false;
        }
        known |= KNOWN_FIELDS.contains(&tok);
    }
    known
}

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut header = Header::new(DEFAULT_FIELDS.iter().map(|s| (*s).to_owned()).collect());
    let mut values = Vec::with_capacity(64);
    for line in lines(input) {
        if line.bytes.iter().all(u8::is_ascii_whitespace) {
            out.skipped += 1;
            continue;
        }
        let s = match line_str(&line) {
            Ok(s) => s,
            Err(reason) => {
                reject_line(&mut out, &line, reason);
                continue;
            }
        };
        if is_header(s) {
            let names: Vec<String> = s.split_ascii_whitespace().map(str::to_owned).collect();
            if names.len() > FIELDS_MAX {
                reject_line(
                    &mut out,
                    &line,
                    format!(
                        "flow log header names {} fields, more than {FIELDS_MAX}",
                        names.len()
                    ),
                );
                continue;
            }
            header = Header::new(names);
            out.skipped += 1;
            continue;
        }
        values.clear();
        values.extend(s.split_ascii_whitespace());
        record(&mut out, &line, s, &header, &values);
    }
    out
}

/// The fields of the records after a header line: their names, where each field the
/// normalizer reads sits (found once per header, not once per record), and how `parsed` is
/// rendered.
struct Header {
    names: Vec<String>,
    layout: ObjectLayout,
    start: Option<usize>,
    end: Option<usize>,
    action: Option<usize>,
    srcaddr: Option<usize>,
    dstaddr: Option<usize>,
    srcport: Option<usize>,
    dstport: Option<usize>,
    account: Option<usize>,
    region: Option<usize>,
    reject_reason: Option<usize>,
    bytes: Option<usize>,
    /// The [`RESOURCE_FIELDS`] present, in that order: position and resource type.
    resources: Vec<(usize, &'static str)>,
}

impl Header {
    fn new(names: Vec<String>) -> Header {
        let pos = |n: &str| names.iter().position(|x| x == n);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Header {
            layout: ObjectLayout::new(&refs),
            start: pos("start"),
            end: pos("end"),
            action: pos("action"),
            srcaddr: pos("srcaddr"),
            dstaddr: pos("dstaddr"),
            srcport: pos("srcport"),
            dstport: pos("dstport"),
            account: pos("account-id"),
            region: pos("region"),
            reject_reason: pos("reject-reason"),
            bytes: pos("bytes"),
            resources: RESOURCE_FIELDS
                .iter()
                .filter_map(|(field, kind)| pos(field).map(|i| (i, *kind)))
                .collect(),
            names,
        }
    }
}

fn record(out: &mut ParseOutput, line: &Line<'_>, s: &str, h: &Header, v: &[&str]) {
    if v.len() != h.names.len() {
        reject_line(
            out,
            line,
            format!(
                "flow log line has {} values, the header names {} fields",
                v.len(),
                h.names.len()
            ),
        );
        return;
    }
    let get = |at: Option<usize>| at.and_then(|i| opt(v[i]));
    let start = get(h.start).and_then(opt_i64);
    let end = get(h.end).and_then(opt_i64);
    let time_ms = match start.or(end) {
        Some(t) => t.saturating_mul(1000),
        None => {
            reject_line(out, line, "flow log line has neither start nor end time");
            return;
        }
    };
    let action = get(h.action);
    let (src_ip, _) = split_host_port(get(h.srcaddr).unwrap_or("-"));
    let (dst_ip, _) = split_host_port(get(h.dstaddr).unwrap_or("-"));
    let resources = h
        .resources
        .iter()
        .filter_map(|(at, kind)| {
            opt(v[*at]).map(|id| Resource {
                id: Some(id.to_owned()),
                kind: Some((*kind).to_owned()),
                owner_account: None,
            })
        })
        .collect();
    let n = Normalized {
        source: "vpc-flow".into(),
        time_ms: Some(time_ms),
        account: get(h.account).map(str::to_owned),
        region: get(h.region).map(str::to_owned),
        service: Some("ec2.amazonaws.com".into()),
        action: action.map(str::to_owned),
        src_ip,
        src_port: get(h.srcport).and_then(|p| p.parse().ok()),
        dst_ip,
        dst_port: get(h.dstport).and_then(|p| p.parse().ok()),
        resources,
        outcome: Some(match action {
            Some("ACCEPT") => Outcome::Success,
            Some("REJECT") => Outcome::Failure,
            _ => Outcome::Unknown,
        }),
        error_code: get(h.reject_reason).map(str::to_owned),
        bytes: get(h.bytes).and_then(opt_i64),
        duration_ms: start
            .zip(end)
            .map(|(s, e)| e.saturating_sub(s).max(0) as f64 * 1000.0),
        parsed: Some(fields_json(&h.layout, v)),
        ..Normalized::default()
    };
    out.records.push(line_record(line, s, n));
}

/// Renders a header and one record line from (name, value) pairs (for tests and tools).
pub fn render(fields: &[(&str, &str)]) -> String {
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let values: Vec<&str> = fields.iter().map(|(_, v)| *v).collect();
    format!("{}\n{}\n", names.join(" "), values.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headerless_default_and_custom_order() {
        let out = parse(b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 REJECT OK\n");
        assert_eq!(out.records.len(), 1, "{:?}", out.rejections);
        let n = &out.records[0].normalized;
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(n.duration_ms, Some(60_000.0));
        assert_eq!(n.src_port, Some(443));
        let out = parse(b"srcaddr start action\n10.0.0.9 1418530010 ACCEPT\n");
        assert_eq!(out.skipped, 1);
        assert_eq!(
            out.records[0].normalized.src_ip.as_deref(),
            Some("10.0.0.9")
        );
        assert!(!is_header("2 123 eni-1"));
        assert!(!is_header("eni-abc"));
    }
}
