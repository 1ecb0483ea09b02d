//! The CLI commands that talk to a vault: `groups`, `put`, `get`, `tail`. Each is an `Args`
//! struct (clap) and a `run_*` function, so the `trailvault` binary only mounts them.
//!
//! Records go to stdout (`--output table` for people, `--output json` for one JSON object per
//! line, with the API's field names); diagnostics and summaries of `put` go to stderr. A
//! closed stdout (`trailvault get … | head`) ends the command quietly.

use std::collections::HashSet;
use std::future::Future;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgAction, Args, ValueEnum};
use serde::Serialize;
use trailvault_auth::Credentials;

use crate::batch::{read_line, BatchError, Batcher, Line, PendingEvent, MESSAGE_BYTES_MAX};
use crate::client::{
    ClientError, FilterLogEventsRequest, FilteredLogEvent, GetLogEventsRequest, InputLogEvent,
    LogGroup, LogsClient, OutputLogEvent, RejectedLogEventsInfo,
};
use crate::time_arg::{format_ms, now_ms, parse_duration, parse_time};

/// The local default vault's address (`trailvault serve` listens there).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4740";
/// Region signed for when neither `--region` nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Most events asked for in one GetLogEvents / FilterLogEvents call.
const PAGE_EVENTS_MAX: u32 = 10_000;
/// `get --tail` without `--limit` shows this many events.
const TAIL_EVENTS_DEFAULT: usize = 100;
/// Lines in flight between the reading thread and the sender (each ≤ 256 KB).
const READ_QUEUE_LINES: usize = 256;
/// Rejected lines reported one by one; beyond this they are only counted.
const REJECTIONS_SHOWN_MAX: u64 = 100;

/// Where the vault is and who we are. Shared by every command that talks to a vault.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Vault endpoint URL.
    #[arg(long, env = "TRAILVAULT_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Profile in the AWS credentials/config files (default: AWS_PROFILE, else `default`).
    #[arg(long)]
    pub profile: Option<String>,
    /// Region to sign for (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
}

