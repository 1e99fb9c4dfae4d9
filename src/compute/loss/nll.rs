//! `nll`: negative log-likelihood per row; `predictions` already hold log-probabilities.
//!
//! term  l = −w_t·a_t for a class index t; for target rows, l = −Σ_k w_k·y_k·a_k
//! dl/da_k = −w_k·y_k (−w_t at the target, 0 elsewhere)
//! As torch.nn.functional.nll_loss (whose inputs are log-probabilities: no range or
//! row-sum check on them). Target rows must be distributions. `class_weights` work as
//! in `cross_entropy` (row weight r_i = Σ_k w_k·y_ik, by which `mean` divides);
//! `log_base` divides value and gradient by ln(base).

use super::cross_entropy::{
    CLASS_WEIGHTS, check_class_weights, check_target_rows, raw_target, row_weights,
};
use super::{Input, KindInfo, LOG_BASE, Loss, Per, Terms, log_base_divisor, reader};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::numeric::accurate_sum_iter;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "nll",
    formula: "-w_t a_t per row (a holds log-probabilities); target rows: -sum_k w_k y_k a_k",
    derivative: "-w_k y_k",
    per: Per::Row,
    params: &[CLASS_WEIGHTS, LOG_BASE],
    from_logits: false,
    guards: &[],
    accepts_indices: true,
    domain: Domain {
        predictions: Values::LogProbability,
        targets: Values::DistributionRows,
    },
    fused_elementwise: false,
    activation: ActivationRule::Any,
    build,
};

#[derive(Debug)]
struct Nll {
    class_weights: Option<Vec<f64>>,
    /// ln(log_base), 1 for the natural log.
    divisor: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let class_weights = r.opt_list("class_weights")?;
    let divisor = log_base_divisor(r.opt_number("log_base")?);
    r.finish()?;
    Ok(Box::new(Nll {
        class_weights,
        divisor,
    }))
}

