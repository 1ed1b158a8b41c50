//! simple-shuffle weights, computed once per group at config load, as LiteLLM takes
//! them: if any deployment of the group sets `weight`, weights are `weight` (absent:
//! 0); else if any sets `rpm`, weights are `rpm` (absent: 0); else `tpm` likewise;
//! else all deployments are equally likely. All-zero weights also mean equal odds.

use crate::config::DeploymentConfig;

/// The weight of each deployment, in the order given.
pub fn weights(deps: &[&DeploymentConfig]) -> Vec<f64> {
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
    let w: Vec<f64> = match source {
        Some(f) => deps.iter().map(|d| f(d).unwrap_or(0.0).max(0.0)).collect(),
        None => vec![1.0; deps.len()],
    };
    if w.iter().sum::<f64>() > 0.0 {
        w
    } else {
        vec![1.0; deps.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::tests_support::dep;

    #[test]
    fn weight_source_follows_litellm_precedence() {
        let mk = |w: Option<f64>, rpm: Option<u64>, tpm: Option<u64>| {
            let mut d = dep();
            (d.weight, d.rpm, d.tpm) = (w, rpm, tpm);
            d
        };
        // `weight` set on one: the other gets weight 0.
        let (a, b) = (mk(Some(3.0), Some(1), None), mk(None, Some(100), None));
        assert_eq!(weights(&[&a, &b]), vec![3.0, 0.0]);
        let (a, b) = (mk(None, Some(1), None), mk(None, None, Some(5)));
        assert_eq!(weights(&[&a, &b]), vec![1.0, 0.0]);
        let (a, b) = (mk(None, None, Some(7)), mk(None, None, None));
        assert_eq!(weights(&[&a, &b]), vec![7.0, 0.0]);
        let (a, b) = (mk(None, None, None), mk(None, None, None));
        assert_eq!(weights(&[&a, &b]), vec![1.0, 1.0]);
        let (a, b) = (mk(Some(0.0), None, None), mk(Some(0.0), None, None));
        assert_eq!(weights(&[&a, &b]), vec![1.0, 1.0]);
    }
}
