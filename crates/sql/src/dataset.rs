//! A seeded generator of a realistic multi-account audit dataset, written straight into a
//! vault: CloudTrail, S3 server access, VPC flow and ALB logs from five accounts and several
//! regions, with the normalized columns filled by the real parsers (`trailvault-formats`).
//!
//! The same [`DatasetSpec`] always produces the same events (seqs included, since events are
//! put in a fixed order): the generator is its own splitmix64, independent of any
//! dependency's version. Events are produced in time order in chunks and sealed every
//! [`DatasetSpec::seal_every_events`], so the result is real sealed segments, one per
//! (group, hour) and seal, as the running server would write them.
//!
//! What is in it (for the security queries of the benchmark): IAM users with access keys,
//! assumed roles, rare root activity, console logins (some failing, mostly from a few
//! hostile addresses), AccessDenied and throttling errors, rare regions, S3 object traffic
//! with byte counts, VPC flows with rejects on administrative ports, ALB requests.

use std::collections::{BTreeMap, HashSet};

use trailvault_formats::Format;
use trailvault_store::{InputEvent, LogGroupMeta, PutOptions, Vault};

use crate::error::SqlError;

pub const GROUP_CLOUDTRAIL: &str = "org/cloudtrail";
pub const GROUP_S3: &str = "org/s3-access";
pub const GROUP_VPC: &str = "org/vpc-flow";
pub const GROUP_ALB: &str = "org/alb";
pub const GROUPS: [&str; 4] = [GROUP_CLOUDTRAIL, GROUP_S3, GROUP_VPC, GROUP_ALB];

pub const ACCOUNTS: [&str; 5] = [
    "111122223333",
    "222233334444",
    "333344445555",
    "444455556666",
    "555566667777",
];
pub const USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
/// (region, weight per 10 000).
const REGIONS: [(&str, u64); 6] = [
    ("us-east-1", 5_000),
    ("eu-west-1", 2_700),
    ("us-west-2", 2_280),
    ("ap-southeast-3", 10),
    ("sa-east-1", 7),
    ("me-south-1", 3),
];
/// Addresses that try passwords and scan ports.
pub const HOSTILE_IPS: [&str; 4] = [
    "203.0.113.66",
    "198.51.100.23",
    "192.0.2.200",
    "203.0.113.9",
];

/// 2025-11-01T00:00:00Z.
pub const START_MS_DEFAULT: i64 = 1_761_955_200_000;
/// Events generated (then parsed and put) together.
const CHUNK_EVENTS: u64 = 20_000;
/// Largest batch handed to `put_log_events`.
const PUT_EVENTS_MAX: usize = 10_000;

#[derive(Debug, Clone)]
pub struct DatasetSpec {
    pub events: u64,
    pub seed: u64,
    /// Event time of the first event.
    pub start_ms: i64,
    /// Event times spread evenly over this many days.
    pub days: u32,
    /// Seal the tail after this many events (the rest stays unsealed unless `seal_at_end`).
    pub seal_every_events: u64,
    pub seal_at_end: bool,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            events: 10_000_000,
            seed: 42,
            start_ms: START_MS_DEFAULT,
            days: 7,
            seal_every_events: 250_000,
            seal_at_end: true,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DatasetSummary {
    pub events: u64,
    pub per_group: BTreeMap<String, u64>,
    pub segments: u64,
    pub segment_bytes: u64,
    pub raw_bytes: u64,
}

/// splitmix64: small, fast, and stable across versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `per_10k` / 10 000.
    pub fn chance(&mut self, per_10k: u64) -> bool {
        self.below(10_000) < per_10k
    }

    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }

    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
}

/// The long-term access key of a user in an account (stable, so lookups can name it).
pub fn access_key_of(account: &str, user: &str) -> String {
    let mut h = Rng::new(
        account
            .bytes()
            .chain(user.bytes())
            .fold(0xcbf2_9ce4_8422_2325u64, |a, b| {
                (a ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            }),
    );
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..16)
        .map(|_| char::from(A[h.below(A.len() as u64) as usize]))
        .collect();
    format!("AKIA{tail}")
}

fn region(rng: &mut Rng) -> &'static str {
    let mut x = rng.below(10_000);
    for (r, w) in REGIONS {
        if x < w {
            return r;
        }
        x -= w;
    }
    REGIONS[0].0
}

fn internal_ip(rng: &mut Rng) -> String {
    format!(
        "10.{}.{}.{}",
        rng.below(4),
        rng.below(256),
        1 + rng.below(254)
    )
}

