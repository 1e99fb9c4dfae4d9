//! Numerical stability written once: softplus, log-sigmoid, sigmoid, log-sum-exp,
//! the clamped log, the gradient floor, and the accurate summation every reduction uses.

/// Every log of a probability is `max(ln a, −100)` (torch's BCELoss clamp), so
/// `a = 0` gives a finite, torch-equal value.
pub const LOG_FLOOR: f64 = -100.0;

/// Gradient denominators are floored at 1e−12 (torch's BCELoss backward).
pub const GRAD_FLOOR: f64 = 1e-12;

/// `max(ln a, −100)` and whether the clamp acted.
#[inline]
pub fn clamped_ln(a: f64) -> (f64, bool) {
    let l = a.ln();
    if l < LOG_FLOOR {
        (LOG_FLOOR, true)
    } else {
        (l, false)
    }
}

/// `max(ln(1 − a), −100)` via `ln_1p(−a)` (accurate for small a) and whether the clamp acted.
#[inline]
pub fn clamped_ln_1m(a: f64) -> (f64, bool) {
    let l = (-a).ln_1p();
    if l < LOG_FLOOR {
        (LOG_FLOOR, true)
    } else {
        (l, false)
    }
}

/// softplus(x) = ln(1 + eˣ) without overflow: x + ln1p(e⁻ˣ) for x > 0, so softplus(800) = 800.
#[inline]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// ln σ(x) = −softplus(−x): finite for every finite x (ln σ(−800) = −800).
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// σ(x) = 1 / (1 + e⁻ˣ), written so that neither branch overflows.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln Σ eˣⁱ over a row, shifted by the row's max so no exponential overflows.
/// An empty row gives −∞.
pub fn log_sum_exp(row: &[f64]) -> f64 {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let s = accurate_sum_iter(row.iter().map(|&x| (x - max).exp()));
    max + s.ln()
}

/// ln cosh x to a few ulp for every finite x. For |x| ≥ 1, |x| + ln1p(e^{−2|x|}) − ln 2
/// never overflows; below 1 that form cancels (at x = 1e−5 it keeps ~7 digits of x²/2), so
/// cosh x − 1 = 2·sinh²(x/2) gives ln cosh x = ln1p(2·sinh²(x/2)) with no cancellation.
#[inline]
pub fn log_cosh(x: f64) -> f64 {
    let ax = x.abs();
    if ax < 1.0 {
        let s = (0.5 * x).sinh();
        (2.0 * (s * s)).ln_1p()
    } else {
        ax + (-2.0 * ax).exp().ln_1p() - std::f64::consts::LN_2
    }
}

/// Error-free sum of two floats: `s + e == a + b` exactly (Knuth's TwoSum).
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

const LANES: usize = 4;

/// Accurate, deterministic sum: four interleaved compensated (TwoSum) accumulators,
/// element i in lane i mod 4, lanes then combined in a fixed order. The order depends
/// only on the length, never on threads or machine; the error is a few ulp of the
/// correctly rounded sum even for 10⁶ terms.
pub fn accurate_sum(xs: &[f64]) -> f64 {
    accurate_sum_iter(xs.iter().copied())
}

/// [`accurate_sum`] over an iterator (same lane assignment: the i-th item in lane i mod 4).
pub fn accurate_sum_iter(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut s = [0.0f64; LANES];
    let mut c = [0.0f64; LANES];
    let mut it = xs.into_iter();
    'outer: loop {
        for lane in 0..LANES {
            let Some(x) = it.next() else { break 'outer };
            let (t, e) = two_sum(s[lane], x);
            s[lane] = t;
            c[lane] += e;
        }
    }
    let mut total = 0.0;
    let mut comp = 0.0;
    for lane in 0..LANES {
        let (t, e) = two_sum(total, s[lane]);
        total = t;
        comp += e + c[lane];
    }
    total + comp
}

/// Accurate dot product Σ xᵢ·yᵢ (products rounded once, then [`accurate_sum_iter`]).
pub fn accurate_dot(x: &[f64], y: &[f64]) -> f64 {
    accurate_sum_iter(x.iter().zip(y).map(|(a, b)| a * b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_is_exact_at_800_and_minus_800() {
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(log_sigmoid(-800.0), -800.0);
        assert!(softplus(-800.0) >= 0.0 && softplus(-800.0) < 1e-300);
        assert_eq!(softplus(0.0), std::f64::consts::LN_2);
    }

    #[test]
    fn sigmoid_never_overflows() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
    }

    #[test]
    fn log_sum_exp_is_shift_stable() {
        let v = log_sum_exp(&[1000.0, 1000.0]);
        assert!((v - (1000.0 + std::f64::consts::LN_2)).abs() < 1e-12);
    }

    #[test]
    fn clamped_log_floors_at_minus_100() {
        assert_eq!(clamped_ln(0.0), (-100.0, true));
        assert_eq!(clamped_ln_1m(1.0), (-100.0, true));
        assert_eq!(clamped_ln(1.0), (0.0, false));
    }

    #[test]
    fn compensated_sum_recovers_what_naive_loses() {
        let xs = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(accurate_sum(&xs), 2.0);
        let xs: Vec<f64> = (0..10).map(|_| 0.1).collect();
        assert_eq!(accurate_sum(&xs), 1.0);
    }

    #[test]
    fn sum_of_a_million_terms_is_within_an_ulp_of_the_exact_sum() {
        // Terms i/2^20 for i < 10^6 are exact binary fractions: the exact sum is
        // n(n-1)/2 / 2^20, which itself is exact in f64.
        let n = 1_000_000u64;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 / 1_048_576.0 * 1.1).collect();
        // reference with exact integer arithmetic on the scaled terms (each term is
        // i*1.1 rounded; sum them as exact rationals through i128 of their bits)
        let exact: f64 = {
            // each term t = m * 2^e exactly; accumulate in units of 2^-80 (i128 holds 10^6 terms below 2^81)
            let mut acc: i128 = 0;
            for &t in &xs {
                acc += (t * 2f64.powi(80)) as i128; // every term is a multiple of 2^-80, so this is exact
            }
            acc as f64 / 2f64.powi(80)
        };
        let got = accurate_sum(&xs);
        let ulp = f64::EPSILON * exact;
        assert!((got - exact).abs() <= ulp, "got {got}, exact {exact}");
    }
}
