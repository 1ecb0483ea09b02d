//! Alarm actions: signed webhooks, local commands, and a record in the `trailvault/alarms` log
//! group (through [`AlarmSink`], implemented by the store).
//!
//! Targets are configured by name (PutActionTarget) and addressed from alarms as
//! `arn:trailvault:webhook:NAME` / `arn:trailvault:command:NAME`. A third kind,
//! `arn:trailvault:vault:NAME` (another trailvault and the access key to write to it with), is
//! a subscription-filter destination only (see [`crate::remote`]); alarms refuse it.
//!
//! Webhooks: `POST` with a JSON body ([`notification_body`]) and the header
//! `X-Trailvault-Signature: sha256=<hex HMAC-SHA256(secret, body)>`; a non-2xx answer or a
//! transport error is retried with exponential backoff up to `max_attempts`; every attempt is
//! written to the delivery log. Only `http://` URLs (no TLS stack is linked).
//! Commands: run directly (no shell) with the alarm context in `TRAILVAULT_ALARM_*` environment
//! variables, killed after their timeout.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use trailvault_model::limits::NAME_LEN_MAX;

use crate::alarm::{alarm_arn, valid_target_name, Transition};
use crate::remote::RemoteVaultTarget;
use crate::store::{MonitorDb, StoreError};

/// Most webhook attempts per transition that a target may ask for.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 10;
const WEBHOOK_ATTEMPTS_DEFAULT: u32 = 5;
const WEBHOOK_TIMEOUT_MS_DEFAULT: u64 = 5_000;
const BACKOFF_MS_FIRST: u64 = 200;
const BACKOFF_MS_MAX: u64 = 10_000;
/// Longest a command may be allowed to run.
pub const COMMAND_TIMEOUT_MS_MAX: u64 = 300_000;
const COMMAND_TIMEOUT_MS_DEFAULT: u64 = 30_000;
const COMMAND_ARGS_MAX: usize = 64;
const KV_PREFIX: &str = "action-target/";
const REDACTED: &str = "********";
/// The region a `vault` target signs for when it names none.
pub const VAULT_REGION_DEFAULT: &str = "us-east-1";

/// Receives one JSON record per alarm transition, for the protected `trailvault/alarms` log
/// group. Implemented by the store; must not block for long (it is called from the action
/// thread).
pub trait AlarmSink: Send + Sync {
    fn record_transition(&self, json: String);
}

