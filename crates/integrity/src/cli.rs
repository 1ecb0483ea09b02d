//! Command-line front ends the `trailvault` binary mounts as subcommands: `validate`,
//! `prove`, `verify-proof` (and `validate-cloudtrail`, see [`crate::cloudtrail`]).
//! Each is a clap `Args` struct plus a `run_*` function returning the exit status.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use crate::checkpoint::Checkpoint;
use crate::keys::PublicKeySet;
use crate::proof::{self, Proof};
use crate::time::parse_user_time;
use crate::validate::{validate, ValidateOptions};

/// Where the vault's objects are and which keys to trust.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// The vault's data directory.
    #[arg(long, value_name = "DIR", conflicts_with = "path")]
    pub data: Option<PathBuf>,
    /// A copy of the vault's data directory (validation needs no running vault).
    #[arg(long, value_name = "COPY")]
    pub path: Option<PathBuf>,
    /// Trusted public keys: a directory with `public-keys.json` (from a key export) or a
    /// keyring's `manifest.json`. Default: `<data>/keys`.
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
}

impl SourceArgs {
    fn root(&self) -> anyhow::Result<&Path> {
        match (&self.data, &self.path) {
            (Some(d), _) | (None, Some(d)) => Ok(d),
            (None, None) => bail!("give --data DIR or --path COPY"),
        }
    }

    fn store(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let root = self.root()?;
        let fs = LocalFileSystem::new_with_prefix(root)
            .with_context(|| format!("opening {}", root.display()))?;
        Ok(Arc::new(fs))
    }

    fn keys(&self) -> anyhow::Result<PublicKeySet> {
        let dir = match &self.keys {
            Some(k) => k.clone(),
            None => self.root()?.join("keys"),
        };
        PublicKeySet::load_dir(&dir)
            .with_context(|| format!("loading public keys from {}", dir.display()))
    }
}

/// `trailvault validate`
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only this log group's chain.
    #[arg(long)]
    pub group: Option<String>,
    /// Start of the period to validate (RFC 3339, YYYY-MM-DD or epoch ms).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the period to validate (default: now).
    #[arg(long)]
    pub end: Option<String>,
    /// Also print valid items.
    #[arg(long, short)]
    pub verbose: bool,
    /// A checkpoint exported earlier: the vault's history must extend it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Segments read and hashed at once (default: twice the cores).
    #[arg(long, default_value_t = 0)]
    pub concurrency: usize,
    /// Check segments' bytes against their signed SHA-256 only, without decoding them to
    /// recompute their Merkle roots (faster; any change to the bytes is still caught).
    #[arg(long)]
    pub hash_only: bool,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn user_time(s: &Option<String>, what: &str) -> anyhow::Result<Option<i64>> {
    s.as_deref()
        .map(|t| parse_user_time(t).with_context(|| format!("--{what} {t:?} is not a time")))
        .transpose()
}

/// Run `validate`; the exit status is 0 only if everything is valid.
pub fn run_validate_cli(args: ValidateArgs) -> anyhow::Result<i32> {
    let store = args.source.store()?;
    let keys = args.source.keys()?;
    let checkpoint = match &args.checkpoint {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(Checkpoint::parse(&text).with_context(|| format!("parsing {}", p.display()))?)
        }
        None => None,
    };
    let opts = ValidateOptions {
        group: args.group.clone(),
        start_ms: user_time(&args.start, "start")?,
        end_ms: user_time(&args.end, "end")?,
        checkpoint,
        concurrency: args.concurrency,
        progress: true,
        pending_grace_ms: None,
        hash_only: args.hash_only,
    };
    let report = runtime()?.block_on(validate(opts, store, &keys))?;
    print!("{}", report.render(args.verbose));
    Ok(if report.is_valid() { 0 } else { 1 })
}

