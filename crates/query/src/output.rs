//! Rendering results for people (`table`) and scripts (`csv`, `json`).

use crate::exec::QueryOutput;

/// Longest cell shown by [`format_table`], in characters; longer values are cut with `…`.
const TABLE_CELL_CHARS_MAX: usize = 120;

fn cell<'a>(row: &'a [crate::ResultField], field: &str) -> &'a str {
    row.iter()
        .find(|f| f.field == field)
        .map_or("", |f| f.value.as_str())
}

fn table_cell(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if one_line.chars().count() > TABLE_CELL_CHARS_MAX {
        let mut cut: String = one_line.chars().take(TABLE_CELL_CHARS_MAX - 1).collect();
        cut.push('…');
        cut
    } else {
        one_line
    }
}

/// An aligned text table with a header row, one line per result row.
pub fn format_table(out: &QueryOutput) -> String {
    let cells: Vec<Vec<String>> = out
        .rows
        .iter()
        .map(|r| out.fields.iter().map(|f| table_cell(cell(r, f))).collect())
        .collect();
    let mut widths: Vec<usize> = out.fields.iter().map(|f| f.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |vals: &[String]| -> String {
        let mut s = String::from("|");
        for (v, w) in vals.iter().zip(&widths) {
            s.push(' ');
            s.push_str(v);
            s.push_str(&" ".repeat(w - v.chars().count()));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut s = line(&out.fields);
    let mut sep = String::from("|");
    for w in &widths {
        sep.push_str(&"-".repeat(w + 2));
        sep.push('|');
    }
    sep.push('\n');
    s.push_str(&sep);
    for row in &cells {
        s.push_str(&line(row));
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// RFC 4180 CSV: a header row, then one record per result row (`@ptr` not included).
pub fn format_csv(out: &QueryOutput) -> String {
    let mut s = out
        .fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    s.push_str("\r\n");
    for r in &out.rows {
        let line = out
            .fields
            .iter()
            .map(|f| csv_field(cell(r, f)))
            .collect::<Vec<_>>()
            .join(",");
        s.push_str(&line);
        s.push_str("\r\n");
    }
    s
}

/// The GetQueryResults response shape: `{"results": [[{"field", "value"}]], "statistics",
/// "status": "Complete"}`.
pub fn format_json(out: &QueryOutput) -> String {
    let v = serde_json::json!({
        "results": out.rows,
        "statistics": out.statistics,
        "status": "Complete",
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueryStatistics, ResultField};

    fn sample() -> QueryOutput {
        QueryOutput {
            fields: vec!["a".into(), "b".into()],
            rows: vec![
                vec![
                    ResultField {
                        field: "a".into(),
                        value: "x,\"y\"".into(),
                    },
                    ResultField {
                        field: "@ptr".into(),
                        value: "1".into(),
                    },
                ],
                vec![ResultField {
                    field: "b".into(),
                    value: "long\nline".into(),
                }],
            ],
            statistics: QueryStatistics {
                records_matched: 2,
                records_scanned: 3,
                bytes_scanned: 4,
            },
        }
    }

    #[test]
    fn table_aligns_and_blanks_missing() {
        assert_eq!(
            format_table(&sample()),
            "| a     | b         |\n|-------|-----------|\n| x,\"y\" |           |\n|       | long line |\n"
        );
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            format_csv(&sample()),
            "a,b\r\n\"x,\"\"y\"\"\",\r\n,\"long\nline\"\r\n"
        );
    }

    #[test]
    fn json_has_the_api_shape() {
        let v: serde_json::Value = serde_json::from_str(&format_json(&sample())).unwrap();
        assert_eq!(v["results"][0][1]["field"], "@ptr");
        assert_eq!(v["statistics"]["recordsScanned"], 3);
        assert_eq!(v["status"], "Complete");
    }
}
