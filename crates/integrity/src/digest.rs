//! Digest files: for every log group and every period, a signed statement of the segments
//! sealed in it, chained to the previous one.
//!
//! Key: `digests/<group-enc>/YYYY/MM/DD/<group-enc>_Digest_<YYYYMMDDTHHMMSSZ>.json`, date and
//! timestamp being the period's END (UTC); `<group-enc>` is the group name with control
//! characters, non-ASCII bytes, `/`, `#` and `%` percent-encoded (as the segment layout does).
//!
//! Content: JSON in CloudTrail's field style (see [`Digest`]), plus our additions:
//! `digestFormatVersion`, `logGroup`, `digestSigningTime`, `digestSequence` (position in the
//! group's chain, 0 for a starting digest), `digestTreeIndex` (leaf index in the cumulative
//! digest tree, see [`crate::checkpoint`]), per-segment `merkleRoot`, `eventCount`, `bytes`,
//! and `deletions` (segments expired by retention, so "expired by policy" is told apart
//! from "missing").
//!
//! Signature: over the UTF-8 string
//! `digestEndTime "\n" digestObject "\n" hex(sha256(digest bytes)) "\n" (previousDigestSignature | "null")`,
//! CloudTrail's string to sign with the object key in place of `bucket/key`. Files on disk
//! have no object metadata, so the signature lives beside the digest in `<key>.sig`:
//! `{"signature": hex, "signatureAlgorithm": ..., "fingerprint": ...}`. The digest itself
//! names its algorithm and key fingerprint, and those (signed) values are what a validator
//! trusts; the sidecar's copies are informational.
//!
//! Invariants: a digest object is never overwritten (written with create-only semantics);
//! per group, periods are strictly increasing and never overlap; a digest records its
//! predecessor's key, SHA-256 and signature.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint};
use crate::error::{IntegrityError, Result};
use crate::hash::{sha256, Hash};
use crate::keys::{Keyring, SignatureAlgorithm};
use crate::leaf::SegmentSeal;
use crate::merkle::{self, Frontier};
use crate::objects::{self, decode_group, encode_group};
use crate::proof_index::{IndexedDigest, ProofIndex};
use crate::time::{compact, date_path, iso, now_ms};

pub const DIGESTS_PREFIX: &str = "digests";
pub const DIGEST_FORMAT_VERSION: u32 = 1;
pub const HASH_ALGORITHM: &str = "SHA-256";
/// Largest digest we read (a period listing hundreds of thousands of segments fits).
pub const DIGEST_BYTES_MAX: u64 = 256 << 20;
pub const SIG_BYTES_MAX: u64 = 64 << 10;
/// Default digest period: one hour, as CloudTrail.
pub const DIGEST_PERIOD_MS_DEFAULT: i64 = 3_600_000;

/// The object key of `group`'s digest for the period ending at `end_ms`.
pub fn digest_key(group: &str, end_ms: i64) -> String {
    let g = encode_group(group);
    format!(
        "{DIGESTS_PREFIX}/{g}/{}/{g}_Digest_{}.json",
        date_path(end_ms),
        compact(end_ms)
    )
}

/// The group a digest key belongs to, from its path (`None` for anything else).
pub fn group_of_digest_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix(DIGESTS_PREFIX)?.strip_prefix('/')?;
    let (g, _) = rest.split_once('/')?;
    key.ends_with(".json").then(|| decode_group(g))
}

pub fn signature_key(digest_key: &str) -> String {
    format!("{digest_key}.sig")
}

/// CloudTrail's string to sign, with our object key.
pub fn string_to_sign(
    end_time: &str,
    key: &str,
    digest_sha256: &Hash,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{key}\n{}\n{}",
        hex::encode(digest_sha256),
        previous_signature.unwrap_or("null")
    )
}

/// One digest file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub digest_format_version: u32,
    pub log_group: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_signing_time: String,
    pub digest_object: String,
    pub digest_sequence: u64,
    pub digest_tree_index: u64,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: SignatureAlgorithm,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub segments: Vec<DigestSegment>,
    pub deletions: Vec<DigestDeletion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestSegment {
    pub object: String,
    /// Hex SHA-256 of the stored bytes.
    pub hash_value: String,
    pub hash_algorithm: String,
    /// Hex RFC 6962 root over the events' leaf encodings.
    pub merkle_root: String,
    pub event_count: u64,
    pub oldest_event_time: String,
    pub newest_event_time: String,
    pub bytes: u64,
}

