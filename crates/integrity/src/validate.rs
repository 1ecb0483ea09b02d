//! The offline validator: walks every group's digest chain newest to oldest and checks
//! everything the digests promise, in the shape of `aws cloudtrail validate-logs`.
//!
//! For each digest: format, location (the key it names is where it is), signature, signing
//! key known and valid when it signed, and the chain links to its predecessor (key, SHA-256
//! AND signature; CloudTrail never checks the hash). A missing predecessor is reported, and
//! so is every further missing one (per-group `digestSequence` numbers tell how many).
//! For each listed segment: present, SHA-256 of the stored bytes, and the Merkle root
//! recomputed from its decoded events. Segments in storage that no digest lists are INVALID,
//! unless written after the group's newest digest ended (pending). The cumulative digest
//! tree is rebuilt from `digestTreeIndex` and checked against every stored checkpoint and an
//! optional exported one: a truncated tail shows as a tree smaller than a checkpoint.
//!
//! Reading and hashing run on blocking threads, many segments at a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;

use crate::checkpoint::{self, Checkpoint};
use crate::digest::{
    self, parse_digest, signature_key, string_to_sign, Digest, SignatureFile, DIGESTS_PREFIX,
};
use crate::error::{IntegrityError, Result};
use crate::hash::{parse_hash_hex, sha256, Hash};
use crate::keys::PublicKeySet;
use crate::merkle::{self, MerkleTree};
use crate::objects;
use crate::time::{iso, parse_iso};

pub const SEGMENTS_PREFIX: &str = "segments";
/// Largest segment the validator reads into memory.
pub const SEGMENT_BYTES_MAX: u64 = 4 << 30;

#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Only this group's chain (the digest tree is always checked whole).
    pub group: Option<String>,
    /// Only digests whose period ends after `start_ms` and starts before `end_ms`.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// An exported checkpoint the present history must extend.
    pub checkpoint: Option<Checkpoint>,
    /// Segments read and hashed at once; 0 = twice the number of cores.
    pub concurrency: usize,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
    /// A segment no digest lists is pending (not INVALID) when written less than this
    /// before its group's newest digest ended: an object is written a moment before its seal
    /// time is taken, so one written just before a period's end can belong to the next.
    /// `None`: [`PENDING_GRACE_MS_DEFAULT`].
    pub pending_grace_ms: Option<i64>,
    /// Check each segment's bytes against the SHA-256 its signed digest lists, without
    /// decoding it to recompute its Merkle root (as CloudTrail's `validate-logs` checks log
    /// files). Any change to a segment's bytes is still caught; what is skipped is the check
    /// that the listed root and event count match the events, which proofs rely on. A
    /// segment whose hash fails is still decoded, for the diagnosis.
    pub hash_only: bool,
}

/// Five minutes: far above the gap between writing a segment and recording its seal.
pub const PENDING_GRACE_MS_DEFAULT: i64 = 300_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Valid,
    Invalid(String),
    /// A segment written after the newest digest: the next digest will list it.
    Pending,
}

