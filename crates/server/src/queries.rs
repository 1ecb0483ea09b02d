//! StartQuery, GetQueryResults, StopQuery, DescribeQueries: Logs Insights queries
//! (`trailvault-query`) run in the background over the vault's events.
//!
//! StartQuery compiles the query in the request (a syntax error is a `MalformedQueryException`
//! carrying its location), checks the log groups exist, registers the query and hands it to a
//! task. The task waits for one of [`executor_slots`] (status `Scheduled`), then (status
//! `Running`) reads the events of every group in the time range — sealed segments and the
//! unsealed tail alike, merged by timestamp — and executes the query on a blocking thread.
//!
//! Invariants:
//! - at most [`RUNNING_QUERIES_MAX`] queries per vault are `Scheduled` or `Running`; one more
//!   is a `LimitExceededException`, as CloudWatch answers;
//! - a status only moves forward (`Scheduled` → `Running` → an ended status) and an ended
//!   status never changes: a StopQuery that lands first wins over a late result;
//! - ended queries are kept [`ENDED_KEEP_MS`], at most [`ENDED_QUERIES_MAX`] per vault, the
//!   oldest dropped first; results are only ever read from here, never recomputed;
//! - the messages one query holds in memory are bounded by [`SCAN_BYTES_MAX`], the executor's
//!   own state by `ExecOptions`; beyond either the query fails cleanly, the server stays up;
//! - a query running longer than [`QUERY_TIMEOUT`] is cancelled and ends as `Timeout`.
//!
//! The registry is process-wide rather than a field of the server state, partitioned by the
//! vault's data directory: two vaults served by one process (as tests do) never see each
//! other's queries, and a query id from one is unknown to the other.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use trailvault_model::StoredEvent;
use trailvault_query::{ExecOptions, Query, QueryError, QueryOutput, LIMIT_ROWS_MAX};
use trailvault_store::{now_ms, StreamFilter, Vault};

use crate::groups::group_from_identifier;
use crate::{ApiError, AppState};

/// Queries per vault that may be scheduled or running at once (CloudWatch: 30).
pub const RUNNING_QUERIES_MAX: usize = 30;
/// Ended queries kept per vault for GetQueryResults and DescribeQueries.
pub const ENDED_QUERIES_MAX: usize = 100;
/// How long an ended query's results stay readable.
pub const ENDED_KEEP_MS: i64 = 60 * 60 * 1000;
/// Running time after which a query is cancelled and ends as `Timeout` (CloudWatch: 60 min).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Raw message bytes one query may hold in memory; past this it fails rather than grow.
pub const SCAN_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Log groups one query may name (logGroupNames, logGroupIdentifiers).
const LOG_GROUPS_MAX: usize = 50;
/// DescribeQueries' maxResults bounds and default.
const DESCRIBE_RESULTS_MAX: usize = 1000;
/// The only query language served; CloudWatch also has SQL and PPL.
const QUERY_LANGUAGE: &str = "CWLI";
const STATUSES: [&str; 7] = [
    "Scheduled",
    "Running",
    "Complete",
    "Failed",
    "Cancelled",
    "Timeout",
    "Unknown",
];

/// Where a query is in its life.
#[derive(Debug, Clone)]
enum Phase {
    Scheduled,
    Running,
    Complete(Arc<QueryOutput>),
    Failed,
    Cancelled,
    Timeout,
}

impl Phase {
    fn status(&self) -> &'static str {
        match self {
            Phase::Scheduled => "Scheduled",
            Phase::Running => "Running",
            Phase::Complete(_) => "Complete",
            Phase::Failed => "Failed",
            Phase::Cancelled => "Cancelled",
            Phase::Timeout => "Timeout",
        }
    }

    fn ended(&self) -> bool {
        !matches!(self, Phase::Scheduled | Phase::Running)
    }
}

#[derive(Debug)]
struct QueryEntry {
    vault: PathBuf,
    query_string: String,
    groups: Vec<String>,
    create_ms: i64,
    ended_ms: Option<i64>,
    phase: Phase,
    cancel: Arc<AtomicBool>,
}

