//! `POST /loss/{kind}`: a loss value and, on request, its gradient.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{JsonBytes, KindPath, parse_json};
use crate::api::problem::ApiError;
use crate::api::routes::{json_response, to_json};
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::{ArrayOut, LossOut, NumArray, ParamsDto, ReductionDto};
use crate::compute::{Array, LossKind, LossSpec, LossValue};

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

/// Evaluate a loss kind.
#[utoipa::path(
    post,
    path = "/loss/{kind}",
    tag = "losses",
    params(("kind" = String, Path, description = "The loss kind (GET /losses lists them).",
        example = "mse")),
    request_body(content = LossRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The loss (and gradient)", body = LossResponse),
        crate::api::openapi::Malformed, crate::api::openapi::UnknownKind,
        crate::api::openapi::TooLarge, crate::api::openapi::WrongContentType,
        crate::api::openapi::Invalid, crate::api::openapi::RateLimited,
        crate::api::openapi::Unavailable,
    )
)]
pub async fn post_loss(
    State(state): State<AppState>,
    KindPath(kind): KindPath,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    let heavy = body.len() > SMALL_BODY_BYTES;
    let bytes = state
        .compute(heavy, move |_cancel| {
            let req: LossRequest = parse_json(&body)?;
            drop(body);
            evaluate(kind, req).map_err(|e| compute_error(e, secs))
        })
        .await?;
    Ok(json_response(bytes))
}

/// Parsed request → compute → serialised response.
fn evaluate(kind: LossKind, req: LossRequest) -> Result<Vec<u8>, crate::compute::ComputeError> {
    let spec = LossSpec::new(kind, &req.params.0, req.from_logits)?;
    let reduction = req.reduction.into();
    let r = spec.evaluate(
        &req.predictions.0,
        &req.targets.0,
        reduction,
        req.weights.as_deref(),
        req.gradient,
    )?;
    let res = LossResponse {
        kind: kind.name(),
        reduction: reduction.name(),
        count: r.count,
        loss: LossOut(&r.loss),
        gradient: r.gradient.as_ref().map(ArrayOut),
        guard: r.guard.describe(),
    };
    let numbers = r.gradient.as_ref().map_or(0, Array::len)
        + match &r.loss {
            LossValue::Terms(t) => t.len(),
            LossValue::Scalar(_) => 1,
        };
    Ok(to_json(&res, numbers))
}
