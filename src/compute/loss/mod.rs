//! Loss kinds: the registry (one line per kind, making [`LossKind`]), the shared
//! evaluation path ([`LossSpec::evaluate`]: shapes → targets → weights → terms →
//! reduction → finiteness), and the helpers the loss files share.
//!
//! One file per loss tells that loss's whole story: doc comment with the term and its
//! derivative, `KIND` (its [`KindInfo`]: catalogue entry with params, defaults and
//! ranges, input domain, index targets, activation rule, fused pass, `build`), `build`
//! (reads and checks params), value and gradient side by side, tests at the bottom.
//! Adding a kind: CONTRIBUTING.md.
//!
//! A loss writes one term per element ([`Per::Element`]) or per row ([`Per::Row`]) into
//! [`Terms::values`] and, when asked, d(term)/da for every element of `predictions` into
//! [`Terms::grad`] (for a per-row kind: the derivative of its row's term). Everything
//! after that — weights, mean/sum/none, the gradient's scale — is `reduction`'s job.
//!
//! The elementwise kinds that write through [`elementwise`] (see
//! [`KindInfo::fused_elementwise`]) get their reduction folded into that pass
//! ([`reduction::Fused`]): no terms buffer for `mean`/`sum`, one write of the gradient.
//! The results are the same bits either way.

mod kind;

use super::array::{Array, Shape};
use super::error::ComputeError;
use super::params::{ParamSpec, Params};
use super::reduction::{self, Fused, Reduction};
pub use super::terms::{
    GUARD_EPSILON_CLIP, GUARD_GRAD_FLOOR, GUARD_LOG_CLAMP, Guard, LossValue, Per,
};

pub use kind::{ActivationRule, Domain, KindInfo, Values};

/// Declares the kinds: for each registry line, its file's module, its [`LossKind`]
/// variant, its place in [`LossKind::ALL`], and [`LossKind::info`] returning the
/// file's `KIND`.
macro_rules! registry {
    ($($variant:ident => $file:ident,)*) => {
        $(pub(crate) mod $file;)*

        /// Every loss kind of the contract, in the registry's order (API.md's table).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum LossKind {
            $(
                #[doc = concat!("`", stringify!($file), "` (its `KIND`: [`LossKind::info`]).")]
                $variant,
            )*
        }

        impl LossKind {
            /// All kinds, in the order of API.md's table.
            pub const ALL: [LossKind; [$(stringify!($variant)),*].len()] =
                [$(LossKind::$variant),*];

            /// The kind's description: catalogue entry, domain, rules, build.
            pub fn info(self) -> &'static KindInfo {
                match self {
                    $(LossKind::$variant => &$file::KIND,)*
                }
            }
        }
    };
}

// The registry: one line per kind (its variant and its file), in the order of API.md's
// table. Adding a kind: CONTRIBUTING.md.
registry! {
    Mse => mse,
    L2 => l2,
    Mae => mae,
    Huber => huber,
    SmoothL1 => smooth_l1,
    LogCosh => log_cosh,
    Msle => msle,
    Mape => mape,
    Quantile => quantile,
    Poisson => poisson,
    Bce => bce,
    CrossEntropy => cross_entropy,
    Nll => nll,
    KlDiv => kl_div,
    JsDiv => js_div,
    Hinge => hinge,
    SquaredHinge => squared_hinge,
    Focal => focal,
    Cosine => cosine,
}

impl LossKind {
    /// The kind's name in the API (`"smooth_l1"`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The kind named `s`, if there is one.
    pub fn parse(s: &str) -> Option<Self> {
        LossKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The comma-separated list of every kind's name, for messages.
    pub fn names() -> String {
        LossKind::ALL.map(|k| k.name()).join(", ")
    }

    /// The names of the kinds whose description satisfies `pick`, comma-separated (for
    /// texts that list kinds: the spec, messages).
    pub fn names_where(pick: impl Fn(&KindInfo) -> bool) -> String {
        let names: Vec<&str> = LossKind::ALL
            .into_iter()
            .filter(|k| pick(k.info()))
            .map(|k| k.name())
            .collect();
        names.join(", ")
    }

    fn build(self, params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
        (self.info().build)(params)
    }

    /// One term per element or per row.
    pub fn per(self) -> Per {
        self.info().per
    }

    /// Whether the kind's `eval` writes only through [`elementwise`], so `evaluate`
    /// hands it a [`Fused`] pass ([`KindInfo::fused_elementwise`]).
    fn writes_through_elementwise(self) -> bool {
        self.info().fused_elementwise
    }

    /// Whether `targets` may also be one class index per row (cross_entropy, nll).
    pub fn accepts_indices(self) -> bool {
        self.info().accepts_indices
    }
}

/// What a loss sees: validated shapes (targets have the predictions' shape unless
/// `indices` is set).
pub struct Input<'a> {
    /// The predictions a (logits z with `from_logits`).
    pub predictions: &'a Array,
    /// Targets as sent (for index targets: the flat array of indices as numbers).
    pub targets: &'a Array,
    /// One class index per row of `predictions` (cross_entropy, nll), checked in range.
    pub indices: Option<&'a [usize]>,
    /// Whether `predictions` are logits (the stable forms of bce, cross_entropy, focal, poisson).
    pub from_logits: bool,
}

