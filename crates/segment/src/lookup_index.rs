//! Lookup filters: per segment and per `LookupEvents` attribute, a Parquet split-block bloom
//! filter (SBBF, xxHash64 seed 0, as the Parquet spec defines it) over the values the
//! segment's events hold. A lookup checks them before it opens any file, so it reads only
//! the segments that can hold the value.
//!
//! They are derived data: [`build`] computes them from a segment's events, so they can be
//! rebuilt from the segments at any time, and a segment without filters is simply opened.
//! The encoding is [`Sbbf::write`] (Thrift header, then the bitset), versioned by
//! [`LOOKUP_FILTER_FORMAT`]. An attribute no event of the segment holds still gets a filter
//! (empty: it rejects every value), so "no filter" always means "unknown".

use std::collections::HashSet;

use parquet::bloom_filter::Sbbf;
use trailvault_model::{Normalized, StoredEvent};

use crate::SegmentError;

/// Version of the filter encoding; a reader ignores filters of any other version.
pub const LOOKUP_FILTER_FORMAT: i64 = 1;
/// False-positive rate: with ~1,000 segments a lookup by a unique value opens one
/// needless segment about once in a thousand lookups.
const LOOKUP_FILTER_FPP: f64 = 0.000_1;

/// The attributes `LookupEvents` accepts, and the normalized field each one reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupKey {
    /// `source_event_id`
    EventId,
    /// `action`
    EventName,
    /// `read_only`, as `true` / `false`
    ReadOnly,
    /// `actor_user_name`
    Username,
    /// the `kind` of any of the `resources`
    ResourceType,
    /// the `id` of any of the `resources`
    ResourceName,
    /// `service`
    EventSource,
    /// `actor_access_key_id`
    AccessKeyId,
}

impl LookupKey {
    pub const ALL: [LookupKey; 8] = [
        LookupKey::EventId,
        LookupKey::EventName,
        LookupKey::ReadOnly,
        LookupKey::Username,
        LookupKey::ResourceType,
        LookupKey::ResourceName,
        LookupKey::EventSource,
        LookupKey::AccessKeyId,
    ];

    /// The name `LookupEvents` uses (`AttributeKey`), also the catalog's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupKey::EventId => "EventId",
            LookupKey::EventName => "EventName",
            LookupKey::ReadOnly => "ReadOnly",
            LookupKey::Username => "Username",
            LookupKey::ResourceType => "ResourceType",
            LookupKey::ResourceName => "ResourceName",
            LookupKey::EventSource => "EventSource",
            LookupKey::AccessKeyId => "AccessKeyId",
        }
    }

    /// Calls `f` with every value of this attribute one event holds.
    pub fn for_each_value<'a>(self, n: &'a Normalized, mut f: impl FnMut(&'a str)) {
        let one = |v: &'a Option<String>, f: &mut dyn FnMut(&'a str)| {
            if let Some(v) = v {
                f(v)
            }
        };
        match self {
            LookupKey::EventId => one(&n.source_event_id, &mut f),
            LookupKey::EventName => one(&n.action, &mut f),
            LookupKey::Username => one(&n.actor_user_name, &mut f),
            LookupKey::EventSource => one(&n.service, &mut f),
            LookupKey::AccessKeyId => one(&n.actor_access_key_id, &mut f),
            LookupKey::ReadOnly => {
                if let Some(r) = n.read_only {
                    f(if r { "true" } else { "false" })
                }
            }
            LookupKey::ResourceType => n.resources.iter().for_each(|r| one(&r.kind, &mut f)),
            LookupKey::ResourceName => n.resources.iter().for_each(|r| one(&r.id, &mut f)),
        }
    }
}

/// One attribute's filter for one segment.
#[derive(Debug, Clone)]
pub struct LookupFilter(Sbbf);

impl LookupFilter {
    /// False only when no event of the segment holds `value`.
    pub fn may_contain(&self, value: &str) -> bool {
        self.0.check(value)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.0
            .write(&mut out)
            .expect("writing a bloom filter to a Vec cannot fail");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<LookupFilter, SegmentError> {
        Ok(LookupFilter(Sbbf::from_bytes(bytes)?))
    }
}

/// The filters of a segment holding `events`, one per attribute, in [`LookupKey::ALL`] order.
pub fn build<E: std::borrow::Borrow<StoredEvent>>(events: &[E]) -> Vec<(LookupKey, LookupFilter)> {
    LookupKey::ALL
        .into_iter()
        .map(|key| {
            // foldhash: these sets take every event's values at seal time, where SipHash
            // was 2% of an import's CPU; its seed is still random per process.
            let mut values: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
            for n in events
                .iter()
                .filter_map(|e| e.borrow().normalized.as_deref())
            {
                key.for_each_value(n, |v| {
                    values.insert(v);
                });
            }
            let mut sbbf = Sbbf::new_with_ndv_fpp(values.len() as u64, LOOKUP_FILTER_FPP)
                .expect("the false-positive rate is a valid constant");
            for v in values {
                sbbf.insert(v);
            }
            (key, LookupFilter(sbbf))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailvault_model::Resource;

    fn event(seq: u64, n: Normalized) -> StoredEvent {
        StoredEvent {
            seq,
            group: "g".into(),
            stream: "s".into(),
            timestamp_ms: 0,
            ingestion_time_ms: 0,
            message: "m".into(),
            normalized: Some(Box::new(n)),
        }
    }

    #[test]
    fn filters_hold_every_value_and_reject_others() {
        let mut a = Normalized {
            source: "cloudtrail".into(),
            action: Some("StopLogging".into()),
            source_event_id: Some("id-1".into()),
            read_only: Some(false),
            ..Normalized::default()
        };
        a.resources = vec![Resource {
            id: Some("arn:aws:cloudtrail:us-east-1:1:trail/t".into()),
            kind: Some("AWS::CloudTrail::Trail".into()),
            owner_account: None,
        }];
        let b = Normalized {
            source: "cloudtrail".into(),
            actor_user_name: Some("alice".into()),
            actor_access_key_id: Some("AKIA1".into()),
            service: Some("cloudtrail.amazonaws.com".into()),
            ..Normalized::default()
        };
        let filters: Vec<(LookupKey, LookupFilter)> = build(&[event(1, a), event(2, b)])
            .into_iter()
            .map(|(k, f)| (k, LookupFilter::decode(&f.encode()).unwrap()))
            .collect();
        let get = |k: LookupKey| &filters.iter().find(|(x, _)| *x == k).unwrap().1;
        for (k, present) in [
            (LookupKey::EventId, "id-1"),
            (LookupKey::EventName, "StopLogging"),
            (LookupKey::ReadOnly, "false"),
            (LookupKey::Username, "alice"),
            (LookupKey::AccessKeyId, "AKIA1"),
            (LookupKey::EventSource, "cloudtrail.amazonaws.com"),
            (LookupKey::ResourceType, "AWS::CloudTrail::Trail"),
            (
                LookupKey::ResourceName,
                "arn:aws:cloudtrail:us-east-1:1:trail/t",
            ),
        ] {
            assert!(get(k).may_contain(present), "{k:?} {present}");
        }
        // Empty filters reject everything; a 0.01 % rate makes a false hit here a bug.
        assert!(!get(LookupKey::ReadOnly).may_contain("true"));
        assert!(!get(LookupKey::EventId).may_contain("id-2"));
        assert!(!get(LookupKey::Username).may_contain("bob"));
        let none = build::<StoredEvent>(&[]);
        assert!(none.iter().all(|(_, f)| !f.may_contain("")));
        assert!(LookupFilter::decode(b"not a filter").is_err());
    }
}
