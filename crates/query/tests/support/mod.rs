//! A small, deterministic multi-source dataset for the conformance suite: CloudTrail JSON
//! records, VPC flow log lines, ALB access log lines and an application log mixing plain text
//! with JSON. Same seed, same bytes, every run.

#![allow(dead_code)]

use serde_json::json;
use trailvault_model::StoredEvent;

/// 2024-03-01T00:00:00Z
pub const BASE_MS: i64 = 1_709_251_200_000;

pub const TRAIL_ACCOUNT: &str = "111111111111";
pub const VPC_ACCOUNT: &str = "222222222222";
pub const APP_ACCOUNT: &str = "333333333333";

/// xorshift64*: tiny, deterministic, good enough to spread test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// The structured truth behind each CloudTrail record, for cross-checks.
#[derive(Debug, Clone)]
pub struct TrailFacts {
    pub time_ms: i64,
    pub user_type: &'static str,
    pub arn: String,
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub source_ip: &'static str,
    pub error_code: Option<&'static str>,
    pub error_message: Option<&'static str>,
}

pub struct Dataset {
    /// (account, event), in time order.
    pub events: Vec<(String, StoredEvent)>,
    pub trail: Vec<TrailFacts>,
}

impl Dataset {
    pub fn refs(&self) -> impl Iterator<Item = (&str, &StoredEvent)> {
        self.events.iter().map(|(a, e)| (a.as_str(), e))
    }
    pub fn group(&self, group: &str) -> Vec<(&str, &StoredEvent)> {
        self.refs().filter(|(_, e)| e.group == group).collect()
    }
}

const PRINCIPALS: [(&str, &str); 5] = [
    ("IAMUser", "arn:aws:iam::111111111111:user/alice"),
    ("IAMUser", "arn:aws:iam::111111111111:user/bob"),
    (
        "AssumedRole",
        "arn:aws:sts::111111111111:assumed-role/deploy/ci",
    ),
    ("Root", "arn:aws:iam::111111111111:root"),
    ("IAMUser", "arn:aws:iam::111111111111:user/mallory"),
];

const CALLS: [(&str, &str, bool); 10] = [
    ("signin.amazonaws.com", "ConsoleLogin", false),
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("ec2.amazonaws.com", "RunInstances", false),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false),
    ("iam.amazonaws.com", "CreateUser", false),
    ("s3.amazonaws.com", "GetObject", true),
    ("s3.amazonaws.com", "PutObject", false),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("cloudtrail.amazonaws.com", "StopLogging", false),
    ("kms.amazonaws.com", "Decrypt", true),
];

const IPS: [&str; 5] = [
    "203.0.113.5",
    "198.51.100.7",
    "192.0.2.44",
    "10.0.3.9",
    "2001:db8::17",
];

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn event(seq: u64, group: &str, stream: &str, ts: i64, message: String) -> StoredEvent {
    StoredEvent {
        seq,
        group: group.to_string(),
        stream: stream.to_string(),
        timestamp_ms: ts,
        ingestion_time_ms: ts + 1_500 + (seq % 7) as i64 * 100,
        message,
        normalized: None,
    }
}