impl Loss for Nll {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let k = x.predictions.cols();
        check_class_weights(self.class_weights.as_deref(), k)?;
        check_target_rows(x)?;
        if let Some(w) = &self.class_weights {
            out.row_weights = Some(row_weights(x, w));
        }
        // the coefficient w_k·y_k of −a_k
        let coef = |i: usize, c: usize| {
            self.class_weights.as_ref().map_or(1.0, |w| w[c]) * raw_target(x, i, c)
        };
        for (i, row) in x.predictions.row_iter().enumerate() {
            let l = accurate_sum_iter(row.iter().enumerate().map(|(c, &a)| coef(i, c) * -a));
            out.values[i] = l / self.divisor;
        }
        if let Some(g) = &mut out.grad {
            for (e, g) in g.iter_mut().enumerate() {
                let c = coef(e / k, e % k);
                *g = if c == 0.0 { 0.0 } else { -c / self.divisor };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{LossKind, LossValue};
    use crate::compute::array::Array;
    use crate::compute::params::{ParamValue, Params};
    use crate::compute::reduction::Reduction;

    const NLL: LossKind = LossKind::Nll;

    fn log_probs() -> Array {
        rows(&[&[-0.5, -1.2, -2.0], &[-3.0, -0.1, -0.7]])
    }

    fn class_weights(w: &[f64]) -> Params {
        Params::new(vec![(
            "class_weights".into(),
            ParamValue::Numbers(w.to_vec()),
        )])
    }

    #[test]
    fn matches_torch_nll_loss_with_index_or_one_hot_targets() {
        // torch: nll_loss(tensor([[-0.5, -1.2, -2.0], [-3.0, -0.1, -0.7]]), tensor([2, 1]))
        // = (2.0 + 0.1)/2; grad -1/2 at the targets
        let idx = Array::flat(vec![2.0, 1.0]);
        let hot = rows(&[&[0.0, 0.0, 1.0], &[0.0, 1.0, 0.0]]);
        for y in [&idx, &hot] {
            let (l, g) = mean(NLL, &Params::default(), &log_probs(), y);
            close(l, 1.05);
            assert_eq!(g, vec![0.0, 0.0, -0.5, 0.0, -0.5, 0.0]);
        }
    }

    #[test]
    fn class_weights_divide_the_mean_by_the_row_weights() {
        // torch: nll_loss(..., weight=tensor([1., 3., 0.5])) = (0.5·2.0 + 3·0.1)/(0.5 + 3)
        let p = class_weights(&[1.0, 3.0, 0.5]);
        let idx = Array::flat(vec![2.0, 1.0]);
        let hot = rows(&[&[0.0, 0.0, 1.0], &[0.0, 1.0, 0.0]]);
        for y in [&idx, &hot] {
            let (l, g) = mean(NLL, &p, &log_probs(), y);
            close(l, 1.3 / 3.5);
            close(g[2], -0.5 / 3.5);
            close(g[4], -3.0 / 3.5);
            // sample weights s = [2, 1]: (2·0.5·2.0 + 1·3·0.1)/(2·0.5 + 1·3) = 2.3/4
            let r = eval(
                NLL,
                &p,
                false,
                &log_probs(),
                y,
                Reduction::Mean,
                Some(&[2.0, 1.0]),
            )
            .unwrap();
            close(r.loss.total(), 2.3 / 4.0);
            let r = eval(NLL, &p, false, &log_probs(), y, Reduction::Sum, None).unwrap();
            close(r.loss.total(), 1.3);
        }
        let e = eval(
            NLL,
            &class_weights(&[1.0, 1.0]),
            false,
            &log_probs(),
            &idx,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/params/class_weights");
    }

    #[test]
    fn soft_target_rows_and_a_flat_row() {
        // -(0.5·(-0.5) + 0.5·(-1.2)) = 0.85 for row 0; -(0.25·(-3.0) + 0.75·(-0.7)) = 1.275
        let y = rows(&[&[0.5, 0.5, 0.0], &[0.25, 0.0, 0.75]]);
        let r = eval(
            NLL,
            &Params::default(),
            false,
            &log_probs(),
            &y,
            Reduction::None,
            None,
        )
        .unwrap();
        let LossValue::Terms(t) = r.loss else {
            panic!("terms")
        };
        close(t.data()[0], 0.85);
        close(t.data()[1], 1.275);
        // a flat prediction is one row, with a single index
        let (l, g) = mean(
            NLL,
            &Params::default(),
            &Array::flat(vec![-0.1, -2.5]),
            &Array::flat(vec![1.0]),
        );
        close(l, 2.5);
        assert_eq!(g, vec![0.0, -1.0]);
        // target rows must be distributions
        let bad = rows(&[&[0.5, 0.4, 0.0], &[0.0, 1.0, 0.0]]);
        let e = eval(
            NLL,
            &Params::default(),
            false,
            &log_probs(),
            &bad,
            Reduction::Mean,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/0");
    }

    #[test]
    fn log_base_divides() {
        // -log2(e^-2) = 2/ln 2
        let (l, g) = mean(
            NLL,
            &params(&[("log_base", 2.0)]),
            &Array::flat(vec![-2.0, -0.2]),
            &Array::flat(vec![0.0]),
        );
        close(l, 2.0 / std::f64::consts::LN_2);
        close(g[0], -1.0 / std::f64::consts::LN_2);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let soft = rows(&[&[0.5, 0.5, 0.0], &[0.25, 0.0, 0.75]]);
        let idx = Array::flat(vec![2.0, 0.0]);
        let prm = Params::new(vec![
            (
                "class_weights".into(),
                ParamValue::Numbers(vec![1.0, 3.0, 0.5]),
            ),
            ("log_base".into(), ParamValue::Number(10.0)),
        ]);
        for red in Reduction::ALL {
            for p in [&Params::default(), &prm] {
                for y in [&soft, &idx] {
                    fd_check(NLL, p, false, &log_probs(), y, red, Some(&[0.5, 2.0]), 1e-6);
                }
            }
        }
    }
}