impl Status {
    fn invalid(s: impl Into<String>) -> Self {
        Status::Invalid(s.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Digest,
    Segment,
    Checkpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub key: String,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub group: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ValidationReport {
    pub findings: Vec<Finding>,
    pub gaps: Vec<Gap>,
    pub requested: (Option<i64>, Option<i64>),
    pub found: Option<(i64, i64)>,
    /// Label the data files "Log file" (CloudTrail's own chains) instead of "Segment file".
    pub log_files: bool,
}

impl ValidationReport {
    fn count(&self, kind: Kind, pred: impl Fn(&Status) -> bool) -> usize {
        self.findings
            .iter()
            .filter(|f| f.kind == kind && pred(&f.status))
            .count()
    }

    pub fn digests_total(&self) -> usize {
        self.count(Kind::Digest, |_| true)
    }
    pub fn digests_valid(&self) -> usize {
        self.count(Kind::Digest, |s| *s == Status::Valid)
    }
    pub fn segments_total(&self) -> usize {
        self.count(Kind::Segment, |s| *s != Status::Pending)
    }
    pub fn segments_valid(&self) -> usize {
        self.count(Kind::Segment, |s| *s == Status::Valid)
    }
    pub fn segments_pending(&self) -> usize {
        self.count(Kind::Segment, |s| *s == Status::Pending)
    }

    /// Everything invalid, in report order.
    pub fn failures(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.status, Status::Invalid(_)))
            .collect()
    }

    pub fn is_valid(&self) -> bool {
        self.failures().is_empty()
    }

    /// Counts and the first failures, for the API, the CLI and metrics.
    pub fn summary(&self, finished_at_ms: i64) -> ValidationSummary {
        ValidationSummary {
            finished_at_ms,
            valid: self.is_valid(),
            digests_valid: self.digests_valid(),
            digests_total: self.digests_total(),
            segments_valid: self.segments_valid(),
            segments_total: self.segments_total(),
            segments_pending: self.segments_pending(),
            failures_total: self.failures().len(),
            failures: self
                .failures()
                .iter()
                .take(SUMMARY_FAILURES_MAX)
                .map(|f| match &f.status {
                    Status::Invalid(why) => format!("{}: INVALID: {why}", f.key),
                    _ => f.key.clone(),
                })
                .collect(),
        }
    }

    /// The report as `validate-logs` prints it; valid items only when `verbose`.
    pub fn render(&self, verbose: bool) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let label = match f.kind {
                Kind::Digest => "Digest file",
                Kind::Segment if self.log_files => "Log file",
                Kind::Segment => "Segment file",
                Kind::Checkpoint => "Checkpoint",
            };
            match &f.status {
                Status::Valid if verbose => out.push_str(&format!("{label}\t{}\tvalid\n", f.key)),
                Status::Valid => {}
                Status::Pending if verbose => out.push_str(&format!(
                    "{label}\t{}\tpending: newer than the newest digest\n",
                    f.key
                )),
                Status::Pending => {}
                Status::Invalid(why) => {
                    out.push_str(&format!("{label}\t{}\tINVALID: {why}\n", f.key))
                }
            }
        }
        for g in &self.gaps {
            out.push_str(&format!(
                "No digest files were written for log group {} between {} and {}\n",
                g.group,
                iso(g.from_ms),
                iso(g.to_ms)
            ));
        }
        let t = |o: Option<i64>, dflt: &str| o.map(iso).unwrap_or_else(|| dflt.to_string());
        out.push_str(&format!(
            "\nResults requested for {} to {}\n",
            t(self.requested.0, "the beginning"),
            t(self.requested.1, "now")
        ));
        match self.found {
            Some((a, b)) => {
                out.push_str(&format!("Results found for {} to {}:\n\n", iso(a), iso(b)))
            }
            None => out.push_str("No digests found\n\n"),
        }
        let summary = |valid: usize, total: usize, what: &str| {
            let mut s = format!("{valid}/{total} {what} files valid");
            if valid < total {
                s.push_str(&format!(", {}/{total} {what} files INVALID", total - valid));
            }
            s
        };
        out.push_str(&summary(
            self.digests_valid(),
            self.digests_total(),
            "digest",
        ));
        out.push('\n');
        let noun = if self.log_files { "log" } else { "segment" };
        out.push_str(&summary(self.segments_valid(), self.segments_total(), noun));
        if self.segments_pending() > 0 {
            out.push_str(&format!(
                ", {} segment files pending",
                self.segments_pending()
            ));
        }
        out.push('\n');
        let cps = self.count(Kind::Checkpoint, |_| true);
        if cps > 0 {
            let valid = self.count(Kind::Checkpoint, |s| *s == Status::Valid);
            out.push_str(&format!(
                "{valid}/{cps} digest tree and checkpoint checks valid"
            ));
            if valid < cps {
                out.push_str(&format!(", {}/{cps} INVALID", cps - valid));
            }
            out.push('\n');
        }
        out
    }
}

