//! The monitoring engine: runs beside ingestion on its own threads.
//!
//! Threads:
//! - `monitor-eval`: takes acknowledged batches from a bounded queue, runs each group's metric
//!   filters through one [`PatternSet`] (one literal scan per event; JSON parsed only for
//!   candidates), merges per-minute data into the [`MonitorDb`], and pokes the alarm thread;
//! - `monitor-alarms`: evaluates every alarm each `alarm_tick_ms` (1 s by default) and right
//!   after new data, so alarms move on time whether or not data arrives and an ALARM follows
//!   data within about a second;
//! - `monitor-actions`: a single-threaded tokio runtime delivering transitions (webhooks,
//!   commands, the alarms log-group sink) without holding up evaluation;
//! - `monitor-subscriptions`: subscription filter delivery (see [`crate::subscription`]); the
//!   evaluator offers it every batch before running metric filters.
//!
//! Backpressure choice: [`MonitorEngine::submit`] never drops a batch. It is meant to be called
//! after the batch was acknowledged; when the queue (`queue_batches_max`) is full it blocks the
//! caller until the evaluator catches up, which slows the *next* ingestion, never the
//! acknowledgement already sent. Callers on an async executor that must not block use
//! [`MonitorEngine::try_submit`] and retry (or call `submit` from `spawn_blocking`).
//!
//! Invariants: a transition is recorded (state + history) before its actions run, and the
//! state check and write are one transaction, so concurrent evaluations never fire an action
//! twice. Metric filter definitions live in the same database and survive restarts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use trailvault_model::StoredEvent;

use crate::actions::{ActionDispatcher, AlarmSink};
use crate::alarm::{
    evaluate, evaluation_range, Alarm, AlarmError, AlarmSpec, AlarmState, Transition,
};
use crate::metric::{
    FilterState, MetricFilter, MetricFilterError, MetricFilterSpec, METRIC_FILTERS_PER_GROUP_MAX,
};
use crate::pattern::{Extracted, PatternSet};
use crate::remote::RemoteVault;
use crate::store::{MetricQuery, MonitorDb, StoreError};
use crate::subscription::{EventSource, SubscriptionError, SubscriptionFilterSpec, Subscriptions};

const FILTER_KEY: &str = "metric-filter|";
const PRUNE_EVERY_MS: i64 = 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MetricFilter(#[from] MetricFilterError),
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    /// Maps to LimitExceededException.
    #[error("{0}")]
    Limit(String),
    /// Maps to ResourceNotFoundException.
    #[error("{0}")]
    NotFound(String),
    #[error("monitor engine: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
}

/// How to run the engine.
pub struct EngineConfig {
    /// The SQLite file for metrics, alarms, targets and checkpoints.
    pub db_path: PathBuf,
    /// Batches waiting for evaluation before `submit` blocks.
    pub queue_batches_max: usize,
    /// How often every alarm is evaluated even without new data.
    pub alarm_tick_ms: u64,
    /// Receives one record per alarm transition (the `trailvault/alarms` log group).
    pub sink: Option<Arc<dyn AlarmSink>>,
    /// Reads stored events back for subscription catch-up (after a restart or a queue
    /// overflow). Without it a restart cannot re-deliver what was missed while down.
    pub event_source: Option<Arc<dyn EventSource>>,
    /// Writes to other vaults for `arn:trailvault:vault:NAME` subscription destinations.
    /// Without it PutSubscriptionFilter refuses such destinations.
    pub remote_vault: Option<Arc<dyn RemoteVault>>,
    /// The `owner` of subscription envelopes.
    pub account_id: String,
}

impl EngineConfig {
    pub fn new(db_path: PathBuf) -> EngineConfig {
        EngineConfig {
            db_path,
            queue_batches_max: 1024,
            alarm_tick_ms: 1000,
            sink: None,
            event_source: None,
            remote_vault: None,
            account_id: "000000000000".into(),
        }
    }
}

