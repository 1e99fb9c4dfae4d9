//! The evaluation path as it was before the fused reduction (full terms and gradient
//! buffers, then separate passes: finite checks, weights, denominator, scale, sum, finite
//! checks again), kept for tests, and the test that [`LossSpec::evaluate`] gives the
//! same bits: for every kind × reduction × (no weights / weights) × gradient on/off, on
//! valid inputs, inputs with extreme values (overflowing terms, gradients, sums,
//! weighted sums, subnormal denominators) and invalid ones (the same error field and
//! message).

use super::*;
use crate::compute::numeric::accurate_sum_iter;
use crate::compute::params::ParamValue;

/// The old `LossSpec::evaluate`, verbatim but for the terms' `fused: None`.
fn reference_evaluate(
    spec: &LossSpec,
    predictions: &Array,
    targets: &Array,
    reduction: Reduction,
    weights: Option<&[f64]>,
    want_gradient: bool,
) -> Result<LossResult, ComputeError> {
    let shape = predictions.shape();
    check_not_empty(predictions, "predictions")?;
    check_not_empty(targets, "targets")?;
    let indices = reference_index_targets(spec, predictions, targets)?;
    let per = spec.kind.per();
    if let Some(w) = weights {
        reference_check_weights(w, shape, per)?;
    }
    let count = match per {
        Per::Element => predictions.len(),
        Per::Row => predictions.rows(),
    };
    let mut terms = Terms {
        values: vec![0.0; count],
        grad: want_gradient.then(|| vec![0.0; predictions.len()]),
        row_weights: None,
        guard: Guard::default(),
        fused: None,
    };
    let input = Input {
        predictions,
        targets,
        indices: indices.as_deref(),
        from_logits: spec.from_logits,
    };
    spec.loss.eval(&input, &mut terms)?;
    reference_check_finite_terms(&terms, shape, per)?;
    let guard = terms.guard;
    let (loss, gradient, count) = reference_reduce(terms, shape, per, reduction, weights)?;
    if let LossValue::Scalar(x) = loss
        && !x.is_finite()
    {
        return Err(ComputeError::invalid(
            "/predictions",
            "the reduced loss overflows f64",
        ));
    }
    if let Some(g) = &gradient
        && let Some(i) = g.iter().position(|x| !x.is_finite())
    {
        return Err(ComputeError::invalid(
            predictions.pointer("predictions", i),
            "the gradient overflows f64 here",
        ));
    }
    Ok(LossResult {
        loss,
        count,
        gradient: gradient.map(|g| Array::from_shape(g, shape)),
        guard,
    })
}

