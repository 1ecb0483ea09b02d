//! The `trailvault` binary: every command and flag is defined here, in one place; each
//! subcommand's work lives in the crate that owns it.

mod digests;
mod serve;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

// Seals and imports churn through large buffers; glibc's allocator returns and re-faults them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4740";

#[derive(Parser)]
#[command(
    name = "trailvault",
    version,
    about = "A self-hosted, tamper-evident audit-log vault that speaks the CloudWatch Logs API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the vault server.
    Serve(ServeArgs),
    /// Start a vault in a temporary directory, write and read events through the API, and
    /// keep serving.
    Quickstart(QuickstartArgs),
    /// List log groups.
    Groups(trailvault_client::cli::GroupsArgs),
    /// Send lines from stdin or a file as log events.
    Put(trailvault_client::cli::PutArgs),
    /// Read a log stream's events.
    Get(trailvault_client::cli::GetArgs),
    /// Show a log group's newest events, and follow with -f.
    Tail(trailvault_client::cli::TailArgs),
    /// Run a Logs Insights query over log groups and print the results.
    Query(trailvault_client::query_cli::QueryArgs),
    /// The vault's last full validation of its digest chain.
    IntegrityStatus(trailvault_client::cli::StatusArgs),
    /// Monitoring rule packs (e.g. the CIS AWS Foundations controls): list, show, install.
    Rules(trailvault_client::monitor_cli::RulesArgs),
    /// Alarms: states, history, and action targets (webhooks, commands).
    Alarms(trailvault_client::monitor_cli::AlarmsArgs),
    /// Metric filters' time series: list them, read statistics per period.
    Metrics(trailvault_client::metrics_cli::MetricsArgs),
    /// Everything one principal, access key or address did, across every source, in time order.
    Timeline(trailvault_report::TimelineArgs),
    /// A management report (HTML with charts, or Markdown) over a period.
    Report(trailvault_report::ReportArgs),
    /// Run SQL over a data directory (tables: events, and one per log group).
    #[cfg(feature = "sql")]
    Sql(trailvault_sql::SqlArgs),
    /// Look events up by a LookupEvents attribute (EventName, Username, AccessKeyId, ...).
    #[cfg(feature = "sql")]
    Lookup(trailvault_sql::LookupArgs),
    /// Import AWS log files from a directory tree or an S3 bucket (AWS delivery layouts).
    Import(trailvault_import::ImportArgs),
    /// Validate the digest chain, segments and Merkle roots of a vault or an offline copy.
    Validate(trailvault_integrity::cli::ValidateArgs),
    /// Emit an inclusion proof for an event, or a consistency proof between checkpoints.
    Prove(trailvault_integrity::cli::ProveArgs),
    /// Check a proof produced by `prove`.
    VerifyProof(trailvault_integrity::cli::VerifyProofArgs),
    /// Validate AWS CloudTrail's own digest chains (RSA, AWS public keys given as files).
    ValidateCloudtrail(trailvault_integrity::cli::ValidateCloudTrailArgs),
    /// Export the vault's public signing keys, with their validity windows, for auditors.
    ExportKeys(trailvault_integrity::cli::ExportKeysArgs),
    /// Export the latest signed checkpoint, to keep elsewhere and validate against later.
    ExportCheckpoint(trailvault_integrity::cli::ExportCheckpointArgs),
    /// Render a log group's digest chain in AWS CloudTrail's digest format (RSA-signed), for
    /// `aws cloudtrail validate-logs` and other CloudTrail tooling.
    ExportCloudtrailDigests(trailvault_integrity::cli::ExportCloudTrailArgs),
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Data directory (WAL, catalog, segments, digests, keys).
    #[arg(long, default_value = "trailvault-data", env = "TRAILVAULT_DATA")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN, env = "TRAILVAULT_LISTEN")]
    pub listen: String,
    /// Seal the unsealed tail into a segment once it holds this many bytes.
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    pub seal_bytes: usize,
    /// Seal the unsealed tail once its oldest event has waited this long (e.g. 2s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub seal_age: Duration,
    /// Write a signed digest for every log group this often (e.g. 1h, 5s).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub digest_period: Duration,
    /// Digest signature algorithm: ed25519, or rsa (SHA256withRSA, as CloudTrail signs).
    #[arg(long, default_value = "ed25519")]
    pub signing_algorithm: String,
    /// Validate the whole digest chain in the background this often (the status is served by
    /// DescribeValidationStatus, `trailvault integrity-status` and /metrics).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub validate_every: Duration,
    /// Only accept requests signed for this region (default: any).
    #[arg(long)]
    pub region: Option<String>,
    /// Account id shown in ARNs.
    #[arg(long, default_value = "000000000000")]
    pub account_id: String,
}

