//! The checks' fast forms against their definitions: the branch-free scans of weights
//! and probabilities and the row-sum shortcut accept and reject exactly what the plain
//! element-by-element checks do, and each error the finite checks raise is reached.
//! (The bits of every answer are held by tests/fixtures/loss_bits.txt.)

use super::*;

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

/// The definition of `reduction::check_weights`: element by element.
fn naive_check_weights(weights: &[f64], shape: Shape, per: Per) -> Result<(), ComputeError> {
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

/// The definition of `check_unit_interval`: the first element outside [0, 1].
fn naive_check_unit_interval(arr: &Array, field: &str) -> Result<(), ComputeError> {
    match arr.data().iter().position(|&v| !(0.0..=1.0).contains(&v)) {
        None => Ok(()),
        Some(i) => Err(ComputeError::invalid(
            arr.pointer(field, i),
            format!("probabilities must lie in [0, 1]; got {}", arr.data()[i]),
        )),
    }
}

/// The definition of `check_rows_sum_to_one`: every row's accurate sum within 1e−6 of 1.
fn naive_check_rows_sum_to_one(arr: &Array, field: &str) -> Result<(), ComputeError> {
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

#[test]
fn each_error_of_the_finite_checks_is_reached() {
    // one mse input per error the finite checks raise (the bit fixture,
    // tests/fixtures/loss_bits.txt, reaches them on random inputs too)
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
            naive_check_unit_interval(&a, "predictions"),
            "{v:?}"
        );
        let shape = Shape::Flat(n);
        assert_eq!(
            reduction::check_weights(&v, shape, Per::Element),
            naive_check_weights(&v, shape, Per::Element),
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
        let want = naive_check_rows_sum_to_one(&a, "predictions");
        failed += usize::from(want.is_err());
        assert_eq!(check_rows_sum_to_one(&a, "predictions"), want, "{row:?}");
    }
    assert!(failed > 2000 && failed < 18000, "{failed}");
}
