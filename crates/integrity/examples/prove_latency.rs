//! Proof generation latency: a vault of many groups and digest periods (most quiet, as in
//! real life), then `prove_event` through the proof index for random events, next to its
//! peers in one run: reading one digest and hashing it, reading and hashing one segment,
//! reading and decoding one segment (what any proof of an event in it must pay), and the
//! index-less scan (`prove` on a copy without the index).
//!
//! `cargo run --release -p trailvault-integrity --example prove_latency [GROUPS] [PERIODS] [SEGMENTS] [EVENTS_PER_SEGMENT]`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use trailvault_integrity::digest::PeriodDigest;
use trailvault_integrity::proof::{prove_event, verify_proof, Proof};
use trailvault_integrity::proof_index::{ProofIndex, PROOF_INDEX_FILE};
use trailvault_integrity::{
    seal_segment, DigestWriter, Keyring, PublicKeySet, SegmentSeal, SignatureAlgorithm,
};
use trailvault_model::StoredEvent;

// As the `trailvault` binary: the allocator changes what opening a segment costs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median_us(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (groups, periods, segments, per) = (arg(1, 20), arg(2, 500), arg(3, 2000), arg(4, 500));
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&data)?);
    let ring = Keyring::open_or_create(&data.join("keys"), SignatureAlgorithm::Ed25519)?;
    let mut w = DigestWriter::open(store.clone(), ring).await?;
    w.attach_proof_index(ProofIndex::open(&data.join(PROOF_INDEX_FILE))?)
        .await?;
    let t0 = 1_763_780_400_000i64;
    let period = 3_600_000i64;
    let built = Instant::now();
    let mut seq = 1u64;
    let mut seg_keys = Vec::new();
    let mut sealed = 0u64;
    for p in 0..periods as i64 {
        // Spread the segments evenly over the periods, round-robin over the groups.
        let due = (segments * (p as u64 + 1)) / periods - sealed;
        let mut seals: Vec<Vec<SegmentSeal>> = vec![Vec::new(); groups as usize];
        for _ in 0..due {
            let g = (sealed % groups) as usize;
            let group = format!("g{g}");
            let mut ev: Vec<StoredEvent> = (0..per)
                .map(|i| StoredEvent {
                    seq: seq + i,
                    group: group.clone(),
                    stream: "s".into(),
                    timestamp_ms: t0 + p * period + i as i64,
                    ingestion_time_ms: t0 + p * period + i as i64 + 3,
                    message: format!(
                        "{{\"eventName\":\"PutObject\",\"requestID\":\"{:016x}\",\"n\":{}}}",
                        (seq + i).wrapping_mul(0x9e3779b97f4a7c15),
                        seq + i
                    ),
                    normalized: None,
                })
                .collect();
            trailvault_segment::sort_for_segment(&mut ev);
            let (bytes, _) = trailvault_integrity::leaf::encode_segment(&ev)?;
            let key = format!(
                "segments/group={group}/year=2025/month=11/day=22/hour=03/{seq:020}-{:020}.parquet",
                seq + per - 1
            );
            store
                .put(
                    &object_store::path::Path::parse(&key)?,
                    Bytes::from(bytes.clone()).into(),
                )
                .await?;
            let hashes = seal_segment(&bytes, &ev);
            seals[g].push(SegmentSeal::new(
                &group,
                &key,
                &hashes,
                bytes.len() as u64,
                t0 + p * period,
            ));
            seg_keys.push((key, seq));
            seq += per;
            sealed += 1;
        }
        let names: Vec<String> = (0..groups).map(|g| format!("g{g}")).collect();
        let batch: Vec<PeriodDigest<'_>> = names
            .iter()
            .zip(&seals)
            .map(|(group, seals)| PeriodDigest {
                group,
                start_ms: t0 + p * period,
                end_ms: t0 + (p + 1) * period,
                seals,
                deletions: &[],
            })
            .collect();
        w.write_periods(&batch).await?;
    }
    let digests = w.tree_size();
    println!(
        "vault: {groups} groups x {periods} periods = {digests} digests, {} segments x {per} events (built in {:.1} s)",
        seg_keys.len(),
        built.elapsed().as_secs_f64()
    );
    let keys = PublicKeySet::load_dir(&data.join("keys"))?;
    let index = ProofIndex::open_read_only(&data.join(PROOF_INDEX_FILE))?.expect("index");
    let samples = 200usize;
    let mut rng = 0x2545f4914f6cdd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let ids: Vec<String> = (0..samples)
        .map(|_| format!("{:020}", next() % (seq - 1) + 1))
        .collect();
    // Warm the page cache once, as a running vault's would be.
    for id in &ids {
        prove_event(&store, id, Some(&index)).await?;
    }
    let mut t_prove = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let p = prove_event(&store, id, Some(&index)).await?;
        t_prove.push(t.elapsed().as_secs_f64());
        verify_proof(&Proof::Event(Box::new(p)), &keys).map_err(anyhow::Error::msg)?;
    }
    let mut t_digest = Vec::new();
    let mut t_seg_hash = Vec::new();
    let mut t_seg_decode = Vec::new();
    let mut t_seg_tree = Vec::new();
    for id in &ids {
        let n: u64 = id.parse()?;
        let (key, _) = seg_keys
            .iter()
            .rev()
            .find(|(_, first)| *first <= n)
            .expect("segment");
        let dkey = index.digest_at(next() % digests)?.expect("digest").0;
        let t = Instant::now();
        let b = std::fs::read(data.join(&dkey))?;
        std::hint::black_box(trailvault_integrity::sha256(&b));
        t_digest.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let b = std::fs::read(data.join(key))?;
        std::hint::black_box(trailvault_integrity::sha256(&b));
        t_seg_hash.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let ev = trailvault_segment::decode(Bytes::from(b), trailvault_segment::Projection::Core)?;
        std::hint::black_box(ev.len());
        t_seg_decode.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(trailvault_integrity::leaf::segment_tree(&ev).root());
        t_seg_tree.push(t.elapsed().as_secs_f64());
    }
    // The index's share: the lookups `prove` makes (segment, digest, inclusion path).
    let cp_size = index.checkpoint_size()?.expect("checkpoint");
    let mut t_lookups = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let (_, ti) = index.segments_for_seq(id.parse()?)?[0].clone();
        index.digest_at(ti)?;
        std::hint::black_box(index.inclusion_proof(ti, cp_size)?);
        t_lookups.push(t.elapsed().as_secs_f64());
    }
    let mut t_scan = Vec::new();
    for id in ids.iter().take(3) {
        let t = Instant::now();
        prove_event(&store, id, None).await?;
        t_scan.push(t.elapsed().as_secs_f64());
    }
    let prove = median_us(t_prove.clone());
    println!("medians over {samples} random events (page cache warm):");
    println!("  prove_event with the proof index: {prove:.0} us");
    t_prove.sort_by(f64::total_cmp);
    println!("    p99 {:.0} us", t_prove[t_prove.len() * 99 / 100] * 1e6);
    println!(
        "    of which index lookups (segment, digest, inclusion path): {:.0} us",
        median_us(t_lookups)
    );
    println!(
        "  peer: read + SHA-256 one digest: {:.0} us",
        median_us(t_digest)
    );
    println!(
        "  peer: read + SHA-256 one segment: {:.0} us",
        median_us(t_seg_hash)
    );
    println!(
        "  peer: decode one segment (Parquet, core columns): {:.0} us",
        median_us(t_seg_decode)
    );
    println!(
        "  peer: rebuild one segment's Merkle tree (what a proof costs without the footer's subtree roots): {:.0} us",
        median_us(t_seg_tree)
    );
    println!(
        "  without the index (scan every digest; 3 events): {:.0} us",
        median_us(t_scan)
    );
    Ok(())
}
