//! The streaming executor.
//!
//! A query is a chain of stages fed one row at a time. `filter`, `fields`, `parse`, `limit` and
//! `dedup` pass rows through as they come; `stats` and `sort` absorb rows and release theirs
//! when the input ends. Invariants:
//! - memory is bounded by [`ExecOptions`]: stats groups, rows buffered by `sort`, values held by
//!   `pct`/`count_distinct` and keys remembered by `dedup`; exceeding one is a clean
//!   [`QueryError::MemoryLimit`], never an allocation failure;
//! - a `sort` followed (through row-preserving stages) by a `limit` keeps only the top k rows;
//! - once every row the query can return is produced (a `limit` reached with no blocking stage
//!   before it), the scan stops;
//! - each message is parsed as JSON at most once, lazily, and only for the paths the query names;
//! - the cancel flag is checked every [`CANCEL_CHECK_ROWS`] events.

use crate::aggregate::{AggState, HeldValues};
use crate::ast::*;
use crate::error::QueryError;
use crate::functions;
use crate::json::JsonPaths;
use crate::value::{values_compare, values_equal, GroupKey, SortKey, Value};
use serde::Serialize;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use trailvault_model::StoredEvent;

/// How often (in events scanned) the cancel flag is read.
pub const CANCEL_CHECK_ROWS: u64 = 4096;

/// Limits and controls for one execution.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Most distinct groups one `stats` may hold (also bounds `dedup`'s remembered keys).
    pub groups_max: usize,
    /// Most rows a `sort` without a following `limit` may buffer.
    pub buffered_rows_max: usize,
    /// Most values `pct` and `count_distinct` may hold across the groups of one `stats`.
    pub held_values_max: usize,
    /// Rows returned when the query has no `limit` (Insights: 10,000).
    pub default_limit_rows: usize,
    /// Raised by another thread to stop the query with [`QueryError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            groups_max: 500_000,
            buffered_rows_max: 1_000_000,
            held_values_max: 20_000_000,
            default_limit_rows: crate::parser::LIMIT_ROWS_MAX,
            cancel: None,
        }
    }
}

/// One `{field, value}` pair of a result row, as GetQueryResults returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultField {
    pub field: String,
    pub value: String,
}

/// GetQueryResults' `statistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatistics {
    /// Events that passed every filter before the first stats/sort/dedup/limit.
    pub records_matched: u64,
    pub records_scanned: u64,
    /// UTF-8 bytes of the messages scanned.
    pub bytes_scanned: u64,
}

/// A finished query's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryOutput {
    /// The columns the query displays, in order (`@ptr` is not among them).
    pub fields: Vec<String>,
    /// Rows as GetQueryResults presents them: only the fields that have a value, in column
    /// order, followed by `@ptr` (the event id) for rows that are single events.
    pub rows: Vec<Vec<ResultField>>,
    pub statistics: QueryStatistics,
}

/// Built-in fields every event has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoField {
    Message,
    Timestamp,
    IngestionTime,
    LogStream,
    Log,
    LogGroup,
    Ptr,
}

