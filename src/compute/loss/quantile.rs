//! `quantile`: the pinball loss of the τ-quantile.
//!
//! term  l = max(τ·u, (τ − 1)·u), u = y − a
//! dl/da = −τ if u > 0, 1 − τ if u < 0, 0 at the kink u = 0
//! τ (`tau`) in (0, 1), default 0.5 (half the absolute error). As
//! tfa.losses.pinball_loss(y, a, tau); torch has no built-in.

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "quantile",
    formula: "max(tau (y - a), (tau - 1) (y - a))",
    derivative: "-tau if y > a, 1 - tau if y < a, 0 at a = y",
    per: Per::Element,
    params: &[ParamSpec {
        name: "tau",
        default: ParamDefault::Number(0.5),
        min: Limit::excl(0.0),
        max: Limit::excl(1.0),
        description: "The quantile to estimate; 0.5 is half the absolute error. Must be in (0, 1).",
    }],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain::REAL,
    fused_elementwise: true,
    activation: ActivationRule::Any,
    build,
};

#[derive(Debug)]
struct Quantile {
    tau: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let p = reader(params, &KIND);
    let tau = p.number("tau")?;
    p.finish()?;
    Ok(Box::new(Quantile { tau }))
}

impl Loss for Quantile {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let tau = self.tau;
        elementwise(x, out, |a, y| {
            let u = y - a;
            // the larger of τu and (τ − 1)u is τu exactly when u > 0
            if u > 0.0 {
                (tau * u, -tau)
            } else if u < 0.0 {
                ((tau - 1.0) * u, 1.0 - tau)
            } else {
                (0.0, 0.0)
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{LossKind, LossValue};
    use crate::compute::array::Array;
    use crate::compute::params::Params;
    use crate::compute::reduction::Reduction;

    #[test]
    fn matches_pinball_loss_with_tau_one_quarter() {
        // tfa.losses.pinball_loss([3, 0.5, 2, -2], [1, 0, 2, -1], tau=0.25):
        // u = y - a = [2, 0.5, 0, -1] → [0.5, 0.125, 0, 0.75]; mean 1.375 / 4;
        // grad [-tau, -tau, 0 (the kink), 1 - tau] / 4
        let a = Array::flat(vec![1.0, 0.0, 2.0, -1.0]);
        let y = Array::flat(vec![3.0, 0.5, 2.0, -2.0]);
        let (l, g) = mean(LossKind::Quantile, &params(&[("tau", 0.25)]), &a, &y);
        assert_eq!(l, 0.34375);
        assert_eq!(g, vec![-0.0625, -0.0625, 0.0, 0.1875]);
    }

    #[test]
    fn default_tau_is_one_half() {
        // u = [2, -1] → [0.5·2, 0.5·1]; dl/da = [-0.5, 0.5]
        let r = eval(
            LossKind::Quantile,
            &Params::default(),
            false,
            &Array::flat(vec![0.0, 0.0]),
            &Array::flat(vec![2.0, -1.0]),
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_eq!(r.loss, LossValue::Terms(Array::flat(vec![1.0, 0.5])));
        assert_eq!(
            r.gradient.expect("gradient asked for").into_data(),
            vec![-0.5, 0.5]
        );
    }

    #[test]
    fn reductions_weight_each_row() {
        // tau 0.25, u = [[4, -4], [2, 0]]: terms [[1, 3], [0.5, 0]],
        // dl/da [[-0.25, 0.75], [-0.25, 0]]; s = [2, 0.5]
        let a = rows(&[&[0.0, 0.0], &[0.0, 0.0]]);
        let y = rows(&[&[4.0, -4.0], &[2.0, 0.0]]);
        let p = params(&[("tau", 0.25)]);
        let w = Some(&[2.0, 0.5][..]);
        let none =
            eval(LossKind::Quantile, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[2.0, 6.0], &[0.25, 0.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![-0.5, 1.5, -0.125, 0.0]
        );
        let sum =
            eval(LossKind::Quantile, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        assert_eq!(sum.loss.total(), 8.25);
        // mean: 8.25 / (2·2 + 0.5·2)
        let m =
            eval(LossKind::Quantile, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 1.65);
        let g = m.gradient.expect("gradient asked for").into_data();
        for (got, want) in g.iter().zip([-0.1, 0.3, -0.025, 0.0]) {
            close(*got, want);
        }
        let plain = eval(LossKind::Quantile, &p, false, &a, &y, Reduction::Mean, None)
            .expect("valid input");
        assert_eq!(plain.loss.total(), 1.125);
    }

    #[test]
    fn gradient_matches_central_differences() {
        // no u = 0 (the kink)
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for tau in [0.1, 0.5, 0.9] {
            let p = params(&[("tau", tau)]);
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    fd_check(LossKind::Quantile, &p, false, &a, &y, red, w, 1e-6);
                }
            }
        }
    }

    #[test]
    fn tau_must_lie_strictly_between_zero_and_one() {
        let a = Array::flat(vec![1.0]);
        let y = Array::flat(vec![0.0]);
        for bad in [0.0, 1.0, -0.1, 1.5] {
            let e = eval(
                LossKind::Quantile,
                &params(&[("tau", bad)]),
                false,
                &a,
                &y,
                Reduction::Mean,
                None,
            )
            .expect_err("invalid input");
            assert_eq!(e.field, "/params/tau");
            assert!(e.message.contains("in (0, 1)"), "{}", e.message);
        }
        let e = eval(
            LossKind::Quantile,
            &params(&[("quantile", 0.5)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/quantile");
        assert!(e.message.contains("tau"), "{}", e.message);
    }
}
