//! `trailvault-bench`: hot paths measured side by side, in one run, with the machine's limit.
//!
//! `ingest`: PutLogEvents over loopback HTTP (1 and 2 client connections) and the embedded
//! write path (1 and 2 writers), against writing the same bytes to a plain file with the same
//! fsync cadence (one `fdatasync` per batch). Batches of 1,000 events of about 1 KB. Each
//! figure is the median of `--runs` runs; ratios are against the plain-file median.
//!
//! `alarm-latency`: PutLogEvents acknowledgement → webhook delivery (alarm notifications and
//! subscription envelopes) under a sustained ingest rate, next to a plain POST to the same
//! receiver. See `alarm_latency.rs`.

mod alarm_latency;
mod ingest;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "trailvault-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest throughput: HTTP and embedded paths against plain file + fsync.
    Ingest(ingest::IngestArgs),
    /// Latency from PutLogEvents acknowledgement to webhook delivery under sustained load.
    AlarmLatency(alarm_latency::AlarmLatencyArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Ingest(args) => rt.block_on(ingest::run(args)),
        Command::AlarmLatency(args) => rt.block_on(alarm_latency::run(args)),
    }
}