/// A segment removed by retention: recorded so its absence is explained, not suspicious.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestDeletion {
    pub object: String,
    pub hash_value: String,
    /// `retention`.
    pub reason: String,
    pub expired_at: String,
}

/// The signature sidecar `<key>.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureFile {
    /// Hex signature bytes.
    pub signature: String,
    pub signature_algorithm: SignatureAlgorithm,
    pub fingerprint: String,
}

/// What the store learns about a digest it had written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRef {
    pub group: String,
    pub key: String,
    pub sha256: Hash,
    /// Hex signature.
    pub signature: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub sequence: u64,
    pub tree_index: u64,
    pub segment_count: usize,
}

/// One group's period in a [`DigestWriter::write_periods`] batch.
#[derive(Debug, Clone, Copy)]
pub struct PeriodDigest<'a> {
    pub group: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Segments whose `sealed_at_ms` falls in `[start_ms, end_ms)`.
    pub seals: &'a [SegmentSeal],
    /// Segments expired by retention in the period.
    pub deletions: &'a [DigestDeletion],
}

/// Writes digests and checkpoints; one per vault (it owns the chain heads and the tree).
pub struct DigestWriter {
    store: Arc<dyn ObjectStore>,
    keyring: Keyring,
    heads: HashMap<String, DigestRef>,
    tree: Frontier,
    last_checkpoint: Option<Checkpoint>,
    /// Kept in step with every checkpoint when attached (see [`Self::attach_proof_index`]).
    index: Option<ProofIndex>,
    /// Digests written since the last checkpoint, for the index.
    unindexed: Vec<IndexedDigest>,
    index_error: Option<IntegrityError>,
}

impl std::fmt::Debug for DigestWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestWriter")
            .field("groups", &self.heads.len())
            .field("tree_size", &self.tree.size())
            .finish()
    }
}

impl DigestWriter {
    /// Open over `store` (the data root), recovering each group's chain head from its newest
    /// digest and the digest tree from `checkpoints/state.json`. A digest written just before
    /// a crash, whose checkpoint was not, is appended to the tree here.
    pub async fn open(store: Arc<dyn ObjectStore>, keyring: Keyring) -> Result<Self> {
        let mut newest: HashMap<String, String> = HashMap::new();
        for m in objects::list(&store, DIGESTS_PREFIX).await? {
            let key = m.location.to_string();
            let Some(enc) = group_of_digest_key(&key) else {
                continue;
            };
            let slot = newest.entry(enc).or_default();
            if key > *slot {
                *slot = key;
            }
        }
        let mut heads = HashMap::new();
        for key in newest.into_values() {
            let head = read_head(&store, &key).await?;
            heads.insert(head.group.clone(), head);
        }
        let mut tree = checkpoint::load_frontier(&store).await?;
        let mut pending: Vec<&DigestRef> = heads
            .values()
            .filter(|h| h.tree_index >= tree.size())
            .collect();
        pending.sort_by_key(|h| h.tree_index);
        for h in pending {
            if h.tree_index != tree.size() {
                return Err(IntegrityError::corrupt(
                    &h.key,
                    format!(
                        "digest tree index {} but the tree has {} leaves",
                        h.tree_index,
                        tree.size()
                    ),
                ));
            }
            tree.push(merkle::leaf_hash(&h.sha256));
        }
        let mut writer = DigestWriter {
            store,
            keyring,
            heads,
            tree,
            last_checkpoint: None,
            index: None,
            unindexed: Vec::new(),
            index_error: None,
        };
        if writer.tree.size() > 0 {
            let latest = checkpoint::export_checkpoint(&writer.store).await?;
            let current = latest
                .as_deref()
                .map(Checkpoint::parse)
                .transpose()?
                .filter(|c| c.size == writer.tree.size() && c.root == writer.tree.root());
            match current {
                Some(c) => writer.last_checkpoint = Some(c),
                None => writer.checkpoint_now().await?,
            }
        }
        Ok(writer)
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Keep `index` in step with the chain from now on, rebuilding it from the digests first
    /// if it does not match the tree (new, stale after a crash, or from another vault).
    pub async fn attach_proof_index(&mut self, mut index: ProofIndex) -> Result<()> {
        let size = self.tree.size();
        let cp_size = self.last_checkpoint.as_ref().map_or(size, |c| c.size);
        let current = index.is_current_format()?
            && index.size()? == size
            && index.checkpoint_size()?.unwrap_or(0) == cp_size
            && (size == 0 || index.root_at(size)? == self.tree.root());
        if !current {
            index.rebuild(&self.store, cp_size).await?;
            if index.size()? != size || index.root_at(size)? != self.tree.root() {
                return Err(IntegrityError::corrupt(
                    crate::proof_index::PROOF_INDEX_FILE,
                    "the digests do not form the checkpointed tree: validate the vault",
                ));
            }
        }
        self.index = Some(index);
        Ok(())
    }

    /// Why the proof index was detached, if it failed to update (`prove` then falls back
    /// to reading every digest until the index is rebuilt at the next start).
    pub fn take_index_error(&mut self) -> Option<IntegrityError> {
        self.index_error.take()
    }

    /// Rotate the signing key (the next digest is signed with the new one).
    pub fn rotate_key(&mut self, algorithm: SignatureAlgorithm) -> Result<()> {
        self.keyring.rotate(algorithm).map(|_| ())
    }

    /// The newest digest of `group`, if any.
    pub fn head(&self, group: &str) -> Option<&DigestRef> {
        self.heads.get(group)
    }

    /// Every group with a chain.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.heads.keys().map(String::as_str)
    }

