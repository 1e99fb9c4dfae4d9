//! `cross_entropy`: categorical cross-entropy per row, on probabilities or (`from_logits`)
//! on logits; also the class-weight handling `nll` shares.
//!
//! term  l = −Σ_k w_k·y'_k·ln a_k, y' = (1 − s)·y + s/K, each ln clamped at −100
//! dl/da_k = −w_k·y'_k / max(a_k, 1e−12)
//! from_logits: l = −Σ_k w_k·y'_k·log_softmax(z)_k (log-sum-exp, no clamp)
//!         dl/dz_k = softmax(z)_k·Σ_j w_j·y'_j − w_k·y'_k
//! As torch.nn.functional.cross_entropy (logits; probability targets allowed) and
//! nll_loss(log a) on probabilities. `targets` are probability rows or one class index
//! per row (then y is one-hot). `class_weights` w make the row weight
//! r_i = Σ_k w_k·y_ik with the raw targets (w[target] for indices), by which `mean`
//! divides, so index and one-hot targets agree (API.md). `epsilon` clips a to
//! [eps, 1 − eps] first (Keras; gradient 0 where it moved a); `log_base` divides value
//! and gradient by ln(base).

use super::bce::clip_to_epsilon;
use super::{
    EPSILON_CLIP, GUARD_EPSILON_CLIP, GUARD_GRAD_FLOOR, GUARD_LOG_CLAMP, Guard, Input, KindInfo,
    LOG_BASE, Loss, Per, Terms, check_rows_sum_to_one, check_unit_interval, log_base_divisor,
    reader,
};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::numeric::{
    GRAD_FLOOR, accurate_sum, accurate_sum_iter, clamped_ln, log_sum_exp,
};
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "cross_entropy",
    formula: "-sum_k w_k y'_k log a_k per row, y' = (1 - s) y + s/K; from_logits: log a = log_softmax(z)",
    derivative: "-w_k y'_k / max(a_k, 1e-12); from_logits: softmax(z)_k sum_j w_j y'_j - w_k y'_k",
    per: Per::Row,
    params: &[LABEL_SMOOTHING, CLASS_WEIGHTS, EPSILON_CLIP, LOG_BASE],
    from_logits: true,
    guards: &[GUARD_LOG_CLAMP, GUARD_GRAD_FLOOR, GUARD_EPSILON_CLIP],
    accepts_indices: true,
    domain: Domain {
        predictions: Values::DistributionRows,
        targets: Values::DistributionRows,
    },
    fused_elementwise: false,
    activation: ActivationRule::Softmax,
    build,
};

const LABEL_SMOOTHING: ParamSpec = ParamSpec {
    name: "label_smoothing",
    default: ParamDefault::Number(0.0),
    min: Limit::incl(0.0),
    max: Limit::incl(1.0),
    description: "s: targets become (1 - s) y + s/K (torch's label_smoothing). In [0, 1].",
};

/// `class_weights` (cross_entropy, nll): one weight per class.
pub(super) const CLASS_WEIGHTS: ParamSpec = ParamSpec {
    name: "class_weights",
    default: ParamDefault::None,
    min: Limit::incl(0.0),
    max: None,
    description: "One weight w_k >= 0 per class (column), torch's weight. A row's weight is r_i = sum_k w_k y_ik with the raw targets (w[target] for class indices); mean divides by sum r_i (torch divides by m for probability targets; we don't).",
};

#[derive(Debug)]
struct CrossEntropy {
    smoothing: f64,
    class_weights: Option<Vec<f64>>,
    epsilon: Option<f64>,
    /// ln(log_base), 1 for the natural log.
    divisor: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let smoothing = r.number("label_smoothing")?;
    let class_weights = r.opt_list("class_weights")?;
    let epsilon = r.opt_number("epsilon")?;
    let divisor = log_base_divisor(r.opt_number("log_base")?);
    r.finish()?;
    Ok(Box::new(CrossEntropy {
        smoothing,
        class_weights,
        epsilon,
        divisor,
    }))
}

