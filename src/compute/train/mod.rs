//! Gradient descent on one dense layer (API.md, `POST /train`): z = X·W + b,
//! a = act(z), the loss with `mean` reduction, one update per mini-batch.
//!
//! This module owns the training contract: what a valid run is ([`prepare`], which
//! checks everything before any work), the loop in API.md's order ([`Prepared::run`]:
//! evaluate state i on the whole training set, check the stop rules, sample the trace,
//! update), and the shapes of what comes out. Its parts:
//! - `prepare` — shapes, targets vs loss, activation vs loss (chain.rs's rule, re-exported
//!   as [`check_activation_fits`]), init, limits;
//! - `layer` — the dense layer (forward, Xᵀ·dZ), the objective (loss and dL/dz from z:
//!   allocation-free fast paths for the common pairs, else
//!   [`Chain::objective`](crate::compute::chain::Chain::objective), the same loss ∘
//!   activation as POST /gradient, fused pairs from the logits form);
//! - `objective` — the loss of a state θ as a function of θ, the very code the loop
//!   evaluates states with (POST /landscape's grid calls it);
//! - `optimizer` — torch.optim's update rules, state in and state out;
//! - `batches` — mini-batch order and the seeded per-epoch shuffle (SplitMix64 +
//!   Fisher–Yates; the algorithm is documented there and is part of the contract);
//! - `run` — the loop, stop rules, divergence, trace sampling, cancellation.
//!
//! Notation: X is m × n (m samples, n features), targets are m × k (flat targets are
//! m × 1 inside, reported back as flat), W is n × k, b has k entries. Inside, the
//! parameters live in one vector θ = (W row-major, b) so that the optimizer works on
//! one slice: the trainable part is W, plus b iff `use_bias`.

mod batches;
mod layer;
mod objective;
mod optimizer;
mod prepare;
mod run;

pub use batches::{Batches, SplitMix64};
pub use objective::{Dims, Scratch};
pub use optimizer::{OPTIMIZERS, Optimizer, OptimizerInfo, OptimizerKind, OptimizerState};
pub use prepare::{Prepared, prepare};

/// 422 at `/activation` when a = act(z) cannot be valid predictions for the loss
/// (bce / focal need sigmoid, cross_entropy / kl_div / js_div need softmax, msle /
/// poisson need a ≥ 0): the rule lives with the loss ∘ activation code.
pub use super::chain::check_activation_fits;

use super::activation::Activation;
use super::array::Array;
use super::loss::LossKind;
use super::params::Params;

/// A `POST /train` request, parsed (names as API.md; the API layer fills defaults).
#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// Flat `[m]` = m samples with one feature; matrix m × n.
    pub inputs: Array,
    /// Flat `[m]` | matrix m × k | (cross_entropy, nll) flat `[m]` of class indices.
    pub targets: Array,
    /// The activation a = act(z), with its params.
    pub activation: Activation,
    /// The loss minimised, with `mean` reduction.
    pub loss: LossKind,
    /// The params of the loss kind.
    pub params: Params,
    /// The initial weights (`init.weights`; zeros when absent).
    pub init_weights: Option<Init>,
    /// The initial bias (`init.bias`; zeros when absent).
    pub init_bias: Option<Init>,
    /// Whether b is trained (false: b keeps its initial value).
    pub use_bias: bool,
    /// The step size (> 0).
    pub learning_rate: f64,
    /// The update rule (torch.optim's), with its settings.
    pub optimizer: Optimizer,
    /// Samples per update (1 ≤ bs ≤ m); `None` = the full batch.
    pub batch_size: Option<u64>,
    /// The seed of the per-epoch shuffle; `None` = samples in order.
    pub seed: Option<u64>,
    /// The most updates to make (the run's last state index).
    pub max_iterations: u64,
    /// The stop rules checked on every state.
    pub stop: StopRules,
    /// Trace every state whose index is a multiple of this (0 = no trace rows).
    pub trace_every: u64,
}

