use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::json;
use trailvault_store::{InputEvent, LogGroupMeta, PutOptions, Vault, VaultConfig};

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Batches per run (each 1,000 events of about 1 KB).
    #[arg(long, default_value_t = 100)]
    batches: usize,
    /// Runs per path; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Directory for the data (must be on the disk being measured).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const EVENTS_PER_BATCH: usize = 1000;

/// A seeded, realistic ~1 KB CloudTrail-like record.
pub(crate) fn message(rng: &mut impl Rng, i: usize) -> String {
    const NAMES: [&str; 6] = [
        "ConsoleLogin",
        "AssumeRole",
        "GetObject",
        "PutObject",
        "DescribeInstances",
        "AuthorizeSecurityGroupIngress",
    ];
    let name = NAMES[rng.random_range(0..NAMES.len())];
    let mut m = format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROA{:016X}:session-{i}","arn":"arn:aws:sts::123456789012:assumed-role/app/session-{i}","accountId":"123456789012","accessKeyId":"ASIA{:016X}"}},"eventTime":"2026-11-22T03:{:02}:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.{}","userAgent":"aws-cli/2.15.0 Python/3.11","requestParameters":{{"instanceId":"i-{:017x}"}},"responseElements":null,"requestID":"{:032x}","eventID":"{:032x}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","pad":""#,
        rng.random::<u64>(),
        rng.random::<u64>(),
        rng.random_range(0..60),
        rng.random_range(0..60),
        rng.random_range(1..255),
        rng.random::<u64>() >> 4,
        rng.random::<u128>(),
        rng.random::<u128>(),
    );
    while m.len() < 998 {
        m.push((b'a' + rng.random_range(0..26u8)) as char);
    }
    m.push_str("\"}");
    m
}

fn batches(n: usize, base_ts: i64) -> Vec<Vec<InputEvent>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    (0..n)
        .map(|b| {
            (0..EVENTS_PER_BATCH)
                .map(|i| InputEvent {
                    timestamp_ms: base_ts + (b * EVENTS_PER_BATCH + i) as i64 / 100,
                    message: message(&mut rng, i),
                    normalized: None,
                })
                .collect()
        })
        .collect()
}

