//! A task and its reference: the result computed exactly as the task's endpoint
//! computes it (`LossSpec::evaluate` as /loss, the chain rule as /gradient, `prepare`
//! and the loop as /train), and the same task with one setting changed ([`Change`]),
//! which is how every mistake that is not a pure factor is computed.

use std::borrow::Cow;

use super::answer::{Claim, Field, TaskType, claimed_states};
use super::compare::Dims;
use crate::compute::array::{Array, Shape};
use crate::compute::error::{Cancel, ComputeError};
use crate::compute::gradient::{GradientSpec, gradient};
use crate::compute::loss::{LossKind, LossResult, LossSpec, LossValue};
use crate::compute::params::{ParamValue, Params};
use crate::compute::reduction::Reduction;
use crate::compute::train::{Bias, TraceRow, TrainLimits, TrainResult, TrainSpec, prepare};

/// A `/loss/{kind}` body with its kind (the `gradient` flag comes from the claims).
#[derive(Clone, Debug)]
pub struct LossTask {
    /// The loss kind (the path's `{kind}`).
    pub kind: LossKind,
    /// The params of the kind.
    pub params: Params,
    /// Whether predictions are logits.
    pub from_logits: bool,
    /// The predictions a.
    pub predictions: Array,
    /// The targets y.
    pub targets: Array,
    /// How the terms are reduced.
    pub reduction: Reduction,
    /// One weight per row (per element for a flat elementwise input).
    pub weights: Option<Vec<f64>>,
}

/// A `/gradient` body, owned (its `check` is not claimable and never run): the
/// compute core's [`GradientSpec`] checks it as /gradient does.
#[derive(Clone, Debug)]
pub struct GradientTask {
    /// The loss kind.
    pub loss: LossKind,
    /// The params of the kind.
    pub params: Params,
    /// How the terms are reduced.
    pub reduction: Reduction,
    /// One weight per row (per element for a flat elementwise input).
    pub weights: Option<Vec<f64>>,
    /// The targets y.
    pub targets: Array,
    /// The model output a (this or `logits`).
    pub predictions: Option<Array>,
    /// The pre-activation z (this or `predictions`).
    pub logits: Option<Array>,
    /// The activation's name (default `identity`).
    pub activation: Option<String>,
    /// The params of the activation.
    pub activation_params: Params,
}

impl GradientTask {
    fn spec(&self) -> GradientSpec<'_> {
        GradientSpec {
            loss: self.loss,
            params: &self.params,
            reduction: self.reduction,
            weights: self.weights.as_deref(),
            targets: &self.targets,
            predictions: self.predictions.as_ref(),
            logits: self.logits.as_ref(),
            activation: self.activation.as_deref(),
            activation_params: &self.activation_params,
            check: false,
        }
    }
}

/// A `/train` body, with the server's limits it is checked against.
#[derive(Clone, Debug)]
pub struct TrainTask {
    /// The run, parsed.
    pub spec: TrainSpec,
    /// The server's limits the run is checked against.
    pub limits: TrainLimits,
    /// The update's sign reversed (the `gradient_ascent` variant; false from a request).
    pub reversed: bool,
}

/// What an item asks losslab to compute.
#[derive(Clone, Debug)]
pub enum Task {
    /// A `/loss/{kind}` task.
    Loss(LossTask),
    /// A `/gradient` task.
    Gradient(GradientTask),
    /// A `/train` task.
    Train(Box<TrainTask>),
}

/// One setting changed (the mistakes that are computations, not factors).
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Another reduction.
    Reduction(Reduction),
    /// `None`: the natural log.
    LogBase(Option<f64>),
    /// kl_div with predictions and targets swapped.
    Swapped,
    /// `from_logits` set to this.
    FromLogits(bool),
    /// Without these weights: `weights` and/or params such as `class_weights`.
    DropWeights(Vec<&'static str>),
    /// Another loss kind (mse ↔ mae).
    Kind(LossKind),
    /// `use_bias` set to this.
    UseBias(bool),
    /// The update's sign reversed (gradient ascent).
    ReverseUpdates,
}

/// What the claims need computed: the gradient (/loss), the states a trace names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wants {
    gradient: bool,
    states: Vec<u64>,
}

impl Wants {
    pub(crate) fn of(claims: &[Claim]) -> Self {
        Wants {
            gradient: claims.iter().any(|c| c.field == Field::Gradient),
            states: claimed_states(claims),
        }
    }
}

