//! trailvault-integrity: tamper evidence for the vault.
//!
//! - [`merkle`]: RFC 6962 trees, inclusion and consistency proofs.
//! - [`leaf`]: the canonical leaf encoding of an event and the seal of a segment.
//!
//! See `docs/integrity.md` for the formats an auditor needs.

pub mod error;
pub mod hash;
pub mod keys;
pub mod leaf;
pub mod merkle;
pub mod time;

pub use hash::{sha256, Hash};
pub use leaf::{seal_segment, SegmentHashes, SegmentSeal};