/// An initial value: a number broadcasts; weights `[n]` | `[n][k]` (also `[k]` when
/// n = 1), bias `[k]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// One number for every entry.
    Number(f64),
    /// One value per entry, in the shapes above.
    Array(Array),
}

/// The optional stop rules, each met when its value is strictly below the threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StopRules {
    /// Stop once the loss is below this.
    pub loss_below: Option<f64>,
    /// Stop once max |a − y| over the training set is below this.
    pub abs_error_below: Option<f64>,
    /// Stop once the L2 norm of the gradient over the trainable parameters is below this.
    pub gradient_norm_below: Option<f64>,
}

/// Server limits a run is checked against in [`prepare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainLimits {
    /// The most updates a run may ask for (`--max-iterations`).
    pub max_iterations: u64,
    /// The most trace rows a run may produce, counted on the worst case (`--max-trace-rows`).
    pub max_trace_rows: u64,
    /// The most numbers in a trace, rows × numbers per row (`--max-trace-numbers`).
    pub max_trace_numbers: u64,
}

impl Default for TrainLimits {
    /// API.md's defaults: 1 000 000 iterations, 100 000 trace rows, 10 000 000 numbers.
    fn default() -> Self {
        TrainLimits {
            max_iterations: 1_000_000,
            max_trace_rows: 100_000,
            max_trace_numbers: 10_000_000,
        }
    }
}

/// The bias as reported: a number for flat targets, else one per output column.
#[derive(Clone, Debug, PartialEq)]
pub enum Bias {
    /// Flat targets: one output.
    Scalar(f64),
    /// m × k targets (or class indices): one per output column.
    Vector(Vec<f64>),
}

/// One state of the run, as a trace row.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// The state's index: the number of updates made before it.
    pub iteration: u64,
    /// The loss of the state on the whole training set.
    pub loss: f64,
    /// Flat `[n]` for flat targets, else n × k.
    pub weights: Array,
    /// The state's bias.
    pub bias: Bias,
    /// dL/dW on the whole training set, shaped like `weights`.
    pub gradient_weights: Array,
    /// The computed dL/db, also when the bias is not trained.
    pub gradient_bias: Bias,
}

/// The final state of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalState {
    /// The final state's index (= `iterations`).
    pub iteration: u64,
    /// Flat `[n]` for flat targets, else n × k.
    pub weights: Array,
    /// The final bias.
    pub bias: Bias,
    /// The final state's loss on the whole training set.
    pub loss: f64,
}

/// Why the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The loss went below `stop.loss_below`.
    LossBelow,
    /// max |a − y| went below `stop.abs_error_below`.
    AbsErrorBelow,
    /// The gradient's norm went below `stop.gradient_norm_below`.
    GradientNormBelow,
    /// `max_iterations` updates were made and no stop rule was met.
    MaxIterations,
    /// A state was not finite: the final state is the last finite one.
    Diverged,
}

impl StopReason {
    /// The API name (`"loss_below"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            StopReason::LossBelow => "loss_below",
            StopReason::AbsErrorBelow => "abs_error_below",
            StopReason::GradientNormBelow => "gradient_norm_below",
            StopReason::MaxIterations => "max_iterations",
            StopReason::Diverged => "diverged",
        }
    }

    /// Whether a stop rule was met.
    pub fn converged(&self) -> bool {
        matches!(
            self,
            StopReason::LossBelow | StopReason::AbsErrorBelow | StopReason::GradientNormBelow
        )
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainResult {
    /// The index of the final state.
    pub iterations: u64,
    /// Whether a stop rule was met.
    pub converged: bool,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// The final state (`final` in the response).
    pub final_state: FinalState,
    /// Empty from [`Prepared::run_streaming`] (the rows went to the sink).
    pub trace: Vec<TraceRow>,
}

#[cfg(test)]
mod tests;
