//! `squared_hinge`: the squared margin loss of a binary classifier.
//!
//! term  l = max(0, 1 − t·a)²
//! dl/da = −2t·max(0, 1 − t·a)   (smooth: 0 at the margin t·a = 1)
//! Labels t as `hinge` ([`hinge::labels`]): ±1 as sent, 0/1 with 0 → −1, a mix → error.
//! As tf.keras.losses.SquaredHinge; torch has no binary built-in.

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, hinge, reader};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "squared_hinge",
    formula: "max(0, 1 - t a)^2; t = y for -1/1 labels, 0/1 labels map 0 -> -1",
    derivative: "-2 t max(0, 1 - t a)",
    per: Per::Element,
    params: &[],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain {
        predictions: Values::Real,
        targets: Values::SignLabels,
    },
    fused_elementwise: true,
    activation: ActivationRule::Any,
    build,
};

#[derive(Debug)]
struct SquaredHinge;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(SquaredHinge))
}

impl Loss for SquaredHinge {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let t = hinge::labels(x.targets)?;
        let x = Input { targets: &t, ..*x };
        elementwise(&x, out, |a, t| {
            let m = (1.0 - t * a).max(0.0);
            (m * m, -2.0 * t * m)
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
    fn matches_keras_squared_hinge_on_plus_minus_one_labels() {
        // tf.keras.losses.squared_hinge([1, 1, 1, -1, -1], [0.5, -2, 1, 3, -0.25]):
        // max(0, 1 - t a) = [0.5, 3, 0, 4, 0.75] → squares [0.25, 9, 0, 16, 0.5625],
        // mean 25.8125 / 5; grad -2 t m / 5 = [-1, -6, 0, 8, 1.5] / 5
        let a = Array::flat(vec![0.5, -2.0, 1.0, 3.0, -0.25]);
        let y = Array::flat(vec![1.0, 1.0, 1.0, -1.0, -1.0]);
        let (l, g) = mean(LossKind::SquaredHinge, &Params::default(), &a, &y);
        close(l, 5.1625);
        for (got, want) in g.iter().zip([-0.2, -1.2, 0.0, 1.6, 0.3]) {
            close(*got, want);
        }
    }

    #[test]
    fn zero_one_labels_map_zero_to_minus_one() {
        // tf.keras.losses.squared_hinge([1, 0, 0], [0.25, 0.5, -2]): t = [1, -1, -1],
        // m = [0.75, 1.5, 0] → [0.5625, 2.25, 0]; dl/da = -2 t m = [-1.5, 3, 0]
        let a = Array::flat(vec![0.25, 0.5, -2.0]);
        let y = Array::flat(vec![1.0, 0.0, 0.0]);
        let r = eval(
            LossKind::SquaredHinge,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_eq!(
            r.loss,
            LossValue::Terms(Array::flat(vec![0.5625, 2.25, 0.0]))
        );
        assert_eq!(
            r.gradient.expect("gradient asked for").into_data(),
            vec![-1.5, 3.0, 0.0]
        );
    }

    #[test]
    fn mixed_labels_are_named_as_in_hinge() {
        let a = Array::flat(vec![0.0; 3]);
        for (y, field) in [
            (Array::flat(vec![1.0, -1.0, 0.0]), "/targets/2"),
            (Array::flat(vec![1.0, 0.5, 0.0]), "/targets/1"),
        ] {
            let e = eval(
                LossKind::SquaredHinge,
                &Params::default(),
                false,
                &a,
                &y,
                Reduction::Sum,
                None,
            )
            .expect_err("invalid input");
            assert_eq!(e.field, field);
        }
    }

    #[test]
    fn reductions_weight_each_row() {
        // t = [[1, -1], [1, 1]], a = [[0, 0.5], [2, -1]]: m = [[1, 1.5], [0, 2]]
        // → terms [[1, 2.25], [0, 4]], dl/da [[-2, 3], [0, -4]]; s = [2, 0.5]
        let a = rows(&[&[0.0, 0.5], &[2.0, -1.0]]);
        let y = rows(&[&[1.0, -1.0], &[1.0, 1.0]]);
        let p = Params::default();
        let w = Some(&[2.0, 0.5][..]);
        let none = eval(
            LossKind::SquaredHinge,
            &p,
            false,
            &a,
            &y,
            Reduction::None,
            w,
        )
        .expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[2.0, 4.5], &[0.0, 2.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![-4.0, 6.0, 0.0, -2.0]
        );
        let sum = eval(LossKind::SquaredHinge, &p, false, &a, &y, Reduction::Sum, w)
            .expect("valid input");
        assert_eq!(sum.loss.total(), 8.5);
        // mean: 8.5 / (2·2 + 0.5·2)
        let m = eval(
            LossKind::SquaredHinge,
            &p,
            false,
            &a,
            &y,
            Reduction::Mean,
            w,
        )
        .expect("valid input");
        close(m.loss.total(), 1.7);
        let g = m.gradient.expect("gradient asked for").into_data();
        for (got, want) in g.iter().zip([-0.8, 1.2, 0.0, -0.4]) {
            close(*got, want);
        }
        let plain = eval(
            LossKind::SquaredHinge,
            &p,
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect("valid input");
        assert_eq!(plain.loss.total(), 7.25 / 4.0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        for y in [
            rows(&[&[1.0, -1.0], &[1.0, -1.0]]),
            rows(&[&[0.0, 1.0], &[1.0, 0.0]]),
        ] {
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    fd_check(
                        LossKind::SquaredHinge,
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
    }

    #[test]
    fn unknown_params_are_rejected() {
        let e = eval(
            LossKind::SquaredHinge,
            &params(&[("margin", 1.0)]),
            false,
            &Array::flat(vec![1.0]),
            &Array::flat(vec![1.0]),
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/margin");
    }
}
