//! `mean` | `sum` | `none` with optional per-row `weights`: the only place values are
//! reduced (API.md, "Shapes, reductions, weights").
//!
//! A loss gives one term lᵢ per element or per row and dlᵢ/da for each element of
//! `predictions`. With sample weights s (one per row, broadcast over its terms; one per
//! element for a flat elementwise input) and, for class-weighted kinds, row weights r:
//! - `none`: s·l (the gradient is that of Σ s·l);
//! - `sum`: Σ s·l;
//! - `mean`: Σ s·l / D, D = Σ s over every term (Σ s·r with class weights).
//!
//! Two ways in, one arithmetic. [`reduce`] takes the full terms a loss wrote. [`Fused`]
//! is handed to the elementwise kinds' shared pass before it runs (their `mean`
//! denominator is known up front: there are no class weights), and reduces block by
//! block as the terms are computed, so `mean`/`sum` need no terms buffer and each
//! element is read and its gradient written once. Both weight a term as l·s, scale a
//! gradient element as d·s/D (d/D without weights; d itself when D = 1), and sum with
//! [`AccurateSum`] in the terms' order, so they give the same bits.
//!
//! Finiteness is watched on the way ([`Watch`]): the first non-finite term, raw gradient
//! element and scaled gradient element; the caller turns them into errors.

use super::array::{Array, Shape};
use super::error::ComputeError;
use super::numeric::{AccurateSum, accurate_sum_iter, finite, finite_range};
use super::terms::{LossValue, Per};

/// How terms are reduced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    #[default]
    /// Σ s·l / Σ s (s: each term's weight, 1 without weights).
    Mean,
    /// Σ s·l.
    Sum,
    /// The terms s·l themselves.
    None,
}

impl Reduction {
    /// Every reduction, in the catalogue's order.
    pub const ALL: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];
    /// The name in requests (`"mean"`, `"sum"`, `"none"`).
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::None => "none",
        }
    }
    /// The reduction of that name.
    pub fn parse(s: &str) -> Option<Self> {
        Reduction::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Checks `weights` against the shape: one non-negative finite weight per row (per
/// element for a flat elementwise input), not all zero.
pub fn check_weights(weights: &[f64], shape: Shape, per: Per) -> Result<(), ComputeError> {
    let want = match (per, shape) {
        (Per::Element, Shape::Flat(n)) => n,
        _ => shape.rows(),
    };
    if weights.len() != want {
        let unit = match (per, shape) {
            (Per::Element, Shape::Flat(_)) => "element",
            _ => "row",
        };
        return Err(ComputeError::invalid(
            "/weights",
            format!(
                "weights must hold one number per {unit}: {want} numbers, got {}",
                weights.len()
            ),
        ));
    }
    let (valid, nonzero) = scan_weights(weights);
    if !valid && let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(ComputeError::invalid(
            format!("/weights/{i}"),
            "weights must be finite and non-negative",
        ));
    }
    if !nonzero {
        return Err(ComputeError::invalid(
            "/weights",
            "weights are all zero: the weighted loss is undefined",
        ));
    }
    Ok(())
}

/// Whether every weight is finite and ≥ 0, and whether some weight is not 0, in one
/// branch-free pass (weights can be 10⁶ long; the error path looks for positions).
fn scan_weights(weights: &[f64]) -> (bool, bool) {
    match finite_range(weights) {
        Some((lo, hi)) => (lo >= 0.0, hi > 0.0),
        None => (false, false),
    }
}

/// Items per block of the passes: a block's terms, gradient and weights stay in L1
/// between the steps; a multiple of 4, so blocks keep [`AccurateSum`]'s lanes aligned.
const BLOCK: usize = 256;

/// Inputs of at most this many items take [`Fused`]'s pass with buffers of this size.
const SMALL_BLOCK: usize = 32;

/// The sample weight of each item (term or gradient element) in row-major order.
#[derive(Clone, Copy, Debug)]
enum Spread<'a> {
    /// One weight per item.
    Each(&'a [f64]),
    /// One weight per run of `cols` items (a row).
    Rows(&'a [f64], usize),
}

impl<'a> Spread<'a> {
    /// The weight of each term: per element of a flat elementwise input, per row otherwise.
    fn terms(w: &'a [f64], shape: Shape, per: Per) -> Self {
        match (per, shape) {
            (Per::Element, Shape::Matrix { cols, .. }) => Spread::Rows(w, cols.max(1)),
            _ => Spread::Each(w),
        }
    }

    /// The weight of each gradient element: its term's weight (a flat per-row input is
    /// one row with the single weight w[0]).
    fn elements(w: &'a [f64], shape: Shape, per: Per) -> Self {
        match shape {
            Shape::Flat(_) if per == Per::Element => Spread::Each(w),
            Shape::Flat(n) => Spread::Rows(w, n.max(1)),
            Shape::Matrix { cols, .. } => Spread::Rows(w, cols.max(1)),
        }
    }

    /// The weights of items `start..start + len` (len ≤ `buf.len()`): borrowed, or spread
    /// into `buf`.
    fn block<'b>(self, start: usize, len: usize, buf: &'b mut [f64]) -> &'b [f64]
    where
        'a: 'b,
    {
        match self {
            Spread::Each(w) => &w[start..start + len],
            Spread::Rows(w, cols) => {
                let (mut r, mut c) = (start / cols, start % cols);
                for slot in &mut buf[..len] {
                    *slot = w[r];
                    c += 1;
                    if c == cols {
                        c = 0;
                        r += 1;
                    }
                }
                &buf[..len]
            }
        }
    }
}

/// `start..end` of each block of `n` items.
fn blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(BLOCK).map(move |s| (s, (s + BLOCK).min(n)))
}

