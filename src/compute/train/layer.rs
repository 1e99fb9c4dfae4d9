//! The dense layer and the objective: z = X·W + b; from z the loss (mean reduction),
//! a = act(z) and dL/dz; then dW = Xᵀ·dZ and db = Σ_rows dZ. Every sum is an
//! accurate (compensated, fixed-order) sum.
//!
//! The objective has two paths that give the same bits:
//! - the generic path: [`Chain::objective`] (the same loss ∘ activation as
//!   POST /gradient: the loss on a = act(z) and the activation's backward, or for the
//!   fused pairs sigmoid + bce, sigmoid + focal and softmax + cross_entropy the kind's
//!   logits form on z); it allocates its arrays on every call;
//! - allocation-free fast paths for the common pairs (identity / sigmoid / tanh with
//!   mse / l2; plain sigmoid + bce; plain softmax + cross_entropy) that write a and
//!   dL/dz in place with exactly the arithmetic of the generic path. The elementwise
//!   pairs call the loss files' own per-element kernels (`mse::term_grad`,
//!   `l2::term_grad`, `bce::logit_term`) and softmax + cross_entropy its row kernel
//!   (`cross_entropy::logit_row`), so each formula is written once; the reduction's
//!   scale and the activation's derivative are applied around them operation by
//!   operation. Tests compare whole runs bit for bit.

use crate::compute::activation::Activation;
use crate::compute::activation::softmax_in_place;
use crate::compute::array::Array;
use crate::compute::chain::Chain;
use crate::compute::error::ComputeError;
use crate::compute::loss::{LossKind, bce, cross_entropy, l2, mse};
use crate::compute::numeric::{AccurateSum, accurate_sum_iter, sigmoid};

/// [`accurate_sum_iter`] with the one-term case written out. For a finite x,
/// accurate_sum_iter([x]) is exactly 0 + x (every TwoSum error term is 0), so `x + 0.0`
/// gives the same bits (−0 becomes +0 in both) at a fraction of the cost; a non-finite
/// x gives a non-finite result either way. The single neuron runs on this path.
#[inline]
pub(super) fn sum<I: ExactSizeIterator<Item = f64>>(mut terms: I) -> f64 {
    if terms.len() == 1 {
        terms.next().map_or(0.0, |x| x + 0.0)
    } else {
        accurate_sum_iter(terms)
    }
}

/// z = X·W + b for `rows` samples: `x` is rows × n, θ = (W n × k row-major, b k).
pub(super) fn forward(x: &[f64], rows: usize, n: usize, k: usize, theta: &[f64], z: &mut [f64]) {
    let (w, b) = theta.split_at(n * k);
    for (xr, zr) in x.chunks_exact(n).take(rows).zip(z.chunks_exact_mut(k)) {
        for (c, (zc, &bc)) in zr.iter_mut().zip(b).enumerate() {
            *zc = sum(xr.iter().enumerate().map(|(j, &xj)| xj * w[j * k + c])) + bc;
        }
    }
}

/// grad = (Xᵀ·dZ, Σ_rows dZ) for `rows` samples, in θ's layout.
pub(super) fn backward(x: &[f64], rows: usize, n: usize, k: usize, dz: &[f64], grad: &mut [f64]) {
    let (gw, gb) = grad.split_at_mut(n * k);
    for (j, gwj) in gw.chunks_exact_mut(k).enumerate() {
        for (c, g) in gwj.iter_mut().enumerate() {
            *g = sum((0..rows).map(|r| x[r * n + j] * dz[r * k + c]));
        }
    }
    for (c, g) in gb.iter_mut().enumerate() {
        *g = sum((0..rows).map(|r| dz[r * k + c]));
    }
}

/// The allocation-free pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fast {
    /// identity / sigmoid / tanh with mse (`half` false) or l2 (`half` true).
    Squared { act: SquaredAct, half: bool },
    /// sigmoid + bce without params, from the logits.
    SigmoidBce,
    /// softmax + cross_entropy without params, from the logits (dense or index targets).
    SoftmaxCrossEntropy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SquaredAct {
    Identity,
    Sigmoid,
    Tanh,
}

