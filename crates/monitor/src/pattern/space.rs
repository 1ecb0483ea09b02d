//! Space-delimited patterns: `[ip, user, ..., status = 4* && status != 403, bytes > 1000]`.
//!
//! An event is split on spaces and tabs; text inside `"..."` or `[...]` is one field (without
//! its delimiters; an unterminated one runs to the end of the line). Without `...` the event
//! must have exactly as many fields as the pattern; `...` stands for any number of fields
//! (including none) and may appear once.

use super::{apply_test, Expr, Extracted, Scalar, Test, Value};

/// Events with more fields than this never match a space-delimited pattern (bounded work).
const EVENT_FIELDS_MAX: usize = 4096;

pub(super) struct SpaceItem {
    pub(super) name: String,
    pub(super) cond: Option<Expr>,
    pub(super) ellipsis: bool,
}

pub(super) struct SpacePattern {
    items: Vec<SpaceItem>,
    ellipsis: Option<usize>,
}

/// Splits an event into fields; `None` past [`EVENT_FIELDS_MAX`].
fn tokenize(message: &str) -> Option<Vec<&str>> {
    let line = message.trim_end_matches(['\n', '\r']);
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if fields.len() >= EVENT_FIELDS_MAX {
            return None;
        }
        let close = match bytes[i] {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        match close {
            Some(close) => {
                let start = i + 1;
                let end = memchr::memchr(close, &bytes[start..]).map_or(bytes.len(), |e| start + e);
                // Delimiters are ASCII, so these are char boundaries.
                fields.push(line.get(start..end).unwrap_or(""));
                i = end + 1;
            }
            None => {
                let start = i;
                while i < bytes.len() && bytes[i] != b' ' && bytes[i] != b'\t' {
                    i += 1;
                }
                fields.push(line.get(start..i).unwrap_or(""));
            }
        }
    }
    Some(fields)
}

impl SpacePattern {
    pub(super) fn new(items: Vec<SpaceItem>, ellipsis: Option<usize>) -> SpacePattern {
        SpacePattern { items, ellipsis }
    }

    pub(super) fn field_names(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| !i.ellipsis)
            .map(|i| format!("${}", i.name))
            .collect()
    }

    /// Pairs each pattern item with its event field (`None` for `...`), or `None` when the
    /// field count does not fit.
    fn align<'m>(&self, fields: &[&'m str]) -> Option<Vec<Option<&'m str>>> {
        let n = self.items.len();
        let m = fields.len();
        match self.ellipsis {
            None => {
                if m != n {
                    return None;
                }
                Some(fields.iter().map(|f| Some(*f)).collect())
            }
            Some(k) => {
                let after = n - k - 1;
                if m < n - 1 {
                    return None;
                }
                let mut out = Vec::with_capacity(n);
                out.extend(fields[..k].iter().map(|f| Some(*f)));
                out.push(None);
                out.extend(fields[m - after..].iter().map(|f| Some(*f)));
                Some(out)
            }
        }
    }

    fn matched<'m>(&self, message: &'m str) -> Option<Vec<Option<&'m str>>> {
        let fields = tokenize(message)?;
        let aligned = self.align(&fields)?;
        for (item, field) in self.items.iter().zip(&aligned) {
            let (Some(cond), Some(field)) = (&item.cond, field) else {
                continue;
            };
            let ok = cond.eval(&mut |_, test| apply_test(test, Scalar::Text(field), true));
            if !ok {
                return None;
            }
        }
        Some(aligned)
    }

    pub(super) fn matches(&self, message: &str) -> bool {
        self.matched(message).is_some()
    }

    pub(super) fn extract(&self, message: &str) -> Option<Extracted> {
        let aligned = self.matched(message)?;
        let mut values = Vec::new();
        let mut positional = Vec::with_capacity(aligned.len());
        for (item, field) in self.items.iter().zip(aligned) {
            if let (false, Some(f)) = (item.ellipsis, field) {
                values.push((format!("${}", item.name), f.to_string()));
            }
            positional.push(field.map(str::to_string));
        }
        Some(Extracted { values, positional })
    }

    /// One any-of set of literals an event must contain (see the module invariants).
    pub(super) fn needles(&self) -> Option<Vec<String>> {
        let clauses: Vec<Vec<String>> = self
            .items
            .iter()
            .filter_map(|i| i.cond.as_ref().and_then(necessary))
            .collect();
        clauses
            .into_iter()
            .max_by_key(|c| c.iter().map(String::len).min().unwrap_or(0))
    }
}

fn necessary(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Test {
            test: Test::Eq(Value::Literal { wild, number: None }),
            ..
        } => (!wild.text.is_empty()).then(|| vec![wild.text.clone()]),
        Expr::Test { .. } => None,
        Expr::And(items) => items
            .iter()
            .filter_map(necessary)
            .max_by_key(|c| c.iter().map(String::len).min().unwrap_or(0)),
        Expr::Or(items) => {
            let mut union = Vec::new();
            for item in items {
                union.extend(necessary(item)?);
            }
            Some(union)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    #[test]
    fn tokenizer_groups_quotes_and_brackets() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#;
        assert_eq!(
            tokenize(line).unwrap(),
            vec![
                "127.0.0.1",
                "-",
                "frank",
                "10/Oct/2000:13:25:15 -0700",
                "GET /apache_pb.gif HTTP/1.0",
                "200",
                "1534"
            ]
        );
        assert_eq!(tokenize("a  \"b c").unwrap(), vec!["a", "b c"]);
        assert_eq!(tokenize("  ").unwrap(), Vec::<&str>::new());
        assert_eq!(tokenize("x é\t\"ü\"\n").unwrap(), vec!["x", "é", "ü"]);
    }
}
