//! The canonical leaf encoding of a stored event, and the seal of a segment.
//!
//! Leaf encoding, version 1 (all integers big-endian, lengths are `u32`):
//!
//! ```text
//! u8   version = 0x01
//! u32  len(event_id) || event_id        20 ASCII digits, the zero-padded sequence number
//! i64  timestamp_ms                     event time, epoch milliseconds (two's complement)
//! i64  ingestion_time_ms                when the vault accepted the event
//! u32  len(group)  || group             UTF-8 log group name
//! u32  len(stream) || stream            UTF-8 log stream name
//! u32  len(message) || message          the raw message bytes, byte-exact
//! ```
//!
//! The Merkle leaf hash is `SHA-256(0x00 || encoding)` (RFC 6962). The normalized record is
//! derived from the message and is deliberately not part of the leaf: the evidence is the
//! raw record plus the metadata the vault attached to it.
//!
//! A segment's Merkle tree has one leaf per event, in stored order (the order
//! `trailvault_segment::decode` returns). Invariant: `seal_segment` over the bytes of a
//! segment and its decoded events is deterministic; the validator recomputes it.

use serde::{Deserialize, Serialize};
use trailvault_model::StoredEvent;

use crate::hash::{sha256, sha256_parts, Hash};
use crate::merkle::{self, MerkleTree};

pub const LEAF_FORMAT_VERSION: u8 = 1;

/// Append the canonical leaf encoding of `event` to `out`.
pub fn encode_leaf_into(event: &StoredEvent, out: &mut Vec<u8>) {
    encode_leaf_head_into(event, out);
    out.extend_from_slice(event.message.as_bytes());
}

/// The canonical leaf encoding of `event` up to the message's bytes, which end it.
fn encode_leaf_head_into(event: &StoredEvent, out: &mut Vec<u8>) {
    fn len(out: &mut Vec<u8>, b: &[u8]) {
        // Events are capped far below 4 GiB (EVENT_BYTES_MAX); saturate rather than wrap so a
        // malformed event can never alias another encoding silently.
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
    }
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        len(out, b);
        out.extend_from_slice(b);
    }
    out.push(LEAF_FORMAT_VERSION);
    bytes(out, &trailvault_model::event_id_digits(event.seq));
    out.extend_from_slice(&event.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&event.ingestion_time_ms.to_be_bytes());
    bytes(out, event.group.as_bytes());
    bytes(out, event.stream.as_bytes());
    len(out, event.message.as_bytes());
}

/// The canonical leaf encoding of `event`.
pub fn encode_leaf(event: &StoredEvent) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(64 + event.group.len() + event.stream.len() + event.message.len());
    encode_leaf_into(event, &mut out);
    out
}

/// `SHA-256(0x00 || encode_leaf(event))`.
pub fn event_leaf_hash(event: &StoredEvent) -> Hash {
    leaf_hash_with(event, &mut Vec::new())
}

/// Leaf hashes of a segment's events, in stored order.
/// Generic over owned events and references (a seal hashes borrowed events).
pub fn event_leaf_hashes<E: std::borrow::Borrow<StoredEvent>>(events: &[E]) -> Vec<Hash> {
    let mut head = Vec::new();
    events
        .iter()
        .map(|e| leaf_hash_with(e.borrow(), &mut head))
        .collect()
}

/// [`event_leaf_hash`], with `head` as scratch space for the encoding before the message.
fn leaf_hash_with(event: &StoredEvent, head: &mut Vec<u8>) -> Hash {
    head.clear();
    encode_leaf_head_into(event, head);
    // The message is hashed where it lies: copying it next to the head first was a whole
    // extra pass over every record's bytes.
    sha256_parts(&[&[merkle::LEAF_PREFIX], head, event.message.as_bytes()])
}

/// The Merkle tree over a segment's events.
pub fn segment_tree(events: &[StoredEvent]) -> MerkleTree {
    MerkleTree::from_leaf_hashes(event_leaf_hashes(events))
}

/// Leaves under each subtree root a segment's footer carries (see [`subtree_roots`]).
pub const SUBTREE_LEAVES: usize = 32;
/// The Parquet footer key of a segment's subtree roots.
pub const SUBTREE_ROOTS_KEY: &str = "trailvault.merkle.subtree_roots";

/// The roots of the aligned subtrees of [`SUBTREE_LEAVES`] leaves (the last may hold fewer):
/// level 5 of the segment's Merkle tree. A proof then re-hashes 32 leaves and the few roots,
/// not the whole segment. They are a hint for speed, never evidence: a proof built from them
/// is checked against the Merkle root its digest signs, and the validator ignores them.
pub fn subtree_roots(leaves: &[Hash]) -> Vec<Hash> {
    leaves
        .chunks(SUBTREE_LEAVES)
        .map(merkle::root_from_leaf_hashes)
        .collect()
}

/// The footer entry holding `roots`: `"<leaves per subtree>:<base64 of the roots>"`.
pub fn subtree_roots_metadata(roots: &[Hash]) -> (String, String) {
    use base64::Engine;
    let value = format!(
        "{SUBTREE_LEAVES}:{}",
        base64::engine::general_purpose::STANDARD.encode(roots.concat())
    );
    (SUBTREE_ROOTS_KEY.to_string(), value)
}

