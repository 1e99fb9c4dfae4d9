//! The vocabulary a loss and the reduction share, below both: what one term covers
//! ([`Per`]), what the terms reduce to ([`LossValue`]), and which numerical guards
//! acted while they were computed ([`Guard`], with the texts a response shows).
//!
//! `loss` writes terms in these words and `reduction` reduces them; neither imports the
//! other for them.

use super::array::Array;

/// One term per element or one per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Per {
    /// One term per element of `predictions` (the elementwise kinds).
    Element,
    /// One term per row of `predictions` (a flat array is one row).
    Row,
}

impl Per {
    /// `"element"` or `"row"`, as the catalogue says it.
    pub fn name(self) -> &'static str {
        match self {
            Per::Element => "element",
            Per::Row => "row",
        }
    }
}

/// The loss value: a number (`mean`, `sum`) or the terms (`none`).
#[derive(Clone, Debug, PartialEq)]
pub enum LossValue {
    /// The reduced loss (`mean`, `sum`).
    Scalar(f64),
    /// Elementwise: shaped like `predictions`; per-row: flat `[m]`.
    Terms(Array),
}

impl LossValue {
    /// The scalar, or the sum of the terms (`none` reports terms; their sum is the
    /// objective whose gradient is reported).
    pub fn total(&self) -> f64 {
        match self {
            LossValue::Scalar(x) => *x,
            LossValue::Terms(a) => super::numeric::accurate_sum(a.data()),
        }
    }
}

/// Guard text: the −100 clamp of a log.
pub const GUARD_LOG_CLAMP: &str =
    "log clamped at -100 (a probability at 0 or 1, as torch's BCELoss)";
/// Guard text: the 1e−12 floor of a gradient's denominator.
pub const GUARD_GRAD_FLOOR: &str = "gradient denominator floored at 1e-12 (as torch's BCELoss)";
/// Guard text: the `epsilon` clip of predictions.
pub const GUARD_EPSILON_CLIP: &str =
    "predictions clipped to [epsilon, 1 - epsilon] (params.epsilon, as Keras)";

/// Which numerical guards acted on a computation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    /// A −100 log clamp hit a term with a non-zero coefficient.
    pub log_clamp: bool,
    /// The 1e−12 gradient floor acted.
    pub grad_floor: bool,
    /// An `epsilon` clip moved a value.
    pub epsilon_clip: bool,
}

impl Guard {
    /// Adds the guards that acted in `other`.
    pub fn merge(&mut self, other: Guard) {
        self.log_clamp |= other.log_clamp;
        self.grad_floor |= other.grad_floor;
        self.epsilon_clip |= other.epsilon_clip;
    }

    /// The `guard` string of a response: `None` when no guard acted.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<&str> = [
            (self.log_clamp, GUARD_LOG_CLAMP),
            (self.grad_floor, GUARD_GRAD_FLOOR),
            (self.epsilon_clip, GUARD_EPSILON_CLIP),
        ]
        .into_iter()
        .filter_map(|(on, text)| on.then_some(text))
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}