/// Failures a [`ValidationSummary`] names (the full report has them all).
pub const SUMMARY_FAILURES_MAX: usize = 100;

/// The outcome of a validation run in a few numbers (last full validation, for the status
/// API and the `trailvault_validation_*` metrics).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSummary {
    pub finished_at_ms: i64,
    pub valid: bool,
    pub digests_valid: usize,
    pub digests_total: usize,
    pub segments_valid: usize,
    pub segments_total: usize,
    pub segments_pending: usize,
    pub failures_total: usize,
    /// The first [`SUMMARY_FAILURES_MAX`] failures, as report lines.
    pub failures: Vec<String>,
}

/// One digest as found in storage, checked on its own.
struct LoadedDigest {
    key: String,
    sha256: Hash,
    digest: Option<Digest>,
    signature: Option<String>,
    start_ms: i64,
    end_ms: i64,
    /// Problems found with this digest alone (format, location, key, signature).
    own: Status,
}

fn check_digest(key: &str, bytes: &[u8], sig: Option<&[u8]>, keys: &PublicKeySet) -> LoadedDigest {
    let mut d = LoadedDigest {
        key: key.to_string(),
        sha256: sha256(bytes),
        digest: None,
        signature: None,
        start_ms: 0,
        end_ms: 0,
        own: Status::Valid,
    };
    let digest = match parse_digest(key, bytes) {
        Ok(x) => x,
        Err(_) => {
            d.own = Status::invalid("invalid format");
            return d;
        }
    };
    let (Some(start), Some(end)) = (
        parse_iso(&digest.digest_start_time),
        parse_iso(&digest.digest_end_time),
    ) else {
        d.own = Status::invalid("invalid format");
        return d;
    };
    d.start_ms = start;
    d.end_ms = end;
    let sig = sig.and_then(|s| serde_json::from_slice::<SignatureFile>(s).ok());
    d.signature = sig.as_ref().map(|s| s.signature.clone());
    d.own = (|| {
        if digest.digest_object != key
            || digest::group_of_digest_key(key).as_deref() != Some(digest.log_group.as_str())
        {
            return Status::invalid("has been moved from its original location");
        }
        let Some(sig) = &sig else {
            return Status::invalid("signature file not found or invalid format");
        };
        let fp = &digest.digest_public_key_fingerprint;
        let Some(pk) = keys.find(fp) else {
            return Status::Invalid(format!("public key not found for fingerprint {fp}"));
        };
        if pk.algorithm != digest.digest_signature_algorithm {
            return Status::invalid("signature algorithm does not match the public key");
        }
        let signed_at = parse_iso(&digest.digest_signing_time).unwrap_or(i64::MIN);
        if !pk.valid_at(signed_at) {
            return Status::Invalid(format!(
                "public key {fp} was not valid at {}",
                digest.digest_signing_time
            ));
        }
        let sts = string_to_sign(
            &digest.digest_end_time,
            key,
            &d.sha256,
            digest.previous_digest_signature.as_deref(),
        );
        match hex::decode(&sig.signature) {
            Ok(s) if pk.verify(sts.as_bytes(), &s) => Status::Valid,
            _ => Status::invalid("signature verification failed"),
        }
    })();
    d.digest = Some(digest);
    d
}

