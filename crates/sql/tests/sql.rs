//! SQL and lookups over a small generated vault, part sealed and part unsealed.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use trailvault_sql::dataset::{generate, DatasetSpec, ACCOUNTS, GROUPS, GROUP_CLOUDTRAIL};
use trailvault_sql::{LookupAttribute, SqlEngine, SqlError, SqlOptions};
use trailvault_store::{StreamFilter, Vault, VaultConfig};

const EVENTS: u64 = 3_000;

async fn vault_with_tail(dir: &std::path::Path) -> Vault {
    let vault = Vault::open(VaultConfig::new(dir)).await.unwrap();
    let spec = DatasetSpec {
        events: EVENTS,
        seed: 9,
        days: 2,
        seal_every_events: 1_000,
        seal_at_end: false,
        ..DatasetSpec::default()
    };
    let summary = generate(&vault, &spec).await.unwrap();
    assert_eq!(summary.events, EVENTS);
    vault
}

fn seqs(batches: &[RecordBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
        .collect()
}

/// Rows as text, for comparing whole answers.
fn rows(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .unwrap()
        .to_string()
}

/// Queries whose filters let the sealed side skip files (footer statistics, lookup filters,
/// partition values, time ranges); their answers must not depend on where events sit.
const FILTERED: [&str; 7] = [
    "SELECT log_group, count(*) AS n FROM events WHERE source = 'vpc-flow' GROUP BY 1",
    "SELECT action, count(*) AS n FROM events WHERE action IN ('ConsoleLogin', 'REJECT') \
     GROUP BY 1 ORDER BY 1",
    "SELECT count(*) AS n FROM events WHERE error_code IS NOT NULL",
    "SELECT read_only, count(*) AS n FROM events WHERE read_only = false GROUP BY 1",
    "SELECT count(*) AS n FROM events WHERE actor_type = 'Root' OR dst_port = 22",
    "SELECT log_group, count(*) AS n FROM events \
     WHERE hour = 3 AND service = 'kms.amazonaws.com' GROUP BY 1 ORDER BY 1",
    "SELECT count(*) AS n FROM \"org/cloudtrail\" \
     WHERE timestamp >= to_timestamp_millis(1762041600000) AND action <> 'ConsoleLogin'",
];

const AGGREGATE: &str =
    "SELECT log_group, source, action, outcome, count(*) AS n, sum(bytes) AS b, \
     count(DISTINCT src_ip) AS ips, min(timestamp) AS first, max(seq) AS last \
     FROM events GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_and_tail_answer_like_read_events_and_like_after_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    let engine = SqlEngine::from_vault(&vault, SqlOptions::default())
        .await
        .unwrap();
    assert!(
        engine.tail_events() > 0,
        "part of the data must be unsealed"
    );
    assert!(
        engine.sealed_through_seq() > 0,
        "part of the data must be sealed"
    );
    assert_eq!(engine.groups(), {
        let mut g: Vec<String> = GROUPS.iter().map(|s| s.to_string()).collect();
        g.sort();
        g
    });

    // Every group table holds exactly the events read_events returns, in any state.
    for group in GROUPS {
        let expected: Vec<u64> = vault
            .read_events(group, &StreamFilter::All, None, None)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        let mut expected = expected;
        expected.sort();
        let got = seqs(
            &engine
                .query(&format!("SELECT seq FROM \"{group}\" ORDER BY seq"))
                .await
                .unwrap(),
        );
        assert_eq!(got, expected, "{group}");
    }
    let total = engine.query("SELECT count(*) FROM events").await.unwrap();
    assert_eq!(
        total[0].column(0).as_primitive::<Int64Type>().value(0),
        EVENTS as i64
    );

    // The unified view over the normalized columns gives the same answer once all is sealed,
    // with or without filters that prune sealed files.
    let before = rows(&engine.query(AGGREGATE).await.unwrap());
    let mut filtered = Vec::new();
    for q in FILTERED {
        filtered.push(rows(&engine.query(q).await.unwrap()));
    }
    vault.seal_now().await.unwrap();
    let sealed = SqlEngine::from_vault(&vault, SqlOptions::default())
        .await
        .unwrap();
    assert_eq!(sealed.tail_events(), 0);
    assert_eq!(rows(&sealed.query(AGGREGATE).await.unwrap()), before);
    for (q, expected) in FILTERED.iter().zip(&filtered) {
        assert_eq!(&rows(&sealed.query(q).await.unwrap()), expected, "{q}");
        assert!(
            expected.lines().count() > 4,
            "{q} should match something:\n{expected}"
        );
    }
    // And the raw message is byte-exact on both sides.
    let q = "SELECT seq, message FROM events WHERE seq % 97 = 0 ORDER BY seq";
    assert_eq!(
        rows(&sealed.query(q).await.unwrap()),
        rows(&engine.query(q).await.unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_only_mode_reads_the_catalog_while_the_vault_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    let full = SqlEngine::from_vault(&vault, SqlOptions::default())
        .await
        .unwrap();
    let sealed_only = SqlEngine::open_sealed(dir.path(), SqlOptions::default())
        .await
        .unwrap();
    let count = |b: Vec<RecordBatch>| b[0].column(0).as_primitive::<Int64Type>().value(0);
    let q = "SELECT count(*) FROM events";
    let sealed_n = count(sealed_only.query(q).await.unwrap());
    assert_eq!(
        sealed_n as usize + full.tail_events(),
        count(full.query(q).await.unwrap()) as usize
    );
    let q = format!(
        "SELECT count(*) FROM events WHERE seq <= {}",
        full.sealed_through_seq()
    );
    assert_eq!(count(full.query(&q).await.unwrap()), sealed_n);
}

/// Ground truth from the raw CloudTrail records (read_events returns sealed events without
/// their normalized form, so the raw JSON is the independent reference).
async fn cloudtrail_truth(vault: &Vault) -> Vec<(u64, i64, serde_json::Value)> {
    vault
        .read_events(GROUP_CLOUDTRAIL, &StreamFilter::All, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.seq,
                e.timestamp_ms,
                serde_json::from_str(&e.message).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_return_exactly_the_matching_events() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    let engine = SqlEngine::from_vault(&vault, SqlOptions::default())
        .await
        .unwrap();
    let truth = cloudtrail_truth(&vault).await;
    let (_, t_min, _) = truth.iter().min_by_key(|t| t.1).unwrap().clone();
    let (_, t_max, _) = truth.iter().max_by_key(|t| t.1).unwrap().clone();
    let mid = t_min + (t_max - t_min) / 2;
    let some_id = truth[truth.len() / 2].2["eventID"]
        .as_str()
        .unwrap()
        .to_string();
    let key = truth
        .iter()
        .find_map(|t| {
            (t.2["userIdentity"]["type"] == "IAMUser" && t.2["eventName"] != "ConsoleLogin").then(
                || {
                    t.2["userIdentity"]["accessKeyId"]
                        .as_str()
                        .unwrap()
                        .to_string()
                },
            )
        })
        .unwrap();
    type Matcher = Box<dyn Fn(&serde_json::Value) -> bool>;
    let cases: Vec<(LookupAttribute, String, Matcher)> = vec![
        (
            LookupAttribute::EventName,
            "ConsoleLogin".into(),
            Box::new(|v| v["eventName"] == "ConsoleLogin"),
        ),
        (LookupAttribute::EventId, some_id.clone(), {
            let id = some_id.clone();
            Box::new(move |v| v["eventID"] == id.as_str())
        }),
        (LookupAttribute::AccessKeyId, key.clone(), {
            let key = key.clone();
            Box::new(move |v| v["userIdentity"]["accessKeyId"] == key.as_str())
        }),
        (
            LookupAttribute::EventSource,
            "kms.amazonaws.com".into(),
            Box::new(|v| v["eventSource"] == "kms.amazonaws.com"),
        ),
        (
            LookupAttribute::ResourceType,
            "AWS::EC2::SecurityGroup".into(),
            Box::new(|v| v["resources"][0]["type"] == "AWS::EC2::SecurityGroup"),
        ),
    ];
    for (attr, value, matches) in &cases {
        for (start, end) in [(None, None), (Some(mid), None), (Some(t_min), Some(mid))] {
            let mut expected: Vec<(i64, u64)> = truth
                .iter()
                .filter(|(_, ts, v)| {
                    matches(v) && start.is_none_or(|s| *ts >= s) && end.is_none_or(|e| *ts < e)
                })
                .map(|(seq, ts, _)| (*ts, *seq))
                .collect();
            expected.sort();
            expected.reverse();
            let found = engine
                .lookup(*attr, value, start, end, 10_000)
                .await
                .unwrap();
            let got: Vec<(i64, u64)> = found.iter().map(|e| (e.timestamp_ms, e.seq)).collect();
            assert_eq!(got, expected, "{attr:?}={value} {start:?}..{end:?}");
            if start.is_none() {
                assert!(
                    !expected.is_empty(),
                    "{attr:?}={value} should match something"
                );
            }
        }
    }
    // Newest first and capped.
    let three = engine
        .lookup(LookupAttribute::EventName, "ConsoleLogin", None, None, 3)
        .await
        .unwrap();
    assert_eq!(three.len(), 3);
    assert!(three
        .windows(2)
        .all(|w| w[0].timestamp_ms >= w[1].timestamp_ms));
    assert!(three.iter().all(|e| e.message.contains("\"ConsoleLogin\"")));
}

/// Without the catalog's lookup filters (derived data, maybe not built yet) every file is
/// opened, and the segments' own Parquet bloom filters still skip row groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bloom_filters_prune_row_groups_of_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    vault.seal_now().await.unwrap();
    let truth = cloudtrail_truth(&vault).await;
    drop(vault);
    forget_lookup_filters(dir.path());
    let engine = SqlEngine::open_sealed(dir.path(), SqlOptions::default())
        .await
        .unwrap();
    let id = truth[7].2["eventID"].as_str().unwrap().to_string();
    let plan = engine
        .query(&format!(
            "EXPLAIN ANALYZE SELECT seq FROM events WHERE source_event_id = '{id}'"
        ))
        .await
        .unwrap();
    let text = rows(&plan);
    let pruned = bloom_pruned(&text);
    assert!(
        pruned > 0,
        "no row group pruned by bloom filter in:\n{text}"
    );
    let found = engine
        .lookup(LookupAttribute::EventId, &id, None, None, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].seq, truth[7].0);
}

/// The lookup filters written at seal time decide which segments a lookup opens; without
/// them (a vault sealed before they existed) every segment in range is opened and the
/// answer is the same; `rebuild_lookup_filters` derives them again from the segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_filters_pick_the_segments_and_can_be_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    vault.seal_now().await.unwrap();
    let truth = cloudtrail_truth(&vault).await;
    let id = truth[truth.len() / 3].2["eventID"]
        .as_str()
        .unwrap()
        .to_string();
    let check = |engine: SqlEngine| {
        let id = id.clone();
        async move {
            let (found, stats) = engine
                .lookup_with_stats(LookupAttribute::EventId, &id, None, None, 10)
                .await
                .unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].event_id.as_deref(), Some(id.as_str()));
            let (absent, absent_stats) = engine
                .lookup_with_stats(LookupAttribute::Username, "nobody-at-all", None, None, 10)
                .await
                .unwrap();
            assert!(absent.is_empty());
            (stats, absent_stats)
        }
    };
    let (stats, absent) = check(
        SqlEngine::from_vault(&vault, SqlOptions::default())
            .await
            .unwrap(),
    )
    .await;
    assert!(stats.segments > 10, "{stats:?}");
    assert_eq!((stats.candidates, stats.read), (1, 1), "{stats:?}");
    assert_eq!((absent.candidates, absent.read), (0, 0), "{absent:?}");
    drop(vault);

    // Forget the filters (derived data): the same answers, from every segment.
    forget_lookup_filters(dir.path());
    let (stats, absent) = check(
        SqlEngine::open_sealed(dir.path(), SqlOptions::default())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats.candidates, stats.segments, "{stats:?}");
    assert_eq!(absent.read, absent.segments, "{absent:?}");

    let vault = Vault::open(VaultConfig::new(dir.path())).await.unwrap();
    assert_eq!(
        vault.rebuild_lookup_filters().await.unwrap(),
        stats.segments
    );
    assert_eq!(vault.rebuild_lookup_filters().await.unwrap(), 0);
    let (stats, absent) = check(
        SqlEngine::from_vault(&vault, SqlOptions::default())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((stats.candidates, stats.read), (1, 1), "{stats:?}");
    assert_eq!(absent.read, 0, "{absent:?}");
}

