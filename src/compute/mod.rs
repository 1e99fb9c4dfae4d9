//! The shared, stateless compute core: pure, synchronous, deterministic f64 math.
//!
//! Notation (as API.md): `a` predictions (the model output), `y` targets, `z` logits,
//! `W`, `b` the dense layer's weights and bias, `m` rows (samples), `k` columns.
//!
//! Conventions owned here:
//! - every value is an f64; every reduction goes through [`numeric::accurate_sum`],
//!   one fixed summation order, so the same request gives the same bits everywhere;
//! - errors are [`ComputeError`] values naming a JSON pointer into the request
//!   (`/targets/3`, `/predictions/2/1`); nothing here knows HTTP, reads the
//!   environment, logs, or panics on user input;
//! - long work takes a [`Cancel`] (deadline and/or flag) as an argument.

pub mod activation;
pub mod array;
pub mod chain;
pub mod check;
pub mod error;
pub mod grade;
pub mod gradient;
pub mod landscape;
pub mod loss;
pub mod numeric;
pub mod params;
pub mod reduction;
pub mod terms;
pub mod train;

pub use activation::Activation;
pub use array::{Array, Shape};
pub use error::{Cancel, ComputeError, ErrorKind};
pub use loss::{ActivationRule, Domain, KindInfo, LossKind, LossResult, LossSpec, Values};
pub use params::{ParamDefault, ParamSpec, ParamValue, Params};
pub use reduction::Reduction;
pub use terms::{Guard, LossValue, Per};
