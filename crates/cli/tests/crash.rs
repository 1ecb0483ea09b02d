//! Crash test: a writer sends batches while the server is killed with SIGKILL at random
//! moments. After each restart every acknowledged event is readable exactly once, in order,
//! and a batch that was in flight is either wholly present or wholly absent.
//!
//! `TRAILVAULT_CRASH_CYCLES` sets the number of kills (default 20); `TRAILVAULT_CRASH_SEED`
//! replays a run (the seed is printed on failure).

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::json;

const GROUP: &str = "crash/test";
const STREAM: &str = "writer";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.with_extension("log"))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trailvault"))
        .args(["serve", "--data"])
        .arg(data)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--seal-age",
            "300ms",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start trailvault");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server did not start; see {}.log",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn client(data: &Path, port: u16) -> trailvault_client::LogsClient {
    let creds =
        trailvault_auth::Credentials::from_shared_file(&data.join("credentials"), "default")
            .expect("credentials written by the vault");
    // No retries: a write that fails is in doubt, and must not be sent again by the client.
    trailvault_client::LogsClient::new(&format!("http://127.0.0.1:{port}"), creds, "us-east-1")
        .with_retry(trailvault_client::RetryPolicy {
            attempts_max: 1,
            ..Default::default()
        })
}

async fn read_all(c: &trailvault_client::LogsClient) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req =
            json!({ "logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": true });
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let page = c.call("GetLogEvents", req).await.expect("read events");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return out;
        }
        out.extend(
            events
                .iter()
                .map(|e| e["message"].as_str().unwrap_or("").to_string()),
        );
        token = page["nextForwardToken"].as_str().map(str::to_string);
    }
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let cycles: usize = std::env::var("TRAILVAULT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("TRAILVAULT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test: {cycles} cycles, TRAILVAULT_CRASH_SEED={seed}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let base_ts = trailvault_store::now_ms();
    let mut acked: Vec<String> = Vec::new();
    let mut in_doubt: Vec<Vec<String>> = Vec::new();
    let mut counter = 0u64;

    for cycle in 0..cycles {
        let port = free_port();
        let mut child = start(&data, port);
        let c = client(&data, port);
        if cycle == 0 {
            rt.block_on(async {
                c.call("CreateLogGroup", json!({ "logGroupName": GROUP }))
                    .await
                    .unwrap();
                c.call(
                    "CreateLogStream",
                    json!({ "logGroupName": GROUP, "logStreamName": STREAM }),
                )
                .await
                .unwrap();
            });
        }
        // Check everything so far before writing more.
        let got = rt.block_on(read_all(&c));
        check(&got, &acked, &in_doubt, seed, cycle);
        // Resolve batches that were in doubt: they are now either present or not, for good.
        acked = got;
        in_doubt.clear();

        let kill_after = Duration::from_millis(rng.random_range(30..400));
        let batch_len = rng.random_range(1..200usize);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            // SIGKILL: no chance to flush anything.
            let _ = child.kill();
            let _ = child.wait();
        });
        rt.block_on(async {
            loop {
                let batch: Vec<String> = (0..batch_len)
                    .map(|i| format!("cycle {cycle} event {} {}", counter + i as u64, "x".repeat(i % 50)))
                    .collect();
                let events: Vec<_> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, m)| json!({ "timestamp": base_ts + (counter + i as u64) as i64, "message": m }))
                    .collect();
                counter += batch_len as u64;
                let req = json!({ "logGroupName": GROUP, "logStreamName": STREAM, "logEvents": events });
                match c.call("PutLogEvents", req).await {
                    Ok(_) => acked.extend(batch),
                    Err(_) => {
                        in_doubt.push(batch);
                        break;
                    }
                }
            }
        });
        killer.join().unwrap();
    }
    let port = free_port();
    let mut child = start(&data, port);
    let got = rt.block_on(read_all(&client(&data, port)));
    let _ = child.kill();
    let _ = child.wait();
    check(&got, &acked, &in_doubt, seed, cycles);
    eprintln!(
        "crash test: {} acknowledged events intact after {cycles} SIGKILLs",
        acked.len()
    );
}

/// `got` must be `acked` in order, with each in-doubt batch wholly present (in place, after
/// the acknowledged ones) or wholly absent, and nothing else.
fn check(got: &[String], acked: &[String], in_doubt: &[Vec<String>], seed: u64, cycle: usize) {
    let ctx = format!("(cycle {cycle}, TRAILVAULT_CRASH_SEED={seed})");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in got {
        *counts.entry(m).or_default() += 1;
    }
    if let Some((m, n)) = counts.iter().find(|(_, n)| **n > 1) {
        panic!("event {m:?} read {n} times {ctx}");
    }
    assert!(
        got.len() >= acked.len() && got[..acked.len()] == *acked,
        "acknowledged events missing or out of order: wanted {} events, read {} {ctx}",
        acked.len(),
        got.len()
    );
    let rest = &got[acked.len()..];
    let mut pos = 0;
    for batch in in_doubt {
        if rest[pos..].starts_with(batch) {
            pos += batch.len();
        } else {
            assert!(
                !batch.iter().any(|m| counts.contains_key(m.as_str())),
                "an unacknowledged batch is half-present {ctx}"
            );
        }
    }
    assert_eq!(
        pos,
        rest.len(),
        "events that were never sent appeared {ctx}"
    );
}
