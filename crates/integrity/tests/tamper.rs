//! The tamper suite: build a real chain (segments encoded with the segment codec, seals,
//! digests, checkpoints), tamper with a copy of it in one way, and check the validator
//! names exactly that tampering. A clean chain must produce no failure at all.
//!
//! `TRAILVAULT_TAMPER_SEGMENTS=10000` sets the size of the clean-chain run (default 300).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use trailvault_integrity::checkpoint::{self, Checkpoint};
use trailvault_integrity::digest::{
    self, parse_digest, signature_key, string_to_sign, SignatureFile,
};
use trailvault_integrity::validate::{Kind, Status};
use trailvault_integrity::{
    seal_segment, sha256, validate, DigestRef, DigestWriter, Keyring, PublicKeySet, SegmentSeal,
    SignatureAlgorithm, ValidateOptions, ValidationReport,
};
use trailvault_model::StoredEvent;

const PERIOD_MS: i64 = 60_000;

struct Chain {
    _dir: tempfile::TempDir,
    root: PathBuf,
    keys: PublicKeySet,
    /// Digests in writing order.
    digests: Vec<DigestRef>,
    /// Segment keys per digest, parallel to `digests`.
    segments: Vec<Vec<String>>,
    checkpoint: Checkpoint,
}

fn local(root: &Path) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(root.join("data")).unwrap())
}

fn segment_key(group: &str, first: u64, last: u64) -> String {
    let g = trailvault_integrity::objects::encode_group(group);
    format!("segments/group={g}/year=2026/month=11/day=22/hour=03/{first:020}-{last:020}.parquet")
}

fn events(group: &str, first_seq: u64, n: u64, t0: i64) -> Vec<StoredEvent> {
    let mut ev: Vec<StoredEvent> = (0..n)
        .map(|i| StoredEvent {
            seq: first_seq + i,
            group: group.into(),
            stream: format!("stream-{}", i % 2),
            timestamp_ms: t0 + i as i64 * 7,
            ingestion_time_ms: t0 + 1000,
            message: format!("{{\"eventName\":\"Put\",\"n\":{}}}", first_seq + i),
            normalized: None,
        })
        .collect();
    trailvault_segment::sort_for_segment(&mut ev);
    ev
}

/// A chain over two groups; the newest periods end an hour in the future, so segments
/// written now are older than the newest digest (added ones are INVALID, not pending).
async fn build(segments_total: usize) -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("data")).unwrap();
    let store = local(&root);
    let ring = Keyring::open_or_create(&root.join("keys"), SignatureAlgorithm::Ed25519).unwrap();
    let keys_dir = root.join("keys");
    let mut writer = DigestWriter::open(store.clone(), ring).await.unwrap();
    let groups = ["app/one", "audit#two"];
    let periods = 8usize;
    let per_period = segments_total.div_ceil(groups.len() * (periods - 1)).max(1);
    let end = (trailvault_integrity::time::now_ms() / 1000) * 1000 + 3_600_000;
    let start0 = end - periods as i64 * PERIOD_MS;
    let mut digests = Vec::new();
    let mut seg_keys = Vec::new();
    let mut seq = 1u64;
    let mut written = 0usize;
    for p in 0..periods {
        let (s, e) = (
            start0 + p as i64 * PERIOD_MS,
            start0 + (p as i64 + 1) * PERIOD_MS,
        );
        for g in groups {
            let mut seals = Vec::new();
            // Period 3 is quiet: a digest with no segments.
            let count = if p == 3 {
                0
            } else {
                per_period.min(segments_total - written)
            };
            for _ in 0..count {
                let n = 3 + (seq % 3);
                let ev = events(g, seq, n, s);
                let key = segment_key(g, seq, seq + n - 1);
                seq += n;
                let bytes = trailvault_segment::encode(&ev).unwrap();
                let decoded = trailvault_segment::decode(
                    Bytes::from(bytes.clone()),
                    trailvault_segment::Projection::Core,
                )
                .unwrap();
                let hashes = seal_segment(&bytes, &decoded);
                put(&store, &key, bytes.clone()).await;
                seals.push(SegmentSeal::new(
                    g,
                    key,
                    &hashes,
                    bytes.len() as u64,
                    s + 10,
                ));
                written += 1;
            }
            let r = writer.write_period(g, s, e, &seals).await.unwrap();
            seg_keys.push(seals.iter().map(|x| x.key.clone()).collect());
            digests.push(r);
        }
    }
    let cp = Checkpoint::parse(
        &checkpoint::export_checkpoint(&store)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    Chain {
        _dir: dir,
        root,
        keys: PublicKeySet::load_dir(&keys_dir).unwrap(),
        digests,
        segments: seg_keys,
        checkpoint: cp,
    }
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    store
        .put(&object_store::path::Path::parse(key).unwrap(), bytes.into())
        .await
        .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A fresh copy of the chain to tamper with.
fn copy(chain: &Chain) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&chain.root.join("data"), &dir.path().join("data"));
    dir
}

