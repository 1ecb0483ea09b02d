//! `trailvault report`: the management report over `[from, to)`.
//!
//! [`build_report`] gathers everything into [`ReportData`] in one pass over the period (plus
//! one over the baseline window before it); [`render_html`] and [`render_markdown`] only
//! format it, so both formats always tell the same story. The HTML page is self-contained:
//! inline CSS and inline SVG, no script, no external resource.
//!
//! Limits: every list is capped ([`ROWS_MAX`]) with its full count kept beside it; time
//! series carry at most [`crate::svg::SERIES_MAX`] series (the rest folded into "other"),
//! and at most [`DISTINCT_MAX`] distinct keys are tracked per dimension.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use trailvault_model::{Normalized, Outcome};

use crate::anomaly::{self, AnomalyOptions, Deviation, Profiles};
use crate::source::DataSource;
use crate::svg;
use crate::timeline::{actor_of, resource_of};
use crate::{escape, fmt_time, parse_time_arg, DAY_MS, HOUR_MS};

/// Rows kept per list section.
pub const ROWS_MAX: usize = 200;
/// Distinct keys tracked per counted dimension; the rest count as "other".
pub const DISTINCT_MAX: usize = 10_000;
/// Alarm history items read for one report.
pub const ALARM_ITEMS_MAX: usize = 1_000;
/// Longest period a report covers.
pub const PERIOD_DAYS_MAX: i64 = 3_660;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    #[default]
    Html,
    Md,
}

/// `trailvault report`
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Start of the period (RFC 3339, YYYY-MM-DD, epoch ms, `now`, or an age like 1d).
    #[arg(long)]
    pub from: String,
    /// End of the period, exclusive (same forms).
    #[arg(long, default_value = "now")]
    pub to: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
    /// Data directory. Read embedded; if a server holds it, its sealed segments are read.
    #[arg(long, default_value = "trailvault-data", env = "TRAILVAULT_DATA")]
    pub data: PathBuf,
    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Days before --from that form each principal's baseline.
    #[arg(long, default_value_t = 14)]
    pub baseline_days: u32,
    /// Do not validate the digest chain (the integrity section says so).
    #[arg(long)]
    pub no_integrity: bool,
}

/// What the report needs besides the data directory.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub start_ms: i64,
    pub end_ms: i64,
    pub generated_at_ms: i64,
    pub anomaly: AnomalyOptions,
    pub integrity: bool,
}

/// One change, root action or failed sign-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub time: String,
    #[serde(skip)]
    pub timestamp_ms: i64,
    pub actor: String,
    pub action: String,
    pub account: String,
    pub region: String,
    pub resource: String,
    pub src_ip: String,
    pub outcome: String,
}

/// A capped list with its full count.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RowList {
    pub total: u64,
    pub rows: Vec<EventRow>,
}