/// Loss, a and dL/dz from z: the kind with its params, the activation, and which path.
#[derive(Debug)]
pub(super) struct Objective {
    /// The loss after the activation, params read once (the generic path).
    pub chain: Chain,
    pub fast: Option<Fast>,
    /// Output columns.
    pub k: usize,
    /// Targets are one class index per row.
    pub indices: bool,
}

/// The fast path for (activation, kind, params), if there is one.
pub(super) fn fast_path(
    activation: &Activation,
    kind: LossKind,
    params_empty: bool,
) -> Option<Fast> {
    let half = match kind {
        LossKind::Mse => Some(false),
        LossKind::L2 => Some(true),
        _ => None,
    };
    match (activation, kind, half) {
        (Activation::Identity, _, Some(half)) => Some(Fast::Squared {
            act: SquaredAct::Identity,
            half,
        }),
        (Activation::Sigmoid, _, Some(half)) => Some(Fast::Squared {
            act: SquaredAct::Sigmoid,
            half,
        }),
        (Activation::Tanh, _, Some(half)) => Some(Fast::Squared {
            act: SquaredAct::Tanh,
            half,
        }),
        (Activation::Sigmoid, LossKind::Bce, _) if params_empty => Some(Fast::SigmoidBce),
        (Activation::Softmax, LossKind::CrossEntropy, _) if params_empty => {
            Some(Fast::SoftmaxCrossEntropy)
        }
        _ => None,
    }
}

impl Objective {
    /// The mean loss over `rows` samples; writes a = act(z) and dL/dz (rows × k).
    /// `y` holds the targets (rows × k, or one class number per row with `idx`).
    /// Errors only on the generic path (the loss module's checks, non-finite values);
    /// their pointers are the chain's (`/logits/...`, `/targets/...`).
    #[allow(clippy::too_many_arguments)]
    pub fn eval(
        &self,
        rows: usize,
        z: &[f64],
        y: &[f64],
        idx: Option<&[usize]>,
        a: &mut [f64],
        dz: &mut [f64],
        generic: bool,
    ) -> Result<f64, ComputeError> {
        let len = rows * self.k;
        let (z, a, dz) = (&z[..len], &mut a[..len], &mut dz[..len]);
        match self.fast {
            Some(fast) if !generic => Ok(match fast {
                Fast::Squared { act, half } => squared(act, half, z, &y[..len], a, dz),
                Fast::SigmoidBce => sigmoid_bce(z, &y[..len], a, dz),
                Fast::SoftmaxCrossEntropy => {
                    softmax_cross_entropy(self.k, z, &y[..len.min(y.len())], idx, a, dz)
                }
            }),
            _ => self.eval_generic(rows, z, y, a, dz),
        }
    }

    /// The mean loss over `rows` samples as [`Self::eval`] computes it, bit for bit, for a
    /// state no backward pass follows (POST /landscape's grid): the elementwise fast pairs
    /// run their very element kernels and the same accurate sum, but store neither a nor
    /// dL/dz (the compiler drops what is not used); every other pair is [`Self::eval`].
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &self,
        rows: usize,
        z: &[f64],
        y: &[f64],
        idx: Option<&[usize]>,
        a: &mut [f64],
        dz: &mut [f64],
        generic: bool,
    ) -> Result<f64, ComputeError> {
        let len = rows * self.k;
        match self.fast {
            Some(Fast::Squared { act, half }) if !generic => {
                Ok(squared_loss(act, half, &z[..len], &y[..len]))
            }
            Some(Fast::SigmoidBce) if !generic => {
                Ok(elementwise_loss(&z[..len], &y[..len], bce_element))
            }
            _ => self.eval(rows, z, y, idx, a, dz, generic),
        }
    }

    /// [`forward`] then [`Self::loss`] for one feature and one output (θ = (w, b)), in one
    /// pass for the elementwise fast pairs; `None` for every other pair (the caller runs
    /// the two steps).
    pub fn loss_one_feature(&self, x: &[f64], y: &[f64], w: f64, b: f64) -> Option<f64> {
        if self.k != 1 {
            return None;
        }
        let len = x.len().min(y.len());
        let (x, y) = (&x[..len], &y[..len]);
        macro_rules! squared {
            ($act:expr, $half:expr) => {
                elementwise_loss_one_feature(x, y, w, b, |z, y, s| {
                    squared_element($act, $half, z, y, s)
                })
            };
        }
        Some(match self.fast? {
            Fast::Squared { act, half } => match (act, half) {
                (SquaredAct::Identity, true) => squared!(SquaredAct::Identity, true),
                (SquaredAct::Identity, false) => squared!(SquaredAct::Identity, false),
                (SquaredAct::Sigmoid, true) => squared!(SquaredAct::Sigmoid, true),
                (SquaredAct::Sigmoid, false) => squared!(SquaredAct::Sigmoid, false),
                (SquaredAct::Tanh, true) => squared!(SquaredAct::Tanh, true),
                (SquaredAct::Tanh, false) => squared!(SquaredAct::Tanh, false),
            },
            Fast::SigmoidBce => elementwise_loss_one_feature(x, y, w, b, bce_element),
            Fast::SoftmaxCrossEntropy => return None,
        })
    }

    fn eval_generic(
        &self,
        rows: usize,
        z: &[f64],
        y: &[f64],
        a: &mut [f64],
        dz: &mut [f64],
    ) -> Result<f64, ComputeError> {
        let k = self.k;
        let matrix = |v: Vec<f64>| Array::matrix(v, rows, k).unwrap_or_else(|| Array::flat(vec![]));
        let targets = if self.indices {
            Array::flat(y[..rows].to_vec())
        } else {
            matrix(y[..rows * k].to_vec())
        };
        let (loss, d_logits, activations) = self.chain.objective(&matrix(z.to_vec()), &targets)?;
        a.copy_from_slice(activations.data());
        dz.copy_from_slice(d_logits.data());
        Ok(loss)
    }
}