/// `class_weights` must hold one weight per column of `predictions`.
pub(super) fn check_class_weights(w: Option<&[f64]>, k: usize) -> Result<(), ComputeError> {
    match w {
        Some(w) if w.len() != k => Err(ComputeError::invalid(
            "/params/class_weights",
            format!(
                "class_weights has {} entries but predictions have {k} classes (columns)",
                w.len()
            ),
        )),
        _ => Ok(()),
    }
}

/// Target rows sent as numbers must be distributions; class indices are already checked.
pub(super) fn check_target_rows(x: &Input<'_>) -> Result<(), ComputeError> {
    if x.indices.is_none() {
        check_unit_interval(x.targets, "targets")?;
        check_rows_sum_to_one(x.targets, "targets")?;
    }
    Ok(())
}

/// Row i's raw target for class k: one-hot for class indices, else the targets as sent.
pub(super) fn raw_target(x: &Input<'_>, i: usize, k: usize) -> f64 {
    match x.indices {
        Some(t) => f64::from(u8::from(t[i] == k)),
        None => x.targets.row(i)[k],
    }
}

/// The row weights r_i = Σ_k w_k·y_ik (w[target] for class indices).
pub(super) fn row_weights(x: &Input<'_>, w: &[f64]) -> Vec<f64> {
    (0..x.predictions.rows())
        .map(|i| accurate_sum_iter(w.iter().enumerate().map(|(k, wk)| wk * raw_target(x, i, k))))
        .collect()
}

impl CrossEntropy {
    /// −Σ c_k·ln a_k on a probability row, and its gradient into `grad`; `terms` is
    /// scratch space of the row's length.
    fn probability_row(
        &self,
        a: &[f64],
        coef: &[f64],
        terms: &mut [f64],
        grad: Option<&mut [f64]>,
        guard: &mut Guard,
    ) -> f64 {
        let mut nonzero = 0usize;
        let mut last = 0.0;
        // c·(−ln a) with its guards; None for c = 0, whose term 0·(−ln a) is ±0 (ln a is
        // clamped, so finite): no log needed (9 of 10 classes for a class-index target)
        let mut term = |a: f64, c: f64, guard: &mut Guard| {
            if c == 0.0 {
                return None;
            }
            let (ln_a, clamped) = clamped_ln(a);
            guard.log_clamp |= clamped;
            nonzero += 1;
            last = c * -ln_a;
            Some(last)
        };
        match grad {
            Some(g) => {
                for (((t, g), &a), &c) in terms.iter_mut().zip(g).zip(a).zip(coef) {
                    let (a, moved) = clip_to_epsilon(a, self.epsilon);
                    guard.epsilon_clip |= moved;
                    // the floor acts on every denominator, whatever its coefficient (API.md:
                    // "the 1e−12 floor acted"; as bce); c = 0 gives +0, not −0/1e−12
                    guard.grad_floor |= a < GRAD_FLOOR;
                    (*t, *g) = match term(a, c, guard) {
                        None => (0.0, 0.0),
                        Some(t) if moved => (t, 0.0),
                        Some(t) => (t, -c / a.max(GRAD_FLOOR) / self.divisor),
                    };
                }
            }
            None => {
                for ((t, &a), &c) in terms.iter_mut().zip(a).zip(coef) {
                    let (a, moved) = clip_to_epsilon(a, self.epsilon);
                    guard.epsilon_clip |= moved;
                    *t = term(a, c, guard).unwrap_or(0.0);
                }
            }
        }
        // Adding ±0 leaves every lane of accurate_sum as it was, so a row with one
        // non-zero term x (a class-index target) sums to x + 0 (x, or +0 for x = −0)
        // exactly as accurate_sum would; the bit fixture (tests/fixtures/loss_bits.txt) holds
        // it to that.
        if nonzero <= 1 {
            last + 0.0
        } else {
            accurate_sum(terms)
        }
    }

    /// −Σ c_k·log_softmax(z)_k on a logit row, and its gradient into `grad`.
    fn logit_row(&self, z: &[f64], coef: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let divisor = self.divisor;
        logit_row(
            z,
            |k| coef[k],
            grad.map(|g| move |k: usize, d: f64| g[k] = d / divisor),
        )
    }
}

