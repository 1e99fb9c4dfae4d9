//! `POST /loss/{kind}`: a loss value and, on request, its gradient.

use axum::extract::State;
use axum::response::Response;

use crate::api::extract::{JsonBytes, KindPath, parse_json};
use crate::api::problem::ApiError;
use crate::api::routes::{json_response, to_json};
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::loss::{LossRequest, LossResponse};
use crate::compute::{ComputeError, LossKind, LossSpec};

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
fn evaluate(kind: LossKind, req: LossRequest) -> Result<Vec<u8>, ComputeError> {
    let spec = LossSpec::new(kind, &req.params.0, req.from_logits)?;
    let reduction = req.reduction.into();
    let r = spec.evaluate(
        &req.predictions.0,
        &req.targets.0,
        reduction,
        req.weights.as_deref(),
        req.gradient,
    )?;
    let res = LossResponse::new(kind, reduction, &r);
    Ok(to_json(&res, LossResponse::numbers(&r)))
}
