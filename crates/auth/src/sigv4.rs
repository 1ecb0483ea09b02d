//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), both ways: [`sign`] for the client and
//! [`verify`] for the server share one canonicalization ([`canonical_request`],
//! [`string_to_sign`], [`signing_key`]), so what one side signs the other recomputes byte for
//! byte.
//!
//! Canonicalization follows botocore (the reference client):
//! - URI: the path as sent on the wire, dot segments and empty segments removed, then every
//!   byte except unreserved characters and `/` percent-encoded (so `%20` becomes `%2520`:
//!   botocore and aws-sigv4 both encode the already-encoded path again).
//! - Query: pairs decoded, re-encoded strictly, sorted by key then value.
//! - Headers: exactly the `SignedHeaders` names, lowercase; each value trimmed with inner
//!   whitespace runs collapsed to one space; repeated headers joined by `,`.
//! - Payload: hex SHA-256 of the body, or the `X-Amz-Content-Sha256` value when present (the
//!   verifier checks that value against the body: an unsigned body is never accepted).
//!
//! Verification order (each step's failure is the error the client sees): `Authorization`
//! present → well formed → no session token → known access key → `X-Amz-Date` well formed →
//! scope (terminator, service, region, date) → clock skew → payload hash → `host` and every
//! `x-amz-*` header signed → signature, compared in constant time.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use url::Url;

use crate::credentials::Credentials;
use crate::error::AuthError;
use crate::keys::KeyStore;

/// The only algorithm accepted and produced.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Last element of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";
/// Hex SHA-256 of an empty body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Header carrying the request time, `YYYYMMDDTHHMMSSZ`.
pub const X_AMZ_DATE: &str = "x-amz-date";
/// Header carrying a session token (refused: this vault issues none).
pub const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
/// Optional header carrying the payload hash.
pub const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The default clock skew AWS tolerates (IAM documentation: 5 minutes).
pub const SKEW_MAX_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// An `Authorization` header longer than this is refused before parsing.
const AUTHORIZATION_BYTES_MAX: usize = 8 * 1024;
/// More signed headers than this is refused (botocore signs about five).
const SIGNED_HEADERS_MAX: usize = 64;
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Headers a signer never signs: botocore's and aws-sigv4's exclusions plus hop-by-hop
/// headers a proxy may rewrite.
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "expect",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

/// Everything but RFC 3986 unreserved characters.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// As [`STRICT`], keeping the path separator.
const PATH: &AsciiSet = &STRICT.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size-key MACs.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A request as the server received it, ready for [`verify`]. `path` and `query` are the raw
/// (still percent-encoded) request-target parts; `headers` must contain `host` (for HTTP/2,
/// insert it from the `:authority`).
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Only this region in the credential scope; `None` accepts any region name.
    pub region: Option<String>,
    /// Service names accepted in the credential scope (`logs` for the CloudWatch Logs API).
    pub services: Vec<String>,
    /// Largest accepted difference between `X-Amz-Date` and the server's clock.
    pub skew_max: Duration,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            region: None,
            services: vec!["logs".to_string()],
            skew_max: SKEW_MAX_DEFAULT,
        }
    }
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's principal name (e.g. `admin`).
    pub name: String,
    pub access_key_id: String,
    /// The region named in the credential scope (the client's region).
    pub region: String,
    /// The service named in the credential scope.
    pub service: String,
}

/// The credential scope: `<akid>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credential<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
}

