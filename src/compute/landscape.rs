//! POST /landscape (API.md): /train's objective over a grid of two of its parameters,
//! the minimum of the grid, and optionally the path of a /train run from `init`
//! projected onto the two axes.
//!
//! This module owns what a valid landscape is (parameter pointers into /train's response
//! shapes, the axes' ranges, the grid-point limit), the grid's values
//! `from + i·(to − from)/(steps − 1)`, the minimum rule (the smallest finite value, the
//! first in row order on ties) and the projection of a trace. It computes nothing of its
//! own: every grid point is [`Prepared::objective`], the very function the training loop
//! evaluates its states with, at θ₀ with the two parameters set — so for a model whose
//! only parameters are x and y, the grid at a trace row's parameters is that row's loss,
//! bit for bit.
//!
//! The grid is embarrassingly parallel: chunks of whole rows go to rayon's pool (one
//! worker per core), each with its own buffers and a copy of θ₀. Every point is computed
//! alone and written to its own slot, so the bits never depend on the thread count or on
//! the chunking; each chunk finds its smallest value as it is computed, and the chunks'
//! answers are combined in row order (the same point as one search). Each chunk checks the
//! [`Cancel`] first (deadline or client gone), and chunks are sized to at most a fixed
//! amount of work (points × samples × outputs, at least one row), so a stop is seen
//! within a few milliseconds. A caller may hand each chunk to a function of its own in the
//! same task, while the values are in cache ([`PreparedLandscape::compute_with`]: the API
//! prints the answer's rows there).

use rayon::prelude::*;

use super::error::{Cancel, ComputeError};
use super::train::{
    self, Bias, Optimizer, Prepared, StopRules, TraceRow, TrainLimits, TrainResult, TrainSpec,
};

/// API.md's default of `--max-grid-points`.
pub const DEFAULT_MAX_GRID_POINTS: u64 = 250_000;

/// Work per chunk, in element evaluations (points × m × k): a few hundred microseconds,
/// small enough to balance two cores and to notice a cancel soon.
const CHUNK_WORK: usize = 1 << 16;

/// Chunks per rayon worker at least, for balance when a few large chunks would leave a
/// core idle (work stealing evens out the rest).
const CHUNKS_PER_THREAD: usize = 16;

/// The fields of a /landscape body's `path` (the /train run's own settings): errors
/// about them are reported under `/path`.
const PATH_FIELDS: [&str; 7] = [
    "learning_rate",
    "optimizer",
    "batch_size",
    "seed",
    "max_iterations",
    "stop",
    "trace_every",
];

/// One axis as asked: `parameter` is a JSON pointer into /train's response shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct AxisSpec {
    /// The pointer as sent (`/weights/0`, `/bias/2`).
    pub parameter: String,
    /// The first value.
    pub from: f64,
    /// The last value (> `from`).
    pub to: f64,
    /// The number of values (≥ 2).
    pub steps: u64,
}

/// A /landscape request, parsed: the model and data of `train` (its run settings are
/// the path's, and are ignored when `path` is false).
#[derive(Clone, Debug)]
pub struct LandscapeSpec {
    /// The model and data, and (for the path) the run's settings.
    pub train: TrainSpec,
    /// The axis along the grid's columns.
    pub x: AxisSpec,
    /// The axis along the grid's rows.
    pub y: AxisSpec,
    /// Whether to run /train from `init` and project its trace onto the axes.
    pub path: bool,
}

/// Server limits: the path's run as /train's, and the grid's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LandscapeLimits {
    /// The limits of the path's run.
    pub train: TrainLimits,
    /// The most grid points, x steps × y steps (`--max-grid-points`).
    pub max_grid_points: u64,
}

impl Default for LandscapeLimits {
    fn default() -> Self {
        LandscapeLimits {
            train: TrainLimits::default(),
            max_grid_points: DEFAULT_MAX_GRID_POINTS,
        }
    }
}

/// The number a pointer names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parameter {
    /// W[i][j] (`/weights/i` for flat targets, where j = 0).
    Weight {
        /// The input feature (row of W).
        i: usize,
        /// The output column (0 for flat targets).
        j: usize,
    },
    /// b[j] (`/bias` for flat targets, where j = 0).
    Bias {
        /// The output column (0 for flat targets).
        j: usize,
    },
}

impl Parameter {
    /// The index in θ = (W n × k row-major, b).
    fn index(self, n: usize, k: usize) -> usize {
        match self {
            Parameter::Weight { i, j } => i * k + j,
            Parameter::Bias { j } => n * k + j,
        }
    }

    /// This parameter's value in a trace row (or the final state).
    fn read(self, weights: &[f64], k: usize, bias: &Bias) -> f64 {
        match (self, bias) {
            (Parameter::Weight { i, j }, _) => weights[i * k + j],
            (Parameter::Bias { .. }, Bias::Scalar(b)) => *b,
            (Parameter::Bias { j }, Bias::Vector(v)) => v[j],
        }
    }
}

/// A checked axis: its pointer, where it lands, and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The pointer as sent, echoed in the answer.
    pub parameter: String,
    /// The number it names.
    pub at: Parameter,
    /// `from + i·(to − from)/(steps − 1)` for i in 0..steps.
    pub values: Vec<f64>,
}

