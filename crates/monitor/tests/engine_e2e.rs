//! End to end through the engine: the CIS pack on a CloudTrail group, three failed console
//! sign-ins → ALARM, exactly one signed webhook to a real HTTP receiver, the command runs once,
//! the transition reaches the alarms log-group sink; later, back to OK.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trailvault_model::StoredEvent;
use trailvault_monitor::actions::{signature, ActionKind, ActionTarget, AlarmSink};
use trailvault_monitor::{rule_pack, AlarmState, EngineConfig, MonitorEngine};

struct Sink(Mutex<Vec<String>>);
impl AlarmSink for Sink {
    fn record_transition(&self, json: String) {
        self.0.lock().unwrap().push(json);
    }
}

fn failed_login(seq: u64, ts: i64) -> StoredEvent {
    let message = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","accountId":"123456789012","userName":"mallory"},"eventTime":"2024-05-01T12:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","errorMessage":"Failed authentication","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"},"eventType":"AwsConsoleSignIn"}"#.to_string();
    StoredEvent {
        seq,
        group: "ct".into(),
        stream: "s".into(),
        timestamp_ms: ts,
        ingestion_time_ms: ts,
        message,
        normalized: None,
    }
}

#[test]
fn cis_console_failures_alarm_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
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
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).to_string());
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });

    let sink = Arc::new(Sink(Mutex::new(Vec::new())));
    let mut config = EngineConfig::new(dir.path().join("monitor.db"));
    config.sink = Some(sink.clone());
    let engine = MonitorEngine::open(config).unwrap();
    engine
        .db()
        .put_action_target(&ActionTarget {
            name: "ops".into(),
            kind: ActionKind::Webhook {
                url,
                secret: "s3cret".into(),
                max_attempts: Some(3),
                timeout_ms: None,
            },
        })
        .unwrap();
    let ran = dir.path().join("ran.txt");
    engine
        .db()
        .put_action_target(&ActionTarget {
            name: "disable-key".into(),
            kind: ActionKind::Command {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    format!(
                        "echo \"$TRAILVAULT_ALARM_NAME $TRAILVAULT_ALARM_NEW_STATE\" >> '{}'",
                        ran.display()
                    ),
                ],
                timeout_ms: Some(10_000),
            },
        })
        .unwrap();

    let pack = rule_pack("cis-aws").unwrap();
    for f in pack.metric_filters("ct") {
        engine.put_metric_filter("ct", f).unwrap();
    }
    assert_eq!(
        engine
            .describe_metric_filters(Some("ct"), None, None)
            .unwrap()
            .len(),
        15
    );
    let target_alarm = "cis-aws-console-auth-failures";
    for mut a in pack.alarms("ct") {
        if a.alarm_name == target_alarm {
            a.alarm_actions = vec![
                "arn:trailvault:webhook:ops".into(),
                "arn:trailvault:command:disable-key".into(),
            ];
        }
        engine.put_alarm(a).unwrap();
    }
    engine.flush();
    let state = |name: &str| {
        engine
            .db()
            .describe_alarms(&Default::default())
            .unwrap()
            .into_iter()
            .find(|a| a.spec.alarm_name == name)
            .unwrap()
            .state_value
    };
    assert_eq!(
        state(target_alarm),
        AlarmState::Ok,
        "notBreaching with no data is OK"
    );

    let now = chrono::Utc::now().timestamp_millis();
    let start = Instant::now();
    engine.submit(
        "ct",
        Arc::new(
            (0..3)
                .map(|i| failed_login(i, now - 2_000 + i as i64 * 500))
                .collect(),
        ),
    );
    // The alarm thread picks the data up on its own; wait for it rather than forcing it.
    while state(target_alarm) != AlarmState::Alarm {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no ALARM within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let to_alarm = start.elapsed();
    assert!(to_alarm < Duration::from_secs(3), "ALARM took {to_alarm:?}");
    // Every other CIS alarm stays OK.
    for a in pack.alarms("ct") {
        if a.alarm_name != target_alarm {
            assert_eq!(state(&a.alarm_name), AlarmState::Ok, "{}", a.alarm_name);
        }
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    while (requests.lock().unwrap().is_empty() || !ran.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let reqs = requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1, "exactly one notification");
    let body = &reqs[0][reqs[0].find("\r\n\r\n").unwrap() + 4..];
    let sig = signature(b"s3cret", body.as_bytes());
    assert!(reqs[0]
        .to_ascii_lowercase()
        .contains(&format!("x-trailvault-signature: {sig}")));
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["alarmName"], target_alarm);
    assert_eq!(json["oldState"], "OK");
    assert_eq!(json["newState"], "ALARM");
    assert_eq!(json["datapoints"][0]["value"], 3.0);
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap(),
        format!("{target_alarm} ALARM\n")
    );
    let records = sink.0.lock().unwrap().clone();
    assert!(
        records
            .iter()
            .any(|r| r.contains(target_alarm) && r.contains("\"newState\":\"ALARM\"")),
        "{records:?}"
    );
    assert!(records.iter().all(|r| notification_body_is_json(r)));

    // After the evaluation range has passed without breaching data: back to OK, once.
    let later = engine.evaluate_alarms_at(now + 20 * 60_000);
    assert_eq!(
        later
            .iter()
            .filter(|t| t.alarm_name == target_alarm)
            .count(),
        1
    );
    assert_eq!(state(target_alarm), AlarmState::Ok);
    let history = engine
        .db()
        .alarm_history(Some(target_alarm), Some("StateUpdate"), None, None, 100)
        .unwrap();
    assert_eq!(history.len(), 3, "INSUFFICIENT_DATA→OK→ALARM→OK");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();
}

fn notification_body_is_json(s: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(s).is_ok()
}
