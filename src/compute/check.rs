//! PLACEHOLDER (to be written): central-difference gradient check (API.md, /gradient `check`).

use super::array::Array;
use super::error::ComputeError;

/// At most this many elements are checked (else 422 at `/check`).
pub const MAX_CHECK_ELEMENTS: usize = 10_000;

/// The report of a gradient check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckReport {
    /// The relative step factor: h = epsilon·max(1, |x|).
    pub epsilon: f64,
    pub max_abs_error: f64,
    pub max_rel_error: f64,
    /// ‖num − ana‖₂ / (‖num‖₂ + ‖ana‖₂), 0 when both are 0.
    pub relative_difference: f64,
    /// relative_difference ≤ 1e−7.
    pub passed: bool,
}

/// Central differences of `f` at `x` against `analytic` (same length as x).
pub fn central_difference(
    x: &Array,
    analytic: &[f64],
    f: impl FnMut(&Array) -> Result<f64, ComputeError>,
) -> Result<CheckReport, ComputeError> {
    let _ = (x, analytic, f);
    Err(ComputeError::invalid("/check", "not implemented yet"))
}
