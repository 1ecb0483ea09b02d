//! A client of the CloudWatch Logs API as trailvault serves it, and the CLI commands built on
//! it.
//!
//! - [`client`]: [`LogsClient`] (AWS JSON 1.1, SigV4-signed, retries) and typed helpers.
//! - [`batch`]: cutting input lines into PutLogEvents batches within CloudWatch's limits.
//! - [`time_arg`]: time (`10m`, RFC 3339, epoch ms) and duration arguments.
//! - [`cli`]: `groups`, `put`, `get`, `tail`: clap `Args` structs and `run_*` functions.
//! - [`query_cli`]: `query`: Logs Insights through StartQuery / GetQueryResults.
//! - [`forward`]: [`forward::VaultForwarder`], how subscription filters write to another vault.
//!
//! The client knows nothing of the vault's internals: it speaks only the public API, so it
//! works against CloudWatch Logs itself as well.

pub mod batch;
pub mod cli;
pub mod client;
pub mod forward;
pub mod metrics_cli;
pub mod monitor_cli;
pub mod query_cli;
pub mod time_arg;

#[cfg(test)]
mod fake_vault;
#[cfg(test)]
mod roundtrip_tests;

pub use client::{ClientError, LogsClient, RetryPolicy};