type Registry = HashMap<String, QueryEntry>;

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    // A panic while holding the lock cannot leave an entry half-written (every update is a
    // single assignment), so a poisoned lock is still consistent.
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Queries that may execute at the same time in this process: the work is CPU-bound, so more
/// than the cores only adds memory. Others wait as `Scheduled`.
fn executor_slots() -> Arc<tokio::sync::Semaphore> {
    static SLOTS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Arc::new(tokio::sync::Semaphore::new(cores.clamp(1, 8)))
        })
        .clone()
}

/// Drops ended queries past their keep time, then the oldest beyond the per-vault count.
fn prune(reg: &mut Registry, now_ms: i64) {
    reg.retain(|_, q| q.ended_ms.is_none_or(|t| now_ms - t < ENDED_KEEP_MS));
    let mut ended: HashMap<&Path, Vec<(i64, &str)>> = HashMap::new();
    for (id, q) in reg.iter() {
        if let Some(t) = q.ended_ms {
            ended.entry(&q.vault).or_default().push((t, id));
        }
    }
    let mut drop: Vec<String> = Vec::new();
    for list in ended.values_mut() {
        if list.len() > ENDED_QUERIES_MAX {
            list.sort_unstable();
            let excess = list.len() - ENDED_QUERIES_MAX;
            drop.extend(list[..excess].iter().map(|(_, id)| id.to_string()));
        }
    }
    for id in drop {
        reg.remove(&id);
    }
}

/// Moves a query to `phase` unless it already ended. Returns whether it moved.
fn advance(id: &str, phase: Phase) -> bool {
    let mut reg = registry();
    match reg.get_mut(id) {
        Some(q) if !q.phase.ended() => {
            if phase.ended() {
                q.ended_ms = Some(now_ms());
            }
            q.phase = phase;
            true
        }
        _ => false,
    }
}

fn query_not_found() -> ApiError {
    ApiError::not_found("The specified query does not exist.")
}

fn vault_key(app: &AppState) -> PathBuf {
    app.vault.config().data_dir.clone()
}

// ------------------------------------------------------------------------------ StartQuery

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartQuery {
    log_group_name: Option<String>,
    log_group_names: Option<Vec<String>>,
    log_group_identifiers: Option<Vec<String>>,
    start_time: i64,
    end_time: i64,
    query_string: String,
    limit: Option<i64>,
    query_language: Option<String>,
}

