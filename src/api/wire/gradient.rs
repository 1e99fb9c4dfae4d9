//! `POST /gradient`'s JSON: the request, its conversion to a [`GradientSpec`], and the
//! response built from a [`GradientResult`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ActivationName, ArrayOut, KindDto, LossOut, NumArray, ParamsDto, ReductionDto};
use crate::compute::Array;
use crate::compute::check::CheckReport;
use crate::compute::gradient::{GradientResult, GradientSpec};

/// A gradient request: `predictions` (a), or `logits` (z) with an `activation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"loss": "bce", "logits": [2.0, -1.0], "targets": [1.0, 0.0],
    "activation": "sigmoid", "check": true}))]
pub struct GradientRequest {
    pub loss: KindDto,
    #[serde(default)]
    pub params: ParamsDto,
    #[serde(default)]
    pub reduction: ReductionDto,
    #[schema(value_type = Option<Vec<f64>>)]
    pub weights: Option<Vec<f64>>,
    pub targets: NumArray,
    /// The model output a (give this or `logits`).
    pub predictions: Option<NumArray>,
    /// The pre-activation z (give this or `predictions`); a = activation(z).
    pub logits: Option<NumArray>,
    /// With `logits` (default identity). Fused stable pairs: sigmoid + bce, sigmoid + focal,
    /// softmax + cross_entropy.
    pub activation: Option<ActivationName>,
    #[serde(default)]
    pub activation_params: ParamsDto,
    /// Central-difference check of d_logits (if logits were given) else d_predictions.
    #[serde(default)]
    pub check: bool,
}

impl GradientRequest {
    /// The compute core's view of this request (borrowed; the core checks the rest).
    pub fn spec(&self) -> GradientSpec<'_> {
        GradientSpec {
            loss: self.loss.0,
            params: &self.params.0,
            reduction: self.reduction.into(),
            weights: self.weights.as_deref(),
            targets: &self.targets.0,
            predictions: self.predictions.as_ref().map(|a| &a.0),
            logits: self.logits.as_ref().map(|z| &z.0),
            activation: self.activation.as_ref().map(|a| a.0.as_str()),
            activation_params: &self.activation_params.0,
            check: self.check,
        }
    }
}

/// The result of a central-difference gradient check.
#[derive(Serialize, ToSchema)]
pub struct CheckOut {
    /// Relative step: h = epsilon · max(1, |x|).
    pub epsilon: f64,
    pub max_abs_error: f64,
    pub max_rel_error: f64,
    /// ‖num − ana‖₂ / (‖num‖₂ + ‖ana‖₂), 0 when both are 0.
    pub relative_difference: f64,
    /// relative_difference ≤ 1e−7.
    pub passed: bool,
}

impl From<CheckReport> for CheckOut {
    fn from(c: CheckReport) -> Self {
        CheckOut {
            epsilon: c.epsilon,
            max_abs_error: c.max_abs_error,
            max_rel_error: c.max_rel_error,
            relative_difference: c.relative_difference,
            passed: c.passed,
        }
    }
}

/// Loss, gradients, and the check when asked for.
#[derive(Serialize, ToSchema)]
pub struct GradientResponse<'a> {
    pub loss: LossOut<'a>,
    pub count: usize,
    /// a = activation(z) (only with logits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activations: Option<ArrayOut<'a>>,
    /// dL/da.
    pub d_predictions: ArrayOut<'a>,
    /// dL/dz (only with logits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d_logits: Option<ArrayOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

impl<'a> GradientResponse<'a> {
    /// The response to `r`.
    pub fn new(r: &'a GradientResult) -> Self {
        GradientResponse {
            loss: LossOut(&r.loss),
            count: r.count,
            activations: r.activations.as_ref().map(ArrayOut),
            d_predictions: ArrayOut(&r.d_predictions),
            d_logits: r.d_logits.as_ref().map(ArrayOut),
            check: r.check.map(CheckOut::from),
            guard: r.guard.describe(),
        }
    }

    /// About how many numbers the response holds (to size its buffer).
    pub fn numbers(r: &GradientResult) -> usize {
        r.d_predictions.len()
            + r.activations.as_ref().map_or(0, Array::len)
            + r.d_logits.as_ref().map_or(0, Array::len)
    }
}