fn file(dir: &Path, key: &str) -> PathBuf {
    dir.join("data").join(key)
}

/// Validate `dir`, deeply (Merkle roots recomputed) and by hashes only: every tampering
/// changes bytes a signed digest hashes, so both must find exactly the same failures.
async fn run(dir: &Path, chain: &Chain, checkpoint: Option<Checkpoint>) -> ValidationReport {
    let opts = ValidateOptions {
        checkpoint,
        ..Default::default()
    };
    let hash_only = ValidateOptions {
        hash_only: true,
        ..opts.clone()
    };
    let deep = validate(opts, local(dir), &chain.keys).await.unwrap();
    let quick = validate(hash_only, local(dir), &chain.keys).await.unwrap();
    assert_eq!(
        all_failures(&quick),
        all_failures(&deep),
        "--hash-only found other failures"
    );
    deep
}

/// Failures of digests and segments (the digest-tree findings are checked apart).
fn failures(r: &ValidationReport) -> Vec<(Kind, String, String)> {
    all_failures(r)
        .into_iter()
        .filter(|f| f.0 != Kind::Checkpoint)
        .collect()
}

fn tree_failures(r: &ValidationReport) -> Vec<String> {
    all_failures(r)
        .into_iter()
        .filter(|f| f.0 == Kind::Checkpoint)
        .map(|f| f.2)
        .collect()
}

fn all_failures(r: &ValidationReport) -> Vec<(Kind, String, String)> {
    r.failures()
        .into_iter()
        .map(|f| match &f.status {
            Status::Invalid(why) => (f.kind.clone(), f.key.clone(), why.clone()),
            _ => unreachable!(),
        })
        .collect()
}

/// A digest in the middle of group 0's chain that lists segments.
fn middle(chain: &Chain) -> usize {
    (4..chain.digests.len())
        .find(|&i| {
            chain.digests[i].group == chain.digests[0].group && !chain.segments[i].is_empty()
        })
        .unwrap()
}

