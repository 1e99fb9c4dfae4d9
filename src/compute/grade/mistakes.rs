//! The classic mistakes (API.md, `POST /grade`, the diagnosis table), in table order.
//!
//! Each mistake is either a pure factor of the reference (½×, 2×, −1×, √, iterations
//! ± 1, the other gradient of the same answer) or the SAME task computed with one
//! setting changed ([`Change`]: the reduction, the log base, from_logits, the weights
//! dropped, mse ↔ mae, use_bias, the update's sign) — never a second implementation
//! of a loss. They are tried only for checks that failed, and a changed task is only
//! computed when a failed check can use it; a change the task cannot take (a variant
//! that the endpoint would refuse) simply does not apply.

use std::sync::Arc;

use super::Tolerance;
use super::answer::{Claim, Field, TaskType};
use super::compare::{self, Dims};
use super::task::{Change, Expected, Outcome, Task};
use crate::compute::loss::LossKind;
use crate::compute::params::ParamValue;
use crate::compute::reduction::Reduction;

/// A mistake of the table; the discriminant is its place in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mistake {
    /// `half_factor`: ½× the reference (½·MSE for MSE).
    HalfFactor,
    /// `double_factor`: 2× the reference.
    DoubleFactor,
    /// `sum_instead_of_mean`: the `sum` reduction where the task says `mean`.
    SumInsteadOfMean,
    /// `mean_instead_of_sum`: the `mean` reduction where the task says `sum`.
    MeanInsteadOfSum,
    /// `sign_flipped`: −1× the reference ((y − a) for (a − y)).
    SignFlipped,
    /// `log_base`: another log base among e, 2, 10.
    LogBase,
    /// `kl_reversed`: kl_div with predictions and targets swapped.
    KlReversed,
    /// `logits_as_probabilities`: `from_logits` false where the task says true.
    LogitsAsProbabilities,
    /// `probabilities_as_logits`: `from_logits` true where the task says false.
    ProbabilitiesAsLogits,
    /// `weights_ignored`: without `weights` / `class_weights` / `pos_weight`.
    WeightsIgnored,
    /// `square_instead_of_abs`: mse where the task says mae.
    SquareInsteadOfAbs,
    /// `abs_instead_of_square`: mae where the task says mse.
    AbsInsteadOfSquare,
    /// `root_taken`: √ of the reference (RMSE for MSE).
    RootTaken,
    /// `activation_derivative_missing`: a `d_logits` claim equal to d_predictions.
    ActivationDerivativeMissing,
    /// `wrt_logits`: a `d_predictions` claim equal to d_logits.
    WrtLogits,
    /// `bias_trained`: /train with `use_bias` true where the task says false.
    BiasTrained,
    /// `bias_frozen`: /train with `use_bias` false where the task says true.
    BiasFrozen,
    /// `off_by_one`: `iterations` ± 1 (updates vs states).
    OffByOne,
    /// `gradient_ascent`: /train with the update's sign reversed.
    GradientAscent,
}

impl Mistake {
    /// Every mistake, in table order.
    pub const ALL: [Mistake; 19] = [
        Mistake::HalfFactor,
        Mistake::DoubleFactor,
        Mistake::SumInsteadOfMean,
        Mistake::MeanInsteadOfSum,
        Mistake::SignFlipped,
        Mistake::LogBase,
        Mistake::KlReversed,
        Mistake::LogitsAsProbabilities,
        Mistake::ProbabilitiesAsLogits,
        Mistake::WeightsIgnored,
        Mistake::SquareInsteadOfAbs,
        Mistake::AbsInsteadOfSquare,
        Mistake::RootTaken,
        Mistake::ActivationDerivativeMissing,
        Mistake::WrtLogits,
        Mistake::BiasTrained,
        Mistake::BiasFrozen,
        Mistake::OffByOne,
        Mistake::GradientAscent,
    ];

