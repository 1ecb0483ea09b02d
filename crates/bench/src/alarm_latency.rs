//! `alarm-latency`: how long after PutLogEvents is acknowledged a webhook receives the news,
//! while the vault ingests a sustained `--rate` events/s over loopback HTTP.
//!
//! One process: a real vault and HTTP server with the monitor engine, a real HTTP webhook
//! receiver (axum), and an open-loop driver (batches leave on schedule, not when the previous
//! one is answered, so a slow acknowledgement cannot lower the offered rate). The group carries
//! the whole CIS pack (15 metric filters and alarms, no actions) plus `--triggers` metric
//! filters, each with an alarm whose ALARM action is a signed webhook; one trigger event goes
//! out every `seconds / triggers` seconds. A subscription filter sends one sampled event per
//! batch to the same receiver.
//!
//! Measured, all on one monotonic clock:
//! - alarm: acknowledgement of the batch holding a trigger event → the receiver has the
//!   signed ALARM notification of that trigger's alarm (metric filter → per-minute data →
//!   alarm evaluation → action thread → HTTP POST);
//! - subscription: acknowledgement of a batch → the receiver has the envelope holding that
//!   batch's sampled event;
//! - context: PutLogEvents request → acknowledgement, and the floor: a plain POST from this
//!   process to the same receiver.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::SeedableRng;
use serde_json::{json, Value};
use trailvault_monitor::actions::{signature, ActionKind, ActionTarget};
use trailvault_monitor::engine::{EngineConfig, MonitorEngine};
use trailvault_monitor::{AlarmSpec, MetricFilterSpec, MetricTransformation};
use trailvault_store::{LogGroupMeta, Vault, VaultConfig};