impl RowList {
    fn push(&mut self, row: EventRow) {
        self.total += 1;
        self.rows.push(row);
        if self.rows.len() >= 2 * ROWS_MAX {
            self.trim();
        }
    }
    fn trim(&mut self) {
        self.rows.sort_by(|a, b| {
            (a.timestamp_ms, &a.actor, &a.action).cmp(&(b.timestamp_ms, &b.actor, &b.action))
        });
        self.rows.truncate(ROWS_MAX);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counter {
    pub counts: BTreeMap<String, u64>,
}

impl Counter {
    fn add(&mut self, key: &str) {
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
        } else if self.counts.len() < DISTINCT_MAX {
            self.counts.insert(key.to_string(), 1);
        } else {
            *self.counts.entry("other".into()).or_default() += 1;
        }
    }
    /// Most frequent first, ties by name.
    pub fn ranked(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// Counts per key per time bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub dimension: String,
    pub series: Vec<(String, Vec<u64>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrincipalRow {
    pub principal: String,
    pub events: u64,
    pub failures: u64,
    pub top_action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmRow {
    pub time: String,
    pub alarm: String,
    pub change: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AlarmsSection {
    /// No monitor database in the data directory.
    Unavailable {
        why: String,
    },
    Listed {
        rows: Vec<AlarmRow>,
        capped: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IntegritySection {
    Validated(trailvault_integrity::ValidationSummary),
    NotValidated { why: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageRow {
    pub group: String,
    pub segments: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalySection {
    pub baseline_start_ms: i64,
    pub baseline_end_ms: i64,
    pub baseline_events: u64,
    pub baseline_principals: usize,
    pub period_principals: usize,
    pub deviations: Vec<Deviation>,
    pub deviations_total: usize,
}

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    pub start_ms: i64,
    pub end_ms: i64,
    pub generated_at_ms: i64,
    pub note: Option<String>,
    pub events_total: u64,
    pub events_unnormalized: u64,
    pub by_source: Vec<(String, u64)>,
    pub by_account: Vec<(String, u64)>,
    pub by_region: Vec<(String, u64)>,
    pub by_service: Vec<(String, u64)>,
    pub bin_ms: i64,
    pub bins_ms: Vec<i64>,
    pub over_time: Vec<Series>,
    pub top_principals: Vec<PrincipalRow>,
    pub failed_logins: RowList,
    pub failed_logins_by_ip: Vec<(String, u64)>,
    pub failed_logins_by_user: Vec<(String, u64)>,
    pub root_usage: RowList,
    pub iam_changes: RowList,
    pub security_group_changes: RowList,
    pub kms_changes: RowList,
    pub alarms: AlarmsSection,
    pub integrity: IntegritySection,
    pub storage: Vec<StorageRow>,
    pub anomalies: AnomalySection,
}

/// Actions that change a security group.
const SECURITY_GROUP_ACTIONS: [&str; 8] = [
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "ModifySecurityGroupRules",
    "UpdateSecurityGroupRuleDescriptionsIngress",
];

/// KMS operations that use a key rather than change it.
const KMS_USE_PREFIXES: [&str; 6] = [
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "ReEncrypt",
    "Sign",
    "Verify",
];

fn is_read_only(n: &Normalized) -> bool {
    match n.read_only {
        Some(r) => r,
        None => n.action.as_deref().is_some_and(|a| {
            ["Get", "List", "Describe", "Head"]
                .iter()
                .any(|p| a.starts_with(p))
        }),
    }
}

fn is_iam_change(n: &Normalized) -> bool {
    n.service.as_deref() == Some("iam.amazonaws.com") && !is_read_only(n)
}

fn is_security_group_change(n: &Normalized) -> bool {
    n.action
        .as_deref()
        .is_some_and(|a| SECURITY_GROUP_ACTIONS.contains(&a))
}

fn is_kms_change(n: &Normalized) -> bool {
    n.service.as_deref() == Some("kms.amazonaws.com")
        && !is_read_only(n)
        && !n
            .action
            .as_deref()
            .is_some_and(|a| KMS_USE_PREFIXES.iter().any(|p| a.starts_with(p)))
}

fn is_failed_login(n: &Normalized) -> bool {
    n.action.as_deref() == Some("ConsoleLogin") && n.outcome == Some(Outcome::Failure)
}

fn is_root(n: &Normalized) -> bool {
    n.actor_type.as_deref() == Some("Root") && n.actor_invoked_by.is_none()
}

fn row_of(n: &Normalized, ts_ms: i64) -> EventRow {
    let d = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    EventRow {
        time: fmt_time(ts_ms),
        timestamp_ms: ts_ms,
        actor: actor_of(n).unwrap_or_else(|| "-".into()),
        action: d(&n.action),
        account: d(&n.account),
        region: d(&n.region),
        resource: resource_of(n).unwrap_or_else(|| "-".into()),
        src_ip: d(&n.src_ip),
        outcome: match (n.outcome, &n.error_code) {
            (Some(o), Some(c)) => format!("{} ({c})", o.as_str()),
            (Some(o), None) => o.as_str().to_string(),
            (None, _) => "-".into(),
        },
    }
}

/// Bin width for a period: hours up to two days, days up to 62 days, else weeks.
pub fn bin_width_ms(start_ms: i64, end_ms: i64) -> i64 {
    let span = end_ms.saturating_sub(start_ms);
    if span <= 2 * DAY_MS {
        HOUR_MS
    } else if span <= 62 * DAY_MS {
        DAY_MS
    } else {
        7 * DAY_MS
    }
}

struct SeriesAcc {
    bins: usize,
    keys: BTreeMap<String, Vec<u64>>,
}

impl SeriesAcc {
    fn add(&mut self, key: &str, bin: usize) {
        let full = self.keys.len() >= DISTINCT_MAX;
        let key = if full && !self.keys.contains_key(key) {
            "other"
        } else {
            key
        };
        let v = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| vec![0; self.bins]);
        v[bin] += 1;
    }

    /// The nine largest series and "other".
    fn finish(self, dimension: &str) -> Series {
        let mut v: Vec<(String, Vec<u64>)> = self.keys.into_iter().collect();
        v.sort_by(|a, b| {
            let (sa, sb): (u64, u64) = (a.1.iter().sum(), b.1.iter().sum());
            sb.cmp(&sa).then(a.0.cmp(&b.0))
        });
        let keep = svg::SERIES_MAX - 1;
        if v.len() > svg::SERIES_MAX {
            let rest = v.split_off(keep);
            let mut other = vec![0; rest[0].1.len()];
            for (_, s) in rest {
                for (o, x) in other.iter_mut().zip(s) {
                    *o += x;
                }
            }
            v.push(("other".into(), other));
        }
        Series {
            dimension: dimension.into(),
            series: v,
        }
    }
}

/// Gather the report over `source`.
pub async fn build_report(source: &DataSource, opts: &ReportOptions) -> anyhow::Result<ReportData> {
    anyhow::ensure!(
        opts.start_ms < opts.end_ms,
        "the period is empty: --from must be before --to"
    );
    anyhow::ensure!(
        opts.end_ms - opts.start_ms <= PERIOD_DAYS_MAX * DAY_MS,
        "the period is longer than {PERIOD_DAYS_MAX} days"
    );
    let bin_ms = bin_width_ms(opts.start_ms, opts.end_ms);
    let first_bin = opts.start_ms.div_euclid(bin_ms) * bin_ms;
    let bins_ms: Vec<i64> = (0..)
        .map(|i| first_bin + i * bin_ms)
        .take_while(|b| *b < opts.end_ms)
        .collect();
    let nbins = bins_ms.len();
    let mk = || SeriesAcc {
        bins: nbins,
        keys: BTreeMap::new(),
    };
    let (mut s_account, mut s_region, mut s_service) = (mk(), mk(), mk());
    let (mut by_source, mut by_account, mut by_region, mut by_service) = (
        Counter::default(),
        Counter::default(),
        Counter::default(),
        Counter::default(),
    );
    let mut principals: HashMap<String, (u64, u64, Counter)> = HashMap::new();
    let mut failed_logins = RowList::default();
    let (mut failed_by_ip, mut failed_by_user) = (Counter::default(), Counter::default());
    let mut root_usage = RowList::default();
    let mut iam = RowList::default();
    let mut sg = RowList::default();
    let mut kms = RowList::default();
    let mut current = Profiles::default();
    let mut events_total = 0u64;
    let stats = source
        .scan(opts.start_ms, opts.end_ms, |e| {
            let n = e.normalized;
            let ts = e.timestamp_ms;
            events_total += 1;
            let bin = ((ts - first_bin) / bin_ms) as usize;
            let account = n.account.as_deref().unwrap_or("unknown");
            let region = n.region.as_deref().unwrap_or("unknown");
            let service = n.service.as_deref().unwrap_or(n.source.as_str());
            by_source.add(&n.source);
            by_account.add(account);
            by_region.add(region);
            by_service.add(service);
            s_account.add(account, bin);
            s_region.add(region, bin);
            s_service.add(service, bin);
            if let Some(who) = actor_of(n) {
                let full = principals.len() >= DISTINCT_MAX;
                if let Some(p) = if full {
                    principals.get_mut(&who)
                } else {
                    Some(principals.entry(who).or_default())
                } {
                    p.0 += 1;
                    if n.outcome == Some(Outcome::Failure) {
                        p.1 += 1;
                    }
                    if let Some(api) = anomaly::api_of(n) {
                        p.2.add(&api);
                    }
                }
            }
            if is_failed_login(n) {
                failed_logins.push(row_of(n, ts));
                failed_by_ip.add(n.src_ip.as_deref().unwrap_or("unknown"));
                failed_by_user.add(actor_of(n).as_deref().unwrap_or("unknown"));
            }
            if is_root(n) {
                root_usage.push(row_of(n, ts));
            }
            if is_iam_change(n) {
                iam.push(row_of(n, ts));
            }
            if is_security_group_change(n) {
                sg.push(row_of(n, ts));
            }
            if is_kms_change(n) {
                kms.push(row_of(n, ts));
            }
            current.add(n, ts);
        })
        .await
        .context("reading the period's events")?;
    for l in [
        &mut failed_logins,
        &mut root_usage,
        &mut iam,
        &mut sg,
        &mut kms,
    ] {
        l.trim();
    }

    // Baseline: the days before the period.
    let baseline_end = opts.start_ms;
    let baseline_start =
        baseline_end.saturating_sub(i64::from(opts.anomaly.baseline_days) * DAY_MS);
    let mut baseline = Profiles::default();
    source
        .scan(baseline_start, baseline_end, |e| {
            baseline.add(e.normalized, e.timestamp_ms)
        })
        .await
        .context("reading the baseline's events")?;
    let mut deviations = anomaly::deviations(&baseline, &current, &opts.anomaly);
    let deviations_total = deviations.len();
    deviations.truncate(anomaly::DEVIATIONS_MAX);

    let mut top_principals: Vec<PrincipalRow> = principals
        .into_iter()
        .map(|(principal, (events, failures, apis))| PrincipalRow {
            principal,
            events,
            failures,
            top_action: apis
                .ranked()
                .first()
                .map(|(a, n)| format!("{a} ({n})"))
                .unwrap_or_else(|| "-".into()),
        })
        .collect();
    top_principals.sort_by(|a, b| b.events.cmp(&a.events).then(a.principal.cmp(&b.principal)));
    top_principals.truncate(svg::BARS_MAX);

    let storage = storage_rows(source).await?;
    let alarms = alarms_section(source.root(), opts.start_ms, opts.end_ms);
    let integrity = if opts.integrity {
        integrity_section(source.root(), opts).await
    } else {
        IntegritySection::NotValidated {
            why: "validation skipped (--no-integrity)".into(),
        }
    };
    Ok(ReportData {
        start_ms: opts.start_ms,
        end_ms: opts.end_ms,
        generated_at_ms: opts.generated_at_ms,
        note: source.note(),
        events_total,
        events_unnormalized: stats.events_unnormalized,
        by_source: by_source.ranked(),
        by_account: by_account.ranked(),
        by_region: by_region.ranked(),
        by_service: by_service.ranked(),
        bin_ms,
        bins_ms,
        over_time: vec![
            s_account.finish("account"),
            s_region.finish("region"),
            s_service.finish("service"),
        ],
        top_principals,
        failed_logins,
        failed_logins_by_ip: failed_by_ip.ranked(),
        failed_logins_by_user: failed_by_user.ranked(),
        root_usage,
        iam_changes: iam,
        security_group_changes: sg,
        kms_changes: kms,
        alarms,
        integrity,
        storage,
        anomalies: AnomalySection {
            baseline_start_ms: baseline_start,
            baseline_end_ms: baseline_end,
            baseline_events: baseline.events,
            baseline_principals: baseline.principals.len(),
            period_principals: current.principals.len(),
            deviations,
            deviations_total,
        },
    })
}

async fn storage_rows(source: &DataSource) -> anyhow::Result<Vec<StorageRow>> {
    let mut by_group: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    if let Some(v) = source.vault() {
        for g in v.log_groups() {
            by_group.entry(g.name).or_default();
        }
    }
    for f in source.segment_files().await.context("listing segments")? {
        let e = by_group.entry(f.group).or_default();
        e.0 += 1;
        e.1 += f.bytes;
    }
    let mut rows: Vec<StorageRow> = by_group
        .into_iter()
        .map(|(group, (segments, bytes))| StorageRow {
            group,
            segments,
            bytes,
        })
        .collect();
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.group.cmp(&b.group)));
    Ok(rows)
}

/// Transitions into ALARM within the period, newest first, from `monitor.sqlite`.
pub fn alarms_section(root: &Path, start_ms: i64, end_ms: i64) -> AlarmsSection {
    let path = root.join("monitor.sqlite");
    if !path.is_file() {
        return AlarmsSection::Unavailable {
            why: "no monitoring database in the data directory (no alarms defined)".into(),
        };
    }
    let db = match trailvault_monitor::MonitorDb::open(&path) {
        Ok(db) => db,
        Err(e) => {
            return AlarmsSection::Unavailable {
                why: format!("cannot read {}: {e}", path.display()),
            }
        }
    };
    let mut rows = Vec::new();
    let mut end = end_ms;
    let mut capped = false;
    loop {
        let page = match db.alarm_history(None, Some("StateUpdate"), Some(start_ms), Some(end), 100)
        {
            Ok(p) => p,
            Err(e) => {
                return AlarmsSection::Unavailable {
                    why: format!("cannot read the alarm history: {e}"),
                }
            }
        };
        let full = page.len() == 100;
        let oldest = page.last().map(|i| i.timestamp);
        for item in page {
            if !item.history_summary.ends_with(" to ALARM") {
                continue;
            }
            let reason = serde_json::from_str::<serde_json::Value>(&item.history_data)
                .ok()
                .and_then(|d| d["newState"]["stateReason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            rows.push(AlarmRow {
                time: fmt_time(item.timestamp),
                alarm: item.alarm_name,
                change: item.history_summary,
                reason,
            });
        }
        if rows.len() >= ALARM_ITEMS_MAX {
            rows.truncate(ALARM_ITEMS_MAX);
            capped = true;
            break;
        }
        match oldest {
            // Items in the oldest page's last millisecond may repeat: acceptable for a count
            // this coarse, and the loop always moves strictly back in time.
            Some(t) if full && t > start_ms && t < end => end = t,
            _ => break,
        }
    }
    AlarmsSection::Listed { rows, capped }
}

async fn integrity_section(root: &Path, opts: &ReportOptions) -> IntegritySection {
    let keys_dir = root.join("keys");
    if !keys_dir.is_dir() {
        return IntegritySection::NotValidated {
            why: "no signing keys in the data directory: no digest has been written".into(),
        };
    }
    let keys = match trailvault_integrity::PublicKeySet::load_dir(&keys_dir) {
        Ok(k) => k,
        Err(e) => {
            return IntegritySection::NotValidated {
                why: format!("cannot load the public keys: {e}"),
            }
        }
    };
    let store = match object_store::local::LocalFileSystem::new_with_prefix(root) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            return IntegritySection::NotValidated {
                why: format!("cannot open {}: {e}", root.display()),
            }
        }
    };
    let vopts = trailvault_integrity::ValidateOptions {
        start_ms: Some(opts.start_ms),
        end_ms: Some(opts.end_ms),
        ..Default::default()
    };
    match trailvault_integrity::validate(vopts, store, &keys).await {
        Ok(r) => IntegritySection::Validated(r.summary(opts.generated_at_ms)),
        Err(e) => IntegritySection::NotValidated {
            why: format!("validation failed to run: {e}"),
        },
    }
}

// ---- rendering ----

fn period_label(d: &ReportData) -> String {
    format!("{} to {}", fmt_time(d.start_ms), fmt_time(d.end_ms))
}

fn bin_label(bin_ms: i64) -> impl Fn(i64) -> String {
    move |ms| {
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        if bin_ms < DAY_MS {
            t.format("%d %H:%M").to_string()
        } else {
            t.format("%m-%d").to_string()
        }
    }
}

fn bin_unit(bin_ms: i64) -> &'static str {
    match bin_ms {
        HOUR_MS => "events per hour",
        DAY_MS => "events per day",
        _ => "events per week",
    }
}

/// `1.5 MiB`
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn as_f64(items: &[(String, u64)]) -> Vec<(String, f64)> {
    items.iter().map(|(k, v)| (k.clone(), *v as f64)).collect()
}

const EVENT_COLUMNS: [&str; 8] = [
    "Time",
    "Principal",
    "Action",
    "Account",
    "Region",
    "Resource",
    "Source IP",
    "Outcome",
];

fn event_cells(r: &EventRow) -> [&str; 8] {
    [
        &r.time,
        &r.actor,
        &r.action,
        &r.account,
        &r.region,
        &r.resource,
        &r.src_ip,
        &r.outcome,
    ]
}

struct Section {
    id: &'static str,
    title: &'static str,
}

const SECTIONS: [Section; 12] = [
    Section {
        id: "summary",
        title: "Summary",
    },
    Section {
        id: "activity",
        title: "Activity over time",
    },
    Section {
        id: "principals",
        title: "Top principals",
    },
    Section {
        id: "failed-logins",
        title: "Failed console sign-ins",
    },
    Section {
        id: "root",
        title: "Root account usage",
    },
    Section {
        id: "iam",
        title: "IAM changes",
    },
    Section {
        id: "security-groups",
        title: "Security group changes",
    },
    Section {
        id: "kms",
        title: "KMS key changes",
    },
    Section {
        id: "alarms",
        title: "Alarms fired",
    },
    Section {
        id: "integrity",
        title: "Integrity status",
    },
    Section {
        id: "storage",
        title: "Storage per log group",
    },
    Section {
        id: "anomalies",
        title: "Anomalies",
    },
];

fn integrity_lines(d: &ReportData) -> (bool, Vec<String>) {
    match &d.integrity {
        IntegritySection::Validated(s) => {
            let mut lines = vec![
                format!(
                    "{}: {}/{} digest files valid, {}/{} segment files valid, {} pending (validated {})",
                    if s.valid { "VALID" } else { "INVALID" },
                    s.digests_valid,
                    s.digests_total,
                    s.segments_valid,
                    s.segments_total,
                    s.segments_pending,
                    fmt_time(s.finished_at_ms)
                ),
            ];
            if s.failures_total > 0 {
                lines.push(format!("{} failure(s):", s.failures_total));
                lines.extend(s.failures.iter().cloned());
            }
            (s.valid, lines)
        }
        IntegritySection::NotValidated { why } => (false, vec![format!("not validated: {why}")]),
    }
}

fn alarm_rows(d: &ReportData) -> (Vec<&AlarmRow>, Option<String>) {
    match &d.alarms {
        AlarmsSection::Unavailable { why } => (Vec::new(), Some(why.clone())),
        AlarmsSection::Listed { rows, capped } => (
            rows.iter().collect(),
            capped.then(|| format!("showing the newest {ALARM_ITEMS_MAX}")),
        ),
    }
}

fn summary_lines(d: &ReportData) -> Vec<String> {
    let mut v = vec![
        format!("Period: {}", period_label(d)),
        format!("Generated: {}", fmt_time(d.generated_at_ms)),
        format!("Events: {}", d.events_total),
    ];
    if d.events_unnormalized > 0 {
        v.push(format!(
            "Events without a normalized form (not counted): {}",
            d.events_unnormalized
        ));
    }
    v.push(format!(
        "Sources: {}",
        d.by_source
            .iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    v.push(format!(
        "Failed sign-ins: {} · root actions: {} · IAM changes: {} · security group changes: {} · KMS changes: {}",
        d.failed_logins.total,
        d.root_usage.total,
        d.iam_changes.total,
        d.security_group_changes.total,
        d.kms_changes.total
    ));
    v
}

// -- HTML --

const CSS: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222}\
h1{font-size:24px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}\
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.n{text-align:right}.note{background:#fff6d6;padding:8px;border:1px solid #e8d48a}\
.ok{color:#08660b;font-weight:bold}.bad{color:#b00020;font-weight:bold}.muted{color:#666}\
nav a{margin-right:12px}svg.chart{display:block;margin:12px 0}";

fn html_table(out: &mut String, header: &[&str], rows: &[Vec<String>], numeric: &[usize]) {
    out.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if numeric.contains(&i) {
                let _ = write!(out, "<td class=\"n\">{}</td>", escape(c));
            } else {
                let _ = write!(out, "<td>{}</td>", escape(c));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn html_events(out: &mut String, list: &RowList, empty: &str) {
    if list.total == 0 {
        let _ = write!(out, "<p class=\"muted\">{}</p>", escape(empty));
        return;
    }
    let rows: Vec<Vec<String>> = list
        .rows
        .iter()
        .map(|r| event_cells(r).iter().map(|s| s.to_string()).collect())
        .collect();
    html_table(out, &EVENT_COLUMNS, &rows, &[]);
    if list.total > list.rows.len() as u64 {
        let _ = write!(
            out,
            "<p class=\"muted\">showing the first {} of {}</p>",
            list.rows.len(),
            list.total
        );
    }
}

fn counts_rows(items: &[(String, u64)]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|(k, n)| vec![k.clone(), n.to_string()])
        .collect()
}

/// The report as one self-contained HTML page.
pub fn render_html(d: &ReportData) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>trailvault report {p}</title><style>{CSS}</style></head><body>\
         <h1>trailvault report</h1><p>{p}</p><nav>",
        p = escape(&period_label(d))
    );
    for s in &SECTIONS {
        let _ = write!(o, "<a href=\"#{}\">{}</a>", s.id, s.title);
    }
    o.push_str("</nav>");
    if let Some(n) = &d.note {
        let _ = write!(o, "<p class=\"note\">Note: {}</p>", escape(n));
    }
    let h2 = |o: &mut String, i: usize| {
        let _ = write!(
            o,
            "<h2 id=\"{}\">{}</h2>",
            SECTIONS[i].id, SECTIONS[i].title
        );
    };

    h2(&mut o, 0);
    o.push_str("<ul>");
    for l in summary_lines(d) {
        let _ = write!(o, "<li>{}</li>", escape(&l));
    }
    o.push_str("</ul>");

    h2(&mut o, 1);
    for s in &d.over_time {
        let series: Vec<(String, Vec<f64>)> = s
            .series
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|x| *x as f64).collect()))
            .collect();
        o.push_str(&svg::stacked_series(
            &format!("Activity by {}", s.dimension),
            &d.bins_ms,
            &series,
            bin_label(d.bin_ms),
            bin_unit(d.bin_ms),
        ));
    }
    for (title, items) in [
        ("Events by account", &d.by_account),
        ("Events by region", &d.by_region),
        ("Events by service", &d.by_service),
    ] {
        if !items.is_empty() {
            o.push_str(&svg::bar_chart(title, &as_f64(items), "events"));
        }
    }

    h2(&mut o, 2);
    if d.top_principals.is_empty() {
        o.push_str("<p class=\"muted\">No principal activity.</p>");
    } else {
        let items: Vec<(String, f64)> = d
            .top_principals
            .iter()
            .map(|p| (p.principal.clone(), p.events as f64))
            .collect();
        o.push_str(&svg::bar_chart("Events per principal", &items, "events"));
        let rows: Vec<Vec<String>> = d
            .top_principals
            .iter()
            .map(|p| {
                vec![
                    p.principal.clone(),
                    p.events.to_string(),
                    p.failures.to_string(),
                    p.top_action.clone(),
                ]
            })
            .collect();
        html_table(
            &mut o,
            &["Principal", "Events", "Failures", "Most used API"],
            &rows,
            &[1, 2],
        );
    }

    h2(&mut o, 3);
    if d.failed_logins.total > 0 {
        o.push_str(&svg::bar_chart(
            "Failed sign-ins by source IP",
            &as_f64(&d.failed_logins_by_ip),
            "failed sign-ins",
        ));
        o.push_str(&svg::bar_chart(
            "Failed sign-ins by user",
            &as_f64(&d.failed_logins_by_user),
            "failed sign-ins",
        ));
    }
    html_events(&mut o, &d.failed_logins, "No failed console sign-in.");

    h2(&mut o, 4);
    html_events(&mut o, &d.root_usage, "The root user was not used.");
    h2(&mut o, 5);
    html_events(&mut o, &d.iam_changes, "No IAM change.");
    h2(&mut o, 6);
    html_events(
        &mut o,
        &d.security_group_changes,
        "No security group change.",
    );
    h2(&mut o, 7);
    html_events(&mut o, &d.kms_changes, "No KMS key change.");

    h2(&mut o, 8);
    let (alarms, alarm_note) = alarm_rows(d);
    if alarms.is_empty() {
        let _ = write!(
            o,
            "<p class=\"muted\">{}</p>",
            escape(alarm_note.as_deref().unwrap_or("No alarm fired."))
        );
    } else {
        let rows: Vec<Vec<String>> = alarms
            .iter()
            .map(|a| {
                vec![
                    a.time.clone(),
                    a.alarm.clone(),
                    a.change.clone(),
                    a.reason.clone(),
                ]
            })
            .collect();
        html_table(&mut o, &["Time", "Alarm", "Change", "Reason"], &rows, &[]);
        if let Some(n) = alarm_note {
            let _ = write!(o, "<p class=\"muted\">{}</p>", escape(&n));
        }
    }

    h2(&mut o, 9);
    let (valid, lines) = integrity_lines(d);
    let _ = write!(
        o,
        "<p class=\"{}\">{}</p>",
        if valid { "ok" } else { "bad" },
        escape(&lines[0])
    );
    if lines.len() > 1 {
        o.push_str("<ul>");
        for l in &lines[1..] {
            let _ = write!(o, "<li>{}</li>", escape(l));
        }
        o.push_str("</ul>");
    }

    h2(&mut o, 10);
    if d.storage.is_empty() {
        o.push_str("<p class=\"muted\">No log group.</p>");
    } else {
        let items: Vec<(String, f64)> = d
            .storage
            .iter()
            .map(|s| (s.group.clone(), s.bytes as f64 / 1024.0))
            .collect();
        o.push_str(&svg::bar_chart(
            "Sealed segment bytes per log group",
            &items,
            "KiB",
        ));
        let rows: Vec<Vec<String>> = d
            .storage
            .iter()
            .map(|s| {
                vec![
                    s.group.clone(),
                    s.segments.to_string(),
                    human_bytes(s.bytes),
                ]
            })
            .collect();
        html_table(&mut o, &["Log group", "Segments", "Stored"], &rows, &[1, 2]);
    }

    h2(&mut o, 11);
    let a = &d.anomalies;
    let _ = write!(
        o,
        "<p>Baseline {} to {}: {} events by {} principals; {} principals active in the period.</p>",
        fmt_time(a.baseline_start_ms),
        fmt_time(a.baseline_end_ms),
        a.baseline_events,
        a.baseline_principals,
        a.period_principals
    );
    if a.deviations.is_empty() {
        o.push_str("<p class=\"muted\">No deviation from the baselines.</p>");
    } else {
        let rows: Vec<Vec<String>> = a
            .deviations
            .iter()
            .enumerate()
            .map(|(i, dv)| {
                vec![
                    (i + 1).to_string(),
                    format!("{:.1}", dv.score),
                    dv.kind.as_str().to_string(),
                    dv.explanation.clone(),
                ]
            })
            .collect();
        html_table(
            &mut o,
            &["#", "Score", "Kind", "What changed"],
            &rows,
            &[0, 1],
        );
        if a.deviations_total > a.deviations.len() {
            let _ = write!(
                o,
                "<p class=\"muted\">showing the top {} of {}</p>",
                a.deviations.len(),
                a.deviations_total
            );
        }
    }
    o.push_str("</body></html>\n");
    o
}

// -- Markdown --

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn md_events(out: &mut String, list: &RowList, empty: &str) {
    if list.total == 0 {
        let _ = writeln!(out, "{empty}\n");
        return;
    }
    let rows: Vec<Vec<String>> = list
        .rows
        .iter()
        .map(|r| event_cells(r).iter().map(|s| s.to_string()).collect())
        .collect();
    md_table(out, &EVENT_COLUMNS, &rows);
    if list.total > list.rows.len() as u64 {
        let _ = writeln!(
            out,
            "Showing the first {} of {}.\n",
            list.rows.len(),
            list.total
        );
    }
}

/// The report as Markdown: the same sections, tables, and text sparklines for the series.
pub fn render_markdown(d: &ReportData) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# trailvault report\n\n{}\n", period_label(d));
    if let Some(n) = &d.note {
        let _ = writeln!(o, "> Note: {n}\n");
    }
    let h2 = |o: &mut String, i: usize| {
        let _ = writeln!(o, "## {}\n", SECTIONS[i].title);
    };
    h2(&mut o, 0);
    for l in summary_lines(d) {
        let _ = writeln!(o, "- {l}");
    }
    o.push('\n');

    h2(&mut o, 1);
    let _ = writeln!(
        o,
        "{} from {} ({} bins).\n",
        bin_unit(d.bin_ms),
        fmt_time(d.bins_ms.first().copied().unwrap_or(d.start_ms)),
        d.bins_ms.len()
    );
    for s in &d.over_time {
        let rows: Vec<Vec<String>> = s
            .series
            .iter()
            .map(|(k, v)| {
                let f: Vec<f64> = v.iter().map(|x| *x as f64).collect();
                vec![
                    k.clone(),
                    v.iter().sum::<u64>().to_string(),
                    format!("`{}`", svg::sparkline(&f)),
                ]
            })
            .collect();
        let cap = format!("{}{}", &s.dimension[..1].to_uppercase(), &s.dimension[1..]);
        md_table(&mut o, &[&cap, "Events", "Over time"], &rows);
    }

    h2(&mut o, 2);
    if d.top_principals.is_empty() {
        let _ = writeln!(o, "No principal activity.\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .top_principals
            .iter()
            .map(|p| {
                vec![
                    p.principal.clone(),
                    p.events.to_string(),
                    p.failures.to_string(),
                    p.top_action.clone(),
                ]
            })
            .collect();
        md_table(
            &mut o,
            &["Principal", "Events", "Failures", "Most used API"],
            &rows,
        );
    }

    h2(&mut o, 3);
    if d.failed_logins.total > 0 {
        md_table(
            &mut o,
            &["Source IP", "Failed sign-ins"],
            &counts_rows(&d.failed_logins_by_ip),
        );
        md_table(
            &mut o,
            &["User", "Failed sign-ins"],
            &counts_rows(&d.failed_logins_by_user),
        );
    }
    md_events(&mut o, &d.failed_logins, "No failed console sign-in.");
    h2(&mut o, 4);
    md_events(&mut o, &d.root_usage, "The root user was not used.");
    h2(&mut o, 5);
    md_events(&mut o, &d.iam_changes, "No IAM change.");
    h2(&mut o, 6);
    md_events(
        &mut o,
        &d.security_group_changes,
        "No security group change.",
    );
    h2(&mut o, 7);
    md_events(&mut o, &d.kms_changes, "No KMS key change.");

    h2(&mut o, 8);
    let (alarms, alarm_note) = alarm_rows(d);
    if alarms.is_empty() {
        let _ = writeln!(
            o,
            "{}\n",
            alarm_note.as_deref().unwrap_or("No alarm fired.")
        );
    } else {
        let rows: Vec<Vec<String>> = alarms
            .iter()
            .map(|a| {
                vec![
                    a.time.clone(),
                    a.alarm.clone(),
                    a.change.clone(),
                    a.reason.clone(),
                ]
            })
            .collect();
        md_table(&mut o, &["Time", "Alarm", "Change", "Reason"], &rows);
        if let Some(n) = alarm_note {
            let _ = writeln!(o, "{n}\n");
        }
    }

    h2(&mut o, 9);
    let (_, lines) = integrity_lines(d);
    let _ = writeln!(o, "**{}**\n", lines[0]);
    for l in &lines[1..] {
        let _ = writeln!(o, "- {l}");
    }
    if lines.len() > 1 {
        o.push('\n');
    }

    h2(&mut o, 10);
    let rows: Vec<Vec<String>> = d
        .storage
        .iter()
        .map(|s| {
            vec![
                s.group.clone(),
                s.segments.to_string(),
                human_bytes(s.bytes),
            ]
        })
        .collect();
    md_table(&mut o, &["Log group", "Segments", "Stored"], &rows);

    h2(&mut o, 11);
    let a = &d.anomalies;
    let _ = writeln!(
        o,
        "Baseline {} to {}: {} events by {} principals; {} principals active in the period.\n",
        fmt_time(a.baseline_start_ms),
        fmt_time(a.baseline_end_ms),
        a.baseline_events,
        a.baseline_principals,
        a.period_principals
    );
    if a.deviations.is_empty() {
        let _ = writeln!(o, "No deviation from the baselines.");
    } else {
        let rows: Vec<Vec<String>> = a
            .deviations
            .iter()
            .enumerate()
            .map(|(i, dv)| {
                vec![
                    (i + 1).to_string(),
                    format!("{:.1}", dv.score),
                    dv.kind.as_str().to_string(),
                    dv.explanation.clone(),
                ]
            })
            .collect();
        md_table(&mut o, &["#", "Score", "Kind", "What changed"], &rows);
        if a.deviations_total > a.deviations.len() {
            let _ = writeln!(
                o,
                "Showing the top {} of {}.",
                a.deviations.len(),
                a.deviations_total
            );
        }
    }
    o
}

/// `trailvault report`
pub async fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let now = trailvault_store::now_ms();
    let start_ms = parse_time_arg(&args.from, now).context("--from")?;
    let end_ms = parse_time_arg(&args.to, now).context("--to")?;
    let source = DataSource::open(&args.data)
        .await
        .with_context(|| format!("opening {}", args.data.display()))?;
    let opts = ReportOptions {
        start_ms,
        end_ms,
        generated_at_ms: now,
        anomaly: AnomalyOptions {
            baseline_days: args.baseline_days,
            ..AnomalyOptions::default()
        },
        integrity: !args.no_integrity,
    };
    let data = build_report(&source, &opts).await?;
    let text = match args.format {
        ReportFormat::Html => render_html(&data),
        ReportFormat::Md => render_markdown(&data),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