/// The old `LossSpec::index_targets`, verbatim.
fn reference_index_targets(
    spec: &LossSpec,
    predictions: &Array,
    targets: &Array,
) -> Result<Option<Vec<usize>>, ComputeError> {
    if targets.shape() == predictions.shape() {
        return Ok(None);
    }
    let rows = predictions.rows();
    if spec.kind.accepts_indices() && !targets.is_matrix() && targets.len() == rows {
        let k = predictions.cols();
        return targets
            .data()
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if t.fract() == 0.0 && t >= 0.0 && t < k as f64 {
                    Ok(t as usize)
                } else {
                    Err(ComputeError::invalid(
                        format!("/targets/{i}"),
                        format!("class index must be an integer in [0, {}]; got {t}", k - 1),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some);
    }
    let also = if spec.kind.accepts_indices() {
        format!(" (or {rows} class indices, one per row)")
    } else {
        String::new()
    };
    Err(ComputeError::invalid(
        "/targets",
        format!(
            "targets have shape {} but predictions have shape {}; they must match{also}",
            targets.shape().describe(),
            predictions.shape().describe()
        ),
    ))
}

/// The old `reduction::check_weights`, verbatim.
fn reference_check_weights(weights: &[f64], shape: Shape, per: Per) -> Result<(), ComputeError> {
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

/// The old `check_unit_interval`, verbatim.
fn reference_check_unit_interval(arr: &Array, field: &str) -> Result<(), ComputeError> {
    match arr.data().iter().position(|&v| !(0.0..=1.0).contains(&v)) {
        None => Ok(()),
        Some(i) => Err(ComputeError::invalid(
            arr.pointer(field, i),
            format!("probabilities must lie in [0, 1]; got {}", arr.data()[i]),
        )),
    }
}

/// The old `check_rows_sum_to_one`, verbatim.
fn reference_check_rows_sum_to_one(arr: &Array, field: &str) -> Result<(), ComputeError> {
    for (r, row) in arr.row_iter().enumerate() {
        let s = crate::compute::numeric::accurate_sum(row);
        if (s - 1.0).abs() > 1e-6 {
            return Err(ComputeError::invalid(
                arr.row_pointer(field, r),
                format!("row {r} sums to {s}, not 1 (within 1e-6); it is not renormalised"),
            ));
        }
    }
    Ok(())
}

/// The old `check_finite_terms`, verbatim.
fn reference_check_finite_terms(t: &Terms, shape: Shape, per: Per) -> Result<(), ComputeError> {
    if let Some(i) = t.values.iter().position(|x| !x.is_finite()) {
        let field = match per {
            Per::Element => super::super::array::element_pointer(shape, "predictions", i),
            Per::Row => super::super::array::row_pointer(shape, "predictions", i),
        };
        return Err(ComputeError::invalid(
            field,
            "the loss is not finite here (the value overflows f64)",
        ));
    }
    if let Some(g) = &t.grad
        && let Some(i) = g.iter().position(|x| !x.is_finite())
    {
        return Err(ComputeError::invalid(
            super::super::array::element_pointer(shape, "predictions", i),
            "the gradient is not finite here",
        ));
    }
    Ok(())
}

/// The old `reduction::reduce`, verbatim (returning loss, gradient, count).
#[allow(clippy::type_complexity)]
fn reference_reduce(
    mut terms: Terms,
    shape: Shape,
    per: Per,
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Result<(LossValue, Option<Vec<f64>>, usize), ComputeError> {
    let count = terms.values.len();
    let cols = shape.cols().max(1);
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
            Per::Element => Array::from_shape(terms.values, shape),
            Per::Row => Array::flat(terms.values),
        }),
        Reduction::Sum | Reduction::Mean => {
            LossValue::Scalar(accurate_sum_iter(terms.values.iter().copied()) / denom)
        }
    };
    Ok((loss, gradient, count))
}

// ---------------------------------------------------------------------------------
// Inputs.

/// A small deterministic generator: the crate's SplitMix64 (the one training batches use).
struct Rng(crate::compute::train::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(crate::compute::train::SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// Values that make terms, gradients or sums overflow, sit on kinks and clamps, or
/// leave a kind's domain.
const WILD: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-310,
    1e-20,
    1e154,
    -1e154,
    1e300,
    -1e300,
    f64::MAX,
    -f64::MAX,
    700.0,
];

/// One case: predictions, targets, and the weights to try.
struct Case {
    a: Array,
    y: Array,
    weights: Vec<f64>,
}

/// Rows of positive entries normalised to sum to 1; `peaked` makes some rows exactly
/// one-hot (logs clamped, epsilon clips moving 0 and 1, gradient floors) and some all
/// but one entry 1e−13.
fn distribution(rng: &mut Rng, rows: usize, cols: usize, peaked: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let hot = rng.below(cols);
        let row: Vec<f64> = match rng.unit() {
            u if peaked && u < 0.3 => (0..cols).map(|c| f64::from(u8::from(c == hot))).collect(),
            u if peaked && u < 0.5 => (0..cols)
                .map(|c| {
                    if c == hot {
                        1.0 - 1e-13 * (cols - 1) as f64
                    } else {
                        1e-13
                    }
                })
                .collect(),
            _ => {
                let row: Vec<f64> = (0..cols).map(|_| rng.range(0.01, 1.0)).collect();
                let s: f64 = row.iter().sum();
                row.iter().map(|x| x / s).collect()
            }
        };
        out.extend(row);
    }
    out
}

/// A magnitude 10^u, u uniform in [lo, hi), with a random sign when `signed`.
fn spread(rng: &mut Rng, lo: f64, hi: f64, signed: bool) -> f64 {
    let x = 10f64.powf(rng.range(lo, hi));
    if signed && rng.unit() < 0.5 { -x } else { x }
}

/// Inputs for `kind` in its domain, with a fraction `wild` of the elements replaced by
/// [`WILD`] values (in predictions, targets or weights); `peaked` distribution rows (see
/// [`distribution`]). `cancel` draws values over many
/// magnitudes instead, so that (for the kinds with terms of both signs: poisson, nll)
/// the sums cancel and their bits depend on the summation order.
#[allow(clippy::too_many_arguments)]
fn case(
    kind: LossKind,
    from_logits: bool,
    rng: &mut Rng,
    shape: Shape,
    indices: bool,
    wild: f64,
    cancel: bool,
    peaked: bool,
) -> Case {
    let (rows, cols, n) = (shape.rows(), shape.cols(), shape.len());
    let mut a: Vec<f64> = match kind {
        LossKind::Msle => (0..n).map(|_| rng.range(-0.9, 5.0)).collect(),
        LossKind::Poisson if !from_logits => (0..n).map(|_| rng.range(0.0, 5.0)).collect(),
        LossKind::Bce | LossKind::Focal if !from_logits => {
            (0..n).map(|_| rng.range(0.0, 1.0)).collect()
        }
        LossKind::CrossEntropy if !from_logits => distribution(rng, rows, cols, peaked),
        LossKind::KlDiv | LossKind::JsDiv => distribution(rng, rows, cols, peaked),
        LossKind::Nll => (0..n).map(|_| rng.range(-5.0, 0.0)).collect(),
        _ => (0..n).map(|_| rng.range(-4.0, 4.0)).collect(),
    };
    let mut y: Vec<f64> = match kind {
        LossKind::CrossEntropy | LossKind::Nll if indices => {
            (0..rows).map(|_| rng.below(cols) as f64).collect()
        }
        LossKind::CrossEntropy | LossKind::Nll | LossKind::KlDiv | LossKind::JsDiv => {
            distribution(rng, rows, cols, peaked)
        }
        LossKind::Msle => (0..n).map(|_| rng.range(-0.9, 5.0)).collect(),
        LossKind::Poisson => (0..n).map(|_| rng.below(6) as f64).collect(),
        LossKind::Bce | LossKind::Focal => (0..n).map(|_| rng.range(0.0, 1.0)).collect(),
        LossKind::Hinge | LossKind::SquaredHinge => {
            let zero_one = rng.unit() < 0.3;
            (0..n)
                .map(|_| match (rng.unit() < 0.5, zero_one) {
                    (true, _) => 1.0,
                    (false, true) => 0.0,
                    (false, false) => -1.0,
                })
                .collect()
        }
        _ => (0..n).map(|_| rng.range(-4.0, 4.0)).collect(),
    };
    if cancel {
        cancelling_pairs(kind, from_logits, rng, cols, &mut a, &mut y);
    }
    let weight_count = match (kind.per(), shape) {
        (Per::Element, Shape::Flat(n)) => n,
        _ => rows,
    };
    let mut weights: Vec<f64> = (0..weight_count)
        .map(|_| {
            if cancel {
                spread(rng, -10.0, 10.0, false)
            } else {
                rng.range(0.0, 3.0)
            }
        })
        .collect();
    if wild > 0.0 {
        for v in a.iter_mut() {
            if rng.unit() < wild {
                *v = WILD[rng.below(WILD.len())];
            }
        }
        for v in y.iter_mut() {
            if rng.unit() < wild / 2.0 {
                *v = if indices {
                    // not a class index, or out of range
                    [0.5, -1.0, -0.0, cols as f64, f64::NAN, 1e300][rng.below(6)]
                } else {
                    WILD[rng.below(WILD.len())]
                };
            }
        }
        for w in weights.iter_mut() {
            if rng.unit() < wild {
                *w = [0.0, -0.0, 1e-310, 1e-300, 1e300, f64::MAX][rng.below(6)];
            }
        }
    }
    let arr = |data: Vec<f64>| match shape {
        Shape::Flat(_) => Array::flat(data),
        Shape::Matrix { rows, cols } => Array::matrix(data, rows, cols).expect("rows × cols"),
    };
    let y = if indices { Array::flat(y) } else { arr(y) };
    Case {
        a: arr(a),
        y,
        weights,
    }
}

/// Puts pairs of terms ±L (L ~ 10²⁶) that cancel exactly among the ordinary terms: the
/// compensated sum then carries the ordinary terms in its compensation, where they are
/// added with plain rounding, so the bits of the sum depend on the order of summation.
/// Poisson from logits: e^z (y = 0) against e − y·1 with y = e^z; nll: rows a = L
/// and a = −L.
fn cancelling_pairs(
    kind: LossKind,
    from_logits: bool,
    rng: &mut Rng,
    cols: usize,
    a: &mut [f64],
    y: &mut [f64],
) {
    match kind {
        LossKind::Poisson if from_logits => {
            for (a, y) in a.chunks_exact_mut(4).zip(y.chunks_exact_mut(4)) {
                let z = rng.range(55.0, 65.0);
                (a[0], y[0]) = (z, 0.0);
                (a[2], y[2]) = (1.0, z.exp());
            }
        }
        LossKind::Nll => {
            for quad in a.chunks_exact_mut(4 * cols) {
                let big = spread(rng, 20.0, 30.0, false);
                quad[..cols].fill(big);
                quad[2 * cols..3 * cols].fill(-big);
            }
        }
        _ => {}
    }
}

/// Params to try for `kind`: the defaults, and ones that change its arithmetic.
fn param_sets(kind: LossKind, cols: usize, rng: &mut Rng) -> Vec<Params> {
    let num = |name: &str, x: f64| Params::new(vec![(name.to_string(), ParamValue::Number(x))]);
    let mut v = vec![Params::default()];
    match kind {
        LossKind::Huber => v.push(num("delta", 0.3)),
        LossKind::SmoothL1 => {
            v.push(num("beta", 0.0));
            v.push(num("beta", 2.5));
        }
        LossKind::Quantile => v.push(num("tau", 0.9)),
        LossKind::Mape => v.push(num("epsilon", 1e-3)),
        LossKind::Poisson => v.push(Params::new(vec![(
            "full".to_string(),
            ParamValue::Bool(true),
        )])),
        LossKind::CrossEntropy | LossKind::Nll => {
            let w: Vec<f64> = (0..cols)
                .map(|_| {
                    if rng.unit() < 0.3 {
                        0.0
                    } else {
                        rng.range(0.0, 2.0)
                    }
                })
                .collect();
            v.push(Params::new(vec![(
                "class_weights".to_string(),
                ParamValue::Numbers(w),
            )]));
            v.push(Params::new(vec![(
                "class_weights".to_string(),
                ParamValue::Numbers(vec![0.0; cols]),
            )]));
            if kind == LossKind::CrossEntropy {
                v.push(num("label_smoothing", 0.1));
                v.push(num("epsilon", 1e-3));
            }
        }
        _ => {}
    }
    v
}

/// Asserts equal bits (or the same error) and says where they differ.
#[track_caller]
fn assert_same(
    what: &str,
    got: &Result<LossResult, ComputeError>,
    want: &Result<LossResult, ComputeError>,
) {
    match (got, want) {
        (Err(g), Err(w)) => assert_eq!(g, w, "{what}: errors differ"),
        (Ok(g), Ok(w)) => {
            let bits = |v: &LossValue| match v {
                LossValue::Scalar(x) => (None, vec![x.to_bits()]),
                LossValue::Terms(t) => (
                    Some(t.shape()),
                    t.data().iter().map(|x| x.to_bits()).collect(),
                ),
            };
            assert_eq!(bits(&g.loss), bits(&w.loss), "{what}: loss differs");
            assert_eq!(g.count, w.count, "{what}: count differs");
            assert_eq!(g.guard, w.guard, "{what}: guard differs");
            let grad = |r: &LossResult| {
                r.gradient.as_ref().map(|a| {
                    (
                        a.shape(),
                        a.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    )
                })
            };
            assert_eq!(grad(g), grad(w), "{what}: gradient differs");
        }
        _ => panic!("{what}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn evaluate_gives_the_bits_of_the_reference_path_for_every_kind_reduction_weights_and_gradient() {
    let mut compared = 0usize;
    let mut errors = 0usize;
    for kind in LossKind::ALL {
        // one generator per kind, seeded from its name (as tests/it/loss_bits.rs draws)
        let name = kind.name().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = Rng::new(0x5EED ^ name);
        let logit_forms: &[bool] = if kind.info().from_logits {
            &[false, true]
        } else {
            &[false]
        };
        for &from_logits in logit_forms {
            // small and multi-block shapes, flat and matrix; ragged block and lane ends
            for (round, shape) in [
                Shape::Flat(1),
                Shape::Flat(7),
                Shape::Matrix { rows: 3, cols: 5 },
                Shape::Flat(257),
                Shape::Matrix { rows: 61, cols: 10 },
                Shape::Matrix { rows: 700, cols: 1 },
                Shape::Matrix { rows: 37, cols: 13 },
            ]
            .into_iter()
            .enumerate()
            {
                for (wild, cancel, peaked) in [
                    (0.0, false, false),
                    (0.002, false, true),
                    (0.05, false, false),
                    (0.0, true, false),
                    (0.0, false, true),
                ] {
                    let indices = kind.accepts_indices() && round % 2 == 0;
                    let c = case(
                        kind,
                        from_logits,
                        &mut rng,
                        shape,
                        indices,
                        wild,
                        cancel,
                        peaked,
                    );
                    for params in param_sets(kind, shape.cols(), &mut rng) {
                        let Ok(spec) = LossSpec::new(kind, &params, from_logits) else {
                            continue;
                        };
                        for reduction in Reduction::ALL {
                            for weights in [None, Some(c.weights.as_slice())] {
                                for grad in [false, true] {
                                    let what = format!(
                                        "{} from_logits={from_logits} {shape:?} wild={wild} \
                                         {params:?} {reduction:?} weights={} grad={grad}",
                                        kind.name(),
                                        weights.is_some()
                                    );
                                    let got = spec.evaluate(&c.a, &c.y, reduction, weights, grad);
                                    let want = reference_evaluate(
                                        &spec, &c.a, &c.y, reduction, weights, grad,
                                    );
                                    assert_same(&what, &got, &want);
                                    compared += 1;
                                    errors += usize::from(want.is_err());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // both outcomes are well represented
    assert!(compared > 5000, "{compared} comparisons");
    assert!(
        errors > compared / 10 && errors < compared * 9 / 10,
        "{errors} of {compared} comparisons are errors"
    );
}

#[test]
fn each_error_of_the_finite_checks_is_reached_and_agrees_with_the_reference_path() {
    // one mse input per error the finite checks raise, so the comparison above cannot
    // pass by never reaching them
    let spec = LossSpec::new(LossKind::Mse, &Params::default(), false).expect("mse");
    let flat = |v: &[f64]| Array::flat(v.to_vec());
    let y = flat(&[0.0, 0.0]);
    #[allow(clippy::type_complexity)]
    let cases: [(&[f64], Option<&[f64]>, Reduction, &str, &str); 5] = [
        // r² overflows at element 1
        (
            &[1.0, 1e200],
            None,
            Reduction::Mean,
            "/predictions/1",
            "the loss is not finite here (the value overflows f64)",
        ),
        // finite terms whose weighted sum overflows
        (
            &[1.0, 2.0],
            Some(&[f64::MAX, f64::MAX]),
            Reduction::Sum,
            "/predictions",
            "the reduced loss overflows f64",
        ),
        // weights whose sum overflows: the mean's denominator is not a number
        (
            &[1.0, 2.0],
            Some(&[f64::MAX, f64::MAX]),
            Reduction::Mean,
            "/params/class_weights",
            "the rows' class weights sum to 0: the mean is undefined",
        ),
        // d·s overflows at element 0 (the terms of `none` are returned as they are)
        (
            &[1e10, 1.0],
            Some(&[1e300, 1e300]),
            Reduction::None,
            "/predictions/0",
            "the gradient overflows f64 here",
        ),
        // a valid one
        (&[1.0, 2.0], Some(&[1.0, 3.0]), Reduction::Mean, "", ""),
    ];
    for (a, w, red, field, message) in cases {
        let a = flat(a);
        let got = spec.evaluate(&a, &y, red, w, true);
        let want = reference_evaluate(&spec, &a, &y, red, w, true);
        assert_same(field, &got, &want);
        match got {
            Err(e) => assert_eq!((e.field.as_str(), e.message.as_str()), (field, message)),
            Ok(r) => {
                assert_eq!(field, "");
                // (1·1 + 3·4) / 4 and d = 2r·s / 4
                assert_eq!(r.loss, LossValue::Scalar(13.0 / 4.0));
                assert_eq!(r.gradient.map(Array::into_data), Some(vec![0.5, 3.0]));
            }
        }
    }
    // a term that overflows in one block (its gradient 2e200 does not) comes before a
    // gradient that overflows in a later block
    let mut a = vec![0.5; 600];
    a[3] = 1e200;
    a[400] = f64::MAX;
    let (a, y) = (Array::flat(a), Array::flat(vec![0.0; 600]));
    for red in Reduction::ALL {
        let got = spec.evaluate(&a, &y, red, None, true);
        assert_same(
            "term then gradient",
            &got,
            &reference_evaluate(&spec, &a, &y, red, None, true),
        );
        assert_eq!(got.unwrap_err().field, "/predictions/3");
    }
}

/// Values a check of weights or probabilities must tell apart.
const EDGES: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    0.5,
    1e-310,
    -1e-310,
    -1.0,
    1.0000000000000002,
    f64::MAX,
    -f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    2.0,
];

#[test]
fn the_branch_free_scans_accept_and_reject_exactly_what_the_element_checks_did() {
    let mut rng = Rng::new(7);
    for round in 0..3000 {
        let n = 1 + rng.below(if round % 2 == 0 { 9 } else { 40 });
        let mut v: Vec<f64> = (0..n).map(|_| rng.range(0.0, 1.0)).collect();
        // none, one or a few edge values anywhere (the lanes and the tail of four)
        for _ in 0..rng.below(3) {
            let i = rng.below(n);
            v[i] = EDGES[rng.below(EDGES.len())];
        }
        if round % 17 == 0 {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
        let a = Array::flat(v.clone());
        assert_eq!(
            check_unit_interval(&a, "predictions"),
            reference_check_unit_interval(&a, "predictions"),
            "{v:?}"
        );
        let shape = Shape::Flat(n);
        assert_eq!(
            reduction::check_weights(&v, shape, Per::Element),
            reference_check_weights(&v, shape, Per::Element),
            "{v:?}"
        );
    }
}
#[test]
fn the_row_sum_check_judges_every_row_as_the_accurate_sum_did() {
    let mut rng = Rng::new(11);
    let mut failed = 0;
    for round in 0..20000 {
        let k = 1 + rng.below(if round % 3 == 0 { 40 } else { 12 });
        let mut row: Vec<f64> = (0..k).map(|_| rng.range(0.0, 1.0)).collect();
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= s);
        // move the sum to within a few ulp of 1 ± 1e−6, or anywhere
        let shift = match rng.below(6) {
            0 => 0.0,
            1 => 1e-6,
            2 => -1e-6,
            3 => 1e-6 * (1.0 + 1e-10 * rng.range(-1.0, 1.0)),
            4 => -1e-6 + 1e-16 * rng.range(-8.0, 8.0),
            _ => rng.range(-1.0, 1.0),
        };
        let i = rng.below(k);
        row[i] += shift;
        if round % 50 == 0 {
            row[rng.below(k)] = EDGES[rng.below(EDGES.len())];
        }
        if round % 7 == 0 && k > 1 {
            // large parts that cancel
            row[0] += 1e8;
            row[k - 1] -= 1e8;
        }
        let a = Array::flat(row.clone());
        let want = reference_check_rows_sum_to_one(&a, "predictions");
        failed += usize::from(want.is_err());
        assert_eq!(check_rows_sum_to_one(&a, "predictions"), want, "{row:?}");
    }
    assert!(failed > 2000 && failed < 18000, "{failed}");
}