/// The term −Σ c_k·log_softmax(z)_k of a logit row with coefficients `coef(k)`, and
/// (when `grad` is given) each d(term)/dz_k = e^(z_k − lse)·Σc − c_k handed to
/// `grad(k, d)`: the formula, once (the loss's rows and /train's softmax +
/// cross_entropy fast path call it). Both sums are accurate sums in k's order.
#[inline]
pub(crate) fn logit_row(
    z: &[f64],
    coef: impl Fn(usize) -> f64,
    grad: Option<impl FnMut(usize, f64)>,
) -> f64 {
    let lse = log_sum_exp(z);
    // −log_softmax(z)_k = lse − z_k ≥ 0
    let l = accurate_sum_iter(z.iter().enumerate().map(|(k, &zk)| coef(k) * (lse - zk)));
    if let Some(mut grad) = grad {
        let total = accurate_sum_iter((0..z.len()).map(&coef));
        for (k, &zk) in z.iter().enumerate() {
            grad(k, (zk - lse).exp() * total - coef(k));
        }
    }
    l
}

impl Loss for CrossEntropy {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let k = x.predictions.cols();
        check_class_weights(self.class_weights.as_deref(), k)?;
        check_target_rows(x)?;
        if !x.from_logits {
            check_unit_interval(x.predictions, "predictions")?;
            check_rows_sum_to_one(x.predictions, "predictions")?;
        }
        if let Some(w) = &self.class_weights {
            out.row_weights = Some(row_weights(x, w));
        }
        let s = self.smoothing;
        let (keep, spread) = (1.0 - s, s / k as f64);
        let mut guard = Guard::default();
        let mut coef = vec![0.0; k];
        let mut terms = vec![0.0; k];
        let weight = |c: usize| self.class_weights.as_ref().map_or(1.0, |w| w[c]);
        for (i, row) in x.predictions.row_iter().enumerate() {
            // c_k = w_k·((1 − s)·y_k + s/K), y one-hot for a class index
            match x.indices {
                Some(t) => {
                    for (c, slot) in coef.iter_mut().enumerate() {
                        *slot = weight(c) * (keep * 0.0 + spread);
                    }
                    if let Some(slot) = coef.get_mut(t[i]) {
                        *slot = weight(t[i]) * (keep * 1.0 + spread);
                    }
                }
                None => {
                    for ((c, slot), &y) in coef.iter_mut().enumerate().zip(x.targets.row(i)) {
                        *slot = weight(c) * (keep * y + spread);
                    }
                }
            }
            let grad = out.grad.as_mut().map(|g| &mut g[i * k..(i + 1) * k]);
            let l = if x.from_logits {
                self.logit_row(row, &coef, grad)
            } else {
                self.probability_row(row, &coef, &mut terms, grad, &mut guard)
            };
            out.values[i] = l / self.divisor;
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

    const CE: LossKind = LossKind::CrossEntropy;

    fn with_class_weights(w: &[f64], more: &[(&str, f64)]) -> Params {
        let mut v = vec![("class_weights".to_string(), ParamValue::Numbers(w.to_vec()))];
        v.extend(
            more.iter()
                .map(|(n, x)| (n.to_string(), ParamValue::Number(*x))),
        );
        Params::new(v)
    }

    fn terms(r: &crate::compute::loss::LossResult) -> Vec<f64> {
        match &r.loss {
            LossValue::Terms(t) => t.data().to_vec(),
            LossValue::Scalar(_) => panic!("expected terms"),
        }
    }

    fn probs() -> Array {
        rows(&[&[0.7, 0.2, 0.1], &[0.1, 0.3, 0.6]])
    }

    #[test]
    fn matches_torch_nll_of_log_probabilities_with_index_or_one_hot_targets() {
        // torch: nll_loss(log(a), tensor([0, 2])) = (-ln 0.7 - ln 0.6)/2 (mpmath);
        // grad -1/(2 a_t) at the targets, 0 elsewhere
        let idx = Array::flat(vec![0.0, 2.0]);
        let hot = rows(&[&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0]]);
        for y in [&idx, &hot] {
            let (l, g) = mean(CE, &Params::default(), &probs(), y);
            close(l, 0.4337502838523616);
            close(g[0], -0.7142857142857143);
            close(g[5], -0.8333333333333334);
            assert_eq!([g[1], g[2], g[3], g[4]], [0.0; 4]);
        }
    }

