//! The digest clock: every `--digest-period`, for every log group (quiet ones too), write a
//! signed digest listing the segments sealed in that period.
//!
//! Periods are aligned to multiples of the period since the epoch. After downtime, the missed
//! stretch is covered by one digest spanning the whole gap, so the chain stays continuous
//! without writing thousands of empty digests.

use std::time::Duration;

use anyhow::Context;
use trailvault_integrity::digest::PeriodDigest;
use trailvault_integrity::keys::{Keyring, SignatureAlgorithm};
use trailvault_integrity::{DigestWriter, SegmentSeal};
use trailvault_store::{now_ms, SegmentMeta, Vault};

fn seal_of(m: &SegmentMeta) -> anyhow::Result<SegmentSeal> {
    let hash = |hex: &str, what: &str| {
        trailvault_integrity::hash::parse_hash_hex(hex)
            .with_context(|| format!("segment {} has no valid {what} in the catalog", m.key))
    };
    Ok(SegmentSeal {
        group: m.group.clone(),
        key: m.key.clone(),
        sha256: hash(&m.sha256, "sha256")?,
        merkle_root: hash(&m.merkle_root, "merkle root")?,
        event_count: m.event_count,
        oldest_ms: m.oldest_ms,
        newest_ms: m.newest_ms,
        bytes: m.bytes,
        sealed_at_ms: m.sealed_at_ms,
    })
}

pub async fn open_writer(
    vault: &Vault,
    algorithm: SignatureAlgorithm,
) -> anyhow::Result<DigestWriter> {
    let keys_dir = vault.config().data_dir.join("keys");
    let keyring = Keyring::open_or_create(&keys_dir, algorithm)
        .with_context(|| format!("could not open the signing keys in {}", keys_dir.display()))?;
    let mut writer = DigestWriter::open(vault.storage().object_store(), keyring)
        .await
        .context("could not recover the digest chain")?;
    // The proof index keeps `trailvault prove` from reading every digest; it is a cache, so
    // a failure to open or rebuild it is logged, not fatal (prove then scans).
    let path = vault
        .config()
        .data_dir
        .join(trailvault_integrity::proof_index::PROOF_INDEX_FILE);
    let attached = match trailvault_integrity::proof_index::ProofIndex::open(&path) {
        Ok(index) => writer.attach_proof_index(index).await,
        Err(e) => Err(e),
    };
    if let Err(e) = attached {
        tracing::warn!(error = %e, path = %path.display(), "proof index unavailable; prove will scan the digests");
    }
    Ok(writer)
}

/// Write every digest that is due at `now`, one per group, with one checkpoint for all of
/// them. Returns how many were written.
pub async fn write_due(
    vault: &Vault,
    writer: &mut DigestWriter,
    period_ms: i64,
    now: i64,
) -> anyhow::Result<usize> {
    let aligned_now = now.div_euclid(period_ms) * period_ms;
    let mut due: Vec<(String, i64, i64, Vec<SegmentSeal>)> = Vec::new();
    for group in vault.log_groups() {
        let start = match writer.head(&group.name) {
            Some(h) => h.end_ms,
            None => {
                // The first digest covers everything since the group (or its oldest seal) began.
                let oldest_seal = vault
                    .segments(&group.name)?
                    .iter()
                    .map(|s| s.sealed_at_ms)
                    .min()
                    .unwrap_or(i64::MAX);
                group.created_ms.min(oldest_seal).div_euclid(period_ms) * period_ms
            }
        };
        if aligned_now <= start {
            continue;
        }
        // One period normally; one digest over the whole gap after downtime.
        let end = if aligned_now - start > 2 * period_ms {
            aligned_now
        } else {
            start + period_ms
        };
        let seals = vault
            .segments_sealed_between(&group.name, start, end)?
            .iter()
            .map(|m| seal_of(m))
            .collect::<anyhow::Result<Vec<_>>>()?;
        due.push((group.name, start, end, seals));
    }
    if due.is_empty() {
        return Ok(0);
    }
    let periods: Vec<PeriodDigest<'_>> = due
        .iter()
        .map(|(group, start, end, seals)| PeriodDigest {
            group,
            start_ms: *start,
            end_ms: *end,
            seals,
            deletions: &[],
        })
        .collect();
    writer
        .write_periods(&periods)
        .await
        .context("could not write the period's digests")?;
    if let Some(e) = writer.take_index_error() {
        tracing::warn!(error = %e, "proof index detached; it is rebuilt at the next start");
    }
    Ok(due.len())
}

/// Run the digest clock until the vault goes away.
pub fn spawn(
    vault: Vault,
    mut writer: DigestWriter,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    let period_ms = (period.as_millis() as i64).max(1000);
    let tick = (period / 5).clamp(Duration::from_millis(100), Duration::from_secs(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            loop {
                match write_due(&vault, &mut writer, period_ms, now_ms()).await {
                    Ok(0) => break,
                    Ok(_) => continue, // a group may be more than one period behind
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "digest writing failed; will retry");
                        break;
                    }
                }
            }
        }
    })
}

/// Validate the whole chain now and then, publishing the summary for the API and metrics.
/// The first run starts shortly after start-up.
pub fn spawn_validator(
    vault: Vault,
    status: std::sync::Arc<std::sync::RwLock<Option<serde_json::Value>>>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(30).min(every);
        loop {
            tokio::time::sleep(wait).await;
            wait = every;
            let keys_dir = vault.config().data_dir.join("keys");
            let keys = match trailvault_integrity::keys::PublicKeySet::load_dir(&keys_dir) {
                Ok(k) => k,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load public keys for validation");
                    continue;
                }
            };
            let opts = trailvault_integrity::validate::ValidateOptions {
                group: None,
                start_ms: None,
                end_ms: None,
                checkpoint: None,
                concurrency: 0,
                progress: false,
                pending_grace_ms: None,
                hash_only: false,
            };
            match trailvault_integrity::validate::validate(
                opts,
                vault.storage().object_store(),
                &keys,
            )
            .await
            {
                Ok(report) => {
                    let summary = report.summary(now_ms());
                    if !summary.valid {
                        tracing::error!(
                            failures = summary.failures_total,
                            "integrity validation found failures"
                        );
                    }
                    let json = serde_json::to_value(&summary).unwrap_or_default();
                    *status.write().unwrap_or_else(|p| p.into_inner()) = Some(json);
                }
                Err(e) => tracing::error!(error = %e, "integrity validation could not run"),
            }
        }
    })
}
