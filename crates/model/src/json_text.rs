//! A JSON value kept as its compact text.

use std::io::Write;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON value held as the compact text serde_json renders for it (object members sorted by
/// name): the form a segment stores, so a parser that writes it directly allocates once per
/// record instead of once per member and name. Always one valid JSON value.
///
/// Serializes as the value itself (not as a string), so a record's `parsed` reads the same
/// in the write-ahead log, snapshots and API output as when it was a [`Value`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

/// A member of an object built by [`JsonText::object`].
#[derive(Debug, Clone, Copy)]
pub enum Member<'a> {
    Str(&'a str),
    Int(i64),
    Null,
    Strs(&'a [&'a str]),
}

impl JsonText {
    pub fn from_value(value: &Value) -> JsonText {
        JsonText(value.to_string())
    }

    /// `text` if it is exactly one JSON value.
    pub fn parse(text: String) -> Result<JsonText, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        Ok(JsonText(text))
    }

    /// The object of `members`, rendered as [`JsonText::from_value`] renders the same object:
    /// members sorted by name, a repeated name keeping its last value. Sorts `members`.
    pub fn object(members: &mut [(&str, Member<'_>)]) -> JsonText {
        // Stable: among equal names the last one given stays last, and is the one kept.
        members.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = start_object(members.len());
        for (i, (name, member)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *name) {
                continue;
            }
            separate(&mut out);
            write_str(&mut out, name);
            out.push(b':');
            write_member(&mut out, *member);
        }
        end_object(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("JsonText holds one valid JSON value")
    }
}

/// How to render objects that always have the same member names, such as the fields of a
/// line format: the names sorted and escaped once, so rendering a record writes its values
/// only. Renders exactly what [`JsonText::object`] renders for the same members.
#[derive(Debug, Clone)]
pub struct ObjectLayout {
    /// Output order: runs of equal names (in the order given, the extra member last), each
    /// entry the index of its value (`usize::MAX` for the extra member) and its `"name":`.
    entries: Vec<(usize, Vec<u8>)>,
    /// `entries[runs[k]..runs[k + 1]]` share one name.
    runs: Vec<usize>,
    names: usize,
}

impl ObjectLayout {
    pub fn new(names: &[&str]) -> ObjectLayout {
        ObjectLayout::build(names, None)
    }

    /// With the values past `names`, when there are any, as an array of strings under
    /// `extra_name` (set after the named fields, so it wins over a field of that name).
    pub fn with_extra(names: &[&str], extra_name: &str) -> ObjectLayout {
        ObjectLayout::build(names, Some(extra_name))
    }

    fn build(names: &[&str], extra_name: Option<&str>) -> ObjectLayout {
        let mut order: Vec<(&str, usize)> = names.iter().copied().zip(0..).collect();
        order.extend(extra_name.map(|n| (n, usize::MAX)));
        order.sort_by(|a, b| a.0.cmp(b.0));
        let mut runs = Vec::new();
        let mut entries = Vec::with_capacity(order.len());
        for (i, (name, index)) in order.iter().enumerate() {
            if i == 0 || order[i - 1].0 != *name {
                runs.push(i);
            }
            let mut key = Vec::with_capacity(name.len() + 3);
            write_str(&mut key, name);
            key.push(b':');
            entries.push((*index, key));
        }
        runs.push(entries.len());
        ObjectLayout {
            entries,
            runs,
            names: names.len(),
        }
    }

    /// How many named members the layout has.
    pub fn name_count(&self) -> usize {
        self.names
    }

    /// The object of the first `len` names, name `i` holding `value(i)` (`None`: null), and
    /// `extra` under the extra member if the layout has one and `extra` is not empty.
    pub fn render<'a>(
        &self,
        len: usize,
        value: impl Fn(usize) -> Option<&'a str>,
        extra: &[&str],
    ) -> JsonText {
        let present = |index: usize| match index {
            usize::MAX => !extra.is_empty(),
            i => i < len && i < self.names,
        };
        let mut out = start_object(self.entries.len());
        for run in self.runs.windows(2) {
            // A repeated name keeps its last value present.
            let Some((index, key)) = self.entries[run[0]..run[1]]
                .iter()
                .rev()
                .find(|(index, _)| present(*index))
            else {
                continue;
            };
            separate(&mut out);
            out.extend_from_slice(key);
            let member = match *index {
                usize::MAX => Member::Strs(extra),
                i => value(i).map_or(Member::Null, Member::Str),
            };
            write_member(&mut out, member);
        }
        end_object(out)
    }
}

