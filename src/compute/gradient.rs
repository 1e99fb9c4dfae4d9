//! `/gradient`'s computation (API.md, /gradient): dL/da for predictions a, or
//! a = act(z), dL/da and dL/dz for logits z, with an optional central-difference check
//! of the gradient that was asked for (d_logits with logits, else d_predictions).
//!
//! Owned here, as math-level rules: exactly one of predictions and logits is given
//! (both → an error at `/logits`, none → at `/predictions`); an activation and its
//! params apply to logits only (with predictions: an error at `/activation`, unless it
//! is `identity`, or at `/activation_params`).
//!
//! In a check, a step that leaves the loss's domain (a probability row perturbed past
//! the 1e-6 sum tolerance, a = 1 + h for bce) is not a client error: that element is
//! unmeasurable and the check fails (check.rs treats non-finite values so).

use super::activation::Activation;
use super::array::Array;
use super::chain::Chain;
use super::check::{CheckReport, central_difference};
use super::error::ComputeError;
use super::loss::{Guard, LossKind, LossSpec, LossValue};
use super::params::Params;
use super::reduction::Reduction;

/// The validated inputs of a gradient request.
#[derive(Clone, Copy, Debug)]
pub struct GradientSpec<'a> {
    /// The loss kind and its params.
    pub loss: LossKind,
    /// The params of the loss kind.
    pub params: &'a Params,
    /// How the terms are reduced.
    pub reduction: Reduction,
    /// One weight per row (per element for a flat elementwise input).
    pub weights: Option<&'a [f64]>,
    /// The targets y.
    pub targets: &'a Array,
    /// The model output a (give this or `logits`).
    pub predictions: Option<&'a Array>,
    /// The pre-activation z (give this or `predictions`).
    pub logits: Option<&'a Array>,
    /// The activation's name (default `identity`) and its params.
    pub activation: Option<&'a str>,
    /// The params of the activation.
    pub activation_params: &'a Params,
    /// Whether to run the central-difference check.
    pub check: bool,
}

/// Everything a gradient response holds.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientResult {
    /// The loss, reduced as asked.
    pub loss: LossValue,
    /// The number of terms.
    pub count: usize,
    /// a = act(z) (only with logits).
    pub activations: Option<Array>,
    /// dL/da.
    pub d_predictions: Array,
    /// dL/dz (only with logits).
    pub d_logits: Option<Array>,
    /// The central-difference check, when asked for.
    pub check: Option<CheckReport>,
    /// The numerical guards that acted.
    pub guard: Guard,
}

/// The loss and its gradients for `spec` (see the module doc).
pub fn gradient(spec: &GradientSpec<'_>) -> Result<GradientResult, ComputeError> {
    match (spec.predictions, spec.logits) {
        (Some(_), Some(_)) => Err(ComputeError::invalid(
            "/logits",
            "give predictions or logits, not both",
        )),
        (None, None) => Err(ComputeError::invalid(
            "/predictions",
            "one of predictions (a) or logits (z) is required",
        )),
        (Some(a), None) => of_predictions(spec, a),
        (None, Some(z)) => of_logits(spec, z),
    }
}

fn of_predictions(spec: &GradientSpec<'_>, a: &Array) -> Result<GradientResult, ComputeError> {
    if spec.activation.is_some_and(|name| name != "identity") {
        return Err(ComputeError::invalid(
            "/activation",
            "an activation applies to logits; with predictions there is none (send logits instead)",
        ));
    }
    if !spec.activation_params.is_empty() {
        return Err(ComputeError::invalid(
            "/activation_params",
            "activation_params apply to logits only",
        ));
    }
    let (targets, reduction, weights) = (spec.targets, spec.reduction, spec.weights);
    let loss = LossSpec::new(spec.loss, spec.params, false)?;
    let r = loss.evaluate(a, targets, reduction, weights, true)?;
    let d_predictions = r.gradient.unwrap_or_else(|| a.zeros_like());
    let check = if spec.check {
        Some(central_difference(a, d_predictions.data(), |x| {
            Ok(loss
                .evaluate(x, targets, reduction, weights, false)
                .map_or(f64::NAN, |r| r.loss.total()))
        })?)
    } else {
        None
    };
    Ok(GradientResult {
        loss: r.loss,
        count: r.count,
        activations: None,
        d_predictions,
        d_logits: None,
        check,
        guard: r.guard,
    })
}