fn public_ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.pick(&[34u8, 52, 54, 3, 18, 44, 81, 91]),
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    (
        i64::from(t.year()),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis(),
    )
}

fn iso_seconds(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// (eventSource, eventName, readOnly, resource type when the event names one).
const CT_EVENTS: [(&str, &str, bool, Option<&str>); 22] = [
    ("ec2.amazonaws.com", "DescribeInstances", true, None),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true, None),
    (
        "ec2.amazonaws.com",
        "RunInstances",
        false,
        Some("AWS::EC2::Instance"),
    ),
    (
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        false,
        Some("AWS::EC2::SecurityGroup"),
    ),
    (
        "ec2.amazonaws.com",
        "TerminateInstances",
        false,
        Some("AWS::EC2::Instance"),
    ),
    (
        "s3.amazonaws.com",
        "GetObject",
        true,
        Some("AWS::S3::Object"),
    ),
    (
        "s3.amazonaws.com",
        "PutObject",
        false,
        Some("AWS::S3::Object"),
    ),
    ("s3.amazonaws.com", "ListBuckets", true, None),
    (
        "s3.amazonaws.com",
        "PutBucketPolicy",
        false,
        Some("AWS::S3::Bucket"),
    ),
    ("iam.amazonaws.com", "ListUsers", true, None),
    (
        "iam.amazonaws.com",
        "CreateUser",
        false,
        Some("AWS::IAM::User"),
    ),
    (
        "iam.amazonaws.com",
        "AttachUserPolicy",
        false,
        Some("AWS::IAM::User"),
    ),
    (
        "iam.amazonaws.com",
        "CreateAccessKey",
        false,
        Some("AWS::IAM::AccessKey"),
    ),
    (
        "sts.amazonaws.com",
        "AssumeRole",
        true,
        Some("AWS::IAM::Role"),
    ),
    ("sts.amazonaws.com", "GetCallerIdentity", true, None),
    ("kms.amazonaws.com", "Decrypt", true, Some("AWS::KMS::Key")),
    (
        "kms.amazonaws.com",
        "ScheduleKeyDeletion",
        false,
        Some("AWS::KMS::Key"),
    ),
    (
        "lambda.amazonaws.com",
        "Invoke",
        false,
        Some("AWS::Lambda::Function"),
    ),
    (
        "dynamodb.amazonaws.com",
        "GetItem",
        true,
        Some("AWS::DynamoDB::Table"),
    ),
    ("logs.amazonaws.com", "CreateLogStream", false, None),
    ("cloudtrail.amazonaws.com", "LookupEvents", true, None),
    (
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
        Some("AWS::CloudTrail::Trail"),
    ),
];
/// Cumulative weights of [`CT_EVENTS`] (per 10 000): reads dominate, destructive calls are
/// rare.
const CT_WEIGHTS: [u64; 22] = [
    1800, 700, 150, 60, 40, 1500, 700, 300, 20, 300, 15, 15, 15, 900, 1200, 900, 5, 600, 600, 150,
    20, 10,
];

fn ct_event(rng: &mut Rng) -> (&'static str, &'static str, bool, Option<&'static str>) {
    let total: u64 = CT_WEIGHTS.iter().sum();
    let mut x = rng.below(total);
    for (e, w) in CT_EVENTS.iter().zip(CT_WEIGHTS) {
        if x < w {
            return *e;
        }
        x -= w;
    }
    CT_EVENTS[0]
}

fn resource_id(rng: &mut Rng, kind: &str, account: &str, region: &str) -> String {
    match kind {
        "AWS::EC2::Instance" => {
            format!("arn:aws:ec2:{region}:{account}:instance/i-{}", rng.hex(17))
        }
        "AWS::EC2::SecurityGroup" => format!(
            "arn:aws:ec2:{region}:{account}:security-group/sg-{:08x}",
            rng.below(40)
        ),
        "AWS::S3::Object" => format!(
            "arn:aws:s3:::data-{account}-{}/obj-{}",
            rng.below(6),
            rng.below(500)
        ),
        "AWS::S3::Bucket" => format!("arn:aws:s3:::data-{account}-{}", rng.below(6)),
        "AWS::IAM::User" => format!("arn:aws:iam::{account}:user/{}", rng.pick(&USERS)),
        "AWS::IAM::AccessKey" => format!(
            "arn:aws:iam::{account}:accesskey/AKIA{}",
            rng.hex(16).to_uppercase()
        ),
        "AWS::IAM::Role" => format!("arn:aws:iam::{account}:role/{}", rng.pick(&ROLES)),
        "AWS::KMS::Key" => format!(
            "arn:aws:kms:{region}:{account}:key/{:08x}-0000-4000-8000-000000000000",
            rng.below(12)
        ),
        "AWS::Lambda::Function" => format!(
            "arn:aws:lambda:{region}:{account}:function:fn-{}",
            rng.below(30)
        ),
        "AWS::DynamoDB::Table" => format!(
            "arn:aws:dynamodb:{region}:{account}:table/t-{}",
            rng.below(10)
        ),
        _ => format!("arn:aws:cloudtrail:{region}:{account}:trail/org-trail"),
    }
}

