//! `POST /landscape` (JSON, or the SVG contour picture) and `GET /landscape/examples`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use crate::api::extract::{JsonBytes, parse_json};
use crate::api::problem::ApiError;
use crate::api::routes::train::train_limits;
use crate::api::routes::{json_frames_response, json_response};
use crate::api::state::{AppState, compute_error};
use crate::api::wire::landscape::{
    LandscapeExample, LandscapeRequest, LandscapeResponse, grid_rows_json, json_frames,
};
use crate::compute::landscape::{self, LandscapeLimits};

/// Whether the client asked for the picture.
fn wants_svg(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("image/svg+xml") && !accept.contains("application/json")
}

/// The loss surface of a /train setup over two of its parameters.
#[utoipa::path(
    post,
    path = "/landscape",
    tag = "training",
    request_body(content = LandscapeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The grid of /train's objective (rows = y values, columns = x values, `null` where not finite), its minimum, and the projected path of the run when `path` is given; with `Accept: image/svg+xml` the filled contour picture with labelled isolines, colour bar and the path.",
            content(
                (LandscapeResponse = "application/json"),
                (String = "image/svg+xml"),
            )),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_landscape(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let svg = wants_svg(&headers);
    let st = state.clone();
    let secs = state.config.timeout_secs;
    let out = state
        .compute(true, move |cancel| {
            let req: LandscapeRequest = parse_json(&body)?;
            drop(body);
            let (spec, title) = req.into_spec().map_err(|e| compute_error(e, secs))?;
            let limits = LandscapeLimits {
                train: train_limits(&st),
                max_grid_points: st.config.max_grid_points,
            };
            let prepared = landscape::prepare(spec, &limits).map_err(|e| compute_error(e, secs))?;
            if svg {
                let l = prepared
                    .compute(cancel)
                    .map_err(|e| compute_error(e, secs))?;
                return Ok(vec![crate::plot::landscape_svg(&l, &title).into_bytes()]);
            }
            // the grid's rows are printed inside the grid's pass, on every core
            let nx = prepared.x().values.len();
            let (l, rows) = prepared
                .compute_with(cancel, |first, values| grid_rows_json(first, values, nx))
                .map_err(|e| compute_error(e, secs))?;
            Ok(json_frames(&l, rows))
        })
        .await?;
    let mut res = json_frames_response(out);
    if svg {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        );
    }
    Ok(res)
}

static EXAMPLES: OnceLock<Vec<u8>> = OnceLock::new();

/// Ready-made landscapes: the textbook neuron's (w, b) plane under l2 and under bce, each
/// with the path of its run.
#[utoipa::path(get, path = "/landscape/examples", tag = "training",
    responses((status = 200, description = "Examples", body = Vec<LandscapeExample>)))]
pub async fn get_examples() -> Response {
    let bytes = EXAMPLES.get_or_init(|| {
        serde_json::from_str::<serde_json::Value>(include_str!("../landscape_examples.json"))
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_else(|_| b"[]".to_vec())
    });
    json_response(bytes.clone())
}
