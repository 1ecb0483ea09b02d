//! Subscription filters and `/metrics` through the router with `oneshot`: the API shapes and
//! errors, delivery of matching events only to a file destination, and the Prometheus text.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use trailvault_auth::Credentials;
use trailvault_model::StoredEvent;
use trailvault_monitor::subscription::{EventSource, SourceError};
use trailvault_monitor::{EngineConfig, MonitorEngine};
use trailvault_server::router;
use trailvault_store::{StreamFilter, Vault, VaultConfig};

/// The same adapter the binary uses: stored events read back through the server's runtime.
struct VaultSource {
    vault: Vault,
    runtime: tokio::runtime::Handle,
}

impl EventSource for VaultSource {
    fn events_after(
        &self,
        group: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, SourceError> {
        let mut events = self
            .runtime
            .block_on(
                self.vault
                    .read_events(group, &StreamFilter::All, None, None),
            )
            .map_err(|e| SourceError(e.to_string()))?;
        events.retain(|e| e.seq > after_seq);
        events.sort_unstable_by_key(|e| e.seq);
        events.truncate(limit);
        Ok(events)
    }
}

struct Harness {
    app: axum::Router,
    creds: Credentials,
    vault: Vault,
    monitor: Arc<MonitorEngine>,
    dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(VaultConfig::new(dir.path().join("vault")))
        .await
        .unwrap();
    let (keys, creds) = common::admin_keys();
    let mut config = EngineConfig::new(dir.path().join("monitor.db"));
    config.account_id = "123456789012".into();
    config.event_source = Some(Arc::new(VaultSource {
        vault: vault.clone(),
        runtime: tokio::runtime::Handle::current(),
    }));
    let monitor = Arc::new(MonitorEngine::open(config).unwrap());
    let state = common::state(vault.clone(), keys, "123456789012", Some(monitor.clone()));
    Harness {
        app: router(state),
        creds,
        vault,
        monitor,
        dir,
    }
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

    /// Group `app` with stream `web`, where [`Harness::put`] writes.
    async fn create_app_web(&self) {
        self.ok("CreateLogGroup", json!({"logGroupName": "app"}))
            .await;
        self.ok(
            "CreateLogStream",
            json!({"logGroupName": "app", "logStreamName": "web"}),
        )
        .await;
    }