impl AutoField {
    pub(crate) fn from_name(name: &str) -> Option<AutoField> {
        Some(match name {
            "@message" => AutoField::Message,
            "@timestamp" => AutoField::Timestamp,
            "@ingestionTime" => AutoField::IngestionTime,
            "@logStream" => AutoField::LogStream,
            "@log" => AutoField::Log,
            "@logGroup" => AutoField::LogGroup,
            "@ptr" => AutoField::Ptr,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    Auto(AutoField),
    Json(usize),
}

/// Everything the executor needs that is fixed once the query is parsed.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub names: Vec<String>,
    pub kinds: Vec<FieldKind>,
    pub json: JsonPaths,
    /// Field ids displayed, in order.
    pub display: Vec<usize>,
    /// Whether result rows are aggregates (no `@ptr`).
    pub aggregated: bool,
    /// Texts every event must contain to possibly pass the leading filters: checked on the raw
    /// message before any JSON is parsed (see [`required_texts`]).
    pub prefilter: Vec<String>,
}

/// Whether `s`, as a JSON string, is written byte for byte the same (no escapes). `/` is
/// excluded because JSON writers may escape it.
fn json_verbatim(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && b != b'/')
}

/// Texts that must occur in the raw message of any event passing the filters that open the
/// query. Only conjuncts over JSON fields no earlier command assigned qualify:
/// `field = "text"` needs `"text"` (quotes included), `field like "text"` needs `text`.
/// Numeric-looking and boolean texts are skipped, as they may match numbers or booleans
/// written differently. Stops at the first command that is not `filter`, `fields` or `parse`,
/// because dropping rows early before `limit`, `sort`, `dedup` or `stats` is only safe when
/// those rows would have been dropped at the same point anyway.
fn required_texts(commands: &[Command], kinds: &[FieldKind]) -> Vec<String> {
    let mut assigned: HashSet<usize> = HashSet::new();
    let mut out = Vec::new();
    let is_json_field = |e: &Expr, assigned: &HashSet<usize>| match e {
        Expr::Field(f) => {
            matches!(kinds.get(f.id), Some(FieldKind::Json(_))) && !assigned.contains(&f.id)
        }
        _ => false,
    };
    for c in commands {
        match c {
            Command::Fields(ps) => ps.iter().for_each(|p| {
                assigned.insert(p.target.id);
            }),
            Command::Parse(p) => p.targets.iter().for_each(|t| {
                assigned.insert(t.id);
            }),
            Command::Display(_) => {}
            Command::Filter(e) => {
                let mut conjuncts = vec![e];
                while let Some(x) = conjuncts.pop() {
                    match x {
                        Expr::And(a, b) => {
                            conjuncts.push(b);
                            conjuncts.push(a);
                        }
                        Expr::Cmp(CmpOp::Eq, a, b) => {
                            let lit = match (&**a, &**b) {
                                (f, Expr::Str(s)) | (Expr::Str(s), f)
                                    if is_json_field(f, &assigned) =>
                                {
                                    s
                                }
                                _ => continue,
                            };
                            let numeric = crate::value::parse_decimal(lit).is_some();
                            if json_verbatim(lit)
                                && !numeric
                                && &**lit != "true"
                                && &**lit != "false"
                            {
                                out.push(format!("\"{lit}\""));
                            }
                        }
                        Expr::Like {
                            expr,
                            pattern: Pattern::Substring(sub),
                            negated: false,
                        } if is_json_field(expr, &assigned) && json_verbatim(sub) => {
                            out.push(sub.clone());
                        }
                        _ => {}
                    }
                }
            }
            _ => break,
        }
    }
    out
}

impl Plan {
    pub(crate) fn new(names: Vec<String>, commands: &[Command]) -> Plan {
        let mut kinds = Vec::with_capacity(names.len());
        let mut json_paths = Vec::new();
        for name in &names {
            match AutoField::from_name(name) {
                Some(a) => kinds.push(FieldKind::Auto(a)),
                None => {
                    kinds.push(FieldKind::Json(json_paths.len()));
                    json_paths.push(name.as_str());
                }
            }
        }
        let json = JsonPaths::new(json_paths.iter().enumerate().map(|(i, p)| (*p, i)));
        let prefilter = required_texts(commands, &kinds);

        // Columns: the default pair, replaced by the first `fields`, extended by later ones;
        // `stats` replaces them with its groups and outputs; the last `display` wins.
        let mut cols: Vec<String> = vec!["@timestamp".into(), "@message".into()];
        let mut default_cols = true;
        let mut aggregated = false;
        let mut display: Option<Vec<String>> = None;
        let add = |cols: &mut Vec<String>, n: &str| {
            if !cols.iter().any(|c| c == n) {
                cols.push(n.to_string());
            }
        };
        for c in commands {
            match c {
                Command::Fields(ps) => {
                    if default_cols {
                        cols.clear();
                        default_cols = false;
                    }
                    ps.iter().for_each(|p| add(&mut cols, &p.target.name));
                }
                Command::Parse(p) if default_cols => {
                    p.targets.iter().for_each(|t| add(&mut cols, &t.name));
                }
                Command::Stats(s) => {
                    cols.clear();
                    default_cols = false;
                    aggregated = true;
                    s.by.iter().for_each(|p| add(&mut cols, &p.target.name));
                    s.outputs
                        .iter()
                        .for_each(|p| add(&mut cols, &p.target.name));
                }
                Command::Display(fs) => {
                    display = Some(fs.iter().map(|f| f.name.clone()).collect());
                }
                _ => {}
            }
        }
        let cols = display.unwrap_or(cols);
        let mut names = names;
        let display = cols
            .iter()
            .map(|c| match names.iter().position(|x| x == c) {
                Some(id) => id,
                None => {
                    // `@timestamp`/`@message` shown by default without being named.
                    names.push(c.clone());
                    kinds.push(match AutoField::from_name(c) {
                        Some(a) => FieldKind::Auto(a),
                        None => FieldKind::Json(usize::MAX),
                    });
                    names.len() - 1
                }
            })
            .collect();
        Plan {
            names,
            kinds,
            json,
            display,
            aggregated,
            prefilter,
        }
    }
}

struct EventRef<'e> {
    account: &'e str,
    event: &'e StoredEvent,
}

