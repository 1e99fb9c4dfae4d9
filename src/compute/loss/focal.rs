//! `focal`: the focal loss of torchvision's `sigmoid_focal_loss`, on probabilities or
//! (`from_logits`) on logits.
//!
//! term  l = α_t·ce·u^γ, ce = −(y·ln a + (1 − y)·ln(1 − a)) (each ln clamped at −100),
//!       u = 1 − p_t = a·(1 − y) + (1 − a)·y, p_t = a·y + (1 − a)(1 − y),
//!       α_t = α·y + (1 − α)(1 − y) (1 when `alpha` is absent)
//! dl/da = α_t·(ce'·u^γ + γ·u^(γ−1)·(1 − 2y)·ce),
//!       ce' = −y / max(a, 1e−12) + (1 − y) / max(1 − a, 1e−12)
//! from_logits (a = σ(z)): ce = y·softplus(−z) + (1 − y)·softplus(z), u from σ(z) and
//!       σ(−z), dl/dz = α_t·((σ(z) − y)·u^γ + γ·u^(γ−1)·(1 − 2y)·σ(z)σ(−z)·ce)
//! u is written as a sum of non-negative products (torchvision's 1 − p_t cancels when
//! p_t ≈ 1). 0^0 = 1, and the γ term is 0 when γ = 0 or u = 0 (u = 0 only where a = y
//! ∈ {0, 1}, where ce = 0 too). `epsilon` clips a to [eps, 1 − eps] first (Keras;
//! gradient 0 where it moved a); `log_base` divides value and gradient by ln(base).

use super::bce::clip_to_epsilon;
use super::{
    EPSILON_CLIP, GUARD_EPSILON_CLIP, GUARD_GRAD_FLOOR, GUARD_LOG_CLAMP, Guard, Input, KindInfo,
    LOG_BASE, Loss, Per, Terms, check_unit_interval, log_base_divisor, reader,
};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::numeric::{GRAD_FLOOR, clamped_ln, clamped_ln_1m, sigmoid, softplus};
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "focal",
    formula: "alpha_t bce(a, y) (1 - p_t)^gamma, p_t = a y + (1 - a)(1 - y), alpha_t = alpha y + (1 - alpha)(1 - y); from_logits: a = sigmoid(z)",
    derivative: "alpha_t (bce' u^gamma + gamma u^(gamma - 1) (1 - 2y) bce), u = 1 - p_t, bce' = -y / max(a, 1e-12) + (1 - y) / max(1 - a, 1e-12); from_logits (d/dz): bce' = sigmoid(z) - y and (1 - 2y) times sigmoid(z) (1 - sigmoid(z))",
    per: Per::Element,
    params: &[GAMMA, ALPHA, EPSILON_CLIP, LOG_BASE],
    from_logits: true,
    guards: &[GUARD_LOG_CLAMP, GUARD_GRAD_FLOOR, GUARD_EPSILON_CLIP],
    accepts_indices: false,
    domain: Domain {
        predictions: Values::Probability,
        targets: Values::Probability,
    },
    fused_elementwise: false,
    activation: ActivationRule::Sigmoid,
    build,
};

const GAMMA: ParamSpec = ParamSpec {
    name: "gamma",
    default: ParamDefault::Number(2.0),
    min: Limit::incl(0.0),
    max: None,
    description: "Focusing exponent on (1 - p_t); 0 gives (alpha-weighted) bce. Must be >= 0.",
};

const ALPHA: ParamSpec = ParamSpec {
    name: "alpha",
    default: ParamDefault::None,
    min: Limit::incl(0.0),
    max: Limit::incl(1.0),
    description: "Weight of the positive class: alpha_t = alpha y + (1 - alpha)(1 - y); absent means 1 for every term (torchvision's alpha = -1). In [0, 1].",
};

#[derive(Debug)]
struct Focal {
    gamma: f64,
    alpha: Option<f64>,
    epsilon: Option<f64>,
    /// ln(log_base), 1 for the natural log.
    divisor: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let gamma = r.number("gamma")?;
    let alpha = r.opt_number("alpha")?;
    let epsilon = r.opt_number("epsilon")?;
    let divisor = log_base_divisor(r.opt_number("log_base")?);
    r.finish()?;
    Ok(Box::new(Focal {
        gamma,
        alpha,
        epsilon,
        divisor,
    }))
}

impl Focal {
    fn alpha_t(&self, y: f64) -> f64 {
        self.alpha.map_or(1.0, |al| al * y + (1.0 - al) * (1.0 - y))
    }

