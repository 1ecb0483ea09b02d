//! Subscription filters through the engine: file, webhook and vault destinations, the durable
//! checkpoint across a restart (catch-up from the event source, no duplicates), a destination
//! that is down holding the checkpoint back, out-of-order batches, and the 2-per-group limit.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use trailvault_model::StoredEvent;
use trailvault_monitor::actions::{signature, ActionKind, ActionTarget};
use trailvault_monitor::engine::EngineError;
use trailvault_monitor::remote::{
    ForwardedEvent, PutFuture, PutOutcome, RemoteVault, RemoteVaultTarget,
};
use trailvault_monitor::subscription::{EventSource, SourceError, SubscriptionError};
use trailvault_monitor::{EngineConfig, MonitorEngine, SubscriptionFilterSpec};

/// The vault stand-in: every "stored" event, read back by seq.
#[derive(Default)]
struct Stored(Mutex<Vec<StoredEvent>>);

impl EventSource for Stored {
    fn events_after(
        &self,
        group: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, SourceError> {
        let mut out: Vec<StoredEvent> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.group == group && e.seq > after_seq)
            .cloned()
            .collect();
        out.sort_by_key(|e| e.seq);
        out.truncate(limit);
        Ok(out)
    }
}

impl Stored {
    /// Stores a batch and returns it as the server would hand it over.
    fn put(&self, events: Vec<StoredEvent>) -> Arc<Vec<StoredEvent>> {
        self.0.lock().unwrap().extend(events.iter().cloned());
        Arc::new(events)
    }
}

fn ev(seq: u64, msg: &str) -> StoredEvent {
    StoredEvent {
        seq,
        group: "app".into(),
        stream: "web-1".into(),
        timestamp_ms: 1_700_000_000_000 + seq as i64,
        ingestion_time_ms: 1_700_000_000_000,
        message: msg.into(),
        normalized: None,
    }
}

fn batch(seqs: std::ops::RangeInclusive<u64>) -> Vec<StoredEvent> {
    seqs.map(|s| {
        ev(
            s,
            if s % 2 == 0 {
                "ERROR disk full"
            } else {
                "INFO all good"
            },
        )
    })
    .collect()
}

fn engine(dir: &Path, source: &Arc<Stored>) -> MonitorEngine {
    let mut config = EngineConfig::new(dir.join("monitor.db"));
    config.event_source = Some(source.clone());
    config.account_id = "123456789012".into();
    MonitorEngine::open(config).unwrap()
}

fn spec(name: &str, dest: &str) -> SubscriptionFilterSpec {
    SubscriptionFilterSpec {
        filter_name: name.into(),
        log_group_name: String::new(),
        filter_pattern: "ERROR".into(),
        destination_arn: dest.into(),
        role_arn: None,
        distribution: "ByLogStream".into(),
        creation_time: 0,
    }
}