    /// The fixed id (API.md).
    pub fn id(self) -> &'static str {
        match self {
            Mistake::HalfFactor => "half_factor",
            Mistake::DoubleFactor => "double_factor",
            Mistake::SumInsteadOfMean => "sum_instead_of_mean",
            Mistake::MeanInsteadOfSum => "mean_instead_of_sum",
            Mistake::SignFlipped => "sign_flipped",
            Mistake::LogBase => "log_base",
            Mistake::KlReversed => "kl_reversed",
            Mistake::LogitsAsProbabilities => "logits_as_probabilities",
            Mistake::ProbabilitiesAsLogits => "probabilities_as_logits",
            Mistake::WeightsIgnored => "weights_ignored",
            Mistake::SquareInsteadOfAbs => "square_instead_of_abs",
            Mistake::AbsInsteadOfSquare => "abs_instead_of_square",
            Mistake::RootTaken => "root_taken",
            Mistake::ActivationDerivativeMissing => "activation_derivative_missing",
            Mistake::WrtLogits => "wrt_logits",
            Mistake::BiasTrained => "bias_trained",
            Mistake::BiasFrozen => "bias_frozen",
            Mistake::OffByOne => "off_by_one",
            Mistake::GradientAscent => "gradient_ascent",
        }
    }
}

/// A mistake that explains a failed claim.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// The mistake whose result passes the same tolerance.
    pub mistake: Mistake,
    /// Pointer into the answer.
    pub field: &'static str,
    /// What the claim matches, and why that is wrong (no number from the answer or
    /// the reference).
    pub message: String,
}

/// How a mistake's result is made.
#[derive(Clone, Debug)]
pub(crate) enum Variant {
    /// The reference times a factor (½, 2, −1).
    Scale(f64),
    /// √ of a scalar loss.
    Root,
    /// The reference's other field (dL/da for dL/dz, and the converse).
    Other(Field),
    /// The reference's iteration count plus this.
    Iterations(i64),
    /// The task with one setting changed.
    Rerun(Change),
}

/// A variant, ready to judge claims against.
pub(crate) enum Computed {
    Pure(Variant),
    Outcome(Arc<Outcome>),
}

/// A mistake that may apply to this task, with the fields it may explain.
pub(crate) struct Candidate {
    pub mistake: Mistake,
    /// `None`: every field.
    fields: Option<&'static [Field]>,
    pub variant: Variant,
    /// Words for the message (the log base, the weights left out).
    words: String,
}

impl Candidate {
    fn new(mistake: Mistake, fields: Option<&'static [Field]>, variant: Variant) -> Self {
        Candidate {
            mistake,
            fields,
            variant,
            words: String::new(),
        }
    }

    fn words(mut self, words: String) -> Self {
        self.words = words;
        self
    }

    pub fn applies_to(&self, field: Field) -> bool {
        self.fields.is_none_or(|f| f.contains(&field))
    }

    /// The diagnosis message for `field` (as the peer words it: the field, then what
    /// the claim matches).
    pub fn message(&self, field: Field) -> String {
        let what = &field.pointer()[1..];
        let text = match self.mistake {
            Mistake::HalfFactor => {
                "is ½ of the expected value: a ½ that the task does not have (½·r² for r²)"
                    .to_string()
            }
            Mistake::DoubleFactor => {
                "is 2× the expected value: a factor 2 too many (r² for ½·r², or 2r for r)".into()
            }
            Mistake::SumInsteadOfMean => {
                "matches the sum of the terms: the task takes their mean".into()
            }
            Mistake::MeanInsteadOfSum => {
                "matches the mean of the terms: the task takes their sum".into()
            }
            Mistake::SignFlipped => {
                "has the opposite sign: (y − a) for (a − y), or a lost minus sign".into()
            }
            Mistake::LogBase => format!("matches {}", self.words),
            Mistake::KlReversed => "matches KL(Q‖P): predictions and targets swapped (kl_div is KL(targets‖predictions))".into(),
            Mistake::LogitsAsProbabilities => "matches the predictions read as probabilities: the task gives logits (from_logits true)".into(),
            Mistake::ProbabilitiesAsLogits => "matches the predictions read as logits: the task gives probabilities (from_logits false)".into(),
            Mistake::WeightsIgnored => format!(
                "matches the result without {}: the weights were ignored",
                self.words
            ),
            Mistake::SquareInsteadOfAbs => {
                "matches mse: the residual was squared where the task (mae) takes |a − y|".into()
            }
            Mistake::AbsInsteadOfSquare => {
                "matches mae: |a − y| was taken where the task (mse) squares the residual".into()
            }
            Mistake::RootTaken => "is the square root of the expected value (RMSE for MSE)".into(),
            Mistake::ActivationDerivativeMissing => "equals dL/da (d_predictions): the activation's derivative is missing from the chain rule".into(),
            Mistake::WrtLogits => "equals dL/dz (d_logits): the gradient was taken with respect to the logits".into(),
            Mistake::BiasTrained => "matches the run with the bias trained: the task keeps it fixed (use_bias false)".into(),
            Mistake::BiasFrozen => "matches the run with the bias fixed: the task trains it (use_bias true)".into(),
            Mistake::OffByOne => "is off by one: the iteration count is the index of the final state (the number of updates), not the number of states".into(),
            Mistake::GradientAscent => "matches the run with the update's sign reversed: w + η·∇ (ascent) for w − η·∇".into(),
        };
        format!("{what} {text}")
    }
}

