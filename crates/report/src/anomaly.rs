//! Per-principal baselines and ranked deviations.
//!
//! A [`Profile`] counts what one principal did: APIs (`service:Action`, e.g.
//! `iam:CreateAccessKey`), regions, source addresses, console sign-in addresses and hours of
//! day (UTC). The baseline is the profile over the days before the report period; the
//! deviations are what the period's profile holds that the baseline never saw. Each deviation
//! has a score (how much it should worry a reader) and an explanation in words; the list is
//! ranked by score.
//!
//! Limits: at most [`PRINCIPALS_MAX`] principals and [`DISTINCT_MAX`] distinct values per
//! dimension per principal. A baseline dimension that hit its limit is "saturated": nothing in
//! it is called new, because we no longer know what is usual.

use std::collections::BTreeMap;

use trailvault_model::{Normalized, Outcome};

use crate::timeline::actor_of;

pub const PRINCIPALS_MAX: usize = 10_000;
pub const DISTINCT_MAX: usize = 1_000;
/// Most deviations listed in a report.
pub const DEVIATIONS_MAX: usize = 50;

/// Services whose changes matter most when they are new for a principal.
const SENSITIVE_SERVICES: [&str; 8] = [
    "iam",
    "kms",
    "sts",
    "organizations",
    "cloudtrail",
    "config",
    "guardduty",
    "secretsmanager",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub values: BTreeMap<String, u64>,
    pub saturated: bool,
}

impl Counts {
    fn add(&mut self, key: &str) {
        if let Some(n) = self.values.get_mut(key) {
            *n += 1;
        } else if self.values.len() < DISTINCT_MAX {
            self.values.insert(key.to_string(), 1);
        } else {
            self.saturated = true;
        }
    }

