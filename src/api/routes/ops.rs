//! Operations: `/healthz` (alive), `/readyz` (503 from SIGTERM on), `/metrics`, `/version`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::problem::ApiError;
use crate::api::state::AppState;
use crate::api::version::VERSION;

/// A liveness or readiness answer.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The service version.
#[derive(Serialize, ToSchema)]
pub struct VersionOut {
    /// The version, as in the `losslab-version` header.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// Alive: answers 200 as long as the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Ready for traffic: 503 from SIGTERM on, so load balancers stop sending.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Status),
        crate::api::openapi::Unavailable))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.ready.load(Ordering::Relaxed) {
        Ok(Json(Status { status: "ready" }))
    } else {
        Err(ApiError::Unavailable("shutting down".into()))
    }
}

/// Prometheus text metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(
        state.heavy.running(state.config.concurrency()),
        state.heavy.waiting(),
    );
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The service version (also in every response's `losslab-version` header).
#[utoipa::path(get, path = "/version", tag = "operations",
    responses((status = 200, description = "Version", body = VersionOut)))]
pub async fn version() -> Json<VersionOut> {
    Json(VersionOut { version: VERSION })
}
