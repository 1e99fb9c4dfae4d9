//! `hinge`: the margin loss of a binary classifier with score a and label t = ±1.
//!
//! term  l = max(0, 1 − t·a)
//! dl/da = −t where 1 − t·a > 0, else 0 (0 at the kink t·a = 1)
//! Labels ([`labels`], shared with `squared_hinge`): targets that are all ±1 are used
//! as they are; targets that are all 0 or 1 map 0 → −1; a mix of −1 and 0, or any
//! other value, is an error naming the element. As tf.keras.losses.Hinge (which also
//! maps 0/1 labels to ±1); torch has no binary hinge built-in.

use std::borrow::Cow;

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::array::Array;
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "hinge",
    formula: "max(0, 1 - t a); t = y for -1/1 labels, 0/1 labels map 0 -> -1",
    derivative: "-t if 1 - t a > 0 else 0",
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
struct Hinge;

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    reader(params, &KIND).finish()?;
    Ok(Box::new(Hinge))
}

/// The ±1 labels t of `targets`: borrowed when every target is ±1; 0 → −1 when every
/// target is 0 or 1. A target outside {−1, 0, 1} is an error at the first such element;
/// with −1 present a 0 has no meaning, so the first 0 is named.
pub(super) fn labels(targets: &Array) -> Result<Cow<'_, Array>, ComputeError> {
    let y = targets.data();
    if let Some(i) = y.iter().position(|&v| !(v == 1.0 || v == -1.0 || v == 0.0)) {
        return Err(ComputeError::invalid(
            targets.pointer("targets", i),
            format!("hinge labels must be -1/1 (or 0/1); got {}", y[i]),
        ));
    }
    let Some(first_zero) = y.iter().position(|&v| v == 0.0) else {
        return Ok(Cow::Borrowed(targets));
    };
    if y.contains(&-1.0) {
        return Err(ComputeError::invalid(
            targets.pointer("targets", first_zero),
            "labels mix -1 and 0: use -1/1 or 0/1 labels, not both",
        ));
    }
    let t = y.iter().map(|&v| if v == 0.0 { -1.0 } else { v }).collect();
    Ok(Cow::Owned(Array::from_shape(t, targets.shape())))
}

impl Loss for Hinge {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let t = labels(x.targets)?;
        let x = Input { targets: &t, ..*x };
        elementwise(&x, out, |a, t| {
            let margin = 1.0 - t * a;
            if margin > 0.0 {
                (margin, -t)
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
    fn matches_keras_hinge_on_plus_minus_one_labels() {
        // tf.keras.losses.hinge([1, 1, 1, -1, -1], [0.5, -2, 1, 3, -0.25]):
        // 1 - t a = [0.5, 3, 0, 4, 0.75]; mean 8.25 / 5; grad -t / 5 where the margin
        // is positive, 0 at the kink t a = 1
        let a = Array::flat(vec![0.5, -2.0, 1.0, 3.0, -0.25]);
        let y = Array::flat(vec![1.0, 1.0, 1.0, -1.0, -1.0]);
        let (l, g) = mean(LossKind::Hinge, &Params::default(), &a, &y);
        close(l, 1.65);
        assert_eq!(g, vec![-0.2, -0.2, 0.0, 0.2, 0.2]);
    }

    #[test]
    fn zero_one_labels_map_zero_to_minus_one() {
        // tf.keras.losses.hinge([1, 0, 0], [0.25, 0.5, -2]): t = [1, -1, -1],
        // 1 - t a = [0.75, 1.5, -1] → [0.75, 1.5, 0]; dl/da = [-1, 1, 0]
        let a = Array::flat(vec![0.25, 0.5, -2.0]);
        let y = Array::flat(vec![1.0, 0.0, 0.0]);
        let r = eval(
            LossKind::Hinge,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_eq!(r.loss, LossValue::Terms(Array::flat(vec![0.75, 1.5, 0.0])));
        assert_eq!(
            r.gradient.expect("gradient asked for").into_data(),
            vec![-1.0, 1.0, 0.0]
        );
        // all-zero targets are all -1
        let zeros = Array::flat(vec![0.0, 0.0]);
        let t = super::labels(&zeros).expect("0/1 labels");
        assert_eq!(t.data(), &[-1.0, -1.0]);
    }

    #[test]
    fn mixed_or_foreign_labels_are_named() {
        let cases: [(Array, &str); 4] = [
            (Array::flat(vec![-1.0, 1.0, 0.0]), "/targets/2"),
            (Array::flat(vec![0.0, 1.0, -1.0]), "/targets/0"),
            (rows(&[&[1.0, 0.0], &[0.5, 1.0]]), "/targets/1/0"),
            (rows(&[&[1.0, -1.0], &[1.0, 2.0]]), "/targets/1/1"),
        ];
        for (y, field) in cases {
            let a = y.zeros_like();
            let e = eval(
                LossKind::Hinge,
                &Params::default(),
                false,
                &a,
                &y,
                Reduction::Mean,
                None,
            )
            .expect_err("invalid input");
            assert_eq!(e.field, field);
        }
    }

    #[test]
    fn reductions_weight_each_row() {
        // t = [[1, -1], [1, 1]], a = [[0, 0.5], [2, -1]]: margins [[1, 1.5], [-1, 2]]
        // → terms [[1, 1.5], [0, 2]], dl/da [[-1, 1], [0, -1]]; s = [2, 0.5]
        let a = rows(&[&[0.0, 0.5], &[2.0, -1.0]]);
        let y = rows(&[&[1.0, -1.0], &[1.0, 1.0]]);
        let p = Params::default();
        let w = Some(&[2.0, 0.5][..]);
        let none =
            eval(LossKind::Hinge, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[2.0, 3.0], &[0.0, 1.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![-2.0, 2.0, 0.0, -0.5]
        );
        let sum = eval(LossKind::Hinge, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        assert_eq!(sum.loss.total(), 6.0);
        // mean: 6 / (2·2 + 0.5·2)
        let m = eval(LossKind::Hinge, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 1.2);
        let g = m.gradient.expect("gradient asked for").into_data();
        for (got, want) in g.iter().zip([-0.4, 0.4, 0.0, -0.1]) {
            close(*got, want);
        }
        let plain =
            eval(LossKind::Hinge, &p, false, &a, &y, Reduction::Mean, None).expect("valid input");
        assert_eq!(plain.loss.total(), 1.125);
    }

    #[test]
    fn gradient_matches_central_differences() {
        // margins away from the kink, both signs; ±1 and 0/1 labels
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        for y in [
            rows(&[&[1.0, -1.0], &[1.0, -1.0]]),
            rows(&[&[0.0, 1.0], &[1.0, 0.0]]),
        ] {
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    fd_check(
                        LossKind::Hinge,
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
            LossKind::Hinge,
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
