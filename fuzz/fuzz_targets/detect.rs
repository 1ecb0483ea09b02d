//! Fuzzes detection: any key and head must give an answer (or none) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (key, head) = data.split_at(split);
    let key = String::from_utf8_lossy(key);
    let _ = trailvault_formats::detect(&key, head);
    let _ = trailvault_formats::key_info(&key);
    let _ = trailvault_formats::is_skippable(&key);
});
