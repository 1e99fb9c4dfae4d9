//! Everything about a run that can be wrong is found here, before any work: shapes of
//! inputs, targets and init, targets vs loss (class indices, the loss's own checks),
//! activation vs loss, learning rate, batch size, stop rules and the server limits.
//! State 0 is evaluated once on the generic path, so the loss module checks the
//! targets and a run whose first state is not finite is refused.

use super::layer::{self, Objective, ScalarPair};
use super::{Init, StopRules, TrainLimits, TrainSpec};
use crate::compute::array::{Array, Shape};
use crate::compute::chain::{self, Chain};
use crate::compute::error::ComputeError;
use crate::compute::loss::LossKind;

use super::optimizer::Optimizer;

/// A validated run, ready for [`Prepared::run`](super::Prepared::run).
#[derive(Debug)]
pub struct Prepared {
    /// Samples, features, output columns.
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    /// Inputs, m × n row-major.
    pub(super) x: Vec<f64>,
    /// Targets, m × k row-major; with class indices one number per row.
    pub(super) y: Vec<f64>,
    /// Class indices (cross_entropy, nll with flat targets), checked in 0..k.
    pub(super) idx: Option<Vec<usize>>,
    /// Flat (non-index) targets: weights come back as `[n]`, the bias as a number.
    pub(super) flat_targets: bool,
    pub(super) objective: Objective,
    /// θ₀ = (W₀ n × k row-major, b₀).
    pub(super) theta0: Vec<f64>,
    pub(super) use_bias: bool,
    pub(super) learning_rate: f64,
    pub(super) optimizer: Optimizer,
    /// Mini-batch size (< m) and seed; `None` is full-batch gradient descent.
    pub(super) batch: Option<(usize, Option<u64>)>,
    pub(super) max_iterations: u64,
    pub(super) stop: StopRules,
    pub(super) trace_every: u64,
    /// States traced besides the multiples of `trace_every`, sorted (POST /grade traces
    /// exactly the states a claimed trace names: [`Prepared::trace_states`]).
    pub(super) also_trace: Vec<u64>,
    /// The single neuron (m = n = k = 1) with an elementwise fast pair: evaluated in
    /// registers, without the z / a / dL/dz buffers.
    pub(super) scalar: Option<ScalarPair>,
    /// Tests only: evaluate on the generic path even where a fast path exists.
    pub(super) generic_only: bool,
}

impl Prepared {
    /// Trace rows the run can produce at most: the states 0, t, 2t, … ≤ N plus the
    /// final state N when t does not divide it (0 when `trace_every` is 0). The limit
    /// check in [`prepare`] uses API.md's bound ⌊N/t⌋ + 2, which is never smaller.
    pub fn max_trace_rows(&self) -> u64 {
        let (n, t) = (self.max_iterations, self.trace_every);
        n.checked_div(t)
            .map_or(0, |rows| rows + 1 + u64::from(n % t != 0))
    }

    /// Numbers in one trace row: iteration, loss, W and b, dW and db.
    pub fn numbers_per_row(&self) -> u64 {
        numbers_per_row(self.n, self.k)
    }

    /// Numbers the trace can hold at most.
    pub fn max_trace_numbers(&self) -> u64 {
        self.max_trace_rows().saturating_mul(self.numbers_per_row())
    }

    /// Traces exactly `states` (those the run reaches) instead of the multiples of
    /// `trace_every`, for POST /grade, which compares the rows a student claims. The
    /// limits were checked in [`prepare`] against the request's own `trace_every`.
    pub fn trace_states(mut self, mut states: Vec<u64>) -> Self {
        states.sort_unstable();
        states.dedup();
        self.trace_every = 0;
        self.also_trace = states;
        self
    }

    /// The update's sign reversed (POST /grade's `gradient_ascent`): the learning rate
    /// negated. Exact for every optimizer here, since each update is θ − lr·d with d
    /// independent of lr (Adam's step size lr/bc₁ included), so −lr gives θ + lr·d.
    pub fn reverse_updates(mut self) -> Self {
        self.learning_rate = -self.learning_rate;
        self
    }

