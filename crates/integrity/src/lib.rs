//! trailvault-integrity: tamper evidence for the vault.
//!
//! - [`merkle`]: RFC 6962 trees, inclusion and consistency proofs.
//! - [`leaf`]: the canonical leaf encoding of an event and the seal of a segment.
//! - [`keys`]: the signing keyring, rotation, public keys for auditors.
//! - [`digest`]: signed, chained per-group digests and the [`DigestWriter`].
//! - [`checkpoint`]: signed checkpoints of the cumulative digest tree.
//! - [`validate`]: the offline validator.
//! - [`proof`]: per-event inclusion proofs and checkpoint consistency proofs.
//! - [`proof_index`]: the lookups that keep `prove` from reading every digest.
//! - [`cloudtrail`]: validation of AWS CloudTrail's own digest chains.
//! - [`cloudtrail_export`]: a group's chain rendered in CloudTrail's digest format.
//! - [`cli`]: clap arguments and run functions the `trailvault` binary mounts.
//!
//! See `docs/integrity.md` for the formats an auditor needs.

pub mod checkpoint;
pub mod cli;
pub mod cloudtrail;
pub mod cloudtrail_export;
pub mod digest;
pub mod error;
pub mod hash;
pub mod keys;
pub mod leaf;
pub mod merkle;
pub mod objects;
pub mod proof;
pub mod proof_index;
pub mod time;
pub mod validate;

pub use cli::{
    run_export_checkpoint_cli, run_export_cloudtrail_cli, run_export_keys_cli, run_prove_cli,
    run_validate_cli, run_validate_cloudtrail_cli, run_verify_proof_cli, ExportCheckpointArgs,
    ExportCloudTrailArgs, ExportKeysArgs, ProveArgs, ValidateArgs, ValidateCloudTrailArgs,
    VerifyProofArgs,
};
pub use digest::{DigestRef, DigestWriter, PeriodDigest};
pub use error::{IntegrityError, Result};
pub use hash::{sha256, Hash};
pub use keys::{Keyring, PublicKeySet, SignatureAlgorithm};
pub use leaf::{seal_segment, SegmentHashes, SegmentSeal};
pub use validate::{validate, ValidateOptions, ValidationReport, ValidationSummary};
