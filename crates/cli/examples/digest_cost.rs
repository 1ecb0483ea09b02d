//! What the digest clock adds to ingest: the same embedded ingest (WAL, group commit, the
//! sealer at a 1 s seal age, a final seal) timed with the vault's real digest clock running
//! at a 1 s period (3,600 times the default rate) and without it, runs interleaved, medians.
//!
//! `cargo run --release -p trailvault --example digest_cost [BATCHES] [GROUPS] [RUNS]`

// The clock exactly as `trailvault serve` runs it.
#[path = "../src/digests.rs"]
#[allow(dead_code)]
mod digests;

use std::time::{Duration, Instant};

use trailvault_integrity::SignatureAlgorithm;
use trailvault_store::{InputEvent, LogGroupMeta, PutOptions, Vault, VaultConfig};

const EVENTS_PER_BATCH: usize = 1000;

fn message(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let mut m = format!(
        r#"{{"eventVersion":"1.09","eventSource":"s3.amazonaws.com","eventName":"PutObject","sourceIPAddress":"10.0.{}.{}","requestID":"{x:016x}","pad":""#,
        seed % 251,
        seed % 13
    );
    while m.len() < 998 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.push((b'a' + (x % 26) as u8) as char);
    }
    m.push_str("\"}");
    m
}

async fn run(
    dir: &std::path::Path,
    batches: usize,
    groups: usize,
    clock: bool,
) -> anyhow::Result<(Duration, usize)> {
    let mut cfg = VaultConfig::new(dir);
    cfg.seal_age = Duration::from_secs(1);
    let vault = Vault::open(cfg).await?;
    vault.spawn_sealer();
    for g in 0..groups {
        vault.create_log_group(LogGroupMeta {
            name: format!("g{g}"),
            created_ms: trailvault_store::now_ms(),
            retention_days: None,
            kms_key_id: None,
            log_group_class: "STANDARD".into(),
            deletion_protection: false,
            tags: Default::default(),
        })?;
        vault.create_log_stream(&format!("g{g}"), "s")?;
    }
    let ticker = if clock {
        let writer = digests::open_writer(&vault, SignatureAlgorithm::Ed25519).await?;
        Some(digests::spawn(
            vault.clone(),
            writer,
            Duration::from_secs(1),
        ))
    } else {
        None
    };
    let start = Instant::now();
    for b in 0..batches {
        let now = trailvault_store::now_ms();
        let events: Vec<InputEvent> = (0..EVENTS_PER_BATCH)
            .map(|i| InputEvent {
                timestamp_ms: now,
                message: message((b * EVENTS_PER_BATCH + i) as u64),
                normalized: None,
            })
            .collect();
        vault
            .put_log_events(
                &format!("g{}", b % groups),
                "s",
                events,
                PutOptions::api(now),
            )
            .await?;
    }
    vault.seal_now().await?;
    let took = start.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }
    let digests = walk(&dir.join("digests"));
    Ok((took, digests))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        usize::from(p.extension().is_some_and(|x| x == "json"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (batches, groups, runs) = (arg(1, 500), arg(2, 20), arg(3, 5));
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut written = Vec::new();
    for r in 0..runs {
        // Alternate which arm goes first, so drift in the machine's load hits both.
        let order = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for clock in order {
            let dir = tempfile::tempdir()?;
            let (t, n) = run(dir.path(), batches, groups, clock).await?;
            if clock {
                on.push(t.as_secs_f64());
                written.push(n);
            } else {
                off.push(t.as_secs_f64());
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (med(&mut off), med(&mut on));
    let mb = (batches * EVENTS_PER_BATCH * 1000) as f64 / 1e6;
    println!(
        "{batches} batches x {EVENTS_PER_BATCH} events of ~1 KB ({mb:.0} MB) over {groups} groups, ingest + seal, medians of {runs}:"
    );
    println!("  without the digest clock: {a:.3} s ({:.0} MB/s)", mb / a);
    println!(
        "  digest clock at 1 s:      {b:.3} s ({:.0} MB/s), digests written per run {:?}",
        mb / b,
        written
    );
    println!("  added cost: {:+.1}%", (b / a - 1.0) * 100.0);
    Ok(())
}
