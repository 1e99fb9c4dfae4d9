//! The bare axum handler the small-request benchmarks hold losslab against: `POST
//! /loss/mse` parsed with sonic-rs, the mean squared error summed and answered as
//! `{"count","loss"}`, and `GET /healthz` — on `axum::serve`, with no layers, no
//! validation, no metrics. It is the ceiling of a service on this HTTP stack, not a
//! service: it answers nothing else (its `/train` is a 404, which `small.sh` skips).
//!
//! Built with the crate's release profile, as losslab is:
//!
//! ```sh
//! cargo build --release --example bare
//! ADDR=127.0.0.1:8091 target/release/examples/bare &
//! ```
//!
//! Listens on `ADDR` (or `LOSSLAB_ADDR`, so the scripts start it as they start losslab),
//! 127.0.0.1:8091 by default.

use axum::{Json, Router, body::Bytes, http::StatusCode, routing};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Body {
    predictions: Vec<f64>,
    targets: Vec<f64>,
}

#[derive(Serialize)]
struct Answer {
    count: usize,
    loss: f64,
}

async fn mse(body: Bytes) -> Result<Json<Answer>, StatusCode> {
    let b: Body = sonic_rs::from_slice(&body).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    if b.predictions.len() != b.targets.len() || b.predictions.is_empty() {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let sum: f64 = b
        .predictions
        .iter()
        .zip(&b.targets)
        .map(|(a, y)| (a - y) * (a - y))
        .sum();
    let count = b.predictions.len();
    Ok(Json(Answer {
        count,
        loss: sum / count as f64,
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR")
        .or_else(|_| std::env::var("LOSSLAB_ADDR"))
        .unwrap_or_else(|_| "127.0.0.1:8091".into());
    let app = Router::new()
        .route("/loss/mse", routing::post(mse))
        .route("/healthz", routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
