//! HTTP only: JSON in → compute call → JSON out. Config, state, the router and its
//! layers, problem+json errors, our extractor, wire shapes, NDJSON streaming, the OpenAPI
//! document. What exists only for speed — the accept loop, the CORS and compression
//! shortcuts, the hand-written futures of the edge, the route templates — is in
//! [`stack`], each with its plain tower/axum equivalent and what it saves.

pub mod app;
pub mod config;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod ndjson;
pub mod openapi;
pub mod priority;
pub mod problem;
pub mod routes;
pub mod safetensors;
pub mod stack;
pub mod state;
pub mod version;
pub mod wire;
pub mod wire_grade;

pub use app::app;
pub use config::Config;
/// The accept loop, at the path `main` and the socket tests call (`api::serve::serve`).
pub use stack::serve;
pub use state::AppState;
