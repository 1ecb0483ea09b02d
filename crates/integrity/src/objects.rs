//! Small helpers over `object_store`: bounded reads, keys as paths, listing.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::error::{IntegrityError, Result};

/// Object keys are the store's keys verbatim (`Path::parse`, as the store writes them).
pub fn path(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| IntegrityError::Invalid(format!("bad object key {key:?}: {e}")))
}

/// Read an object; `Ok(None)` if it does not exist; an error if larger than `bytes_max`.
pub async fn get_limited(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    bytes_max: u64,
) -> Result<Option<Bytes>> {
    let p = path(key)?;
    let res = match store.get(&p).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if res.meta.size > bytes_max {
        return Err(IntegrityError::corrupt(
            key,
            format!("object is {} bytes, more than {bytes_max}", res.meta.size),
        ));
    }
    Ok(Some(res.bytes().await?))
}

/// Every object under `prefix`.
pub async fn list(store: &Arc<dyn ObjectStore>, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let p = path(prefix)?;
    Ok(store.list(Some(&p)).try_collect().await?)
}

/// Characters a log group may contain that cannot stand in one path segment; the same set
/// the store's segment layout escapes, so one encoding names a group everywhere.
pub fn encode_group(group: &str) -> String {
    let mut out = String::with_capacity(group.len());
    for b in group.bytes() {
        if b < 0x20 || b == 0x7f || b >= 0x80 || b == b'/' || b == b'#' || b == b'%' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

pub fn decode_group(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_encoding_round_trips() {
        for g in ["aws/cloudtrail#x", "plain", "50%", "é/ü", "a%2"] {
            let e = encode_group(g);
            assert!(!e.contains('/'));
            assert_eq!(decode_group(&e), g);
        }
        assert_eq!(encode_group("aws/cloudtrail#x"), "aws%2Fcloudtrail%23x");
    }
}