/// Parse a footer entry of [`subtree_roots_metadata`]; `None` if it is not one we wrote.
pub fn parse_subtree_roots(value: &str) -> Option<Vec<Hash>> {
    use base64::Engine;
    let (leaves, b64) = value.split_once(':')?;
    if leaves.parse::<usize>().ok()? != SUBTREE_LEAVES {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if raw.len() % 32 != 0 {
        return None;
    }
    raw.chunks(32).map(|c| c.try_into().ok()).collect()
}

/// The rows of the subtree holding row `index` of a segment of `total` events.
pub fn subtree_rows(index: usize, total: usize) -> std::ops::Range<usize> {
    let start = index / SUBTREE_LEAVES * SUBTREE_LEAVES;
    start..(start + SUBTREE_LEAVES).min(total)
}

/// The root of a segment's tree and the inclusion path of leaf `index`, from the footer's
/// subtree `roots` and the events of the subtree holding it (`run`, the rows
/// [`subtree_rows`]): only those leaves are hashed. `None` if the roots do not fit the
/// segment or the run's own leaves (the caller then rebuilds the whole tree).
pub fn path_via_subtrees(
    run: &[StoredEvent],
    index: usize,
    total: usize,
    roots: &[Hash],
) -> Option<(Hash, Vec<Hash>)> {
    let rows = subtree_rows(index, total);
    if index >= total || roots.len() != total.div_ceil(SUBTREE_LEAVES) || run.len() != rows.len() {
        return None;
    }
    let chunk = index / SUBTREE_LEAVES;
    let sub = MerkleTree::from_leaf_hashes(event_leaf_hashes(run));
    if sub.root() != roots[chunk] {
        return None;
    }
    // Subtrees are aligned, so level by level the full tree is the subtree up to its root,
    // then the tree over the subtree roots.
    let upper = MerkleTree::from_leaf_hashes(roots.to_vec());
    let mut path = sub.inclusion_proof((index - rows.start) as u64)?;
    path.extend(upper.inclusion_proof(chunk as u64)?);
    Some((upper.root(), path))
}

/// A segment's Parquet bytes (`events` in segment order) with its subtree roots in the
/// footer, and the events' leaf hashes (for its Merkle root).
pub fn encode_segment<E: std::borrow::Borrow<StoredEvent>>(
    events: &[E],
) -> std::result::Result<(Vec<u8>, Vec<Hash>), trailvault_segment::SegmentError> {
    let mut writer = trailvault_segment::SegmentWriter::new(
        events.iter().map(|e| e.borrow().message.len()).sum(),
    )?;
    let mut leaves = Vec::with_capacity(events.len());
    // Batch by batch, so each event is hashed while the encoder's copy of it left it in
    // cache: one pass over the records' bytes from memory instead of two.
    for batch in events.chunks(trailvault_segment::BATCH_ROWS) {
        writer.write(batch)?;
        leaves.extend(event_leaf_hashes(batch));
    }
    let bytes = writer.finish(vec![subtree_roots_metadata(&subtree_roots(&leaves))])?;
    Ok((bytes, leaves))
}

/// What sealing records about a segment's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHashes {
    /// SHA-256 of the exact stored bytes.
    pub sha256: Hash,
    /// RFC 6962 root over the events' leaf hashes.
    pub merkle_root: Hash,
    pub event_count: u64,
    /// Oldest and newest event time (`timestamp_ms`); 0 for an empty segment.
    pub oldest_ms: i64,
    pub newest_ms: i64,
}

/// Hash a segment: `bytes` are the stored bytes, `events` the segment's events in stored
/// order (as `trailvault_segment::decode` returns them).
pub fn seal_segment(bytes: &[u8], events: &[StoredEvent]) -> SegmentHashes {
    let oldest_ms = events.iter().map(|e| e.timestamp_ms).min().unwrap_or(0);
    let newest_ms = events.iter().map(|e| e.timestamp_ms).max().unwrap_or(0);
    SegmentHashes {
        sha256: sha256(bytes),
        merkle_root: merkle::root_from_leaf_hashes(&event_leaf_hashes(events)),
        event_count: events.len() as u64,
        oldest_ms,
        newest_ms,
    }
}

/// A sealed segment as the catalog records it and a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentSeal {
    pub group: String,
    /// Object key of the segment, relative to the data root (`segments/...`).
    pub key: String,
    #[serde(with = "hex_hash")]
    pub sha256: Hash,
    #[serde(with = "hex_hash")]
    pub merkle_root: Hash,
    pub event_count: u64,
    pub oldest_ms: i64,
    pub newest_ms: i64,
    /// Stored size in bytes.
    pub bytes: u64,
    /// When the segment was sealed (epoch ms); decides which digest period lists it. The
    /// validator tells "pending" from "in no digest" by the object's modification time, so
    /// the object should not be written long before this time is taken (see
    /// `validate::PENDING_GRACE_MS_DEFAULT`).
    pub sealed_at_ms: i64,
}