/// The log groups a StartQuery names: exactly one of the three members, deduplicated in
/// order of first mention.
fn query_groups(req: &StartQuery) -> Result<Vec<String>, ApiError> {
    let given = [
        req.log_group_name.is_some(),
        req.log_group_names.is_some(),
        req.log_group_identifiers.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(ApiError::invalid(
            "exactly one of logGroupName, logGroupNames or logGroupIdentifiers must be given",
        ));
    }
    let names: Vec<String> = if let Some(n) = &req.log_group_name {
        vec![n.clone()]
    } else if let Some(list) = &req.log_group_names {
        list.clone()
    } else {
        req.log_group_identifiers
            .iter()
            .flatten()
            .map(|i| group_from_identifier(i))
            .collect()
    };
    if names.is_empty() || names.len() > LOG_GROUPS_MAX {
        return Err(ApiError::invalid(format!(
            "a query must name 1 to {LOG_GROUPS_MAX} log groups"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// `[startTime, endTime]` in seconds, both inclusive, as `[start_ms, end_ms)`.
fn time_range_ms(start_s: i64, end_s: i64) -> Result<(i64, i64), ApiError> {
    if end_s < start_s {
        return Err(ApiError::invalid("endTime must not be before startTime"));
    }
    let start_ms = start_s.checked_mul(1000);
    let end_ms = end_s.checked_add(1).and_then(|e| e.checked_mul(1000));
    match (start_ms, end_ms) {
        (Some(s), Some(e)) => Ok((s, e)),
        _ => Err(ApiError::invalid(
            "startTime and endTime are epoch seconds and out of range",
        )),
    }
}

/// The MalformedQueryException of a syntax error. The location carries the model's
/// `startCharOffset`/`endCharOffset` (what boto3 parses) and `start`/`end`/`line` (0-based
/// character offsets, end exclusive; 1-based line).
fn malformed(e: &trailvault_query::SyntaxError) -> ApiError {
    ApiError::new(
        "MalformedQueryException",
        format!("query is malformed: {e}"),
    )
    .with_member(
        "queryCompileError",
        json!({
            "location": {
                "start": e.start,
                "end": e.end,
                "line": e.line,
                "startCharOffset": e.start,
                "endCharOffset": e.end,
            },
            "message": e.to_string(),
        }),
    )
}

pub fn start_query(app: &AppState, req: StartQuery) -> Result<Value, ApiError> {
    match req.query_language.as_deref() {
        None | Some(QUERY_LANGUAGE) => {}
        Some(l @ ("SQL" | "PPL")) => {
            return Err(ApiError::invalid(format!(
                "queryLanguage {l} is not supported here; use CWLI (Logs Insights QL)"
            )))
        }
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "queryLanguage must be CWLI, SQL or PPL, not {l:?}"
            )))
        }
    }
    let groups = query_groups(&req)?;
    let (start_ms, end_ms) = time_range_ms(req.start_time, req.end_time)?;
    let limit = match req.limit {
        None => LIMIT_ROWS_MAX,
        Some(n) if n >= 1 && n <= LIMIT_ROWS_MAX as i64 => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {LIMIT_ROWS_MAX}"
            )))
        }
    };
    let query = match Query::parse(&req.query_string) {
        Ok(q) => q,
        Err(QueryError::Syntax(e)) => return Err(malformed(&e)),
        Err(e) => return Err(ApiError::invalid(e.to_string())),
    };
    for g in &groups {
        app.vault.log_group(g)?;
    }
    let key = vault_key(app);
    let id = crate::request_id();
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let mut reg = registry();
        let now = now_ms();
        prune(&mut reg, now);
        let live = reg
            .values()
            .filter(|q| q.vault == key && !q.phase.ended())
            .count();
        if live >= RUNNING_QUERIES_MAX {
            return Err(ApiError::new(
                "LimitExceededException",
                format!("at most {RUNNING_QUERIES_MAX} queries can run at once; stop one or wait for one to end"),
            ));
        }
        reg.insert(
            id.clone(),
            QueryEntry {
                vault: key,
                query_string: req.query_string,
                groups: groups.clone(),
                create_ms: now,
                ended_ms: None,
                phase: Phase::Scheduled,
                cancel: cancel.clone(),
            },
        );
    }
    let job = Job {
        id: id.clone(),
        vault: app.vault.clone(),
        account_id: app.account_id.clone(),
        groups,
        start_ms,
        end_ms,
        query: Arc::new(query),
        opts: ExecOptions {
            default_limit_rows: limit,
            cancel: Some(cancel),
            ..ExecOptions::default()
        },
        timeout: QUERY_TIMEOUT,
    };
    tokio::spawn(job.run());
    Ok(json!({ "queryId": id }))
}

/// One query's execution, owned by its task.
struct Job {
    id: String,
    vault: Vault,
    account_id: String,
    groups: Vec<String>,
    start_ms: i64,
    /// Exclusive.
    end_ms: i64,
    query: Arc<Query>,
    opts: ExecOptions,
    timeout: Duration,
}

/// How a query's work ended, before it is recorded.
#[derive(Debug)]
enum Outcome {
    Complete(QueryOutput),
    /// Logged, never shown to the client: GetQueryResults has no member for a reason.
    Failed(String),
    Cancelled,
    Timeout,
}