/// Division by a term count, as the reduction's `x / count`: when the count is a power
/// of two, x·(1/count) is the same correctly rounded value (1/count is exact), and a
/// multiplication is much shorter than a division on the loop's critical path.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scale {
    count: f64,
    inverse: Option<f64>,
}

impl Scale {
    pub fn new(count: usize) -> Self {
        let count_f = count as f64;
        Scale {
            count: count_f,
            inverse: count.is_power_of_two().then(|| 1.0 / count_f),
        }
    }

    #[inline(always)]
    pub fn divide(self, x: f64) -> f64 {
        match self.inverse {
            Some(inv) => x * inv,
            None => x / self.count,
        }
    }
}

/// One element of mse / l2 through identity, sigmoid or tanh, with the generic path's
/// operations exactly: a = act(z), (term, dl/da) from the loss file's kernel,
/// dL/da = (dl/da)/count, dL/dz = dL/da · da/dz. Returns (a, term, dL/dz).
#[inline(always)]
fn squared_element(act: SquaredAct, half: bool, z: f64, y: f64, scale: Scale) -> (f64, f64, f64) {
    let a = match act {
        SquaredAct::Identity => z,
        SquaredAct::Sigmoid => sigmoid(z),
        SquaredAct::Tanh => z.tanh(),
    };
    let (term, g) = if half {
        l2::term_grad(a, y)
    } else {
        mse::term_grad(a, y)
    };
    let g = scale.divide(g);
    let d = match act {
        SquaredAct::Identity => g,
        SquaredAct::Sigmoid => g * (a * (1.0 - a)),
        SquaredAct::Tanh => g * (1.0 - a * a),
    };
    (a, term, d)
}

/// One element of plain sigmoid + bce from the logits: bce.rs's logit term with
/// pos_weight 1 (pw·y = y exactly) and no log_base (÷ 1 exactly), dL/dz = d/count.
#[inline(always)]
fn bce_element(z: f64, y: f64, scale: Scale) -> (f64, f64, f64) {
    let (term, d) = bce::logit_term(z, y, 1.0);
    (sigmoid(z), term, scale.divide(d))
}

/// An elementwise fast pair over every element: the loss is the accurate sum of the
/// terms over count (as the reduction), a and dL/dz are written in place.
#[inline(always)]
fn elementwise_pass(
    z: &[f64],
    y: &[f64],
    a: &mut [f64],
    dz: &mut [f64],
    element: impl Fn(f64, f64, Scale) -> (f64, f64, f64),
) -> f64 {
    let scale = Scale::new(z.len());
    let total =
        sum(z
            .iter()
            .zip(y)
            .zip(a.iter_mut())
            .zip(dz.iter_mut())
            .map(|(((&zi, &yi), ai), di)| {
                let (av, term, d) = element(zi, yi, scale);
                *ai = av;
                *di = d;
                term
            }));
    scale.divide(total)
}

