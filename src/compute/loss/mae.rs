//! `mae`: mean absolute error (L1).
//!
//! term  l = |r|, r = a − y
//! dl/da = sign(r), 0 at the kink r = 0 (torch's sign(0) = 0)
//! As torch.nn.L1Loss. [`sign`] and [`term`] are shared with `smooth_l1` (β = 0 is mae)
//! and `mape`, so every kink of the L1 family has the same gradient.

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "mae",
    formula: "|a - y|",
    derivative: "sign(a - y), 0 at a = y",
    per: Per::Element,
    params: &[],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain::REAL,
    fused_elementwise: true,
    activation: ActivationRule::Any,
    build,
};

#[derive(Debug)]
struct Mae;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(Mae))
}

/// sign(r) with sign(0) = 0: the subgradient torch's autograd picks at |r|'s kink
/// (`f64::signum` would give ±1 at ±0).
#[inline]
pub(super) fn sign(r: f64) -> f64 {
    if r > 0.0 {
        1.0
    } else if r < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The mae term of the residual r = a − y and its derivative.
#[inline]
pub(super) fn term(r: f64) -> (f64, f64) {
    (r.abs(), sign(r))
}

impl Loss for Mae {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        elementwise(x, out, |a, y| term(a - y));
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
    fn matches_torch_l1_loss_with_zero_gradient_at_the_kink() {
        // torch.nn.functional.l1_loss(tensor([0.5, 2.0, -1.0, 3.0]), tensor([1.0, 0.0, -1.5, 3.0]))
        // = (0.5 + 2 + 0.5 + 0) / 4 = 0.75; grad = sign(r) / 4 with sign(0) = 0
        let a = Array::flat(vec![0.5, 2.0, -1.0, 3.0]);
        let y = Array::flat(vec![1.0, 0.0, -1.5, 3.0]);
        let (l, g) = mean(LossKind::Mae, &Params::default(), &a, &y);
        close(l, 0.75);
        assert_eq!(g, vec![-0.25, 0.25, 0.25, 0.0]);
    }

    #[test]
    fn reductions_weight_each_row() {
        // r = [[1, -2], [-0.5, 3]], |r| = [[1, 2], [0.5, 3]], row weights s = [0.5, 2]
        let a = rows(&[&[1.0, -2.0], &[0.5, 4.0]]);
        let y = rows(&[&[0.0, 0.0], &[1.0, 1.0]]);
        let p = Params::default();
        let w = Some(&[0.5, 2.0][..]);
        let none = eval(LossKind::Mae, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[0.5, 1.0], &[1.0, 6.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![0.5, -0.5, -2.0, 2.0]
        );
        let sum = eval(LossKind::Mae, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        close(sum.loss.total(), 8.5);
        // mean: Σ s·l / Σ s over the four terms = 8.5 / 5
        let m = eval(LossKind::Mae, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 1.7);
        let g = m.gradient.expect("gradient asked for").into_data();
        for (got, want) in g.iter().zip([0.1, -0.1, -0.4, 0.4]) {
            close(*got, want);
        }
        let plain =
            eval(LossKind::Mae, &p, false, &a, &y, Reduction::Mean, None).expect("valid input");
        close(plain.loss.total(), 6.5 / 4.0);
        assert_eq!(plain.count, 4);
    }

    #[test]
    fn gradient_matches_central_differences() {
        // residuals kept away from the kink r = 0
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for red in Reduction::ALL {
            for w in [None, Some(&[0.5, 2.0][..])] {
                fd_check(
                    LossKind::Mae,
                    &Params::default(),
                    false,
                    &a,
                    &y,
                    red,
                    w,
                    1e-6,
                );
            }
        }
    }

    #[test]
    fn unknown_params_are_rejected() {
        let e = eval(
            LossKind::Mae,
            &params(&[("delta", 1.0)]),
            false,
            &Array::flat(vec![1.0]),
            &Array::flat(vec![0.0]),
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/delta");
        assert!(e.message.contains("no parameters"), "{}", e.message);
    }
}
