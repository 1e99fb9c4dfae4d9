//! `bce`: binary cross-entropy, on probabilities or (`from_logits`) on logits.
//!
//! term  l = −(pw·y·ln a + (1 − y)·ln(1 − a)), each ln clamped at −100 (torch's BCELoss)
//! dl/da = (a·(1 − y + pw·y) − pw·y) / max(a·(1 − a), 1e−12): torch's BCELoss backward
//!         ((a − y) over the floored a·(1 − a) when pw = 1), used everywhere, clamp or not.
//! from_logits (a = σ(z)): l = pw·y·softplus(−z) + (1 − y)·softplus(z)
//!         dl/dz = σ(z)·(1 − y + pw·y) − pw·y
//! As torch's BCEWithLogitsLoss; both softplus terms are ≥ 0, so nothing cancels and
//! z = 800, y = 0 gives 800 (not a clamped 100).
//!
//! `pos_weight` is a number or one per column (torch broadcasts it over the last
//! dimension); `epsilon` clips a to [eps, 1 − eps] first (Keras) and the gradient is 0
//! where the clip moved a; `log_base` divides value and gradient by ln(base).

use super::{
    EPSILON_CLIP, GUARD_EPSILON_CLIP, GUARD_GRAD_FLOOR, GUARD_LOG_CLAMP, Guard, Input, KindInfo,
    LOG_BASE, Loss, Per, Terms, check_unit_interval, log_base_divisor, reader,
};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::numeric::{GRAD_FLOOR, clamped_ln, clamped_ln_1m, sigmoid, softplus};
use crate::compute::params::{Limit, NumberOrList, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "bce",
    formula: "-(pw y log a + (1 - y) log(1 - a)); from_logits: pw y softplus(-z) + (1 - y) softplus(z)",
    derivative: "(a (1 - y + pw y) - pw y) / max(a (1 - a), 1e-12); from_logits: sigmoid(z) (1 - y + pw y) - pw y",
    per: Per::Element,
    params: &[POS_WEIGHT, EPSILON_CLIP, LOG_BASE],
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

const POS_WEIGHT: ParamSpec = ParamSpec {
    name: "pos_weight",
    default: ParamDefault::Number(1.0),
    min: Limit::excl(0.0),
    max: None,
    description: "Weight pw of the positive term y log a: a number, or one per column (torch's pos_weight). Must be > 0.",
};

#[derive(Debug)]
struct Bce {
    pos_weight: NumberOrList,
    epsilon: Option<f64>,
    /// ln(log_base), 1 for the natural log.
    divisor: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let pos_weight = r
        .opt_number_or_list("pos_weight")?
        .unwrap_or(NumberOrList::Number(1.0));
    let epsilon = r.opt_number("epsilon")?;
    let divisor = log_base_divisor(r.opt_number("log_base")?);
    r.finish()?;
    Ok(Box::new(Bce {
        pos_weight,
        epsilon,
        divisor,
    }))
}

/// Keras' clip of a probability to [eps, 1 − eps] (identity when `eps` is `None`), and
/// whether it moved the value (the gradient is then 0, as autodiff through the clip).
pub(super) fn clip_to_epsilon(a: f64, eps: Option<f64>) -> (f64, bool) {
    match eps {
        Some(e) if a < e => (e, true),
        Some(e) if a > 1.0 - e => (1.0 - e, true),
        _ => (a, false),
    }
}

/// The term on a probability (already clipped) and d(term)/da (0 unless `want_grad`),
/// noting the guards that acted.
fn probability_term(a: f64, y: f64, pw: f64, want_grad: bool, guard: &mut Guard) -> (f64, f64) {
    let (ln_a, clamped_a) = clamped_ln(a);
    let (ln_1ma, clamped_1ma) = clamped_ln_1m(a);
    // coefficients of −ln a and −ln(1 − a); a clamp under a zero coefficient changes nothing
    let (pos, neg) = (pw * y, 1.0 - y);
    guard.log_clamp |= (clamped_a && pos != 0.0) || (clamped_1ma && neg != 0.0);
    let l = pos * -ln_a + neg * -ln_1ma;
    if !want_grad {
        return (l, 0.0);
    }
    // torch's formula; with pw = 1 its numerator is exactly a − y
    let num = if pw == 1.0 {
        a - y
    } else {
        a * (neg + pos) - pos
    };
    let den = a * (1.0 - a);
    guard.grad_floor |= den < GRAD_FLOOR;
    (l, num / den.max(GRAD_FLOOR))
}

/// The term on a logit z and d(term)/dz: no clamp, no floor (the loss's pass and
/// /train's sigmoid + bce fast path call it).
#[inline]
pub(crate) fn logit_term(z: f64, y: f64, pw: f64) -> (f64, f64) {
    let l = pw * y * softplus(-z) + (1.0 - y) * softplus(z);
    // σ(z)(1 − y + pw·y) − pw·y written as σ(z)(1 − y) − pw·y·σ(−z): no cancellation at |z| ≫ 1
    let d = sigmoid(z) * (1.0 - y) - pw * y * sigmoid(-z);
    (l, d)
}

impl Loss for Bce {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let cols = x.predictions.cols();
        if let NumberOrList::List(v) = &self.pos_weight
            && v.len() != cols
        {
            return Err(ComputeError::invalid(
                "/params/pos_weight",
                format!(
                    "pos_weight has {} entries but predictions have {cols} columns; give a number or one per column",
                    v.len()
                ),
            ));
        }
        check_unit_interval(x.targets, "targets")?;
        if !x.from_logits {
            check_unit_interval(x.predictions, "predictions")?;
        }
        let want_grad = out.grad.is_some();
        let mut guard = Guard::default();
        let pairs = x.predictions.data().iter().zip(x.targets.data());
        for (i, (&a, &y)) in pairs.enumerate() {
            let pw = match &self.pos_weight {
                NumberOrList::Number(p) => *p,
                NumberOrList::List(v) => v[i % cols],
            };
            let (l, d) = if x.from_logits {
                logit_term(a, y, pw)
            } else {
                let (a, moved) = clip_to_epsilon(a, self.epsilon);
                guard.epsilon_clip |= moved;
                let (l, d) = probability_term(a, y, pw, want_grad, &mut guard);
                (l, if moved { 0.0 } else { d })
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
    use crate::compute::params::{ParamValue, Params};
    use crate::compute::reduction::Reduction;

    fn pos_weight_list(v: &[f64]) -> Params {
        Params::new(vec![("pos_weight".into(), ParamValue::Numbers(v.to_vec()))])
    }

    fn terms(r: &crate::compute::loss::LossResult) -> Vec<f64> {
        match &r.loss {
            LossValue::Terms(t) => t.data().to_vec(),
            LossValue::Scalar(_) => panic!("expected terms"),
        }
    }

    #[test]
    fn matches_torch_binary_cross_entropy() {
        // torch.nn.functional.binary_cross_entropy(tensor([0.2, 0.7, 0.9]), tensor([0., 1., 0.5]))
        // (mpmath, 40 digits): terms -ln 0.8, -ln 0.7, -(ln 0.9 + ln 0.1)/2; grad (a - y)/(a(1 - a))/3
        let a = Array::flat(vec![0.2, 0.7, 0.9]);
        let y = Array::flat(vec![0.0, 1.0, 0.5]);
        let (l, g) = mean(LossKind::Bce, &Params::default(), &a, &y);
        close(l, 0.594597099859626);
        close(g[0], 0.4166666666666667);
        close(g[1], -0.4761904761904762);
        close(g[2], 1.4814814814814818);
        let r = eval(
            LossKind::Bce,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        let t = terms(&r);
        close(t[0], 0.22314355131420976);
        close(t[1], 0.35667494393873245);
        close(t[2], 1.2039728043259361);
        assert_eq!(r.guard, Guard::default());
    }

    #[test]
    fn pos_weight_applies_per_column() {
        // -(pw_c y ln a + (1 - y) ln(1 - a)) summed, pw = [2, 0.5] per column (mpmath);
        // torch: binary_cross_entropy_with_logits(logit(a), y, pos_weight=[2, 0.5], reduction="sum")
        let a = rows(&[&[0.3, 0.6], &[0.8, 0.1]]);
        let y = rows(&[&[1.0, 0.0], &[0.25, 1.0]]);
        let p = pos_weight_list(&[2.0, 0.5]);
        let r = eval(LossKind::Bce, &p, false, &a, &y, Reduction::Sum, None).unwrap();
        close(r.loss.total(), 5.79417909700573);
        // d/da at (1, 0): -pw y / a + (1 - y)/(1 - a) with pw = 2, a = 0.8, y = 0.25
        close(r.gradient.unwrap().data()[2], 3.125000000000001);
        // a single number is the same as that number for every column
        let one = params(&[("pos_weight", 2.0)]);
        let two = pos_weight_list(&[2.0, 2.0]);
        let r1 = eval(LossKind::Bce, &one, false, &a, &y, Reduction::Mean, None).unwrap();
        let r2 = eval(LossKind::Bce, &two, false, &a, &y, Reduction::Mean, None).unwrap();
        assert_eq!(r1, r2);
    }

    #[test]
    fn pos_weight_list_must_have_one_entry_per_column() {
        let a = rows(&[&[0.3, 0.6], &[0.8, 0.1]]);
        let y = rows(&[&[1.0, 0.0], &[0.0, 1.0]]);
        let p = pos_weight_list(&[2.0, 1.0, 3.0]);
        let e = eval(LossKind::Bce, &p, false, &a, &y, Reduction::Mean, None).unwrap_err();
        assert_eq!(e.field, "/params/pos_weight");
        let e = LossSpec::new(LossKind::Bce, &pos_weight_list(&[1.0, 0.0]), false).unwrap_err();
        assert_eq!(e.field, "/params/pos_weight/1");
        let e = LossSpec::new(LossKind::Bce, &params(&[("pos_weight", -1.0)]), false).unwrap_err();
        assert_eq!(e.field, "/params/pos_weight");
    }

    #[test]
    fn probabilities_at_0_and_1_are_clamped_at_minus_100_as_torch() {
        // torch: binary_cross_entropy(tensor([0., 1.]), tensor([1., 0.]), reduction="none")
        // = [100, 100]; backward (a - y)/max(a(1 - a), 1e-12) = [-1e12, 1e12]
        let a = Array::flat(vec![0.0, 1.0]);
        let y = Array::flat(vec![1.0, 0.0]);
        let r = eval(
            LossKind::Bce,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        assert_eq!(terms(&r), vec![100.0, 100.0]);
        assert_eq!(r.gradient.unwrap().into_data(), vec![-1e12, 1e12]);
        assert!(r.guard.log_clamp && r.guard.grad_floor && !r.guard.epsilon_clip);
    }

    #[test]
    fn a_clamp_under_a_zero_coefficient_is_no_guard() {
        // a = 0, y = 0: ln a is clamped but multiplied by y = 0; the term is exactly 0
        let a = Array::flat(vec![0.0, 1.0]);
        let y = Array::flat(vec![0.0, 1.0]);
        let spec = LossSpec::new(LossKind::Bce, &Params::default(), false).unwrap();
        let r = spec.evaluate(&a, &y, Reduction::Sum, None, false).unwrap();
        assert_eq!(r.loss, LossValue::Scalar(0.0));
        assert_eq!(r.guard, Guard::default());
        // with a gradient, torch's floor acts (0/1e-12 = 0) and says so
        let r = spec.evaluate(&a, &y, Reduction::Sum, None, true).unwrap();
        assert_eq!(r.gradient.unwrap().into_data(), vec![0.0, 0.0]);
        assert!(r.guard.grad_floor && !r.guard.log_clamp);
    }

    #[test]
    fn epsilon_clips_as_keras_and_zeroes_the_gradient_where_it_moved_a() {
        // clip to [1e-7, 1 - 1e-7]: a = 0 (y = 1) gives -ln(1e-7); a = 1 (y = 0) gives
        // -ln(1 - fl(1 - 1e-7)) (mpmath on the double); a = 0.5, y = 1 gives ln 2, grad -2/3
        let a = Array::flat(vec![0.0, 1.0, 0.5]);
        let y = Array::flat(vec![1.0, 0.0, 1.0]);
        let p = params(&[("epsilon", 1e-7)]);
        let r = eval(LossKind::Bce, &p, false, &a, &y, Reduction::None, None).unwrap();
        let t = terms(&r);
        close(t[0], 16.11809565095832);
        close(t[1], 16.118095651484676);
        close(t[2], std::f64::consts::LN_2);
        assert_eq!(r.gradient.unwrap().into_data(), vec![0.0, 0.0, -2.0]);
        assert_eq!(
            r.guard,
            Guard {
                epsilon_clip: true,
                ..Guard::default()
            }
        );
    }

    #[test]
    fn log_base_2_gives_bits() {
        // -log2(0.5) = 1 bit; d/da = -1/(a ln 2) = -2/ln 2
        let a = Array::flat(vec![0.5]);
        let y = Array::flat(vec![1.0]);
        let (l, g) = mean(LossKind::Bce, &params(&[("log_base", 2.0)]), &a, &y);
        close(l, 1.0);
        close(g[0], -2.0 / std::f64::consts::LN_2);
    }

    #[test]
    fn logits_are_exact_at_800() {
        // torch: binary_cross_entropy_with_logits(tensor([800., -800., 800., 0.]),
        // tensor([0., 1., 1., 0.5]), reduction="none") = [800, 800, 0, ln 2]; grad σ(z) - y
        let z = Array::flat(vec![800.0, -800.0, 800.0, 0.0]);
        let y = Array::flat(vec![0.0, 1.0, 1.0, 0.5]);
        let r = eval(
            LossKind::Bce,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        assert_eq!(terms(&r), vec![800.0, 800.0, 0.0, std::f64::consts::LN_2]);
        assert_eq!(r.gradient.unwrap().into_data(), vec![1.0, -1.0, 0.0, 0.0]);
        assert_eq!(r.guard, Guard::default());
    }

    #[test]
    fn logits_with_pos_weight_match_torch() {
        // torch: binary_cross_entropy_with_logits(tensor([1.5, -2.0, 0.3]),
        // tensor([1., 0., 0.4]), pos_weight=tensor(3.), reduction="none") (mpmath)
        let z = Array::flat(vec![1.5, -2.0, 0.3]);
        let y = Array::flat(vec![1.0, 0.0, 0.4]);
        let p = params(&[("pos_weight", 3.0)]);
        let r = eval(LossKind::Bce, &p, true, &z, &y, Reduction::None, None).unwrap();
        let t = terms(&r);
        close(t[0], 0.6042398339482572);
        close(t[1], 0.1269280110429725);
        close(t[2], 1.1778394400433487);
        let g = r.gradient.unwrap().into_data();
        close(g[0], -0.547276571419069);
        close(g[1], 0.11920292202211756);
        close(g[2], -0.16600346973901386);
    }

    #[test]
    fn out_of_range_probabilities_are_named() {
        let a = rows(&[&[0.5, 0.5], &[1.5, 0.5]]);
        let y = rows(&[&[0.0, 1.0], &[1.0, 0.0]]);
        let e = eval(
            LossKind::Bce,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/1/0");
        let y = Array::flat(vec![0.0, -0.1]);
        let a = Array::flat(vec![0.5, 0.5]);
        let e = eval(
            LossKind::Bce,
            &Params::default(),
            true,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/1");
        // logits are not probabilities
        let z = Array::flat(vec![-3.0, 7.0]);
        let y = Array::flat(vec![0.0, 1.0]);
        assert!(
            eval(
                LossKind::Bce,
                &Params::default(),
                true,
                &z,
                &y,
                Reduction::Mean,
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, 0.85], &[0.6, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[0.7, 0.2]]);
        let z = rows(&[&[-1.3, 2.2], &[0.4, -0.1]]);
        let pw_base = Params::new(vec![
            ("pos_weight".into(), ParamValue::Numbers(vec![2.5, 0.5])),
            ("log_base".into(), ParamValue::Number(10.0)),
        ]);
        for red in Reduction::ALL {
            for p in [&Params::default(), &pw_base, &params(&[("epsilon", 0.05)])] {
                fd_check(
                    LossKind::Bce,
                    p,
                    false,
                    &a,
                    &y,
                    red,
                    Some(&[0.5, 2.0]),
                    1e-6,
                );
                fd_check(LossKind::Bce, p, true, &z, &y, red, Some(&[0.5, 2.0]), 1e-6);
            }
        }
    }
}
