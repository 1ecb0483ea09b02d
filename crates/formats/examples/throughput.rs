//! Parse + normalize throughput per format on synthetic input, single thread:
//! `cargo run --release -p trailvault-formats --example throughput [MB]`.

use std::time::Instant;

use trailvault_formats::{parse, Format};

fn cloudtrail(target_bytes: usize) -> Vec<u8> {
    let mut out = b"{\"Records\":[".to_vec();
    let mut i = 0u64;
    while out.len() < target_bytes {
        if i > 0 {
            out.push(b',');
        }
        let rec = format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-{i}","arn":"arn:aws:sts::123456789012:assumed-role/Deploy/session-{i}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE{i}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/Deploy","accountId":"123456789012","userName":"Deploy"}},"webIdFederationData":{{}},"attributes":{{"creationDate":"2024-01-01T00:00:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"2024-01-01T00:{:02}:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{}","userAgent":"aws-cli/2.13.5 Python/3.11.4 Linux/4.14.255 exe/x86_64.amzn.2 prompt/off command/ec2.describe-instances","requestParameters":{{"instancesSet":{{"items":[{{"instanceId":"i-0123456789abcdef{}"}}]}},"filterSet":{{}}}},"responseElements":null,"requestID":"{i:08x}-149f-4a6b-844d-0123456789ab","eventID":"{i:08x}-36b5-3ca3-a389-dae3eec919df","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"ec2.us-east-1.amazonaws.com"}}}}"#,
            (i / 60) % 60,
            i % 60,
            i % 250,
            i % 10
        );
        out.extend_from_slice(rec.as_bytes());
        i += 1;
    }
    out.extend_from_slice(b"]}");
    out
}

fn repeat_lines(line: &str, header: Option<&str>, target_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes + line.len());
    if let Some(h) = header {
        out.extend_from_slice(h.as_bytes());
        out.push(b'\n');
    }
    while out.len() < target_bytes {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn measure(name: &str, format: Format, input: &[u8]) {
    // One warm-up pass, then the best of three.
    let _ = parse(format, input);
    let mut best = f64::MAX;
    let mut records = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let out = parse(format, input);
        best = best.min(t.elapsed().as_secs_f64());
        records = out.records.len();
        assert!(
            out.rejections.is_empty(),
            "{name}: {:?}",
            out.rejections.first()
        );
    }
    let mb = input.len() as f64 / 1e6;
    println!(
        "{name:<12} {mb:>7.1} MB {records:>9} records {:>8.1} MB/s {:>10.0} records/s",
        mb / best,
        records as f64 / best
    );
}

/// What serde_json alone costs on the same bytes: skipping (validation only) and building a
/// `serde_json::Value` tree.
fn baseline(input: &[u8]) {
    let mb = input.len() as f64 / 1e6;
    let t = Instant::now();
    let _: serde::de::IgnoredAny = serde_json::from_slice(input).expect("valid json");
    println!(
        "{:<12} {mb:>7.1} MB {:>26.1} MB/s",
        "json-skip",
        mb / t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    let v: serde_json::Value = serde_json::from_slice(input).expect("valid json");
    println!(
        "{:<12} {mb:>7.1} MB {:>26.1} MB/s",
        "json-value",
        mb / t.elapsed().as_secs_f64()
    );
    drop(v);
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let target = mb << 20;
    let ct = cloudtrail(target);
    baseline(&ct);
    measure("cloudtrail", Format::Cloudtrail, &ct);
    let s3 = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /amzn-s3-demo-bucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes"#;
    measure(
        "s3-access",
        Format::S3Access,
        &repeat_lines(s3, None, target / 4),
    );
    let alb = r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;
    measure("alb", Format::Alb, &repeat_lines(alb, None, target / 4));
    let vpc = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
    measure(
        "vpc-flow",
        Format::VpcFlow,
        &repeat_lines(vpc, Some("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"), target / 4),
    );
}
