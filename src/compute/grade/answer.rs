//! The claimed fields (API.md, `POST /grade`, answer fields): which names each task
//! type takes, each present field one check. The names are fixed by the contract; any
//! other name is an error of the item (at `/answer/name`). The values are untrusted and
//! judged later, never rejected here.

use super::Value;
use crate::compute::error::ComputeError;

/// Which endpoint a task is a body of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskType {
    /// A `POST /loss/{kind}` body.
    Loss,
    /// A `POST /gradient` body.
    Gradient,
    /// A `POST /train` body.
    Train,
}

impl TaskType {
    /// The task's key in an item (`{"loss": {...}}`).
    pub fn name(self) -> &'static str {
        match self {
            TaskType::Loss => "loss",
            TaskType::Gradient => "gradient",
            TaskType::Train => "train",
        }
    }

    /// The answer names this type takes, in API.md's order.
    pub fn answer_names(self) -> &'static [&'static str] {
        match self {
            TaskType::Loss => &["loss", "gradient"],
            TaskType::Gradient => &["loss", "activations", "d_predictions", "d_logits"],
            TaskType::Train => &["iterations", "stop_reason", "converged", "final", "trace"],
        }
    }
}

/// A claimable field: one check each. `final`'s members are fields of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `loss` (every task type).
    Loss,
    /// `gradient` (a loss task).
    Gradient,
    /// `activations` (a gradient task from logits).
    Activations,
    /// `d_predictions` (a gradient task).
    DPredictions,
    /// `d_logits` (a gradient task from logits).
    DLogits,
    /// `iterations` (a train task; compared for equality).
    Iterations,
    /// `stop_reason` (a train task; compared for equality).
    StopReason,
    /// `converged` (a train task; compared for equality).
    Converged,
    /// `final` that is not an object: a failing check of its own.
    Final,
    /// `/final/weights`.
    FinalWeights,
    /// `/final/bias`.
    FinalBias,
    /// `/final/loss`.
    FinalLoss,
    /// `/final/iteration`.
    FinalIteration,
    /// `trace`: rows matched by `iteration`.
    Trace,
}

/// The members of a claimed `final`, and of a claimed trace row besides `iteration`.
pub const FINAL_NAMES: [&str; 4] = ["weights", "bias", "loss", "iteration"];
/// The members a claimed trace row may have besides `iteration`.
pub const ROW_NAMES: [&str; 5] = [
    "loss",
    "weights",
    "bias",
    "gradient_weights",
    "gradient_bias",
];

impl Field {
    /// The JSON pointer into the answer.
    pub fn pointer(self) -> &'static str {
        match self {
            Field::Loss => "/loss",
            Field::Gradient => "/gradient",
            Field::Activations => "/activations",
            Field::DPredictions => "/d_predictions",
            Field::DLogits => "/d_logits",
            Field::Iterations => "/iterations",
            Field::StopReason => "/stop_reason",
            Field::Converged => "/converged",
            Field::Final => "/final",
            Field::FinalWeights => "/final/weights",
            Field::FinalBias => "/final/bias",
            Field::FinalLoss => "/final/loss",
            Field::FinalIteration => "/final/iteration",
            Field::Trace => "/trace",
        }
    }

    /// The field's name for a student ("loss", "final weights").
    pub fn words(self) -> &'static str {
        match self {
            Field::Loss => "loss",
            Field::Gradient => "gradient",
            Field::Activations => "activations",
            Field::DPredictions => "d_predictions (dL/da)",
            Field::DLogits => "d_logits (dL/dz)",
            Field::Iterations => "number of iterations",
            Field::StopReason => "stop reason",
            Field::Converged => "converged flag",
            Field::Final => "final state",
            Field::FinalWeights => "final weights",
            Field::FinalBias => "final bias",
            Field::FinalLoss => "final loss",
            Field::FinalIteration => "final iteration",
            Field::Trace => "trace",
        }
    }

    /// Whether a failed check of this field gets a diagnosis (API.md: `stop_reason` and
    /// `converged` get none).
    pub fn diagnosable(self) -> bool {
        !matches!(self, Field::StopReason | Field::Converged | Field::Final)
    }

    /// Judged by equality, not tolerance.
    pub fn is_equality(self) -> bool {
        matches!(
            self,
            Field::Iterations | Field::StopReason | Field::Converged | Field::FinalIteration
        )
    }
}

/// One claimed field and its value as sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// Which check the claim is.
    pub field: Field,
    /// The claimed value, untrusted.
    pub value: Value,
}

