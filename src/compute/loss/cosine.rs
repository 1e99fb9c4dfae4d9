//! `cosine`: cosine distance per row, 1 − cos(a, y), each norm clamped at eps.
//!
//! term  l = 1 − a·y / (n_a·n_y), n_a = max(‖a‖, eps), n_y = max(‖y‖, eps)
//! dl/da = −(y / (n_a·n_y) − cos·a / (n_a·‖a‖))   (the second term 0 where a = 0)
//! As 1 − torch.nn.functional.cosine_similarity(a, y, dim=-1, eps) (torch ≥ 1.12 clamps
//! each norm separately), gradient as torch's autograd: torch clamps the norms under
//! no_grad, so ‖a‖'s own derivative a/‖a‖ still flows where 0 < ‖a‖ < eps. There the
//! gradient is not the derivative of the value (which would be −y / (eps·n_y)): the eps
//! is a clamp, like bce's 1e−12 floor. Elsewhere n_a = ‖a‖ and it is the plain
//! −(y / (‖a‖·n_y) − cos·a / ‖a‖²).
//! Each row is scaled by an exact power of two first, so norms of rows near 1e±200
//! neither overflow nor underflow to 0.

use super::{Input, KindInfo, Loss, Per, Terms, reader};
use super::kind::{ActivationRule, Domain};
use crate::compute::error::ComputeError;
use crate::compute::numeric::accurate_sum_iter;
use crate::compute::params::{Limit, ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "cosine",
    formula: "1 - a.y / (max(|a|, eps) max(|y|, eps)) per row",
    derivative: "-(y / (max(|a|, eps) max(|y|, eps)) - cos a / (max(|a|, eps) |a|)), the second term 0 at a = 0 (torch's autograd: the norm clamps are constants)",
    per: Per::Row,
    params: &[EPSILON],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain::REAL,
    fused_elementwise: false,
    activation: ActivationRule::Any,
    build,
};

const EPSILON: ParamSpec = ParamSpec {
    name: "epsilon",
    default: ParamDefault::Number(1e-8),
    min: Limit::excl(0.0),
    max: None,
    description: "Floor of each norm (torch's cosine_similarity eps). Must be > 0.",
};

#[derive(Debug)]
struct Cosine {
    eps: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let eps = r.number("epsilon")?;
    r.finish()?;
    Ok(Box::new(Cosine { eps }))
}

/// 2^−e with e the binary exponent of max |v| (1 for a zero row): v times it has its
/// largest entry near 1, so its squares neither overflow nor all underflow, and the
/// scaling itself is exact.
fn pow2_scale(v: &[f64]) -> f64 {
    let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if m == 0.0 {
        return 1.0;
    }
    let biased = ((m.to_bits() >> 52) & 0x7ff) as i64; // 0 for subnormals
    let e = (biased - 1023).clamp(-1022, 1022);
    f64::from_bits(((1023 - e) as u64) << 52)
}