const ROLES: [&str; 5] = [
    "ci-deploy",
    "lambda-exec",
    "data-pipeline",
    "admin-breakglass",
    "readonly-audit",
];
const AGENTS: [&str; 5] = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.amzn.2",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0",
    "console.amazonaws.com",
    "terraform-provider-aws/5.40.0 aws-sdk-go-v2/1.25.3",
    "AWS Internal",
];

/// One CloudTrail record (JSON object text).
fn cloudtrail_record(rng: &mut Rng, account: &str, region: &str, time_ms: i64) -> String {
    let eid = rng.uuid();
    let req = rng.uuid();
    let time = iso_seconds(time_ms);
    // Console logins: 1 %, a third of them failing, most failures from hostile addresses.
    if rng.chance(100) {
        let user = *rng.pick(&USERS);
        let failed = rng.chance(3_300);
        let ip = if failed && rng.chance(8_000) {
            rng.pick(&HOSTILE_IPS).to_string()
        } else {
            public_ip(rng)
        };
        let (result, error) = if failed {
            ("Failure", r#""errorMessage":"Failed authentication","#)
        } else {
            ("Success", "")
        };
        return format!(
            concat!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDA{pid}","arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}","userName":"{user}"}},"#,
                r#""eventTime":"{time}","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"{ip}","#,
                r#""userAgent":"Mozilla/5.0 (X11; Linux x86_64)",{error}"requestParameters":null,"responseElements":{{"ConsoleLogin":"{result}"}},"#,
                r#""additionalEventData":{{"MFAUsed":"No","LoginTo":"https://console.aws.amazon.com/"}},"eventID":"{eid}","readOnly":false,"#,
                r#""eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management"}}"#
            ),
            pid = user.to_uppercase(),
            account = account,
            user = user,
            time = time,
            ip = ip,
            error = error,
            result = result,
            eid = eid,
        );
    }
    let (source, name, read_only, kind) = ct_event(rng);
    let identity = match rng.below(10_000) {
        // Root: 0.2 %.
        0..=19 => format!(
            r#"{{"type":"Root","principalId":"{account}","arn":"arn:aws:iam::{account}:root","accountId":"{account}","accessKeyId":"ASIA{}"}}"#,
            rng.hex(16).to_uppercase()
        ),
        20..=3999 => {
            let user = *rng.pick(&USERS);
            format!(
                r#"{{"type":"IAMUser","principalId":"AIDA{}","arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}","accessKeyId":"{}","userName":"{user}"}}"#,
                user.to_uppercase(),
                access_key_of(account, user)
            )
        }
        _ => {
            let role = *rng.pick(&ROLES);
            let session = format!("session-{}", rng.below(200));
            format!(
                concat!(
                    r#"{{"type":"AssumedRole","principalId":"AROA{role_id}:{session}","arn":"arn:aws:sts::{account}:assumed-role/{role}/{session}","#,
                    r#""accountId":"{account}","accessKeyId":"ASIA{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{role_id}","#,
                    r#""arn":"arn:aws:iam::{account}:role/{role}","accountId":"{account}","userName":"{role}"}},"attributes":{{"mfaAuthenticated":"false"}}}}}}"#
                ),
                role_id = role.to_uppercase().replace('-', ""),
                session = session,
                account = account,
                role = role,
                key = rng.hex(16).to_uppercase(),
            )
        }
    };
    let error = match rng.below(10_000) {
        0..=299 => {
            r#""errorCode":"AccessDenied","errorMessage":"User is not authorized to perform this operation","#
        }
        300..=399 => r#""errorCode":"ThrottlingException","errorMessage":"Rate exceeded","#,
        400..=429 => r#""errorCode":"ResourceNotFoundException","errorMessage":"Not found","#,
        _ => "",
    };
    let resources = match kind {
        Some(k) => format!(
            r#","resources":[{{"ARN":"{}","accountId":"{account}","type":"{k}"}}]"#,
            resource_id(rng, k, account, region)
        ),
        None => String::new(),
    };
    let ip = if rng.chance(7_000) {
        internal_ip(rng)
    } else {
        public_ip(rng)
    };
    format!(
        concat!(
            r#"{{"eventVersion":"1.08","userIdentity":{identity},"eventTime":"{time}","eventSource":"{source}","eventName":"{name}","#,
            r#""awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}",{error}"requestParameters":null,"responseElements":null,"#,
            r#""requestID":"{req}","eventID":"{eid}","readOnly":{ro}{resources},"eventType":"AwsApiCall","managementEvent":true,"#,
            r#""recipientAccountId":"{account}","eventCategory":"Management"}}"#
        ),
        identity = identity,
        time = time,
        source = source,
        name = name,
        region = region,
        ip = ip,
        agent = rng.pick(&AGENTS),
        error = error,
        req = req,
        eid = eid,
        ro = read_only,
        resources = resources,
        account = account,
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn s3_access_line(rng: &mut Rng, account: &str, region: &str, time_ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(time_ms);
    let time = format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000",
        MONTHS[mo as usize - 1]
    );
    let owner = format!("{:064x}", account.parse::<u64>().unwrap_or(0));
    let bucket = format!("data-{account}-{}", rng.below(6));
    let (method, op) = *rng.pick(&[
        ("GET", "REST.GET.OBJECT"),
        ("GET", "REST.GET.OBJECT"),
        ("GET", "REST.GET.OBJECT"),
        ("PUT", "REST.PUT.OBJECT"),
        ("HEAD", "REST.HEAD.OBJECT"),
        ("DELETE", "REST.DELETE.OBJECT"),
    ]);
    let key = format!("obj-{}", rng.below(500));
    let uri = format!("{method} /{bucket}/{key} HTTP/1.1");
    let denied = rng.chance(200);
    let status = if denied { "403" } else { "200" };
    let error = if denied { "AccessDenied" } else { "-" };
    let bytes = if denied || method != "GET" {
        "-".to_string()
    } else {
        (1 + rng.below(50_000_000)).to_string()
    };
    let requester = format!("arn:aws:iam::{account}:user/{}", rng.pick(&USERS));
    let ip = if rng.chance(8_000) {
        internal_ip(rng)
    } else {
        public_ip(rng)
    };
    let req_id = rng.hex(16).to_uppercase();
    let total = rng.below(400).to_string();
    let ua = rng.pick(&AGENTS).to_string();
    let values: Vec<&str> = vec![
        &owner,
        &bucket,
        &time,
        &ip,
        &requester,
        &req_id,
        op,
        &key,
        &uri,
        status,
        error,
        &bytes,
        "-",
        &total,
        "-",
        "-",
        &ua,
        "-",
        "hostid",
        "SigV4",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "AuthHeader",
        "s3.amazonaws.com",
        "TLSv1.3",
        "-",
        "Yes",
        region,
    ];
    trailvault_formats::sources::s3_access::render(&values)
}

