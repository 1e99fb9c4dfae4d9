//! Loss ∘ activation (API.md, POST /gradient with `logits`, and /train's objective):
//! a = act(z), the loss on a, dL/da and dL/dz by the chain rule — and the fused
//! stable pairs, which take the loss and dL/dz from the kind's logits form instead.
//!
//! Generic pairs: the kind's probability form ([`LossSpec`] with `from_logits` false) on
//! a gives the loss and dL/da; dL/dz = act.backward(z, a, dL/da).
//!
//! Fused pairs — sigmoid + bce, sigmoid + focal, softmax + cross_entropy: the loss and
//! dL/dz are the kind's logits form evaluated on z (its gradient wrt its predictions is
//! dL/dz), so softplus(800) = 800 instead of a log clamped at −100, and for plain
//! sigmoid + bce and softmax + cross_entropy dL/dz = (a − y) times the reduction's scale.
//! Decisions for fused pairs:
//! - `params.epsilon` is validated as for the probability form but left out of the
//!   logits evaluation: working from the logits there is no probability to clip (as the
//!   reference peer). It still clips a for `d_predictions`.
//! - `d_predictions` is the probability form's gradient at a (with torch's −100 clamp,
//!   1e−12 floor and any epsilon clip). If that evaluation fails where the logits form
//!   did not (e.g. focal with γ < 1 at a probability of exactly 1), a sigmoid pair
//!   reports dL/dz / max(a(1 − a), 1e−12) — undoing σ' with torch's floor, which for
//!   plain bce is exactly torch's BCELoss gradient — and softmax + cross_entropy, whose
//!   Jacobian cannot be undone, reports that error.
//! - `guard` is the logits evaluation's guard only (the clamps that shaped the value).
//!
//! Errors name `/logits/...`: the loss sees a = act(z) as its `predictions`, and a
//! pointer to a's element i is a pointer to z's element i.

use super::activation::Activation;
use super::array::Array;
use super::error::ComputeError;
use super::loss::{LossKind, LossSpec};
use super::numeric::GRAD_FLOOR;
use super::params::{ParamValue, Params};
use super::reduction::Reduction;
use super::terms::{Guard, LossValue};

/// The result of the chain rule through an activation.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainResult {
    /// The loss of a = act(z), reduced as asked.
    pub loss: LossValue,
    /// The number of terms.
    pub count: usize,
    /// a = act(z), shaped like the logits.
    pub activations: Array,
    /// dL/da.
    pub d_predictions: Array,
    /// dL/dz.
    pub d_logits: Array,
    /// The numerical guards that acted.
    pub guard: Guard,
}