/// Validate the vault in `store` (the data root, or an auditor's copy of it).
pub async fn validate(
    opts: ValidateOptions,
    store: Arc<dyn ObjectStore>,
    public_keys: &PublicKeySet,
) -> Result<ValidationReport> {
    let mut report = ValidationReport {
        requested: (opts.start_ms, opts.end_ms),
        ..Default::default()
    };
    let concurrency = match opts.concurrency {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
        n => n,
    };

    // 1. Every digest, read and checked on its own (the tree needs them all).
    let listing = objects::list(&store, DIGESTS_PREFIX).await?;
    let present: HashSet<String> = listing.iter().map(|m| m.location.to_string()).collect();
    let digest_keys: Vec<String> = present
        .iter()
        .filter(|k| digest::group_of_digest_key(k).is_some())
        .cloned()
        .collect();
    let keys = Arc::new(public_keys.clone());
    let loaded: Vec<Result<LoadedDigest>> =
        futures::stream::iter(digest_keys.into_iter().map(|key| {
            let store = store.clone();
            let keys = keys.clone();
            let has_sig = present.contains(&signature_key(&key));
            async move {
                let bytes = objects::get_limited(&store, &key, digest::DIGEST_BYTES_MAX)
                    .await?
                    .ok_or_else(|| IntegrityError::corrupt(&key, "vanished while validating"))?;
                let sig = if has_sig {
                    objects::get_limited(&store, &signature_key(&key), digest::SIG_BYTES_MAX)
                        .await?
                } else {
                    None
                };
                let d = tokio::task::spawn_blocking(move || {
                    check_digest(&key, &bytes, sig.as_deref(), &keys)
                })
                .await
                .map_err(|e| IntegrityError::Invalid(format!("validation task failed: {e}")))?;
                Ok(d)
            }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let loaded = loaded.into_iter().collect::<Result<Vec<_>>>()?;

    // 2. The digest tree and the checkpoints.
    check_tree(
        &store,
        &loaded,
        opts.checkpoint.as_ref(),
        public_keys,
        &mut report,
    )
    .await?;

    // 3. Chains, per group, newest to oldest.
    let mut by_group: BTreeMap<String, Vec<&LoadedDigest>> = BTreeMap::new();
    for d in &loaded {
        if let Some(g) = digest::group_of_digest_key(&d.key) {
            by_group.entry(g).or_default().push(d);
        }
    }
    let in_range = |d: &LoadedDigest| {
        d.digest.is_none()
            || (opts.start_ms.is_none_or(|s| d.end_ms > s)
                && opts.end_ms.is_none_or(|e| d.start_ms < e))
    };
    let mut newest_end: HashMap<String, i64> = HashMap::new();
    let mut digest_findings = Vec::new();
    for (group, ds) in by_group {
        if let Some(newest) = ds
            .iter()
            .filter(|d| d.digest.is_some())
            .map(|d| d.end_ms)
            .max()
        {
            newest_end.insert(group.clone(), newest);
        }
        if opts.group.as_ref().is_some_and(|g| *g != group) {
            continue;
        }
        walk_chain(
            &group,
            ds,
            &in_range,
            &mut digest_findings,
            &mut report.gaps,
        );
    }

    // 4. Segments listed by the digests in scope.
    let mut referenced: HashSet<String> = HashSet::new();
    for d in &loaded {
        if let Some(dg) = &d.digest {
            referenced.extend(dg.segments.iter().map(|s| s.object.clone()));
            referenced.extend(dg.deletions.iter().map(|s| s.object.clone()));
        }
    }
    let mut hash_owner: HashMap<String, String> = HashMap::new();
    let mut jobs: Vec<(usize, digest::DigestSegment)> = Vec::new();
    let mut found: Option<(i64, i64)> = None;
    for (i, f) in digest_findings.iter().enumerate() {
        let Some(ld) = f.1 else { continue };
        let Some(dg) = &ld.digest else { continue };
        found = Some(found.map_or((ld.start_ms, ld.end_ms), |(a, b)| {
            (a.min(ld.start_ms), b.max(ld.end_ms))
        }));
        for s in &dg.segments {
            hash_owner
                .entry(s.hash_value.clone())
                .or_insert_with(|| s.object.clone());
            jobs.push((i, s.clone()));
        }
    }
    report.found = found;
    let progress = progress_bar(opts.progress, jobs.len() as u64);
    let hash_only = opts.hash_only;
    let hash_owner = Arc::new(hash_owner);
    let mut seg_results: Vec<(usize, usize, Finding)> =
        futures::stream::iter(jobs.into_iter().enumerate().map(|(n, (i, s))| {
            let store = store.clone();
            let owners = hash_owner.clone();
            let progress = progress.clone();
            async move {
                let status = check_segment(&store, &s, &owners, hash_only).await;
                if let Some(p) = &progress {
                    p.inc(1);
                }
                (
                    i,
                    n,
                    Finding {
                        kind: Kind::Segment,
                        key: s.object,
                        status,
                    },
                )
            }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    seg_results.sort_by_key(|(i, n, _)| (*i, *n));
    let mut seg_iter = seg_results.into_iter().peekable();
    for (i, (finding, _)) in digest_findings.into_iter().enumerate() {
        report.findings.push(finding);
        while let Some((_, _, f)) = seg_iter.next_if(|(j, _, _)| *j == i) {
            report.findings.push(f);
        }
    }

    // 5. Segments no digest lists.
    let global_newest = newest_end.values().copied().max();
    for m in objects::list(&store, SEGMENTS_PREFIX).await? {
        let key = m.location.to_string();
        if referenced.contains(&key) {
            continue;
        }
        let group = segment_group(&key);
        if let (Some(want), Some(g)) = (&opts.group, &group) {
            if want != g {
                continue;
            }
        }
        let modified = m.last_modified.timestamp_millis();
        if opts.start_ms.is_some_and(|s| modified < s) || opts.end_ms.is_some_and(|e| modified >= e)
        {
            continue;
        }
        let newest = group
            .as_ref()
            .and_then(|g| newest_end.get(g).copied())
            .or(global_newest);
        let grace = opts.pending_grace_ms.unwrap_or(PENDING_GRACE_MS_DEFAULT);
        let status = match newest {
            Some(end) if modified < end.saturating_sub(grace) => {
                Status::invalid("not in any digest")
            }
            _ => Status::Pending,
        };
        report.findings.push(Finding {
            kind: Kind::Segment,
            key,
            status,
        });
    }
    Ok(report)
}

fn progress_bar(wanted: bool, len: u64) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} segments {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// The log group of a segment key laid out as `segments/group=<enc>/...`.
pub fn segment_group(key: &str) -> Option<String> {
    let rest = key.strip_prefix(SEGMENTS_PREFIX)?.strip_prefix('/')?;
    let part = rest.split('/').next()?;
    part.strip_prefix("group=").map(objects::decode_group)
}

/// Walk one group's digests newest to oldest, following `previousDigestObject`.
fn walk_chain<'a>(
    group: &str,
    ds: Vec<&'a LoadedDigest>,
    in_range: &dyn Fn(&LoadedDigest) -> bool,
    out: &mut Vec<(Finding, Option<&'a LoadedDigest>)>,
    gaps: &mut Vec<Gap>,
) {
    // The whole chain is walked so links across the range's edges are followed; only the
    // digests in range (and holes cited by them) are reported.
    let by_key: HashMap<&str, &LoadedDigest> = ds.iter().map(|d| (d.key.as_str(), *d)).collect();
    let mut order: Vec<&LoadedDigest> = ds.clone();
    order.sort_by(|a, b| b.key.cmp(&a.key));
    let mut status: HashMap<&str, Status> =
        ds.iter().map(|d| (d.key.as_str(), d.own.clone())).collect();
    let mut visited: HashSet<&str> = HashSet::new();
    // Digests in walking order; `Err` for one known only by reference (with whether the
    // digest citing it is in range).
    let mut sequence: Vec<Result<&str, (Finding, bool)>> = Vec::new();
    let mut next_unvisited = 0usize;
    loop {
        while next_unvisited < order.len() && visited.contains(order[next_unvisited].key.as_str()) {
            next_unvisited += 1;
        }
        let Some(start) = order.get(next_unvisited) else {
            break;
        };
        // A new chain segment starts at the newest digest not yet reached.
        let mut cur: &LoadedDigest = start;
        loop {
            visited.insert(cur.key.as_str());
            sequence.push(Ok(cur.key.as_str()));
            let Some(dg) = &cur.digest else { break };
            let Some(prev_key) = dg.previous_digest_object.as_deref() else {
                // A starting digest: anything older belongs to an earlier chain.
                if let Some(older) = order.iter().find(|d| {
                    d.key < cur.key && !visited.contains(d.key.as_str()) && d.digest.is_some()
                }) {
                    if older.end_ms < cur.start_ms && in_range(cur) {
                        gaps.push(Gap {
                            group: group.to_string(),
                            from_ms: older.end_ms,
                            to_ms: cur.start_ms,
                        });
                    }
                }
                break;
            };
            match by_key.get(prev_key) {
                Some(prev) if !visited.contains(prev_key) => {
                    if let (Status::Valid, Some(pd)) = (&prev.own, &prev.digest) {
                        let link = link_problem(cur, dg, prev, pd);
                        if let Some(why) = link {
                            status.insert(prev_key, Status::Invalid(why));
                        } else if prev.end_ms < cur.start_ms && in_range(cur) {
                            gaps.push(Gap {
                                group: group.to_string(),
                                from_ms: prev.end_ms,
                                to_ms: cur.start_ms,
                            });
                        }
                    }
                    cur = prev;
                }
                Some(_) => break, // a loop: every member was reported already
                None => {
                    // The predecessor is gone. The next older digest still present tells,
                    // through its sequence number, how many are gone.
                    let older = order.iter().find(|d| {
                        d.key.as_str() < prev_key
                            && !visited.contains(d.key.as_str())
                            && d.digest.is_some()
                    });
                    let older_seq = older
                        .and_then(|o| o.digest.as_ref())
                        .map(|o| o.digest_sequence);
                    let missing = match older_seq {
                        Some(s) if s < dg.digest_sequence => dg.digest_sequence - s - 1,
                        _ => dg.digest_sequence.max(1),
                    }
                    .max(1);
                    let cited = in_range(cur);
                    sequence.push(Err((
                        Finding {
                            kind: Kind::Digest,
                            key: prev_key.to_string(),
                            status: Status::invalid("not found"),
                        },
                        cited,
                    )));
                    let from = older.map_or("the chain start".to_string(), |o| iso(o.end_ms));
                    for k in 1..missing {
                        sequence.push(Err((
                            Finding {
                                kind: Kind::Digest,
                                key: format!(
                                    "(digest #{} of log group {group}, between {from} and {})",
                                    dg.digest_sequence - 1 - k,
                                    iso(cur.start_ms)
                                ),
                                status: Status::invalid("not found"),
                            },
                            cited,
                        )));
                    }
                    match older {
                        Some(o) => cur = o,
                        None => break,
                    }
                }
            }
        }
    }
    for item in sequence {
        match item {
            Ok(key) => {
                let d = by_key[key];
                if !in_range(d) {
                    continue;
                }
                out.push((
                    Finding {
                        kind: Kind::Digest,
                        key: key.to_string(),
                        status: status.get(key).cloned().unwrap_or(Status::Valid),
                    },
                    Some(d),
                ));
            }
            Err((f, true)) => out.push((f, None)),
            Err((_, false)) => {}
        }
    }
}

/// Does `cur`'s record of its predecessor match `prev`? The reason, if not.
fn link_problem(
    cur: &LoadedDigest,
    dg: &Digest,
    prev: &LoadedDigest,
    pd: &Digest,
) -> Option<String> {
    if dg
        .previous_digest_hash_value
        .as_deref()
        .and_then(parse_hash_hex)
        != Some(prev.sha256)
    {
        return Some(format!(
            "hash value doesn't match the previousDigestHashValue of {}",
            cur.key
        ));
    }
    if dg.previous_digest_signature != prev.signature {
        return Some(format!(
            "signature doesn't match the previousDigestSignature of {}",
            cur.key
        ));
    }
    if pd.digest_sequence + 1 != dg.digest_sequence {
        return Some(format!(
            "sequence number {} does not precede {} of {}",
            pd.digest_sequence, dg.digest_sequence, cur.key
        ));
    }
    if prev.end_ms > cur.start_ms {
        return Some(format!("period overlaps the next digest {}", cur.key));
    }
    None
}

async fn check_segment(
    store: &Arc<dyn ObjectStore>,
    s: &digest::DigestSegment,
    owners: &HashMap<String, String>,
    hash_only: bool,
) -> Status {
    let bytes = match objects::get_limited(store, &s.object, SEGMENT_BYTES_MAX).await {
        Ok(Some(b)) => b,
        Ok(None) => return Status::invalid("not found"),
        Err(e) => return Status::Invalid(format!("unreadable: {e}")),
    };
    let s = s.clone();
    let owners_hit = |h: &str| owners.get(h).filter(|k| **k != s.object).cloned();
    let actual_hash = {
        let b = bytes.clone();
        match tokio::task::spawn_blocking(move || sha256(&b)).await {
            Ok(h) => h,
            Err(e) => return Status::Invalid(format!("hashing failed: {e}")),
        }
    };
    let hash_ok = Some(actual_hash) == parse_hash_hex(&s.hash_value);
    if hash_ok && hash_only {
        return Status::Valid;
    }
    let swapped = owners_hit(&hex::encode(actual_hash));
    let s2 = s.clone();
    let merkle = tokio::task::spawn_blocking(move || merkle_check(bytes, &s2))
        .await
        .unwrap_or_else(|e| Err(format!("decoding failed: {e}")));
    match (hash_ok, merkle) {
        (true, Ok(())) => Status::Valid,
        (true, Err(why)) => Status::Invalid(why),
        (false, m) => {
            let mut why = "hash value doesn't match".to_string();
            if let Some(other) = swapped {
                why.push_str(&format!("; its content is that of segment {other}"));
            } else {
                match m {
                    Ok(()) => why.push_str(" (events intact: Merkle root matches)"),
                    Err(m) => why.push_str(&format!("; {m}")),
                }
            }
            Status::Invalid(why)
        }
    }
}

/// Decode the segment and compare its event count and Merkle root with the digest's.
fn merkle_check(bytes: Bytes, s: &digest::DigestSegment) -> std::result::Result<(), String> {
    let events = trailvault_segment::decode(bytes, trailvault_segment::Projection::Core)
        .map_err(|e| format!("invalid format: {e}"))?;
    let root = merkle::root_from_leaf_hashes(&crate::leaf::event_leaf_hashes(&events));
    if Some(root) != parse_hash_hex(&s.merkle_root) {
        let mut why = "Merkle root doesn't match".to_string();
        if events.len() as u64 != s.event_count {
            why.push_str(&format!(
                " ({} events, the digest lists {})",
                events.len(),
                s.event_count
            ));
        }
        return Err(why);
    }
    Ok(())
}

/// Rebuild the cumulative digest tree and hold it against the checkpoints.
async fn check_tree(
    store: &Arc<dyn ObjectStore>,
    loaded: &[LoadedDigest],
    exported: Option<&Checkpoint>,
    keys: &PublicKeySet,
    report: &mut ValidationReport,
) -> Result<()> {
    let mut leaves: BTreeMap<u64, (Hash, &str)> = BTreeMap::new();
    let mut duplicate = Vec::new();
    for d in loaded {
        if let Some(dg) = &d.digest {
            if let Some((_, other)) = leaves.insert(dg.digest_tree_index, (d.sha256, &d.key)) {
                duplicate.push(format!(
                    "digests {other} and {} claim tree index {}",
                    d.key, dg.digest_tree_index
                ));
            }
        }
    }
    // The tree is rebuilt up to the first hole; a hole is a digest that is gone.
    let contiguous = leaves
        .keys()
        .enumerate()
        .take_while(|(i, k)| *i as u64 == **k)
        .count();
    let tree = MerkleTree::from_leaf_hashes(
        leaves
            .values()
            .take(contiguous)
            .map(|(h, _)| merkle::leaf_hash(h))
            .collect(),
    );
    let total_indices = leaves.keys().next_back().map_or(0, |k| k + 1);
    let tree_label = "digest tree";
    let mut tree_status = Status::Valid;
    if let Some(d) = duplicate.first() {
        tree_status = Status::Invalid(d.clone());
    } else if (contiguous as u64) < total_indices {
        let holes: Vec<u64> = (0..total_indices)
            .filter(|i| !leaves.contains_key(i))
            .take(10)
            .collect();
        tree_status = Status::Invalid(format!(
            "{} of {total_indices} digests are missing (tree indices {holes:?}{})",
            total_indices - leaves.len() as u64,
            if total_indices - (leaves.len() as u64) > 10 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    report.findings.push(Finding {
        kind: Kind::Checkpoint,
        key: format!("{tree_label} ({} digests)", leaves.len()),
        status: tree_status,
    });
    let check = |name: String, cp: &Checkpoint| {
        let status = match cp.verify(keys) {
            Err(why) => Status::Invalid(why),
            Ok(()) => consistency_status(&tree, cp),
        };
        Finding {
            kind: Kind::Checkpoint,
            key: name,
            status,
        }
    };
    // Stored checkpoints are many (one per digest): one finding for all of them, naming the
    // first that fails, so a single rewrite is not reported a thousand times.
    let stored = checkpoint::stored_checkpoints(store).await?;
    let total = stored.len();
    let mut bad: Vec<(String, String)> = Vec::new();
    for (key, cp) in stored {
        let status = match cp {
            Ok(cp) => check(key.clone(), &cp).status,
            Err(why) => Status::Invalid(why),
        };
        if let Status::Invalid(why) = status {
            bad.push((key, why));
        }
    }
    if total > 0 {
        report.findings.push(Finding {
            kind: Kind::Checkpoint,
            key: format!("{}/ ({total} stored)", checkpoint::CHECKPOINTS_PREFIX),
            status: match bad.first() {
                None => Status::Valid,
                Some((key, why)) if bad.len() == 1 => Status::Invalid(format!("{key}: {why}")),
                Some((key, why)) => Status::Invalid(format!(
                    "{key}: {why} (and {} later checkpoints)",
                    bad.len() - 1
                )),
            },
        });
    }
    if let Some(cp) = exported {
        report
            .findings
            .push(check(format!("exported checkpoint (size {})", cp.size), cp));
    }
    Ok(())
}

/// Does the present tree extend `cp`? Checked with an RFC 9162 consistency proof.
fn consistency_status(tree: &MerkleTree, cp: &Checkpoint) -> Status {
    if cp.size > tree.size() {
        return Status::Invalid(format!(
            "history truncated: the checkpoint covers {} digests, the vault holds {} in sequence",
            cp.size,
            tree.size()
        ));
    }
    let proof = tree
        .consistency_proof(cp.size, tree.size())
        .unwrap_or_default();
    if merkle::verify_consistency(cp.size, tree.size(), &cp.root, &tree.root(), &proof) {
        Status::Valid
    } else {
        Status::Invalid(format!(
            "history rewritten: the first {} digests no longer have the checkpoint's root",
            cp.size
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_group_from_layout() {
        assert_eq!(
            segment_group("segments/group=aws%2Fx/year=2025/month=11/day=22/hour=03/a.parquet")
                .as_deref(),
            Some("aws/x")
        );
        assert_eq!(segment_group("segments/other/x"), None);
    }
}