impl SegmentSeal {
    pub fn new(
        group: impl Into<String>,
        key: impl Into<String>,
        hashes: &SegmentHashes,
        bytes: u64,
        sealed_at_ms: i64,
    ) -> Self {
        SegmentSeal {
            group: group.into(),
            key: key.into(),
            sha256: hashes.sha256,
            merkle_root: hashes.merkle_root,
            event_count: hashes.event_count,
            oldest_ms: hashes.oldest_ms,
            newest_ms: hashes.newest_ms,
            bytes,
            sealed_at_ms,
        }
    }
}

pub(crate) mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::hash::parse_hash_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, msg: &str) -> StoredEvent {
        StoredEvent {
            seq,
            group: "g".into(),
            stream: "s".into(),
            timestamp_ms: 1_700_000_000_000 + seq as i64,
            ingestion_time_ms: 1_700_000_000_500,
            message: msg.into(),
            normalized: None,
        }
    }

    #[test]
    fn leaf_layout_is_as_documented() {
        let e = event(7, "hi");
        let enc = encode_leaf(&e);
        let mut want = vec![1u8, 0, 0, 0, 20];
        want.extend_from_slice(b"00000000000000000007");
        want.extend_from_slice(&1_700_000_000_007i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 1, b'g', 0, 0, 0, 1, b's', 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(enc, want);
        // Pinned so an accidental change of the encoding cannot pass unnoticed.
        assert_eq!(
            hex::encode(event_leaf_hash(&e)),
            hex::encode(merkle::leaf_hash(&want))
        );
    }

    #[test]
    fn batch_leaf_hashes_equal_hashes_of_the_encoding() {
        // The batch path hashes the message in place; it must match the documented encoding
        // for every message length around SHA-256's 64-byte blocks.
        let events: Vec<StoredEvent> = (0..200u64)
            .map(|i| event(i, &"x".repeat(i as usize)))
            .collect();
        let batch = event_leaf_hashes(&events);
        for (e, h) in events.iter().zip(&batch) {
            assert_eq!(*h, merkle::leaf_hash(&encode_leaf(e)), "seq {}", e.seq);
        }
    }

    #[test]
    fn fields_cannot_alias() {
        let mut a = event(1, "ab");
        a.stream = "s".into();
        let mut b = event(1, "b");
        b.stream = "sa".into();
        assert_ne!(event_leaf_hash(&a), event_leaf_hash(&b));
    }

    #[test]
    fn subtree_paths_equal_full_tree_paths() {
        for n in [1usize, 2, 31, 32, 33, 64, 65, 100, 500] {
            let events: Vec<StoredEvent> =
                (0..n as u64).map(|i| event(i, &format!("m{i}"))).collect();
            let full = segment_tree(&events);
            let roots = subtree_roots(&event_leaf_hashes(&events));
            let (_, value) = subtree_roots_metadata(&roots);
            assert_eq!(parse_subtree_roots(&value).as_deref(), Some(&roots[..]));
            for i in 0..n {
                let run = &events[subtree_rows(i, n)];
                let (root, path) = path_via_subtrees(run, i, n, &roots).unwrap();
                assert_eq!(root, full.root(), "root, n={n}");
                assert_eq!(
                    path,
                    full.inclusion_proof(i as u64).unwrap(),
                    "path of {i}, n={n}"
                );
            }
        }
    }

    #[test]
    fn wrong_subtree_roots_are_refused_not_trusted() {
        let events: Vec<StoredEvent> = (0..70).map(|i| event(i, "m")).collect();
        let mut roots = subtree_roots(&event_leaf_hashes(&events));
        assert!(path_via_subtrees(&events[64..], 69, 70, &roots[..2]).is_none());
        assert!(path_via_subtrees(&events[32..64], 69, 70, &roots).is_none());
        roots[1][0] ^= 1;
        assert!(path_via_subtrees(&events[32..64], 40, 70, &roots).is_none());
        assert_eq!(parse_subtree_roots("16:AAAA"), None);
        assert_eq!(parse_subtree_roots("32:AAAA"), None);
    }

    #[test]
    fn seal_records_counts_and_times() {
        let events = vec![event(3, "a"), event(1, "b"), event(2, "c")];
        let h = seal_segment(b"bytes", &events);
        assert_eq!(h.event_count, 3);
        assert_eq!(h.oldest_ms, 1_700_000_000_001);
        assert_eq!(h.newest_ms, 1_700_000_000_003);
        assert_eq!(h.sha256, sha256(b"bytes"));
        assert_eq!(h.merkle_root, segment_tree(&events).root());
        let empty = seal_segment(b"", &[]);
        assert_eq!(empty.merkle_root, merkle::empty_root());
        let seal = SegmentSeal::new("g", "segments/x", &h, 5, 9);
        let json = serde_json::to_string(&seal).unwrap();
        assert_eq!(serde_json::from_str::<SegmentSeal>(&json).unwrap(), seal);
    }
}
