//! Validating AWS CloudTrail's own digest chains (`trailvault validate-cloudtrail`), for
//! trails imported from S3 or copied locally.
//!
//! Input: a directory (or bucket) holding the trail's objects under their S3 keys
//! (`AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/...json.gz` and the log files).
//! The digest's signature is S3 object metadata, which a copy loses; it is expected beside
//! the digest in `<key>.metadata.json`, in any of these shapes:
//!
//! ```text
//! {"signature": "<hex>", "signature-algorithm": "SHA256withRSA"}
//! {"x-amz-meta-signature": "<hex>", "x-amz-meta-signature-algorithm": "SHA256withRSA"}
//! {"Metadata": {"signature": "<hex>", "signature-algorithm": "SHA256withRSA"}}   (aws s3api head-object)
//! ```
//!
//! Public keys: a directory of `.pem` (PUBLIC KEY or RSA PUBLIC KEY), `.der` (SPKI or PKCS#1)
//! files, and/or `.json` output of `aws cloudtrail list-public-keys` (with validity windows).
//! Each key is known under the MD5 of both its PKCS#1 and SPKI DER, since AWS's fingerprint is
//! over the form it returned and a converted file has the other.
//!
//! Checks, as the AWS CLI, plus what it forgets: location, key by fingerprint (and its
//! window when known), RSA PKCS#1 v1.5 SHA-256 signature over
//! `digestEndTime\ndigestS3Bucket/digestS3Object\nhex(sha256(uncompressed))\nprevSig|null`,
//! the previous digest's existence, its hash AND signature, and each log file's SHA-256 of
//! its first gzip member (trailing data is an error).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use object_store::ObjectStore;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePublicKey;
use serde_json::Value;

use crate::error::{IntegrityError, Result};
use crate::hash::{sha256, Hash};
use crate::keys::{pem_decode, rsa_public_key, PublicKey, PublicKeySet, SignatureAlgorithm};
use crate::objects;
use crate::time::parse_iso;
use crate::validate::{Finding, Kind, Status, ValidationReport};

/// Largest object read, and largest decompressed size accepted.
const OBJECT_BYTES_MAX: u64 = 1 << 30;
const DECOMPRESSED_BYTES_MAX: u64 = 4 << 30;

/// Load CloudTrail public keys from `dir`.
pub fn load_keys(dir: &Path) -> Result<PublicKeySet> {
    let mut set = PublicKeySet::default();
    let entries = std::fs::read_dir(dir).map_err(|e| IntegrityError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| IntegrityError::io(dir, e))?.path();
        if path.is_dir() {
            continue; // e.g. keys saved at the top of a copied trail
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = std::fs::read(&path).map_err(|e| IntegrityError::io(&path, e))?;
        let location = path.display().to_string();
        match ext.as_str() {
            "pem" => {
                let text = String::from_utf8_lossy(&bytes);
                let (_, der) = pem_decode(&text)
                    .ok_or_else(|| IntegrityError::corrupt(&location, "no PEM block"))?;
                add_rsa(&mut set, &der, i64::MIN, None, &location)?;
            }
            "der" => add_rsa(&mut set, &bytes, i64::MIN, None, &location)?,
            "json" => {
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| IntegrityError::corrupt(&location, e.to_string()))?;
                let list = v
                    .get("PublicKeyList")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for k in list {
                    let der = k
                        .get("Value")
                        .and_then(Value::as_str)
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .ok_or_else(|| {
                            IntegrityError::corrupt(&location, "public key without a base64 Value")
                        })?;
                    let start = k
                        .get("ValidityStartTime")
                        .and_then(aws_time)
                        .unwrap_or(i64::MIN);
                    let end = k.get("ValidityEndTime").and_then(aws_time);
                    add_rsa(&mut set, &der, start, end, &location)?;
                }
            }
            _ => {}
        }
    }
    Ok(set)
}

/// AWS CLI JSON times: ISO strings or epoch seconds.
fn aws_time(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_iso(s),
        Value::Number(n) => n.as_f64().map(|s| (s * 1000.0) as i64),
        _ => None,
    }
}

