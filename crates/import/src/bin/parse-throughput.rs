//! Parse + normalize throughput per format, single-threaded (so the figure is per core):
//! `parse-throughput [FIXTURES_DIR] [--samples DIR] [--mb 50]`. CloudTrail is generated; the
//! other formats repeat a valid sample, from the shared fixtures where they have one, else from
//! the formats crate's own test samples, until about `--mb` megabytes were parsed. The median
//! of 5 runs is printed as MB/s. Runs with the allocator `trailvault` itself uses.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use trailvault_formats::{parse, Format};
use trailvault_import::generate::{cloudtrail_file, Rng};

// The allocator `trailvault` runs with: a parser's allocations are part of its cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// The shared fixtures directory (samples of the other formats).
    fixtures: Option<PathBuf>,
    /// The formats crate's test samples, for the formats the shared fixtures lack.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../formats/tests/data"))]
    samples: PathBuf,
    /// Megabytes parsed per run.
    #[arg(long, default_value_t = 50)]
    mb: u64,
}

/// Which lines of a sample are kept once, at the start, instead of being repeated.
#[derive(Clone, Copy)]
enum Head {
    None,
    /// Lines that start with `#` or name flow log fields (W3C and flow log headers).
    Marked,
    /// The first line (a CSV header).
    FirstLine,
}

/// Repeats the valid sample's records until the input is about `target` bytes.
fn inflate(sample: &[u8], target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + sample.len());
    while out.len() < target {
        out.extend_from_slice(sample);
        if !sample.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

fn measure(format: Format, input: &[u8]) -> (f64, u64) {
    let mut rates = Vec::new();
    let mut records = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let out = parse(format, input);
        let secs = t.elapsed().as_secs_f64();
        records = out.records.len() as u64;
        if let Some(r) = out.rejections.first() {
            panic!(
                "{format}: the benchmark input must be valid; byte {}: {}",
                r.offset, r.reason
            );
        }
        rates.push(input.len() as f64 / 1e6 / secs);
    }
    rates.sort_by(f64::total_cmp);
    (rates[2], records)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let target = (a.mb * 1_000_000) as usize;
    let mut inputs: Vec<(Format, String, Vec<u8>)> = Vec::new();
    // CloudTrail: one big synthetic file (a file is one JSON document, so no repetition).
    let mut rng = Rng::new(1);
    let mut ct = cloudtrail_file(
        &mut rng,
        "111122223333",
        "us-east-1",
        1_704_067_200_000,
        1000,
    );
    while ct.len() < target {
        let more = cloudtrail_file(
            &mut rng,
            "111122223333",
            "us-east-1",
            1_704_067_200_000,
            1000,
        );
        ct.truncate(ct.len() - 2);
        ct.push(',');
        ct.push_str(&more[12..]);
    }
    inputs.push((Format::Cloudtrail, "synthetic".into(), ct.into_bytes()));
    // Line formats: a valid sample repeated (headers kept once where the format needs one).
    let fixtures: &[(Format, &str, Head)] = &[
        (
            Format::S3Access,
            "s3-access/stream/valid_log_multi.log",
            Head::None,
        ),
        (Format::Alb, "elb/alb_al_valid_logs.log", Head::None),
        (Format::ElbClassic, "elb/clb_al_valid_logs.log", Head::None),
        (Format::Nlb, "elb/nlb_al_valid_logs.log", Head::None),
        (
            Format::VpcFlow,
            "vpc-flow/valid_vpc_flow_log_multi.log",
            Head::Marked,
        ),
        (
            Format::Cloudfront,
            "cloudfront/E2EXAMPLE1ABCD.2024-03-11-14.a1b2c3d4",
            Head::Marked,
        ),
        (Format::Waf, "waf/valid_log_multi.json", Head::None),
        (
            Format::NetworkFirewall,
            "network-firewall/stream/alert_log_multi.json",
            Head::None,
        ),
        (
            Format::RedshiftConnection,
            "redshift/connectionlog.log",
            Head::None,
        ),
        (Format::RedshiftUser, "redshift/userlog.log", Head::None),
        (
            Format::RedshiftActivity,
            "redshift/useractivitylog.log",
            Head::None,
        ),
    ];
    let own: &[(Format, &str, Head)] = &[
        (
            Format::ApacheCombined,
            "apache-combined/access.log",
            Head::None,
        ),
        (Format::Iis, "iis/u_ex240311.log", Head::None),
        (Format::Syslog, "syslog/rfc3164.log", Head::None),
        (Format::Syslog, "syslog/rfc5424.log", Head::None),
        (
            Format::WindowsEvent,
            "windows-event/winlogbeat.ndjson",
            Head::None,
        ),
        (
            Format::RdsMysqlAudit,
            "rds-mysql-audit/mariadb.log",
            Head::None,
        ),
        (
            Format::RdsMysqlAudit,
            "rds-mysql-audit/aurora.log",
            Head::None,
        ),
        (
            Format::RdsPostgresAudit,
            "rds-postgres-audit/pgaudit.log",
            Head::None,
        ),
        (Format::Cur, "cur/cur2.csv", Head::FirstLine),
        (Format::JsonLines, "json-lines/mixed.jsonl", Head::None),
        (Format::Plain, "plain/lines.txt", Head::None),
    ];
    let sources = a
        .fixtures
        .iter()
        .flat_map(|dir| fixtures.iter().map(move |s| (dir, s)))
        .chain(own.iter().map(|s| (&a.samples, s)));
    for (dir, (format, rel, head)) in sources {
        let path = dir.join(rel);
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipping {}: not found", path.display());
            continue;
        };
        let input = match head {
            Head::None => inflate(&bytes, target),
            Head::Marked | Head::FirstLine => {
                // Keep the header lines once, repeat the records.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let (head_lines, body): (Vec<&str>, Vec<&str>) = match head {
                    Head::FirstLine => {
                        let mut lines = text.lines();
                        (lines.next().into_iter().collect(), lines.collect())
                    }
                    _ => text.lines().partition(|l| {
                        l.starts_with('#')
                            || l.starts_with("version ")
                            || l.starts_with("account-id")
                    }),
                };
                let mut out = head_lines.join("\n").into_bytes();
                out.push(b'\n');
                out.extend(inflate(body.join("\n").as_bytes(), target));
                out
            }
        };
        inputs.push((*format, rel.to_string(), input));
    }
    println!("| format | sample | input MB | records | MB/s per core (median of 5) |");
    println!("|---|---|---:|---:|---:|");
    for (format, sample, input) in &inputs {
        let (rate, records) = measure(*format, input);
        println!(
            "| {format} | {sample} | {:.1} | {records} | {rate:.1} |",
            input.len() as f64 / 1e6
        );
    }
    Ok(())
}
