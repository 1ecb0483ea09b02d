//! The proof index: what `prove EVENT_ID` needs, found without reading every digest.
//!
//! A SQLite file beside the data (`index/proofs.sqlite`), written by the [`DigestWriter`]
//! in the same step as each checkpoint and derived entirely from the digests, so it can be
//! deleted and rebuilt ([`ProofIndex::rebuild`]). It holds:
//!
//! - `segment_ranges`: each digested segment's key, its sequence range (from the key's
//!   `<first>-<last>.parquet`) and the tree index of the digest that lists it: event → segment
//!   → digest. Ranges of different groups overlap, so a lookup is an interval stabbing query:
//!   ranges are kept by span class (the bit length of `last - first`), and within one class a
//!   range holding `seq` starts at most `2^class - 1` before it, one bounded index scan per
//!   class present (a handful), whatever the number of segments;
//! - `digests`: tree index → digest key and the SHA-256 of its bytes;
//! - `nodes`: every perfect subtree hash of the digest tree (level, index), about two per
//!   digest, so an RFC 9162 inclusion path or a root at any size costs O(log² n) lookups
//!   instead of rehashing every digest.
//!
//! The index is a cache, never evidence: a proof built from it carries the digest's bytes
//! and signature, and `prove` checks the digest read from storage against the indexed hash.
//!
//! [`DigestWriter`]: crate::DigestWriter

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::digest::{self, parse_digest, DIGESTS_PREFIX};
use crate::error::{IntegrityError, Result};
use crate::hash::{sha256, Hash};
use crate::merkle::{empty_root, leaf_hash, node_hash};
use crate::objects;

/// Where the index lives, relative to the data directory.
pub const PROOF_INDEX_FILE: &str = "index/proofs.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS digests (
    tree_index INTEGER PRIMARY KEY, key TEXT NOT NULL, sha256 BLOB NOT NULL);
DROP TABLE IF EXISTS segments;
CREATE TABLE IF NOT EXISTS segment_ranges (
    key TEXT PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    span_class INTEGER NOT NULL, tree_index INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS segment_ranges_by_class ON segment_ranges (span_class, first_seq);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
";

/// Candidate segments examined for one event at most (ranges of different groups overlap).
const CANDIDATES_MAX: usize = 256;

/// Layout of the tables; an index of another format is rebuilt when the writer attaches it
/// and not used by readers until then.
const INDEX_FORMAT: u64 = 2;

/// Bit length of a range's span: a range of class `c` has `last - first < 2^c`.
fn span_class(first: u64, last: u64) -> u32 {
    64 - last.saturating_sub(first).leading_zeros()
}

/// One digest as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedDigest {
    pub tree_index: u64,
    pub key: String,
    pub sha256: Hash,
    /// Keys of the segments it lists.
    pub segments: Vec<String>,
}

/// The sequence range `<first>-<last>.parquet` a segment key names, if it does.
pub fn seq_range(key: &str) -> Option<(u64, u64)> {
    let name = key.rsplit('/').next()?.strip_suffix(".parquet")?;
    let (a, b) = name.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn db_err(path: &str) -> impl Fn(rusqlite::Error) -> IntegrityError + '_ {
    move |e| IntegrityError::corrupt(path, format!("proof index: {e}"))
}

fn to_hash(v: Vec<u8>, what: &str) -> Result<Hash> {
    v.try_into()
        .map_err(|_| IntegrityError::corrupt(PROOF_INDEX_FILE, format!("{what} is not 32 bytes")))
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

pub struct ProofIndex {
    conn: Connection,
}

impl std::fmt::Debug for ProofIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofIndex").finish_non_exhaustive()
    }
}

