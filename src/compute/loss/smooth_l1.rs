//! `smooth_l1`: torch's smooth L1, quadratic below `beta`.
//!
//! term  l = ½·r²/β      if |r| < β
//!         = |r| − ½·β   otherwise,   r = a − y
//! dl/da = r/β if |r| < β, else sign(r)
//! β = 0 is exactly mae: l = |r|, dl/da = sign(r) with 0 at r = 0 (as torch, which
//! falls back to l1_loss for β = 0). As torch.nn.SmoothL1Loss(beta=β), β ≥ 0 (default 1).

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, mae, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "smooth_l1",
    formula: "1/2 (a - y)^2 / beta if |a - y| < beta else |a - y| - beta/2; beta = 0 is |a - y|",
    derivative: "(a - y) / beta if |a - y| < beta else sign(a - y); 0 at a = y when beta = 0",
    per: Per::Element,
    params: &[ParamSpec {
        name: "beta",
        default: ParamDefault::Number(1.0),
        min: Limit::incl(0.0),
        max: None,
        description: "Where the quadratic part turns linear (torch's SmoothL1Loss beta); 0 gives mae. Must be >= 0.",
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
struct SmoothL1 {
    beta: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let p = reader(params, &KIND);
    let beta = p.number("beta")?;
    p.finish()?;
    Ok(Box::new(SmoothL1 { beta }))
}

impl Loss for SmoothL1 {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let beta = self.beta;
        if beta == 0.0 {
            elementwise(x, out, |a, y| mae::term(a - y));
        } else {
            elementwise(x, out, |a, y| {
                let r = a - y;
                let ar = r.abs();
                if ar < beta {
                    (0.5 * r * r / beta, r / beta)
                } else {
                    (ar - 0.5 * beta, mae::sign(r))
                }
            });
        }
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
    fn matches_torch_smooth_l1_loss_with_beta_one_half() {
        // torch.nn.functional.smooth_l1_loss(tensor([0.25, 1.5, -2.0, 0.0]),
        //     tensor([0.0, 0.0, 0.0, 0.5]), beta=0.5)
        // r = [0.25, 1.5, -2, -0.5]: terms [0.5·0.0625/0.5, 1.5 - 0.25, 2 - 0.25, 0.5 - 0.25]
        // = [0.0625, 1.25, 1.75, 0.25] (|r| = beta is the linear side); mean 3.3125 / 4;
        // grad [0.25/0.5, 1, -1, -1] / 4
        let a = Array::flat(vec![0.25, 1.5, -2.0, 0.0]);
        let y = Array::flat(vec![0.0, 0.0, 0.0, 0.5]);
        let (l, g) = mean(LossKind::SmoothL1, &params(&[("beta", 0.5)]), &a, &y);
        assert_eq!(l, 0.828125);
        assert_eq!(g, vec![0.125, 0.25, -0.25, -0.25]);
    }

    #[test]
    fn beta_zero_is_mae_with_zero_gradient_at_the_kink() {
        // torch.nn.functional.smooth_l1_loss(tensor([0.5, 2.0, -1.0, 3.0]),
        //     tensor([1.0, 0.0, -1.5, 3.0]), beta=0.0) = l1_loss = 0.75; grad sign(r) / 4
        let a = Array::flat(vec![0.5, 2.0, -1.0, 3.0]);
        let y = Array::flat(vec![1.0, 0.0, -1.5, 3.0]);
        let (l, g) = mean(LossKind::SmoothL1, &params(&[("beta", 0.0)]), &a, &y);
        assert_eq!(l, 0.75);
        assert_eq!(g, vec![-0.25, 0.25, 0.25, 0.0]);
    }

    #[test]
    fn default_beta_is_one() {
        // torch.nn.functional.smooth_l1_loss(tensor([0.5, -3.0]), tensor([0.0, 0.0]), reduction="none")
        // = [0.5·0.25, 3 - 0.5] = [0.125, 2.5]
        let a = Array::flat(vec![0.5, -3.0]);
        let y = Array::flat(vec![0.0, 0.0]);
        let r = eval(
            LossKind::SmoothL1,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_eq!(r.loss, LossValue::Terms(Array::flat(vec![0.125, 2.5])));
        assert_eq!(
            r.gradient.expect("gradient asked for").into_data(),
            vec![0.5, -1.0]
        );
    }

    #[test]
    fn reductions_weight_each_row() {
        // beta 2: r = [[1, -3], [0.5, 0]]: terms [[0.25, 2], [0.0625, 0]],
        // dl/da [[0.5, -1], [0.25, 0]]; s = [2, 0.5]
        let a = rows(&[&[1.0, -3.0], &[0.5, 0.0]]);
        let y = rows(&[&[0.0, 0.0], &[0.0, 0.0]]);
        let p = params(&[("beta", 2.0)]);
        let w = Some(&[2.0, 0.5][..]);
        let none =
            eval(LossKind::SmoothL1, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[0.5, 4.0], &[0.03125, 0.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![1.0, -2.0, 0.125, 0.0]
        );
        let sum =
            eval(LossKind::SmoothL1, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        assert_eq!(sum.loss.total(), 4.53125);
        // mean: 4.53125 / (2·2 + 0.5·2)
        let m =
            eval(LossKind::SmoothL1, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 0.90625);
        let g = m.gradient.expect("gradient asked for").into_data();
        for (got, want) in g.iter().zip([0.2, -0.4, 0.025, 0.0]) {
            close(*got, want);
        }
        let plain = eval(LossKind::SmoothL1, &p, false, &a, &y, Reduction::Mean, None)
            .expect("valid input");
        assert_eq!(plain.loss.total(), 2.3125 / 4.0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        // residuals on both sides of beta, none at |r| = beta or (for beta = 0) at r = 0
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for beta in [0.0, 0.7, 1.0] {
            let p = params(&[("beta", beta)]);
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    fd_check(LossKind::SmoothL1, &p, false, &a, &y, red, w, 1e-6);
                }
            }
        }
    }

    #[test]
    fn beta_must_be_non_negative_and_unknown_params_are_rejected() {
        let a = Array::flat(vec![1.0]);
        let y = Array::flat(vec![0.0]);
        let e = eval(
            LossKind::SmoothL1,
            &params(&[("beta", -0.5)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/beta");
        assert!(e.message.contains(">= 0"), "{}", e.message);
        let e = eval(
            LossKind::SmoothL1,
            &params(&[("delta", 1.0)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/delta");
        assert!(e.message.contains("beta"), "{}", e.message);
    }
}
