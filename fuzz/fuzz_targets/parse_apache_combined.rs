//! Fuzzes the apache combined parser: it must never panic, and every record it returns must be
//! accounted for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailvault_formats::{parse, Format};

fuzz_target!(|data: &[u8]| {
    let out = parse(Format::ApacheCombined, data);
    assert_eq!(
        out.records_read(),
        (out.records.len() + out.rejections.len()) as u64
    );
    for r in &out.rejections {
        assert!(r.offset as usize <= data.len());
    }
});