/// The fields the factors and the sign apply to (loss and gradient values).
fn value_fields(t: TaskType) -> &'static [Field] {
    match t {
        TaskType::Loss => &[Field::Loss, Field::Gradient],
        TaskType::Gradient => &[Field::Loss, Field::DPredictions, Field::DLogits],
        TaskType::Train => &[Field::FinalLoss],
    }
}

/// √ applies to a scalar loss.
const LOSS_FIELDS: &[Field] = &[Field::Loss, Field::FinalLoss];

/// The log bases a student may have used instead of the task's.
const BASES: [(&str, Option<f64>); 3] = [("e", None), ("2", Some(2.0)), ("10", Some(10.0))];

/// Every mistake of the table that applies to `task`, in table order.
pub(crate) fn candidates(task: &Task, reference: &Outcome) -> Vec<Candidate> {
    use Mistake::*;
    let ttype = task.task_type();
    let kind = task.kind();
    let params = task.params();
    let values = Some(value_fields(ttype));
    let mut out = vec![
        Candidate::new(HalfFactor, values, Variant::Scale(0.5)),
        Candidate::new(DoubleFactor, values, Variant::Scale(2.0)),
    ];
    let reduction = match task {
        Task::Loss(t) => Some(t.reduction),
        Task::Gradient(t) => Some(t.reduction),
        Task::Train(_) => None,
    };
    match reduction {
        Some(Reduction::Mean) => out.push(Candidate::new(
            SumInsteadOfMean,
            None,
            Variant::Rerun(Change::Reduction(Reduction::Sum)),
        )),
        Some(Reduction::Sum) => out.push(Candidate::new(
            MeanInsteadOfSum,
            None,
            Variant::Rerun(Change::Reduction(Reduction::Mean)),
        )),
        _ => {}
    }
    out.push(Candidate::new(SignFlipped, values, Variant::Scale(-1.0)));
    if kind.info().params.iter().any(|p| p.name == "log_base") {
        let task_base = match params.get("log_base") {
            Some(ParamValue::Number(b)) => Some(*b),
            _ => None,
        };
        let task_words = task_base.map_or("e".to_string(), |b| format!("{b}"));
        for (name, base) in BASES {
            if base != task_base {
                out.push(
                    Candidate::new(LogBase, None, Variant::Rerun(Change::LogBase(base)))
                        .words(format!("log base {name}: the task uses base {task_words}")),
                );
            }
        }
    }
    let swappable = match task {
        Task::Loss(_) => true,
        Task::Gradient(g) => g.predictions.is_some() && g.logits.is_none(),
        Task::Train(_) => false,
    };
    if kind == LossKind::KlDiv && swappable {
        out.push(Candidate::new(
            KlReversed,
            Some(&[Field::Loss]),
            Variant::Rerun(Change::Swapped),
        ));
    }
    if let Task::Loss(t) = task
        && kind.info().from_logits
    {
        out.push(if t.from_logits {
            Candidate::new(
                LogitsAsProbabilities,
                None,
                Variant::Rerun(Change::FromLogits(false)),
            )
        } else {
            Candidate::new(
                ProbabilitiesAsLogits,
                None,
                Variant::Rerun(Change::FromLogits(true)),
            )
        });
    }
    let has_weights = match task {
        Task::Loss(t) => t.weights.is_some(),
        Task::Gradient(t) => t.weights.is_some(),
        Task::Train(_) => false,
    };
    let mut dropped: Vec<&'static str> = Vec::new();
    if has_weights {
        dropped.push("weights");
    }
    for name in ["class_weights", "pos_weight"] {
        if params.get(name).is_some() {
            dropped.push(name);
        }
    }
    let mut sets: Vec<Vec<&'static str>> = dropped.iter().map(|d| vec![*d]).collect();
    if dropped.len() > 1 {
        sets.push(dropped.clone());
    }
    for set in sets {
        let words = set.join(" and ");
        out.push(
            Candidate::new(
                WeightsIgnored,
                None,
                Variant::Rerun(Change::DropWeights(set)),
            )
            .words(words),
        );
    }
    match kind {
        LossKind::Mae => out.push(Candidate::new(
            SquareInsteadOfAbs,
            None,
            Variant::Rerun(Change::Kind(LossKind::Mse)),
        )),
        LossKind::Mse => out.push(Candidate::new(
            AbsInsteadOfSquare,
            None,
            Variant::Rerun(Change::Kind(LossKind::Mae)),
        )),
        _ => {}
    }
    out.push(Candidate::new(RootTaken, Some(LOSS_FIELDS), Variant::Root));
    if let Outcome::Gradient {
        d_logits: Some(_), ..
    } = reference
    {
        out.push(Candidate::new(
            ActivationDerivativeMissing,
            Some(&[Field::DLogits]),
            Variant::Other(Field::DPredictions),
        ));
        out.push(Candidate::new(
            WrtLogits,
            Some(&[Field::DPredictions]),
            Variant::Other(Field::DLogits),
        ));
    }
    if let Task::Train(t) = task {
        out.push(if t.spec.use_bias {
            Candidate::new(BiasFrozen, None, Variant::Rerun(Change::UseBias(false)))
        } else {
            Candidate::new(BiasTrained, None, Variant::Rerun(Change::UseBias(true)))
        });
        for delta in [-1, 1] {
            out.push(Candidate::new(
                OffByOne,
                Some(&[Field::Iterations]),
                Variant::Iterations(delta),
            ));
        }
        out.push(Candidate::new(
            GradientAscent,
            None,
            Variant::Rerun(Change::ReverseUpdates),
        ));
    }
    out
}

