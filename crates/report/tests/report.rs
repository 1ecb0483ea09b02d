//! Timelines and reports over the seeded dataset of `common`, and the HTML report rendered
//! by headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use trailvault_report::anomaly::AnomalyOptions;
use trailvault_report::report::{build_report, render_html, render_markdown, ReportOptions};
use trailvault_report::source::DataSource;
use trailvault_report::timeline::{build_timeline, render_table, Subject};

async fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path()).await;
    seed_alarm(dir.path());
    dir
}

fn day() -> (Option<i64>, Option<i64>) {
    (Some(REPORT_DAY_MS), Some(REPORT_DAY_MS + DAY_MS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_of_an_address_spans_sources_in_time_order() {
    let dir = seeded().await;
    let src = DataSource::open(dir.path()).await.unwrap();
    assert!(src.note().is_none());
    let (from, to) = day();
    let t = build_timeline(&src, Subject::Ip(ATTACKER_IP.into()), from, to, 100)
        .await
        .unwrap();
    let got: Vec<(String, String, String)> = t
        .entries
        .iter()
        .map(|e| {
            (
                e.time.clone(),
                e.source.clone(),
                format!(
                    "{} {}",
                    e.action.as_deref().unwrap_or("-"),
                    e.outcome.as_deref().unwrap_or("-")
                ),
            )
        })
        .collect();
    let expect = [
        ("2025-03-15T03:00:00Z", "vpc-flow", "REJECT failure"),
        ("2025-03-15T03:02:00Z", "alb", "POST failure"),
        ("2025-03-15T03:05:00Z", "cloudtrail", "ConsoleLogin failure"),
        ("2025-03-15T03:05:10Z", "cloudtrail", "ConsoleLogin failure"),
        ("2025-03-15T03:05:20Z", "cloudtrail", "ConsoleLogin failure"),
        ("2025-03-15T03:07:00Z", "cloudtrail", "ConsoleLogin success"),
        (
            "2025-03-15T03:10:00Z",
            "cloudtrail",
            "ScheduleKeyDeletion success",
        ),
    ];
    let expect: Vec<(String, String, String)> = expect
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, expect, "{}", render_table(&t));
    assert!(!t.truncated);
    // Only the report day's hours were read: the baseline's segments were pruned.
    assert!(t.segments_pruned > t.segments_read, "{t:?}");
    let kms = t.entries.last().unwrap();
    assert_eq!(
        kms.resource.as_deref(),
        Some("arn:aws:kms:ap-southeast-2:444455556666:key/1234abcd")
    );
    assert_eq!(kms.account.as_deref(), Some(ACCOUNT_B));
    assert_eq!(kms.group, CT_GROUP);
    assert_eq!(
        t.entries[0].resource.as_deref(),
        Some("eni-0a1b2c3d4e5f60718")
    );
    let table = render_table(&t);
    assert!(table.starts_with("TIME"), "{table}");
    assert!(table.contains("eu-west-1"), "{table}");
    assert!(table.trim_end().ends_with("7 event(s)"), "{table}");

    // A limit keeps the earliest entries and says it cut.
    let t = build_timeline(&src, Subject::Ip(ATTACKER_IP.into()), from, to, 2)
        .await
        .unwrap();
    assert_eq!(t.entries.len(), 2);
    assert!(t.truncated);
    assert_eq!(t.entries[1].source, "alb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_of_a_principal_or_key_includes_the_unsealed_pushed_event() {
    let dir = seeded().await;
    let src = DataSource::open(dir.path()).await.unwrap();
    let (from, to) = day();
    let by_name = build_timeline(&src, Subject::Actor("alice".into()), from, to, 100)
        .await
        .unwrap();
    let actions: Vec<&str> = by_name
        .entries
        .iter()
        .map(|e| e.action.as_deref().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "ConsoleLogin",
            "GetObject",
            "CreateAccessKey",
            "AuthorizeSecurityGroupIngress",
            "GetCallerIdentity"
        ]
    );
    let pushed = by_name.entries.last().unwrap();
    assert_eq!(pushed.event_id, "ev-pushed");
    assert_eq!(pushed.outcome.as_deref(), Some("success"));
    let sg = &by_name.entries[3];
    assert_eq!(sg.outcome.as_deref(), Some("failure"));
    assert_eq!(
        sg.error_code.as_deref(),
        Some("Client.UnauthorizedOperation")
    );

    let by_arn = build_timeline(
        &src,
        Subject::Actor(format!("arn:aws:iam::{ACCOUNT_A}:user/alice")),
        from,
        to,
        100,
    )
    .await
    .unwrap();
    assert_eq!(by_arn.entries, by_name.entries);
    let by_key = build_timeline(&src, Subject::AccessKey(ALICE_KEY.into()), None, None, 100)
        .await
        .unwrap();
    // 14 baseline days of 6 events, 4 on the report day, the pushed one.
    assert_eq!(by_key.entries.len(), 14 * 6 + 5);
    assert!(by_key
        .entries
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    let json = serde_json::to_value(&by_key).unwrap();
    assert_eq!(json["subject"]["kind"], "access_key");
    assert_eq!(json["entries"].as_array().unwrap().len(), 89);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_directory_is_read_from_its_sealed_segments() {
    let dir = seeded().await;
    // Another process (here: this one) holds the vault.
    let holder = trailvault_store::Vault::open(trailvault_store::VaultConfig::new(dir.path()))
        .await
        .unwrap();
    let src = DataSource::open(dir.path()).await.unwrap();
    assert!(src.vault().is_none());
    let note = src.note().unwrap();
    assert!(note.contains("sealed data only"), "{note}");
    let (from, to) = day();
    let t = build_timeline(&src, Subject::Actor("alice".into()), from, to, 100)
        .await
        .unwrap();
    // The pushed event is still in the tail: not visible without the vault.
    assert_eq!(t.entries.len(), 4);
    assert!(t.segments_pruned > 0);
    assert!(render_table(&t).starts_with("note: "));
    let embedded_files = holder_files(&holder).await;
    let listed = src.segment_files().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|f| (&f.group, &f.key, f.bytes))
            .collect::<Vec<_>>(),
        embedded_files
            .iter()
            .map(|(g, k, b)| (g, k, *b))
            .collect::<Vec<_>>()
    );
}

async fn holder_files(v: &trailvault_store::Vault) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for g in v.log_groups() {
        for s in v.segments(&g.name).unwrap() {
            out.push((g.name.clone(), s.key.clone(), s.bytes));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

fn report_options() -> ReportOptions {
    ReportOptions {
        start_ms: REPORT_DAY_MS,
        end_ms: REPORT_DAY_MS + DAY_MS,
        generated_at_ms: REPORT_DAY_MS + DAY_MS + HOUR_MS,
        anomaly: AnomalyOptions::default(),
        integrity: true,
    }
}

async fn report_data(dir: &Path) -> trailvault_report::report::ReportData {
    let src = DataSource::open(dir).await.unwrap();
    let mut d = build_report(&src, &report_options()).await.unwrap();
    // Parquet file sizes depend on the encoder's version: pin them for the snapshot.
    for s in &mut d.storage {
        assert!(s.bytes > 0 && s.segments > 0, "{s:?}");
        s.bytes = 4096 * s.segments;
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_report_sections() {
    let dir = seeded().await;
    let d = report_data(dir.path()).await;
    assert_eq!(d.events_total, 10 + 1 + 3 + 2);
    assert_eq!(d.failed_logins.total, 3);
    assert_eq!(d.failed_logins_by_ip, vec![(ATTACKER_IP.to_string(), 3)]);
    assert_eq!(d.root_usage.total, 1);
    assert_eq!(d.iam_changes.total, 1);
    assert_eq!(d.security_group_changes.total, 1);
    assert_eq!(d.kms_changes.total, 1);
    let first = &d.anomalies.deviations[0];
    assert_eq!(first.principal, "bob");
    assert!(
        first
            .explanation
            .starts_with("bob signed in from 198.51.100.7, never seen before"),
        "{}",
        first.explanation
    );
    assert!(d.anomalies.deviations.iter().any(|x| x
        .explanation
        .starts_with("alice called iam:CreateAccessKey for the first time")));
    let md = render_markdown(&d);
    insta::assert_snapshot!("report_markdown", md);
}

fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("/usr/bin/chromium is missing and CI is set: run scripts/test-env.sh first");
    }
    eprintln!("note: /usr/bin/chromium is missing; skipping the browser test (scripts/test-env.sh installs it)");
    None
}

/// Run chromium headless with `extra` arguments on `url`; its stdout.
fn run_chromium(bin: &Path, profile: &Path, extra: &[String], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// Attribute `name` of the tag that starts at the beginning of `tag`.
fn attr(tag: &str, name: &str) -> Option<f64> {
    let end = tag.find('>')?;
    let head = &tag[..end];
    let at = head.find(&format!(" {name}=\""))? + name.len() + 3;
    head[at..].split('"').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_its_charts_in_chromium() {
    let Some(bin) = chromium() else {
        return;
    };
    let dir = seeded().await;
    let d = report_data(dir.path()).await;
    let html = render_html(&d);
    assert!(!html.contains("<script"), "the page must not need scripts");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external resource"
    );
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let profile = out.path().join("profile");

    let dom = run_chromium(&bin, &profile, &["--dump-dom".into()], &url);
    let svgs: Vec<&str> = dom
        .split("<svg")
        .skip(1)
        .map(|s| s.split("</svg>").next().unwrap())
        .collect();
    assert!(
        svgs.len() >= 8,
        "{} svg elements in the rendered DOM",
        svgs.len()
    );
    assert!(svgs
        .iter()
        .all(|s| s.contains("<rect") || s.contains("<path")));
    let areas = svgs
        .iter()
        .filter(|s| s.contains("<path class=\"area\""))
        .count();
    assert_eq!(areas, 3, "three activity-over-time charts");
    let widths: Vec<f64> = dom
        .split("<rect class=\"bar\"")
        .skip(1)
        .map(|t| attr(t, "width").expect("a bar with a width"))
        .collect();
    assert!(widths.len() >= 10, "{widths:?}");
    assert!(widths.iter().all(|w| *w > 0.0), "{widths:?}");
    assert!(dom.contains("bob signed in from 198.51.100.7"));

    let png = out.path().join("report.png");
    run_chromium(
        &bin,
        &profile,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".into(),
        ],
        &url,
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 20_000,
        "screenshot of {} bytes looks blank",
        bytes.len()
    );
    if let Ok(keep) = std::env::var("TRAILVAULT_REPORT_SCREENSHOT") {
        std::fs::copy(&png, &keep).unwrap();
    }
}

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    Timeline(trailvault_report::TimelineArgs),
    Report(trailvault_report::ReportArgs),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_entry_points() {
    use clap::Parser;
    let dir = seeded().await;
    let data = dir.path().to_str().unwrap();
    assert!(Cli::try_parse_from(["t", "timeline", "--data", data]).is_err());
    assert!(Cli::try_parse_from(["t", "timeline", "--actor", "a", "--ip", "1.2.3.4"]).is_err());
    let Sub::Timeline(args) = Cli::try_parse_from([
        "t",
        "timeline",
        "--ip",
        ATTACKER_IP,
        "--from",
        "2025-03-15",
        "--to",
        "2025-03-16",
        "--data",
        data,
        "--output",
        "json",
    ])
    .unwrap()
    .command
    else {
        panic!("not a timeline");
    };
    trailvault_report::run_timeline(args).await.unwrap();
    let out = dir.path().join("report.md");
    let Sub::Report(args) = Cli::try_parse_from([
        "t",
        "report",
        "--from",
        "2025-03-15",
        "--to",
        "2025-03-16",
        "--format",
        "md",
        "--data",
        data,
        "--out",
        out.to_str().unwrap(),
        "--baseline-days",
        "7",
    ])
    .unwrap()
    .command
    else {
        panic!("not a report");
    };
    trailvault_report::run_report(args).await.unwrap();
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(
        md.contains("Baseline 2025-03-08T00:00:00Z to 2025-03-15T00:00:00Z"),
        "{md}"
    );
    assert!(md.contains("## Storage per log group"));
}
