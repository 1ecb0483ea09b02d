//! Cutting a stream of lines into PutLogEvents batches within CloudWatch's limits.
//!
//! Limits (from `trailvault_model::limits`): at most [`BATCH_EVENTS_MAX`] events and
//! [`BATCH_BYTES_MAX`] bytes per batch, an event counting its UTF-8 message bytes plus
//! [`EVENT_OVERHEAD_BYTES`]; one event at most [`EVENT_BYTES_MAX`] bytes, overhead included.
//!
//! Invariants: a line is either in exactly one batch or reported as rejected with its line
//! number, never dropped; a batch is never empty and never over a limit; timestamps within
//! and across batches never decrease (the API refuses a batch out of order).

use std::io::{self, BufRead};

use trailvault_model::limits::{
    BATCH_BYTES_MAX, BATCH_EVENTS_MAX, EVENT_BYTES_MAX, EVENT_OVERHEAD_BYTES,
};

/// Largest message that fits in one event.
pub const MESSAGE_BYTES_MAX: usize = EVENT_BYTES_MAX - EVENT_OVERHEAD_BYTES;

/// A line ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// 1-based line number in the input.
    pub line_number: u64,
    pub timestamp_ms: i64,
    pub message: String,
}

/// The size an event counts against the batch limit.
pub fn event_bytes(message: &str) -> usize {
    message.len() + EVENT_OVERHEAD_BYTES
}

/// Accumulates events; hands back a full batch when the next event would not fit.
#[derive(Debug, Default)]
pub struct Batcher {
    events: Vec<PendingEvent>,
    bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The event alone is over [`EVENT_BYTES_MAX`].
    EventTooLarge { line_number: u64, bytes: usize },
}

impl Batcher {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Bytes the current batch counts against [`BATCH_BYTES_MAX`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Add an event. Returns the batch to send first when this event does not fit in it.
    pub fn push(&mut self, event: PendingEvent) -> Result<Option<Vec<PendingEvent>>, BatchError> {
        let size = event_bytes(&event.message);
        if size > EVENT_BYTES_MAX {
            return Err(BatchError::EventTooLarge {
                line_number: event.line_number,
                bytes: size,
            });
        }
        let full =
            if self.events.len() + 1 > BATCH_EVENTS_MAX || self.bytes + size > BATCH_BYTES_MAX {
                self.take()
            } else {
                None
            };
        self.events.push(event);
        self.bytes += size;
        Ok(full)
    }

    /// The batch so far, if any, leaving the batcher empty.
    pub fn take(&mut self) -> Option<Vec<PendingEvent>> {
        if self.events.is_empty() {
            return None;
        }
        self.bytes = 0;
        Some(std::mem::take(&mut self.events))
    }
}

/// One line read from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// An empty line (CloudWatch requires a message of at least one character).
    Empty,
    /// Longer than [`MESSAGE_BYTES_MAX`]; only its length was kept.
    TooLong {
        bytes: usize,
    },
    NotUtf8,
}

