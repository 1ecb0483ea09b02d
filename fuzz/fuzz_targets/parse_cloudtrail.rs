//! Fuzzes the cloudtrail parser: it must never panic, every record it returns must be
//! accounted for, and its one-pass path must agree with the general parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailvault_formats::sources::cloudtrail::parse_general;
use trailvault_formats::{parse, Format};

fuzz_target!(|data: &[u8]| {
    let out = parse(Format::Cloudtrail, data);
    assert_eq!(
        out.records_read(),
        (out.records.len() + out.rejections.len()) as u64
    );
    for r in &out.rejections {
        assert!(r.offset as usize <= data.len());
    }
    assert_eq!(out, parse_general(data));
});
