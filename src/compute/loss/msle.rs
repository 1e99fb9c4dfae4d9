//! `msle`: mean squared logarithmic error.
//!
//! term  l = (ln(1 + a) − ln(1 + y))²   (log1p, accurate near 0)
//! dl/da = 2·(ln(1 + a) − ln(1 + y)) / (1 + a)
//! Domain: a > −1 and y > −1, else an error naming the element. As
//! tf.keras.losses.MeanSquaredLogarithmicError for a, y ≥ 0 (Keras also floors a and y
//! at 1e−7; we don't, the log is defined down to −1). torch has no built-in.

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::array::Array;
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "msle",
    formula: "(log1p(a) - log1p(y))^2; a > -1, y > -1",
    derivative: "2 (log1p(a) - log1p(y)) / (1 + a)",
    per: Per::Element,
    params: &[],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain {
        predictions: Values::AboveMinusOne,
        targets: Values::AboveMinusOne,
    },
    fused_elementwise: true,
    activation: ActivationRule::NonNegative,
    build,
};

#[derive(Debug)]
struct Msle;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(Msle))
}

/// Every element of `arr` above −1 (log1p's domain); else an error at the first one that isn't.
fn check_domain(arr: &Array, field: &str) -> Result<(), ComputeError> {
    match arr.data().iter().position(|&v| v <= -1.0) {
        None => Ok(()),
        Some(i) => Err(ComputeError::invalid(
            arr.pointer(field, i),
            format!(
                "msle takes log1p of {field}, so they must be > -1; got {}",
                arr.data()[i]
            ),
        )),
    }
}

impl Loss for Msle {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        check_domain(x.targets, "targets")?;
        check_domain(x.predictions, "predictions")?;
        elementwise(x, out, |a, y| {
            let d = a.ln_1p() - y.ln_1p();
            (d * d, 2.0 * d / (1.0 + a))
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
    fn matches_mpmath_log1p_values() {
        // tf.keras.losses.mean_squared_logarithmic_error semantics (a > -1 allowed here);
        // expected from mpmath at 50 digits: mean of (log1p(a) - log1p(y))^2 and
        // 2 (log1p(a) - log1p(y)) / (1 + a) / 4
        let a = Array::flat(vec![0.5, 2.0, -0.5, 3.0]);
        let y = Array::flat(vec![1.0, 0.0, 0.25, 3.0]);
        let (l, g) = mean(LossKind::Msle, &Params::default(), &a, &y);
        close(l, 0.5323246602353021);
        let want = [
            -0.09589402415059364,
            0.1831020481113516,
            -0.9162907318741551,
            0.0,
        ];
        for (got, want) in g.iter().zip(want) {
            close(*got, want);
        }
    }

    #[test]
    fn reductions_weight_each_row() {
        // a = [[1, 3], [0, 7]], y = [[0, 1], [1, 3]], s = [0.5, 2]; mpmath as above
        let a = rows(&[&[1.0, 3.0], &[0.0, 7.0]]);
        let y = rows(&[&[0.0, 1.0], &[1.0, 3.0]]);
        let p = Params::default();
        let w = Some(&[0.5, 2.0][..]);
        let none =
            eval(LossKind::Msle, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        let LossValue::Terms(terms) = none.loss else {
            panic!("none gives terms")
        };
        assert!(terms.is_matrix());
        let want = [
            0.24022650695910072,
            0.24022650695910072,
            0.9609060278364029,
            0.9609060278364029,
        ];
        for (got, want) in terms.data().iter().zip(want) {
            close(*got, want);
        }
        let g = none.gradient.expect("gradient asked for").into_data();
        let want = [
            0.34657359027997264,
            0.17328679513998632,
            -2.772588722239781,
            0.34657359027997264,
        ];
        for (got, want) in g.iter().zip(want) {
            close(*got, want);
        }
        let sum = eval(LossKind::Msle, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        close(sum.loss.total(), 2.402265069591007);
        // mean: Σ s·l / (0.5·2 + 2·2)
        let m = eval(LossKind::Msle, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 0.48045301391820144);
        let g = m.gradient.expect("gradient asked for").into_data();
        let want = [
            0.06931471805599453,
            0.03465735902799726,
            -0.5545177444479562,
            0.06931471805599453,
        ];
        for (got, want) in g.iter().zip(want) {
            close(*got, want);
        }
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, -0.6], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        for red in Reduction::ALL {
            for w in [None, Some(&[0.5, 2.0][..])] {
                fd_check(
                    LossKind::Msle,
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
    fn values_at_or_below_minus_one_are_named() {
        let p = Params::default();
        let a = Array::flat(vec![0.0, 1.0, -1.0]);
        let y = Array::flat(vec![0.0, 0.0, 0.0]);
        let e = eval(LossKind::Msle, &p, false, &a, &y, Reduction::Mean, None)
            .expect_err("invalid input");
        assert_eq!(e.field, "/predictions/2");
        assert!(e.message.contains("> -1"), "{}", e.message);
        let a = rows(&[&[0.0, 1.0], &[2.0, 3.0]]);
        let y = rows(&[&[0.0, -1.5], &[0.0, 0.0]]);
        let e = eval(LossKind::Msle, &p, false, &a, &y, Reduction::Mean, None)
            .expect_err("invalid input");
        assert_eq!(e.field, "/targets/0/1");
        // just above -1 is inside the domain
        let a = Array::flat(vec![-0.999]);
        let y = Array::flat(vec![-0.999]);
        let r =
            eval(LossKind::Msle, &p, false, &a, &y, Reduction::Mean, None).expect("valid input");
        assert_eq!(r.loss.total(), 0.0);
    }

    #[test]
    fn unknown_params_are_rejected() {
        let e = eval(
            LossKind::Msle,
            &params(&[("epsilon", 1e-7)]),
            false,
            &Array::flat(vec![1.0]),
            &Array::flat(vec![0.0]),
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/epsilon");
    }
}
