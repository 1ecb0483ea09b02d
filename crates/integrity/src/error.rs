//! The crate's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A file of ours that does not parse or contradicts itself: corruption, never repaired.
    #[error("{location}: {what}")]
    Corrupt { location: String, what: String },
    #[error("key: {0}")]
    Key(String),
    /// The caller asked for something the chain cannot do (e.g. a period that does not
    /// follow the previous one).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl IntegrityError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IntegrityError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(location: impl Into<String>, what: impl Into<String>) -> Self {
        IntegrityError::Corrupt {
            location: location.into(),
            what: what.into(),
        }
    }
}

pub type Result<T, E = IntegrityError> = std::result::Result<T, E>;