impl Job {
    async fn run(self) {
        let slots = executor_slots();
        let Ok(_slot) = slots.acquire_owned().await else {
            // The semaphore is never closed; treat it as a failure rather than hang.
            advance(&self.id, Phase::Failed);
            return;
        };
        if !advance(&self.id, Phase::Running) {
            return; // stopped while it waited
        }
        let cancel = self
            .opts
            .cancel
            .clone()
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        let id = self.id.clone();
        let timeout = self.timeout;
        let outcome = within_timeout(self.work(), timeout, &cancel).await;
        let phase = match outcome {
            Outcome::Complete(out) => Phase::Complete(Arc::new(out)),
            Outcome::Failed(why) => {
                tracing::warn!(query_id = %id, error = %why, "query failed");
                Phase::Failed
            }
            Outcome::Cancelled => Phase::Cancelled,
            Outcome::Timeout => Phase::Timeout,
        };
        advance(&id, phase);
    }

    async fn work(self) -> Outcome {
        let cancelled = || {
            self.opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
        };
        let mut events: Vec<StoredEvent> = Vec::new();
        let mut bytes = 0usize;
        for g in &self.groups {
            if cancelled() {
                return Outcome::Cancelled;
            }
            let got = match self
                .vault
                .read_events(
                    g,
                    &StreamFilter::All,
                    Some(self.start_ms),
                    Some(self.end_ms),
                )
                .await
            {
                Ok(got) => got,
                Err(e) => return Outcome::Failed(format!("reading log group {g}: {e}")),
            };
            bytes = bytes.saturating_add(got.iter().map(|e| e.message.len()).sum());
            if bytes > SCAN_BYTES_MAX {
                return Outcome::Failed(format!(
                    "the time range holds more than {SCAN_BYTES_MAX} bytes of messages"
                ));
            }
            events.extend(got);
        }
        let several = self.groups.len() > 1;
        let Job {
            query,
            opts,
            account_id,
            ..
        } = self;
        let ran = tokio::task::spawn_blocking(move || {
            if several {
                // Each group's events are already in time order; a stable sort merges the
                // runs and keeps equal timestamps in group order.
                events.sort_by_key(|e| e.timestamp_ms);
            }
            query.execute(events.iter().map(|e| (account_id.as_str(), e)), &opts)
        })
        .await;
        match ran {
            Ok(Ok(out)) => Outcome::Complete(out),
            Ok(Err(QueryError::Cancelled)) => Outcome::Cancelled,
            Ok(Err(e)) => Outcome::Failed(e.to_string()),
            Err(e) => Outcome::Failed(format!("query execution stopped: {e}")),
        }
    }
}

/// Runs `work`, raising `cancel` and answering `Timeout` if it takes longer than `timeout`.
/// Work already on a blocking thread sees the flag at its next check and stops.
async fn within_timeout(
    work: impl Future<Output = Outcome>,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Outcome {
    match tokio::time::timeout(timeout, work).await {
        Ok(outcome) => outcome,
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            Outcome::Timeout
        }
    }
}

// ------------------------------------------------------------------------- GetQueryResults

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetQueryResults {
    query_id: String,
    next_token: Option<String>,
    max_items: Option<i64>,
}

fn encode_row_offset(offset: usize) -> String {
    format!("r/{offset}")
}

fn decode_row_offset(token: &str) -> Option<usize> {
    token.strip_prefix("r/")?.parse().ok()
}

pub fn get_query_results(app: &AppState, req: GetQueryResults) -> Result<Value, ApiError> {
    let max_items = match req.max_items {
        None => LIMIT_ROWS_MAX,
        Some(n) if (0..=LIMIT_ROWS_MAX as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "maxItems must be 0 to {LIMIT_ROWS_MAX}, not {n}"
            )))
        }
    };
    let from = match req.next_token.as_deref() {
        None => 0,
        Some(t) => decode_row_offset(t)
            .ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))?,
    };
    let key = vault_key(app);
    let (phase, groups) = {
        let mut reg = registry();
        prune(&mut reg, now_ms());
        match reg.get(&req.query_id) {
            Some(q) if q.vault == key => (q.phase.clone(), q.groups.len()),
            _ => return Err(query_not_found()),
        }
    };
    let mut resp = json!({
        "status": phase.status(),
        "queryLanguage": QUERY_LANGUAGE,
        "results": [],
        "statistics": {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0},
    });
    if let Phase::Complete(out) = &phase {
        if from > out.rows.len() {
            return Err(ApiError::invalid("The specified nextToken is invalid."));
        }
        let to = from.saturating_add(max_items).min(out.rows.len());
        resp["results"] = json!(&out.rows[from..to]);
        let s = out.statistics;
        resp["statistics"] = json!({
            "recordsMatched": s.records_matched as f64,
            "recordsScanned": s.records_scanned as f64,
            "bytesScanned": s.bytes_scanned as f64,
            "logGroupsScanned": groups as f64,
            "resultCount": out.rows.len() as f64,
        });
        if to < out.rows.len() {
            resp["nextToken"] = json!(encode_row_offset(to));
        }
    }
    Ok(resp)
}

