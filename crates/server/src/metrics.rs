//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Unauthenticated on purpose: Prometheus scrapers do not sign requests with SigV4. It reveals
//! group names, sizes and alarm states but no events; bind the vault to loopback (the default)
//! or put it behind a proxy when that matters.
//!
//! What it exposes:
//! - the vault's own operation: log groups, streams, stored and sealed-segment figures per
//!   group, events acknowledged since start, the unsealed tail;
//! - every metric-filter series' latest 1-minute Sum (within [`METRIC_LOOKBACK_MS`]) as
//!   `trailvault_metric{namespace,name,dim_<dimension>...}`;
//! - alarm states as `trailvault_alarm_state{alarm,state} 1` (0 for the other states);
//! - the last full validation of the digest chain (`trailvault_validation_*`): when it
//!   finished, whether everything was valid, how many failures, digests and segments.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use trailvault_monitor::alarm::{AlarmQuery, AlarmState};
use trailvault_monitor::metric::Statistic;
use trailvault_monitor::store::MetricQuery;

use crate::SharedState;

/// Metric-filter series whose newest minute is older than this are left out.
pub const METRIC_LOOKBACK_MS: i64 = 3_600_000;
/// Most metric-filter series exposed (bounded scrape work).
pub const METRIC_SERIES_MAX: usize = 10_000;

/// Events acknowledged by PutLogEvents since the process started.
static EVENTS_ACKNOWLEDGED: AtomicU64 = AtomicU64::new(0);

/// Counts `n` acknowledged events (called by PutLogEvents after the vault accepted them).
pub fn record_acknowledged(n: usize) {
    EVENTS_ACKNOWLEDGED.fetch_add(n as u64, Ordering::Relaxed);
}

