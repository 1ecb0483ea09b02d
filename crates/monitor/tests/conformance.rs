//! Filter pattern conformance: every row of `tests/data/conformance.tsv` is one
//! (pattern, event, expected) case: AWS's documented examples, each CIS control against
//! matching and near-miss CloudTrail records, access-log lines, and syntax errors with positions.
//!
//! Columns (TAB-separated, `\\`, `\t`, `\n` escapes): pattern, event, expected (`1`, `0` or
//! `err@POSITION`), then either `key=value;key=value` values `extract` must yield, or a
//! substring of the error message, then a free-text note.

use trailvault_monitor::pattern::{FilterPattern, PatternSet};

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            other => panic!("bad escape \\{other:?} in table"),
        }
    }
    out
}

#[test]
fn conformance_table() {
    let table = include_str!("data/conformance.tsv");
    let mut cases = 0;
    let mut failures = Vec::new();
    for (lineno, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<String> = line.split('\t').map(unescape).collect();
        assert!(cols.len() >= 3, "line {}: too few columns", lineno + 1);
        let (pattern, event, expected) = (&cols[0], &cols[1], cols[2].as_str());
        let detail = cols.get(3).map(String::as_str).unwrap_or("");
        let note = cols.get(4).map(String::as_str).unwrap_or("");
        cases += 1;
        let ctx = format!("line {} ({note}): pattern {pattern:?}", lineno + 1);
        let parsed = FilterPattern::parse(pattern);
        if let Some(pos) = expected.strip_prefix("err@") {
            let pos: usize = pos.parse().expect("error position");
            match parsed {
                Ok(_) => failures.push(format!("{ctx}: parsed, expected an error at {pos}")),
                Err(e) => {
                    if e.position != pos || !e.to_string().contains(detail) {
                        failures.push(format!(
                            "{ctx}: got `{e}` (at {}), expected at {pos} containing {detail:?}",
                            e.position
                        ));
                    }
                }
            }
            continue;
        }
        let want = match expected {
            "1" => true,
            "0" => false,
            other => panic!("line {}: bad expected value {other:?}", lineno + 1),
        };
        let p = match parsed {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{ctx}: parse error {e}"));
                continue;
            }
        };
        let got = p.matches(event);
        if got != want {
            failures.push(format!(
                "{ctx}: event {event:?}: matched {got}, expected {want}"
            ));
            continue;
        }
        let extracted = p.extract(event);
        if extracted.is_some() != want {
            failures.push(format!("{ctx}: extract disagrees with matches"));
        }
        let set = PatternSet::new(vec![
            p.clone(),
            FilterPattern::parse("NEVER_PRESENT_TOKEN").unwrap(),
        ]);
        let mut hits = Vec::new();
        set.matching(event, &mut hits);
        if (hits == [0]) != want {
            failures.push(format!("{ctx}: pattern set disagrees: {hits:?}"));
        }
        if let (Some(x), false) = (extracted, detail.is_empty()) {
            for pair in detail.split(';') {
                let (k, v) = pair.split_once('=').expect("key=value");
                if x.get(k) != Some(v) {
                    failures.push(format!(
                        "{ctx}: extracted {k} = {:?}, expected {v:?}",
                        x.get(k)
                    ));
                }
            }
        }
    }
    assert!(cases >= 150, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
