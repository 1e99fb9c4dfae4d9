//! The loop, in API.md's order. For i = 0, 1, …:
//! 1. evaluate state i (the parameters after i updates) on the whole training set:
//!    loss, and dW, db; a state whose loss, parameters or gradient is not finite ends
//!    the run as `diverged` with the previous state as final;
//! 2. check the stop rules with a strict `<`, in the order loss_below, abs_error_below
//!    (max |a − y|), gradient_norm_below (‖(dW, db iff use_bias)‖₂), then i = N
//!    (`max_iterations`);
//! 3. send the trace row when i is a multiple of `trace_every` or the state is final;
//! 4. update once: the full-batch gradient, or the gradient of the next mini-batch's
//!    mean loss.
//!
//! Nothing is allocated per iteration on the fast paths: the buffers for z, a, dL/dz,
//! the gradients and the two parameter vectors (current and next, swapped each update
//! so the last finite state survives a diverging step) are made once.

use super::batches::Batches;
use super::layer::{self, ScalarPair};
use super::prepare::{Prepared, not_finite_at_start};
use super::{Bias, FinalState, StopReason, TraceRow, TrainResult};
use crate::compute::array::Array;
use crate::compute::error::{Cancel, ComputeError, ErrorKind};

/// The deadline / cancel flag is read every this many iterations (a power of two).
const CANCEL_EVERY: u64 = 1024;

/// z, a and dL/dz for up to `rows` samples.
struct Work {
    z: Vec<f64>,
    a: Vec<f64>,
    dz: Vec<f64>,
}

impl Work {
    fn new(rows: usize, k: usize) -> Self {
        Work {
            z: vec![0.0; rows * k],
            a: vec![0.0; rows * k],
            dz: vec![0.0; rows * k],
        }
    }
}

/// The mini-batch schedule and its gathered rows.
struct BatchWork {
    batches: Batches,
    x: Vec<f64>,
    y: Vec<f64>,
    idx: Vec<usize>,
    work: Work,
    grad: Vec<f64>,
}

impl Prepared {
    /// Runs the loop; every trace row goes to `sink` as soon as it is computed. A sink
    /// that returns false (the client went away) stops the run with
    /// [`ErrorKind::Cancelled`]. The returned [`TrainResult::trace`] is empty.
    pub fn run_streaming(
        self,
        cancel: &Cancel,
        sink: &mut dyn FnMut(TraceRow) -> bool,
    ) -> Result<TrainResult, ComputeError> {
        self.execute(cancel, sink)
    }

    /// Runs the loop, collecting the trace rows into [`TrainResult::trace`].
    pub fn run(self, cancel: &Cancel) -> Result<TrainResult, ComputeError> {
        // preallocate what the trace can hold, within reason (an early stop is common)
        let cap = usize::try_from(self.max_trace_rows().min(4096)).unwrap_or(4096);
        let mut trace = Vec::with_capacity(cap);
        let mut result = self.execute(cancel, &mut |row| {
            trace.push(row);
            true
        })?;
        result.trace = trace;
        Ok(result)
    }

    /// Loss of state θ on the whole training set, its gradient into `grad`; `None` when
    /// the loss, θ or the gradient is not finite (or the loss module refused it).
    fn evaluate_full(&self, theta: &[f64], w: &mut Work, grad: &mut [f64]) -> Option<f64> {
        let (m, n, k) = (self.m, self.n, self.k);
        let loss = self.state_loss(theta, &mut w.z, &mut w.a, &mut w.dz).ok()?;
        layer::backward(&self.x, m, n, k, &w.dz, grad);
        (loss.is_finite() && layer::all_finite(theta) && layer::all_finite(grad)).then_some(loss)
    }

    /// [`Self::evaluate_full`] for the single neuron, in registers (`pair` is a constant
    /// in each monomorphised loop).
    #[inline(always)]
    fn evaluate_single(
        &self,
        pair: ScalarPair,
        theta: &[f64],
        w: &mut Work,
        grad: &mut [f64],
    ) -> Option<f64> {
        let ([x], [y], [wt, b], [gw, gb], [a]) =
            (&self.x[..], &self.y[..], theta, &mut grad[..], &mut w.a[..])
        else {
            return self.evaluate_full(theta, w, grad);
        };
        let (loss, av, dw, db) = layer::single_neuron(pair, *x, *y, *wt, *b);
        (*a, *gw, *gb) = (av, dw, db);
        let finite = [loss, *wt, *b, dw, db].iter().all(|v| v.is_finite());
        finite.then_some(loss)
    }

