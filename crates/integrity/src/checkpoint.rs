//! Signed checkpoints of the cumulative digest tree.
//!
//! Every digest ever written is one leaf of a single RFC 6962 tree, in writing order; the
//! leaf input is the 32-byte SHA-256 of the digest's bytes, and each digest records its leaf
//! index (`digestTreeIndex`). After each digest the vault writes a checkpoint:
//!
//! ```text
//! trailvault/digests                      origin
//! 42                                      tree size
//! 3q2+7w...=                              base64 root hash
//! time 2026-11-22T03:00:00Z               when it was made
//! key Ed25519 0123456789abcdef0123456789abcdef
//!                                         (blank line)
//! — trailvault/digests BASE64SIGNATURE
//! ```
//!
//! in the shape of a C2SP tlog-checkpoint note: the signature covers the body (the lines
//! before the blank line, each ending in `\n`). Checkpoints are stored as
//! `checkpoints/<size, 20 digits>.txt`; `checkpoints/state.json` keeps the tree's right edge
//! so the writer can extend it without reading every digest. An exported checkpoint kept
//! outside the vault lets a validator prove the present tree extends it: deleting the
//! newest digests (the tail) then shows as a tree smaller than the checkpoint or as an
//! inconsistent root.

use std::sync::Arc;

use base64::Engine;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{IntegrityError, Result};
use crate::hash::Hash;
use crate::keys::{Keyring, PublicKeySet, SignatureAlgorithm};
use crate::merkle::Frontier;
use crate::objects;
use crate::time::{iso, parse_iso};

pub const CHECKPOINTS_PREFIX: &str = "checkpoints";
pub const CHECKPOINT_ORIGIN: &str = "trailvault/digests";
const STATE_KEY: &str = "checkpoints/state.json";
pub(crate) const CHECKPOINT_BYTES_MAX: u64 = 64 << 10;

/// A signed statement "the digest tree had `size` leaves and this root at `time_ms`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time_ms: i64,
    pub algorithm: SignatureAlgorithm,
    pub fingerprint: String,
    pub signature: Vec<u8>,
}

impl Checkpoint {
    fn body_of(
        size: u64,
        root: &Hash,
        time_ms: i64,
        algorithm: SignatureAlgorithm,
        fingerprint: &str,
    ) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "{CHECKPOINT_ORIGIN}\n{size}\n{}\ntime {}\nkey {} {fingerprint}\n",
            b64.encode(root),
            iso(time_ms),
            algorithm.as_str()
        )
    }

    /// Sign a new checkpoint with the keyring's active key.
    pub fn sign(keyring: &Keyring, size: u64, root: Hash, time_ms: i64) -> Result<Checkpoint> {
        let key = keyring.active_key();
        let body = Self::body_of(size, &root, time_ms, key.algorithm, &key.fingerprint);
        let sig = keyring.sign(body.as_bytes())?;
        Ok(Checkpoint {
            origin: CHECKPOINT_ORIGIN.to_string(),
            size,
            root,
            time_ms,
            algorithm: sig.algorithm,
            fingerprint: sig.fingerprint,
            signature: sig.bytes,
        })
    }

    /// The signed text.
    pub fn body(&self) -> String {
        Self::body_of(
            self.size,
            &self.root,
            self.time_ms,
            self.algorithm,
            &self.fingerprint,
        )
    }

    /// The full note: body, blank line, signature line.
    pub fn to_text(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "{}\n\u{2014} {} {}\n",
            self.body(),
            self.origin,
            b64.encode(&self.signature)
        )
    }

    pub fn parse(text: &str) -> Result<Checkpoint> {
        let bad = |what: &str| IntegrityError::corrupt("checkpoint", what);
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the signature"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() != 5 {
            return Err(bad("expected 5 body lines"));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let size = lines[1].parse().map_err(|_| bad("bad tree size"))?;
        let root_bytes = b64.decode(lines[2]).map_err(|_| bad("bad root hash"))?;
        let root: Hash = root_bytes
            .try_into()
            .map_err(|_| bad("root hash is not 32 bytes"))?;
        let time_ms = lines[3]
            .strip_prefix("time ")
            .and_then(parse_iso)
            .ok_or_else(|| bad("bad time line"))?;
        let (alg, fp) = lines[4]
            .strip_prefix("key ")
            .and_then(|k| k.split_once(' '))
            .ok_or_else(|| bad("bad key line"))?;
        let algorithm = SignatureAlgorithm::parse(alg).ok_or_else(|| bad("unknown algorithm"))?;
        let sig_line = sigs
            .lines()
            .next()
            .ok_or_else(|| bad("no signature line"))?;
        let rest = sig_line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| bad("bad signature line"))?;
        let (origin, sig) = rest
            .rsplit_once(' ')
            .ok_or_else(|| bad("bad signature line"))?;
        if origin != lines[0] {
            return Err(bad("signature line names another origin"));
        }
        let cp = Checkpoint {
            origin: lines[0].to_string(),
            size,
            root,
            time_ms,
            algorithm,
            fingerprint: fp.to_string(),
            signature: b64
                .decode(sig)
                .map_err(|_| bad("signature is not base64"))?,
        };
        if cp.body() != format!("{body}\n") {
            return Err(bad("body is not in canonical form"));
        }
        Ok(cp)
    }

    /// Check the signature, and that the key was valid when the checkpoint was made.
    pub fn verify(&self, keys: &PublicKeySet) -> std::result::Result<(), String> {
        let key = keys
            .find(&self.fingerprint)
            .ok_or_else(|| format!("public key not found for fingerprint {}", self.fingerprint))?;
        if key.algorithm != self.algorithm {
            return Err("signature algorithm does not match the key".into());
        }
        if !key.valid_at(self.time_ms) {
            return Err(format!(
                "public key {} was not valid at {}",
                self.fingerprint,
                iso(self.time_ms)
            ));
        }
        if !key.verify(self.body().as_bytes(), &self.signature) {
            return Err("signature verification failed".into());
        }
        Ok(())
    }
}

