//! The client and the CLI commands against the signed fake vault.

use std::io::Cursor;
use std::time::Duration;

use serde_json::json;
use trailvault_auth::Credentials;

use crate::batch::MESSAGE_BYTES_MAX;
use crate::cli::{
    get_events, list_groups, put_lines, tail_events, ConnectArgs, GetArgs, OutputFormat,
    PutOptions, PutSummary, TailArgs,
};
use crate::client::{ClientError, InputLogEvent, LogsClient, RetryPolicy};
use crate::fake_vault::{FakeVault, KEY_ID, SECRET};

fn connect(v: &FakeVault) -> ConnectArgs {
    ConnectArgs {
        endpoint: v.endpoint(),
        profile: None,
        region: Some("us-east-1".into()),
    }
}

#[tokio::test]
async fn signed_calls_round_trip_through_the_verifier() {
    let v = FakeVault::start().await;
    let got = v
        .client()
        .call("DescribeLogGroups", json!({}))
        .await
        .unwrap();
    assert_eq!(got, json!({ "logGroups": [] }));
    v.client().create_log_group("audit/prod").await.unwrap();
    let err = v.client().create_log_group("audit/prod").await.unwrap_err();
    assert_eq!(err.code(), Some("ResourceAlreadyExistsException"));
    assert_eq!(
        v.state().actions,
        ["DescribeLogGroups", "CreateLogGroup", "CreateLogGroup"]
    );
}