/// A label value with `\`, `"` and newlines escaped as the text format requires.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A dimension name as a Prometheus label name: `dim_` then `[a-zA-Z0-9_]`.
fn label_name(dimension: &str) -> String {
    let mut out = String::from("dim_");
    out.extend(
        dimension
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

pub async fn metrics(State(app): State<SharedState>) -> Response {
    match tokio::task::spawn_blocking(move || render(&app)).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn render(app: &Arc<crate::AppState>) -> String {
    let mut out = String::new();
    let groups = app.vault.log_groups();
    let _ = writeln!(out, "# HELP trailvault_log_groups Log groups in the vault.");
    let _ = writeln!(out, "# TYPE trailvault_log_groups gauge");
    let _ = writeln!(out, "trailvault_log_groups {}", groups.len());
    let mut streams = String::new();
    let mut bytes = String::new();
    let mut segments = String::new();
    for g in &groups {
        let name = escape(&g.name);
        let n = app.vault.log_streams(&g.name).map(|s| s.len()).unwrap_or(0);
        let _ = writeln!(streams, "trailvault_log_streams{{group=\"{name}\"}} {n}");
        let _ = writeln!(
            bytes,
            "trailvault_stored_bytes{{group=\"{name}\"}} {}",
            app.vault.stored_bytes(&g.name)
        );
        let sealed = app.vault.segments(&g.name).map(|s| s.len()).unwrap_or(0);
        let _ = writeln!(
            segments,
            "trailvault_segments_sealed{{group=\"{name}\"}} {sealed}"
        );
    }
    let _ = writeln!(out, "# HELP trailvault_log_streams Log streams per group.");
    let _ = writeln!(out, "# TYPE trailvault_log_streams gauge");
    out.push_str(&streams);
    let _ = writeln!(
        out,
        "# HELP trailvault_stored_bytes Bytes a group occupies: sealed segments plus its unsealed tail."
    );
    let _ = writeln!(out, "# TYPE trailvault_stored_bytes gauge");
    out.push_str(&bytes);
    let _ = writeln!(
        out,
        "# HELP trailvault_segments_sealed Sealed segments per group."
    );
    let _ = writeln!(out, "# TYPE trailvault_segments_sealed gauge");
    out.push_str(&segments);
    let _ = writeln!(
        out,
        "# HELP trailvault_events_acknowledged_total Events acknowledged by PutLogEvents since start."
    );
    let _ = writeln!(out, "# TYPE trailvault_events_acknowledged_total counter");
    let _ = writeln!(
        out,
        "trailvault_events_acknowledged_total {}",
        EVENTS_ACKNOWLEDGED.load(Ordering::Relaxed)
    );
    let (tail_bytes, oldest_ms) = app.vault.tail_stats();
    let _ = writeln!(
        out,
        "# HELP trailvault_tail_unsealed_bytes Message bytes acknowledged but not yet sealed into segments."
    );
    let _ = writeln!(out, "# TYPE trailvault_tail_unsealed_bytes gauge");
    let _ = writeln!(out, "trailvault_tail_unsealed_bytes {tail_bytes}");
    let now = trailvault_store::now_ms();
    let _ = writeln!(
        out,
        "# HELP trailvault_tail_age_seconds Age of the oldest unsealed event (0 when the tail is empty)."
    );
    let _ = writeln!(out, "# TYPE trailvault_tail_age_seconds gauge");
    let age_s = oldest_ms.map_or(0.0, |o| (now - o).max(0) as f64 / 1000.0);
    let _ = writeln!(out, "trailvault_tail_age_seconds {}", number(age_s));
    let status = app
        .integrity_status
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    render_validation(&mut out, status.as_ref());
    if let Some(monitor) = &app.monitor {
        render_monitoring(&mut out, monitor, now);
    }
    out
}

/// The last full validation (the integrity crate's `ValidationSummary`, camelCase JSON, as the
/// validator task publishes it). Before the first run only `trailvault_validation_completed 0`.
fn render_validation(out: &mut String, status: Option<&serde_json::Value>) {
    let _ = writeln!(
        out,
        "# HELP trailvault_validation_completed 1 once a full validation of the digest chain has finished."
    );
    let _ = writeln!(out, "# TYPE trailvault_validation_completed gauge");
    let _ = writeln!(
        out,
        "trailvault_validation_completed {}",
        u8::from(status.is_some())
    );
    let Some(s) = status else { return };
    let int = |k: &str| s.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
    let mut gauge = |name: &str, help: &str, samples: &[(&str, i64)]| {
        let _ = writeln!(out, "# HELP trailvault_validation_{name} {help}");
        let _ = writeln!(out, "# TYPE trailvault_validation_{name} gauge");
        for (labels, v) in samples {
            let _ = writeln!(out, "trailvault_validation_{name}{labels} {v}");
        }
    };
    gauge(
        "last_run_timestamp_seconds",
        "When the last full validation finished (Unix time).",
        &[("", int("finishedAtMs") / 1000)],
    );
    let valid = s.get("valid").and_then(serde_json::Value::as_bool) == Some(true);
    gauge(
        "valid",
        "1 if the last full validation found nothing INVALID, else 0.",
        &[("", i64::from(valid))],
    );
    gauge(
        "failures",
        "INVALID items (digests, segments, checkpoint checks) in the last full validation.",
        &[("", int("failuresTotal"))],
    );
    let (dv, dt) = (int("digestsValid"), int("digestsTotal"));
    gauge(
        "digests",
        "Digest files checked by the last full validation, by result.",
        &[
            ("{result=\"valid\"}", dv),
            ("{result=\"invalid\"}", dt - dv),
        ],
    );
    // segmentsTotal leaves out the pending ones (written after the newest digest).
    let (sv, st) = (int("segmentsValid"), int("segmentsTotal"));
    gauge(
        "segments",
        "Segment files checked by the last full validation, by result.",
        &[
            ("{result=\"valid\"}", sv),
            ("{result=\"invalid\"}", st - sv),
            ("{result=\"pending\"}", int("segmentsPending")),
        ],
    );
}

fn render_monitoring(out: &mut String, monitor: &trailvault_monitor::MonitorEngine, now: i64) {
    let db = monitor.db();
    let _ = writeln!(
        out,
        "# HELP trailvault_metric Latest 1-minute Sum of each metric-filter series."
    );
    let _ = writeln!(out, "# TYPE trailvault_metric gauge");
    match db.list_metrics(None) {
        Ok(keys) => {
            for key in keys.into_iter().take(METRIC_SERIES_MAX) {
                let q = MetricQuery {
                    start_ms: now - METRIC_LOOKBACK_MS,
                    end_ms: now + 60_000,
                    period_s: 60,
                    statistic: Statistic::Sum,
                    key,
                };
                let Ok(points) = db.query_metric(&q) else {
                    continue;
                };
                let Some(last) = points.last() else { continue };
                let mut labels = format!(
                    "namespace=\"{}\",name=\"{}\"",
                    escape(&q.key.namespace),
                    escape(&q.key.name)
                );
                for (d, v) in &q.key.dimensions {
                    let _ = write!(labels, ",{}=\"{}\"", label_name(d), escape(v));
                }
                let _ = writeln!(out, "trailvault_metric{{{labels}}} {}", number(last.value));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list metric series"),
    }
    let _ = writeln!(
        out,
        "# HELP trailvault_alarm_state 1 for the state each alarm is in, 0 for the others."
    );
    let _ = writeln!(out, "# TYPE trailvault_alarm_state gauge");
    match db.describe_alarms(&AlarmQuery::default()) {
        Ok(alarms) => {
            for a in alarms {
                let name = escape(&a.spec.alarm_name);
                for s in [
                    AlarmState::Ok,
                    AlarmState::Alarm,
                    AlarmState::InsufficientData,
                ] {
                    let _ = writeln!(
                        out,
                        "trailvault_alarm_state{{alarm=\"{name}\",state=\"{}\"}} {}",
                        s.as_str(),
                        u8::from(a.state_value == s)
                    );
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read alarms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_named() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label_name("Source IP.v4"), "dim_Source_IP_v4");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }

    #[test]
    fn validation_status_is_exposed() {
        let mut out = String::new();
        render_validation(&mut out, None);
        assert!(out
            .lines()
            .any(|l| l == "trailvault_validation_completed 0"));
        assert!(!out.contains("trailvault_validation_valid"));
        // The shape the validator task publishes (integrity's ValidationSummary).
        let s = serde_json::json!({"finishedAtMs": 1_763_780_400_500i64, "valid": false,
            "digestsValid": 9, "digestsTotal": 10, "segmentsValid": 40, "segmentsTotal": 42,
            "segmentsPending": 3, "failuresTotal": 3, "failures": ["x: INVALID: y"]});
        let mut out = String::new();
        render_validation(&mut out, Some(&s));
        for want in [
            "trailvault_validation_completed 1",
            "trailvault_validation_last_run_timestamp_seconds 1763780400",
            "trailvault_validation_valid 0",
            "trailvault_validation_failures 3",
            "trailvault_validation_digests{result=\"invalid\"} 1",
            "trailvault_validation_segments{result=\"valid\"} 40",
            "trailvault_validation_segments{result=\"invalid\"} 2",
            "trailvault_validation_segments{result=\"pending\"} 3",
            "# TYPE trailvault_validation_failures gauge",
        ] {
            assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
        }
    }
}
