//! `huber`: quadratic near zero, linear beyond `delta`.
//!
//! term  l = ½·r²            if |r| ≤ δ
//!         = δ·(|r| − ½·δ)   otherwise,   r = a − y
//! dl/da = r if |r| ≤ δ, else δ·sign(r)   (continuous: both are ±δ at |r| = δ)
//! As torch.nn.HuberLoss(delta=δ), δ > 0 (default 1).

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, mae, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "huber",
    formula: "1/2 (a - y)^2 if |a - y| <= delta else delta (|a - y| - delta/2)",
    derivative: "a - y if |a - y| <= delta else delta sign(a - y)",
    per: Per::Element,
    params: &[ParamSpec {
        name: "delta",
        default: ParamDefault::Number(1.0),
        min: Limit::excl(0.0),
        max: None,
        description: "Where the quadratic part turns linear (torch's HuberLoss delta). Must be > 0.",
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
struct Huber {
    delta: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let p = reader(params, &KIND);
    let delta = p.number("delta")?;
    p.finish()?;
    Ok(Box::new(Huber { delta }))
}

impl Loss for Huber {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let delta = self.delta;
        elementwise(x, out, |a, y| {
            let r = a - y;
            let ar = r.abs();
            if ar <= delta {
                (0.5 * (r * r), r)
            } else {
                (delta * (ar - 0.5 * delta), delta * mae::sign(r))
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
    fn matches_torch_huber_loss_with_delta_one_half() {
        // torch.nn.functional.huber_loss(tensor([0.25, 1.5, -2.0, 0.0]),
        //     tensor([0.0, 0.0, 0.0, 0.5]), delta=0.5)
        // r = [0.25, 1.5, -2, -0.5]: terms [1/32, 0.5 (1.5 - 0.25), 0.5 (2 - 0.25), 1/8]
        // = [0.03125, 0.625, 0.875, 0.125] (|r| = delta is the quadratic side);
        // mean 1.65625 / 4; grad [0.25, 0.5, -0.5, -0.5] / 4
        let a = Array::flat(vec![0.25, 1.5, -2.0, 0.0]);
        let y = Array::flat(vec![0.0, 0.0, 0.0, 0.5]);
        let (l, g) = mean(LossKind::Huber, &params(&[("delta", 0.5)]), &a, &y);
        assert_eq!(l, 0.4140625);
        assert_eq!(g, vec![0.0625, 0.125, -0.125, -0.125]);
    }

    #[test]
    fn default_delta_is_one() {
        // torch.nn.functional.huber_loss(tensor([0.5, -3.0]), tensor([0.0, 0.0]), reduction="none")
        // = [0.125, 1 (3 - 0.5)] = [0.125, 2.5]
        let a = Array::flat(vec![0.5, -3.0]);
        let y = Array::flat(vec![0.0, 0.0]);
        let r = eval(
            LossKind::Huber,
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
        // delta 1: terms [[0.125, 2.5], [1.5, 0]], dl/da [[0.5, -1], [1, 0]]; s = [2, 0.5]
        let a = rows(&[&[0.5, -3.0], &[2.0, 0.0]]);
        let y = rows(&[&[0.0, 0.0], &[0.0, 0.0]]);
        let p = Params::default();
        let w = Some(&[2.0, 0.5][..]);
        let none =
            eval(LossKind::Huber, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_eq!(
            none.loss,
            LossValue::Terms(rows(&[&[0.25, 5.0], &[0.75, 0.0]]))
        );
        assert_eq!(
            none.gradient.expect("gradient asked for").into_data(),
            vec![1.0, -2.0, 0.5, 0.0]
        );
        let sum = eval(LossKind::Huber, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        assert_eq!(sum.loss.total(), 6.0);
        // mean: 6 / (2·2 + 0.5·2)
        let m = eval(LossKind::Huber, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 1.2);
        let g = m.gradient.expect("gradient asked for").into_data();
        for (got, want) in g.iter().zip([0.2, -0.4, 0.1, 0.0]) {
            close(*got, want);
        }
        let plain =
            eval(LossKind::Huber, &p, false, &a, &y, Reduction::Mean, None).expect("valid input");
        assert_eq!(plain.loss.total(), 4.125 / 4.0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        // residuals on both sides of delta = 0.7, none at |r| = delta
        let a = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, -0.4]]);
        let p = params(&[("delta", 0.7)]);
        for red in Reduction::ALL {
            for w in [None, Some(&[0.5, 2.0][..])] {
                fd_check(LossKind::Huber, &p, false, &a, &y, red, w, 1e-6);
            }
        }
    }

    #[test]
    fn delta_must_be_positive_and_unknown_params_are_rejected() {
        let a = Array::flat(vec![1.0]);
        let y = Array::flat(vec![0.0]);
        for bad in [0.0, -1.0] {
            let e = eval(
                LossKind::Huber,
                &params(&[("delta", bad)]),
                false,
                &a,
                &y,
                Reduction::Mean,
                None,
            )
            .expect_err("invalid input");
            assert_eq!(e.field, "/params/delta");
            assert!(e.message.contains("> 0"), "{}", e.message);
        }
        let e = eval(
            LossKind::Huber,
            &params(&[("beta", 1.0)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/beta");
        assert!(e.message.contains("delta"), "{}", e.message);
    }
}