/// Whether the variant's value of the claim's field passes the same tolerance.
pub(crate) fn explains(
    variant: &Computed,
    claim: &Claim,
    reference: &Outcome,
    tol: Tolerance,
) -> bool {
    let judge = |exp: &Expected<'_>| compare::passes(claim.field, &claim.value, exp, tol);
    match variant {
        Computed::Outcome(o) => o.expected(claim.field).is_some_and(|e| judge(&e)),
        Computed::Pure(v) => {
            let Some(exp) = reference.expected(claim.field) else {
                return false;
            };
            match (v, exp) {
                (Variant::Scale(f), Expected::Numbers(n)) => n
                    .map(|x| f * x)
                    .is_some_and(|m| judge(&Expected::Numbers(m))),
                (Variant::Root, Expected::Numbers(n)) if n.dims == Dims::Scalar => {
                    n.data[0] >= 0.0
                        && judge(&Expected::Numbers(compare::owned(
                            Dims::Scalar,
                            vec![n.data[0].sqrt()],
                        )))
                }
                (Variant::Other(f), _) => reference.expected(*f).is_some_and(|e| judge(&e)),
                (Variant::Iterations(d), Expected::Count(n)) => n
                    .checked_add_signed(*d)
                    .is_some_and(|m| judge(&Expected::Count(m))),
                _ => false,
            }
        }
    }
}