    /// Whether state `i` is traced besides the multiples of `trace_every`.
    #[inline(always)]
    pub(super) fn also_traced(&self, i: u64) -> bool {
        !self.also_trace.is_empty() && self.also_trace.binary_search(&i).is_ok()
    }

    /// Tests: force the generic (allocating) objective path.
    #[cfg(test)]
    pub(super) fn generic_only(mut self) -> Self {
        self.generic_only = true;
        self
    }

    /// Tests: whether a fast path would be used.
    #[cfg(test)]
    pub(super) fn has_fast_path(&self) -> bool {
        self.objective.fast.is_some()
    }
}

fn numbers_per_row(n: usize, k: usize) -> u64 {
    let params = (n as u64).saturating_mul(k as u64).saturating_add(k as u64);
    params.saturating_mul(2).saturating_add(2)
}

/// Validates `spec` against the loss and `limits`; nothing is computed but state 0.
pub fn prepare(spec: TrainSpec, limits: &TrainLimits) -> Result<Prepared, ComputeError> {
    // inputs: m samples × n features
    let (m, n) = match spec.inputs.shape() {
        Shape::Flat(m) => (m, 1),
        Shape::Matrix { rows, cols } => (rows, cols),
    };
    if m == 0 || n == 0 {
        return Err(ComputeError::invalid("/inputs", "inputs must not be empty"));
    }
    check_finite(&spec.inputs, "inputs")?;

    chain::check_activation_fits(spec.loss, &spec.activation)?;

    // targets: one row per sample
    let (target_rows, target_cols) = match spec.targets.shape() {
        Shape::Flat(len) => (len, None),
        Shape::Matrix { rows, cols } => (rows, Some(cols)),
    };
    if target_rows != m {
        return Err(ComputeError::invalid(
            "/targets",
            format!(
                "targets must have one row per sample: {m} (the rows of inputs), got {target_rows}"
            ),
        ));
    }
    check_finite(&spec.targets, "targets")?;
    let indices = target_cols.is_none() && spec.loss.accepts_indices();
    let flat_targets = target_cols.is_none() && !indices;
    let k = match target_cols {
        Some(cols) => cols,
        None if indices => classes_from_init(spec.init_weights.as_ref(), n, spec.loss)?,
        None => 1,
    };
    let idx = if indices {
        Some(class_indices(spec.targets.data(), k)?)
    } else {
        None
    };

    let mut theta0 = init_weights(spec.init_weights.as_ref(), n, k, flat_targets)?;
    theta0.extend(init_bias(spec.init_bias.as_ref(), k)?);

    let chain = Chain::new(spec.loss, &spec.params, spec.activation)?;

    if !(spec.learning_rate.is_finite() && spec.learning_rate > 0.0) {
        return Err(ComputeError::invalid(
            "/learning_rate",
            format!(
                "learning_rate must be a finite number > 0; got {}",
                spec.learning_rate
            ),
        ));
    }
    let batch = match spec.batch_size {
        None => None,
        Some(bs) if bs == 0 || bs > m as u64 => {
            return Err(ComputeError::invalid(
                "/batch_size",
                format!("batch_size must be in 1..={m} (the number of samples); got {bs}"),
            ));
        }
        // a batch of every sample is full-batch descent: no order, no shuffle
        Some(bs) if bs == m as u64 => None,
        Some(bs) => Some((bs as usize, spec.seed)),
    };
    for (name, value) in [
        ("loss_below", spec.stop.loss_below),
        ("abs_error_below", spec.stop.abs_error_below),
        ("gradient_norm_below", spec.stop.gradient_norm_below),
    ] {
        if let Some(v) = value
            && !v.is_finite()
        {
            return Err(ComputeError::invalid(
                format!("/stop/{name}"),
                format!("{name} must be a finite number"),
            ));
        }
    }
    check_limits(&spec, limits, n, k)?;

    let fast = layer::fast_path(&spec.activation, spec.loss, spec.params.is_empty());
    let scalar = fast
        .and_then(ScalarPair::of)
        .filter(|_| m == 1 && n == 1 && k == 1);
    let prepared = Prepared {
        m,
        n,
        k,
        x: spec.inputs.into_data(),
        y: spec.targets.into_data(),
        idx,
        flat_targets,
        objective: Objective {
            chain,
            fast,
            k,
            indices,
        },
        theta0,
        use_bias: spec.use_bias,
        learning_rate: spec.learning_rate,
        optimizer: spec.optimizer,
        batch,
        max_iterations: spec.max_iterations,
        stop: spec.stop,
        trace_every: spec.trace_every,
        also_trace: Vec::new(),
        scalar,
        generic_only: false,
    };
    check_state_zero(&prepared)?;
    Ok(prepared)
}