/// A computed result.
#[derive(Debug)]
pub(crate) enum Outcome {
    Loss(LossResult),
    Gradient {
        loss: LossValue,
        activations: Option<Array>,
        d_predictions: Array,
        d_logits: Option<Array>,
    },
    Train(TrainResult),
}

/// A reference value of one field, borrowed from an [`Outcome`] (or scaled from it).
#[derive(Clone, Debug)]
pub(crate) enum Expected<'a> {
    Numbers(Nums<'a>),
    Count(u64),
    Text(&'static str),
    Flag(bool),
    Rows(&'a [TraceRow]),
}

/// Numbers with their shape.
#[derive(Clone, Debug)]
pub(crate) struct Nums<'a> {
    pub dims: Dims,
    pub data: Cow<'a, [f64]>,
}

impl<'a> Nums<'a> {
    pub(crate) fn of_array(a: &'a Array) -> Self {
        Nums {
            dims: match a.shape() {
                Shape::Flat(n) => Dims::Flat(n),
                Shape::Matrix { rows, cols } => Dims::Matrix(rows, cols),
            },
            data: Cow::Borrowed(a.data()),
        }
    }
    pub(crate) fn of_scalar(x: &'a f64) -> Self {
        Nums {
            dims: Dims::Scalar,
            data: Cow::Borrowed(std::slice::from_ref(x)),
        }
    }
    pub(crate) fn of_loss(l: &'a LossValue) -> Self {
        match l {
            LossValue::Scalar(x) => Nums::of_scalar(x),
            LossValue::Terms(a) => Nums::of_array(a),
        }
    }
    pub(crate) fn of_bias(b: &'a Bias) -> Self {
        match b {
            Bias::Scalar(x) => Nums::of_scalar(x),
            Bias::Vector(v) => Nums {
                dims: Dims::Flat(v.len()),
                data: Cow::Borrowed(v),
            },
        }
    }
    /// f applied to every element; `None` when a result is not finite.
    pub(crate) fn map(&self, f: impl Fn(f64) -> f64) -> Option<Nums<'static>> {
        let data: Vec<f64> = self.data.iter().map(|&x| f(x)).collect();
        data.iter().all(|x| x.is_finite()).then_some(Nums {
            dims: self.dims,
            data: Cow::Owned(data),
        })
    }
}

impl Outcome {
    /// The reference of `field` (`None`: this result has no such field).
    pub(crate) fn expected(&self, field: Field) -> Option<Expected<'_>> {
        use Expected::*;
        Some(match (self, field) {
            (Outcome::Loss(r), Field::Loss) => Numbers(Nums::of_loss(&r.loss)),
            (Outcome::Loss(r), Field::Gradient) => Numbers(Nums::of_array(r.gradient.as_ref()?)),
            (Outcome::Gradient { loss, .. }, Field::Loss) => Numbers(Nums::of_loss(loss)),
            (Outcome::Gradient { activations, .. }, Field::Activations) => {
                Numbers(Nums::of_array(activations.as_ref()?))
            }
            (Outcome::Gradient { d_predictions, .. }, Field::DPredictions) => {
                Numbers(Nums::of_array(d_predictions))
            }
            (Outcome::Gradient { d_logits, .. }, Field::DLogits) => {
                Numbers(Nums::of_array(d_logits.as_ref()?))
            }
            (Outcome::Train(r), Field::Iterations) => Count(r.iterations),
            (Outcome::Train(r), Field::StopReason) => Text(r.stop_reason.name()),
            (Outcome::Train(r), Field::Converged) => Flag(r.converged),
            (Outcome::Train(r), Field::FinalWeights) => {
                Numbers(Nums::of_array(&r.final_state.weights))
            }
            (Outcome::Train(r), Field::FinalBias) => Numbers(Nums::of_bias(&r.final_state.bias)),
            (Outcome::Train(r), Field::FinalLoss) => Numbers(Nums::of_scalar(&r.final_state.loss)),
            (Outcome::Train(r), Field::FinalIteration) => Count(r.final_state.iteration),
            (Outcome::Train(r), Field::Trace) => Rows(&r.trace),
            _ => return None,
        })
    }
}

impl Task {
    /// Which endpoint the task is a body of.
    pub fn task_type(&self) -> TaskType {
        match self {
            Task::Loss(_) => TaskType::Loss,
            Task::Gradient(_) => TaskType::Gradient,
            Task::Train(_) => TaskType::Train,
        }
    }

