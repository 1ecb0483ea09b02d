//! Regression tests named after the bug they pin.

use trailvault_formats::{parse, Format};

/// Found by `scripts/fuzz.sh` (parse_syslog): a multi-byte character inside the first 15
/// bytes of an RFC 3164 line made the timestamp slicing panic.
#[test]
fn syslog_3164_timestamp_with_multibyte_chars_is_a_rejection_not_a_panic() {
    let input = b"\x00\x00\x00s:0\xd9\x80ity:0\xd9\x80";
    let out = parse(Format::Syslog, input);
    assert_eq!(out.records.len() + out.rejections.len(), 1);
    let line = "<13>Mar\u{e9}1 14:02:11 host app: msg\n";
    let out = parse(Format::Syslog, line.as_bytes());
    assert_eq!(out.records.len() + out.rejections.len(), 1);
}