impl ProofIndex {
    /// Open (creating it if needed) for writing.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| IntegrityError::io(dir, e))?;
        }
        let e = db_err(PROOF_INDEX_FILE);
        let conn = Connection::open(path).map_err(&e)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&e)?;
        // A lost tail is rebuilt from the digests at the next start: no fsync per write.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&e)?;
        conn.execute_batch(SCHEMA).map_err(&e)?;
        Ok(ProofIndex { conn })
    }

    /// Open an existing index read-only; `None` if there is none.
    pub fn open_read_only(path: &Path) -> Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(db_err(PROOF_INDEX_FILE))?;
        let index = ProofIndex { conn };
        // An index of an older layout is no index until the writer rebuilds it.
        Ok(index.is_current_format()?.then_some(index))
    }

    fn meta(&self, k: &str) -> Result<Option<u64>> {
        self.conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.map(|v| v as u64))
            .map_err(db_err(PROOF_INDEX_FILE))
    }

    /// Digests indexed (the digest tree's size as the index knows it).
    pub fn size(&self) -> Result<u64> {
        Ok(self.meta("tree_size")?.unwrap_or(0))
    }

    /// Whether the tables have this build's layout (else the writer rebuilds the index).
    pub fn is_current_format(&self) -> Result<bool> {
        Ok(self.meta("format")? == Some(INDEX_FORMAT))
    }

    /// The span classes of the indexed ranges, one bit each.
    fn span_classes(&self) -> Result<u64> {
        Ok(self.meta("span_classes")?.unwrap_or(0))
    }

    /// Size of the newest checkpoint written with the index.
    pub fn checkpoint_size(&self) -> Result<Option<u64>> {
        self.meta("checkpoint_size")
    }

    /// Append digests (tree indices continuing the index) and record the checkpoint made
    /// after them, in one transaction.
    pub fn append(&mut self, digests: &[IndexedDigest], checkpoint_size: u64) -> Result<()> {
        let e = db_err(PROOF_INDEX_FILE);
        let mut size = self.size()?;
        let mut classes = self.span_classes()?;
        let tx = self.conn.transaction().map_err(&e)?;
        {
            let mut put_digest = tx
                .prepare_cached("INSERT INTO digests (tree_index, key, sha256) VALUES (?1, ?2, ?3)")
                .map_err(&e)?;
            let mut put_segment = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO segment_ranges \
                     (key, first_seq, last_seq, span_class, tree_index) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&e)?;
            let mut put_node = tx
                .prepare_cached("INSERT INTO nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
                .map_err(&e)?;
            let mut get_node = tx
                .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")
                .map_err(&e)?;
            for d in digests {
                if d.tree_index != size {
                    return Err(IntegrityError::Invalid(format!(
                        "proof index: digest tree index {} but the index holds {size}",
                        d.tree_index
                    )));
                }
                put_digest
                    .execute(params![size as i64, d.key, &d.sha256[..]])
                    .map_err(&e)?;
                for s in &d.segments {
                    let (a, b) = seq_range(s).unwrap_or((0, i64::MAX as u64));
                    let class = span_class(a, b);
                    classes |= 1 << class;
                    put_segment
                        .execute(params![s, a as i64, b as i64, class, size as i64])
                        .map_err(&e)?;
                }
                // The leaf, then every perfect subtree it completes (one per trailing one bit).
                let mut node = leaf_hash(&d.sha256);
                let (mut level, mut idx) = (0i64, size);
                put_node
                    .execute(params![level, idx as i64, &node[..]])
                    .map_err(&e)?;
                while idx & 1 == 1 {
                    let left: Vec<u8> = get_node
                        .query_row(params![level, (idx - 1) as i64], |r| r.get(0))
                        .map_err(&e)?;
                    node = node_hash(&to_hash(left, "node")?, &node);
                    level += 1;
                    idx >>= 1;
                    put_node
                        .execute(params![level, idx as i64, &node[..]])
                        .map_err(&e)?;
                }
                size += 1;
            }
            let mut put_meta = tx
                .prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)")
                .map_err(&e)?;
            put_meta
                .execute(params!["tree_size", size as i64])
                .map_err(&e)?;
            put_meta
                .execute(params!["span_classes", classes as i64])
                .map_err(&e)?;
            put_meta
                .execute(params!["format", INDEX_FORMAT as i64])
                .map_err(&e)?;
            put_meta
                .execute(params!["checkpoint_size", checkpoint_size as i64])
                .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// Forget everything and index every digest in `store` again (tree order; the indices
    /// must be contiguous from 0).
    pub async fn rebuild(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        checkpoint_size: u64,
    ) -> Result<()> {
        let mut all: Vec<IndexedDigest> = Vec::new();
        for m in objects::list(store, DIGESTS_PREFIX).await? {
            let key = m.location.to_string();
            if digest::group_of_digest_key(&key).is_none() {
                continue;
            }
            let Some(bytes) = objects::get_limited(store, &key, digest::DIGEST_BYTES_MAX).await?
            else {
                continue;
            };
            let d = parse_digest(&key, &bytes)?;
            all.push(IndexedDigest {
                tree_index: d.digest_tree_index,
                key,
                sha256: sha256(&bytes),
                segments: d.segments.into_iter().map(|s| s.object).collect(),
            });
        }
        all.sort_by_key(|d| d.tree_index);
        self.conn
            .execute_batch(
                "DELETE FROM meta; DELETE FROM digests; DELETE FROM segment_ranges; \
                 DELETE FROM nodes;",
            )
            .map_err(db_err(PROOF_INDEX_FILE))?;
        self.append(&all, checkpoint_size)
    }

    /// Segments whose sequence range holds `seq`, with the tree index of their digest,
    /// narrowest ranges first.
    pub fn segments_for_seq(&self, seq: u64) -> Result<Vec<(String, u64)>> {
        let e = db_err(PROOF_INDEX_FILE);
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT key, tree_index FROM segment_ranges \
                 WHERE span_class = ?1 AND first_seq BETWEEN ?2 AND ?3 AND last_seq >= ?3 \
                 LIMIT ?4",
            )
            .map_err(&e)?;
        let classes = self.span_classes()?;
        let mut out = Vec::new();
        for class in (0..64u32).filter(|c| classes & (1 << c) != 0) {
            if out.len() >= CANDIDATES_MAX {
                break;
            }
            // A range of this class holding `seq` starts within `2^class - 1` before it.
            let lowest = seq.saturating_sub((1u64 << class) - 1);
            let rows = q
                .query_map(
                    params![
                        class,
                        lowest as i64,
                        seq as i64,
                        (CANDIDATES_MAX - out.len()) as i64
                    ],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)),
                )
                .map_err(&e)?;
            for row in rows {
                out.push(row.map_err(&e)?);
            }
        }
        Ok(out)
    }

    /// The digest at `tree_index`: key and SHA-256 of its bytes.
    pub fn digest_at(&self, tree_index: u64) -> Result<Option<(String, Hash)>> {
        let e = db_err(PROOF_INDEX_FILE);
        let row = self
            .conn
            .prepare_cached("SELECT key, sha256 FROM digests WHERE tree_index = ?1")
            .map_err(&e)?
            .query_row([tree_index as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .map_err(&e)?;
        row.map(|(k, h)| Ok((k, to_hash(h, "digest hash")?)))
            .transpose()
    }

    fn node(&self, level: u32, idx: u64) -> Result<Hash> {
        let e = db_err(PROOF_INDEX_FILE);
        let h: Vec<u8> = self
            .conn
            .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")
            .map_err(&e)?
            .query_row(params![level, idx as i64], |r| r.get(0))
            .optional()
            .map_err(&e)?
            .ok_or_else(|| {
                IntegrityError::corrupt(PROOF_INDEX_FILE, format!("node ({level}, {idx}) missing"))
            })?;
        to_hash(h, "node")
    }

    /// `MTH(D[lo:hi])`. Left parts of RFC 6962 splits are aligned perfect subtrees (stored);
    /// only the right edge is folded.
    fn range_root(&self, lo: u64, hi: u64) -> Result<Hash> {
        let n = hi - lo;
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            return self.node(n.trailing_zeros(), lo / n);
        }
        let k = split(n);
        Ok(node_hash(
            &self.range_root(lo, lo + k)?,
            &self.range_root(lo + k, hi)?,
        ))
    }

    /// The digest tree's root at `size` (≤ [`Self::size`]).
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        if size > self.size()? {
            return Err(IntegrityError::Invalid(format!(
                "proof index holds {} digests, not {size}",
                self.size()?
            )));
        }
        self.range_root(0, size)
    }

    /// RFC 9162 inclusion path of leaf `index` in the tree of `size`, leaf side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        if index >= size || size > self.size()? {
            return Err(IntegrityError::Invalid(format!(
                "no leaf {index} in a tree of {size} (the index holds {})",
                self.size()?
            )));
        }
        let (mut m, mut lo, mut hi) = (index, 0u64, size);
        let mut rev = Vec::new();
        while hi - lo > 1 {
            let k = split(hi - lo);
            if m < k {
                rev.push(self.range_root(lo + k, hi)?);
                hi = lo + k;
            } else {
                rev.push(self.range_root(lo, lo + k)?);
                lo += k;
                m -= k;
            }
        }
        rev.reverse();
        Ok(rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;

    #[test]
    fn paths_and_roots_match_the_full_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = ProofIndex::open(&dir.path().join("p.sqlite")).unwrap();
        let hashes: Vec<Hash> = (0..70u8).map(|i| sha256(&[i])).collect();
        for (i, h) in hashes.iter().enumerate() {
            let d = IndexedDigest {
                tree_index: i as u64,
                key: format!("d{i}"),
                sha256: *h,
                segments: vec![format!(
                    "segments/g/{:020}-{:020}.parquet",
                    i * 10,
                    i * 10 + 9
                )],
            };
            idx.append(&[d], i as u64 + 1).unwrap();
        }
        let full = MerkleTree::from_leaf_hashes(hashes.iter().map(|h| leaf_hash(h)).collect());
        for size in 1..=70u64 {
            let t = MerkleTree::from_leaf_hashes(full.leaf_hashes()[..size as usize].to_vec());
            assert_eq!(idx.root_at(size).unwrap(), t.root(), "root at {size}");
            for i in 0..size {
                assert_eq!(
                    idx.inclusion_proof(i, size).unwrap(),
                    t.inclusion_proof(i).unwrap(),
                    "path of {i} in {size}"
                );
            }
        }
        assert!(idx.inclusion_proof(70, 70).is_err());
        assert_eq!(idx.segments_for_seq(125).unwrap()[0].1, 12);
        assert_eq!(
            idx.digest_at(3).unwrap().unwrap(),
            ("d3".to_string(), hashes[3])
        );
        assert_eq!(
            (idx.size().unwrap(), idx.checkpoint_size().unwrap()),
            (70, Some(70))
        );
        let gap = IndexedDigest {
            tree_index: 72,
            key: "x".into(),
            sha256: [0; 32],
            segments: vec![],
        };
        assert!(
            idx.append(&[gap], 73).is_err(),
            "indices must continue the tree"
        );
    }

    #[test]
    fn an_index_of_an_older_layout_is_not_read_until_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite");
        let mut idx = ProofIndex::open(&path).unwrap();
        idx.append(&[], 0).unwrap();
        assert!(idx.is_current_format().unwrap());
        assert!(ProofIndex::open_read_only(&path).unwrap().is_some());
        // As an index written before the format key existed.
        idx.conn
            .execute("DELETE FROM meta WHERE k = 'format'", [])
            .unwrap();
        assert!(!idx.is_current_format().unwrap());
        assert!(ProofIndex::open_read_only(&path).unwrap().is_none());
    }

    #[test]
    fn overlapping_ranges_of_every_span_are_all_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = ProofIndex::open(&dir.path().join("p.sqlite")).unwrap();
        // Five groups sharing one sequence: narrow, wide and single-event ranges that
        // interleave, as segments of busy and quiet groups do.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        let mut ranges = Vec::new();
        for i in 0..300u64 {
            let first = next(5_000);
            let span = [0, 1, 7, 40, 500, 3_000][(i % 6) as usize];
            ranges.push((first, first + next(span + 1)));
        }
        let digests: Vec<IndexedDigest> = ranges
            .iter()
            .enumerate()
            .map(|(i, (a, b))| IndexedDigest {
                tree_index: i as u64,
                key: format!("d{i}"),
                sha256: sha256(&i.to_be_bytes()),
                segments: vec![format!("segments/g{i}/{a:020}-{b:020}.parquet")],
            })
            .collect();
        idx.append(&digests, digests.len() as u64).unwrap();
        for seq in (0..8_200).step_by(7) {
            let mut want: Vec<u64> = (0..ranges.len() as u64)
                .filter(|&i| ranges[i as usize].0 <= seq && seq <= ranges[i as usize].1)
                .collect();
            let mut got: Vec<u64> = idx
                .segments_for_seq(seq)
                .unwrap()
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "segments holding {seq}");
        }
    }
}
