//! Times typical Insights queries over generated CloudTrail-like events.
//!
//! `cargo run --release -p trailvault-query --example insights_bench -- [EVENTS]`
//! (default 1,000,000 events).

use std::time::Instant;
use trailvault_model::StoredEvent;
use trailvault_query::{format_table, ExecOptions, Query};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let names = [
        "ConsoleLogin",
        "DescribeInstances",
        "GetObject",
        "PutObject",
        "AssumeRole",
        "Decrypt",
        "RunInstances",
        "CreateUser",
    ];
    let ips = ["203.0.113.5", "198.51.100.7", "192.0.2.44", "10.0.3.9"];
    let t0 = Instant::now();
    let base = 1_709_251_200_000i64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let events: Vec<StoredEvent> = (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let name = names[(x % names.len() as u64) as usize];
            let ip = ips[((x >> 8) % ips.len() as u64) as usize];
            let failed = name == "ConsoleLogin" && (x >> 16).is_multiple_of(3);
            let error = if failed {
                r#","errorMessage":"Failed authentication""#
            } else if (x >> 20).is_multiple_of(20) {
                r#","errorCode":"AccessDenied""#
            } else {
                ""
            };
            let message = format!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111111111111:user/u{}","accountId":"111111111111"}},"eventTime":"2024-03-01T00:00:00Z","eventSource":"svc.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"aws-cli/2"{error},"readOnly":true,"eventID":"e{i}"}}"#,
                (x >> 24) % 50
            );
            let ts = base + i as i64 * 10;
            StoredEvent {
                seq: i as u64,
                group: "trail".into(),
                stream: "s".into(),
                timestamp_ms: ts,
                ingestion_time_ms: ts + 1000,
                message,
                normalized: None,
            }
        })
        .collect();
    let bytes: usize = events.iter().map(|e| e.message.len()).sum();
    println!(
        "generated {n} events ({:.0} MB) in {:.2?}",
        bytes as f64 / 1e6,
        t0.elapsed()
    );
    let queries = [
        r#"filter eventName="ConsoleLogin" and errorMessage="Failed authentication" | stats count(*) as fails by sourceIPAddress, bin(5m) | sort fails desc | limit 5"#,
        r#"filter errorCode like /UnauthorizedOperation|AccessDenied/ | stats count(*) as n by userIdentity.arn, eventName | sort n desc | limit 5"#,
        "stats count(*) as n by eventName | sort n desc",
        "filter @message like /AccessDenied/ | stats count(*) as n",
        "fields @timestamp, eventName, sourceIPAddress | filter sourceIPAddress = \"10.0.3.9\" | sort @timestamp desc | limit 20",
        "stats count_distinct(userIdentity.arn) as users, pct(strlen(@message), 90) as p90 by sourceIPAddress",
    ];
    for q in queries {
        let query = Query::parse(q).expect("query parses");
        let t = Instant::now();
        let out = query
            .execute(
                events.iter().map(|e| ("111111111111", e)),
                &ExecOptions::default(),
            )
            .expect("query runs");
        let dt = t.elapsed();
        println!(
            "\n{q}\n  {:.2?}  ({:.1} M events/s, {} rows, matched {})",
            dt,
            n as f64 / dt.as_secs_f64() / 1e6,
            out.rows.len(),
            out.statistics.records_matched
        );
        for line in format_table(&out).lines().take(4) {
            println!("  {line}");
        }
    }
}
