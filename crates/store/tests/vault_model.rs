//! The vault against a `Vec` model: any sequence of appends, imports sealed straight into
//! segments, seals and restarts reads back exactly the acknowledged events, once each, in
//! order, and sequence numbers are never reused.

use proptest::prelude::*;
use trailvault_store::{
    ImportedStream, InputEvent, LogGroupMeta, PutOptions, StoreError, StreamFilter, Vault,
    VaultConfig,
};

#[derive(Debug, Clone)]
enum Op {
    Put {
        stream: u8,
        count: usize,
    },
    /// `Vault::seal_imported` of events for up to two streams.
    Import {
        streams: Vec<(u8, usize)>,
    },
    Seal,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 1usize..40).prop_map(|(stream, count)| Op::Put { stream, count }),
        2 => proptest::collection::vec((0u8..3, 0usize..40), 1..3)
            .prop_map(|streams| Op::Import { streams }),
        1 => Just(Op::Seal),
        1 => Just(Op::Reopen),
    ]
}

fn group_meta(name: &str) -> LogGroupMeta {
    LogGroupMeta {
        name: name.into(),
        created_ms: 0,
        retention_days: None,
        kms_key_id: None,
        log_group_class: "STANDARD".into(),
        deletion_protection: false,
        tags: Default::default(),
    }
}

/// An event without a normalized form.
fn plain(timestamp_ms: i64, message: impl Into<String>) -> InputEvent {
    InputEvent {
        timestamp_ms,
        message: message.into(),
        normalized: None,
    }
}

/// One stream's events for `Vault::seal_imported` into group `imported`.
fn imported(stream: impl Into<String>, events: Vec<InputEvent>) -> Vec<ImportedStream> {
    vec![ImportedStream {
        group: "imported".into(),
        stream: stream.into(),
        events,
    }]
}

