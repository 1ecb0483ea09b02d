//! Validation throughput: builds a vault of sealed segments in a temporary directory, then
//! times `validate` on one and two workers, next to `openssl dgst -sha256` and `sha256sum`
//! (one process, and two processes on half the files each) over the same segment files.
//!
//! `cargo run --release -p trailvault-integrity --example validate_throughput [SEGMENTS] [EVENTS_PER_SEGMENT] [RUNS]`

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use trailvault_integrity::{
    seal_segment, validate, DigestWriter, Keyring, PublicKeySet, SegmentSeal, SignatureAlgorithm,
    ValidateOptions,
};
use trailvault_model::StoredEvent;

// As the `trailvault` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let segments: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let per: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&data)?);
    let ring = Keyring::open_or_create(&data.join("keys"), SignatureAlgorithm::Ed25519)?;
    let mut w = DigestWriter::open(store.clone(), ring).await?;
    let t0 = 1_763_780_400_000i64;
    let mut seals = Vec::new();
    let mut total_bytes = 0u64;
    let mut files = Vec::new();
    let t_seal = Instant::now();
    let mut seal_cpu = std::time::Duration::ZERO;
    for s in 0..segments {
        let mut ev: Vec<StoredEvent> = (0..per)
            .map(|i| {
                let seq = s * per + i + 1;
                StoredEvent {
                    seq,
                    group: "bench".into(),
                    stream: format!("s{}", i % 4),
                    timestamp_ms: t0 + i as i64,
                    ingestion_time_ms: t0 + i as i64 + 3,
                    message: format!(
                        "{{\"eventVersion\":\"1.08\",\"eventName\":\"PutObject\",\"requestID\":\"{:016x}\",\"sourceIPAddress\":\"10.{}.{}.{}\",\"n\":{seq}}}",
                        seq.wrapping_mul(0x9e3779b97f4a7c15),
                        seq % 251,
                        seq % 13,
                        seq % 7
                    ),
                    normalized: None,
                }
            })
            .collect();
        trailvault_segment::sort_for_segment(&mut ev);
        let bytes = trailvault_segment::encode(&ev)?;
        let key = format!(
            "segments/group=bench/year=2025/month=11/day=22/hour=03/{:020}-{:020}.parquet",
            s * per + 1,
            (s + 1) * per
        );
        let t = Instant::now();
        let hashes = seal_segment(&bytes, &ev);
        seal_cpu += t.elapsed();
        total_bytes += bytes.len() as u64;
        files.push(data.join(&key));
        store
            .put(
                &object_store::path::Path::parse(&key)?,
                Bytes::from(bytes.clone()).into(),
            )
            .await?;
        seals.push(SegmentSeal::new(
            "bench",
            key,
            &hashes,
            bytes.len() as u64,
            t0,
        ));
    }
    w.write_period("bench", t0, t0 + 3_600_000, &seals).await?;
    let events = segments * per;
    println!(
        "vault: {segments} segments, {events} events, {:.1} MB stored (built in {:.1} s)",
        total_bytes as f64 / 1e6,
        t_seal.elapsed().as_secs_f64()
    );
    println!(
        "seal_segment (hash bytes + Merkle over events): {:.0} MB/s, {:.2} us/event",
        total_bytes as f64 / seal_cpu.as_secs_f64() / 1e6,
        seal_cpu.as_secs_f64() * 1e6 / events as f64
    );
    let keys = PublicKeySet::load_dir(&data.join("keys"))?;
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    let mb = total_bytes as f64 / 1e6;
    // Each contender `runs` times, interleaved, medians: validate (deep and --hash-only) on 1
    // and 2 workers, our
    // byte hash alone, and openssl / sha256sum as one process and as two (half the files
    // each) for the same scaling comparison.
    let half = files.len() / 2;
    let tools: [(&str, Vec<&str>); 2] = [
        ("openssl dgst -sha256", vec!["openssl", "dgst", "-sha256"]),
        ("sha256sum", vec!["sha256sum"]),
    ];
    let mut times: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for _ in 0..runs {
        for (hash_only, concurrency) in [(false, 1usize), (false, 2), (true, 1), (true, 2)] {
            let t = Instant::now();
            let r = validate(
                ValidateOptions {
                    concurrency,
                    hash_only,
                    ..Default::default()
                },
                store.clone(),
                &keys,
            )
            .await?;
            assert!(r.is_valid());
            let mode = if hash_only { " --hash-only" } else { "" };
            times
                .entry(format!("validate{mode}, {concurrency} worker(s)"))
                .or_default()
                .push(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        for f in &files {
            let b = std::fs::read(f)?;
            std::hint::black_box(trailvault_integrity::sha256(&b));
        }
        times
            .entry("sha256 of the files (ours, read + hash, 1 thread)".into())
            .or_default()
            .push(t.elapsed().as_secs_f64());
        for (name, cmd) in &tools {
            for procs in [1usize, 2] {
                let parts: Vec<&[std::path::PathBuf]> = if procs == 1 {
                    vec![&files[..]]
                } else {
                    vec![&files[..half], &files[half..]]
                };
                let t = Instant::now();
                let children: Vec<_> = parts
                    .iter()
                    .map(|p| {
                        Command::new(cmd[0])
                            .args(&cmd[1..])
                            .args(*p)
                            .stdout(std::process::Stdio::null())
                            .spawn()
                    })
                    .collect::<Result<_, _>>()?;
                for mut c in children {
                    anyhow::ensure!(c.wait()?.success(), "{name} failed");
                }
                times
                    .entry(format!("{name}, {procs} process(es)"))
                    .or_default()
                    .push(t.elapsed().as_secs_f64());
            }
        }
    }
    println!("medians of {runs} runs over the same {mb:.1} MB ({events} events):");
    for (name, mut v) in times {
        v.sort_by(f64::total_cmp);
        let secs = v[v.len() / 2];
        println!(
            "  {name}: {secs:.3} s, {:.0} MB/s, {:.0} k events/s",
            mb / secs,
            events as f64 / secs / 1e3
        );
    }
    Ok(())
}