/// Delivered event ids (as seqs' event ids) in file order.
fn delivered(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["messageType"], "DATA_MESSAGE");
        assert_eq!(v["owner"], "123456789012");
        assert_eq!(v["logGroup"], "app");
        for e in v["logEvents"].as_array().unwrap() {
            assert!(e["message"].as_str().unwrap().starts_with("ERROR"));
            ids.push(e["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

fn ids(seqs: impl IntoIterator<Item = u64>) -> Vec<String> {
    seqs.into_iter().map(|s| ev(s, "").event_id()).collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn file_destination_survives_restart_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let dest = format!("file://{}", out.display());
    let source = Arc::new(Stored::default());
    // History before the filter exists is not delivered.
    source.put(batch(1..=4));

    let e = engine(dir.path(), &source);
    e.put_subscription_filter("app", spec("errors", &dest), Some(4))
        .unwrap();
    e.submit("app", source.put(batch(5..=10)));
    e.submit("other", Arc::new(vec![ev(11, "ERROR elsewhere")]));
    wait_for("first batch", || delivered(&out).len() == 3);
    assert_eq!(delivered(&out), ids([6, 8, 10]));
    wait_for("checkpoint", || {
        e.subscription_checkpoint("app", "errors") == Some(10)
    });
    drop(e);

    // Stored while monitoring was down: caught up from the source after the restart.
    source.put(batch(12..=15));
    let e = engine(dir.path(), &source);
    e.submit("app", source.put(batch(16..=17)));
    wait_for("catch-up and live", || delivered(&out).len() == 6);
    assert_eq!(delivered(&out), ids([6, 8, 10, 12, 14, 16]));
    wait_for("checkpoint", || {
        e.subscription_checkpoint("app", "errors") == Some(17)
    });
    // A batch handed over again (the server retrying a full queue) is not re-delivered.
    e.submit("app", Arc::new(batch(16..=17)));
    e.submit("app", source.put(batch(18..=18)));
    wait_for("checkpoint", || {
        e.subscription_checkpoint("app", "errors") == Some(18)
    });
    assert_eq!(delivered(&out), ids([6, 8, 10, 12, 14, 16, 18]));
}

#[test]
fn out_of_order_batches_are_all_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let source = Arc::new(Stored::default());
    let e = engine(dir.path(), &source);
    e.put_subscription_filter(
        "app",
        spec("f", &format!("file://{}", out.display())),
        Some(0),
    )
    .unwrap();
    // Past the start-up catch-up: from here on only live batches feed the filter.
    e.submit("app", source.put(batch(1..=1)));
    wait_for("start", || e.subscription_checkpoint("app", "f") == Some(1));
    let a = source.put(batch(2..=5));
    let b = source.put(batch(6..=9));
    e.submit("app", b);
    wait_for("b", || delivered(&out).len() == 2);
    e.submit("app", a);
    wait_for("a", || delivered(&out).len() == 4);
    std::thread::sleep(Duration::from_millis(100));
    let mut got = delivered(&out);
    got.sort();
    let mut want = ids([2, 4, 6, 8]);
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn at_most_two_filters_per_group_and_describe_delete() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Stored::default());
    let e = engine(dir.path(), &source);
    let f = |n: &str| format!("file://{}/{n}", dir.path().display());
    e.put_subscription_filter("app", spec("b", &f("b")), None)
        .unwrap();
    e.put_subscription_filter("app", spec("a", &f("a")), None)
        .unwrap();
    // Replacing by name is not a third filter.
    let mut changed = spec("a", &f("a2"));
    changed.filter_pattern = "WARN".into();
    e.put_subscription_filter("app", changed, None).unwrap();
    match e.put_subscription_filter("app", spec("c", &f("c")), None) {
        Err(EngineError::Subscription(SubscriptionError::Limit(_))) => {}
        other => panic!("expected the limit, got {other:?}"),
    }
    let listed = e.describe_subscription_filters("app", None).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.filter_name.as_str(), s.filter_pattern.as_str()))
            .collect::<Vec<_>>(),
        vec![("a", "WARN"), ("b", "ERROR")]
    );
    assert!(listed
        .iter()
        .all(|s| s.log_group_name == "app" && s.creation_time > 0));
    assert_eq!(
        e.describe_subscription_filters("app", Some("b"))
            .unwrap()
            .len(),
        1
    );
    e.delete_subscription_filter("app", "b").unwrap();
    assert!(matches!(
        e.delete_subscription_filter("app", "b"),
        Err(EngineError::Subscription(SubscriptionError::NotFound(_)))
    ));
    e.put_subscription_filter("app", spec("c", &f("c")), None)
        .unwrap();
    for bad in [
        "file://relative",
        "arn:aws:lambda:x",
        "arn:trailvault:command:x",
    ] {
        assert!(matches!(
            e.put_subscription_filter("app", spec("d", bad), None),
            Err(EngineError::Subscription(SubscriptionError::Invalid(_)))
        ));
    }
    let mut bad_pattern = spec("a", &f("a"));
    bad_pattern.filter_pattern = "{ $.x = ".into();
    assert!(matches!(
        e.put_subscription_filter("app", bad_pattern, None),
        Err(EngineError::Subscription(SubscriptionError::Pattern(_)))
    ));
}

/// Answers 503 while `down`, then 200; records every request.
fn receiver(down: Arc<AtomicBool>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let status = if down.load(Ordering::SeqCst) {
                503
            } else {
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_string());
                200
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

#[test]
fn webhook_down_holds_the_checkpoint_then_delivers_signed() {
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(AtomicBool::new(true));
    let (url, seen) = receiver(down.clone());
    let source = Arc::new(Stored::default());
    let e = engine(dir.path(), &source);
    e.db()
        .put_action_target(&ActionTarget {
            name: "siem".into(),
            kind: ActionKind::Webhook {
                url,
                secret: "k3y".into(),
                max_attempts: None,
                timeout_ms: None,
            },
        })
        .unwrap();
    e.put_subscription_filter("app", spec("siem", "arn:trailvault:webhook:siem"), Some(0))
        .unwrap();
    e.submit("app", source.put(batch(1..=4)));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(e.subscription_checkpoint("app", "siem"), Some(0));
    down.store(false, Ordering::SeqCst);
    wait_for("delivery", || !seen.lock().unwrap().is_empty());
    wait_for("checkpoint", || {
        e.subscription_checkpoint("app", "siem") == Some(4)
    });
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (head, body) = requests[0].split_once("\r\n\r\n").unwrap();
    let want = signature(b"k3y", body.as_bytes());
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-trailvault-signature: {want}")),
        "{head}"
    );
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["subscriptionFilters"], serde_json::json!(["siem"]));
    assert_eq!(v["logStream"], "web-1");
    let got: Vec<&str> = v["logEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids([2, 4]));
}

/// The other vault, as the feed sees it through [`RemoteVault`]: stores what it accepts and
/// refuses everything while `down`.
#[derive(Default)]
struct OtherVault {
    down: AtomicBool,
    calls: Mutex<Vec<(RemoteVaultTarget, Vec<ForwardedEvent>)>>,
}