/// Evaluate `kind` (with `params`) on a = act(z): the loss reduced by `reduction` with
/// optional `weights`, dL/da and dL/dz. Errors name `/logits/...` (never `/predictions`).
pub fn through_activation(
    kind: LossKind,
    params: &Params,
    activation: &Activation,
    logits: &Array,
    targets: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Result<ChainResult, ComputeError> {
    Chain::new(kind, params, *activation)?.evaluate(logits, targets, reduction, weights)
}

/// The `mean` loss, dL/dz and a = act(z) for training (fused where API.md says so).
/// Errors name `/logits/...` (the layer's outputs z = X·W + b) or `/targets/...`.
pub fn objective(
    kind: LossKind,
    params: &Params,
    activation: &Activation,
    z: &Array,
    targets: &Array,
) -> Result<(f64, Array, Array), ComputeError> {
    Chain::new(kind, params, *activation)?.objective(z, targets)
}

/// Whether `kind` after `activation` is a fused pair (loss and dL/dz from the logits
/// form): a kind with a logits form whose activation rule names this activation
/// (sigmoid + bce, sigmoid + focal, softmax + cross_entropy).
pub fn is_fused(kind: LossKind, activation: &Activation) -> bool {
    let info = kind.info();
    info.from_logits && info.activation.fuses_with(activation)
}

/// /train's rule: the activation's range must fit the loss, as the kind's
/// [`ActivationRule`](super::loss::ActivationRule) says (bce/focal need sigmoid,
/// cross_entropy/kl_div/js_div need softmax, msle/poisson need a ≥ 0); else an error
/// at `/activation`. nll takes log-probabilities, so any activation goes.
pub fn check_activation_fits(kind: LossKind, activation: &Activation) -> Result<(), ComputeError> {
    let rule = kind.info().activation;
    if rule.fits(activation) {
        Ok(())
    } else {
        Err(ComputeError::invalid(
            "/activation",
            format!(
                "{} needs {}; got {}",
                kind.name(),
                rule.need(),
                activation.name()
            ),
        ))
    }
}

/// A loss after an activation, with its params read once: evaluate it on any number of
/// logits (the /train loop builds one and calls [`Chain::objective`] per state).
#[derive(Debug)]
pub struct Chain {
    activation: Activation,
    /// The probability form (`from_logits` false), on a.
    on_activations: LossSpec,
    /// For a fused pair: the logits form, on z (params without `epsilon`).
    on_logits: Option<LossSpec>,
}

impl Chain {
    /// Reads `params` for `kind` (errors at `/params/...`, as /loss).
    pub fn new(
        kind: LossKind,
        params: &Params,
        activation: Activation,
    ) -> Result<Self, ComputeError> {
        // The probability form reads every param, epsilon included, so a bad value is
        // reported the same way whether or not the pair is fused.
        let on_activations = LossSpec::new(kind, params, false)?;
        let on_logits = if is_fused(kind, &activation) {
            Some(LossSpec::new(kind, &without_epsilon(params), true)?)
        } else {
            None
        };
        Ok(Chain {
            activation,
            on_activations,
            on_logits,
        })
    }

    /// Whether the loss and dL/dz come from the logits form.
    pub fn is_fused(&self) -> bool {
        self.on_logits.is_some()
    }

    /// The loss, dL/da and dL/dz at `logits` (see the module doc).
    pub fn evaluate(
        &self,
        logits: &Array,
        targets: &Array,
        reduction: Reduction,
        weights: Option<&[f64]>,
    ) -> Result<ChainResult, ComputeError> {
        self.run(logits, targets, reduction, weights, true)
    }

    /// The `mean` loss, dL/dz and a = act(z) (no dL/da is computed for fused pairs).
    pub fn objective(
        &self,
        z: &Array,
        targets: &Array,
    ) -> Result<(f64, Array, Array), ComputeError> {
        let r = self.run(z, targets, Reduction::Mean, None, false)?;
        Ok((r.loss.total(), r.d_logits, r.activations))
    }

    fn run(
        &self,
        z: &Array,
        targets: &Array,
        reduction: Reduction,
        weights: Option<&[f64]>,
        want_d_predictions: bool,
    ) -> Result<ChainResult, ComputeError> {
        let a = self.activation.forward(z);
        // a is reported, so it must be finite even where a loss would ignore it
        // (leaky_relu with a huge slope, then hinge).
        if let Some(i) = a.data().iter().position(|v| !v.is_finite()) {
            return Err(ComputeError::invalid(
                z.pointer("logits", i),
                format!(
                    "{}(z) overflows f64 here (z = {})",
                    self.activation.name(),
                    z.data()[i]
                ),
            ));
        }
        let to_logits = |e: ComputeError| e.rename_root("predictions", "logits");

        let (loss, count, d_predictions, d_logits, guard) = match &self.on_logits {
            Some(fused) => {
                let r = fused
                    .evaluate(z, targets, reduction, weights, true)
                    .map_err(to_logits)?;
                let d_z = gradient_of(r.gradient, z);
                let d_a = if want_d_predictions {
                    match self
                        .on_activations
                        .evaluate(&a, targets, reduction, weights, true)
                    {
                        Ok(p) => gradient_of(p.gradient, &a),
                        Err(e) => self.undo_sigmoid(&a, &d_z).ok_or_else(|| to_logits(e))?,
                    }
                } else {
                    a.zeros_like()
                };
                (r.loss, r.count, d_a, d_z, r.guard)
            }
            None => {
                let r = self
                    .on_activations
                    .evaluate(&a, targets, reduction, weights, true)
                    .map_err(to_logits)?;
                let d_a = gradient_of(r.gradient, &a);
                let d_z = self.activation.backward(z, &a, &d_a);
                (r.loss, r.count, d_a, d_z, r.guard)
            }
        };
        // Both are reported; no response holds ±Infinity.
        for (d, what) in [(&d_logits, "dL/dz"), (&d_predictions, "dL/da")] {
            if let Some(i) = d.data().iter().position(|v| !v.is_finite()) {
                return Err(ComputeError::invalid(
                    z.pointer("logits", i),
                    format!("{what} overflows f64 here"),
                ));
            }
        }
        Ok(ChainResult {
            loss,
            count,
            activations: a,
            d_predictions,
            d_logits,
            guard,
        })
    }

    /// dL/da = dL/dz / max(a(1 − a), 1e−12) for a sigmoid pair; `None` otherwise.
    fn undo_sigmoid(&self, a: &Array, d_z: &Array) -> Option<Array> {
        (self.activation == Activation::Sigmoid).then(|| {
            let d_a = a
                .data()
                .iter()
                .zip(d_z.data())
                .map(|(&ai, &dz)| dz / (ai * (1.0 - ai)).max(GRAD_FLOOR))
                .collect();
            Array::from_shape(d_a, a.shape())
        })
    }
}

/// The gradient `evaluate` returns when asked for one (zeros if it ever did not).
fn gradient_of(g: Option<Array>, like: &Array) -> Array {
    g.unwrap_or_else(|| like.zeros_like())
}

/// `params` without `epsilon` (fused pairs: no probability to clip).
fn without_epsilon(params: &Params) -> Params {
    let entries: Vec<(String, ParamValue)> = params
        .names()
        .filter(|&n| n != "epsilon")
        .filter_map(|n| params.get(n).map(|v| (n.to_string(), v.clone())))
        .collect();
    Params::new(entries)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a test that unwraps a bad value fails, as it should"
)]
mod tests {
    use super::*;
    use crate::compute::check::central_difference;
    use crate::compute::loss::testing::{close, params, rows};

