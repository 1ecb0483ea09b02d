//! `trailvault-import` killed (SIGKILL) at seeded moments and run again until it completes:
//! after every kill, each file the ledger names has all its records committed (a file is in
//! the ledger only after its segments are durable and committed) and no sequence number is
//! used twice; at the end every record is stored exactly once.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trailvault_import::generate::{write_cloudtrail_tree, Rng};
use trailvault_import::placement::{stream_for, QUARANTINE_GROUP};
use trailvault_import::sink::{LedgerEntry, Sink};
use trailvault_store::{StreamFilter, Vault, VaultConfig};

const RECORDS_PER_FILE: usize = 50;

/// Per (group, stream): event count; and the ledger's entries.
async fn vault_state(data: &Path) -> (BTreeMap<(String, String), u64>, Vec<LedgerEntry>) {
    let vault = Vault::open(VaultConfig::new(data)).await.unwrap();
    let mut counts = BTreeMap::new();
    let mut seqs = HashSet::new();
    for g in vault.log_groups() {
        let mut stored = 0;
        for s in vault.log_streams(&g.name).unwrap() {
            stored += s.event_count;
            counts.insert((g.name.clone(), s.name.clone()), s.event_count);
        }
        let events = vault
            .read_events(&g.name, &StreamFilter::All, None, None)
            .await
            .unwrap();
        assert_eq!(events.len() as u64, stored, "group {}", g.name);
        for e in events {
            assert!(seqs.insert(e.seq), "seq {} stored twice", e.seq);
        }
    }
    let ledger = Sink::embedded(vault)
        .load_ledger()
        .await
        .unwrap()
        .into_values()
        .flatten()
        .collect();
    (counts, ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_never_records_a_file_early_and_resumes_exactly() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let tree = write_cloudtrail_tree(
        src.path(),
        5,
        3_000_000,
        &common::ACCOUNTS,
        &common::REGIONS,
        RECORDS_PER_FILE,
        common::START_MS,
    )
    .unwrap();
    assert!(tree.files >= 40, "{tree:?}");
    let seed = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    eprintln!("kill test seed {seed} (set KILL_TEST_SEED to replay)");
    let mut rng = Rng::new(seed);
    let bin = env!("CARGO_BIN_EXE_trailvault-import");
    let run = || {
        Command::new(bin)
            .arg("--data")
            .arg(data.path())
            .args(["--no-progress", "--jobs", "2"])
            // About three files per seal: many commits, so kills land between and inside them.
            .args(["--seal-bytes", "200000"])
            .arg(src.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let mut kills = 0;
    let mut completed = None;
    for round in 0..12 {
        let mut child = run();
        // The first kills come early (inside the first seals), later ones later.
        let delay = Duration::from_millis(50 + rng.below(150 + 150 * round));
        let started = Instant::now();
        while started.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            completed = Some(String::from_utf8(out.stdout).unwrap());
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;

        // Whatever the ledger names is complete; nothing is stored twice.
        let (counts, ledger) = vault_state(data.path()).await;
        let mut keys = HashSet::new();
        for e in &ledger {
            assert!(keys.insert(e.key.clone()), "{} in the ledger twice", e.key);
            assert_eq!(e.records, RECORDS_PER_FILE as u64);
            assert_eq!(
                counts.get(&(e.group.clone(), e.stream.clone())),
                Some(&e.records),
                "round {round} (seed {seed}): {} is in the ledger but its records are not all stored",
                e.key
            );
        }
        // A file not in the ledger has none or all of its records (one commit holds them).
        for ((group, _), n) in &counts {
            if group.starts_with("awslogs/") {
                assert!(*n == 0 || *n == RECORDS_PER_FILE as u64, "{group}: {n}");
            }
        }
    }
    let out = match completed {
        Some(out) => out,
        None => {
            let out = run().wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        }
    };
    eprintln!("{kills} kills; last run:\n{out}");
    assert!(
        kills >= 2,
        "the import finished before it could be killed twice"
    );

    // Every record once, every file in the ledger once.
    let (counts, ledger) = vault_state(data.path()).await;
    assert_eq!(ledger.len() as u64, tree.files);
    let keys: HashSet<_> = ledger.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys.len() as u64, tree.files);
    let stored: u64 = counts
        .iter()
        .filter(|((g, _), _)| g.starts_with("awslogs/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(stored, tree.records);
    for e in &ledger {
        assert_eq!(e.stream, stream_for(&e.key));
        assert_eq!(counts[&(e.group.clone(), e.stream.clone())], e.records);
    }
    assert!(!counts.keys().any(|(g, _)| g == QUARANTINE_GROUP));
    // The last run only imported what the earlier ones had not recorded.
    assert!(out.contains("0 conflicts"), "{out}");

    // And a further run finds nothing to do.
    let again = run().wait_with_output().unwrap();
    let again = String::from_utf8(again.stdout).unwrap();
    assert!(
        again.contains(&format!("{} already imported", tree.files)),
        "{again}"
    );
}