fn format_iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn trail_record(rng: &mut Rng, i: usize, ts: i64) -> (String, TrailFacts) {
    let (mut user_type, mut arn) = *rng.pick(&PRINCIPALS);
    let (mut source, mut name, mut read_only) = *rng.pick(&CALLS);
    let mut ip = *rng.pick(&IPS);
    let region = *rng.pick(&REGIONS);
    let roll = rng.below(100);
    // A password-guessing burst: mallory fails to log in from one address, a dozen times.
    let burst = (100..112).contains(&i);
    if burst {
        (user_type, arn) = PRINCIPALS[4];
        (source, name, read_only) = CALLS[0];
        ip = IPS[1];
    }
    let (error_code, error_message) = if name == "ConsoleLogin" {
        if burst || roll < 45 {
            (None, Some("Failed authentication"))
        } else {
            (None, None)
        }
    } else if roll < 12 {
        (
            Some("AccessDenied"),
            Some("User is not authorized to perform this operation"),
        )
    } else if roll < 18 && source == "ec2.amazonaws.com" {
        (
            Some("Client.UnauthorizedOperation"),
            Some("You are not authorized to perform this operation."),
        )
    } else {
        (None, None)
    };
    let user_name = arn.rsplit('/').next().unwrap_or("root");
    let mut rec = json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": user_type,
            "principalId": format!("AID{:06}", user_name.len() * 1000 + 7),
            "arn": arn,
            "accountId": TRAIL_ACCOUNT,
            "accessKeyId": format!("AKIA{}", user_name.to_uppercase()),
        },
        "eventTime": format_iso(ts),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": if i.is_multiple_of(3) { "aws-cli/2.15.0" } else { "console.amazonaws.com" },
        "eventID": format!("evt-{i:04}"),
        "readOnly": read_only,
        "eventType": if name == "ConsoleLogin" { "AwsConsoleSignIn" } else { "AwsApiCall" },
        "recipientAccountId": TRAIL_ACCOUNT,
    });
    if user_type == "IAMUser" {
        rec["userIdentity"]["userName"] = json!(user_name);
    }
    if user_type == "AssumedRole" {
        rec["userIdentity"]["sessionContext"] = json!({
            "attributes": {"mfaAuthenticated": "false", "creationDate": format_iso(ts - 600_000)},
            "sessionIssuer": {"type": "Role", "userName": "deploy"}
        });
    }
    if let Some(c) = error_code {
        rec["errorCode"] = json!(c);
    }
    if let Some(m) = error_message {
        rec["errorMessage"] = json!(m);
    }
    if name == "ConsoleLogin" {
        let outcome = if error_message.is_some() {
            "Failure"
        } else {
            "Success"
        };
        rec["responseElements"] = json!({"ConsoleLogin": outcome});
        rec["additionalEventData"] =
            json!({"MFAUsed": if i.is_multiple_of(4) { "Yes" } else { "No" }});
    }
    if name == "AuthorizeSecurityGroupIngress" {
        rec["requestParameters"] = json!({
            "groupId": format!("sg-{:04x}", rng.below(4)),
            "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}
        });
    }
    if name == "GetObject" || name == "PutObject" {
        let bucket = *rng.pick(&["audit-logs", "backups", "web-assets"]);
        rec["resources"] = json!([
            {"ARN": format!("arn:aws:s3:::{bucket}/key-{}", i % 10), "type": "AWS::S3::Object"},
            {"ARN": format!("arn:aws:s3:::{bucket}"), "type": "AWS::S3::Bucket", "accountId": TRAIL_ACCOUNT}
        ]);
        rec["additionalEventData"] = json!({"bytesTransferredOut": rng.below(50_000) as i64});
    }
    let facts = TrailFacts {
        time_ms: ts,
        user_type,
        arn: arn.to_string(),
        event_source: source,
        event_name: name,
        source_ip: ip,
        error_code,
        error_message,
    };
    (rec.to_string(), facts)
}

fn vpc_line(rng: &mut Rng, i: usize, ts: i64) -> String {
    let mut src = *rng.pick(&[
        "203.0.113.12",
        "198.51.100.99",
        "10.0.1.5",
        "10.0.2.8",
        "192.0.2.200",
    ]);
    let dst = *rng.pick(&["10.0.1.5", "10.0.2.8", "10.0.3.9"]);
    let mut dport = *rng.pick(&[22u16, 80, 443, 3389, 5432, 8080]);
    // A port scan: one outside address walks through ports for a few minutes.
    if (60..68).contains(&i) {
        src = "198.51.100.66";
        dport = [21u16, 22, 23, 25, 110, 143, 445, 1433][i - 60];
    }
    let sport = 32768 + rng.below(20000);
    let proto = if dport == 53 { 17 } else { 6 };
    let packets = 1 + rng.below(40);
    let bytes = packets * (40 + rng.below(1400));
    let action = if (60..68).contains(&i) {
        "REJECT"
    } else if src.starts_with("10.") || rng.below(3) == 0 {
        "ACCEPT"
    } else {
        "REJECT"
    };
    let start = ts / 1000;
    format!(
        "2 {VPC_ACCOUNT} eni-0a1b2c3d {src} {dst} {sport} {dport} {proto} {packets} {bytes} {start} {} {action} OK",
        start + 60
    )
}