/// (port, weight per 10 000) of flow destinations.
const PORTS: [(u16, u64); 9] = [
    (443, 5_500),
    (80, 1_200),
    (5432, 800),
    (53, 900),
    (22, 700),
    (3389, 400),
    (445, 200),
    (23, 150),
    (8080, 150),
];

fn vpc_flow_values(rng: &mut Rng, account: &str, time_ms: i64) -> Vec<String> {
    let mut x = rng.below(10_000);
    let mut port = 443;
    for (p, w) in PORTS {
        if x < w {
            port = p;
            break;
        }
        x -= w;
    }
    let admin = matches!(port, 22 | 3389 | 445 | 23);
    let src = if admin && rng.chance(5_000) {
        rng.pick(&HOSTILE_IPS).to_string()
    } else if rng.chance(6_000) {
        internal_ip(rng)
    } else {
        public_ip(rng)
    };
    let reject = if admin {
        rng.chance(7_000)
    } else {
        rng.chance(300)
    };
    let start = time_ms / 1000;
    let packets = 1 + rng.below(200);
    let bytes = packets * (40 + rng.below(1400));
    vec![
        "2".into(),
        account.into(),
        format!("eni-{:017x}", rng.below(64)),
        src,
        internal_ip(rng),
        (1024 + rng.below(64_000)).to_string(),
        port.to_string(),
        if port == 53 { "17" } else { "6" }.into(),
        packets.to_string(),
        bytes.to_string(),
        start.to_string(),
        (start + 1 + rng.below(59) as i64).to_string(),
        if reject { "REJECT" } else { "ACCEPT" }.into(),
        "OK".into(),
    ]
}