/// `trailvault prove EVENT_ID` / `trailvault prove --consistency OLD NEW`
#[derive(Debug, Clone, clap::Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The event to prove.
    #[arg(required_unless_present = "consistency")]
    pub event_id: Option<String>,
    /// Prove that checkpoint file NEW extends checkpoint file OLD.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "event_id")]
    pub consistency: Option<Vec<PathBuf>>,
    /// Write the proof here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run_prove_cli(args: ProveArgs) -> anyhow::Result<i32> {
    let store = args.source.store()?;
    let rt = runtime()?;
    let proof = match (&args.consistency, &args.event_id) {
        (Some(files), _) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let (old, new) = (read(&files[0])?, read(&files[1])?);
            Proof::Consistency(rt.block_on(proof::prove_consistency(&store, &old, &new))?)
        }
        (None, Some(id)) => {
            // A cache: if it cannot be opened (e.g. a copy without its WAL files), scan.
            let path = args
                .source
                .root()?
                .join(crate::proof_index::PROOF_INDEX_FILE);
            let index = crate::proof_index::ProofIndex::open_read_only(&path).unwrap_or_else(|e| {
                eprintln!("note: proof index not usable ({e}); reading every digest instead");
                None
            });
            Proof::Event(Box::new(rt.block_on(proof::prove_event(
                &store,
                id,
                index.as_ref(),
            ))?))
        }
        (None, None) => bail!("give EVENT_ID or --consistency OLD NEW"),
    };
    let json = serde_json::to_string_pretty(&proof)? + "\n";
    match &args.output {
        Some(p) => std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{json}"),
    }
    Ok(0)
}

/// `trailvault verify-proof FILE`
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyProofArgs {
    /// The proof document.
    pub file: PathBuf,
    /// Trusted public keys (`public-keys.json` directory).
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
}

pub fn run_verify_proof_cli(args: VerifyProofArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let proof: Proof =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", args.file.display()))?;
    let keys = PublicKeySet::load_dir(&args.keys)?;
    match proof::verify_proof(&proof, &keys) {
        Ok(summary) => {
            println!("valid: {summary}");
            Ok(0)
        }
        Err(why) => {
            println!("INVALID: {why}");
            Ok(1)
        }
    }
}

/// `trailvault validate-cloudtrail`: AWS CloudTrail's own digest chains, on a local copy.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateCloudTrailArgs {
    /// A copy of the trail's bucket (objects under their S3 keys, digest signatures in
    /// `<key>.metadata.json`).
    #[arg(long, value_name = "COPY")]
    pub path: PathBuf,
    /// AWS public keys: `.pem`/`.der` files and/or `aws cloudtrail list-public-keys` JSON.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Also print valid items.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run_validate_cloudtrail_cli(args: ValidateCloudTrailArgs) -> anyhow::Result<i32> {
    let fs = LocalFileSystem::new_with_prefix(&args.path)
        .with_context(|| format!("opening {}", args.path.display()))?;
    let store: Arc<dyn ObjectStore> = Arc::new(fs);
    let keys = crate::cloudtrail::load_keys(&args.keys)?;
    let report = runtime()?.block_on(crate::cloudtrail::validate_cloudtrail(store, &keys))?;
    print!("{}", report.render(args.verbose));
    Ok(if report.is_valid() { 0 } else { 1 })
}

/// `trailvault export-cloudtrail-digests`: one log group's chain in AWS CloudTrail's digest
/// format, signed with the vault's RSA key (see [`crate::cloudtrail_export`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ExportCloudTrailArgs {
    /// The vault's data directory (digests, segments and `keys/` with the private keys).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Where to write the objects, under their S3 keys, with `<key>.metadata.json` beside
    /// each digest and `list-public-keys.json`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The log group whose chain is rendered (one group = one trail).
    #[arg(long)]
    pub group: String,
    /// The bucket the objects will live in (it is part of what is signed).
    #[arg(long)]
    pub bucket: String,
    /// 12-digit account id for the `AWSLogs/<acct>/` layout.
    #[arg(long, default_value = "000000000000")]
    pub account: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Trail name (default: the group name with characters outside `[A-Za-z0-9._-]` as `-`).
    #[arg(long)]
    pub trail: Option<String>,
    /// S3 key prefix of the trail.
    #[arg(long)]
    pub prefix: Option<String>,
}