/// A row in flight: an event (with lazily extracted JSON fields) plus computed fields, or,
/// after `stats`, computed fields only.
struct Row<'e> {
    ev: Option<EventRef<'e>>,
    /// Values set by `fields`, `parse` and `stats`, indexed by field id; empty until first set.
    slots: Vec<Value>,
    json: OnceCell<Option<Vec<Value>>>,
    message: OnceCell<Value>,
}

impl<'e> Row<'e> {
    fn event(account: &'e str, event: &'e StoredEvent) -> Row<'e> {
        Row {
            ev: Some(EventRef { account, event }),
            slots: Vec::new(),
            json: OnceCell::new(),
            message: OnceCell::new(),
        }
    }

    fn computed(slots: Vec<Value>) -> Row<'e> {
        Row {
            ev: None,
            slots,
            json: OnceCell::new(),
            message: OnceCell::new(),
        }
    }

    fn set(&mut self, id: usize, v: Value, n_fields: usize) {
        if self.slots.len() < n_fields {
            self.slots.resize(n_fields, Value::Null);
        }
        if let Some(s) = self.slots.get_mut(id) {
            *s = v;
        }
    }

    fn timestamp_ms(&self) -> Option<i64> {
        self.ev.as_ref().map(|e| e.event.timestamp_ms)
    }

    fn get(&self, id: usize, plan: &Plan) -> Value {
        if let Some(v) = self.slots.get(id) {
            if !v.is_null() {
                return v.clone();
            }
        }
        let Some(ev) = &self.ev else {
            return Value::Null;
        };
        match plan.kinds.get(id) {
            Some(FieldKind::Auto(a)) => match a {
                AutoField::Message => self
                    .message
                    .get_or_init(|| Value::str(&ev.event.message))
                    .clone(),
                AutoField::Timestamp => Value::Time(ev.event.timestamp_ms),
                AutoField::IngestionTime => Value::Time(ev.event.ingestion_time_ms),
                AutoField::LogStream => Value::str(&ev.event.stream),
                AutoField::LogGroup => Value::str(&ev.event.group),
                AutoField::Log => Value::str(&format!("{}:{}", ev.account, ev.event.group)),
                AutoField::Ptr => Value::str(&ev.event.event_id()),
            },
            Some(FieldKind::Json(slot)) => self
                .json
                .get_or_init(|| plan.json.extract(&ev.event.message))
                .as_ref()
                .and_then(|v| v.get(*slot))
                .cloned()
                .unwrap_or(Value::Null),
            None => Value::Null,
        }
    }
}

fn tri(v: &Value) -> Option<bool> {
    if v.is_null() {
        None
    } else {
        Some(v.truthy())
    }
}

fn from_tri(b: Option<bool>) -> Value {
    b.map_or(Value::Null, Value::Bool)
}

