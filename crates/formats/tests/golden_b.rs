//! Golden tests for the Redshift, RDS, Config, CUR and host log parsers, over the shared
//! fixtures (`shared/fixtures/{redshift,config}`) and the samples in `tests/data/<format>/`,
//! plus render-and-reparse property tests for every line format.
//!
//! Accounting identity asserted on every input:
//! - line formats: every physical line is in exactly one record or rejection (a record or
//!   rejection covers `1 + newlines in raw` lines) or counted in `skipped`, so
//!   `covered lines + skipped = lines in the input`;
//! - JSON and XML formats: `records + rejections = units read`, where units are configuration
//!   items, top-level values and `<Event>` elements, counted independently per file below.
//!
//! And on every record and rejection: `raw` is byte-for-byte the input at `offset`, `line` is
//! the 1-based line of `offset`, spans do not overlap, reasons are lowercase.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use trailvault_formats::sources::{config, cur, host, rds, redshift};
use trailvault_formats::ParseOutput;
use trailvault_model::{Activity, Outcome};

type Parser = fn(&[u8]) -> ParseOutput;

enum Accounting {
    Lines,
    Units(usize),
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn data_dir(format: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format)
}

fn line_of(input: &[u8], offset: usize) -> u64 {
    1 + input[..offset].iter().filter(|b| **b == b'\n').count() as u64
}

fn total_lines(input: &[u8]) -> u64 {
    let n = input.iter().filter(|b| **b == b'\n').count() as u64;
    n + u64::from(!input.is_empty() && input.last() != Some(&b'\n'))
}

fn lines_in(raw: &[u8]) -> u64 {
    1 + raw.iter().filter(|b| **b == b'\n').count() as u64
}

fn clip(s: &str) -> String {
    if s.len() <= 400 {
        return s.to_owned();
    }
    let mut end = 400;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// Parses `input`, asserts every invariant and the accounting identity, and returns the output
/// with a snapshot-friendly view of it.
fn check(parser: Parser, input: &[u8], accounting: Accounting) -> (ParseOutput, Value) {
    let out = std::panic::catch_unwind(|| parser(input)).expect("parser panicked");
    let mut spans = Vec::new();
    for r in &out.records {
        let at = r.offset as usize;
        assert_eq!(
            input.get(at..at + r.raw.len()),
            Some(r.raw.as_bytes()),
            "record raw is not the input at its offset"
        );
        assert_eq!(r.line, line_of(input, at), "record line of {:?}", r.raw);
        assert!(r.normalized.parsed.is_some(), "parsed is always filled");
        assert!(!r.normalized.source.is_empty());
        spans.push((at, at + r.raw.len(), lines_in(r.raw.as_bytes())));
    }
    for r in &out.rejections {
        let at = r.offset as usize;
        assert_eq!(
            input.get(at..at + r.raw.len()),
            Some(r.raw.as_slice()),
            "rejection raw is not the input at its offset"
        );
        assert_eq!(r.line, line_of(input, at));
        assert!(!r.reason.is_empty());
        assert!(
            !r.reason.starts_with(|c: char| c.is_uppercase()),
            "reason is lowercase: {}",
            r.reason
        );
        spans.push((at, at + r.raw.len(), lines_in(&r.raw)));
    }
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlapping spans {w:?}");
    }
    match accounting {
        Accounting::Lines => {
            let covered: u64 = spans.iter().map(|s| s.2).sum();
            assert_eq!(
                covered + out.skipped,
                total_lines(input),
                "lines in records and rejections + skipped = lines read"
            );
        }
        Accounting::Units(n) => assert_eq!(
            out.records.len() + out.rejections.len(),
            n,
            "records + rejections = units read"
        ),
    }
    let view = json!({
        "records": out.records.iter().map(|r| json!({
            "offset": r.offset,
            "line": r.line,
            "raw": clip(&r.raw),
            "normalized": r.normalized,
        })).collect::<Vec<_>>(),
        "rejections": out.rejections.iter().map(|r| json!({
            "offset": r.offset,
            "line": r.line,
            "reason": r.reason,
            "raw": clip(&String::from_utf8_lossy(&r.raw)),
        })).collect::<Vec<_>>(),
        "skipped": out.skipped,
    });
    (out, view)
}

fn snapshot(name: &str, view: &Value) {
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_yaml_snapshot!(name, view);
    });
}

