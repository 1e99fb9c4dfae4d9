//! Each mistake built the way a student makes it — the compute core with the setting
//! changed — gets its id, and the correct answer gets none; the tolerance edges,
//! shapes, untrusted values, partial scores and trace divergence.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::compute::activation::Activation;
use crate::compute::array::Array;
use crate::compute::loss::{LossKind, LossSpec, LossValue};
use crate::compute::params::{ParamValue, Params};
use crate::compute::reduction::Reduction;
use crate::compute::train::{Init, Optimizer, StopRules, TrainLimits, TrainSpec, prepare};

fn flat(v: &[f64]) -> Array {
    Array::flat(v.to_vec())
}

fn loss_task(kind: LossKind, a: &[f64], y: &[f64]) -> LossTask {
    LossTask {
        kind,
        params: Params::default(),
        from_logits: false,
        predictions: flat(a),
        targets: flat(y),
        reduction: Reduction::Mean,
        weights: None,
    }
}

/// What a student's code computes: the same loss with their setting.
fn student_loss(t: &LossTask) -> (Value, Value) {
    let r = LossSpec::new(t.kind, &t.params, t.from_logits)
        .unwrap()
        .evaluate(
            &t.predictions,
            &t.targets,
            t.reduction,
            t.weights.as_deref(),
            true,
        )
        .unwrap();
    let loss = match r.loss {
        LossValue::Scalar(x) => Value::Number(x),
        LossValue::Terms(a) => nums(a.data()),
    };
    (loss, nums(r.gradient.unwrap().data()))
}

fn nums(xs: &[f64]) -> Value {
    Value::Array(xs.iter().map(|&x| Value::Number(x)).collect())
}

fn claim(field: Field, value: Value) -> Claim {
    Claim { field, value }
}

fn grade_one(task: Task, claims: Vec<Claim>, reveal: Reveal, partial: bool) -> ItemReport {
    let mut g = Grader::new(reveal);
    let id = g.add_task(task);
    g.grade(
        &ItemSpec {
            task: id,
            claims,
            tolerance: Tolerance::default(),
            points: 2.0,
            partial,
        },
        &Cancel::none(),
    )
    .unwrap()
}

fn ids(r: &ItemReport) -> Vec<&'static str> {
    r.diagnosis.iter().map(|d| d.mistake.id()).collect()
}

/// The task graded with the loss and gradient a student computed with `student`.
fn diagnose_loss(task: LossTask, student: LossTask) -> ItemReport {
    let (loss, gradient) = student_loss(&student);
    grade_one(
        Task::Loss(task),
        vec![claim(Field::Loss, loss), claim(Field::Gradient, gradient)],
        Reveal::Diff,
        false,
    )
}

