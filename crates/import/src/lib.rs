//! `trailvault import`: bulk import of AWS log files from a local tree or an S3 bucket into a
//! vault, either straight into its data directory (embedded) or through its API.
//!
//! Pipeline: list the source ([`source`]) → skip files the ledger marks complete → on a pool of
//! `--jobs` threads, fetch, decompress ([`decode`]), detect and parse ([`prepare`]) each file →
//! write its events and quarantined records in file order and record the file in the ledger
//! ([`sink`]: embedded, sealed straight into segments together with the ledger entries).
//! Placement of records in groups and streams is in [`placement`].
//!
//! Invariants:
//! - Nothing is silently dropped: for every file imported, records read = records stored +
//!   records quarantined (+ records found already stored by an earlier, interrupted run).
//!   Malformed and oversized records go to the `trailvault/quarantine` group with their file,
//!   line, offset, reason and raw bytes; a file that cannot be decompressed (or exceeds the
//!   decompressed-size cap) is quarantined as a whole with its reason.
//! - A file is never guessed: one whose format neither its key nor its first line names is
//!   reported (and makes the exit code non-zero unless `--skip-unknown`).
//! - Idempotent and resumable: one stream per source file, records appended in file order in
//!   atomic pieces, so a stream's event count is the number of the file's leading records
//!   already stored; importing the same tree again stores nothing new.
//! - A file is in the ledger only after its events are durable and committed (embedded: its
//!   segments synced and the catalog transaction that also holds its ledger entry committed).
//! - Memory is bounded per file by `--max-decompressed-bytes`, and the number of files in
//!   flight by `2 × --jobs` being parsed or queued plus [`WRITERS_MAX`] being written, plus,
//!   embedded, the files staged for the next seal and those of the [`sink::SEALS_IN_FLIGHT`]
//!   seals under way (each about the vault's `seal_bytes` of records).

pub mod decode;
pub mod generate;
pub mod placement;
pub mod prepare;
pub mod sink;
pub mod source;
mod summary;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use trailvault_formats::Format;
use trailvault_store::{now_ms, StoreError, Vault, VaultConfig};

use crate::placement::QUARANTINE_GROUP;
use crate::prepare::{prepare, FileWork, PrepareOptions, Prepared};
use crate::sink::{LedgerEntry, Sink, StreamPart};
use crate::source::{S3Options, Source, SourceFile};
pub use crate::summary::Summary;

/// Default cap on one file's decompressed size: 2 GiB.
pub const DECOMPRESSED_BYTES_MAX_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;
/// Default record bytes staged per seal of an embedded import: 64 MiB.
pub const SEAL_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Files written concurrently.
const WRITERS_MAX: usize = 16;

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| e.to_string())
}

/// `trailvault import`: bring existing log files (a local tree or an S3 prefix in AWS's
/// delivery layout) into a vault.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// A local file or directory, or s3://bucket/prefix.
    #[arg(value_name = "PATH | s3://bucket/prefix")]
    pub source: String,
    /// Write straight into this vault data directory (no server may hold it).
    /// Default when --endpoint is not given: ./trailvault-data.
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    pub data: Option<PathBuf>,
    /// Import through a running vault's API instead, e.g. http://127.0.0.1:4740.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Credentials profile for --endpoint (default: environment, then the shared files).
    #[arg(long)]
    pub profile: Option<String>,
    /// Region to sign --endpoint requests for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Parse every file as this format instead of detecting it (e.g. cloudtrail, vpc-flow).
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,
    /// Put every record in this log group instead of the per-source default.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// S3-compatible endpoint for s3:// sources (http allowed for loopback addresses only).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Region of the s3:// bucket (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// AWS profile whose keys read the s3:// source (default: the environment).
    #[arg(long, value_name = "PROFILE")]
    pub s3_profile: Option<String>,
    /// Files parsed in parallel (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// A file whose decompressed size exceeds this many bytes is quarantined, not read.
    #[arg(long, value_name = "BYTES", default_value_t = DECOMPRESSED_BYTES_MAX_DEFAULT)]
    pub max_decompressed_bytes: u64,
    /// Embedded: seal the staged files into segments once their records reach this many
    /// bytes. Bounds the import's memory (a few times this); smaller makes more, smaller
    /// segments.
    #[arg(long, value_name = "BYTES", default_value_t = SEAL_BYTES_DEFAULT)]
    pub seal_bytes: usize,
    /// Do not fail (exit code 1) because some files could not be identified.
    #[arg(long)]
    pub skip_unknown: bool,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Read, decompress, detect and parse everything, write nothing: the summary says what an
    /// import would store and quarantine.
    #[arg(long)]
    pub dry_run: bool,
}