async fn open(dir: &std::path::Path) -> Vault {
    let mut cfg = VaultConfig::new(dir);
    cfg.seal_age = std::time::Duration::from_secs(3600);
    Vault::open(cfg).await.unwrap()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = open(dir.path()).await;
        vault.create_log_group(group_meta("app/web")).unwrap();
        for s in 0..3 {
            vault
                .create_log_stream("app/web", &format!("s{s}"))
                .unwrap();
        }
        let mut model: Vec<Vec<(i64, String)>> = vec![Vec::new(); 3];
        let base = 1_700_000_000_000i64;
        let mut n = 0i64;
        // Highest seq handed out so far: every write's seqs must lie above it.
        let mut seq_max = 0u64;
        let mut events_for = |stream: u8, count: usize| -> Vec<InputEvent> {
            (0..count)
                .map(|i| {
                    n += 1;
                    // Deliberately out of order across batches (and hours).
                    plain(
                        base + (n * 7919) % 5000 + i as i64 + (n % 3) * 3_600_000,
                        format!("event {n} of stream {stream}"),
                    )
                })
                .collect()
        };
        for op in ops {
            match op {
                Op::Import { streams } => {
                    let batch: Vec<ImportedStream> = streams
                        .iter()
                        .map(|&(stream, count)| ImportedStream {
                            group: "app/web".into(),
                            stream: format!("s{stream}"),
                            events: events_for(stream, count),
                        })
                        .collect();
                    let added: Vec<(u8, Vec<(i64, String)>)> = streams
                        .iter()
                        .zip(&batch)
                        .map(|(&(s, _), b)| {
                            (
                                s,
                                b.events
                                    .iter()
                                    .map(|e| (e.timestamp_ms, e.message.clone()))
                                    .collect(),
                            )
                        })
                        .collect();
                    let report = vault.seal_imported(batch).await.unwrap();
                    let imported: usize = added.iter().map(|(_, e)| e.len()).sum();
                    prop_assert_eq!(report.events as usize, imported);
                    if let Some(first) = report.segments.iter().map(|m| m.first_seq).min() {
                        prop_assert!(
                            first > seq_max,
                            "seq {} reused (max was {})",
                            first,
                            seq_max
                        );
                        seq_max = report.segments.iter().map(|m| m.last_seq).max().unwrap();
                    }
                    for (s, e) in added {
                        model[s as usize].extend(e);
                    }
                    // An import seals the tail first and leaves nothing in it.
                    if imported > 0 {
                        prop_assert_eq!(vault.tail_stats().0, 0);
                    }
                }
                Op::Put { stream, count } => {
                    let events = events_for(stream, count);
                    let out = vault
                        .put_log_events(
                            "app/web",
                            &format!("s{stream}"),
                            events,
                            PutOptions::import(base),
                        )
                        .await
                        .unwrap();
                    let first = out.stored.iter().map(|e| e.seq).min().unwrap();
                    prop_assert!(
                        first > seq_max,
                        "seq {} reused (max was {})",
                        first,
                        seq_max
                    );
                    seq_max = out.stored.iter().map(|e| e.seq).max().unwrap();
                    model[stream as usize].extend(
                        out.stored
                            .iter()
                            .map(|e| (e.timestamp_ms, e.message.clone())),
                    );
                }
                Op::Seal => {
                    vault.seal_now().await.unwrap();
                }
                Op::Reopen => {
                    drop(vault);
                    vault = open(dir.path()).await;
                }
            }
            // Seqs are unique across the vault, and the catalog's counts (through the
            // vault's stream statistics) match the model.
            let all = vault
                .read_events("app/web", &StreamFilter::All, None, None)
                .await
                .unwrap();
            let mut seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
            seqs.sort_unstable();
            seqs.dedup();
            prop_assert_eq!(seqs.len(), all.len());
            // Sealed segments hold every seq up to the highest one they hold, the tail only
            // seqs above it (what the SQL engine's snapshot relies on).
            let segments = vault.segments("app/web").unwrap();
            let through = segments.iter().map(|m| m.last_seq).max().unwrap_or(0);
            let sealed: u64 = segments.iter().map(|m| m.event_count).sum();
            let at_or_below = all.iter().filter(|e| e.seq <= through).count() as u64;
            prop_assert_eq!(at_or_below, sealed);
            for st in vault.log_streams("app/web").unwrap() {
                let i: usize = st.name[1..].parse().unwrap();
                prop_assert_eq!(st.event_count as usize, model[i].len(), "{}", st.name);
            }
            for (s, expect) in model.iter().enumerate() {
                let got = vault
                    .read_events("app/web", &StreamFilter::One(format!("s{s}")), None, None)
                    .await
                    .unwrap();
                let mut want = expect.clone();
                want.sort_by_key(|(ts, _)| *ts);
                let got: Vec<(i64, String)> = got
                    .into_iter()
                    .map(|e| (e.timestamp_ms, e.message))
                    .collect();
                // Same multiset and sorted by time (ties keep acknowledgement order).
                prop_assert_eq!(got.len(), want.len());
                let mut a = got.clone();
                a.sort();
                let mut b = want.clone();
                b.sort();
                prop_assert_eq!(a, b);
                prop_assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn reads_match_the_model(ops in proptest::collection::vec(op(), 1..25)) {
        run(ops)?;
    }
}

#[tokio::test]
async fn deleting_a_group_that_holds_events_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path()).await;
    vault.create_log_group(group_meta("g")).unwrap();
    vault.create_log_stream("g", "s").unwrap();
    let ev = vec![plain(trailvault_store::now_ms(), "x")];
    vault
        .put_log_events("g", "s", ev, PutOptions::api(trailvault_store::now_ms()))
        .await
        .unwrap();
    assert!(matches!(
        vault.delete_log_group("g"),
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        vault.delete_log_stream("g", "s"),
        Err(StoreError::Refused(_))
    ));
    vault.seal_now().await.unwrap();
    assert!(matches!(
        vault.delete_log_group("g"),
        Err(StoreError::Refused(_))
    ));
    vault.create_log_group(group_meta("empty")).unwrap();
    vault.delete_log_group("empty").unwrap();
}