impl Credential<'_> {
    fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization<'a> {
    credential: Credential<'a>,
    signed_headers: Vec<String>,
    signature: &'a str,
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::IncompleteSignature(msg.into())
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    if value.len() > AUTHORIZATION_BYTES_MAX {
        return Err(incomplete(format!(
            "Authorization header is longer than {AUTHORIZATION_BYTES_MAX} bytes."
        )));
    }
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} is accepted)."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header has a malformed element {:?} (expected key=value).",
                truncate(part, 64)
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(incomplete(format!(
                    "Authorization header has an unknown element '{}'.",
                    truncate(other, 64)
                )))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization header has '{}' more than once.",
                key.trim()
            )));
        }
    }
    let mut missing = String::new();
    for (name, v) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if v.is_none() {
            let _ = write!(
                missing,
                "{}Authorization header requires '{name}' parameter.",
                if missing.is_empty() { "" } else { " " }
            );
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(missing));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'",
            truncate(credential, 128)
        )));
    };
    let names: Vec<String> = signed_headers
        .split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    if names.len() > SIGNED_HEADERS_MAX {
        return Err(incomplete(format!(
            "SignedHeaders lists more than {SIGNED_HEADERS_MAX} headers."
        )));
    }
    if names
        .iter()
        .any(|n| HeaderName::from_bytes(n.as_bytes()).is_err())
    {
        return Err(incomplete(format!(
            "SignedHeaders '{}' is not a ';'-separated list of header names.",
            truncate(signed_headers, 128)
        )));
    }
    Ok(Authorization {
        credential: Credential {
            access_key_id,
            date,
            region,
            service,
            terminator,
        },
        signed_headers: names,
        signature,
    })
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

/// Parse `YYYYMMDDTHHMMSSZ` strictly (chrono alone would accept signs and extra digits).
pub fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    NaiveDateTime::parse_from_str(s, AMZ_DATE_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Format a time as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: DateTime<Utc>) -> String {
    t.format(AMZ_DATE_FORMAT).to_string()
}

/// Remove `.` and `..` segments and empty segments (botocore's `remove_dot_segments`, which
/// also drops consecutive slashes), keeping a leading and a trailing slash.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len() + 1);
    s.push('/');
    s.push_str(&out.join("/"));
    if path.ends_with('/') && !out.is_empty() {
        s.push('/');
    }
    s
}

/// The canonical URI of a raw (percent-encoded) request path.
pub fn canonical_uri(raw_path: &str) -> String {
    utf8_percent_encode(&normalize_path(raw_path), PATH).to_string()
}

/// The canonical query string of a raw query (without `?`).
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| {
                let decoded: Vec<u8> = percent_decode_str(s).collect();
                percent_encoding::percent_encode(&decoded, STRICT).to_string()
            };
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// One header's canonical value: each occurrence trimmed, inner whitespace runs collapsed to
/// one space (Python's `' '.join(v.split())`, as botocore), occurrences joined by `,`.
/// `None` when the header is absent.
pub fn canonical_header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut out = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = String::from_utf8_lossy(v.as_bytes());
        let mut first = true;
        for word in text.split(|c: char| c.is_ascii_whitespace() || c == '\x0b') {
            if word.is_empty() {
                continue;
            }
            if !first {
                out.push(' ');
            }
            out.push_str(word);
            first = false;
        }
    }
    Some(out)
}

/// The canonical request. `signed_headers` are lowercase names in the order they are listed
/// (sorted, for a conforming signer); a listed header that is absent contributes an empty value
/// (and so a signature mismatch on the server).
pub fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(&method.to_ascii_uppercase());
    s.push('\n');
    s.push_str(&canonical_uri(raw_path));
    s.push('\n');
    s.push_str(&canonical_query(raw_query));
    s.push('\n');
    for name in signed_headers {
        s.push_str(name);
        s.push(':');
        s.push_str(&canonical_header_value(headers, name).unwrap_or_default());
        s.push('\n');
    }
    s.push('\n');
    s.push_str(&signed_headers.join(";"));
    s.push('\n');
    s.push_str(payload_hash);
    s
}

/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, SCOPE_TERMINATOR.as_bytes())
}

