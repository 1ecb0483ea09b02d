//! The write-ahead log: where an event becomes durable before it is acknowledged.
//!
//! On-disk format, version 1. The directory holds files named `<first_seq:020>.wal`; a file
//! holds every batch whose sequence numbers start at or after its name and before the next
//! file's name. Each file starts with the 8-byte [`FILE_MAGIC`], then records:
//!
//! ```text
//! record  := len:u32le crc32c(payload):u32le payload[len]
//! payload := first_seq:u64 ingestion_ms:i64 group:str16 stream:str16 count:u32 event*count
//! event   := timestamp_ms:i64 message:bytes32 normalized_json:bytes32 (length 0 = none)
//! ```
//!
//! Invariants:
//! - A batch is acknowledged only after the write holding it was `fdatasync`ed (group commit:
//!   every batch that queued during one sync is written and synced together).
//! - A record that fails its length or checksum in the *last* file is a torn tail from a crash
//!   in the middle of an unacknowledged write: recovery truncates it. Anywhere else it is
//!   corruption and recovery stops with an error naming file and offset.
//! - Files are removed only when every sequence number in them is at or below the sealed
//!   watermark recorded in the catalog.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use trailvault_model::Normalized;

use crate::error::{Result, StoreError};

pub const FILE_MAGIC: &[u8; 8] = b"TVWAL\0\0\x01";
/// Largest payload a record may carry; anything larger is corruption, not data.
pub const RECORD_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Start a new file once the current one is this large.
pub const FILE_BYTES_MAX: u64 = 128 * 1024 * 1024;
const RECORD_HEADER_BYTES: usize = 8;

/// One event as it travels through the log.
#[derive(Debug, Clone, PartialEq)]
pub struct WalEvent {
    pub timestamp_ms: i64,
    pub message: String,
    pub normalized: Option<Box<Normalized>>,
}

/// One acknowledged batch: the unit of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct WalBatch {
    pub first_seq: u64,
    pub ingestion_time_ms: i64,
    pub group: String,
    pub stream: String,
    pub events: Vec<WalEvent>,
}

impl WalBatch {
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64 - 1
    }
}