    #[test]
    fn class_weights_divide_the_mean_by_the_row_weights() {
        // torch: nll_loss(log(a), tensor([0, 2]), weight=tensor([1., 2., 0.5]))
        // = (1·(-ln 0.7) + 0.5·(-ln 0.6)) / (1 + 0.5) (mpmath)
        let p = with_class_weights(&[1.0, 2.0, 0.5], &[]);
        let idx = Array::flat(vec![0.0, 2.0]);
        let hot = rows(&[&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0]]);
        for y in [&idx, &hot] {
            let r = eval(CE, &p, false, &probs(), y, Reduction::Mean, None).unwrap();
            close(r.loss.total(), 0.4080585038811519);
            // with sample weights s = [3, 1]: (3·1·(-ln 0.7) + 1·0.5·(-ln 0.6)) / (3·1 + 1·0.5)
            let r = eval(
                CE,
                &p,
                false,
                &probs(),
                y,
                Reduction::Mean,
                Some(&[3.0, 1.0]),
            )
            .unwrap();
            close(r.loss.total(), 0.37869646962834075);
            // sum and none carry the class weighting without a denominator
            let r = eval(CE, &p, false, &probs(), y, Reduction::None, None).unwrap();
            let t = terms(&r);
            close(t[0], -(0.7f64.ln()));
            close(t[1], -0.5 * 0.6f64.ln());
        }
        // rows whose class weights are all 0 leave the mean undefined
        let p = with_class_weights(&[0.0, 1.0, 0.0], &[]);
        let e = eval(CE, &p, false, &probs(), &idx, Reduction::Mean, None).unwrap_err();
        assert_eq!(e.field, "/params/class_weights");
    }

    #[test]
    fn class_weights_need_one_weight_per_class() {
        let p = with_class_weights(&[1.0, 2.0], &[]);
        let y = Array::flat(vec![0.0, 2.0]);
        let e = eval(CE, &p, false, &probs(), &y, Reduction::Mean, None).unwrap_err();
        assert_eq!(e.field, "/params/class_weights");
    }

    #[test]
    fn label_smoothing_matches_torch() {
        // torch: cross_entropy(z, tensor([2, 0]), label_smoothing=0.1) (mpmath log-softmax)
        let z = rows(&[&[1.0, -0.5, 2.0], &[0.3, 0.3, -1.2]]);
        let y = Array::flat(vec![2.0, 0.0]);
        let p = params(&[("label_smoothing", 0.1)]);
        let r = eval(CE, &p, true, &z, &y, Reduction::Mean, None).unwrap();
        close(r.loss.total(), 0.6685609416805376);
        // torch: cross_entropy(z, t, weight=tensor([1., 2., 0.5]), label_smoothing=0.1)
        let p = with_class_weights(&[1.0, 2.0, 0.5], &[("label_smoothing", 0.1)]);
        let r = eval(CE, &p, true, &z, &y, Reduction::Mean, None).unwrap();
        close(r.loss.total(), 0.8318468262037387);
        let g = r.gradient.unwrap().into_data();
        let want = [
            0.07362611306212063,
            -0.02305779004248863,
            -0.050568323019632,
            -0.31734678580939196,
            0.2604309919683858,
            0.056915793841006146,
        ];
        for (g, w) in g.iter().zip(want) {
            close(*g, w);
        }
    }

    #[test]
    fn logits_are_exact_at_800() {
        // log_softmax([800, -800])[1] = -1600 exactly; the fused gradient is softmax(z) - y
        let z = rows(&[&[800.0, -800.0], &[0.0, 0.0]]);
        let y = Array::flat(vec![1.0, 0.0]);
        let r = eval(CE, &Params::default(), true, &z, &y, Reduction::None, None).unwrap();
        assert_eq!(terms(&r), vec![1600.0, std::f64::consts::LN_2]);
        assert_eq!(r.gradient.unwrap().into_data(), vec![1.0, -1.0, -0.5, 0.5]);
        assert_eq!(r.guard, Guard::default());
    }

    #[test]
    fn log_base_2_gives_bits() {
        // -log2(0.25) = 2 bits; d/da_1 = -1/(0.25 ln 2)
        let a = Array::flat(vec![0.5, 0.25, 0.25]);
        let y = Array::flat(vec![1.0]);
        let (l, g) = mean(CE, &params(&[("log_base", 2.0)]), &a, &y);
        close(l, 2.0);
        close(g[1], -4.0 / std::f64::consts::LN_2);
    }

    #[test]
    fn zero_probabilities_are_clamped_as_torch_only_where_they_count() {
        // torch: nll_loss(log(tensor([[1., 0.]])).clamp(min=-100), tensor([1])) = 100;
        // derivative -1/max(0, 1e-12) = -1e12
        let a = Array::flat(vec![1.0, 0.0]);
        let r = eval(
            CE,
            &Params::default(),
            false,
            &a,
            &Array::flat(vec![1.0]),
            Reduction::Mean,
            None,
        )
        .unwrap();
        assert_eq!(r.loss.total(), 100.0);
        assert_eq!(r.gradient.unwrap().into_data(), vec![0.0, -1e12]);
        assert!(r.guard.log_clamp && r.guard.grad_floor && !r.guard.epsilon_clip);
        // the clamped ln 0 is multiplied by y = 0: exact 0, no clamp guard; without a
        // gradient no guard at all
        let spec = LossSpec::new(CE, &Params::default(), false).unwrap();
        let y0 = Array::flat(vec![0.0]);
        let r = spec
            .evaluate(&a, &y0, Reduction::Mean, None, false)
            .unwrap();
        assert_eq!(r.loss.total(), 0.0);
        assert_eq!(r.guard, Guard::default());
        // with a gradient the floor acts on max(a_1, 1e-12) (API.md: "the 1e-12 floor
        // acted", as bce) though its coefficient is 0: gradient [-1/1, 0]
        let r = spec.evaluate(&a, &y0, Reduction::Mean, None, true).unwrap();
        assert_eq!(r.gradient.unwrap().into_data(), vec![-1.0, 0.0]);
        assert!(r.guard.grad_floor && !r.guard.log_clamp && !r.guard.epsilon_clip);
    }

    #[test]
    fn epsilon_clips_and_zeroes_the_gradient_where_it_moved_a() {
        // a = [0.5, 0.5, 0] clipped to [1e-7, 1 - 1e-7]: -ln 0.5 for class 0, grad -1/0.5
        // there; the moved 0 has gradient 0 (and coefficient 0 anyway)
        let a = Array::flat(vec![0.5, 0.5, 0.0]);
        let y = Array::flat(vec![0.0]);
        let (l, g) = mean(CE, &params(&[("epsilon", 1e-7)]), &a, &y);
        close(l, std::f64::consts::LN_2);
        assert_eq!(g, vec![-2.0, 0.0, 0.0]);
        // a target class at 0 costs -ln(eps), not 100, and its gradient is 0
        let a = Array::flat(vec![1.0, 0.0]);
        let r = eval(
            CE,
            &params(&[("epsilon", 1e-7)]),
            false,
            &a,
            &Array::flat(vec![1.0]),
            Reduction::Mean,
            None,
        )
        .unwrap();
        close(r.loss.total(), -(1e-7f64.ln()));
        assert_eq!(r.gradient.unwrap().into_data(), vec![0.0, 0.0]);
        assert_eq!(
            r.guard,
            Guard {
                epsilon_clip: true,
                ..Guard::default()
            }
        );
    }

    #[test]
    fn rows_that_are_not_distributions_are_named() {
        let y = Array::flat(vec![0.0, 2.0]);
        let bad = rows(&[&[0.7, 0.2, 0.1], &[0.1, 0.3, 0.5]]);
        let e = eval(
            CE,
            &Params::default(),
            false,
            &bad,
            &y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/1");
        let bad_y = rows(&[&[0.5, 0.6, -0.1], &[0.0, 0.0, 1.0]]);
        let e = eval(
            CE,
            &Params::default(),
            false,
            &probs(),
            &bad_y,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/0/2");
        let e = eval(
            CE,
            &Params::default(),
            false,
            &Array::flat(vec![1.2, -0.2]),
            &Array::flat(vec![0.0]),
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/0");
        // logits need not be a distribution
        let z = rows(&[&[3.0, -1.0, 0.5], &[0.0, 2.0, 9.0]]);
        assert!(eval(CE, &Params::default(), true, &z, &y, Reduction::Mean, None).is_ok());
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.5, 0.25, 0.25], &[0.125, 0.375, 0.5]]);
        let soft = rows(&[&[0.25, 0.5, 0.25], &[0.0, 0.0, 1.0]]);
        let idx = Array::flat(vec![1.0, 2.0]);
        let z = rows(&[&[1.0, -0.5, 2.0], &[0.3, 0.3, -1.2]]);
        let cw = with_class_weights(&[1.0, 2.0, 0.5], &[("label_smoothing", 0.2)]);
        let base = params(&[("log_base", 10.0)]);
        for red in Reduction::ALL {
            for p in [&cw, &base] {
                for y in [&soft, &idx] {
                    fd_check(CE, p, true, &z, y, red, Some(&[0.5, 2.0]), 1e-6);
                    fd_check_rows(CE, p, false, &a, y, red, Some(&[0.5, 2.0]), 1e-6);
                }
            }
        }
    }
}

