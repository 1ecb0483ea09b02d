//! The CloudWatch Logs Insights query language over trailvault's stored events.
//!
//! ```text
//! filter eventName = "ConsoleLogin" and errorMessage = "Failed authentication"
//!   | stats count(*) as fails by sourceIPAddress, bin(5m)
//!   | sort fails desc
//! ```
//!
//! [`Query::parse`] compiles the text (lexer → parser → plan); [`Query::execute`] streams events
//! through it and returns rows shaped like GetQueryResults; [`format_table`], [`format_csv`] and
//! [`format_json`] render them for the CLI.
//!
//! Codemap: `lexer` (tokens with positions), `parser` (commands and expressions, regexes
//! compiled), `ast` (the parsed form), `value` (coercion, ordering, display rules), `json`
//! (selective flattening of JSON messages), `functions` (scalar functions), `aggregate`
//! (stats states), `exec` (the streaming executor and its limits), `output` (table/csv/json).
//!
//! Semantics where Insights' documentation is silent, chosen here and pinned by
//! `tests/cases/*.test`:
//! - absent fields are null; comparisons with null are null and `filter` keeps only true rows,
//!   so `x != "a"` skips events without `x` (use `not ispresent(x) or x != "a"`);
//! - `sort` is ascending unless `desc`; nulls sort last either way; ties keep input order;
//!   without `sort`, rows come in input order; `stats` groups in first-seen order;
//! - columns: `@timestamp, @message` (plus `parse` targets) until `fields` names some; `stats`
//!   shows its `by` columns then its outputs; the last `display` wins;
//! - a parse glob is unanchored, each `*` lazy except a trailing one; when it does not match,
//!   its fields stay absent (a JSON field of the same name still shows through);
//! - booleans display as `1`/`0` (JSON booleans keep their text `true`/`false`);
//! - `stddev` is the sample deviation, `pct` the nearest rank, `count_distinct` exact (bounded
//!   by `ExecOptions::held_values_max`); `stats` without `by` over no rows gives one row;
//! - `bin`/`datefloor`/`dateceil` align to the epoch (weeks to Mondays, `mo`/`q`/`y` to the
//!   calendar), in UTC;
//! - VPC flow and other plain-text formats have no discovered fields: use `parse`.
//!
//! Invariants: parsing never panics and every syntax error has a line and column; execution
//! memory is bounded by [`ExecOptions`]; only fields discovered in the message (auto fields,
//! JSON paths, `parse` captures) exist — the normalized record is not exposed here.

mod aggregate;
pub mod ast;
mod error;
mod exec;
mod functions;
mod json;
mod lexer;
mod output;
mod parser;
pub mod value;

pub use error::{QueryError, SyntaxError, QUERY_CHARS_MAX};
pub use exec::{ExecOptions, QueryOutput, QueryStatistics, ResultField, CANCEL_CHECK_ROWS};
pub use json::discover_fields;
pub use output::{format_csv, format_json, format_table};
pub use parser::LIMIT_ROWS_MAX;

use trailvault_model::StoredEvent;

/// A compiled Insights query, reusable across executions.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    commands: Vec<ast::Command>,
    plan: exec::Plan,
}

impl Query {
    /// Compiles `text`. Errors: [`QueryError::Syntax`] with the location, or
    /// [`QueryError::TooLong`].
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let chars = text.chars().count();
        if chars > QUERY_CHARS_MAX {
            return Err(QueryError::TooLong {
                chars,
                max: QUERY_CHARS_MAX,
            });
        }
        let tokens = lexer::tokenize(text).map_err(QueryError::Syntax)?;
        let mut p = parser::Parser::new(text, tokens);
        let commands = p.parse_query().map_err(QueryError::Syntax)?;
        let plan = exec::Plan::new(p.fields.names.clone(), &commands);
        Ok(Query {
            text: text.to_string(),
            commands,
            plan,
        })
    }

    /// The query text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed pipeline.
    pub fn commands(&self) -> &[ast::Command] {
        &self.commands
    }

    /// The columns the results will have, in order.
    pub fn output_fields(&self) -> Vec<&str> {
        self.plan
            .display
            .iter()
            .map(|&id| self.plan.names[id].as_str())
            .collect()
    }

    /// Whether result rows are aggregates (a `stats` ran) rather than single events.
    pub fn is_aggregation(&self) -> bool {
        self.plan.aggregated
    }

    /// Runs the query over `events`, each paired with the account id of its log group (for
    /// `@log` = `account:group`). Events are read once, in the order given; the caller selects
    /// the log groups and time range.
    pub fn execute<'e>(
        &self,
        events: impl IntoIterator<Item = (&'e str, &'e StoredEvent)>,
        opts: &ExecOptions,
    ) -> Result<QueryOutput, QueryError> {
        exec::execute(&self.plan, &self.commands, events, opts)
    }
}