impl ImportArgs {
    /// Arguments for importing `source` into the embedded vault at `data`.
    pub fn embedded(source: impl Into<String>, data: impl Into<PathBuf>) -> ImportArgs {
        ImportArgs {
            source: source.into(),
            data: Some(data.into()),
            endpoint: None,
            profile: None,
            region: "us-east-1".into(),
            format: None,
            group: None,
            s3_endpoint: None,
            s3_region: None,
            s3_profile: None,
            jobs: None,
            max_decompressed_bytes: DECOMPRESSED_BYTES_MAX_DEFAULT,
            seal_bytes: SEAL_BYTES_DEFAULT,
            skip_unknown: false,
            no_progress: true,
            dry_run: false,
        }
    }
}

/// Runs an import and prints its summary; returns the process exit code (0: every file was
/// imported, quarantined, skipped by design or already imported; 1: some files were unknown,
/// unreadable or in conflict). Errors are failures of the destination or the listing.
///
/// Meant for a process that does nothing else (the `import` command): it turns transparent
/// huge pages off for the whole process first, see [`disable_transparent_huge_pages`].
pub async fn run_import(args: ImportArgs) -> anyhow::Result<i32> {
    disable_transparent_huge_pages();
    let summary = import(&args).await?;
    print!("{}", summary.render());
    Ok(summary.exit_code(args.skip_unknown))
}

/// Turns transparent huge pages off for this process (Linux; elsewhere a no-op). An import
/// churns through short-lived buffers of a few MB; with huge pages the kernel zeroes 2 MiB
/// per fault each time the allocator gives one back and takes it again, which was a fifth
/// of an import's CPU time. Best effort: a kernel that refuses only costs that time.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// Runs an import and returns its summary without printing it.
pub async fn import(args: &ImportArgs) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let import_start_ms = now_ms();
    let source = Arc::new(Source::open(
        &args.source,
        &S3Options {
            endpoint: args.s3_endpoint.clone(),
            region: args.s3_region.clone(),
            profile: args.s3_profile.clone(),
        },
    )?);
    let (sink, target) = open_sink(args).await?;
    let sink = Arc::new(sink);
    let mut summary = run_pipeline(args, &source, &sink, target, started, import_start_ms).await?;
    if !args.dry_run {
        sink.finish().await?;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

async fn open_sink(args: &ImportArgs) -> anyhow::Result<(Sink, String)> {
    if let Some(endpoint) = &args.endpoint {
        let creds = trailvault_auth::Credentials::discover(args.profile.as_deref())
            .context("finding credentials for --endpoint")?;
        let client = trailvault_client::LogsClient::new(endpoint, creds, &args.region);
        return Ok((Sink::api(client), endpoint.clone()));
    }
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("./trailvault-data"));
    let mut cfg = VaultConfig::new(&dir);
    cfg.seal_bytes = args.seal_bytes.max(1);
    let vault = match Vault::open(cfg).await {
        Ok(v) => v,
        Err(StoreError::Unavailable(why)) if why.contains("in use") => bail!(
            "{why}: a running vault (trailvault serve) holds it; import through the server with --endpoint URL instead"
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("opening the vault in {}", dir.display()))
        }
    };
    // No sealer task: the import seals its own files (`Sink::write_file`), and nothing else
    // writes to the tail while it holds the vault.
    Ok((Sink::embedded(vault), dir.display().to_string()))
}