fn check_finite(a: &Array, field: &str) -> Result<(), ComputeError> {
    match a.data().iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(ComputeError::invalid(
            a.pointer(field, i),
            format!("{field} must be finite numbers"),
        )),
    }
}

/// k for class-index targets: the columns of init.weights shaped [n][k] (or [k] when
/// n = 1).
fn classes_from_init(init: Option<&Init>, n: usize, kind: LossKind) -> Result<usize, ComputeError> {
    match init {
        Some(Init::Array(w)) => match w.shape() {
            Shape::Matrix { rows, cols } if rows == n => return Ok(cols),
            Shape::Matrix { rows, .. } => {
                return Err(ComputeError::invalid(
                    "/init/weights",
                    format!(
                        "init.weights must be [{n}][k] (one row per input feature); got {rows} rows"
                    ),
                ));
            }
            Shape::Flat(len) if n == 1 && len > 0 => return Ok(len),
            Shape::Flat(_) => {}
        },
        Some(Init::Number(_)) | None => {}
    }
    Err(ComputeError::invalid(
        "/targets",
        format!(
            "class-index targets for {} need the number of classes k: give init.weights shaped [{n}][k], or send targets one-hot as m × k",
            kind.name()
        ),
    ))
}

/// Class indices: integer-valued numbers in 0..k (errors at `/targets/i`, as the loss
/// module words them).
fn class_indices(t: &[f64], k: usize) -> Result<Vec<usize>, ComputeError> {
    t.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && v >= 0.0 && v < k as f64 {
                Ok(v as usize)
            } else {
                Err(ComputeError::invalid(
                    format!("/targets/{i}"),
                    format!(
                        "class index must be an integer in [0, {}]; got {v}",
                        k.saturating_sub(1)
                    ),
                ))
            }
        })
        .collect()
}

/// W₀ as n × k row-major: zeros, a broadcast number, `[n][k]`, `[n]` when k = 1, or
/// `[k]` when n = 1.
fn init_weights(
    init: Option<&Init>,
    n: usize,
    k: usize,
    flat_targets: bool,
) -> Result<Vec<f64>, ComputeError> {
    let field = "/init/weights";
    match init {
        None => Ok(vec![0.0; n * k]),
        Some(Init::Number(v)) if v.is_finite() => Ok(vec![*v; n * k]),
        Some(Init::Number(_)) => Err(ComputeError::invalid(field, "init.weights must be finite")),
        Some(Init::Array(w)) => {
            let fits = match w.shape() {
                Shape::Matrix { rows, cols } => rows == n && cols == k,
                Shape::Flat(len) => (k == 1 && len == n) || (n == 1 && len == k),
            };
            if !fits {
                let want = if flat_targets {
                    format!("[{n}] (one weight per input feature)")
                } else {
                    format!("[{n}][{k}] (input features × outputs)")
                };
                return Err(ComputeError::invalid(
                    field,
                    format!(
                        "init.weights must be a number or {want}; got {}",
                        w.shape().describe()
                    ),
                ));
            }
            check_finite(w, "init/weights")?;
            Ok(w.data().to_vec())
        }
    }
}

/// b₀: zeros, a broadcast number or `[k]`.
fn init_bias(init: Option<&Init>, k: usize) -> Result<Vec<f64>, ComputeError> {
    let field = "/init/bias";
    match init {
        None => Ok(vec![0.0; k]),
        Some(Init::Number(v)) if v.is_finite() => Ok(vec![*v; k]),
        Some(Init::Number(_)) => Err(ComputeError::invalid(field, "init.bias must be finite")),
        Some(Init::Array(b)) => {
            if b.shape() != Shape::Flat(k) {
                return Err(ComputeError::invalid(
                    field,
                    format!(
                        "init.bias must be a number or [{k}] (one per output); got {}",
                        b.shape().describe()
                    ),
                ));
            }
            check_finite(b, "init/bias")?;
            Ok(b.data().to_vec())
        }
    }
}

