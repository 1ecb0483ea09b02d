use std::path::PathBuf;

/// What went wrong, in a form the API layer can map to CloudWatch's error types.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A named resource does not exist (ResourceNotFoundException).
    #[error("{0}")]
    NotFound(String),
    /// The resource exists already (ResourceAlreadyExistsException).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed or breaks a limit (InvalidParameterException).
    #[error("{0}")]
    InvalidParameter(String),
    /// The vault refuses on principle, e.g. deleting evidence (ValidationException).
    #[error("{0}")]
    Refused(String),
    /// Data on disk is not what was written: stop loudly, never repair silently.
    #[error("corrupt {file}: at offset {offset}: {what}")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog error: {0}")]
    Catalog(#[from] rusqlite::Error),
    #[error("object storage error: {0}")]
    Storage(#[from] object_store::Error),
    #[error("segment error: {0}")]
    Segment(#[from] trailvault_segment::SegmentError),
    /// The vault is shutting down or its writer died; the request was not acknowledged.
    #[error("vault unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