/// What a loss writes: `values` (pre-sized, one per term), `grad` (pre-sized like
/// `predictions` when a gradient was asked for), optional class-weight row weights rᵢ
/// (the `mean` divides by Σ sᵢ·rᵢ), and the guards that acted.
///
/// With `fused` set (only for [`KindInfo::fused_elementwise`] kinds),
/// `values` and `grad` start empty and [`elementwise`] fills them as it reduces.
pub struct Terms<'a> {
    /// One term per element or row, before the reduction.
    pub values: Vec<f64>,
    /// d(term)/d(prediction), shaped like `predictions`, when a gradient was asked for.
    pub grad: Option<Vec<f64>>,
    /// The class-weight row weights rᵢ (cross_entropy, nll with `class_weights`).
    pub row_weights: Option<Vec<f64>>,
    /// The numerical guards that acted.
    pub guard: Guard,
    pub(crate) fused: Option<Fused<'a>>,
}

/// A loss with its params read and checked.
pub(crate) trait Loss: Send + Sync + std::fmt::Debug {
    fn eval(&self, x: &Input<'_>, out: &mut Terms<'_>) -> Result<(), ComputeError>;
}

/// The result of [`LossSpec::evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct LossResult {
    /// The loss, reduced as asked.
    pub loss: LossValue,
    /// The number of terms.
    pub count: usize,
    /// d(reduced loss)/d(predictions) (for `none`: of the sum), shaped like `predictions`.
    pub gradient: Option<Array>,
    /// The numerical guards that acted.
    pub guard: Guard,
}

/// A kind with its params parsed: evaluate it on any number of inputs.
#[derive(Debug)]
pub struct LossSpec {
    kind: LossKind,
    from_logits: bool,
    loss: Box<dyn Loss>,
}

impl LossSpec {
    /// Reads `params` for `kind` (unknown names and out-of-range values are errors at
    /// `/params/...`) and checks that `from_logits` applies to it.
    pub fn new(kind: LossKind, params: &Params, from_logits: bool) -> Result<Self, ComputeError> {
        if from_logits && !kind.info().from_logits {
            return Err(ComputeError::invalid(
                "/from_logits",
                format!(
                    "{} has no logits form; from_logits applies to {}",
                    kind.name(),
                    LossKind::names_where(|k| k.from_logits)
                ),
            ));
        }
        Ok(LossSpec {
            kind,
            from_logits,
            loss: kind.build(params)?,
        })
    }

    /// The kind this spec evaluates.
    pub fn kind(&self) -> LossKind {
        self.kind
    }

    /// Whether predictions are read as logits.
    pub fn from_logits(&self) -> bool {
        self.from_logits
    }

    /// Evaluate on `predictions` / `targets`: the loss reduced by `reduction` with
    /// optional `weights`, and d(loss)/d(predictions) when `want_gradient`.
    pub fn evaluate(
        &self,
        predictions: &Array,
        targets: &Array,
        reduction: Reduction,
        weights: Option<&[f64]>,
        want_gradient: bool,
    ) -> Result<LossResult, ComputeError> {
        let shape = predictions.shape();
        check_not_empty(predictions, "predictions")?;
        check_not_empty(targets, "targets")?;
        let indices = self.index_targets(predictions, targets)?;
        let per = self.kind.per();
        if let Some(w) = weights {
            reduction::check_weights(w, shape, per)?;
        }
        let count = match per {
            Per::Element => predictions.len(),
            Per::Row => predictions.rows(),
        };
        let n = predictions.len();
        let input = Input {
            predictions,
            targets,
            indices: indices.as_deref(),
            from_logits: self.from_logits,
        };
        let mut terms = if self.kind.writes_through_elementwise() {
            let fused = Fused::new(shape, reduction, weights);
            Terms {
                values: if fused.stores_terms() {
                    Vec::with_capacity(count)
                } else {
                    Vec::new()
                },
                // filled block by block as the pass goes: never zeroed first
                grad: want_gradient.then(|| Vec::with_capacity(n)),
                row_weights: None,
                guard: Guard::default(),
                fused: Some(fused),
            }
        } else {
            Terms {
                values: vec![0.0; count],
                grad: want_gradient.then(|| vec![0.0; n]),
                row_weights: None,
                guard: Guard::default(),
                fused: None,
            }
        };
        self.loss.eval(&input, &mut terms)?;
        let guard = terms.guard;
        let outcome = match terms.fused {
            Some(fused) => fused.finish(terms.values, terms.grad),
            None => reduction::reduce(
                terms.values,
                terms.grad,
                terms.row_weights.as_deref(),
                shape,
                per,
                reduction,
                weights,
            ),
        };
        check_finite(&outcome, shape, per)?;
        let reduced = outcome.reduced;
        Ok(LossResult {
            loss: reduced.loss,
            count: reduced.count,
            gradient: reduced.gradient.map(|g| Array::from_shape(g, shape)),
            guard,
        })
    }