#[derive(clap::Args)]
pub struct QuickstartArgs {
    /// Address to listen on (default: a free port on 127.0.0.1).
    #[arg(long)]
    pub listen: Option<String>,
    /// Exit after the round trip instead of serving.
    #[arg(long)]
    pub no_serve: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 2s or 5m: {e}"))
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 1048576, 512KiB or 64MiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB)"
            ))
        }
    };
    Ok(n * mult)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    // Offline tools run their own runtime.
    let code = match cli.command {
        Command::Validate(args) => Some(trailvault_integrity::cli::run_validate_cli(args)?),
        Command::Prove(args) => Some(trailvault_integrity::cli::run_prove_cli(args)?),
        Command::VerifyProof(args) => Some(trailvault_integrity::cli::run_verify_proof_cli(args)?),
        Command::ValidateCloudtrail(args) => Some(
            trailvault_integrity::cli::run_validate_cloudtrail_cli(args)?,
        ),
        Command::ExportKeys(args) => Some(trailvault_integrity::cli::run_export_keys_cli(args)?),
        Command::ExportCheckpoint(args) => {
            Some(trailvault_integrity::cli::run_export_checkpoint_cli(args)?)
        }
        Command::ExportCloudtrailDigests(args) => {
            Some(trailvault_integrity::cli::run_export_cloudtrail_cli(args)?)
        }
        other => {
            run_online(other)?;
            None
        }
    };
    if let Some(code) = code {
        std::process::exit(code);
    }
    Ok(())
}

fn run_online(command: Command) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            Command::Serve(args) => serve::run_serve(args).await,
            Command::Quickstart(args) => serve::run_quickstart(args).await,
            Command::Groups(args) => trailvault_client::cli::run_groups(args).await,
            Command::Put(args) => trailvault_client::cli::run_put(args).await,
            Command::Get(args) => trailvault_client::cli::run_get(args).await,
            Command::Tail(args) => trailvault_client::cli::run_tail(args).await,
            Command::Query(args) => trailvault_client::query_cli::run_query(args).await,
            Command::IntegrityStatus(args) => {
                trailvault_client::cli::run_integrity_status(args).await
            }
            #[cfg(feature = "sql")]
            Command::Sql(args) => trailvault_sql::run_sql(args).await,
            #[cfg(feature = "sql")]
            Command::Lookup(args) => trailvault_sql::run_lookup(args).await,
            Command::Timeline(args) => trailvault_report::run_timeline(args).await,
            Command::Report(args) => trailvault_report::run_report(args).await,
            Command::Import(args) => {
                let code = trailvault_import::run_import(args).await?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Rules(args) => trailvault_client::monitor_cli::run_rules(args).await,
            Command::Alarms(args) => trailvault_client::monitor_cli::run_alarms(args).await,
            Command::Metrics(args) => trailvault_client::metrics_cli::run_metrics(args).await,
            Command::Validate(_)
            | Command::Prove(_)
            | Command::VerifyProof(_)
            | Command::ValidateCloudtrail(_)
            | Command::ExportKeys(_)
            | Command::ExportCheckpoint(_)
            | Command::ExportCloudtrailDigests(_) => {
                unreachable!("offline commands are dispatched before the runtime starts")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
    }
}
