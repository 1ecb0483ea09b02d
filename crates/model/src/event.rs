use crate::Normalized;

/// One log event as the vault keeps it.
///
/// `message` is the raw record, byte-exact: it is what is shown as evidence and what the
/// integrity chain hashes. `normalized` is derived from it and may be absent (plain text,
/// or an event pushed through the API without a known format).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Vault-wide sequence number assigned when the event entered the write-ahead log (or,
    /// for a bulk import sealed straight into segments, reserved from the WAL writer).
    /// Strictly increasing in acknowledgement order; the stable identity of the event.
    pub seq: u64,
    pub group: String,
    pub stream: String,
    /// Event time in epoch milliseconds, as the producer stated it.
    pub timestamp_ms: i64,
    /// When the vault accepted the event, epoch milliseconds.
    pub ingestion_time_ms: i64,
    pub message: String,
    pub normalized: Option<Box<Normalized>>,
}

impl StoredEvent {
    /// The public, stable event id (`eventId` in the CloudWatch API).
    pub fn event_id(&self) -> String {
        event_id_from_seq(self.seq)
    }
}

/// Event ids are the zero-padded decimal sequence number, so they sort like the sequence
/// and survive every copy of the data without a lookup table.
pub fn event_id_from_seq(seq: u64) -> String {
    event_id_digits(seq)
        .iter()
        .map(|&d| char::from(d))
        .collect()
}

/// The bytes of [`event_id_from_seq`] without allocating (hashing a leaf needs them for
/// every event).
pub fn event_id_digits(seq: u64) -> [u8; 20] {
    let mut digits = [b'0'; 20];
    let mut rest = seq;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    digits
}

/// Inverse of [`event_id_from_seq`]; `None` for anything that is not an event id of ours.
pub fn seq_from_event_id(id: &str) -> Option<u64> {
    if id.len() != 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_round_trips() {
        for seq in [0, 1, 42, 9_999_999_999, u64::MAX] {
            assert_eq!(seq_from_event_id(&event_id_from_seq(seq)), Some(seq));
            assert_eq!(&event_id_digits(seq), event_id_from_seq(seq).as_bytes());
        }
        assert_eq!(seq_from_event_id("12"), None);
        assert_eq!(seq_from_event_id("0000000000000000000x"), None);
    }
}
