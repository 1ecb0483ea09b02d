//! `trailvault query`: a Logs Insights query through StartQuery / GetQueryResults, printed as
//! a table (people), JSON (the GetQueryResults shape) or CSV (scripts).
//!
//! The API returns rows as lists of `{field, value}` holding only the fields that have a value,
//! so the columns come from compiling the query locally (the same language crate the vault
//! runs); fields the local compiler did not predict are appended in order of appearance, so a
//! server with a richer grammar still prints everything. A syntax error is shown as the line
//! of the query with a caret under the offending column. Ctrl-C stops the query on the server
//! (StopQuery) before the command ends.

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use serde_json::json;
use trailvault_query::{Query, QueryOutput, QueryStatistics, ResultField, SyntaxError};

use crate::cli::ConnectArgs;
use crate::client::{ClientError, LogsClient};
use crate::time_arg::parse_time;

/// First wait between two GetQueryResults; it grows by half each poll up to the cap.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_CAP: Duration = Duration::from_secs(2);
/// Log groups one query may name (StartQuery's limit).
const GROUPS_MAX: usize = 50;
/// Rows one query may return (StartQuery's `limit`).
const LIMIT_ROWS_MAX: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum QueryFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The GetQueryResults shape: results, statistics, status.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Log group to query; repeat for several (up to 50).
    #[arg(long = "group", value_name = "GROUP", required = true)]
    pub groups: Vec<String>,
    /// Start of the time range (epoch ms, RFC 3339, or ago: 10m, 2h, 1d).
    #[arg(long, default_value = "1h", value_parser = parse_time)]
    pub from: i64,
    /// End of the time range, included.
    #[arg(long, default_value = "now", value_parser = parse_time)]
    pub to: i64,
    /// Most rows to return when the query has no `limit` (1 to 10000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=LIMIT_ROWS_MAX as i64))]
    pub limit: Option<u32>,
    #[arg(long, value_enum, default_value_t)]
    pub output: QueryFormat,
    /// The Logs Insights query, e.g. 'filter eventName = "ConsoleLogin" | stats count(*) by sourceIPAddress'.
    pub query: String,
}

/// Runs the query and prints its results to stdout (a summary goes to stderr for tables).
pub async fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    let client = args.connect.connect()?;
    let stop = async {
        // If the handler cannot be installed, Ctrl-C keeps its default (ending the process).
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let out = query_output(&client, &args, stop).await?;
    let text = render(&out, args.output);
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.context("writing the results")?,
    }
    if args.output == QueryFormat::Table {
        let s = out.statistics;
        eprintln!(
            "{} rows; {} records matched, {} scanned ({} bytes)",
            out.rows.len(),
            s.records_matched,
            s.records_scanned,
            s.bytes_scanned
        );
    }
    Ok(())
}

/// The results as text in `format`.
pub fn render(out: &QueryOutput, format: QueryFormat) -> String {
    match format {
        QueryFormat::Table => trailvault_query::format_table(out),
        QueryFormat::Json => {
            let mut s = trailvault_query::format_json(out);
            s.push('\n');
            s
        }
        QueryFormat::Csv => trailvault_query::format_csv(out),
    }
}

/// `[from_ms, to_ms]` as StartQuery's inclusive epoch seconds.
fn range_seconds(from_ms: i64, to_ms: i64) -> anyhow::Result<(i64, i64)> {
    if to_ms < from_ms {
        bail!("--to is before --from");
    }
    Ok((from_ms.div_euclid(1000), to_ms.div_euclid(1000)))
}