/// The smallest finite grid value and where it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Minimum {
    /// The x value there.
    pub x: f64,
    /// The y value there.
    pub y: f64,
    /// The loss there.
    pub loss: f64,
}

/// A trace row projected onto the axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathPoint {
    /// The trace row's state index.
    pub iteration: u64,
    /// The row's value of the x parameter.
    pub x: f64,
    /// The row's value of the y parameter.
    pub y: f64,
    /// The row's loss.
    pub loss: f64,
}

/// The path: the projected trace rows, and the run without its trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// The run's trace rows, projected (empty with `trace_every: 0`).
    pub points: Vec<PathPoint>,
    /// The run, its trace moved into `points`.
    pub run: TrainResult,
}

/// The answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Landscape {
    /// The x axis, checked.
    pub x: Axis,
    /// The y axis, checked.
    pub y: Axis,
    /// One row per y value, one column per x value (row-major); not finite where the
    /// loss is not (NaN where the loss module refused the state).
    pub loss: Vec<f64>,
    /// The smallest finite grid value (the first in row order on ties); `None` when no value is finite.
    pub minimum: Option<Minimum>,
    /// The run from `init`, when `path` was asked for.
    pub path: Option<Path>,
    /// The model's shapes (for captions).
    pub dims: train::Dims,
}

impl Landscape {
    /// The grid's rows (one per y value).
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.loss.chunks_exact(self.x.values.len().max(1))
    }
}

/// A checked landscape, ready for [`PreparedLandscape::compute`].
#[derive(Debug)]
pub struct PreparedLandscape {
    prepared: Prepared,
    x: Axis,
    y: Axis,
    path: bool,
}

/// Checks everything before any work: the model, data and path as /train's
/// ([`train::prepare`], path errors moved under `/path`), then the axes.
pub fn prepare(
    spec: LandscapeSpec,
    limits: &LandscapeLimits,
) -> Result<PreparedLandscape, ComputeError> {
    let LandscapeSpec {
        mut train,
        x,
        y,
        path,
    } = spec;
    if !path {
        // no run: only the model and the data are checked and used
        train.learning_rate = 1.0;
        train.optimizer = Optimizer::Sgd;
        train.batch_size = None;
        train.seed = None;
        train.max_iterations = 0;
        train.stop = StopRules::default();
        train.trace_every = 0;
    }
    let prepared = train::prepare(train, &limits.train).map_err(under_path)?;
    let dims = prepared.dims();
    let (px, nx) = check_axis(&x, "x", dims)?;
    let (py, ny) = check_axis(&y, "y", dims)?;
    if px == py {
        return Err(ComputeError::invalid(
            "/y/parameter",
            format!(
                "{} names the same parameter as /x/parameter ({}): the axes need two different parameters",
                y.parameter, x.parameter
            ),
        ));
    }
    let points = nx.saturating_mul(ny);
    if points > limits.max_grid_points {
        return Err(ComputeError::invalid(
            "/y/steps",
            format!(
                "{nx} × {ny} = {points} grid points, more than the limit of {}: fewer steps",
                limits.max_grid_points
            ),
        ));
    }
    let x = axis(x, px, "x")?;
    let y = axis(y, py, "y")?;
    Ok(PreparedLandscape {
        prepared,
        x,
        y,
        path,
    })
}

/// /train's errors about the run's own fields, moved under `/path`.
fn under_path(mut e: ComputeError) -> ComputeError {
    let head = e.field.split('/').nth(1).unwrap_or("");
    if PATH_FIELDS.contains(&head) {
        e.field = format!("/path{}", e.field);
    }
    e
}

/// The shapes a pointer may name, for messages.
fn shapes(d: train::Dims) -> String {
    let (n, k) = (d.n, d.k);
    if d.flat_targets {
        format!(
            "the weights are [{n}] and the bias a number: /weights/0 … /weights/{} or /bias",
            n - 1
        )
    } else {
        format!(
            "the weights are [{n}][{k}] and the bias [{k}]: /weights/i/j (i < {n}, j < {k}) or /bias/j (j < {k})"
        )
    }
}

/// A JSON-pointer array index: `0` or digits without a leading zero (RFC 6901).
fn index(token: &str) -> Option<usize> {
    let ok = token == "0"
        || (!token.is_empty()
            && !token.starts_with('0')
            && token.bytes().all(|c| c.is_ascii_digit()));
    if ok { token.parse().ok() } else { None }
}

/// The parameter a pointer names in this model, if any.
pub fn resolve(pointer: &str, d: train::Dims) -> Option<Parameter> {
    let mut tokens = pointer.strip_prefix('/')?.split('/');
    let root = tokens.next()?;
    let first = tokens.next().map(index);
    let second = tokens.next().map(index);
    if tokens.next().is_some() {
        return None;
    }
    let p = match (root, d.flat_targets, first, second) {
        ("weights", true, Some(Some(i)), None) => Parameter::Weight { i, j: 0 },
        ("weights", false, Some(Some(i)), Some(Some(j))) => Parameter::Weight { i, j },
        ("bias", true, None, None) => Parameter::Bias { j: 0 },
        ("bias", false, Some(Some(j)), None) => Parameter::Bias { j },
        _ => return None,
    };
    let fits = match p {
        Parameter::Weight { i, j } => i < d.n && j < d.k,
        Parameter::Bias { j } => j < d.k,
    };
    fits.then_some(p)
}