/// Every file under `tests/data/<format>/`, in name order.
fn samples(format: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir(format))
        .expect("sample dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read sample"))
        })
        .collect()
}

fn run_samples(
    format: &str,
    parser: Parser,
    units: &[(&str, usize)],
) -> Vec<(String, ParseOutput)> {
    let files = samples(format);
    assert!(!files.is_empty(), "no samples for {format}");
    files
        .into_iter()
        .map(|(name, input)| {
            let accounting = if units.is_empty() {
                Accounting::Lines
            } else {
                let n = units
                    .iter()
                    .find(|(f, _)| *f == name)
                    .unwrap_or_else(|| panic!("unit count of {format}/{name}"))
                    .1;
                Accounting::Units(n)
            };
            let (out, view) = check(parser, &input, accounting);
            snapshot(&format!("{format}__{name}"), &view);
            (name, out)
        })
        .collect()
}

fn by_name<'a>(outs: &'a [(String, ParseOutput)], name: &str) -> &'a ParseOutput {
    &outs.iter().find(|(n, _)| n == name).expect(name).1
}

// ---------------------------------------------------------------------------------------------
// Shared fixtures

#[test]
fn fixture_redshift_connection() {
    let input = std::fs::read(fixtures().join("redshift/connectionlog.log")).unwrap();
    let (out, view) = check(redshift::parse_connection, &input, Accounting::Lines);
    snapshot("fixture__redshift_connectionlog", &view);
    assert_eq!((out.records.len(), out.rejections.len()), (8, 0));
    let failure = &out.records[5].normalized;
    assert_eq!(failure.action.as_deref(), Some("authentication failure"));
    assert_eq!(failure.outcome, Some(Outcome::Failure));
    assert_eq!(failure.src_ip.as_deref(), Some("198.51.100.23"));
    let disconnect = &out.records[3].normalized;
    assert_eq!(disconnect.duration_ms, Some(1_631_811.0));
    let local = &out.records[6].normalized;
    assert_eq!((local.src_ip.as_deref(), local.src_port), (None, None));
    let iam = &out.records[7].normalized;
    assert_eq!(iam.actor_user_name.as_deref(), Some("IAM:alice"));
    assert_eq!(
        iam.parsed.as_ref().unwrap().to_value()["iamauthguid"],
        "3f2e1d0c-b9a8-4765-8432-10fedcba9876"
    );
}

#[test]
fn fixture_redshift_user() {
    let input = std::fs::read(fixtures().join("redshift/userlog.log")).unwrap();
    let (out, view) = check(redshift::parse_user, &input, Accounting::Lines);
    snapshot("fixture__redshift_userlog", &view);
    assert_eq!((out.records.len(), out.rejections.len()), (8, 0));
    let activities: Vec<_> = out.records.iter().map(|r| r.normalized.activity).collect();
    assert_eq!(activities[1], Some(Activity::Create));
    assert_eq!(activities[6], Some(Activity::Update));
    assert_eq!(activities[7], Some(Activity::Delete));
    let rename = out.records[6]
        .normalized
        .parsed
        .as_ref()
        .unwrap()
        .to_value();
    assert_eq!(rename["oldusername"], "temp_contractor");
    assert_eq!(rename["valuntil"], 9_223_372_036_854_775_807_i64);
}

#[test]
fn fixture_redshift_activity() {
    let input = std::fs::read(fixtures().join("redshift/useractivitylog.log")).unwrap();
    let (out, view) = check(redshift::parse_activity, &input, Accounting::Lines);
    snapshot("fixture__redshift_useractivitylog", &view);
    assert_eq!((out.records.len(), out.rejections.len()), (8, 0));
    let multi = &out.records[3];
    assert_eq!(multi.raw.lines().count(), 6);
    assert!(
        multi.normalized.parsed.as_ref().unwrap().to_value()["query"]
            .as_str()
            .unwrap()
            .ends_with("ORDER BY total DESC;")
    );
    assert_eq!(multi.normalized.activity, Some(Activity::Read));
    assert_eq!(out.records[4].line, 10);
}

