//! `POST /train` (JSON, NDJSON stream, or SVG loss curve) and `GET /train/examples`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::extract::{JsonBytes, parse_json};
use crate::api::ndjson::{self, NDJSON};
use crate::api::problem::ApiError;
use crate::api::routes::json_response;
use crate::api::state::{AppState, SMALL_BODY_BYTES, compute_error};
use crate::api::wire::train::{TraceRowOut, TrainExample, TrainRequest, TrainResponse};
use crate::compute::train::{Prepared, TrainLimits};

/// The limits of a training run, from the configuration.
pub fn train_limits(state: &AppState) -> TrainLimits {
    TrainLimits {
        max_iterations: state.config.max_iterations,
        max_trace_rows: state.config.max_trace_rows,
        max_trace_numbers: state.config.max_trace_numbers,
    }
}

/// Parse and validate a request into a ready-to-run training (all checks before work).
fn parse_and_prepare(body: &[u8], state: &AppState) -> Result<Prepared, ApiError> {
    let req: TrainRequest = parse_json(body)?;
    req.into_prepared(&train_limits(state))
        .map_err(|e| compute_error(e, state.config.timeout_secs))
}

enum Wants {
    Json,
    Ndjson,
    Svg,
}

fn wants(headers: &HeaderMap) -> Wants {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains(NDJSON) {
        Wants::Ndjson
    } else if accept.contains("image/svg+xml") && !accept.contains("application/json") {
        Wants::Svg
    } else {
        Wants::Json
    }
}

/// Train one dense layer by gradient descent.
#[utoipa::path(
    post,
    path = "/train",
    tag = "training",
    request_body(content = TrainRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The run: JSON by default; with `Accept: application/x-ndjson` one trace row per line, flushed as computed, then the summary without `trace` (a failure mid-stream ends with one problem object); with `Accept: image/svg+xml` the loss curve of the trace as SVG.",
            content(
                (TrainResponse = "application/json"),
                (String = "application/x-ndjson"),
                (String = "image/svg+xml"),
            )),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_train(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    let st = state.clone();
    match wants(&headers) {
        Wants::Json => {
            let bytes = state
                .compute(true, move |cancel| {
                    let run = parse_and_prepare(&body, &st)?;
                    drop(body);
                    let r = run.run(cancel).map_err(|e| compute_error(e, secs))?;
                    Ok(serde_json::to_vec(&TrainResponse::new(&r, true)).unwrap_or_default())
                })
                .await?;
            Ok(json_response(bytes))
        }
        Wants::Svg => {
            let svg = state
                .compute(true, move |cancel| {
                    let run = parse_and_prepare(&body, &st)?;
                    if run.max_trace_rows() == 0 {
                        return Err(ApiError::invalid(
                            "/trace_every",
                            "an SVG loss curve needs trace rows: trace_every must be > 0",
                        ));
                    }
                    let r = run.run(cancel).map_err(|e| compute_error(e, secs))?;
                    let points: Vec<(u64, f64)> =
                        r.trace.iter().map(|t| (t.iteration, t.loss)).collect();
                    Ok(crate::plot::loss_curve_svg(&points, "training loss"))
                })
                .await?;
            let mut res = svg.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            );
            Ok(res)
        }
        Wants::Ndjson => {
            // parse and check before answering, so invalid requests get their real status
            let heavy = body.len() > SMALL_BODY_BYTES;
            let run = state
                .compute(heavy, move |_| parse_and_prepare(&body, &st))
                .await?;
            ndjson::stream(&state, move |cancel, lines| {
                let r = run
                    .run_streaming(cancel, &mut |row| lines.send(&TraceRowOut::new(&row)))
                    .map_err(|e| compute_error(e, secs))?;
                lines.send(&TrainResponse::new(&r, false));
                Ok(())
            })
            .await
        }
    }
}

static EXAMPLES: OnceLock<Vec<u8>> = OnceLock::new();

/// Ready-made requests from the textbook: the single neuron (l2, then bce) first.
#[utoipa::path(get, path = "/train/examples", tag = "training",
    responses((status = 200, description = "Examples", body = Vec<TrainExample>)))]
pub async fn get_examples() -> Response {
    let bytes = EXAMPLES.get_or_init(|| {
        // compact the committed file once
        serde_json::from_str::<serde_json::Value>(include_str!("../train_examples.json"))
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_else(|_| b"[]".to_vec())
    });
    json_response(bytes.clone())
}