/// The axis's parameter and its number of values.
fn check_axis(a: &AxisSpec, name: &str, d: train::Dims) -> Result<(Parameter, u64), ComputeError> {
    let Some(p) = resolve(&a.parameter, d) else {
        return Err(ComputeError::invalid(
            format!("/{name}/parameter"),
            format!(
                "{:?} is not a parameter of this model ({})",
                a.parameter,
                shapes(d)
            ),
        ));
    };
    for (field, v) in [("from", a.from), ("to", a.to)] {
        if !v.is_finite() {
            return Err(ComputeError::invalid(
                format!("/{name}/{field}"),
                format!("{field} must be a finite number"),
            ));
        }
    }
    if a.to <= a.from {
        return Err(ComputeError::invalid(
            format!("/{name}/to"),
            format!("to ({}) must be greater than from ({})", a.to, a.from),
        ));
    }
    if a.steps < 2 {
        return Err(ComputeError::invalid(
            format!("/{name}/steps"),
            format!("steps must be an integer ≥ 2; got {}", a.steps),
        ));
    }
    Ok((p, a.steps))
}

/// `from + i·(to − from)/(steps − 1)` for i in 0..steps, in that order of operations
/// (API.md); 422 at `/{name}/to` when a value is not finite (to − from overflows).
pub fn values(from: f64, to: f64, steps: u64, name: &str) -> Result<Vec<f64>, ComputeError> {
    let span = to - from;
    let last = (steps - 1) as f64;
    let values: Vec<f64> = (0..steps).map(|i| from + i as f64 * span / last).collect();
    if values.iter().all(|v| v.is_finite()) {
        Ok(values)
    } else {
        Err(ComputeError::invalid(
            format!("/{name}/to"),
            format!("the range {from} … {to} is too wide for f64 arithmetic: to − from overflows"),
        ))
    }
}

fn axis(a: AxisSpec, at: Parameter, name: &str) -> Result<Axis, ComputeError> {
    let values = values(a.from, a.to, a.steps, name)?;
    Ok(Axis {
        parameter: a.parameter,
        at,
        values,
    })
}

impl PreparedLandscape {
    /// The x axis, checked.
    pub fn x(&self) -> &Axis {
        &self.x
    }

    /// The y axis, checked.
    pub fn y(&self) -> &Axis {
        &self.y
    }

    /// Grid points.
    pub fn points(&self) -> usize {
        self.x.values.len() * self.y.values.len()
    }

    /// The grid, its minimum, and the path's run (the grid first, then the run; they
    /// share the time limit).
    pub fn compute(self, cancel: &Cancel) -> Result<Landscape, ComputeError> {
        self.compute_with(cancel, |_, _| ()).map(|(l, _)| l)
    }

    /// [`Self::compute`], with `each` called on every chunk of the grid as soon as it is
    /// computed, in the same task (its values still in cache): a chunk is whole rows,
    /// `each(first_row, values)` with `values` row-major. Its outputs come back in row
    /// order, one per chunk — e.g. the chunk printed, so that printing a large grid runs
    /// on every core inside the same pass.
    pub fn compute_with<T: Send>(
        self,
        cancel: &Cancel,
        each: impl Fn(usize, &[f64]) -> T + Sync,
    ) -> Result<(Landscape, Vec<T>), ComputeError> {
        let dims = self.prepared.dims();
        let Grid {
            loss,
            minimum,
            outputs,
        } = grid(&self.prepared, &self.x, &self.y, cancel, each)?;
        let path = if self.path {
            let (xi, yi) = (self.x.at, self.y.at);
            let mut run = self.prepared.run(cancel)?;
            let trace = std::mem::take(&mut run.trace);
            let points = trace
                .iter()
                .map(|row| project(row, xi, yi, dims.k))
                .collect();
            Some(Path { points, run })
        } else {
            None
        };
        let l = Landscape {
            x: self.x,
            y: self.y,
            loss,
            minimum,
            path,
            dims,
        };
        Ok((l, outputs))
    }
}