    /// The term from ce and u, and d(term)/d(·) from ce' and u' (derivatives of ce and u
    /// with respect to the same variable).
    fn combine(&self, y: f64, ce: f64, u: f64, d_ce: f64, d_u: f64) -> (f64, f64) {
        let modulator = u.powf(self.gamma); // 0^0 = 1
        let at = self.alpha_t(y);
        // γ·u^(γ−1)·ce as γ·(ce/u)·u^γ: ce/u stays bounded where both are tiny
        let focus = if self.gamma == 0.0 || u == 0.0 {
            0.0
        } else {
            self.gamma * (ce / u) * modulator * d_u
        };
        (at * ce * modulator, at * (d_ce * modulator + focus))
    }

    fn probability_term(&self, a: f64, y: f64, guard: &mut Guard) -> (f64, f64) {
        let (a, moved) = clip_to_epsilon(a, self.epsilon);
        guard.epsilon_clip |= moved;
        let (ln_a, clamped_a) = clamped_ln(a);
        let (ln_1ma, clamped_1ma) = clamped_ln_1m(a);
        let neg = 1.0 - y;
        guard.log_clamp |= (clamped_a && y != 0.0) || (clamped_1ma && neg != 0.0);
        let ce = y * -ln_a + neg * -ln_1ma;
        let u = a * neg + (1.0 - a) * y;
        // the derivative of −y·ln a is −y / max(a, 1e−12), likewise for 1 − a
        // the floor acts on both denominators whatever their coefficient (API.md: "the
        // 1e−12 floor acted"; as bce); a zero coefficient gives +0, not 0/1e−12
        let floored = |c: f64, x: f64, guard: &mut Guard| {
            guard.grad_floor |= x < GRAD_FLOOR;
            if c == 0.0 { 0.0 } else { c / x.max(GRAD_FLOOR) }
        };
        let d_ce = floored(neg, 1.0 - a, guard) - floored(y, a, guard);
        let (l, d) = self.combine(y, ce, u, d_ce, 1.0 - 2.0 * y);
        (l, if moved { 0.0 } else { d })
    }

    fn logit_term(&self, z: f64, y: f64) -> (f64, f64) {
        let (s, s_neg) = (sigmoid(z), sigmoid(-z)); // σ(z) and 1 − σ(z), both accurate
        let ce = y * softplus(-z) + (1.0 - y) * softplus(z);
        let u = s * (1.0 - y) + s_neg * y;
        // dce/dz = σ(z) − y without cancellation; du/dz = (1 − 2y)·σ(z)σ(−z)
        let d_ce = s * (1.0 - y) - s_neg * y;
        self.combine(y, ce, u, d_ce, (1.0 - 2.0 * y) * s * s_neg)
    }
}