    /// The loss kind the task evaluates.
    pub fn kind(&self) -> LossKind {
        match self {
            Task::Loss(t) => t.kind,
            Task::Gradient(t) => t.loss,
            Task::Train(t) => t.spec.loss,
        }
    }

    /// The task's params.
    pub fn params(&self) -> &Params {
        match self {
            Task::Loss(t) => &t.params,
            Task::Gradient(t) => &t.params,
            Task::Train(t) => &t.spec.params,
        }
    }

    /// Whether the endpoint's answer to this task has `field` (`d_logits` and
    /// `activations` need logits).
    pub fn can_produce(&self, field: Field) -> bool {
        match (self, field) {
            (Task::Gradient(t), Field::Activations | Field::DLogits) => t.logits.is_some(),
            _ => true,
        }
    }

    pub(crate) fn cannot_produce_message(&self, field: Field) -> String {
        format!(
            "this task gives predictions, not logits: its answer has no {} to claim",
            &field.pointer()[1..]
        )
    }

    /// The task with one setting changed; `None` when the change does not apply.
    pub(crate) fn changed(&self, change: &Change) -> Option<Task> {
        let mut t = self.clone();
        match (&mut t, change) {
            (Task::Loss(l), Change::Reduction(r)) => l.reduction = *r,
            (Task::Gradient(g), Change::Reduction(r)) => g.reduction = *r,
            (_, Change::LogBase(base)) => {
                let p = match base {
                    None => self.params().without("log_base"),
                    Some(b) => self.params().with("log_base", ParamValue::Number(*b)),
                };
                *t.params_mut() = p;
            }
            (Task::Loss(l), Change::Swapped) => std::mem::swap(&mut l.predictions, &mut l.targets),
            (
                Task::Gradient(GradientTask {
                    predictions: Some(a),
                    logits: None,
                    targets,
                    ..
                }),
                Change::Swapped,
            ) => std::mem::swap(a, targets),
            (Task::Loss(l), Change::FromLogits(f)) => l.from_logits = *f,
            (_, Change::DropWeights(names)) => {
                for name in names {
                    if *name == "weights" {
                        match &mut t {
                            Task::Loss(l) => l.weights = None,
                            Task::Gradient(g) => g.weights = None,
                            Task::Train(_) => return None,
                        }
                    } else {
                        let p = t.params().without(name);
                        *t.params_mut() = p;
                    }
                }
            }
            (Task::Loss(l), Change::Kind(k)) => l.kind = *k,
            (Task::Gradient(g), Change::Kind(k)) => g.loss = *k,
            (Task::Train(tr), Change::Kind(k)) => tr.spec.loss = *k,
            (Task::Train(tr), Change::UseBias(b)) => tr.spec.use_bias = *b,
            (Task::Train(tr), Change::ReverseUpdates) => tr.reversed = true,
            _ => return None,
        }
        Some(t)
    }

    fn params_mut(&mut self) -> &mut Params {
        match self {
            Task::Loss(t) => &mut t.params,
            Task::Gradient(t) => &mut t.params,
            Task::Train(t) => &mut t.spec.params,
        }
    }

    /// The endpoint's result for this task (errors as the endpoint words them,
    /// pointers into the task body).
    pub(crate) fn reference(
        &self,
        wants: &Wants,
        cancel: &Cancel,
    ) -> Result<Outcome, ComputeError> {
        match self {
            Task::Loss(t) => {
                let spec = LossSpec::new(t.kind, &t.params, t.from_logits)?;
                spec.evaluate(
                    &t.predictions,
                    &t.targets,
                    t.reduction,
                    t.weights.as_deref(),
                    wants.gradient,
                )
                .map(Outcome::Loss)
            }
            Task::Gradient(t) => {
                let r = gradient(&t.spec())?;
                Ok(Outcome::Gradient {
                    loss: r.loss,
                    activations: r.activations,
                    d_predictions: r.d_predictions,
                    d_logits: r.d_logits,
                })
            }
            Task::Train(t) => {
                let mut run =
                    prepare(t.spec.clone(), &t.limits)?.trace_states(wants.states.clone());
                if t.reversed {
                    run = run.reverse_updates();
                }
                run.run(cancel).map(Outcome::Train)
            }
        }
    }
}

/// A task's error as an error of the item: its pointer under `/task/{type}`.
pub(crate) fn task_error(e: ComputeError, ttype: TaskType) -> ComputeError {
    if e.kind != crate::compute::error::ErrorKind::Invalid {
        return e;
    }
    ComputeError {
        field: format!("/task/{}{}", ttype.name(), e.field),
        ..e
    }
}
