//! Many patterns over one event stream with a single literal scan per event.
//!
//! Every pattern's prefilter needles go into one Aho-Corasick automaton; one overlapping scan
//! of an event tells which patterns can possibly match, and only those are evaluated (for JSON
//! patterns, that is the only time the event is parsed). Patterns without needles are always
//! evaluated. The extra needle `\u` routes events with JSON unicode escapes to every JSON
//! pattern, keeping the prefilter a necessary condition.
//!
//! The scan is a leftmost-longest, non-overlapping DFA search (fast, SIMD-prefiltered) that
//! restarts one byte after each match start. That finds, for every position where some needle
//! starts, the longest needle starting there; the needles it hides are contained in it, so
//! each needle admits the owners of every needle it contains.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};

use super::{Body, Extracted, FilterPattern};

/// A compiled group of patterns, e.g. a log group's metric filters or a rule pack.
pub struct PatternSet {
    patterns: Vec<FilterPattern>,
    automaton: Option<AhoCorasick>,
    /// For each needle of the automaton, the patterns it admits.
    owners: Vec<Vec<usize>>,
    /// Patterns with no prefilter.
    always: Vec<usize>,
    /// JSON patterns prefiltered by `"key": value` pairs.
    keyed: Option<KeyIndex>,
}

/// One scan for a few quoted keys (SIMD Teddy), then a look at each key's value.
struct KeyIndex {
    /// One SIMD substring finder per quoted key, then the `\\u` sentinel.
    finders: Vec<memchr::memmem::Finder<'static>>,
    /// Per automaton pattern; the last one is the `\u` escape sentinel.
    keys: Vec<KeyEntry>,
    /// Every pattern prefiltered here (admitted when the event has a `\u` escape).
    owners: Vec<usize>,
}

#[derive(Default)]
struct KeyEntry {
    exact: std::collections::HashMap<String, Vec<usize>>,
    partial: Vec<(super::Wild, Vec<usize>)>,
    owners: Vec<usize>,
}

fn push_owner(v: &mut Vec<usize>, o: usize) {
    if !v.contains(&o) {
        v.push(o);
    }
}

impl KeyIndex {
    fn build(list: Vec<(usize, Vec<super::json::KeyedNeedle>)>) -> Option<KeyIndex> {
        if list.is_empty() {
            return None;
        }
        let mut names: Vec<String> = Vec::new();
        let mut keys: Vec<KeyEntry> = Vec::new();
        let mut owners = Vec::new();
        for (owner, needles) in list {
            push_owner(&mut owners, owner);
            for n in needles {
                let at = match names.iter().position(|k| *k == n.key) {
                    Some(at) => at,
                    None => {
                        names.push(n.key.clone());
                        keys.push(KeyEntry::default());
                        names.len() - 1
                    }
                };
                let e = &mut keys[at];
                push_owner(&mut e.owners, owner);
                if !n.value.prefix && !n.value.suffix {
                    push_owner(e.exact.entry(n.value.text.clone()).or_default(), owner);
                } else {
                    e.partial.push((n.value, vec![owner]));
                }
            }
        }
        let mut needles: Vec<String> = names.iter().map(|k| format!("\"{k}\"")).collect();
        needles.push("\\u".to_string());
        keys.push(KeyEntry::default());
        let finders = needles
            .iter()
            .map(|n| memchr::memmem::Finder::new(n.as_bytes()).into_owned())
            .collect();
        Some(KeyIndex {
            finders,
            keys,
            owners,
        })
    }

