//! The CPU side of importing one file: fetch, decompress, detect, parse, normalize, and split
//! the result into events to store and records to quarantine. Runs on the parsing pool; does
//! no writes.
//!
//! Invariant: for a file that parses, `records_read = events.len() + quarantine.len()`, both
//! lists are in file order, and both are a pure function of the file's bytes and the options
//! (so a resumed import can skip the prefix already stored).

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use trailvault_formats::{Format, KeyInfo, ParsedRecord, Rejection};
use trailvault_model::limits::{EVENT_BYTES_MAX, EVENT_OVERHEAD_BYTES};
use trailvault_store::InputEvent;

use crate::decode::{decode_sized, DecodeError};
use crate::placement::{fallback_time_ms, group_for, stream_for};
use crate::source::{Source, SourceFile};

/// Raw bytes kept in one quarantine event; longer raw records keep this prefix, their length
/// and their SHA-256 (a quarantine event must itself fit in one 256 KB event).
pub const QUARANTINE_RAW_BYTES_MAX: usize = 128 * 1024;
/// Bytes of decompressed content shown to content detection.
const DETECT_HEAD_BYTES: usize = 64 * 1024;

/// Options that shape how a file is read.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub format: Option<Format>,
    pub group: Option<String>,
    pub decompressed_bytes_max: u64,
    pub import_start_ms: i64,
}

/// What became of one file on the parsing side.
#[derive(Debug)]
pub enum Prepared {
    /// A file AWS writes next to logs that holds no records.
    Skippable,
    /// A CloudTrail digest: counted, handed to integrity validation, never stored as events.
    Digest {
        source_bytes: u64,
    },
    /// Neither the key nor the content names a format.
    Unknown {
        why: String,
    },
    /// The source could not be read (network, permissions): the import reports it and a
    /// later run retries it.
    ReadFailed {
        why: String,
    },
    Work(Box<FileWork>),
}

/// A file ready to be written.
#[derive(Debug)]
pub struct FileWork {
    pub file: SourceFile,
    pub format: Format,
    pub group: String,
    pub stream: String,
    pub sha256: String,
    pub source_bytes: u64,
    pub decompressed_bytes: u64,
    /// Events to store, in file order.
    pub events: Vec<InputEvent>,
    /// Quarantine events (JSON), in file order.
    pub quarantine: Vec<InputEvent>,
    pub records_read: u64,
    pub lines_skipped: u64,
    /// Set when the whole file was quarantined; `quarantine` then holds one event saying why.
    pub file_quarantined: Option<String>,
}

