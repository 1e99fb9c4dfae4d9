//! Scores (API.md, `POST /grade`): an item earns its `points` when every check passes,
//! else 0; with `partial`, points × the mean over its checks of the fraction passed
//! (an array: the elements within tolerance, 0 on a shape mismatch; a trace: the rows
//! before the divergence over the rows claimed; an equality: 0 or 1).

use super::compare::Check;
use crate::compute::numeric::accurate_sum;

/// The score of an item with these checks.
pub fn item_score(points: f64, partial: bool, checks: &[Check]) -> f64 {
    if checks.iter().all(|c| c.passed) {
        return points;
    }
    if !partial || checks.is_empty() {
        return 0.0;
    }
    let fractions: Vec<f64> = checks.iter().map(|c| c.fraction).collect();
    points * (accurate_sum(&fractions) / checks.len() as f64)
}

/// The total of item scores (one fixed summation order); points near the top of the
/// f64 range add up to the largest f64, never to Infinity.
pub fn total(scores: &[f64]) -> f64 {
    let t = accurate_sum(scores);
    if t.is_finite() { t } else { f64::MAX }
}
