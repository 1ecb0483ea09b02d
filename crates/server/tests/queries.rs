//! Logs Insights through the API: StartQuery, GetQueryResults, StopQuery, DescribeQueries,
//! driven through the router with `oneshot` and signed requests.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use trailvault_auth::Credentials;
use trailvault_server::router;
use trailvault_store::{now_ms, Vault, VaultConfig};

const ACCOUNT: &str = "123456789012";

struct Harness {
    app: axum::Router,
    vault: Vault,
    creds: Credentials,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(VaultConfig::new(dir.path())).await.unwrap();
    let (keys, creds) = common::admin_keys();
    Harness {
        app: router(common::state(vault.clone(), keys, ACCOUNT, None)),
        vault,
        creds,
        _dir: dir,
    }
}

/// A CloudTrail record as the CloudTrail → CloudWatch Logs integration delivers it.
fn cloudtrail(name: &str, user: &str, ip: &str, failed: bool) -> String {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": user,
                         "arn": format!("arn:aws:iam::{ACCOUNT}:user/{user}")},
        "eventSource": if name == "ConsoleLogin" { "signin.amazonaws.com" } else { "ec2.amazonaws.com" },
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "responseElements": if failed { json!({"ConsoleLogin": "Failure"}) } else { json!(null) },
        "errorMessage": if failed { json!("Failed authentication") } else { json!(null) },
    })
    .to_string()
}

impl Harness {
    async fn call(&self, action: &str, body: Value) -> (StatusCode, Value) {
        common::call(&self.app, Some(&self.creds), action, &body).await
    }

    async fn ok(&self, action: &str, body: Value) -> Value {
        let (s, v) = self.call(action, body).await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
        v
    }