/// The `mean` denominator D (1 for `sum` and `none`): the count of terms, Σ s over every
/// term with sample weights, Σ s·r with class-weight row weights r. Not checked here:
/// see [`check_denominator`], whose error comes after the terms' own.
pub(crate) fn denominator(
    count: usize,
    shape: Shape,
    per: Per,
    reduction: Reduction,
    weights: Option<&[f64]>,
    row_weights: Option<&[f64]>,
) -> f64 {
    if reduction != Reduction::Mean {
        return 1.0;
    }
    let spread = weights.map(|w| Spread::terms(w, shape, per));
    match (row_weights, spread) {
        (Some(r), s) => accurate_sum_iter(r.iter().enumerate().map(|(i, ri)| {
            ri * match s {
                None => 1.0,
                Some(Spread::Each(w)) => w[i],
                Some(Spread::Rows(w, cols)) => w[i / cols],
            }
        })),
        (None, None) => count as f64,
        (None, Some(s)) => {
            let mut acc = AccurateSum::new();
            let mut buf = [0.0; BLOCK];
            for (start, end) in blocks(count) {
                acc.add_slice(s.block(start, end - start, &mut buf));
            }
            acc.total()
        }
    }
}

/// D must be positive: only class weights can make it 0 (sample weights are checked
/// not all zero).
pub(crate) fn check_denominator(denom: f64) -> Result<(), ComputeError> {
    if denom.is_nan() || denom <= 0.0 {
        return Err(ComputeError::invalid(
            "/params/class_weights",
            "the rows' class weights sum to 0: the mean is undefined",
        ));
    }
    Ok(())
}

/// The first non-finite item of a sequence watched block by block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FirstNonFinite(pub(crate) Option<usize>);

impl FirstNonFinite {
    #[inline]
    fn watch(&mut self, start: usize, xs: &[f64]) {
        // a branch-free scan of the block; the position is looked for only on a miss
        if self.0.is_none() && !xs.iter().fold(true, |ok, &x| ok & finite(x)) {
            self.0 = xs.iter().position(|x| !x.is_finite()).map(|i| start + i);
        }
    }
}

/// What the passes saw, in the order the errors are reported: the first non-finite
/// term (as the loss wrote it), raw gradient element (d term/da), and scaled gradient
/// element (after weights and D).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Watch {
    pub(crate) term: FirstNonFinite,
    pub(crate) grad: FirstNonFinite,
    pub(crate) scaled: FirstNonFinite,
}

/// d·s/D with weights; d/D without (d itself when D = 1).
#[derive(Clone, Copy, Debug)]
struct GradScale<'a> {
    weights: Option<Spread<'a>>,
    denom: f64,
}

impl GradScale<'_> {
    /// Scales gradient elements `start..start + g.len()` in place (g.len() ≤ BLOCK);
    /// whether every scaled element is finite.
    #[inline]
    fn apply(&self, start: usize, g: &mut [f64], buf: &mut [f64; BLOCK]) -> bool {
        let denom = self.denom;
        let mut ok = true;
        match self.weights {
            Some(s) => {
                let w = s.block(start, g.len(), buf);
                for (x, &w) in g.iter_mut().zip(w) {
                    *x = *x * w / denom;
                    ok &= finite(*x);
                }
            }
            None if denom != 1.0 => {
                for x in g.iter_mut() {
                    *x /= denom;
                    ok &= finite(*x);
                }
            }
            // nothing to scale: the raw elements were watched
            None => {}
        }
        ok
    }
}

