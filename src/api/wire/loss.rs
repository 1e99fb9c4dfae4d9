//! `POST /loss/{kind}`'s JSON: the request and the response built from a [`LossResult`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ArrayOut, LossOut, NumArray, ParamsDto, ReductionDto};
use crate::compute::{Array, LossKind, LossResult, LossValue, Reduction};

/// A loss request: `predictions` (a) and `targets` (y) of the same shape (or, for
/// `cross_entropy` and `nll`, one class index per row as `targets`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5], "gradient": true}))]
pub struct LossRequest {
    /// The model output a: `number[]` or `number[][]` (rows = samples).
    pub predictions: NumArray,
    /// The targets y: the predictions' shape, or one class index per row (cross_entropy, nll).
    pub targets: NumArray,
    /// `mean` (default) | `sum` | `none`.
    #[serde(default)]
    pub reduction: ReductionDto,
    /// One non-negative weight per row (per element for a flat elementwise input), broadcast
    /// over that row's terms. `mean` divides Σ s·l by Σ s over every term.
    #[schema(value_type = Option<Vec<f64>>)]
    pub weights: Option<Vec<f64>>,
    /// Predictions are logits z (bce, cross_entropy, focal) or log-rates (poisson); stable forms.
    #[serde(default)]
    pub from_logits: bool,
    /// Parameters of the kind (GET /losses lists them with defaults and ranges).
    #[serde(default)]
    pub params: ParamsDto,
    /// Also return dL/d(predictions) of the reduced loss (for `none`: of the sum).
    #[serde(default)]
    pub gradient: bool,
}

/// The loss, its term count, and the gradient when asked for.
#[derive(Serialize, ToSchema)]
pub struct LossResponse<'a> {
    #[schema(example = "mse")]
    pub kind: &'static str,
    #[schema(example = "mean")]
    pub reduction: &'static str,
    /// The number of terms (elements for elementwise kinds, rows for per-row kinds).
    #[schema(example = 3)]
    pub count: usize,
    pub loss: LossOut<'a>,
    /// dL/d(predictions), shaped like predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradient: Option<ArrayOut<'a>>,
    /// Present exactly when a numerical guard acted; says which.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

impl<'a> LossResponse<'a> {
    /// The response to `r`, a `kind` reduced by `reduction`.
    pub fn new(kind: LossKind, reduction: Reduction, r: &'a LossResult) -> Self {
        LossResponse {
            kind: kind.name(),
            reduction: reduction.name(),
            count: r.count,
            loss: LossOut(&r.loss),
            gradient: r.gradient.as_ref().map(ArrayOut),
            guard: r.guard.describe(),
        }
    }

    /// About how many numbers the response holds (to size its buffer).
    pub fn numbers(r: &LossResult) -> usize {
        r.gradient.as_ref().map_or(0, Array::len)
            + match &r.loss {
                LossValue::Terms(t) => t.len(),
                LossValue::Scalar(_) => 1,
            }
    }
}
