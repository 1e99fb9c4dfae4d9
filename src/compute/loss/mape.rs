//! `mape`: mean absolute percentage error.
//!
//! term  l = 100·|r| / max(|y|, ε), r = a − y
//! dl/da = 100·sign(r) / max(|y|, ε), 0 at the kink r = 0
//! ε (`epsilon`, default 1e−7, > 0) floors the denominator only; y itself is used as
//! sent in r (a floor, not a clip). As tf.keras.losses.MeanAbsolutePercentageError
//! (whose epsilon is 1e−7); torch has no built-in.

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, mae, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "mape",
    formula: "100 |a - y| / max(|y|, epsilon)",
    derivative: "100 sign(a - y) / max(|y|, epsilon), 0 at a = y",
    per: Per::Element,
    params: &[ParamSpec {
        name: "epsilon",
        default: ParamDefault::Number(1e-7),
        min: Limit::excl(0.0),
        max: None,
        description: "Floor of the denominator |y| (Keras' 1e-7 by default); a floor, not a clip: the residual uses y as sent. Must be > 0.",
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
struct Mape {
    epsilon: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let p = reader(params, &KIND);
    let epsilon = p.number("epsilon")?;
    p.finish()?;
    Ok(Box::new(Mape { epsilon }))
}

impl Loss for Mape {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let eps = self.epsilon;
        elementwise(x, out, |a, y| {
            let r = a - y;
            let d = y.abs().max(eps);
            // |r| / d first, then × 100, in Keras' order
            (100.0 * (r.abs() / d), 100.0 * mae::sign(r) / d)
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
    fn matches_keras_mean_absolute_percentage_error() {
        // tf.keras.losses.mean_absolute_percentage_error([1, 4, -2, 2], [1.5, 0, -3, 2])
        // = 100·mean([0.5/1, 4/4, 1/2, 0]) = 50; grad 100·sign(r)/|y| / 4 (0 at r = 0)
        let a = Array::flat(vec![1.5, 0.0, -3.0, 2.0]);
        let y = Array::flat(vec![1.0, 4.0, -2.0, 2.0]);
        let (l, g) = mean(LossKind::Mape, &Params::default(), &a, &y);
        assert_eq!(l, 50.0);
        assert_eq!(g, vec![25.0, -6.25, -12.5, 0.0]);
    }

    #[test]
    fn epsilon_floors_the_denominator_without_clipping_targets() {
        // epsilon 0.5: denominators max(|y|, 0.5) = [0.5, 0.5, 1]; residuals use y as sent:
        // |r| = [0.5, 1, 1] → [100, 200, 100]; dl/da = 100 sign(r) / den = [200, -200, 100]
        let a = Array::flat(vec![0.75, -1.0, 2.0]);
        let y = Array::flat(vec![0.25, 0.0, 1.0]);
        let r = eval(
            LossKind::Mape,
            &params(&[("epsilon", 0.5)]),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_eq!(
            r.loss,
            LossValue::Terms(Array::flat(vec![100.0, 200.0, 100.0]))
        );
        assert_eq!(
            r.gradient.expect("gradient asked for").into_data(),
            vec![200.0, -200.0, 100.0]
        );
        // the default 1e-7 floor keeps y = 0 finite: 100·2e-7 / 1e-7 = 200
        let r = eval(
            LossKind::Mape,
            &Params::default(),
            false,
            &Array::flat(vec![2e-7]),
            &Array::flat(vec![0.0]),
            Reduction::Sum,
            None,
        )
        .expect("valid input");
        close(r.loss.total(), 200.0);
        close(r.gradient.expect("gradient asked for").data()[0], 1e9);
    }

    #[test]
    fn reductions_weight_each_row() {
        // r = [[1, -2], [4, 1]], |y| = [[1, 1], [4, 4]]: terms [[100, 200], [100, 25]],
        // dl/da [[100, -100], [25, 25]]; s = [1, 3]
        let a = rows(&[&[2.0, -1.0], &[0.0, 5.0]]);
        let y = rows(&[&[1.0, 1.0], &[-4.0, 4.0]]);
        let p = Params::default();
        let w = Some(&[1.0, 3.0][..]);
        let none =
            eval(LossKind::Mape, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[100.0, 200.0], &[300.0, 75.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![100.0, -100.0, 75.0, 75.0]
        );
        let sum = eval(LossKind::Mape, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        assert_eq!(sum.loss.total(), 675.0);
        // mean: 675 / (1·2 + 3·2)
        let m = eval(LossKind::Mape, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        assert_eq!(m.loss.total(), 84.375);
        assert_eq!(
            m.gradient.expect("gradient asked for").into_data(),
            vec![12.5, -12.5, 9.375, 9.375]
        );
        let plain =
            eval(LossKind::Mape, &p, false, &a, &y, Reduction::Mean, None).expect("valid input");
        assert_eq!(plain.loss.total(), 106.25);
    }

    #[test]
    fn gradient_matches_central_differences() {
        // includes a |y| below epsilon = 0.3 (the floor) and no r = 0
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.1, 1.0], &[2.0, -0.4]]);
        for p in [Params::default(), params(&[("epsilon", 0.3)])] {
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    fd_check(LossKind::Mape, &p, false, &a, &y, red, w, 1e-6);
                }
            }
        }
    }

    #[test]
    fn epsilon_must_be_positive_and_unknown_params_are_rejected() {
        let a = Array::flat(vec![1.0]);
        let y = Array::flat(vec![0.0]);
        for bad in [0.0, -1e-7] {
            let e = eval(
                LossKind::Mape,
                &params(&[("epsilon", bad)]),
                false,
                &a,
                &y,
                Reduction::Mean,
                None,
            )
            .expect_err("invalid input");
            assert_eq!(e.field, "/params/epsilon");
            assert!(e.message.contains("> 0"), "{}", e.message);
        }
        let e = eval(
            LossKind::Mape,
            &params(&[("eps", 1.0)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/eps");
        assert!(e.message.contains("epsilon"), "{}", e.message);
    }
}
