//! Reading a stream of JSON values (newline-delimited, pretty-printed, or concatenated back to
//! back) with the byte span of each value, resynchronising after a malformed one.
//!
//! Invariant: every byte of the input that is not whitespace between values ends up either in
//! a value handed to the callback or in exactly one rejection.

use serde_json::value::RawValue;

use crate::{ParseOutput, Rejection};

/// Largest single JSON record accepted; larger ones are rejected (raw bytes kept).
pub(crate) const RECORD_BYTES_MAX: usize = 8 << 20;

/// Counts newlines incrementally so line numbers of successive spans cost O(input) in total.
pub(crate) struct LineCounter<'a> {
    input: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        LineCounter {
            input,
            pos: 0,
            line: 1,
        }
    }

    /// 1-based line of byte `offset`; offsets must not decrease between calls.
    pub(crate) fn line_at(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.input.len());
        if offset > self.pos {
            self.line += memchr::memchr_iter(b'\n', &self.input[self.pos..offset]).count() as u64;
            self.pos = offset;
        }
        self.line
    }
}

/// Byte offset of `inner` (a sub-slice) within `outer`.
pub(crate) fn offset_in(outer: &[u8], inner: &str) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

pub(crate) fn skip_ws(input: &[u8], mut pos: usize) -> usize {
    while pos < input.len() && matches!(input[pos], b' ' | b'\t' | b'\r' | b'\n') {
        pos += 1;
    }
    pos
}

/// Calls `f(raw, offset, line, out)` for every JSON value in `input`. A malformed value is
/// rejected up to the next line that starts with `{` or `[` (or the end of the input).
pub(crate) fn for_each_value<'a>(
    input: &'a [u8],
    out: &mut ParseOutput,
    mut f: impl FnMut(&'a RawValue, u64, u64, &mut ParseOutput),
) {
    let mut lines = LineCounter::new(input);
    let mut pos = skip_ws(input, 0);
    while pos < input.len() {
        let rest = &input[pos..];
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
        match stream.next() {
            Some(Ok(raw)) => {
                let start = pos + offset_in(rest, raw.get());
                let end = start + raw.get().len();
                let line = lines.line_at(start);
                if raw.get().len() > RECORD_BYTES_MAX {
                    out.rejections.push(Rejection {
                        offset: start as u64,
                        line,
                        reason: format!(
                            "json record is {} bytes, larger than the limit of {RECORD_BYTES_MAX}",
                            raw.get().len()
                        ),
                        raw: raw.get().as_bytes().to_vec(),
                    });
                } else {
                    f(raw, start as u64, line, out);
                }
                pos = skip_ws(input, end);
            }
            Some(Err(e)) => {
                let end = resync(input, pos);
                out.rejections.push(Rejection {
                    offset: pos as u64,
                    line: lines.line_at(pos),
                    reason: format!("malformed json: {e}"),
                    raw: trim_end_ws(&input[pos..end]).to_vec(),
                });
                pos = skip_ws(input, end);
            }
            None => break,
        }
    }
}

/// The start of the next line after `pos` that opens a JSON object or array, or the end.
fn resync(input: &[u8], pos: usize) -> usize {
    let mut i = pos;
    while let Some(nl) = memchr::memchr(b'\n', &input[i..]) {
        let next = i + nl + 1;
        if matches!(input.get(next), Some(b'{' | b'[')) {
            return next;
        }
        i = next;
    }
    input.len()
}

fn trim_end_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    &b[..b.len() - n]
}

/// Reject one whole value with `reason`.
pub(crate) fn reject_value(
    out: &mut ParseOutput,
    raw: &RawValue,
    offset: u64,
    line: u64,
    reason: impl Into<String>,
) {
    out.rejections.push(Rejection {
        offset,
        line,
        reason: reason.into(),
        raw: raw.get().as_bytes().to_vec(),
    });
}

/// String member `key` of a JSON object, if it is a string.
pub(crate) fn str_of<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(serde_json::Value::as_str)
}

/// Like [`str_of`] but empty strings count as absent.
pub(crate) fn nonempty<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    str_of(v, key).filter(|s| !s.is_empty())
}

pub(crate) fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// An integer member that may be written as a number or as a numeric string.
pub(crate) fn i64_of(v: &serde_json::Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Spans = Vec<(String, u64, u64)>;
    type Rejected = Vec<(u64, u64, String)>;

    fn spans(input: &str) -> (Spans, Rejected) {
        let mut out = ParseOutput::default();
        let mut got = Vec::new();
        for_each_value(input.as_bytes(), &mut out, |raw, off, line, _| {
            got.push((raw.get().to_owned(), off, line))
        });
        let rej = out
            .rejections
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.line,
                    String::from_utf8_lossy(&r.raw).into_owned(),
                )
            })
            .collect();
        (got, rej)
    }

    #[test]
    fn concatenated_and_pretty_values() {
        let (got, rej) = spans("{\"a\":1}{\"b\":2}\n{\n  \"c\": 3\n}\n");
        assert_eq!(
            got,
            vec![
                ("{\"a\":1}".into(), 0, 1),
                ("{\"b\":2}".into(), 7, 1),
                ("{\n  \"c\": 3\n}".into(), 15, 2)
            ]
        );
        assert!(rej.is_empty());
    }

    #[test]
    fn malformed_value_is_rejected_and_reading_resumes() {
        let (got, rej) = spans("{\"a\":1}\n{\"b\":\n  oops\n}\n{\"c\":3}");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], ("{\"c\":3}".into(), 23, 5));
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].0, 8);
        assert_eq!(rej[0].1, 2);
        assert_eq!(rej[0].2, "{\"b\":\n  oops\n}");
    }

    #[test]
    fn garbage_tail_is_one_rejection() {
        let (got, rej) = spans("{\"a\":1} trailing words");
        assert_eq!(got.len(), 1);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].2, "trailing words");
    }
}
