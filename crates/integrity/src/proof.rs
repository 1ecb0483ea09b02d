//! Per-event proofs and checkpoint consistency proofs, as self-contained JSON documents.
//!
//! An event proof chains four checks an auditor can redo with nothing but SHA-256 and the
//! vault's public keys (`docs/verify_proof.py` does, in ~100 lines of Python):
//!
//! 1. the event's leaf encoding ([`crate::leaf`]) is at `leafIndex` of the segment's Merkle
//!    tree with root `merkleRoot` (RFC 9162 inclusion, path `segment.inclusionPath`);
//! 2. the digest (its exact bytes, base64 in `digest.content`) lists that segment with that
//!    root and event count;
//! 3. the digest's signature verifies over CloudTrail's string to sign with a trusted key;
//! 4. `SHA-256(digest bytes)` is leaf `digestTreeIndex` of the digest tree whose signed
//!    checkpoint is `checkpoint.text` (inclusion path `checkpoint.inclusionPath`).
//!
//! A consistency proof carries two checkpoints and the RFC 9162 consistency path between
//! them.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use trailvault_model::{seq_from_event_id, StoredEvent};
use trailvault_segment::{Projection, SegmentReader};

use crate::checkpoint::{self, Checkpoint};
use crate::digest::{
    self, parse_digest, signature_key, string_to_sign, SignatureFile, DIGESTS_PREFIX,
};
use crate::error::{IntegrityError, Result};
use crate::hash::{parse_hash_hex, sha256, Hash};
use crate::keys::PublicKeySet;
use crate::leaf::{
    event_leaf_hash, parse_subtree_roots, path_via_subtrees, segment_tree, subtree_rows,
    SUBTREE_LEAVES, SUBTREE_ROOTS_KEY,
};
use crate::merkle::{self, MerkleTree};
use crate::objects;
use crate::proof_index::{seq_range, ProofIndex};
use crate::time::parse_iso;
use crate::validate::{SEGMENTS_PREFIX, SEGMENT_BYTES_MAX};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofEvent {
    pub event_id: String,
    pub log_group: String,
    pub log_stream: String,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
    pub leaf_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofSegment {
    pub object: String,
    pub merkle_root: String,
    pub event_count: u64,
    pub leaf_index: u64,
    pub inclusion_path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofDigest {
    pub object: String,
    /// Base64 of the digest's exact bytes.
    pub content: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofCheckpoint {
    pub text: String,
    pub digest_tree_index: u64,
    pub inclusion_path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProof {
    pub proof_format_version: u32,
    pub event: ProofEvent,
    pub segment: ProofSegment,
    pub digest: ProofDigest,
    pub checkpoint: ProofCheckpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub proof_format_version: u32,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
    pub consistency_path: Vec<String>,
}

/// Either proof, tagged by `proofType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "proofType", rename_all = "camelCase")]
pub enum Proof {
    Event(Box<EventProof>),
    Consistency(ConsistencyProof),
}

fn hexes(v: &[Hash]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

fn unhex(v: &[String]) -> Option<Vec<Hash>> {
    v.iter().map(|h| parse_hash_hex(h)).collect()
}

/// Every digest in the vault: key → bytes.
async fn all_digests(store: &Arc<dyn ObjectStore>) -> Result<BTreeMap<String, Bytes>> {
    let mut out = BTreeMap::new();
    for m in objects::list(store, DIGESTS_PREFIX).await? {
        let key = m.location.to_string();
        if digest::group_of_digest_key(&key).is_none() {
            continue;
        }
        if let Some(b) = objects::get_limited(store, &key, digest::DIGEST_BYTES_MAX).await? {
            out.insert(key, b);
        }
    }
    Ok(out)
}

/// The digest tree rebuilt from the digests present (by `digestTreeIndex`).
fn digest_tree(digests: &BTreeMap<String, Bytes>) -> Result<MerkleTree> {
    let mut leaves: BTreeMap<u64, Hash> = BTreeMap::new();
    for (k, b) in digests {
        let d = parse_digest(k, b)?;
        leaves.insert(d.digest_tree_index, sha256(b));
    }
    if leaves.keys().enumerate().any(|(i, k)| i as u64 != *k) {
        return Err(IntegrityError::corrupt(
            "digests",
            "digest tree indices are not contiguous: validate the vault",
        ));
    }
    Ok(MerkleTree::from_leaf_hashes(
        leaves.values().map(|h| merkle::leaf_hash(h)).collect(),
    ))
}

/// The segment holding the event, and the rows of it that were decoded.
struct Found {
    key: String,
    reader: SegmentReader,
    /// The event's row: its leaf index.
    row: usize,
    /// Decoded events: the event's subtree of 32 rows when the footer has subtree roots,
    /// else the whole segment; `first_row` is the row of `events[0]`.
    events: Vec<StoredEvent>,
    first_row: usize,
    /// The footer's subtree roots, if the segment carries them (and they fit its size).
    subtree_roots: Option<Vec<Hash>>,
    /// The Merkle root the digest lists for the segment, once the digest is read.
    listed_root: Option<Hash>,
}

impl Found {
    fn event(&self) -> &StoredEvent {
        &self.events[self.row - self.first_row]
    }
}

fn corrupt_segment(key: &str) -> impl Fn(trailvault_segment::SegmentError) -> IntegrityError + '_ {
    move |e| IntegrityError::corrupt(key, e.to_string())
}

/// The first of `candidates` (segment keys) that holds event `seq`. Only the `seq` column
/// and the event's subtree are decoded when the segment carries subtree roots.
async fn find_event(
    store: &Arc<dyn ObjectStore>,
    seq: u64,
    candidates: impl IntoIterator<Item = String>,
) -> Result<Option<Found>> {
    for key in candidates {
        let Some(bytes) = objects::get_limited(store, &key, SEGMENT_BYTES_MAX).await? else {
            continue;
        };
        let reader = SegmentReader::open(bytes, true).map_err(corrupt_segment(&key))?;
        let Some(row) = reader.row_of_seq(seq).map_err(corrupt_segment(&key))? else {
            continue;
        };
        let total = reader.num_rows();
        let subtree_roots = reader
            .metadata_value(SUBTREE_ROOTS_KEY)
            .as_deref()
            .and_then(parse_subtree_roots)
            .filter(|r| r.len() == total.div_ceil(SUBTREE_LEAVES));
        let rows = if subtree_roots.is_some() {
            subtree_rows(row, total)
        } else {
            0..total
        };
        let events = reader
            .events(Projection::Core, Some(rows.clone()))
            .map_err(corrupt_segment(&key))?;
        if events.len() != rows.len() || events.get(row - rows.start).map(|e| e.seq) != Some(seq) {
            return Err(IntegrityError::corrupt(
                &key,
                "rows do not read back as indexed",
            ));
        }
        return Ok(Some(Found {
            key,
            reader,
            row,
            events,
            first_row: rows.start,
            subtree_roots,
            listed_root: None,
        }));
    }
    Ok(None)
}

async fn read_signature(store: &Arc<dyn ObjectStore>, dkey: &str) -> Result<SignatureFile> {
    let sig_bytes = objects::get_limited(store, &signature_key(dkey), digest::SIG_BYTES_MAX)
        .await?
        .ok_or_else(|| IntegrityError::corrupt(dkey, "signature file not found"))?;
    serde_json::from_slice(&sig_bytes).map_err(|e| IntegrityError::corrupt(dkey, e.to_string()))
}

/// Build the proof for `event_id`. With a current `index` (the vault's
/// [`crate::proof_index::PROOF_INDEX_FILE`]) it reads one segment, one digest, its signature
/// and one checkpoint; without one (an auditor's copy) it scans the segment listing and
/// reads every digest.
pub async fn prove_event(
    store: &Arc<dyn ObjectStore>,
    event_id: &str,
    index: Option<&ProofIndex>,
) -> Result<EventProof> {
    let seq = seq_from_event_id(event_id)
        .ok_or_else(|| IntegrityError::Invalid(format!("{event_id:?} is not an event id")))?;
    // An index that cannot answer (empty, or not yet created) is no index.
    let answering = index.and_then(|ix| {
        let cp_size = ix.checkpoint_size().ok().flatten()?;
        (cp_size > 0 && cp_size <= ix.size().ok()?).then_some((ix, cp_size))
    });
    match answering {
        Some((ix, cp_size)) => prove_indexed(store, event_id, seq, ix, cp_size).await,
        None => prove_by_scan(store, event_id, seq).await,
    }
}

async fn prove_indexed(
    store: &Arc<dyn ObjectStore>,
    event_id: &str,
    seq: u64,
    ix: &ProofIndex,
    cp_size: u64,
) -> Result<EventProof> {
    let candidates = ix.segments_for_seq(seq)?;
    let Some(&(_, first_tree_index)) = candidates.first() else {
        return Err(IntegrityError::Invalid(format!(
            "event {event_id} is in no segment a digest lists (yet)"
        )));
    };
    let cp_key = checkpoint::checkpoint_key(cp_size);
    // Everything the index names is read at once: the segment (almost always the first
    // candidate), its digest, the signature and the checkpoint.
    let dkey_of = |ti: u64| -> Result<(String, Hash)> {
        ix.digest_at(ti)?.ok_or_else(|| {
            IntegrityError::corrupt(crate::proof_index::PROOF_INDEX_FILE, "digest missing")
        })
    };
    let (mut dkey, mut dhash) = dkey_of(first_tree_index)?;
    let (found, mut dbytes, mut sig, cp_bytes) = futures::try_join!(
        find_event(store, seq, candidates.iter().map(|(k, _)| k.clone())),
        objects::get_limited(store, &dkey, digest::DIGEST_BYTES_MAX),
        read_signature(store, &dkey),
        objects::get_limited(store, &cp_key, checkpoint::CHECKPOINT_BYTES_MAX),
    )?;
    let mut found = found.ok_or_else(|| {
        IntegrityError::Invalid(format!(
            "event {event_id} is in no segment a digest lists (yet)"
        ))
    })?;
    let tree_index = candidates
        .iter()
        .find(|(k, _)| *k == found.key)
        .map_or(first_tree_index, |(_, t)| *t);
    if tree_index != first_tree_index {
        (dkey, dhash) = dkey_of(tree_index)?;
        dbytes = objects::get_limited(store, &dkey, digest::DIGEST_BYTES_MAX).await?;
        sig = read_signature(store, &dkey).await?;
    }
    let dbytes = dbytes.ok_or_else(|| IntegrityError::corrupt(&dkey, "not found"))?;
    if sha256(&dbytes) != dhash {
        return Err(IntegrityError::corrupt(
            &dkey,
            "differs from the digest that was indexed: validate the vault",
        ));
    }
    let dg = parse_digest(&dkey, &dbytes)?;
    let Some(listed) = dg.segments.iter().find(|s| s.object == found.key) else {
        return Err(IntegrityError::corrupt(
            &dkey,
            format!("does not list {} as the index says", found.key),
        ));
    };
    found.listed_root = parse_hash_hex(&listed.merkle_root);
    let cp_bytes = cp_bytes.ok_or_else(|| IntegrityError::corrupt(&cp_key, "not found"))?;
    let cp_text = String::from_utf8(cp_bytes.to_vec())
        .map_err(|_| IntegrityError::corrupt(&cp_key, "not UTF-8"))?;
    let cp = Checkpoint::parse(&cp_text)?;
    if dg.digest_tree_index != tree_index || tree_index >= cp.size {
        return Err(IntegrityError::Invalid(
            "digest is newer than the newest checkpoint".into(),
        ));
    }
    let dpath = ix.inclusion_proof(tree_index, cp.size)?;
    // The path must lead from this digest to the checkpoint's signed root: a cheaper check
    // than recomputing the root from the index, and it covers what the proof relies on.
    if cp.size != cp_size
        || !merkle::verify_inclusion(
            &merkle::leaf_hash(&dhash),
            tree_index,
            cp.size,
            &dpath,
            &cp.root,
        )
    {
        return Err(IntegrityError::corrupt(
            &cp_key,
            "does not match the indexed digest tree: validate the vault",
        ));
    }
    assemble(found, dkey, &dbytes, sig, cp_text, tree_index, &dpath)
}

async fn prove_by_scan(
    store: &Arc<dyn ObjectStore>,
    event_id: &str,
    seq: u64,
) -> Result<EventProof> {
    let candidates: Vec<String> = objects::list(store, SEGMENTS_PREFIX)
        .await?
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|k| seq_range(k).is_none_or(|(a, b)| a <= seq && seq <= b))
        .collect();
    let mut found = find_event(store, seq, candidates).await?.ok_or_else(|| {
        IntegrityError::Invalid(format!("event {event_id} is in no sealed segment"))
    })?;
    let digests = all_digests(store).await?;
    let mut listing = None;
    for (k, b) in &digests {
        let d = parse_digest(k, b)?;
        if d.segments.iter().any(|s| s.object == found.key) {
            listing = Some((k.clone(), b.clone(), d));
            break;
        }
    }
    let (dkey, dbytes, dg) = listing.ok_or_else(|| {
        IntegrityError::Invalid(format!("segment {} is not in a digest yet", found.key))
    })?;
    let sig = read_signature(store, &dkey).await?;
    let cp_text = checkpoint::export_checkpoint(store)
        .await?
        .ok_or_else(|| IntegrityError::Invalid("no checkpoint yet".into()))?;
    let cp = Checkpoint::parse(&cp_text)?;
    let dtree = digest_tree(&digests)?;
    let cp_tree = MerkleTree::from_leaf_hashes(
        dtree.leaf_hashes()[..(cp.size.min(dtree.size())) as usize].to_vec(),
    );
    if cp_tree.size() != cp.size || cp_tree.root() != cp.root {
        return Err(IntegrityError::corrupt(
            checkpoint::checkpoint_key(cp.size),
            "the digest tree does not match the newest checkpoint",
        ));
    }
    let dpath = cp_tree
        .inclusion_proof(dg.digest_tree_index)
        .ok_or_else(|| {
            IntegrityError::Invalid("digest is newer than the newest checkpoint".into())
        })?;
    found.listed_root = dg
        .segments
        .iter()
        .find(|s| s.object == found.key)
        .and_then(|s| parse_hash_hex(&s.merkle_root));
    assemble(
        found,
        dkey,
        &dbytes,
        sig,
        cp_text,
        dg.digest_tree_index,
        &dpath,
    )
}

/// The segment's root, event count and the event's inclusion path: from the footer's
/// subtree roots when they lead to the root the digest lists (32 leaves hashed), else from
/// the whole tree.
fn segment_path(found: &Found) -> Result<(Hash, u64, Vec<Hash>)> {
    let total = found.reader.num_rows();
    if let Some((root, path)) = found
        .subtree_roots
        .as_deref()
        .and_then(|roots| path_via_subtrees(&found.events, found.row, total, roots))
        .filter(|(root, _)| Some(*root) == found.listed_root)
    {
        return Ok((root, total as u64, path));
    }
    let whole;
    let events = if found.first_row == 0 && found.events.len() == total {
        &found.events
    } else {
        whole = found
            .reader
            .events(Projection::Core, None)
            .map_err(corrupt_segment(&found.key))?;
        &whole
    };
    let tree = segment_tree(events);
    let path = tree.inclusion_proof(found.row as u64).unwrap_or_default();
    Ok((tree.root(), tree.size(), path))
}

fn assemble(
    found: Found,
    dkey: String,
    dbytes: &[u8],
    sig: SignatureFile,
    cp_text: String,
    tree_index: u64,
    dpath: &[Hash],
) -> Result<EventProof> {
    let (root, event_count, path) = segment_path(&found)?;
    let e = found.event();
    Ok(EventProof {
        proof_format_version: 1,
        event: ProofEvent {
            event_id: e.event_id(),
            log_group: e.group.clone(),
            log_stream: e.stream.clone(),
            timestamp: e.timestamp_ms,
            ingestion_time: e.ingestion_time_ms,
            message: e.message.clone(),
            leaf_hash: hex::encode(event_leaf_hash(e)),
        },
        segment: ProofSegment {
            object: found.key,
            merkle_root: hex::encode(root),
            event_count,
            leaf_index: found.row as u64,
            inclusion_path: hexes(&path),
        },
        digest: ProofDigest {
            object: dkey,
            content: base64::engine::general_purpose::STANDARD.encode(dbytes),
            signature: sig.signature,
        },
        checkpoint: ProofCheckpoint {
            text: cp_text,
            digest_tree_index: tree_index,
            inclusion_path: hexes(dpath),
        },
    })
}

/// Prove the checkpoint `new` extends `old`, from the digests in the vault.
pub async fn prove_consistency(
    store: &Arc<dyn ObjectStore>,
    old: &str,
    new: &str,
) -> Result<ConsistencyProof> {
    let (o, n) = (Checkpoint::parse(old)?, Checkpoint::parse(new)?);
    let tree = digest_tree(&all_digests(store).await?)?;
    if tree.root_at(n.size) != Some(n.root) {
        return Err(IntegrityError::Invalid(
            "the vault's digest tree does not match the new checkpoint".into(),
        ));
    }
    let path = tree.consistency_proof(o.size, n.size).ok_or_else(|| {
        IntegrityError::Invalid("the old checkpoint is larger than the new one".into())
    })?;
    Ok(ConsistencyProof {
        proof_format_version: 1,
        old_checkpoint: old.to_string(),
        new_checkpoint: new.to_string(),
        consistency_path: hexes(&path),
    })
}

/// Check a proof against trusted keys; `Ok(summary)` or `Err(what failed)`.
pub fn verify_proof(proof: &Proof, keys: &PublicKeySet) -> std::result::Result<String, String> {
    match proof {
        Proof::Event(p) => verify_event_proof(p, keys),
        Proof::Consistency(p) => {
            let o =
                Checkpoint::parse(&p.old_checkpoint).map_err(|e| format!("old checkpoint: {e}"))?;
            let n =
                Checkpoint::parse(&p.new_checkpoint).map_err(|e| format!("new checkpoint: {e}"))?;
            o.verify(keys).map_err(|e| format!("old checkpoint: {e}"))?;
            n.verify(keys).map_err(|e| format!("new checkpoint: {e}"))?;
            let path = unhex(&p.consistency_path).ok_or("consistency path is not hex hashes")?;
            if !merkle::verify_consistency(o.size, n.size, &o.root, &n.root, &path) {
                return Err(
                    "consistency proof does not verify: the new tree does not extend the old"
                        .into(),
                );
            }
            Ok(format!(
                "checkpoint of {} digests extends checkpoint of {} digests",
                n.size, o.size
            ))
        }
    }
}

fn verify_event_proof(p: &EventProof, keys: &PublicKeySet) -> std::result::Result<String, String> {
    let seq = seq_from_event_id(&p.event.event_id).ok_or("bad event id")?;
    let event = StoredEvent {
        seq,
        group: p.event.log_group.clone(),
        stream: p.event.log_stream.clone(),
        timestamp_ms: p.event.timestamp,
        ingestion_time_ms: p.event.ingestion_time,
        message: p.event.message.clone(),
        normalized: None,
    };
    let leaf = event_leaf_hash(&event);
    if hex::encode(leaf) != p.event.leaf_hash {
        return Err("the event's leaf hash does not match its fields".into());
    }
    let seg_root = parse_hash_hex(&p.segment.merkle_root).ok_or("bad merkleRoot")?;
    let seg_path = unhex(&p.segment.inclusion_path).ok_or("bad segment inclusion path")?;
    if !merkle::verify_inclusion(
        &leaf,
        p.segment.leaf_index,
        p.segment.event_count,
        &seg_path,
        &seg_root,
    ) {
        return Err("the event is not in the segment's Merkle tree".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&p.digest.content)
        .map_err(|_| "digest content is not base64")?;
    let dg = parse_digest(&p.digest.object, &bytes).map_err(|e| e.to_string())?;
    if dg.digest_object != p.digest.object {
        return Err("the digest names another location".into());
    }
    let listed = dg.segments.iter().any(|s| {
        s.object == p.segment.object
            && s.merkle_root == p.segment.merkle_root
            && s.event_count == p.segment.event_count
    });
    if !listed {
        return Err("the digest does not list the segment with this Merkle root".into());
    }
    let key = keys
        .find(&dg.digest_public_key_fingerprint)
        .ok_or_else(|| {
            format!(
                "public key not found for fingerprint {}",
                dg.digest_public_key_fingerprint
            )
        })?;
    if key.algorithm != dg.digest_signature_algorithm
        || !key.valid_at(parse_iso(&dg.digest_signing_time).unwrap_or(i64::MIN))
    {
        return Err("the digest's key is not valid for it".into());
    }
    let dhash = sha256(&bytes);
    let sts = string_to_sign(
        &dg.digest_end_time,
        &dg.digest_object,
        &dhash,
        dg.previous_digest_signature.as_deref(),
    );
    let sig = hex::decode(&p.digest.signature).map_err(|_| "signature is not hex")?;
    if !key.verify(sts.as_bytes(), &sig) {
        return Err("digest signature verification failed".into());
    }
    let cp = Checkpoint::parse(&p.checkpoint.text).map_err(|e| e.to_string())?;
    cp.verify(keys).map_err(|e| format!("checkpoint: {e}"))?;
    let cpath = unhex(&p.checkpoint.inclusion_path).ok_or("bad checkpoint inclusion path")?;
    if p.checkpoint.digest_tree_index != dg.digest_tree_index
        || !merkle::verify_inclusion(
            &merkle::leaf_hash(&dhash),
            dg.digest_tree_index,
            cp.size,
            &cpath,
            &cp.root,
        )
    {
        return Err("the digest is not in the checkpoint's digest tree".into());
    }
    Ok(format!(
        "event {} is in segment {} (leaf {} of {}), listed by signed digest {}, in checkpoint of {} digests",
        p.event.event_id, p.segment.object, p.segment.leaf_index, p.segment.event_count, p.digest.object, cp.size
    ))
}
