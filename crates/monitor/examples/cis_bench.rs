//! Events per second through the whole CIS pack on one core, over pre-read CloudTrail records.
//!
//! `cargo run --release -p trailvault-monitor --example cis_bench [events]`

use std::time::Instant;

use trailvault_monitor::{rule_pack, FilterPattern, PatternSet};

const NAMES: [&str; 12] = [
    "DescribeInstances",
    "GetObject",
    "PutObject",
    "AssumeRole",
    "ListBuckets",
    "Decrypt",
    "GetCallerIdentity",
    "DescribeSecurityGroups",
    "ConsoleLogin",
    "CreateTrail",
    "PutUserPolicy",
    "DescribeVpcs",
];

fn record(i: usize) -> String {
    let name = NAMES[i % NAMES.len()];
    // Roughly 1 record in 12 is a change a CIS control watches (CreateTrail, PutUserPolicy).
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-{i}","arn":"arn:aws:sts::123456789012:assumed-role/app/session-{i}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE{i:08}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/app","accountId":"123456789012","userName":"app"}},"attributes":{{"creationDate":"2024-05-01T11:00:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"2024-05-01T12:00:{s:02}Z","eventSource":"ec2.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{o}","userAgent":"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22 md/GOOS#linux api/ec2#1.160","requestParameters":{{"maxResults":100,"filterSet":{{}}}},"responseElements":null,"requestID":"{i:08}-aaaa-bbbb-cccc-dddddddddddd","eventID":"{i:08}-1111-2222-3333-444444444444","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"ec2.us-east-1.amazonaws.com"}}}}"#,
        s = i % 60,
        o = i % 250
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let pack = rule_pack("cis-aws").expect("cis pack");
    let patterns: Vec<FilterPattern> = pack
        .rules
        .iter()
        .map(|r| FilterPattern::parse(&r.pattern).expect("pattern"))
        .collect();
    let set = PatternSet::new(patterns);
    let quiet = std::env::args().nth(2).as_deref() == Some("quiet");
    // `quiet`: only records no CIS control matches (the scan alone).
    let events: Vec<String> = (0..n)
        .map(|i| {
            if quiet {
                record(i / 3 * 12 + i % 3)
            } else {
                record(i)
            }
        })
        .collect();
    let bytes: usize = events.iter().map(String::len).sum();
    let mut hits = Vec::new();
    let mut matched = 0usize;
    // Warm up, then measure the best of three passes.
    for e in events.iter().take(10_000) {
        set.matching(e, &mut hits);
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        matched = 0;
        let t = Instant::now();
        for e in &events {
            hits.clear();
            set.matching(e, &mut hits);
            matched += hits.len();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{n} events ({:.0} bytes avg), {} patterns, {matched} matches: {:.0} events/s, {:.2} GB/s",
        bytes as f64 / n as f64,
        set.len(),
        n as f64 / best,
        bytes as f64 / best / 1e9
    );
    // Side by side, same records, same core: what a naive evaluator pays before testing a
    // single pattern (a full JSON parse of every record), and a memory scan floor.
    let mut parse_best = f64::MAX;
    let mut scan_best = f64::MAX;
    let finder = memchr::memmem::Finder::new(b"\"eventName\"");
    let mut sink = 0usize;
    for _ in 0..3 {
        let t = Instant::now();
        for e in &events {
            let v: serde_json::Value = serde_json::from_str(e).expect("json");
            sink += v.as_object().map_or(0, |o| o.len());
        }
        parse_best = parse_best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for e in &events {
            sink += finder.find(e.as_bytes()).unwrap_or(0);
        }
        scan_best = scan_best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "serde_json::Value parse of every record: {:.0} events/s (the pack is {:.2}x faster); memmem scan for one key: {:.0} events/s ({sink} checksum)",
        n as f64 / parse_best,
        parse_best / best,
        n as f64 / scan_best
    );
}
