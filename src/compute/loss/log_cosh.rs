//! `log_cosh`: log of the hyperbolic cosine of the residual.
//!
//! term  l = ln(cosh(r)), r = a − y
//! dl/da = tanh(r)
//! As tf.keras.losses.log_cosh (torch has no built-in). Computed without overflow for
//! large |r| (ln cosh 800 = 800 − ln 2) and without cancellation for small |r|.

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::numeric;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "log_cosh",
    formula: "log(cosh(a - y))",
    derivative: "tanh(a - y)",
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
struct LogCosh;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(LogCosh))
}

impl Loss for LogCosh {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        elementwise(x, out, |a, y| {
            let r = a - y;
            (numeric::log_cosh(r), r.tanh())
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
    fn matches_mpmath_from_tiny_to_huge_residuals() {
        // tf.keras.losses.log_cosh semantics; expected values from mpmath at 50 digits:
        // log(cosh(r)) and tanh(r) for r = [0.5, -2, 1e-5, 30, -800]
        let a = Array::flat(vec![0.75, -1.5, 1e-5, 30.0, -800.0]);
        let y = Array::flat(vec![0.25, 0.5, 0.0, 0.0, 0.0]);
        let r = eval(
            LossKind::LogCosh,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        let LossValue::Terms(terms) = r.loss else {
            panic!("none gives terms")
        };
        let want = [
            0.12011450695827752,
            1.3250027473578645,
            4.9999999999166676e-11,
            29.306852819440056,
            799.3068528194401,
        ];
        for (got, want) in terms.data().iter().zip(want) {
            close(*got, want);
        }
        // `close` has an absolute floor of 1e-15; the tiny term must be right relatively
        // (the overflow-free form alone is off by 8e-8 relative here)
        let tiny = terms.data()[2];
        assert!(
            (tiny - want[2]).abs() <= 1e-14 * want[2],
            "ln cosh 1e-5 = {tiny:e}, want {:e}",
            want[2]
        );
        let g = r.gradient.expect("gradient asked for").into_data();
        let want = [
            0.46211715726000974,
            -0.9640275800758169,
            9.999999999666668e-06,
            1.0,
            -1.0,
        ];
        for (got, want) in g.iter().zip(want) {
            close(*got, want);
        }
        let (l, _) = mean(LossKind::LogCosh, &Params::default(), &a, &y);
        close(l, 166.01176457864926);
    }

    #[test]
    fn reductions_weight_each_row() {
        // r = [[0.5, -2], [1e-5, 30]], s = [3, 0.5]; mpmath: s·log(cosh(r)), s·tanh(r)
        let a = rows(&[&[0.5, -2.0], &[1e-5, 30.0]]);
        let y = rows(&[&[0.0, 0.0], &[0.0, 0.0]]);
        let p = Params::default();
        let w = Some(&[3.0, 0.5][..]);
        let none =
            eval(LossKind::LogCosh, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        let LossValue::Terms(terms) = none.loss else {
            panic!("none gives terms")
        };
        assert!(terms.is_matrix());
        let want = [
            0.36034352087483257,
            3.9750082420735935,
            2.4999999999583338e-11,
            14.653426409720028,
        ];
        for (got, want) in terms.data().iter().zip(want) {
            close(*got, want);
        }
        let g = none.gradient.expect("gradient asked for").into_data();
        let want = [
            1.3863514717800294,
            -2.8920827402274507,
            4.999999999833334e-06,
            0.5,
        ];
        for (got, want) in g.iter().zip(want) {
            close(*got, want);
        }
        let sum =
            eval(LossKind::LogCosh, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        close(sum.loss.total(), 18.988778172693454);
        // mean: Σ s·l / (3·2 + 0.5·2)
        let m =
            eval(LossKind::LogCosh, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 2.712682596099065);
        let g = m.gradient.expect("gradient asked for").into_data();
        let want = [
            0.1980502102542899,
            -0.4131546771753501,
            7.142857142619049e-07,
            0.07142857142857142,
        ];
        for (got, want) in g.iter().zip(want) {
            close(*got, want);
        }
    }

    #[test]
    fn both_branches_agree_at_the_switch() {
        // ln1p(2 sinh²(r/2)) just below |r| = 1 and the overflow-free form at 1 meet
        // within a few ulp (mpmath: log(cosh(1)) = 0.4337808304830272)
        close(crate::compute::numeric::log_cosh(1.0), 0.4337808304830272);
        close(crate::compute::numeric::log_cosh(-1.0), 0.4337808304830272);
        let below = crate::compute::numeric::log_cosh(1.0 - 1e-15);
        assert!((below - 0.4337808304830272).abs() < 2e-15, "{below}");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for red in Reduction::ALL {
            for w in [None, Some(&[0.5, 2.0][..])] {
                fd_check(
                    LossKind::LogCosh,
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
            LossKind::LogCosh,
            &params(&[("delta", 1.0)]),
            false,
            &Array::flat(vec![1.0]),
            &Array::flat(vec![0.0]),
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/delta");
    }
}