/// A configured action target (PutActionTarget input, DescribeActionTargets output with the
/// secret redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTarget {
    pub name: String,
    #[serde(flatten)]
    pub kind: ActionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ActionKind {
    #[serde(rename_all = "camelCase")]
    Webhook {
        url: String,
        secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_attempts: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    Command {
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Another trailvault, written to with PutLogEvents signed by this access key.
    #[serde(rename_all = "camelCase")]
    Vault {
        endpoint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        access_key_id: String,
        secret_access_key: String,
        log_group_name: String,
        log_stream_name: String,
    },
}

impl ActionTarget {
    pub fn arn(&self) -> String {
        match self.kind {
            ActionKind::Webhook { .. } => format!("arn:trailvault:webhook:{}", self.name),
            ActionKind::Command { .. } => format!("arn:trailvault:command:{}", self.name),
            ActionKind::Vault { .. } => format!("arn:trailvault:vault:{}", self.name),
        }
    }

    /// The remote vault a `vault` target names, with its default region.
    pub fn remote_vault(&self) -> Option<RemoteVaultTarget> {
        match &self.kind {
            ActionKind::Vault {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                log_group_name,
                log_stream_name,
            } => Some(RemoteVaultTarget {
                endpoint: endpoint.clone(),
                region: region
                    .clone()
                    .unwrap_or_else(|| VAULT_REGION_DEFAULT.into()),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                log_group_name: log_group_name.clone(),
                log_stream_name: log_stream_name.clone(),
            }),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Invalid(m));
        if !valid_target_name(&self.name) {
            return bad(format!(
                "action target name {:?} must be 1 to 255 of A-Z a-z 0-9 - _ .",
                self.name
            ));
        }
        match &self.kind {
            ActionKind::Webhook {
                url,
                secret,
                max_attempts,
                timeout_ms,
            } => {
                if !url.starts_with("http://") || url.len() > 2048 {
                    return bad(
                        "webhook url must be an http:// URL of at most 2048 characters".into(),
                    );
                }
                if secret.is_empty() || secret.len() > 1024 {
                    return bad("webhook secret must be 1 to 1024 bytes".into());
                }
                if max_attempts.is_some_and(|a| a == 0 || a > WEBHOOK_ATTEMPTS_MAX) {
                    return bad(format!("maxAttempts must be 1 to {WEBHOOK_ATTEMPTS_MAX}"));
                }
                if timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
                    return bad("webhook timeoutMs must be 1 to 60000".into());
                }
            }
            ActionKind::Vault {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                log_group_name,
                log_stream_name,
            } => {
                if !endpoint.starts_with("http://") || endpoint.len() > 2048 {
                    return bad(
                        "vault endpoint must be an http:// URL of at most 2048 characters".into(),
                    );
                }
                if region.as_ref().is_some_and(|r| {
                    r.is_empty()
                        || r.len() > 64
                        || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }) {
                    return bad("vault region must be 1 to 64 of a-z 0-9 -".into());
                }
                if access_key_id.is_empty()
                    || access_key_id.len() > 128
                    || !access_key_id.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return bad("vault accessKeyId must be 1 to 128 letters or digits".into());
                }
                if secret_access_key.is_empty() || secret_access_key.len() > 1024 {
                    return bad("vault secretAccessKey must be 1 to 1024 bytes".into());
                }
                for (field, v) in [
                    ("logGroupName", log_group_name),
                    ("logStreamName", log_stream_name),
                ] {
                    let n = v.chars().count();
                    if n == 0 || n > NAME_LEN_MAX {
                        return bad(format!(
                            "vault {field} must be 1 to {NAME_LEN_MAX} characters"
                        ));
                    }
                }
            }
            ActionKind::Command { argv, timeout_ms } => {
                if argv.is_empty() || argv.len() > COMMAND_ARGS_MAX || argv[0].is_empty() {
                    return bad(format!("command argv must hold 1 to {COMMAND_ARGS_MAX} arguments, the first non-empty"));
                }
                if timeout_ms.is_some_and(|t| t == 0 || t > COMMAND_TIMEOUT_MS_MAX) {
                    return bad(format!(
                        "command timeoutMs must be 1 to {COMMAND_TIMEOUT_MS_MAX}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The target as DescribeActionTargets shows it: webhook secrets and secret access keys
    /// are never returned.
    pub fn redacted(&self) -> ActionTarget {
        let mut t = self.clone();
        match &mut t.kind {
            ActionKind::Webhook { secret, .. } => *secret = REDACTED.into(),
            ActionKind::Vault {
                secret_access_key, ..
            } => *secret_access_key = REDACTED.into(),
            ActionKind::Command { .. } => {}
        }
        t
    }
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub timestamp_ms: i64,
    pub alarm_name: String,
    pub target: String,
    pub attempt: u32,
    pub ok: bool,
    pub detail: String,
}

impl MonitorDb {
    /// PutActionTarget: creates or replaces a named target.
    pub fn put_action_target(&self, target: &ActionTarget) -> Result<(), StoreError> {
        target.validate()?;
        let text = serde_json::to_string(target).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.kv_put(&format!("{KV_PREFIX}{}", target.arn()), &text)
    }

    pub fn delete_action_target(&self, arn: &str) -> Result<(), StoreError> {
        self.kv_delete(&format!("{KV_PREFIX}{arn}"))
    }

    /// The target an action ARN names, secret included (for delivery).
    pub fn action_target(&self, arn: &str) -> Result<Option<ActionTarget>, StoreError> {
        match self.kv_get(&format!("{KV_PREFIX}{arn}"))? {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("action target {arn}: {e}"))),
        }
    }

    /// DescribeActionTargets: every target, secrets redacted.
    pub fn describe_action_targets(&self) -> Result<Vec<ActionTarget>, StoreError> {
        self.kv_scan(KV_PREFIX)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_str::<ActionTarget>(&v)
                    .map(|t| t.redacted())
                    .map_err(|e| StoreError::Corrupt(format!("{k}: {e}")))
            })
            .collect()
    }

    fn log_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO deliveries(ts_ms, alarm, target, attempt, ok, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.timestamp_ms, d.alarm_name, d.target, d.attempt, d.ok, d.detail],
        )?;
        Ok(())
    }

    /// The delivery log, newest first, at most `limit` (≤ 1000) rows.
    pub fn deliveries(
        &self,
        alarm: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT ts_ms, alarm, target, attempt, ok, detail FROM deliveries WHERE (?1 IS NULL OR alarm = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![alarm, limit.min(1000) as i64], |r| {
            Ok(Delivery {
                timestamp_ms: r.get(0)?,
                alarm_name: r.get(1)?,
                target: r.get(2)?,
                attempt: r.get(3)?,
                ok: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The JSON document sent to webhooks and written to `trailvault/alarms`.
pub fn notification_body(t: &Transition) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(t.timestamp_ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    serde_json::json!({
        "alarmName": t.alarm_name,
        "alarmArn": alarm_arn(&t.alarm_name),
        "oldState": t.old_state,
        "newState": t.new_state,
        "reason": t.reason,
        "reasonData": t.reason_data,
        "timestamp": ts,
        "timestampMs": t.timestamp_ms,
        "datapoints": t.datapoints,
    })
    .to_string()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the `X-Trailvault-Signature` header value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error case cannot happen.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers transitions to their targets. Cheap to clone.
#[derive(Clone)]
pub struct ActionDispatcher {
    db: MonitorDb,
    client: reqwest::Client,
    sink: Option<Arc<dyn AlarmSink>>,
    clock: fn() -> i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ActionDispatcher {
    pub fn new(db: MonitorDb, sink: Option<Arc<dyn AlarmSink>>) -> ActionDispatcher {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        ActionDispatcher {
            db,
            client,
            sink,
            clock: now_ms,
        }
    }

    /// Records the transition in the alarms log group and runs every action configured for
    /// the new state, concurrently. Returns when all are done (retries included).
    pub async fn dispatch(&self, t: Transition, actions: Vec<String>) {
        let body = notification_body(&t);
        if let Some(sink) = &self.sink {
            sink.record_transition(body.clone());
        }
        let mut tasks = Vec::new();
        for arn in actions {
            let this = self.clone();
            let body = body.clone();
            let name = t.alarm_name.clone();
            let t2 = t.clone();
            tasks.push(tokio::spawn(async move {
                this.run_action(&name, &arn, &body, &t2).await
            }));
        }
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "alarm action task failed");
            }
        }
    }

    async fn run_action(&self, alarm: &str, arn: &str, body: &str, t: &Transition) {
        let target = match self.db.action_target(arn) {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.log(alarm, arn, 1, false, "no such action target".into());
                return;
            }
            Err(e) => {
                self.log(
                    alarm,
                    arn,
                    1,
                    false,
                    format!("cannot read action target: {e}"),
                );
                return;
            }
        };
        match target.kind {
            ActionKind::Webhook {
                url,
                secret,
                max_attempts,
                timeout_ms,
            } => {
                self.webhook(
                    alarm,
                    arn,
                    &url,
                    secret.as_bytes(),
                    body,
                    max_attempts.unwrap_or(WEBHOOK_ATTEMPTS_DEFAULT),
                    timeout_ms.unwrap_or(WEBHOOK_TIMEOUT_MS_DEFAULT),
                )
                .await
            }
            ActionKind::Vault { .. } => {
                // PutMetricAlarm refuses these ARNs; a target replaced by a vault since then
                // lands here.
                self.log(
                    alarm,
                    arn,
                    1,
                    false,
                    "a vault target is a subscription destination, not an alarm action".into(),
                );
            }
            ActionKind::Command { argv, timeout_ms } => {
                self.command(
                    alarm,
                    arn,
                    &argv,
                    body,
                    t,
                    timeout_ms.unwrap_or(COMMAND_TIMEOUT_MS_DEFAULT),
                )
                .await
            }
        }
    }

    fn log(&self, alarm: &str, target: &str, attempt: u32, ok: bool, detail: String) {
        let d = Delivery {
            timestamp_ms: (self.clock)(),
            alarm_name: alarm.into(),
            target: target.into(),
            attempt,
            ok,
            detail,
        };
        if !ok {
            tracing::warn!(alarm, target, attempt, detail = %d.detail, "alarm action failed");
        }
        if let Err(e) = self.db.log_delivery(&d) {
            tracing::error!(error = %e, "cannot write the delivery log");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn webhook(
        &self,
        alarm: &str,
        arn: &str,
        url: &str,
        secret: &[u8],
        body: &str,
        attempts: u32,
        timeout_ms: u64,
    ) {
        let sig = signature(secret, body.as_bytes());
        let mut backoff_ms = BACKOFF_MS_FIRST;
        for attempt in 1..=attempts.min(WEBHOOK_ATTEMPTS_MAX) {
            let result = self
                .client
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Trailvault-Signature", &sig)
                .timeout(Duration::from_millis(timeout_ms))
                .body(body.to_string())
                .send()
                .await;
            let (ok, detail) = match result {
                Ok(r) if r.status().is_success() => (true, format!("HTTP {}", r.status().as_u16())),
                Ok(r) => (false, format!("HTTP {}", r.status().as_u16())),
                Err(e) => (false, format!("request failed: {e}")),
            };
            self.log(alarm, arn, attempt, ok, detail);
            if ok {
                return;
            }
            if attempt < attempts {
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(BACKOFF_MS_MAX);
            }
        }
    }

    async fn command(
        &self,
        alarm: &str,
        arn: &str,
        argv: &[String],
        body: &str,
        t: &Transition,
        timeout_ms: u64,
    ) {
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("TRAILVAULT_ALARM_NAME", &t.alarm_name)
            .env("TRAILVAULT_ALARM_NEW_STATE", t.new_state.as_str())
            .env("TRAILVAULT_ALARM_OLD_STATE", t.old_state.as_str())
            .env("TRAILVAULT_ALARM_REASON", &t.reason)
            .env("TRAILVAULT_ALARM_TIMESTAMP_MS", t.timestamp_ms.to_string())
            .env("TRAILVAULT_ALARM_JSON", body)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.log(
                    alarm,
                    arn,
                    1,
                    false,
                    format!("cannot start {}: {e}", argv[0]),
                );
                return;
            }
        };
        let (ok, detail) =
            match tokio::time::timeout(Duration::from_millis(timeout_ms), child.wait_with_output())
                .await
            {
                Err(_) => (false, format!("timed out after {timeout_ms} ms; killed")),
                Ok(Err(e)) => (false, format!("wait failed: {e}")),
                Ok(Ok(out)) => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let tail: String = stderr
                        .chars()
                        .rev()
                        .take(512)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    (
                        out.status.success(),
                        format!(
                            "{}{}{}",
                            out.status,
                            if tail.is_empty() { "" } else { ": " },
                            tail.trim()
                        ),
                    )
                }
            };
        self.log(alarm, arn, 1, ok, detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::AlarmState;
    use std::io::{Read, Write};
    use std::sync::Mutex;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn targets_validate_and_redact() {
        let dir = tempfile::tempdir().unwrap();
        let db = MonitorDb::open(&dir.path().join("m.db")).unwrap();
        let bad = ActionTarget {
            name: "x".into(),
            kind: ActionKind::Webhook {
                url: "https://x".into(),
                secret: "s".into(),
                max_attempts: None,
                timeout_ms: None,
            },
        };
        assert!(db.put_action_target(&bad).is_err());
        let good = ActionTarget {
            name: "ops".into(),
            kind: ActionKind::Webhook {
                url: "http://127.0.0.1:1/h".into(),
                secret: "s3".into(),
                max_attempts: Some(2),
                timeout_ms: None,
            },
        };
        db.put_action_target(&good).unwrap();
        assert_eq!(
            db.action_target("arn:trailvault:webhook:ops")
                .unwrap()
                .unwrap(),
            good
        );
        let listed = db.describe_action_targets().unwrap();
        assert_eq!(listed.len(), 1);
        let json = serde_json::to_value(&listed[0]).unwrap();
        assert_eq!(json["type"], "webhook");
        assert_eq!(json["secret"], "********");
    }

    struct Sink(Mutex<Vec<String>>);
    impl AlarmSink for Sink {
        fn record_transition(&self, json: String) {
            self.0.lock().unwrap().push(json);
        }
    }

    /// A one-shot HTTP receiver: answers `statuses` in order, returns the requests it saw.
    fn receiver(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in statuses {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).unwrap();
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
                seen.push(String::from_utf8_lossy(&buf).to_string());
                write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
            }
            seen
        });
        (url, handle)
    }

    #[test]
    fn webhook_retries_signs_and_logs_and_command_runs() {
        let dir = tempfile::tempdir().unwrap();
        let db = MonitorDb::open(&dir.path().join("m.db")).unwrap();
        let (url, server) = receiver(vec![500, 200]);
        db.put_action_target(&ActionTarget {
            name: "ops".into(),
            kind: ActionKind::Webhook {
                url,
                secret: "k".into(),
                max_attempts: Some(3),
                timeout_ms: None,
            },
        })
        .unwrap();
        let out = dir.path().join("cmd.out");
        db.put_action_target(&ActionTarget {
            name: "fix".into(),
            kind: ActionKind::Command {
                argv: vec!["sh".into(), "-c".into(), format!("echo \"$TRAILVAULT_ALARM_NAME $TRAILVAULT_ALARM_OLD_STATE $TRAILVAULT_ALARM_NEW_STATE\" >> {}", out.display())],
                timeout_ms: Some(5_000),
            },
        })
        .unwrap();
        let sink = Arc::new(Sink(Mutex::new(Vec::new())));
        let d = ActionDispatcher::new(db.clone(), Some(sink.clone()));
        let t = Transition {
            alarm_name: "cis".into(),
            old_state: AlarmState::Ok,
            new_state: AlarmState::Alarm,
            reason: "r".into(),
            reason_data: serde_json::json!({}),
            timestamp_ms: 1_700_000_000_000,
            datapoints: vec![],
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(d.dispatch(
            t.clone(),
            vec![
                "arn:trailvault:webhook:ops".into(),
                "arn:trailvault:command:fix".into(),
                "arn:trailvault:command:gone".into(),
            ],
        ));
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 2);
        let body = notification_body(&t);
        let want = signature(b"k", body.as_bytes());
        for req in &seen {
            assert!(
                req.to_ascii_lowercase()
                    .contains(&format!("x-trailvault-signature: {want}")),
                "{req}"
            );
            assert!(req.ends_with(&body));
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "cis OK ALARM\n");
        assert_eq!(sink.0.lock().unwrap().as_slice(), &[body]);
        let log = db.deliveries(Some("cis"), 100).unwrap();
        let webhook: Vec<(u32, bool)> = log
            .iter()
            .filter(|d| d.target.contains("webhook"))
            .map(|d| (d.attempt, d.ok))
            .collect();
        assert_eq!(webhook, vec![(2, true), (1, false)]);
        assert!(log.iter().any(|d| d.target.ends_with(":gone") && !d.ok));
        assert!(log.iter().any(|d| d.target.ends_with(":fix") && d.ok));
    }
}