// ------------------------------------------------------------------------------- StopQuery

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopQuery {
    query_id: String,
}

pub fn stop_query(app: &AppState, req: StopQuery) -> Result<Value, ApiError> {
    let key = vault_key(app);
    let mut reg = registry();
    let Some(q) = reg.get_mut(&req.query_id).filter(|q| q.vault == key) else {
        return Err(query_not_found());
    };
    if q.phase.ended() {
        return Err(ApiError::invalid(format!(
            "query {} has already ended ({})",
            req.query_id,
            q.phase.status()
        )));
    }
    q.cancel.store(true, Ordering::Relaxed);
    q.phase = Phase::Cancelled;
    q.ended_ms = Some(now_ms());
    Ok(json!({ "success": true }))
}

// ------------------------------------------------------------------------- DescribeQueries

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeQueries {
    log_group_name: Option<String>,
    status: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    query_language: Option<String>,
}

/// A DescribeQueries position: newest first, ties by id.
type ListPosition = (std::cmp::Reverse<i64>, String);

fn encode_list_position((std::cmp::Reverse(t), id): &ListPosition) -> String {
    format!("q/{t}/{id}")
}

fn decode_list_position(token: &str) -> Option<ListPosition> {
    let (t, id) = token.strip_prefix("q/")?.split_once('/')?;
    Some((std::cmp::Reverse(t.parse().ok()?), id.to_string()))
}