/// [`elementwise_pass`]'s loss alone: the same terms in the same order into the same sum
/// ([`sum`]: one term is `x + 0.0`, more go to [`AccurateSum`]'s lane i mod 4, four at a
/// time), without the stores of a and dL/dz.
#[inline(always)]
fn elementwise_loss(
    z: &[f64],
    y: &[f64],
    element: impl Fn(f64, f64, Scale) -> (f64, f64, f64),
) -> f64 {
    let scale = Scale::new(z.len());
    let term = |z: f64, y: f64| element(z, y, scale).1;
    let total = if z.len() == 1 {
        term(z[0], y[0]) + 0.0
    } else {
        let mut acc = AccurateSum::new();
        acc.add_zip(z, y, term);
        acc.total()
    };
    scale.divide(total)
}

/// [`elementwise_loss`] of one feature and one output with z = x·w + b computed in the
/// same loop ([`forward`]'s arithmetic for n = k = 1: the one-term sum `x·w + 0.0`, then
/// `+ b`), so z is never stored.
#[inline(always)]
fn elementwise_loss_one_feature(
    x: &[f64],
    y: &[f64],
    w: f64,
    b: f64,
    element: impl Fn(f64, f64, Scale) -> (f64, f64, f64),
) -> f64 {
    let scale = Scale::new(x.len());
    let term = |x: f64, y: f64| element((x * w + 0.0) + b, y, scale).1;
    let total = if x.len() == 1 {
        term(x[0], y[0]) + 0.0
    } else {
        let mut acc = AccurateSum::new();
        acc.add_zip(x, y, term);
        acc.total()
    };
    scale.divide(total)
}

/// [`squared`]'s loss alone ([`elementwise_loss`]), one monomorphised loop per pair.
fn squared_loss(act: SquaredAct, half: bool, z: &[f64], y: &[f64]) -> f64 {
    match (act, half) {
        (SquaredAct::Identity, true) => elementwise_loss(z, y, |z, y, s| {
            squared_element(SquaredAct::Identity, true, z, y, s)
        }),
        (SquaredAct::Identity, false) => elementwise_loss(z, y, |z, y, s| {
            squared_element(SquaredAct::Identity, false, z, y, s)
        }),
        (SquaredAct::Sigmoid, true) => elementwise_loss(z, y, |z, y, s| {
            squared_element(SquaredAct::Sigmoid, true, z, y, s)
        }),
        (SquaredAct::Sigmoid, false) => elementwise_loss(z, y, |z, y, s| {
            squared_element(SquaredAct::Sigmoid, false, z, y, s)
        }),
        (SquaredAct::Tanh, true) => elementwise_loss(z, y, |z, y, s| {
            squared_element(SquaredAct::Tanh, true, z, y, s)
        }),
        (SquaredAct::Tanh, false) => elementwise_loss(z, y, |z, y, s| {
            squared_element(SquaredAct::Tanh, false, z, y, s)
        }),
    }
}

fn squared(
    act: SquaredAct,
    half: bool,
    z: &[f64],
    y: &[f64],
    a: &mut [f64],
    dz: &mut [f64],
) -> f64 {
    // one monomorphised loop per activation, so the match leaves the inner loop
    match (act, half) {
        (SquaredAct::Identity, true) => elementwise_pass(z, y, a, dz, |z, y, s| {
            squared_element(SquaredAct::Identity, true, z, y, s)
        }),
        (SquaredAct::Identity, false) => elementwise_pass(z, y, a, dz, |z, y, s| {
            squared_element(SquaredAct::Identity, false, z, y, s)
        }),
        (SquaredAct::Sigmoid, true) => elementwise_pass(z, y, a, dz, |z, y, s| {
            squared_element(SquaredAct::Sigmoid, true, z, y, s)
        }),
        (SquaredAct::Sigmoid, false) => elementwise_pass(z, y, a, dz, |z, y, s| {
            squared_element(SquaredAct::Sigmoid, false, z, y, s)
        }),
        (SquaredAct::Tanh, true) => elementwise_pass(z, y, a, dz, |z, y, s| {
            squared_element(SquaredAct::Tanh, true, z, y, s)
        }),
        (SquaredAct::Tanh, false) => elementwise_pass(z, y, a, dz, |z, y, s| {
            squared_element(SquaredAct::Tanh, false, z, y, s)
        }),
    }
}

