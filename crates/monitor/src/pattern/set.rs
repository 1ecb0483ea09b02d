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
        for (i, p) in patterns.iter().enumerate() {
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
        PatternSet {
            patterns,
            automaton,
            owners,
            always,
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

    /// Marks the patterns that may match `message` (a necessary condition).
    fn candidates(&self, message: &str, cand: &mut Vec<bool>) {
        cand.clear();
        cand.resize(self.patterns.len(), false);
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
    }

    /// Appends to `out` the indices (ascending) of the patterns that match `message`.
    pub fn matching(&self, message: &str, out: &mut Vec<usize>) {
        let mut cand = Vec::new();
        self.candidates(message, &mut cand);
        for (i, c) in cand.iter().enumerate() {
            if *c && self.patterns[i].matches_unfiltered(message) {
                out.push(i);
            }
        }
    }

    /// Like [`PatternSet::matching`], with the extracted values of each match.
    pub fn extract_matching(&self, message: &str, out: &mut Vec<(usize, Extracted)>) {
        let mut cand = Vec::new();
        self.candidates(message, &mut cand);
        for (i, c) in cand.iter().enumerate() {
            if *c {
                if let Some(e) = self.patterns[i].extract_unfiltered(message) {
                    out.push((i, e));
                }
            }
        }
    }
}