fn add_rsa(
    set: &mut PublicKeySet,
    der: &[u8],
    start: i64,
    end: Option<i64>,
    location: &str,
) -> Result<()> {
    let key = rsa_public_key(der).ok_or_else(|| {
        IntegrityError::corrupt(location, "not an RSA public key (PKCS#1 or SPKI DER)")
    })?;
    let pkcs1 = key
        .to_pkcs1_der()
        .map_err(|e| IntegrityError::Key(e.to_string()))?
        .as_bytes()
        .to_vec();
    let spki = key
        .to_public_key_der()
        .map_err(|e| IntegrityError::Key(e.to_string()))?
        .as_bytes()
        .to_vec();
    for form in [pkcs1, spki] {
        set.push(PublicKey::from_der(
            SignatureAlgorithm::Sha256WithRsa,
            form,
            start,
            end,
        ));
    }
    Ok(())
}

/// The first gzip member of `bytes`, decompressed; plain bytes if not gzip.
fn gunzip(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut dec = flate2::bufread::GzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut dec)
        .take(DECOMPRESSED_BYTES_MAX + 1)
        .read_to_end(&mut out)
        .map_err(|_| "invalid format".to_string())?;
    if out.len() as u64 > DECOMPRESSED_BYTES_MAX {
        return Err("invalid format: decompresses beyond the size limit".into());
    }
    if !dec.into_inner().is_empty() {
        return Err("unexpected data after end of compressed stream".into());
    }
    Ok(out)
}