/// StartQuery, then GetQueryResults with a growing pause until the query ends. When `stop`
/// completes first, the query is stopped on the server and the command fails.
pub async fn query_output(
    client: &LogsClient,
    args: &QueryArgs,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<QueryOutput> {
    if args.groups.len() > GROUPS_MAX {
        bail!("at most {GROUPS_MAX} log groups can be queried at once");
    }
    let (start, end) = range_seconds(args.from, args.to)?;
    let mut body = json!({
        "logGroupNames": args.groups,
        "startTime": start,
        "endTime": end,
        "queryString": args.query,
    });
    if let Some(n) = args.limit {
        body["limit"] = json!(n);
    }
    let started = match client.call("StartQuery", body).await {
        Ok(v) => v,
        Err(e) if e.code() == Some("MalformedQueryException") => {
            return Err(malformed(&args.query, &e));
        }
        Err(e) => return Err(e).context("StartQuery"),
    };
    let Some(id) = started["queryId"].as_str().map(str::to_string) else {
        bail!("StartQuery answered without a queryId");
    };
    let mut stop = std::pin::pin!(stop);
    let mut pause = POLL_FIRST;
    loop {
        let polled = tokio::select! {
            r = client.call("GetQueryResults", json!({ "queryId": id })) => r,
            () = &mut stop => return Err(stop_query(client, &id).await),
        };
        let page: ResultsPage = serde_json::from_value(polled.context("GetQueryResults")?)
            .context("GetQueryResults answered in an unexpected shape")?;
        match page.status.as_str() {
            "Complete" => return Ok(to_output(&args.query, page)),
            "Scheduled" | "Running" | "Unknown" => {}
            other => bail!("query {id} ended as {other}"),
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut stop => return Err(stop_query(client, &id).await),
        }
        pause = (pause + pause / 2).min(POLL_CAP);
    }
}

/// Stops the query on the server; the error the command ends with.
async fn stop_query(client: &LogsClient, id: &str) -> anyhow::Error {
    match client.call("StopQuery", json!({ "queryId": id })).await {
        Ok(_) => anyhow::anyhow!("interrupted: query {id} stopped"),
        // It may have ended on its own meanwhile; either way nothing runs on our behalf.
        Err(e) => anyhow::anyhow!("interrupted: query {id} not stopped: {e}"),
    }
}

/// A MalformedQueryException shown against the query text, located by compiling the query
/// here; the server's message when the local compiler accepts the query.
fn malformed(query: &str, e: &ClientError) -> anyhow::Error {
    match Query::parse(query) {
        Err(trailvault_query::QueryError::Syntax(s)) => {
            anyhow::anyhow!("{}", render_syntax_error(query, &s))
        }
        _ => anyhow::anyhow!("the query is malformed: {e}"),
    }
}

/// The error, the offending line of the query, and carets under the characters at fault:
///
/// ```text
/// syntax error at line 2, column 3: unknown command "sortt"
///   2 | | sortt @timestamp
///     |   ^^^^^
/// ```
pub fn render_syntax_error(query: &str, e: &SyntaxError) -> String {
    let line_no = e.line.max(1) as usize;
    let line = query
        .split('\n')
        .nth(line_no - 1)
        .unwrap_or("")
        .trim_end_matches('\r');
    let col = (e.column.max(1) as usize - 1).min(line.chars().count());
    // Keep tabs in the padding so the caret lines up under a tab-indented query.
    let pad: String = line
        .chars()
        .take(col)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let rest = line.chars().count() - col;
    let width = e.end.saturating_sub(e.start).clamp(1, rest.max(1));
    let gutter = line_no.to_string();
    let blank = " ".repeat(gutter.len());
    format!(
        "syntax error at line {}, column {}: {}\n  {gutter} | {line}\n  {blank} | {pad}{}",
        e.line,
        e.column,
        e.message,
        "^".repeat(width)
    )
}

#[derive(Debug, Deserialize)]
struct ResultsPage {
    status: String,
    #[serde(default)]
    results: Vec<Vec<ApiField>>,
    #[serde(default)]
    statistics: ApiStatistics,
}

#[derive(Debug, Deserialize)]
struct ApiField {
    field: String,
    #[serde(default)]
    value: String,
}

/// GetQueryResults' statistics arrive as doubles.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiStatistics {
    #[serde(default)]
    records_matched: f64,
    #[serde(default)]
    records_scanned: f64,
    #[serde(default)]
    bytes_scanned: f64,
}

