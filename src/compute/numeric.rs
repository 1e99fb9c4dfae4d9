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

/// The running state of [`accurate_sum`]: four interleaved compensated (TwoSum)
/// accumulators, the i-th item in lane i mod 4, combined by [`AccurateSum::total`] in a
/// fixed order. Feeding the items in pieces (one by one, or slice by slice) gives
/// exactly the bits of `accurate_sum` over all of them: `accurate_sum` is written with it,
/// so a fused pass that sums as it goes cannot drift from it.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccurateSum {
    s: [f64; LANES],
    c: [f64; LANES],
    /// Items so far: the next one goes to lane `n % 4`.
    n: usize,
}

impl AccurateSum {
    /// An empty sum (0).
    pub fn new() -> Self {
        AccurateSum::default()
    }

    #[inline(always)]
    fn add_to_lane(&mut self, lane: usize, x: f64) {
        let (t, e) = two_sum(self.s[lane], x);
        self.s[lane] = t;
        self.c[lane] += e;
    }

    /// Adds the next item.
    #[inline]
    pub fn add(&mut self, x: f64) {
        self.add_to_lane(self.n % LANES, x);
        self.n += 1;
    }

    /// Adds the next four items: one per lane when the count so far is a multiple of 4
    /// (the fast case: no lane to look up), else one by one.
    #[inline(always)]
    pub fn add4(&mut self, x: [f64; LANES]) {
        if self.n % LANES == 0 {
            for (lane, x) in x.into_iter().enumerate() {
                self.add_to_lane(lane, x);
            }
            self.n += LANES;
        } else {
            for x in x {
                self.add(x);
            }
        }
    }

    /// Adds `f(a[i], b[i])` for every i in order, exactly as [`Self::add`] would one by
    /// one (item n to lane n mod 4), with the four lanes held in registers through the
    /// aligned middle: the hot loop of a fused pass that only needs the sum.
    #[inline(always)]
    pub fn add_zip(&mut self, a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) {
        let len = a.len().min(b.len());
        let head = ((LANES - self.n % LANES) % LANES).min(len);
        for i in 0..head {
            self.add(f(a[i], b[i]));
        }
        let (a, b) = (&a[head..len], &b[head..len]);
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        let (mut s, mut c) = (self.s, self.c);
        for (ga, gb) in ac.zip(bc) {
            for lane in 0..LANES {
                let (t, e) = two_sum(s[lane], f(ga[lane], gb[lane]));
                s[lane] = t;
                c[lane] += e;
            }
        }
        (self.s, self.c) = (s, c);
        self.n += a.len() - ar.len();
        for (&x, &y) in ar.iter().zip(br) {
            self.add(f(x, y));
        }
    }

    /// Whether the sum so far is a finite number. A non-finite item makes it NaN or
    /// infinite for good (TwoSum of ±∞ gives a NaN error term), as does an overflow.
    pub fn is_finite(&self) -> bool {
        self.total().is_finite()
    }

    /// Adds the items of `xs` in order (four lanes at a time once the count is aligned).
    #[inline]
    pub fn add_slice(&mut self, xs: &[f64]) {
        let head = ((LANES - self.n % LANES) % LANES).min(xs.len());
        let (head, rest) = xs.split_at(head);
        for &x in head {
            self.add(x);
        }
        let mut groups = rest.chunks_exact(LANES);
        for g in &mut groups {
            for (lane, &x) in g.iter().enumerate() {
                self.add_to_lane(lane, x);
            }
        }
        self.n += rest.len() - groups.remainder().len();
        // aligned here (head saw to it, or `rest` is empty): lanes 0, 1, 2 in turn
        for (lane, &x) in groups.remainder().iter().enumerate() {
            self.add_to_lane(lane, x);
        }
        self.n += groups.remainder().len();
    }

    /// The sum of every item added so far: the lanes combined in order, then their
    /// compensations.
    pub fn total(&self) -> f64 {
        let mut total = 0.0;
        let mut comp = 0.0;
        for lane in 0..LANES {
            let (t, e) = two_sum(total, self.s[lane]);
            total = t;
            comp += e + self.c[lane];
        }
        total + comp
    }
}

/// Accurate, deterministic sum: four interleaved compensated (TwoSum) accumulators,
/// element i in lane i mod 4, lanes then combined in a fixed order ([`AccurateSum`]).
/// The order depends only on the length, never on threads or machine; the error is a
/// few ulp of the correctly rounded sum even for 10⁶ terms.
pub fn accurate_sum(xs: &[f64]) -> f64 {
    let mut acc = AccurateSum::new();
    acc.add_slice(xs);
    acc.total()
}

/// [`accurate_sum`] over an iterator (same lane assignment: the i-th item in lane i mod 4).
pub fn accurate_sum_iter(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut acc = AccurateSum::new();
    let mut it = xs.into_iter();
    'outer: loop {
        for lane in 0..LANES {
            let Some(x) = it.next() else { break 'outer };
            acc.add_to_lane(lane, x);
            acc.n += 1;
        }
    }
    acc.total()
}

