//! /train's objective as a function of the parameters: the mean loss of a state θ on the
//! whole training set, evaluated by exactly the code the loop evaluates every state with
//! (run.rs calls [`Prepared::state_loss`], which also writes the arrays of the backward
//! pass; the grid's loss-only form runs the same forward pass, element kernels and sum
//! without those stores; the single neuron goes through `layer::single_neuron`, as the
//! loop's monomorphised path does). POST /landscape
//! evaluates this one function over its grid, so a grid point at a trace row's
//! parameters equals that row's loss bit for bit.

use super::layer;
use super::prepare::Prepared;
use crate::compute::error::ComputeError;

/// The shapes of a prepared run: m samples, n features, k outputs; `flat_targets`:
/// weights are reported as `[n]` and the bias as a number (else `[n][k]` and `[k]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Samples (rows of `inputs`).
    pub m: usize,
    /// Features (columns of `inputs`).
    pub n: usize,
    /// Outputs (columns of the targets, or classes for index targets).
    pub k: usize,
    /// Whether the targets were flat (weights `[n]`, bias a number).
    pub flat_targets: bool,
}

/// Buffers for z, a and dL/dz over the whole training set, made once per worker.
#[derive(Debug)]
pub struct Scratch {
    z: Vec<f64>,
    a: Vec<f64>,
    dz: Vec<f64>,
}

impl Prepared {
    /// The run's shapes.
    pub fn dims(&self) -> Dims {
        Dims {
            m: self.m,
            n: self.n,
            k: self.k,
            flat_targets: self.flat_targets,
        }
    }

    /// θ₀ = (W₀ n × k row-major, b₀ k): weight (i, j) is at `i·k + j`, bias j at `n·k + j`.
    pub fn initial_parameters(&self) -> &[f64] {
        &self.theta0
    }

    /// Buffers for [`Self::objective`].
    pub fn scratch(&self) -> Scratch {
        let len = self.m * self.k;
        Scratch {
            z: vec![0.0; len],
            a: vec![0.0; len],
            dz: vec![0.0; len],
        }
    }

    /// The loss of state θ (θ₀'s layout) as /train evaluates it before an update: NaN
    /// when the loss module refuses the state (a value it cannot take), possibly ±∞.
    #[inline]
    pub fn objective(&self, theta: &[f64], scratch: &mut Scratch) -> f64 {
        match (self.single_neuron(), theta) {
            (Some((pair, x, y)), &[w, b]) => layer::single_neuron(pair, x, y, w, b).0,
            _ => self.state_loss_only(theta, scratch).unwrap_or(f64::NAN),
        }
    }

    /// [`Self::objective`] along a line of states: θ with entry `at` set to each of
    /// `values` in turn, the loss of each written to `out` (θ keeps the last value). The
    /// same calls with the same arguments as point by point, so the same bits; the choice
    /// of path is made once per line (for the single neuron it cost as much as the neuron).
    pub fn objective_line(
        &self,
        theta: &mut [f64],
        at: usize,
        values: &[f64],
        out: &mut [f64],
        scratch: &mut Scratch,
    ) {
        match (self.single_neuron(), &theta[..]) {
            (Some((pair, x, y)), &[w, b]) if at < 2 => {
                for (slot, &v) in out.iter_mut().zip(values) {
                    let (w, b) = if at == 0 { (v, b) } else { (w, v) };
                    *slot = layer::single_neuron(pair, x, y, w, b).0;
                }
                if let Some(&v) = values.last() {
                    theta[at] = v;
                }
            }
            _ => {
                for (slot, &v) in out.iter_mut().zip(values) {
                    theta[at] = v;
                    *slot = self.objective(theta, scratch);
                }
            }
        }
    }

    /// The single neuron's pair and its one sample (x, y), when the loop takes the
    /// monomorphised single-neuron path (θ is then [w, b]).
    #[inline]
    fn single_neuron(&self) -> Option<(layer::ScalarPair, f64, f64)> {
        match (
            self.scalar.filter(|_| !self.generic_only),
            &self.x[..],
            &self.y[..],
        ) {
            (Some(pair), &[x], &[y]) => Some((pair, x, y)),
            _ => None,
        }
    }

    /// [`Self::state_loss`]'s value without the arrays of the backward pass: the same
    /// forward pass, then [`layer::Objective::loss`] (the same kernels and sum as the
    /// loop's `eval`, without writing a and dL/dz where the pair allows).
    fn state_loss_only(&self, theta: &[f64], scratch: &mut Scratch) -> Result<f64, ComputeError> {
        let (m, n, k) = (self.m, self.n, self.k);
        if let (false, 1, 1, [w, b]) = (self.generic_only, n, k, theta) {
            // one feature, one output: z is made and consumed in one loop
            if let Some(loss) = self.objective.loss_one_feature(&self.x, &self.y, *w, *b) {
                return Ok(loss);
            }
        }
        layer::forward(&self.x, m, n, k, theta, &mut scratch.z);
        self.objective.loss(
            m,
            &scratch.z,
            &self.y,
            self.idx.as_deref(),
            &mut scratch.a,
            &mut scratch.dz,
            self.generic_only,
        )
    }

    /// z = X·W + b on the whole training set, then the objective (a fast path or the
    /// chain): the mean loss, with a = act(z) and dL/dz written for the backward pass.
    pub(super) fn state_loss(
        &self,
        theta: &[f64],
        z: &mut [f64],
        a: &mut [f64],
        dz: &mut [f64],
    ) -> Result<f64, ComputeError> {
        let (m, n, k) = (self.m, self.n, self.k);
        layer::forward(&self.x, m, n, k, theta, z);
        self.objective
            .eval(m, z, &self.y, self.idx.as_deref(), a, dz, self.generic_only)
    }
}