    /// `Some(indices)` when targets are one class index per row; `None` when targets
    /// have the predictions' shape; an error otherwise.
    fn index_targets(
        &self,
        predictions: &Array,
        targets: &Array,
    ) -> Result<Option<Vec<usize>>, ComputeError> {
        if targets.shape() == predictions.shape() {
            return Ok(None);
        }
        let rows = predictions.rows();
        if self.kind.accepts_indices() && !targets.is_matrix() && targets.len() == rows {
            let k = predictions.cols();
            let mut indices = Vec::with_capacity(rows);
            for (i, &t) in targets.data().iter().enumerate() {
                // an integer in [0, k): in range (NaN is not), and t survives truncation
                // (`t.fract() == 0.0` without the libm `trunc` call baseline x86-64 makes)
                if t >= 0.0 && t < k as f64 && (t as usize) as f64 == t {
                    indices.push(t as usize);
                } else {
                    return Err(ComputeError::invalid(
                        format!("/targets/{i}"),
                        format!("class index must be an integer in [0, {}]; got {t}", k - 1),
                    ));
                }
            }
            return Ok(Some(indices));
        }
        let also = if self.kind.accepts_indices() {
            format!(" (or {rows} class indices, one per row)")
        } else {
            String::new()
        };
        Err(ComputeError::invalid(
            "/targets",
            format!(
                "targets have shape {} but predictions have shape {}; they must match{also}",
                targets.shape().describe(),
                predictions.shape().describe()
            ),
        ))
    }
}

fn check_not_empty(a: &Array, field: &str) -> Result<(), ComputeError> {
    if a.is_empty() {
        Err(ComputeError::invalid(
            format!("/{field}"),
            format!("{field} must not be empty"),
        ))
    } else {
        Ok(())
    }
}

