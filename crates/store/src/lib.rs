//! The vault's storage engine: write-ahead log, unsealed tail, sealing into Parquet
//! segments, the catalog, and the one storage interface every stored object passes through.
//!
//! Data flow: `Vault::put_log_events` → WAL (group commit, fsync) → tail (`memtable`) →
//! acknowledged. The sealer freezes the tail, writes one segment per (group, hour) through
//! `Storage`, commits them in the `Catalog` together with the sealed watermark, and only then
//! drops the WAL files the segments cover. Reads merge sealed segments with the tail.
//! A bulk import skips the WAL and the tail: `Vault::seal_imported` seals its events straight
//! into segments, through the same encoding and the same catalog commit.

pub mod catalog;
pub mod error;
pub mod layout;
mod memtable;
pub mod storage;
mod vault;
pub mod wal;

pub use catalog::{
    Catalog, LogGroupMeta, SegmentLookupFilter, SegmentMeta, StreamMeta, StreamRange,
};
pub use error::{Result, StoreError};
pub use storage::Storage;
pub use vault::{
    now_ms, ImportedStream, InputEvent, PutOptions, PutOutcome, RejectedInfo, SealReport,
    StreamFilter, Vault, VaultConfig,
};
