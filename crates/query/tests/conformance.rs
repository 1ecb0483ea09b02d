//! Data-driven conformance suite: every `tests/cases/*.test` file holds cases of the form
//!
//! ```text
//! == case name
//! dataset: cloudtrail | vpc | alb | app | all
//! query:
//! <query text, any number of lines>
//! ----
//! <expected table and statistics, or `error: ...`>
//! ```
//!
//! Run with `UPDATE_EXPECT=1` to rewrite the expectations from the current output (then read
//! the diff before committing it).

mod support;

use std::path::Path;
use trailvault_query::{format_table, ExecOptions, Query, QueryError};

struct Case {
    name: String,
    dataset: String,
    query: String,
    expected: String,
}

fn parse_cases(text: &str, file: &Path) -> (String, Vec<Case>) {
    let mut header = String::new();
    let mut cases = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.peek() {
        if l.starts_with("== ") {
            break;
        }
        header.push_str(l);
        header.push('\n');
        lines.next();
    }
    while let Some(l) = lines.next() {
        let name = l
            .strip_prefix("== ")
            .unwrap_or_else(|| panic!("{}: expected `== name`, got {l:?}", file.display()))
            .to_string();
        let ds = lines.next().unwrap_or_default();
        let dataset = ds
            .strip_prefix("dataset: ")
            .unwrap_or_else(|| panic!("{}: case {name}: expected `dataset: `", file.display()))
            .trim()
            .to_string();
        assert_eq!(
            lines.next(),
            Some("query:"),
            "{}: case {name}",
            file.display()
        );
        let mut query = Vec::new();
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            query.push(l);
        }
        let mut expected = Vec::new();
        while let Some(l) = lines.peek() {
            if l.starts_with("== ") {
                break;
            }
            expected.push(*l);
            lines.next();
        }
        while expected.last().is_some_and(|l| l.is_empty()) {
            expected.pop();
        }
        cases.push(Case {
            name,
            dataset,
            query: query.join("\n"),
            expected: expected.join("\n"),
        });
    }
    (header, cases)
}

fn run(data: &support::Dataset, case: &Case) -> String {
    let events: Vec<_> = match case.dataset.as_str() {
        "all" => data.refs().collect(),
        "cloudtrail" => data.group("trail"),
        "vpc" => data.group("vpc-flow"),
        "alb" => data.group("alb"),
        "app" => data.group("app"),
        other => panic!("case {}: unknown dataset {other}", case.name),
    };
    let q = match Query::parse(&case.query) {
        Ok(q) => q,
        Err(QueryError::Syntax(e)) => {
            return format!(
                "error: {e}\nlocation: start={} end={} line={}",
                e.start, e.end, e.line
            )
        }
        Err(e) => return format!("error: {e}"),
    };
    let opts = ExecOptions {
        groups_max: 50,
        buffered_rows_max: 300,
        ..ExecOptions::default()
    };
    match q.execute(events, &opts) {
        Ok(out) => {
            let s = &out.statistics;
            format!(
                "{}stats: matched={} scanned={} bytes={}",
                format_table(&out),
                s.records_matched,
                s.records_scanned,
                s.bytes_scanned
            )
        }
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn conformance_cases() {
    let data = support::dataset();
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    let mut failures = Vec::new();
    let mut total = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let (header, cases) = parse_cases(&text, &file);
        let mut rewritten = header;
        for case in &cases {
            total += 1;
            let actual = run(&data, case);
            if actual != case.expected {
                failures.push(format!(
                    "{} :: {}\n--- query\n{}\n--- expected\n{}\n--- actual\n{}\n",
                    file.file_name().unwrap().to_string_lossy(),
                    case.name,
                    case.query,
                    case.expected,
                    actual
                ));
            }
            rewritten.push_str(&format!(
                "== {}\ndataset: {}\nquery:\n{}\n----\n{}\n\n",
                case.name, case.dataset, case.query, actual
            ));
        }
        if update {
            std::fs::write(&file, rewritten.trim_end().to_string() + "\n").unwrap();
        }
    }
    if !update && !failures.is_empty() {
        panic!(
            "{} of {total} conformance cases differ (UPDATE_EXPECT=1 to accept):\n\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    assert!(total >= 10);
}