impl Loss for Cosine {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        let k = x.predictions.cols();
        for (i, (a, y)) in x
            .predictions
            .row_iter()
            .zip(x.targets.row_iter())
            .enumerate()
        {
            // everything below is in the scaled units: â = sa·a, ŷ = sy·y
            let (sa, sy) = (pow2_scale(a), pow2_scale(y));
            let dot = accurate_sum_iter(a.iter().zip(y).map(|(p, q)| (p * sa) * (q * sy)));
            let na = accurate_sum_iter(a.iter().map(|p| (p * sa) * (p * sa))).sqrt();
            let ny = accurate_sum_iter(y.iter().map(|q| (q * sy) * (q * sy))).sqrt();
            // sa·max(‖a‖, eps) and sy·max(‖y‖, eps); the scales cancel in the cosine
            let (fa, fy) = (na.max(self.eps * sa), ny.max(self.eps * sy));
            let cos = dot / (fa * fy);
            out.values[i] = 1.0 - cos;
            if let Some(g) = &mut out.grad {
                let g = &mut g[i * k..(i + 1) * k];
                // in scaled units d/da_i = −sa·(ŷ_i / (fa·fy) − cos·â_i / (fa·na)); torch's
                // autograd takes fa as a constant and the norm's derivative â/na as 0 at a = 0
                for ((g, &p), &q) in g.iter_mut().zip(a).zip(y) {
                    let (p, q) = (p * sa, q * sy);
                    let along_a = if na > 0.0 { cos * p / (fa * na) } else { 0.0 };
                    *g = -sa * (q / (fa * fy) - along_a);
                }
            }
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

    const COS: LossKind = LossKind::Cosine;

    fn terms(a: &Array, y: &Array, p: &Params) -> (Vec<f64>, Vec<f64>) {
        let r = eval(COS, p, false, a, y, Reduction::None, None).unwrap();
        let LossValue::Terms(t) = r.loss else {
            panic!("terms")
        };
        (t.into_data(), r.gradient.unwrap().into_data())
    }

    #[test]
    fn matches_torch_cosine_similarity() {
        // 1 - torch.nn.functional.cosine_similarity(a, y, dim=1).mean():
        // cos = 5/√70 and 1/√15 (mpmath); gradient by mpmath.diff, halved by the mean
        let a = rows(&[&[1.0, 2.0, 3.0], &[-1.0, 0.0, 2.0]]);
        let y = rows(&[&[2.0, 0.0, 1.0], &[1.0, 1.0, 1.0]]);
        let (l, g) = mean(COS, &Params::default(), &a, &y);
        close(l, (0.40238569533280316 + 0.7418011102528389) / 2.0);
        let want = [
            -0.09817949290961091,
            0.042686736047656916,
            0.004268673604765691,
            -0.15491933384829668,
            -0.12909944487358058,
            -0.07745966692414834,
        ];
        for (g, w) in g.iter().zip(want) {
            close(*g, w);
        }
    }

    #[test]
    fn parallel_orthogonal_and_opposite_rows() {
        let a = rows(&[&[2.0, 0.0], &[0.0, 3.0], &[-1.0, 0.0]]);
        let y = rows(&[&[5.0, 0.0], &[1.0, 0.0], &[4.0, 0.0]]);
        let (t, _) = terms(&a, &y, &Params::default());
        assert_eq!(t, vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn norms_below_eps_are_clamped_as_torch() {
        // a = 0: cos = 0, l = 1; torch's autograd: -y/(eps‖y‖) = -[3, 4]/(5e-8)
        let y = Array::flat(vec![3.0, 4.0]);
        let (t, g) = terms(&Array::flat(vec![0.0, 0.0]), &y, &Params::default());
        assert_eq!(t, vec![1.0]);
        close(g[0], -6e7);
        close(g[1], -8e7);
        // ‖a‖ = 1e-9 < eps = 1e-8: cos = (1e-9·3)/(1e-8·5) = 0.06; torch's autograd
        // -(y/(eps‖y‖) - cos/eps·a/‖a‖) = -([6e7, 8e7] - [6e6, 0]) (by hand)
        let (t, g) = terms(&Array::flat(vec![1e-9, 0.0]), &y, &Params::default());
        close(t[0], 0.94);
        close(g[0], -5.4e7);
        close(g[1], -8e7);
        // a larger eps clamps ‖y‖ too: eps = 10 → cos = (1·3)/(10·10)
        let (t, _) = terms(
            &Array::flat(vec![1.0, 0.0]),
            &y,
            &params(&[("epsilon", 10.0)]),
        );
        close(t[0], 0.97);
    }

    #[test]
    fn clamped_norm_gradient_is_torchs_not_the_values_derivative() {
        // ‖a‖ = 5e-4 < eps = 1e-3, y = [1, 2]: 1 - cosine_similarity(a, y, eps=1e-3) and
        // its torch float64 autograd gradient -(y/(eps√5) - cos/eps·a/‖a‖), cos = 1.1/√5
        // (mpmath, scripts/reference.py case cosine/prediction-norm-clamped)
        let p = params(&[("epsilon", 1e-3)]);
        let a = Array::flat(vec![3e-4, 4e-4]);
        let y = Array::flat(vec![1.0, 2.0]);
        let (t, g) = terms(&a, &y, &p);
        close(t[0], 0.5080650449500462);
        close(g[0], -152.05262246998572);
        close(g[1], -500.87922695995286);
        // the value is linear in a here (n_a = eps is a constant): its derivative would be
        // -y/(eps√5) = -[447.21.., 894.42..], which the clamp does not give
        let h = 1e-9;
        let (tp, _) = terms(&Array::flat(vec![3e-4 + h, 4e-4]), &y, &p);
        let (tm, _) = terms(&Array::flat(vec![3e-4 - h, 4e-4]), &y, &p);
        let fd = (tp[0] - tm[0]) / (2.0 * h);
        let value_slope = -1.0 / (1e-3 * 5f64.sqrt());
        assert!(
            (fd - value_slope).abs() < 1e-6 * value_slope.abs(),
            "fd {fd}"
        );
        assert!((fd - g[0]).abs() > 100.0, "fd {fd} vs gradient {}", g[0]);
    }

    #[test]
    fn rows_near_1e200_and_1e_minus_200_keep_their_cosine() {
        // squares of 1e200 overflow and of 1e-200 underflow; the power-of-two scaling keeps
        // cos = 1 for parallel rows and 1/√2 at 45° (eps 1e-300 below both norms)
        let tiny_eps = params(&[("epsilon", 1e-300)]);
        let (t, g) = terms(
            &Array::flat(vec![3e200, 4e200]),
            &Array::flat(vec![3e-200, 4e-200]),
            &tiny_eps,
        );
        assert!(t[0].abs() < 1e-15, "{t:?}");
        assert!(g.iter().all(|x| x.is_finite()));
        let (t, _) = terms(
            &Array::flat(vec![1e-170, 0.0]),
            &Array::flat(vec![1.0, 1.0]),
            &tiny_eps,
        );
        close(t[0], 1.0 - std::f64::consts::FRAC_1_SQRT_2);
    }

    #[test]
    fn epsilon_must_be_positive() {
        let e = super::super::LossSpec::new(COS, &params(&[("epsilon", 0.0)]), false).unwrap_err();
        assert_eq!(e.field, "/params/epsilon");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[1.0, 2.0, 3.0], &[-1.0, 0.5, 2.0]]);
        let y = rows(&[&[2.0, 0.0, 1.0], &[1.0, 1.0, 1.0]]);
        for red in Reduction::ALL {
            fd_check(
                COS,
                &Params::default(),
                false,
                &a,
                &y,
                red,
                Some(&[0.5, 2.0]),
                1e-6,
            );
            fd_check(
                COS,
                &Params::default(),
                false,
                &Array::flat(vec![0.3, -0.7, 1.1]),
                &Array::flat(vec![2.0, 1.0, -0.5]),
                red,
                Some(&[3.0]),
                1e-6,
            );
        }
    }
}
