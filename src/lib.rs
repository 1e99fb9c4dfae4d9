//! losslab: loss functions, their gradients and gradient-descent training runs.
//!
//! `compute` is the pure, synchronous f64 core; `api` (HTTP) translates JSON to it;
//! `plot` draws the SVG loss curve.

#![warn(missing_docs)]

pub mod api;
pub mod compute;
pub mod plot;

pub use api::{AppState, Config, app};
