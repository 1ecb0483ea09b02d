//! Parsers and normalizers for every log source trailvault accepts.
//!
//! Invariants: parsers never panic on input and never do I/O. A parser returns every record it
//! could read, each with its raw bytes kept byte-exact, plus one [`Rejection`] per record it
//! could not read (with where and why), so `records read = records stored + records rejected`.

mod record;
pub mod sources;

pub use record::{ParseOutput, ParsedRecord, Rejection};
