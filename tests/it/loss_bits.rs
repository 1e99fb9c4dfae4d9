//! Every loss kind gives the committed bits: `tests/fixtures/loss_bits.txt` holds, for
//! every kind × `from_logits` form × shape × input variant × params × reduction ×
//! weights on/off × gradient on/off, the outcome of `LossSpec::evaluate` as today's
//! code gives it — the loss's f64 bits (hex), the gradient's, `count`, the guards, or
//! the error's field and message.
//!
//! The inputs are drawn here, from a fixed seed per kind (SplitMix64), in each kind's
//! domain with a fraction of wild values (overflowing terms, gradients, sums, weighted
//! sums, subnormal denominators, values outside the domain), cancelling sums whose bits
//! depend on the summation order, and peaked distribution rows that make the guards act.
//! They are the inputs the frozen pre-optimisation evaluation path was compared on
//! before it was retired (that comparison passed on them; the fixture was written from
//! the same code right after).
//!
//! Arrays of up to [`FULL`] numbers are written out bit for bit; longer ones as their
//! length and a 64-bit digest of every bit pattern in order (a changed bit anywhere
//! changes it).
//!
//! A new kind: `LOSS_BITS_KINDS=<name> cargo test --test it regenerate_the_loss_bits
//! -- --ignored` adds its lines and leaves the other kinds' as they are. Regenerate a
//! kind that exists only when its answers are meant to change (and say so in the commit).

use losslab::compute::array::Shape;
use losslab::compute::train::SplitMix64;
use losslab::compute::{
    Array, ComputeError, LossKind, LossResult, LossSpec, LossValue, ParamValue, Params, Per,
    Reduction, Values,
};

const FIXTURE: &str = "tests/fixtures/loss_bits.txt";

/// Arrays up to this length are written out in full.
const FULL: usize = 8;

/// A small deterministic generator: the crate's SplitMix64.
struct Rng(SplitMix64);