#[derive(clap::Args)]
pub struct AlarmLatencyArgs {
    /// Offered load, events per second.
    #[arg(long, default_value_t = 20_000)]
    rate: usize,
    /// How long to sustain it.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Events per PutLogEvents call.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Alarms fired during the run (one metric filter + alarm each; at most 85 beside the
    /// CIS pack's 15 filters, CloudWatch's 100 per group).
    #[arg(long, default_value_t = 60)]
    triggers: usize,
    /// Directory for the data (on the disk being measured).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const GROUP: &str = "bench/cloudtrail";
const STREAMS: usize = 4;
const IN_FLIGHT_MAX: usize = 32;
const SECRET: &str = "bench-webhook-secret";
const FLOOR_POSTS: usize = 200;
/// How long to wait for the last notifications after the load stops.
const DRAIN: Duration = Duration::from_secs(15);

/// What the receiver got: arrival time and body, and whether the signature matched.
#[derive(Default)]
struct Received(Mutex<Vec<(Instant, bool, bytes::Bytes)>>);

async fn receive(
    axum::extract::State(got): axum::extract::State<Arc<Received>>,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> &'static str {
    let at = Instant::now();
    let signed = headers
        .get("x-trailvault-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == signature(SECRET.as_bytes(), &body));
    got.0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((at, signed, body));
    "ok"
}

fn group_meta() -> LogGroupMeta {
    LogGroupMeta {
        name: GROUP.into(),
        created_ms: 0,
        retention_days: None,
        kms_key_id: None,
        log_group_class: "STANDARD".into(),
        deletion_protection: false,
        tags: Default::default(),
    }
}

fn trigger_filter(k: usize) -> MetricFilterSpec {
    MetricFilterSpec {
        filter_name: format!("trigger-{k}"),
        filter_pattern: format!("{{ $.benchTrigger = \"t{k}\" }}"),
        metric_transformations: vec![MetricTransformation {
            metric_name: format!("Trigger{k}"),
            metric_namespace: "Bench".into(),
            metric_value: "1".into(),
            default_value: None,
            dimensions: Default::default(),
            unit: None,
        }],
        log_group_name: None,
        creation_time: None,
    }
}

fn trigger_alarm(k: usize, action: &str) -> anyhow::Result<AlarmSpec> {
    Ok(serde_json::from_value(json!({
        "AlarmName": format!("bench-t{k}"),
        "MetricName": format!("Trigger{k}"),
        "Namespace": "Bench",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [action],
    }))?)
}

/// Sets up the engine: CIS pack, trigger filters and alarms, the subscription filter.
fn configure(engine: &MonitorEngine, hook_url: &str, triggers: usize) -> anyhow::Result<()> {
    let hook = ActionTarget {
        name: "bench".into(),
        kind: ActionKind::Webhook {
            url: hook_url.into(),
            secret: SECRET.into(),
            max_attempts: None,
            timeout_ms: None,
        },
    };
    engine.db().put_action_target(&hook)?;
    let cis = trailvault_monitor::rule_pack("cis-aws").context("the CIS pack is built in")?;
    for f in cis.metric_filters(GROUP) {
        engine.put_metric_filter(GROUP, f)?;
    }
    for a in cis.alarms(GROUP) {
        engine.put_alarm(a)?;
    }
    for k in 0..triggers {
        engine.put_metric_filter(GROUP, trigger_filter(k))?;
        engine.put_alarm(trigger_alarm(k, &hook.arn())?)?;
    }
    let sub: trailvault_monitor::SubscriptionFilterSpec = serde_json::from_value(json!({
        "filterName": "sampled",
        "filterPattern": "{ $.benchSample = * }",
        "destinationArn": hook.arn(),
    }))?;
    engine.put_subscription_filter(GROUP, sub, Some(0))?;
    // Let every alarm leave INSUFFICIENT_DATA before the clock starts.
    engine.flush();
    Ok(())
}

/// One planned PutLogEvents call.
struct Planned {
    at: Duration,
    body: bytes::Bytes,
    trigger: Option<usize>,
}

fn plan(args: &AlarmLatencyArgs, base_ms: i64) -> Vec<Planned> {
    let batches = (args.rate as u64 * args.seconds).div_ceil(args.batch as u64) as usize;
    let gap = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let every = (batches / args.triggers.max(1)).max(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..batches)
        .map(|b| {
            let at = gap * b as u32;
            let ts = base_ms + at.as_millis() as i64;
            let trigger = (b % every == every / 2 && b / every < args.triggers).then(|| b / every);
            let mut events: Vec<Value> = (0..args.batch)
                .map(|i| {
                    json!({
                        "timestamp": ts,
                        "message": crate::ingest::message(&mut rng, b * args.batch + i),
                    })
                })
                .collect();
            events[0]["message"] =
                json!(json!({"benchSample": b, "eventName": "Sample"}).to_string());
            if let Some(k) = trigger {
                events[1]["message"] = json!(
                    json!({"benchTrigger": format!("t{k}"), "eventName": "Trigger"}).to_string()
                );
            }
            let body = json!({
                "logGroupName": GROUP,
                "logStreamName": format!("s{}", b % STREAMS),
                "logEvents": events,
            });
            Planned {
                at,
                body: serde_json::to_vec(&body).unwrap_or_default().into(),
                trigger,
            }
        })
        .collect()
}

/// p50, p99 and max of `v` in ms (nearest rank).
fn quantiles(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((rank(0.50), rank(0.99), v[v.len() - 1]))
}

fn row(name: &str, v: &mut [f64]) {
    match quantiles(v) {
        Some((p50, p99, max)) => {
            println!("| {name} | {} | {p50:.1} | {p99:.1} | {max:.1} |", v.len())
        }
        None => println!("| {name} | 0 | - | - | - |"),
    }
}

async fn open_vault(dir: &Path) -> anyhow::Result<Vault> {
    let vault = Vault::open(VaultConfig::new(dir)).await?;
    vault.spawn_sealer();
    vault.create_log_group(group_meta())?;
    for s in 0..STREAMS {
        vault.create_log_stream(GROUP, &format!("s{s}"))?;
    }
    Ok(vault)
}

pub async fn run(args: AlarmLatencyArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.batch < 2 || args.seconds == 0 {
        bail!("--rate and --seconds must be positive and --batch at least 2");
    }
    if args.triggers == 0 || args.triggers > 85 {
        bail!("--triggers must be 1 to 85");
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;

    let got = Arc::new(Received::default());
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", receiver.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let vault = open_vault(dir.path()).await?;
    let engine = Arc::new(MonitorEngine::open(EngineConfig::new(
        dir.path().join("monitor.sqlite"),
    ))?);
    configure(&engine, &hook_url, args.triggers)?;
    let (keys, _) = trailvault_auth::FileKeyStore::open_or_create(dir.path())?;
    let state = Arc::new(trailvault_server::AppState {
        vault,
        keys: Arc::new(keys),
        verify: Default::default(),
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
        monitor: Some(engine.clone()),
        integrity_status: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(trailvault_server::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    let creds =
        trailvault_auth::Credentials::from_shared_file(&dir.path().join("credentials"), "default")?;
    let client = trailvault_client::LogsClient::new(&format!("http://{addr}"), creds, "us-east-1")
        .with_retry(trailvault_client::RetryPolicy {
            attempts_max: 1,
            ..Default::default()
        });

    // Bodies are built (and timestamped with their planned send time) before the clock starts.
    let planned = plan(&args, trailvault_store::now_ms() + 500);
    eprintln!(
        "alarm-latency: {} batches of {} events at {} events/s for {} s, {} alarms to fire",
        planned.len(),
        args.batch,
        args.rate,
        args.seconds,
        args.triggers
    );
    let t0 = Instant::now() + Duration::from_millis(500);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_MAX));
    let mut tasks = Vec::with_capacity(planned.len());
    let mut late_ms_max = 0f64;
    for p in &planned {
        tokio::time::sleep_until((t0 + p.at).into()).await;
        late_ms_max = late_ms_max.max(t0.elapsed().as_secs_f64() * 1e3 - p.at.as_secs_f64() * 1e3);
        let permit = slots.clone().acquire_owned().await?;
        let client = client.clone();
        let body = p.body.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = client.call_encoded("PutLogEvents", body).await;
            drop(permit);
            r.map(|_| (sent, Instant::now()))
        }));
    }
    let mut acks = Vec::with_capacity(tasks.len());
    for t in tasks {
        acks.push(t.await?.context("PutLogEvents failed during the run")?);
    }
    let elapsed = acks.iter().map(|(_, a)| *a).max().unwrap_or(t0) - t0;
    let achieved = (planned.len() * args.batch) as f64 / elapsed.as_secs_f64();

    // Wait for every alarm notification and every sampled event.
    let deadline = Instant::now() + DRAIN;
    let (alarms_got, samples_got) = loop {
        let (a, s) = tally(&got);
        if (a.len() >= args.triggers && s.len() >= planned.len()) || Instant::now() > deadline {
            break (a, s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bad_signatures = got
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, ok, _)| !ok)
        .count();

    let mut alarm_ms = Vec::new();
    for (b, p) in planned.iter().enumerate() {
        if let Some(at) = p
            .trigger
            .and_then(|k| alarms_got.get(&format!("bench-t{k}")))
        {
            alarm_ms.push(ms_between(acks[b].1, *at));
        }
    }
    let mut sub_ms: Vec<f64> = (0..planned.len())
        .filter_map(|b| samples_got.get(&b).map(|at| ms_between(acks[b].1, *at)))
        .collect();
    let mut ack_ms: Vec<f64> = acks.iter().map(|(s, a)| ms_between(*s, *a)).collect();

    // The floor: plain POSTs from here to the same receiver.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut floor_ms = Vec::with_capacity(FLOOR_POSTS);
    for i in 0..FLOOR_POSTS {
        let body = json!({"floor": i}).to_string();
        let sig = signature(SECRET.as_bytes(), body.as_bytes());
        let start = Instant::now();
        http.post(&hook_url)
            .header("X-Trailvault-Signature", sig)
            .body(body)
            .send()
            .await?
            .error_for_status()?;
        floor_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }

    let _ = stop_tx.send(());
    server.await??;
    engine.shutdown();

    println!(
        "alarm-latency: offered {} events/s for {} s in batches of {}; achieved {:.0} events/s \
         ({} events acknowledged in {:.2} s; driver at most {:.1} ms behind schedule)",
        args.rate,
        args.seconds,
        args.batch,
        achieved,
        planned.len() * args.batch,
        elapsed.as_secs_f64(),
        late_ms_max
    );
    println!(
        "alarms fired {}/{}, sampled events delivered {}/{}, notifications with a bad signature: {}",
        alarm_ms.len(),
        args.triggers,
        sub_ms.len(),
        planned.len(),
        bad_signatures
    );
    println!();
    println!("| latency | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    row("PutLogEvents ack → alarm webhook received", &mut alarm_ms);
    row(
        "PutLogEvents ack → subscription webhook received",
        &mut sub_ms,
    );
    row("PutLogEvents request → ack (context)", &mut ack_ms);
    row("plain POST to the same receiver (floor)", &mut floor_ms);
    if alarm_ms.len() < args.triggers || sub_ms.len() < planned.len() {
        bail!("some notifications did not arrive within {DRAIN:?} of the end of the load");
    }
    Ok(())
}

/// Signed ms from `from` to `to` (negative if `to` came first).
fn ms_between(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1e3
    } else {
        -((from - to).as_secs_f64() * 1e3)
    }
}

/// First arrival per alarm name (ALARM notifications) and per sampled batch.
fn tally(got: &Received) -> (HashMap<String, Instant>, HashMap<usize, Instant>) {
    let mut alarms = HashMap::new();
    let mut samples = HashMap::new();
    for (at, _, body) in got.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            continue;
        };
        if v["newState"] == "ALARM" {
            if let Some(name) = v["alarmName"].as_str() {
                alarms.entry(name.to_string()).or_insert(*at);
            }
        }
        for e in v["logEvents"].as_array().into_iter().flatten() {
            let sample = e["message"]
                .as_str()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
                .and_then(|m| m["benchSample"].as_u64());
            if let Some(b) = sample {
                samples.entry(b as usize).or_insert(*at);
            }
        }
    }
    (alarms, samples)
}