struct CtDigest {
    key: String,
    raw_hash: Hash,
    json: Option<Value>,
    signature: Option<String>,
    own: Status,
    end_ms: i64,
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn metadata_signature(v: &Value) -> Option<(String, Option<String>)> {
    let m = v.get("Metadata").unwrap_or(v);
    let sig = str_field(m, "signature").or_else(|| str_field(m, "x-amz-meta-signature"))?;
    let alg = str_field(m, "signature-algorithm")
        .or_else(|| str_field(m, "x-amz-meta-signature-algorithm"));
    Some((sig.to_string(), alg.map(str::to_string)))
}

fn check(key: &str, bytes: &[u8], meta: Option<&[u8]>, keys: &PublicKeySet) -> CtDigest {
    let mut d = CtDigest {
        key: key.to_string(),
        raw_hash: [0; 32],
        json: None,
        signature: None,
        own: Status::Valid,
        end_ms: 0,
    };
    let raw = match gunzip(bytes) {
        Ok(r) => r,
        Err(why) => {
            d.own = Status::Invalid(why);
            return d;
        }
    };
    d.raw_hash = sha256(&raw);
    let Ok(json) = serde_json::from_slice::<Value>(&raw) else {
        d.own = Status::Invalid("invalid format".into());
        return d;
    };
    let meta = meta
        .and_then(|m| serde_json::from_slice::<Value>(m).ok())
        .and_then(|v| metadata_signature(&v));
    d.signature = meta.as_ref().map(|m| m.0.clone());
    d.end_ms = str_field(&json, "digestEndTime")
        .and_then(parse_iso)
        .unwrap_or(0);
    d.own = (|| {
        let (Some(end), Some(bucket), Some(object)) = (
            str_field(&json, "digestEndTime"),
            str_field(&json, "digestS3Bucket"),
            str_field(&json, "digestS3Object"),
        ) else {
            return Status::Invalid("invalid format".into());
        };
        if object != key {
            return Status::Invalid("has been moved from its original location".into());
        }
        let Some((sig, alg)) = &meta else {
            return Status::Invalid("signature metadata not found".into());
        };
        if alg.as_deref().is_some_and(|a| a != "SHA256withRSA") {
            return Status::Invalid(format!(
                "unsupported signature algorithm {}",
                alg.as_deref().unwrap_or_default()
            ));
        }
        let fp = str_field(&json, "digestPublicKeyFingerprint").unwrap_or_default();
        let Some(pk) = keys.find(fp) else {
            return Status::Invalid(format!("public key not found for fingerprint {fp}"));
        };
        if let Some(t) = parse_iso(end) {
            if !pk.valid_at(t) {
                return Status::Invalid(format!("public key {fp} was not valid at {end}"));
            }
        }
        let prev = str_field(&json, "previousDigestSignature").unwrap_or("null");
        let sts = format!(
            "{end}\n{bucket}/{object}\n{}\n{prev}",
            hex::encode(d.raw_hash)
        );
        match hex::decode(sig) {
            Ok(s) if pk.verify(sts.as_bytes(), &s) => Status::Valid,
            _ => Status::Invalid("signature verification failed".into()),
        }
    })();
    d.json = Some(json);
    d
}

/// The chain a digest key belongs to: its folder up to the region plus its file name without
/// the timestamp; `None` for anything that is not a CloudTrail digest.
fn chain_of(key: &str) -> Option<String> {
    let idx = key.find("/CloudTrail-Digest/")?;
    let after = &key[idx + "/CloudTrail-Digest/".len()..];
    let region = after.split('/').next()?;
    let name = key.rsplit('/').next()?;
    let stem = name
        .strip_suffix(".json.gz")
        .or_else(|| name.strip_suffix(".json"))?;
    if stem.ends_with("_backfill") {
        return Some(format!("{}{region}/backfill/{stem}", &key[..idx]));
    }
    let (prefix, _ts) = stem.rsplit_once('_')?;
    Some(format!(
        "{}/CloudTrail-Digest/{region}/{prefix}",
        &key[..idx]
    ))
}

/// Validate every CloudTrail digest chain under `store`.
pub async fn validate_cloudtrail(
    store: Arc<dyn ObjectStore>,
    keys: &PublicKeySet,
) -> Result<ValidationReport> {
    let mut report = ValidationReport {
        log_files: true,
        ..Default::default()
    };
    let listing = objects::list(&store, "").await?;
    let present: std::collections::HashSet<String> =
        listing.iter().map(|m| m.location.to_string()).collect();
    let mut chains: HashMap<String, Vec<CtDigest>> = HashMap::new();
    for key in present
        .iter()
        .filter(|k| chain_of(k).is_some() && !k.ends_with(".metadata.json"))
    {
        let bytes = objects::get_limited(&store, key, OBJECT_BYTES_MAX)
            .await?
            .unwrap_or_default();
        let meta_key = format!("{key}.metadata.json");
        let meta = if present.contains(&meta_key) {
            objects::get_limited(&store, &meta_key, 1 << 16).await?
        } else {
            None
        };
        let d = check(key, &bytes, meta.as_deref(), keys);
        chains
            .entry(chain_of(key).unwrap_or_default())
            .or_default()
            .push(d);
    }
    let mut chain_ids: Vec<String> = chains.keys().cloned().collect();
    chain_ids.sort();
    for id in chain_ids {
        let mut ds = chains.remove(&id).unwrap_or_default();
        ds.sort_by(|a, b| b.key.cmp(&a.key));
        // Typical period, to tell how many digests a hole swallowed.
        let mut steps: Vec<i64> = ds
            .windows(2)
            .map(|w| w[0].end_ms - w[1].end_ms)
            .filter(|s| *s > 0)
            .collect();
        steps.sort_unstable();
        let period = steps
            .get(steps.len() / 2)
            .copied()
            .unwrap_or(3_600_000)
            .max(1);
        let idx: HashMap<String, usize> = ds
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.clone(), i))
            .collect();
        let mut status: Vec<Status> = ds.iter().map(|d| d.own.clone()).collect();
        let mut order: Vec<Result<usize, Finding>> = Vec::new();
        let mut visited = vec![false; ds.len()];
        for start in 0..ds.len() {
            if visited[start] {
                continue;
            }
            let mut cur = start;
            loop {
                visited[cur] = true;
                order.push(Ok(cur));
                let Some(json) = &ds[cur].json else { break };
                let Some(prev_key) = str_field(json, "previousDigestS3Object") else {
                    break;
                };
                match idx.get(prev_key) {
                    Some(&p) if !visited[p] => {
                        if status[p] == Status::Valid {
                            let hash_ok = str_field(json, "previousDigestHashValue")
                                == Some(hex::encode(ds[p].raw_hash).as_str());
                            let sig_ok = str_field(json, "previousDigestSignature")
                                == ds[p].signature.as_deref();
                            if !hash_ok {
                                status[p] = Status::Invalid(format!(
                                    "hash value doesn't match the previousDigestHashValue of {}",
                                    ds[cur].key
                                ));
                            } else if !sig_ok {
                                status[p] = Status::Invalid(format!(
                                    "signature doesn't match the previousDigestSignature of {}",
                                    ds[cur].key
                                ));
                            }
                        }
                        cur = p;
                    }
                    Some(_) => break,
                    None => {
                        order.push(Err(Finding {
                            kind: Kind::Digest,
                            key: prev_key.to_string(),
                            status: Status::Invalid("not found".into()),
                        }));
                        let older =
                            (0..ds.len()).find(|&i| !visited[i] && ds[i].key.as_str() < prev_key);
                        if let Some(o) = older {
                            let missing = ((ds[cur].end_ms - ds[o].end_ms) / period - 1).max(1);
                            for k in 1..missing {
                                order.push(Err(Finding {
                                    kind: Kind::Digest,
                                    key: format!("(digest {k} before {prev_key})"),
                                    status: Status::Invalid("not found".into()),
                                }));
                            }
                            cur = o;
                        } else {
                            break;
                        }
                    }
                }
            }
        }
        for item in order {
            let i = match item {
                Ok(i) => i,
                Err(f) => {
                    report.findings.push(f);
                    continue;
                }
            };
            let d = &ds[i];
            report.findings.push(Finding {
                kind: Kind::Digest,
                key: d.key.clone(),
                status: status[i].clone(),
            });
            let Some(json) = &d.json else { continue };
            if let Some(end) = str_field(json, "digestEndTime").and_then(parse_iso) {
                let start = str_field(json, "digestStartTime")
                    .and_then(parse_iso)
                    .unwrap_or(end);
                report.found = Some(
                    report
                        .found
                        .map_or((start, end), |(a, b)| (a.min(start), b.max(end))),
                );
            }
            for lf in json
                .get("logFiles")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let (Some(object), Some(want)) =
                    (str_field(&lf, "s3Object"), str_field(&lf, "hashValue"))
                else {
                    continue;
                };
                let st = match objects::get_limited(&store, object, OBJECT_BYTES_MAX).await {
                    Ok(None) => Status::Invalid("not found".into()),
                    Err(e) => Status::Invalid(format!("unreadable: {e}")),
                    Ok(Some(b)) => match tokio::task::spawn_blocking(move || {
                        gunzip(&b).map(|raw| sha256(&raw))
                    })
                    .await
                    {
                        Ok(Ok(h)) if hex::encode(h) == want => Status::Valid,
                        Ok(Ok(_)) => Status::Invalid("hash value doesn't match".into()),
                        Ok(Err(why)) => Status::Invalid(why),
                        Err(e) => Status::Invalid(format!("hashing failed: {e}")),
                    },
                };
                report.findings.push(Finding {
                    kind: Kind::Segment,
                    key: object.to_string(),
                    status: st,
                });
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keyring;
    use object_store::local::LocalFileSystem;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const ACCT: &str = "123456789012";

    fn digest_key(hour: u32) -> String {
        format!("AWSLogs/{ACCT}/CloudTrail-Digest/us-east-1/2015/08/17/{ACCT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20150817T{hour:02}0131Z.json.gz")
    }

    /// A CloudTrail-format chain of `n` hourly digests signed with an RSA keyring.
    fn write_chain(root: &Path, ring: &Keyring, n: u32) {
        let fp = &ring.active_key().fingerprint;
        let mut prev: Option<(String, String, String)> = None;
        for h in 0..n {
            let log_key = format!("AWSLogs/{ACCT}/CloudTrail/us-east-1/2015/08/17/{ACCT}_CloudTrail_us-east-1_20150817T{h:02}00Z_x.json.gz");
            let log = format!("{{\"Records\":[{{\"eventName\":\"E{h}\"}}]}}");
            std::fs::create_dir_all(root.join(&log_key).parent().unwrap()).unwrap();
            std::fs::write(root.join(&log_key), gz(log.as_bytes())).unwrap();
            let key = digest_key(h + 1);
            let end = format!("2015-08-17T{:02}:01:31Z", h + 1);
            let null = Value::Null;
            let p = |i: usize| {
                prev.as_ref().map_or(null.clone(), |p| {
                    Value::String([&p.0, &p.1, &p.2][i].clone())
                })
            };
            // Real digests escape '/' as '\/': the hash is over the bytes as stored.
            let json = serde_json::json!({
                "awsAccountId": ACCT, "digestStartTime": format!("2015-08-17T{h:02}:01:31Z"), "digestEndTime": end,
                "digestS3Bucket": "bucket", "digestS3Object": key, "digestPublicKeyFingerprint": fp,
                "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": null, "oldestEventTime": null,
                "previousDigestS3Bucket": if prev.is_some() { Value::String("bucket".into()) } else { Value::Null },
                "previousDigestS3Object": p(0), "previousDigestHashValue": p(1), "previousDigestHashAlgorithm": "SHA-256",
                "previousDigestSignature": p(2),
                "logFiles": [{"s3Bucket": "bucket", "s3Object": log_key, "hashValue": hex::encode(sha256(log.as_bytes())),
                              "hashAlgorithm": "SHA-256", "newestEventTime": end, "oldestEventTime": end}]
            })
            .to_string()
            .replace('/', "\\/");
            let raw = json.into_bytes();
            let sts = format!(
                "{end}\nbucket/{key}\n{}\n{}",
                hex::encode(sha256(&raw)),
                prev.as_ref().map_or("null", |p| p.2.as_str())
            );
            let sig = hex::encode(ring.sign(sts.as_bytes()).unwrap().bytes);
            std::fs::create_dir_all(root.join(&key).parent().unwrap()).unwrap();
            std::fs::write(root.join(&key), gz(&raw)).unwrap();
            let meta = serde_json::json!({"Metadata": {"signature": sig, "signature-algorithm": "SHA256withRSA"}});
            std::fs::write(root.join(format!("{key}.metadata.json")), meta.to_string()).unwrap();
            prev = Some((key, hex::encode(sha256(&raw)), sig));
        }
    }

    #[tokio::test]
    async fn cloudtrail_chain_validates_and_tampering_is_caught() {
        let keys_dir = tempfile::tempdir().unwrap();
        let mut ring =
            Keyring::open_or_create(keys_dir.path(), SignatureAlgorithm::Ed25519).unwrap();
        ring.rotate(SignatureAlgorithm::Sha256WithRsa).unwrap();
        // The auditor's key file: the SPKI PEM; AWS fingerprints may be over PKCS#1, both work.
        let pub_dir = tempfile::tempdir().unwrap();
        std::fs::write(pub_dir.path().join("k.pem"), ring.active_key().pem()).unwrap();
        let keys = load_keys(pub_dir.path()).unwrap();
        assert_eq!(keys.keys().len(), 2);

        let data = tempfile::tempdir().unwrap();
        write_chain(data.path(), &ring, 6);
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(data.path()).unwrap());
        let r = validate_cloudtrail(store.clone(), &keys).await.unwrap();
        assert!(r.is_valid(), "{}", r.render(true));
        assert!(
            r.render(false)
                .contains("6/6 digest files valid\n6/6 log files valid"),
            "{}",
            r.render(false)
        );

        // Two consecutive digests deleted: two reports. A log file altered: caught.
        std::fs::remove_file(data.path().join(digest_key(3))).unwrap();
        std::fs::remove_file(data.path().join(digest_key(4))).unwrap();
        let log = format!("AWSLogs/{ACCT}/CloudTrail/us-east-1/2015/08/17/{ACCT}_CloudTrail_us-east-1_20150817T0000Z_x.json.gz");
        std::fs::write(data.path().join(&log), gz(b"{\"Records\":[]}")).unwrap();
        let r = validate_cloudtrail(store.clone(), &keys).await.unwrap();
        let f: Vec<(String, String)> = r
            .failures()
            .iter()
            .map(|f| {
                (
                    f.key.clone(),
                    match &f.status {
                        Status::Invalid(w) => w.clone(),
                        _ => String::new(),
                    },
                )
            })
            .collect();
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0], (digest_key(4), "not found".to_string()));
        assert_eq!(f[1].1, "not found");
        assert_eq!(f[2], (log, "hash value doesn't match".to_string()));

        // Trailing data after the gzip member is an error, as in the AWS CLI.
        let mut b = gz(b"x");
        b.extend_from_slice(b"junk");
        assert_eq!(
            gunzip(&b).unwrap_err(),
            "unexpected data after end of compressed stream"
        );
    }

    #[test]
    fn chains_by_trail() {
        assert_eq!(
            chain_of(&digest_key(1)).unwrap(),
            format!("AWSLogs/{ACCT}/CloudTrail-Digest/us-east-1/{ACCT}_CloudTrail-Digest_us-east-1_trail_us-east-1")
        );
        assert_eq!(chain_of("AWSLogs/x/CloudTrail/us-east-1/a.json.gz"), None);
    }
}
