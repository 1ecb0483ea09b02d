//! SQL over a vault with Apache DataFusion: a table per log group, a unified `events` table
//! of the normalized columns, and LookupEvents-style lookups answered by pruning.
//!
//! Codemap:
//! - [`engine`]: [`SqlEngine`], the session over sealed segments (a table over exactly the
//!   snapshot's segment files, `segment_table`) and the unsealed tail (in memory), with a
//!   bounded memory pool;
//! - `segment_prune`: which files a SQL scan opens (its filters against the catalog's time
//!   ranges, partition values and lookup filters, then the footers' statistics);
//! - [`lookup`]: [`SqlEngine::lookup`] by one `LookupEvents` attribute;
//! - `segment_scan`: how a lookup reads sealed segments (catalog time ranges and lookup
//!   filters pick the files, newest first, stopping once the answer is known);
//! - [`cli`]: `trailvault sql` and `trailvault lookup` ([`SqlArgs`], [`run_sql`],
//!   [`LookupArgs`], [`run_lookup`]);
//! - [`dataset`]: the seeded multi-account dataset generator used by tests and benchmarks.
//!
//! Invariant: a query sees each event exactly once, whether it sits in a sealed segment or
//! the tail (see the [`engine`] docs for how the snapshot guarantees it).

pub mod cli;
pub mod dataset;
pub mod engine;
mod error;
pub mod lookup;
mod segment_prune;
mod segment_scan;
mod segment_table;

pub use cli::{run_lookup, run_sql, LookupArgs, OutputFormat, SqlArgs};
pub use engine::{view_columns, DataScope, SqlEngine, SqlOptions, MEMORY_LIMIT_BYTES_DEFAULT};
pub use error::SqlError;
pub use lookup::{LookupAttribute, LookupEvent, LookupStats, LOOKUP_RESULTS_MAX};
