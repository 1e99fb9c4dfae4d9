//! losslab: loss functions, their gradients and gradient-descent training runs.
//!
//! `compute` is the pure, synchronous f64 core; `api` (HTTP) translates JSON to it.

pub mod compute;
pub mod plot;
