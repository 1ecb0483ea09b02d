//! JSON patterns: selectors, and a lazy, borrowing reader that materialises only the fields a
//! pattern names.
//!
//! The reader walks the event with serde_json and a trie of the pattern's selectors; every
//! subtree no selector reaches is skipped with `IgnoredAny` (no allocation), and strings without
//! escapes are borrowed from the event. Invalid JSON never matches.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{apply_test, Expr, Extracted, Scalar, Test, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

pub(super) struct Builder {
    selectors: Vec<Vec<Seg>>,
}

impl Builder {
    /// Registers a selector and returns its id; equal selectors share one id.
    pub(super) fn selector(&mut self, segs: Vec<Seg>, _source: String) -> usize {
        if let Some(i) = self.selectors.iter().position(|s| *s == segs) {
            return i;
        }
        self.selectors.push(segs);
        self.selectors.len() - 1
    }

    pub(super) fn finish(self, expr: Expr) -> JsonPattern {
        let mut trie = Node::default();
        let mut names = Vec::with_capacity(self.selectors.len());
        for (id, segs) in self.selectors.iter().enumerate() {
            let mut node = &mut trie;
            let mut name = String::from("$");
            for seg in segs {
                node = match seg {
                    Seg::Key(k) => {
                        name.push('.');
                        name.push_str(k);
                        let at = match node.keys.iter().position(|(n, _)| n == k) {
                            Some(at) => at,
                            None => {
                                node.keys.push((k.clone(), Node::default()));
                                node.keys.len() - 1
                            }
                        };
                        &mut node.keys[at].1
                    }
                    Seg::Index(i) => {
                        name.push_str(&format!("[{i}]"));
                        let at = match node.indices.iter().position(|(n, _)| n == i) {
                            Some(at) => at,
                            None => {
                                node.indices.push((*i, Node::default()));
                                node.indices.len() - 1
                            }
                        };
                        &mut node.indices[at].1
                    }
                };
            }
            node.id = Some(id);
            names.push(name);
        }
        let last_keys = self
            .selectors
            .iter()
            .map(|segs| match segs.last() {
                Some(Seg::Key(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        JsonPattern {
            expr,
            names,
            trie,
            last_keys,
        }
    }
}

#[derive(Default, Debug)]
struct Node {
    id: Option<usize>,
    keys: Vec<(String, Node)>,
    indices: Vec<(usize, Node)>,
}

pub(super) struct JsonPattern {
    expr: Expr,
    /// Canonical selector text (`$.a.b[0]`), indexed by selector id.
    names: Vec<String>,
    trie: Node,
    /// The last key of each selector (`None` when it ends in an index).
    last_keys: Vec<Option<String>>,
}

/// A necessary condition on the raw event: some `"key": value` pair (any depth) whose value
/// text matches `value`.
#[derive(Debug, Clone)]
pub(super) struct KeyedNeedle {
    pub(super) key: String,
    pub(super) value: super::Wild,
}

/// What the reader found at a selector.
#[derive(Debug, Clone)]
enum Slot<'de> {
    Missing,
    Null,
    Bool(bool),
    Number(f64, String),
    Text(Cow<'de, str>),
    Composite,
}

impl Slot<'_> {
    fn scalar(&self) -> Scalar<'_> {
        match self {
            Slot::Missing => Scalar::Missing,
            Slot::Null => Scalar::Null,
            Slot::Bool(b) => Scalar::Bool(*b),
            Slot::Number(n, t) => Scalar::Number(*n, t),
            Slot::Text(t) => Scalar::Text(t),
            Slot::Composite => Scalar::Composite,
        }
    }
}

impl JsonPattern {
    pub(super) fn builder() -> Builder {
        Builder {
            selectors: Vec::new(),
        }
    }

    pub(super) fn selector_names(&self) -> &[String] {
        &self.names
    }

    fn read<'m>(&self, message: &'m str) -> Option<Vec<Slot<'m>>> {
        // Only objects and arrays can hold a selected field; skip everything else unparsed.
        let first = message.bytes().find(|b| !b.is_ascii_whitespace())?;
        if first != b'{' && first != b'[' {
            return None;
        }
        let mut slots = vec![Slot::Missing; self.names.len()];
        let mut de = serde_json::Deserializer::from_str(message);
        NodeSeed {
            node: &self.trie,
            slots: &mut slots,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some(slots)
    }

    pub(super) fn matches(&self, message: &str) -> bool {
        let Some(slots) = self.read(message) else {
            return false;
        };
        self.expr
            .eval(&mut |field, test| apply_test(test, slots[field].scalar(), false))
    }

    pub(super) fn extract(&self, message: &str) -> Option<Extracted> {
        let slots = self.read(message)?;
        if !self
            .expr
            .eval(&mut |field, test| apply_test(test, slots[field].scalar(), false))
        {
            return None;
        }
        let mut values = Vec::new();
        for (name, slot) in self.names.iter().zip(&slots) {
            let text = match slot {
                Slot::Text(t) => t.to_string(),
                Slot::Number(_, t) => t.clone(),
                Slot::Bool(b) => b.to_string(),
                Slot::Null => "null".to_string(),
                Slot::Missing | Slot::Composite => continue,
            };
            values.push((name.clone(), text));
        }
        Some(Extracted {
            values,
            positional: Vec::new(),
        })
    }

    /// Necessary `"key": value` conditions as one any-of set, or `None`.
    pub(super) fn keyed_needles(&self) -> Option<Vec<KeyedNeedle>> {
        let clauses = self.keyed(&self.expr)?;
        clauses
            .into_iter()
            .max_by_key(|c| c.iter().map(|k| k.value.text.len()).min().unwrap_or(0))
    }

    fn keyed(&self, expr: &Expr) -> Option<Vec<Vec<KeyedNeedle>>> {
        let best = |clauses: Vec<Vec<KeyedNeedle>>| {
            clauses
                .into_iter()
                .max_by_key(|c| c.iter().map(|k| k.value.text.len()).min().unwrap_or(0))
        };
        match expr {
            Expr::Test {
                field,
                test: Test::Eq(Value::Literal { wild, number }),
            } => {
                let key = self.last_keys.get(*field)?.clone()?;
                let numeric_looking = wild
                    .text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
                if wild.text.is_empty() || numeric_looking || number.is_some() {
                    return None;
                }
                Some(vec![vec![KeyedNeedle {
                    key,
                    value: wild.clone(),
                }]])
            }
            Expr::Test { .. } => None,
            Expr::And(items) => {
                let clauses: Vec<Vec<KeyedNeedle>> = items
                    .iter()
                    .filter_map(|i| self.keyed(i))
                    .flatten()
                    .collect();
                (!clauses.is_empty()).then_some(clauses)
            }
            Expr::Or(items) => {
                let mut union = Vec::new();
                for item in items {
                    union.extend(best(self.keyed(item)?)?);
                }
                Some(vec![union])
            }
        }
    }

    /// Necessary literals (see the module invariants), as one any-of set.
    pub(super) fn needles(&self) -> Option<Vec<String>> {
        let clauses = necessary(&self.expr)?;
        let mut best = best_clause(clauses)?;
        best.sort();
        best.dedup();
        Some(best)
    }
}

/// CNF of necessary literal conditions: every clause must have one needle present.
fn necessary(expr: &Expr) -> Option<Vec<Vec<String>>> {
    match expr {
        Expr::Test {
            test: Test::Eq(Value::Literal { wild, number }),
            ..
        } => {
            let text = &wild.text;
            let numeric_looking = text
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            let unsafe_char = text
                .chars()
                .any(|c| c == '"' || c == '\\' || c == '/' || c.is_control());
            if text.is_empty() || numeric_looking || unsafe_char || number.is_some() {
                None
            } else {
                Some(vec![vec![text.clone()]])
            }
        }
        Expr::Test { .. } => None,
        Expr::And(items) => {
            let clauses: Vec<Vec<String>> = items.iter().filter_map(necessary).flatten().collect();
            (!clauses.is_empty()).then_some(clauses)
        }
        Expr::Or(items) => {
            let mut union = Vec::new();
            for item in items {
                union.extend(best_clause(necessary(item)?)?);
            }
            Some(vec![union])
        }
    }
}

/// The clause whose shortest needle is longest: short needles match too often to help.
fn best_clause(clauses: Vec<Vec<String>>) -> Option<Vec<String>> {
    clauses
        .into_iter()
        .max_by_key(|c| c.iter().map(String::len).min().unwrap_or(0))
}

struct NodeSeed<'a, 'de> {
    node: &'a Node,
    slots: &'a mut Vec<Slot<'de>>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> NodeSeed<'_, 'de> {
    fn set(&mut self, slot: Slot<'de>) {
        if let Some(id) = self.node.id {
            self.slots[id] = slot;
        }
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.set(Slot::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        if self.node.id.is_some() {
            self.set(Slot::Number(v as f64, v.to_string()));
        }
        Ok(())
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        if self.node.id.is_some() {
            self.set(Slot::Number(v as f64, v.to_string()));
        }
        Ok(())
    }
    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        if self.node.id.is_some() {
            self.set(Slot::Number(v, v.to_string()));
        }
        Ok(())
    }
    fn visit_borrowed_str<E>(mut self, v: &'de str) -> Result<(), E> {
        self.set(Slot::Text(Cow::Borrowed(v)));
        Ok(())
    }
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        if self.node.id.is_some() {
            self.set(Slot::Text(Cow::Owned(v.to_string())));
        }
        Ok(())
    }
    fn visit_string<E>(mut self, v: String) -> Result<(), E> {
        self.set(Slot::Text(Cow::Owned(v)));
        Ok(())
    }
    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.set(Slot::Null);
        Ok(())
    }
    fn visit_none<E>(mut self) -> Result<(), E> {
        self.set(Slot::Null);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.set(Slot::Composite);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.node.keys.iter().find(|(k, _)| *k == *key) {
                Some((_, child)) => map.next_value_seed(NodeSeed {
                    node: child,
                    slots: &mut *self.slots,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.set(Slot::Composite);
        let mut index = 0usize;
        loop {
            let child = self.node.indices.iter().find(|(i, _)| *i == index);
            let more = match child {
                Some((_, child)) => seq
                    .next_element_seed(NodeSeed {
                        node: child,
                        slots: &mut *self.slots,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// Reads an object key, borrowing it when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}