/// Deletes the catalog's lookup filters, as in a vault sealed before they existed.
fn forget_lookup_filters(dir: &std::path::Path) {
    let conn = rusqlite::Connection::open(dir.join("catalog.sqlite")).unwrap();
    let removed = conn.execute("DELETE FROM lookup_filters", []).unwrap();
    assert!(removed > 0);
}

/// Moves every segment file but `keep` out of its place (`restore` puts them back): a
/// scan that opened one would fail.
struct Hidden(Vec<std::path::PathBuf>);

fn hide_segments_but(dir: &std::path::Path, all: &[String], keep: &[String]) -> Hidden {
    let mut moved = Vec::new();
    for key in all.iter().filter(|k| !keep.contains(k)) {
        let path = dir.join(key);
        std::fs::rename(&path, path.with_extension("hidden")).unwrap();
        moved.push(path);
    }
    assert!(!moved.is_empty());
    Hidden(moved)
}

impl Hidden {
    fn restore(self) {
        for path in self.0 {
            std::fs::rename(path.with_extension("hidden"), &path).unwrap();
        }
    }
}

/// SQL scans skip the segment files their filters rule out before opening any: by the
/// catalog's lookup filters and time ranges (files moved away are never touched). Without
/// lookup filters every file is opened again, with the same answer, and rebuilding them
/// restores the pruning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_filters_prune_files_missing_filters_fall_back_rebuild_restores() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    vault.seal_now().await.unwrap();
    let truth = cloudtrail_truth(&vault).await;
    let (seq, ts, record) = truth[truth.len() / 2].clone();
    let id = record["eventID"].as_str().unwrap().to_string();
    let holder = vault
        .segments(GROUP_CLOUDTRAIL)
        .unwrap()
        .iter()
        .find(|s| {
            // Segments of one seal share its seq range, one per hour of event time.
            (s.first_seq..=s.last_seq).contains(&seq) && (s.oldest_ms..=s.newest_ms).contains(&ts)
        })
        .unwrap()
        .key
        .clone();
    // One hour of event time, the files of every group overlapping it and its event count.
    let lo = ts - ts.rem_euclid(3_600_000);
    let hi = lo + 3_600_000;
    let (mut all, mut in_hour, mut hour_events) = (Vec::new(), Vec::new(), 0);
    for g in GROUPS {
        for s in vault.segments(g).unwrap() {
            all.push(s.key.clone());
            if s.newest_ms >= lo && s.oldest_ms < hi {
                in_hour.push(s.key.clone());
            }
        }
        hour_events += vault
            .read_events(g, &StreamFilter::All, Some(lo), Some(hi))
            .await
            .unwrap()
            .len() as i64;
    }
    assert!(hour_events > 0 && in_hour.len() < all.len());
    drop(vault);

    let by_id = format!("SELECT seq FROM events WHERE source_event_id = '{id}'");
    let by_id_in_group =
        format!("SELECT seq FROM \"{GROUP_CLOUDTRAIL}\" WHERE source_event_id = '{id}'");
    let in_the_hour = format!(
        "SELECT count(*) FROM events \
         WHERE timestamp >= to_timestamp_millis({lo}) AND timestamp < to_timestamp_millis({hi})"
    );
    let open = || SqlEngine::open_sealed(dir.path(), SqlOptions::default());

    // Filters prune: only the file holding the id, only the hour's files.
    let hidden = hide_segments_but(dir.path(), &all, std::slice::from_ref(&holder));
    let engine = open().await.unwrap();
    assert_eq!(seqs(&engine.query(&by_id).await.unwrap()), [seq]);
    assert_eq!(seqs(&engine.query(&by_id_in_group).await.unwrap()), [seq]);
    hidden.restore();
    let hidden = hide_segments_but(dir.path(), &all, &in_hour);
    let n = open().await.unwrap().query(&in_the_hour).await.unwrap();
    assert_eq!(
        n[0].column(0).as_primitive::<Int64Type>().value(0),
        hour_events
    );
    hidden.restore();

    // Missing lookup filters fall back to opening every file: same answer, and a scan that
    // needs the hidden files fails.
    forget_lookup_filters(dir.path());
    assert_eq!(
        seqs(&open().await.unwrap().query(&by_id).await.unwrap()),
        [seq]
    );
    let hidden = hide_segments_but(dir.path(), &all, std::slice::from_ref(&holder));
    assert!(open().await.unwrap().query(&by_id).await.is_err());
    hidden.restore();

    // Rebuilding the filters restores the pruning.
    let vault = Vault::open(VaultConfig::new(dir.path())).await.unwrap();
    assert_eq!(vault.rebuild_lookup_filters().await.unwrap(), all.len());
    drop(vault);
    let hidden = hide_segments_but(dir.path(), &all, std::slice::from_ref(&holder));
    assert_eq!(
        seqs(&open().await.unwrap().query(&by_id).await.unwrap()),
        [seq]
    );
    hidden.restore();
}

