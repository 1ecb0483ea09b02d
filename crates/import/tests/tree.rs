//! Importing a synthetic AWSLogs tree into an embedded vault: placement, quarantine, unknown
//! files, digests, idempotency and resume.

mod common;

use std::path::Path;

use common::{group_counts, messages, write_tree};
use trailvault_import::placement::{stream_for, LEDGER_GROUP, QUARANTINE_GROUP};
use trailvault_import::prepare::{prepare, PrepareOptions, Prepared};
use trailvault_import::source::{S3Options, Source};
use trailvault_import::{import, ImportArgs};
use trailvault_store::{now_ms, PutOptions, Vault, VaultConfig};

fn args(src: &Path, data: &Path) -> ImportArgs {
    let mut a = ImportArgs::embedded(src.to_str().unwrap(), data);
    a.jobs = Some(2);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_tree_lands_where_the_convention_says() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let exp = write_tree(src.path(), 42);

    let s = import(&args(src.path(), data.path())).await.unwrap();
    assert_eq!(s.files_listed, exp.all_files);
    assert_eq!(s.files_imported(), exp.files_imported, "{}", s.render());
    assert_eq!(s.digests, exp.digests);
    assert_eq!(s.files_skipped, exp.skipped);
    let unknown: Vec<_> = s.unknown.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(unknown, exp.unknown);
    let qfiles: Vec<_> = s.quarantined_files.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(qfiles, exp.quarantined_files);
    assert!(s.quarantined_files[0].1.contains("gzip stream is corrupt"));
    assert_eq!(s.exit_code(false), 1, "an unknown file fails the run");
    assert_eq!(s.exit_code(true), 0);
    let stored: u64 = exp.groups.values().sum();
    assert_eq!(s.records_stored, stored);
    assert_eq!(s.records_quarantined, exp.quarantined_records);
    assert_eq!(s.records_read, s.records_stored + s.records_quarantined);
    assert_eq!(s.records_already_present, 0);

    let counts = group_counts(data.path()).await;
    for (g, n) in &exp.groups {
        assert_eq!(counts.get(g), Some(n), "group {g}: {counts:?}");
    }
    // Records, plus one event for the corrupt file.
    assert_eq!(
        counts[QUARANTINE_GROUP],
        exp.quarantined_records + exp.quarantined_files.len() as u64
    );
    assert_eq!(counts[LEDGER_GROUP], exp.files_imported + 1);
    let groups: Vec<_> = counts.keys().cloned().collect();
    let expected_groups = exp.groups.len() + 2;
    assert_eq!(groups.len(), expected_groups, "{groups:?}");

    // Quarantine events say where and why, and carry the raw bytes.
    let q = messages(data.path(), QUARANTINE_GROUP).await;
    let q: Vec<serde_json::Value> = q.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    let vpc = q
        .iter()
        .find(|v| v["format"] == "vpc-flow")
        .expect("the short vpc record is quarantined");
    assert_eq!(vpc["line"], 42);
    assert!(vpc["raw"]
        .as_str()
        .unwrap()
        .starts_with("2 111122223333 eni-"));
    assert!(vpc["file"].as_str().unwrap().contains("vpcflowlogs"));
    assert!(vpc["offset"].as_u64().unwrap() > 0);
    assert!(!vpc["reason"].as_str().unwrap().is_empty());
    let s3 = q
        .iter()
        .find(|v| v["format"] == "s3-access")
        .unwrap_or_else(|| panic!("{q:#?}"));
    assert_eq!(s3["line"], 13);

    // Stored events keep the raw record and its normalized form (read from the sealed
    // segments with every column).
    let vault = Vault::open(VaultConfig::new(data.path())).await.unwrap();
    let group = "awslogs/cloudtrail/111122223333/us-east-1";
    let mut events = Vec::new();
    for seg in vault.segments(group).unwrap() {
        let bytes = vault.storage().get(&seg.key).await.unwrap();
        events.extend(
            trailvault_segment::decode(bytes, trailvault_segment::Projection::All).unwrap(),
        );
    }
    assert_eq!(events.len() as u64, exp.groups[group]);
    for e in &events {
        assert!(e.message.starts_with("{\"eventVersion\":\"1.08\""));
        let n = e.normalized.as_ref().expect("embedded import normalizes");
        assert_eq!(n.source, "cloudtrail");
        assert_eq!(n.time_ms, Some(e.timestamp_ms));
        assert!(
            e.timestamp_ms >= common::START_MS,
            "history keeps its own time"
        );
        assert!(e
            .stream
            .starts_with("AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/"));
    }
    // Sealed at the end: nothing left in the tail.
    assert_eq!(vault.tail_stats().0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_twice_stores_every_record_once() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let exp = write_tree(src.path(), 7);
    let first = import(&args(src.path(), data.path())).await.unwrap();
    let before = group_counts(data.path()).await;

    let second = import(&args(src.path(), data.path())).await.unwrap();
    assert_eq!(second.records_stored, 0, "{}", second.render());
    assert_eq!(second.records_quarantined, 0);
    assert_eq!(
        second.files_already_imported,
        first.files_imported() + first.quarantined_files.len() as u64
    );
    assert_eq!(second.files_imported(), 0);
    // Unknown files and digests are looked at again (they are not in the ledger).
    assert_eq!(second.unknown.len(), exp.unknown.len());
    assert_eq!(group_counts(data.path()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes_exactly() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let exp = write_tree(src.path(), 99);

    // 1. A run that only got through part of the tree: import a subset copy first.
    let subset = tempfile::tempdir().unwrap();
    let source = Source::Local {
        root: src.path().to_owned(),
        single: false,
    };
    let files = source.list().await.unwrap();
    let ct: Vec<_> = files
        .iter()
        .filter(|f| f.key.contains("/CloudTrail/"))
        .collect();
    for f in ct.iter().take(4) {
        let to = subset.path().join(&f.key);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.path().join(&f.key), to).unwrap();
    }
    let part = import(&args(subset.path(), data.path())).await.unwrap();
    assert_eq!(part.files_imported(), 4);

    // 2. A file interrupted mid-way: its first batch is stored, its ledger entry is not.
    let victim = ct[5];
    let opts = PrepareOptions {
        format: None,
        group: None,
        decompressed_bytes_max: 1 << 30,
        import_start_ms: now_ms(),
    };
    let src_path = src.path().to_owned();
    let victim2 = victim.clone();
    let work = tokio::task::spawn_blocking(move || {
        let source = Source::Local {
            root: src_path,
            single: false,
        };
        match prepare(&source, &victim2, &opts) {
            Prepared::Work(w) => w,
            other => panic!("{other:?}"),
        }
    })
    .await
    .unwrap();
    let already = 3;
    {
        let vault = Vault::open(VaultConfig::new(data.path())).await.unwrap();
        let _ = vault.create_log_group(trailvault_store::LogGroupMeta {
            name: work.group.clone(),
            created_ms: 0,
            retention_days: None,
            kms_key_id: None,
            log_group_class: "STANDARD".into(),
            deletion_protection: false,
            tags: Default::default(),
        });
        vault
            .create_log_stream(&work.group, &stream_for(&victim.key))
            .unwrap();
        vault
            .put_log_events(
                &work.group,
                &work.stream,
                work.events[..already].to_vec(),
                PutOptions::import(now_ms()),
            )
            .await
            .unwrap();
    }

    // 3. The whole tree: everything not yet stored is stored, once.
    let full = import(&args(src.path(), data.path())).await.unwrap();
    assert_eq!(full.files_already_imported, 4, "{}", full.render());
    assert_eq!(full.records_already_present, already as u64);
    let counts = group_counts(data.path()).await;
    for (g, n) in &exp.groups {
        assert_eq!(counts.get(g), Some(n), "group {g}");
    }
    let victim_stream: u64 = {
        let vault = Vault::open(VaultConfig::new(data.path())).await.unwrap();
        vault
            .log_streams(&work.group)
            .unwrap()
            .into_iter()
            .find(|s| s.name == work.stream)
            .unwrap()
            .event_count
    };
    assert_eq!(victim_stream, work.events.len() as u64);
    assert_eq!(
        part.records_stored + full.records_stored + already as u64,
        exp.groups.values().sum::<u64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_and_group_overrides_and_the_size_cap() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("app.log"), "one\ntwo\nthree\n").unwrap();
    // Without --format a plain text file is unknown: reported, not guessed.
    let s = import(&args(src.path(), data.path())).await.unwrap();
    assert_eq!(s.unknown.len(), 1);
    assert_eq!(s.records_read, 0);

    let mut a = args(src.path(), data.path());
    a.format = Some(trailvault_formats::Format::Plain);
    a.group = Some("my/app".into());
    let s = import(&a).await.unwrap();
    assert_eq!(s.records_stored, 3);
    assert_eq!(group_counts(data.path()).await["my/app"], 3);

    // A file over the decompressed-size cap is quarantined with the reason, not read.
    let big = tempfile::tempdir().unwrap();
    let gz = trailvault_import::generate::gzip(&vec![b'x'; 1 << 20]).unwrap();
    std::fs::write(big.path().join("bomb.log.gz"), gz).unwrap();
    let mut a = args(big.path(), data.path());
    a.format = Some(trailvault_formats::Format::Plain);
    a.max_decompressed_bytes = 64 * 1024;
    let s = import(&a).await.unwrap();
    assert_eq!(s.quarantined_files.len(), 1);
    assert!(s.quarantined_files[0]
        .1
        .contains("exceeds the cap of 65536 bytes"));
    let q = messages(data.path(), QUARANTINE_GROUP).await;
    assert!(q
        .iter()
        .any(|m| m.contains("bomb.log.gz") && m.contains("exceeds the cap")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_held_by_another_process_is_named_clearly() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write_tree(src.path(), 1);
    let _held = Vault::open(VaultConfig::new(data.path())).await.unwrap();
    let err = import(&args(src.path(), data.path())).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("--endpoint"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_options_reject_a_bucketless_url() {
    let err = Source::open("s3://", &S3Options::default()).err().unwrap();
    assert!(err.to_string().contains("names no bucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_everything_and_writes_nothing() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let exp = write_tree(src.path(), 3);
    let mut a = args(src.path(), data.path());
    a.dry_run = true;
    let s = import(&a).await.unwrap();
    assert_eq!(s.records_stored, exp.groups.values().sum::<u64>());
    assert_eq!(s.records_quarantined, exp.quarantined_records);
    assert!(s.render().contains("dry run"));
    assert!(group_counts(data.path()).await.is_empty());
    // The real import afterwards stores the same counts.
    let real = import(&args(src.path(), data.path())).await.unwrap();
    assert_eq!(real.records_stored, s.records_stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_is_never_stored_even_under_format() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let exp = write_tree(src.path(), 8);
    let mut a = args(src.path(), data.path());
    a.format = Some(trailvault_formats::Format::Cloudtrail);
    let s = import(&a).await.unwrap();
    assert_eq!(s.digests, exp.digests, "{}", s.render());
    // Everything else was parsed as CloudTrail: what is not CloudTrail is quarantined, and
    // nothing is lost.
    assert_eq!(s.records_read, s.records_stored + s.records_quarantined);
    let stored = messages(data.path(), "awslogs/cloudtrail/111122223333/us-east-1").await;
    assert!(stored.iter().all(|m| !m.contains("digestStartTime")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_is_quarantined_with_its_hash() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let big = format!("{{\"big\":\"{}\"}}", "x".repeat(300_000));
    let body = format!("{{\"a\":1}}\n{big}\n{{\"a\":2}}\n");
    std::fs::write(src.path().join("events.jsonl"), &body).unwrap();
    let mut a = args(src.path(), data.path());
    a.format = Some(trailvault_formats::Format::JsonLines);
    let s = import(&a).await.unwrap();
    assert_eq!(
        (s.records_read, s.records_stored, s.records_quarantined),
        (3, 2, 1)
    );
    let q = messages(data.path(), QUARANTINE_GROUP).await;
    assert_eq!(q.len(), 1);
    assert!(q[0].len() <= 262_144 - 26);
    let v: serde_json::Value = serde_json::from_str(&q[0]).unwrap();
    assert_eq!(v["line"], 2);
    assert!(v["reason"].as_str().unwrap().contains("262144"));
    assert_eq!(v["raw_truncated"], true);
    assert_eq!(v["raw_bytes"], big.len());
    use sha2::Digest;
    assert_eq!(
        v["raw_sha256"],
        hex::encode(sha2::Sha256::digest(big.as_bytes()))
    );
    assert!(big.starts_with(v["raw"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_under_an_imported_key_is_a_conflict() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = src.path().join("app.log");
    std::fs::write(&path, "one\ntwo\n").unwrap();
    let mut a = args(src.path(), data.path());
    a.format = Some(trailvault_formats::Format::Plain);
    assert_eq!(import(&a).await.unwrap().records_stored, 2);
    std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
    let s = import(&a).await.unwrap();
    assert_eq!(s.conflicts.len(), 1, "{}", s.render());
    assert!(s.conflicts[0].1.contains("--group"));
    assert_eq!(s.exit_code(true), 1);
    assert_eq!(s.records_stored, 0);
    // Under another group it is imported in full.
    a.group = Some("import/plain-v2".into());
    assert_eq!(import(&a).await.unwrap().records_stored, 3);
}