/// The reduced loss and, when the terms carry one, the reduced gradient (same length
/// as `predictions`, row-major).
pub struct Reduced {
    /// The loss, reduced.
    pub loss: LossValue,
    /// The reduced loss's gradient, when the terms carry one.
    pub gradient: Option<Vec<f64>>,
    /// The number of terms.
    pub count: usize,
}

/// What a pass hands back: the reduction, what it saw, and D (unchecked).
pub(crate) struct Outcome {
    pub(crate) reduced: Reduced,
    pub(crate) watch: Watch,
    pub(crate) denom: f64,
}

/// Reduce the full terms `values` and raw gradient `grad` a loss wrote (on predictions
/// of `shape`; class-weight `row_weights` when it has them) with `reduction` and the
/// already-checked `weights`: one pass over the terms (watch, weight, sum or store) and
/// one over the gradient (watch, scale, watch). (Terms written through a [`Fused`] pass
/// are reduced already: [`Fused::finish`].)
pub(crate) fn reduce(
    mut values: Vec<f64>,
    grad: Option<Vec<f64>>,
    row_weights: Option<&[f64]>,
    shape: Shape,
    per: Per,
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Outcome {
    let count = values.len();
    let mut watch = Watch::default();
    let spread = weights.map(|w| Spread::terms(w, shape, per));
    let mut sum = AccurateSum::new();
    let (mut wbuf, mut tbuf) = ([0.0; BLOCK], [0.0; BLOCK]);
    for (start, end) in blocks(count) {
        let l = &mut values[start..end];
        watch.term.watch(start, l);
        match (reduction, spread) {
            (Reduction::None, None) => {}
            (Reduction::None, Some(s)) => {
                for (l, &w) in l.iter_mut().zip(s.block(start, end - start, &mut wbuf)) {
                    *l *= w;
                }
            }
            (_, None) => sum.add_slice(l),
            (_, Some(s)) => {
                let w = s.block(start, end - start, &mut wbuf);
                let t = &mut tbuf[..end - start];
                for ((t, &l), &w) in t.iter_mut().zip(l.iter()).zip(w) {
                    *t = l * w;
                }
                sum.add_slice(t);
            }
        }
    }
    let denom = denominator(count, shape, per, reduction, weights, row_weights);
    let scale = GradScale {
        weights: weights.map(|w| Spread::elements(w, shape, per)),
        denom,
    };
    // an invalid D is reported before any scaled gradient element: then leave them be
    let scales = check_denominator(denom).is_ok();
    let gradient = grad.map(|mut g| {
        for (start, end) in blocks(g.len()) {
            let g = &mut g[start..end];
            watch.grad.watch(start, g);
            if scales && !scale.apply(start, g, &mut wbuf) {
                watch.scaled.watch(start, g);
            }
        }
        g
    });
    let loss = match reduction {
        Reduction::None => LossValue::Terms(match per {
            // elementwise terms keep the predictions' shape; per-row terms are a flat [m]
            Per::Element => Array::from_shape(values, shape),
            Per::Row => Array::flat(values),
        }),
        Reduction::Sum | Reduction::Mean => LossValue::Scalar(sum.total() / denom),
    };
    Outcome {
        reduced: Reduced {
            loss,
            gradient,
            count,
        },
        watch,
        denom,
    }
}

/// An elementwise kind's pass with the reduction folded in (see the module doc):
/// [`Fused::run`] takes `f(a, y) -> (term, d term/da)` and the data, and weights, sums
/// or stores the terms and scales the gradient block by block.
#[derive(Debug)]
pub(crate) struct Fused<'a> {
    shape: Shape,
    reduction: Reduction,
    /// Sample weights per element (for an elementwise kind, also per term).
    weights: Option<Spread<'a>>,
    /// D, known before the pass (no class weights here).
    denom: f64,
    sum: AccurateSum,
    watch: Watch,
    /// Elements done (the pass must cover them all).
    done: usize,
}

