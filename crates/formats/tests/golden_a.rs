//! Golden tests for the AWS access and audit formats: every relevant sample in the shared
//! fixtures and every sample in `tests/data/<format>/`, parsed, normalized and snapshotted
//! (insta, yaml). Each case also pins its (records, rejections, skipped) counts, checks that
//! raw bytes are byte-exact at their offsets, and, for line formats, that every line of the
//! input is accounted for: `lines = records + rejections + skipped`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use trailvault_formats::{detect, parse, Format, ParseOutput};
use trailvault_model::Normalized;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[derive(Serialize)]
struct Snapshot<'a> {
    format: &'a str,
    records: Vec<RecordView<'a>>,
    rejections: Vec<RejectionView>,
    skipped: u64,
}

#[derive(Serialize)]
struct RecordView<'a> {
    offset: u64,
    line: u64,
    raw_bytes: usize,
    normalized: &'a Normalized,
}

#[derive(Serialize)]
struct RejectionView {
    offset: u64,
    line: u64,
    reason: String,
    raw: String,
}

/// Formats whose records and rejections are whole physical lines of the input.
fn line_based(format: Format) -> bool {
    matches!(
        format,
        Format::S3Access
            | Format::ElbClassic
            | Format::Alb
            | Format::Nlb
            | Format::Cloudfront
            | Format::VpcFlow
            | Format::Plain
    )
}

/// Parses `path` as `format`, checks the invariants and the expected counts, and snapshots
/// the output under `name`.
fn check(name: &str, path: &Path, format: Format, expected: (usize, usize, u64)) -> ParseOutput {
    let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out = parse(format, &input);
    let got = (out.records.len(), out.rejections.len(), out.skipped);
    assert_eq!(
        got, expected,
        "{name}: (records, rejections, skipped); rejections: {:#?}",
        out.rejections
    );
    assert_eq!(
        out.records_read(),
        (out.records.len() + out.rejections.len()) as u64
    );
    for r in &out.rejections {
        assert!(!r.reason.is_empty());
        let at = &input[r.offset as usize..];
        assert!(
            at.starts_with(&r.raw),
            "{name}: rejection raw is not at its offset"
        );
    }
    for r in &out.records {
        if format == Format::CloudwatchSubscription {
            // The raw is the unescaped message; CloudTrail messages normalize as CloudTrail.
            assert!(
                ["cloudwatch-subscription", "cloudtrail"].contains(&r.normalized.source.as_str())
            );
        } else {
            let at = &input[r.offset as usize..];
            assert!(
                at.starts_with(r.raw.as_bytes()),
                "{name}: record raw is not at its offset"
            );
            assert_eq!(r.normalized.source, format.id(), "{name}");
        }
        assert_eq!(
            r.parsed_json().is_some(),
            format != Format::Plain,
            "{name}: parsed"
        );
    }
    if line_based(format) {
        let lines = input.split(|b| *b == b'\n').count() as u64
            - u64::from(input.ends_with(b"\n") || input.is_empty());
        assert_eq!(
            out.records_read() + out.skipped,
            lines,
            "{name}: every line must be a record, a rejection or skipped"
        );
        for r in &out.records {
            assert!(!r.raw.contains('\n'));
        }
    }
    let snap = Snapshot {
        format: format.id(),
        records: out
            .records
            .iter()
            .map(|r| RecordView {
                offset: r.offset,
                line: r.line,
                raw_bytes: r.raw.len(),
                normalized: &r.normalized,
            })
            .collect(),
        rejections: out
            .rejections
            .iter()
            .map(|r| RejectionView {
                offset: r.offset,
                line: r.line,
                reason: r.reason.clone(),
                raw: String::from_utf8_lossy(&r.raw).into_owned(),
            })
            .collect(),
        skipped: out.skipped,
    };
    insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!(name, snap);
    });
    out
}

