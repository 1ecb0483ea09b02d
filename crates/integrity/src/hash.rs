//! SHA-256, the only hash of the integrity chain.
//!
//! Backed by `ring`, whose hand-written assembly (SHA-NI when the CPU has it, AVX2/SSSE3
//! otherwise) is the fastest SHA-256 available to us in Rust; validation throughput is
//! bounded by it.

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 over several parts, as if they were concatenated.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Parse 64 hex characters into a hash.
pub fn parse_hash_hex(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(
            hex::encode(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_parts(&[b"ab", b"c"]), sha256(b"abc"));
        assert_eq!(
            parse_hash_hex(&hex::encode(sha256(b"x"))),
            Some(sha256(b"x"))
        );
        assert_eq!(parse_hash_hex("zz"), None);
    }
}