impl ConnectArgs {
    /// The region: `--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else us-east-1.
    pub fn resolved_region(&self) -> String {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        self.region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string())
    }

    /// A client with credentials found the way AWS tools find them.
    pub fn connect(&self) -> anyhow::Result<LogsClient> {
        let creds = Credentials::discover(self.profile.as_deref())
            .context("could not find credentials to sign requests with")?;
        Ok(LogsClient::new(
            &self.endpoint,
            creds,
            &self.resolved_region(),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON object per line, with the API's field names.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Only groups whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Log group name.
    pub group: String,
    /// Log stream name.
    pub stream: String,
    /// File to read lines from (default, or `-`: stdin).
    pub file: Option<PathBuf>,
    /// Create the stream (and its group) when missing: `--create=false` to refuse instead.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub create: bool,
    /// Send a partly filled batch after it waited this long (e.g. 500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Log group name.
    pub group: String,
    /// Log stream name.
    pub stream: String,
    /// Events at or after this time (epoch ms, RFC 3339, or ago: 10m, 2h, 1d).
    #[arg(long, value_parser = parse_time)]
    pub start: Option<i64>,
    /// Events before this time.
    #[arg(long, value_parser = parse_time)]
    pub end: Option<i64>,
    /// Most events to show (default: all with --head, 100 with --tail).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Oldest events first (the default).
    #[arg(long, conflicts_with = "tail")]
    pub head: bool,
    /// The newest events (still printed oldest first).
    #[arg(long)]
    pub tail: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Log group name.
    pub group: String,
    /// Keep polling for new events until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Start this long ago, or at this time (epoch ms, RFC 3339).
    #[arg(long, default_value = "10m", value_parser = parse_time)]
    pub since: i64,
    /// Filter pattern (CloudWatch syntax).
    #[arg(long)]
    pub filter: Option<String>,
    /// Only streams whose name starts with this.
    #[arg(long)]
    pub stream: Option<String>,
    /// Wait between polls when following.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// A closed stdout is the reader saying "enough", not a failure.
fn quiet_on_broken_pipe(r: anyhow::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

// ---------------------------------------------------------------------------------- groups

pub async fn run_groups(args: GroupsArgs) -> anyhow::Result<()> {
    let client = args.connect.connect()?;
    let mut out = io::BufWriter::new(io::stdout());
    quiet_on_broken_pipe(list_groups(&client, args.prefix.as_deref(), args.output, &mut out).await)
}

/// Every log group (all pages), printed.
pub async fn list_groups(
    client: &LogsClient,
    prefix: Option<&str>,
    output: OutputFormat,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let groups = client
        .describe_all_log_groups(prefix)
        .await
        .with_context(|| format!("DescribeLogGroups on {}", client.endpoint()))?;
    match output {
        OutputFormat::Json => {
            for g in &groups {
                write_json(out, g)?;
            }
        }
        OutputFormat::Table => write_groups_table(&groups, out)?,
    }
    out.flush()?;
    Ok(())
}

fn write_groups_table(groups: &[LogGroup], out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<[String; 4]> = groups
        .iter()
        .map(|g| {
            [
                g.log_group_name.clone(),
                g.creation_time.map(format_ms).unwrap_or_default(),
                g.retention_in_days
                    .map(|d| format!("{d} days"))
                    .unwrap_or_else(|| "never expire".into()),
                g.stored_bytes.map(|b| b.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "CREATED", "RETENTION", "STORED BYTES"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4], out: &mut dyn Write| {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    line(header, out)?;
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]], out)?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------- put

/// What `put` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutSummary {
    /// Events the vault stored.
    pub events: u64,
    pub batches: u64,
    /// Lines not stored, each reported with its line number.
    pub rejected: u64,
    /// Empty lines (CloudWatch requires a message of at least one character).
    pub skipped_empty: u64,
}

/// What the reading thread hands over.
enum Read {
    Line {
        line_number: u64,
        line: Line,
        timestamp_ms: i64,
    },
    Failed(io::Error),
}

pub async fn run_put(args: PutArgs) -> anyhow::Result<()> {
    let client = args.connect.connect()?;
    let (reader, size_bytes): (Box<dyn BufRead + Send>, Option<u64>) = match &args.file {
        Some(p) if p.as_os_str() != "-" => {
            let f = std::fs::File::open(p)
                .with_context(|| format!("could not open {}", p.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(io::BufReader::with_capacity(1 << 20, f)), len)
        }
        _ => {
            if io::stdin().is_terminal() {
                eprintln!("reading lines from the terminal; end with Ctrl-D");
            }
            (Box::new(io::BufReader::new(io::stdin())), None)
        }
    };
    let progress = match size_bytes {
        Some(len) if io::stderr().is_terminal() => {
            let pb = indicatif::ProgressBar::new(len);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(pb)
        }
        _ => None,
    };
    let opts = PutOptions {
        group: args.group.clone(),
        stream: args.stream.clone(),
        create: args.create,
        flush_interval: args.flush_interval,
    };
    let mut err = io::stderr();
    let result = put_lines(&client, &opts, reader, progress.clone(), &mut err).await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let summary = result?;
    match args.output {
        OutputFormat::Json => write_json(&mut io::stdout().lock(), &summary)?,
        OutputFormat::Table => println!(
            "{} events in {} batches to {}/{}{}{}",
            summary.events,
            summary.batches,
            args.group,
            args.stream,
            if summary.rejected > 0 {
                format!("; {} lines rejected", summary.rejected)
            } else {
                String::new()
            },
            if summary.skipped_empty > 0 {
                format!("; {} empty lines skipped", summary.skipped_empty)
            } else {
                String::new()
            }
        ),
    }
    if summary.rejected > 0 {
        bail!(
            "{} lines were not stored (reported above)",
            summary.rejected
        );
    }
    Ok(())
}

/// Parameters of [`put_lines`].
#[derive(Debug, Clone)]
pub struct PutOptions {
    pub group: String,
    pub stream: String,
    pub create: bool,
    pub flush_interval: Duration,
}

/// Create the stream (and the group) if missing.
async fn ensure_stream(
    client: &LogsClient,
    group: &str,
    stream: &str,
    diag: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let exists = |e: &ClientError| e.code() == Some("ResourceAlreadyExistsException");
    match client.create_log_stream(group, stream).await {
        Ok(()) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            match client.create_log_group(group).await {
                Ok(()) => writeln!(diag, "created log group {group}")?,
                Err(e) if exists(&e) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("could not create log group {group}"))
                }
            }
            match client.create_log_stream(group, stream).await {
                Ok(()) => Ok(()),
                Err(e) if exists(&e) => Ok(()),
                Err(e) => {
                    Err(e).with_context(|| format!("could not create log stream {group}/{stream}"))
                }
            }
        }
        Err(e) => Err(e).with_context(|| format!("could not create log stream {group}/{stream}")),
    }
}

/// Tracks rejected lines and reports them on `diag`.
struct Rejections<'a> {
    count: u64,
    diag: &'a mut (dyn Write + Send),
}

impl Rejections<'_> {
    fn reject(&mut self, line_number: u64, reason: &str) -> io::Result<()> {
        self.count += 1;
        if self.count <= REJECTIONS_SHOWN_MAX {
            writeln!(self.diag, "line {line_number}: not stored: {reason}")?;
        } else if self.count == REJECTIONS_SHOWN_MAX + 1 {
            writeln!(
                self.diag,
                "more lines not stored; only their count is reported from here on"
            )?;
        }
        Ok(())
    }
}

/// Send every line of `reader` to the stream, batched within the API's limits. Rejected lines
/// are reported on `diag` and counted; the call fails only when the vault cannot be reached
/// or refuses a batch for a reason other than its content.
pub async fn put_lines(
    client: &LogsClient,
    opts: &PutOptions,
    reader: Box<dyn BufRead + Send>,
    progress: Option<indicatif::ProgressBar>,
    diag: &mut (dyn Write + Send),
) -> anyhow::Result<PutSummary> {
    if opts.create {
        ensure_stream(client, &opts.group, &opts.stream, diag).await?;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Read>(READ_QUEUE_LINES);
    // Reading blocks (stdin), so it runs on its own thread; the channel bounds memory.
    let reading = std::thread::spawn(move || read_lines(reader, tx, progress));

    let mut summary = PutSummary::default();
    let mut rejections = Rejections { count: 0, diag };
    let mut batcher = Batcher::default();
    let mut deadline: Option<tokio::time::Instant> = None;
    let result: anyhow::Result<()> = async {
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(item) => item,
                    Err(_) => {
                        deadline = None;
                        if let Some(batch) = batcher.take() {
                            send_batch(client, opts, batch, &mut summary, &mut rejections).await?;
                        }
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(item) = next else { break };
            let (line_number, line, timestamp_ms) = match item {
                Read::Failed(e) => {
                    return Err(anyhow::Error::new(e).context("could not read the input"))
                }
                Read::Line {
                    line_number,
                    line,
                    timestamp_ms,
                } => (line_number, line, timestamp_ms),
            };
            let message = match line {
                Line::Text(s) => s,
                Line::Empty => {
                    summary.skipped_empty += 1;
                    continue;
                }
                Line::TooLong { bytes } => {
                    rejections.reject(
                        line_number,
                        &format!(
                            "{bytes} bytes; the largest event message is {MESSAGE_BYTES_MAX} bytes"
                        ),
                    )?;
                    continue;
                }
                Line::NotUtf8 => {
                    rejections.reject(line_number, "not valid UTF-8")?;
                    continue;
                }
            };
            let event = PendingEvent {
                line_number,
                timestamp_ms,
                message,
            };
            match batcher.push(event) {
                Err(BatchError::EventTooLarge { line_number, bytes }) => {
                    rejections.reject(
                        line_number,
                        &format!("event of {bytes} bytes is over the limit"),
                    )?;
                }
                Ok(full) => {
                    if let Some(batch) = full {
                        send_batch(client, opts, batch, &mut summary, &mut rejections).await?;
                        deadline = None;
                    }
                    if deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + opts.flush_interval);
                    }
                }
            }
        }
        if let Some(batch) = batcher.take() {
            send_batch(client, opts, batch, &mut summary, &mut rejections).await?;
        }
        Ok(())
    }
    .await;
    drop(rx);
    // The thread ends once the channel is closed; a panic there is a bug worth surfacing.
    if reading.join().is_err() {
        bail!("the input reading thread panicked");
    }
    summary.rejected = rejections.count;
    result.with_context(|| {
        format!(
            "stopped after {} events in {} batches were stored",
            summary.events, summary.batches
        )
    })?;
    Ok(summary)
}