/// Shared state of one run.
struct Run {
    sink: Arc<Sink>,
    summary: Mutex<Summary>,
    bar: ProgressBar,
    dry_run: bool,
}

impl Run {
    fn summary(&self) -> std::sync::MutexGuard<'_, Summary> {
        self.summary.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records every file written so far in the ledger.
    async fn flush(&self) -> anyhow::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        self.sink.flush().await
    }

    fn progress(&self, bytes: u64) {
        self.bar.inc(bytes);
        let s = self.summary();
        self.bar.set_message(format!(
            "{} files {} records",
            s.files_done(),
            s.records_read
        ));
    }
}

async fn run_pipeline(
    args: &ImportArgs,
    source: &Arc<Source>,
    sink: &Arc<Sink>,
    target: String,
    started: Instant,
    import_start_ms: i64,
) -> anyhow::Result<Summary> {
    let files = source.list().await?;
    let ledger = sink.load_ledger().await?;
    let mut summary = Summary::new(source.describe(), target);
    summary.dry_run = args.dry_run;
    summary.files_listed = files.len() as u64;
    let mut todo = Vec::new();
    for f in files {
        // Entries of this key in the destination: any group, or the one --group names.
        let entries: Vec<&LedgerEntry> = ledger
            .get(&f.key)
            .into_iter()
            .flatten()
            .filter(|e| args.group.as_ref().is_none_or(|g| *g == e.group))
            .collect();
        if entries.iter().any(|e| e.size == f.size_bytes) {
            summary.files_already_imported += 1;
        } else if let Some(done) = entries.first() {
            summary.conflicts.push((
                f.key.clone(),
                format!(
                    "a {}-byte file was already imported under this key into {}; this one has {} bytes (import it with --group to keep both)",
                    done.size, done.group, f.size_bytes
                ),
            ));
        } else {
            todo.push(f);
        }
    }
    let total_bytes: u64 = todo.iter().map(|f| f.size_bytes).sum();
    let bar = if !args.no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:20}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let run = Arc::new(Run {
        sink: sink.clone(),
        summary: Mutex::new(summary),
        bar,
        dry_run: args.dry_run,
    });

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let opts = PrepareOptions {
        format: args.format,
        group: args.group.clone(),
        decompressed_bytes_max: args.max_decompressed_bytes,
        import_start_ms,
    };
    // Parsed files wait here for the writer; the bound caps how many are held in memory.
    let (tx, rx) = tokio::sync::mpsc::channel::<(SourceFile, Prepared)>(jobs);
    let stop = Arc::new(AtomicBool::new(false));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("import-parse-{i}"))
        .build()
        .context("starting the parsing threads")?;
    let producer = {
        let source = source.clone();
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            pool.install(|| {
                todo.par_iter().for_each(|f| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let p = prepare(&source, f, &opts);
                    if tx.blocking_send((f.clone(), p)).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                });
            });
        })
    };

    let incoming = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (Ok::<_, anyhow::Error>(item), rx))
    });
    // Files are written concurrently (each file's batches in order), so one seal (embedded)
    // or one server group commit (API) takes many files at once.
    let written = incoming
        .try_for_each_concurrent(WRITERS_MAX, |(file, prepared)| {
            let run = run.clone();
            async move { handle(&run, file, prepared).await }
        })
        .await;
    if written.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    // Record what did complete even when the run failed, so the next run skips it.
    let flushed = run.flush().await;
    producer.await.context("the parsing threads failed")?;
    written?;
    flushed?;
    run.bar.finish_and_clear();
    let mut summary = run.summary().clone();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