/// `probability_row` and the row loop of `eval` as they were before they skipped the
/// logs of zero coefficients, verbatim, and the test that the new ones give the same bits.
#[cfg(test)]
mod same_bits_as_before {
    use super::*;
    use crate::compute::array::Array;

    fn original_probability_row(
        ce: &CrossEntropy,
        a: &[f64],
        coef: &[f64],
        grad: Option<&mut [f64]>,
        guard: &mut Guard,
    ) -> f64 {
        let l = accurate_sum_iter(a.iter().zip(coef).map(|(&a, &c)| {
            let (a, moved) = clip_to_epsilon(a, ce.epsilon);
            guard.epsilon_clip |= moved;
            let (ln_a, clamped) = clamped_ln(a);
            guard.log_clamp |= clamped && c != 0.0;
            c * -ln_a
        }));
        if let Some(g) = grad {
            for ((g, &a), &c) in g.iter_mut().zip(a).zip(coef) {
                let (a, moved) = clip_to_epsilon(a, ce.epsilon);
                guard.grad_floor |= a < GRAD_FLOOR;
                *g = if moved || c == 0.0 {
                    0.0
                } else {
                    -c / a.max(GRAD_FLOOR) / ce.divisor
                };
            }
        }
        l
    }

    fn original_eval(
        ce: &CrossEntropy,
        x: &Input<'_>,
        out: &mut Terms,
    ) -> Result<(), ComputeError> {
        let k = x.predictions.cols();
        check_class_weights(ce.class_weights.as_deref(), k)?;
        check_target_rows(x)?;
        if !x.from_logits {
            check_unit_interval(x.predictions, "predictions")?;
            check_rows_sum_to_one(x.predictions, "predictions")?;
        }
        if let Some(w) = &ce.class_weights {
            out.row_weights = Some(row_weights(x, w));
        }
        let s = ce.smoothing;
        let mut guard = Guard::default();
        let mut coef = vec![0.0; k];
        for (i, row) in x.predictions.row_iter().enumerate() {
            for (c, slot) in coef.iter_mut().enumerate() {
                let y = (1.0 - s) * raw_target(x, i, c) + s / k as f64;
                *slot = ce.class_weights.as_ref().map_or(1.0, |w| w[c]) * y;
            }
            let grad = out.grad.as_mut().map(|g| &mut g[i * k..(i + 1) * k]);
            let l = if x.from_logits {
                ce.logit_row(row, &coef, grad)
            } else {
                original_probability_row(ce, row, &coef, grad, &mut guard)
            };
            out.values[i] = l / ce.divisor;
        }
        out.guard.merge(guard);
        Ok(())
    }