/// Whether `x` is finite, as x − x == 0 (NaN for ±∞ and NaN): two float operations that
/// vectorise, where `f64::is_finite` becomes 64-bit integer compares that SSE2 lacks.
#[inline(always)]
#[allow(clippy::eq_op)] // x − x is the point: 0 exactly when x is finite
pub fn finite(x: f64) -> bool {
    x - x == 0.0
}

/// The least and greatest of `xs`, or `None` when some x is ±∞ or NaN; (+∞, −∞) when
/// empty. One branch-free pass for validating long arrays: per lane of four a running
/// min and max (a NaN changes neither) and Σ (x − x), 0 unless some x is not finite.
/// Float min/max/add only, so the loop vectorises.
#[allow(clippy::eq_op)] // x − x: see `finite`
pub fn finite_range(xs: &[f64]) -> Option<(f64, f64)> {
    let (mut lo, mut hi, mut probe) = (
        [f64::INFINITY; LANES],
        [f64::NEG_INFINITY; LANES],
        [0.0f64; LANES],
    );
    let groups = xs.chunks_exact(LANES);
    let rest = groups.remainder();
    for g in groups {
        for k in 0..LANES {
            let x = g[k];
            lo[k] = if x < lo[k] { x } else { lo[k] };
            hi[k] = if x > hi[k] { x } else { hi[k] };
            probe[k] += x - x;
        }
    }
    for (k, &x) in rest.iter().enumerate() {
        lo[k] = if x < lo[k] { x } else { lo[k] };
        hi[k] = if x > hi[k] { x } else { hi[k] };
        probe[k] += x - x;
    }
    if probe.iter().any(|&p| p != 0.0) {
        return None;
    }
    let lo = lo
        .into_iter()
        .fold(f64::INFINITY, |m, x| if x < m { x } else { m });
    let hi = hi
        .into_iter()
        .fold(f64::NEG_INFINITY, |m, x| if x > m { x } else { m });
    Some((lo, hi))
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

    /// `accurate_sum_iter` as it was before [`AccurateSum`], verbatim.
    fn reference_sum(xs: impl IntoIterator<Item = f64>) -> f64 {
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

    #[test]
    fn an_accurate_sum_fed_in_any_pieces_gives_the_bits_of_the_original() {
        // items over many magnitudes, with pairs ±L that cancel exactly: the compensation
        // then carries the small items, added with plain rounding, so the bits depend on
        // which lane each item lands in and in what order
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut differs_from_a_rotation = 0;
        for round in 0..2000 {
            let n = (next() % if round % 4 == 0 { 300 } else { 23 }) as usize;
            let mut xs: Vec<f64> = (0..n)
                .map(|_| {
                    let m = (next() >> 11) as f64 / (1u64 << 53) as f64;
                    let e = (next() % 40) as i32 - 20;
                    let sign = if next() % 2 == 0 { 1.0 } else { -1.0 };
                    sign * m * 2f64.powi(e)
                })
                .collect();
            for i in (0..n.saturating_sub(3)).step_by(7) {
                let big = 2f64.powi(60 + (next() % 20) as i32);
                xs[i] = big;
                xs[i + 3] = -big;
            }
            let want = reference_sum(xs.iter().copied());
            assert_eq!(accurate_sum(&xs).to_bits(), want.to_bits());
            assert_eq!(
                accurate_sum_iter(xs.iter().copied()).to_bits(),
                want.to_bits()
            );
            // random pieces, each fed by add, add4, add_slice or add_zip (as a − b)
            let mut acc = AccurateSum::new();
            let mut rest = &xs[..];
            while !rest.is_empty() {
                let take = ((next() % 9) as usize).min(rest.len());
                let (piece, tail) = rest.split_at(take);
                match next() % 4 {
                    0 => piece.iter().for_each(|&x| acc.add(x)),
                    1 if piece.len() == 4 => acc.add4([piece[0], piece[1], piece[2], piece[3]]),
                    2 => {
                        let zeros = vec![0.0; piece.len()];
                        acc.add_zip(piece, &zeros, |a, b| a - b);
                    }
                    _ => acc.add_slice(piece),
                }
                rest = tail;
            }
            assert_eq!(acc.total().to_bits(), want.to_bits(), "{xs:?}");
            assert_eq!(acc.is_finite(), want.is_finite());
            if n > 1 {
                let rotated = reference_sum(xs[1..].iter().chain(&xs[..1]).copied());
                differs_from_a_rotation += usize::from(rotated.to_bits() != want.to_bits());
            }
        }
        // the data is order-sensitive, so a lane or order slip would have been seen
        assert!(differs_from_a_rotation > 100, "{differs_from_a_rotation}");
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