fn alb_line(rng: &mut Rng, i: usize, ts: i64) -> String {
    let client = *rng.pick(&["203.0.113.5", "198.51.100.7", "192.0.2.44"]);
    let (method, path) = *rng.pick(&[
        ("GET", "/"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/admin"),
        ("GET", "/static/app.js"),
    ]);
    let status = match (method, path) {
        ("POST", "/login") if i.is_multiple_of(3) => 401,
        ("GET", "/admin") => 403,
        _ if i.is_multiple_of(17) => 502,
        _ => 200,
    };
    let target_status = if status == 502 {
        "-".to_string()
    } else {
        status.to_string()
    };
    let req_ms = rng.below(900);
    let iso = chrono::DateTime::from_timestamp_millis(ts)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!(
        "https {iso} app/web/50dc6c495c0c9188 {client}:{} 10.0.1.5:80 0.001 {}.{:03} 0.000 {status} {target_status} {} {} \"{method} https://example.com:443{path} HTTP/1.1\" \"Mozilla/5.0 (X11; Linux)\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:{TRAIL_ACCOUNT}:targetgroup/web/73e2d6bc24d8a067 \"Root=1-58337262-{i:024x}\" \"example.com\" \"-\" 0 {iso} \"forward\" \"-\" \"-\" \"10.0.1.5:80\" \"{target_status}\" \"-\" \"-\"",
        40000 + rng.below(20000),
        req_ms / 1000,
        req_ms % 1000,
        100 + rng.below(900),
        300 + rng.below(5000),
    )
}

fn app_line(rng: &mut Rng, i: usize) -> String {
    let user = *rng.pick(&["alice", "bob", "carol"]);
    if i % 4 == 3 {
        let tags: Vec<&str> = match i % 3 {
            0 => vec!["edge"],
            1 => vec!["edge", "beta"],
            _ => vec![],
        };
        return json!({
            "level": if i % 8 == 3 { "error" } else { "warn" },
            "user": user,
            "user-agent": *rng.pick(&["curl/8.5.0", "python-requests/2.31"]),
            "latency": (rng.below(5000) as f64) / 10.0,
            "tags": tags,
            "note": match i % 12 { 3 => "  padded  ", 7 => "   ", _ => "" },
            "client": {"ip": *rng.pick(&["10.0.9.1", "2001:db8::beef", "not-an-ip"])},
        })
        .to_string();
    }
    let level = *rng.pick(&["INFO", "INFO", "WARN", "ERROR"]);
    format!(
        "[{level}] req-{i:04} user={user} latency_ms={} path=/api/v1/items/{}",
        rng.below(2000),
        rng.below(50)
    )
}

/// Builds every group; events of all groups interleave by time, each with a distinct seq.
pub fn dataset() -> Dataset {
    let mut rng = Rng::new(0x7a11_7a11);
    let mut raw: Vec<(i64, String, &str, String, String)> = Vec::new();
    let mut trail = Vec::new();
    for i in 0..240 {
        let ts = BASE_MS + i as i64 * 29_000 + (i as i64 % 5) * 1_013;
        let (msg, facts) = trail_record(&mut rng, i, ts);
        let region_stream = format!(
            "{TRAIL_ACCOUNT}_CloudTrail_{}",
            if i.is_multiple_of(2) {
                "us-east-1"
            } else {
                "eu-west-1"
            }
        );
        raw.push((ts, TRAIL_ACCOUNT.into(), "trail", region_stream, msg));
        trail.push(facts);
    }
    for i in 0..120 {
        let ts = BASE_MS + i as i64 * 53_000 + 250;
        raw.push((
            ts,
            VPC_ACCOUNT.into(),
            "vpc-flow",
            "eni-0a1b2c3d-all".into(),
            vpc_line(&mut rng, i, ts),
        ));
    }
    for i in 0..60 {
        let ts = BASE_MS + i as i64 * 97_000 + 500;
        raw.push((
            ts,
            TRAIL_ACCOUNT.into(),
            "alb",
            "web".into(),
            alb_line(&mut rng, i, ts),
        ));
    }
    for i in 0..48usize {
        let ts = BASE_MS + i as i64 * 131_000 + 750;
        let stream = if i.is_multiple_of(2) {
            "app-1"
        } else {
            "app-2"
        };
        raw.push((
            ts,
            APP_ACCOUNT.into(),
            "app",
            stream.into(),
            app_line(&mut rng, i),
        ));
    }
    raw.sort_by_key(|r| r.0);
    let events = raw
        .into_iter()
        .enumerate()
        .map(|(seq, (ts, account, group, stream, msg))| {
            (account, event(seq as u64 + 1, group, &stream, ts, msg))
        })
        .collect();
    Dataset { events, trail }
}