#[tokio::test]
async fn tamper_suite() {
    let chain = build(40).await;

    // Clean copy: nothing to report.
    let d = copy(&chain);
    let r = run(d.path(), &chain, Some(chain.checkpoint.clone())).await;
    assert!(r.is_valid(), "{}", r.render(false));
    assert_eq!(r.digests_total(), chain.digests.len());
    assert_eq!(r.segments_valid(), 40);

    let m = middle(&chain);
    let seg = chain.segments[m][0].clone();
    let other_seg = chain.segments[(m + 1..chain.digests.len())
        .find(|&i| !chain.segments[i].is_empty())
        .unwrap()][0]
        .clone();

    // One byte flipped in a segment.
    let d = copy(&chain);
    let p = file(d.path(), &seg);
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&p, &b).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].0.clone(), f[0].1.as_str()),
        (Kind::Segment, seg.as_str())
    );
    assert!(f[0].2.starts_with("hash value doesn't match"), "{f:?}");

    // A segment deleted.
    let d = copy(&chain);
    std::fs::remove_file(file(d.path(), &seg)).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    assert_eq!(
        f,
        vec![(Kind::Segment, seg.clone(), "not found".to_string())]
    );

    // A segment added.
    let d = copy(&chain);
    let extra = segment_key("app/one", 900_000, 900_004);
    std::fs::copy(file(d.path(), &seg), file(d.path(), &extra)).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    assert_eq!(
        f,
        vec![(
            Kind::Segment,
            extra.clone(),
            "not in any digest".to_string()
        )]
    );

    // A segment swapped for another valid one.
    let d = copy(&chain);
    std::fs::copy(file(d.path(), &other_seg), file(d.path(), &seg)).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].1, seg);
    assert!(
        f[0].2
            .contains(&format!("its content is that of segment {other_seg}")),
        "{f:?}"
    );

    // An event removed from inside a segment (re-encoded: a valid segment, one event short).
    let d = copy(&chain);
    let p = file(d.path(), &seg);
    let mut ev = trailvault_segment::decode(
        Bytes::from(std::fs::read(&p).unwrap()),
        trailvault_segment::Projection::All,
    )
    .unwrap();
    let n = ev.len();
    ev.remove(1);
    std::fs::write(&p, trailvault_segment::encode(&ev).unwrap()).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].2,
        format!(
            "hash value doesn't match; Merkle root doesn't match ({} events, the digest lists {n})",
            n - 1
        )
    );

    // A digest altered (content changed, signature left as it was).
    let dk = chain.digests[m].key.clone();
    let d = copy(&chain);
    let p = file(d.path(), &dk);
    let text = std::fs::read_to_string(&p).unwrap();
    let altered = text.replacen("\"eventCount\": ", "\"eventCount\": 1", 1);
    assert_ne!(text, altered);
    std::fs::write(&p, altered).unwrap();
    let r = run(d.path(), &chain, None).await;
    assert_eq!(
        failures(&r),
        vec![(
            Kind::Digest,
            dk.clone(),
            "signature verification failed".to_string()
        )]
    );
    let t = tree_failures(&r);
    assert!(t.len() == 1 && t[0].contains("history rewritten"), "{t:?}");

    // A digest deleted: reported, and its segments are now in no digest.
    let d = copy(&chain);
    std::fs::remove_file(file(d.path(), &dk)).unwrap();
    std::fs::remove_file(file(d.path(), &signature_key(&dk))).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    let digest_failures: Vec<_> = f.iter().filter(|x| x.0 == Kind::Digest).collect();
    assert_eq!(
        digest_failures,
        vec![&(Kind::Digest, dk.clone(), "not found".to_string())]
    );
    let orphan: Vec<_> = f
        .iter()
        .filter(|x| x.0 == Kind::Segment)
        .map(|x| (x.1.clone(), x.2.as_str()))
        .collect();
    assert_eq!(orphan.len(), chain.segments[m].len());
    assert!(orphan
        .iter()
        .all(|(k, why)| chain.segments[m].contains(k) && *why == "not in any digest"));

    // Two consecutive digests deleted: reported as two.
    let next_same_group = (m + 1..chain.digests.len())
        .find(|&i| chain.digests[i].group == chain.digests[m].group)
        .unwrap();
    let dk2 = chain.digests[next_same_group].key.clone();
    let d = copy(&chain);
    for k in [&dk, &dk2] {
        std::fs::remove_file(file(d.path(), k)).unwrap();
    }
    let f = failures(&run(d.path(), &chain, None).await);
    let missing: Vec<_> = f.iter().filter(|x| x.0 == Kind::Digest).collect();
    assert_eq!(missing.len(), 2, "{f:?}");
    assert!(missing.iter().all(|x| x.2 == "not found"));
    assert_eq!(missing[0].1, dk2);

    // Two digests reordered (their files swapped).
    let d = copy(&chain);
    let (a, b) = (file(d.path(), &dk), file(d.path(), &dk2));
    let (ta, tb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, tb).unwrap();
    std::fs::write(&b, ta).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    let moved: Vec<_> = f
        .iter()
        .filter(|x| x.0 == Kind::Digest)
        .map(|x| x.2.as_str())
        .collect();
    assert_eq!(
        moved,
        vec!["has been moved from its original location"; 2],
        "{f:?}"
    );

    // Signatures swapped between two digests.
    let d = copy(&chain);
    let (a, b) = (
        file(d.path(), &signature_key(&dk)),
        file(d.path(), &signature_key(&dk2)),
    );
    let (ta, tb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, tb).unwrap();
    std::fs::write(&b, ta).unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    assert_eq!(
        f,
        vec![
            (
                Kind::Digest,
                dk2.clone(),
                "signature verification failed".to_string()
            ),
            (
                Kind::Digest,
                dk.clone(),
                "signature verification failed".to_string()
            ),
        ]
    );

    // A digest rewritten and re-signed with a foreign key.
    let d = copy(&chain);
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = Keyring::open_or_create(foreign_dir.path(), SignatureAlgorithm::Ed25519).unwrap();
    let p = file(d.path(), &dk);
    let mut dg = parse_digest(&dk, &std::fs::read(&p).unwrap()).unwrap();
    dg.segments.pop();
    dg.digest_public_key_fingerprint = foreign.active_key().fingerprint.clone();
    let bytes = serde_json::to_vec_pretty(&dg).unwrap();
    let sts = string_to_sign(
        &dg.digest_end_time,
        &dk,
        &sha256(&bytes),
        dg.previous_digest_signature.as_deref(),
    );
    let sig = foreign.sign(sts.as_bytes()).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    let sig_file = SignatureFile {
        signature: hex::encode(&sig.bytes),
        signature_algorithm: sig.algorithm,
        fingerprint: sig.fingerprint.clone(),
    };
    std::fs::write(
        file(d.path(), &signature_key(&dk)),
        serde_json::to_vec(&sig_file).unwrap(),
    )
    .unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    // The segment the forger dropped is now listed nowhere: reported too.
    assert_eq!(
        f,
        vec![
            (
                Kind::Digest,
                dk.clone(),
                format!(
                    "public key not found for fingerprint {}",
                    foreign.active_key().fingerprint
                )
            ),
            (
                Kind::Segment,
                chain.segments[m].last().unwrap().clone(),
                "not in any digest".to_string()
            ),
        ]
    );

    // The same rewrite signed with the vault's own key (a rogue administrator): the next
    // digest's record of its predecessor's hash and signature gives it away.
    let d = copy(&chain);
    let own = Keyring::open(&chain.root.join("keys")).unwrap();
    let mut dg = parse_digest(&dk, &std::fs::read(file(d.path(), &dk)).unwrap()).unwrap();
    dg.segments.pop();
    let bytes = serde_json::to_vec_pretty(&dg).unwrap();
    let sts = string_to_sign(
        &dg.digest_end_time,
        &dk,
        &sha256(&bytes),
        dg.previous_digest_signature.as_deref(),
    );
    let sig = own.sign(sts.as_bytes()).unwrap();
    std::fs::write(file(d.path(), &dk), &bytes).unwrap();
    let sig_file = SignatureFile {
        signature: hex::encode(&sig.bytes),
        signature_algorithm: sig.algorithm,
        fingerprint: sig.fingerprint.clone(),
    };
    std::fs::write(
        file(d.path(), &signature_key(&dk)),
        serde_json::to_vec(&sig_file).unwrap(),
    )
    .unwrap();
    let f = failures(&run(d.path(), &chain, None).await);
    let dropped = chain.segments[m].last().unwrap().clone();
    assert!(
        f.contains(&(
            Kind::Digest,
            dk.clone(),
            format!("hash value doesn't match the previousDigestHashValue of {dk2}")
        )),
        "{f:?}"
    );
    assert!(
        f.contains(&(Kind::Segment, dropped, "not in any digest".to_string())),
        "{f:?}"
    );
    // ... and the digest tree no longer matches the vault's own checkpoints.
    let t = tree_failures(&run(d.path(), &chain, None).await);
    assert!(t.len() == 1 && t[0].contains("history rewritten"), "{t:?}");

    // The tail truncated: the newest digests, their segments and the checkpoints after them
    // deleted, state rewritten. Invisible to a chain walk; caught by the exported checkpoint.
    let d = copy(&chain);
    let keep = chain.digests.len() - 3;
    for i in keep..chain.digests.len() {
        let k = &chain.digests[i].key;
        std::fs::remove_file(file(d.path(), k)).unwrap();
        std::fs::remove_file(file(d.path(), &signature_key(k))).unwrap();
        for s in &chain.segments[i] {
            std::fs::remove_file(file(d.path(), s)).unwrap();
        }
    }
    for size in keep as u64 + 1..=chain.digests.len() as u64 {
        std::fs::remove_file(file(d.path(), &checkpoint::checkpoint_key(size))).unwrap();
    }
    let r = run(d.path(), &chain, None).await;
    assert!(
        r.is_valid(),
        "without a checkpoint a truncated tail looks clean: {}",
        r.render(false)
    );
    let r = run(d.path(), &chain, Some(chain.checkpoint.clone())).await;
    assert!(failures(&r).is_empty());
    let t = tree_failures(&r);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].starts_with("history truncated"), "{t:?}");
    // A truncated tail of one group only also leaves a hole in the tree indices.
    let d = copy(&chain);
    let k = &chain.digests[chain.digests.len() - 2].key;
    std::fs::remove_file(file(d.path(), k)).unwrap();
    let t = tree_failures(&run(d.path(), &chain, None).await);
    assert!(
        t.iter().any(|x| x.contains("1 of 16 digests are missing")),
        "{t:?}"
    );
    let _ = digest::DIGESTS_PREFIX;
}

#[tokio::test]
async fn no_false_alarms_on_a_clean_chain() {
    let n = std::env::var("TRAILVAULT_TAMPER_SEGMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let chain = build(n).await;
    let r = run(&chain.root, &chain, Some(chain.checkpoint.clone())).await;
    assert!(r.is_valid(), "{}", r.render(false));
    assert_eq!(r.segments_valid(), n);
    assert_eq!(r.segments_total(), n);
    assert_eq!(r.digests_valid(), chain.digests.len());
    // A time range: only the digests in it, links across its edge followed, no false alarm.
    let from = chain.digests[6].start_ms;
    let opts = ValidateOptions {
        start_ms: Some(from),
        ..Default::default()
    };
    let ranged = validate(opts, local(&chain.root), &chain.keys)
        .await
        .unwrap();
    assert!(ranged.is_valid(), "{}", ranged.render(false));
    assert_eq!(
        ranged.digests_total(),
        chain.digests.iter().filter(|d| d.end_ms > from).count()
    );
    let text = r.render(false);
    assert!(
        text.contains(&format!(
            "{0}/{0} digest files valid\n{n}/{n} segment files valid",
            chain.digests.len()
        )),
        "{text}"
    );
}
