//! A seeded generator of synthetic CloudTrail log files in AWS's delivery layout, for tests and
//! the import benchmark. The same seed and sizes always produce the same bytes (the generator
//! is its own splitmix64, so it does not change with a dependency's version).

use std::io::Write;
use std::path::Path;

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

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }

    pub fn upper_alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n)
            .map(|_| char::from(A[self.below(A.len() as u64) as usize]))
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

/// (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_seconds(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

const EVENTS: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("ec2.amazonaws.com", "RunInstances", false),
    ("ec2.amazonaws.com", "TerminateInstances", false),
    ("s3.amazonaws.com", "GetBucketAcl", true),
    ("s3.amazonaws.com", "PutBucketPolicy", false),
    ("iam.amazonaws.com", "CreateUser", false),
    ("iam.amazonaws.com", "ListRoles", true),
    ("sts.amazonaws.com", "AssumeRole", true),
    ("kms.amazonaws.com", "Decrypt", true),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
    ),
    ("cloudtrail.amazonaws.com", "LookupEvents", true),
    ("logs.amazonaws.com", "CreateLogStream", false),
];
const AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.amzn.2 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "console.amazonaws.com",
    "terraform-provider-aws/5.40.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3 os/linux lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64",
    "AWS Internal",
];

/// One CloudTrail record (JSON object text) at `time_ms`.
pub fn cloudtrail_record(rng: &mut Rng, account: &str, region: &str, time_ms: i64) -> String {
    let (source, name, read_only) = *rng.pick(EVENTS);
    let role = format!("role-{}", rng.below(20));
    let session = format!("session-{}", rng.below(1000));
    let ip = format!(
        "{}.{}.{}.{}",
        rng.pick(&[192u8, 198, 203]),
        rng.below(256),
        rng.below(256),
        rng.below(256)
    );
    let key_id = format!("ASIA{}", rng.upper_alnum(16));
    let principal = format!("AROA{}:{session}", rng.upper_alnum(17));
    let failed = rng.below(20) == 0;
    let error = if failed {
        r#""errorCode":"AccessDenied","errorMessage":"User is not authorized to perform this operation","#
    } else {
        ""
    };
    let params = match name {
        "DescribeInstances" => format!(
            r#"{{"instancesSet":{{"items":[{{"instanceId":"i-{}"}}]}},"filterSet":{{}}}}"#,
            rng.hex(17)
        ),
        "RunInstances" => format!(
            r#"{{"instancesSet":{{"items":[{{"imageId":"ami-{}","minCount":1,"maxCount":1}}]}},"instanceType":"t3.micro","subnetId":"subnet-{}"}}"#,
            rng.hex(17),
            rng.hex(17)
        ),
        "GetBucketAcl" | "PutBucketPolicy" => format!(
            r#"{{"bucketName":"bucket-{}","Host":"bucket-{}.s3.{region}.amazonaws.com","acl":""}}"#,
            rng.below(50),
            rng.below(50)
        ),
        "CreateUser" => format!(r#"{{"userName":"user-{}"}}"#, rng.below(10_000)),
        "AssumeRole" => format!(
            r#"{{"roleArn":"arn:aws:iam::{account}:role/{role}","roleSessionName":"{session}","durationSeconds":3600}}"#
        ),
        "Decrypt" => format!(
            r#"{{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{{"aws:lambda:FunctionArn":"arn:aws:lambda:{region}:{account}:function:fn-{}"}}}}"#,
            rng.below(30)
        ),
        _ => "null".to_owned(),
    };
    format!(
        concat!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"{principal}","#,
            r#""arn":"arn:aws:sts::{account}:assumed-role/{role}/{session}","accountId":"{account}","accessKeyId":"{key_id}","#,
            r#""sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"{pid}","arn":"arn:aws:iam::{account}:role/{role}","accountId":"{account}","userName":"{role}"}},"#,
            r#""webIdFederationData":{{}},"attributes":{{"creationDate":"{created}","mfaAuthenticated":"{mfa}"}}}}}},"#,
            r#""eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","#,
            r#""sourceIPAddress":"{ip}","userAgent":"{agent}",{error}"requestParameters":{params},"responseElements":null,"#,
            r#""requestID":"{req}","eventID":"{eid}","readOnly":{ro},"eventType":"AwsApiCall","managementEvent":true,"#,
            r#""recipientAccountId":"{account}","eventCategory":"Management","#,
            r#""tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}"}}}}"#
        ),
        principal = principal,
        account = account,
        role = role,
        session = session,
        key_id = key_id,
        pid = principal.split(':').next().unwrap_or(""),
        created = iso_seconds(time_ms - 600_000),
        mfa = if rng.below(4) == 0 { "true" } else { "false" },
        time = iso_seconds(time_ms),
        source = source,
        name = name,
        region = region,
        ip = ip,
        agent = rng.pick(AGENTS),
        error = error,
        params = params,
        req = rng.uuid(),
        eid = rng.uuid(),
        ro = read_only,
        host = source.replace(".amazonaws.com", &format!(".{region}.amazonaws.com")),
    )
}

