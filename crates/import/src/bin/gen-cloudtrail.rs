//! Writes a synthetic CloudTrail tree (gzip'd files in the AWSLogs layout), reproducible by seed:
//! `gen-cloudtrail DIR --mb 1024 --seed 1`.

use std::path::PathBuf;

use clap::Parser;
use trailvault_import::generate::write_cloudtrail_tree;

#[derive(Parser)]
struct Args {
    /// Directory to write AWSLogs/... under.
    dir: PathBuf,
    /// Megabytes (10^6) of CloudTrail JSON to write, before compression.
    #[arg(long, default_value_t = 100)]
    mb: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    records_per_file: usize,
    /// Comma-separated account ids.
    #[arg(long, default_value = "111122223333,444455556666")]
    accounts: String,
    #[arg(long, default_value = "us-east-1,eu-west-1")]
    regions: String,
    /// Time of the first record, epoch ms (default 2024-01-01T00:00:00Z).
    #[arg(long, default_value_t = 1_704_067_200_000)]
    start_ms: i64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let accounts: Vec<&str> = a.accounts.split(',').collect();
    let regions: Vec<&str> = a.regions.split(',').collect();
    let stats = write_cloudtrail_tree(
        &a.dir,
        a.seed,
        a.mb * 1_000_000,
        &accounts,
        &regions,
        a.records_per_file,
        a.start_ms,
    )?;
    println!(
        "{} files, {} records, {} JSON bytes, {} gzip bytes",
        stats.files, stats.records, stats.raw_bytes, stats.gzip_bytes
    );
    Ok(())
}
