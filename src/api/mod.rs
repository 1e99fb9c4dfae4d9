//! HTTP only: JSON in → compute call → JSON out. Config, state, the router and its
//! layers, the accept loop, problem+json errors, our extractor, wire shapes, NDJSON
//! streaming, the OpenAPI document.

#![warn(missing_docs)]

pub mod app;
pub mod compress;
// classserver's files, documented in their own change
#[allow(missing_docs)]
pub mod config;
pub mod cors;
pub mod edge;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod ndjson;
pub mod openapi;
pub mod priority;
pub mod problem;
pub mod routes;
pub mod safetensors;
pub mod serve;
#[allow(missing_docs)]
pub mod state;
pub mod version;
pub mod wire;
pub mod wire_grade;

pub use app::app;
pub use config::Config;
pub use state::AppState;