/// Reads and parses one file.
pub fn prepare(source: &Source, file: &SourceFile, opts: &PrepareOptions) -> Prepared {
    if trailvault_formats::is_skippable(&file.key) {
        return Prepared::Skippable;
    }
    let by_key = trailvault_formats::detect_key(&file.key);
    // A digest stays a digest even under `--format`: it must never be stored as events.
    if by_key == Some(Format::CloudtrailDigest) || opts.format == Some(Format::CloudtrailDigest) {
        return Prepared::Digest {
            source_bytes: file.size_bytes,
        };
    }
    let key_format = opts.format.or(by_key);
    let reader = match source.open_file(file) {
        Ok(r) => r,
        Err(e) => {
            return Prepared::ReadFailed {
                why: format!("cannot open: {e}"),
            }
        }
    };
    let info = trailvault_formats::key_info(&file.key);
    let stream = stream_for(&file.key);
    let fallback_ms = fallback_time_ms(&info, file.modified_ms, opts.import_start_ms);
    let decoded = match decode_sized(reader, opts.decompressed_bytes_max, Some(file.size_bytes)) {
        Ok(d) => d,
        Err(e) if e.is_source_failure() => return Prepared::ReadFailed { why: e.to_string() },
        Err(e) => {
            return Prepared::Work(Box::new(quarantined_file(
                file,
                key_format,
                &info,
                opts,
                stream,
                fallback_ms,
                &e,
            )))
        }
    };
    let head = &decoded.content[..decoded.content.len().min(DETECT_HEAD_BYTES)];
    let by_content = trailvault_formats::detect_content(head);
    if by_content == Some(Format::CloudtrailDigest) {
        return Prepared::Digest {
            source_bytes: decoded.source_bytes,
        };
    }
    let format = match key_format.or(by_content) {
        Some(f) => f,
        None => {
            return Prepared::Unknown {
                why: if decoded.content.is_empty() {
                    "empty file".to_owned()
                } else {
                    "neither the key nor the first line matches a known format".to_owned()
                },
            }
        }
    };
    let group = opts
        .group
        .clone()
        .unwrap_or_else(|| group_for(format, &info));
    let out = trailvault_formats::parse(format, &decoded.content);
    let records_read = out.records_read();
    let mut events = Vec::with_capacity(out.records.len());
    // (offset, event): oversized records join the rejections, then all go in file order.
    let mut quarantine: Vec<(u64, InputEvent)> = Vec::with_capacity(out.rejections.len());
    for r in out.rejections {
        quarantine.push((
            r.offset,
            rejection_event(&file.key, format, &r, fallback_ms),
        ));
    }
    for rec in out.records {
        if rec.raw.len() + EVENT_OVERHEAD_BYTES > EVENT_BYTES_MAX {
            quarantine.push((
                rec.offset,
                oversized_event(&file.key, format, &rec, fallback_ms),
            ));
            continue;
        }
        let ts = rec.normalized.time_ms.unwrap_or(fallback_ms);
        events.push(InputEvent {
            timestamp_ms: ts,
            message: rec.raw,
            normalized: Some(rec.normalized),
        });
    }
    quarantine.sort_by_key(|(offset, _)| *offset);
    Prepared::Work(Box::new(FileWork {
        file: file.clone(),
        format,
        group,
        stream,
        sha256: decoded.sha256,
        source_bytes: decoded.source_bytes,
        decompressed_bytes: decoded.content.len() as u64,
        events,
        quarantine: quarantine.into_iter().map(|(_, e)| e).collect(),
        records_read,
        lines_skipped: out.skipped,
        file_quarantined: None,
    }))
}

fn quarantined_file(
    file: &SourceFile,
    format: Option<Format>,
    info: &KeyInfo,
    opts: &PrepareOptions,
    stream: String,
    fallback_ms: i64,
    err: &DecodeError,
) -> FileWork {
    let reason = err.to_string();
    let msg = json!({
        "file": file.key,
        "line": null,
        "offset": null,
        "reason": reason,
        "format": format.map(Format::id),
        "file_bytes": file.size_bytes,
    });
    let format = format.unwrap_or(Format::Plain);
    FileWork {
        file: file.clone(),
        format,
        group: opts
            .group
            .clone()
            .unwrap_or_else(|| group_for(format, info)),
        stream,
        // The file was not read to its end: no digest of it is claimed.
        sha256: String::new(),
        source_bytes: file.size_bytes,
        decompressed_bytes: 0,
        events: Vec::new(),
        quarantine: vec![InputEvent {
            timestamp_ms: fallback_ms,
            message: msg.to_string(),
            normalized: None,
        }],
        records_read: 0,
        lines_skipped: 0,
        file_quarantined: Some(reason),
    }
}

/// The quarantine event text: `fields` plus the raw bytes, cut so the event fits in one
/// CloudWatch event even when JSON escaping inflates it.
fn quarantine_message(fields: serde_json::Map<String, serde_json::Value>, raw: &[u8]) -> String {
    let mut cap = QUARANTINE_RAW_BYTES_MAX;
    loop {
        let mut obj = fields.clone();
        raw_fields(raw, cap, &mut obj);
        let text = serde_json::Value::Object(obj).to_string();
        if text.len() + EVENT_OVERHEAD_BYTES <= EVENT_BYTES_MAX || cap == 0 {
            return text;
        }
        cap /= 2;
    }
}