    const ALL_ACTIVATIONS: [Activation; 7] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu {
            negative_slope: 0.1,
        },
        Activation::Softplus,
        Activation::Softmax,
    ];

    fn none() -> Params {
        Params::default()
    }

    fn chain(
        kind: LossKind,
        p: &Params,
        act: Activation,
        z: &Array,
        y: &Array,
        reduction: Reduction,
        weights: Option<&[f64]>,
    ) -> ChainResult {
        through_activation(kind, p, &act, z, y, reduction, weights).expect("valid input")
    }

    /// The generic path (probability form on a, then act.backward) even for a fused
    /// pair: an independent route to dL/dz for moderate logits.
    fn chain_rule_only(
        kind: LossKind,
        p: &Params,
        act: Activation,
        z: &Array,
        y: &Array,
        reduction: Reduction,
        weights: Option<&[f64]>,
    ) -> Array {
        let a = act.forward(z);
        let r = LossSpec::new(kind, p, false)
            .unwrap()
            .evaluate(&a, y, reduction, weights, true)
            .unwrap();
        act.backward(z, &a, &r.gradient.unwrap())
    }

    /// Central-difference check of d_logits through the whole chain.
    #[track_caller]
    fn assert_d_logits_pass(
        kind: LossKind,
        p: &Params,
        act: Activation,
        z: &Array,
        y: &Array,
        reduction: Reduction,
        weights: Option<&[f64]>,
    ) {
        let r = chain(kind, p, act, z, y, reduction, weights);
        let report = central_difference(z, r.d_logits.data(), |zz| {
            through_activation(kind, p, &act, zz, y, reduction, weights).map(|r| r.loss.total())
        })
        .unwrap();
        assert!(
            report.passed,
            "{} + {} ({}): {report:?}",
            act.name(),
            kind.name(),
            reduction.name()
        );
    }

    #[test]
    fn the_textbook_neuron_sigmoid_then_l2() {
        // z = ln 9 → a = 0.9, y = 0.5: C = ½(0.4)² = 0.08, dC/da = 0.4,
        // dC/dz = (a − y)·a·(1 − a) = 0.4·0.9·0.1 = 0.036 (the textbook's numbers).
        let z = Array::flat(vec![9f64.ln()]);
        let y = Array::flat(vec![0.5]);
        let r = chain(
            LossKind::L2,
            &none(),
            Activation::Sigmoid,
            &z,
            &y,
            Reduction::Mean,
            None,
        );
        close(r.activations.data()[0], 0.9);
        close(r.loss.total(), 0.08);
        close(r.d_predictions.data()[0], 0.4);
        close(r.d_logits.data()[0], 0.036);
        assert_eq!(r.count, 1);
        assert_eq!(r.guard, Guard::default());
    }

    #[test]
    fn sigmoid_then_l2_gives_r_times_sigma_prime_per_element() {
        let z = rows(&[&[0.3, -1.2], &[2.0, 0.0]]);
        let y = rows(&[&[1.0, 0.0], &[0.25, 0.5]]);
        for (red, scale) in [(Reduction::Sum, 1.0), (Reduction::Mean, 0.25)] {
            let r = chain(
                LossKind::L2,
                &none(),
                Activation::Sigmoid,
                &z,
                &y,
                red,
                None,
            );
            for i in 0..4 {
                // σ(z) = 1 / (1 + e^−z), computed here directly
                let a = 1.0 / (1.0 + (-z.data()[i]).exp());
                let yi = y.data()[i];
                close(r.activations.data()[i], a);
                close(r.d_predictions.data()[i], (a - yi) * scale);
                close(r.d_logits.data()[i], (a - yi) * a * (1.0 - a) * scale);
            }
            assert_eq!(r.d_logits.shape(), z.shape());
        }
    }

    #[test]
    fn every_activation_then_mse_passes_the_central_difference_check() {
        // no z at relu's kink (0)
        let z = rows(&[&[0.3, -1.2, 2.0], &[0.5, -0.1, 0.7]]);
        let y = rows(&[&[0.2, 0.0, 1.0], &[1.0, -0.5, 0.25]]);
        for act in ALL_ACTIVATIONS {
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    assert_d_logits_pass(LossKind::Mse, &none(), act, &z, &y, red, w);
                }
            }
        }
        // a flat input: one softmax row, one weight per element for elementwise kinds
        let zf = Array::flat(vec![0.4, -2.0, 1.5]);
        let yf = Array::flat(vec![0.1, 0.3, 0.6]);
        for act in ALL_ACTIVATIONS {
            assert_d_logits_pass(
                LossKind::L2,
                &none(),
                act,
                &zf,
                &yf,
                Reduction::Mean,
                Some(&[1.0, 0.0, 3.0]),
            );
        }
    }

    #[test]
    fn none_reports_the_terms_and_the_gradient_of_their_sum() {
        let z = Array::flat(vec![0.5, -1.0]);
        let y = Array::flat(vec![1.0, 1.0]);
        let r = chain(
            LossKind::Mse,
            &none(),
            Activation::Tanh,
            &z,
            &y,
            Reduction::None,
            None,
        );
        let s = chain(
            LossKind::Mse,
            &none(),
            Activation::Tanh,
            &z,
            &y,
            Reduction::Sum,
            None,
        );
        let LossValue::Terms(terms) = &r.loss else {
            panic!("none gives terms")
        };
        close(terms.data()[1], (-(1f64).tanh() - 1.0).powi(2));
        assert_eq!(r.d_logits, s.d_logits);
        assert_eq!(r.count, 2);
    }

    #[test]
    fn objective_is_the_mean_of_through_activation() {
        let z = rows(&[&[0.3, -1.2], &[2.0, 0.5]]);
        let y = rows(&[&[1.0, 0.0], &[0.25, 0.5]]);
        for act in ALL_ACTIVATIONS {
            let (l, dz, a) = objective(LossKind::Mse, &none(), &act, &z, &y).unwrap();
            let r = chain(LossKind::Mse, &none(), act, &z, &y, Reduction::Mean, None);
            assert_eq!(l, r.loss.total());
            assert_eq!(dz, r.d_logits);
            assert_eq!(a, r.activations);
        }
    }

    #[test]
    fn loss_errors_point_at_the_logits() {
        // identity, z = 1e200: r² overflows → the loss names the element
        let z = rows(&[&[0.0, 1.0], &[1e200, 0.0]]);
        let y = rows(&[&[0.0; 2], &[0.0; 2]]);
        let e = through_activation(
            LossKind::Mse,
            &none(),
            &Activation::Identity,
            &z,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/logits/1/0");
        // targets keep their own pointers; param errors stay at /params
        let e = through_activation(
            LossKind::Mse,
            &none(),
            &Activation::Identity,
            &z,
            &Array::flat(vec![0.0; 4]),
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets");
        let e = through_activation(
            LossKind::Mse,
            &params(&[("delta", 1.0)]),
            &Activation::Identity,
            &z,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/params/delta");
    }

    #[test]
    fn an_activation_or_dz_that_overflows_is_an_error_at_that_logit() {
        let steep = Activation::LeakyRelu {
            negative_slope: 1e300,
        };
        // a = 1e300 · (−1e10) = −∞
        let e = through_activation(
            LossKind::Mse,
            &none(),
            &steep,
            &Array::flat(vec![1.0, -1e10]),
            &Array::flat(vec![0.0, 0.0]),
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/logits/1");
        // a = −1e154: ½a² = 5e307 and dL/da = a are finite, dL/dz = a·1e300 is not
        let e = through_activation(
            LossKind::L2,
            &none(),
            &steep,
            &Array::flat(vec![1.0, -1e-146]),
            &Array::flat(vec![0.0, 0.0]),
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/logits/1");
        assert!(e.message.contains("dL/dz"), "{}", e.message);
    }

    #[test]
    fn activations_must_fit_the_loss_for_training() {
        let tanh = Activation::Tanh;
        for (kind, act, ok) in [
            (LossKind::Bce, Activation::Sigmoid, true),
            (LossKind::Bce, Activation::Softmax, false),
            (LossKind::Focal, Activation::Identity, false),
            (LossKind::Focal, Activation::Sigmoid, true),
            (LossKind::CrossEntropy, Activation::Softmax, true),
            (LossKind::CrossEntropy, Activation::Sigmoid, false),
            (LossKind::KlDiv, Activation::Softmax, true),
            (LossKind::JsDiv, tanh, false),
            (LossKind::Msle, tanh, false),
            (LossKind::Msle, Activation::Relu, true),
            (LossKind::Poisson, Activation::Softplus, true),
            (LossKind::Poisson, Activation::Identity, false),
            (
                LossKind::Poisson,
                Activation::LeakyRelu {
                    negative_slope: 0.0,
                },
                true,
            ),
            (
                LossKind::Msle,
                Activation::LeakyRelu {
                    negative_slope: 0.01,
                },
                false,
            ),
            (LossKind::Nll, Activation::Identity, true),
            (LossKind::Nll, Activation::Softmax, true),
            (LossKind::Mse, tanh, true),
            (LossKind::Hinge, Activation::Identity, true),
        ] {
            let r = check_activation_fits(kind, &act);
            assert_eq!(r.is_ok(), ok, "{} + {}", act.name(), kind.name());
            if let Err(e) = r {
                assert_eq!(e.field, "/activation");
                assert!(e.message.contains(kind.name()) && e.message.contains(act.name()));
            }
        }
    }

    #[test]
    fn fused_pairs_are_exactly_the_three_of_the_contract() {
        let fused: Vec<(LossKind, &str)> = LossKind::ALL
            .into_iter()
            .flat_map(|k| ALL_ACTIVATIONS.map(|a| (k, a)))
            .filter(|(k, a)| is_fused(*k, a))
            .map(|(k, a)| (k, a.name()))
            .collect();
        assert_eq!(
            fused,
            vec![
                (LossKind::Bce, "sigmoid"),
                (LossKind::CrossEntropy, "softmax"),
                (LossKind::Focal, "sigmoid"),
            ]
        );
    }

    #[test]
    fn without_epsilon_keeps_every_other_param_in_order() {
        let p = params(&[("gamma", 2.0), ("epsilon", 0.1), ("alpha", 0.25)]);
        let q = without_epsilon(&p);
        assert_eq!(q.names().collect::<Vec<_>>(), ["gamma", "alpha"]);
        assert_eq!(q.get("alpha"), Some(&ParamValue::Number(0.25)));
    }

    #[test]
    fn the_sigmoid_fallback_undoes_sigma_prime_with_the_floor() {
        // dL/da = dL/dz / max(a(1 − a), 1e−12): a = 1 → 0.5/1e−12; a = 0.5 → 0.25/0.25
        let c = Chain {
            activation: Activation::Sigmoid,
            on_activations: LossSpec::new(LossKind::Mse, &none(), false).unwrap(),
            on_logits: None,
        };
        let a = Array::flat(vec![1.0, 0.5]);
        let d_a = c.undo_sigmoid(&a, &Array::flat(vec![0.5, 0.25])).unwrap();
        assert_eq!(d_a.data(), &[5e11, 1.0]);
        let c = Chain {
            activation: Activation::Softmax,
            ..c
        };
        assert!(c.undo_sigmoid(&a, &a).is_none());
    }

    // ---- fused pairs: these need the bce / cross_entropy / focal kinds ----

    #[test]
    fn sigmoid_then_bce_gives_a_minus_y_times_the_reduction_scale() {
        let z = rows(&[&[0.3, -1.2], &[2.0, 0.0], &[-0.7, 4.0]]);
        let y = rows(&[&[1.0, 0.0], &[0.25, 1.0], &[0.0, 0.5]]);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let w = [0.5, 2.0, 1.0];
        // mean: 1/6; sum: 1; weights (one per row, over 2 columns): s_row / (2·Σs) = s_row/7
        for (red, weights, scale) in [
            (Reduction::Mean, None, [1.0 / 6.0; 3]),
            (Reduction::Sum, None, [1.0; 3]),
            (
                Reduction::Mean,
                Some(&w[..]),
                [0.5 / 7.0, 2.0 / 7.0, 1.0 / 7.0],
            ),
        ] {
            let r = chain(
                LossKind::Bce,
                &none(),
                Activation::Sigmoid,
                &z,
                &y,
                red,
                weights,
            );
            for i in 0..6 {
                let a = sig(z.data()[i]);
                close(r.activations.data()[i], a);
                close(r.d_logits.data()[i], (a - y.data()[i]) * scale[i / 2]);
            }
            assert_eq!(r.count, 6);
        }
    }

    #[test]
    fn softmax_then_cross_entropy_gives_a_minus_y_over_m() {
        let z = rows(&[&[0.3, -1.2, 2.0], &[0.5, -0.1, 0.7]]);
        let y = rows(&[&[0.0, 0.0, 1.0], &[0.2, 0.5, 0.3]]);
        let a = Activation::Softmax.forward(&z);
        let r = chain(
            LossKind::CrossEntropy,
            &none(),
            Activation::Softmax,
            &z,
            &y,
            Reduction::Mean,
            None,
        );
        for i in 0..6 {
            close(r.d_logits.data()[i], (a.data()[i] - y.data()[i]) / 2.0);
        }
        // index targets give the same as one-hot ones
        let one_hot = rows(&[&[0.0, 0.0, 1.0], &[1.0, 0.0, 0.0]]);
        let idx = Array::flat(vec![2.0, 0.0]);
        let r1 = chain(
            LossKind::CrossEntropy,
            &none(),
            Activation::Softmax,
            &z,
            &one_hot,
            Reduction::Mean,
            None,
        );
        let r2 = chain(
            LossKind::CrossEntropy,
            &none(),
            Activation::Softmax,
            &z,
            &idx,
            Reduction::Mean,
            None,
        );
        for i in 0..6 {
            close(r2.d_logits.data()[i], r1.d_logits.data()[i]);
            close(
                r1.d_logits.data()[i],
                (a.data()[i] - one_hot.data()[i]) / 2.0,
            );
        }
        close(r2.loss.total(), r1.loss.total());
    }

    #[test]
    fn logits_of_800_give_exact_finite_results() {
        // sigmoid + bce: each term is softplus(800) = 800 (a clamped log would give 100);
        // a = [1, 0] exactly, dL/dz = (a − y)/2.
        let z = Array::flat(vec![800.0, -800.0]);
        let y = Array::flat(vec![0.0, 1.0]);
        let r = chain(
            LossKind::Bce,
            &none(),
            Activation::Sigmoid,
            &z,
            &y,
            Reduction::Mean,
            None,
        );
        assert_eq!(r.loss.total(), 800.0);
        assert_eq!(r.d_logits.data(), &[0.5, -0.5]);
        assert_eq!(r.activations.data(), &[1.0, 0.0]);
        assert_eq!(r.guard, Guard::default());
        // dL/da is torch's BCELoss gradient: (a − y)/max(a(1 − a), 1e−12)/2 = ±5e11
        assert_eq!(r.d_predictions.data(), &[5e11, -5e11]);
        // softmax + cross_entropy: ln(e^800 + e^−800) − (−800) = 1600; dL/dz = a − y
        let z = rows(&[&[800.0, -800.0]]);
        let y = rows(&[&[0.0, 1.0]]);
        let r = chain(
            LossKind::CrossEntropy,
            &none(),
            Activation::Softmax,
            &z,
            &y,
            Reduction::Mean,
            None,
        );
        assert_eq!(r.loss.total(), 1600.0);
        assert_eq!(r.d_logits.data(), &[1.0, -1.0]);
        assert!(r.d_predictions.data().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn fused_and_chain_rule_paths_agree_for_moderate_logits() {
        let z = rows(&[&[0.3, -1.2, 2.0], &[0.5, -0.1, 0.7]]);
        let yb = rows(&[&[1.0, 0.0, 0.5], &[0.0, 1.0, 0.25]]);
        let yd = rows(&[&[0.0, 0.0, 1.0], &[0.2, 0.5, 0.3]]);
        let w = [0.5, 2.0];
        let cases: Vec<(LossKind, Params, Activation, &Array)> = vec![
            (LossKind::Bce, none(), Activation::Sigmoid, &yb),
            (
                LossKind::Bce,
                params(&[("pos_weight", 3.0)]),
                Activation::Sigmoid,
                &yb,
            ),
            (LossKind::Focal, none(), Activation::Sigmoid, &yb),
            (
                LossKind::Focal,
                params(&[("gamma", 1.5), ("alpha", 0.25)]),
                Activation::Sigmoid,
                &yb,
            ),
            (LossKind::CrossEntropy, none(), Activation::Softmax, &yd),
            (
                LossKind::CrossEntropy,
                params(&[("label_smoothing", 0.1)]),
                Activation::Softmax,
                &yd,
            ),
        ];
        for (kind, p, act, y) in &cases {
            for red in Reduction::ALL {
                for weights in [None, Some(&w[..])] {
                    let fused = chain(*kind, p, *act, &z, y, red, weights);
                    let plain = chain_rule_only(*kind, p, *act, &z, y, red, weights);
                    for (f, g) in fused.d_logits.data().iter().zip(plain.data()) {
                        assert!(
                            (f - g).abs() <= 1e-12 * f.abs().max(g.abs()) + 1e-15,
                            "{} {}: {f:e} vs {g:e}",
                            kind.name(),
                            red.name()
                        );
                    }
                    assert_d_logits_pass(*kind, p, *act, &z, y, red, weights);
                }
            }
        }
    }

    #[test]
    fn fused_pairs_ignore_epsilon_for_the_loss_but_clip_d_predictions() {
        // a = σ(±3) ≈ 0.953 / 0.047: outside [0.1, 0.9], so the clip moves both
        let z = Array::flat(vec![3.0, -3.0]);
        let y = Array::flat(vec![1.0, 0.0]);
        let plain = chain(
            LossKind::Bce,
            &none(),
            Activation::Sigmoid,
            &z,
            &y,
            Reduction::Mean,
            None,
        );
        let eps = params(&[("epsilon", 0.1)]);
        let clipped = chain(
            LossKind::Bce,
            &eps,
            Activation::Sigmoid,
            &z,
            &y,
            Reduction::Mean,
            None,
        );
        assert_eq!(clipped.loss, plain.loss);
        assert_eq!(clipped.d_logits, plain.d_logits);
        assert_eq!(clipped.guard, Guard::default());
        // the clip moved both values: their gradient is 0 (Keras)
        assert_eq!(clipped.d_predictions.data(), &[0.0, 0.0]);
        // an out-of-range epsilon is still an error at /params/epsilon
        let e = through_activation(
            LossKind::Bce,
            &params(&[("epsilon", 0.7)]),
            &Activation::Sigmoid,
            &z,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/params/epsilon");
    }

    #[test]
    fn a_probability_outside_the_unit_interval_names_the_logit() {
        // tanh + bce is not fused: a = tanh(−1) < 0 fails the probability check
        let e = through_activation(
            LossKind::Bce,
            &none(),
            &Activation::Tanh,
            &rows(&[&[0.5, 0.2], &[-1.0, 0.3]]),
            &rows(&[&[1.0, 0.0], &[0.0, 1.0]]),
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/logits/1/0");
    }

    #[test]
    fn sigmoid_then_focal_at_a_saturated_logit_stays_finite() {
        // σ(40) rounds to 1; with y = 1 and γ = 0.5 the probability form's
        // γ(1 − p_t)^(γ − 1) is infinite there, the logits form is not: the fused
        // results stand and d_predictions is finite either way.
        let r = chain(
            LossKind::Focal,
            &params(&[("gamma", 0.5)]),
            Activation::Sigmoid,
            &Array::flat(vec![40.0, -0.5]),
            &Array::flat(vec![1.0, 0.0]),
            Reduction::Mean,
            None,
        );
        assert_eq!(r.activations.data()[0], 1.0);
        assert!(r.loss.total().is_finite());
        assert!(r.d_logits.data().iter().all(|v| v.is_finite()));
        assert!(r.d_predictions.data().iter().all(|v| v.is_finite()));
    }
}
