//! `js_div`: Jensen–Shannon divergence per row, targets P, predictions Q.
//!
//! term  l = ½·KL(P‖M) + ½·KL(Q‖M), M = ½(P + Q)
//!         = ½·Σ_k [y_k·ln(y_k / m_k) + a_k·ln(a_k / m_k)], zero-mass terms contributing 0
//! dl/da_k = ½·ln(a_k / m_k)
//!   (d/da of ½·a·ln(a/m) + ½·y·ln(y/m) with dm/da = ½ is ½·ln(a/m) + ½ − (a + y)/(4m),
//!   and a + y = 2m). Where y_k = 0, a/m = 2: the derivative is ½·ln 2 even at a_k = 0.
//! Always finite (≤ ln 2), but where a_k = 0 < y_k the derivative is −∞: a 422 naming
//! that element only when a gradient is asked for (API.md). Both arrays must be
//! distribution rows; `log_base` divides value and gradient by ln(base).

use super::kl_div::check_distributions;
use super::{Input, KindInfo, LOG_BASE, Loss, Per, Terms, log_base_divisor, reader};
use super::kind::{ActivationRule, Domain, Values};
use crate::compute::error::ComputeError;
use crate::compute::numeric::accurate_sum_iter;
use crate::compute::params::Params;

pub(super) const KIND: KindInfo = KindInfo {
    name: "js_div",
    formula: "1/2 sum_k [y_k log(y_k / m_k) + a_k log(a_k / m_k)] per row, m = (a + y)/2 (zero-mass terms are 0)",
    derivative: "1/2 log(a_k / m_k) (1/2 log 2 where y_k = 0)",
    per: Per::Row,
    params: &[LOG_BASE],
    from_logits: false,
    guards: &[],
    accepts_indices: false,
    domain: Domain {
        predictions: Values::DistributionRows,
        targets: Values::DistributionRows,
    },
    fused_elementwise: false,
    activation: ActivationRule::Softmax,
    build,
};

#[derive(Debug)]
struct JsDiv {
    /// ln(log_base), 1 for the natural log.
    divisor: f64,
}

pub(super) fn build(params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    let r = reader(params, &KIND);
    let divisor = log_base_divisor(r.opt_number("log_base")?);
    r.finish()?;
    Ok(Box::new(JsDiv { divisor }))
}

/// x·ln(x / m), 0 for x = 0 (then m > 0 or both are 0).
fn mass_term(x: f64, m: f64) -> f64 {
    if x > 0.0 { x * (x.ln() - m.ln()) } else { 0.0 }
}

