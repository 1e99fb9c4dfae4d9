//! Properties every loss kind must have, over random valid inputs (proptest):
//! - the analytic gradient matches central differences (inputs built away from kinks,
//!   clamps and domain edges);
//! - `sum` = count × `mean` without weights, and `none`'s terms add up to `sum`;
//! - unit weights change nothing;
//! - `mean` and `sum` do not depend on the order of the rows;
//! - loss and gradient are finite on random valid input, including extreme values.
//!
//! Plus one accurate-sum check against an exact big-integer reference.

use losslab::compute::{
    Array, LossKind, LossResult, LossSpec, LossValue, Params, Per, Reduction, Values,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

// ---------------------------------------------------------------------------------
// Random inputs: raw uniforms, mapped to a valid domain per kind.

/// Raw random material for one case: shape and uniforms in [0, 1).
#[derive(Clone, Debug)]
struct Raw {
    m: usize,
    k: usize,
    flat: bool,
    /// Three uniforms per element (prediction, target, spare).
    u: Vec<f64>,
    /// One raw weight per element (only the first rows / elements are used).
    w: Vec<f64>,
    /// Seed of the row permutation.
    perm: u64,
}

fn raw() -> impl Strategy<Value = Raw> {
    (1usize..=4, 1usize..=5, any::<bool>()).prop_flat_map(|(m, k, flat)| {
        (
            prop::collection::vec(0.0f64..1.0, 3 * m * k),
            prop::collection::vec(0.0f64..1.0, m * k),
            any::<u64>(),
        )
            .prop_map(move |(u, w, perm)| Raw {
                m,
                k,
                flat,
                u,
                w,
                perm,
            })
    })
}

/// One kind with its params and `from_logits`.
#[derive(Clone, Debug)]
struct Variant {
    kind: LossKind,
    from_logits: bool,
}

fn variants() -> Vec<Variant> {
    let mut v: Vec<Variant> = LossKind::ALL
        .into_iter()
        .map(|kind| Variant {
            kind,
            from_logits: false,
        })
        .collect();
    // and the logits form of every kind that has one
    v.extend(
        LossKind::ALL
            .into_iter()
            .filter(|k| k.info().from_logits)
            .map(|kind| Variant {
                kind,
                from_logits: true,
            }),
    );
    v
}

/// A case: predictions, targets and the shape rules that go with the kind.
#[derive(Clone, Debug)]
struct Case {
    a: Array,
    y: Array,
    /// Targets are class indices, one per row.
    indices: bool,
}

fn lerp(u: f64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * u
}

fn is_per_row(kind: LossKind) -> bool {
    kind.per() == Per::Row
}

/// Rows (m × k, or one row of m·k for a flat input) of positive entries normalised to
/// sum to 1; entries stay in about (0.05/k, 0.95).
fn distribution(raw: &Raw, offset: usize, rows: usize, cols: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let row: Vec<f64> = (0..cols)
            .map(|c| lerp(raw.u[3 * (r * cols + c) + offset], 0.05, 0.95))
            .collect();
        let s: f64 = row.iter().sum();
        out.extend(row.iter().map(|x| x / s));
    }
    out
}

