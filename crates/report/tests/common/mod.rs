//! A small seeded dataset in a temporary vault: two weeks of baseline habits for alice and
//! bob, then a report day with a new API, a new sign-in address at night, failed sign-ins,
//! root usage, IAM / security group / KMS changes, VPC flows and ALB requests from the same
//! address, and one CloudTrail event pushed without a normalized form left unsealed.

#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};
use trailvault_formats::{parse, Format};
use trailvault_store::{InputEvent, LogGroupMeta, PutOptions, Vault, VaultConfig};

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;
/// 2025-03-15T00:00:00Z, the report day.
pub const REPORT_DAY_MS: i64 = 1_741_996_800_000;
pub const ALICE_KEY: &str = "AKIAALICE00000000001";
pub const ATTACKER_IP: &str = "198.51.100.7";
pub const ACCOUNT_A: &str = "111122223333";
pub const ACCOUNT_B: &str = "444455556666";

/// A tiny deterministic generator (64-bit LCG), so the dataset is the same on every run.
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Seeded(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub struct Ct<'a> {
    pub ms: i64,
    pub user: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub action: &'a str,
    pub ip: &'a str,
    pub id: String,
}

fn user_identity(user: &str, account: &str) -> Value {
    if user == "root" {
        json!({"type": "Root", "principalId": account,
               "arn": format!("arn:aws:iam::{account}:root"), "accountId": account})
    } else {
        let key = if user == "alice" {
            ALICE_KEY.to_string()
        } else {
            format!("AKIA{:0>16}", user.to_uppercase())
        };
        json!({"type": "IAMUser", "principalId": format!("AIDA{}", user.to_uppercase()),
               "arn": format!("arn:aws:iam::{account}:user/{user}"), "accountId": account,
               "accessKeyId": key, "userName": user})
    }
}

