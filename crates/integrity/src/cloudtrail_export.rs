//! Rendering one log group's digest chain in AWS CloudTrail's exact digest format
//! (`trailvault export-cloudtrail-digests`), so tools written for CloudTrail — the AWS CLI's
//! `validate-logs` first — can check the vault's evidence.
//!
//! The group's chain is verified first (each digest's RSA signature with the vault key that
//! made it, its location, and every link by key, hash and signature); an export never signs
//! anything that does not verify. Each vault digest then becomes one CloudTrail digest:
//!
//! - key `[prefix/]AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHMMSSZ>.json.gz`
//!   (the period's END time), gzip;
//! - CloudTrail's fields in CloudTrail's order, compact JSON with `/` escaped as `\/` as AWS
//!   writes it; `digestPublicKeyFingerprint` is the MD5 of the key's PKCS#1 DER, the form
//!   `ListPublicKeys` returns;
//! - one `logFiles` entry per listed segment: `s3Object` = `[prefix/]<segment key>.gz`, a
//!   gzip whose content is the segment's exact stored bytes, and `hashValue` = the SHA-256
//!   the vault's signed digest recorded for them (CloudTrail hashes the uncompressed log);
//! - the links (`previousDigestS3Bucket/Object/HashValue/HashAlgorithm/Signature`) point to
//!   the previous rendered digest, `null` for the group's first;
//! - signed (RSA PKCS#1 v1.5, SHA-256) by the same key that signed the vault's digest, over
//!   `digestEndTime\nbucket/key\nhex(sha256(uncompressed))\nprevSig|null`; the signature and
//!   `SHA256withRSA` are S3 object metadata in CloudTrail, so they are written beside the
//!   object as `<key>.metadata.json` (`{"signature", "signature-algorithm"}`, the shape
//!   `validate-cloudtrail` reads) for the uploader to set as `x-amz-meta-*`.
//!
//! `list-public-keys.json` (in `aws cloudtrail list-public-keys` shape) holds the keys used.
//! Not carried over: our Merkle roots, event counts, tree indices and retention deletions
//! (CloudTrail has no fields for them). RSA signing is deterministic, so exporting twice
//! gives the same bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use object_store::ObjectStore;
use rsa::pkcs1::EncodeRsaPublicKey;
use serde::Serialize;

use crate::digest::{
    self, parse_digest, signature_key, string_to_sign, Digest, SignatureFile, DIGESTS_PREFIX,
};
use crate::error::{IntegrityError, Result};
use crate::hash::sha256;
use crate::keys::{fingerprint, rsa_public_key, Keyring, PublicKey, SignatureAlgorithm};
use crate::objects::{self, encode_group};
use crate::time::{compact, date_path, iso, parse_iso};
use crate::validate::SEGMENT_BYTES_MAX;

/// Where and as what the chain is rendered.
#[derive(Debug, Clone)]
pub struct CloudTrailTarget {
    pub group: String,
    pub bucket: String,
    pub account: String,
    pub region: String,
    pub trail: String,
    /// S3 key prefix of the trail (none by default).
    pub prefix: Option<String>,
}

impl CloudTrailTarget {
    fn with_prefix(&self, key: &str) -> String {
        match self.prefix.as_deref().map(|p| p.trim_end_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/{key}"),
            _ => key.to_string(),
        }
    }

    /// The CloudTrail digest key for a period ending at `end_ms`.
    pub fn digest_key(&self, end_ms: i64) -> String {
        let (a, r, t) = (&self.account, &self.region, &self.trail);
        self.with_prefix(&format!(
            "AWSLogs/{a}/CloudTrail-Digest/{r}/{}/{a}_CloudTrail-Digest_{r}_{t}_{r}_{}.json.gz",
            date_path(end_ms),
            compact(end_ms)
        ))
    }

    pub fn log_key(&self, segment_key: &str) -> String {
        self.with_prefix(&format!("{segment_key}.gz"))
    }
}

