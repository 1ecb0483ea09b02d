use std::path::PathBuf;

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query text does not parse; `line` and `column` are 1-based, as DataFusion's
    /// parser reports them.
    #[error("sql syntax error at line {line}, column {column}: {message}")]
    Syntax {
        message: String,
        line: u64,
        column: u64,
    },
    /// The query parses but cannot be planned (unknown table or column, type mismatch, a
    /// statement that is not a query).
    #[error("{0}")]
    Plan(String),
    /// The query needed more memory than the pool allows and could not spill.
    #[error("query exceeded the memory limit of {limit_bytes} bytes (raise --memory-limit or narrow the query): {detail}")]
    MemoryLimit { limit_bytes: usize, detail: String },
    #[error("query failed: {0}")]
    Execution(String),
    #[error("invalid lookup: {0}")]
    InvalidLookup(String),
    #[error("{} is not a trailvault data directory (no catalog.sqlite)", .0.display())]
    NotAVault(PathBuf),
    #[error("{0}")]
    Busy(String),
    #[error("reading the catalog: {0}")]
    Catalog(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] trailvault_store::StoreError),
    #[error(transparent)]
    Segment(#[from] trailvault_segment::SegmentError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        SqlError::from_datafusion(e, 0)
    }
}

impl From<parquet::errors::ParquetError> for SqlError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        SqlError::Segment(e.into())
    }
}

impl From<arrow::error::ArrowError> for SqlError {
    fn from(e: arrow::error::ArrowError) -> Self {
        SqlError::Segment(e.into())
    }
}

impl SqlError {
    pub(crate) fn from_datafusion(e: DataFusionError, limit_bytes: usize) -> SqlError {
        let root = e.find_root();
        match root {
            DataFusionError::SQL(parse, _) => {
                let message = parse.to_string();
                let (line, column) = location_in(&message).unwrap_or((0, 0));
                SqlError::Syntax {
                    message: strip_location(&message),
                    line,
                    column,
                }
            }
            DataFusionError::ResourcesExhausted(detail) => SqlError::MemoryLimit {
                limit_bytes,
                detail: detail.clone(),
            },
            DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => SqlError::Plan(root.to_string()),
            _ => {
                // Memory errors raised inside a spilling operator come wrapped in text.
                let text = e.to_string();
                if text.contains("Resources exhausted") {
                    SqlError::MemoryLimit {
                        limit_bytes,
                        detail: text,
                    }
                } else {
                    SqlError::Execution(text)
                }
            }
        }
    }

    /// Where a syntax error is, when it is one.
    pub fn location(&self) -> Option<(u64, u64)> {
        match self {
            SqlError::Syntax { line, column, .. } if *line > 0 => Some((*line, *column)),
            _ => None,
        }
    }
}

/// `... at Line: 1, Column: 8` as sqlparser words it.
fn location_in(message: &str) -> Option<(u64, u64)> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(',')?;
    let rest = rest.trim_start().strip_prefix("Column: ")?;
    let column: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

fn strip_location(message: &str) -> String {
    let m = message
        .strip_prefix("sql parser error: ")
        .unwrap_or(message);
    match m.rfind(" at Line: ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_locations_are_read() {
        let m = "sql parser error: Expected: end of statement, found: FORM at Line: 1, Column: 10";
        assert_eq!(location_in(m), Some((1, 10)));
        assert_eq!(strip_location(m), "Expected: end of statement, found: FORM");
        assert_eq!(location_in("no location here"), None);
    }
}
