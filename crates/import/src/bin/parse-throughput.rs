//! Parse + normalize throughput per format, single-threaded (so the figure is per core):
//! `parse-throughput [FIXTURES_DIR] [--mb 50]`. Each sample is repeated until about `--mb`
//! megabytes were parsed; the median of 5 runs is printed as MB/s. Runs with the allocator
//! `trailvault` itself uses.

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
    /// Megabytes parsed per run.
    #[arg(long, default_value_t = 50)]
    mb: u64,
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
        assert!(
            out.rejections.is_empty(),
            "{format}: the benchmark input must be valid"
        );
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
    if let Some(dir) = &a.fixtures {
        // Line formats: a valid sample repeated (headers kept only where the format needs one).
        let samples: &[(Format, &str, bool)] = &[
            (
                Format::S3Access,
                "s3-access/stream/valid_log_multi.log",
                false,
            ),
            (Format::Alb, "elb/alb_al_valid_logs.log", false),
            (Format::ElbClassic, "elb/clb_al_valid_logs.log", false),
            (Format::Nlb, "elb/nlb_al_valid_logs.log", false),
            (
                Format::VpcFlow,
                "vpc-flow/valid_vpc_flow_log_multi.log",
                true,
            ),
            (
                Format::Cloudfront,
                "cloudfront/E2EXAMPLE1ABCD.2024-03-11-14.a1b2c3d4",
                true,
            ),
            (Format::Waf, "waf/valid_log_multi.json", false),
            (
                Format::NetworkFirewall,
                "network-firewall/stream/alert_log_multi.json",
                false,
            ),
            (
                Format::RedshiftConnection,
                "redshift/connectionlog.log",
                false,
            ),
            (Format::RedshiftUser, "redshift/userlog.log", false),
            (
                Format::RedshiftActivity,
                "redshift/useractivitylog.log",
                false,
            ),
        ];
        for (format, rel, header) in samples {
            let path = dir.join(rel);
            let Ok(bytes) = std::fs::read(&path) else {
                eprintln!("skipping {}: not found", path.display());
                continue;
            };
            let input = if *header {
                // Keep the header lines once, repeat the records.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let (head, body): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| {
                    l.starts_with('#') || l.starts_with("version ") || l.starts_with("account-id")
                });
                let mut out = head.join("\n").into_bytes();
                out.push(b'\n');
                out.extend(inflate(body.join("\n").as_bytes(), target));
                out
            } else {
                inflate(&bytes, target)
            };
            inputs.push((*format, rel.to_string(), input));
        }
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
