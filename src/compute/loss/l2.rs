//! `l2`: the textbook's ½ convention of the squared error.
//!
//! term  l = ½·r², r = a − y
//! dl/da = r
//! The textbook's quadratic cost C = ½‖y − a‖²; its `sum` over the regression example
//! x = [−2, −1, 0, 1, 2], y = [−3, 0, 0, 3, 4] with a = 2x + 1 is 3/2 (SSE 3).

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "l2",
    formula: "1/2 (a - y)^2",
    derivative: "a - y",
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
struct L2;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(L2))
}

impl Loss for L2 {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        elementwise(x, out, term_grad);
        Ok(())
    }
}

/// The term ½(a − y)² and its derivative a − y, for one element: the formula, once
/// (the loss's pass and /train's fast paths call it).
#[inline]
pub(crate) fn term_grad(a: f64, y: f64) -> (f64, f64) {
    let r = a - y;
    (0.5 * (r * r), r)
}

#[cfg(test)]
mod tests {
    use super::super::LossKind;
    use super::super::testing::*;
    use crate::compute::array::Array;
    use crate::compute::params::Params;
    use crate::compute::reduction::Reduction;

    #[test]
    fn textbook_regression_example_gives_sse_3_and_34() {
        // x = [-2, -1, 0, 1, 2], y = [-3, 0, 0, 3, 4]; a = w x + b
        let y = Array::flat(vec![-3.0, 0.0, 0.0, 3.0, 4.0]);
        let fit = Array::flat(vec![-3.0, -1.0, 1.0, 3.0, 5.0]); // (w, b) = (2, 1)
        let r = eval(
            LossKind::L2,
            &Params::default(),
            false,
            &fit,
            &y,
            Reduction::Sum,
            None,
        )
        .unwrap();
        assert_eq!(r.loss.total() * 2.0, 3.0);
        let zero = Array::flat(vec![0.0; 5]); // (w, b) = (0, 0)
        let r = eval(
            LossKind::L2,
            &Params::default(),
            false,
            &zero,
            &y,
            Reduction::Sum,
            None,
        )
        .unwrap();
        assert_eq!(r.loss.total() * 2.0, 34.0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for red in Reduction::ALL {
            fd_check(
                LossKind::L2,
                &Params::default(),
                false,
                &a,
                &y,
                red,
                None,
                1e-6,
            );
        }
    }
}