struct Figure {
    name: &'static str,
    secs: Vec<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn plain_file(dir: &Path, data: &[Vec<InputEvent>]) -> anyhow::Result<Duration> {
    let path = dir.join("plain.bin");
    let mut f = std::fs::File::create(&path)?;
    let mut buf = Vec::with_capacity(2 << 20);
    let start = Instant::now();
    for batch in data {
        buf.clear();
        for e in batch {
            buf.extend_from_slice(&e.timestamp_ms.to_le_bytes());
            buf.extend_from_slice(e.message.as_bytes());
        }
        f.write_all(&buf)?;
        f.sync_data()?;
    }
    let took = start.elapsed();
    std::fs::remove_file(&path)?;
    Ok(took)
}

fn group(name: &str) -> LogGroupMeta {
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

async fn open_vault(dir: &Path) -> anyhow::Result<Vault> {
    let mut cfg = VaultConfig::new(dir);
    // The ingest path alone: sealing (Parquet + zstd) is measured on its own below.
    cfg.seal_age = Duration::from_secs(3600);
    cfg.seal_bytes = usize::MAX;
    let vault = Vault::open(cfg).await?;
    vault.spawn_sealer();
    vault.create_log_group(group("bench"))?;
    for s in 0..2 {
        vault.create_log_stream("bench", &format!("s{s}"))?;
    }
    Ok(vault)
}

async fn embedded(
    dir: &Path,
    data: &Arc<Vec<Vec<InputEvent>>>,
    writers: usize,
) -> anyhow::Result<Duration> {
    let vault = open_vault(dir).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let vault = vault.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            for batch in data.iter().skip(w).step_by(writers) {
                let now = batch[0].timestamp_ms;
                vault
                    .put_log_events(
                        "bench",
                        &format!("s{w}"),
                        batch.clone(),
                        PutOptions::api(now),
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

async fn http(
    dir: &Path,
    data: &Arc<Vec<Vec<InputEvent>>>,
    conns: usize,
) -> anyhow::Result<Duration> {
    let vault = open_vault(dir).await?;
    let (keys, _) = trailvault_auth::FileKeyStore::open_or_create(dir)?;
    let state = Arc::new(trailvault_server::AppState {
        vault,
        keys: Arc::new(keys),
        verify: Default::default(),
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
        monitor: None,
        integrity_status: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(trailvault_server::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    // Bodies are built before the clock starts: the client's JSON encoding is not ours to time.
    let bodies: Vec<bytes::Bytes> = data
        .iter()
        .enumerate()
        .map(|(i, b)| {
            serde_json::to_vec(&json!({
                "logGroupName": "bench",
                "logStreamName": format!("s{}", i % conns),
                "logEvents": b.iter().map(|e| json!({"timestamp": e.timestamp_ms, "message": e.message})).collect::<Vec<_>>(),
            }))
            .expect("json encodes")
            .into()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let creds =
        trailvault_auth::Credentials::from_shared_file(&dir.join("credentials"), "default")?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let client = trailvault_client::LogsClient::new(
            &format!("http://{addr}"),
            creds.clone(),
            "us-east-1",
        )
        .with_retry(trailvault_client::RetryPolicy {
            attempts_max: 1,
            ..Default::default()
        });
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            for body in bodies.iter().skip(c).step_by(conns) {
                client.call_encoded("PutLogEvents", body.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let took = start.elapsed();
    let _ = stop_tx.send(());
    server.await??;
    Ok(took)
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let now = trailvault_store::now_ms();
    let data = Arc::new(batches(args.batches, now - 60_000));
    let raw_bytes: usize = data.iter().flatten().map(|e| e.message.len()).sum();
    let events = data.len() * EVENTS_PER_BATCH;
    let mut figures = vec![
        Figure {
            name: "plain file + fdatasync per batch (limit)",
            secs: vec![],
        },
        Figure {
            name: "embedded, 1 writer",
            secs: vec![],
        },
        Figure {
            name: "embedded, 2 writers",
            secs: vec![],
        },
        Figure {
            name: "HTTP PutLogEvents, 1 connection",
            secs: vec![],
        },
        Figure {
            name: "HTTP PutLogEvents, 2 connections",
            secs: vec![],
        },
    ];
    let mut sealed_ratio = 0.0;
    for run in 0..args.runs {
        eprintln!("run {}/{}", run + 1, args.runs);
        for (i, f) in figures.iter_mut().enumerate() {
            let dir = tempfile::tempdir_in(&base)?;
            let took = match i {
                0 => plain_file(dir.path(), &data)?,
                1 => embedded(dir.path(), &data, 1).await?,
                2 => embedded(dir.path(), &data, 2).await?,
                3 => http(dir.path(), &data, 1).await?,
                _ => http(dir.path(), &data, 2).await?,
            };
            f.secs.push(took.as_secs_f64());
            if i == 1 && run == 0 {
                let vault = Vault::open(VaultConfig::new(dir.path())).await?;
                let report = vault.seal_now().await?;
                let stored: u64 = vault.segments("bench")?.iter().map(|s| s.bytes).sum();
                let raw: u64 = vault.segments("bench")?.iter().map(|s| s.raw_bytes).sum();
                let _ = report;
                sealed_ratio = stored as f64 / raw.max(1) as f64;
            }
        }
    }
    let limit = median(&mut figures[0].secs.clone());
    println!(
        "ingest: {} batches x {EVENTS_PER_BATCH} events, {:.1} MB raw, median of {} runs",
        data.len(),
        raw_bytes as f64 / 1e6,
        args.runs
    );
    println!();
    println!("| path | median s | events/s | MB/s | vs limit |");
    println!("|---|---:|---:|---:|---:|");
    for f in &figures {
        let m = median(&mut f.secs.clone());
        println!(
            "| {} | {:.3} | {:.0} | {:.1} | {:.0}% |",
            f.name,
            m,
            events as f64 / m,
            raw_bytes as f64 / 1e6 / m,
            100.0 * limit / m
        );
    }
    println!();
    println!("sealed bytes per raw byte (Parquet + zstd): {sealed_ratio:.3}");
    Ok(())
}