#[test]
fn fixture_config() {
    let input =
        std::fs::read(fixtures().join("config/config_history_security_group.json")).unwrap();
    let (out, view) = check(config::parse, &input, Accounting::Units(3));
    snapshot("fixture__config_history_security_group", &view);
    let activities: Vec<_> = out.records.iter().map(|r| r.normalized.activity).collect();
    assert_eq!(
        activities,
        vec![
            Some(Activity::Create),
            Some(Activity::Update),
            Some(Activity::Delete)
        ]
    );
    let n = &out.records[0].normalized;
    assert_eq!(n.account.as_deref(), Some("123456789012"));
    assert_eq!(n.region.as_deref(), Some("us-east-1"));
    assert_eq!(n.time_ms, Some(1_526_867_112_345));
    assert_eq!(n.resources[0].id.as_deref(), Some("sg-0a1b2c3d4e5f67890"));
    assert_eq!(
        n.resources[0].kind.as_deref(),
        Some("AWS::EC2::SecurityGroup")
    );
    assert_eq!(n.source_event_id.as_deref(), Some("1526867112345"));

    let input =
        std::fs::read(fixtures().join("config/configuration_item_change_notification.json"))
            .unwrap();
    let (out, view) = check(config::parse, &input, Accounting::Units(1));
    snapshot("fixture__config_change_notification", &view);
    let n = &out.records[0].normalized;
    assert_eq!(
        n.action.as_deref(),
        Some("ConfigurationItemChangeNotification")
    );
    assert_eq!(n.activity, Some(Activity::Update));
    assert_eq!(n.time_ms, Some(1_526_868_031_912));
    assert_eq!(out.records[0].raw.as_bytes(), input.trim_ascii_end());
}

// ---------------------------------------------------------------------------------------------
// Own samples

#[test]
fn samples_redshift() {
    let outs = run_samples("redshift-connection", redshift::parse_connection, &[]);
    assert_eq!(by_name(&outs, "older_layout.log").records.len(), 3);
    let broken = by_name(&outs, "broken.log");
    assert_eq!(
        (
            broken.records.len(),
            broken.rejections.len(),
            broken.skipped
        ),
        (2, 4, 1)
    );
    let outs = run_samples("redshift-user", redshift::parse_user, &[]);
    let broken = by_name(&outs, "broken.log");
    assert_eq!((broken.records.len(), broken.rejections.len()), (1, 4));
    let outs = run_samples("redshift-activity", redshift::parse_activity, &[]);
    let broken = by_name(&outs, "broken.log");
    assert_eq!(broken.records.len(), 2);
    assert_eq!(
        broken.records[0].raw.lines().count(),
        4,
        "inner blank line kept"
    );
    assert_eq!(broken.rejections.len(), 4);
}

#[test]
fn samples_rds() {
    let outs = run_samples("rds-mysql-audit", rds::parse_mysql_audit, &[]);
    let maria = by_name(&outs, "mariadb.log");
    assert_eq!(maria.rejections, vec![]);
    let q = &maria.records[1].normalized;
    assert_eq!(
        q.parsed.as_ref().unwrap().to_value()["object"],
        r"SELECT id, name FROM customers WHERE name = 'O\'Brien'"
    );
    assert_eq!(q.activity, Some(Activity::Read));
    assert_eq!(maria.records[6].normalized.outcome, Some(Outcome::Failure));
    assert_eq!(
        maria.records[5].normalized.error_code.as_deref(),
        Some("1051")
    );
    let aurora = by_name(&outs, "aurora.log");
    assert_eq!(
        aurora.records[0].normalized.time_ms,
        Some(1_710_165_731_123)
    );
    let broken = by_name(&outs, "broken.log");
    assert_eq!((broken.records.len(), broken.rejections.len()), (1, 5));

    let outs = run_samples("rds-postgres-audit", rds::parse_postgres_audit, &[]);
    let pg = by_name(&outs, "pgaudit.log");
    assert_eq!((pg.records.len(), pg.rejections.len()), (9, 0));
    let insert = &pg.records[2].normalized;
    assert_eq!(insert.action.as_deref(), Some("INSERT"));
    assert_eq!(insert.activity, Some(Activity::Create));
    assert_eq!(
        insert.parsed.as_ref().unwrap().to_value()["audit"]["statement"],
        "INSERT INTO orders (customer_id, note)\nVALUES (7, 'multi-line, with \"quotes\"')"
    );
    assert_eq!(
        pg.records[5].normalized.src_ip.as_deref(),
        Some("2001:db8::9")
    );
    assert_eq!(pg.records[5].normalized.outcome, Some(Outcome::Failure));
    let broken = by_name(&outs, "broken.log");
    assert_eq!((broken.records.len(), broken.rejections.len()), (2, 4));
    assert_eq!(
        broken.records[0].normalized.time_ms, None,
        "named zones are not guessed"
    );
}