/// Hex signature of a string to sign.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// Check a request's SigV4 signature against `keys`; on success, who signed it.
pub fn verify(
    req: &SignedRequest,
    keys: &dyn KeyStore,
    now: SystemTime,
    config: &VerifyConfig,
) -> Result<Principal, AuthError> {
    let mut auth_values = req.headers.get_all(AUTHORIZATION).iter();
    let Some(auth_value) = auth_values.next() else {
        return Err(AuthError::MissingAuthenticationToken);
    };
    if auth_values.next().is_some() {
        return Err(incomplete("Only one Authorization header may be sent."));
    }
    let auth_text = auth_value
        .to_str()
        .map_err(|_| incomplete("Authorization header is not ASCII."))?;
    let auth = parse_authorization(auth_text)?;

    if req.headers.contains_key(X_AMZ_SECURITY_TOKEN) {
        return Err(AuthError::SessionTokenNotAccepted);
    }
    let key = keys
        .lookup(auth.credential.access_key_id)
        .map_err(|e| AuthError::KeyStoreUnavailable(e.to_string()))?
        .ok_or_else(|| AuthError::UnknownAccessKey {
            access_key_id: auth.credential.access_key_id.to_string(),
        })?;

    let amz_date = match req.headers.get(X_AMZ_DATE) {
        None => {
            return Err(incomplete(
                "Authorization header requires existence of a 'X-Amz-Date' header.",
            ))
        }
        Some(v) => v.to_str().unwrap_or("").trim().to_string(),
    };
    let Some(request_time) = parse_amz_date(&amz_date) else {
        return Err(incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'.",
            truncate(&amz_date, 64)
        )));
    };

    let cred = &auth.credential;
    if cred.terminator != SCOPE_TERMINATOR {
        return Err(AuthError::InvalidScope(format!(
            "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{}'.",
            truncate(cred.terminator, 64)
        )));
    }
    if !config.services.iter().any(|s| s == cred.service) {
        let expected = config.services.first().map(String::as_str).unwrap_or("");
        return Err(AuthError::InvalidScope(format!(
            "Credential should be scoped to correct service: '{expected}'."
        )));
    }
    if cred.region.is_empty() || config.region.as_deref().is_some_and(|r| r != cred.region) {
        return Err(AuthError::InvalidScope(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            truncate(cred.region, 64)
        )));
    }
    if cred.date != &amz_date[..8] {
        return Err(AuthError::InvalidScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{}' != '{}', from '{amz_date}'.",
            truncate(cred.date, 16),
            &amz_date[..8]
        )));
    }

    check_skew(request_time, now, config.skew_max)?;

    let body_hash = sha256_hex(&req.body);
    let payload_hash = match req.headers.get(X_AMZ_CONTENT_SHA256) {
        None => body_hash,
        Some(v) => {
            let claimed = v.to_str().unwrap_or("").trim();
            if !claimed.eq_ignore_ascii_case(&body_hash) {
                return Err(AuthError::PayloadHash(
                    "The provided 'x-amz-content-sha256' header does not match what was \
                     computed (unsigned payloads are not accepted)."
                        .to_string(),
                ));
            }
            claimed.to_string()
        }
    };

    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::InvalidScope(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ));
    }
    // An unsigned `x-amz-*` header could change what a captured request does (swap
    // `x-amz-target` to replay a signed body under another action), so all must be signed.
    let mut unsigned: Vec<&str> = req
        .headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|n| n.starts_with("x-amz-") && !auth.signed_headers.iter().any(|h| h == n))
        .collect();
    if !unsigned.is_empty() {
        unsigned.sort_unstable();
        unsigned.dedup();
        return Err(AuthError::InvalidScope(format!(
            "There were headers present in the request which were not signed: {}",
            unsigned.join(", ")
        )));
    }
    let canonical = canonical_request(
        &req.method,
        &req.path,
        &req.query,
        &req.headers,
        &auth.signed_headers,
        &payload_hash,
    );
    let sts = string_to_sign(&amz_date, &cred.scope(), &canonical);
    let key_bytes = signing_key(&key.secret, cred.date, cred.region, cred.service);
    let expected = signature(&key_bytes, &sts);
    let provided = auth.signature.to_ascii_lowercase();
    if !bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(Principal {
        name: key.principal,
        access_key_id: key.id,
        region: cred.region.to_string(),
        service: cred.service.to_string(),
    })
}