fn read_lines(
    mut reader: Box<dyn BufRead + Send>,
    tx: tokio::sync::mpsc::Sender<Read>,
    progress: Option<indicatif::ProgressBar>,
) {
    let mut buf = Vec::new();
    let mut line_number = 0u64;
    let mut last_ms = i64::MIN;
    loop {
        let item = match read_line(&mut reader, MESSAGE_BYTES_MAX, &mut buf) {
            Ok(None) => return,
            Ok(Some((line, consumed))) => {
                line_number += 1;
                if let Some(pb) = &progress {
                    pb.inc(consumed as u64);
                }
                // Never earlier than the previous line: batches must be in time order even
                // if the clock steps back.
                last_ms = last_ms.max(now_ms());
                Read::Line {
                    line_number,
                    line,
                    timestamp_ms: last_ms,
                }
            }
            Err(e) => Read::Failed(e),
        };
        let failed = matches!(item, Read::Failed(_));
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

async fn send_batch(
    client: &LogsClient,
    opts: &PutOptions,
    batch: Vec<PendingEvent>,
    summary: &mut PutSummary,
    rejections: &mut Rejections<'_>,
) -> anyhow::Result<()> {
    let events: Vec<InputLogEvent> = batch
        .iter()
        .map(|e| InputLogEvent {
            timestamp: e.timestamp_ms,
            message: e.message.clone(),
        })
        .collect();
    let first = batch.first().map_or(0, |e| e.line_number);
    let last = batch.last().map_or(0, |e| e.line_number);
    match client
        .put_log_events(&opts.group, &opts.stream, &events)
        .await
    {
        Ok(resp) => {
            summary.batches += 1;
            let skipped = skipped_indices(
                resp.rejected_log_events_info.unwrap_or_default(),
                batch.len(),
            );
            for (i, e) in batch.iter().enumerate() {
                match skipped[i] {
                    Some(reason) => rejections.reject(e.line_number, reason)?,
                    None => summary.events += 1,
                }
            }
            Ok(())
        }
        // The vault judged the batch's content: its lines are reported, the rest goes on.
        Err(e) if e.code() == Some("InvalidParameterException") => {
            let reason = format!("the vault refused the batch of lines {first}-{last}: {e}");
            for ev in &batch {
                rejections.reject(ev.line_number, &reason)?;
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "PutLogEvents of lines {first}-{last} to {}/{} failed",
                opts.group, opts.stream
            )
        }),
    }
}

/// Per event of a batch of `len`, why the vault skipped it (None: stored).
fn skipped_indices(info: RejectedLogEventsInfo, len: usize) -> Vec<Option<&'static str>> {
    let mut out = vec![None; len];
    if let Some(end) = info.expired_log_event_end_index {
        for slot in out.iter_mut().take(end) {
            *slot = Some("older than the log group's retention");
        }
    }
    if let Some(end) = info.too_old_log_event_end_index {
        for slot in out.iter_mut().take(end) {
            *slot = Some("timestamp too old");
        }
    }
    if let Some(start) = info.too_new_log_event_start_index {
        for slot in out.iter_mut().skip(start) {
            *slot = Some("timestamp too far in the future");
        }
    }
    out
}