async fn handle(run: &Run, file: SourceFile, prepared: Prepared) -> anyhow::Result<()> {
    match prepared {
        Prepared::Skippable => run.summary().files_skipped += 1,
        Prepared::Digest { source_bytes } => {
            let mut s = run.summary();
            s.digests += 1;
            s.bytes_read += source_bytes;
        }
        Prepared::Unknown { why } => run.summary().unknown.push((file.key.clone(), why)),
        Prepared::ReadFailed { why } => run.summary().unreadable.push((file.key.clone(), why)),
        Prepared::Work(work) => write_file(run, *work).await?,
    }
    run.progress(file.size_bytes);
    Ok(())
}

/// The part of `events` not yet in `group`/`stream`, with how many were there already.
/// `None` when the stream holds more events than the file has: it belongs to another file.
async fn rest_of(
    run: &Run,
    group: &str,
    stream: &str,
    mut events: Vec<trailvault_store::InputEvent>,
) -> anyhow::Result<Option<StreamPart>> {
    let part = |stored_before, events| StreamPart {
        group: group.to_owned(),
        stream: stream.to_owned(),
        stored_before,
        events,
    };
    if events.is_empty() || run.dry_run {
        return Ok(Some(part(0, events)));
    }
    let sink = &run.sink;
    sink.ensure_group(group).await?;
    let before = sink.open_stream(group, stream).await?;
    if before > events.len() as u64 {
        return Ok(None);
    }
    let rest = events.split_off(before as usize);
    Ok(Some(part(before, rest)))
}

async fn write_file(run: &Run, w: FileWork) -> anyhow::Result<()> {
    let FileWork {
        file,
        format,
        group,
        stream,
        sha256,
        source_bytes,
        decompressed_bytes,
        events,
        quarantine,
        records_read,
        lines_skipped,
        file_quarantined,
    } = w;
    let (n_events, n_quarantine) = (events.len() as u64, quarantine.len() as u64);
    let Some(events) = rest_of(run, &group, &stream, events).await? else {
        run.summary().conflicts.push((
            file.key,
            format!("log stream {stream} in {group} holds more events than this file has records; it was filled from another file"),
        ));
        return Ok(());
    };
    let Some(quarantine) = rest_of(run, QUARANTINE_GROUP, &stream, quarantine).await? else {
        run.summary().conflicts.push((
            file.key,
            format!("log stream {stream} in {QUARANTINE_GROUP} holds more events than this file has quarantined records"),
        ));
        return Ok(());
    };
    {
        let mut s = run.summary();
        s.bytes_read += source_bytes;
        s.bytes_decompressed += decompressed_bytes;
        s.lines_skipped += lines_skipped;
        match &file_quarantined {
            Some(why) => s.quarantined_files.push((file.key.clone(), why.clone())),
            None => {
                *s.files_by_format.entry(format.id()).or_default() += 1;
                s.records_read += records_read;
                s.records_stored += events.events.len() as u64;
                s.records_quarantined += quarantine.events.len() as u64;
                s.records_already_present += events.stored_before + quarantine.stored_before;
            }
        }
    }
    if run.dry_run {
        return Ok(());
    }
    let entry = LedgerEntry {
        key: file.key,
        size: file.size_bytes,
        sha256,
        format: format.id().to_owned(),
        group,
        stream,
        records: n_events,
        quarantined: if file_quarantined.is_some() {
            0
        } else {
            n_quarantine
        },
        file_quarantined,
        imported_ms: now_ms(),
    };
    run.sink.write_file(vec![events, quarantine], entry).await
}

/// Counts of one run per log group, for tests and callers that check an import.
pub async fn group_counts(vault: &Vault) -> anyhow::Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for g in vault.log_groups() {
        let n = vault
            .log_streams(&g.name)?
            .iter()
            .map(|s| s.event_count)
            .sum();
        out.insert(g.name, n);
    }
    Ok(out)
}