/// The claims of an answer, in the order sent. Errors (pointers from the item):
/// `/answer` not an object or claiming nothing, `/answer/name` an unknown name,
/// `/answer/final/name`, `/answer/trace/j/name` an unknown member.
pub fn parse_answer(ttype: TaskType, answer: Value) -> Result<Vec<Claim>, ComputeError> {
    let names = ttype.answer_names();
    let Value::Object(members) = answer else {
        return Err(ComputeError::invalid(
            "/answer",
            format!(
                "the answer must be an object naming the claimed fields; valid for a {} task: {}",
                ttype.name(),
                names.join(", ")
            ),
        ));
    };
    let mut claims = Vec::with_capacity(members.len());
    for (name, value) in members {
        let field = match (ttype, name.as_str()) {
            (TaskType::Loss | TaskType::Gradient, "loss") => Field::Loss,
            (TaskType::Loss, "gradient") => Field::Gradient,
            (TaskType::Gradient, "activations") => Field::Activations,
            (TaskType::Gradient, "d_predictions") => Field::DPredictions,
            (TaskType::Gradient, "d_logits") => Field::DLogits,
            (TaskType::Train, "iterations") => Field::Iterations,
            (TaskType::Train, "stop_reason") => Field::StopReason,
            (TaskType::Train, "converged") => Field::Converged,
            (TaskType::Train, "final") => {
                final_claims(value, &mut claims)?;
                continue;
            }
            (TaskType::Train, "trace") => {
                check_rows(&value)?;
                Field::Trace
            }
            _ => {
                return Err(ComputeError::invalid(
                    format!("/answer/{}", escape(&name)),
                    format!(
                        "unknown answer field for a {} task; valid: {}",
                        ttype.name(),
                        names.join(", ")
                    ),
                ));
            }
        };
        push(&mut claims, field, value);
    }
    if claims.is_empty() {
        return Err(ComputeError::invalid(
            "/answer",
            format!(
                "the answer claims nothing; name at least one of {}",
                names.join(", ")
            ),
        ));
    }
    Ok(claims)
}

/// A repeated name keeps its first place and its last value (as a JSON parser would).
fn push(claims: &mut Vec<Claim>, field: Field, value: Value) {
    match claims.iter_mut().find(|c| c.field == field) {
        Some(c) => c.value = value,
        None => claims.push(Claim { field, value }),
    }
}

fn final_claims(value: Value, claims: &mut Vec<Claim>) -> Result<(), ComputeError> {
    let Value::Object(members) = value else {
        // not an object: judged (and failed) as a check of its own
        push(claims, Field::Final, value);
        return Ok(());
    };
    for (name, v) in members {
        let field = match name.as_str() {
            "weights" => Field::FinalWeights,
            "bias" => Field::FinalBias,
            "loss" => Field::FinalLoss,
            "iteration" => Field::FinalIteration,
            _ => {
                return Err(ComputeError::invalid(
                    format!("/answer/final/{}", escape(&name)),
                    format!("unknown member of final; valid: {}", FINAL_NAMES.join(", ")),
                ));
            }
        };
        push(claims, field, v);
    }
    Ok(())
}

/// Unknown members of a claimed trace row are an error of the item; anything else
/// about a row (not an object, no iteration) fails that row when judged.
fn check_rows(value: &Value) -> Result<(), ComputeError> {
    let Value::Array(rows) = value else {
        return Ok(());
    };
    for (j, row) in rows.iter().enumerate() {
        if let Value::Object(members) = row {
            for (name, _) in members {
                if name != "iteration" && !ROW_NAMES.contains(&name.as_str()) {
                    return Err(ComputeError::invalid(
                        format!("/answer/trace/{j}/{}", escape(name)),
                        format!(
                            "unknown member of a trace row; valid: iteration, {}",
                            ROW_NAMES.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A name as a JSON pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The states a claimed trace names (integer-valued, ≥ 0): the reference run traces them.
pub(crate) fn claimed_states(claims: &[Claim]) -> Vec<u64> {
    let mut out = Vec::new();
    for c in claims {
        if c.field == Field::Trace
            && let Value::Array(rows) = &c.value
        {
            for row in rows {
                if let Some(i) = row.get("iteration").and_then(as_index) {
                    out.push(i);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// An integer-valued number ≥ 0 that fits a state index.
pub(crate) fn as_index(v: &Value) -> Option<u64> {
    let x = v.as_number()?;
    (x >= 0.0 && x.fract() == 0.0 && x < 1.8e19).then_some(x as u64)
}
