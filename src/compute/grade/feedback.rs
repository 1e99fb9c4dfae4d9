//! The paragraph a student reads for one item: what was right, what was not (the first
//! mismatching element with its pointer), and the diagnosis in plain words. With
//! `reveal: "none"` it holds no number from the answer or the reference; with `diff`
//! it may say what the student gave and the error allowed there, with `expected` also
//! the expected value.

use super::compare::{Check, Mismatch, Shown};
use super::mistakes::{Diagnosis, Mistake};
use super::{Reveal, Value};

/// The diagnosis in a student's words.
pub fn hint(mistake: Mistake) -> &'static str {
    match mistake {
        Mistake::HalfFactor => {
            "it is exactly half the expected value: you used a ½ the task does not have (the textbook's ½·(a − y)² where the task asks for (a − y)²)"
        }
        Mistake::DoubleFactor => {
            "it is exactly twice the expected value: a factor 2 too many (drop the 2, or keep the ½ the task has)"
        }
        Mistake::SumInsteadOfMean => {
            "it is the sum of the terms: the task takes their mean, so divide by their count"
        }
        Mistake::MeanInsteadOfSum => {
            "it is the mean of the terms: the task takes their sum, so do not divide by their count"
        }
        Mistake::SignFlipped => {
            "it has the opposite sign: compute a − y, not y − a (and keep the minus in front of a log-likelihood)"
        }
        Mistake::LogBase => {
            "it uses another logarithm: use the task's log base (the natural log unless params.log_base says otherwise)"
        }
        Mistake::KlReversed => {
            "it is KL(predictions‖targets): kl_div is KL(targets‖predictions) = Σ y·log(y / a)"
        }
        Mistake::LogitsAsProbabilities => {
            "you read the predictions as probabilities, but the task gives logits (from_logits: true): apply the sigmoid or softmax first, or use the log-sum-exp form"
        }
        Mistake::ProbabilitiesAsLogits => {
            "you read the predictions as logits, but they are probabilities already (from_logits: false): do not apply a sigmoid or softmax again"
        }
        Mistake::WeightsIgnored => {
            "you left out the weights: multiply each term by its weight (and divide a mean by the sum of the weights)"
        }
        Mistake::SquareInsteadOfAbs => "you squared the residual: the task (mae) takes |a − y|",
        Mistake::AbsInsteadOfSquare => "you took |a − y|: the task (mse) squares the residual",
        Mistake::RootTaken => {
            "you took a square root (RMSE): the task asks for the mean squared error itself"
        }
        Mistake::ActivationDerivativeMissing => {
            "your dL/dz equals dL/da: multiply by the activation's derivative (the chain rule: dL/dz = dL/da · da/dz)"
        }
        Mistake::WrtLogits => {
            "your dL/da equals dL/dz: the task asks for the gradient with respect to the predictions a, before the activation's derivative"
        }
        Mistake::BiasTrained => {
            "your run trained the bias: the task keeps it fixed (use_bias: false)"
        }
        Mistake::BiasFrozen => "your run kept the bias fixed: the task trains it (use_bias: true)",
        Mistake::OffByOne => {
            "your count is off by one: count the updates (the index of the final state), not the states"
        }
        Mistake::GradientAscent => "your run climbs the loss: the update is w − η·∇L, not w + η·∇L",
    }
}

/// `field` in a student's words, from its pointer.
fn words(field: &str) -> String {
    field.trim_start_matches('/').replace('/', " ")
}

fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A number as a student reads it: plain, or in exponent form when very small or large
/// (always the shortest text that reads back to the same f64).
fn number(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e15) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Number(x) => number(*x),
        Value::Text(s) => format!("{s:?}"),
        Value::Bool(b) => format!("{b}"),
        Value::Null => "null".into(),
        other => other.describe(),
    }
}

fn shown_text(s: &Shown) -> Option<String> {
    match s {
        Shown::Numbers { data, .. } if data.len() == 1 => Some(number(data[0])),
        Shown::Count(n) => Some(format!("{n}")),
        Shown::Text(t) => Some(format!("{t:?}")),
        Shown::Flag(b) => Some(format!("{b}")),
        _ => None,
    }
}

/// Where and how a check first fails, in words.
fn mismatch_text(check: &Check, m: &Mismatch, reveal: Reveal) -> String {
    let mut s = format!("{} ({}", words(check.field), check.message);
    if m.at != check.field && !check.message.contains(&m.at) {
        s.push_str(&format!(", first at {}", m.at));
    }
    if reveal != Reveal::None {
        if let Some(g) = &m.got {
            s.push_str(&format!("; you gave {}", value_text(g)));
        }
        if let Some(e) = m.expected.as_ref().and_then(shown_text) {
            s.push_str(&format!(", expected {e}"));
        }
        if let Some(a) = m.allowed {
            s.push_str(&format!(", allowed error {}", number(a)));
        }
    }
    s.push(')');
    s
}

/// The paragraph for an item.
pub fn paragraph(checks: &[Check], diagnosis: &[Diagnosis], reveal: Reveal) -> String {
    let right: Vec<String> = checks
        .iter()
        .filter(|c| c.passed)
        .map(|c| words(c.field))
        .collect();
    let wrong: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    if wrong.is_empty() {
        return format!(
            "Correct: your {} {} with losslab's result within the tolerance.",
            join(&right),
            if right.len() == 1 { "agrees" } else { "agree" }
        );
    }
    let mut text = String::new();
    if !right.is_empty() {
        text.push_str(&format!("Right: {}. ", join(&right)));
    }
    let not: Vec<String> = wrong
        .iter()
        .map(|c| match &c.first_mismatch {
            Some(m) => mismatch_text(c, m, reveal),
            None => format!("{} ({})", words(c.field), c.message),
        })
        .collect();
    text.push_str(&format!("Not right: {}.", not.join("; ")));
    if diagnosis.is_empty() {
        text.push_str(
            " None of the classic mistakes explains it: recheck the formula and each step of the computation.",
        );
    } else {
        for d in diagnosis {
            text.push_str(&format!(
                " Your {}: {} ({}).",
                words(d.field),
                hint(d.mistake),
                d.mistake.id()
            ));
        }
    }
    text
}