/// A CloudTrail log file body `{"Records":[…]}` with `n` records starting at `start_ms`.
pub fn cloudtrail_file(
    rng: &mut Rng,
    account: &str,
    region: &str,
    start_ms: i64,
    n: usize,
) -> String {
    let mut s = String::from("{\"Records\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let t = start_ms + (i as i64) * 1000 + rng.below(1000) as i64;
        s.push_str(&cloudtrail_record(rng, account, region, t));
    }
    s.push_str("]}");
    s
}

/// The delivery key of a CloudTrail file.
pub fn cloudtrail_key(rng: &mut Rng, account: &str, region: &str, time_ms: i64) -> String {
    let (y, m, d) = civil_from_days(time_ms.div_euclid(86_400_000));
    let s = time_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{y:04}/{m:02}/{d:02}/{account}_CloudTrail_{region}_{y:04}{m:02}{d:02}T{:02}{:02}Z_{}.json.gz",
        s / 3600,
        s / 60 % 60,
        rng.upper_alnum(16)
    )
}

pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

/// What [`write_cloudtrail_tree`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    pub files: u64,
    pub records: u64,
    /// JSON bytes before compression.
    pub raw_bytes: u64,
    pub gzip_bytes: u64,
}

/// Writes gzip'd CloudTrail files under `root` (AWSLogs layout) until `raw_bytes_target` bytes
/// of JSON are written: `accounts` × `regions`, `records_per_file` each, five minutes apart
/// starting at `start_ms`.
pub fn write_cloudtrail_tree(
    root: &Path,
    seed: u64,
    raw_bytes_target: u64,
    accounts: &[&str],
    regions: &[&str],
    records_per_file: usize,
    start_ms: i64,
) -> std::io::Result<TreeStats> {
    let mut rng = Rng::new(seed);
    let mut stats = TreeStats::default();
    let mut slot = 0i64;
    'outer: loop {
        for account in accounts {
            for region in regions {
                if stats.raw_bytes >= raw_bytes_target {
                    break 'outer;
                }
                let t = start_ms + slot * 300_000;
                let key = cloudtrail_key(&mut rng, account, region, t);
                let body = cloudtrail_file(&mut rng, account, region, t, records_per_file);
                let gz = gzip(body.as_bytes())?;
                let path = root.join(&key);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, &gz)?;
                stats.files += 1;
                stats.records += records_per_file as u64;
                stats.raw_bytes += body.len() as u64;
                stats.gzip_bytes += gz.len() as u64;
            }
        }
        slot += 1;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_determinism() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_789), (2024, 3, 7));
        assert_eq!(iso_seconds(1_709_769_661_000), "2024-03-07T00:01:01Z");
        let a = cloudtrail_file(&mut Rng::new(7), "111122223333", "us-east-1", 0, 5);
        let b = cloudtrail_file(&mut Rng::new(7), "111122223333", "us-east-1", 0, 5);
        assert_eq!(a, b);
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), 5);
        let out = trailvault_formats::parse(trailvault_formats::Format::Cloudtrail, a.as_bytes());
        assert_eq!(out.records.len(), 5);
        assert!(out.rejections.is_empty());
        assert_eq!(
            out.records[0].normalized.account.as_deref(),
            Some("111122223333")
        );
    }
}