#[test]
fn samples_config() {
    let outs = run_samples(
        "config",
        config::parse,
        &[
            ("snapshot.json", 3),
            ("notifications.json", 3),
            ("broken.json", 10),
        ],
    );
    let snap = by_name(&outs, "snapshot.json");
    assert_eq!(
        snap.records[1].normalized.resources[0].id.as_deref(),
        Some("arn:aws:iam::123456789012:role/ExampleRole")
    );
    assert_eq!(snap.records[2].normalized.activity, Some(Activity::Delete));
    assert_eq!(snap.records[2].line, 37);
    let notes = by_name(&outs, "notifications.json");
    assert_eq!(notes.records[0].normalized.activity, Some(Activity::Delete));
    assert_eq!(
        notes.records[2].normalized.resources[0].id.as_deref(),
        Some("example-audit-bucket")
    );
    let broken = by_name(&outs, "broken.json");
    assert_eq!(broken.records.len(), 2);
}

#[test]
fn samples_cur() {
    let outs = run_samples("cur", cur::parse, &[]);
    let legacy = by_name(&outs, "legacy.csv");
    assert_eq!((legacy.records.len(), legacy.rejections.len()), (3, 0));
    let ec2 = &legacy.records[0].normalized;
    assert_eq!(ec2.account.as_deref(), Some("123456789012"));
    assert_eq!(ec2.service.as_deref(), Some("AmazonEC2"));
    assert_eq!(ec2.action.as_deref(), Some("USE1-BoxUsage:t3.micro"));
    assert_eq!(
        ec2.parsed.as_ref().unwrap().to_value()["resourceTags/user:team"],
        "security"
    );
    assert_eq!(legacy.records[2].normalized.action.as_deref(), Some("Tax"));
    let cur2 = by_name(&outs, "cur2.csv");
    assert_eq!(
        cur2.records[0].normalized.region.as_deref(),
        Some("us-east-1")
    );
    let broken = by_name(&outs, "broken.csv");
    // row6's unterminated quote runs to the end of the file: csv reads it as one last value.
    assert_eq!((broken.records.len(), broken.rejections.len()), (2, 4));
    let not_cur = by_name(&outs, "not_cur.csv");
    assert_eq!((not_cur.records.len(), not_cur.rejections.len()), (0, 2));
}

#[test]
fn samples_host_access_logs() {
    let outs = run_samples("apache-combined", host::parse_apache_combined, &[]);
    let access = by_name(&outs, "access.log");
    assert_eq!((access.records.len(), access.rejections.len()), (6, 0));
    let post = &access.records[1].normalized;
    assert_eq!(post.time_ms, Some(1_710_165_732_000));
    assert_eq!(post.actor_user_name.as_deref(), Some("alice"));
    assert_eq!(post.bytes, None);
    assert_eq!(
        access.records[2].normalized.user_agent.as_deref(),
        Some("python-requests/2.31.0 \"scanner\"")
    );
    assert_eq!(access.records[2].normalized.outcome, Some(Outcome::Failure));
    let broken = by_name(&outs, "broken.log");
    assert_eq!(
        (
            broken.records.len(),
            broken.rejections.len(),
            broken.skipped
        ),
        (1, 5, 1)
    );

    let outs = run_samples("iis", host::parse_iis, &[]);
    let iis = by_name(&outs, "u_ex240311.log");
    assert_eq!(
        (iis.records.len(), iis.rejections.len(), iis.skipped),
        (4, 0, 6)
    );
    let first = &iis.records[0].normalized;
    assert_eq!(
        first.user_agent.as_deref(),
        Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    );
    assert_eq!(first.duration_ms, Some(15.0));
    assert_eq!(
        iis.records[1]
            .normalized
            .parsed
            .as_ref()
            .unwrap()
            .to_value()["cs-uri-query"],
        "a=1+2"
    );
    assert_eq!(
        iis.records[3].normalized.src_ip.as_deref(),
        Some("2001:db8::7")
    );
    let broken = by_name(&outs, "broken.log");
    assert_eq!((broken.records.len(), broken.rejections.len()), (1, 4));
}