pub fn describe_queries(app: &AppState, req: DescribeQueries) -> Result<Value, ApiError> {
    let max = match req.max_results {
        None => DESCRIBE_RESULTS_MAX,
        Some(n) if n >= 1 && n <= DESCRIBE_RESULTS_MAX as i64 => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "maxResults must be 1 to {DESCRIBE_RESULTS_MAX}, not {n}"
            )))
        }
    };
    if let Some(s) = &req.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid(format!(
                "status must be one of {STATUSES:?}, not {s:?}"
            )));
        }
    }
    let after = match req.next_token.as_deref() {
        None => None,
        Some(t) => Some(
            decode_list_position(t)
                .ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))?,
        ),
    };
    let other_language = req
        .query_language
        .as_deref()
        .is_some_and(|l| l != QUERY_LANGUAGE);
    let key = vault_key(app);
    let now = now_ms();
    let mut rows: Vec<(ListPosition, Value)> = {
        let mut reg = registry();
        prune(&mut reg, now);
        reg.iter()
            .filter(|(_, q)| q.vault == key && !other_language)
            .filter(|(_, q)| {
                req.log_group_name
                    .as_ref()
                    .is_none_or(|g| q.groups.contains(g))
            })
            .filter(|(_, q)| req.status.as_deref().is_none_or(|s| s == q.phase.status()))
            .map(|(id, q)| {
                let mut info = json!({
                    "queryId": id,
                    "queryString": q.query_string,
                    "status": q.phase.status(),
                    "createTime": q.create_ms,
                    "logGroupName": q.groups.first(),
                    "queryLanguage": QUERY_LANGUAGE,
                });
                if let Some(t) = q.ended_ms {
                    info["queryDuration"] = json!(t - q.create_ms);
                }
                if let Phase::Complete(out) = &q.phase {
                    info["bytesScanned"] = json!(out.statistics.bytes_scanned as f64);
                }
                ((std::cmp::Reverse(q.create_ms), id.clone()), info)
            })
            .collect()
    };
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let start = after.map_or(0, |p| rows.partition_point(|(k, _)| *k <= p));
    let end = start.saturating_add(max).min(rows.len());
    let mut resp = json!({});
    if end < rows.len() && end > start {
        resp["nextToken"] = json!(encode_list_position(&rows[end - 1].0));
    }
    let page: Vec<Value> = rows.drain(start..end).map(|(_, v)| v).collect();
    resp["queries"] = json!(page);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(vault: &str, ended_ms: Option<i64>) -> QueryEntry {
        QueryEntry {
            vault: PathBuf::from(vault),
            query_string: "fields @message".into(),
            groups: vec!["g".into()],
            create_ms: 0,
            ended_ms,
            phase: if ended_ms.is_some() {
                Phase::Failed
            } else {
                Phase::Running
            },
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn prune_drops_expired_and_the_oldest_beyond_the_count_per_vault() {
        let now = 10 * ENDED_KEEP_MS;
        let mut reg = Registry::new();
        reg.insert("expired".into(), entry("a", Some(now - ENDED_KEEP_MS)));
        reg.insert("running-old".into(), entry("a", None));
        for i in 0..ENDED_QUERIES_MAX + 3 {
            reg.insert(format!("a{i:03}"), entry("a", Some(now - 1000 + i as i64)));
        }
        for i in 0..5 {
            reg.insert(format!("b{i}"), entry("b", Some(now - 5)));
        }
        prune(&mut reg, now);
        assert!(!reg.contains_key("expired"));
        assert!(
            reg.contains_key("running-old"),
            "running queries are never pruned"
        );
        for i in 0..3 {
            assert!(!reg.contains_key(&format!("a{i:03}")), "a{i:03} kept");
        }
        assert!(reg.contains_key("a003"));
        assert_eq!(reg.keys().filter(|k| k.starts_with('b')).count(), 5);
        assert_eq!(reg.len(), 1 + ENDED_QUERIES_MAX + 5);
    }

    #[test]
    fn time_range_is_inclusive_seconds() {
        assert_eq!(time_range_ms(10, 20).unwrap(), (10_000, 21_000));
        assert_eq!(time_range_ms(5, 5).unwrap(), (5_000, 6_000));
        assert!(time_range_ms(20, 10).is_err());
        assert!(time_range_ms(0, i64::MAX).is_err());
        assert!(time_range_ms(i64::MIN, 0).is_err());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_row_offset(&encode_row_offset(42)), Some(42));
        let p = (std::cmp::Reverse(-7), "a/b".to_string());
        assert_eq!(decode_list_position(&encode_list_position(&p)), Some(p));
        for bad in ["", "r/", "r/-1", "r/x", "o/3", "q/1/a"] {
            assert!(decode_row_offset(bad).is_none(), "{bad}");
        }
        for bad in ["", "q/x/y", "q/5", "r/3"] {
            assert!(decode_list_position(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_query_past_its_timeout_is_cancelled() {
        let cancel = AtomicBool::new(false);
        let out = within_timeout(
            std::future::pending::<Outcome>(),
            Duration::from_millis(20),
            &cancel,
        )
        .await;
        assert!(matches!(out, Outcome::Timeout), "{out:?}");
        assert!(cancel.load(Ordering::Relaxed));
        let cancel = AtomicBool::new(false);
        let out = within_timeout(
            async { Outcome::Cancelled },
            Duration::from_secs(5),
            &cancel,
        )
        .await;
        assert!(matches!(out, Outcome::Cancelled));
        assert!(!cancel.load(Ordering::Relaxed));
    }

    #[test]
    fn an_ended_query_never_changes_status() {
        let id = format!("unit-{}", crate::request_id());
        registry().insert(id.clone(), entry("unit", None));
        assert!(advance(&id, Phase::Cancelled));
        assert!(!advance(&id, Phase::Failed));
        assert!(!advance(&id, Phase::Running));
        let reg = registry();
        let q = reg.get(&id).unwrap();
        assert_eq!(q.phase.status(), "Cancelled");
        assert!(q.ended_ms.is_some());
        drop(reg);
        registry().remove(&id);
    }
}
