//! Field discovery in JSON messages, flattened with dots as Insights does: nested objects
//! join keys with `.` (`userIdentity.type`), arrays use the index (`resources.0.ARN`).
//!
//! Invariant: a message is parsed at most once per query, and only the paths the query names
//! are materialised; everything else is skipped without allocating. JSON `null` is absent.

use crate::value::Value;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The flattened paths a query reads, and every proper prefix of them (to know where to descend).
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonPaths {
    /// Path -> slot in the extracted array.
    full: HashMap<String, usize>,
    prefixes: HashSet<String>,
    pub(crate) len: usize,
}

impl JsonPaths {
    pub(crate) fn new<'a>(paths: impl IntoIterator<Item = (&'a str, usize)>) -> JsonPaths {
        let mut out = JsonPaths::default();
        for (path, slot) in paths {
            out.full.insert(path.to_string(), slot);
            out.len = out.len.max(slot + 1);
            for (i, c) in path.char_indices() {
                if c == '.' && i > 0 {
                    out.prefixes.insert(path[..i].to_string());
                }
            }
        }
        out
    }

    /// Extracts the wanted paths from `message`; `None` when it is not a JSON object.
    pub(crate) fn extract(&self, message: &str) -> Option<Vec<Value>> {
        if !message.trim_start().starts_with('{') {
            return None;
        }
        let mut out = vec![Value::Null; self.len];
        let mut path = String::new();
        let mut de = serde_json::Deserializer::from_str(message);
        Walk {
            paths: self,
            path: &mut path,
            out: &mut out,
            capture: None,
        }
        .deserialize(&mut de)
        .ok()?;
        Some(out)
    }
}

struct Walk<'a> {
    paths: &'a JsonPaths,
    path: &'a mut String,
    out: &'a mut [Value],
    /// Slot to store a scalar in, when the current path is wanted.
    capture: Option<usize>,
}

impl Walk<'_> {
    fn store(&mut self, v: Value) {
        if let Some(slot) = self.capture {
            if let Some(s) = self.out.get_mut(slot) {
                *s = v;
            }
        }
    }

    fn child<'b>(&'b mut self) -> Option<Walk<'b>> {
        let capture = self.paths.full.get(self.path.as_str()).copied();
        let descend = self.paths.prefixes.contains(self.path.as_str());
        if capture.is_none() && !descend {
            return None;
        }
        Some(Walk {
            paths: self.paths,
            path: self.path,
            out: self.out,
            capture,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

struct KeySeed<'a> {
    path: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.path.push_str(v);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        self.store(Value::str(v));
        Ok(())
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.store(Value::Num(v as f64));
        Ok(())
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.store(Value::Num(v as f64));
        Ok(())
    }
    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        self.store(Value::Num(v));
        Ok(())
    }
    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.store(Value::str(if v { "true" } else { "false" }));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let base = self.path.len();
        loop {
            if base > 0 {
                self.path.push('.');
            }
            if map
                .next_key_seed(KeySeed {
                    path: &mut *self.path,
                })?
                .is_none()
            {
                self.path.truncate(base);
                return Ok(());
            }
            let mut me = Walk {
                paths: self.paths,
                path: &mut *self.path,
                out: &mut *self.out,
                capture: None,
            };
            match me.child() {
                Some(child) => map.next_value_seed(child)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            self.path.truncate(base);
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let base = self.path.len();
        let mut i = 0usize;
        loop {
            if base > 0 {
                self.path.push('.');
            }
            use fmt::Write;
            let _ = write!(self.path, "{i}");
            let mut me = Walk {
                paths: self.paths,
                path: &mut *self.path,
                out: &mut *self.out,
                capture: None,
            };
            let more = match me.child() {
                Some(child) => seq.next_element_seed(child)?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| ()),
            };
            self.path.truncate(base);
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// Every field Insights would discover in `message`, flattened (keys sorted at each level), with the
/// values as they would be displayed. Empty for messages that are not JSON objects.
pub fn discover_fields(message: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !message.trim_start().starts_with('{') {
        return out;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(message) {
        flatten(&v, &mut String::new(), &mut out);
    }
    out
}

fn flatten(v: &serde_json::Value, path: &mut String, out: &mut Vec<(String, String)>) {
    let base = path.len();
    let push_seg = |path: &mut String, seg: &str| {
        if base > 0 {
            path.push('.');
        }
        path.push_str(seg);
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                push_seg(path, k);
                flatten(child, path, out);
                path.truncate(base);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                push_seg(path, &i.to_string());
                flatten(child, path, out);
                path.truncate(base);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((path.clone(), s.clone())),
        serde_json::Value::Bool(b) => out.push((path.clone(), b.to_string())),
        serde_json::Value::Number(n) => {
            let text = match n.as_f64() {
                Some(f) if n.is_f64() => crate::value::format_num(f),
                _ => n.to_string(),
            };
            out.push((path.clone(), text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = r#"{"eventName":"RunInstances","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","sessionContext":{"mfa":true}},"resources":[{"ARN":"r0"},{"ARN":"r1","tags":["x","y"]}],"n":3,"f":2.5,"z":null,"esc":"a\"b"}"#;

    #[test]
    fn extracts_only_wanted_paths() {
        let paths = JsonPaths::new([
            ("eventName", 0),
            ("userIdentity.type", 1),
            ("resources.1.ARN", 2),
            ("resources.1.tags.1", 3),
            ("n", 4),
            ("z", 5),
            ("missing.deep", 6),
            ("esc", 7),
            ("userIdentity.sessionContext.mfa", 8),
            ("f", 9),
        ]);
        let v = paths.extract(MSG).unwrap();
        assert_eq!(v[0], Value::str("RunInstances"));
        assert_eq!(v[1], Value::str("IAMUser"));
        assert_eq!(v[2], Value::str("r1"));
        assert_eq!(v[3], Value::str("y"));
        assert_eq!(v[4], Value::Num(3.0));
        assert_eq!(v[5], Value::Null);
        assert_eq!(v[6], Value::Null);
        assert_eq!(v[7], Value::str("a\"b"));
        assert_eq!(v[8], Value::str("true"));
        assert_eq!(v[9], Value::Num(2.5));
    }

    #[test]
    fn non_json_and_broken_json_yield_nothing() {
        let paths = JsonPaths::new([("a", 0)]);
        assert!(paths.extract("2 123 eni-1 10.0.0.1").is_none());
        assert!(paths.extract("{\"a\": 1").is_none());
        assert!(paths.extract("[1,2]").is_none());
        let deep = format!("{}{}", "{\"a\":".repeat(1000), "1");
        assert!(paths.extract(&deep).is_none());
    }

    #[test]
    fn discovery_flattens_everything() {
        let f = discover_fields(MSG);
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"resources.1.tags.0"));
        assert!(names.contains(&"userIdentity.sessionContext.mfa"));
        assert!(!names.contains(&"z"));
        assert!(f.contains(&("f".to_string(), "2.5".to_string())));
    }
}