#[tokio::test]
async fn cloudwatch_rules_skip_old_and_new_events_and_report_them() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path()).await;
    vault.create_log_group(group_meta("g")).unwrap();
    vault.create_log_stream("g", "s").unwrap();
    let now = trailvault_store::now_ms();
    let day = 86_400_000;
    let mk = |ts: i64| plain(ts, format!("at {ts}"));
    let out = vault
        .put_log_events(
            "g",
            "s",
            vec![
                mk(now - 15 * day),
                mk(now - 1000),
                mk(now),
                mk(now + 3 * 3_600_000),
            ],
            PutOptions::api(now),
        )
        .await
        .unwrap();
    assert_eq!(out.stored.len(), 2);
    assert_eq!(out.rejected.too_old_end_index, Some(1));
    assert_eq!(out.rejected.too_new_start_index, Some(3));
    let unsorted = vec![mk(now), mk(now - 5)];
    assert!(matches!(
        vault
            .put_log_events("g", "s", unsorted, PutOptions::api(now))
            .await,
        Err(StoreError::InvalidParameter(_))
    ));
    let big = vec![plain(now, "x".repeat(262_144 - 26 + 1))];
    assert!(matches!(
        vault
            .put_log_events("g", "s", big, PutOptions::api(now))
            .await,
        Err(StoreError::InvalidParameter(_))
    ));
    let exact = vec![plain(now, "x".repeat(262_144 - 26))];
    vault
        .put_log_events("g", "s", exact, PutOptions::api(now))
        .await
        .unwrap();
}

/// Every writer of the vault (the server, the embedded importer, generators) gets segments
/// whose catalog row carries the Merkle root of their events, hour by hour, imports sealed
/// straight into segments included: the digest chain and the proofs rest on it.
#[test]
fn sealed_segments_carry_the_merkle_root_of_their_events() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let vault = open(dir.path()).await;
        vault.create_log_group(group_meta("imported")).unwrap();
        vault.create_log_stream("imported", "file-1").unwrap();
        let hour = 3_600_000i64;
        let events: Vec<InputEvent> = (0..50)
            .map(|i| plain(1_600_000_000_000 + i * hour / 10, format!("record {i}")))
            .collect();
        let opts = PutOptions::import(trailvault_store::now_ms());
        vault
            .put_log_events("imported", "file-1", events, opts)
            .await
            .unwrap();
        let report = vault.seal_now().await.unwrap();
        assert!(
            report.segments.len() >= 5,
            "one segment per hour of event time"
        );
        vault.create_log_stream("imported", "file-2").unwrap();
        let events: Vec<InputEvent> = (0..50)
            .map(|i| {
                plain(
                    1_600_000_000_000 + i * hour / 10,
                    format!("record {i} of file 2"),
                )
            })
            .collect();
        let report = vault
            .seal_imported(imported("file-2", events))
            .await
            .unwrap();
        assert!(
            report.segments.len() >= 5,
            "an import is sealed hour by hour too"
        );
        for meta in vault.segments("imported").unwrap() {
            let events = vault.segment_events(&meta).await.unwrap();
            let leaves = trailvault_integrity::leaf::event_leaf_hashes(&events);
            let root = trailvault_integrity::merkle::root_from_leaf_hashes(&leaves);
            assert_eq!(meta.merkle_root, hex::encode(root), "{}", meta.key);
            assert_eq!(meta.event_count as usize, events.len());
            // ... and whose footer carries the subtree roots proofs start from.
            let bytes = vault.storage().get(&meta.key).await.unwrap();
            let footer = trailvault_segment::SegmentReader::open(bytes, false)
                .unwrap()
                .metadata_value(trailvault_integrity::leaf::SUBTREE_ROOTS_KEY);
            assert_eq!(
                footer
                    .as_deref()
                    .and_then(trailvault_integrity::leaf::parse_subtree_roots),
                Some(trailvault_integrity::leaf::subtree_roots(&leaves)),
                "{}",
                meta.key
            );
        }
    });
}

