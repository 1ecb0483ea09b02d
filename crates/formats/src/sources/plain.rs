//! Plain text: one record per line, kept raw, nothing parsed (`Normalized::source` is `plain`).
//! Blank lines are skipped; a line that is not UTF-8 or is over the line limit is rejected.

use trailvault_model::Normalized;

use crate::text::{line_record, line_str, lines, reject_line};
use crate::ParseOutput;

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    for line in lines(input) {
        if line.bytes.iter().all(u8::is_ascii_whitespace) {
            out.skipped += 1;
            continue;
        }
        match line_str(&line) {
            Ok(s) => out.records.push(line_record(
                &line,
                s,
                Normalized {
                    source: "plain".into(),
                    ..Normalized::default()
                },
            )),
            Err(reason) => reject_line(&mut out, &line, reason),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_blank_and_binary() {
        let out = parse(b"one\n\n  \ntwo\r\n\xff\xfe\n");
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[1].raw, "two");
        assert_eq!(out.records[1].line, 4);
        assert_eq!(out.skipped, 2);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].raw, b"\xff\xfe");
    }
}