/// `raw` (or `raw_base64`) of a quarantine event, cut to `cap` bytes.
fn raw_fields(raw: &[u8], cap: usize, obj: &mut serde_json::Map<String, serde_json::Value>) {
    let cut = raw.len() > cap;
    let mut kept = &raw[..raw.len().min(cap)];
    match std::str::from_utf8(raw) {
        Ok(_) => {
            // Cut on a character boundary.
            while std::str::from_utf8(kept).is_err() {
                kept = &kept[..kept.len() - 1];
            }
            obj.insert(
                "raw".into(),
                json!(std::str::from_utf8(kept).unwrap_or_default()),
            );
        }
        Err(_) => {
            obj.insert(
                "raw_base64".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(kept)),
            );
        }
    }
    if cut {
        obj.insert("raw_truncated".into(), json!(true));
        obj.insert("raw_bytes".into(), json!(raw.len()));
        obj.insert("raw_sha256".into(), json!(hex::encode(Sha256::digest(raw))));
    }
}

fn rejection_event(key: &str, format: Format, r: &Rejection, ts: i64) -> InputEvent {
    let mut obj = serde_json::Map::new();
    obj.insert("file".into(), json!(key));
    obj.insert("line".into(), json!(r.line));
    obj.insert("offset".into(), json!(r.offset));
    obj.insert("reason".into(), json!(r.reason));
    obj.insert("format".into(), json!(format.id()));
    InputEvent {
        timestamp_ms: ts,
        message: quarantine_message(obj, &r.raw),
        normalized: None,
    }
}

fn oversized_event(key: &str, format: Format, rec: &ParsedRecord, fallback_ms: i64) -> InputEvent {
    let mut obj = serde_json::Map::new();
    obj.insert("file".into(), json!(key));
    obj.insert("line".into(), json!(rec.line));
    obj.insert("offset".into(), json!(rec.offset));
    obj.insert(
        "reason".into(),
        json!(format!(
            "record is {} bytes; an event holds at most {} bytes including {} bytes of overhead",
            rec.raw.len(),
            EVENT_BYTES_MAX,
            EVENT_OVERHEAD_BYTES
        )),
    );
    obj.insert("format".into(), json!(format.id()));
    InputEvent {
        timestamp_ms: rec.normalized.time_ms.unwrap_or(fallback_ms),
        message: quarantine_message(obj, rec.raw.as_bytes()),
        normalized: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_text_or_base64_and_cut_with_a_hash() {
        let mut o = serde_json::Map::new();
        raw_fields(b"abc", 10, &mut o);
        assert_eq!(o["raw"], "abc");
        assert!(!o.contains_key("raw_truncated"));

        let mut o = serde_json::Map::new();
        raw_fields(&[0xff, 0x00], 10, &mut o);
        assert_eq!(o["raw_base64"], "/wA=");

        let big = "é".repeat(QUARANTINE_RAW_BYTES_MAX);
        let mut o = serde_json::Map::new();
        raw_fields(big.as_bytes(), QUARANTINE_RAW_BYTES_MAX, &mut o);
        assert_eq!(o["raw_truncated"], true);
        assert_eq!(o["raw_bytes"], big.len());
        assert!(o["raw"].as_str().unwrap().len() <= QUARANTINE_RAW_BYTES_MAX);

        // Control characters escape to six bytes each: the event is still cut to fit.
        let nasty = vec![1u8; 300_000];
        let text = quarantine_message(serde_json::Map::new(), &nasty);
        assert!(text.len() + EVENT_OVERHEAD_BYTES <= EVENT_BYTES_MAX);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["raw_bytes"], 300_000);
        assert_eq!(v["raw_truncated"], true);
    }
}