/// Read one line (without its `\n` or `\r\n`), keeping at most `keep_bytes_max` bytes in
/// memory however long the line is. `Ok(None)` at end of input. Also returns the bytes
/// consumed, for progress.
pub fn read_line(
    r: &mut dyn BufRead,
    keep_bytes_max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(Line, usize)>> {
    buf.clear();
    let mut total = 0usize;
    let mut saw_newline = false;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        let room = (keep_bytes_max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len();
        r.consume(used);
        if done {
            saw_newline = true;
            break;
        }
    }
    if total == 0 && !saw_newline {
        return Ok(None);
    }
    let consumed = total + usize::from(saw_newline);
    let mut len = total;
    if buf.last() == Some(&b'\r') && total <= keep_bytes_max + 1 {
        buf.pop();
        len -= 1;
    }
    let line = if len == 0 {
        Line::Empty
    } else if len > keep_bytes_max {
        Line::TooLong { bytes: len }
    } else {
        match std::str::from_utf8(buf) {
            Ok(s) => Line::Text(s.to_string()),
            Err(_) => Line::NotUtf8,
        }
    };
    Ok(Some((line, consumed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u64, len: usize) -> PendingEvent {
        PendingEvent {
            line_number: n,
            timestamp_ms: 0,
            message: "x".repeat(len),
        }
    }

    #[test]
    fn ten_thousand_events_fit_and_one_more_starts_a_batch() {
        let mut b = Batcher::default();
        for n in 0..BATCH_EVENTS_MAX as u64 {
            assert_eq!(b.push(ev(n, 1)).unwrap(), None);
        }
        assert_eq!(b.len(), BATCH_EVENTS_MAX);
        let full = b
            .push(ev(10_000, 1))
            .unwrap()
            .expect("the 10,001st event cuts");
        assert_eq!(full.len(), BATCH_EVENTS_MAX);
        assert_eq!(b.len(), 1);
        assert_eq!(b.bytes(), 27);
    }

    #[test]
    fn batch_bytes_limit_is_exact() {
        // Four maximal events are 1,048,576 bytes exactly (4 × 262,144).
        let mut b = Batcher::default();
        for n in 0..4 {
            assert_eq!(b.push(ev(n, MESSAGE_BYTES_MAX)).unwrap(), None);
        }
        assert_eq!(b.bytes(), BATCH_BYTES_MAX);
        // Not even a one-byte event fits now.
        let full = b.push(ev(4, 1)).unwrap().unwrap();
        assert_eq!(full.len(), 4);
        assert_eq!(
            full.iter().map(|e| event_bytes(&e.message)).sum::<usize>(),
            BATCH_BYTES_MAX
        );

        // A small event that lands exactly on the limit fits; the next one does not.
        let mut b = Batcher::default();
        for n in 0..3 {
            b.push(ev(n, MESSAGE_BYTES_MAX)).unwrap();
        }
        b.push(ev(3, MESSAGE_BYTES_MAX - 27)).unwrap();
        assert_eq!(b.push(ev(4, 1)).unwrap(), None);
        assert_eq!(b.bytes(), BATCH_BYTES_MAX);
        assert_eq!(b.push(ev(5, 1)).unwrap().map(|v| v.len()), Some(5));

        // One byte under the limit: a one-byte event (27 counted bytes) would go over.
        let mut b = Batcher::default();
        for n in 0..3 {
            b.push(ev(n, MESSAGE_BYTES_MAX)).unwrap();
        }
        b.push(ev(3, MESSAGE_BYTES_MAX - 1)).unwrap();
        assert_eq!(b.bytes(), BATCH_BYTES_MAX - 1);
        assert_eq!(b.push(ev(4, 1)).unwrap().map(|v| v.len()), Some(4));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn an_event_of_exactly_the_maximum_size_is_accepted_one_more_byte_is_not() {
        let mut b = Batcher::default();
        assert_eq!(event_bytes(&"x".repeat(MESSAGE_BYTES_MAX)), EVENT_BYTES_MAX);
        assert!(b.push(ev(1, MESSAGE_BYTES_MAX)).is_ok());
        assert_eq!(
            b.push(ev(2, MESSAGE_BYTES_MAX + 1)),
            Err(BatchError::EventTooLarge {
                line_number: 2,
                bytes: EVENT_BYTES_MAX + 1
            })
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b.take().map(|v| v.len()), Some(1));
        assert_eq!(b.take(), None);
        assert_eq!(b.bytes(), 0);
    }

    fn lines(input: &[u8], keep: usize) -> Vec<(Line, usize)> {
        let mut r = std::io::BufReader::with_capacity(7, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = read_line(&mut r, keep, &mut buf).unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn lines_are_split_bounded_and_classified() {
        let got = lines(b"one\r\n\ntwo words\n\xff\xfe\n0123456789abcdef\nlast", 10);
        assert_eq!(
            got,
            vec![
                (Line::Text("one".into()), 5),
                (Line::Empty, 1),
                (Line::Text("two words".into()), 10),
                (Line::NotUtf8, 3),
                (Line::TooLong { bytes: 16 }, 17),
                (Line::Text("last".into()), 4),
            ]
        );
        // Exactly the limit is kept, with or without \r\n.
        assert_eq!(
            lines(b"0123456789\r\n0123456789", 10),
            vec![
                (Line::Text("0123456789".into()), 12),
                (Line::Text("0123456789".into()), 10)
            ]
        );
        assert_eq!(lines(b"", 10), vec![]);
        assert_eq!(lines(b"\n", 10), vec![(Line::Empty, 1)]);
    }
}