/// (fixture path, format, detected format, (records, rejections, skipped))
type Case = (&'static str, Format, Option<Format>, (usize, usize, u64));

const FIXTURES: &[Case] = &[
    (
        "cloudtrail/cloudtrail_log.json",
        Format::Cloudtrail,
        Some(Format::Cloudtrail),
        (7, 0, 0),
    ),
    (
        "cloudtrail/cloudtrail_log_empty.json",
        Format::Cloudtrail,
        Some(Format::Cloudtrail),
        (0, 0, 0),
    ),
    (
        "cloudtrail/cloudtrail_digest.json",
        Format::CloudtrailDigest,
        Some(Format::CloudtrailDigest),
        (0, 0, 1),
    ),
    (
        "cloudtrail/cloudtrail_digest_empty.json",
        Format::CloudtrailDigest,
        Some(Format::CloudtrailDigest),
        (0, 0, 1),
    ),
    (
        "cloudtrail/cloudtrail_log_cw.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (1, 0, 0),
    ),
    (
        "cloudtrail/cloudtrail_log_cw_reordered.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (1, 0, 0),
    ),
    (
        "cloudwatch-subscription/valid_cloudwatch_log.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (3, 0, 0),
    ),
    (
        "cloudwatch-subscription/valid_cloudwatch_log_control.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (0, 0, 1),
    ),
    (
        "cloudwatch-subscription/invalid_cloudwatch_log.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (0, 1, 0),
    ),
    (
        "cloudwatch-subscription/multiple_json_objects.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (2, 0, 0),
    ),
    (
        "cloudwatch-subscription/extracted_fields_account_id.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (1, 0, 0),
    ),
    (
        "cloudwatch-subscription/extracted_fields_both.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (1, 0, 0),
    ),
    (
        "cloudwatch-subscription/two_records_different_extracted_fields.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (2, 0, 0),
    ),
    (
        "cloudwatch-subscription/two_records_same_extracted_fields.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (2, 0, 0),
    ),
    (
        "cloudwatch-subscription/stream/subscription_filter.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (3, 0, 0),
    ),
    (
        "elb/alb_al_valid_logs.log",
        Format::Alb,
        Some(Format::Alb),
        (2, 0, 0),
    ),
    (
        "elb/alb_al_invalid_syntax.log",
        Format::Alb,
        None,
        (0, 1, 0),
    ),
    (
        "elb/alb_al_insufficient_fields.log",
        Format::Alb,
        Some(Format::Alb),
        (0, 1, 0),
    ),
    (
        "elb/clb_al_valid_logs.log",
        Format::ElbClassic,
        Some(Format::ElbClassic),
        (2, 0, 0),
    ),
    (
        "elb/clb_al_insufficient_fields.log",
        Format::ElbClassic,
        None,
        (0, 1, 0),
    ),
    (
        "elb/nlb_al_valid_logs.log",
        Format::Nlb,
        Some(Format::Nlb),
        (2, 0, 0),
    ),
    (
        "elb/nlb_al_insufficient_fields.log",
        Format::Nlb,
        Some(Format::Nlb),
        (0, 1, 0),
    ),
    (
        "elb/elb_control.log",
        Format::Alb,
        Some(Format::Alb),
        (0, 0, 1),
    ),
    (
        "elb/elb_empty_line.log",
        Format::Alb,
        Some(Format::Alb),
        (2, 0, 1),
    ),
    ("elb/elb_invalid_syntax.log", Format::Alb, None, (0, 1, 0)),
    (
        "s3-access/valid_s3_access_log.log",
        Format::S3Access,
        Some(Format::S3Access),
        (1, 0, 0),
    ),
    (
        "s3-access/too_few_values.log",
        Format::S3Access,
        Some(Format::S3Access),
        (0, 1, 0),
    ),
    (
        "s3-access/too_many_values.log",
        Format::S3Access,
        Some(Format::S3Access),
        (1, 0, 0),
    ),
    (
        "s3-access/unknown_request_uri.log",
        Format::S3Access,
        Some(Format::S3Access),
        (1, 0, 0),
    ),
    (
        "s3-access/stream/valid_log_multi.log",
        Format::S3Access,
        Some(Format::S3Access),
        (3, 0, 0),
    ),
    (
        "vpc-flow/valid_vpc_flow_log.log",
        Format::VpcFlow,
        Some(Format::VpcFlow),
        (1, 0, 1),
    ),
    (
        "vpc-flow/valid_vpc_flow_log_multi.log",
        Format::VpcFlow,
        Some(Format::VpcFlow),
        (2, 0, 1),
    ),
    (
        "vpc-flow/valid_vpc_flow_log_ecs.log",
        Format::VpcFlow,
        Some(Format::VpcFlow),
        (1, 0, 1),
    ),
    (
        "vpc-flow/valid_tgw_flow_log.log",
        Format::VpcFlow,
        Some(Format::VpcFlow),
        (1, 0, 1),
    ),
    (
        "vpc-flow/vpc_flow_log_too_few_fields.log",
        Format::VpcFlow,
        Some(Format::VpcFlow),
        (0, 1, 1),
    ),
    (
        "vpc-flow/vpc_flow_log_too_many_fields.log",
        Format::VpcFlow,
        Some(Format::VpcFlow),
        (0, 1, 1),
    ),
    (
        "vpc-flow/valid_tgw_flow_cw.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (1, 0, 0),
    ),
    (
        "vpc-flow/valid_vpc_flow_cw.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (2, 0, 0),
    ),
    (
        "vpc-flow/valid_vpc_flow_cw_custom.json",
        Format::CloudwatchSubscription,
        Some(Format::CloudwatchSubscription),
        (2, 0, 0),
    ),
    (
        "waf/valid_log.json",
        Format::Waf,
        Some(Format::Waf),
        (1, 0, 0),
    ),
    (
        "waf/valid_log_multi.json",
        Format::Waf,
        Some(Format::Waf),
        (2, 0, 0),
    ),
    (
        "waf/missing_webaclid_log.json",
        Format::Waf,
        None,
        (0, 1, 0),
    ),
    (
        "network-firewall/alert_log.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (1, 0, 0),
    ),
    (
        "network-firewall/alert_with_metadata_log.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (1, 0, 0),
    ),
    (
        "network-firewall/flow_log.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (1, 0, 0),
    ),
    (
        "network-firewall/http_log.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (1, 0, 0),
    ),
    (
        "network-firewall/tls_log.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (1, 0, 0),
    ),
    (
        "network-firewall/tls_with_revocation_log.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (1, 0, 0),
    ),
    (
        "network-firewall/missing_firewall_name.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (0, 1, 0),
    ),
    (
        "network-firewall/stream/alert_log_multi.json",
        Format::NetworkFirewall,
        Some(Format::NetworkFirewall),
        (2, 0, 0),
    ),
    (
        "cloudfront/E2EXAMPLE1ABCD.2024-03-11-14.a1b2c3d4",
        Format::Cloudfront,
        Some(Format::Cloudfront),
        (6, 0, 2),
    ),
];

fn snapshot_name(prefix: &str, rel: &str) -> String {
    format!("{prefix}__{}", rel.replace(['/', '.'], "_"))
}

#[test]
fn shared_fixtures() {
    for (rel, format, detected, expected) in FIXTURES {
        let path = fixtures().join(rel);
        check(&snapshot_name("fixture", rel), &path, *format, *expected);
        let input = std::fs::read(&path).unwrap();
        assert_eq!(detect(rel, &input), *detected, "detect {rel}");
    }
}

#[test]
fn cloudtrail_digest_parsed_as_a_log_is_skipped() {
    for rel in [
        "cloudtrail/cloudtrail_digest.json",
        "cloudtrail/cloudtrail_digest_empty.json",
    ] {
        let input = std::fs::read(fixtures().join(rel)).unwrap();
        let out = parse(Format::Cloudtrail, &input);
        assert_eq!(
            (out.records.len(), out.rejections.len(), out.skipped),
            (0, 0, 1),
            "{rel}"
        );
    }
}

#[test]
fn cloudtrail_fixture_normalization() {
    let input = std::fs::read(fixtures().join("cloudtrail/cloudtrail_log.json")).unwrap();
    let out = parse(Format::Cloudtrail, &input);
    let n: Vec<&Normalized> = out.records.iter().map(|r| &*r.normalized).collect();
    use trailvault_model::{Activity, Outcome};
    assert_eq!(n[0].activity, Some(Activity::Create));
    assert_eq!(n[0].actor_user_name.as_deref(), Some("Mateo"));
    assert_eq!(n[0].actor_mfa, Some(false));
    assert_eq!(n[2].actor_type.as_deref(), Some("AssumedRole"));
    assert!(!n[2].resources.is_empty());
    assert!(
        n[3].action.is_some(),
        "insight takes insightDetails.eventName"
    );
    assert_eq!(n[4].outcome, Some(Outcome::Failure));
    assert_eq!(n[4].error_code.as_deref(), Some("TrailNotFoundException"));
    assert_eq!(n[5].actor_mfa, Some(true));
    assert_eq!(
        n[5].actor_access_key_id, None,
        "empty accessKeyId is absent"
    );
    assert_eq!(n[6].src_ip, None, "AWS Internal is not an address");
    assert_eq!(n[6].actor_invoked_by.as_deref(), Some("AWS Internal"));
}

/// Every file in `tests/data/<format>/` for the formats of this suite. The expected counts
/// are in the file name's suffix convention: `*.bad.*` files must produce rejections, others
/// none; exact counts are pinned by the snapshots.
#[test]
fn own_samples() {
    let formats = [
        Format::Cloudtrail,
        Format::S3Access,
        Format::ElbClassic,
        Format::Alb,
        Format::Nlb,
        Format::Cloudfront,
        Format::VpcFlow,
        Format::Waf,
        Format::NetworkFirewall,
        Format::CloudwatchSubscription,
        Format::JsonLines,
        Format::Plain,
    ];
    let mut seen = 0;
    for format in formats {
        let dir = data().join(format.id());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("missing sample directory {}", dir.display());
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let input = std::fs::read(&path).unwrap();
            let out = parse(format, &input);
            let bad = file.contains(".bad.");
            assert_eq!(
                !out.rejections.is_empty(),
                bad,
                "{}: {:#?}",
                path.display(),
                out.rejections
            );
            assert!(
                !out.records.is_empty() || bad,
                "{}: no records",
                path.display()
            );
            let expected = (out.records.len(), out.rejections.len(), out.skipped);
            check(&snapshot_name(format.id(), &file), &path, format, expected);
            seen += 1;
        }
    }
    assert!(seen >= formats.len());
}
