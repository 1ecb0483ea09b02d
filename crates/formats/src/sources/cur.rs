//! AWS Cost and Usage Report (CUR) CSV files.
//!
//! The first CSV record is the header. Legacy CUR names columns `category/Name`
//! (`identity/LineItemId`, `lineItem/UsageAccountId`, `product/ProductName`,
//! `resourceTags/user:<key>`, …); CUR 2.0 (Data Exports) names them in snake case
//! (`line_item_usage_account_id`, …). Both are read. Every following CSV record is one line
//! item: raw = its exact bytes in the file (a quoted value may span lines), parsed = an object
//! keyed by column name with the non-empty values as strings (CUR rows are mostly empty
//! columns; an absent key means an empty cell).
//!
//! Invariants: never panics; every line is in exactly one record, one rejection, or `skipped`
//! (the header and blank lines). A file whose first record is not a CUR header has every record
//! rejected, the header included, rather than guessed at.

use serde_json::{Map, Value};
use trailvault_model::{JsonText, Normalized, Resource};

use crate::json::LineCounter;
use crate::text::parse_iso8601_ms;
use crate::{ParseOutput, ParsedRecord, Rejection};

/// Largest single line item (CSV record); larger ones are rejected whole.
pub const ROW_BYTES_MAX: usize = 1 << 20;

/// Parses a Cost and Usage Report CSV file. Source id `cur`.
pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rows = Rows {
        input,
        header: None,
        prev_end: None,
        lines: LineCounter::new(input),
    };
    let mut pending: Option<(usize, csv::ByteRecord)> = None;
    let mut record = csv::ByteRecord::new();
    // csv only fails on I/O, which a byte slice cannot produce; an error ends the input.
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let start = record.position().map_or(input.len(), |p| p.byte() as usize);
        if let Some((prev_start, prev)) = pending.take() {
            rows.finish(prev_start, start, &prev, &mut out);
        }
        pending = Some((start, record.clone()));
    }
    if let Some((prev_start, prev)) = pending.take() {
        rows.finish(prev_start, input.len(), &prev, &mut out);
    }
    let tail_from = rows.prev_end.unwrap_or(0);
    let newlines = memchr::memchr_iter(b'\n', &input[tail_from.min(input.len())..]).count() as u64;
    // The first newline after the last row ends it; more are blank lines.
    out.skipped += match rows.prev_end {
        Some(_) => newlines.saturating_sub(1),
        None => newlines,
    };
    out
}

fn is_terminator(b: &u8) -> bool {
    matches!(b, b'\n' | b'\r')
}

/// State carried from one CSV record to the next.
struct Rows<'a> {
    input: &'a [u8],
    header: Option<Result<Vec<String>, String>>,
    /// End of the previous record's bytes (without its terminator).
    prev_end: Option<usize>,
    lines: LineCounter<'a>,
}

impl Rows<'_> {
    /// Handles the record whose bytes run from `start` to `next_start`, less line terminators
    /// on either side (csv positions can point at the `\n` of a `\r\n`).
    fn finish(
        &mut self,
        start: usize,
        next_start: usize,
        row: &csv::ByteRecord,
        out: &mut ParseOutput,
    ) {
        let input = self.input;
        let next_start = next_start.min(input.len());
        let mut start = start.min(next_start);
        while start < next_start && is_terminator(&input[start]) {
            start += 1;
        }
        let mut end = next_start;
        while end > start && is_terminator(&input[end - 1]) {
            end -= 1;
        }
        // Terminators between the previous record and this one: the first ends the previous
        // line, the others are blank lines.
        let gap_from = self.prev_end.unwrap_or(0).min(start);
        let newlines = memchr::memchr_iter(b'\n', &input[gap_from..start]).count() as u64;
        out.skipped += match self.prev_end {
            Some(_) => newlines.saturating_sub(1),
            None => newlines,
        };
        self.prev_end = Some(end);
        let bytes = &input[start..end];
        let line = self.lines.line_at(start);
        let result = match &self.header {
            None => {
                let h = read_header(row);
                let result = match &h {
                    Ok(_) => {
                        out.skipped += 1;
                        None
                    }
                    Err(reason) => Some(Err(reason.clone())),
                };
                self.header = Some(h);
                result
            }
            Some(Ok(names)) => Some(row_record(bytes, row, names)),
            Some(Err(_)) => Some(Err(
                "expected a cost and usage report header as the first line, found none".into(),
            )),
        };
        match result {
            None => {}
            Some(Ok((raw, normalized))) => out.records.push(ParsedRecord {
                raw,
                offset: start as u64,
                line,
                normalized: Box::new(normalized),
            }),
            Some(Err(reason)) => out.rejections.push(Rejection {
                offset: start as u64,
                line,
                reason,
                raw: bytes.to_vec(),
            }),
        }
    }
}