#[tokio::test]
async fn bad_credentials_get_the_aws_errors_without_retries() {
    let v = FakeVault::start().await;
    let wrong_secret =
        LogsClient::new(&v.endpoint(), Credentials::new(KEY_ID, "nope"), "us-east-1");
    let err = wrong_secret
        .call("DescribeLogGroups", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err}");
    let unknown = LogsClient::new(
        &v.endpoint(),
        Credentials::new("TVAKWHO", SECRET),
        "us-east-1",
    );
    let err = unknown
        .call("DescribeLogGroups", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
    assert!(err
        .to_string()
        .contains("security token included in the request is invalid"));
    assert!(
        v.state().actions.is_empty(),
        "refused before any action ran"
    );
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_within_the_budget() {
    let v = FakeVault::start().await;
    v.state().fail_next = vec![
        (400, "ThrottlingException"),
        (503, "ServiceUnavailableException"),
    ];
    v.client()
        .call("DescribeLogGroups", json!({}))
        .await
        .unwrap();
    assert_eq!(v.state().actions.len(), 3);

    v.state().actions.clear();
    v.state().fail_next = vec![(400, "ThrottlingException"); 3];
    let err = v
        .client()
        .call("DescribeLogGroups", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(v.state().actions.len(), 3, "attempts_max is 3");

    v.state().actions.clear();
    v.state().fail_next = vec![(400, "InvalidParameterException")];
    let err = v
        .client()
        .call("DescribeLogGroups", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Service { status: 400, .. }));
    assert_eq!(v.state().actions.len(), 1, "client errors are not retried");
}

#[tokio::test]
async fn bad_or_unreachable_endpoints_are_clear_errors() {
    let c = LogsClient::new("not a url", Credentials::new("a", "b"), "us-east-1");
    let err = c.call("DescribeLogGroups", json!({})).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{err}");
    let c = LogsClient::new(
        "https://vault.example",
        Credentials::new("a", "b"),
        "us-east-1",
    );
    let err = c.call("DescribeLogGroups", json!({})).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("https endpoints are not supported"),
        "{err}"
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = LogsClient::new(
        &format!("http://127.0.0.1:{port}"),
        Credentials::new("a", "b"),
        "us-east-1",
    )
    .with_retry(RetryPolicy {
        attempts_max: 2,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(1),
    });
    let err = c.call("DescribeLogGroups", json!({})).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    assert!(err.to_string().contains("could not reach"));
}

#[tokio::test]
async fn groups_follows_every_page() {
    let v = FakeVault::start().await;
    for name in ["b", "a", "c/1", "c/2", "d"] {
        v.client().create_log_group(name).await.unwrap();
    }
    let mut out = Vec::new();
    list_groups(&v.client(), None, OutputFormat::Json, &mut out)
        .await
        .unwrap();
    let names: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["logGroupName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["a", "b", "c/1", "c/2", "d"]);
    let mut out = Vec::new();
    list_groups(&v.client(), Some("c/"), OutputFormat::Table, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("NAME"));
}

fn put_opts(create: bool) -> PutOptions {
    PutOptions {
        group: "audit".into(),
        stream: "s1".into(),
        create,
        flush_interval: Duration::from_secs(60),
    }
}

async fn put_text(
    v: &FakeVault,
    input: Vec<u8>,
    create: bool,
) -> (anyhow::Result<PutSummary>, String) {
    let mut diag = Vec::new();
    let r = put_lines(
        &v.client(),
        &put_opts(create),
        Box::new(Cursor::new(input)),
        None,
        &mut diag,
    )
    .await;
    (r, String::from_utf8(diag).unwrap())
}

fn stored(v: &FakeVault) -> Vec<String> {
    v.state().groups["audit"]["s1"]
        .iter()
        .map(|e| e.message.clone())
        .collect()
}

#[tokio::test]
async fn put_batches_by_count_and_creates_the_stream() {
    let v = FakeVault::start().await;
    let mut input = String::new();
    for i in 0..25_001 {
        input.push_str(&format!("line {i}\n"));
    }
    let (r, diag) = put_text(&v, input.into_bytes(), true).await;
    let summary = r.unwrap();
    assert_eq!(
        summary,
        PutSummary {
            events: 25_001,
            batches: 3,
            rejected: 0,
            skipped_empty: 0
        }
    );
    assert!(diag.contains("created log group audit"), "{diag}");
    assert_eq!(v.state().batch_sizes, [10_000, 10_000, 5_001]);
    let msgs = stored(&v);
    assert_eq!(msgs.len(), 25_001);
    assert_eq!(msgs[0], "line 0");
    assert_eq!(msgs[25_000], "line 25000");
}

#[tokio::test]
async fn put_batches_by_bytes_and_reports_every_bad_line() {
    let v = FakeVault::start().await;
    let max = "m".repeat(MESSAGE_BYTES_MAX);
    let mut input = Vec::new();
    for _ in 0..5 {
        input.extend_from_slice(max.as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(b"\n");
    input.extend_from_slice("x".repeat(MESSAGE_BYTES_MAX + 1).as_bytes());
    input.extend_from_slice(b"\n\xff\xfe bad utf-8\r\nlast line without newline");
    let (r, diag) = put_text(&v, input, true).await;
    let summary = r.unwrap();
    assert_eq!(
        summary,
        PutSummary {
            events: 6,
            batches: 2,
            rejected: 2,
            skipped_empty: 1
        }
    );
    assert_eq!(v.state().batch_sizes, [4, 2]);
    assert!(diag.contains("line 7: not stored: 262119 bytes"), "{diag}");
    assert!(
        diag.contains("line 8: not stored: not valid UTF-8"),
        "{diag}"
    );
    assert_eq!(stored(&v).last().unwrap(), "last line without newline");
}

#[tokio::test]
async fn put_reports_what_the_vault_skips_or_refuses() {
    let v = FakeVault::start().await;
    let (r, diag) = put_text(&v, b"OLD a\nOLD b\nfresh\n".to_vec(), true).await;
    let summary = r.unwrap();
    assert_eq!((summary.events, summary.rejected), (1, 2));
    assert!(
        diag.contains("line 1: not stored: timestamp too old"),
        "{diag}"
    );
    assert!(
        diag.contains("line 2: not stored: timestamp too old"),
        "{diag}"
    );

    let (r, diag) = put_text(&v, b"x REFUSE_BATCH\n".to_vec(), true).await;
    let summary = r.unwrap();
    assert_eq!((summary.events, summary.rejected), (0, 1));
    assert!(diag.contains("refused the batch of lines 1-1"), "{diag}");
    assert_eq!(stored(&v), ["fresh"]);
}

#[tokio::test]
async fn put_without_create_fails_on_a_missing_stream() {
    let v = FakeVault::start().await;
    let (r, _) = put_text(&v, b"a\n".to_vec(), false).await;
    let err = r.unwrap_err();
    assert!(
        format!("{err:#}").contains("ResourceNotFoundException"),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_flushes_a_partial_batch_after_the_interval() {
    let v = FakeVault::start().await;
    let (mut w, r) = tokio::io::duplex(1024);
    // A slow producer: the first line must be sent before the input ends.
    let reader = tokio_util_sync_reader(r);
    let client = v.client();
    let opts = PutOptions {
        flush_interval: Duration::from_millis(50),
        ..put_opts(true)
    };
    let putting = tokio::spawn(async move {
        let mut diag = Vec::new();
        put_lines(&client, &opts, reader, None, &mut diag).await
    });
    use tokio::io::AsyncWriteExt;
    w.write_all(b"first\n").await.unwrap();
    let mut waited = 0;
    while v.state().batch_sizes.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
        assert!(waited < 500, "the partial batch was never flushed");
    }
    w.write_all(b"second\n").await.unwrap();
    drop(w);
    let summary = putting.await.unwrap().unwrap();
    assert_eq!((summary.events, summary.batches), (2, 2));
}

/// A blocking reader over an async pipe, as stdin behaves for the reading thread.
fn tokio_util_sync_reader(r: tokio::io::DuplexStream) -> Box<dyn std::io::BufRead + Send> {
    struct Sync(tokio::io::DuplexStream, tokio::runtime::Handle);
    impl std::io::Read for Sync {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            use tokio::io::AsyncReadExt;
            let Sync(stream, handle) = self;
            handle.block_on(stream.read(buf))
        }
    }
    Box::new(std::io::BufReader::new(Sync(
        r,
        tokio::runtime::Handle::current(),
    )))
}

async fn seed(v: &FakeVault, stream: &str, events: &[(i64, &str)]) {
    let c = v.client();
    let _ = c.create_log_group("audit").await;
    let _ = c.create_log_stream("audit", stream).await;
    let evs: Vec<InputLogEvent> = events
        .iter()
        .map(|(t, m)| InputLogEvent {
            timestamp: *t,
            message: m.to_string(),
        })
        .collect();
    c.put_log_events("audit", stream, &evs).await.unwrap();
}

fn get_args(v: &FakeVault, limit: Option<usize>, tail: bool) -> GetArgs {
    GetArgs {
        connect: connect(v),
        group: "audit".into(),
        stream: "s1".into(),
        start: None,
        end: None,
        limit,
        head: false,
        tail,
        output: OutputFormat::Table,
    }
}

#[tokio::test]
async fn get_follows_tokens_both_ways() {
    let v = FakeVault::start().await;
    let events: Vec<(i64, String)> = (0..25).map(|i| (1_000 + i, format!("e{i}"))).collect();
    let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
    seed(&v, "s1", &refs).await;
    let client = v.client();
    let messages = |out: Vec<u8>| -> Vec<String> {
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| l.split("  ").nth(1).unwrap().to_string())
            .collect()
    };

    let mut out = Vec::new();
    assert_eq!(
        get_events(&client, &get_args(&v, None, false), &mut out)
            .await
            .unwrap(),
        25
    );
    let all = messages(out);
    assert_eq!(all.first().unwrap(), "e0");
    assert_eq!(all.last().unwrap(), "e24");

    let mut out = Vec::new();
    get_events(&client, &get_args(&v, Some(10), false), &mut out)
        .await
        .unwrap();
    assert_eq!(
        messages(out),
        (0..10).map(|i| format!("e{i}")).collect::<Vec<_>>()
    );

    let mut out = Vec::new();
    get_events(&client, &get_args(&v, Some(5), true), &mut out)
        .await
        .unwrap();
    assert_eq!(messages(out), ["e20", "e21", "e22", "e23", "e24"]);

    // Backward paging (7 events a page) stops at the stream's start.
    let mut out = Vec::new();
    get_events(&client, &get_args(&v, Some(1_000), true), &mut out)
        .await
        .unwrap();
    assert_eq!(messages(out).len(), 25);

    let mut args = get_args(&v, None, false);
    args.start = Some(1_020);
    args.end = Some(1_022);
    args.output = OutputFormat::Json;
    let mut out = Vec::new();
    get_events(&client, &args, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.starts_with("{\"timestamp\":1020,\"message\":\"e20\""),
        "{text}"
    );
}

fn tail_args(v: &FakeVault, follow: bool) -> TailArgs {
    TailArgs {
        connect: connect(v),
        group: "audit".into(),
        follow,
        since: 0,
        filter: None,
        stream: None,
        interval: Duration::from_millis(20),
        output: OutputFormat::Table,
    }
}

#[tokio::test]
async fn tail_pages_through_every_stream() {
    let v = FakeVault::start().await;
    seed(
        &v,
        "web-1",
        &[(10, "GET /"), (12, "POST /login"), (14, "GET /x")],
    )
    .await;
    seed(
        &v,
        "db-1",
        &[(11, "select"), (13, "update"), (15, "select 2")],
    )
    .await;
    let mut out = Vec::new();
    tail_events(
        &v.client(),
        &tail_args(&v, false),
        &mut out,
        std::future::pending(),
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let streams: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        streams,
        ["web-1", "db-1", "web-1", "db-1", "web-1", "db-1"],
        "{text}"
    );

    let mut args = tail_args(&v, false);
    args.stream = Some("web".into());
    args.filter = Some("GET".into());
    args.output = OutputFormat::Json;
    let mut out = Vec::new();
    tail_events(&v.client(), &args, &mut out, std::future::pending())
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("\"eventId\""));
}

#[tokio::test]
async fn tail_follow_prints_new_events_once_and_stops_cleanly() {
    let v = FakeVault::start().await;
    seed(&v, "s1", &[(100, "a"), (100, "b")]).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = v.client();
    let args = tail_args(&v, true);
    let mut out = Vec::new();
    let writer = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Same timestamp as the newest seen: must appear once, and a, b not again.
        seed(&v, "s1", &[(100, "c"), (101, "d")]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        seed(&v, "s2", &[(102, "e")]).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop_tx.send(()).unwrap();
    };
    let stop = async {
        let _ = stop_rx.await;
    };
    let (r, ()) = tokio::join!(tail_events(&client, &args, &mut out, stop), writer);
    r.unwrap();
    let text = String::from_utf8(out).unwrap();
    let msgs: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(msgs, ["a", "b", "c", "d", "e"], "{text}");
}