/// /train's objective at every grid point, rows = y values, columns = x values, in
/// chunks of whole rows, and its minimum; `each` runs on every chunk right after it (see
/// [`PreparedLandscape::compute_with`]).
fn grid<T: Send>(
    prepared: &Prepared,
    x: &Axis,
    y: &Axis,
    cancel: &Cancel,
    each: impl Fn(usize, &[f64]) -> T + Sync,
) -> Result<Grid<T>, ComputeError> {
    let d = prepared.dims();
    let (xi, yi) = (x.at.index(d.n, d.k), y.at.index(d.n, d.k));
    let nx = x.values.len().max(1);
    let ny = y.values.len();
    let mut loss = vec![0.0; nx * ny];
    let per_row = nx * (d.m * d.k).max(1);
    // at most CHUNK_WORK a chunk (at least one row), and at least CHUNKS_PER_THREAD
    // chunks a worker, so a cheap grid (the single neuron: 131 rows a chunk) still
    // spreads over every core
    let spread = ny.div_ceil(rayon::current_num_threads() * CHUNKS_PER_THREAD);
    let rows = (CHUNK_WORK / per_row).min(spread).max(1);
    let outputs = loss
        .par_chunks_mut(rows * nx)
        .enumerate()
        .map_init(
            || (prepared.scratch(), prepared.initial_parameters().to_vec()),
            |(scratch, theta), (c, out)| {
                cancel.check()?;
                let first = c * rows;
                for (row, values) in out.chunks_exact_mut(nx).enumerate() {
                    theta[yi] = y.values[first + row];
                    prepared.objective_line(theta, xi, &x.values, values, scratch);
                }
                let low = smallest(out).map(|(p, v)| (first * nx + p, v));
                Ok((each(first, out), low))
            },
        )
        .collect::<Result<Vec<(T, Smallest)>, ComputeError>>()?;
    let (outputs, lows): (Vec<T>, Vec<Smallest>) = outputs.into_iter().unzip();
    let minimum = lows
        .into_iter()
        .fold(None, first_smallest)
        .map(|(p, v)| Minimum {
            x: x.values[p % nx],
            y: y.values[p / nx],
            loss: v,
        });
    Ok(Grid {
        loss,
        minimum,
        outputs,
    })
}

/// What [`grid`] computes: the values, their minimum and the chunks' outputs.
struct Grid<T> {
    loss: Vec<f64>,
    minimum: Option<Minimum>,
    outputs: Vec<T>,
}

/// A smallest finite grid value: (its index, it), or `None`.
type Smallest = Option<(usize, f64)>;

/// The smallest finite value of `values` as (its index, it), the first on ties; `None`
/// when none is finite. Chunks of the grid are searched where they are computed and their
/// answers combined in row order with [`first_smallest`]: the same point as one search.
fn smallest(values: &[f64]) -> Smallest {
    values
        .iter()
        .enumerate()
        .fold(None, |best, (p, &v)| first_smallest(best, Some((p, v))))
}

/// The smaller of two candidates, `a` (the earlier in row order) on ties; a non-finite
/// candidate never wins.
fn first_smallest(a: Smallest, b: Smallest) -> Smallest {
    match (a, b) {
        (a, None) => a,
        (a, Some((_, v))) if !v.is_finite() => a,
        (Some((_, av)), Some((_, bv))) if bv >= av => a,
        (_, b) => b,
    }
}

