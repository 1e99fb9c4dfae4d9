//! `mse`: mean squared error.
//!
//! term  l = r², r = a − y
//! dl/da = 2r
//! As torch.nn.MSELoss (whose `mean` divides by the element count).

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "mse",
    formula: "(a - y)^2",
    derivative: "2 (a - y)",
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
struct Mse;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(Mse))
}

impl Loss for Mse {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        elementwise(x, out, term_grad);
        Ok(())
    }
}

/// The term (a − y)² and its derivative 2(a − y), for one element: the formula, once
/// (the loss's pass and /train's fast paths call it).
#[inline]
pub(crate) fn term_grad(a: f64, y: f64) -> (f64, f64) {
    let r = a - y;
    (r * r, 2.0 * r)
}

#[cfg(test)]
mod tests {
    use super::super::LossKind;
    use super::super::testing::*;
    use crate::compute::array::Array;
    use crate::compute::params::Params;
    use crate::compute::reduction::Reduction;

    #[test]
    fn matches_torch_mse_loss() {
        // torch.nn.functional.mse_loss(tensor([0.5, 2.0, -1.0]), tensor([1.0, 0.0, -1.5]))
        // = (0.25 + 4 + 0.25) / 3 = 1.5; grad = 2 r / 3
        let a = Array::flat(vec![0.5, 2.0, -1.0]);
        let y = Array::flat(vec![1.0, 0.0, -1.5]);
        let (l, g) = mean(LossKind::Mse, &Params::default(), &a, &y);
        close(l, 1.5);
        close(g[0], -1.0 / 3.0);
        close(g[1], 4.0 / 3.0);
        close(g[2], 1.0 / 3.0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for red in Reduction::ALL {
            fd_check(
                LossKind::Mse,
                &Params::default(),
                false,
                &a,
                &y,
                red,
                Some(&[0.5, 2.0]),
                1e-6,
            );
        }
    }
}