    /// The gradient of the next mini-batch's mean loss into `bw.grad`; `None` when the
    /// loss module refused it (a value that is not finite).
    fn evaluate_batch(&self, theta: &[f64], bw: &mut BatchWork) -> Option<()> {
        let (n, k) = (self.n, self.k);
        let BatchWork {
            batches,
            x,
            y,
            idx,
            work,
            grad,
        } = bw;
        let rows = batches.next_batch();
        let per_row_y = if self.idx.is_some() { 1 } else { k };
        for (slot, &r) in rows.iter().enumerate() {
            x[slot * n..(slot + 1) * n].copy_from_slice(&self.x[r * n..(r + 1) * n]);
            y[slot * per_row_y..(slot + 1) * per_row_y]
                .copy_from_slice(&self.y[r * per_row_y..(r + 1) * per_row_y]);
            if let Some(all) = &self.idx {
                idx[slot] = all[r];
            }
        }
        let count = rows.len();
        layer::forward(x, count, n, k, theta, &mut work.z);
        self.objective
            .eval(
                count,
                &work.z,
                y,
                self.idx.as_ref().map(|_| &idx[..count]),
                &mut work.a,
                &mut work.dz,
                self.generic_only,
            )
            .ok()?;
        layer::backward(x, count, n, k, &work.dz, grad);
        Some(())
    }

    /// The first stop rule state i meets, then `max_iterations`.
    #[inline(always)]
    fn stop_reason(&self, i: u64, loss: f64, w: &Work, grad: &[f64]) -> Option<StopReason> {
        let rules = &self.stop;
        if rules.loss_below.is_some_and(|t| loss < t) {
            return Some(StopReason::LossBelow);
        }
        if let Some(t) = rules.abs_error_below
            && layer::max_abs_error(self.k, &w.a, &self.y, self.idx.as_deref()) < t
        {
            return Some(StopReason::AbsErrorBelow);
        }
        if let Some(t) = rules.gradient_norm_below
            && layer::norm(&grad[..self.trainable()]) < t
        {
            return Some(StopReason::GradientNormBelow);
        }
        (i >= self.max_iterations).then_some(StopReason::MaxIterations)
    }

    /// Trainable parameters: W, plus b iff `use_bias` (θ = (W, b)).
    fn trainable(&self) -> usize {
        self.n * self.k + if self.use_bias { self.k } else { 0 }
    }

    fn weights_out(&self, w: &[f64]) -> Array {
        if self.flat_targets {
            Array::flat(w.to_vec())
        } else {
            Array::matrix(w.to_vec(), self.n, self.k).unwrap_or_else(|| Array::flat(w.to_vec()))
        }
    }

    fn bias_out(&self, b: &[f64]) -> Bias {
        if self.flat_targets {
            Bias::Scalar(b.first().copied().unwrap_or(0.0))
        } else {
            Bias::Vector(b.to_vec())
        }
    }

    fn row(&self, i: u64, loss: f64, theta: &[f64], grad: &[f64]) -> TraceRow {
        let nk = self.n * self.k;
        TraceRow {
            iteration: i,
            loss,
            weights: self.weights_out(&theta[..nk]),
            bias: self.bias_out(&theta[nk..]),
            gradient_weights: self.weights_out(&grad[..nk]),
            gradient_bias: self.bias_out(&grad[nk..]),
        }
    }

    /// The loop, monomorphised for each single-neuron pair so that the whole state
    /// evaluation is inlined into it (the common teaching case, and the benchmark's).
    fn execute(
        self,
        cancel: &Cancel,
        sink: &mut dyn FnMut(TraceRow) -> bool,
    ) -> Result<TrainResult, ComputeError> {
        use super::layer::SquaredAct::{Identity, Sigmoid, Tanh};
        macro_rules! single {
            ($pair:expr) => {
                self.execute_with(cancel, sink, |p, theta, w, g| {
                    p.evaluate_single($pair, theta, w, g)
                })
            };
        }
        match self.scalar.filter(|_| !self.generic_only) {
            Some(ScalarPair::Squared {
                act: Identity,
                half: true,
            }) => single!(ScalarPair::Squared {
                act: Identity,
                half: true
            }),
            Some(ScalarPair::Squared {
                act: Identity,
                half: false,
            }) => single!(ScalarPair::Squared {
                act: Identity,
                half: false
            }),
            Some(ScalarPair::Squared {
                act: Sigmoid,
                half: true,
            }) => single!(ScalarPair::Squared {
                act: Sigmoid,
                half: true
            }),
            Some(ScalarPair::Squared {
                act: Sigmoid,
                half: false,
            }) => single!(ScalarPair::Squared {
                act: Sigmoid,
                half: false
            }),
            Some(ScalarPair::Squared {
                act: Tanh,
                half: true,
            }) => single!(ScalarPair::Squared {
                act: Tanh,
                half: true
            }),
            Some(ScalarPair::Squared {
                act: Tanh,
                half: false,
            }) => single!(ScalarPair::Squared {
                act: Tanh,
                half: false
            }),
            Some(ScalarPair::SigmoidBce) => single!(ScalarPair::SigmoidBce),
            None => self.execute_with(cancel, sink, |p, theta, w, g| p.evaluate_full(theta, w, g)),
        }
    }

