use trailvault_model::Normalized;

/// One record read from a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecord {
    /// The record exactly as it appeared in the (decompressed) input. For a JSON array member
    /// such as a CloudTrail record this is the member's own byte span.
    pub raw: String,
    /// Byte offset of `raw` in the decompressed input.
    pub offset: u64,
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Boxed: records move from the parser's list into the store's events, and a pointer
    /// moves cheaper than the whole normalized form (its vector grows by copying).
    pub normalized: Box<Normalized>,
}

/// A record the parser could not read. Kept with its raw bytes so nothing is silently dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub offset: u64,
    pub line: u64,
    /// Why, in lowercase words: what was expected and what was found.
    pub reason: String,
    pub raw: Vec<u8>,
}

/// Everything a parser made of one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParseOutput {
    pub records: Vec<ParsedRecord>,
    pub rejections: Vec<Rejection>,
    /// Lines deliberately skipped because they are not records (headers, ELB's control line,
    /// blank lines). Counted so the summary can account for every line.
    pub skipped: u64,
}

/// Sources whose raw record is itself the parsed JSON value.
pub const JSON_NATIVE_SOURCES: [&str; 4] = ["cloudtrail", "waf", "network-firewall", "json-lines"];

impl ParsedRecord {
    /// The full parsed record as JSON: `normalized.parsed` when the parser filled it, else the
    /// raw record itself for the [`JSON_NATIVE_SOURCES`]. JSON-native sources (CloudTrail, WAF,
    /// Network Firewall, JSON lines) leave `parsed` empty because the raw already is that JSON;
    /// copying it would double what is stored and cost most of the parse time.
    pub fn parsed_json(&self) -> Option<serde_json::Value> {
        if let Some(p) = &self.normalized.parsed {
            return Some(p.to_value());
        }
        if JSON_NATIVE_SOURCES.contains(&self.normalized.source.as_str()) {
            return serde_json::from_str(&self.raw).ok();
        }
        None
    }
}

impl ParseOutput {
    /// Keeps `raw` (at byte `offset`, starting on `line`) as a record with its normalized
    /// form, or, when normalizing it failed, as a rejection with the reason and its bytes.
    pub fn keep(
        &mut self,
        raw: &str,
        offset: u64,
        line: u64,
        normalized: Result<Normalized, String>,
    ) {
        match normalized {
            Ok(normalized) => self.records.push(ParsedRecord {
                raw: raw.to_owned(),
                offset,
                line,
                normalized: Box::new(normalized),
            }),
            Err(reason) => self.rejections.push(Rejection {
                offset,
                line,
                reason,
                raw: raw.as_bytes().to_vec(),
            }),
        }
    }

    /// Records read from the input: stored plus rejected (skipped lines are not records).
    pub fn records_read(&self) -> u64 {
        (self.records.len() + self.rejections.len()) as u64
    }
}
