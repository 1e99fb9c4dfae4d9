//! `POST /loss/{kind}`: a loss value and, on request, its gradient.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{ArrayBody, KindPath};
use crate::api::problem::ApiError;
use crate::api::routes::{json_response, to_json};
use crate::api::safetensors::{self, Answer, TensorFields, safetensors_response};
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::{ArrayOut, LossOut, NumArray, ParamsDto, ReductionDto};
use crate::compute::{Array, ComputeError, LossKind, LossSpec, LossValue};

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

/// A safetensors body: `predictions`, `targets` and `weights` may be tensors.
impl TensorFields for LossRequest {
    const TENSORS: &'static [&'static str] = &["predictions", "targets", "weights"];
    fn put(&mut self, name: &str, array: Array) -> Result<(), ComputeError> {
        match name {
            "predictions" => self.predictions = NumArray(array),
            "targets" => self.targets = NumArray(array),
            _ => self.weights = Some(safetensors::flat(name, array)?),
        }
        Ok(())
    }
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

/// The non-array fields of a safetensors answer (`__metadata__.response`): the arrays
/// (`gradient`, and `loss` under `none`) are its tensors.
#[derive(Serialize)]
pub struct LossMeta {
    pub kind: &'static str,
    pub reduction: &'static str,
    pub count: usize,
    /// The reduced loss (`mean`, `sum`); under `none` the terms are the `loss` tensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
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
    request_body(content(
        (LossRequest = "application/json"),
        (crate::api::safetensors::SafetensorsFile = "application/x-safetensors"),
    )),
    responses(
        (status = 200, description = "The loss (and gradient). With `Accept: application/x-safetensors`: a safetensors file with `gradient` (and `loss` under `reduction: \"none\"`) as F64 tensors of their shapes and `__metadata__.response` the JSON of the other fields (`kind`, `reduction`, `count`, the reduced `loss`, `guard`).",
            content(
                (LossResponse = "application/json"),
                (crate::api::safetensors::SafetensorsFile = "application/x-safetensors"),
            )),
        crate::api::openapi::Malformed, crate::api::openapi::UnknownKind,
        crate::api::openapi::TooLarge, crate::api::openapi::WrongContentType,
        crate::api::openapi::Invalid, crate::api::openapi::RateLimited,
        crate::api::openapi::Unavailable,
    )
)]
pub async fn post_loss(
    State(state): State<AppState>,
    KindPath(kind): KindPath,
    answer: Answer,
    body: ArrayBody,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    let heavy = body.len() > SMALL_BODY_BYTES;
    let bytes = state
        .compute(heavy, move |_cancel| {
            let req: LossRequest = body.parse()?;
            evaluate(kind, req, answer).map_err(|e| compute_error(e, secs))
        })
        .await?;
    Ok(match answer {
        Answer::Json => json_response(bytes),
        Answer::Safetensors => safetensors_response(bytes),
    })
}

/// Parsed request → compute → serialised response (JSON or safetensors).
fn evaluate(kind: LossKind, req: LossRequest, answer: Answer) -> Result<Vec<u8>, ComputeError> {
    let spec = LossSpec::new(kind, &req.params.0, req.from_logits)?;
    let reduction = req.reduction.into();
    let r = spec.evaluate(
        &req.predictions.0,
        &req.targets.0,
        reduction,
        req.weights.as_deref(),
        req.gradient,
    )?;
    drop(req); // the inputs' memory is free before the answer is written
    if answer == Answer::Safetensors {
        let meta = LossMeta {
            kind: kind.name(),
            reduction: reduction.name(),
            count: r.count,
            loss: match &r.loss {
                LossValue::Scalar(x) => Some(*x),
                LossValue::Terms(_) => None,
            },
            guard: r.guard.describe(),
        };
        let mut tensors = Vec::with_capacity(2);
        if let LossValue::Terms(t) = &r.loss {
            tensors.push(("loss", t));
        }
        if let Some(g) = &r.gradient {
            tensors.push(("gradient", g));
        }
        return Ok(safetensors::encode(&tensors, &meta));
    }
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
