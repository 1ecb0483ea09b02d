//! `trailvault timeline`: everything one principal, access key or source address did, across
//! every source format, in one view ordered by (time, sequence).
//!
//! A principal matches on `actor_arn`, `actor_user_name` or `actor_principal_id`; a key on
//! `actor_access_key_id`; an address on `src_ip`. Matching is exact. At most `limit` entries are
//! kept (the earliest); memory stays bounded by twice that while scanning.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use trailvault_model::{event_id_from_seq, Normalized};

use crate::source::{DataSource, EventRef};
use crate::{fmt_time, parse_time_arg};

/// Most entries a timeline can be asked for.
pub const TIMELINE_ENTRIES_MAX: usize = 1_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TimelineOutput {
    #[default]
    Table,
    Json,
}

/// `trailvault timeline`
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["actor", "access_key", "ip"])))]
pub struct TimelineArgs {
    /// A principal: its ARN, user name or principal id.
    #[arg(long)]
    pub actor: Option<String>,
    /// An access key id (AKIA…, ASIA…).
    #[arg(long, value_name = "KEY")]
    pub access_key: Option<String>,
    /// A source IP address.
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// Start (RFC 3339, YYYY-MM-DD, epoch ms, `now`, or an age like 7d / 12h). Default: the
    /// beginning.
    #[arg(long)]
    pub from: Option<String>,
    /// End, exclusive (same forms). Default: no end.
    #[arg(long)]
    pub to: Option<String>,
    /// Data directory. Read embedded; if a server holds it, its sealed segments are read.
    #[arg(long, default_value = "trailvault-data", env = "TRAILVAULT_DATA")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub output: TimelineOutput,
    /// Keep at most this many entries (the earliest).
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
}

/// Who or what a timeline follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Subject {
    Actor(String),
    AccessKey(String),
    Ip(String),
}

impl Subject {
    pub fn matches(&self, n: &Normalized) -> bool {
        let is = |f: &Option<String>, v: &str| f.as_deref() == Some(v);
        match self {
            Subject::Actor(a) => {
                is(&n.actor_arn, a) || is(&n.actor_user_name, a) || is(&n.actor_principal_id, a)
            }
            Subject::AccessKey(k) => is(&n.actor_access_key_id, k),
            Subject::Ip(ip) => is(&n.src_ip, ip),
        }
    }
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub time: String,
    pub timestamp_ms: i64,
    pub source: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<String>,
    pub error_code: Option<String>,
    pub actor: Option<String>,
    pub src_ip: Option<String>,
    pub group: String,
    pub stream: String,
    /// The source's own event id when it has one, else the vault's event id.
    pub event_id: String,
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub subject: Subject,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub entries: Vec<TimelineEntry>,
    /// More entries matched than `limit`.
    pub truncated: bool,
    /// Completeness caveat (sealed data only), when there is one.
    pub note: Option<String>,
    pub segments_read: usize,
    pub segments_pruned: usize,
}

/// The resource column: the first named resource, else the destination of a flow.
pub fn resource_of(n: &Normalized) -> Option<String> {
    if let Some(id) = n.resources.iter().find_map(|r| r.id.clone()) {
        return Some(id);
    }
    match (&n.dst_ip, n.dst_port) {
        (Some(ip), Some(port)) => Some(format!("{ip}:{port}")),
        (Some(ip), None) => Some(ip.clone()),
        _ => None,
    }
}

/// The label of a principal: user name, else ARN, else principal id.
pub fn actor_of(n: &Normalized) -> Option<String> {
    n.actor_user_name
        .clone()
        .or_else(|| n.actor_arn.clone())
        .or_else(|| n.actor_principal_id.clone())
}

fn entry_of(e: &EventRef<'_>) -> TimelineEntry {
    let n = e.normalized;
    TimelineEntry {
        time: fmt_time(e.timestamp_ms),
        timestamp_ms: e.timestamp_ms,
        source: n.source.clone(),
        account: n.account.clone(),
        region: n.region.clone(),
        action: n.action.clone(),
        resource: resource_of(n),
        outcome: n.outcome.map(|o| o.as_str().to_string()),
        error_code: n.error_code.clone(),
        actor: actor_of(n),
        src_ip: n.src_ip.clone(),
        group: e.group.to_string(),
        stream: e.stream.to_string(),
        event_id: n
            .source_event_id
            .clone()
            .or_else(|| n.request_id.clone())
            .unwrap_or_else(|| event_id_from_seq(e.seq)),
        seq: e.seq,
    }
}

