//! `poisson`: the Poisson negative log-likelihood of counts y under rates a.
//!
//! term  l = a − y·ln(a + 1e−8)        dl/da = 1 − y/(a + 1e−8)
//! from_logits (predictions are log-rates z):
//! term  l = exp(z) − y·z              dl/dz = exp(z) − y
//! `full` adds the Stirling approximation of ln(y!), y·ln y − y + ½·ln(2πy), where
//! y > 1 (0 elsewhere); it does not depend on a, so the gradient is unchanged.
//! Domain: y ≥ 0, and a ≥ 0 without from_logits; an exp(z) that overflows f64 is an
//! error at that element (API.md: no clamping). As
//! torch.nn.PoissonNLLLoss(log_input=from_logits, full=full, eps=1e-8).

use std::f64::consts::PI;

use super::{Input, KindInfo, Loss, Per, Terms, elementwise, reader};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::array::Array;
use crate::compute::error::ComputeError;
use crate::compute::params::{ParamDefault, ParamSpec, Params};

pub(super) const KIND: KindInfo = KindInfo {
    name: "poisson",
    formula: "a - y log(a + 1e-8); from_logits: exp(z) - y z; full: + y log(y) - y + 1/2 log(2 pi y) where y > 1",
    derivative: "1 - y / (a + 1e-8); from_logits: exp(z) - y",
    per: Per::Element,
    params: &[ParamSpec {
        name: "full",
        default: ParamDefault::Bool(false),
        min: None,
        max: None,
        description: "Add the Stirling term y log(y) - y + 1/2 log(2 pi y) where y > 1 (torch's PoissonNLLLoss full=True); it does not change the gradient.",
    }],
    from_logits: true,
    guards: &[],
    accepts_indices: false,
    domain: Domain {
        predictions: Values::NonNegative,
        targets: Values::NonNegative,
    },
    fused_elementwise: true,
    activation: ActivationRule::NonNegative,
    build,
};

/// torch's PoissonNLLLoss eps: keeps ln(a + eps) finite at a = 0.
const EPS: f64 = 1e-8;

/// exp(z) is finite up to ln(f64::MAX) ≈ 709.78; only above this is exp itself asked.
const EXP_SAFE: f64 = 709.0;

#[derive(Debug)]
struct Poisson {
    full: bool,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let p = reader(params, &KIND);
    let full = p.flag("full")?;
    p.finish()?;
    Ok(Box::new(Poisson { full }))
}

/// Stirling's ln(y!) ≈ y·ln y − y + ½·ln(2πy) for y > 1, else 0 (torch masks y ≤ 1).
#[inline]
fn stirling(y: f64) -> f64 {
    if y > 1.0 {
        y * y.ln() - y + 0.5 * (2.0 * PI * y).ln()
    } else {
        0.0
    }
}

/// Every element of `arr` ≥ 0; else an error at the first one that isn't.
fn check_non_negative(arr: &Array, field: &str, what: &str) -> Result<(), ComputeError> {
    match arr.data().iter().position(|&v| v < 0.0) {
        None => Ok(()),
        Some(i) => Err(ComputeError::invalid(
            arr.pointer(field, i),
            format!("{what} must be >= 0; got {}", arr.data()[i]),
        )),
    }
}