/// A trace row's x and y.
fn project(row: &TraceRow, x: Parameter, y: Parameter, k: usize) -> PathPoint {
    let w = row.weights.data();
    PathPoint {
        iteration: row.iteration,
        x: x.read(w, k, &row.bias),
        y: y.read(w, k, &row.bias),
        loss: row.loss,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
/// Test fixture (here and in plot::contour's tests): the textbook's single neuron (API.md): inputs [[1]], targets [0.5], sigmoid,
/// w₀ = ln 9, b₀ = 0, learning rate 0.2, stop below 0.001, with its bias trained.
pub(crate) fn textbook_neuron(loss: crate::compute::LossKind) -> TrainSpec {
    TrainSpec {
        inputs: crate::compute::Array::matrix(vec![1.0], 1, 1).unwrap(),
        targets: crate::compute::Array::flat(vec![0.5]),
        activation: crate::compute::Activation::Sigmoid,
        loss,
        params: crate::compute::Params::default(),
        init_weights: Some(crate::compute::train::Init::Number(9f64.ln())),
        init_bias: Some(crate::compute::train::Init::Number(0.0)),
        use_bias: true,
        learning_rate: 0.2,
        optimizer: Optimizer::Sgd,
        batch_size: None,
        seed: None,
        max_iterations: 1000,
        stop: StopRules {
            loss_below: Some(0.001),
            ..StopRules::default()
        },
        trace_every: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::train::Init;
    use crate::compute::{Activation, Array, ErrorKind, LossKind};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::textbook_neuron as neuron;

    /// Five samples, one feature (the loss chapter's regression example).
    fn regression() -> TrainSpec {
        TrainSpec {
            inputs: Array::flat(vec![-2.0, -1.0, 0.0, 1.0, 2.0]),
            targets: Array::flat(vec![-3.0, 0.0, 0.0, 3.0, 4.0]),
            activation: Activation::Identity,
            loss: LossKind::Mse,
            init_weights: None,
            init_bias: None,
            learning_rate: 0.05,
            max_iterations: 40,
            stop: StopRules::default(),
            ..neuron(LossKind::Mse)
        }
    }

    /// 4 samples, 2 features, 2 outputs.
    fn two_outputs() -> TrainSpec {
        TrainSpec {
            inputs: Array::matrix(vec![0.5, -1.0, 1.5, 0.25, -0.75, 2.0, 1.0, 1.0], 4, 2).unwrap(),
            targets: Array::matrix(vec![0.2, 0.9, 0.7, 0.1, 0.4, 0.4, 0.95, 0.3], 4, 2).unwrap(),
            activation: Activation::Sigmoid,
            loss: LossKind::Mse,
            init_weights: Some(Init::Array(
                Array::matrix(vec![0.1, -0.2, 0.3, 0.05], 2, 2).unwrap(),
            )),
            init_bias: Some(Init::Array(Array::flat(vec![0.01, -0.02]))),
            ..regression()
        }
    }

    fn axis(parameter: &str, from: f64, to: f64, steps: u64) -> AxisSpec {
        AxisSpec {
            parameter: parameter.into(),
            from,
            to,
            steps,
        }
    }

    fn spec(train: TrainSpec, x: AxisSpec, y: AxisSpec, path: bool) -> LandscapeSpec {
        LandscapeSpec { train, x, y, path }
    }

    fn compute(s: LandscapeSpec) -> Landscape {
        prepare(s, &LandscapeLimits::default())
            .unwrap()
            .compute(&Cancel::none())
            .unwrap()
    }

    fn err(s: LandscapeSpec) -> ComputeError {
        prepare(s, &LandscapeLimits::default()).unwrap_err()
    }

    /// The grid's value at exactly (x, y): a 2 × 2 grid starting there (its first
    /// value is `from + 0·… = from`).
    fn grid_at(train: &TrainSpec, px: &str, x: f64, py: &str, y: f64) -> f64 {
        let l = compute(spec(
            train.clone(),
            axis(px, x, x + 1.0, 2),
            axis(py, y, y + 1.0, 2),
            false,
        ));
        l.loss[0]
    }

    #[test]
    fn the_grid_at_every_trace_row_is_that_rows_loss_bit_for_bit() {
        // models whose only parameters are x and y: the single neuron (register path,
        // l2 and bce) and a 5-sample regression (buffer path)
        for train in [neuron(LossKind::L2), neuron(LossKind::Bce), regression()] {
            let l = compute(spec(
                train.clone(),
                axis("/weights/0", -4.0, 4.0, 9),
                axis("/bias", -4.0, 4.0, 9),
                true,
            ));
            let path = l.path.unwrap();
            assert!(path.points.len() > 10, "{}", path.points.len());
            for p in &path.points {
                let got = grid_at(&train, "/weights/0", p.x, "/bias", p.y);
                assert_eq!(got.to_bits(), p.loss.to_bits(), "iteration {}", p.iteration);
            }
        }
    }

    #[test]
    fn the_textbook_paths_stop_where_train_does() {
        let l = compute(spec(
            neuron(LossKind::L2),
            axis("/weights/0", -1.0, 4.0, 11),
            axis("/bias", -3.0, 3.0, 11),
            true,
        ));
        let path = l.path.unwrap();
        assert_eq!(path.run.iterations, 143);
        assert!(path.run.trace.is_empty());
        assert_eq!(path.points.len(), 144);
        assert_eq!(path.points[0].x, 9f64.ln());
        assert_eq!(path.points[0].y, 0.0);
        // ½(σ(ln 9) − 0.5)² = ½·0.4² = 0.08, to an ulp
        assert!((path.points[0].loss - 0.08).abs() < 1e-16);
        let last = path.points[143];
        assert_eq!(last.x, path.run.final_state.weights.data()[0]);
        assert_eq!(last.loss, path.run.final_state.loss);
    }

    #[test]
    fn values_follow_the_contracts_formula() {
        let v = values(-1.0, 2.0, 4, "x").unwrap();
        assert_eq!(v, vec![-1.0, 0.0, 1.0, 2.0]);
        // 0.1 + i·(0.3 − 0.1)/2, in that order of operations
        let v = values(0.1, 0.3, 3, "x").unwrap();
        let span = 0.3 - 0.1;
        assert_eq!(v, vec![0.1, 0.1 + span / 2.0, 0.1 + 2.0 * span / 2.0]);
        let e = values(-1e308, 1e308, 3, "y").unwrap_err();
        assert_eq!(e.field, "/y/to");
    }

    /// The grid swapped (x = the bias, y = the weight) is the grid transposed, bit for
    /// bit, and every point is the objective alone at it: each line's fast path makes
    /// the same calls whichever parameter it varies.
    #[test]
    fn a_swapped_grid_is_the_transposed_grid_and_each_point_the_objective_alone() {
        for loss in [LossKind::L2, LossKind::Bce] {
            let (w, b) = (
                axis("/weights/0", -4.0, 6.0, 7),
                axis("/bias", -5.0, 5.0, 5),
            );
            let wb = compute(spec(neuron(loss), w.clone(), b.clone(), false));
            let bw = compute(spec(neuron(loss), b, w, false));
            let objective = train::prepare(neuron(loss), &Default::default()).unwrap();
            let mut scratch = objective.scratch();
            for (r, &bv) in wb.y.values.iter().enumerate() {
                for (c, &wv) in wb.x.values.iter().enumerate() {
                    let here = wb.loss[r * 7 + c];
                    assert_eq!(here.to_bits(), bw.loss[c * 5 + r].to_bits());
                    let alone = objective.objective(&[wv, bv], &mut scratch);
                    assert_eq!(here.to_bits(), alone.to_bits(), "{loss:?} at ({wv}, {bv})");
                }
            }
        }
    }

    /// The smallest value found chunk by chunk and combined in order is the one a single
    /// search finds, for every chunking: ties (also −0 against 0) keep the first, NaN and
    /// ±∞ never win, all non-finite gives none.
    #[test]
    fn the_minimum_by_chunks_is_the_minimum_of_one_search() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let cases: [&[f64]; 6] = [
            &[3.0, 1.0, 2.0, 1.0, 5.0, 1.0],
            &[nan, inf, -inf, nan],
            &[0.0, -0.0, 0.0, 4.0],
            &[-0.0, 7.0, 0.0, -0.0],
            &[nan, 2.0, -inf, 2.0, 1.5, nan, 1.5],
            &[9.0],
        ];
        for values in cases {
            // one search, as the rule says: the first smallest finite value
            let mut want: Option<(usize, f64)> = None;
            for (p, &v) in values.iter().enumerate() {
                if v.is_finite() && want.is_none_or(|(_, b)| v < b) {
                    want = Some((p, v));
                }
            }
            for chunk in 1..=values.len() {
                let got = values
                    .chunks(chunk)
                    .enumerate()
                    .map(|(c, part)| smallest(part).map(|(p, v)| (c * chunk + p, v)))
                    .fold(None, first_smallest);
                assert_eq!(
                    got.map(|(p, v)| (p, v.to_bits())),
                    want.map(|(p, v)| (p, v.to_bits())),
                    "{values:?} in chunks of {chunk}"
                );
            }
        }
    }

    #[test]
    fn the_grid_has_one_row_per_y_value() {
        // mse identity on one sample x = 1, y = 0: loss = (w + b)²
        let train = TrainSpec {
            inputs: Array::flat(vec![1.0]),
            targets: Array::flat(vec![0.0]),
            ..regression()
        };
        let l = compute(spec(
            train,
            axis("/weights/0", 0.0, 2.0, 3),
            axis("/bias", 0.0, 10.0, 2),
            false,
        ));
        assert_eq!(l.x.values, vec![0.0, 1.0, 2.0]);
        assert_eq!(l.y.values, vec![0.0, 10.0]);
        assert_eq!(l.loss, vec![0.0, 1.0, 4.0, 100.0, 121.0, 144.0]);
        assert_eq!(
            l.minimum,
            Some(Minimum {
                x: 0.0,
                y: 0.0,
                loss: 0.0
            })
        );
        assert!(l.path.is_none());
    }

    #[test]
    fn the_minimum_is_the_first_in_row_order_on_ties() {
        // x = 0: the weight does not matter, every row is constant in x
        let train = TrainSpec {
            inputs: Array::flat(vec![0.0]),
            targets: Array::flat(vec![1.0]),
            ..regression()
        };
        let l = compute(spec(
            train,
            axis("/weights/0", -1.0, 1.0, 5),
            axis("/bias", -1.0, 3.0, 5),
            false,
        ));
        // rows b = −1, 0, 1, 2, 3: loss (b − 1)², smallest 0 at b = 1, first column
        assert_eq!(
            l.minimum,
            Some(Minimum {
                x: -1.0,
                y: 1.0,
                loss: 0.0
            })
        );
    }

    #[test]
    fn an_overflowing_loss_is_not_finite_and_has_no_minimum() {
        // identity + mse at huge weights: (1e200·w)² overflows
        let train = TrainSpec {
            inputs: Array::flat(vec![1e200]),
            targets: Array::flat(vec![0.0]),
            ..regression()
        };
        let l = compute(spec(
            train.clone(),
            axis("/weights/0", 1e150, 1e300, 3),
            axis("/bias", 0.0, 1.0, 2),
            false,
        ));
        assert!(l.loss.iter().all(|v| !v.is_finite()), "{:?}", l.loss);
        assert_eq!(l.minimum, None);
        // near 0 the same model is finite: only the far points are not
        let l = compute(spec(
            train,
            axis("/weights/0", -1e-150, 1e150, 2),
            axis("/bias", 0.0, 1.0, 2),
            false,
        ));
        assert!(l.loss[0].is_finite() && !l.loss[1].is_finite());
        assert_eq!(l.minimum.map(|m| m.x), Some(-1e-150));
    }

    #[test]
    fn pointers_reach_matrix_weights_and_bias_entries() {
        // a grid point equals /train's state 0 with those init values (the first trace row)
        let base = two_outputs();
        let l = compute(spec(
            base.clone(),
            axis("/weights/1/0", -1.0, 2.0, 4),
            axis("/bias/1", -0.5, 0.5, 3),
            false,
        ));
        for (r, &b1) in l.y.values.iter().enumerate() {
            for (c, &w10) in l.x.values.iter().enumerate() {
                let train = TrainSpec {
                    init_weights: Some(Init::Array(
                        Array::matrix(vec![0.1, -0.2, w10, 0.05], 2, 2).unwrap(),
                    )),
                    init_bias: Some(Init::Array(Array::flat(vec![0.01, b1]))),
                    max_iterations: 0,
                    ..base.clone()
                };
                let want = train::prepare(train, &TrainLimits::default())
                    .unwrap()
                    .run(&Cancel::none())
                    .unwrap()
                    .final_state
                    .loss;
                assert_eq!(l.loss[r * 4 + c].to_bits(), want.to_bits(), "({r}, {c})");
            }
        }
        assert_eq!(l.x.at, Parameter::Weight { i: 1, j: 0 });
        assert_eq!(l.y.at, Parameter::Bias { j: 1 });
    }

    #[test]
    fn the_path_of_a_matrix_model_reads_its_entries() {
        let l = compute(spec(
            two_outputs(),
            axis("/weights/0/1", -1.0, 1.0, 3),
            axis("/bias/0", -1.0, 1.0, 3),
            true,
        ));
        let path = l.path.unwrap();
        let f = &path.run.final_state;
        let last = path.points.last().unwrap();
        assert_eq!(last.x, f.weights.data()[1]);
        assert_eq!(
            Some(last.y),
            match &f.bias {
                Bias::Vector(v) => v.first().copied(),
                Bias::Scalar(_) => None,
            }
        );
    }

    #[test]
    fn a_frozen_bias_is_an_axis_and_stays_put_on_the_path() {
        let train = TrainSpec {
            use_bias: false,
            ..neuron(LossKind::L2)
        };
        let l = compute(spec(
            train,
            axis("/weights/0", 0.0, 3.0, 4),
            axis("/bias", -1.0, 1.0, 3),
            true,
        ));
        let path = l.path.unwrap();
        assert_eq!(path.run.iterations, 287);
        assert!(path.points.iter().all(|p| p.y == 0.0));
    }

    #[test]
    fn a_path_with_trace_every_0_is_empty() {
        let train = TrainSpec {
            trace_every: 0,
            ..neuron(LossKind::L2)
        };
        let l = compute(spec(
            train,
            axis("/weights/0", 0.0, 3.0, 4),
            axis("/bias", -1.0, 1.0, 3),
            true,
        ));
        let path = l.path.unwrap();
        assert!(path.points.is_empty());
        assert_eq!(path.run.iterations, 143);
    }

    #[test]
    fn pointers_that_name_no_parameter_are_refused_at_their_axis() {
        let good = || axis("/bias", 0.0, 1.0, 2);
        for bad in [
            "/weights/1",
            "/weights/0/0",
            "/weights/00",
            "/weights/-1",
            "/weights",
            "/bias/0",
            "weights/0",
            "/inputs/0",
            "/weights/0/",
            "",
        ] {
            let e = err(spec(
                neuron(LossKind::L2),
                axis(bad, 0.0, 1.0, 2),
                good(),
                false,
            ));
            assert_eq!(e.field, "/x/parameter", "{bad}");
            assert!(e.message.contains("/weights/0"), "{}", e.message);
        }
        // matrix targets: two indices for weights, one for the bias
        for bad in [
            "/weights/0",
            "/weights/2/0",
            "/weights/0/2",
            "/bias",
            "/bias/2",
        ] {
            let e = err(spec(
                two_outputs(),
                axis("/weights/0/0", 0.0, 1.0, 2),
                axis(bad, 0.0, 1.0, 2),
                false,
            ));
            assert_eq!(e.field, "/y/parameter", "{bad}");
        }
        let e = err(spec(
            neuron(LossKind::L2),
            axis("/bias", 0.0, 1.0, 2),
            good(),
            false,
        ));
        assert_eq!(e.field, "/y/parameter");
        assert!(e.message.contains("same parameter"), "{}", e.message);
    }

    #[test]
    fn ranges_steps_and_the_grid_limit_are_checked() {
        let w = |from, to, steps| axis("/weights/0", from, to, steps);
        let b = |from, to, steps| axis("/bias", from, to, steps);
        let n = || neuron(LossKind::L2);
        assert_eq!(
            err(spec(n(), w(1.0, 1.0, 3), b(0.0, 1.0, 2), false)).field,
            "/x/to"
        );
        assert_eq!(
            err(spec(n(), w(1.0, 0.0, 3), b(0.0, 1.0, 2), false)).field,
            "/x/to"
        );
        assert_eq!(
            err(spec(n(), w(0.0, 1.0, 3), b(2.0, 1.0, 2), false)).field,
            "/y/to"
        );
        assert_eq!(
            err(spec(n(), w(0.0, 1.0, 1), b(0.0, 1.0, 2), false)).field,
            "/x/steps"
        );
        assert_eq!(
            err(spec(n(), w(0.0, 1.0, 2), b(0.0, 1.0, 0), false)).field,
            "/y/steps"
        );
        // 500 × 501 > 250 000; 500 × 500 is allowed
        let e = err(spec(n(), w(0.0, 1.0, 500), b(0.0, 1.0, 501), false));
        assert_eq!(e.field, "/y/steps");
        assert!(e.message.contains("250000"), "{}", e.message);
        assert!(
            prepare(
                spec(n(), w(0.0, 1.0, 500), b(0.0, 1.0, 500), false),
                &LandscapeLimits::default()
            )
            .is_ok()
        );
        let e = err(spec(
            n(),
            w(0.0, 1.0, u64::MAX),
            b(0.0, 1.0, u64::MAX),
            false,
        ));
        assert_eq!(e.field, "/y/steps");
        // a limit of our own
        let limits = LandscapeLimits {
            max_grid_points: 6,
            ..LandscapeLimits::default()
        };
        assert!(prepare(spec(n(), w(0.0, 1.0, 3), b(0.0, 1.0, 2), false), &limits).is_ok());
        let e = prepare(spec(n(), w(0.0, 1.0, 3), b(0.0, 1.0, 3), false), &limits).unwrap_err();
        assert_eq!(e.field, "/y/steps");
        // to − from overflows
        assert_eq!(
            err(spec(n(), w(-1e308, 1e308, 3), b(0.0, 1.0, 2), false)).field,
            "/x/to"
        );
        assert_eq!(
            err(spec(n(), w(0.0, 1.0, 3), b(-1.7e308, 1.7e308, 2), false)).field,
            "/y/to"
        );
    }

    #[test]
    fn the_paths_train_errors_are_under_path_and_the_models_are_not() {
        let bad_rate = TrainSpec {
            learning_rate: -1.0,
            ..neuron(LossKind::L2)
        };
        let axes = || (axis("/weights/0", 0.0, 1.0, 2), axis("/bias", 0.0, 1.0, 2));
        let (x, y) = axes();
        assert_eq!(
            err(spec(bad_rate.clone(), x, y, true)).field,
            "/path/learning_rate"
        );
        // without a path its settings are not used
        let (x, y) = axes();
        assert!(prepare(spec(bad_rate, x, y, false), &LandscapeLimits::default()).is_ok());
        let too_long = TrainSpec {
            max_iterations: 2_000_000,
            ..neuron(LossKind::L2)
        };
        let (x, y) = axes();
        assert_eq!(
            err(spec(too_long, x, y, true)).field,
            "/path/max_iterations"
        );
        let rows = TrainSpec {
            max_iterations: 1_000_000,
            trace_every: 1,
            ..neuron(LossKind::L2)
        };
        let (x, y) = axes();
        assert_eq!(err(spec(rows, x, y, true)).field, "/path/trace_every");
        let bad_stop = TrainSpec {
            stop: StopRules {
                loss_below: Some(f64::NAN),
                ..StopRules::default()
            },
            ..neuron(LossKind::L2)
        };
        let (x, y) = axes();
        assert_eq!(
            err(spec(bad_stop, x, y, true)).field,
            "/path/stop/loss_below"
        );
        let bad_targets = TrainSpec {
            targets: Array::flat(vec![0.5, 0.5]),
            ..neuron(LossKind::L2)
        };
        let (x, y) = axes();
        assert_eq!(err(spec(bad_targets, x, y, true)).field, "/targets");
        let bce_identity = TrainSpec {
            activation: Activation::Identity,
            ..neuron(LossKind::Bce)
        };
        let (x, y) = axes();
        assert_eq!(err(spec(bce_identity, x, y, false)).field, "/activation");
    }

    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        let s = || {
            spec(
                two_outputs(),
                axis("/weights/0/0", -3.0, 3.0, 37),
                axis("/weights/1/1", -2.0, 5.0, 41),
                true,
            )
        };
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| compute(s()))
        };
        let (one, four) = (on(1), on(4));
        let bits = |l: &Landscape| l.loss.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&four));
        assert_eq!(one, four);
    }

    #[test]
    fn a_cancelled_grid_stops_with_the_cancel() {
        let p = prepare(
            spec(
                regression(),
                axis("/weights/0", 0.0, 1.0, 100),
                axis("/bias", 0.0, 1.0, 100),
                false,
            ),
            &LandscapeLimits::default(),
        )
        .unwrap();
        let cancel = Cancel::new(None, Some(Arc::new(AtomicBool::new(true))));
        assert_eq!(p.compute(&cancel).unwrap_err().kind, ErrorKind::Cancelled);
    }

    #[test]
    fn a_state_the_loss_refuses_is_not_finite() {
        // kl_div after softmax: targets P with q = 0 where p > 0 (the loss module's 422
        // in /train) is a null point here; softmax of ±800 gives exactly 0
        let train = TrainSpec {
            inputs: Array::flat(vec![1.0]),
            targets: Array::matrix(vec![0.5, 0.5], 1, 2).unwrap(),
            activation: Activation::Softmax,
            loss: LossKind::KlDiv,
            init_weights: Some(Init::Array(Array::matrix(vec![0.0, 0.0], 1, 2).unwrap())),
            init_bias: Some(Init::Array(Array::flat(vec![0.0, 0.0]))),
            ..regression()
        };
        let l = compute(spec(
            train,
            axis("/bias/0", -1000.0, 0.0, 2),
            axis("/bias/1", 0.0, 1.0, 2),
            false,
        ));
        assert!(!l.loss[0].is_finite(), "{:?}", l.loss);
        assert!(l.loss[1].is_finite(), "{:?}", l.loss);
        assert_eq!(l.minimum.map(|m| m.x), Some(0.0));
    }
}
