//! records read = records stored + records quarantined, on every shared fixture (the broken
//! ones included), checked against what the vault actually holds.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use trailvault_formats::Format;
use trailvault_import::placement::{stream_for, LEDGER_GROUP, QUARANTINE_GROUP};
use trailvault_import::{import, ImportArgs};
use trailvault_store::{Vault, VaultConfig};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// The format each fixture is in (by path relative to the fixtures directory).
fn format_of(rel: &str) -> Option<Format> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let dir = rel.split('/').next().unwrap_or("");
    Some(match dir {
        "cloudfront" => Format::Cloudfront,
        "cloudtrail" if name.starts_with("cloudtrail_digest") => Format::CloudtrailDigest,
        "cloudtrail" if name.contains("_cw") => Format::CloudwatchSubscription,
        "cloudtrail" => Format::Cloudtrail,
        "cloudwatch-subscription" => Format::CloudwatchSubscription,
        "config" => Format::Config,
        "elb" if name.starts_with("clb_") => Format::ElbClassic,
        "elb" if name.starts_with("nlb_") => Format::Nlb,
        "elb" => Format::Alb,
        "network-firewall" => Format::NetworkFirewall,
        "redshift" if name.starts_with("connectionlog") => Format::RedshiftConnection,
        "redshift" if name.starts_with("useractivitylog") => Format::RedshiftActivity,
        "redshift" if name.starts_with("userlog") => Format::RedshiftUser,
        "s3-access" => Format::S3Access,
        "vpc-flow" if name.ends_with(".json") => Format::CloudwatchSubscription,
        "vpc-flow" => Format::VpcFlow,
        "waf" => Format::Waf,
        _ => return None,
    })
}

fn fixture_files() -> Vec<(String, PathBuf)> {
    let root = fixtures_dir();
    let mut out = Vec::new();
    for e in walkdir_files(&root) {
        let rel = e
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.ends_with(".yaml") || rel.ends_with(".md") || rel.ends_with(".txt") {
            continue;
        }
        out.push((rel, e));
    }
    out.sort();
    out
}

fn walkdir_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn stream_count(vault: &Vault, group: &str, stream: &str) -> u64 {
    vault
        .log_streams(group)
        .map(|ss| {
            ss.into_iter()
                .find(|s| s.name == stream)
                .map_or(0, |s| s.event_count)
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_is_accounted_for_record_by_record() {
    let files = fixture_files();
    assert!(
        files.len() >= 50,
        "fixtures not found at {:?}",
        fixtures_dir()
    );
    let data = tempfile::tempdir().unwrap();

    // One import per format, each over a directory holding that format's fixtures (under
    // their relative paths, so keys and streams stay distinct).
    let mut by_format: BTreeMap<Format, Vec<(String, PathBuf)>> = BTreeMap::new();
    for (rel, path) in &files {
        let f = format_of(rel).unwrap_or_else(|| panic!("no format listed for fixture {rel}"));
        by_format
            .entry(f)
            .or_default()
            .push((rel.clone(), path.clone()));
    }
    let mut total_read = 0;
    for (format, list) in &by_format {
        let dir = tempfile::tempdir().unwrap();
        for (rel, path) in list {
            let to = dir.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(path, to).unwrap();
        }
        let mut a = ImportArgs::embedded(dir.path().to_str().unwrap(), data.path());
        a.format = Some(*format);
        a.jobs = Some(2);
        let s = import(&a).await.unwrap();
        assert_eq!(
            s.records_read,
            s.records_stored + s.records_quarantined,
            "{format}: {}",
            s.render()
        );
        assert!(s.unknown.is_empty() && s.unreadable.is_empty() && s.conflicts.is_empty());
        if *format == Format::CloudtrailDigest {
            assert_eq!(s.digests, list.len() as u64);
            assert_eq!(s.records_read, 0);
            continue;
        }
        assert_eq!(s.files_imported(), list.len() as u64, "{format}");

        // Per file, the vault holds exactly what the parser read.
        let vault = Vault::open(VaultConfig::new(data.path())).await.unwrap();
        let group = format!("import/{}", format.id());
        for (rel, path) in list {
            let out = trailvault_formats::parse(*format, &std::fs::read(path).unwrap());
            let stream = stream_for(rel);
            let stored = stream_count(&vault, &group, &stream).await;
            let quarantined = stream_count(&vault, QUARANTINE_GROUP, &stream).await;
            assert_eq!(
                out.records_read(),
                stored + quarantined,
                "{rel}: read {} but stored {stored} + quarantined {quarantined}",
                out.records_read()
            );
            assert_eq!(quarantined, out.rejections.len() as u64, "{rel}");
            total_read += out.records_read();
        }
    }
    assert!(total_read > 50, "the fixtures hold records: {total_read}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_over_the_whole_fixture_tree_keeps_the_invariant() {
    let data = tempfile::tempdir().unwrap();
    let mut a = ImportArgs::embedded(fixtures_dir().to_str().unwrap(), data.path());
    a.jobs = Some(2);
    // Every file sealed on its own, many seals racing for their turn.
    a.seal_bytes = 1;
    let s = import(&a).await.unwrap();
    assert_eq!(
        s.records_read,
        s.records_stored + s.records_quarantined,
        "{}",
        s.render()
    );
    // Files that are not logs (README, license, expected yaml) are reported, never guessed.
    assert!(
        s.unknown.iter().any(|(k, _)| k == "README.md"),
        "{}",
        s.render()
    );
    assert!(s.digests >= 2, "{}", s.render());
    let counts = common::group_counts(data.path()).await;
    let stored: u64 = counts
        .iter()
        .filter(|(g, _)| !g.starts_with("trailvault/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(stored, s.records_stored);
    assert_eq!(
        counts.get(QUARANTINE_GROUP).copied().unwrap_or(0),
        s.records_quarantined
    );
    // Every file that was stored is in the ledger, once.
    assert_eq!(
        counts.get(LEDGER_GROUP).copied().unwrap_or(0),
        s.files_imported() + s.quarantined_files.len() as u64,
        "{}",
        s.render()
    );
    // And a second run stores nothing.
    let again = import(&a).await.unwrap();
    assert_eq!(
        again.records_stored + again.records_quarantined,
        0,
        "{}",
        again.render()
    );
    assert_eq!(common::group_counts(data.path()).await, counts);
}
