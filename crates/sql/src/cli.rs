//! `trailvault sql` and `trailvault lookup`: embedded queries over a data directory.
//!
//! The data directory is opened as a vault when it is free, so the tables hold every event,
//! sealed or not. When another process (a running server) holds the vault's lock, the
//! commands read the catalog and the sealed Parquet segments directly and say on stderr
//! that events not yet sealed are left out.

use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow::array::RecordBatch;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use trailvault_store::{StoreError, Vault, VaultConfig};

use crate::engine::{DataScope, SqlEngine, SqlOptions};
use crate::error::SqlError;
use crate::lookup::{LookupAttribute, LookupEvent};

/// Rows a command prints at most; a query returning more is cut with a note.
pub const OUTPUT_ROWS_MAX: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    /// Data directory of the vault.
    #[arg(long, default_value = "trailvault-data")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Query memory limit in bytes (suffixes K, M, G accepted); spilling operators spill
    /// beyond it, others fail with a clear error.
    #[arg(long, value_parser = parse_bytes, default_value = "1G")]
    pub memory_limit: usize,
    /// The SQL query. Tables: `events` and one per log group, e.g. `"app/web"`.
    pub query: String,
}

#[derive(Debug, Clone, Args)]
pub struct LookupArgs {
    #[arg(long, default_value = "trailvault-data")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource or
    /// AccessKeyId.
    #[arg(long)]
    pub attribute: String,
    #[arg(long)]
    pub value: String,
    /// Start of the time range (RFC 3339 or epoch milliseconds), inclusive.
    #[arg(long, value_parser = parse_time)]
    pub start: Option<i64>,
    /// End of the time range (RFC 3339 or epoch milliseconds), exclusive.
    #[arg(long, value_parser = parse_time)]
    pub end: Option<i64>,
    #[arg(long, default_value_t = 50)]
    pub max_results: usize,
    #[arg(long, value_parser = parse_bytes, default_value = "1G")]
    pub memory_limit: usize,
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s, 1usize),
        Some((i, _)) => {
            let mult = match s[i..].to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                other => return Err(format!("unknown size suffix {other:?} (use K, M or G)")),
            };
            (&s[..i], mult)
        }
    };
    let n: usize = digits.parse().map_err(|_| format!("{s:?} is not a size"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is neither RFC 3339 nor epoch milliseconds: {e}"))
}

/// Open a data directory for queries: as a vault when it is free, else sealed data only.
pub async fn open_engine(data: &Path, memory_limit_bytes: usize) -> anyhow::Result<SqlEngine> {
    if !data.join("catalog.sqlite").is_file() {
        anyhow::bail!(SqlError::NotAVault(data.to_path_buf()));
    }
    let opts = SqlOptions {
        memory_limit_bytes,
        ..SqlOptions::default()
    };
    match Vault::open(VaultConfig::new(data)).await {
        Ok(vault) => Ok(SqlEngine::from_vault(&vault, opts).await?),
        Err(StoreError::Unavailable(why)) => {
            eprintln!(
                "note: {why}; querying sealed segments only (events not yet sealed are not included)"
            );
            Ok(SqlEngine::open_sealed(data, opts)
                .await
                .with_context(|| format!("reading {}", data.display()))?)
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", data.display())),
    }
}

/// `trailvault sql`.
pub async fn run_sql(args: SqlArgs) -> anyhow::Result<()> {
    let engine = open_engine(&args.data, args.memory_limit).await?;
    let mut stream = match engine.query_stream(&args.query).await {
        Ok(s) => s,
        Err(e) => {
            if let Some((line, column)) = e.location() {
                let text = args.query.lines().nth(line as usize - 1).unwrap_or("");
                eprintln!("{text}");
                eprintln!("{}^", " ".repeat((column as usize).saturating_sub(1)));
            }
            return Err(e.into());
        }
    };
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut rows = 0usize;
    let mut cut = false;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| engine.error(e))?;
        if rows + batch.num_rows() > OUTPUT_ROWS_MAX {
            batches.push(batch.slice(0, OUTPUT_ROWS_MAX - rows));
            cut = true;
            break;
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    drop(stream);
    print_batches(&batches, args.output)?;
    if cut {
        eprintln!("note: output cut at {OUTPUT_ROWS_MAX} rows (add a LIMIT)");
    }
    if engine.scope() == DataScope::SealedOnly {
        eprintln!("note: sealed segments only");
    }
    Ok(())
}

/// `trailvault lookup`.
pub async fn run_lookup(args: LookupArgs) -> anyhow::Result<()> {
    let attribute: LookupAttribute = args.attribute.parse()?;
    let engine = open_engine(&args.data, args.memory_limit).await?;
    let found = engine
        .lookup(
            attribute,
            &args.value,
            args.start,
            args.end,
            args.max_results,
        )
        .await?;
    match args.output {
        OutputFormat::Json => {
            for e in &found {
                println!("{}", lookup_json(e));
            }
        }
        OutputFormat::Csv | OutputFormat::Table => {
            let batch = lookup_batch(&found)?;
            print_batches(&[batch], args.output)?;
        }
    }
    Ok(())
}

fn lookup_json(e: &LookupEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "logGroup": e.log_group,
        "logStream": e.log_stream,
        "timestamp": e.timestamp_ms,
        "source": e.source,
        "eventId": e.event_id,
        "eventName": e.event_name,
        "eventSource": e.event_source,
        "username": e.username,
        "accessKeyId": e.access_key_id,
        "readOnly": e.read_only,
        "resources": e.resources.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
        "message": e.message,
    })
}

fn lookup_batch(found: &[LookupEvent]) -> anyhow::Result<RecordBatch> {
    use arrow::array::{ArrayRef, StringArray};
    use std::sync::Arc;
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    let col = |f: &dyn Fn(&LookupEvent) -> Option<String>| -> ArrayRef {
        Arc::new(found.iter().map(f).collect::<StringArray>())
    };
    Ok(RecordBatch::try_from_iter(vec![
        ("time", col(&|e| Some(time(e.timestamp_ms)))),
        ("event_name", col(&|e| e.event_name.clone())),
        ("event_source", col(&|e| e.event_source.clone())),
        ("username", col(&|e| e.username.clone())),
        ("access_key_id", col(&|e| e.access_key_id.clone())),
        ("event_id", col(&|e| e.event_id.clone())),
        ("log_group", col(&|e| Some(e.log_group.clone()))),
    ])?)
}

fn print_batches(batches: &[RecordBatch], format: OutputFormat) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Table => {
            writeln!(
                out,
                "{}",
                arrow::util::pretty::pretty_format_batches(batches)?
            )?;
        }
        OutputFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::Writer::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_parse() {
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("1T").is_err());
        assert_eq!(parse_time("2025-11-01T00:00:00Z"), Ok(1_761_955_200_000));
        assert_eq!(parse_time("1761955200000"), Ok(1_761_955_200_000));
        assert!(parse_time("yesterday").is_err());
    }
}