fn alb_line(rng: &mut Rng, account: &str, region: &str, time_ms: i64) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(time_ms);
    let time = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}000Z");
    let client = if rng.chance(200) {
        format!("{}:{}", rng.pick(&HOSTILE_IPS), 1024 + rng.below(60_000))
    } else {
        format!("{}:{}", public_ip(rng), 1024 + rng.below(60_000))
    };
    let target = format!("{}:8080", internal_ip(rng));
    let status = *rng.pick(&[
        "200", "200", "200", "200", "200", "200", "301", "404", "403", "500", "502",
    ]);
    let method = *rng.pick(&["GET", "GET", "GET", "POST", "PUT", "DELETE"]);
    let path = *rng.pick(&[
        "/",
        "/login",
        "/api/v1/orders",
        "/api/v1/users",
        "/static/app.js",
        "/admin",
        "/.env",
        "/wp-login.php",
    ]);
    let request = format!("{method} https://shop.example.com:443{path} HTTP/1.1");
    let received = (200 + rng.below(4_000)).to_string();
    let sent = (300 + rng.below(200_000)).to_string();
    let trace = format!("Root=1-{:08x}-{}", time_ms / 1000, rng.hex(24));
    let elb = format!("app/shop-{account}/{}", &account[..6]);
    let tg = format!(
        "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/shop/{}",
        &account[..8]
    );
    let rpt = format!("0.{:03}", rng.below(50));
    let ua = rng.pick(&AGENTS).to_string();
    let values: Vec<&str> = vec![
        "https",
        &time,
        &elb,
        &client,
        &target,
        "0.001",
        &rpt,
        "0.000",
        status,
        status,
        &received,
        &sent,
        &request,
        &ua,
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLSv1.2",
        &tg,
        &trace,
        "shop.example.com",
        "-",
        "1",
        &time,
        "forward",
        "-",
        "-",
        &target,
        status,
        "-",
        "-",
        "TID_1",
    ];
    trailvault_formats::sources::elb::render_alb(&values)
}

/// Which source an event comes from: CloudTrail 40 %, VPC flow 30 %, S3 20 %, ALB 10 %.
fn source_of(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=3 => 0,
        4..=5 => 1,
        6..=8 => 2,
        _ => 3,
    }
}

/// Text lines of one chunk, per (source, account, region).
type Buckets = BTreeMap<(usize, &'static str, &'static str), Vec<String>>;

fn parse_bucket(
    source: usize,
    lines: &[String],
) -> Result<trailvault_formats::ParseOutput, SqlError> {
    let (format, text) = match source {
        0 => (
            Format::Cloudtrail,
            format!("{{\"Records\":[{}]}}", lines.join(",")),
        ),
        1 => (Format::S3Access, lines.join("\n")),
        2 => {
            let header = trailvault_formats::sources::vpc_flow::DEFAULT_FIELDS.join(" ");
            (Format::VpcFlow, format!("{header}\n{}\n", lines.join("\n")))
        }
        _ => (Format::Alb, lines.join("\n")),
    };
    let out = trailvault_formats::parse(format, text.as_bytes());
    if let Some(r) = out.rejections.first() {
        return Err(SqlError::Execution(format!(
            "generated {} record rejected by its parser: {} ({} rejected)",
            format.id(),
            r.reason,
            out.rejections.len()
        )));
    }
    Ok(out)
}