#[test]
fn samples_syslog() {
    let outs = run_samples("syslog", host::parse_syslog, &[]);
    let rfc3164 = by_name(&outs, "rfc3164.log");
    assert_eq!(rfc3164.records.len(), 6);
    assert!(rfc3164.records[..5]
        .iter()
        .all(|r| r.normalized.time_ms.is_none()));
    let broken = by_name(&outs, "broken.log");
    assert_eq!(
        (
            broken.records.len(),
            broken.rejections.len(),
            broken.skipped
        ),
        (1, 7, 1)
    );
    let rfc5424 = by_name(&outs, "rfc5424.log");
    assert_eq!(rfc5424.records.len(), 4);
    let sd = &rfc5424.records[1]
        .normalized
        .parsed
        .as_ref()
        .unwrap()
        .to_value()["structured_data"];
    assert_eq!(sd["exampleSDID@32473"]["eventID"], "1011");
    let quoted = &rfc5424.records[3]
        .normalized
        .parsed
        .as_ref()
        .unwrap()
        .to_value()["structured_data"];
    assert_eq!(quoted["meta"]["note"], "quote \" and bracket ] inside");

    let input = std::fs::read(data_dir("syslog").join("rfc3164.log")).unwrap();
    let (out, view) = check(
        |i| host::parse_syslog_with_year(i, 2023),
        &input,
        Accounting::Lines,
    );
    snapshot("syslog__rfc3164.log__year_2023", &view);
    let times: Vec<_> = out.records.iter().map(|r| r.normalized.time_ms).collect();
    assert_eq!(times[0], Some(1_704_067_198_000), "2023-12-31T23:59:58Z");
    assert_eq!(
        times[1],
        Some(1_704_067_203_000),
        "rolled over to 2024-01-01"
    );
    let tagless = out.records[4]
        .normalized
        .parsed
        .as_ref()
        .unwrap()
        .to_value();
    assert_eq!(tagless["hostname"], Value::Null);
    assert_eq!(tagless["app_name"], "su");
}