impl Loss for JsDiv {
    fn eval(&self, x: &Input<'_>, out: &mut Terms) -> Result<(), ComputeError> {
        check_distributions(x)?;
        let q = x.predictions.data();
        let p = x.targets.data();
        for (i, (q, p)) in x
            .predictions
            .row_iter()
            .zip(x.targets.row_iter())
            .enumerate()
        {
            let l = accurate_sum_iter(q.iter().zip(p).map(|(&q, &p)| {
                let m = 0.5 * (p + q);
                mass_term(p, m) + mass_term(q, m)
            }));
            out.values[i] = 0.5 * l / self.divisor;
        }
        if let Some(g) = &mut out.grad {
            if let Some(i) = p.iter().zip(q).position(|(&p, &q)| p > 0.0 && q == 0.0) {
                let k = x.predictions.cols();
                return Err(ComputeError::invalid(
                    x.predictions.pointer("predictions", i),
                    format!(
                        "q = 0 where p > 0 (row {}, column {}): the JS divergence is finite but its gradient 1/2 ln(q/m) is -infinite here",
                        i / k,
                        i % k
                    ),
                ));
            }
            for ((g, &q), &p) in g.iter_mut().zip(q).zip(p) {
                let d = if p > 0.0 {
                    0.5 * (q.ln() - (0.5 * (p + q)).ln())
                } else {
                    0.5 * std::f64::consts::LN_2
                };
                *g = d / self.divisor;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{LossKind, LossSpec, LossValue};
    use crate::compute::array::Array;
    use crate::compute::params::Params;
    use crate::compute::reduction::Reduction;

    const JS: LossKind = LossKind::JsDiv;

    #[test]
    fn matches_the_definition_through_kl() {
        // ½KL(P‖M) + ½KL(Q‖M), mpmath; P = targets, Q = predictions
        let q = rows(&[&[0.25, 0.25, 0.5], &[0.4, 0.4, 0.2]]);
        let p = rows(&[&[0.5, 0.5, 0.0], &[0.2, 0.3, 0.5]]);
        let r = eval(JS, &Params::default(), false, &q, &p, Reduction::None, None).unwrap();
        let LossValue::Terms(t) = r.loss else {
            panic!("terms")
        };
        close(t.data()[0], 0.2157615543388357);
        close(t.data()[1], 0.053780737421496354);
        // d/dq_k = ½ ln(q_k / m_k); ½ ln 2 where p_k = 0
        let g = r.gradient.unwrap().into_data();
        let want = [
            -0.2027325540540822,
            -0.2027325540540822,
            0.34657359027997264,
            0.14384103622589045,
            0.06676569631226133,
            -0.27980789396771133,
        ];
        for (g, w) in g.iter().zip(want) {
            close(*g, w);
        }
    }

    #[test]
    fn disjoint_distributions_are_one_bit_apart() {
        // JS((1, 0), (0, 1)) = ln 2 = 1 bit: finite where KL is not
        let q = Array::flat(vec![0.0, 1.0]);
        let p = Array::flat(vec![1.0, 0.0]);
        let spec = LossSpec::new(JS, &params(&[("log_base", 2.0)]), false).unwrap();
        let r = spec.evaluate(&q, &p, Reduction::Mean, None, false).unwrap();
        close(r.loss.total(), 1.0);
        // but d/dq_0 = ½ ln(0/m) is -inf: asked for, it is a 422 at that element
        let e = spec
            .evaluate(&q, &p, Reduction::Mean, None, true)
            .unwrap_err();
        assert_eq!(e.field, "/predictions/0");
        let e = spec
            .evaluate(
                &rows(&[&[0.5, 0.5], &[0.0, 1.0]]),
                &rows(&[&[0.5, 0.5], &[1.0, 0.0]]),
                Reduction::Mean,
                None,
                true,
            )
            .unwrap_err();
        assert_eq!(e.field, "/predictions/1/0");
    }

    #[test]
    fn base_2_textbook_pair_and_identity() {
        // JS((0.9, 0.1), (0.1, 0.9)) in bits (mpmath)
        let (l, _) = mean(
            JS,
            &params(&[("log_base", 2.0)]),
            &Array::flat(vec![0.1, 0.9]),
            &Array::flat(vec![0.9, 0.1]),
        );
        close(l, 0.5310044064107188);
        let p = Array::flat(vec![0.2, 0.8]);
        let (l, g) = mean(JS, &Params::default(), &p, &p);
        assert_eq!(l, 0.0);
        assert_eq!(g, vec![0.0, 0.0]);
    }

    #[test]
    fn rows_must_be_distributions() {
        let good = rows(&[&[0.5, 0.5], &[0.3, 0.7]]);
        let bad = rows(&[&[0.5, 0.5], &[0.3, 0.8]]);
        let e = eval(
            JS,
            &Params::default(),
            false,
            &bad,
            &good,
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/predictions/1");
        let e = eval(
            JS,
            &Params::default(),
            false,
            &good,
            &bad,
            Reduction::Sum,
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "/targets/1");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let q = rows(&[&[0.25, 0.25, 0.5], &[0.4, 0.4, 0.2]]);
        let p = rows(&[&[0.5, 0.5, 0.0], &[0.2, 0.3, 0.5]]);
        for red in Reduction::ALL {
            for prm in [Params::default(), params(&[("log_base", 10.0)])] {
                fd_check_rows(JS, &prm, false, &q, &p, red, Some(&[0.5, 2.0]), 1e-6);
            }
        }
    }
}
