//! Types every trailvault crate agrees on.
//!
//! This crate has no I/O and (almost) no dependencies: it is the vocabulary shared by the
//! parsers (`formats`), the store, the integrity chain, monitoring and queries.

mod event;
mod json_text;
pub mod limits;
mod normalized;

pub use event::{event_id_digits, event_id_from_seq, seq_from_event_id, StoredEvent};
pub use json_text::{JsonText, Member, ObjectLayout};
pub use normalized::{Activity, Normalized, Outcome, Resource};