/// The columns the query will show: those the local compiler predicts, then any other field
/// found in the rows (except `@ptr`), in order of first appearance.
fn columns(query: &str, rows: &[Vec<ResultField>]) -> Vec<String> {
    let mut cols: Vec<String> = Query::parse(query)
        .map(|q| q.output_fields().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    for f in rows.iter().flatten() {
        if f.field != "@ptr" && !cols.contains(&f.field) {
            cols.push(f.field.clone());
        }
    }
    cols
}

fn to_output(query: &str, page: ResultsPage) -> QueryOutput {
    // Counts arrive as doubles; `as` saturates, and negatives or NaN become 0.
    let count = |x: f64| x as u64;
    let rows: Vec<Vec<ResultField>> = page
        .results
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|f| ResultField {
                    field: f.field,
                    value: f.value,
                })
                .collect()
        })
        .collect();
    QueryOutput {
        fields: columns(query, &rows),
        statistics: QueryStatistics {
            records_matched: count(page.statistics.records_matched),
            records_scanned: count(page.statistics.records_scanned),
            bytes_scanned: count(page.statistics.bytes_scanned),
        },
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn syntax_error(query: &str) -> SyntaxError {
        match Query::parse(query) {
            Err(trailvault_query::QueryError::Syntax(e)) => e,
            other => panic!("{query:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn the_caret_points_at_the_column_on_its_line() {
        let q = "fields @message\n| sortt @timestamp";
        let e = syntax_error(q);
        let text = render_syntax_error(q, &e);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("syntax error at line 2, column 3: "),
            "{text}"
        );
        assert_eq!(lines[1], "  2 | | sortt @timestamp");
        assert_eq!(lines[2], "    |   ^^^^^");
    }

    #[test]
    fn the_caret_follows_tabs_and_stays_on_the_line() {
        let e = SyntaxError {
            line: 1,
            column: 3,
            start: 2,
            end: 500,
            expected: None,
            message: "bad".into(),
        };
        let text = render_syntax_error("\tx yz", &e);
        assert_eq!(text.lines().nth(2), Some("    | \t ^^^"), "{text:?}");
        // A location past the text (an error at its end) still renders one caret.
        let e = SyntaxError {
            line: 3,
            column: 9,
            start: 40,
            end: 40,
            expected: None,
            message: "unexpected end of query".into(),
        };
        let text = render_syntax_error("fields a", &e);
        assert_eq!(text.lines().nth(1), Some("  3 | "));
        assert_eq!(text.lines().nth(2), Some("    | ^"));
    }

    #[test]
    fn every_parse_error_of_a_real_query_renders_a_caret() {
        for q in [
            "filter",
            "stats count(*) by",
            "fields a | filter a = \"unterminated",
            "fields a,\n  | sort",
            "parse @message /(?<x/ as y",
        ] {
            let e = syntax_error(q);
            let text = render_syntax_error(q, &e);
            assert!(text.lines().nth(2).unwrap().ends_with('^'), "{q:?}: {text}");
        }
    }

    fn field(f: &str, v: &str) -> ResultField {
        ResultField {
            field: f.into(),
            value: v.into(),
        }
    }

    fn page() -> ResultsPage {
        serde_json::from_value(json!({
            "status": "Complete",
            "results": [
                [{"field": "ip", "value": "10.0.0.1"}, {"field": "n", "value": "3"}],
                [{"field": "n", "value": "1"}, {"field": "extra", "value": "x"},
                 {"field": "@ptr", "value": "p"}],
            ],
            "statistics": {"recordsMatched": 4.0, "recordsScanned": 9.0, "bytesScanned": 1e3},
        }))
        .unwrap()
    }

    #[test]
    fn results_become_a_table_with_the_query_columns() {
        let out = to_output("stats count(*) as n by ip", page());
        assert_eq!(out.fields, ["ip", "n", "extra"]);
        assert_eq!(out.statistics.records_scanned, 9);
        assert_eq!(out.statistics.bytes_scanned, 1000);
        assert_eq!(
            render(&out, QueryFormat::Table),
            "| ip       | n | extra |\n\
             |----------|---|-------|\n\
             | 10.0.0.1 | 3 |       |\n\
             |          | 1 | x     |\n"
        );
        assert_eq!(
            render(&out, QueryFormat::Csv),
            "ip,n,extra\r\n10.0.0.1,3,\r\n,1,x\r\n"
        );
        let v: serde_json::Value = serde_json::from_str(&render(&out, QueryFormat::Json)).unwrap();
        assert_eq!(v["results"][1][2], json!({"field": "@ptr", "value": "p"}));
        assert_eq!(v["statistics"]["recordsMatched"], 4);
    }

    #[test]
    fn an_unparsable_query_still_shows_every_field() {
        let out = to_output("this is not insights", page());
        assert_eq!(out.fields, ["ip", "n", "extra"]);
        assert_eq!(out.rows[1][0], field("n", "1"));
    }

    #[test]
    fn the_range_is_whole_seconds() {
        assert_eq!(range_seconds(1_500, 3_999).unwrap(), (1, 3));
        assert_eq!(range_seconds(-1, 0).unwrap(), (-1, 0));
        assert!(range_seconds(2, 1).is_err());
    }

    /// A scripted Insights endpoint: answers each GetQueryResults with the next status.
    async fn scripted(statuses: &[&'static str]) -> (String, Arc<Mutex<Vec<String>>>) {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let script = Arc::new(Mutex::new(statuses.to_vec()));
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let log = log.clone();
                let script = script.clone();
                async move {
                    let action = headers["x-amz-target"]
                        .to_str()
                        .unwrap()
                        .trim_start_matches("Logs_20140328.")
                        .to_string();
                    log.lock().unwrap().push(format!("{action} {body}"));
                    let answer = match action.as_str() {
                        "StartQuery" => json!({"queryId": "q-1"}),
                        "GetQueryResults" => {
                            let mut s = script.lock().unwrap();
                            let status = if s.len() > 1 { s.remove(0) } else { s[0] };
                            json!({"status": status, "results": [[{"field": "n", "value": "7"}]],
                                   "statistics": {"recordsMatched": 1.0, "recordsScanned": 2.0,
                                                  "bytesScanned": 3.0}})
                        }
                        "StopQuery" => json!({"success": true}),
                        _ => json!({}),
                    };
                    answer.to_string()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    fn args(endpoint: &str) -> QueryArgs {
        QueryArgs {
            connect: ConnectArgs {
                endpoint: endpoint.into(),
                profile: None,
                region: Some("us-east-1".into()),
            },
            groups: vec!["a".into(), "b".into()],
            from: 10_000,
            to: 20_500,
            limit: Some(5),
            output: QueryFormat::Table,
            query: "stats count(*) as n".into(),
        }
    }

    fn client(endpoint: &str) -> LogsClient {
        LogsClient::new(
            endpoint,
            trailvault_auth::Credentials::new("AKIDTEST", "secret"),
            "us-east-1",
        )
    }

    #[tokio::test]
    async fn polls_until_complete() {
        let (endpoint, seen) = scripted(&["Scheduled", "Running", "Complete"]).await;
        let out = query_output(&client(&endpoint), &args(&endpoint), std::future::pending())
            .await
            .unwrap();
        assert_eq!(out.fields, ["n"]);
        assert_eq!(out.rows, [vec![field("n", "7")]]);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        let start: serde_json::Value =
            serde_json::from_str(seen[0].strip_prefix("StartQuery ").unwrap()).unwrap();
        assert_eq!(
            start,
            json!({"logGroupNames": ["a", "b"], "startTime": 10, "endTime": 20,
                   "queryString": "stats count(*) as n", "limit": 5})
        );
        assert!(seen[1..].iter().all(|s| s.starts_with("GetQueryResults ")));
    }

    #[tokio::test]
    async fn an_interrupt_stops_the_query_on_the_server() {
        let (endpoint, seen) = scripted(&["Running"]).await;
        let stop = tokio::time::sleep(Duration::from_millis(250));
        let err = query_output(&client(&endpoint), &args(&endpoint), stop)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("stopped"), "{err}");
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.last().map(String::as_str),
            Some("StopQuery {\"queryId\":\"q-1\"}")
        );
    }

    #[tokio::test]
    async fn a_failed_query_is_an_error() {
        let (endpoint, _) = scripted(&["Failed"]).await;
        let err = query_output(&client(&endpoint), &args(&endpoint), std::future::pending())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ended as Failed"), "{err}");
    }
}