impl<'a> Fused<'a> {
    /// The pass for an elementwise kind on predictions of `shape`, with the
    /// already-checked `weights`.
    pub(crate) fn new(shape: Shape, reduction: Reduction, weights: Option<&'a [f64]>) -> Self {
        Fused {
            shape,
            reduction,
            weights: weights.map(|w| Spread::elements(w, shape, Per::Element)),
            denom: denominator(shape.len(), shape, Per::Element, reduction, weights, None),
            sum: AccurateSum::new(),
            watch: Watch::default(),
            done: 0,
        }
    }

    /// Whether `none`'s terms are stored (else they are only summed).
    pub(crate) fn stores_terms(&self) -> bool {
        self.reduction == Reduction::None
    }

    /// Runs `f` over every (a, y); appends the weighted terms to `values` (`none` only)
    /// and the scaled gradient to `grad` (when asked for). `f` must be pure: it is
    /// evaluated again to locate a non-finite value.
    #[inline]
    pub(crate) fn run(
        &mut self,
        a: &[f64],
        y: &[f64],
        values: &mut Vec<f64>,
        grad: Option<&mut Vec<f64>>,
        f: impl Fn(f64, f64) -> (f64, f64),
    ) {
        let denom = self.denom;
        // the gradient element d·s/D with weights, d/D without, d itself when D = 1
        match (self.weights.is_some(), denom != 1.0) {
            (true, _) => self.run_scaled(a, y, values, grad, &f, |d, w| d * w / denom),
            (false, true) => self.run_scaled(a, y, values, grad, &f, |d, _| d / denom),
            (false, false) => self.run_scaled(a, y, values, grad, &f, |d, _| d),
        }
    }

    /// [`Fused::run`] with the gradient scale `scale(d, s)` fixed.
    #[inline(always)]
    fn run_scaled(
        &mut self,
        a: &[f64],
        y: &[f64],
        values: &mut Vec<f64>,
        grad: Option<&mut Vec<f64>>,
        f: &impl Fn(f64, f64) -> (f64, f64),
        scale: impl Fn(f64, f64) -> f64,
    ) {
        // a small input is one block either way (the same pass): its buffers are sized
        // for it, not zeroed at a whole block's size three times (a small request's
        // largest cost in this pass)
        if a.len().min(y.len()) <= SMALL_BLOCK {
            self.run_blocks::<SMALL_BLOCK>(a, y, values, grad, f, scale)
        } else {
            self.run_blocks::<BLOCK>(a, y, values, grad, f, scale)
        }
    }

    /// [`Fused::run_scaled`] with block buffers of `B` items (B = BLOCK, or ≥ n).
    #[inline(always)]
    fn run_blocks<const B: usize>(
        &mut self,
        a: &[f64],
        y: &[f64],
        values: &mut Vec<f64>,
        mut grad: Option<&mut Vec<f64>>,
        f: &impl Fn(f64, f64) -> (f64, f64),
        scale: impl Fn(f64, f64) -> f64,
    ) {
        // without weights every term is weighted by 1, which leaves it as it is
        const ONES: [f64; BLOCK] = [1.0; BLOCK];
        let n = a.len().min(y.len());
        let store = self.reduction == Reduction::None;
        let with_grad = grad.is_some();
        let (mut lbuf, mut gbuf, mut wbuf) = ([0.0; B], [0.0; B], [0.0; B]);
        for (start, end) in blocks(n) {
            let len = end - start;
            let (a, y) = (&a[start..end], &y[start..end]);
            let w = match self.weights {
                Some(s) => s.block(start, len, &mut wbuf),
                None => &ONES[..len],
            };
            let g = with_grad.then_some(&mut gbuf[..len]);
            // whether every value checked in the loop is finite
            let ok = if store {
                let l = &mut lbuf[..len];
                let ok = terms_into(a, y, w, l, g, f, &scale);
                values.extend_from_slice(l);
                ok
            } else {
                // the sum watches the terms: it ends finite only if every term was
                sum_terms(&mut self.sum, a, y, w, g, f, &scale)
            };
            if !ok {
                // `none` checked the terms here; `mean`/`sum` leave them to the sum
                self.locate(start, a, y, store, with_grad, f);
                if with_grad {
                    self.watch.scaled.watch(start, &gbuf[..len]);
                }
            }
            if let Some(out) = grad.as_deref_mut() {
                out.extend_from_slice(&gbuf[..len]);
            }
        }
        if !store && !self.sum.is_finite() {
            // a term was not finite, or the sum overflows: which one, the watch tells
            for (start, end) in blocks(n) {
                self.locate(start, &a[start..end], &y[start..end], true, false, f);
            }
        }
        self.done += n;
    }

