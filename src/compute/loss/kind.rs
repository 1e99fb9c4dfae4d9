//! What a loss kind says about itself: [`KindInfo`], one value per kind, declared in the
//! kind's own file (`KIND`) and listed once in the registry (`loss/mod.rs`). Everything
//! else that depends on the kind reads it: the catalogue (GET /losses), `build`, the
//! evaluation path (per element or row, index targets, the fused elementwise pass),
//! `chain`'s activation rule and fused pairs, the property tests' input generators and
//! the spec.
//!
//! The recipe for a new kind is in CONTRIBUTING.md.

use super::Loss;
use crate::compute::activation::Activation;
use crate::compute::error::ComputeError;
use crate::compute::params::{ParamSpec, Params};
use crate::compute::terms::Per;

/// A kind's whole description: its catalogue entry (name, formula, derivative, params,
/// guards) and what the code needs to know about it.
#[derive(Debug)]
pub struct KindInfo {
    /// The kind string of the API.
    pub name: &'static str,
    /// The term in a / y / z notation.
    pub formula: &'static str,
    /// d(term)/da in the same notation.
    pub derivative: &'static str,
    /// One term per element or per row.
    pub per: Per,
    /// Its params, with defaults and ranges.
    pub params: &'static [ParamSpec],
    /// Whether top-level `from_logits` applies.
    pub from_logits: bool,
    /// The numerical guards that can act, in words.
    pub guards: &'static [&'static str],
    /// Whether `targets` may also be one class index per row.
    pub accepts_indices: bool,
    /// Which values its inputs must hold.
    pub domain: Domain,
    /// Whether its `eval` writes terms and gradient only through `elementwise` (after
    /// its own checks), so evaluation hands it the fused reduction pass instead of
    /// full-length buffers. Such a kind must not write `Terms::values` itself.
    pub fused_elementwise: bool,
    /// Which activations fit it in /train (and, with `from_logits`, which make a fused
    /// pair in /gradient and /train).
    pub activation: ActivationRule,
    /// Reads and checks its params (unknown names and out-of-range values are errors at
    /// `/params/...`).
    pub(crate) build: fn(&Params) -> Result<Box<dyn Loss>, ComputeError>,
}

/// The values `predictions` and `targets` must hold (with `from_logits`, predictions are
/// logits: any real).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain {
    /// What `predictions` hold.
    pub predictions: Values,
    /// What `targets` hold (index targets, where accepted, aside).
    pub targets: Values,
}

impl Domain {
    /// Any real number on both sides.
    pub const REAL: Domain = Domain {
        predictions: Values::Real,
        targets: Values::Real,
    };
}

/// A set of valid values, as a kind's checks enforce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Any finite number.
    Real,
    /// Probabilities in [0, 1].
    Probability,
    /// Rows of probabilities that sum to 1 within 1e−6 (not renormalised).
    DistributionRows,
    /// Log-probabilities (≤ 0 by meaning; not checked, as torch's nll_loss).
    LogProbability,
    /// Numbers > −1 (the argument of log1p).
    AboveMinusOne,
    /// Numbers ≥ 0.
    NonNegative,
    /// Binary labels: all −1/1, or all 0/1.
    SignLabels,
}

impl Values {
    /// The set in words, for descriptions.
    pub fn describe(self) -> &'static str {
        match self {
            Values::Real => "any real number",
            Values::Probability => "probabilities in [0, 1]",
            Values::DistributionRows => "rows of probabilities summing to 1 (within 1e-6)",
            Values::LogProbability => "log-probabilities (not checked)",
            Values::AboveMinusOne => "numbers > -1",
            Values::NonNegative => "numbers >= 0",
            Values::SignLabels => "labels -1/1 (or 0/1)",
        }
    }
}

/// Which activations a kind's predictions can come from in /train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationRule {
    /// Any activation.
    Any,
    /// Only sigmoid (its predictions are probabilities of one class); with
    /// `from_logits`, sigmoid + the kind is a fused pair.
    Sigmoid,
    /// Only softmax (its predictions are distribution rows); with `from_logits`,
    /// softmax + the kind is a fused pair.
    Softmax,
    /// An activation whose outputs are ≥ 0.
    NonNegative,
}

impl ActivationRule {
    /// Whether `activation` fits.
    pub fn fits(self, activation: &Activation) -> bool {
        match self {
            ActivationRule::Any => true,
            ActivationRule::Sigmoid => *activation == Activation::Sigmoid,
            ActivationRule::Softmax => *activation == Activation::Softmax,
            ActivationRule::NonNegative => activation.range().0 >= 0.0,
        }
    }

    /// What the rule needs, for the error when an activation does not fit.
    pub fn need(self) -> &'static str {
        match self {
            ActivationRule::Any => "any activation",
            ActivationRule::Sigmoid => {
                "the sigmoid activation (its predictions are probabilities of one class)"
            }
            ActivationRule::Softmax => {
                "the softmax activation (its predictions are distribution rows)"
            }
            ActivationRule::NonNegative => {
                "an activation with a >= 0 (sigmoid, relu, softplus, softmax, or leaky_relu with negative_slope 0)"
            }
        }
    }

    /// Whether this rule's one activation, followed by the kind's logits form, is a
    /// fused pair (loss and dL/dz from the logits).
    pub fn fuses_with(self, activation: &Activation) -> bool {
        matches!(self, ActivationRule::Sigmoid | ActivationRule::Softmax) && self.fits(activation)
    }
}
