//! PLACEHOLDER (to be written): loss ∘ activation → a, dL/da and dL/dz.
//!
//! Interface (fixed): see `through_activation`.

use super::activation::Activation;
use super::array::Array;
use super::error::ComputeError;
use super::loss::{Guard, LossKind, LossValue};
use super::params::Params;
use super::reduction::Reduction;

/// The result of the chain rule through an activation.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainResult {
    pub loss: LossValue,
    pub count: usize,
    /// a = act(z), shaped like the logits.
    pub activations: Array,
    /// dL/da.
    pub d_predictions: Array,
    /// dL/dz.
    pub d_logits: Array,
    pub guard: Guard,
}

/// Evaluate `kind` (with `params`) on a = act(z): the loss reduced by `reduction` with
/// optional `weights`, dL/da and dL/dz. Errors name `/logits/...` (never `/predictions`).
pub fn through_activation(
    kind: LossKind,
    params: &Params,
    activation: &Activation,
    logits: &Array,
    targets: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Result<ChainResult, ComputeError> {
    let _ = (
        kind, params, activation, logits, targets, reduction, weights,
    );
    Err(ComputeError::invalid("/logits", "not implemented yet"))
}