pub fn run_export_cloudtrail_cli(args: ExportCloudTrailArgs) -> anyhow::Result<i32> {
    let fs = LocalFileSystem::new_with_prefix(&args.data)
        .with_context(|| format!("opening {}", args.data.display()))?;
    let store: Arc<dyn ObjectStore> = Arc::new(fs);
    let keys_dir = args.data.join("keys");
    let keyring = crate::keys::Keyring::open(&keys_dir)
        .with_context(|| format!("opening the signing keys in {}", keys_dir.display()))?;
    let target = crate::cloudtrail_export::CloudTrailTarget {
        trail: args
            .trail
            .clone()
            .unwrap_or_else(|| crate::cloudtrail_export::trail_name_for(&args.group)),
        group: args.group.clone(),
        bucket: args.bucket.clone(),
        account: args.account.clone(),
        region: args.region.clone(),
        prefix: args.prefix.clone(),
    };
    let s = runtime()?.block_on(crate::cloudtrail_export::export_cloudtrail(
        &store, &keyring, &target, &args.out,
    ))?;
    println!(
        "exported {} digests and {} log files of {} as trail {} to {} (key fingerprints {}){}",
        s.digests,
        s.log_files,
        args.group,
        target.trail,
        args.out.display(),
        s.fingerprints.join(", "),
        if s.log_files_missing > 0 {
            format!("; {} listed segments are missing", s.log_files_missing)
        } else {
            String::new()
        }
    );
    Ok(0)
}

/// `trailvault keys export`: the vault's public keys, for auditors.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportKeysArgs {
    /// The vault's data directory (keys are read from `<data>/keys`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Where to write `public-keys.json` and the PEM/DER files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run_export_keys_cli(args: ExportKeysArgs) -> anyhow::Result<i32> {
    let set = PublicKeySet::load_dir(&args.data.join("keys"))?;
    crate::keys::export_public_keys(&set, &args.out)?;
    println!(
        "exported {} public keys to {}",
        set.keys().len(),
        args.out.display()
    );
    Ok(0)
}

/// `trailvault checkpoint export`: the newest signed checkpoint, to keep elsewhere.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportCheckpointArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Write it here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run_export_checkpoint_cli(args: ExportCheckpointArgs) -> anyhow::Result<i32> {
    let store = args.source.store()?;
    let Some(text) = runtime()?.block_on(crate::checkpoint::export_checkpoint(&store))? else {
        bail!("the vault has no checkpoint yet");
    };
    match &args.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand)]
    enum Cmd {
        Validate(ValidateArgs),
        Prove(ProveArgs),
        VerifyProof(VerifyProofArgs),
        ValidateCloudtrail(ValidateCloudTrailArgs),
        ExportKeys(ExportKeysArgs),
        ExportCheckpoint(ExportCheckpointArgs),
        ExportCloudtrailDigests(ExportCloudTrailArgs),
    }

    #[test]
    fn arguments_parse() {
        let c = Cli::try_parse_from([
            "t",
            "validate",
            "--path",
            "/x",
            "--group",
            "g",
            "-v",
            "--checkpoint",
            "cp",
        ])
        .unwrap();
        let Cmd::Validate(v) = c.cmd else { panic!() };
        assert!(v.verbose && v.group.as_deref() == Some("g"));
        assert!(Cli::try_parse_from(["t", "validate", "--path", "/x", "--data", "/y"]).is_err());
        let c =
            Cli::try_parse_from(["t", "prove", "--data", "d", "--consistency", "a", "b"]).unwrap();
        let Cmd::Prove(p) = c.cmd else { panic!() };
        assert_eq!(p.consistency.unwrap().len(), 2);
        assert!(Cli::try_parse_from(["t", "prove", "--data", "d"]).is_err());
        assert!(Cli::try_parse_from(["t", "verify-proof", "f", "--keys", "k"]).is_ok());
        assert!(
            Cli::try_parse_from(["t", "validate-cloudtrail", "--path", "p", "--keys", "k"]).is_ok()
        );
        assert!(Cli::try_parse_from(["t", "export-keys", "--data", "d", "--out", "o"]).is_ok());
        assert!(Cli::try_parse_from(["t", "export-checkpoint", "--data", "d"]).is_ok());
        let c = Cli::try_parse_from([
            "t",
            "export-cloudtrail-digests",
            "--data",
            "d",
            "--out",
            "o",
            "--group",
            "g",
            "--bucket",
            "b",
        ])
        .unwrap();
        let Cmd::ExportCloudtrailDigests(e) = c.cmd else {
            panic!()
        };
        assert_eq!(
            (e.account.as_str(), e.region.as_str()),
            ("000000000000", "us-east-1")
        );
        assert!(Cli::try_parse_from(["t", "export-cloudtrail-digests", "--data", "d"]).is_err());
    }
}
