//! The verifier against real signers (aws-sigv4, botocore), the signer against aws-sigv4,
//! and tamper properties: any single-byte change to what is signed is refused.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use trailvault_auth::{
    sign, verify, AccessKey, AuthError, Credentials, MemoryKeyStore, SignedRequest, SigningParams,
    VerifyConfig,
};
use url::Url;

const KEY_ID: &str = "TVAKINTEROP000000001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn keys() -> MemoryKeyStore {
    [AccessKey {
        id: KEY_ID.into(),
        secret: SECRET.into(),
        created_ms: 0,
        principal: "admin".into(),
    }]
    .into_iter()
    .collect()
}

fn logs_headers(action: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    h.insert(
        "x-amz-target",
        HeaderValue::from_str(&format!("Logs_20140328.{action}")).unwrap(),
    );
    h
}

/// Sign with aws-sigv4 1.x (the AWS SDK for Rust's signer); returns every header to send.
fn aws_sigv4_sign(
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    region: &str,
    time: SystemTime,
    session_token: Option<&str>,
) -> (HeaderMap, String) {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = aws_credential_types::Credentials::new(
        KEY_ID,
        SECRET,
        session_token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("logs")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let signable =
        SignableRequest::new("POST", url, pairs.into_iter(), SignableBody::Bytes(body)).unwrap();
    let (instructions, signature) = sign(signable, &params).unwrap().into_parts();
    let mut out = headers.clone();
    // aws-sigv4 signs the URL's authority as `host` but leaves sending it to the HTTP client.
    let authority = url
        .parse::<http::Uri>()
        .unwrap()
        .authority()
        .unwrap()
        .to_string();
    out.insert("host", HeaderValue::from_str(&authority).unwrap());
    for (k, v) in instructions.headers() {
        out.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    (out, signature)
}

fn request(path: &str, headers: HeaderMap, body: &[u8]) -> SignedRequest {
    SignedRequest {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers,
        body: Bytes::copy_from_slice(body),
    }
}

fn with_host(mut h: HeaderMap, host: &'static str) -> HeaderMap {
    h.insert("host", HeaderValue::from_static(host));
    h
}

#[test]
fn aws_sigv4_signed_requests_verify() {
    let now = SystemTime::now();
    for (region, body) in [
        ("us-east-1", &b"{}"[..]),
        (
            "eu-central-1",
            "{\"logGroupName\":\"g\",\"message\":\"é ✓\"}".as_bytes(),
        ),
        ("local", &b""[..]),
    ] {
        let (headers, _) = aws_sigv4_sign(
            "http://127.0.0.1:4740/",
            &logs_headers("DescribeLogGroups"),
            body,
            region,
            now,
            None,
        );
        let p = verify(
            &request("/", headers, body),
            &keys(),
            now,
            &VerifyConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{region}: {e}"));
        assert_eq!(p.name, "admin");
        assert_eq!(p.region, region);
    }
}

#[test]
fn aws_sigv4_session_credentials_are_refused() {
    let now = SystemTime::now();
    let (headers, _) = aws_sigv4_sign(
        "http://127.0.0.1:4740/",
        &logs_headers("DescribeLogGroups"),
        b"{}",
        "us-east-1",
        now,
        Some("session-token"),
    );
    let err = verify(
        &request("/", headers, b"{}"),
        &keys(),
        now,
        &VerifyConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err, AuthError::SessionTokenNotAccepted);
    assert_eq!(err.code(), "UnrecognizedClientException");
}

fn own_sign(url: &str, headers: &HeaderMap, body: &[u8], region: &str, t: SystemTime) -> HeaderMap {
    let creds = Credentials::new(KEY_ID, SECRET);
    let added = sign(
        "POST",
        &Url::parse(url).unwrap(),
        headers,
        body,
        &SigningParams {
            credentials: &creds,
            region,
            service: "logs",
            time: t,
        },
    )
    .unwrap();
    let mut out = headers.clone();
    for (k, v) in &added {
        out.insert(k, v.clone());
    }
    out
}

#[test]
fn own_signer_matches_aws_sigv4_byte_for_byte() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_198);
    for url in [
        "http://127.0.0.1:4740/",
        "http://localhost/",
        "https://logs.example.com:8443/a/b",
    ] {
        let base = logs_headers("PutLogEvents");
        let body = b"{\"logEvents\":[]}";
        let (theirs, their_sig) = aws_sigv4_sign(url, &base, body, "us-west-2", t, None);
        let ours = own_sign(url, &base, body, "us-west-2", t);
        assert_eq!(
            ours.get("authorization"),
            theirs.get("authorization"),
            "{url}"
        );
        assert!(ours["authorization"]
            .to_str()
            .unwrap()
            .ends_with(&their_sig));
        assert_eq!(ours.get("x-amz-date"), theirs.get("x-amz-date"));
    }
}

const BOTOCORE_SIGNER: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
a = json.load(sys.stdin)
req = AWSRequest(method="POST", url=a["url"], data=a["body"].encode("utf-8"),
                 headers={"Content-Type": "application/x-amz-json-1.1",
                          "X-Amz-Target": a["target"],
                          "User-Agent": "aws-cli/1.45.11 botocore/1.43.11"})
SigV4Auth(Credentials(a["key"], a["secret"]), "logs", a["region"]).add_auth(req)
print(json.dumps(dict(req.headers.items())))
"#;

#[test]
fn botocore_signed_requests_verify() {
    let probe = Command::new("python3")
        .args(["-c", "import botocore"])
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        eprintln!("skipping botocore interop: python3 with botocore is not available");
        return;
    }
    let body = "{\"logGroupName\":\"audit/prod\",\"logEvents\":[{\"timestamp\":1,\"message\":\"ünïcode  two  spaces\"}]}";
    let input = serde_json::json!({
        "url": "http://127.0.0.1:4740/",
        "body": body,
        "target": "Logs_20140328.PutLogEvents",
        "key": KEY_ID,
        "secret": SECRET,
        "region": "ap-southeast-2",
    });
    let mut child = Command::new("python3")
        .args(["-c", BOTOCORE_SIGNER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore signer failed");
    let sent: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    // The HTTP client (urllib3) adds Host; botocore signs the value it will send.
    let mut headers = with_host(HeaderMap::new(), "127.0.0.1:4740");
    for (k, v) in &sent {
        headers.insert(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
        );
    }
    let auth = headers["authorization"].to_str().unwrap().to_string();
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"),
        "{auth}"
    );
    let now = SystemTime::now();
    let p = verify(
        &request("/", headers.clone(), body.as_bytes()),
        &keys(),
        now,
        &VerifyConfig::default(),
    )
    .unwrap();
    assert_eq!(p.region, "ap-southeast-2");
    // And the same request with one body byte changed is refused.
    let tampered = body.replace("prod", "prot");
    let err = verify(
        &request("/", headers, tampered.as_bytes()),
        &keys(),
        now,
        &VerifyConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err, AuthError::SignatureMismatch);
}

fn signed_fixture(body: &[u8], target: &str, t: SystemTime) -> SignedRequest {
    let mut base = logs_headers("PutLogEvents");
    base.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
    let headers = own_sign(
        "http://127.0.0.1:4740/logs/api",
        &base,
        body,
        "us-east-1",
        t,
    );
    request("/logs/api", headers, body)
}

fn flip(bytes: &mut [u8], index: usize, replacement: u8) -> bool {
    let i = index % bytes.len();
    if bytes[i] == replacement {
        return false;
    }
    bytes[i] = replacement;
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn aws_sigv4_signatures_verify_for_any_values(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        // Spaces only: aws-sigv4 collapses runs of spaces, botocore (and we) all whitespace.
        target in "[ A-Za-z0-9._]{0,40}",
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
    ) {
        let t = SystemTime::now();
        let mut base = logs_headers("X");
        base.insert("x-amz-target", HeaderValue::from_str(&target).unwrap());
        let (headers, _) = aws_sigv4_sign("http://127.0.0.1:4740/", &base, &body, &region, t, None);
        let ours = own_sign("http://127.0.0.1:4740/", &base, &body, &region, t);
        prop_assert_eq!(ours.get("authorization"), headers.get("authorization"));
        let r = verify(&request("/", headers, &body), &keys(), t, &VerifyConfig::default());
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn any_single_byte_change_is_refused(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        target in "Logs_20140328\\.[A-Za-z]{1,20}",
        which in 0usize..4,
        index in any::<usize>(),
        replacement in proptest::sample::select(b"abcXYZ0189".to_vec()),
    ) {
        let t = SystemTime::now();
        let mut req = signed_fixture(&body, &target, t);
        prop_assert!(verify(&req, &keys(), t, &VerifyConfig::default()).is_ok());
        let changed = match which {
            0 => {
                let mut b = req.body.to_vec();
                let c = flip(&mut b, index, replacement);
                req.body = Bytes::from(b);
                c
            }
            1 => {
                let mut v = target.clone().into_bytes();
                let c = flip(&mut v, index, replacement);
                req.headers.insert("x-amz-target", HeaderValue::from_bytes(&v).unwrap());
                c
            }
            2 => {
                let mut p = req.path.clone().into_bytes();
                let c = flip(&mut p, index, replacement);
                req.path = String::from_utf8(p).unwrap();
                c
            }
            _ => {
                let mut d = req.headers["x-amz-date"].as_bytes().to_vec();
                // Digits only, so the date stays a date more often than not.
                let digit = b'0' + (replacement % 10);
                let positions: Vec<usize> = (0..d.len()).filter(|&i| d[i].is_ascii_digit()).collect();
                let c = flip_at(&mut d, positions[index % positions.len()], digit);
                req.headers.insert("x-amz-date", HeaderValue::from_bytes(&d).unwrap());
                c
            }
        };
        prop_assume!(changed);
        prop_assert!(verify(&req, &keys(), t, &VerifyConfig::default()).is_err());
    }
}

fn flip_at(bytes: &mut [u8], i: usize, replacement: u8) -> bool {
    if bytes[i] == replacement {
        return false;
    }
    bytes[i] = replacement;
    true
}