/// Row groups the bloom filters pruned, from `EXPLAIN ANALYZE` metrics.
fn bloom_pruned(plan: &str) -> u64 {
    let Some(at) = plan.find("row_groups_pruned_bloom_filter=") else {
        return 0;
    };
    let rest = &plan[at + "row_groups_pruned_bloom_filter=".len()..];
    eprintln!(
        "bloom filter metric: {}",
        rest.lines().next().unwrap_or("").get(..60).unwrap_or(rest)
    );
    // "N total → M matched" or a plain number: pruned = total - matched, else N.
    let nums: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .filter_map(|s| s.parse().ok())
        .collect();
    if rest.split_whitespace().nth(1) == Some("total") && nums.len() == 2 {
        nums[0] - nums[1]
    } else {
        nums.first().copied().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_tail(dir.path()).await;
    let engine = SqlEngine::from_vault(
        &vault,
        SqlOptions {
            memory_limit_bytes: 64 * 1024,
            ..SqlOptions::default()
        },
    )
    .await
    .unwrap();
    let err = engine
        .query(
            "SELECT a.seq, b.seq FROM events a JOIN events b ON a.log_stream = b.log_stream \
             WHERE a.message <> b.message",
        )
        .await
        .unwrap_err();
    match &err {
        SqlError::MemoryLimit { limit_bytes, .. } => assert_eq!(*limit_bytes, 64 * 1024),
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    assert!(err.to_string().contains("memory limit"), "{err}");
    // The engine stays usable.
    assert!(engine.query("SELECT 1").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sql_reports_where() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(VaultConfig::new(dir.path())).await.unwrap();
    let engine = SqlEngine::from_vault(&vault, SqlOptions::default())
        .await
        .unwrap();
    let err = engine.query("SELECT *\nFORM events").await.unwrap_err();
    assert_eq!(err.location(), Some((2, 1)), "{err:?}");
    assert!(err.to_string().contains("line 2, column 1"), "{err}");
    let err = engine.query("SELECT nope FROM events").await.unwrap_err();
    assert!(matches!(err, SqlError::Plan(_)), "{err:?}");
    let err = engine.query("DROP TABLE events").await.unwrap_err();
    assert!(matches!(err, SqlError::Plan(_)), "{err:?}");
    // An empty vault still has an (empty) events table.
    let b = engine.query("SELECT count(*) FROM events").await.unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_is_reproducible_and_multi_account() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let va = vault_with_tail(a.path()).await;
    let vb = vault_with_tail(b.path()).await;
    let ea = SqlEngine::from_vault(&va, SqlOptions::default())
        .await
        .unwrap();
    let eb = SqlEngine::from_vault(&vb, SqlOptions::default())
        .await
        .unwrap();
    let q = "SELECT seq, log_group, log_stream, timestamp, message FROM events ORDER BY seq";
    assert_eq!(
        rows(&ea.query(q).await.unwrap()),
        rows(&eb.query(q).await.unwrap())
    );
    let accounts = ea
        .query("SELECT DISTINCT account FROM events ORDER BY 1")
        .await
        .unwrap();
    let got: BTreeSet<String> = accounts
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_string::<i32>();
            (0..a.len())
                .map(|i| a.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(got, ACCOUNTS.iter().map(|s| s.to_string()).collect());
    let by_source = ea
        .query("SELECT source, count(*) FROM events GROUP BY 1 ORDER BY 1")
        .await
        .unwrap();
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for b in &by_source {
        let s = b.column(0).as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            counts.insert(s.value(i).to_string(), n.value(i));
        }
    }
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        ["alb", "cloudtrail", "s3-access", "vpc-flow"]
    );
}