    /// A deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn below(&mut self, n: usize) -> usize {
            ((self.unit() * n as f64) as usize).min(n - 1)
        }
    }

    /// Distribution rows: random, exactly one-hot (ln 1 = 0 gives a −0 term; ln 0 is
    /// clamped; epsilon clips move 0 and 1), or all but one entry 1e−13.
    fn rows_of(rng: &mut Rng, m: usize, k: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(m * k);
        for _ in 0..m {
            let hot = rng.below(k);
            let u = rng.unit();
            let row: Vec<f64> = (0..k)
                .map(|c| match u {
                    u if u < 0.3 => f64::from(u8::from(c == hot)),
                    u if u < 0.5 && c == hot => 1.0 - 1e-13 * (k - 1) as f64,
                    u if u < 0.5 => 1e-13,
                    _ => 0.01 + rng.unit(),
                })
                .collect();
            let s: f64 = row.iter().sum();
            out.extend(row.iter().map(|x| if u < 0.5 { *x } else { x / s }));
        }
        out
    }

    #[test]
    fn eval_gives_the_bits_of_the_original_row_loop() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut compared = 0;
        for round in 0..400 {
            let (m, k) = (1 + rng.below(12), 1 + rng.below(11));
            let a = Array::matrix(rows_of(&mut rng, m, k), m, k).expect("m × k");
            let z = Array::matrix((0..m * k).map(|_| 40.0 * rng.unit() - 20.0).collect(), m, k)
                .expect("m × k");
            let soft = Array::matrix(rows_of(&mut rng, m, k), m, k).expect("m × k");
            let idx: Vec<usize> = (0..m).map(|_| rng.below(k)).collect();
            let idx_targets = Array::flat(idx.iter().map(|&t| t as f64).collect());
            let pick = |rng: &mut Rng, x: f64| (rng.unit() < 0.3).then_some(x);
            let ce = CrossEntropy {
                smoothing: pick(&mut rng, 0.1).unwrap_or(0.0),
                class_weights: (round % 3 == 1).then(|| {
                    (0..k)
                        .map(|_| {
                            if rng.unit() < 0.3 {
                                0.0
                            } else {
                                2.0 * rng.unit()
                            }
                        })
                        .collect()
                }),
                epsilon: pick(&mut rng, 1e-3),
                divisor: log_base_divisor(pick(&mut rng, 2.0)),
            };
            for (predictions, from_logits) in [(&a, false), (&z, true)] {
                for (targets, indices) in [(&soft, None), (&idx_targets, Some(idx.as_slice()))] {
                    for grad in [false, true] {
                        let x = Input {
                            predictions,
                            targets,
                            indices,
                            from_logits,
                        };
                        let fresh = || Terms {
                            values: vec![0.0; m],
                            grad: grad.then(|| vec![0.0; m * k]),
                            row_weights: None,
                            guard: Guard::default(),
                            fused: None,
                        };
                        let (mut got, mut want) = (fresh(), fresh());
                        let r_got = ce.eval(&x, &mut got);
                        let r_want = original_eval(&ce, &x, &mut want);
                        assert_eq!(r_got, r_want, "{ce:?}");
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got.values), bits(&want.values), "{ce:?} {a:?}");
                        assert_eq!(
                            got.grad.as_deref().map(bits),
                            want.grad.as_deref().map(bits),
                            "{ce:?}"
                        );
                        assert_eq!(
                            got.row_weights.as_deref().map(bits),
                            want.row_weights.as_deref().map(bits)
                        );
                        assert_eq!(got.guard, want.guard, "{ce:?}");
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 400 * 8);
    }
}