    /// The first non-finite raw term and/or gradient element of a block, by evaluating
    /// it again.
    #[cold]
    #[inline(never)]
    fn locate(
        &mut self,
        start: usize,
        a: &[f64],
        y: &[f64],
        terms: bool,
        grads: bool,
        f: &impl Fn(f64, f64) -> (f64, f64),
    ) {
        let raw: Vec<(f64, f64)> = a.iter().zip(y).map(|(&a, &y)| f(a, y)).collect();
        if terms {
            let terms: Vec<f64> = raw.iter().map(|r| r.0).collect();
            self.watch.term.watch(start, &terms);
        }
        if grads {
            let grads: Vec<f64> = raw.iter().map(|r| r.1).collect();
            self.watch.grad.watch(start, &grads);
        }
    }

    /// The reduction, once [`Fused::run`] has covered every element.
    pub(crate) fn finish(self, values: Vec<f64>, gradient: Option<Vec<f64>>) -> Outcome {
        debug_assert_eq!(
            self.done,
            self.shape.len(),
            "the fused pass covers every element"
        );
        let count = self.shape.len();
        let loss = match self.reduction {
            Reduction::None => LossValue::Terms(Array::from_shape(values, self.shape)),
            Reduction::Sum | Reduction::Mean => LossValue::Scalar(self.sum.total() / self.denom),
        };
        Outcome {
            reduced: Reduced {
                loss,
                gradient,
                count,
            },
            watch: self.watch,
            denom: self.denom,
        }
    }
}

/// `none`: the terms times the weights into `l`, the scaled gradient into `g`; whether
/// every raw term and scaled gradient element is finite (a non-finite d gives a
/// non-finite scaled one).
#[inline(always)]
fn terms_into(
    a: &[f64],
    y: &[f64],
    w: &[f64],
    l: &mut [f64],
    g: Option<&mut [f64]>,
    f: &impl Fn(f64, f64) -> (f64, f64),
    scale: &impl Fn(f64, f64) -> f64,
) -> bool {
    let mut ok = true;
    match g {
        Some(g) => {
            for ((((l, g), &a), &y), &w) in l.iter_mut().zip(g).zip(a).zip(y).zip(w) {
                let (t, d) = f(a, y);
                let d = scale(d, w);
                ok &= finite(t) & finite(d);
                (*l, *g) = (t * w, d);
            }
        }
        None => {
            for (((l, &a), &y), &w) in l.iter_mut().zip(a).zip(y).zip(w) {
                let t = f(a, y).0;
                ok &= finite(t);
                *l = t * w;
            }
        }
    }
    ok
}

/// `mean`/`sum`: the terms times the weights into the sum, four lanes at a time, and the
/// scaled gradient into `g`; whether every scaled gradient element is finite (the sum
/// watches the terms).
#[inline(always)]
fn sum_terms(
    out: &mut AccurateSum,
    a: &[f64],
    y: &[f64],
    w: &[f64],
    g: Option<&mut [f64]>,
    f: &impl Fn(f64, f64) -> (f64, f64),
    scale: &impl Fn(f64, f64) -> f64,
) -> bool {
    const L: usize = 4;
    let mut ok = true;
    let split = a.len() / L * L;
    // a local copy, so its lanes live in registers through the loop
    let mut sum = *out;
    let groups = a[..split]
        .chunks_exact(L)
        .zip(y.chunks_exact(L))
        .zip(w.chunks_exact(L));
    let rest = a[split..].iter().zip(&y[split..]).zip(&w[split..]);
    match g {
        Some(g) => {
            for (((a, y), w), g) in groups.zip(g.chunks_exact_mut(L)) {
                let mut t = [0.0; L];
                for k in 0..L {
                    let (tk, d) = f(a[k], y[k]);
                    let d = scale(d, w[k]);
                    ok &= finite(d);
                    (t[k], g[k]) = (tk * w[k], d);
                }
                sum.add4(t);
            }
            for (((&a, &y), &w), g) in rest.zip(&mut g[split..]) {
                let (t, d) = f(a, y);
                let d = scale(d, w);
                ok &= finite(d);
                *g = d;
                sum.add(t * w);
            }
        }
        None => {
            for ((a, y), w) in groups {
                sum.add4(std::array::from_fn(|k| f(a[k], y[k]).0 * w[k]));
            }
            for ((&a, &y), &w) in rest {
                sum.add(f(a, y).0 * w);
            }
        }
    }
    *out = sum;
    ok
}