/// One group's compiled metric filters.
struct GroupFilters {
    filters: Vec<MetricFilter>,
    set: PatternSet,
    states: Mutex<Vec<FilterState>>,
}

enum Msg {
    Batch(String, Arc<Vec<StoredEvent>>),
    Flush(mpsc::Sender<()>),
}

struct Inner {
    db: MonitorDb,
    groups: RwLock<HashMap<String, Arc<GroupFilters>>>,
    actions: tokio::sync::mpsc::UnboundedSender<(Transition, Vec<String>)>,
    /// Serialises alarm evaluation passes (timer, data, explicit).
    eval_lock: Mutex<()>,
    stop: AtomicBool,
    subs: Subscriptions,
}

/// Handle to the running engine. Cheap to share behind an `Arc`.
pub struct MonitorEngine {
    inner: Arc<Inner>,
    batches: Mutex<Option<SyncSender<Msg>>>,
    poke: Mutex<Option<SyncSender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn filter_key(group: &str, name: &str) -> String {
    format!("{FILTER_KEY}{group}|{name}")
}

impl MonitorEngine {
    /// Opens the database, loads the metric filters and starts the threads.
    pub fn open(config: EngineConfig) -> Result<MonitorEngine, EngineError> {
        let db = MonitorDb::open(&config.db_path)?;
        let (atx, arx) = tokio::sync::mpsc::unbounded_channel();
        let subs = Subscriptions::open(
            db.clone(),
            config.event_source,
            config.remote_vault,
            config.account_id,
        )?;
        let inner = Arc::new(Inner {
            db: db.clone(),
            groups: RwLock::new(HashMap::new()),
            actions: atx,
            eval_lock: Mutex::new(()),
            stop: AtomicBool::new(false),
            subs,
        });
        // Load every stored filter, grouped.
        let mut by_group: HashMap<String, Vec<MetricFilterSpec>> = HashMap::new();
        for (key, value) in db.kv_scan(FILTER_KEY)? {
            let spec: MetricFilterSpec = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
            let group = spec
                .log_group_name
                .clone()
                .ok_or_else(|| StoreError::Corrupt(format!("{key}: no log group")))?;
            by_group.entry(group).or_default().push(spec);
        }
        for (group, specs) in by_group {
            inner.rebuild_group(&group, specs)?;
        }
        let (btx, brx) = mpsc::sync_channel(config.queue_batches_max.max(1));
        let (ptx, prx) = mpsc::sync_channel(1);
        let mut threads = Vec::new();
        let i = inner.clone();
        let poke = ptx.clone();
        threads.push(
            std::thread::Builder::new()
                .name("monitor-eval".into())
                .spawn(move || i.eval_loop(brx, poke))?,
        );
        let i = inner.clone();
        let tick = Duration::from_millis(config.alarm_tick_ms.clamp(10, 60_000));
        threads.push(
            std::thread::Builder::new()
                .name("monitor-alarms".into())
                .spawn(move || i.alarm_loop(prx, tick))?,
        );
        let dispatcher = ActionDispatcher::new(db, config.sink);
        threads.push(
            std::thread::Builder::new()
                .name("monitor-actions".into())
                .spawn(move || actions_loop(arx, dispatcher))?,
        );
        Ok(MonitorEngine {
            inner,
            batches: Mutex::new(Some(btx)),
            poke: Mutex::new(Some(ptx)),
            threads: Mutex::new(threads),
        })
    }

    /// The database (DescribeAlarms, DescribeAlarmHistory, metric queries, action targets).
    pub fn db(&self) -> &MonitorDb {
        &self.inner.db
    }

    /// Queues an acknowledged batch for evaluation; blocks only while the queue is full.
    pub fn submit(&self, group: &str, events: Arc<Vec<StoredEvent>>) {
        let tx = self
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(tx) = tx {
            if tx.send(Msg::Batch(group.to_string(), events)).is_err() {
                tracing::error!("monitor evaluator has stopped; batch not evaluated");
            }
        }
    }

