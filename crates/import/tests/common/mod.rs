//! A seeded synthetic AWSLogs tree shared by the import tests, and helpers to inspect a vault.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use trailvault_import::generate::{cloudtrail_file, cloudtrail_key, gzip, Rng};
use trailvault_store::{StreamFilter, Vault, VaultConfig};

pub const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
pub const START_MS: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

/// What the tree holds, to check an import against.
#[derive(Debug, Default)]
pub struct Expected {
    /// Events per log group (quarantine excluded).
    pub groups: BTreeMap<String, u64>,
    /// Quarantined records (not whole files).
    pub quarantined_records: u64,
    pub files_imported: u64,
    /// Keys of files that must be quarantined whole.
    pub quarantined_files: Vec<String>,
    pub unknown: Vec<String>,
    pub digests: u64,
    pub skipped: u64,
    pub all_files: u64,
}

fn write(root: &Path, key: &str, bytes: &[u8]) {
    let p = root.join(key);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn ip(rng: &mut Rng) -> String {
    format!("10.0.{}.{}", rng.below(256), rng.below(256))
}

/// Writes the synthetic tree under `root` and returns what an import must find.
pub fn write_tree(root: &Path, seed: u64) -> Expected {
    let mut rng = Rng::new(seed);
    let mut exp = Expected::default();
    let day = "2024/01/01";

    // CloudTrail: 2 accounts × 2 regions × 3 files, varying record counts.
    for account in ACCOUNTS {
        for region in REGIONS {
            let group = format!("awslogs/cloudtrail/{account}/{region}");
            for f in 0..3 {
                let t = START_MS + f * 300_000;
                let n = 5 + rng.below(30) as usize;
                let key = cloudtrail_key(&mut rng, account, region, t);
                let body = cloudtrail_file(&mut rng, account, region, t, n);
                write(root, &key, &gzip(body.as_bytes()).unwrap());
                *exp.groups.entry(group.clone()).or_default() += n as u64;
                exp.files_imported += 1;
                exp.all_files += 1;
            }
        }
    }

    // VPC flow logs with their header, gzip'd; one record has a field missing.
    let account = ACCOUNTS[0];
    let region = REGIONS[0];
    let mut vpc = String::from(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n",
    );
    let n_vpc = 40;
    for i in 0..n_vpc {
        let start = START_MS / 1000 + i * 10;
        vpc.push_str(&format!(
            "2 {account} eni-0123456789abcdef0 {} {} {} 443 6 {} {} {start} {} {} OK\n",
            ip(&mut rng),
            ip(&mut rng),
            1024 + rng.below(60_000),
            1 + rng.below(100),
            40 + rng.below(100_000),
            start + 60,
            if rng.below(5) == 0 {
                "REJECT"
            } else {
                "ACCEPT"
            },
        ));
    }
    vpc.push_str(&format!(
        "2 {account} eni-0123456789abcdef0 10.0.0.1 10.0.0.2 1 2 6\n"
    ));
    let key = format!(
        "AWSLogs/{account}/vpcflowlogs/{region}/{day}/{account}_vpcflowlogs_{region}_fl-0123456789abcdef0_20240101T0005Z_abcdef01.log.gz"
    );
    write(root, &key, &gzip(vpc.as_bytes()).unwrap());
    exp.groups
        .insert(format!("awslogs/vpc-flow/{account}/{region}"), n_vpc as u64);
    exp.quarantined_records += 1;
    exp.files_imported += 1;
    exp.all_files += 1;

    // ALB access logs, gzip'd.
    let mut alb = String::new();
    let n_alb = 25;
    for i in 0..n_alb {
        alb.push_str(&format!(
            "https 2024-01-01T00:{:02}:{:02}.186641Z app/my-lb/50dc6c495c0c9188 {}:{} 10.0.0.1:80 0.001 0.048 0.000 200 200 {} {} \"GET https://www.example.com:443/p/{} HTTP/1.1\" \"curl/8.0.1\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/t/73e2d6bc24d8a067 \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" \"-\" 1 2024-01-01T00:00:00.000000Z \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" TID_{}\n",
            i / 60,
            i % 60,
            ip(&mut rng),
            1024 + rng.below(60_000),
            rng.below(1000),
            rng.below(100_000),
            rng.below(100),
            rng.hex(16),
        ));
    }
    let key = format!(
        "AWSLogs/{account}/elasticloadbalancing/{region}/{day}/{account}_elasticloadbalancing_{region}_app.my-lb.50dc6c495c0c9188_20240101T0005Z_192.0.2.1_5a2dyd2k.log.gz"
    );
    write(root, &key, &gzip(alb.as_bytes()).unwrap());
    exp.groups
        .insert(format!("awslogs/alb/{account}/{region}"), n_alb as u64);
    exp.files_imported += 1;
    exp.all_files += 1;

    // S3 server access logs: simple key (no account), uncompressed, one line cut short.
    let owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
    let mut s3 = String::new();
    let n_s3 = 12;
    for i in 0..n_s3 {
        s3.push_str(&format!(
            "{owner} bucket-1 [01/Jan/2024:00:00:{:02} +0000] {} {owner} {} REST.GET.OBJECT key-{} \"GET /bucket-1/key-{} HTTP/1.1\" 200 - {} {} 7 - \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader bucket-1.s3.us-west-1.amazonaws.com TLSV1.2 - -\n",
            i,
            ip(&mut rng),
            rng.upper_alnum(16),
            i,
            i,
            rng.below(10_000),
            rng.below(10_000),
        ));
    }
    s3.push_str(&format!(
        "{owner} bucket-1 [01/Jan/2024:00:01:00 +0000] 192.0.2.3 {owner} 3E57427F3EXAMPLE REST.GET.VERSIONING - \"GET /bucket-1?versioning HTTP/1.1\" 200\n"
    ));
    write(
        root,
        "s3-logs/2024-01-01-00-00-38-0123456789ABCDEF",
        s3.as_bytes(),
    );
    exp.groups.insert("import/s3-access".into(), n_s3 as u64);
    exp.quarantined_records += 1;
    exp.files_imported += 1;
    exp.all_files += 1;

    // A CloudTrail digest: recognized, never stored.
    let digest = format!(
        r#"{{"awsAccountId":"{account}","digestStartTime":"2024-01-01T00:00:00Z","digestEndTime":"2024-01-01T01:00:00Z","digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"00","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}}"#
    );
    write(
        root,
        &format!("AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_trail_{region}_20240101T010000Z.json.gz"),
        &gzip(digest.as_bytes()).unwrap(),
    );
    exp.digests += 1;
    exp.all_files += 1;

    // A file nothing identifies.
    write(
        root,
        "AWSLogs/notes/readme.txt",
        b"these are our logs, handle with care\n",
    );
    exp.unknown.push("AWSLogs/notes/readme.txt".into());
    exp.all_files += 1;

    // A corrupt gzip under a CloudTrail key: quarantined whole.
    let t = START_MS + 3_600_000;
    let key = cloudtrail_key(&mut rng, account, region, t);
    let mut gz = gzip(cloudtrail_file(&mut rng, account, region, t, 50).as_bytes()).unwrap();
    let half = gz.len() / 2;
    gz.truncate(half);
    write(root, &key, &gz);
    exp.quarantined_files.push(key);
    exp.all_files += 1;

    // Config's writability check file: skipped by design.
    write(
        root,
        &format!("AWSLogs/{account}/Config/ConfigWritabilityCheckFile"),
        b"",
    );
    exp.skipped += 1;
    exp.all_files += 1;

    exp
}

/// Events per group (all streams) in the vault at `data`.
pub async fn group_counts(data: &Path) -> BTreeMap<String, u64> {
    let vault = Vault::open(VaultConfig::new(data)).await.unwrap();
    let mut out = BTreeMap::new();
    for (g, n) in trailvault_import::group_counts(&vault).await.unwrap() {
        out.insert(g, n);
    }
    out
}

/// Every message of a group.
pub async fn messages(data: &Path, group: &str) -> Vec<String> {
    let vault = Vault::open(VaultConfig::new(data)).await.unwrap();
    vault
        .read_events(group, &StreamFilter::All, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect()
}