fn check_skew(
    request: DateTime<Utc>,
    now: SystemTime,
    skew_max: Duration,
) -> Result<(), AuthError> {
    let now: DateTime<Utc> = now.into();
    // Whole seconds: X-Amz-Date has no fraction, and AWS prints the bounds without one.
    let now = now.with_timezone(&Utc).format(AMZ_DATE_FORMAT).to_string();
    let now = parse_amz_date(&now).unwrap_or(request);
    let skew = chrono::Duration::from_std(skew_max).unwrap_or(chrono::Duration::MAX);
    let minutes = skew_max.as_secs() / 60;
    let (earliest, latest) = (now - skew, now + skew);
    if request < earliest {
        return Err(AuthError::SignatureExpired(format!(
            "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
            format_amz_date(request),
            format_amz_date(earliest),
            format_amz_date(now)
        )));
    }
    if request > latest {
        return Err(AuthError::SignatureNotYetCurrent(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            format_amz_date(request),
            format_amz_date(latest),
            format_amz_date(now)
        )));
    }
    Ok(())
}

#[derive(Debug, Error)]
pub enum SignError {
    #[error("the URL {0} has no host")]
    NoHost(String),
    #[error("{what} cannot be sent in an HTTP header")]
    InvalidHeaderValue { what: &'static str },
}

/// The signer's inputs besides the request itself.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// Sign a request. Returns the headers to add to it: `authorization`, `x-amz-date`,
/// `x-amz-security-token` (session credentials only) and `host` (when `headers` lacks it;
/// the HTTP client must then send exactly that value). Every header in `headers` except the
/// [`UNSIGNED_HEADERS`] is signed, so pass only headers that reach the server unchanged.
pub fn sign(
    method: &str,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
    params: &SigningParams<'_>,
) -> Result<HeaderMap, SignError> {
    let time: DateTime<Utc> = params.time.into();
    let amz_date = format_amz_date(time);
    let mut added = HeaderMap::new();
    let mut all = headers.clone();
    all.remove(AUTHORIZATION);
    if !all.contains_key(HOST) {
        let host = host_header_value(url)?;
        added.insert(HOST, host.clone());
        all.insert(HOST, host);
    }
    let date_value = HeaderValue::from_str(&amz_date)
        .map_err(|_| SignError::InvalidHeaderValue { what: "the date" })?;
    added.insert(X_AMZ_DATE, date_value.clone());
    all.insert(X_AMZ_DATE, date_value);
    if let Some(token) = &params.credentials.session_token {
        let v = HeaderValue::from_str(token).map_err(|_| SignError::InvalidHeaderValue {
            what: "the session token",
        })?;
        added.insert(X_AMZ_SECURITY_TOKEN, v.clone());
        all.insert(X_AMZ_SECURITY_TOKEN, v);
    }
    let mut names: Vec<String> = all
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| !UNSIGNED_HEADERS.contains(&k.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let payload_hash = match all.get(X_AMZ_CONTENT_SHA256).and_then(|v| v.to_str().ok()) {
        Some(v) => v.trim().to_string(),
        None => sha256_hex(body),
    };
    let canonical = canonical_request(
        method,
        url.path(),
        url.query().unwrap_or(""),
        &all,
        &names,
        &payload_hash,
    );
    let date = &amz_date[..8];
    let scope = format!(
        "{date}/{}/{}/{SCOPE_TERMINATOR}",
        params.region, params.service
    );
    let sts = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(
        &params.credentials.secret_access_key,
        date,
        params.region,
        params.service,
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        params.credentials.access_key_id,
        names.join(";"),
        signature(&key, &sts)
    );
    added.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&authorization).map_err(|_| SignError::InvalidHeaderValue {
            what: "the access key id or region",
        })?,
    );
    Ok(added)
}

