//! `POST /gradient`: dL/da for predictions, or a, dL/da and dL/dz through an activation
//! for logits, with an optional central-difference check (compute::gradient) — JSON or
//! safetensors bodies in, JSON or safetensors answers out (API.md "Binary bodies").

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use crate::api::extract::ArrayBody;
use crate::api::problem::ApiError;
use crate::api::routes::{json_response, to_json};
use crate::api::safetensors::{self, Answer, Encoded, TensorFields, safetensors_response};
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::NumArray;
use crate::api::wire::gradient::{CheckOut, GradientRequest, GradientResponse};
use crate::compute::gradient::{GradientResult, gradient};
use crate::compute::{Array, ComputeError, LossValue};

/// A safetensors body: `predictions` or `logits`, `targets` and `weights` may be tensors.
impl TensorFields for GradientRequest {
    const TENSORS: &'static [&'static str] = &["predictions", "logits", "targets", "weights"];
    fn put(&mut self, name: &str, array: Array) -> Result<(), ComputeError> {
        match name {
            "predictions" => self.predictions = Some(NumArray(array)),
            "logits" => self.logits = Some(NumArray(array)),
            "targets" => self.targets = NumArray(array),
            _ => self.weights = Some(safetensors::flat(name, array)?),
        }
        Ok(())
    }
}

/// The non-array fields of a safetensors answer (`__metadata__.response`): the arrays
/// (`activations`, `d_predictions`, `d_logits`, and `loss` under `none`) are its tensors.
#[derive(Serialize)]
pub struct GradientMeta {
    /// The reduced loss (`mean`, `sum`); under `none` the terms are the `loss` tensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// The number of terms.
    pub count: usize,
    /// The central-difference check, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckOut>,
    /// Present exactly when a numerical guard acted; says which.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// Gradients of a loss, through an activation when logits are given.
#[utoipa::path(
    post,
    path = "/gradient",
    tag = "losses",
    request_body(content(
        (GradientRequest = "application/json"),
        (crate::api::safetensors::SafetensorsFile = "application/x-safetensors"),
    )),
    responses(
        (status = 200, description = "Loss and gradients. With `Accept: application/x-safetensors`: a safetensors file with `d_predictions`, `activations` and `d_logits` (with logits), and `loss` under `reduction: \"none\"`, as F64 tensors of their shapes, and `__metadata__.response` the JSON of the other fields (`count`, the reduced `loss`, `check`, `guard`).",
            content(
                (GradientResponse = "application/json"),
                (crate::api::safetensors::SafetensorsFile = "application/x-safetensors"),
            )),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_gradient(
    State(state): State<AppState>,
    answer: Answer,
    body: ArrayBody,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    // a check evaluates the loss twice per element: always heavy
    let heavy = body.len() > SMALL_BODY_BYTES || may_check(&body);
    state
        .compute(heavy, move |_cancel| {
            let req: GradientRequest = body.parse()?;
            let r = gradient(&req.spec()).map_err(|e| compute_error(e, secs))?;
            drop(req); // the inputs' memory is free before the answer is written
            Ok(match answer {
                Answer::Json => json_response(to_json(
                    &GradientResponse::new(&r),
                    GradientResponse::numbers(&r),
                )),
                Answer::Safetensors => safetensors_response(encode(r)),
            })
        })
        .await
}

/// The safetensors answer: the arrays as tensors (sent as computed), the rest as
/// [`GradientMeta`].
fn encode(r: GradientResult) -> Encoded {
    let meta = GradientMeta {
        loss: match &r.loss {
            LossValue::Scalar(x) => Some(*x),
            LossValue::Terms(_) => None,
        },
        count: r.count,
        check: r.check.map(CheckOut::from),
        guard: r.guard.describe(),
    };
    let mut tensors = Vec::with_capacity(4);
    if let LossValue::Terms(t) = r.loss {
        tensors.push(("loss", t));
    }
    if let Some(a) = r.activations {
        tensors.push(("activations", a));
    }
    tensors.push(("d_predictions", r.d_predictions));
    if let Some(dz) = r.d_logits {
        tensors.push(("d_logits", dz));
    }
    safetensors::encode(tensors, &meta)
}

/// Whether the body may ask for a check (a cheap over-approximation before parsing; in a
/// safetensors header the request is JSON text inside a string, its quotes escaped).
fn may_check(body: &ArrayBody) -> bool {
    match body {
        ArrayBody::Json(b) => b.windows(7).any(|w| w == b"\"check\""),
        ArrayBody::Safetensors(frames) => frames.header_mentions(b"check"),
    }
}