/// An import creates a new stream in the commit that stores its first events (nothing is
/// left empty, no catalog sync per stream), the creation survives a restart, a name the API
/// would refuse is refused, and an hour of more events than one import segment takes is cut
/// into several segments, none of them losing or repeating an event.
#[tokio::test]
async fn an_import_creates_its_streams_and_cuts_large_hours() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path()).await;
    vault.create_log_group(group_meta("imported")).unwrap();
    let bad = vault
        .seal_imported(imported("a:b", vec![plain(1_600_000_000_000, "x")]))
        .await;
    assert!(
        matches!(bad, Err(StoreError::InvalidParameter(_))),
        "{bad:?}"
    );
    assert!(vault.log_streams("imported").unwrap().is_empty());

    let n = 40_000usize;
    let events: Vec<InputEvent> = (0..n)
        .map(|i| {
            // All within one hour.
            plain(
                1_600_000_000_000 + (i as i64 % 3_000_000),
                format!("record {i}"),
            )
        })
        .collect();
    let report = vault
        .seal_imported(imported("file-1", events))
        .await
        .unwrap();
    assert_eq!(report.events as usize, n);
    assert_eq!(
        report.segments.len(),
        3,
        "40,000 events of one hour: 3 segments"
    );
    drop(vault);

    let vault = open(dir.path()).await;
    let streams = vault.log_streams("imported").unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].name, "file-1");
    assert_eq!(streams[0].event_count as usize, n);
    let mut seen: Vec<String> = Vec::new();
    for meta in vault.segments("imported").unwrap() {
        seen.extend(
            vault
                .segment_events(&meta)
                .await
                .unwrap()
                .iter()
                .map(|e| e.message.clone()),
        );
    }
    seen.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("record {i}")).collect();
    want.sort();
    assert_eq!(seen, want);
}

/// Import seals overlap (one encodes while the one before writes and commits) and race the
/// tail's seal, yet commit in the order they reserved their sequence numbers: the segment
/// list (commit order) is the catalog's load order, sequence numbers are contiguous and
/// used once, and a restart changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_import_seals_commit_in_reservation_order() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path()).await;
    vault.create_log_group(group_meta("imported")).unwrap();
    vault.create_log_stream("imported", "live").unwrap();
    // Big seals (many segments to write) followed by small ones (quick to encode, write and
    // commit): without the commit order, a small one would overtake the big one before it.
    let files = 6usize;
    let size = |f: usize| if f.is_multiple_of(2) { 2_000usize } else { 1 };
    let hour = 3_600_000i64;
    let mut tasks = Vec::new();
    for f in 0..files {
        let vault = vault.clone();
        tasks.push(tokio::spawn(async move {
            let events = (0..size(f))
                .map(|i| {
                    // A big seal spans 200 hours: 200 segment files to write and sync.
                    plain(
                        1_600_000_000_000 + (i as i64 % 200) * hour + i as i64,
                        format!("file {f} record {i}"),
                    )
                })
                .collect();
            vault
                .seal_imported(imported(format!("file-{f}"), events))
                .await
                .map(|r| r.events)
        }));
    }
    let live = {
        let vault = vault.clone();
        tokio::spawn(async move {
            for round in 0..4 {
                let events = (0..50)
                    .map(|i| {
                        plain(
                            trailvault_store::now_ms() - 1_000 + i,
                            format!("live {round} {i}"),
                        )
                    })
                    .collect();
                vault
                    .put_log_events(
                        "imported",
                        "live",
                        events,
                        PutOptions::api(trailvault_store::now_ms()),
                    )
                    .await
                    .unwrap();
                vault.seal_now().await.unwrap();
            }
        })
    };
    for (f, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap() as usize, size(f));
    }
    live.await.unwrap();
    vault.seal_now().await.unwrap();

    let listed = vault.segments("imported").unwrap();
    let order: Vec<(u64, String)> = listed
        .iter()
        .map(|m| (m.first_seq, m.key.clone()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "segments committed out of reservation order");
    let mut seqs: Vec<u64> = Vec::new();
    for meta in &listed {
        seqs.extend(
            vault
                .segment_events(meta)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq),
        );
    }
    seqs.sort_unstable();
    let total = (0..files).map(size).sum::<usize>() + 4 * 50;
    assert_eq!(seqs.len(), total);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers are contiguous and used once"
    );
    drop(vault);

    let vault = open(dir.path()).await;
    let reloaded: Vec<(u64, String)> = vault
        .segments("imported")
        .unwrap()
        .iter()
        .map(|m| (m.first_seq, m.key.clone()))
        .collect();
    assert_eq!(reloaded, order);
}