impl Loss for Poisson {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        check_non_negative(x.targets, "targets", "poisson targets (counts)")?;
        let full = self.full;
        let extra = |y: f64| if full { stirling(y) } else { 0.0 };
        if x.from_logits {
            let z = x.predictions.data();
            if let Some(i) = z
                .iter()
                .position(|&z| z > EXP_SAFE && z.exp().is_infinite())
            {
                return Err(ComputeError::invalid(
                    x.predictions.pointer("predictions", i),
                    format!("the rate exp(z) overflows f64 at the log-rate z = {}", z[i]),
                ));
            }
            elementwise(x, out, |z, y| {
                let e = z.exp();
                (e - y * z + extra(y), e - y)
            });
        } else {
            check_non_negative(
                x.predictions,
                "predictions",
                "poisson rates (without from_logits)",
            )?;
            elementwise(x, out, |a, y| {
                let shifted = a + EPS;
                (a - y * shifted.ln() + extra(y), 1.0 - y / shifted)
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{LossKind, LossValue};
    use crate::compute::array::Array;
    use crate::compute::params::{ParamValue, Params};
    use crate::compute::reduction::Reduction;

    fn full(on: bool) -> Params {
        Params::new(vec![("full".into(), ParamValue::Bool(on))])
    }

    fn assert_all_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            close(*g, *w);
        }
    }

    fn terms(r: &crate::compute::loss::LossResult) -> Vec<f64> {
        match &r.loss {
            LossValue::Terms(t) => t.data().to_vec(),
            LossValue::Scalar(_) => panic!("none gives terms"),
        }
    }

    // Expected numbers below are mpmath (50 digits) evaluations of torch's formulas,
    // with a + 1e-8 rounded to f64 first as torch does:
    //   torch.nn.functional.poisson_nll_loss(a, y, log_input=..., full=..., reduction=...)

    #[test]
    fn matches_torch_poisson_nll_loss_on_rates() {
        // poisson_nll_loss([0.5, 2, 0, 3], [1, 0, 2, 4.5], log_input=False)
        let a = Array::flat(vec![0.5, 2.0, 0.0, 3.0]);
        let y = Array::flat(vec![1.0, 0.0, 2.0, 4.5]);
        let r = eval(
            LossKind::Poisson,
            &Params::default(),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_all_close(
            &terms(&r),
            &[
                1.1931471605599455,
                2.0,
                36.841361487904734,
                -1.9437553140064936,
            ],
        );
        assert_all_close(
            &r.gradient.expect("gradient asked for").into_data(),
            &[-0.9999999600000006, 1.0, -199999999.0, -0.49999999500000003],
        );
        let (l, g) = mean(LossKind::Poisson, &Params::default(), &a, &y);
        close(l, 9.522688333614546);
        assert_all_close(
            &g,
            &[
                -0.24999999000000014,
                0.25,
                -49999999.75,
                -0.12499999875000001,
            ],
        );
    }

    #[test]
    fn full_adds_the_stirling_term_where_y_exceeds_one() {
        // poisson_nll_loss(..., log_input=False, full=True): y = 1 and y = 0 get no
        // Stirling term (torch masks y <= 1); the gradient is unchanged
        let a = Array::flat(vec![0.5, 2.0, 0.0, 3.0]);
        let y = Array::flat(vec![1.0, 0.0, 2.0, 4.5]);
        let r = eval(
            LossKind::Poisson,
            &full(true),
            false,
            &a,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_all_close(
            &terms(&r),
            &[
                1.1931471605599455,
                2.0,
                37.49316797250927,
                1.9955702030795497,
            ],
        );
        assert_all_close(
            &r.gradient.expect("gradient asked for").into_data(),
            &[-0.9999999600000006, 1.0, -199999999.0, -0.49999999500000003],
        );
        let r = eval(
            LossKind::Poisson,
            &full(true),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect("valid input");
        close(r.loss.total(), 10.67047133403719);
        // full: false is the default
        let off = eval(
            LossKind::Poisson,
            &full(false),
            false,
            &a,
            &y,
            Reduction::Sum,
            None,
        )
        .expect("valid input");
        close(off.loss.total(), 38.090753334458185);
    }

    #[test]
    fn from_logits_uses_log_rates() {
        // poisson_nll_loss([0.5, -2, 3, 0], [1, 0, 2, 4.5], log_input=True[, full=True])
        let z = Array::flat(vec![0.5, -2.0, 3.0, 0.0]);
        let y = Array::flat(vec![1.0, 0.0, 2.0, 4.5]);
        let r = eval(
            LossKind::Poisson,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        assert_all_close(
            &terms(&r),
            &[
                1.1487212707001282,
                0.1353352832366127,
                14.085536923187668,
                1.0,
            ],
        );
        assert_all_close(
            &r.gradient.expect("gradient asked for").into_data(),
            &[
                0.6487212707001282,
                0.1353352832366127,
                18.085536923187668,
                -3.5,
            ],
        );
        let r = eval(
            LossKind::Poisson,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::Mean,
            None,
        )
        .expect("valid input");
        close(r.loss.total(), 4.092398369281102);
        assert_all_close(
            &r.gradient.expect("gradient asked for").into_data(),
            &[
                0.16218031767503205,
                0.033833820809153176,
                4.521384230796917,
                -0.875,
            ],
        );
        let r = eval(
            LossKind::Poisson,
            &full(true),
            true,
            &z,
            &y,
            Reduction::Mean,
            None,
        )
        .expect("valid input");
        close(r.loss.total(), 5.2401813697037465);
        // a negative log-rate is a valid prediction
        assert!(r.gradient.is_some());
    }

    #[test]
    fn reductions_weight_each_row() {
        // rates [[1, 2], [0.25, 4]], y [[3, 0.5], [1, 2]], s = [0.5, 2]
        let a = rows(&[&[1.0, 2.0], &[0.25, 4.0]]);
        let y = rows(&[&[3.0, 0.5], &[1.0, 2.0]]);
        let p = Params::default();
        let w = Some(&[0.5, 2.0][..]);
        let none =
            eval(LossKind::Poisson, &p, false, &a, &y, Reduction::None, w).expect("valid input");
        assert_all_close(
            &terms(&none),
            &[
                0.49999998500000015,
                0.8267132036100137,
                3.272588642239783,
                2.4548225455204378,
            ],
        );
        assert_all_close(
            &none.gradient.expect("gradient asked for").into_data(),
            &[
                -0.9999999850000002,
                0.375000000625,
                -5.999999680000013,
                1.0000000025,
            ],
        );
        let sum =
            eval(LossKind::Poisson, &p, false, &a, &y, Reduction::Sum, w).expect("valid input");
        close(sum.loss.total(), 7.054124376370234);
        // mean: Σ s·l / (0.5·2 + 2·2)
        let m =
            eval(LossKind::Poisson, &p, false, &a, &y, Reduction::Mean, w).expect("valid input");
        close(m.loss.total(), 1.4108248752740469);
        assert_all_close(
            &m.gradient.expect("gradient asked for").into_data(),
            &[
                -0.19999999700000004,
                0.075000000125,
                -1.1999999360000027,
                0.2000000005,
            ],
        );
        // log-rates [[1, 2], [0.25, -4]], full, same targets and weights
        let z = rows(&[&[1.0, 2.0], &[0.25, -4.0]]);
        let m = eval(
            LossKind::Poisson,
            &full(true),
            true,
            &z,
            &y,
            Reduction::Mean,
            w,
        )
        .expect("valid input");
        close(m.loss.total(), 4.66880096316568);
        assert_all_close(
            &m.gradient.expect("gradient asked for").into_data(),
            &[
                -0.028171817154095478,
                0.688905609893065,
                0.11361016667509659,
                -0.7926737444445063,
            ],
        );
        let s = eval(
            LossKind::Poisson,
            &full(true),
            true,
            &z,
            &y,
            Reduction::Sum,
            w,
        )
        .expect("valid input");
        close(s.loss.total(), 23.3440048158284);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let a = rows(&[&[0.3, 1.2], &[2.5, 0.1]]);
        let z = rows(&[&[0.3, -1.2], &[2.5, 0.1]]);
        let y = rows(&[&[0.0, 1.0], &[2.0, 3.5]]);
        for p in [full(false), full(true)] {
            for red in Reduction::ALL {
                for w in [None, Some(&[0.5, 2.0][..])] {
                    fd_check(LossKind::Poisson, &p, false, &a, &y, red, w, 1e-6);
                    fd_check(LossKind::Poisson, &p, true, &z, &y, red, w, 1e-6);
                }
            }
        }
    }

    #[test]
    fn domain_errors_name_the_element() {
        let p = Params::default();
        let y = rows(&[&[0.0, 1.0], &[2.0, 3.0]]);
        let a = rows(&[&[0.0, 1.0], &[-0.5, 3.0]]);
        let e = eval(LossKind::Poisson, &p, false, &a, &y, Reduction::Mean, None)
            .expect_err("invalid input");
        assert_eq!(e.field, "/predictions/1/0");
        assert!(e.message.contains(">= 0"), "{}", e.message);
        // negative log-rates are fine
        assert!(eval(LossKind::Poisson, &p, true, &a, &y, Reduction::Mean, None).is_ok());
        let bad_y = Array::flat(vec![1.0, -1.0]);
        let ok_a = Array::flat(vec![1.0, 1.0]);
        for from_logits in [false, true] {
            let e = eval(
                LossKind::Poisson,
                &p,
                from_logits,
                &ok_a,
                &bad_y,
                Reduction::Mean,
                None,
            )
            .expect_err("invalid input");
            assert_eq!(e.field, "/targets/1");
        }
    }

    #[test]
    fn an_overflowing_rate_is_named_at_its_element() {
        // exp(709) is finite (8.2e307); exp(710) is not
        let z = Array::flat(vec![1.0, 709.0, 710.0]);
        let y = Array::flat(vec![0.0, 0.0, 0.0]);
        let e = eval(
            LossKind::Poisson,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/predictions/2");
        assert!(e.message.contains("overflows"), "{}", e.message);
        let z = Array::flat(vec![1.0, 709.0]);
        let y = Array::flat(vec![0.0, 0.0]);
        let r = eval(
            LossKind::Poisson,
            &Params::default(),
            true,
            &z,
            &y,
            Reduction::None,
            None,
        )
        .expect("valid input");
        close(terms(&r)[1], 8.218407461554972e307);
    }

    #[test]
    fn full_must_be_a_flag_and_unknown_params_are_rejected() {
        let a = Array::flat(vec![1.0]);
        let y = Array::flat(vec![0.0]);
        let e = eval(
            LossKind::Poisson,
            &params(&[("full", 1.0)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/full");
        let e = eval(
            LossKind::Poisson,
            &params(&[("eps", 1e-8)]),
            false,
            &a,
            &y,
            Reduction::Mean,
            None,
        )
        .expect_err("invalid input");
        assert_eq!(e.field, "/params/eps");
        assert!(e.message.contains("full"), "{}", e.message);
    }
}
