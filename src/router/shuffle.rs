//! `simple-shuffle`: weighted random choice, weights as LiteLLM takes them.
//!
//! If any deployment of the group sets `weight`, weights are `weight` (absent: 0);
//! else if any sets `rpm`, weights are `rpm` (absent: 0); else `tpm` likewise;
//! else all deployments are equally likely. All-zero weights also mean equal odds.

use crate::config::DeploymentConfig;

/// Cumulative weights of a group's members, for an O(log n) pick.
#[derive(Debug, Default, Clone)]
pub struct Shuffle {
    /// Weight of each member, in member order.
    weights: Vec<f64>,
    /// Running sums of `weights`.
    cumulative: Vec<f64>,
}

impl Shuffle {
    /// The table for deployments in member order.
    pub fn new(deps: &[&DeploymentConfig]) -> Shuffle {
        let source: Option<fn(&DeploymentConfig) -> Option<f64>> =
            if deps.iter().any(|d| d.weight.is_some()) {
                Some(|d| d.weight)
            } else if deps.iter().any(|d| d.rpm.is_some()) {
                Some(|d| d.rpm.map(|v| v as f64))
            } else if deps.iter().any(|d| d.tpm.is_some()) {
                Some(|d| d.tpm.map(|v| v as f64))
            } else {
                None
            };
        let weights: Vec<f64> = match source {
            Some(f) => deps.iter().map(|d| f(d).unwrap_or(0.0).max(0.0)).collect(),
            None => vec![1.0; deps.len()],
        };
        // All-zero weights mean equal odds, like no weights at all.
        let weights = if weights.iter().sum::<f64>() > 0.0 {
            weights
        } else {
            vec![1.0; deps.len()]
        };
        let cumulative = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        Shuffle {
            weights,
            cumulative,
        }
    }

    /// A member slot, with probability proportional to its weight.
    pub fn pick(&self) -> Option<usize> {
        let n = self.weights.len();
        if n <= 1 {
            return n.checked_sub(1);
        }
        let total = self.cumulative[n - 1];
        let x = fastrand::f64() * total;
        // First slot whose running sum passes x; zero-weight slots are never chosen.
        Some(self.cumulative.partition_point(|&c| c <= x).min(n - 1))
    }

    /// Like `pick`, among slots not marked in `excluded`; None if all are (or only
    /// zero-weight slots remain while others have weight).
    pub fn pick_excluding(&self, excluded: &[bool]) -> Option<usize> {
        let weight = |i: usize| self.weights[i];
        let total: f64 = (0..self.weights.len())
            .filter(|&i| !excluded[i])
            .map(weight)
            .sum();
        if total <= 0.0 {
            return None;
        }
        let mut x = fastrand::f64() * total;
        let mut last = None;
        for i in (0..self.weights.len()).filter(|&i| !excluded[i] && weight(i) > 0.0) {
            last = Some(i);
            x -= weight(i);
            if x < 0.0 {
                return Some(i);
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_source_follows_litellm_precedence() {
        let mk = |w: Option<f64>, rpm: Option<u64>| {
            let mut d = crate::router::tests_support::dep();
            d.weight = w;
            d.rpm = rpm;
            d
        };
        let (a, b) = (mk(Some(3.0), Some(1)), mk(None, Some(100)));
        let s = Shuffle::new(&[&a, &b]);
        // `weight` is set on one: the other gets weight 0 and is never picked.
        for _ in 0..1000 {
            assert_eq!(s.pick(), Some(0));
        }
        let (a, b) = (mk(None, Some(1)), mk(None, None));
        let s = Shuffle::new(&[&a, &b]);
        assert_eq!(s.weights, vec![1.0, 0.0]);
        let (a, b) = (mk(None, None), mk(None, None));
        let s = Shuffle::new(&[&a, &b]);
        assert_eq!(s.weights, vec![1.0, 1.0]);
    }

    #[test]
    fn excluding_moves_to_another_slot() {
        let (a, b) = (
            crate::router::tests_support::dep(),
            crate::router::tests_support::dep(),
        );
        let s = Shuffle::new(&[&a, &b]);
        for _ in 0..100 {
            assert_eq!(s.pick_excluding(&[true, false]), Some(1));
        }
        assert_eq!(s.pick_excluding(&[true, true]), None);
    }
}