fn eval(e: &Expr, row: &Row, plan: &Plan, aggs: &[Value]) -> Value {
    match e {
        Expr::Field(f) => row.get(f.id, plan),
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Num(n) => Value::Num(*n),
        Expr::Period(_) => Value::Null,
        Expr::Agg(i) => aggs.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Neg(a) => match eval(a, row, plan, aggs).to_num() {
            Some(x) => Value::Num(-x),
            None => Value::Null,
        },
        Expr::Binary(op, a, b) => {
            let (Some(x), Some(y)) = (
                eval(a, row, plan, aggs).to_num(),
                eval(b, row, plan, aggs).to_num(),
            ) else {
                return Value::Null;
            };
            let r = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Rem => x % y,
                BinOp::Pow => x.powf(y),
            };
            if r.is_finite() {
                Value::Num(r)
            } else {
                Value::Null
            }
        }
        Expr::Cmp(op, a, b) => {
            let (x, y) = (eval(a, row, plan, aggs), eval(b, row, plan, aggs));
            let r = match op {
                CmpOp::Eq => values_equal(&x, &y),
                CmpOp::Ne => values_equal(&x, &y).map(|b| !b),
                CmpOp::Lt => values_compare(&x, &y).map(|o| o == Ordering::Less),
                CmpOp::Le => values_compare(&x, &y).map(|o| o != Ordering::Greater),
                CmpOp::Gt => values_compare(&x, &y).map(|o| o == Ordering::Greater),
                CmpOp::Ge => values_compare(&x, &y).map(|o| o != Ordering::Less),
            };
            from_tri(r)
        }
        Expr::And(a, b) => {
            let x = tri(&eval(a, row, plan, aggs));
            if x == Some(false) {
                return Value::Bool(false);
            }
            match (x, tri(&eval(b, row, plan, aggs))) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        Expr::Or(a, b) => {
            let x = tri(&eval(a, row, plan, aggs));
            if x == Some(true) {
                return Value::Bool(true);
            }
            match (x, tri(&eval(b, row, plan, aggs))) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        Expr::Not(a) => from_tri(tri(&eval(a, row, plan, aggs)).map(|b| !b)),
        Expr::Like {
            expr,
            pattern,
            negated,
        } => {
            let v = eval(expr, row, plan, aggs);
            let Some(text) = v.to_text() else {
                return Value::Null;
            };
            let hit = match pattern {
                Pattern::Substring(s) => text.contains(s.as_str()),
                Pattern::Regex(re) => re.is_match(&text),
            };
            Value::Bool(hit != *negated)
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, row, plan, aggs);
            if v.is_null() {
                return Value::Null;
            }
            let hit = list
                .iter()
                .any(|item| values_equal(&v, &eval(item, row, plan, aggs)) == Some(true));
            Value::Bool(hit != *negated)
        }
        Expr::Call(func, args) => {
            let vals: Vec<Value> = args.iter().map(|a| eval(a, row, plan, aggs)).collect();
            functions::call(*func, &vals, args, row.timestamp_ms())
        }
    }
}

enum Flow {
    Continue,
    /// Nothing more will be accepted downstream.
    Stop,
}

struct StatsState<'q, 'e> {
    cmd: &'q StatsCommand,
    index: HashMap<Vec<GroupKey>, usize>,
    groups: Vec<(Vec<Value>, Vec<AggState>)>,
    held: HeldValues,
    _rows: std::marker::PhantomData<Row<'e>>,
}

struct SortedRow<'e> {
    keys: Vec<SortKey>,
    seq: u64,
    row: Row<'e>,
}

struct SortState<'q, 'e> {
    keys: &'q [SortKeySpec],
    top_k: Option<usize>,
    buf: Vec<SortedRow<'e>>,
    seq: u64,
}