/// Write the dataset into `vault`, creating its log groups.
pub async fn generate(vault: &Vault, spec: &DatasetSpec) -> Result<DatasetSummary, SqlError> {
    let existing: HashSet<String> = vault.log_groups().into_iter().map(|g| g.name).collect();
    for g in GROUPS {
        if !existing.contains(g) {
            vault.create_log_group(LogGroupMeta {
                name: g.to_string(),
                created_ms: spec.start_ms,
                retention_days: None,
                kms_key_id: None,
                log_group_class: "STANDARD".into(),
                deletion_protection: false,
                tags: BTreeMap::new(),
            })?;
        }
    }
    let mut streams: HashSet<(usize, String)> = HashSet::new();
    let mut summary = DatasetSummary::default();
    let mut rng = Rng::new(spec.seed);
    let span_ms = i64::from(spec.days.max(1)) * 86_400_000;
    let step_ms = span_ms as f64 / spec.events.max(1) as f64;
    let mut since_seal = 0u64;
    let mut done = 0u64;
    while done < spec.events {
        let n = CHUNK_EVENTS
            .min(spec.seal_every_events.max(1))
            .min(spec.events - done);
        let mut buckets: Buckets = BTreeMap::new();
        for i in 0..n {
            let t = spec.start_ms + ((done + i) as f64 * step_ms) as i64 + rng.below(1000) as i64;
            let source = source_of(&mut rng);
            let account = *rng.pick(&ACCOUNTS);
            let region = region(&mut rng);
            let line = match source {
                0 => cloudtrail_record(&mut rng, account, region, t),
                1 => s3_access_line(&mut rng, account, region, t),
                2 => vpc_flow_values(&mut rng, account, t).join(" "),
                _ => alb_line(&mut rng, account, region, t),
            };
            buckets
                .entry((source, account, region))
                .or_default()
                .push(line);
        }
        for ((source, account, region), lines) in buckets {
            let out = parse_bucket(source, &lines)?;
            let group = GROUPS[source];
            let stream = format!("{account}/{region}");
            if streams.insert((source, stream.clone()))
                && vault.log_streams(group)?.iter().all(|s| s.name != stream)
            {
                vault.create_log_stream(group, &stream)?;
            }
            let events: Vec<InputEvent> = out
                .records
                .into_iter()
                .map(|r| {
                    let mut n = r.normalized;
                    // The delivery key names account and region for sources whose lines
                    // do not; the importer's placement knows them the same way.
                    n.account.get_or_insert_with(|| account.to_string());
                    n.region.get_or_insert_with(|| region.to_string());
                    InputEvent {
                        timestamp_ms: n.time_ms.unwrap_or(spec.start_ms),
                        message: r.raw,
                        normalized: Some(n),
                    }
                })
                .collect();
            let count = events.len() as u64;
            let mut events = events;
            while !events.is_empty() {
                let rest = events.split_off(events.len().min(PUT_EVENTS_MAX));
                vault
                    .put_log_events(
                        group,
                        &stream,
                        events,
                        PutOptions::import(spec.start_ms + span_ms),
                    )
                    .await?;
                events = rest;
            }
            *summary.per_group.entry(group.to_string()).or_default() += count;
            summary.events += count;
        }
        done += n;
        since_seal += n;
        if since_seal >= spec.seal_every_events && (done < spec.events || spec.seal_at_end) {
            add_seal(&mut summary, vault.seal_now().await?);
            since_seal = 0;
        }
    }
    if spec.seal_at_end && since_seal > 0 {
        add_seal(&mut summary, vault.seal_now().await?);
    }
    Ok(summary)
}

fn add_seal(summary: &mut DatasetSummary, report: trailvault_store::SealReport) {
    summary.segments += report.segments.len() as u64;
    summary.segment_bytes += report.stored_bytes;
    summary.raw_bytes += report.raw_bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_line_parses() {
        let mut rng = Rng::new(7);
        for source in 0..4 {
            let lines: Vec<String> = (0..300)
                .map(|i| {
                    let t = START_MS_DEFAULT + i * 997;
                    match source {
                        0 => cloudtrail_record(&mut rng, ACCOUNTS[0], "eu-west-1", t),
                        1 => s3_access_line(&mut rng, ACCOUNTS[1], "us-east-1", t),
                        2 => vpc_flow_values(&mut rng, ACCOUNTS[2], t).join(" "),
                        _ => alb_line(&mut rng, ACCOUNTS[3], "us-west-2", t),
                    }
                })
                .collect();
            let out = parse_bucket(source, &lines).unwrap();
            assert_eq!(out.records.len(), 300, "source {source}");
            assert!(out.records.iter().all(|r| r.normalized.time_ms.is_some()));
        }
    }

    #[test]
    fn access_keys_are_stable_and_distinct() {
        assert_eq!(access_key_of("1", "alice"), access_key_of("1", "alice"));
        assert_ne!(access_key_of("1", "alice"), access_key_of("2", "alice"));
        assert_eq!(access_key_of("1", "alice").len(), 20);
    }
}
