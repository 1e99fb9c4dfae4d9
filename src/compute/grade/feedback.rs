//! The paragraph a student reads for one item: what was right, what was not (the first
//! mismatching element with its pointer), and the diagnosis in plain words. With
//! `reveal: "none"` it holds no number from the answer or the reference; with `diff`
//! it may say what the student gave and the error allowed there, with `expected` also
//! the expected value.

use std::fmt::Write;

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

/// Appends `field` in a student's words, from its pointer (`/final/loss` → "final loss").
fn push_words(out: &mut String, field: &str) {
    for ch in field.trim_start_matches('/').chars() {
        out.push(if ch == '/' { ' ' } else { ch });
    }
}

/// Appends the fields' words joined as a list ("a", "a and b", "a, b and c").
fn push_list<'c>(out: &mut String, n: usize, fields: impl Iterator<Item = &'c str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == n { " and " } else { ", " });
        }
        push_words(out, field);
    }
}

/// Appends a number as a student reads it: plain, or in exponent form when very small or
/// large (always the shortest text that reads back to the same f64).
fn push_number(out: &mut String, x: f64) {
    // writing into a String cannot fail
    let _ = if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e15) {
        write!(out, "{x:e}")
    } else {
        write!(out, "{x}")
    };
}

fn push_value(out: &mut String, v: &Value) {
    let _ = match v {
        Value::Number(x) => {
            push_number(out, *x);
            Ok(())
        }
        Value::Text(s) => write!(out, "{s:?}"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Null => {
            out.push_str("null");
            Ok(())
        }
        other => {
            out.push_str(&other.describe());
            Ok(())
        }
    };
}

/// Appends a reference value that reads as one token; false when it does not.
fn push_shown(out: &mut String, s: &Shown) -> bool {
    let _ = match s {
        Shown::Numbers { data, .. } if data.len() == 1 => {
            push_number(out, data[0]);
            Ok(())
        }
        Shown::Count(n) => write!(out, "{n}"),
        Shown::Text(t) => write!(out, "{t:?}"),
        Shown::Flag(b) => write!(out, "{b}"),
        _ => return false,
    };
    true
}

/// Appends where and how a check first fails, in words.
fn push_mismatch(out: &mut String, check: &Check, m: &Mismatch, reveal: Reveal) {
    push_words(out, check.field);
    out.push_str(" (");
    out.push_str(&check.message);
    if m.at != check.field && !check.message.contains(&m.at) {
        out.push_str(", first at ");
        out.push_str(&m.at);
    }
    if reveal != Reveal::None {
        if let Some(g) = &m.got {
            out.push_str("; you gave ");
            push_value(out, g);
        }
        if let Some(e) = &m.expected {
            let mark = out.len();
            out.push_str(", expected ");
            if !push_shown(out, e) {
                out.truncate(mark);
            }
        }
        if let Some(a) = m.allowed {
            out.push_str(", allowed error ");
            push_number(out, a);
        }
    }
    out.push(')');
}

/// The paragraph for an item (built in one buffer: it is written for every item).
pub fn paragraph(checks: &[Check], diagnosis: &[Diagnosis], reveal: Reveal) -> String {
    let mut text = String::with_capacity(160);
    let right = || checks.iter().filter(|c| c.passed).map(|c| c.field);
    let n_right = right().count();
    if n_right == checks.len() {
        text.push_str("Correct: your ");
        push_list(&mut text, n_right, right());
        text.push_str(if n_right == 1 { " agrees" } else { " agree" });
        text.push_str(" with losslab's result within the tolerance.");
        return text;
    }
    if n_right > 0 {
        text.push_str("Right: ");
        push_list(&mut text, n_right, right());
        text.push_str(". ");
    }
    text.push_str("Not right: ");
    for (i, c) in checks.iter().filter(|c| !c.passed).enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        match &c.first_mismatch {
            Some(m) => push_mismatch(&mut text, c, m, reveal),
            None => {
                push_words(&mut text, c.field);
                text.push_str(" (");
                text.push_str(&c.message);
                text.push(')');
            }
        }
    }
    text.push('.');
    if diagnosis.is_empty() {
        text.push_str(
            " None of the classic mistakes explains it: recheck the formula and each step of the computation.",
        );
    } else {
        for d in diagnosis {
            text.push_str(" Your ");
            push_words(&mut text, d.field);
            text.push_str(": ");
            text.push_str(hint(d.mistake));
            text.push_str(" (");
            text.push_str(d.mistake.id());
            text.push_str(").");
        }
    }
    text
}