/// An object's opening brace, in a buffer sized for `members` typical members.
fn start_object(members: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + members * 24);
    out.push(b'{');
    out
}

/// The comma before every member but the first.
fn separate(out: &mut Vec<u8>) {
    if out.len() > 1 {
        out.push(b',');
    }
}

fn write_member(out: &mut Vec<u8>, member: Member<'_>) {
    match member {
        Member::Str(s) => write_str(out, s),
        Member::Int(n) => write!(out, "{n}").expect("writing to a Vec cannot fail"),
        Member::Null => out.extend_from_slice(b"null"),
        Member::Strs(list) => write_strs(out, list),
    }
}

fn end_object(mut out: Vec<u8>) -> JsonText {
    out.push(b'}');
    JsonText(String::from_utf8(out).expect("JSON rendered from str is UTF-8"))
}

fn write_strs(out: &mut Vec<u8>, list: &[&str]) {
    out.push(b'[');
    for (j, s) in list.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        write_str(out, s);
    }
    out.push(b']');
}

/// A JSON string literal, escaped exactly as serde_json escapes it everywhere else.
fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JsonText, D::Error> {
        Value::deserialize(deserializer).map(|v| JsonText::from_value(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_renders_as_serde_json_renders_the_same_map() {
        let extra = ["x\"1", "y\n"];
        let mut members = [
            ("b", Member::Str("tab\there")),
            ("a", Member::Null),
            ("é", Member::Str("ü\u{1}")),
            ("extra", Member::Strs(&extra)),
            ("b", Member::Str("last wins")),
            ("A", Member::Str("\\")),
            ("n", Member::Int(-42)),
        ];
        let built = JsonText::object(&mut members);
        let value = json!({
            "b": "last wins", "a": null, "é": "ü\u{1}", "extra": ["x\"1", "y\n"], "A": "\\",
            "n": -42,
        });
        assert_eq!(built, JsonText::from_value(&value));
        assert_eq!(built.to_value(), value);
        assert_eq!(JsonText::object(&mut []).as_str(), "{}");
    }

    #[test]
    fn parse_takes_one_value_only() {
        assert!(JsonText::parse(r#"{"a":1}"#.into()).is_ok());
        assert!(JsonText::parse(r#"{"a":1} x"#.into()).is_err());
        assert!(JsonText::parse(r#"{"a":"#.into()).is_err());
    }

    #[test]
    fn serializes_as_the_value_not_a_string() {
        let t = JsonText::from_value(&json!({"k": [1, "v"]}));
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"k":[1,"v"]}"#);
        let back: JsonText = serde_json::from_str(r#"{ "k" : [1, "v"] }"#).unwrap();
        assert_eq!(back, t);
    }

    /// What a record's `parsed` was before: a map filled field by field, then `extra`.
    fn inserted(names: &[&str], values: &[Option<&str>], extra: &[&str]) -> JsonText {
        let mut map = serde_json::Map::new();
        for (name, value) in names.iter().zip(values) {
            map.insert((*name).to_owned(), value.map_or(Value::Null, |v| json!(v)));
        }
        if !extra.is_empty() {
            map.insert("extra".to_owned(), json!(extra));
        }
        JsonText::from_value(&Value::Object(map))
    }

    #[test]
    fn layout_renders_as_the_map_filled_field_by_field() {
        let names = ["b", "a", "extra", "c\"q", "a", "é"];
        let values = [
            Some("1"),
            None,
            Some("x"),
            Some("tab\t"),
            Some("2"),
            Some("ü"),
        ];
        let layout = ObjectLayout::with_extra(&names, "extra");
        let plain = ObjectLayout::new(&names);
        assert_eq!(layout.name_count(), 6);
        for len in 0..=values.len() {
            for extra in [&[][..], &["e1", "e\"2"][..]] {
                let got = layout.render(len, |i| values[i], extra);
                assert_eq!(
                    got,
                    inserted(&names[..len], &values[..len], extra),
                    "{len} {extra:?}"
                );
                let got = plain.render(len, |i| values[i], extra);
                assert_eq!(got, inserted(&names[..len], &values[..len], &[]), "{len}");
            }
        }
        assert_eq!(
            ObjectLayout::new(&[]).render(0, |_| None, &[]).as_str(),
            "{}"
        );
    }
}