/// Non-finite terms or gradient elements never escape: they become an error naming the
/// element (or the row, for per-row kinds). In this order: the first non-finite term,
/// the first non-finite d term/da, a `mean` denominator that is not positive, a reduced
/// loss that overflows, the first gradient element that overflows once scaled.
fn check_finite(o: &reduction::Outcome, shape: Shape, per: Per) -> Result<(), ComputeError> {
    if let Some(i) = o.watch.term.0 {
        let field = match per {
            Per::Element => super::array::element_pointer(shape, "predictions", i),
            Per::Row => super::array::row_pointer(shape, "predictions", i),
        };
        return Err(ComputeError::invalid(
            field,
            "the loss is not finite here (the value overflows f64)",
        ));
    }
    if let Some(i) = o.watch.grad.0 {
        return Err(ComputeError::invalid(
            super::array::element_pointer(shape, "predictions", i),
            "the gradient is not finite here",
        ));
    }
    reduction::check_denominator(o.denom)?;
    if let LossValue::Scalar(x) = o.reduced.loss
        && !x.is_finite()
    {
        return Err(ComputeError::invalid(
            "/predictions",
            "the reduced loss overflows f64",
        ));
    }
    if let Some(i) = o.watch.scaled.0 {
        return Err(ComputeError::invalid(
            super::array::element_pointer(shape, "predictions", i),
            "the gradient overflows f64 here",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Helpers the loss files share.

/// Runs `f(a, y) -> (term, d term/da)` over every element (elementwise kinds): into
/// the terms buffers, or through the fused reduction when `evaluate` set one up. `f` is
/// a pure function of (a, y): the fused pass may call it again on a block to locate a
/// non-finite value.
#[inline]
pub(crate) fn elementwise(x: &Input<'_>, out: &mut Terms<'_>, f: impl Fn(f64, f64) -> (f64, f64)) {
    let a = x.predictions.data();
    let y = x.targets.data();
    if let Some(fused) = &mut out.fused {
        fused.run(a, y, &mut out.values, out.grad.as_mut(), f);
        return;
    }
    match &mut out.grad {
        Some(g) => {
            for (((l, d), &a), &y) in out.values.iter_mut().zip(g.iter_mut()).zip(a).zip(y) {
                (*l, *d) = f(a, y);
            }
        }
        None => {
            for ((l, &a), &y) in out.values.iter_mut().zip(a).zip(y) {
                *l = f(a, y).0;
            }
        }
    }
}

/// Reads params with the kind's specs; `finish()` rejects unknown names.
pub(crate) fn reader<'a>(
    params: &'a Params,
    info: &'static KindInfo,
) -> super::params::ParamReader<'a> {
    super::params::ParamReader::new(params, "/params", info.name, info.params)
}

/// Every element of `arr` in [0, 1]; else an error at that element.
pub(crate) fn check_unit_interval(arr: &Array, field: &str) -> Result<(), ComputeError> {
    if all_in_unit_interval(arr.data()) {
        return Ok(());
    }
    match arr.data().iter().position(|&v| !(0.0..=1.0).contains(&v)) {
        None => Ok(()),
        Some(i) => Err(ComputeError::invalid(
            arr.pointer(field, i),
            format!("probabilities must lie in [0, 1]; got {}", arr.data()[i]),
        )),
    }
}

/// Whether every x is in [0, 1], in one branch-free pass (the error path looks for the
/// position).
fn all_in_unit_interval(xs: &[f64]) -> bool {
    matches!(super::numeric::finite_range(xs), Some((lo, hi)) if lo >= 0.0 && hi <= 1.0)
}

/// Distribution rows: each row of `arr` sums to 1 within 1e−6 (not renormalised). The
/// sum judged and reported is `accurate_sum`'s; a row a plain sum settles skips it.
pub(crate) fn check_rows_sum_to_one(arr: &Array, field: &str) -> Result<(), ComputeError> {
    for (r, row) in arr.row_iter().enumerate() {
        if clearly_sums_to_one(row) {
            continue;
        }
        let s = super::numeric::accurate_sum(row);
        if (s - 1.0).abs() > 1e-6 {
            return Err(ComputeError::invalid(
                arr.row_pointer(field, r),
                format!("row {r} sums to {s}, not 1 (within 1e-6); it is not renormalised"),
            ));
        }
    }
    Ok(())
}

/// Whether a plain sum settles that `accurate_sum(row)` is within 1e−6 of 1, so the
/// compensated sum (some 40 cycles for a row of 10, most of a 10⁶-element
/// cross_entropy's checks) is not needed. The plain sum p of k terms, in any order, is
/// within (k − 1)·u·Σ|x| of the exact sum S, and accurate_sum within u·|S| + (k·u)²·Σ|x|
/// (u = 2⁻⁵³); m = 2(k + 4)·u·(Σ|x| + 1) covers both. So |p − 1| ≤ 1e−6 − m gives
/// |accurate_sum − 1| ≤ 1e−6 (near 1, s − 1 is exact): the same verdict. Otherwise, or
/// for a NaN or ∞, the caller sums accurately and judges as before.
fn clearly_sums_to_one(row: &[f64]) -> bool {
    let (p, abs) = row
        .iter()
        .fold((0.0, 0.0), |(p, abs), &x| (p + x, abs + x.abs()));
    let m = (row.len() as f64 + 4.0) * f64::EPSILON * (abs + 1.0);
    (p - 1.0).abs() <= 1e-6 - m
}

/// `params.log_base`: value and gradient are divided by ln(base) (1 when absent).
pub(crate) fn log_base_divisor(base: Option<f64>) -> f64 {
    base.map_or(1.0, f64::ln)
}

/// The `log_base` parameter spec, shared by every kind that has it.
pub(crate) const LOG_BASE: ParamSpec = ParamSpec {
    name: "log_base",
    default: super::params::ParamDefault::None,
    min: super::params::Limit::excl(1.0),
    max: None,
    description: "Base of the logarithm (natural log when absent); value and gradient are divided by ln(base). Must be > 1.",
};

/// The `epsilon` clip spec (bce, cross_entropy, focal): Keras' clip to [eps, 1 − eps].
pub(crate) const EPSILON_CLIP: ParamSpec = ParamSpec {
    name: "epsilon",
    default: super::params::ParamDefault::None,
    min: super::params::Limit::excl(0.0),
    max: super::params::Limit::excl(0.5),
    description: "When set, predictions are clipped to [epsilon, 1 - epsilon] first (Keras); the gradient is 0 where the clip moved a value. Off by default.",
};

#[cfg(test)]
mod checks;
#[cfg(test)]
pub(crate) mod testing;