pub fn checkpoint_key(size: u64) -> String {
    format!("{CHECKPOINTS_PREFIX}/{size:020}.txt")
}

#[derive(Serialize, Deserialize)]
struct TreeState {
    version: u32,
    size: u64,
    nodes: Vec<String>,
}

pub(crate) async fn load_frontier(store: &Arc<dyn ObjectStore>) -> Result<Frontier> {
    let Some(bytes) = objects::get_limited(store, STATE_KEY, CHECKPOINT_BYTES_MAX).await? else {
        return Ok(Frontier::default());
    };
    let state: TreeState = serde_json::from_slice(&bytes)
        .map_err(|e| IntegrityError::corrupt(STATE_KEY, format!("not a tree state: {e}")))?;
    let nodes = state
        .nodes
        .iter()
        .map(|h| crate::hash::parse_hash_hex(h))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| IntegrityError::corrupt(STATE_KEY, "bad node hash"))?;
    Frontier::from_parts(state.size, nodes)
        .ok_or_else(|| IntegrityError::corrupt(STATE_KEY, "node count does not match size"))
}

pub(crate) async fn save(
    store: &Arc<dyn ObjectStore>,
    frontier: &Frontier,
    cp: &Checkpoint,
) -> Result<()> {
    let state = TreeState {
        version: 1,
        size: frontier.size(),
        nodes: frontier.nodes().iter().map(hex::encode).collect(),
    };
    let json = serde_json::to_vec(&state).map_err(|e| IntegrityError::Invalid(e.to_string()))?;
    store
        .put(
            &objects::path(&checkpoint_key(cp.size))?,
            PutPayload::from(cp.to_text().into_bytes()),
        )
        .await?;
    store
        .put(&objects::path(STATE_KEY)?, PutPayload::from(json))
        .await?;
    Ok(())
}

/// The newest checkpoint stored in the vault, as text (what `export_checkpoint` hands out).
pub async fn export_checkpoint(store: &Arc<dyn ObjectStore>) -> Result<Option<String>> {
    let mut keys: Vec<String> = objects::list(store, CHECKPOINTS_PREFIX)
        .await?
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|k| k.ends_with(".txt"))
        .collect();
    keys.sort();
    let Some(last) = keys.last() else {
        return Ok(None);
    };
    let bytes = objects::get_limited(store, last, CHECKPOINT_BYTES_MAX)
        .await?
        .ok_or_else(|| IntegrityError::corrupt(last.as_str(), "vanished while reading"))?;
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| IntegrityError::corrupt(last.as_str(), "not UTF-8"))
}

/// Read every stored checkpoint (for the validator's cross-check).
pub(crate) async fn stored_checkpoints(
    store: &Arc<dyn ObjectStore>,
) -> Result<Vec<(String, std::result::Result<Checkpoint, String>)>> {
    let mut out = Vec::new();
    for m in objects::list(store, CHECKPOINTS_PREFIX).await? {
        let key = m.location.to_string();
        if !key.ends_with(".txt") {
            continue;
        }
        let parsed = match objects::get_limited(store, &key, CHECKPOINT_BYTES_MAX).await {
            Ok(Some(b)) => std::str::from_utf8(&b)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|t| Checkpoint::parse(t).map_err(|e| e.to_string())),
            Ok(None) => Err("not found".into()),
            Err(e) => Err(e.to_string()),
        };
        out.push((key, parsed));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open_or_create(dir.path(), SignatureAlgorithm::Ed25519).unwrap();
        let cp = Checkpoint::sign(&ring, 42, [7u8; 32], crate::time::now_ms()).unwrap();
        let text = cp.to_text();
        assert!(text.starts_with("trailvault/digests\n42\n"));
        let back = Checkpoint::parse(&text).unwrap();
        assert_eq!(back, cp);
        back.verify(&ring.public_keys()).unwrap();
        let forged = text.replace("\n42\n", "\n43\n");
        let f = Checkpoint::parse(&forged).unwrap();
        assert_eq!(
            f.verify(&ring.public_keys()).unwrap_err(),
            "signature verification failed"
        );
        assert!(Checkpoint::parse("garbage").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "(trailvault/digests|[0-9]{1,3}|time [0-9TZ:-]{0,20}|key Ed25519 [a-f0-9]{0,4}|\u{2014} x [A-Za-z0-9+/=]{0,8}|\n|\n\n|[^\n]{0,6}){0,10}") {
            let _ = Checkpoint::parse(&s);
        }
    }
}