#[test]
fn samples_windows_events() {
    let outs = run_samples(
        "windows-event",
        host::parse_windows_event,
        &[
            ("security_export.xml", 5),
            ("winlogbeat.ndjson", 3),
            ("get_winevent.json", 2),
            ("broken.xml", 8),
            ("broken.ndjson", 6),
        ],
    );
    let xml = by_name(&outs, "security_export.xml");
    assert_eq!(xml.rejections, vec![]);
    let logon = &xml.records[0].normalized;
    assert_eq!(logon.actor_user_name.as_deref(), Some("alice"));
    assert_eq!(logon.src_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(logon.src_port, Some(50122));
    assert_eq!(logon.outcome, Some(Outcome::Success));
    assert_eq!(logon.action.as_deref(), Some("4624"));
    assert_eq!(
        logon.service.as_deref(),
        Some("Microsoft-Windows-Security-Auditing")
    );
    assert_eq!(logon.time_ms, Some(1_710_165_731_123));
    let failed = &xml.records[1].normalized;
    assert_eq!(failed.outcome, Some(Outcome::Failure));
    assert_eq!(failed.error_code.as_deref(), Some("0xc000006a"));
    assert_eq!(failed.src_port, None);
    let created = &xml.records[2].normalized;
    assert_eq!(
        created.actor_user_name.as_deref(),
        Some("admin & ops \u{263a}")
    );
    assert_eq!(created.activity, Some(Activity::Create));
    assert_eq!(xml.records[3].normalized.outcome, None);
    assert_eq!(xml.records[4].normalized.outcome, Some(Outcome::Success));

    let beat = by_name(&outs, "winlogbeat.ndjson");
    assert_eq!(
        beat.records[0].normalized.actor_user_name.as_deref(),
        Some("alice")
    );
    assert_eq!(
        beat.records[1].normalized.actor_user_name.as_deref(),
        Some("admin")
    );
    assert_eq!(beat.records[2].normalized.outcome, Some(Outcome::Failure));
    let ps = by_name(&outs, "get_winevent.json");
    let n = &ps.records[0].normalized;
    assert_eq!(n.time_ms, Some(1_710_166_932_500));
    assert_eq!(n.actor_user_name.as_deref(), Some("administrator"));
    assert_eq!(n.src_ip.as_deref(), Some("203.0.113.66"));
    assert_eq!(ps.records[1].line, 27);
    assert_eq!(by_name(&outs, "broken.xml").records.len(), 2);
    assert_eq!(by_name(&outs, "broken.ndjson").records.len(), 1);
}

#[test]
fn empty_and_garbage_inputs_never_panic() {
    let parsers: [Parser; 12] = [
        redshift::parse_connection,
        redshift::parse_user,
        redshift::parse_activity,
        rds::parse_mysql_audit,
        rds::parse_postgres_audit,
        config::parse,
        cur::parse,
        host::parse_apache_combined,
        host::parse_iis,
        host::parse_syslog,
        host::parse_windows_event,
        |i| host::parse_syslog_with_year(i, 2024),
    ];
    let inputs: [&[u8]; 8] = [
        b"",
        b"\n\n",
        b"\xff\xfe\x00garbage",
        b"<",
        b"{",
        b"'2018-05-21T",
        b"<Event",
        b"\"\"\"\n,,,\r\n[",
    ];
    for p in parsers {
        for input in inputs {
            let out = std::panic::catch_unwind(|| p(input)).expect("no panic");
            assert!(out.records.len() + out.rejections.len() <= 8);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Render and re-parse

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    fn one(out: &ParseOutput) -> &trailvault_formats::ParsedRecord {
        assert_eq!(out.rejections, vec![], "rejections");
        assert_eq!(out.records.len(), 1);
        &out.records[0]
    }

    fn ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        // Reference civil-to-epoch conversion, independent of the parsers' own.
        let (y, m) = if mo <= 2 {
            (y - 1, mo + 9)
        } else {
            (y, mo - 3)
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * i64::from(m) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        ((days * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60_000 + i64::from(s) * 1000
    }

    prop_compose! {
        fn time()(y in 2000i64..2035, mo in 1u32..=12, d in 1u32..=28, h in 0u32..24, mi in 0u32..60, s in 0u32..60)
            -> (i64, u32, u32, u32, u32, u32) { (y, mo, d, h, mi, s) }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn redshift_connection((y, mo, d, h, mi, s) in time(), millis in 0u32..1000,
            event in "(authenticated|initiating session|disconnecting session)",
            octets in any::<[u8; 4]>(), port in 1u16.., pid in 1u32.., db in "[a-z_]{1,12}",
            user in "[A-Za-z0-9_:]{1,16}", duration in any::<u32>(), old in any::<bool>()) {
            let ip = std::net::Ipv4Addr::from(octets);
            let mut line = format!(
                "{event} |Mon, {d:02} {} {y} {h:02}:{mi:02}:{s:02}:{millis:03}|::ffff:{ip} |{port} |{pid}|{db} |{user} |password |{duration}|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | ",
                MONTHS[mo as usize - 1]
            );
            line.push_str(if old { "|" } else { "|Linux |JDBC 2.1 |none |0|abc-123" });
            let out = redshift::parse_connection(line.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s) + i64::from(millis)));
            prop_assert_eq!(n.src_ip.clone(), Some(ip.to_string()));
            prop_assert_eq!(n.src_port, Some(port));
            prop_assert_eq!(n.actor_user_name.as_deref(), Some(user.as_str()));
            prop_assert_eq!(n.action.as_deref(), Some(event.as_str()));
            prop_assert_eq!(n.duration_ms, Some(f64::from(duration) / 1000.0));
            let parsed = n.parsed.as_ref().unwrap().to_value();
            prop_assert_eq!(&parsed["pid"], &json!(pid));
            prop_assert_eq!(&parsed["dbname"], &json!(db));
            prop_assert_eq!(parsed.get("sessionid").is_some(), !old);
        }

        #[test]
        fn redshift_user((y, mo, d, h, mi, s) in time(), userid in 1u32.., name in "[a-z_]{1,16}",
            action in "(create|alter|drop|rename)", flags in any::<[bool; 3]>(), xid in any::<u32>()) {
            let line = format!(
                "{userid}|{name} | |{action} |{}|{}|{}|9223372036854775807|16750|{xid}|Tue, {d:02} {} {y} {h:02}:{mi:02}:{s:02}:000",
                u8::from(flags[0]), u8::from(flags[1]), u8::from(flags[2]), MONTHS[mo as usize - 1]
            );
            let out = redshift::parse_user(line.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(n.resources[0].id.as_deref(), Some(name.as_str()));
            prop_assert_eq!(&n.parsed.as_ref().unwrap().to_value()["xid"], &json!(xid));
            prop_assert_eq!(&n.parsed.as_ref().unwrap().to_value()["usesuper"], &json!(u8::from(flags[1])));
        }

        #[test]
        fn redshift_activity((y, mo, d, h, mi, s) in time(), db in "[a-z]{1,8}", user in "[a-z]{1,8}",
            query in prop::collection::vec("[a-zA-Z0-9 ,;=*()]{0,30}", 1..5)) {
            prop_assume!(!query.last().unwrap().trim().is_empty());
            let sql = query.join("\n");
            let text = format!(
                "'{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z UTC [ db={db} user={user} pid=1 userid=2 xid=3 ]' LOG: {sql}\n"
            );
            let out = redshift::parse_activity(text.as_bytes());
            let r = one(&out);
            prop_assert_eq!(r.raw.as_str(), text.trim_end_matches('\n'));
            prop_assert_eq!(r.normalized.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(&r.normalized.parsed.as_ref().unwrap().to_value()["query"], &json!(sql));
        }

        #[test]
        fn mysql_audit((y, mo, d, h, mi, s) in time(), user in "[a-z_]{1,10}", conn in any::<u32>(),
            op in "(QUERY|READ|WRITE|CONNECT)", object in "[ -~\n\t]{0,40}", retcode in 0u32..2000,
            aurora in any::<bool>()) {
            let escaped = object
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('\n', "\\n")
                .replace('\t', "\\t");
            let t = ms(y, mo, d, h, mi, s);
            let ts = if aurora { format!("{}", t * 1000 + 123) } else { format!("{y}{mo:02}{d:02} {h:02}:{mi:02}:{s:02}") };
            let line = format!("{ts},ip-10-0-0-1,{user},198.51.100.7,{conn},77,{op},db1,'{escaped}',{retcode}");
            let out = rds::parse_mysql_audit(line.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(t));
            prop_assert_eq!(&n.parsed.as_ref().unwrap().to_value()["object"], &json!(object));
            prop_assert_eq!(&n.parsed.as_ref().unwrap().to_value()["connectionid"], &json!(conn));
            prop_assert_eq!(n.outcome, Some(if retcode == 0 { Outcome::Success } else { Outcome::Failure }));
        }

        #[test]
        fn postgres_audit((y, mo, d, h, mi, s) in time(), user in "[a-z]{1,8}", db in "[a-z]{1,8}",
            pid in 1u32.., port in 1u16.., statement in "[a-zA-Z0-9 ,'\"()*=\n]{1,60}") {
            prop_assume!(!statement.ends_with('\n'));
            let quoted = format!("\"{}\"", statement.replace('"', "\"\""));
            let text = format!(
                "{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC:198.51.100.7({port}):{user}@{db}:[{pid}]:LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.t,{quoted},<not logged>"
            );
            let out = rds::parse_postgres_audit(text.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(n.src_port, Some(port));
            prop_assert_eq!(n.actor_user_name.as_deref(), Some(user.as_str()));
            let parsed = n.parsed.as_ref().unwrap().to_value();
            prop_assert_eq!(&parsed["audit"]["statement"], &json!(statement));
            prop_assert_eq!(&parsed["pid"], &json!(pid));
        }

        #[test]
        fn cur_row(values in prop::collection::vec("[a-zA-Z0-9 ,\"\n:/-]{0,20}", 3), account in "[0-9]{12}") {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["identity/LineItemId", "lineItem/UsageAccountId", "lineItem/ProductCode", "product/ProductName", "resourceTags/user:team"]).unwrap();
            w.write_record([values[0].as_str(), account.as_str(), "AmazonEC2", values[1].as_str(), values[2].as_str()]).unwrap();
            let text = w.into_inner().unwrap();
            let out = cur::parse(&text);
            let r = one(&out);
            prop_assert_eq!(out.skipped, 1);
            prop_assert_eq!(r.normalized.account.as_deref(), Some(account.as_str()));
            let parsed = r.normalized.parsed.as_ref().unwrap().to_value();
            for (name, v) in [("identity/LineItemId", &values[0]), ("product/ProductName", &values[1]), ("resourceTags/user:team", &values[2])] {
                prop_assert_eq!(parsed.get(name), if v.is_empty() { None } else { Some(&json!(v)) });
            }
        }

        #[test]
        fn apache((y, mo, d, h, mi, s) in time(), octets in any::<[u8; 4]>(), user in "(-|[a-z]{1,8})",
            method in "(GET|POST|PUT|DELETE|HEAD)", path in "/[a-zA-Z0-9/._?=&%-]{0,30}",
            status in 100u16..600, bytes in prop::option::of(any::<u32>()), ua in "[ -~]{0,40}") {
            let ip = std::net::Ipv4Addr::from(octets);
            let ua_escaped = ua.replace('\\', "\\\\").replace('"', "\\\"");
            let b = bytes.map_or("-".to_owned(), |b| b.to_string());
            let line = format!(
                "{ip} - {user} [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000] \"{method} {path} HTTP/1.1\" {status} {b} \"-\" \"{ua_escaped}\"",
                MONTHS[mo as usize - 1]
            );
            let out = host::parse_apache_combined(line.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(n.src_ip.clone(), Some(ip.to_string()));
            prop_assert_eq!(n.action.as_deref(), Some(method.as_str()));
            prop_assert_eq!(n.bytes, bytes.map(i64::from));
            prop_assert_eq!(n.user_agent.clone(), Some(ua.clone()).filter(|u| !u.is_empty() && u != "-"));
            prop_assert_eq!(n.resources[0].id.as_deref(), Some(path.as_str()));
        }

        #[test]
        fn iis((y, mo, d, h, mi, s) in time(), octets in any::<[u8; 4]>(), ua in "[a-zA-Z0-9/.;()]{1,10}( [a-zA-Z0-9/.;()]{1,10}){0,3}",
            status in 100u16..600, taken in any::<u16>()) {
            let ip = std::net::Ipv4Addr::from(octets);
            let text = format!(
                "#Fields: date time c-ip cs-method cs-uri-stem cs(User-Agent) sc-status time-taken\n{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {ip} GET /x {} {status} {taken}\n",
                ua.replace(' ', "+")
            );
            let out = host::parse_iis(text.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(n.user_agent.as_deref(), Some(ua.as_str()));
            prop_assert_eq!(n.src_ip.clone(), Some(ip.to_string()));
            prop_assert_eq!(n.duration_ms, Some(f64::from(taken)));
        }

        #[test]
        fn syslog_5424((y, mo, d, h, mi, s) in time(), pri in 0u8..192, host_name in "[!-~]{1,20}",
            app in "[!-~]{1,12}", msgid in "[!-~]{1,8}", value in "[a-z \"\\]\\\\]{0,12}", msg in "[ -~]{0,40}") {
            prop_assume!(host_name != "-" && app != "-" && msgid != "-");
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
            let line = format!(
                "<{pri}>1 {y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z {host_name} {app} 42 {msgid} [x@1 k=\"{escaped}\"] {msg}"
            );
            let out = host::parse_syslog(line.as_bytes());
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(n.service.as_deref(), Some(app.as_str()));
            prop_assert_eq!(n.action.as_deref(), Some(msgid.as_str()));
            let parsed = n.parsed.as_ref().unwrap().to_value();
            prop_assert_eq!(&parsed["structured_data"]["x@1"]["k"], &json!(value));
            prop_assert_eq!(&parsed["message"], &json!(msg));
            prop_assert_eq!(&parsed["priority"], &json!(pri));
        }

        #[test]
        fn syslog_3164((y, mo, d, h, mi, s) in time(), host_name in "[a-z0-9.][a-z0-9.-]{0,15}", tag in "[a-zA-Z]{1,10}",
            pid in any::<u16>(), msg in "[ -~]{0,40}") {
            let line = format!(
                "<38>{} {d:>2} {h:02}:{mi:02}:{s:02} {host_name} {tag}[{pid}]: {msg}",
                MONTHS[mo as usize - 1]
            );
            let out = host::parse_syslog_with_year(line.as_bytes(), y as i32);
            let n = &one(&out).normalized;
            prop_assert_eq!(n.time_ms, Some(ms(y, mo, d, h, mi, s)));
            prop_assert_eq!(n.service.as_deref(), Some(tag.as_str()));
            let parsed = n.parsed.as_ref().unwrap().to_value();
            prop_assert_eq!(&parsed["hostname"], &json!(host_name));
            prop_assert_eq!(&parsed["procid"], &json!(pid.to_string()));
            prop_assert_eq!(&parsed["message"], &json!(msg));
        }
    }
}