/// Build the timeline of `subject` over `[start_ms, end_ms)`.
pub async fn build_timeline(
    source: &DataSource,
    subject: Subject,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: usize,
) -> anyhow::Result<Timeline> {
    let limit = limit.clamp(1, TIMELINE_ENTRIES_MAX);
    let mut entries: Vec<TimelineEntry> = Vec::new();
    let mut truncated = false;
    let key = |e: &TimelineEntry| (e.timestamp_ms, e.seq);
    let stats = source
        .scan(
            start_ms.unwrap_or(i64::MIN),
            end_ms.unwrap_or(i64::MAX),
            |e| {
                if !subject.matches(e.normalized) {
                    return;
                }
                entries.push(entry_of(&e));
                if entries.len() >= 2 * limit {
                    entries.sort_by_key(key);
                    entries.truncate(limit);
                    truncated = true;
                }
            },
        )
        .await
        .context("reading events")?;
    entries.sort_by_key(key);
    if entries.len() > limit {
        entries.truncate(limit);
        truncated = true;
    }
    Ok(Timeline {
        subject,
        start_ms,
        end_ms,
        entries,
        truncated,
        note: source.note(),
        segments_read: stats.segments_read,
        segments_pruned: stats.segments_pruned,
    })
}

fn dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// The timeline as an aligned text table.
pub fn render_table(t: &Timeline) -> String {
    let mut out = String::new();
    if let Some(note) = &t.note {
        let _ = writeln!(out, "note: {note}");
    }
    let header = [
        "TIME",
        "SOURCE",
        "ACCOUNT/REGION",
        "ACTION",
        "RESOURCE",
        "OUTCOME",
        "GROUP/STREAM",
        "EVENT ID",
    ];
    let rows: Vec<[String; 8]> = t
        .entries
        .iter()
        .map(|e| {
            let outcome = match (&e.outcome, &e.error_code) {
                (Some(o), Some(code)) => format!("{o} ({code})"),
                (o, _) => dash(o).to_string(),
            };
            [
                e.time.clone(),
                e.source.clone(),
                format!("{}/{}", dash(&e.account), dash(&e.region)),
                dash(&e.action).to_string(),
                dash(&e.resource).to_string(),
                outcome,
                format!("{}/{}", e.group, e.stream),
                e.event_id.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}  ");
            }
        }
        s
    };
    let _ = writeln!(out, "{}", line(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    let _ = writeln!(
        out,
        "{} event(s){}",
        t.entries.len(),
        if t.truncated {
            " (truncated: raise --limit or narrow --from/--to)"
        } else {
            ""
        }
    );
    out
}

/// `trailvault timeline`
pub async fn run_timeline(args: TimelineArgs) -> anyhow::Result<()> {
    let subject = match (&args.actor, &args.access_key, &args.ip) {
        (Some(a), None, None) => Subject::Actor(a.clone()),
        (None, Some(k), None) => Subject::AccessKey(k.clone()),
        (None, None, Some(ip)) => Subject::Ip(ip.clone()),
        _ => anyhow::bail!("give exactly one of --actor, --access-key, --ip"),
    };
    let now = trailvault_store::now_ms();
    let start = args
        .from
        .as_deref()
        .map(|s| parse_time_arg(s, now).with_context(|| "--from"))
        .transpose()?;
    let end = args
        .to
        .as_deref()
        .map(|s| parse_time_arg(s, now).with_context(|| "--to"))
        .transpose()?;
    let source = DataSource::open(&args.data)
        .await
        .with_context(|| format!("opening {}", args.data.display()))?;
    let t = build_timeline(&source, subject, start, end, args.limit).await?;
    match args.output {
        TimelineOutput::Table => print!("{}", render_table(&t)),
        TimelineOutput::Json => println!("{}", serde_json::to_string_pretty(&t)?),
    }
    Ok(())
}
