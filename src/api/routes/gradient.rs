//! `POST /gradient`: dL/da for predictions, or a, dL/da and dL/dz through an activation
//! for logits, with an optional central-difference check (compute::gradient).

use axum::extract::State;
use axum::response::Response;

use crate::api::extract::{JsonBytes, parse_json};
use crate::api::problem::ApiError;
use crate::api::routes::{json_response, to_json};
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::gradient::{GradientRequest, GradientResponse};
use crate::compute::gradient::gradient;

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
    let heavy = body.len() > SMALL_BODY_BYTES || may_check(&body);
    let bytes = state
        .compute(heavy, move |_cancel| {
            let req: GradientRequest = parse_json(&body)?;
            drop(body);
            let r = gradient(&req.spec()).map_err(|e| compute_error(e, secs))?;
            Ok(to_json(
                &GradientResponse::new(&r),
                GradientResponse::numbers(&r),
            ))
        })
        .await?;
    Ok(json_response(bytes))
}

/// Whether the body may ask for a check (a cheap over-approximation before parsing).
fn may_check(body: &[u8]) -> bool {
    body.windows(7).any(|w| w == b"\"check\"")
}
