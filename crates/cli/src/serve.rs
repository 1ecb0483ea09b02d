//! `trailvault serve` and `trailvault quickstart`: wire the store, the integrity chain,
//! monitoring and the HTTP server together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use trailvault_auth::{FileKeyStore, VerifyConfig};
use trailvault_server::AppState;
use trailvault_store::{Vault, VaultConfig};

use crate::{QuickstartArgs, ServeArgs};

/// A vault serving HTTP in this process.
pub struct RunningVault {
    pub addr: SocketAddr,
    pub vault: Vault,
    pub data: PathBuf,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn start(args: &ServeArgs) -> anyhow::Result<RunningVault> {
    let data = args.data.clone();
    let mut cfg = VaultConfig::new(&data);
    cfg.seal_bytes = args.seal_bytes;
    cfg.seal_age = args.seal_age;
    let vault = Vault::open(cfg)
        .await
        .with_context(|| format!("could not open the vault in {}", data.display()))?;
    vault.spawn_sealer();
    let algorithm = trailvault_integrity::SignatureAlgorithm::parse(&args.signing_algorithm)
        .with_context(|| format!("unknown signing algorithm {:?}", args.signing_algorithm))?;
    let digest_writer = crate::digests::open_writer(&vault, algorithm).await?;
    crate::digests::spawn(vault.clone(), digest_writer, args.digest_period);
    let monitor = open_monitor(&vault, &args.account_id)?;
    let (keys, created) = FileKeyStore::open_or_create(&data)
        .with_context(|| format!("could not open the access keys in {}", data.display()))?;
    if let Some(key) = created {
        tracing::info!(access_key_id = %key.id, "created the admin access key");
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let integrity_status = Arc::new(std::sync::RwLock::new(None));
    crate::digests::spawn_validator(vault.clone(), integrity_status.clone(), args.validate_every);
    let state = Arc::new(AppState {
        vault: vault.clone(),
        keys: Arc::new(keys),
        verify: VerifyConfig {
            region: args.region.clone(),
            ..VerifyConfig::default()
        },
        account_id: args.account_id.clone(),
        region: args.region.clone().unwrap_or_else(|| "us-east-1".into()),
        monitor: Some(monitor),
        integrity_status,
    });
    let server = tokio::spawn(trailvault_server::serve(listener, state, shutdown_signal()));
    Ok(RunningVault {
        addr,
        vault,
        data,
        server,
    })
}

/// The group every alarm transition is written to: evidence like any other log.
pub const ALARMS_GROUP: &str = "trailvault/alarms";
const ALARMS_STREAM: &str = "transitions";

/// Writes alarm transitions into [`ALARMS_GROUP`] through the normal write path.
struct AlarmsGroupSink {
    vault: Vault,
    runtime: tokio::runtime::Handle,
}

impl trailvault_monitor::actions::AlarmSink for AlarmsGroupSink {
    fn record_transition(&self, json: String) {
        let vault = self.vault.clone();
        self.runtime.spawn(async move {
            let now = trailvault_store::now_ms();
            let event = trailvault_store::InputEvent {
                timestamp_ms: now,
                message: json,
                normalized: None,
            };
            if let Err(e) = vault
                .put_log_events(
                    ALARMS_GROUP,
                    ALARMS_STREAM,
                    vec![event],
                    trailvault_store::PutOptions::api(now),
                )
                .await
            {
                tracing::error!(error = %e, "could not record an alarm transition");
            }
        });
    }
}

/// Reads stored events back for subscription-filter catch-up (after a restart, or when a
/// filter's queue overflowed). Called on the monitor's blocking threads, never on this runtime's
/// workers, so blocking on the runtime is allowed.
struct VaultEventSource {
    vault: Vault,
    runtime: tokio::runtime::Handle,
}

impl trailvault_monitor::subscription::EventSource for VaultEventSource {
    fn events_after(
        &self,
        group: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<trailvault_model::StoredEvent>, trailvault_monitor::subscription::SourceError>
    {
        // The whole group is read; catch-up is rare (start-up, overflow), not per batch.
        let mut events = self
            .runtime
            .block_on(self.vault.read_events(
                group,
                &trailvault_store::StreamFilter::All,
                None,
                None,
            ))
            .map_err(|e| trailvault_monitor::subscription::SourceError(e.to_string()))?;
        events.retain(|e| e.seq > after_seq);
        events.sort_unstable_by_key(|e| e.seq);
        events.truncate(limit);
        Ok(events)
    }
}

fn open_monitor(
    vault: &Vault,
    account_id: &str,
) -> anyhow::Result<Arc<trailvault_monitor::engine::MonitorEngine>> {
    match vault.create_log_group(trailvault_store::LogGroupMeta {
        name: ALARMS_GROUP.into(),
        created_ms: trailvault_store::now_ms(),
        retention_days: None,
        kms_key_id: None,
        log_group_class: "STANDARD".into(),
        deletion_protection: true,
        tags: Default::default(),
    }) {
        Ok(()) | Err(trailvault_store::StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e).context("could not create the alarms log group"),
    }
    match vault.create_log_stream(ALARMS_GROUP, ALARMS_STREAM) {
        Ok(()) | Err(trailvault_store::StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e).context("could not create the alarms log stream"),
    }
    let mut config = trailvault_monitor::engine::EngineConfig::new(
        vault.config().data_dir.join("monitor.sqlite"),
    );
    config.sink = Some(Arc::new(AlarmsGroupSink {
        vault: vault.clone(),
        runtime: tokio::runtime::Handle::current(),
    }));
    config.event_source = Some(Arc::new(VaultEventSource {
        vault: vault.clone(),
        runtime: tokio::runtime::Handle::current(),
    }));
    config.remote_vault = Some(Arc::new(
        trailvault_client::forward::VaultForwarder::default(),
    ));
    config.account_id = account_id.to_string();
    let engine = trailvault_monitor::engine::MonitorEngine::open(config)
        .context("could not start monitoring")?;
    Ok(Arc::new(engine))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn print_banner(addr: SocketAddr, data: &Path) {
    let creds = data.join("credentials");
    println!("trailvault listening on http://{addr}");
    println!("  data:        {}", data.display());
    println!("  credentials: {}", creds.display());
    println!("  try:         AWS_SHARED_CREDENTIALS_FILE={} aws logs describe-log-groups --endpoint-url http://{addr} --region us-east-1", creds.display());
}

impl RunningVault {
    async fn wait(self) -> anyhow::Result<()> {
        self.server.await??;
        tracing::info!(
            "stopped; acknowledged events are in the wal and will be sealed at next start"
        );
        Ok(())
    }
}

pub async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let running = start(&args).await?;
    print_banner(running.addr, &running.data);
    running.wait().await
}

pub async fn run_quickstart(args: QuickstartArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("trailvault-quickstart-{}", std::process::id()));
    let serve = ServeArgs {
        data: dir.clone(),
        listen: args.listen.unwrap_or_else(|| "127.0.0.1:0".into()),
        seal_bytes: 64 << 20,
        seal_age: std::time::Duration::from_secs(60),
        digest_period: std::time::Duration::from_secs(3600),
        region: None,
        account_id: "000000000000".into(),
        signing_algorithm: "ed25519".into(),
        validate_every: std::time::Duration::from_secs(3600),
    };
    let running = start(&serve).await?;
    let endpoint = format!("http://{}", running.addr);
    println!("started a vault in {} at {endpoint}", dir.display());

    let creds = trailvault_auth::Credentials::from_shared_file(&dir.join("credentials"), "default")
        .context("could not read the credentials the vault wrote")?;
    let client = trailvault_client::LogsClient::new(&endpoint, creds, "us-east-1");
    let group = "quickstart/demo";
    client
        .call("CreateLogGroup", json!({ "logGroupName": group }))
        .await?;
    client
        .call(
            "CreateLogStream",
            json!({ "logGroupName": group, "logStreamName": "first" }),
        )
        .await?;
    println!("created log group {group} with stream first (signed CloudWatch Logs API calls)");
    let now = trailvault_store::now_ms();
    let messages = [
        r#"{"eventName":"ConsoleLogin","userIdentity":{"type":"IAMUser","userName":"alice"},"sourceIPAddress":"203.0.113.7"}"#,
        r#"{"eventName":"AuthorizeSecurityGroupIngress","userIdentity":{"type":"IAMUser","userName":"bob"}}"#,
        "plain text line: backup finished",
    ];
    let events: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({ "timestamp": now + i as i64, "message": m }))
        .collect();
    client
        .call(
            "PutLogEvents",
            json!({ "logGroupName": group, "logStreamName": "first", "logEvents": events }),
        )
        .await?;
    println!(
        "put {} events: acknowledged after the write-ahead log was synced",
        messages.len()
    );
    let sealed = running.vault.seal_now().await?;
    for s in &sealed.segments {
        println!(
            "sealed {} events into {} ({} bytes, sha256 {}, merkle root {})",
            s.event_count, s.key, s.bytes, s.sha256, s.merkle_root
        );
    }
    let got = client
        .call(
            "GetLogEvents",
            json!({ "logGroupName": group, "logStreamName": "first", "startFromHead": true }),
        )
        .await?;
    let back = got["events"].as_array().map(Vec::len).unwrap_or(0);
    println!("read back {back} events from the sealed segment:");
    for e in got["events"].as_array().into_iter().flatten() {
        println!(
            "  {}  {}",
            e["timestamp"],
            e["message"].as_str().unwrap_or("")
        );
    }
    anyhow::ensure!(
        back == messages.len(),
        "read back {back} events, wrote {}",
        messages.len()
    );
    if args.no_serve {
        return Ok(());
    }
    print_banner(running.addr, &dir);
    println!("serving until Ctrl-C");
    running.wait().await
}