/// Server limits: iterations, and API.md's trace bound ⌊N/t⌋ + 2 rows (and numbers).
fn check_limits(
    spec: &TrainSpec,
    limits: &TrainLimits,
    n: usize,
    k: usize,
) -> Result<(), ComputeError> {
    if spec.max_iterations > limits.max_iterations {
        return Err(ComputeError::invalid(
            "/max_iterations",
            format!(
                "max_iterations must be at most {}; got {}",
                limits.max_iterations, spec.max_iterations
            ),
        ));
    }
    if spec.trace_every == 0 {
        return Ok(());
    }
    let rows = (spec.max_iterations / spec.trace_every).saturating_add(2);
    if rows > limits.max_trace_rows {
        return Err(ComputeError::invalid(
            "/trace_every",
            format!(
                "the trace could hold {rows} rows (max_iterations / trace_every + 2), more than the limit {}: raise trace_every, or set it to 0 for no trace",
                limits.max_trace_rows
            ),
        ));
    }
    let per_row = numbers_per_row(n, k);
    let numbers = rows.saturating_mul(per_row);
    if numbers > limits.max_trace_numbers {
        return Err(ComputeError::invalid(
            "/trace_every",
            format!(
                "the trace could hold {numbers} numbers ({rows} rows of {per_row}), more than the limit {}: raise trace_every, or set it to 0 for no trace",
                limits.max_trace_numbers
            ),
        ));
    }
    Ok(())
}

/// State 0 on the generic path: the loss module checks the targets against the kind,
/// and a first state that is not finite is refused (API.md: only later states end a
/// run as `diverged`). Pointers are moved onto the request: `/logits/r/...` (the
/// layer's output for sample r) becomes `/inputs/r`; flat targets, an m × 1 matrix
/// inside, get their `/targets/r` back.
fn check_state_zero(p: &Prepared) -> Result<(), ComputeError> {
    let len = p.m * p.k;
    let mut z = vec![0.0; len];
    let mut a = vec![0.0; len];
    let mut dz = vec![0.0; len];
    let mut grad = vec![0.0; p.theta0.len()];
    layer::forward(&p.x, p.m, p.n, p.k, &p.theta0, &mut z);
    let loss = p
        .objective
        .eval(p.m, &z, &p.y, p.idx.as_deref(), &mut a, &mut dz, true)
        .map_err(|e| state_zero_error(e, p.flat_targets))?;
    layer::backward(&p.x, p.m, p.n, p.k, &dz, &mut grad);
    if !(loss.is_finite() && layer::all_finite(&grad)) {
        return Err(not_finite_at_start());
    }
    Ok(())
}

pub(super) fn not_finite_at_start() -> ComputeError {
    ComputeError::invalid(
        "/inputs",
        "the initial parameters (state 0) give a loss or gradient that is not finite: scale the inputs or the initial weights down",
    )
}

fn state_zero_error(e: ComputeError, flat_targets: bool) -> ComputeError {
    let field = e.field.as_str();
    if let Some(rest) = field
        .strip_prefix("/logits")
        .or_else(|| field.strip_prefix("/predictions"))
        && (rest.is_empty() || rest.starts_with('/'))
    {
        let row = rest.split('/').nth(1).map(str::to_string);
        let (field, at) = match row {
            Some(r) => (format!("/inputs/{r}"), format!(", sample {r}")),
            None => ("/inputs".to_string(), String::new()),
        };
        return ComputeError {
            field,
            message: format!("at the initial parameters (state 0){at}: {}", e.message),
            ..e
        };
    }
    if flat_targets
        && field.starts_with("/targets/")
        && field.matches('/').count() == 3
        && let Some(stripped) = field.strip_suffix("/0")
    {
        return ComputeError {
            field: stripped.to_string(),
            ..e
        };
    }
    e
}