    async fn put(&self, messages: &[&str]) {
        let now = trailvault_store::now_ms();
        let events: Vec<Value> = messages
            .iter()
            .map(|m| json!({"timestamp": now, "message": m}))
            .collect();
        self.ok(
            "PutLogEvents",
            json!({"logGroupName": "app", "logStreamName": "web", "logEvents": events}),
        )
        .await;
    }
}

fn delivered(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["logGroup"], "app");
            assert_eq!(v["logStream"], "web");
            assert_eq!(v["owner"], "123456789012");
            v["logEvents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_filters_deliver_matching_events_to_a_file() {
    let h = harness().await;
    h.create_app_web().await;
    h.put(&["ERROR before the filter existed"]).await;
    let out = h.dir.path().join("errors.jsonl");
    let dest = format!("file://{}", out.display());
    h.ok(
        "PutSubscriptionFilter",
        json!({"logGroupName": "app", "filterName": "errors", "filterPattern": "ERROR",
               "destinationArn": dest, "roleArn": "arn:aws:iam::1:role/r", "distribution": "Random"}),
    )
    .await;
    h.put(&["ERROR one", "INFO fine", "ERROR two"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered(&out).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}",
            delivered(&out)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(delivered(&out), vec!["ERROR one", "ERROR two"]);

    let v = h
        .ok(
            "DescribeSubscriptionFilters",
            json!({"logGroupName": "app"}),
        )
        .await;
    let f = &v["subscriptionFilters"][0];
    assert_eq!(f["filterName"], "errors");
    assert_eq!(f["logGroupName"], "app");
    assert_eq!(f["filterPattern"], "ERROR");
    assert_eq!(f["destinationArn"], dest);
    assert_eq!(f["roleArn"], "arn:aws:iam::1:role/r");
    assert_eq!(f["distribution"], "Random");
    assert!(f["creationTime"].as_i64().unwrap() > 0);

    let second = format!("file://{}", h.dir.path().join("all.jsonl").display());
    h.ok(
        "PutSubscriptionFilter",
        json!({"logGroupName": "app", "filterName": "all", "filterPattern": "", "destinationArn": second}),
    )
    .await;
    let (s, v) = h
        .call(
            "PutSubscriptionFilter",
            json!({"logGroupName": "app", "filterName": "third", "filterPattern": "", "destinationArn": second}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["__type"], "LimitExceededException");
    let v = h
        .ok(
            "DescribeSubscriptionFilters",
            json!({"logGroupName": "app", "limit": 1}),
        )
        .await;
    assert_eq!(v["subscriptionFilters"][0]["filterName"], "all");
    let token = v["nextToken"].as_str().unwrap().to_string();
    let v = h
        .ok(
            "DescribeSubscriptionFilters",
            json!({"logGroupName": "app", "limit": 1, "nextToken": token}),
        )
        .await;
    assert_eq!(v["subscriptionFilters"][0]["filterName"], "errors");
    assert!(v.get("nextToken").is_none());

    for (body, code) in [
        (
            json!({"logGroupName": "app", "filterName": "x", "filterPattern": "", "destinationArn": "arn:aws:lambda:us-east-1:1:function:f"}),
            "InvalidParameterException",
        ),
        (
            json!({"logGroupName": "app", "filterName": "errors", "filterPattern": "{ $.a = ", "destinationArn": dest}),
            "InvalidParameterException",
        ),
        (
            json!({"logGroupName": "nope", "filterName": "x", "filterPattern": "", "destinationArn": dest}),
            "ResourceNotFoundException",
        ),
    ] {
        let (s, v) = h.call("PutSubscriptionFilter", body).await;
        assert_eq!(
            (s, v["__type"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }
    h.ok(
        "DeleteSubscriptionFilter",
        json!({"logGroupName": "app", "filterName": "errors"}),
    )
    .await;
    let (_, v) = h
        .call(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "app", "filterName": "errors"}),
        )
        .await;
    assert_eq!(v["__type"], "ResourceNotFoundException");
    let v = h
        .ok(
            "DescribeSubscriptionFilters",
            json!({"logGroupName": "app"}),
        )
        .await;
    assert_eq!(v["subscriptionFilters"].as_array().unwrap().len(), 1);
    h.monitor.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    let h = harness().await;
    h.create_app_web().await;
    h.ok(
        "PutMetricFilter",
        json!({"logGroupName": "app", "filterName": "errs", "filterPattern": "ERROR",
               "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}]}),
    )
    .await;
    h.ok(
        "PutMetricAlarm",
        json!({"AlarmName": "too-many", "MetricName": "Errors", "Namespace": "App", "Statistic": "Sum",
               "Period": 60, "EvaluationPeriods": 1, "Threshold": 100, "ComparisonOperator": "GreaterThanThreshold"}),
    )
    .await;
    h.put(&["ERROR a", "ERROR b", "INFO c"]).await;
    h.monitor.flush();

    let resp = h
        .app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let bytes = h.vault.stored_bytes("app");
    assert!(bytes > 0);
    for want in [
        "# TYPE trailvault_stored_bytes gauge".to_string(),
        format!("trailvault_stored_bytes{{group=\"app\"}} {bytes}"),
        "trailvault_log_streams{group=\"app\"} 1".into(),
        "trailvault_segments_sealed{group=\"app\"} 0".into(),
        "trailvault_metric{namespace=\"App\",name=\"Errors\"} 2".into(),
        "trailvault_alarm_state{alarm=\"too-many\",state=\"OK\"} 1".into(),
        "trailvault_alarm_state{alarm=\"too-many\",state=\"ALARM\"} 0".into(),
        "# TYPE trailvault_events_acknowledged_total counter".into(),
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
    // Counted process-wide (other tests in this binary add to it too).
    let acked: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("trailvault_events_acknowledged_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(acked >= 3);
    let tail: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("trailvault_tail_unsealed_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(tail >= "ERROR aERROR bINFO c".len() as u64);
    // Every sample line is `name{labels} value` or `name value`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
    }
    h.monitor.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_data_is_listed_and_read_as_statistics_per_period() {
    let h = harness().await;
    h.create_app_web().await;
    h.ok(
        "PutMetricFilter",
        json!({"logGroupName": "app", "filterName": "latency", "filterPattern": "[level, ms]",
               "metricTransformations": [{"metricName": "Latency", "metricNamespace": "App",
                                          "metricValue": "$ms", "dimensions": {"Level": "$level"}}]}),
    )
    .await;
    h.put(&["INFO 10", "INFO 30", "ERROR 200"]).await;
    h.monitor.flush();

    let listed = h.ok("ListMetrics", json!({"Namespace": "App"})).await;
    let mut series: Vec<String> = listed["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{} {}={}",
                m["Namespace"].as_str().unwrap(),
                m["MetricName"].as_str().unwrap(),
                m["Dimensions"][0]["Name"].as_str().unwrap(),
                m["Dimensions"][0]["Value"].as_str().unwrap()
            )
        })
        .collect();
    series.sort();
    assert_eq!(
        series,
        ["App/Latency Level=ERROR", "App/Latency Level=INFO"]
    );
    let other = h.ok("ListMetrics", json!({"Namespace": "Other"})).await;
    assert_eq!(other["Metrics"], json!([]));

    let now_s = trailvault_store::now_ms() as f64 / 1000.0;
    let got = h
        .ok(
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "Latency",
                   "Dimensions": [{"Name": "Level", "Value": "INFO"}],
                   "StartTime": now_s - 3600.0, "EndTime": now_s + 60.0, "Period": 3600,
                   "Statistics": ["Sum", "Average", "SampleCount", "Maximum"]}),
        )
        .await;
    assert_eq!(got["Label"], "Latency");
    let points = got["Datapoints"].as_array().unwrap();
    let sum: f64 = points.iter().map(|p| p["Sum"].as_f64().unwrap()).sum();
    let count: f64 = points
        .iter()
        .map(|p| p["SampleCount"].as_f64().unwrap())
        .sum();
    assert_eq!((sum, count), (40.0, 2.0), "{got}");
    assert!(points
        .iter()
        .all(|p| p["Maximum"].as_f64().unwrap() <= 30.0));
    assert!(
        points[0]["Timestamp"].as_f64().unwrap() > 1e9,
        "epoch seconds"
    );

    // Times as ISO 8601 strings work too.
    let month_ago = (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339();
    let p = h
        .ok(
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "Latency",
                   "Dimensions": [{"Name": "Level", "Value": "ERROR"}],
                   "StartTime": month_ago, "EndTime": now_s + 60.0, "Period": 86400,
                   "ExtendedStatistics": ["p99"]}),
        )
        .await;
    let p99: Vec<f64> = p["Datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ExtendedStatistics"]["p99"].as_f64().unwrap())
        .collect();
    assert_eq!(p99, [200.0]);

    // CloudWatch's limits and precise errors.
    for (body, why) in [
        (
            json!({"Namespace": "App", "MetricName": "Latency", "StartTime": now_s, "EndTime": now_s - 60.0,
                "Period": 60, "Statistics": ["Sum"]}),
            "before EndTime",
        ),
        (
            json!({"Namespace": "App", "MetricName": "Latency", "StartTime": now_s - 600.0, "EndTime": now_s,
                "Period": 90, "Statistics": ["Sum"]}),
            "multiple of 60",
        ),
        (
            json!({"Namespace": "App", "MetricName": "Latency", "StartTime": now_s - 600.0, "EndTime": now_s,
                "Period": 60}),
            "exactly one of",
        ),
        (
            json!({"Namespace": "App", "MetricName": "Latency", "StartTime": now_s - 86400.0 * 30.0,
                "EndTime": now_s, "Period": 60, "Statistics": ["Sum"]}),
            "at most 1440",
        ),
        (
            json!({"Namespace": "App", "MetricName": "Latency", "StartTime": now_s - 600.0, "EndTime": now_s,
                "Period": 60, "Statistics": ["p99"]}),
            "ExtendedStatistics takes pNN",
        ),
        (
            json!({"Namespace": "App", "MetricName": "Latency", "StartTime": "yesterday", "EndTime": now_s,
                "Period": 60, "Statistics": ["Sum"]}),
            "StartTime must be",
        ),
    ] {
        let (status, err) = h.call("GetMetricStatistics", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["__type"], "InvalidParameterException", "{err}");
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{why}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_statistics_over_more_minutes_than_one_store_query_reads() {
    use trailvault_monitor::metric::{Aggregate, MetricDatum, MetricKey};
    use trailvault_monitor::store::QUERY_POINTS_MAX;
    let h = harness().await;
    // Every minute of the last 80 days holds one datapoint: more minutes than one store
    // query returns, so the answer must be read in spans without losing any.
    let minutes = QUERY_POINTS_MAX as i64 + 14_400;
    let newest = trailvault_store::now_ms().div_euclid(60_000) * 60_000 - 60_000;
    let key = MetricKey {
        namespace: "App".into(),
        name: "Dense".into(),
        dimensions: Default::default(),
    };
    let data: Vec<MetricDatum> = (0..minutes)
        .map(|i| MetricDatum {
            key: key.clone(),
            minute_ms: newest - i * 60_000,
            aggregate: Aggregate::of(1.0),
            values: vec![1.0],
            unit: None,
        })
        .collect();
    h.monitor.db().put_metric_data(&data).unwrap();

    let got = h
        .ok(
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "Dense",
                   "StartTime": (newest - minutes * 60_000) as f64 / 1000.0,
                   "EndTime": (newest + 60_000) as f64 / 1000.0, "Period": 86400,
                   "Statistics": ["SampleCount", "Sum"]}),
        )
        .await;
    let points = got["Datapoints"].as_array().unwrap();
    let count: f64 = points
        .iter()
        .map(|p| p["SampleCount"].as_f64().unwrap())
        .sum();
    let sum: f64 = points.iter().map(|p| p["Sum"].as_f64().unwrap()).sum();
    assert_eq!((count, sum), (minutes as f64, minutes as f64));
    let days: Vec<f64> = points
        .iter()
        .map(|p| p["Timestamp"].as_f64().unwrap())
        .collect();
    assert!(
        days.windows(2).all(|w| w[1] - w[0] == 86_400.0),
        "one point per day, in order"
    );

    let (status, err) = h
        .call(
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "Dense", "StartTime": 0, "EndTime": 1e10,
                   "Period": 86400 * 80, "Statistics": ["Sum"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["message"].as_str().unwrap().contains("at most"),
        "{err}"
    );
}