    /// Like [`MonitorEngine::submit`] but never blocks: gives the batch back when the queue
    /// is full.
    pub fn try_submit(
        &self,
        group: &str,
        events: Arc<Vec<StoredEvent>>,
    ) -> Result<(), Arc<Vec<StoredEvent>>> {
        let tx = self
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(tx) = tx else { return Err(events) };
        match tx.try_send(Msg::Batch(group.to_string(), events)) {
            Ok(()) => Ok(()),
            Err(
                TrySendError::Full(Msg::Batch(_, e)) | TrySendError::Disconnected(Msg::Batch(_, e)),
            ) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Waits until every batch submitted so far is evaluated and stored, then evaluates all
    /// alarms once (tests, and CLI commands that want fresh numbers). Blocking.
    pub fn flush(&self) {
        let tx = self
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(tx) = tx {
            let (done_tx, done_rx) = mpsc::channel();
            if tx.send(Msg::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
        self.inner.evaluate_alarms(now_ms());
    }

    /// Evaluates every alarm as of `now_ms` (replays, tests). Returns the transitions made.
    pub fn evaluate_alarms_at(&self, now_ms: i64) -> Vec<Transition> {
        self.inner.evaluate_alarms(now_ms)
    }

    /// PutMetricFilter for `group` (creates or replaces by name; at most 100 per group).
    pub fn put_metric_filter(
        &self,
        group: &str,
        mut spec: MetricFilterSpec,
    ) -> Result<(), EngineError> {
        spec.log_group_name = Some(group.to_string());
        let existing = self.describe_metric_filters(Some(group), None, None)?;
        let replacing = existing.iter().find(|f| f.filter_name == spec.filter_name);
        spec.creation_time = Some(
            replacing
                .and_then(|f| f.creation_time)
                .unwrap_or_else(now_ms),
        );
        if replacing.is_none() && existing.len() >= METRIC_FILTERS_PER_GROUP_MAX {
            return Err(EngineError::Limit(format!(
                "a log group may have at most {METRIC_FILTERS_PER_GROUP_MAX} metric filters"
            )));
        }
        MetricFilter::new(spec.clone())?;
        let text = serde_json::to_string(&spec).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.inner
            .db
            .kv_put(&filter_key(group, &spec.filter_name), &text)?;
        let mut specs: Vec<MetricFilterSpec> = existing
            .into_iter()
            .filter(|f| f.filter_name != spec.filter_name)
            .collect();
        specs.push(spec);
        self.inner.rebuild_group(group, specs)
    }

    /// DeleteMetricFilter.
    pub fn delete_metric_filter(&self, group: &str, name: &str) -> Result<(), EngineError> {
        let existing = self.describe_metric_filters(Some(group), None, None)?;
        if !existing.iter().any(|f| f.filter_name == name) {
            return Err(EngineError::NotFound(
                "The specified metric filter does not exist.".into(),
            ));
        }
        self.inner.db.kv_delete(&filter_key(group, name))?;
        self.inner.rebuild_group(
            group,
            existing
                .into_iter()
                .filter(|f| f.filter_name != name)
                .collect(),
        )
    }

    /// PutSubscriptionFilter for `group` (creates or replaces by name; at most 2 per group).
    /// A new filter delivers events with a `seq` above `start_after_seq` (the group's newest
    /// stored event; `None`: the newest this engine has seen).
    pub fn put_subscription_filter(
        &self,
        group: &str,
        spec: SubscriptionFilterSpec,
        start_after_seq: Option<u64>,
    ) -> Result<(), EngineError> {
        Ok(self
            .inner
            .subs
            .put(group, spec, start_after_seq, now_ms())?)
    }

    /// DescribeSubscriptionFilters of one group, ordered by filter name.
    pub fn describe_subscription_filters(
        &self,
        group: &str,
        name_prefix: Option<&str>,
    ) -> Result<Vec<SubscriptionFilterSpec>, EngineError> {
        Ok(self.inner.subs.describe(group, name_prefix)?)
    }

    /// DeleteSubscriptionFilter.
    pub fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<(), EngineError> {
        Ok(self.inner.subs.delete(group, name)?)
    }

    /// The highest `seq` a running subscription filter has delivered (tests, status).
    pub fn subscription_checkpoint(&self, group: &str, name: &str) -> Option<u64> {
        self.inner.subs.checkpoint(group, name)
    }

    /// Removes every metric and subscription filter of a deleted log group.
    pub fn delete_group(&self, group: &str) -> Result<(), EngineError> {
        self.inner.subs.delete_group(group)?;
        for f in self.describe_metric_filters(Some(group), None, None)? {
            self.inner
                .db
                .kv_delete(&filter_key(group, &f.filter_name))?;
        }
        self.inner
            .groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group);
        Ok(())
    }

    /// DescribeMetricFilters: by group (and name prefix) and/or by metric (name, namespace);
    /// ordered by group, then filter name.
    pub fn describe_metric_filters(
        &self,
        group: Option<&str>,
        name_prefix: Option<&str>,
        metric: Option<(&str, &str)>,
    ) -> Result<Vec<MetricFilterSpec>, EngineError> {
        let prefix = match group {
            Some(g) => format!("{FILTER_KEY}{g}|{}", name_prefix.unwrap_or("")),
            None => FILTER_KEY.to_string(),
        };
        let mut out = Vec::new();
        for (key, value) in self.inner.db.kv_scan(&prefix)? {
            let spec: MetricFilterSpec = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
            if let Some((name, namespace)) = metric {
                let t = &spec.metric_transformations[0];
                if t.metric_name != name || t.metric_namespace != namespace {
                    continue;
                }
            }
            out.push(spec);
        }
        Ok(out)
    }

    /// PutMetricAlarm, then an immediate evaluation.
    pub fn put_alarm(&self, spec: AlarmSpec) -> Result<(), EngineError> {
        self.inner.db.put_alarm(spec, now_ms())?;
        self.poke();
        Ok(())
    }

    /// SetAlarmState: records the state and runs the actions of the new state.
    pub fn set_alarm_state(
        &self,
        name: &str,
        state: AlarmState,
        reason: &str,
        reason_data: Option<&str>,
    ) -> Result<(), EngineError> {
        let _guard = self
            .inner
            .eval_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let alarm = self
            .inner
            .db
            .describe_alarms(&crate::alarm::AlarmQuery {
                names: vec![name.to_string()],
                ..Default::default()
            })?
            .pop()
            .ok_or_else(|| EngineError::NotFound(format!("alarm {name} does not exist")))?;
        let alarm = Alarm::new(alarm.spec)?;
        if let Some(t) =
            self.inner
                .db
                .set_alarm_state(name, state, reason, reason_data, now_ms())?
        {
            let _ = self
                .inner
                .actions
                .send((t, alarm.actions_for(state).to_vec()));
        }
        Ok(())
    }

    fn poke(&self) {
        if let Some(p) = self.poke.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = p.try_send(());
        }
    }

    /// Stops the threads after the queued batches are evaluated.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        // First, so an evaluator waiting for a full subscription queue is released.
        self.inner.subs.shutdown();
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.poke.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let actions = t.thread().name() == Some("monitor-actions");
            if !actions {
                let _ = t.join();
            }
        }
    }
}

impl Drop for MonitorEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn rebuild_group(&self, group: &str, specs: Vec<MetricFilterSpec>) -> Result<(), EngineError> {
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        if specs.is_empty() {
            groups.remove(group);
            return Ok(());
        }
        let filters = specs
            .into_iter()
            .map(MetricFilter::new)
            .collect::<Result<Vec<_>, _>>()?;
        let set = PatternSet::new(filters.iter().map(|f| f.pattern().clone()).collect());
        let states = Mutex::new(vec![FilterState::default(); filters.len()]);
        groups.insert(
            group.to_string(),
            Arc::new(GroupFilters {
                filters,
                set,
                states,
            }),
        );
        Ok(())
    }