impl RemoteVault for OtherVault {
    fn put_log_events<'a>(
        &'a self,
        target: &'a RemoteVaultTarget,
        events: &'a [ForwardedEvent],
    ) -> PutFuture<'a> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err("connection refused".to_string());
            }
            self.calls
                .lock()
                .unwrap()
                .push((target.clone(), events.to_vec()));
            Ok(PutOutcome::default())
        })
    }
}

impl OtherVault {
    fn messages(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .flat_map(|(_, evs)| {
                evs.iter()
                    .map(|e| format!("{} {}", e.timestamp_ms, e.message))
            })
            .collect()
    }
}

fn vault_target(name: &str) -> ActionTarget {
    ActionTarget {
        name: name.into(),
        kind: ActionKind::Vault {
            endpoint: "http://127.0.0.1:9".into(),
            region: None,
            access_key_id: "AKIDCENTRAL".into(),
            secret_access_key: "very-secret".into(),
            log_group_name: "central/app".into(),
            log_stream_name: "from-edge".into(),
        },
    }
}

fn engine_with_remote(dir: &Path, source: &Arc<Stored>, remote: &Arc<OtherVault>) -> MonitorEngine {
    let mut config = EngineConfig::new(dir.join("monitor.db"));
    config.event_source = Some(source.clone());
    config.remote_vault = Some(remote.clone());
    MonitorEngine::open(config).unwrap()
}

fn forwarded(seqs: impl IntoIterator<Item = u64>) -> Vec<String> {
    seqs.into_iter()
        .map(|s| format!("{} {}", ev(s, "").timestamp_ms, "ERROR disk full"))
        .collect()
}

#[test]
fn vault_destination_forwards_matches_at_least_once_across_down_time_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Stored::default());
    let arn = "arn:trailvault:vault:central";

    // Without a client for other vaults, or without the target, the filter is refused.
    let e = engine(dir.path(), &source);
    e.db().put_action_target(&vault_target("central")).unwrap();
    let err = e
        .put_subscription_filter("app", spec("fwd", arn), Some(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Subscription(SubscriptionError::Invalid(_))
        ),
        "{err}"
    );
    drop(e);
    let remote = Arc::new(OtherVault::default());
    let e = engine_with_remote(dir.path(), &source, &remote);
    let err = e
        .put_subscription_filter("app", spec("fwd", "arn:trailvault:vault:nobody"), Some(0))
        .unwrap_err();
    assert!(err.to_string().contains("no action target"), "{err}");

    e.put_subscription_filter("app", spec("fwd", arn), Some(0))
        .unwrap();
    e.submit("app", source.put(batch(1..=6)));
    wait_for("first forward", || remote.messages().len() == 3);
    assert_eq!(remote.messages(), forwarded([2, 4, 6]));
    let (target, _) = remote.calls.lock().unwrap()[0].clone();
    assert_eq!(target.secret_access_key, "very-secret");
    assert_eq!(target.region, "us-east-1");
    assert_eq!(
        (
            target.log_group_name.as_str(),
            target.log_stream_name.as_str()
        ),
        ("central/app", "from-edge")
    );

    // The secret is in no answer: not in the filter, not in the targets' description.
    let described =
        serde_json::to_string(&e.describe_subscription_filters("app", None).unwrap()).unwrap();
    assert!(described.contains(arn) && !described.contains("very-secret"));
    let targets = serde_json::to_string(&e.db().describe_action_targets().unwrap()).unwrap();
    assert!(targets.contains("AKIDCENTRAL") && !targets.contains("very-secret"));

    // Down: nothing accepted, the checkpoint holds; back up: delivered once.
    remote.down.store(true, Ordering::SeqCst);
    e.submit("app", source.put(batch(7..=10)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(e.subscription_checkpoint("app", "fwd"), Some(6));
    remote.down.store(false, Ordering::SeqCst);
    wait_for("retried forward", || remote.messages().len() == 5);
    wait_for("checkpoint", || {
        e.subscription_checkpoint("app", "fwd") == Some(10)
    });
    drop(e);

    // Stored while stopped: caught up after the restart, nothing sent twice.
    source.put(batch(11..=14));
    let e = engine_with_remote(dir.path(), &source, &remote);
    wait_for("catch-up", || remote.messages().len() == 7);
    wait_for("checkpoint", || {
        e.subscription_checkpoint("app", "fwd") == Some(14)
    });
    assert_eq!(remote.messages(), forwarded([2, 4, 6, 8, 10, 12, 14]));
}

#[test]
fn alarms_refuse_vault_targets() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Stored::default());
    let e = engine(dir.path(), &source);
    e.db().put_action_target(&vault_target("central")).unwrap();
    let mut bad = vault_target("central");
    if let ActionKind::Vault { endpoint, .. } = &mut bad.kind {
        *endpoint = "https://central".into();
    }
    assert!(e.db().put_action_target(&bad).is_err());
    let alarm: trailvault_monitor::AlarmSpec = serde_json::from_value(serde_json::json!({
        "AlarmName": "a", "MetricName": "m", "Namespace": "n", "Statistic": "Sum", "Period": 60,
        "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:trailvault:vault:central"]
    }))
    .unwrap();
    assert!(e.put_alarm(alarm).is_err());
}
