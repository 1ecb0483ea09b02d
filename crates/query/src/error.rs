//! Errors of the query language: compile-time syntax errors with a location, and run-time
//! failures (memory limits, cancellation).

use thiserror::Error;

/// Longest query text accepted (StartQuery's `queryString` limit), in characters.
pub const QUERY_CHARS_MAX: usize = 10_000;

/// Where a query failed to compile, mirroring `MalformedQueryException`'s
/// `queryCompileError { location { start, end, line }, message }`.
///
/// `start` and `end` are 0-based character offsets into the query text (end exclusive);
/// `line` and `column` are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub start: usize,
    pub end: usize,
    /// What the parser was looking for at this point, when that is the nature of the error.
    pub expected: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Everything that can go wrong compiling or running a query.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// The query text is malformed; nothing was executed.
    #[error("syntax error at {0}")]
    Syntax(SyntaxError),
    /// The query text is longer than [`QUERY_CHARS_MAX`].
    #[error("query is {chars} characters long, more than the {max} allowed")]
    TooLong { chars: usize, max: usize },
    /// A bounded structure (groups, buffered rows, held values) hit its configured limit.
    #[error("query exceeded memory limit: {0}")]
    MemoryLimit(String),
    /// The caller's cancel flag was raised while the query ran.
    #[error("query cancelled")]
    Cancelled,
}

impl QueryError {
    /// The syntax error, if this is one.
    pub fn as_syntax(&self) -> Option<&SyntaxError> {
        match self {
            QueryError::Syntax(e) => Some(e),
            _ => None,
        }
    }
}
