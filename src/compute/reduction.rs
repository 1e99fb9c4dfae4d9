//! `mean` | `sum` | `none` with optional per-row `weights`: the only place values are
//! reduced (API.md, "Shapes, reductions, weights").
//!
//! A loss gives one term lᵢ per element or per row and dlᵢ/da for each element of
//! `predictions`. With sample weights s (one per row, broadcast over its terms; one per
//! element for a flat elementwise input) and, for class-weighted kinds, row weights r:
//! - `none`: s·l (the gradient is that of Σ s·l);
//! - `sum`: Σ s·l;
//! - `mean`: Σ s·l / D, D = Σ s over every term (Σ s·r with class weights).

use super::array::{Array, Shape};
use super::error::ComputeError;
use super::loss::{LossValue, Per, Terms};
use super::numeric::accurate_sum_iter;

/// How terms are reduced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    #[default]
    Mean,
    Sum,
    None,
}

impl Reduction {
    pub const ALL: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Reduction::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Checks `weights` against the shape: one non-negative finite weight per row (per
/// element for a flat elementwise input), not all zero.
pub fn check_weights(weights: &[f64], shape: Shape, per: Per) -> Result<(), ComputeError> {
    let want = match (per, shape) {
        (Per::Element, Shape::Flat(n)) => n,
        _ => shape.rows(),
    };
    if weights.len() != want {
        let unit = match (per, shape) {
            (Per::Element, Shape::Flat(_)) => "element",
            _ => "row",
        };
        return Err(ComputeError::invalid(
            "/weights",
            format!(
                "weights must hold one number per {unit}: {want} numbers, got {}",
                weights.len()
            ),
        ));
    }
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(ComputeError::invalid(
            format!("/weights/{i}"),
            "weights must be finite and non-negative",
        ));
    }
    if weights.iter().all(|&w| w == 0.0) {
        return Err(ComputeError::invalid(
            "/weights",
            "weights are all zero: the weighted loss is undefined",
        ));
    }
    Ok(())
}

/// The reduced loss and, when the terms carry one, the reduced gradient (same length
/// as `predictions`, row-major).
pub struct Reduced {
    pub loss: LossValue,
    pub gradient: Option<Vec<f64>>,
    pub count: usize,
}

/// Reduce `terms` (from a loss on predictions of `shape`) with `reduction` and the
/// already-checked `weights`.
pub fn reduce(
    mut terms: Terms,
    shape: Shape,
    per: Per,
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Result<Reduced, ComputeError> {
    let count = terms.values.len();
    let cols = shape.cols().max(1);
    // the sample weight of term t, and of gradient element e
    let term_weight = |t: usize| -> f64 {
        match weights {
            None => 1.0,
            Some(w) => match (per, shape) {
                (Per::Element, Shape::Flat(_)) => w[t],
                (Per::Element, Shape::Matrix { .. }) => w[t / cols],
                (Per::Row, _) => w[t],
            },
        }
    };
    let elem_weight = |e: usize| -> f64 {
        match weights {
            None => 1.0,
            Some(w) => match shape {
                Shape::Flat(_) if per == Per::Element => w[e],
                Shape::Flat(_) => w[0],
                Shape::Matrix { .. } => w[e / cols],
            },
        }
    };

    if weights.is_some() {
        for (t, v) in terms.values.iter_mut().enumerate() {
            *v *= term_weight(t);
        }
    }
    let denom = match reduction {
        Reduction::None | Reduction::Sum => 1.0,
        Reduction::Mean => {
            let denom = match &terms.row_weights {
                Some(r) => {
                    accurate_sum_iter(r.iter().enumerate().map(|(i, ri)| ri * term_weight(i)))
                }
                None => match weights {
                    None => count as f64,
                    Some(_) => accurate_sum_iter((0..count).map(term_weight)),
                },
            };
            if denom.is_nan() || denom <= 0.0 {
                return Err(ComputeError::invalid(
                    "/params/class_weights",
                    "the rows' class weights sum to 0: the mean is undefined",
                ));
            }
            denom
        }
    };
    let gradient = terms.grad.take().map(|mut g| {
        if weights.is_some() {
            for (e, x) in g.iter_mut().enumerate() {
                *x = *x * elem_weight(e) / denom;
            }
        } else if denom != 1.0 {
            for x in g.iter_mut() {
                *x /= denom;
            }
        }
        g
    });
    let loss = match reduction {
        Reduction::None => LossValue::Terms(match per {
            // elementwise terms keep the predictions' shape; per-row terms are a flat [m]
            Per::Element => Array::from_shape(terms.values, shape),
            Per::Row => Array::flat(terms.values),
        }),
        Reduction::Sum | Reduction::Mean => {
            LossValue::Scalar(accurate_sum_iter(terms.values.iter().copied()) / denom)
        }
    };
    Ok(Reduced {
        loss,
        gradient,
        count,
    })
}