#[test]
fn a_correct_answer_passes_with_no_diagnosis() {
    let t = loss_task(LossKind::Mse, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let r = diagnose_loss(t.clone(), t);
    assert!(r.passed);
    assert_eq!(r.score, 2.0);
    assert!(r.diagnosis.is_empty());
    assert!(r.feedback.starts_with("Correct"), "{}", r.feedback);
}

#[test]
fn the_textbook_half_mse_is_half_factor() {
    let t = loss_task(LossKind::Mse, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    // the student's l2 is the textbook's ½·r²
    let mut s = t.clone();
    s.kind = LossKind::L2;
    let r = diagnose_loss(t, s);
    assert!(!r.passed);
    assert_eq!(ids(&r), ["half_factor", "half_factor"]);
    assert_eq!(r.diagnosis[0].field, "/loss");
    assert_eq!(r.diagnosis[1].field, "/gradient");
    // and the converse: r² where the task has ½·r²
    let t = loss_task(LossKind::L2, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let mut s = t.clone();
    s.kind = LossKind::Mse;
    assert_eq!(
        ids(&diagnose_loss(t, s)),
        ["double_factor", "double_factor"]
    );
}

#[test]
fn the_other_reduction_is_named() {
    let t = loss_task(LossKind::Mae, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let mut s = t.clone();
    s.reduction = Reduction::Sum;
    assert_eq!(
        ids(&diagnose_loss(t.clone(), s)),
        ["sum_instead_of_mean", "sum_instead_of_mean"]
    );
    let mut t2 = t.clone();
    t2.reduction = Reduction::Sum;
    assert_eq!(
        ids(&diagnose_loss(t2, t)),
        ["mean_instead_of_sum", "mean_instead_of_sum"]
    );
}

#[test]
fn y_minus_a_is_sign_flipped() {
    let t = loss_task(LossKind::Mse, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let (loss, gradient) = student_loss(&t);
    let Value::Array(g) = gradient else { panic!() };
    let flipped = Value::Array(
        g.iter()
            .map(|v| Value::Number(-v.as_number().unwrap()))
            .collect(),
    );
    let r = grade_one(
        Task::Loss(t),
        vec![claim(Field::Loss, loss), claim(Field::Gradient, flipped)],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&r), ["sign_flipped"]);
    assert!(
        r.feedback.contains("compute a − y, not y − a"),
        "{}",
        r.feedback
    );
    // half of the checks passed, but without partial the item scores 0
    assert_eq!(r.score, 0.0);
}

#[test]
fn another_log_base_names_it() {
    let t = LossTask {
        params: Params::new(vec![("log_base".into(), ParamValue::Number(2.0))]),
        ..loss_task(LossKind::Bce, &[0.2, 0.9, 0.6], &[0.0, 1.0, 1.0])
    };
    let mut s = t.clone();
    s.params = Params::default();
    let r = diagnose_loss(t, s);
    assert_eq!(ids(&r), ["log_base", "log_base"]);
    assert!(
        r.diagnosis[0]
            .message
            .contains("log base e: the task uses base 2")
    );
}

#[test]
fn swapped_kl_is_kl_reversed() {
    let t = loss_task(LossKind::KlDiv, &[0.2, 0.3, 0.5], &[0.1, 0.6, 0.3]);
    let (loss, _) = student_loss(&LossTask {
        predictions: t.targets.clone(),
        targets: t.predictions.clone(),
        ..t.clone()
    });
    let r = grade_one(
        Task::Loss(t),
        vec![claim(Field::Loss, loss)],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&r), ["kl_reversed"]);
}

#[test]
fn from_logits_both_ways() {
    let t = LossTask {
        from_logits: true,
        ..loss_task(LossKind::Bce, &[0.2, 0.9, 0.6], &[0.0, 1.0, 1.0])
    };
    let s = LossTask {
        from_logits: false,
        ..t.clone()
    };
    assert_eq!(
        ids(&diagnose_loss(t.clone(), s.clone())),
        ["logits_as_probabilities", "logits_as_probabilities"]
    );
    assert_eq!(
        ids(&diagnose_loss(s, t)),
        ["probabilities_as_logits", "probabilities_as_logits"]
    );
}

#[test]
fn dropped_weights_are_weights_ignored() {
    let t = LossTask {
        weights: Some(vec![1.0, 2.0, 0.5]),
        ..loss_task(LossKind::Mse, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5])
    };
    let s = LossTask {
        weights: None,
        ..t.clone()
    };
    let r = diagnose_loss(t, s);
    assert_eq!(ids(&r), ["weights_ignored", "weights_ignored"]);
    assert!(r.diagnosis[0].message.contains("without weights"));
    let t = LossTask {
        params: Params::new(vec![(
            "class_weights".into(),
            ParamValue::Numbers(vec![1.0, 2.0, 4.0]),
        )]),
        predictions: Array::matrix(vec![0.2, 0.3, 0.5, 0.6, 0.3, 0.1], 2, 3).unwrap(),
        targets: Array::matrix(vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0], 2, 3).unwrap(),
        ..loss_task(LossKind::CrossEntropy, &[], &[])
    };
    let s = LossTask {
        params: Params::default(),
        ..t.clone()
    };
    let r = diagnose_loss(t, s);
    assert_eq!(ids(&r)[0], "weights_ignored");
    assert!(r.diagnosis[0].message.contains("class_weights"));
}

#[test]
fn mse_and_mae_swapped_both_ways() {
    let t = loss_task(LossKind::Mae, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let s = LossTask {
        kind: LossKind::Mse,
        ..t.clone()
    };
    assert_eq!(
        ids(&diagnose_loss(t.clone(), s.clone())),
        ["square_instead_of_abs", "square_instead_of_abs"]
    );
    assert_eq!(
        ids(&diagnose_loss(s, t)),
        ["abs_instead_of_square", "abs_instead_of_square"]
    );
}

#[test]
fn rmse_for_mse_is_root_taken() {
    let t = loss_task(LossKind::Mse, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let (loss, _) = student_loss(&t);
    let rmse = Value::Number(loss.as_number().unwrap().sqrt());
    let r = grade_one(
        Task::Loss(t),
        vec![claim(Field::Loss, rmse)],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&r), ["root_taken"]);
}

fn gradient_task() -> GradientTask {
    GradientTask {
        loss: LossKind::Bce,
        params: Params::default(),
        reduction: Reduction::Mean,
        weights: None,
        targets: flat(&[1.0, 0.0, 1.0]),
        predictions: None,
        logits: Some(flat(&[2.0, -1.0, 0.5])),
        activation: Some("sigmoid".into()),
        activation_params: Params::default(),
    }
}

#[test]
fn the_two_gradients_confused_both_ways() {
    let t = gradient_task();
    // the student's two gradients, from the chain rule through the sigmoid
    let r = crate::compute::chain::through_activation(
        t.loss,
        &t.params,
        &Activation::Sigmoid,
        t.logits.as_ref().unwrap(),
        &t.targets,
        t.reduction,
        None,
    )
    .unwrap();
    let da = nums(r.d_predictions.data());
    let dz = nums(r.d_logits.data());
    let rep = grade_one(
        Task::Gradient(t.clone()),
        vec![
            claim(Field::DPredictions, dz.clone()),
            claim(Field::DLogits, da.clone()),
        ],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&rep), ["activation_derivative_missing", "wrt_logits"]);
    assert_eq!(rep.diagnosis[0].field, "/d_logits");
    let ok = grade_one(
        Task::Gradient(t),
        vec![claim(Field::DPredictions, da), claim(Field::DLogits, dz)],
        Reveal::Diff,
        false,
    );
    assert!(ok.passed && ok.diagnosis.is_empty());
}

/// The textbook's single neuron (API.md): 287 iterations with the bias frozen.
fn neuron(use_bias: bool) -> TrainSpec {
    TrainSpec {
        inputs: Array::matrix(vec![1.0], 1, 1).unwrap(),
        targets: flat(&[0.5]),
        activation: Activation::Sigmoid,
        loss: LossKind::L2,
        params: Params::default(),
        init_weights: Some(Init::Number(9f64.ln())),
        init_bias: Some(Init::Number(0.0)),
        use_bias,
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

fn train_task(spec: TrainSpec) -> Task {
    Task::Train(Box::new(TrainTask {
        spec,
        limits: TrainLimits::default(),
        reversed: false,
    }))
}

fn run(spec: TrainSpec, reversed: bool) -> crate::compute::train::TrainResult {
    let mut p = prepare(spec, &TrainLimits::default()).unwrap();
    if reversed {
        p = p.reverse_updates();
    }
    p.run(&Cancel::none()).unwrap()
}

fn count(n: u64) -> Value {
    Value::Number(n as f64)
}

#[test]
fn the_neuron_counts_287_and_143_and_the_bias_mistakes_are_named() {
    assert_eq!(run(neuron(false), false).iterations, 287);
    assert_eq!(run(neuron(true), false).iterations, 143);
    let r = grade_one(
        train_task(neuron(false)),
        vec![claim(Field::Iterations, count(143))],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&r), ["bias_trained"]);
    let r = grade_one(
        train_task(neuron(true)),
        vec![claim(Field::Iterations, count(287))],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&r), ["bias_frozen"]);
    let r = grade_one(
        train_task(neuron(false)),
        vec![claim(Field::Iterations, count(288))],
        Reveal::Diff,
        false,
    );
    assert_eq!(ids(&r), ["off_by_one"]);
    let r = grade_one(
        train_task(neuron(false)),
        vec![claim(Field::Iterations, count(287))],
        Reveal::Diff,
        false,
    );
    assert!(r.passed && r.diagnosis.is_empty());
}

fn row_value(row: &crate::compute::train::TraceRow) -> Value {
    Value::Object(vec![
        ("iteration".into(), count(row.iteration)),
        ("loss".into(), Value::Number(row.loss)),
        ("weights".into(), nums(row.weights.data())),
    ])
}

#[test]
fn an_ascending_run_is_gradient_ascent_and_diverges_at_iteration_1() {
    let spec = TrainSpec {
        max_iterations: 3,
        ..neuron(false)
    };
    let up = run(spec.clone(), true);
    let rows: Vec<Value> = up.trace.iter().map(row_value).collect();
    let r = grade_one(
        train_task(spec),
        vec![
            claim(Field::Trace, Value::Array(rows)),
            claim(Field::FinalWeights, nums(up.final_state.weights.data())),
        ],
        Reveal::Diff,
        true,
    );
    assert_eq!(ids(&r), ["gradient_ascent", "gradient_ascent"]);
    let trace = &r.checks[0];
    assert!(!trace.passed);
    // state 0 is the same for both runs: the divergence is row 1
    assert_eq!(trace.first_mismatch.as_ref().unwrap().at, "/trace/1/loss");
    assert_eq!(trace.first_mismatch.as_ref().unwrap().iteration, Some(1));
    assert_eq!(trace.mismatches, 3);
    assert_eq!(trace.fraction, 0.25);
    // partial: 2 points × mean(1/4, 0)
    assert_eq!(r.score, 0.25);
}

#[test]
fn trace_divergence_at_state_0_in_the_middle_and_past_the_end() {
    let spec = neuron(false);
    let reference = run(spec.clone(), false);
    let row = |i: usize| row_value(&reference.trace[i]);
    let bad = |i: usize| {
        let mut v = row_value(&reference.trace[i]);
        if let Value::Object(m) = &mut v {
            m[1].1 = Value::Number(1.0);
        }
        v
    };
    let at = |rows: Vec<Value>| {
        let r = grade_one(
            train_task(spec.clone()),
            vec![claim(Field::Trace, Value::Array(rows))],
            Reveal::Diff,
            true,
        );
        let c = r.checks[0].clone();
        (c.passed, c.first_mismatch.map(|m| m.at), c.fraction)
    };
    assert_eq!(at(vec![row(0), row(10), row(287)]), (true, None, 1.0));
    assert_eq!(
        at(vec![bad(0), row(10)]),
        (false, Some("/trace/0/loss".into()), 0.0)
    );
    assert_eq!(
        at(vec![row(0), bad(100), row(200), row(287)]),
        (false, Some("/trace/1/loss".into()), 0.25)
    );
    // a claimed state past the end of the run (it stopped at 287)
    let mut past = row(287);
    if let Value::Object(m) = &mut past {
        m[0].1 = count(300);
    }
    assert_eq!(
        at(vec![row(0), past]),
        (false, Some("/trace/1/iteration".into()), 0.5)
    );
}

fn one_number(tol: Tolerance, got: f64, expected: f64) -> bool {
    let nums = task::Nums::of_scalar(&expected);
    compare::numbers("/loss", &Value::Number(got), &nums, tol, Reveal::Diff).passed
}

#[test]
fn the_tolerance_edge_is_inclusive_and_expected_zero_uses_atol() {
    let tol = Tolerance {
        rtol: 0.25,
        atol: 0.5,
    };
    // |got − expected| = atol + rtol·|expected| exactly (all dyadic: no rounding)
    assert!(one_number(tol, 3.0, 2.0));
    assert!(one_number(tol, 1.0, 2.0));
    assert!(!one_number(tol, 3.0 + f64::EPSILON * 4.0, 2.0));
    // expected 0: atol alone; rtol is relative to the reference, not the claim
    assert!(one_number(tol, 0.5, 0.0));
    assert!(!one_number(tol, 0.5000001, 0.0));
    assert!(!one_number(
        Tolerance {
            rtol: 0.5,
            atol: 0.0
        },
        1.0,
        0.0
    ));
}

fn judge_array(got: Value, expected: &Array) -> Check {
    compare::numbers(
        "/gradient",
        &got,
        &task::Nums::of_array(expected),
        Tolerance::default(),
        Reveal::Diff,
    )
}

#[test]
fn shapes_nulls_strings_and_missing_elements_fail_with_a_message() {
    let e = flat(&[1.0, 2.0, 3.0, 4.0]);
    let c = judge_array(nums(&[1.0, 2.0, 3.0]), &e);
    assert!(!c.passed);
    assert_eq!(c.message, "expected 4 numbers, got 3");
    assert_eq!(c.fraction, 0.0);
    let column = Value::Array(
        [1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(|&x| Value::Array(vec![Value::Number(x)]))
            .collect(),
    );
    let c = judge_array(column, &e);
    assert_eq!(c.message, "expected 4 numbers, got 4 rows of 1 number");
    let mixed = Value::Array(vec![
        Value::Number(1.0),
        Value::Null,
        Value::Text("3".into()),
        Value::Number(4.0),
    ]);
    let c = judge_array(mixed, &e);
    assert_eq!(c.mismatches, 2);
    assert_eq!(c.fraction, 0.5);
    assert_eq!(c.message, "/gradient/1 is null, not a number");
    assert_eq!(c.first_mismatch.unwrap().got, Some(Value::Null));
    let m = Array::matrix(vec![1.0, 2.0], 2, 1).unwrap();
    assert!(!judge_array(nums(&[1.0, 2.0]), &m).passed);
    let c = judge_array(Value::Text("1, 2, 3, 4".into()), &e);
    assert_eq!(c.message, "expected 4 numbers, got a string");
}

#[test]
fn huge_errors_are_clamped_never_infinite() {
    let e = flat(&[-f64::MAX]);
    let c = judge_array(nums(&[f64::MAX]), &e);
    assert_eq!(c.max_abs_error, Some(f64::MAX));
    assert!(c.max_rel_error.unwrap().is_finite());
}

#[test]
fn reveal_none_keeps_numbers_out_of_checks_and_feedback() {
    let t = loss_task(LossKind::Mse, &[0.5, 2.0, -1.0], &[1.0, 0.0, -1.5]);
    let r = grade_one(
        Task::Loss(t),
        vec![claim(Field::Loss, Value::Number(0.123456789))],
        Reveal::None,
        false,
    );
    let c = &r.checks[0];
    assert!(c.max_abs_error.is_none() && c.max_rel_error.is_none() && c.expected.is_none());
    let m = c.first_mismatch.as_ref().unwrap();
    assert!(m.got.is_none() && m.allowed.is_none() && m.expected.is_none());
    assert!(!r.feedback.contains("0.123456789"), "{}", r.feedback);
    assert!(!r.feedback.contains("0.833"), "{}", r.feedback);
}

#[test]
fn unknown_answer_names_and_empty_answers_are_item_errors() {
    let e = parse_answer(
        TaskType::Loss,
        Value::Object(vec![("d_logits".into(), Value::Null)]),
    )
    .unwrap_err();
    assert_eq!(e.field, "/answer/d_logits");
    let e = parse_answer(TaskType::Train, Value::Object(vec![])).unwrap_err();
    assert_eq!(e.field, "/answer");
    // d_logits from a task with predictions: a field this task cannot produce
    let t = GradientTask {
        predictions: Some(flat(&[0.5, 0.5, 0.5])),
        logits: None,
        activation: None,
        ..gradient_task()
    };
    let mut g = Grader::new(Reveal::Diff);
    let id = g.add_task(Task::Gradient(t));
    let e = g
        .grade(
            &ItemSpec {
                task: id,
                claims: vec![claim(Field::DLogits, nums(&[0.0, 0.0, 0.0]))],
                tolerance: Tolerance::default(),
                points: 1.0,
                partial: false,
            },
            &Cancel::none(),
        )
        .unwrap_err();
    assert_eq!(e.field, "/answer/d_logits");
}

#[test]
fn a_task_error_points_into_the_task() {
    let t = loss_task(LossKind::Bce, &[0.5, 2.0], &[1.0, 0.0]);
    let mut g = Grader::new(Reveal::Diff);
    let id = g.add_task(Task::Loss(t));
    let e = g
        .grade(
            &ItemSpec {
                task: id,
                claims: vec![claim(Field::Loss, Value::Number(1.0))],
                tolerance: Tolerance::default(),
                points: 1.0,
                partial: false,
            },
            &Cancel::none(),
        )
        .unwrap_err();
    assert_eq!(e.field, "/task/loss/predictions/1");
}

#[test]
fn passes_agrees_with_the_full_judgement_on_edges_shapes_and_untrusted_values() {
    use super::compare::{Dims, judge_expected, owned, passes};
    use super::task::Expected;
    let tol = Tolerance::default();
    let n = |x: f64| Value::Number(x);
    let edge = 1.0 + (1e-8 + 1e-5 * 1.0);
    let refs = [
        (Dims::Scalar, vec![1.0]),
        (Dims::Scalar, vec![0.0]),
        (Dims::Flat(2), vec![1.0, -2.0]),
        (Dims::Matrix(2, 1), vec![1.0, -2.0]),
        (Dims::Scalar, vec![f64::MAX]),
    ];
    let claims = [
        n(1.0),
        n(edge),
        n(edge + 1e-15),
        n(1e-8),
        n(-1e-8 - 1e-20),
        n(f64::MAX),
        n(-f64::MAX),
        Value::Null,
        Value::Text("1".into()),
        Value::Array(vec![n(1.0), n(-2.0)]),
        Value::Array(vec![n(1.0), n(-2.0 + 1e-6)]),
        Value::Array(vec![n(1.0), Value::Null]),
        Value::Array(vec![n(1.0)]),
        Value::Array(vec![
            Value::Array(vec![n(1.0)]),
            Value::Array(vec![n(-2.0)]),
        ]),
        Value::Array(vec![Value::Array(vec![n(1.0), n(-2.0)])]),
        Value::Object(vec![("loss".into(), n(1.0))]),
    ];
    let mut seen = [0usize; 2];
    for (dims, data) in &refs {
        for got in &claims {
            let exp = Expected::Numbers(owned(*dims, data.clone()));
            let full = judge_expected(Field::Loss, got, &exp, tol, Reveal::Expected).passed;
            assert_eq!(
                passes(Field::Loss, got, &exp, tol),
                full,
                "{dims:?} {data:?} {got:?}"
            );
            seen[full as usize] += 1;
        }
    }
    // both verdicts occur
    assert!(seen[0] > 0 && seen[1] > 5, "{seen:?}");
}