    /// The `k` most frequent values as `name (count)`, most frequent first.
    pub fn top(&self, k: usize) -> String {
        let mut v: Vec<(&String, &u64)> = self.values.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> = v
            .iter()
            .take(k)
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        if v.len() > k {
            parts.push(format!("and {} more", v.len() - k));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What one principal did over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub events: u64,
    pub apis: Counts,
    pub regions: Counts,
    pub ips: Counts,
    /// Source addresses of console sign-ins.
    pub login_ips: Counts,
    pub failed_logins: BTreeMap<String, u64>,
    pub hours: [u64; 24],
}

/// Profiles of every principal seen in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    pub principals: BTreeMap<String, Profile>,
    /// Events with a principal that did not fit under [`PRINCIPALS_MAX`].
    pub dropped: u64,
    pub events: u64,
}

/// `iam:CreateAccessKey` from service `iam.amazonaws.com` and action `CreateAccessKey`.
pub fn api_of(n: &Normalized) -> Option<String> {
    let action = n.action.as_deref()?;
    match n.service.as_deref() {
        Some(s) => Some(format!("{}:{action}", s.split('.').next().unwrap_or(s))),
        None => Some(action.to_string()),
    }
}

fn hour_of_day(ts_ms: i64) -> usize {
    (ts_ms.rem_euclid(86_400_000) / 3_600_000) as usize
}

impl Profiles {
    pub fn add(&mut self, n: &Normalized, ts_ms: i64) {
        let Some(who) = actor_of(n) else {
            return;
        };
        let full = self.principals.len() >= PRINCIPALS_MAX;
        let p = match self.principals.get_mut(&who) {
            Some(p) => p,
            None if full => {
                self.dropped += 1;
                return;
            }
            None => self.principals.entry(who).or_default(),
        };
        self.events += 1;
        p.events += 1;
        if let Some(api) = api_of(n) {
            p.apis.add(&api);
        }
        if let Some(r) = &n.region {
            p.regions.add(r);
        }
        if let Some(ip) = &n.src_ip {
            p.ips.add(ip);
            if n.action.as_deref() == Some("ConsoleLogin") {
                p.login_ips.add(ip);
                if n.outcome == Some(Outcome::Failure) {
                    *p.failed_logins.entry(ip.clone()).or_default() += 1;
                }
            }
        }
        p.hours[hour_of_day(ts_ms)] += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviationKind {
    NewLoginAddress,
    NewApi,
    NewRegion,
    NewAddress,
    UnusualHour,
    NewPrincipal,
}

impl DeviationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviationKind::NewLoginAddress => "new sign-in address",
            DeviationKind::NewApi => "new API",
            DeviationKind::NewRegion => "new region",
            DeviationKind::NewAddress => "new source address",
            DeviationKind::UnusualHour => "unusual hour",
            DeviationKind::NewPrincipal => "new principal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Deviation {
    pub principal: String,
    pub kind: DeviationKind,
    /// Higher is more worrying; comparable across kinds.
    pub score: f64,
    pub explanation: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyOptions {
    /// Days before the period that form the baseline.
    pub baseline_days: u32,
    /// A principal with fewer baseline events is not judged on novelty (too little history).
    pub baseline_events_min: u64,
}

impl Default for AnomalyOptions {
    fn default() -> Self {
        AnomalyOptions {
            baseline_days: 14,
            baseline_events_min: 5,
        }
    }
}

fn is_read_only_action(api: &str) -> bool {
    let action = api.rsplit(':').next().unwrap_or(api);
    [
        "Get", "List", "Describe", "Head", "Lookup", "Search", "Scan", "Query",
    ]
    .iter()
    .any(|p| action.starts_with(p))
}

fn api_score(api: &str) -> f64 {
    let service = api.split(':').next().unwrap_or("");
    match (
        SENSITIVE_SERVICES.contains(&service),
        is_read_only_action(api),
    ) {
        (true, false) => 5.0,
        (false, false) | (true, true) => 2.0,
        (false, true) => 1.0,
    }
}

/// Hours with activity as compact ranges: `08–10, 14 UTC`.
pub fn hour_ranges(hours: &[u64; 24]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut h = 0;
    while h < 24 {
        if hours[h] == 0 {
            h += 1;
            continue;
        }
        let start = h;
        while h + 1 < 24 && hours[h + 1] > 0 {
            h += 1;
        }
        out.push(if start == h {
            format!("{start:02}")
        } else {
            format!("{start:02}–{h:02}")
        });
        h += 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        format!("{} UTC", out.join(", "))
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Rank what `current` holds that `baseline` never saw, per principal.
pub fn deviations(
    baseline: &Profiles,
    current: &Profiles,
    opts: &AnomalyOptions,
) -> Vec<Deviation> {
    let mut out = Vec::new();
    let days = opts.baseline_days;
    for (who, cur) in &current.principals {
        let Some(base) = baseline.principals.get(who) else {
            if baseline.events > 0 {
                out.push(Deviation {
                    principal: who.clone(),
                    kind: DeviationKind::NewPrincipal,
                    score: 3.0 + (cur.events as f64).ln_1p(),
                    explanation: format!(
                        "{who} has no activity in the {days}-day baseline; first seen with {} \
                         (APIs: {})",
                        plural(cur.events, "event", "events"),
                        cur.apis.top(3)
                    ),
                });
            }
            continue;
        };
        if base.events < opts.baseline_events_min {
            continue;
        }
        if !base.login_ips.saturated {
            for (ip, n) in &cur.login_ips.values {
                if base.login_ips.values.contains_key(ip) {
                    continue;
                }
                let failed = cur.failed_logins.get(ip).copied().unwrap_or(0);
                let usual = if base.login_ips.values.is_empty() {
                    format!("no console sign-in in the {days}-day baseline")
                } else {
                    format!("usual: {}", base.login_ips.top(3))
                };
                out.push(Deviation {
                    principal: who.clone(),
                    kind: DeviationKind::NewLoginAddress,
                    score: 6.0 + if failed > 0 { 1.0 } else { 0.0 },
                    explanation: format!(
                        "{who} signed in from {ip}, never seen before ({}{}); {usual}",
                        plural(*n, "attempt", "attempts"),
                        if failed > 0 {
                            format!(", {failed} failed")
                        } else {
                            String::new()
                        }
                    ),
                });
            }
        }
        if !base.apis.saturated {
            for (api, n) in &cur.apis.values {
                if base.apis.values.contains_key(api) {
                    continue;
                }
                out.push(Deviation {
                    principal: who.clone(),
                    kind: DeviationKind::NewApi,
                    score: api_score(api),
                    explanation: format!(
                        "{who} called {api} for the first time ({}); usual APIs: {}",
                        plural(*n, "call", "calls"),
                        base.apis.top(3)
                    ),
                });
            }
        }
        if !base.regions.saturated {
            for (region, n) in &cur.regions.values {
                if base.regions.values.contains_key(region) {
                    continue;
                }
                out.push(Deviation {
                    principal: who.clone(),
                    kind: DeviationKind::NewRegion,
                    score: 4.0,
                    explanation: format!(
                        "{who} acted in region {region} for the first time ({}); usual \
                         regions: {}",
                        plural(*n, "event", "events"),
                        base.regions.top(3)
                    ),
                });
            }
        }
        if !base.ips.saturated {
            for (ip, n) in &cur.ips.values {
                // A new sign-in address is already reported, more strongly.
                if base.ips.values.contains_key(ip) || cur.login_ips.values.contains_key(ip) {
                    continue;
                }
                out.push(Deviation {
                    principal: who.clone(),
                    kind: DeviationKind::NewAddress,
                    score: 3.0,
                    explanation: format!(
                        "{who} used source address {ip} for the first time ({}); usual: {}",
                        plural(*n, "event", "events"),
                        base.ips.top(3)
                    ),
                });
            }
        }
        for h in 0..24 {
            if cur.hours[h] == 0 || base.hours[h] > 0 {
                continue;
            }
            out.push(Deviation {
                principal: who.clone(),
                kind: DeviationKind::UnusualHour,
                score: 1.5,
                explanation: format!(
                    "{who} was active at {h:02}:00–{h:02}:59 UTC ({}), outside usual hours: {}",
                    plural(cur.hours[h], "event", "events"),
                    hour_ranges(&base.hours)
                ),
            });
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.principal.cmp(&b.principal))
            .then(a.kind.cmp(&b.kind))
            .then(a.explanation.cmp(&b.explanation))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: &str, service: &str, action: &str, region: &str, ip: &str) -> Normalized {
        Normalized {
            source: "cloudtrail".into(),
            actor_user_name: Some(user.into()),
            service: Some(service.into()),
            action: Some(action.into()),
            region: Some(region.into()),
            src_ip: Some(ip.into()),
            outcome: Some(Outcome::Success),
            ..Default::default()
        }
    }

    #[test]
    fn new_things_are_ranked_and_explained() {
        let mut base = Profiles::default();
        for d in 0..10 {
            let t = d * 86_400_000 + 9 * 3_600_000;
            base.add(
                &ev(
                    "alice",
                    "s3.amazonaws.com",
                    "GetObject",
                    "us-east-1",
                    "203.0.113.5",
                ),
                t,
            );
            base.add(
                &ev(
                    "alice",
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    "us-east-1",
                    "203.0.113.5",
                ),
                t,
            );
        }
        let mut cur = Profiles::default();
        let t = 20 * 86_400_000 + 3 * 3_600_000;
        cur.add(
            &ev(
                "alice",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "us-east-1",
                "203.0.113.5",
            ),
            t,
        );
        cur.add(
            &ev(
                "alice",
                "signin.amazonaws.com",
                "ConsoleLogin",
                "eu-west-1",
                "198.51.100.7",
            ),
            t,
        );
        cur.add(
            &ev(
                "mallory",
                "s3.amazonaws.com",
                "ListBuckets",
                "us-east-1",
                "192.0.2.1",
            ),
            t,
        );
        let d = deviations(&base, &cur, &AnomalyOptions::default());
        let kinds: Vec<_> = d.iter().map(|d| (d.principal.as_str(), d.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("alice", DeviationKind::NewLoginAddress),
                ("alice", DeviationKind::NewApi),
                ("alice", DeviationKind::NewRegion),
                ("mallory", DeviationKind::NewPrincipal),
                ("alice", DeviationKind::UnusualHour),
            ]
        );
        assert_eq!(
            d[0].explanation,
            "alice signed in from 198.51.100.7, never seen before (1 attempt); usual: 203.0.113.5 (10)"
        );
        assert_eq!(
            d[1].explanation,
            "alice called iam:CreateAccessKey for the first time (1 call); usual APIs: s3:GetObject (10), signin:ConsoleLogin (10)"
        );
        assert!(
            d[4].explanation.ends_with("outside usual hours: 09 UTC"),
            "{}",
            d[4].explanation
        );
    }

    #[test]
    fn thin_or_saturated_baselines_are_not_judged() {
        let mut base = Profiles::default();
        base.add(
            &ev(
                "bob",
                "s3.amazonaws.com",
                "GetObject",
                "us-east-1",
                "192.0.2.1",
            ),
            0,
        );
        let mut cur = Profiles::default();
        cur.add(
            &ev(
                "bob",
                "iam.amazonaws.com",
                "CreateUser",
                "us-east-1",
                "192.0.2.1",
            ),
            0,
        );
        assert!(deviations(&base, &cur, &AnomalyOptions::default()).is_empty());
        let mut c = Counts::default();
        for i in 0..DISTINCT_MAX + 5 {
            c.add(&i.to_string());
        }
        assert!(c.saturated);
        assert_eq!(c.values.len(), DISTINCT_MAX);
        let mut h = [0u64; 24];
        h[8] = 1;
        h[9] = 2;
        h[10] = 1;
        h[14] = 3;
        assert_eq!(hour_ranges(&h), "08–10, 14 UTC");
    }
}