    fn execute_with(
        self,
        cancel: &Cancel,
        sink: &mut dyn FnMut(TraceRow) -> bool,
        evaluate: impl Fn(&Self, &[f64], &mut Work, &mut [f64]) -> Option<f64>,
    ) -> Result<TrainResult, ComputeError> {
        let (m, n, k) = (self.m, self.n, self.k);
        let trainable = self.trainable();
        let every = self.trace_every;
        let mut theta = self.theta0.clone();
        // `next` starts as a copy too: when the bias is not trained, neither buffer's
        // bias is ever written, so both keep b₀
        let mut next = self.theta0.clone();
        let mut grad = vec![0.0; theta.len()];
        let mut full = Work::new(m, k);
        let mut batch = self.batch.map(|(size, seed)| BatchWork {
            batches: Batches::new(m, size, seed),
            x: vec![0.0; size * n],
            y: vec![0.0; size * if self.idx.is_some() { 1 } else { k }],
            idx: vec![0; size],
            work: Work::new(size, k),
            grad: vec![0.0; theta.len()],
        });
        let mut opt_state = self.optimizer.init_state(trainable);
        let mut emit = |row: TraceRow| -> Result<(), ComputeError> {
            if sink(row) {
                Ok(())
            } else {
                Err(ComputeError {
                    kind: ErrorKind::Cancelled,
                    field: String::new(),
                    message: "the client went away; the run was stopped".into(),
                })
            }
        };

        let mut i: u64 = 0;
        let mut prev_loss = f64::NAN;
        // (final state, its loss, why, whether its parameters are in `next`)
        let (last, last_loss, reason, in_next) = loop {
            if i % CANCEL_EVERY == 0 {
                cancel.check()?;
            }
            let Some(loss) = evaluate(&self, &theta, &mut full, &mut grad) else {
                if i == 0 {
                    return Err(not_finite_at_start());
                }
                // state i is not finite: state i − 1 (now in `next`) is final; send its
                // row unless it went out already
                let prev = i - 1;
                if every > 0 && prev % every != 0 && !self.also_traced(prev) {
                    if evaluate(&self, &next, &mut full, &mut grad).is_none() {
                        return Err(not_finite_at_start());
                    }
                    emit(self.row(prev, prev_loss, &next, &grad))?;
                }
                break (prev, prev_loss, StopReason::Diverged, true);
            };
            let reason = self.stop_reason(i, loss, &full, &grad);
            if (every > 0 && (i % every == 0 || reason.is_some())) || self.also_traced(i) {
                emit(self.row(i, loss, &theta, &grad))?;
            }
            if let Some(reason) = reason {
                break (i, loss, reason, false);
            }
            let g: &[f64] = match &mut batch {
                None => &grad,
                Some(bw) => {
                    if self.evaluate_batch(&theta, bw).is_none() {
                        if every > 0 && i % every != 0 && !self.also_traced(i) {
                            emit(self.row(i, loss, &theta, &grad))?;
                        }
                        break (i, loss, StopReason::Diverged, false);
                    }
                    &bw.grad
                }
            };
            opt_state = self.optimizer.step(
                self.learning_rate,
                &theta[..trainable],
                &g[..trainable],
                &mut next[..trainable],
                opt_state,
            );
            std::mem::swap(&mut theta, &mut next);
            prev_loss = loss;
            i += 1;
        };

        let params = if in_next { &next } else { &theta };
        let nk = n * k;
        Ok(TrainResult {
            iterations: last,
            converged: reason.converged(),
            stop_reason: reason,
            final_state: FinalState {
                iteration: last,
                weights: self.weights_out(&params[..nk]),
                bias: self.bias_out(&params[nk..]),
                loss: last_loss,
            },
            trace: Vec::new(),
        })
    }
}