/// A CloudTrail trail name from a log group name: `[A-Za-z0-9._-]`, others become `-`.
pub fn trail_name_for(group: &str) -> String {
    group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// CloudTrail's digest, fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CtDigest<'a> {
    aws_account_id: &'a str,
    digest_start_time: &'a str,
    digest_end_time: &'a str,
    digest_s3_bucket: &'a str,
    digest_s3_object: &'a str,
    digest_public_key_fingerprint: &'a str,
    digest_signature_algorithm: &'static str,
    newest_event_time: Option<&'a str>,
    oldest_event_time: Option<&'a str>,
    previous_digest_s3_bucket: Option<&'a str>,
    previous_digest_s3_object: Option<&'a str>,
    previous_digest_hash_value: Option<String>,
    previous_digest_hash_algorithm: Option<&'static str>,
    previous_digest_signature: Option<&'a str>,
    log_files: Vec<CtLogFile<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CtLogFile<'a> {
    s3_bucket: &'a str,
    s3_object: String,
    hash_value: &'a str,
    hash_algorithm: &'static str,
    newest_event_time: &'a str,
    oldest_event_time: &'a str,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub digests: usize,
    pub log_files: usize,
    /// Segments a digest lists that are not in the vault (listed anyway: a validator reports
    /// them as not found).
    pub log_files_missing: usize,
    /// CloudTrail fingerprints of the keys used.
    pub fingerprints: Vec<String>,
}

/// A vault digest whose signature and link were checked.
struct Verified {
    key: String,
    digest: Digest,
    signer: PublicKey,
}

/// Read and verify `group`'s whole chain, oldest first.
async fn verified_chain(
    store: &Arc<dyn ObjectStore>,
    keyring: &Keyring,
    group: &str,
) -> Result<Vec<Verified>> {
    let keys = keyring.public_keys();
    let prefix = format!("{DIGESTS_PREFIX}/{}", encode_group(group));
    let mut listed: Vec<String> = objects::list(store, &prefix)
        .await?
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|k| digest::group_of_digest_key(k).as_deref() == Some(group))
        .collect();
    // Keys name the period's end with fixed-width fields: lexical order is time order.
    listed.sort();
    let mut out: Vec<Verified> = Vec::with_capacity(listed.len());
    let mut prev: Option<(String, [u8; 32], String)> = None;
    for key in listed {
        let bytes = objects::get_limited(store, &key, digest::DIGEST_BYTES_MAX)
            .await?
            .ok_or_else(|| IntegrityError::corrupt(&key, "listed but not found"))?;
        let d = parse_digest(&key, &bytes)?;
        let bad = |why: String| {
            IntegrityError::corrupt(&key, format!("{why}: run `trailvault validate`; a chain that does not verify is not exported"))
        };
        if d.digest_object != key {
            return Err(bad(format!("names itself {}", d.digest_object)));
        }
        let sig_bytes = objects::get_limited(store, &signature_key(&key), digest::SIG_BYTES_MAX)
            .await?
            .ok_or_else(|| bad("signature file not found".into()))?;
        let sig: SignatureFile = serde_json::from_slice(&sig_bytes)
            .map_err(|e| bad(format!("bad signature file: {e}")))?;
        let signer = keys
            .find(&d.digest_public_key_fingerprint)
            .ok_or_else(|| {
                bad(format!(
                    "public key not found for fingerprint {}",
                    d.digest_public_key_fingerprint
                ))
            })?
            .clone();
        if d.digest_signature_algorithm != SignatureAlgorithm::Sha256WithRsa
            || signer.algorithm != SignatureAlgorithm::Sha256WithRsa
        {
            return Err(IntegrityError::Invalid(format!(
                "{key} is signed with {}: CloudTrail's format needs SHA256withRSA digests \
                 (run the vault with --signing-algorithm rsa)",
                d.digest_signature_algorithm
            )));
        }
        let hash = sha256(&bytes);
        let sts = string_to_sign(
            &d.digest_end_time,
            &key,
            &hash,
            d.previous_digest_signature.as_deref(),
        );
        let sig_raw =
            hex::decode(&sig.signature).map_err(|_| bad("signature is not hex".into()))?;
        let signed_at = parse_iso(&d.digest_signing_time).unwrap_or(i64::MIN);
        if !signer.valid_at(signed_at) || !signer.verify(sts.as_bytes(), &sig_raw) {
            return Err(bad("signature verification failed".into()));
        }
        let link_ok = match (&prev, &d.previous_digest_object) {
            (None, None) => d.digest_sequence == 0,
            (Some((pk, ph, ps)), Some(o)) => {
                o == pk
                    && d.previous_digest_hash_value.as_deref() == Some(hex::encode(ph).as_str())
                    && d.previous_digest_signature.as_deref() == Some(ps.as_str())
            }
            // A chain restarts only at sequence 0; anything else is a missing predecessor.
            (Some(_), None) => d.digest_sequence == 0,
            (None, Some(_)) => false,
        };
        if !link_ok {
            return Err(bad(
                "chain broken: the previous digest is missing or altered".into(),
            ));
        }
        prev = Some((key.clone(), hash, sig.signature));
        out.push(Verified {
            key,
            digest: d,
            signer,
        });
    }
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| IntegrityError::io(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| IntegrityError::io(path, e))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2),
        flate2::Compression::default(),
    );
    enc.write_all(bytes)
        .and_then(|_| enc.finish())
        .map_err(|e| IntegrityError::io("gzip", e))
}