// ------------------------------------------------------------------------------------- get

pub async fn run_get(args: GetArgs) -> anyhow::Result<()> {
    let client = args.connect.connect()?;
    let mut out = io::BufWriter::new(io::stdout());
    quiet_on_broken_pipe(get_events(&client, &args, &mut out).await.map(drop))
}

fn write_event(e: &OutputLogEvent, output: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
    match output {
        OutputFormat::Json => write_json(out, e),
        OutputFormat::Table => writeln!(out, "{}  {}", format_ms(e.timestamp), e.message),
    }
}

/// GetLogEvents, following tokens until the stream's end (the same token comes back) or the
/// limit. Returns how many events were printed.
pub async fn get_events(
    client: &LogsClient,
    args: &GetArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<usize> {
    let from_head = !args.tail;
    let limit = match (args.limit, from_head) {
        (Some(l), _) => l,
        (None, true) => usize::MAX,
        (None, false) => TAIL_EVENTS_DEFAULT,
    };
    let mut printed = 0usize;
    let mut newest_last: std::collections::VecDeque<OutputLogEvent> = Default::default();
    let mut token: Option<String> = None;
    let mut seen_tokens = HashSet::new();
    while printed < limit && newest_last.len() < limit {
        let remaining = limit - printed.max(newest_last.len());
        let req = GetLogEventsRequest {
            log_group_name: args.group.clone(),
            log_stream_name: args.stream.clone(),
            start_time: args.start,
            end_time: args.end,
            next_token: token.clone(),
            limit: Some(remaining.min(PAGE_EVENTS_MAX as usize) as u32),
            start_from_head: from_head,
        };
        let page = client
            .get_log_events(&req)
            .await
            .with_context(|| format!("GetLogEvents on {}/{}", args.group, args.stream))?;
        if from_head {
            for e in page.events.iter().take(limit - printed) {
                write_event(e, args.output, out)?;
                printed += 1;
            }
        } else {
            // Pages come newest first; each page is in time order.
            for e in page.events.into_iter().rev() {
                if newest_last.len() == limit {
                    break;
                }
                newest_last.push_front(e);
            }
        }
        let next = if from_head {
            page.next_forward_token
        } else {
            page.next_backward_token
        };
        match next {
            Some(t) if Some(&t) != token.as_ref() && seen_tokens.insert(t.clone()) => {
                token = Some(t)
            }
            _ => break,
        }
    }
    for e in &newest_last {
        write_event(e, args.output, out)?;
        printed += 1;
    }
    out.flush()?;
    Ok(printed)
}

// ------------------------------------------------------------------------------------ tail

pub async fn run_tail(args: TailArgs) -> anyhow::Result<()> {
    let client = args.connect.connect()?;
    let mut out = io::BufWriter::new(io::stdout());
    let stop = async {
        // If the handler cannot be installed, Ctrl-C keeps its default (ending the process).
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    quiet_on_broken_pipe(tail_events(&client, &args, &mut out, stop).await)
}

fn write_filtered(
    e: &FilteredLogEvent,
    output: OutputFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    match output {
        OutputFormat::Json => write_json(out, e),
        OutputFormat::Table => writeln!(
            out,
            "{} {} {}",
            format_ms(e.timestamp),
            e.log_stream_name,
            e.message
        ),
    }
}

/// Events of a group since `args.since`, like `aws logs tail`: FilterLogEvents page by page;
/// with `--follow`, poll again from the newest timestamp seen, skipping event ids already
/// printed at that timestamp, until `stop` completes.
pub async fn tail_events(
    client: &LogsClient,
    args: &TailArgs,
    out: &mut (dyn Write + Send),
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut stop = std::pin::pin!(stop);
    let mut start = args.since;
    let mut token: Option<String> = None;
    let mut newest: Option<i64> = None;
    let mut seen_at_newest: HashSet<String> = HashSet::new();
    loop {
        let req = FilterLogEventsRequest {
            log_group_name: args.group.clone(),
            log_stream_name_prefix: args.stream.clone(),
            start_time: Some(start),
            end_time: None,
            filter_pattern: args.filter.clone(),
            next_token: token.clone(),
            limit: None,
        };
        let page = tokio::select! {
            page = client.filter_log_events(&req) => page
                .with_context(|| format!("FilterLogEvents on {}", args.group))?,
            () = &mut stop => return Ok(()),
        };
        for e in &page.events {
            match newest {
                Some(n) if e.timestamp < n => {}
                Some(n) if e.timestamp == n => {
                    if !seen_at_newest.insert(e.event_id.clone()) {
                        continue;
                    }
                }
                _ => {
                    newest = Some(e.timestamp);
                    seen_at_newest.clear();
                    seen_at_newest.insert(e.event_id.clone());
                }
            }
            write_filtered(e, args.output, out)?;
        }
        out.flush()?;
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(t) if Some(&t) == token.as_ref() && !args.follow => {
                bail!("The same next token was received twice")
            }
            Some(t) => {
                token = Some(t);
                continue;
            }
            None => token = None,
        }
        if !args.follow {
            return Ok(());
        }
        if let Some(n) = newest {
            start = n;
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            () = &mut stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_info_maps_to_events() {
        let info = RejectedLogEventsInfo {
            too_new_log_event_start_index: Some(4),
            too_old_log_event_end_index: Some(2),
            expired_log_event_end_index: Some(1),
        };
        let got = skipped_indices(info, 6);
        assert_eq!(got[0], Some("timestamp too old"));
        assert_eq!(got[1], Some("timestamp too old"));
        assert_eq!(got[2], None);
        assert_eq!(got[3], None);
        assert_eq!(got[4], Some("timestamp too far in the future"));
        assert_eq!(got[5], Some("timestamp too far in the future"));
        // Indices beyond the batch are ignored, not a panic.
        let info = RejectedLogEventsInfo {
            too_new_log_event_start_index: Some(99),
            too_old_log_event_end_index: Some(99),
            expired_log_event_end_index: None,
        };
        assert!(skipped_indices(info, 2).iter().all(Option::is_some));
    }

    #[test]
    fn groups_table_is_aligned() {
        let groups = vec![
            LogGroup {
                log_group_name: "audit/prod".into(),
                creation_time: Some(1_795_317_198_000),
                retention_in_days: Some(365),
                stored_bytes: Some(123_456),
                arn: None,
            },
            LogGroup {
                log_group_name: "a".into(),
                creation_time: None,
                retention_in_days: None,
                stored_bytes: Some(0),
                arn: None,
            },
        ];
        let mut out = Vec::new();
        write_groups_table(&groups, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "NAME        CREATED                   RETENTION     STORED BYTES\n\
             audit/prod  2026-11-22T03:13:18.000Z  365 days            123456\n\
             a                                     never expire             0\n"
        );
    }

    #[test]
    fn the_cli_parses() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(subcommand)]
            c: C,
        }
        #[derive(clap::Subcommand)]
        enum C {
            Put(PutArgs),
            Get(GetArgs),
            Tail(TailArgs),
            Groups(GroupsArgs),
        }
        let t = T::try_parse_from([
            "t",
            "put",
            "g",
            "s",
            "--create=false",
            "--region",
            "eu-west-1",
        ])
        .unwrap();
        let C::Put(p) = t.c else { panic!() };
        assert!(!p.create);
        assert_eq!(p.connect.resolved_region(), "eu-west-1");
        let t = T::try_parse_from(["t", "put", "g", "s", "file.log", "--create"]).unwrap();
        let C::Put(p) = t.c else { panic!() };
        assert!(p.create);
        assert_eq!(p.file, Some(PathBuf::from("file.log")));
        assert!(T::try_parse_from(["t", "get", "g", "s", "--head", "--tail"]).is_err());
        let t = T::try_parse_from([
            "t",
            "tail",
            "g",
            "-f",
            "--since",
            "1h",
            "--interval",
            "200ms",
        ])
        .unwrap();
        let C::Tail(a) = t.c else { panic!() };
        assert!(a.follow);
        assert_eq!(a.interval, Duration::from_millis(200));
        assert!((now_ms() - a.since - 3_600_000).abs() < 60_000);
        let t = T::try_parse_from(["t", "groups", "--output", "json"]).unwrap();
        let C::Groups(g) = t.c else { panic!() };
        assert_eq!(g.output, OutputFormat::Json);
        assert!(T::try_parse_from(["t", "get", "g", "s", "--start", "yesterday"]).is_err());
    }
}

/// `trailvault integrity-status`
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Print the vault's last full validation; exit non-zero when it found failures.
pub async fn run_integrity_status(args: StatusArgs) -> anyhow::Result<()> {
    let out = args
        .connect
        .connect()?
        .call("DescribeValidationStatus", serde_json::json!({}))
        .await?;
    if matches!(args.output, OutputFormat::Json) {
        println!("{out}");
    } else if let Some(v) = out.get("lastValidation") {
        println!(
            "last validation: {}  {}",
            format_ms(v["finishedAtMs"].as_i64().unwrap_or(0)),
            if v["valid"].as_bool() == Some(true) {
                "VALID"
            } else {
                "INVALID"
            }
        );
        println!(
            "{}/{} digest files valid, {}/{} segment files valid, {} pending",
            v["digestsValid"],
            v["digestsTotal"],
            v["segmentsValid"],
            v["segmentsTotal"],
            v["segmentsPending"]
        );
        for f in v["failures"].as_array().into_iter().flatten() {
            println!("  {}", f.as_str().unwrap_or(""));
        }
    } else {
        println!("no validation has run yet");
    }
    if out["lastValidation"]["valid"].as_bool() == Some(false) {
        bail!("the last validation found failures");
    }
    Ok(())
}