impl Loss for Focal {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        check_unit_interval(x.targets, "targets")?;
        if !x.from_logits {
            check_unit_interval(x.predictions, "predictions")?;
        }
        let mut guard = Guard::default();
        let want_grad = out.grad.is_some();
        let pairs = x.predictions.data().iter().zip(x.targets.data());
        for (i, (&a, &y)) in pairs.enumerate() {
            let (l, d) = if x.from_logits {
                self.logit_term(a, y)
            } else {
                // the floor guard speaks only of a gradient that was asked for
                let mut g = Guard::default();
                let t = self.probability_term(a, y, &mut g);
                g.grad_floor &= want_grad;
                guard.merge(g);
                t
            };
            out.values[i] = l / self.divisor;
            if let Some(g) = &mut out.grad {
                g[i] = d / self.divisor;
            }
        }
        out.guard.merge(guard);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Guard, LossKind, LossSpec, LossValue};
    use crate::compute::array::Array;
    use crate::compute::params::Params;
    use crate::compute::reduction::Reduction;

    const FOCAL: LossKind = LossKind::Focal;

    fn terms(r: &crate::compute::loss::LossResult) -> Vec<f64> {
        match &r.loss {
            LossValue::Terms(t) => t.data().to_vec(),
            LossValue::Scalar(_) => panic!("expected terms"),
        }
    }

    #[test]
    fn matches_torchvision_on_probabilities() {
        // torchvision.ops.sigmoid_focal_loss(logit(a), y, alpha=0.25, gamma=2, reduction="mean")
        // with a = [0.2, 0.7, 0.9], y = [0, 1, 0.5] (mpmath; gradient by mpmath.diff)
        let a = Array::flat(vec![0.2, 0.7, 0.9]);
        let y = Array::flat(vec![0.0, 1.0, 0.5]);
        let (l, g) = mean(FOCAL, &params(&[("alpha", 0.25)]), &a, &y);
        close(l, 0.05507203110626326);
        close(g[0], 0.034814355131420976);
        close(g[1], -0.02854803291122234);
        close(g[2], 0.18518518518518523);
    }

    #[test]
    fn matches_torchvision_on_logits() {
        // torchvision.ops.sigmoid_focal_loss(tensor([1.5, -2.0, 0.3]), tensor([1., 0., 0.4]),
        // alpha=0.25, gamma=2, reduction="none") (mpmath; gradient by mpmath.diff)
        let z = Array::flat(vec![1.5, -2.0, 0.3]);
        let y = Array::flat(vec![1.0, 0.0, 0.4]);
        let r = eval(
            FOCAL,
            &params(&[("alpha", 0.25)]),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        let want = [
            0.0016757117316439142,
            0.0013526721264302815,
            0.10707677439715951,
        ];
        for (t, w) in terms(&r).into_iter().zip(want) {
            close(t, w);
        }
        let want = [
            -0.004257776305808982,
            0.0036532051465445747,
            0.04577069377908598,
        ];
        for (g, w) in r.gradient.unwrap().into_data().into_iter().zip(want) {
            close(g, w);
        }
        // gamma = 1.5, alpha absent (torchvision alpha=-1)
        let r = eval(
            FOCAL,
            &params(&[("gamma", 1.5)]),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        let want = [
            0.01569338034793184,
            0.005223815465579079,
            0.27131636694612105,
        ];
        for (t, w) in terms(&r).into_iter().zip(want) {
            close(t, w);
        }
        let want = [
            -0.033459685344968945,
            0.011807565853315188,
            0.10309448739654548,
        ];
        for (g, w) in r.gradient.unwrap().into_data().into_iter().zip(want) {
            close(g, w);
        }
    }

    #[test]
    fn gamma_0_without_alpha_is_bce() {
        // torch: binary_cross_entropy(tensor([0.2, 0.7, 0.9]), tensor([0., 1., 0.5])) (mpmath,
        // as in bce's test)
        let a = Array::flat(vec![0.2, 0.7, 0.9]);
        let y = Array::flat(vec![0.0, 1.0, 0.5]);
        let (l, g) = mean(FOCAL, &params(&[("gamma", 0.0)]), &a, &y);
        close(l, 0.594597099859626);
        close(g[0], 0.4166666666666667);
        close(g[1], -0.4761904761904762);
        close(g[2], 1.4814814814814818);
    }

    #[test]
    fn perfect_predictions_have_zero_loss_for_every_gamma() {
        // a = y ∈ {0, 1}: u = 1 - p_t = 0, ce = 0. With γ = 0, 0^0 = 1 and the derivative
        // is bce's: -1/a at (1, 1), 1/(1 - a) at (0, 0); with γ > 0 the factor u^γ makes it 0
        let a = Array::flat(vec![1.0, 0.0]);
        let y = Array::flat(vec![1.0, 0.0]);
        for (gamma, grad) in [(0.0, [-1.0, 1.0]), (2.0, [0.0, 0.0]), (0.5, [0.0, 0.0])] {
            let r = eval(
                FOCAL,
                &params(&[("gamma", gamma)]),
                false,
                &a,
                &y,
                Reduction::Sum,
                None,
            )
            .unwrap();
            assert_eq!(r.loss.total(), 0.0);
            assert_eq!(
                r.gradient.unwrap().into_data(),
                grad.to_vec(),
                "gamma {gamma}"
            );
            // 1 - a = 0 at (1, 1) and a = 0 at (0, 0) are floored at 1e-12 under zero
            // coefficients: the floor acted (API.md, as bce); no clamp counted
            assert!(r.guard.grad_floor && !r.guard.log_clamp && !r.guard.epsilon_clip);
        }
        // logits: z = ±800 saturate to the same
        let z = Array::flat(vec![800.0, -800.0]);
        let r = eval(
            FOCAL,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::Sum,
            None,
        )
        .unwrap();
        assert_eq!(r.loss.total(), 0.0);
        assert_eq!(r.gradient.unwrap().into_data(), vec![0.0, 0.0]);
    }

    #[test]
    fn logits_are_exact_at_800() {
        // z = 800, y = 0: ce = softplus(800) = 800, u = 1; z = -800, y = 1 likewise.
        // alpha 0.25: alpha_t = 0.75 for y = 0, 0.25 for y = 1
        let z = Array::flat(vec![800.0, -800.0]);
        let y = Array::flat(vec![0.0, 1.0]);
        let r = eval(
            FOCAL,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        assert_eq!(terms(&r), vec![800.0, 800.0]);
        assert_eq!(r.gradient.unwrap().into_data(), vec![1.0, -1.0]);
        let r = eval(
            FOCAL,
            &params(&[("alpha", 0.25)]),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        assert_eq!(terms(&r), vec![600.0, 200.0]);
        assert_eq!(r.guard, Guard::default());
    }

    #[test]
    fn zero_and_one_probabilities_are_clamped_and_floored_as_torch() {
        // a = 0, y = 1: ce = 100 (clamped), u = 1; d = ce'·u² + 2u·(1 - 2y)·ce
        // = -1/max(0, 1e-12) - 200 (torch's autograd through binary_cross_entropy and (1 - p_t)**2)
        let a = Array::flat(vec![0.0]);
        let y = Array::flat(vec![1.0]);
        let spec = LossSpec::new(FOCAL, &Params::default(), false).unwrap();
        let r = spec.evaluate(&a, &y, Reduction::Sum, None, true).unwrap();
        assert_eq!(r.loss.total(), 100.0);
        assert_eq!(r.gradient.unwrap().into_data(), vec![-1e12 - 200.0]);
        assert!(r.guard.log_clamp && r.guard.grad_floor);
        let r = spec.evaluate(&a, &y, Reduction::Sum, None, false).unwrap();
        assert!(r.guard.log_clamp && !r.guard.grad_floor);
    }

    #[test]
    fn epsilon_and_log_base() {
        // clip a = 0 to 1e-7 (y = 1): ce = -ln 1e-7, u = 1 - 1e-7; gradient 0 there
        let a = Array::flat(vec![0.0, 0.5]);
        let y = Array::flat(vec![1.0, 1.0]);
        let r = eval(
            FOCAL,
            &params(&[("epsilon", 1e-7)]),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        let t = terms(&r);
        close(t[0], -(1e-7f64.ln()) * (1.0 - 1e-7) * (1.0 - 1e-7));
        // a = 0.5, y = 1: ln 2 · 0.25; d = -2·0.25 + 2·0.5·(-1)·ln 2 = -0.5 - ln 2
        close(t[1], 0.25 * std::f64::consts::LN_2);
        let g = r.gradient.unwrap().into_data();
        assert_eq!(g[0], 0.0);
        close(g[1], -0.5 - std::f64::consts::LN_2);
        assert!(r.guard.epsilon_clip && !r.guard.log_clamp);
        // base 2: -log2(0.5)·0.5² = 0.25 bits
        let (l, _) = mean(
            FOCAL,
            &params(&[("log_base", 2.0)]),
            &Array::flat(vec![0.5]),
            &Array::flat(vec![1.0]),
        );
        close(l, 0.25);
    }

    #[test]
    fn out_of_range_inputs_are_named() {
        let a = rows(&[&[0.5, 0.5], &[0.5, 1.5]]);
        let y = rows(&[&[0.0, 1.0], &[1.0, 0.0]]);
        let e = eval(
            FOCAL,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/1/1");
        let y = rows(&[&[0.0, 2.0], &[1.0, 0.0]]);
        let e = eval(
            FOCAL,
            &Params::default(),
            true,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/0/1");
        let e = LossSpec::new(FOCAL, &params(&[("alpha", 1.5)]), false).unwrap_err();
        assert_eq!(e.field, "/params/alpha");
        let e = LossSpec::new(FOCAL, &params(&[("gamma", -1.0)]), false).unwrap_err();
        assert_eq!(e.field, "/params/gamma");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, 0.85], &[0.6, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[0.7, 0.2]]);
        let z = rows(&[&[-1.3, 2.2], &[0.4, -0.1]]);
        let sets = [
            Params::default(),
            params(&[("gamma", 1.5), ("alpha", 0.25), ("log_base", 10.0)]),
            params(&[("gamma", 0.0), ("epsilon", 0.05)]),
            params(&[("gamma", 0.5)]),
        ];
        for red in Reduction::ALL {
            for p in &sets {
                fd_check(FOCAL, p, false, &a, &y, red, Some(&[0.5, 2.0]), 1e-6);
                fd_check(FOCAL, p, true, &z, &y, red, Some(&[0.5, 2.0]), 1e-6);
            }
        }
    }
}
