//! `POST /gradient`: dL/da for predictions, or a, dL/da and dL/dz through an activation
//! for logits, with an optional central-difference check.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{JsonBytes, parse_json};
use crate::api::problem::ApiError;
use crate::api::routes::json_response;
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::{
    ActivationName, ArrayOut, KindDto, LossOut, NumArray, ParamsDto, ReductionDto,
};
use crate::compute::check::{CheckReport, central_difference};
use crate::compute::{Activation, Array, ComputeError, LossSpec, LossValue, chain};

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

/// Gradients of a loss, through an activation when logits are given.
#[utoipa::path(
    post,
    path = "/gradient",
    tag = "losses",
    request_body(content = GradientRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Loss and gradients", body = GradientResponse),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_gradient(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    // a check evaluates the loss twice per element: always heavy
    let heavy = body.len() > SMALL_BODY_BYTES || memchr_check(&body);
    let bytes = state
        .compute(heavy, move |_cancel| {
            let req: GradientRequest = parse_json(&body)?;
            drop(body);
            evaluate(req).map_err(|e| compute_error(e, secs))
        })
        .await?;
    Ok(json_response(bytes))
}

// In a check, a step that leaves the loss's domain (a probability row perturbed past the
// 1e-6 sum tolerance, a = 1 + h for bce) is not a client error: that element is reported
// as unmeasurable and the check fails (check.rs treats non-finite values so).

/// Whether the body may ask for a check (a cheap over-approximation before parsing).
fn memchr_check(body: &[u8]) -> bool {
    body.windows(7).any(|w| w == b"\"check\"")
}

fn evaluate(req: GradientRequest) -> Result<Vec<u8>, ComputeError> {
    let kind = req.loss.0;
    let params = &req.params.0;
    let reduction = req.reduction.into();
    let weights = req.weights.as_deref();
    let targets = &req.targets.0;
    match (req.predictions, req.logits) {
        (Some(_), Some(_)) => Err(ComputeError::invalid(
            "/logits",
            "give predictions or logits, not both",
        )),
        (None, None) => Err(ComputeError::invalid(
            "/predictions",
            "one of predictions (a) or logits (z) is required",
        )),
        (Some(NumArray(a)), None) => {
            if let Some(ActivationName(name)) = &req.activation
                && name != "identity"
            {
                return Err(ComputeError::invalid(
                    "/activation",
                    "an activation applies to logits; with predictions there is none (send logits instead)",
                ));
            }
            if !req.activation_params.0.is_empty() {
                return Err(ComputeError::invalid(
                    "/activation_params",
                    "activation_params apply to logits only",
                ));
            }
            let spec = LossSpec::new(kind, params, false)?;
            let r = spec.evaluate(&a, targets, reduction, weights, true)?;
            let grad = r.gradient.unwrap_or_else(|| a.zeros_like());
            let check = if req.check {
                Some(central_difference(&a, grad.data(), |x| {
                    Ok(spec
                        .evaluate(x, targets, reduction, weights, false)
                        .map_or(f64::NAN, |r| r.loss.total()))
                })?)
            } else {
                None
            };
            Ok(render(
                &r.loss,
                r.count,
                None,
                &grad,
                None,
                check,
                r.guard.describe(),
            ))
        }
        (None, Some(NumArray(z))) => {
            let name = req.activation.map_or("identity".to_string(), |n| n.0);
            let act = Activation::parse(&name, &req.activation_params.0)?;
            let r = chain::through_activation(kind, params, &act, &z, targets, reduction, weights)?;
            let check = if req.check {
                Some(central_difference(&z, r.d_logits.data(), |x| {
                    Ok(chain::through_activation(
                        kind, params, &act, x, targets, reduction, weights,
                    )
                    .map_or(f64::NAN, |r| r.loss.total()))
                })?)
            } else {
                None
            };
            Ok(render(
                &r.loss,
                r.count,
                Some(&r.activations),
                &r.d_predictions,
                Some(&r.d_logits),
                check,
                r.guard.describe(),
            ))
        }
    }
}

fn render(
    loss: &LossValue,
    count: usize,
    activations: Option<&Array>,
    d_predictions: &Array,
    d_logits: Option<&Array>,
    check: Option<CheckReport>,
    guard: Option<String>,
) -> Vec<u8> {
    let res = GradientResponse {
        loss: LossOut(loss),
        count,
        activations: activations.map(ArrayOut),
        d_predictions: ArrayOut(d_predictions),
        d_logits: d_logits.map(ArrayOut),
        check: check.map(CheckOut::from),
        guard,
    };
    let numbers =
        d_predictions.len() + activations.map_or(0, Array::len) + d_logits.map_or(0, Array::len);
    super::to_json(&res, numbers)
}