/// Inputs for `v` from `raw`, in the kind's domain as its registry entry declares it
/// (`KindInfo::domain`; with `from_logits`, predictions are logits): `wide = false`
/// keeps away from kinks, clamps and domain edges (for finite differences); `wide =
/// true` goes to extreme but valid values.
fn build(v: &Variant, raw: &Raw, wide: bool) -> Option<Case> {
    let kind = v.kind;
    let info = kind.info();
    let d = info.domain;
    let (rows, cols) = if raw.flat {
        (1, raw.m * raw.k)
    } else {
        (raw.m, raw.k)
    };
    let n = rows * cols;
    let rows_of_distributions =
        d.predictions == Values::DistributionRows || d.targets == Values::DistributionRows;
    if rows_of_distributions && cols < 2 {
        return None; // a distribution over one class is degenerate
    }
    let u = |i: usize, j: usize| raw.u[3 * i + j];
    let sign = |x: f64| if x < 0.5 { -1.0 } else { 1.0 };
    let big = if wide { 1e3 } else { 3.0 };
    // a residual magnitude away from 0 and from the huber / smooth_l1 boundary 1
    let residual = |x: f64| {
        if x < 0.5 {
            lerp(2.0 * x, 0.05, 0.9)
        } else {
            lerp(2.0 * x - 1.0, 1.1, big)
        }
    };
    // a prediction of the kind's domain (logits with from_logits)
    let prediction = |i: usize| match d.predictions {
        _ if v.from_logits => {
            let z = if wide { 700.0 } else { 4.0 };
            lerp(u(i, 0), -z, z)
        }
        // exact 0 and 1 make the guards act; the values stay finite
        Values::Probability if wide => match u(i, 2) {
            x if x < 0.1 => 0.0,
            x if x > 0.9 => 1.0,
            _ => u(i, 0),
        },
        Values::Probability => lerp(u(i, 0), 0.05, 0.95),
        Values::LogProbability => lerp(u(i, 0), if wide { -1e3 } else { -3.0 }, -0.01),
        Values::AboveMinusOne => lerp(u(i, 0), if wide { -0.999 } else { -0.9 }, big),
        Values::NonNegative => lerp(u(i, 0), if wide { 0.0 } else { 0.1 }, big),
        // (distribution rows are drawn a row at a time below)
        Values::Real | Values::DistributionRows | Values::SignLabels => lerp(u(i, 0), -big, big),
    };
    let target = |i: usize| match d.targets {
        Values::Probability if u(i, 2) < 0.5 => u(i, 1),
        Values::Probability => (u(i, 1) >= 0.5) as u8 as f64,
        Values::AboveMinusOne => lerp(u(i, 1), if wide { -0.999 } else { -0.9 }, big),
        Values::NonNegative => lerp(u(i, 1), 0.0, big),
        // away from 0 (mape divides by |y|)
        Values::Real | Values::LogProbability | Values::DistributionRows => {
            sign((u(i, 1) * 7.0).fract()) * lerp(u(i, 1), 0.1, big)
        }
        Values::SignLabels => sign(u(i, 1)),
    };
    let (mut a, mut y): (Vec<f64>, Vec<f64>) = match (d.predictions, d.targets) {
        // labels t = ±1 and scores t·(1 − margin), the margin away from the kink
        (_, Values::SignLabels) => (0..n)
            .map(|i| {
                let t = target(i);
                let margin = sign(u(i, 0)) * lerp(u(i, 2), 0.05, if wide { big } else { 2.0 });
                (t * (1.0 - margin), t)
            })
            .unzip(),
        // rows of real vectors: entries away from 0, so no row is near the zero vector
        (Values::Real, Values::Real) if info.per == Per::Row => (0..n)
            .map(|i| {
                let lo = if wide { 0.0 } else { 0.1 };
                (
                    sign(u(i, 2)) * lerp(u(i, 0), lo, big),
                    sign((u(i, 2) * 7.0).fract()) * lerp(u(i, 1), lo, big),
                )
            })
            .unzip(),
        // a residual away from the kinks at 0 and ±1
        (Values::Real, Values::Real) if !v.from_logits => (0..n)
            .map(|i| {
                let y = target(i);
                (y + sign(u(i, 0)) * residual(u(i, 2)), y)
            })
            .unzip(),
        _ => (0..n).map(|i| (prediction(i), target(i))).unzip(),
    };
    if d.predictions == Values::DistributionRows && !v.from_logits {
        a = distribution(raw, 0, rows, cols);
    }
    if d.targets == Values::DistributionRows {
        y = distribution(raw, 1, rows, cols);
    }
    // index targets on some draws (always when predictions are log-probabilities, as
    // nll is mostly used), target rows on others
    let indices =
        info.accepts_indices && (raw.perm % 2 == 0 || d.predictions == Values::LogProbability);
    if indices {
        y = (0..rows)
            .map(|r| ((u(r * cols, 1) * cols as f64) as usize).min(cols - 1) as f64)
            .collect();
    }
    let shape = |data: Vec<f64>| {
        if raw.flat {
            Array::flat(data)
        } else {
            Array::matrix(data, rows, cols).expect("rows × cols")
        }
    };
    let y = if indices { Array::flat(y) } else { shape(y) };
    Some(Case {
        a: shape(a),
        y,
        indices,
    })
}

