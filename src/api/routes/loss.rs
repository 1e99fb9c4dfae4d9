//! `POST /loss/{kind}`: a loss value and, on request, its gradient — JSON or safetensors
//! bodies in, JSON or safetensors answers out (API.md "Binary bodies").

use axum::extract::State;
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use serde::Serialize;

use crate::api::extract::{ArrayBody, KindPath};
use crate::api::problem::ApiError;
use crate::api::routes::{json_response, to_json};
use crate::api::safetensors::{self, Answer, Encoded, TensorFields, safetensors_response};
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::NumArray;
use crate::api::wire::loss::{LossRequest, LossResponse};
use crate::compute::{Array, ComputeError, LossKind, LossResult, LossSpec, LossValue, Reduction};

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

/// The non-array fields of a safetensors answer (`__metadata__.response`): the arrays
/// (`gradient`, and `loss` under `none`) are its tensors.
#[derive(Serialize)]
pub struct LossMeta {
    /// The loss kind.
    pub kind: &'static str,
    /// `mean` | `sum` | `none`.
    pub reduction: &'static str,
    /// The number of terms.
    pub count: usize,
    /// The reduced loss (`mean`, `sum`); under `none` the terms are the `loss` tensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
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
    loss(state, kind, answer, body).await
}

/// `POST /loss/<name>` for one known kind: [`post_loss`] with the kind fixed by its route,
/// so a request pays no path parameter (axum's captured-parameter list and its decoding,
/// a `String`, the kind parsed from it). app.rs puts one beside `/loss/{kind}` per kind;
/// the spec documents the template alone, and the metrics label both by it.
pub fn post_kind(kind: LossKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>, answer: Answer, body: ArrayBody| {
            loss(state, kind, answer, body)
        },
    )
}

/// The loss of `kind` over the body, answered as asked.
async fn loss(
    state: AppState,
    kind: LossKind,
    answer: Answer,
    body: ArrayBody,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    let heavy = body.len() > SMALL_BODY_BYTES;
    state
        .compute(heavy, move |_cancel| {
            let req: LossRequest = body.parse()?;
            evaluate(kind, req, answer).map_err(|e| compute_error(e, secs))
        })
        .await
}

/// Parsed request → compute → the answer (JSON or safetensors).
fn evaluate(kind: LossKind, req: LossRequest, answer: Answer) -> Result<Response, ComputeError> {
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
    Ok(match answer {
        Answer::Json => json_response(to_json(
            &LossResponse::new(kind, reduction, &r),
            LossResponse::numbers(&r),
        )),
        Answer::Safetensors => safetensors_response(encode(kind, reduction, r)),
    })
}

/// The safetensors answer: the arrays as tensors (sent as computed), the rest as
/// [`LossMeta`].
fn encode(kind: LossKind, reduction: Reduction, r: LossResult) -> Encoded {
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
    if let LossValue::Terms(t) = r.loss {
        tensors.push(("loss", t));
    }
    if let Some(g) = r.gradient {
        tensors.push(("gradient", g));
    }
    safetensors::encode(tensors, &meta)
}