fn read_header(row: &csv::ByteRecord) -> Result<Vec<String>, String> {
    let names: Vec<String> = row
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_owned())
        .collect();
    let cur = names.iter().any(|n| {
        n.starts_with("lineItem/")
            || n.starts_with("identity/")
            || n.starts_with("line_item_")
            || n.starts_with("identity_")
    });
    if cur {
        Ok(names)
    } else {
        Err(format!(
            "expected a cost and usage report header with `lineItem/…` or `line_item_…` columns, found `{}`",
            names.iter().take(4).cloned().collect::<Vec<_>>().join(",")
        ))
    }
}

fn row_record(
    bytes: &[u8],
    row: &csv::ByteRecord,
    names: &[String],
) -> Result<(String, Normalized), String> {
    if bytes.len() > ROW_BYTES_MAX {
        return Err(format!(
            "line item is {} bytes, larger than the limit of {ROW_BYTES_MAX}",
            bytes.len()
        ));
    }
    let raw =
        std::str::from_utf8(bytes).map_err(|e| format!("line item is not valid utf-8: {e}"))?;
    if row.len() != names.len() {
        return Err(format!(
            "expected {} columns as named by the header, found {}",
            names.len(),
            row.len()
        ));
    }
    let mut obj = Map::new();
    for (name, value) in names.iter().zip(row.iter()) {
        if !value.is_empty() {
            obj.insert(
                name.clone(),
                Value::String(String::from_utf8_lossy(value).into_owned()),
            );
        }
    }
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let time_ms = match get(&["lineItem/UsageStartDate", "line_item_usage_start_date"]) {
        Some(t) => Some(
            parse_iso8601_ms(&t)
                .ok_or_else(|| format!("expected an iso 8601 usage start date, found `{t}`"))?,
        ),
        None => None,
    };
    let account = get(&["lineItem/UsageAccountId", "line_item_usage_account_id"]);
    let service = get(&["lineItem/ProductCode", "line_item_product_code"]);
    let resource_id = get(&["lineItem/ResourceId", "line_item_resource_id"]);
    let normalized = Normalized {
        source: "cur".into(),
        time_ms,
        region: get(&[
            "product/region",
            "product_region_code",
            "product/regionCode",
        ]),
        action: get(&["lineItem/UsageType", "line_item_usage_type"])
            .or_else(|| get(&["lineItem/LineItemType", "line_item_line_item_type"])),
        source_event_id: get(&["identity/LineItemId", "identity_line_item_id"]),
        resources: resource_id
            .map(|id| Resource {
                id: Some(id),
                kind: service.clone(),
                owner_account: account.clone(),
            })
            .into_iter()
            .collect(),
        account,
        service,
        parsed: Some(JsonText::from_value(&Value::Object(obj))),
        ..Normalized::default()
    };
    Ok((raw.to_owned(), normalized))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_rows_with_quoted_newline() {
        let input = b"identity/LineItemId,lineItem/UsageAccountId,lineItem/UsageStartDate,product/ProductName\r\nabc,123456789012,2023-11-01T00:00:00Z,\"Amazon\nS3\"\r\n\r\nshort,row\r\n";
        let out = parse(input);
        assert_eq!(out.records.len(), 1);
        assert_eq!(
            out.records[0].raw,
            "abc,123456789012,2023-11-01T00:00:00Z,\"Amazon\nS3\""
        );
        assert_eq!(out.records[0].line, 2);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].line, 5);
        assert_eq!(out.skipped, 2);
        assert_eq!(out.records[0].offset, 89);
    }

    #[test]
    fn not_a_cur_file() {
        let out = parse(b"a,b\n1,2\n");
        assert_eq!(out.records.len(), 0);
        assert_eq!(out.rejections.len(), 2);
    }
}
