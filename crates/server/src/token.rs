//! Pagination tokens. Opaque to clients; each carries a kind prefix so a token from one
//! operation is rejected by another instead of being misread.

/// A position in a time-ordered event sequence: (timestamp, seq).
pub type Cursor = (i64, u64);

pub fn encode_name(name: &str) -> String {
    format!("n/{}", hex::encode(name))
}

pub fn decode_name(token: &str) -> Option<String> {
    String::from_utf8(hex::decode(token.strip_prefix("n/")?).ok()?).ok()
}

pub fn encode_offset(offset: usize) -> String {
    format!("o/{offset}")
}

pub fn decode_offset(token: &str) -> Option<usize> {
    token.strip_prefix("o/")?.parse().ok()
}

/// `kind` is `f` (forward), `b` (backward) or `c` (FilterLogEvents continuation).
pub fn encode_cursor(kind: char, (ts, seq): Cursor) -> String {
    format!("{kind}/{ts:020}/{seq:020}")
}

pub fn decode_cursor(token: &str) -> Option<(char, Cursor)> {
    let mut parts = token.splitn(3, '/');
    let kind = parts.next()?;
    let kind = match kind {
        "f" | "b" | "c" => kind.chars().next()?,
        _ => return None,
    };
    let ts = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((kind, (ts, seq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_name(&encode_name("a/b#c")), Some("a/b#c".into()));
        assert_eq!(decode_offset(&encode_offset(77)), Some(77));
        let t = encode_cursor('f', (-5, 9));
        assert_eq!(decode_cursor(&t), Some(('f', (-5, 9))));
        for bad in ["", "x/1/2", "f/1", "f/a/b", "n/zz", "o/-1"] {
            assert!(decode_cursor(bad).is_none());
        }
        assert!(decode_name("n/zz").is_none());
        assert!(decode_offset("o/-1").is_none());
    }
}