/// One weight per row (per element for a flat elementwise input), in [0.01, 3.01).
fn weights(kind: LossKind, case: &Case, raw: &Raw) -> Vec<f64> {
    let n = if !case.a.is_matrix() && !is_per_row(kind) {
        case.a.len()
    } else {
        case.a.rows()
    };
    raw.w[..n].iter().map(|w| 0.01 + 3.0 * w).collect()
}

fn spec(v: &Variant) -> LossSpec {
    LossSpec::new(v.kind, &Params::default(), v.from_logits).expect("default params are valid")
}

fn eval(
    v: &Variant,
    c: &Case,
    red: Reduction,
    w: Option<&[f64]>,
    grad: bool,
) -> Result<LossResult, TestCaseError> {
    spec(v)
        .evaluate(&c.a, &c.y, red, w, grad)
        .map_err(|e| TestCaseError::fail(format!("{v:?} {red:?}: rejected valid input: {e}")))
}

/// 32 cases per property, from a fixed seed so CI runs are reproducible;
/// `PROPTEST_RNG_SEED` / `PROPTEST_CASES` in the environment explore further.
fn config() -> ProptestConfig {
    let from_env = ProptestConfig::default();
    let explore = std::env::var_os("PROPTEST_RNG_SEED").is_some();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        from_env.cases
    } else {
        32
    };
    ProptestConfig {
        cases,
        rng_seed: if explore {
            from_env.rng_seed
        } else {
            RngSeed::Fixed(0x1055_1AB5)
        },
        ..from_env
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

// ---------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    #[test]
    fn analytic_gradients_match_central_differences(raw in raw()) {
        for v in variants() {
            let Some(case) = build(&v, &raw, false) else { continue };
            // distribution rows are checked to sum to 1 within 1e-6: keep the step below
            let row_checked =
                v.kind.info().domain.predictions == Values::DistributionRows && !v.from_logits;
            let step = if row_checked { 1e-7 } else { 1e-6 };
            let w = weights(v.kind, &case, &raw);
            for red in Reduction::ALL {
                for weights in [None, Some(w.as_slice())] {
                    let r = eval(&v, &case, red, weights, true)?;
                    let g = r.gradient.expect("gradient asked").into_data();
                    let gmax = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                    for (i, &gi) in g.iter().enumerate() {
                        let x = case.a.data()[i];
                        let h = step * x.abs().max(1.0);
                        let mut plus = case.clone();
                        plus.a.data_mut()[i] = x + h;
                        let mut minus = case.clone();
                        minus.a.data_mut()[i] = x - h;
                        let fp = eval(&v, &plus, red, weights, false)?.loss.total();
                        let fm = eval(&v, &minus, red, weights, false)?.loss.total();
                        let num = (fp - fm) / (2.0 * h);
                        // rounding of f± (a few ulp each) divided by 2h; a floor relative
                        // to the largest gradient element; and an absolute floor for
                        // elements that are 0 up to rounding (a one-column cosine row)
                        let slack = 1e-14 * (fp.abs() + fm.abs()) / h + 1e-9 * gmax + 1e-11;
                        let err = (num - gi).abs();
                        prop_assert!(
                            err <= 1e-5 * num.abs().max(gi.abs()) + slack,
                            "{} (from_logits {}) {:?} weights {}: d/da[{}] numeric {:e} vs analytic {:e}\n{:?}",
                            v.kind.name(), v.from_logits, red, weights.is_some(), i, num, gi, case
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sum_is_count_times_mean_and_none_adds_up_to_sum(raw in raw()) {
        for v in variants() {
            let Some(case) = build(&v, &raw, false) else { continue };
            let mean = eval(&v, &case, Reduction::Mean, None, true)?;
            let sum = eval(&v, &case, Reduction::Sum, None, true)?;
            let none = eval(&v, &case, Reduction::None, None, true)?;
            let n = mean.count as f64;
            prop_assert_eq!(mean.count, sum.count);
            prop_assert_eq!(mean.count, none.count);
            let (m, s) = (mean.loss.total(), sum.loss.total());
            prop_assert!(close(s, n * m, 1e-12), "{}: sum {s:e} vs count × mean {:e}", v.kind.name(), n * m);
            prop_assert!(close(s, none.loss.total(), 1e-12), "{}: sum {s:e} vs Σ none {:e}", v.kind.name(), none.loss.total());
            let gm = mean.gradient.expect("gradient").into_data();
            let gs = sum.gradient.expect("gradient").into_data();
            let gn = none.gradient.expect("gradient").into_data();
            for i in 0..gm.len() {
                prop_assert!(close(gs[i], n * gm[i], 1e-12) || (gs[i] - n * gm[i]).abs() < 1e-300,
                    "{}: sum gradient[{i}] {:e} vs count × mean gradient {:e}", v.kind.name(), gs[i], n * gm[i]);
                prop_assert_eq!(gs[i].to_bits(), gn[i].to_bits(), "{}: none and sum gradients differ at {}", v.kind.name(), i);
            }
        }
    }

    #[test]
    fn unit_weights_change_nothing(raw in raw()) {
        for v in variants() {
            let Some(case) = build(&v, &raw, false) else { continue };
            let ones = vec![1.0; weights(v.kind, &case, &raw).len()];
            for red in Reduction::ALL {
                let plain = eval(&v, &case, red, None, true)?;
                let unit = eval(&v, &case, red, Some(&ones), true)?;
                prop_assert_eq!(plain.count, unit.count);
                match (&plain.loss, &unit.loss) {
                    (LossValue::Scalar(a), LossValue::Scalar(b)) => prop_assert!(close(*a, *b, 1e-15),
                        "{} {:?}: {a:e} vs {b:e} with unit weights", v.kind.name(), red),
                    (LossValue::Terms(a), LossValue::Terms(b)) => {
                        prop_assert_eq!(a.shape(), b.shape());
                        for (x, y) in a.data().iter().zip(b.data()) {
                            prop_assert!(close(*x, *y, 1e-15), "{} none: {x:e} vs {y:e}", v.kind.name());
                        }
                    }
                    (a, b) => prop_assert!(false, "{}: {a:?} vs {b:?}", v.kind.name()),
                }
                let ga = plain.gradient.expect("gradient").into_data();
                let gb = unit.gradient.expect("gradient").into_data();
                for (x, y) in ga.iter().zip(&gb) {
                    prop_assert!(close(*x, *y, 1e-15), "{} {:?} gradient: {x:e} vs {y:e}", v.kind.name(), red);
                }
            }
        }
    }

    #[test]
    fn mean_and_sum_do_not_depend_on_row_order(raw in raw()) {
        for v in variants() {
            let Some(case) = build(&v, &raw, false) else { continue };
            // rows of a matrix; elements of a flat elementwise input; a flat per-row input
            // is a single row
            let (units, width) = if case.a.is_matrix() {
                (case.a.rows(), case.a.cols())
            } else if is_per_row(v.kind) {
                continue;
            } else {
                (case.a.len(), 1)
            };
            let perm = permutation(units, raw.perm);
            let permute = |data: &[f64], w: usize| -> Vec<f64> {
                perm.iter().flat_map(|&p| data[p * w..(p + 1) * w].iter().copied()).collect()
            };
            let mut moved = case.clone();
            moved.a = case.a.with_data(permute(case.a.data(), width)).expect("same shape");
            let y_width = if case.indices { 1 } else { width };
            moved.y = case.y.with_data(permute(case.y.data(), y_width)).expect("same shape");
            let w = weights(v.kind, &case, &raw);
            let w_moved = permute(&w, 1);
            for red in [Reduction::Mean, Reduction::Sum] {
                for (wa, wb) in [(None, None), (Some(w.as_slice()), Some(w_moved.as_slice()))] {
                    let r1 = eval(&v, &case, red, wa, true)?;
                    let r2 = eval(&v, &moved, red, wb, true)?;
                    let (l1, l2) = (r1.loss.total(), r2.loss.total());
                    prop_assert!(close(l1, l2, 1e-12), "{} {:?}: {l1:e} vs {l2:e} after permuting rows {:?}", v.kind.name(), red, perm);
                    let g1 = permute(&r1.gradient.expect("gradient").into_data(), width);
                    let g2 = r2.gradient.expect("gradient").into_data();
                    for (x, y) in g1.iter().zip(&g2) {
                        prop_assert!(close(*x, *y, 1e-12), "{} {:?} gradient: {x:e} vs {y:e}", v.kind.name(), red);
                    }
                }
            }
        }
    }

    #[test]
    fn loss_and_gradient_are_finite_on_valid_extreme_input(raw in raw()) {
        for v in variants() {
            let Some(case) = build(&v, &raw, true) else { continue };
            let w = weights(v.kind, &case, &raw);
            for red in Reduction::ALL {
                for weights in [None, Some(w.as_slice())] {
                    let r = eval(&v, &case, red, weights, true)?;
                    let loss: Vec<f64> = match &r.loss {
                        LossValue::Scalar(x) => vec![*x],
                        LossValue::Terms(t) => t.data().to_vec(),
                    };
                    prop_assert!(loss.iter().all(|x| x.is_finite()), "{} {:?}: loss {:?}", v.kind.name(), red, loss);
                    let g = r.gradient.expect("gradient");
                    prop_assert!(g.data().iter().all(|x| x.is_finite()), "{} {:?}: gradient {:?}", v.kind.name(), red, g);
                }
            }
        }
    }
}

/// A permutation of 0..n from a seed (Fisher–Yates with SplitMix64).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix::new(seed);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// The crate's SplitMix64 (the one training batches use), with a uniform draw.
struct SplitMix(losslab::compute::train::SplitMix64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        SplitMix(losslab::compute::train::SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [0, 1) with 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------
// Accurate sums: an exact big-integer reference.

/// An exact sum of non-negative f64 values, held as an integer count of 2⁻¹⁰⁷⁴ (the
/// smallest subnormal), so every finite f64 is an integer here.
struct ExactSum {
    /// Little-endian 64-bit limbs; 2¹⁰⁷⁴ · f64::MAX < 2²¹⁰⁰, plus headroom for the count.
    limbs: [u64; 36],
}

impl ExactSum {
    fn new() -> Self {
        ExactSum { limbs: [0; 36] }
    }

    fn add(&mut self, x: f64) {
        assert!(x >= 0.0 && x.is_finite());
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as usize;
        let frac = bits & ((1u64 << 52) - 1);
        // x = frac · 2⁻¹⁰⁷⁴ (subnormal) or (2⁵² + frac) · 2^(exp − 1075) = … · 2⁻¹⁰⁷⁴ · 2^(exp − 1)
        let (mant, shift) = if exp == 0 {
            (frac, 0)
        } else {
            (frac | (1u64 << 52), exp - 1)
        };
        let (limb, bit) = (shift / 64, shift % 64);
        let wide = (mant as u128) << bit;
        let mut carry = 0u128;
        for (i, part) in [wide as u64, (wide >> 64) as u64].into_iter().enumerate() {
            let s = self.limbs[limb + i] as u128 + part as u128 + carry;
            self.limbs[limb + i] = s as u64;
            carry = s >> 64;
        }
        let mut i = limb + 2;
        while carry != 0 {
            let s = self.limbs[i] as u128 + carry;
            self.limbs[i] = s as u64;
            carry = s >> 64;
            i += 1;
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.limbs[i / 64] >> (i % 64) & 1 == 1
    }

    /// The nearest f64 (ties to even).
    fn to_f64(&self) -> f64 {
        let Some(top) = (0..self.limbs.len() * 64).rev().find(|&i| self.bit(i)) else {
            return 0.0;
        };
        if top < 53 {
            // below 2⁵³ units: exact (a subnormal or small normal)
            let n = self.limbs[0];
            return n as f64 * pow2(-1074);
        }
        let low = top - 52; // the value's bits top..=low form the 53-bit mantissa
        let mut mant: u64 = 0;
        for i in (low..=top).rev() {
            mant = (mant << 1) | self.bit(i) as u64;
        }
        let round = self.bit(low - 1);
        let sticky = (0..low - 1).any(|i| self.bit(i));
        let mut exp = low as i32 - 1074;
        if round && (sticky || mant & 1 == 1) {
            mant += 1;
            if mant == 1u64 << 53 {
                mant >>= 1;
                exp += 1;
            }
        }
        mant as f64 * pow2(exp)
    }
}

/// 2^e for any e with a finite result, exactly (two normal factors when needed).
fn pow2(e: i32) -> f64 {
    let normal = |k: i32| f64::from_bits(((1023 + k) as u64) << 52);
    if e < -1022 {
        normal(e + 1022) * normal(-1022) // the first factor stays normal for e ≥ -1074 - 52
    } else {
        normal(e)
    }
}

fn ulp(x: f64) -> f64 {
    f64::from_bits(x.abs().to_bits() + 1) - x.abs()
}

#[test]
fn exact_sum_reference_is_itself_exact() {
    // 0.1 + 0.2 in exact arithmetic is 0.3000000000000000166533453693773481063544750213623046875,
    // whose nearest f64 is 0.30000000000000004 (Python: float(Fraction(0.1) + Fraction(0.2)))
    let mut s = ExactSum::new();
    s.add(0.1);
    s.add(0.2);
    assert_eq!(s.to_f64(), 0.30000000000000004);
    // 1 + 2⁻⁵³ + 2⁻⁵³: each half-ulp alone rounds to even, together they make 1 + 2⁻⁵²
    let mut s = ExactSum::new();
    s.add(1.0);
    s.add(pow2(-53));
    assert_eq!(s.to_f64(), 1.0);
    s.add(pow2(-53));
    assert_eq!(s.to_f64(), 1.0 + f64::EPSILON);
    // subnormals are counted exactly
    let mut s = ExactSum::new();
    s.add(f64::from_bits(1));
    s.add(f64::from_bits(1));
    assert_eq!(s.to_f64(), f64::from_bits(2));
}

#[test]
fn a_mean_of_a_million_squared_terms_is_within_two_ulp_of_the_exact_mean() {
    // mse with targets 0: the terms are fl(a²); their exact sum S (big-integer reference),
    // rounded, divided by the count, rounded again, is within 1 ulp of S / n
    let n = 1_000_000;
    let mut rng = SplitMix::new(0x05EE_D0F1_0550);
    let a: Vec<f64> = (0..n)
        .map(|i| {
            let x = lerp(rng.unit(), -3.0, 3.0);
            // spread the magnitudes over many binades, as a real loss would have
            if i % 3 == 0 { x * 1e-6 } else { x }
        })
        .collect();
    let mut exact = ExactSum::new();
    for &x in &a {
        exact.add(x * x);
    }
    let want = exact.to_f64() / n as f64;

    let spec = LossSpec::new(LossKind::Mse, &Params::default(), false).expect("mse");
    let got = spec
        .evaluate(
            &Array::flat(a),
            &Array::flat(vec![0.0; n]),
            Reduction::Mean,
            None,
            false,
        )
        .expect("valid input")
        .loss
        .total();
    assert!(
        (got - want).abs() <= 2.0 * ulp(want),
        "mean {got:e} vs exact {want:e}: {} ulp",
        (got - want).abs() / ulp(want)
    );
}