/// `host[:port]` as an HTTP client sends it (the port only when not the scheme's default).
fn host_header_value(url: &Url) -> Result<HeaderValue, SignError> {
    let host = url
        .host_str()
        .ok_or_else(|| SignError::NoHost(url.to_string()))?;
    let text = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    HeaderValue::from_str(&text).map_err(|_| SignError::InvalidHeaderValue { what: "the host" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{AccessKey, MemoryKeyStore};

    // The worked example of AWS's SigV4 test suite ("get-vanilla"): the expected signature
    // is the published one.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        headers.insert(X_AMZ_DATE, HeaderValue::from_static("20150830T123600Z"));
        let names = vec!["host".to_string(), "x-amz-date".to_string()];
        let creq = canonical_request("GET", "/", "", &headers, &names, EMPTY_PAYLOAD_SHA256);
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &creq,
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        assert_eq!(
            signature(&key, &sts),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let mut h = HeaderMap::new();
        h.append("my-header1", HeaderValue::from_static("  value1  "));
        h.append("my-header1", HeaderValue::from_static("a   b \t c"));
        assert_eq!(
            canonical_header_value(&h, "my-header1").as_deref(),
            Some("value1,a b c")
        );
        assert_eq!(canonical_header_value(&h, "absent"), None);
    }

    #[test]
    fn paths_and_queries_canonicalize_like_botocore() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("k=a%20b&x"), "k=a%20b&x=");
    }

    #[test]
    fn authorization_parses_with_and_without_spaces() {
        for sep in [", ", ","] {
            let v = format!(
                "AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/logs/aws4_request{sep}\
                 SignedHeaders=content-type;host;x-amz-date{sep}Signature=abc"
            );
            let a = parse_authorization(&v).unwrap();
            assert_eq!(a.credential.access_key_id, "AK");
            assert_eq!(a.credential.region, "us-east-1");
            assert_eq!(a.signed_headers, ["content-type", "host", "x-amz-date"]);
            assert_eq!(a.signature, "abc");
        }
        let err =
            parse_authorization("AWS4-HMAC-SHA256 Credential=AK/x/y/z/aws4_request").unwrap_err();
        assert_eq!(err.code(), "IncompleteSignatureException");
        assert!(err.message().contains("requires 'Signature' parameter"));
        assert!(err.message().contains("requires 'SignedHeaders' parameter"));
        let err = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/x/y, SignedHeaders=host, Signature=a",
        )
        .unwrap_err();
        assert!(err.message().contains("exactly 5 slash-delimited"));
        assert!(parse_authorization("Basic dXNlcjpwYXNz").is_err());
    }

    #[test]
    fn amz_dates_parse_strictly() {
        assert!(parse_amz_date("20261122T031318Z").is_some());
        for bad in [
            "2026-11-22T03:13:18Z",
            "20261122T031318",
            "+2026112T031318Z",
            "20261322T031318Z",
            "",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    fn test_key() -> AccessKey {
        AccessKey {
            id: "TVAKTESTTESTTESTTEST".into(),
            secret: "s3cr3t/s3cr3t+s3cr3t/s3cr3t+s3cr3t/s3cr".into(),
            created_ms: 0,
            principal: "admin".into(),
        }
    }

    fn signed(time: SystemTime, region: &str, service: &str) -> SignedRequest {
        let key = test_key();
        let creds = Credentials::new(&key.id, &key.secret);
        let url = Url::parse("http://127.0.0.1:4740/").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("Logs_20140328.DescribeLogGroups"),
        );
        let body = b"{}".to_vec();
        let added = sign(
            "POST",
            &url,
            &headers,
            &body,
            &SigningParams {
                credentials: &creds,
                region,
                service,
                time,
            },
        )
        .unwrap();
        for (k, v) in &added {
            headers.insert(k, v.clone());
        }
        SignedRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers,
            body: Bytes::from(body),
        }
    }

    #[test]
    fn own_signature_verifies_and_names_the_principal() {
        let keys: MemoryKeyStore = [test_key()].into_iter().collect();
        let now = SystemTime::now();
        let req = signed(now, "eu-west-3", "logs");
        let p = verify(&req, &keys, now, &VerifyConfig::default()).unwrap();
        assert_eq!(p.name, "admin");
        assert_eq!(p.region, "eu-west-3");
        assert_eq!(p.access_key_id, test_key().id);
    }

    #[test]
    fn refusals_carry_the_aws_codes() {
        let keys: MemoryKeyStore = [test_key()].into_iter().collect();
        let now = SystemTime::now();
        let cfg = VerifyConfig::default();

        let mut req = signed(now, "us-east-1", "logs");
        req.headers.remove(AUTHORIZATION);
        assert_eq!(
            verify(&req, &keys, now, &cfg).unwrap_err(),
            AuthError::MissingAuthenticationToken
        );

        let req = signed(now, "us-east-1", "logs");
        let empty = MemoryKeyStore::default();
        assert_eq!(
            verify(&req, &empty, now, &cfg).unwrap_err().code(),
            "UnrecognizedClientException"
        );

        let mut req = signed(now, "us-east-1", "logs");
        req.headers
            .insert(X_AMZ_SECURITY_TOKEN, HeaderValue::from_static("tok"));
        assert_eq!(
            verify(&req, &keys, now, &cfg).unwrap_err(),
            AuthError::SessionTokenNotAccepted
        );

        let req = signed(now, "us-east-1", "s3");
        let err = verify(&req, &keys, now, &cfg).unwrap_err();
        assert_eq!(err.code(), "InvalidSignatureException");
        assert!(err.message().contains("correct service: 'logs'"), "{err}");

        let req = signed(now, "us-east-1", "logs");
        let only_eu = VerifyConfig {
            region: Some("eu-west-1".into()),
            ..VerifyConfig::default()
        };
        let err = verify(&req, &keys, now, &only_eu).unwrap_err();
        assert!(err.message().contains("valid region"), "{err}");

        let mut req = signed(now, "us-east-1", "logs");
        req.headers
            .insert("x-amz-meta-extra", HeaderValue::from_static("unsigned"));
        let err = verify(&req, &keys, now, &cfg).unwrap_err();
        assert!(
            err.message().contains("not signed: x-amz-meta-extra"),
            "{err}"
        );

        let mut req = signed(now, "us-east-1", "logs");
        req.body = Bytes::from_static(b"{\"a\":1}");
        req.headers.insert(
            X_AMZ_CONTENT_SHA256,
            HeaderValue::from_static("UNSIGNED-PAYLOAD"),
        );
        let err = verify(&req, &keys, now, &cfg).unwrap_err();
        assert!(matches!(err, AuthError::PayloadHash(_)), "{err}");
    }

    #[test]
    fn skew_window_is_five_minutes_each_way_with_aws_messages() {
        let keys: MemoryKeyStore = [test_key()].into_iter().collect();
        let cfg = VerifyConfig::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_198); // 2026-11-22T03:13:18Z
        let req = signed(t, "us-east-1", "logs");
        for ok in [0, 300, -300] {
            let now = if ok >= 0 {
                t + Duration::from_secs(ok as u64)
            } else {
                t - Duration::from_secs((-ok) as u64)
            };
            verify(&req, &keys, now, &cfg).unwrap();
        }
        let err = verify(&req, &keys, t + Duration::from_secs(301), &cfg).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature expired: 20261122T031318Z is now earlier than 20261122T031319Z \
             (20261122T031819Z - 5 min.)"
        );
        let err = verify(&req, &keys, t - Duration::from_secs(301), &cfg).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature not yet current: 20261122T031318Z is still later than 20261122T031317Z \
             (20261122T030817Z + 5 min.)"
        );
        assert_eq!(err.code(), "InvalidSignatureException");
    }
}