fn of_logits(spec: &GradientSpec<'_>, z: &Array) -> Result<GradientResult, ComputeError> {
    let activation = Activation::parse(
        spec.activation.unwrap_or("identity"),
        spec.activation_params,
    )?;
    let (targets, reduction, weights) = (spec.targets, spec.reduction, spec.weights);
    let chain = Chain::new(spec.loss, spec.params, activation)?;
    let r = chain.evaluate(z, targets, reduction, weights)?;
    let check = if spec.check {
        Some(central_difference(z, r.d_logits.data(), |x| {
            Ok(chain
                .evaluate(x, targets, reduction, weights)
                .map_or(f64::NAN, |r| r.loss.total()))
        })?)
    } else {
        None
    };
    Ok(GradientResult {
        loss: r.loss,
        count: r.count,
        activations: Some(r.activations),
        d_predictions: r.d_predictions,
        d_logits: Some(r.d_logits),
        check,
        guard: r.guard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(targets: &'a Array, empty: &'a Params) -> GradientSpec<'a> {
        GradientSpec {
            loss: LossKind::Mse,
            params: empty,
            reduction: Reduction::Mean,
            weights: None,
            targets,
            predictions: None,
            logits: None,
            activation: None,
            activation_params: empty,
            check: false,
        }
    }

    #[test]
    fn exactly_one_of_predictions_and_logits_is_required() {
        let (y, p) = (Array::flat(vec![1.0, 0.0]), Params::default());
        let a = Array::flat(vec![0.5, 0.5]);
        let none = gradient(&spec(&y, &p)).unwrap_err();
        assert_eq!(none.field, "/predictions");
        let both = GradientSpec {
            predictions: Some(&a),
            logits: Some(&a),
            ..spec(&y, &p)
        };
        assert_eq!(gradient(&both).unwrap_err().field, "/logits");
    }

    #[test]
    fn an_activation_with_predictions_is_refused_unless_identity() {
        let (y, p) = (Array::flat(vec![1.0, 0.0]), Params::default());
        let a = Array::flat(vec![0.5, 0.5]);
        let with = |activation| GradientSpec {
            predictions: Some(&a),
            activation,
            ..spec(&y, &p)
        };
        assert_eq!(
            gradient(&with(Some("sigmoid"))).unwrap_err().field,
            "/activation"
        );
        assert!(gradient(&with(Some("identity"))).is_ok());
    }

    #[test]
    fn identity_logits_give_the_predictions_gradient_and_a_passing_check() {
        let (y, p) = (Array::flat(vec![1.0, 0.0, -1.5]), Params::default());
        let a = Array::flat(vec![0.5, 2.0, -1.0]);
        let of_a = gradient(&GradientSpec {
            predictions: Some(&a),
            check: true,
            ..spec(&y, &p)
        })
        .unwrap();
        let of_z = gradient(&GradientSpec {
            logits: Some(&a),
            check: true,
            ..spec(&y, &p)
        })
        .unwrap();
        // mse: 2(a − y)/n
        assert_eq!(
            of_a.d_predictions.data(),
            &[-1.0 / 3.0, 4.0 / 3.0, 1.0 / 3.0]
        );
        assert_eq!(of_a.loss, LossValue::Scalar(1.5));
        assert_eq!(of_z.d_logits.as_ref(), Some(&of_a.d_predictions));
        assert_eq!(of_z.activations.as_ref(), Some(&a));
        assert!(of_a.check.is_some_and(|c| c.passed));
        assert!(of_z.check.is_some_and(|c| c.passed));
        assert_eq!(of_a.activations, None);
    }
}