/// One CloudTrail event as JSON, with `extra` members merged in.
pub fn cloudtrail_event(c: &Ct<'_>, extra: Value) -> Value {
    let mut v = json!({
        "eventVersion": "1.09",
        "userIdentity": user_identity(c.user, c.account),
        "eventTime": iso(c.ms),
        "eventSource": c.service,
        "eventName": c.action,
        "awsRegion": c.region,
        "sourceIPAddress": c.ip,
        "userAgent": "aws-cli/2.15.0",
        "requestID": format!("req-{}", c.id),
        "eventID": c.id,
        "readOnly": c.action.starts_with("Get") || c.action.starts_with("Describe")
            || c.action.starts_with("List"),
        "eventType": "AwsApiCall",
        "recipientAccountId": c.account,
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

fn login(outcome: &str) -> Value {
    let mut v = json!({"responseElements": {"ConsoleLogin": outcome},
                       "eventType": "AwsConsoleSignIn", "readOnly": false});
    if outcome == "Failure" {
        v["errorMessage"] = json!("Failed authentication");
    }
    v
}

fn parsed_inputs(format: Format, text: &str) -> Vec<InputEvent> {
    let out = parse(format, text.as_bytes());
    assert!(out.rejections.is_empty(), "{:?}", out.rejections);
    out.records
        .into_iter()
        .map(|r| {
            let mut n = r.normalized;
            n.parsed = None;
            InputEvent {
                timestamp_ms: n.time_ms.expect("a record with a time"),
                message: r.raw,
                normalized: Some(n),
            }
        })
        .collect()
}

fn cloudtrail_inputs(events: &[Value]) -> Vec<InputEvent> {
    let file = json!({ "Records": events }).to_string();
    parsed_inputs(Format::Cloudtrail, &file)
}

async fn group(v: &Vault, name: &str, stream: &str) {
    v.create_log_group(LogGroupMeta {
        name: name.into(),
        created_ms: REPORT_DAY_MS - 30 * DAY_MS,
        retention_days: None,
        kms_key_id: None,
        log_group_class: "STANDARD".into(),
        deletion_protection: false,
        tags: Default::default(),
    })
    .unwrap();
    v.create_log_stream(name, stream).unwrap();
}

pub const CT_GROUP: &str = "org/cloudtrail";
pub const CT_STREAM: &str = "111122223333_CloudTrail";
pub const VPC_GROUP: &str = "org/vpc-flow";
pub const ALB_GROUP: &str = "org/alb";

/// The CloudTrail events of the whole dataset, baseline then report day.
pub fn cloudtrail_dataset() -> Vec<Value> {
    let mut rng = Seeded::new(42);
    let mut out = Vec::new();
    let mut n = 0u32;
    let mut id = || {
        n += 1;
        format!("ev-{n:05}")
    };
    for day in 1..=14 {
        let d = REPORT_DAY_MS - day * DAY_MS;
        let m = |h: i64, rng: &mut Seeded| d + h * HOUR_MS + rng.below(50) as i64 * 60_000;
        let t = m(9, &mut rng);
        out.push(cloudtrail_event(
            &Ct {
                ms: t,
                user: "alice",
                account: ACCOUNT_A,
                region: "us-east-1",
                service: "signin.amazonaws.com",
                action: "ConsoleLogin",
                ip: "203.0.113.10",
                id: id(),
            },
            login("Success"),
        ));
        for k in 0..3 {
            out.push(cloudtrail_event(
                &Ct {
                    ms: t + (k + 1) * 60_000,
                    user: "alice",
                    account: ACCOUNT_A,
                    region: "us-east-1",
                    service: "s3.amazonaws.com",
                    action: "GetObject",
                    ip: "203.0.113.10",
                    id: id(),
                },
                json!({}),
            ));
        }
        for k in 0..2 {
            out.push(cloudtrail_event(
                &Ct {
                    ms: t + (k + 5) * 60_000,
                    user: "alice",
                    account: ACCOUNT_A,
                    region: "us-east-1",
                    service: "ec2.amazonaws.com",
                    action: "DescribeInstances",
                    ip: "203.0.113.10",
                    id: id(),
                },
                json!({}),
            ));
        }
        let t = m(14, &mut rng);
        out.push(cloudtrail_event(
            &Ct {
                ms: t,
                user: "bob",
                account: ACCOUNT_B,
                region: "eu-west-1",
                service: "signin.amazonaws.com",
                action: "ConsoleLogin",
                ip: "203.0.113.20",
                id: id(),
            },
            login("Success"),
        ));
        for k in 0..2 {
            out.push(cloudtrail_event(
                &Ct {
                    ms: t + (k + 1) * 60_000,
                    user: "bob",
                    account: ACCOUNT_B,
                    region: "eu-west-1",
                    service: "dynamodb.amazonaws.com",
                    action: "GetItem",
                    ip: "203.0.113.20",
                    id: id(),
                },
                json!({}),
            ));
        }
    }
    // The report day.
    let d = REPORT_DAY_MS;
    let at = |h: i64, min: i64| d + h * HOUR_MS + min * 60_000;
    for k in 0..3 {
        out.push(cloudtrail_event(
            &Ct {
                ms: at(3, 5) + k * 10_000,
                user: "bob",
                account: ACCOUNT_B,
                region: "eu-west-1",
                service: "signin.amazonaws.com",
                action: "ConsoleLogin",
                ip: ATTACKER_IP,
                id: id(),
            },
            login("Failure"),
        ));
    }
    out.push(cloudtrail_event(
        &Ct {
            ms: at(3, 7),
            user: "bob",
            account: ACCOUNT_B,
            region: "eu-west-1",
            service: "signin.amazonaws.com",
            action: "ConsoleLogin",
            ip: ATTACKER_IP,
            id: id(),
        },
        login("Success"),
    ));
    out.push(cloudtrail_event(
        &Ct {
            ms: at(3, 10),
            user: "bob",
            account: ACCOUNT_B,
            region: "ap-southeast-2",
            service: "kms.amazonaws.com",
            action: "ScheduleKeyDeletion",
            ip: ATTACKER_IP,
            id: id(),
        },
        json!({"resources": [{"ARN": "arn:aws:kms:ap-southeast-2:444455556666:key/1234abcd",
                               "type": "AWS::KMS::Key", "accountId": ACCOUNT_B}]}),
    ));
    out.push(cloudtrail_event(
        &Ct {
            ms: at(9, 10),
            user: "alice",
            account: ACCOUNT_A,
            region: "us-east-1",
            service: "signin.amazonaws.com",
            action: "ConsoleLogin",
            ip: "203.0.113.10",
            id: id(),
        },
        login("Success"),
    ));
    out.push(cloudtrail_event(
        &Ct {
            ms: at(9, 15),
            user: "alice",
            account: ACCOUNT_A,
            region: "us-east-1",
            service: "s3.amazonaws.com",
            action: "GetObject",
            ip: "203.0.113.10",
            id: id(),
        },
        json!({}),
    ));
    out.push(cloudtrail_event(
        &Ct {
            ms: at(9, 20),
            user: "alice",
            account: ACCOUNT_A,
            region: "us-east-1",
            service: "iam.amazonaws.com",
            action: "CreateAccessKey",
            ip: "203.0.113.10",
            id: id(),
        },
        json!({"requestParameters": {"userName": "alice"}}),
    ));
    out.push(cloudtrail_event(
        &Ct {
            ms: at(9, 25),
            user: "alice",
            account: ACCOUNT_A,
            region: "us-east-1",
            service: "ec2.amazonaws.com",
            action: "AuthorizeSecurityGroupIngress",
            ip: "203.0.113.10",
            id: id(),
        },
        json!({"errorCode": "Client.UnauthorizedOperation", "errorMessage": "denied"}),
    ));
    out.push(cloudtrail_event(
        &Ct {
            ms: at(11, 0),
            user: "root",
            account: ACCOUNT_A,
            region: "us-east-1",
            service: "signin.amazonaws.com",
            action: "ConsoleLogin",
            ip: "192.0.2.99",
            id: id(),
        },
        login("Success"),
    ));
    out
}

/// The CloudTrail event pushed through the API (no normalized form), left unsealed.
pub fn pushed_event() -> String {
    cloudtrail_event(
        &Ct {
            ms: REPORT_DAY_MS + 10 * HOUR_MS,
            user: "alice",
            account: ACCOUNT_A,
            region: "us-east-1",
            service: "sts.amazonaws.com",
            action: "GetCallerIdentity",
            ip: "203.0.113.10",
            id: "ev-pushed".into(),
        },
        json!({}),
    )
    .to_string()
}

fn vpc_lines() -> String {
    let s = |h: i64, m: i64| (REPORT_DAY_MS + h * HOUR_MS + m * 60_000) / 1000;
    [
        format!("2 {ACCOUNT_A} eni-0a1b2c3d4e5f60718 {ATTACKER_IP} 10.0.0.5 51515 22 6 10 840 {} {} REJECT OK", s(3, 0), s(3, 1)),
        format!("2 {ACCOUNT_A} eni-0a1b2c3d4e5f60718 203.0.113.10 10.0.0.6 40000 443 6 20 9000 {} {} ACCEPT OK", s(9, 0), s(9, 1)),
        format!("2 {ACCOUNT_A} eni-0a1b2c3d4e5f60718 192.0.2.50 10.0.0.6 40001 443 6 5 300 {} {} ACCEPT OK", s(12, 0), s(12, 1)),
    ]
    .join("\n")
}

fn alb_line(ms: i64, client: &str) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    format!(
        "https {t} app/my-loadbalancer/50dc6c495c0c9188 {client}:4444 10.0.0.1:80 0.086 0.048 0.037 401 401 0 57 \"POST https://www.example.com:443/login HTTP/1.1\" \"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" \"-\" 1 {t} \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"401\" \"-\" \"-\" TID_1234abcd5678ef90"
    )
}

/// Write the dataset into a vault at `dir`: everything sealed except the pushed event.
pub async fn seed(dir: &Path) {
    let v = Vault::open(VaultConfig::new(dir)).await.unwrap();
    group(&v, CT_GROUP, CT_STREAM).await;
    group(&v, VPC_GROUP, "eni-0a1b2c3d4e5f60718").await;
    group(&v, ALB_GROUP, "my-loadbalancer").await;
    let opts = PutOptions::import(REPORT_DAY_MS + 2 * DAY_MS);
    let ct = cloudtrail_inputs(&cloudtrail_dataset());
    for day in ct.chunk_by(|a, b| a.timestamp_ms / DAY_MS == b.timestamp_ms / DAY_MS) {
        v.put_log_events(CT_GROUP, CT_STREAM, day.to_vec(), opts)
            .await
            .unwrap();
    }
    v.put_log_events(
        VPC_GROUP,
        "eni-0a1b2c3d4e5f60718",
        parsed_inputs(Format::VpcFlow, &vpc_lines()),
        opts,
    )
    .await
    .unwrap();
    let alb = [
        alb_line(REPORT_DAY_MS + 3 * HOUR_MS + 2 * 60_000, ATTACKER_IP),
        alb_line(REPORT_DAY_MS + 9 * HOUR_MS + 30 * 60_000, "203.0.113.10"),
    ]
    .join("\n");
    v.put_log_events(
        ALB_GROUP,
        "my-loadbalancer",
        parsed_inputs(Format::Alb, &alb),
        opts,
    )
    .await
    .unwrap();
    let report = v.seal_now().await.unwrap();
    assert!(
        report.segments.len() > 10,
        "{} segments",
        report.segments.len()
    );
    v.put_log_events(
        CT_GROUP,
        CT_STREAM,
        vec![InputEvent {
            timestamp_ms: REPORT_DAY_MS + 10 * HOUR_MS,
            message: pushed_event(),
            normalized: None,
        }],
        opts,
    )
    .await
    .unwrap();
}

/// One alarm that fired on the report day, in `dir/monitor.sqlite`.
pub fn seed_alarm(dir: &Path) {
    use trailvault_monitor::{AlarmSpec, AlarmState, MonitorDb};
    let db = MonitorDb::open(&dir.join("monitor.sqlite")).unwrap();
    let spec: AlarmSpec = serde_json::from_value(json!({
        "AlarmName": "ConsoleSignInFailures",
        "MetricName": "ConsoleSignInFailureCount",
        "Namespace": "CISBenchmark",
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 3.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold"
    }))
    .unwrap();
    db.put_alarm(spec, REPORT_DAY_MS - DAY_MS).unwrap();
    let fired = REPORT_DAY_MS + 3 * HOUR_MS + 6 * 60_000;
    db.set_alarm_state(
        "ConsoleSignInFailures",
        AlarmState::Alarm,
        "Threshold Crossed: 1 datapoint [3.0] was greater than or equal to the threshold (3.0)",
        None,
        fired,
    )
    .unwrap();
    db.set_alarm_state(
        "ConsoleSignInFailures",
        AlarmState::Ok,
        "back to normal",
        None,
        fired + HOUR_MS,
    )
    .unwrap();
}
