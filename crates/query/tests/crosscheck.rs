//! Query results checked against answers computed directly from the generator's structured
//! facts, plus API behaviour: `@ptr`, statistics, cancellation, limits, and no panics on
//! arbitrary query text.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use support::{dataset, Rng, BASE_MS};
use trailvault_query::{format_csv, format_json, ExecOptions, Query, QueryError, QueryOutput};

fn run(q: &str, events: Vec<(&str, &trailvault_model::StoredEvent)>) -> QueryOutput {
    Query::parse(q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .execute(events, &ExecOptions::default())
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn as_map(out: &QueryOutput, key: &str, val: &str) -> BTreeMap<String, String> {
    out.rows
        .iter()
        .map(|r| {
            let get = |f: &str| {
                r.iter()
                    .find(|x| x.field == f)
                    .map(|x| x.value.clone())
                    .unwrap_or_default()
            };
            (get(key), get(val))
        })
        .collect()
}

#[test]
fn failed_logins_by_ip_match_the_facts() {
    let data = dataset();
    let out = run(
        r#"filter eventName="ConsoleLogin" and errorMessage="Failed authentication" | stats count(*) as fails by sourceIPAddress"#,
        data.group("trail"),
    );
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &data.trail {
        if f.event_name == "ConsoleLogin" && f.error_message == Some("Failed authentication") {
            *counts.entry(f.source_ip).or_default() += 1;
        }
    }
    for (ip, n) in counts {
        want.insert(ip.to_string(), n.to_string());
    }
    assert!(!want.is_empty());
    assert_eq!(as_map(&out, "sourceIPAddress", "fails"), want);
}

#[test]
fn errors_by_principal_and_bins_match_the_facts() {
    let data = dataset();
    let out = run(
        "filter errorCode like /UnauthorizedOperation|AccessDenied/ | stats count(*) as n by userIdentity.arn",
        data.group("trail"),
    );
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for f in &data.trail {
        if f.error_code.is_some() {
            *counts.entry(f.arn.clone()).or_default() += 1;
        }
    }
    let want: BTreeMap<String, String> = counts
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    assert_eq!(as_map(&out, "userIdentity.arn", "n"), want);

    // 10-minute bins of every event, by the facts' own times.
    let out = run("stats count(*) as n by bin(10m) as t", data.group("trail"));
    let mut bins: BTreeMap<i64, u64> = BTreeMap::new();
    for f in &data.trail {
        *bins.entry((f.time_ms - BASE_MS) / 600_000).or_default() += 1;
    }
    assert_eq!(out.rows.len(), bins.len());
    for (row, (bin, n)) in out.rows.iter().zip(bins) {
        let ts = chrono::DateTime::from_timestamp_millis(BASE_MS + bin * 600_000)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        assert_eq!(row[0].value, ts);
        assert_eq!(row[1].value, n.to_string());
    }
}

#[test]
fn distinct_and_top_k_match_the_facts() {
    let data = dataset();
    let out = run(
        "stats count_distinct(eventName) as apis, count_distinct(sourceIPAddress) as ips",
        data.group("trail"),
    );
    let apis: HashSet<_> = data.trail.iter().map(|f| f.event_name).collect();
    let ips: HashSet<_> = data.trail.iter().map(|f| f.source_ip).collect();
    assert_eq!(out.rows[0][0].value, apis.len().to_string());
    assert_eq!(out.rows[0][1].value, ips.len().to_string());

    // Top-k through the heap path equals a full sort.
    let out = run(
        "fields @timestamp, eventName | sort eventName desc, @timestamp asc | limit 7",
        data.group("trail"),
    );
    let mut facts: Vec<_> = data.trail.iter().collect();
    facts.sort_by(|a, b| {
        b.event_name
            .cmp(a.event_name)
            .then(a.time_ms.cmp(&b.time_ms))
    });
    let got: Vec<&str> = out.rows.iter().map(|r| r[1].value.as_str()).collect();
    let want: Vec<&str> = facts.iter().take(7).map(|f| f.event_name).collect();
    assert_eq!(got, want);
}

#[test]
fn rows_carry_ptr_and_statistics() {
    let data = dataset();
    let events = data.group("trail");
    let first_id = events[0].1.event_id();
    let out = run("fields eventName | limit 2", events);
    assert_eq!(out.fields, vec!["eventName"]);
    assert_eq!(out.rows[0].last().unwrap().field, "@ptr");
    assert_eq!(out.rows[0].last().unwrap().value, first_id);
    assert_eq!(out.statistics.records_scanned, 2);
    let json: serde_json::Value = serde_json::from_str(&format_json(&out)).unwrap();
    assert_eq!(json["results"][0][1]["field"], "@ptr");
    assert_eq!(json["statistics"]["recordsMatched"], 2);
    assert!(format_csv(&out).starts_with("eventName\r\n"));

    let agg = run("stats count(*) as n by eventSource", data.group("trail"));
    assert!(agg.rows.iter().all(|r| r.iter().all(|f| f.field != "@ptr")));
}

#[test]
fn cancellation_stops_the_scan() {
    let data = dataset();
    let q = Query::parse("stats count(*)").unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let opts = ExecOptions {
        cancel: Some(flag.clone()),
        ..ExecOptions::default()
    };
    assert_eq!(q.execute(data.refs(), &opts), Err(QueryError::Cancelled));
    flag.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(q.execute(data.refs(), &opts).is_ok());
}

#[test]
fn held_values_limit_is_a_clean_error() {
    let data = dataset();
    let q = Query::parse("stats pct(@timestamp, 50) as p").unwrap();
    let opts = ExecOptions {
        held_values_max: 100,
        ..ExecOptions::default()
    };
    match q.execute(data.refs(), &opts) {
        Err(QueryError::MemoryLimit(m)) => assert!(m.contains("more than 100 values")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn too_long_query_is_rejected() {
    let q = format!("filter a = \"{}\"", "x".repeat(10_000));
    assert!(matches!(Query::parse(&q), Err(QueryError::TooLong { .. })));
}

/// Random token soup must give a query or a located syntax error, never a panic, and running
/// whatever parses must not panic either.
#[test]
fn arbitrary_text_never_panics() {
    const PIECES: &[&str] = &[
        "fields",
        "filter",
        "stats",
        "sort",
        "limit",
        "parse",
        "dedup",
        "display",
        "by",
        "as",
        "and",
        "or",
        "not",
        "in",
        "like",
        "=~",
        "count(*)",
        "count(",
        "pct(",
        "bin(",
        "5m",
        "1mo",
        "(",
        ")",
        "[",
        "]",
        ",",
        "|",
        "=",
        "!=",
        "<",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "^",
        "%",
        "\"a*b\"",
        "'x'",
        "/re/",
        "/(?<n>\\d+)/",
        "`odd name`",
        "@message",
        "@timestamp",
        "eventName",
        "userIdentity.arn",
        "42",
        "-1.5",
        "10001",
        "#c\n",
        "\n",
        "\"",
        "/",
        "`",
        "é",
        "asc",
        "desc",
        "concat(",
        "substr(",
        "isIpInSubnet(",
        "sum(",
        "earliest(",
        "@log",
    ];
    let data = dataset();
    let events = data.group("trail");
    let mut rng = Rng::new(42);
    let mut parsed = 0;
    for _ in 0..4000 {
        let n = 1 + rng.below(12) as usize;
        let q: Vec<&str> = (0..n).map(|_| *rng.pick(PIECES)).collect();
        let q = q.join(" ");
        match Query::parse(&q) {
            Ok(query) => {
                parsed += 1;
                let _ = query.execute(events.iter().copied().take(20), &ExecOptions::default());
            }
            Err(QueryError::Syntax(e)) => {
                assert!(e.line >= 1 && e.column >= 1, "{q}: {e:?}");
                assert!(
                    e.start < e.end && e.end <= q.chars().count() + 1,
                    "{q}: {e:?}"
                );
            }
            Err(e) => panic!("{q}: unexpected {e}"),
        }
    }
    assert!(parsed > 0);
}