    fn mark(&self, message: &str, cand: &mut [bool]) {
        let hay = message.as_bytes();
        let sentinel = self.keys.len() - 1;
        if self.finders[sentinel].find(hay).is_some() {
            for &o in &self.owners {
                cand[o] = true;
            }
            return;
        }
        for (id, finder) in self.finders[..sentinel].iter().enumerate() {
            for start in finder.find_iter(hay) {
                let entry = &self.keys[id];
                let mut i = start + finder.needle().len();
                while i < hay.len() && hay[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i >= hay.len() || hay[i] != b':' {
                    continue;
                }
                i += 1;
                while i < hay.len() && hay[i].is_ascii_whitespace() {
                    i += 1;
                }
                let value = if i < hay.len() && hay[i] == b'"' {
                    let end = memchr::memchr(b'"', &hay[i + 1..]).map_or(hay.len(), |e| i + 1 + e);
                    let raw = &message[i + 1..end];
                    if raw.contains('\\') {
                        // An escaped value may decode to anything: admit every owner of the key.
                        for &o in &entry.owners {
                            cand[o] = true;
                        }
                        continue;
                    }
                    raw
                } else {
                    let end = hay[i..]
                        .iter()
                        .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                        .map_or(hay.len(), |e| i + e);
                    &message[i..end]
                };
                if let Some(os) = entry.exact.get(value) {
                    for &o in os {
                        cand[o] = true;
                    }
                }
                for (w, os) in &entry.partial {
                    if w.is_match(value) {
                        for &o in os {
                            cand[o] = true;
                        }
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for PatternSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternSet")
            .field("patterns", &self.patterns)
            .finish()
    }
}

impl PatternSet {
    pub fn new(patterns: Vec<FilterPattern>) -> PatternSet {
        let mut needles: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut add = |needle: &str, owner: usize, needles: &mut Vec<String>| match needles
            .iter()
            .position(|n| n == needle)
        {
            Some(at) => {
                if !owners[at].contains(&owner) {
                    owners[at].push(owner);
                }
            }
            None => {
                needles.push(needle.to_string());
                owners.push(vec![owner]);
            }
        };
        let mut keyed_list = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if let Body::Json(j) = &p.inner.body {
                if let Some(k) = j.keyed_needles() {
                    keyed_list.push((i, k));
                    continue;
                }
            }
            match p.prefilter_needles() {
                None => always.push(i),
                Some(list) => {
                    for n in list {
                        add(n, i, &mut needles);
                    }
                    if matches!(p.inner.body, Body::Json(_)) {
                        add("\\u", i, &mut needles);
                    }
                }
            }
        }
        // A found needle implies every needle it contains.
        let mut owners: Vec<Vec<usize>> = needles
            .iter()
            .map(|outer| {
                let mut set: Vec<usize> = Vec::new();
                for (j, inner) in needles.iter().enumerate() {
                    if outer.contains(inner.as_str()) {
                        for &o in &owners[j] {
                            if !set.contains(&o) {
                                set.push(o);
                            }
                        }
                    }
                }
                set
            })
            .collect();
        let automaton = if needles.is_empty() {
            None
        } else {
            // Building from at most a few thousand short needles cannot fail; if it somehow
            // did, evaluating every pattern is still correct, only slower.
            let built = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&needles)
                .or_else(|_| {
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&needles)
                });
            match built {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "pattern set prefilter unavailable");
                    always = (0..patterns.len()).collect();
                    owners.clear();
                    None
                }
            }
        };
        let keyed = KeyIndex::build(keyed_list.clone());
        if keyed.is_none() {
            // Only if the tiny key automaton could not be built: evaluate those patterns.
            always.extend(keyed_list.iter().map(|(i, _)| *i));
        }
        PatternSet {
            patterns,
            automaton,
            owners,
            always,
            keyed,
        }
    }

    pub fn patterns(&self) -> &[FilterPattern] {
        &self.patterns
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Candidate flags without a heap allocation for up to 64 patterns.
    fn scratch<'a>(&self, small: &'a mut [bool; 64], large: &'a mut Vec<bool>) -> &'a mut [bool] {
        let n = self.patterns.len();
        if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, false);
            large
        }
    }

    /// Marks the patterns that may match `message` (a necessary condition).
    fn candidates(&self, message: &str, cand: &mut [bool]) {
        for &i in &self.always {
            cand[i] = true;
        }
        if let Some(ac) = &self.automaton {
            let hay = message.as_bytes();
            let mut at = 0;
            while at < hay.len() {
                let Some(m) = ac.find(Input::new(hay).range(at..)) else {
                    break;
                };
                for &owner in &self.owners[m.pattern().as_usize()] {
                    cand[owner] = true;
                }
                at = m.start() + 1;
            }
        }
        if let Some(k) = &self.keyed {
            k.mark(message, cand);
        }
    }

    /// Appends to `out` the indices (ascending) of the patterns that match `message`.
    pub fn matching(&self, message: &str, out: &mut Vec<usize>) {
        let mut small = [false; 64];
        let mut large = Vec::new();
        let cand = self.scratch(&mut small, &mut large);
        self.candidates(message, cand);
        for (i, c) in cand.iter().enumerate() {
            if *c && self.patterns[i].matches_unfiltered(message) {
                out.push(i);
            }
        }
    }

    /// Like [`PatternSet::matching`], with the extracted values of each match.
    pub fn extract_matching(&self, message: &str, out: &mut Vec<(usize, Extracted)>) {
        let mut small = [false; 64];
        let mut large = Vec::new();
        let cand = self.scratch(&mut small, &mut large);
        self.candidates(message, cand);
        for (i, c) in cand.iter().enumerate() {
            if *c {
                if let Some(e) = self.patterns[i].extract_unfiltered(message) {
                    out.push((i, e));
                }
            }
        }
    }
}
