//! `kl_div`: Kullback–Leibler divergence KL(P‖Q) per row, targets P, predictions Q.
//!
//! term  l = Σ_k y_k·ln(y_k / a_k), terms with y_k = 0 contributing 0
//! dl/da_k = −y_k / a_k (0 where y_k = 0)
//! As torch.nn.functional.kl_div(a.log(), y) summed per row (its `batchmean` is our
//! `mean`), computed like torch as y·(ln y − ln a). Both arrays must be distribution
//! rows; a_k = 0 where y_k > 0 makes the divergence infinite: a 422 naming that element.
//! `log_base` divides value and gradient by ln(base).

use super::{
    Input, KindInfo, LOG_BASE, Loss, Per, Terms, check_rows_sum_to_one, check_unit_interval,
    log_base_divisor, reader,
};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::numeric::accurate_sum_iter;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "kl_div",
    formula: "sum_k y_k log(y_k / a_k) per row (targets P, predictions Q; terms with y_k = 0 are 0)",
    derivative: "-y_k / a_k (0 where y_k = 0)",
    per: Per::Row,
    params: &[LOG_BASE],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain {
        predictions: Values::DistributionRows,
        targets: Values::DistributionRows,
    },
    fused_elementwise: false,
    activation: ActivationRule::Softmax,
    build,
};

#[derive(Debug)]
struct KlDiv {
    /// ln(log_base), 1 for the natural log.
    divisor: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let divisor = log_base_divisor(r.opt_number("log_base")?);
    r.finish()?;
    Ok(Box::new(KlDiv { divisor }))
}

/// Both `targets` (P) and `predictions` (Q) are distribution rows (kl_div, js_div).
pub(super) fn check_distributions(x: &Input<'_>) -> Result<(), ComputeError> {
    check_unit_interval(x.targets, "targets")?;
    check_rows_sum_to_one(x.targets, "targets")?;
    check_unit_interval(x.predictions, "predictions")?;
    check_rows_sum_to_one(x.predictions, "predictions")
}

impl Loss for KlDiv {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        check_distributions(x)?;
        let q = x.predictions.data();
        let p = x.targets.data();
        if let Some(i) = p.iter().zip(q).position(|(&p, &q)| p > 0.0 && q == 0.0) {
            let k = x.predictions.cols();
            return Err(ComputeError::invalid(
                x.predictions.pointer("predictions", i),
                format!(
                    "q = 0 where p > 0 (row {}, column {}): the KL divergence is infinite",
                    i / k,
                    i % k
                ),
            ));
        }
        for (i, (q, p)) in x
            .predictions
            .row_iter()
            .zip(x.targets.row_iter())
            .enumerate()
        {
            let l = accurate_sum_iter(
                q.iter()
                    .zip(p)
                    .filter(|&(_, &p)| p > 0.0)
                    .map(|(&q, &p)| p * (p.ln() - q.ln())),
            );
            out.values[i] = l / self.divisor;
        }
        if let Some(g) = &mut out.grad {
            for ((g, &q), &p) in g.iter_mut().zip(q).zip(p) {
                *g = if p > 0.0 { -p / q / self.divisor } else { 0.0 };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::LossKind;
    use super::super::testing::*;
    use crate::compute::array::Array;
    use crate::compute::params::Params;
    use crate::compute::reduction::Reduction;

    const KL: LossKind = LossKind::KlDiv;

    #[test]
    fn textbook_figures_in_base_10() {
        // KL((0.9, 0.1) ‖ (0.1, 0.9)) = 0.8·log10 9 ≈ 0.763; ‖ (0.5, 0.5) ≈ 0.160 (mpmath)
        let p = Array::flat(vec![0.9, 0.1]);
        let base10 = params(&[("log_base", 10.0)]);
        let (l, _) = mean(KL, &base10, &Array::flat(vec![0.1, 0.9]), &p);
        assert_eq!((l * 1000.0).round(), 763.0);
        close(l, 0.7633940075514599);
        let (l, _) = mean(KL, &base10, &Array::flat(vec![0.5, 0.5]), &p);
        assert_eq!((l * 1000.0).round(), 160.0);
        close(l, 0.1598482541593736);
    }

    #[test]
    fn matches_torch_kl_div_batchmean() {
        // torch: kl_div(log(Q), P, reduction="batchmean") (mpmath); p = 0 contributes 0;
        // grad -p/(q m)
        let q = rows(&[&[0.25, 0.25, 0.5], &[0.4, 0.4, 0.2]]);
        let p = rows(&[&[0.5, 0.5, 0.0], &[0.2, 0.3, 0.5]]);
        let (l, g) = mean(KL, &Params::default(), &q, &p);
        close(l, 0.4631792443247497);
        let want = [-1.0, -1.0, 0.0, -0.25, -0.375, -1.25];
        for (g, w) in g.iter().zip(want) {
            close(*g, w);
        }
        // identical distributions diverge by 0
        let (l, g) = mean(KL, &Params::default(), &p, &p);
        assert_eq!(l, 0.0);
        close(g[0], -0.5);
    }

    #[test]
    fn q_zero_where_p_is_positive_is_named() {
        let q = rows(&[&[0.5, 0.5], &[0.0, 1.0]]);
        let p = rows(&[&[0.5, 0.5], &[0.3, 0.7]]);
        let e = eval(KL, &Params::default(), false, &q, &p, Reduction::Sum, None).unwrap_err();
        assert_eq!(e.field, "/predictions/1/0");
        assert!(e.message.contains("infinite"), "{}", e.message);
        let e = eval(
            KL,
            &Params::default(),
            false,
            &Array::flat(vec![1.0, 0.0]),
            &Array::flat(vec![0.5, 0.5]),
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/1");
        // q = 0 where p = 0 is fine
        let (l, g) = mean(
            KL,
            &Params::default(),
            &Array::flat(vec![1.0, 0.0]),
            &Array::flat(vec![1.0, 0.0]),
        );
        assert_eq!((l, g), (0.0, vec![-1.0, 0.0]));
    }

    #[test]
    fn rows_must_be_distributions() {
        let good = rows(&[&[0.5, 0.5], &[0.3, 0.7]]);
        let bad = rows(&[&[0.5, 0.5], &[0.3, 0.6]]);
        let e = eval(
            KL,
            &Params::default(),
            false,
            &bad,
            &good,
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/1");
        let e = eval(
            KL,
            &Params::default(),
            false,
            &good,
            &bad,
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/1");
        let neg = rows(&[&[1.5, -0.5], &[0.3, 0.7]]);
        let e = eval(
            KL,
            &Params::default(),
            false,
            &good,
            &neg,
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/0/0");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let q = rows(&[&[0.25, 0.25, 0.5], &[0.4, 0.4, 0.2]]);
        let p = rows(&[&[0.5, 0.5, 0.0], &[0.2, 0.3, 0.5]]);
        for red in Reduction::ALL {
            for prm in [Params::default(), params(&[("log_base", 2.0)])] {
                fd_check_rows(KL, &prm, false, &q, &p, red, Some(&[0.5, 2.0]), 1e-6);
            }
        }
    }
}