    pub fn tree_size(&self) -> u64 {
        self.tree.size()
    }

    pub fn last_checkpoint(&self) -> Option<&Checkpoint> {
        self.last_checkpoint.as_ref()
    }

    /// Write `group`'s digest for `[start_ms, end_ms)` listing `seals` (the segments whose
    /// `sealed_at_ms` falls in the period; empty for a quiet period), then a checkpoint.
    pub async fn write_period(
        &mut self,
        group: &str,
        start_ms: i64,
        end_ms: i64,
        seals: &[SegmentSeal],
    ) -> Result<DigestRef> {
        self.write_period_with_deletions(group, start_ms, end_ms, seals, &[])
            .await
    }

    /// As [`Self::write_period`], also recording segments expired by retention.
    pub async fn write_period_with_deletions(
        &mut self,
        group: &str,
        start_ms: i64,
        end_ms: i64,
        seals: &[SegmentSeal],
        deletions: &[DigestDeletion],
    ) -> Result<DigestRef> {
        let r = self
            .write_one(group, start_ms, end_ms, seals, deletions)
            .await?;
        self.checkpoint_now().await?;
        Ok(r)
    }

    /// Write the digests of one period for many groups, then one checkpoint (instead of one
    /// per digest). Each group at most once per batch: recovery after a crash mid-batch
    /// relies on every unsealed tree leaf being a chain head.
    pub async fn write_periods(&mut self, periods: &[PeriodDigest<'_>]) -> Result<Vec<DigestRef>> {
        let mut seen = std::collections::HashSet::new();
        if let Some(p) = periods.iter().find(|p| !seen.insert(p.group)) {
            return Err(IntegrityError::Invalid(format!(
                "group {} appears twice in one batch",
                p.group
            )));
        }
        let mut out = Vec::with_capacity(periods.len());
        for p in periods {
            out.push(
                self.write_one(p.group, p.start_ms, p.end_ms, p.seals, p.deletions)
                    .await?,
            );
        }
        if !out.is_empty() {
            self.checkpoint_now().await?;
        }
        Ok(out)
    }

    async fn write_one(
        &mut self,
        group: &str,
        start_ms: i64,
        end_ms: i64,
        seals: &[SegmentSeal],
        deletions: &[DigestDeletion],
    ) -> Result<DigestRef> {
        if start_ms >= end_ms {
            return Err(IntegrityError::Invalid(format!(
                "empty period {start_ms}..{end_ms}"
            )));
        }
        if let Some(s) = seals.iter().find(|s| s.group != group) {
            return Err(IntegrityError::Invalid(format!(
                "segment {} belongs to group {}",
                s.key, s.group
            )));
        }
        let head = self.heads.get(group);
        if let Some(h) = head {
            if start_ms < h.end_ms {
                return Err(IntegrityError::Invalid(format!(
                    "period starting {} overlaps the previous digest ending {}",
                    iso(start_ms),
                    iso(h.end_ms)
                )));
            }
        }
        let key = digest_key(group, end_ms);
        if head.is_some_and(|h| h.key == key) {
            return Err(IntegrityError::Invalid(format!(
                "digest key {key} is taken: periods must end in different seconds"
            )));
        }
        let active = self.keyring.active_key().clone();
        let digest = Digest {
            digest_format_version: DIGEST_FORMAT_VERSION,
            log_group: group.to_string(),
            digest_start_time: iso(start_ms),
            digest_end_time: iso(end_ms),
            digest_signing_time: iso(now_ms().max(active.not_before_ms)),
            digest_object: key.clone(),
            digest_sequence: head.map_or(0, |h| h.sequence + 1),
            digest_tree_index: self.tree.size(),
            digest_public_key_fingerprint: active.fingerprint.clone(),
            digest_signature_algorithm: active.algorithm,
            newest_event_time: seals.iter().map(|s| s.newest_ms).max().map(iso),
            oldest_event_time: seals.iter().map(|s| s.oldest_ms).min().map(iso),
            previous_digest_object: head.map(|h| h.key.clone()),
            previous_digest_hash_value: head.map(|h| hex::encode(h.sha256)),
            previous_digest_hash_algorithm: head.map(|_| HASH_ALGORITHM.to_string()),
            previous_digest_signature: head.map(|h| h.signature.clone()),
            segments: seals
                .iter()
                .map(|s| DigestSegment {
                    object: s.key.clone(),
                    hash_value: hex::encode(s.sha256),
                    hash_algorithm: HASH_ALGORITHM.to_string(),
                    merkle_root: hex::encode(s.merkle_root),
                    event_count: s.event_count,
                    oldest_event_time: iso(s.oldest_ms),
                    newest_event_time: iso(s.newest_ms),
                    bytes: s.bytes,
                })
                .collect(),
            deletions: deletions.to_vec(),
        };
        let bytes = serde_json::to_vec_pretty(&digest)
            .map_err(|e| IntegrityError::Invalid(e.to_string()))?;
        let hash = sha256(&bytes);
        let sts = string_to_sign(
            &digest.digest_end_time,
            &key,
            &hash,
            digest.previous_digest_signature.as_deref(),
        );
        let sig = self.keyring.sign(sts.as_bytes())?;
        let sig_file = SignatureFile {
            signature: hex::encode(&sig.bytes),
            signature_algorithm: sig.algorithm,
            fingerprint: sig.fingerprint.clone(),
        };
        let sig_json =
            serde_json::to_vec(&sig_file).map_err(|e| IntegrityError::Invalid(e.to_string()))?;
        // The sidecar first: a crash in between leaves an orphan sidecar (rewritten by the
        // retry), never a digest without its signature.
        self.store
            .put(
                &objects::path(&signature_key(&key))?,
                PutPayload::from(sig_json),
            )
            .await?;
        self.store
            .put_opts(
                &objects::path(&key)?,
                PutPayload::from(bytes),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await?;
        let r = DigestRef {
            group: group.to_string(),
            key,
            sha256: hash,
            signature: sig_file.signature,
            start_ms,
            end_ms,
            sequence: digest.digest_sequence,
            tree_index: digest.digest_tree_index,
            segment_count: seals.len(),
        };
        self.tree.push(merkle::leaf_hash(&hash));
        self.heads.insert(group.to_string(), r.clone());
        if self.index.is_some() {
            self.unindexed.push(IndexedDigest {
                tree_index: r.tree_index,
                key: r.key.clone(),
                sha256: hash,
                segments: seals.iter().map(|s| s.key.clone()).collect(),
            });
        }
        Ok(r)
    }

    async fn checkpoint_now(&mut self) -> Result<()> {
        let time = now_ms().max(self.keyring.active_key().not_before_ms);
        let cp = Checkpoint::sign(&self.keyring, self.tree.size(), self.tree.root(), time)?;
        checkpoint::save(&self.store, &self.tree, &cp).await?;
        let batch = std::mem::take(&mut self.unindexed);
        if let Some(index) = &mut self.index {
            // The index is a cache: a failure detaches it rather than failing the chain.
            if let Err(e) = index.append(&batch, cp.size) {
                self.index = None;
                self.index_error = Some(e);
            }
        }
        self.last_checkpoint = Some(cp);
        Ok(())
    }
}

/// Parse digest bytes (strict: unknown versions are errors).
pub fn parse_digest(key: &str, bytes: &[u8]) -> Result<Digest> {
    let d: Digest = serde_json::from_slice(bytes)
        .map_err(|e| IntegrityError::corrupt(key, format!("invalid format: {e}")))?;
    if d.digest_format_version != DIGEST_FORMAT_VERSION {
        return Err(IntegrityError::corrupt(
            key,
            format!(
                "unsupported digest format version {}",
                d.digest_format_version
            ),
        ));
    }
    Ok(d)
}

async fn read_head(store: &Arc<dyn ObjectStore>, key: &str) -> Result<DigestRef> {
    let bytes = objects::get_limited(store, key, DIGEST_BYTES_MAX)
        .await?
        .ok_or_else(|| IntegrityError::corrupt(key, "listed but not found"))?;
    let d = parse_digest(key, &bytes)?;
    if d.digest_object != key {
        return Err(IntegrityError::corrupt(
            key,
            format!("digest names itself {}", d.digest_object),
        ));
    }
    let sig_bytes = objects::get_limited(store, &signature_key(key), SIG_BYTES_MAX)
        .await?
        .ok_or_else(|| IntegrityError::corrupt(key, "signature file not found"))?;
    let sig: SignatureFile = serde_json::from_slice(&sig_bytes)
        .map_err(|e| IntegrityError::corrupt(signature_key(key), format!("invalid format: {e}")))?;
    let time =
        |s: &str| crate::time::parse_iso(s).ok_or_else(|| IntegrityError::corrupt(key, "bad time"));
    Ok(DigestRef {
        group: d.log_group.clone(),
        key: key.to_string(),
        sha256: sha256(&bytes),
        signature: sig.signature,
        start_ms: time(&d.digest_start_time)?,
        end_ms: time(&d.digest_end_time)?,
        sequence: d.digest_sequence,
        tree_index: d.digest_tree_index,
        segment_count: d.segments.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    #[test]
    fn keys_follow_the_documented_layout() {
        let k = digest_key("aws/cloudtrail", 1_439_820_091_000);
        assert_eq!(
            k,
            "digests/aws%2Fcloudtrail/2015/08/17/aws%2Fcloudtrail_Digest_20150817T140131Z.json"
        );
        assert_eq!(group_of_digest_key(&k).as_deref(), Some("aws/cloudtrail"));
        assert_eq!(group_of_digest_key(&signature_key(&k)), None);
        assert_eq!(
            string_to_sign("T", "k", &[0; 32], None),
            format!("T\nk\n{}\nnull", "00".repeat(32))
        );
    }

    #[tokio::test]
    async fn chain_links_and_recovers_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(&data).unwrap());
        let ring =
            Keyring::open_or_create(&dir.path().join("keys"), SignatureAlgorithm::Ed25519).unwrap();
        let mut w = DigestWriter::open(store.clone(), ring).await.unwrap();
        let a = w.write_period("g", 0, 1000, &[]).await.unwrap();
        let b = w.write_period("h", 0, 1000, &[]).await.unwrap();
        assert_eq!((a.sequence, a.tree_index, b.tree_index), (0, 0, 1));
        assert!(
            w.write_period("g", 500, 2000, &[]).await.is_err(),
            "overlap is refused"
        );
        drop(w);
        let ring = Keyring::open(&dir.path().join("keys")).unwrap();
        let mut w = DigestWriter::open(store.clone(), ring).await.unwrap();
        assert_eq!(w.tree_size(), 2);
        assert_eq!(w.head("g"), Some(&a));
        let c = w.write_period("g", 1000, 2000, &[]).await.unwrap();
        assert_eq!((c.sequence, c.tree_index), (1, 2));
        let bytes = objects::get_limited(&store, &c.key, DIGEST_BYTES_MAX)
            .await
            .unwrap()
            .unwrap();
        let d = parse_digest(&c.key, &bytes).unwrap();
        assert_eq!(d.previous_digest_object.as_deref(), Some(a.key.as_str()));
        assert_eq!(d.previous_digest_hash_value, Some(hex::encode(a.sha256)));
        assert_eq!(
            d.previous_digest_signature.as_deref(),
            Some(a.signature.as_str())
        );
        let cp = Checkpoint::parse(
            &checkpoint::export_checkpoint(&store)
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(cp.size, 3);
        cp.verify(&w.keyring().public_keys()).unwrap();
        // A batch: two digests, one checkpoint.
        let p = |group| PeriodDigest {
            group,
            start_ms: 2000,
            end_ms: 3000,
            seals: &[],
            deletions: &[],
        };
        assert!(w.write_periods(&[p("g"), p("g")]).await.is_err());
        let rs = w.write_periods(&[p("g"), p("h")]).await.unwrap();
        assert_eq!(
            rs.iter().map(|r| r.tree_index).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert!(
            objects::get_limited(&store, &checkpoint::checkpoint_key(4), 1 << 16)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(w.last_checkpoint().unwrap().size, 5);
        // Reopened, the writer picks up where the batch left.
        drop(w);
        let w = DigestWriter::open(
            store.clone(),
            Keyring::open(&dir.path().join("keys")).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(w.tree_size(), 5);
        assert_eq!(w.head("h").unwrap().sequence, 1);
    }
}