/// The RSA key's PKCS#1 DER and its CloudTrail fingerprint (MD5 of that DER).
fn cloudtrail_key(k: &PublicKey) -> Result<(Vec<u8>, String)> {
    let rsa = rsa_public_key(&k.der)
        .ok_or_else(|| IntegrityError::Key(format!("key {} is not RSA", k.fingerprint)))?;
    let der = rsa
        .to_pkcs1_der()
        .map_err(|e| IntegrityError::Key(e.to_string()))?
        .as_bytes()
        .to_vec();
    let fp = fingerprint(&der);
    Ok((der, fp))
}

/// Render `target.group`'s chain under `out` (files at their S3 keys). See the module docs.
pub async fn export_cloudtrail(
    store: &Arc<dyn ObjectStore>,
    keyring: &Keyring,
    target: &CloudTrailTarget,
    out: &Path,
) -> Result<ExportSummary> {
    let chain = verified_chain(store, keyring, &target.group).await?;
    if chain.is_empty() {
        return Err(IntegrityError::Invalid(format!(
            "log group {} has no digests yet",
            target.group
        )));
    }
    let mut used: BTreeMap<String, (Vec<u8>, PublicKey)> = BTreeMap::new();
    let mut summary = ExportSummary {
        digests: 0,
        log_files: 0,
        log_files_missing: 0,
        fingerprints: Vec::new(),
    };
    // (key, sha256 of the uncompressed bytes, hex signature) of the previous rendered digest.
    let mut prev: Option<(String, [u8; 32], String)> = None;
    for v in &chain {
        let d = &v.digest;
        if d.previous_digest_object.is_none() {
            prev = None; // a restarted chain starts a new CloudTrail chain too
        }
        let end_ms = parse_iso(&d.digest_end_time)
            .ok_or_else(|| IntegrityError::corrupt(&v.key, "bad digestEndTime"))?;
        let key = target.digest_key(end_ms);
        let (pkcs1, fp) = cloudtrail_key(&v.signer)?;
        used.entry(fp.clone())
            .or_insert_with(|| (pkcs1, v.signer.clone()));
        let log_files: Vec<CtLogFile<'_>> = d
            .segments
            .iter()
            .map(|s| CtLogFile {
                s3_bucket: &target.bucket,
                s3_object: target.log_key(&s.object),
                hash_value: &s.hash_value,
                hash_algorithm: "SHA-256",
                newest_event_time: &s.newest_event_time,
                oldest_event_time: &s.oldest_event_time,
            })
            .collect();
        let ct = CtDigest {
            aws_account_id: &target.account,
            digest_start_time: &d.digest_start_time,
            digest_end_time: &d.digest_end_time,
            digest_s3_bucket: &target.bucket,
            digest_s3_object: &key,
            digest_public_key_fingerprint: &fp,
            digest_signature_algorithm: "SHA256withRSA",
            newest_event_time: d.newest_event_time.as_deref(),
            oldest_event_time: d.oldest_event_time.as_deref(),
            previous_digest_s3_bucket: prev.as_ref().map(|_| target.bucket.as_str()),
            previous_digest_s3_object: prev.as_ref().map(|p| p.0.as_str()),
            previous_digest_hash_value: prev.as_ref().map(|p| hex::encode(p.1)),
            previous_digest_hash_algorithm: prev.as_ref().map(|_| "SHA-256"),
            previous_digest_signature: prev.as_ref().map(|p| p.2.as_str()),
            log_files,
        };
        let json =
            serde_json::to_string(&ct).map_err(|e| IntegrityError::Invalid(e.to_string()))?;
        // AWS's serializer escapes '/'; '/' only ever occurs inside strings here.
        let raw = json.replace('/', "\\/").into_bytes();
        let raw_hash = sha256(&raw);
        let sts = format!(
            "{}\n{}/{}\n{}\n{}",
            d.digest_end_time,
            target.bucket,
            key,
            hex::encode(raw_hash),
            prev.as_ref().map_or("null", |p| p.2.as_str())
        );
        let sig = hex::encode(
            keyring
                .sign_with(&v.signer.fingerprint, sts.as_bytes())?
                .bytes,
        );
        write_file(&out.join(&key), &gzip(&raw)?)?;
        let meta = serde_json::json!({"signature": sig, "signature-algorithm": "SHA256withRSA"});
        write_file(
            &out.join(format!("{key}.metadata.json")),
            meta.to_string().as_bytes(),
        )?;
        for s in &d.segments {
            match objects::get_limited(store, &s.object, SEGMENT_BYTES_MAX).await? {
                Some(bytes) => {
                    write_file(&out.join(target.log_key(&s.object)), &gzip(&bytes)?)?;
                    summary.log_files += 1;
                }
                None => summary.log_files_missing += 1,
            }
        }
        summary.digests += 1;
        prev = Some((key, raw_hash, sig));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let list: Vec<serde_json::Value> = used
        .iter()
        .map(|(fp, (der, k))| {
            serde_json::json!({
                "Value": b64.encode(der),
                "ValidityStartTime": iso(k.not_before_ms),
                "ValidityEndTime": k.not_after_ms.map(iso),
                "Fingerprint": fp,
            })
        })
        .collect();
    write_file(
        &out.join("list-public-keys.json"),
        serde_json::to_string_pretty(&serde_json::json!({ "PublicKeyList": list }))
            .map_err(|e| IntegrityError::Invalid(e.to_string()))?
            .as_bytes(),
    )?;
    summary.fingerprints = used.into_keys().collect();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_cloudtrail_layout() {
        let t = CloudTrailTarget {
            group: "aws/cloudtrail".into(),
            bucket: "b".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            trail: trail_name_for("aws/cloudtrail"),
            prefix: Some("org/".into()),
        };
        assert_eq!(t.trail, "aws-cloudtrail");
        assert_eq!(
            t.digest_key(1_439_820_091_000),
            "org/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2015/08/17/\
             123456789012_CloudTrail-Digest_us-east-1_aws-cloudtrail_us-east-1_20150817T140131Z.json.gz"
        );
        assert_eq!(t.log_key("segments/x.parquet"), "org/segments/x.parquet.gz");
    }
}
