//! Decompression of one source file, streaming and capped.
//!
//! The compression is read from the first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), never from
//! the name: AWS names some gzip files `.log` and users rename things. The decompressed bytes
//! are read into memory (the parsers take `&[u8]`) but never past `decompressed_bytes_max`:
//! a larger file stops with [`DecodeError::TooLarge`] after reading at most one byte more than
//! the cap. The SHA-256 covers the source bytes exactly as stored (compressed), so the import
//! ledger can name the object that was imported.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest, Sha256};

/// Compression found by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Why a file's content could not be read. Each is a reason to quarantine the whole file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("decompressed size exceeds the cap of {cap_bytes} bytes (--max-decompressed-bytes)")]
    TooLarge { cap_bytes: u64 },
    #[error(
        "{compression} stream is corrupt after {decompressed_bytes} decompressed bytes: {source}"
    )]
    Corrupt {
        compression: &'static str,
        decompressed_bytes: u64,
        #[source]
        source: io::Error,
    },
    #[error("could not read the source: {0}")]
    Read(#[source] io::Error),
}

impl DecodeError {
    /// True when the source could not be read at all (retrying may help), as opposed to
    /// content that is bad in itself.
    pub fn is_source_failure(&self) -> bool {
        matches!(self, DecodeError::Read(_))
    }
}

/// One file's decompressed content and what was learnt about its source bytes.
#[derive(Debug)]
pub struct Decoded {
    pub content: Vec<u8>,
    pub compression: Compression,
    /// Source (compressed) bytes read.
    pub source_bytes: u64,
    /// Hex SHA-256 of the source bytes.
    pub sha256: String,
}

/// Hashes and counts every byte read through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
    /// Set when the inner reader failed, to tell source failures from corrupt content.
    failed: Option<io::ErrorKind>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hash.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = Some(e.kind());
                }
                Err(e)
            }
        }
    }
}

/// Decompresses `source` (by magic bytes) into memory, up to `cap_bytes` decompressed bytes.
pub fn decode(source: impl Read, cap_bytes: u64) -> Result<Decoded, DecodeError> {
    decode_sized(source, cap_bytes, None)
}

/// Compressed logs expand about this much (CloudTrail JSON: 9-10×); used to size the buffer
/// once instead of growing it by doubling, which copies and faults pages twice.
const EXPANSION_GUESS: u64 = 12;
/// The up-front reservation never exceeds this (pages are only touched as they fill).
const RESERVE_BYTES_MAX: u64 = 1 << 30;

/// [`decode`] with the stored size of the source, when known, to size the buffer.
pub fn decode_sized(
    source: impl Read,
    cap_bytes: u64,
    source_bytes: Option<u64>,
) -> Result<Decoded, DecodeError> {
    let hashing = Hashing {
        inner: source,
        hash: Sha256::new(),
        bytes: 0,
        failed: None,
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, hashing);
    let compression = Compression::sniff(buffered.fill_buf().map_err(DecodeError::Read)?);
    let reserve = source_bytes.map_or(0, |n| match compression {
        Compression::None => n.saturating_add(1),
        _ => n.saturating_mul(EXPANSION_GUESS),
    });
    let mut content = Vec::with_capacity(reserve.min(cap_bytes).min(RESERVE_BYTES_MAX) as usize);
    let result = match compression {
        Compression::None => read_capped(&mut buffered, cap_bytes, &mut content),
        // Multi-member: AWS and `cat a.gz b.gz` both produce concatenated gzip members.
        Compression::Gzip => {
            let mut d = flate2::bufread::MultiGzDecoder::new(&mut buffered);
            read_capped(&mut d, cap_bytes, &mut content)
        }
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(&mut buffered) {
            Ok(mut d) => read_capped(&mut d, cap_bytes, &mut content),
            Err(e) => Err(e),
        },
    };
    let hashing = buffered.get_mut();
    if let Err(e) = result {
        if e.kind() == io::ErrorKind::FileTooLarge {
            return Err(DecodeError::TooLarge { cap_bytes });
        }
        if hashing.failed.is_some() {
            return Err(DecodeError::Read(e));
        }
        return Err(DecodeError::Corrupt {
            compression: compression.as_str(),
            decompressed_bytes: content.len() as u64,
            source: e,
        });
    }
    // Bytes after the compressed stream (zstd stops at its frame end): hash them too, so the
    // digest covers the whole object.
    io::copy(&mut buffered, &mut io::sink()).map_err(DecodeError::Read)?;
    let hashing = buffered.into_inner();
    Ok(Decoded {
        content,
        compression,
        source_bytes: hashing.bytes,
        sha256: hex::encode(hashing.hash.finalize()),
    })
}

/// Reads all of `r` into `out`, failing with `FileTooLarge` past `cap_bytes`.
fn read_capped(r: &mut impl Read, cap_bytes: u64, out: &mut Vec<u8>) -> io::Result<()> {
    let n = r.take(cap_bytes.saturating_add(1)).read_to_end(out)?;
    if n as u64 > cap_bytes {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "decompressed size cap exceeded",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_gzip_zstd_and_multi_member() {
        let data = b"hello\nworld\n".repeat(1000);
        let d = decode(&data[..], 1 << 20).unwrap();
        assert_eq!(d.compression, Compression::None);
        assert_eq!(d.content, data);
        assert_eq!(d.source_bytes, data.len() as u64);

        let z = gz(&data);
        let d = decode(&z[..], 1 << 20).unwrap();
        assert_eq!(d.compression, Compression::Gzip);
        assert_eq!(d.content, data);
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&z)));

        let mut two = gz(b"a\n");
        two.extend(gz(b"b\n"));
        assert_eq!(decode(&two[..], 100).unwrap().content, b"a\nb\n");

        let zs = zstd::encode_all(&data[..], 3).unwrap();
        let d = decode(&zs[..], 1 << 20).unwrap();
        assert_eq!(d.compression, Compression::Zstd);
        assert_eq!(d.content, data);
    }

    #[test]
    fn cap_is_exact() {
        let data = vec![b'x'; 1000];
        assert_eq!(decode(&data[..], 1000).unwrap().content.len(), 1000);
        assert!(matches!(
            decode(&data[..], 999),
            Err(DecodeError::TooLarge { cap_bytes: 999 })
        ));
        // A gzip bomb stops at the cap, not at its full size.
        let bomb = gz(&vec![0u8; 50 << 20]);
        assert!(matches!(
            decode(&bomb[..], 1 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_gzip_is_reported_with_position() {
        let mut z = gz(&b"line\n".repeat(10_000));
        let n = z.len();
        z.truncate(n / 2);
        match decode(&z[..], 1 << 20) {
            Err(DecodeError::Corrupt { compression, .. }) => assert_eq!(compression, "gzip"),
            other => panic!("expected corrupt, got {other:?}"),
        }
        let garbage = [0x1f, 0x8b, 0, 0, 1, 2, 3];
        assert!(matches!(
            decode(&garbage[..], 100),
            Err(DecodeError::Corrupt { .. })
        ));
    }
}