    /// The error code of a call expected to fail with 400.
    async fn refused(&self, action: &str, body: Value) -> String {
        let (s, v) = self.call(action, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{action}: {v}");
        v["__type"].as_str().unwrap_or_default().to_string()
    }

    async fn put(&self, group: &str, stream: &str, events: &[(i64, String)]) {
        let (s, _) = self
            .call("CreateLogGroup", json!({"logGroupName": group}))
            .await;
        assert!(s == StatusCode::OK || s == StatusCode::BAD_REQUEST);
        self.call(
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await;
        for chunk in events.chunks(2000) {
            let evs: Vec<Value> = chunk
                .iter()
                .map(|(t, m)| json!({"timestamp": t, "message": m}))
                .collect();
            let v = self
                .ok(
                    "PutLogEvents",
                    json!({"logGroupName": group, "logStreamName": stream, "logEvents": evs}),
                )
                .await;
            assert!(v.get("rejectedLogEventsInfo").is_none(), "{v}");
        }
    }

    async fn start(&self, body: Value) -> String {
        let v = self.ok("StartQuery", body).await;
        v["queryId"].as_str().unwrap().to_string()
    }

    /// GetQueryResults until the query ends.
    async fn wait(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.ok("GetQueryResults", json!({"queryId": id})).await;
            match v["status"].as_str().unwrap() {
                "Scheduled" | "Running" => {}
                _ => return v,
            }
            assert!(
                std::time::Instant::now() < deadline,
                "query {id} never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `{field: value}` of each result row.
fn rows(v: &Value) -> Vec<std::collections::BTreeMap<String, String>> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap().to_string(),
                        f["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn stats_over_two_groups_sealed_and_unsealed() {
    let h = harness().await;
    // Whole seconds, so the inclusive second range can be pinned exactly.
    let base = (now_ms() / 1000 - 600) * 1000;
    let fails = |ip: &str, n: i64, t0: i64| -> Vec<(i64, String)> {
        (0..n)
            .map(|i| (t0 + i, cloudtrail("ConsoleLogin", "alice", ip, true)))
            .collect()
    };
    h.put("trail-a", "s", &fails("203.0.113.7", 3, base)).await;
    h.vault.seal_now().await.unwrap();
    h.put("trail-a", "s", &fails("198.51.100.2", 1, base + 10))
        .await;
    let mut b = fails("203.0.113.7", 2, base + 20);
    b.push((
        base + 30,
        cloudtrail("RunInstances", "bob", "192.0.2.1", false),
    ));
    h.put("trail-b", "s", &b).await;

    let id = h
        .start(json!({
            "logGroupNames": ["trail-a", "trail-b"],
            "startTime": base / 1000,
            "endTime": base / 1000 + 1,
            "queryString": "filter eventName = \"ConsoleLogin\" and errorMessage = \"Failed authentication\"\n\
                            | stats count(*) as fails by sourceIPAddress | sort fails desc",
        }))
        .await;
    let v = h.wait(&id).await;
    assert_eq!(v["status"], "Complete", "{v}");
    let got = rows(&v);
    assert_eq!(got.len(), 2, "{v}");
    assert_eq!(got[0]["sourceIPAddress"], "203.0.113.7");
    assert_eq!(got[0]["fails"], "5");
    assert_eq!(got[1]["sourceIPAddress"], "198.51.100.2");
    assert_eq!(got[1]["fails"], "1");
    assert!(!got[0].contains_key("@ptr"), "aggregates have no @ptr");
    let st = &v["statistics"];
    assert_eq!(st["recordsScanned"].as_f64(), Some(7.0), "{v}");
    assert_eq!(st["recordsMatched"].as_f64(), Some(6.0), "{v}");
    assert!(st["bytesScanned"].as_f64().unwrap() > 0.0);

    // Single events: @log is account:group, @ptr is present, rows merge by time.
    let id = h
        .start(json!({
            "logGroupIdentifiers": [format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:trail-b"), "trail-a"],
            "startTime": base / 1000,
            "endTime": base / 1000,
            "queryString": "fields @timestamp, @log, @logStream, userIdentity.userName | sort @timestamp desc",
            "limit": 3,
        }))
        .await;
    let v = h.wait(&id).await;
    let got = rows(&v);
    assert_eq!(got.len(), 3, "limit caps the rows: {v}");
    assert_eq!(got[0]["@log"], format!("{ACCOUNT}:trail-b"));
    assert_eq!(got[0]["userIdentity.userName"], "bob");
    assert_eq!(got[0]["@logStream"], "s");
    assert!(got.iter().all(|r| r.contains_key("@ptr")));
    assert_eq!(got[2]["@log"], format!("{ACCOUNT}:trail-b"));
}

#[tokio::test]
async fn the_time_range_is_inclusive_seconds() {
    let h = harness().await;
    let s = now_ms() / 1000 - 100;
    let events = vec![
        (s * 1000 - 1, "before".to_string()),
        (s * 1000, "first ms".to_string()),
        (s * 1000 + 1999, "last ms".to_string()),
        (s * 1000 + 2000, "after".to_string()),
    ];
    h.put("range", "s", &events).await;
    let id = h
        .start(json!({
            "logGroupName": "range",
            "startTime": s,
            "endTime": s + 1,
            "queryString": "fields @message",
        }))
        .await;
    let v = h.wait(&id).await;
    let got: Vec<String> = rows(&v).iter().map(|r| r["@message"].clone()).collect();
    assert_eq!(got, ["first ms", "last ms"]);
}

#[tokio::test]
async fn a_syntax_error_is_a_malformed_query_with_its_location() {
    let h = harness().await;
    h.put("g", "s", &[(now_ms(), "x".into())]).await;
    let text = "fields @message\n| sortt @timestamp";
    let (status, v) = h
        .call(
            "StartQuery",
            json!({"logGroupName": "g", "startTime": 0, "endTime": 1, "queryString": text}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["__type"], "MalformedQueryException", "{v}");
    assert!(v["message"].as_str().unwrap().contains("line 2"), "{v}");
    let loc = &v["queryCompileError"]["location"];
    let at = text.find("sortt").unwrap() as u64;
    assert_eq!(loc["line"], 2, "{v}");
    assert_eq!(loc["start"].as_u64(), Some(at), "{v}");
    assert_eq!(loc["startCharOffset"].as_u64(), Some(at), "{v}");
    assert!(loc["end"].as_u64().unwrap() > at, "{v}");
    assert!(v["queryCompileError"]["message"].is_string());
}

#[tokio::test]
async fn start_query_checks_its_parameters() {
    let h = harness().await;
    h.put("g", "s", &[(now_ms(), "x".into())]).await;
    let q = |extra: Value| {
        let mut b = json!({"startTime": 0, "endTime": 10, "queryString": "fields @message"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let invalid = "InvalidParameterException";
    assert_eq!(h.refused("StartQuery", q(json!({}))).await, invalid);
    assert_eq!(
        h.refused(
            "StartQuery",
            q(json!({"logGroupName": "g", "logGroupNames": ["g"]}))
        )
        .await,
        invalid
    );
    let many: Vec<String> = (0..51).map(|i| format!("g{i}")).collect();
    assert_eq!(
        h.refused("StartQuery", q(json!({"logGroupNames": many})))
            .await,
        invalid
    );
    let (_, v) = h
        .call(
            "StartQuery",
            q(json!({"logGroupName": "g", "queryLanguage": "SQL"})),
        )
        .await;
    assert_eq!(v["__type"], invalid);
    assert!(v["message"].as_str().unwrap().contains("not supported"));
    for limit in [0, 10_001] {
        assert_eq!(
            h.refused(
                "StartQuery",
                q(json!({"logGroupName": "g", "limit": limit}))
            )
            .await,
            invalid
        );
    }
    assert_eq!(
        h.refused(
            "StartQuery",
            q(json!({"logGroupName": "g", "startTime": 10, "endTime": 9}))
        )
        .await,
        invalid
    );
    assert_eq!(
        h.refused(
            "StartQuery",
            q(json!({"logGroupName": "g", "queryString": "x".repeat(10_001)}))
        )
        .await,
        invalid
    );
    assert_eq!(
        h.refused("StartQuery", q(json!({"logGroupName": "nope"})))
            .await,
        "ResourceNotFoundException"
    );
    for action in ["GetQueryResults", "StopQuery"] {
        assert_eq!(
            h.refused(action, json!({"queryId": "no-such-query"})).await,
            "ResourceNotFoundException"
        );
    }
}

/// Enough events that a heavy query over them runs for a while in a debug build.
async fn slow_dataset(h: &Harness, group: &str) -> (i64, i64) {
    let t0 = now_ms() - 60_000;
    let events: Vec<(i64, String)> = (0..20_000)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", i % 7, i % 13, i % 251);
            (
                t0 + i / 4,
                cloudtrail("ConsoleLogin", &format!("u{i}"), &ip, i % 3 == 0),
            )
        })
        .collect();
    h.put(group, "s", &events).await;
    (t0 / 1000 - 1, now_ms() / 1000 + 1)
}

/// (The record's keys are written in sorted order: `sourceIPAddress` before `userIdentity`.)
const HEAVY: &str =
    "parse @message /\"sourceIPAddress\":\"(?<ip>[^\"]*)\".*\"userName\":\"(?<u>[^\"]*)\"/ \
    | filter u like /u[0-9]+/ and isIpv4InSubnet(ip, \"10.0.0.0/8\") \
    | stats count_distinct(u) as users, count(*) as n by ip, bin(1s) | sort users desc";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_query_cancels_a_running_query() {
    let h = harness().await;
    let (from, to) = slow_dataset(&h, "slow").await;
    let body =
        json!({"logGroupName": "slow", "startTime": from, "endTime": to, "queryString": HEAVY});
    let id = h.start(body).await;
    // Wait until it runs, so the stop reaches the executing thread, not a queued task.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = h.ok("GetQueryResults", json!({"queryId": id})).await;
        match v["status"].as_str().unwrap() {
            "Running" => break,
            "Scheduled" => {}
            other => panic!("query ended as {other} before it could be stopped"),
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let v = h.ok("StopQuery", json!({"queryId": id})).await;
    assert_eq!(v["success"], true);
    assert_eq!(
        h.refused("StopQuery", json!({"queryId": id})).await,
        "InvalidParameterException"
    );
    let v = h.wait(&id).await;
    assert_eq!(v["status"], "Cancelled");
    assert_eq!(v["results"], json!([]));
    // The stop is final: a result computed after it does not replace it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = h.ok("GetQueryResults", json!({"queryId": id})).await;
    assert_eq!(v["status"], "Cancelled");
    let v = h
        .ok(
            "DescribeQueries",
            json!({"logGroupName": "slow", "status": "Cancelled"}),
        )
        .await;
    assert_eq!(v["queries"][0]["queryId"], id);
}

#[tokio::test]
async fn at_most_thirty_queries_run_at_once() {
    let h = harness().await;
    let (from, to) = slow_dataset(&h, "busy").await;
    let body =
        json!({"logGroupName": "busy", "startTime": from, "endTime": to, "queryString": HEAVY});
    // On this single-threaded runtime the queries' tasks cannot progress while the requests
    // are answered back to back, so all thirty are still live when the next one asks.
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(h.start(body.clone()).await);
    }
    assert_eq!(
        h.refused("StartQuery", body.clone()).await,
        "LimitExceededException"
    );
    for id in &ids {
        h.ok("StopQuery", json!({"queryId": id})).await;
    }
    let v = h
        .ok("DescribeQueries", json!({"status": "Cancelled"}))
        .await;
    assert_eq!(v["queries"].as_array().unwrap().len(), 30);
    h.start(body).await;
}

#[tokio::test]
async fn describe_queries_filters_and_pages() {
    let h = harness().await;
    let t = now_ms();
    h.put("d1", "s", &[(t, "one".into())]).await;
    h.put("d2", "s", &[(t, "two".into())]).await;
    let range = json!({"startTime": t / 1000 - 5, "endTime": t / 1000 + 5});
    let mut ids = Vec::new();
    for (i, g) in ["d1", "d2", "d2"].iter().enumerate() {
        let mut b = range.clone();
        b["logGroupName"] = json!(g);
        b["queryString"] = json!(format!("fields @message | limit {}", i + 1));
        let id = h.start(b).await;
        assert_eq!(h.wait(&id).await["status"], "Complete");
        ids.push(id);
        // Distinct creation times, so the newest-first order is pinned.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let v = h.ok("DescribeQueries", json!({})).await;
    let listed: Vec<&str> = v["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queryId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&ids[2], &ids[1], &ids[0]]);
    let q0 = &v["queries"][2];
    assert_eq!(q0["queryString"], "fields @message | limit 1");
    assert_eq!(q0["status"], "Complete");
    assert_eq!(q0["logGroupName"], "d1");
    assert!(q0["createTime"].as_i64().unwrap() >= t);
    let v = h.ok("DescribeQueries", json!({"logGroupName": "d2"})).await;
    assert_eq!(v["queries"].as_array().unwrap().len(), 2);
    let v = h.ok("DescribeQueries", json!({"status": "Running"})).await;
    assert_eq!(v["queries"], json!([]));

    // One at a time through the pages.
    let mut token: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let mut b = json!({"maxResults": 1});
        if let Some(t) = &token {
            b["nextToken"] = json!(t);
        }
        let v = h.ok("DescribeQueries", b).await;
        for q in v["queries"].as_array().unwrap() {
            paged.push(q["queryId"].as_str().unwrap().to_string());
        }
        match v["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    for bad in [
        json!({"maxResults": 0}),
        json!({"status": "Done"}),
        json!({"nextToken": "zz"}),
    ] {
        assert_eq!(
            h.refused("DescribeQueries", bad).await,
            "InvalidParameterException"
        );
    }
    // Another vault in the same process sees none of these queries.
    let other = harness().await;
    let v = other.ok("DescribeQueries", json!({})).await;
    assert_eq!(v["queries"], json!([]));
    assert_eq!(
        other
            .refused("GetQueryResults", json!({"queryId": ids[0]}))
            .await,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn get_query_results_pages_with_max_items() {
    let h = harness().await;
    let t = now_ms();
    let events: Vec<(i64, String)> = (0..5).map(|i| (t + i, format!("m{i}"))).collect();
    h.put("p", "s", &events).await;
    let id = h
        .start(
            json!({"logGroupName": "p", "startTime": t / 1000 - 1, "endTime": t / 1000 + 1,
                      "queryString": "fields @message | sort @timestamp asc"}),
        )
        .await;
    h.wait(&id).await;
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut b = json!({"queryId": id, "maxItems": 2});
        if let Some(t) = &token {
            b["nextToken"] = json!(t);
        }
        let v = h.ok("GetQueryResults", b).await;
        got.extend(rows(&v).into_iter().map(|r| r["@message"].clone()));
        match v["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}
