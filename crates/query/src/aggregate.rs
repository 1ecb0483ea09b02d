//! Aggregate states for `stats`. Each state is updated row by row in constant memory, except
//! `pct` and `count_distinct`, which hold values and are charged against a shared budget.

use crate::ast::{AggCall, AggFunc};
use crate::error::QueryError;
use crate::value::{GroupKey, SortKey, Value};
use std::collections::HashSet;

/// Counts the values held by `pct` and `count_distinct` across all groups of one stats command.
pub(crate) struct HeldValues {
    pub held: usize,
    pub max: usize,
}

impl HeldValues {
    fn charge(&mut self) -> Result<(), QueryError> {
        self.held += 1;
        if self.held > self.max {
            return Err(QueryError::MemoryLimit(format!(
                "more than {} values held by pct/count_distinct",
                self.max
            )));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) enum AggState {
    Count(u64),
    Distinct(HashSet<GroupKey>),
    Sum {
        sum: f64,
        n: u64,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    /// min/max keep the original value (a timestamp stays a timestamp).
    Extreme(Option<(f64, Value)>),
    Stddev {
        n: u64,
        mean: f64,
        m2: f64,
    },
    Pct(Vec<f64>),
    /// earliest/latest: the value at the earliest/latest `@timestamp`.
    AtTime(Option<(i64, Value)>),
    /// sortsFirst/sortsLast: any value, in sort order.
    Sorted(Option<(SortKey, Value)>),
}

impl AggState {
    pub(crate) fn new(call: &AggCall) -> AggState {
        match call.func {
            AggFunc::Count | AggFunc::CountStar => AggState::Count(0),
            AggFunc::CountDistinct => AggState::Distinct(HashSet::new()),
            AggFunc::Sum => AggState::Sum { sum: 0.0, n: 0 },
            AggFunc::Avg => AggState::Avg { sum: 0.0, n: 0 },
            AggFunc::Max | AggFunc::Min => AggState::Extreme(None),
            AggFunc::Stddev => AggState::Stddev {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggFunc::Pct => AggState::Pct(Vec::new()),
            AggFunc::Earliest | AggFunc::Latest => AggState::AtTime(None),
            AggFunc::SortsFirst | AggFunc::SortsLast => AggState::Sorted(None),
        }
    }

    /// Folds one row in: `v` is the evaluated argument (null for `count(*)`), `ts` the row's
    /// `@timestamp`.
    pub(crate) fn update(
        &mut self,
        func: AggFunc,
        v: Value,
        ts: Option<i64>,
        held: &mut HeldValues,
    ) -> Result<(), QueryError> {
        match self {
            AggState::Count(n) => {
                if func == AggFunc::CountStar || !v.is_null() {
                    *n += 1;
                }
            }
            AggState::Distinct(set) => {
                if !v.is_null() && set.insert(GroupKey::of(&v)) {
                    held.charge()?;
                }
            }
            AggState::Sum { sum, n } | AggState::Avg { sum, n } => {
                if let Some(x) = v.to_num().filter(|x| x.is_finite()) {
                    *sum += x;
                    *n += 1;
                }
            }
            AggState::Extreme(cur) => {
                if let Some(x) = v.to_num().filter(|x| !x.is_nan()) {
                    let better = match cur {
                        None => true,
                        Some((best, _)) => {
                            if func == AggFunc::Max {
                                x > *best
                            } else {
                                x < *best
                            }
                        }
                    };
                    if better {
                        *cur = Some((x, v));
                    }
                }
            }
            AggState::Stddev { n, mean, m2 } => {
                if let Some(x) = v.to_num().filter(|x| x.is_finite()) {
                    // Welford's online update: stable without holding the values.
                    *n += 1;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            AggState::Pct(vals) => {
                if let Some(x) = v.to_num().filter(|x| x.is_finite()) {
                    held.charge()?;
                    vals.push(x);
                }
            }
            AggState::AtTime(cur) => {
                if let (false, Some(t)) = (v.is_null(), ts) {
                    let better = match cur {
                        None => true,
                        // Ties: earliest keeps the first seen, latest takes the last seen.
                        Some((best, _)) => {
                            if func == AggFunc::Earliest {
                                t < *best
                            } else {
                                t >= *best
                            }
                        }
                    };
                    if better {
                        *cur = Some((t, v));
                    }
                }
            }
            AggState::Sorted(cur) => {
                if !v.is_null() {
                    let k = SortKey::of(&v);
                    let better = match cur {
                        None => true,
                        Some((best, _)) => {
                            if func == AggFunc::SortsFirst {
                                k < *best
                            } else {
                                k > *best
                            }
                        }
                    };
                    if better {
                        *cur = Some((k, v));
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self, call: &AggCall) -> Value {
        match self {
            AggState::Count(n) => Value::Num(n as f64),
            AggState::Distinct(set) => Value::Num(set.len() as f64),
            AggState::Sum { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Value::Num(sum)
                }
            }
            AggState::Avg { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Value::Num(sum / n as f64)
                }
            }
            AggState::Extreme(cur) => cur.map_or(Value::Null, |(_, v)| v),
            AggState::Stddev { n, m2, .. } => match n {
                0 => Value::Null,
                1 => Value::Num(0.0),
                // Sample standard deviation (n - 1).
                _ => Value::Num((m2 / (n - 1) as f64).sqrt()),
            },
            AggState::Pct(mut vals) => {
                if vals.is_empty() {
                    return Value::Null;
                }
                vals.sort_by(f64::total_cmp);
                // Nearest rank: the smallest value with at least p% of values at or below it.
                let rank = (call.percentile / 100.0 * vals.len() as f64).ceil() as usize;
                let idx = rank.clamp(1, vals.len()) - 1;
                Value::Num(vals[idx])
            }
            AggState::AtTime(cur) => cur.map_or(Value::Null, |(_, v)| v),
            AggState::Sorted(cur) => cur.map_or(Value::Null, |(_, v)| v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(func: AggFunc, pct: f64, vals: &[Value]) -> Value {
        let call = AggCall {
            func,
            arg: None,
            percentile: pct,
        };
        let mut st = AggState::new(&call);
        let mut held = HeldValues { held: 0, max: 100 };
        for (i, v) in vals.iter().enumerate() {
            st.update(func, v.clone(), Some(i as i64 % 3), &mut held)
                .unwrap();
        }
        st.finish(&call)
    }

    #[test]
    fn aggregates_by_hand() {
        let nums: Vec<Value> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|x| Value::Num(*x))
            .collect();
        assert_eq!(run(AggFunc::Sum, 0.0, &nums), Value::Num(40.0));
        assert_eq!(run(AggFunc::Avg, 0.0, &nums), Value::Num(5.0));
        // Sample stddev of this classic set: sqrt(32/7).
        let Value::Num(sd) = run(AggFunc::Stddev, 0.0, &nums) else {
            panic!()
        };
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(run(AggFunc::Pct, 50.0, &nums), Value::Num(4.0));
        assert_eq!(run(AggFunc::Pct, 100.0, &nums), Value::Num(9.0));
        assert_eq!(run(AggFunc::Pct, 0.0, &nums), Value::Num(2.0));
        assert_eq!(run(AggFunc::CountDistinct, 0.0, &nums), Value::Num(5.0));
        assert_eq!(run(AggFunc::Max, 0.0, &nums), Value::Num(9.0));
        let words = [
            Value::str("b"),
            Value::str("a"),
            Value::Null,
            Value::str("c"),
        ];
        assert_eq!(run(AggFunc::SortsFirst, 0.0, &words), Value::str("a"));
        assert_eq!(run(AggFunc::SortsLast, 0.0, &words), Value::str("c"));
        assert_eq!(run(AggFunc::Count, 0.0, &words), Value::Num(3.0));
        assert_eq!(run(AggFunc::Min, 0.0, &words), Value::Null);
        // timestamps 0,1,2,0: earliest is the first at t=0, latest the one at t=2
        assert_eq!(run(AggFunc::Earliest, 0.0, &words), Value::str("b"));
        // (null values are skipped, so the one at t=2 does not count)
        assert_eq!(run(AggFunc::Latest, 0.0, &words), Value::str("a"));
    }

    #[test]
    fn held_values_are_bounded() {
        let call = AggCall {
            func: AggFunc::CountDistinct,
            arg: None,
            percentile: 0.0,
        };
        let mut st = AggState::new(&call);
        let mut held = HeldValues { held: 0, max: 3 };
        for i in 0..3 {
            st.update(call.func, Value::Num(i as f64), None, &mut held)
                .unwrap();
        }
        // Repeats cost nothing; a fourth distinct value is over the limit.
        st.update(call.func, Value::Num(0.0), None, &mut held)
            .unwrap();
        let e = st.update(call.func, Value::Num(9.0), None, &mut held);
        assert!(matches!(e, Err(QueryError::MemoryLimit(_))));
    }
}
