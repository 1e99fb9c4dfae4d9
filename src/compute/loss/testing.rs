//! Test helpers for the loss files: evaluate a kind on literal arrays, and check its
//! analytic gradient against central differences.

use super::*;
use crate::compute::params::ParamValue;

/// Params from `(name, number)` pairs.
pub fn params(pairs: &[(&str, f64)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), ParamValue::Number(*v)))
            .collect(),
    )
}

/// A matrix from rows (panics on ragged input: tests only).
pub fn rows(r: &[&[f64]]) -> Array {
    let cols = r[0].len();
    Array::matrix(r.concat(), r.len(), cols).expect("rectangular")
}

/// Evaluate `kind` with `params` on `a`, `y`, returning the result (gradient included).
pub fn eval(
    kind: LossKind,
    p: &Params,
    from_logits: bool,
    a: &Array,
    y: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Result<LossResult, ComputeError> {
    LossSpec::new(kind, p, from_logits)?.evaluate(a, y, reduction, weights, true)
}

/// The scalar loss (mean) and gradient.
pub fn mean(kind: LossKind, p: &Params, a: &Array, y: &Array) -> (f64, Vec<f64>) {
    let r = eval(kind, p, false, a, y, Reduction::Mean, None).expect("valid input");
    (r.loss.total(), r.gradient.expect("gradient").into_data())
}

/// Asserts |got − want| ≤ 1e−12·|want| + 1e−15.
#[track_caller]
pub fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs() + 1e-15,
        "got {got:e}, want {want:e} (diff {:e})",
        (got - want).abs()
    );
}

/// Asserts the analytic gradient of the `reduction` loss matches central differences
/// (step 1e−6·max(1, |x|)) to `tol` relative.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn fd_check(
    kind: LossKind,
    p: &Params,
    from_logits: bool,
    a: &Array,
    y: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
    tol: f64,
) {
    fd_check_step(1e-6, kind, p, from_logits, a, y, reduction, weights, tol);
}

/// [`fd_check`] with the step 1e−7·max(1, |x|): a step of 1e−6 moves a probability
/// row's sum by 1e−6, the very tolerance of the row-sum check, so a perturbed row may
/// be rejected. For the kinds whose predictions are distribution rows.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn fd_check_rows(
    kind: LossKind,
    p: &Params,
    from_logits: bool,
    a: &Array,
    y: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
    tol: f64,
) {
    fd_check_step(1e-7, kind, p, from_logits, a, y, reduction, weights, tol);
}

#[track_caller]
#[allow(clippy::too_many_arguments)]
fn fd_check_step(
    step: f64,
    kind: LossKind,
    p: &Params,
    from_logits: bool,
    a: &Array,
    y: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
    tol: f64,
) {
    let spec = LossSpec::new(kind, p, from_logits).expect("params");
    let total = |a: &Array| {
        spec.evaluate(a, y, reduction, weights, false)
            .expect("valid input")
            .loss
            .total()
    };
    let g = spec
        .evaluate(a, y, reduction, weights, true)
        .expect("valid input")
        .gradient
        .expect("gradient")
        .into_data();
    for (i, (&x, &ana)) in a.data().iter().zip(&g).enumerate() {
        let h = step * x.abs().max(1.0);
        let (mut plus, mut minus) = (a.clone(), a.clone());
        plus.data_mut()[i] = x + h;
        minus.data_mut()[i] = x - h;
        let num = (total(&plus) - total(&minus)) / (2.0 * h);
        let err = (num - ana).abs() / num.abs().max(ana.abs()).max(1e-8);
        assert!(
            err <= tol,
            "{}: element {i}: numeric {num:e} vs analytic {ana:e} (rel {err:e})",
            kind.name()
        );
    }
}