pub fn encode_batch(batch: &WalBatch, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    out.extend_from_slice(&batch.first_seq.to_le_bytes());
    out.extend_from_slice(&batch.ingestion_time_ms.to_le_bytes());
    put_str16(out, &batch.group);
    put_str16(out, &batch.stream);
    out.extend_from_slice(&(batch.events.len() as u32).to_le_bytes());
    for e in &batch.events {
        out.extend_from_slice(&e.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&(e.message.len() as u32).to_le_bytes());
        out.extend_from_slice(e.message.as_bytes());
        match &e.normalized {
            Some(n) => {
                let json = serde_json::to_vec(n).expect("normalized records serialize");
                out.extend_from_slice(&(json.len() as u32).to_le_bytes());
                out.extend_from_slice(&json);
            }
            None => out.extend_from_slice(&0u32.to_le_bytes()),
        }
    }
    let payload_len = out.len() - start - RECORD_HEADER_BYTES;
    let crc = crc32c::crc32c(&out[start + RECORD_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    // Group and stream names are at most 512 characters (checked before they get here).
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Cursor over a payload that reports *what* was malformed.
struct Payload<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() - self.pos < n {
            return Err(format!("payload ends inside {what}"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
    fn i64(&mut self, what: &str) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self, n: usize, what: &str) -> Result<String, String> {
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not utf-8"))
    }
}

pub fn decode_batch(payload: &[u8]) -> Result<WalBatch, String> {
    let mut p = Payload {
        bytes: payload,
        pos: 0,
    };
    let first_seq = p.u64("first_seq")?;
    let ingestion_time_ms = p.i64("ingestion time")?;
    let glen = u16::from_le_bytes(p.take(2, "group length")?.try_into().expect("2")) as usize;
    let group = p.string(glen, "group name")?;
    let slen = u16::from_le_bytes(p.take(2, "stream length")?.try_into().expect("2")) as usize;
    let stream = p.string(slen, "stream name")?;
    let count = p.u32("event count")? as usize;
    if count == 0 {
        return Err("batch holds no events".into());
    }
    let mut events = Vec::with_capacity(count.min(100_000));
    for _ in 0..count {
        let timestamp_ms = p.i64("event timestamp")?;
        let mlen = p.u32("message length")? as usize;
        let message = p.string(mlen, "message")?;
        let nlen = p.u32("normalized length")? as usize;
        let normalized = if nlen == 0 {
            None
        } else {
            let json = p.take(nlen, "normalized record")?;
            Some(Box::new(serde_json::from_slice(json).map_err(|e| {
                format!("normalized record is not valid: {e}")
            })?))
        };
        events.push(WalEvent {
            timestamp_ms,
            message,
            normalized,
        });
    }
    if p.pos != payload.len() {
        return Err(format!(
            "{} unexpected bytes after the last event",
            payload.len() - p.pos
        ));
    }
    Ok(WalBatch {
        first_seq,
        ingestion_time_ms,
        group,
        stream,
        events,
    })
}

/// The files of a WAL directory, oldest first, with the first sequence number each holds.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            files.push((first, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Result of reading one WAL file.
pub struct FileReplay {
    pub batches: Vec<WalBatch>,
    /// Length of the valid prefix; the file is truncated to it if it is longer.
    pub valid_len: u64,
    /// Why the valid prefix ended early, if it did.
    pub torn: Option<String>,
}

/// Read every intact record of `path`. A bad record ends the valid prefix; whether that is a
/// torn tail or corruption is the caller's call (it depends on whether this is the last file).
pub fn read_file(path: &Path) -> Result<FileReplay> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| StoreError::io(path, e))?;
    if bytes.len() < FILE_MAGIC.len() {
        return Ok(FileReplay {
            batches: Vec::new(),
            valid_len: 0,
            torn: Some("file shorter than its header".into()),
        });
    }
    if &bytes[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err(StoreError::Corrupt {
            file: path.to_path_buf(),
            offset: 0,
            what: "not a trailvault wal file (bad magic)".into(),
        });
    }
    let mut pos = FILE_MAGIC.len();
    let mut batches = Vec::new();
    let mut torn = None;
    while pos < bytes.len() {
        if bytes.len() - pos < RECORD_HEADER_BYTES {
            torn = Some(format!("record header cut short at offset {pos}"));
            break;
        }
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4"));
        // A zero length is never written (every payload has a fixed-size head); it is what a
        // zero-filled tail left by a crash looks like, and crc32c of nothing is 0, so it must
        // not be taken for a record.
        if len == 0 {
            torn = Some(format!("zero-filled record header at offset {pos}"));
            break;
        }
        if len > RECORD_BYTES_MAX || bytes.len() - pos - RECORD_HEADER_BYTES < len {
            torn = Some(format!(
                "record at offset {pos} runs past the end of the file"
            ));
            break;
        }
        let payload = &bytes[pos + RECORD_HEADER_BYTES..pos + RECORD_HEADER_BYTES + len];
        if crc32c::crc32c(payload) != crc {
            torn = Some(format!("record at offset {pos} fails its checksum"));
            break;
        }
        let batch = decode_batch(payload).map_err(|what| StoreError::Corrupt {
            file: path.to_path_buf(),
            offset: pos as u64,
            what,
        })?;
        batches.push(batch);
        pos += RECORD_HEADER_BYTES + len;
    }
    Ok(FileReplay {
        batches,
        valid_len: pos as u64,
        torn,
    })
}

/// Appends records to the current WAL file.
pub struct WalWriter {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    file_bytes: u64,
    buf: Vec<u8>,
    /// Bytes were written since the last sync.
    unsynced: bool,
}

impl WalWriter {
    /// Open (or create) the file that starts at `first_seq` for appending, keeping
    /// `valid_len` bytes of it (0 = new file).
    pub fn open(dir: &Path, first_seq: u64, valid_len: u64) -> Result<Self> {
        let path = dir.join(file_name(first_seq));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let mut file_bytes = valid_len;
        if valid_len < FILE_MAGIC.len() as u64 {
            file.set_len(0).map_err(|e| StoreError::io(&path, e))?;
            file.write_all(FILE_MAGIC)
                .map_err(|e| StoreError::io(&path, e))?;
            file_bytes = FILE_MAGIC.len() as u64;
        } else {
            file.set_len(valid_len)
                .map_err(|e| StoreError::io(&path, e))?;
        }
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(file_bytes))
            .map_err(|e| StoreError::io(&path, e))?;
        file.sync_all().map_err(|e| StoreError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            file,
            path,
            file_bytes,
            buf: Vec::with_capacity(2 * 1024 * 1024),
            unsynced: false,
        })
    }

    /// Write the batches and, if `sync`, make them (and every earlier unsynced write to this
    /// file) durable with one sync.
    pub fn append(&mut self, batches: &[&WalBatch], sync: bool) -> Result<()> {
        self.buf.clear();
        for b in batches {
            encode_batch(b, &mut self.buf);
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.unsynced = true;
        if sync {
            self.sync()?;
        }
        self.file_bytes += self.buf.len() as u64;
        if self.buf.capacity() > 64 * 1024 * 1024 {
            self.buf = Vec::with_capacity(2 * 1024 * 1024);
        }
        Ok(())
    }

    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Make every write to the current file durable.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| StoreError::io(&self.path, e))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Close the current file and start a new one whose first sequence number is `next_seq`.
    /// The old file is synced first: only the newest file may ever end in unsynced writes,
    /// which recovery treats as a torn tail; anywhere else a bad record is corruption.
    pub fn rotate(&mut self, next_seq: u64) -> Result<()> {
        self.sync()?;
        *self = WalWriter::open(&self.dir, next_seq, 0)?;
        Ok(())
    }
}