fn sigmoid_bce(z: &[f64], y: &[f64], a: &mut [f64], dz: &mut [f64]) -> f64 {
    elementwise_pass(z, y, a, dz, bce_element)
}

/// The elementwise fast pairs, for [`single_neuron`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ScalarPair {
    Squared { act: SquaredAct, half: bool },
    SigmoidBce,
}

impl ScalarPair {
    pub fn of(fast: Fast) -> Option<Self> {
        match fast {
            Fast::Squared { act, half } => Some(ScalarPair::Squared { act, half }),
            Fast::SigmoidBce => Some(ScalarPair::SigmoidBce),
            Fast::SoftmaxCrossEntropy => None,
        }
    }
}

/// The single neuron (one sample, one feature, one output, an elementwise fast pair)
/// without buffers: forward, objective and backward in registers, with exactly the
/// operations of [`forward`], the fast pass and [`backward`] for m = n = k = 1 (each
/// one-term [`sum`] is `x + 0.0`). Returns (loss, a, dW, db).
#[inline(always)]
pub(super) fn single_neuron(
    pair: ScalarPair,
    x: f64,
    y: f64,
    w: f64,
    b: f64,
) -> (f64, f64, f64, f64) {
    let z = (x * w + 0.0) + b;
    let one = Scale::new(1);
    let (a, term, d) = match pair {
        ScalarPair::Squared { act, half } => squared_element(act, half, z, y, one),
        ScalarPair::SigmoidBce => bce_element(z, y, one),
    };
    (one.divide(term + 0.0), a, x * d + 0.0, d + 0.0)
}

/// Plain softmax + cross_entropy from the logits, per row: cross_entropy.rs's logit
/// row kernel without class weights, smoothing or log_base: c_k = y_k + 0.0 (one-hot
/// for class indices; the file's (1 − 0)·y + 0/K, times weight 1), dL/dz_k = the
/// kernel's d/rows. a = softmax(z) as the activation computes it (only the
/// abs_error_below rule reads it).
fn softmax_cross_entropy(
    k: usize,
    z: &[f64],
    y: &[f64],
    idx: Option<&[usize]>,
    a: &mut [f64],
    dz: &mut [f64],
) -> f64 {
    let rows = z.len() / k.max(1);
    let scale = Scale::new(rows);
    let total = accurate_sum_iter(
        z.chunks_exact(k)
            .zip(a.chunks_exact_mut(k))
            .zip(dz.chunks_exact_mut(k))
            .enumerate()
            .map(|(r, ((zr, ar), dr))| {
                ar.copy_from_slice(zr);
                softmax_in_place(ar);
                let coef = |c: usize| match idx {
                    Some(idx) => f64::from(u8::from(idx[r] == c)) + 0.0,
                    None => y[r * k + c] + 0.0,
                };
                cross_entropy::logit_row(zr, coef, Some(|c: usize, d| dr[c] = scale.divide(d)))
            }),
    );
    scale.divide(total)
}

/// max |a − y| over every element (index targets: y one-hot).
pub(super) fn max_abs_error(k: usize, a: &[f64], y: &[f64], idx: Option<&[usize]>) -> f64 {
    match idx {
        None => a
            .iter()
            .zip(y)
            .map(|(&ai, &yi)| (ai - yi).abs())
            .fold(0.0, f64::max),
        Some(idx) => a
            .chunks_exact(k.max(1))
            .zip(idx)
            .flat_map(|(ar, &t)| {
                ar.iter()
                    .enumerate()
                    .map(move |(c, &ac)| (ac - if c == t { 1.0 } else { 0.0 }).abs())
            })
            .fold(0.0, f64::max),
    }
}

/// ‖g‖₂ by an accurate sum of squares.
pub(super) fn norm(g: &[f64]) -> f64 {
    accurate_sum_iter(g.iter().map(|v| v * v)).sqrt()
}

/// Whether every value is finite.
pub(super) fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}