    fn eval_loop(&self, rx: Receiver<Msg>, poke: SyncSender<()>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
                Msg::Batch(group, events) => {
                    self.subs.offer(&group, &events);
                    let gf = self
                        .groups
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&group)
                        .cloned();
                    let Some(gf) = gf else { continue };
                    if let Err(e) = self.evaluate_batch(&gf, &events) {
                        tracing::error!(group, error = %e, "metric filter evaluation failed");
                    }
                    let _ = poke.try_send(());
                }
            }
        }
    }

    fn evaluate_batch(&self, gf: &GroupFilters, events: &[StoredEvent]) -> Result<(), StoreError> {
        let mut per_filter: Vec<Vec<(usize, Extracted)>> = vec![Vec::new(); gf.filters.len()];
        let mut hits = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            hits.clear();
            gf.set.extract_matching(&ev.message, &mut hits);
            for (fi, x) in hits.drain(..) {
                per_filter[fi].push((i, x));
            }
        }
        let mut states = gf.states.lock().unwrap_or_else(|p| p.into_inner());
        let mut data = Vec::new();
        for (fi, filter) in gf.filters.iter().enumerate() {
            let mut matches = std::mem::take(&mut per_filter[fi]).into_iter().peekable();
            let mut lookup = |i: usize| {
                while matches.peek().is_some_and(|(j, _)| *j < i) {
                    matches.next();
                }
                if matches.peek().is_some_and(|(j, _)| *j == i) {
                    matches.next().map(|(_, x)| x)
                } else {
                    None
                }
            };
            data.extend(filter.aggregate(events, &mut lookup, &mut states[fi]));
        }
        self.db.put_metric_data(&data)
    }

    fn alarm_loop(&self, poke: Receiver<()>, tick: Duration) {
        let mut last_prune = 0i64;
        loop {
            match poke.recv_timeout(tick) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let now = now_ms();
            self.evaluate_alarms(now);
            if now - last_prune > PRUNE_EVERY_MS {
                last_prune = now;
                if let Err(e) = self.db.prune(now) {
                    tracing::warn!(error = %e, "pruning monitor data failed");
                }
            }
        }
    }

    fn evaluate_alarms(&self, now: i64) -> Vec<Transition> {
        let _guard = self.eval_lock.lock().unwrap_or_else(|p| p.into_inner());
        let alarms = match self.db.alarms() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot read alarms");
                return Vec::new();
            }
        };
        let mut transitions = Vec::new();
        for (alarm, current) in alarms {
            match self.evaluate_one(&alarm, current, now) {
                Ok(Some(t)) => {
                    let actions = alarm.actions_for(t.new_state).to_vec();
                    transitions.push(t.clone());
                    let _ = self.actions.send((t, actions));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(alarm = alarm.name(), error = %e, "alarm evaluation failed")
                }
            }
        }
        transitions
    }

    fn evaluate_one(
        &self,
        alarm: &Alarm,
        current: AlarmState,
        now: i64,
    ) -> Result<Option<Transition>, AlarmError> {
        let period = alarm.period_ms();
        let newest = now.div_euclid(period) * period;
        let start = newest - (evaluation_range(alarm) as i64 - 1) * period;
        let points = self.db.query_metric(&MetricQuery {
            key: alarm.metric_key(),
            start_ms: start,
            end_ms: newest + period,
            period_s: alarm.spec().period,
            statistic: alarm.statistic(),
        })?;
        let e = evaluate(alarm, &points, now, current);
        if e.new_state == current {
            return Ok(None);
        }
        self.db.transition_alarm(
            alarm.name(),
            e.new_state,
            &e.reason,
            &e.reason_data,
            &e.datapoints,
            now,
        )
    }
}

fn actions_loop(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(Transition, Vec<String>)>,
    dispatcher: ActionDispatcher,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the alarm action runtime; actions disabled");
            return;
        }
    };
    rt.block_on(async move {
        while let Some((t, actions)) = rx.recv().await {
            let d = dispatcher.clone();
            tokio::spawn(async move { d.dispatch(t, actions).await });
        }
    });
}