/// Remove every WAL file whose records all have sequence numbers at or below `watermark`.
pub fn remove_sealed(dir: &Path, watermark: u64) -> Result<usize> {
    let files = list_files(dir)?;
    let mut removed = 0;
    for (i, (_, path)) in files.iter().enumerate() {
        let Some((next_first, _)) = files.get(i + 1) else {
            break; // the newest file is the one being written
        };
        if *next_first <= watermark + 1 {
            fs::remove_file(path).map_err(|e| StoreError::io(path, e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Make a directory entry change (create, rename, remove) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(first_seq: u64, n: usize, msg: &str) -> WalBatch {
        WalBatch {
            first_seq,
            ingestion_time_ms: 1_700_000_000_000,
            group: "g".into(),
            stream: "s".into(),
            events: (0..n)
                .map(|i| WalEvent {
                    timestamp_ms: i as i64,
                    message: format!("{msg}-{i}"),
                    normalized: None,
                })
                .collect(),
        }
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        w.append(&[&batch(1, 3, "a")], true).unwrap();
        w.append(&[&batch(4, 2, "b")], true).unwrap();
        let path = dir.path().join(file_name(1));
        let full = fs::metadata(&path).unwrap().len();
        // Cut the second record in half.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 5).unwrap();
        let r = read_file(&path).unwrap();
        assert_eq!(r.batches, vec![batch(1, 3, "a")]);
        assert!(r.torn.is_some());
        let w = WalWriter::open(dir.path(), 1, r.valid_len).unwrap();
        assert_eq!(w.file_bytes(), r.valid_len);
    }

    #[test]
    fn zero_filled_tail_is_torn_not_corrupt() {
        // After a power loss a file can end in zeros its size already covered; the record
        // header there reads as length 0, checksum 0, which crc32c of nothing matches.
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        w.append(&[&batch(1, 3, "a")], true).unwrap();
        let path = dir.path().join(file_name(1));
        let good = fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        let r = read_file(&path).unwrap();
        assert_eq!(r.batches, vec![batch(1, 3, "a")]);
        assert_eq!(r.valid_len, good);
        assert!(r.torn.unwrap().contains("zero-filled"));
    }

    #[test]
    fn deferred_writes_are_readable_and_synced_by_the_next_sync_or_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        w.append(&[&batch(1, 3, "a")], false).unwrap();
        assert!(w.unsynced);
        // Written (a process crash keeps it), just not yet forced to the device.
        let r = read_file(&dir.path().join(file_name(1))).unwrap();
        assert_eq!(r.batches, vec![batch(1, 3, "a")]);
        w.append(&[&batch(4, 1, "b")], true).unwrap();
        assert!(!w.unsynced);
        w.append(&[&batch(5, 1, "c")], false).unwrap();
        w.rotate(6).unwrap();
        assert!(!w.unsynced, "a new file starts clean");
        let r = read_file(&dir.path().join(file_name(1))).unwrap();
        assert_eq!(r.batches.len(), 3);
        assert!(r.torn.is_none());
    }

    #[test]
    fn flipped_byte_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        w.append(&[&batch(1, 3, "a")], true).unwrap();
        let path = dir.path().join(file_name(1));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let r = read_file(&path).unwrap();
        assert!(r.batches.is_empty());
        assert!(r.torn.unwrap().contains("checksum"));
    }

    #[test]
    fn sealed_files_are_removed_but_never_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        w.append(&[&batch(1, 10, "a")], true).unwrap();
        w.rotate(11).unwrap();
        w.append(&[&batch(11, 10, "b")], true).unwrap();
        w.rotate(21).unwrap();
        assert_eq!(remove_sealed(dir.path(), 9).unwrap(), 0);
        assert_eq!(remove_sealed(dir.path(), 10).unwrap(), 1);
        assert_eq!(remove_sealed(dir.path(), 1000).unwrap(), 1);
        assert_eq!(list_files(dir.path()).unwrap().len(), 1);
    }

    proptest! {
        #[test]
        fn batches_round_trip_and_any_truncation_keeps_a_prefix(
            sizes in proptest::collection::vec(1usize..20, 1..10),
            cut in 0usize..4000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
            let mut seq = 1;
            let mut written = Vec::new();
            for (i, n) in sizes.iter().enumerate() {
                let b = batch(seq, *n, &format!("m{i}é"));
                seq += *n as u64;
                w.append(&[&b], true).unwrap();
                written.push(b);
            }
            let path = dir.path().join(file_name(1));
            let r = read_file(&path).unwrap();
            prop_assert_eq!(&r.batches, &written);
            let len = fs::metadata(&path).unwrap().len();
            let keep = len.saturating_sub(cut as u64);
            OpenOptions::new().write(true).open(&path).unwrap().set_len(keep).unwrap();
            let r = read_file(&path).unwrap();
            prop_assert!(written.starts_with(&r.batches));
            prop_assert!(r.valid_len <= keep);
        }
    }
}