impl Rng {
    /// The generator of `kind`: its own seed, so a kind added later draws its own inputs
    /// and leaves every other kind's as they were.
    fn for_kind(kind: LossKind) -> Self {
        let name = kind.name().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Rng(SplitMix64::new(0x5EED ^ name))
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

/// Inputs for `kind` in its domain (its registry entry's), with a fraction `wild` of the elements replaced by
/// [`WILD`] values (in predictions, targets or weights); `peaked` distribution rows (see
/// [`distribution`]). `cancel` draws values over many magnitudes instead, so that (for
/// the kinds with terms of both signs: poisson, nll) the sums cancel and their bits
/// depend on the summation order.
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
    // in the kind's domain, as its registry entry declares it (logits: any real)
    let domain = kind.info().domain;
    let mut a: Vec<f64> = match domain.predictions {
        _ if from_logits => (0..n).map(|_| rng.range(-4.0, 4.0)).collect(),
        Values::AboveMinusOne => (0..n).map(|_| rng.range(-0.9, 5.0)).collect(),
        Values::NonNegative => (0..n).map(|_| rng.range(0.0, 5.0)).collect(),
        Values::Probability => (0..n).map(|_| rng.range(0.0, 1.0)).collect(),
        Values::DistributionRows => distribution(rng, rows, cols, peaked),
        Values::LogProbability => (0..n).map(|_| rng.range(-5.0, 0.0)).collect(),
        Values::Real | Values::SignLabels => (0..n).map(|_| rng.range(-4.0, 4.0)).collect(),
    };
    let mut y: Vec<f64> = match domain.targets {
        _ if indices => (0..rows).map(|_| rng.below(cols) as f64).collect(),
        Values::DistributionRows => distribution(rng, rows, cols, peaked),
        Values::AboveMinusOne => (0..n).map(|_| rng.range(-0.9, 5.0)).collect(),
        // counts
        Values::NonNegative => (0..n).map(|_| rng.below(6) as f64).collect(),
        Values::Probability => (0..n).map(|_| rng.range(0.0, 1.0)).collect(),
        Values::SignLabels => {
            let zero_one = rng.unit() < 0.3;
            (0..n)
                .map(|_| match (rng.unit() < 0.5, zero_one) {
                    (true, _) => 1.0,
                    (false, true) => 0.0,
                    (false, false) => -1.0,
                })
                .collect()
        }
        Values::Real | Values::LogProbability => (0..n).map(|_| rng.range(-4.0, 4.0)).collect(),
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

/// Small and multi-block shapes, flat and matrix; ragged block and lane ends.
const SHAPES: [Shape; 7] = [
    Shape::Flat(1),
    Shape::Flat(7),
    Shape::Matrix { rows: 3, cols: 5 },
    Shape::Flat(257),
    Shape::Matrix { rows: 61, cols: 10 },
    Shape::Matrix { rows: 700, cols: 1 },
    Shape::Matrix { rows: 37, cols: 13 },
];

/// (wild fraction, cancelling sums, peaked rows).
const VARIANTS: [(f64, bool, bool); 5] = [
    (0.0, false, false),
    (0.002, false, true),
    (0.05, false, false),
    (0.0, true, false),
    (0.0, false, true),
];

/// The digest of a sequence of bit patterns: SplitMix64's finaliser (a bijection) over
/// the running xor, so any changed, added or removed pattern changes it.
fn digest(bits: impl Iterator<Item = u64>) -> u64 {
    bits.fold(0x9E37_79B9_7F4A_7C15, |h, x| {
        let mut z = (h ^ x).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// An array's bits: every pattern in hex up to [`FULL`] numbers, else `len#digest`.
fn bits_of(xs: &[f64]) -> String {
    if xs.len() <= FULL {
        let hex: Vec<String> = xs.iter().map(|x| format!("{:016x}", x.to_bits())).collect();
        format!("[{}]", hex.join(","))
    } else {
        format!(
            "{}#{:016x}",
            xs.len(),
            digest(xs.iter().map(|x| x.to_bits()))
        )
    }
}

/// One outcome as a fixture line's tail.
fn outcome(r: &Result<LossResult, ComputeError>) -> String {
    match r {
        Err(e) => format!("err {} {}", e.field, e.message),
        Ok(r) => {
            let loss = match &r.loss {
                LossValue::Scalar(x) => format!("{:016x}", x.to_bits()),
                LossValue::Terms(t) => format!("{}{}", shape_tag(t.shape()), bits_of(t.data())),
            };
            let grad = match &r.gradient {
                None => "-".to_string(),
                Some(g) => format!("{}{}", shape_tag(g.shape()), bits_of(g.data())),
            };
            let guard = [r.guard.log_clamp, r.guard.grad_floor, r.guard.epsilon_clip]
                .map(|on| if on { '1' } else { '0' })
                .iter()
                .collect::<String>();
            format!("ok count={} guard={guard} loss={loss} grad={grad}", r.count)
        }
    }
}

fn shape_tag(s: Shape) -> String {
    match s {
        Shape::Flat(n) => format!("f{n}"),
        Shape::Matrix { rows, cols } => format!("m{rows}x{cols}"),
    }
}

/// Every line of `kind`, in order.
fn lines_of(kind: LossKind) -> Vec<String> {
    let mut rng = Rng::for_kind(kind);
    let mut out = Vec::new();
    let logit_forms: &[bool] = if kind.info().from_logits {
        &[false, true]
    } else {
        &[false]
    };
    for &from_logits in logit_forms {
        for (round, shape) in SHAPES.into_iter().enumerate() {
            for (v, (wild, cancel, peaked)) in VARIANTS.into_iter().enumerate() {
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
                for (p, params) in param_sets(kind, shape.cols(), &mut rng).iter().enumerate() {
                    let key = format!(
                        "{} z{} {} v{v} p{p}",
                        kind.name(),
                        u8::from(from_logits),
                        shape_tag(shape)
                    );
                    let spec = match LossSpec::new(kind, params, from_logits) {
                        Ok(spec) => spec,
                        Err(e) => {
                            out.push(format!("{key} spec err {} {}", e.field, e.message));
                            continue;
                        }
                    };
                    for reduction in Reduction::ALL {
                        for weights in [None, Some(c.weights.as_slice())] {
                            for grad in [false, true] {
                                let r = spec.evaluate(&c.a, &c.y, reduction, weights, grad);
                                out.push(format!(
                                    "{key} {} w{} g{} {}",
                                    reduction.name(),
                                    u8::from(weights.is_some()),
                                    u8::from(grad),
                                    outcome(&r)
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

#[test]
fn every_kind_gives_the_committed_bits() {
    let text = std::fs::read_to_string(fixture_path()).expect("the fixture is committed");
    let (mut compared, mut errors) = (0usize, 0usize);
    for kind in LossKind::ALL {
        let want: Vec<&str> = text
            .lines()
            .filter(|l| l.split(' ').next() == Some(kind.name()))
            .collect();
        assert!(
            !want.is_empty(),
            "the fixture has no lines for {}: generate them (see the module doc)",
            kind.name()
        );
        let got = lines_of(kind);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{}: line {i} of the kind differs", kind.name());
        }
        assert_eq!(got.len(), want.len(), "{}: number of lines", kind.name());
        compared += got.len();
        errors += got.iter().filter(|l| l.contains(" err ")).count();
    }
    // every line names a kind of today
    for l in text.lines() {
        let name = l.split(' ').next().unwrap_or_default();
        assert!(LossKind::parse(name).is_some(), "unknown kind in {l}");
    }
    // both outcomes are well represented
    assert!(compared > 5000, "{compared} comparisons");
    assert!(
        errors > compared / 10 && errors < compared * 9 / 10,
        "{errors} of {compared} comparisons are errors"
    );
}

/// Writes the fixture: every kind's lines, or (with `LOSS_BITS_KINDS=a,b`) only those
/// kinds', keeping the other kinds' lines as committed. Run deliberately (see the module
/// doc); never part of a normal test run.
#[test]
#[ignore = "writes tests/fixtures/loss_bits.txt; run deliberately"]
fn regenerate_the_loss_bits_fixture() {
    let only: Option<Vec<String>> = std::env::var("LOSS_BITS_KINDS")
        .ok()
        .map(|s| s.split(',').map(|k| k.trim().to_string()).collect());
    let old = std::fs::read_to_string(fixture_path()).unwrap_or_default();
    let mut out = String::new();
    for kind in LossKind::ALL {
        let regenerate = only
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == kind.name()));
        let lines: Vec<String> = if regenerate {
            lines_of(kind)
        } else {
            old.lines()
                .filter(|l| l.split(' ').next() == Some(kind.name()))
                .map(str::to_string)
                .collect()
        };
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    std::fs::write(fixture_path(), out).expect("write the fixture");
}