fn cmp_sorted(specs: &[SortKeySpec], a: &SortedRow, b: &SortedRow) -> Ordering {
    for (spec, (x, y)) in specs.iter().zip(a.keys.iter().zip(&b.keys)) {
        // Absent values go last whatever the direction.
        let o = match (x, y) {
            (SortKey::Null, SortKey::Null) => Ordering::Equal,
            (SortKey::Null, _) => Ordering::Greater,
            (_, SortKey::Null) => Ordering::Less,
            _ if spec.descending => y.cmp(x),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.seq.cmp(&b.seq)
}

impl SortState<'_, '_> {
    fn prune(&mut self, k: usize) {
        if self.buf.len() > k {
            let keys = self.keys;
            self.buf
                .select_nth_unstable_by(k - 1, |a, b| cmp_sorted(keys, a, b));
            self.buf.truncate(k);
        }
    }
}

enum Stage<'q, 'e> {
    Filter(&'q Expr),
    Fields(&'q [Projection]),
    Parse(&'q ParseCommand),
    Stats(Box<StatsState<'q, 'e>>),
    Sort(SortState<'q, 'e>),
    Limit {
        n: usize,
        seen: usize,
    },
    Dedup {
        fields: &'q [FieldRef],
        seen: HashSet<Vec<GroupKey>>,
    },
    /// Counts `recordsMatched`.
    Matched,
}

struct Pipeline<'q, 'e> {
    plan: &'q Plan,
    opts: &'q ExecOptions,
    stages: Vec<Stage<'q, 'e>>,
    out: Vec<Row<'e>>,
    matched: u64,
}

impl<'q, 'e> Pipeline<'q, 'e> {
    fn new(plan: &'q Plan, commands: &'q [Command], opts: &'q ExecOptions) -> Self {
        let mut stages: Vec<Stage> = Vec::new();
        let mut matched_placed = false;
        let ends_with_limit = matches!(commands.last(), Some(Command::Limit(_)));
        for (i, c) in commands.iter().enumerate() {
            let blocking = matches!(
                c,
                Command::Stats(_) | Command::Sort(_) | Command::Limit(_) | Command::Dedup(_)
            );
            if blocking && !matched_placed {
                stages.push(Stage::Matched);
                matched_placed = true;
            }
            match c {
                Command::Fields(p) => stages.push(Stage::Fields(p)),
                Command::Display(_) => {}
                Command::Filter(e) => stages.push(Stage::Filter(e)),
                Command::Parse(p) => stages.push(Stage::Parse(p)),
                Command::Stats(s) => stages.push(Stage::Stats(Box::new(StatsState {
                    cmd: s,
                    index: HashMap::new(),
                    groups: Vec::new(),
                    held: HeldValues {
                        held: 0,
                        max: opts.held_values_max,
                    },
                    _rows: std::marker::PhantomData,
                }))),
                Command::Sort(keys) => {
                    // Top-k when only row-preserving stages stand between this sort and a limit.
                    let mut top_k = None;
                    let mut reached_end = true;
                    for later in &commands[i + 1..] {
                        match later {
                            Command::Fields(_) | Command::Parse(_) | Command::Display(_) => {}
                            Command::Limit(n) => {
                                top_k = Some(*n);
                                reached_end = false;
                                break;
                            }
                            _ => {
                                reached_end = false;
                                break;
                            }
                        }
                    }
                    if reached_end {
                        top_k = Some(opts.default_limit_rows.max(1));
                    }
                    stages.push(Stage::Sort(SortState {
                        keys,
                        top_k,
                        buf: Vec::new(),
                        seq: 0,
                    }))
                }
                Command::Limit(n) => stages.push(Stage::Limit { n: *n, seen: 0 }),
                Command::Dedup(f) => stages.push(Stage::Dedup {
                    fields: f,
                    seen: HashSet::new(),
                }),
            }
        }
        if !matched_placed {
            stages.push(Stage::Matched);
        }
        if !ends_with_limit {
            stages.push(Stage::Limit {
                n: opts.default_limit_rows.max(1),
                seen: 0,
            });
        }
        Pipeline {
            plan,
            opts,
            stages,
            out: Vec::new(),
            matched: 0,
        }
    }

    fn push(&mut self, from: usize, mut row: Row<'e>) -> Result<Flow, QueryError> {
        let plan = self.plan;
        let n_fields = plan.names.len();
        let mut i = from;
        while i < self.stages.len() {
            match &mut self.stages[i] {
                Stage::Filter(e) => {
                    if !eval(e, &row, plan, &[]).truthy() {
                        return Ok(Flow::Continue);
                    }
                }
                Stage::Fields(ps) => {
                    for p in ps.iter() {
                        if matches!(&p.expr, Expr::Field(f) if f.id == p.target.id) {
                            continue;
                        }
                        let v = eval(&p.expr, &row, plan, &[]);
                        row.set(p.target.id, v, n_fields);
                    }
                }
                Stage::Parse(p) => {
                    let src = eval(&p.source, &row, plan, &[]);
                    if let Some(text) = src.to_text() {
                        let captured: Vec<(usize, Value)> = match &p.pattern {
                            ParsePattern::Glob { regex, .. } => match regex.captures(&text) {
                                Some(caps) => p
                                    .targets
                                    .iter()
                                    .enumerate()
                                    .filter_map(|(k, t)| {
                                        caps.get(k + 1).map(|m| (t.id, Value::str(m.as_str())))
                                    })
                                    .collect(),
                                None => Vec::new(),
                            },
                            ParsePattern::Regex(regex) => match regex.captures(&text) {
                                Some(caps) => p
                                    .targets
                                    .iter()
                                    .filter_map(|t| {
                                        caps.name(&t.name).map(|m| (t.id, Value::str(m.as_str())))
                                    })
                                    .collect(),
                                None => Vec::new(),
                            },
                        };
                        drop(text);
                        for (id, v) in captured {
                            row.set(id, v, n_fields);
                        }
                    }
                }
                Stage::Matched => self.matched += 1,
                Stage::Limit { n, seen } => {
                    if *seen >= *n {
                        return Ok(Flow::Stop);
                    }
                    *seen += 1;
                    let done = *seen >= *n;
                    let r = self.push(i + 1, row)?;
                    return Ok(if done { Flow::Stop } else { r });
                }
                Stage::Dedup { fields, seen } => {
                    let vals: Vec<Value> = fields.iter().map(|f| row.get(f.id, plan)).collect();
                    // Rows missing a dedup field are never considered duplicates.
                    if vals.iter().all(|v| !v.is_null()) {
                        let key: Vec<GroupKey> = vals.iter().map(GroupKey::of).collect();
                        if seen.contains(&key) {
                            return Ok(Flow::Continue);
                        }
                        if seen.len() >= self.opts.groups_max {
                            return Err(QueryError::MemoryLimit(format!(
                                "more than {} distinct dedup keys",
                                self.opts.groups_max
                            )));
                        }
                        seen.insert(key);
                    }
                }
                Stage::Stats(st) => {
                    let cmd = st.cmd;
                    let by_vals: Vec<Value> = cmd
                        .by
                        .iter()
                        .map(|p| eval(&p.expr, &row, plan, &[]))
                        .collect();
                    let key: Vec<GroupKey> = by_vals.iter().map(GroupKey::of).collect();
                    let gi = match st.index.get(&key) {
                        Some(&g) => g,
                        None => {
                            if st.groups.len() >= self.opts.groups_max {
                                return Err(QueryError::MemoryLimit(format!(
                                    "more than {} groups",
                                    self.opts.groups_max
                                )));
                            }
                            st.groups
                                .push((by_vals, cmd.aggs.iter().map(AggState::new).collect()));
                            st.index.insert(key, st.groups.len() - 1);
                            st.groups.len() - 1
                        }
                    };
                    let ts = row.timestamp_ms();
                    let StatsState { groups, held, .. } = &mut **st;
                    for (call, state) in cmd.aggs.iter().zip(groups[gi].1.iter_mut()) {
                        let v = match &call.arg {
                            Some(e) => eval(e, &row, plan, &[]),
                            None => Value::Null,
                        };
                        state.update(call.func, v, ts, held)?;
                    }
                    return Ok(Flow::Continue);
                }
                Stage::Sort(st) => {
                    let keys = st
                        .keys
                        .iter()
                        .map(|k| SortKey::of(&eval(&k.expr, &row, plan, &[])))
                        .collect();
                    st.seq += 1;
                    st.buf.push(SortedRow {
                        keys,
                        seq: st.seq,
                        row,
                    });
                    match st.top_k {
                        Some(k) if st.buf.len() >= 2 * k.max(1) => st.prune(k.max(1)),
                        Some(_) => {}
                        None if st.buf.len() > self.opts.buffered_rows_max => {
                            return Err(QueryError::MemoryLimit(format!(
                                "more than {} rows to sort",
                                self.opts.buffered_rows_max
                            )));
                        }
                        None => {}
                    }
                    return Ok(Flow::Continue);
                }
            }
            i += 1;
        }
        self.out.push(row);
        Ok(Flow::Continue)
    }

    /// Releases the rows of every blocking stage, in pipeline order.
    fn finish(&mut self) -> Result<(), QueryError> {
        let n_fields = self.plan.names.len();
        for i in 0..self.stages.len() {
            let rows: Vec<Row<'e>> = match &mut self.stages[i] {
                Stage::Stats(st) => {
                    let cmd = st.cmd;
                    let mut groups = std::mem::take(&mut st.groups);
                    st.index = HashMap::new();
                    if groups.is_empty() && cmd.by.is_empty() {
                        groups.push((Vec::new(), cmd.aggs.iter().map(AggState::new).collect()));
                    }
                    groups
                        .into_iter()
                        .map(|(by_vals, states)| {
                            let aggs: Vec<Value> = states
                                .into_iter()
                                .zip(&cmd.aggs)
                                .map(|(s, call)| s.finish(call))
                                .collect();
                            let mut row = Row::computed(vec![Value::Null; n_fields]);
                            for (p, v) in cmd.by.iter().zip(by_vals) {
                                row.set(p.target.id, v, n_fields);
                            }
                            for p in &cmd.outputs {
                                let v = eval(&p.expr, &row, self.plan, &aggs);
                                row.set(p.target.id, v, n_fields);
                            }
                            row
                        })
                        .collect()
                }
                Stage::Sort(st) => {
                    if let Some(k) = st.top_k {
                        st.prune(k.max(1));
                    }
                    let keys = st.keys;
                    let mut buf = std::mem::take(&mut st.buf);
                    buf.sort_by(|a, b| cmp_sorted(keys, a, b));
                    buf.into_iter().map(|s| s.row).collect()
                }
                _ => continue,
            };
            for row in rows {
                if let Flow::Stop = self.push(i + 1, row)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn execute<'e>(
    plan: &Plan,
    commands: &[Command],
    events: impl IntoIterator<Item = (&'e str, &'e StoredEvent)>,
    opts: &ExecOptions,
) -> Result<QueryOutput, QueryError> {
    let mut pipe = Pipeline::new(plan, commands, opts);
    let mut stats = QueryStatistics::default();
    for (account, event) in events {
        if stats.records_scanned % CANCEL_CHECK_ROWS == 0 {
            if let Some(flag) = &opts.cancel {
                if flag.load(AtomicOrdering::Relaxed) {
                    return Err(QueryError::Cancelled);
                }
            }
        }
        stats.records_scanned += 1;
        stats.bytes_scanned += event.message.len() as u64;
        if plan
            .prefilter
            .iter()
            .any(|t| !event.message.contains(t.as_str()))
        {
            continue;
        }
        if let Flow::Stop = pipe.push(0, Row::event(account, event))? {
            break;
        }
    }
    if let Some(flag) = &opts.cancel {
        if flag.load(AtomicOrdering::Relaxed) {
            return Err(QueryError::Cancelled);
        }
    }
    pipe.finish()?;
    stats.records_matched = pipe.matched;

    let fields: Vec<String> = plan
        .display
        .iter()
        .map(|&id| plan.names[id].clone())
        .collect();
    let rows = pipe
        .out
        .iter()
        .map(|row| {
            let mut out: Vec<ResultField> = plan
                .display
                .iter()
                .filter_map(|&id| {
                    let v = row.get(id, plan);
                    v.to_text().map(|t| ResultField {
                        field: plan.names[id].clone(),
                        value: t.into_owned(),
                    })
                })
                .collect();
            if !plan.aggregated {
                if let Some(ev) = &row.ev {
                    out.push(ResultField {
                        field: "@ptr".into(),
                        value: ev.event.event_id(),
                    });
                }
            }
            out
        })
        .collect();
    Ok(QueryOutput {
        fields,
        rows,
        statistics: stats,
    })
}

#[cfg(test)]
mod tests {
    use crate::Query;

    fn prefilter(q: &str) -> Vec<String> {
        Query::parse(q).unwrap().plan.prefilter.clone()
    }

    #[test]
    fn prefilter_takes_only_safe_literals() {
        assert_eq!(
            prefilter(r#"filter eventName = "ConsoleLogin" and ua like "cli" | stats count(*)"#),
            vec!["\"ConsoleLogin\"".to_string(), "cli".to_string()]
        );
        // or, numbers, booleans, escapes, slashes, regexes: nothing
        assert!(prefilter(r#"filter a = "x" or b = "y""#).is_empty());
        assert!(
            prefilter(r#"filter a = "200" and b = "true" and c = "a/b" and d like /x/"#).is_empty()
        );
        // assigned by parse or fields: not a message field any more
        assert!(prefilter(r#"parse @message "* *" as a, b | filter a = "x""#).is_empty());
        assert!(prefilter(r#"fields c as a | filter a = "x""#).is_empty());
        // after limit/sort/stats rows must not be dropped early
        assert!(prefilter(r#"limit 5 | filter a = "x""#).is_empty());
        // auto fields are not JSON
        assert!(prefilter(r#"filter @logStream = "x""#).is_empty());
        assert!(prefilter(r#"filter not a = "x""#).is_empty());
    }
}
