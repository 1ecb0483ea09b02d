//! Write the seeded multi-account dataset into a vault data directory.
//!
//! `gen-dataset --data DIR [--events N] [--seed S] [--days D]`

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use trailvault_sql::dataset::{generate, DatasetSpec, START_MS_DEFAULT};
use trailvault_store::{Vault, VaultConfig};

#[derive(Debug, Parser)]
#[command(about = "Generate a seeded multi-account audit dataset into a vault")]
struct Cli {
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Event time of the first event, epoch milliseconds.
    #[arg(long, default_value_t = START_MS_DEFAULT)]
    start_ms: i64,
    #[arg(long, default_value_t = 250_000)]
    seal_every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let vault = Vault::open(VaultConfig::new(&cli.data)).await?;
    let spec = DatasetSpec {
        events: cli.events,
        seed: cli.seed,
        start_ms: cli.start_ms,
        days: cli.days,
        seal_every_events: cli.seal_every,
        seal_at_end: true,
    };
    let t = Instant::now();
    let s = generate(&vault, &spec).await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} events in {:.1} s ({:.0}/s): {} segments, {:.1} MB stored for {:.1} MB raw",
        s.events,
        secs,
        s.events as f64 / secs,
        s.segments,
        s.segment_bytes as f64 / 1e6,
        s.raw_bytes as f64 / 1e6
    );
    for (g, n) in &s.per_group {
        println!("  {g}: {n}");
    }
    Ok(())
}
