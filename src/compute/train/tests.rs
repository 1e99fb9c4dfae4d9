//! Tests of the training loop: the textbook's single neuron, fast path = generic path
//! bit for bit, stop rules, trace sampling, divergence, mini-batches, validation.
//! (Whole runs against an independent Python reimplementation of torch.optim live in
//! tests/it/train_reference.rs.)

use super::*;
use crate::compute::error::{Cancel, ComputeError, ErrorKind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The textbook's single neuron (API.md): inputs [[1]], targets [0.5], sigmoid, l2,
/// w₀ = ln 9, b₀ = 0, learning rate 0.2.
fn neuron(use_bias: bool) -> TrainSpec {
    TrainSpec {
        inputs: Array::matrix(vec![1.0], 1, 1).unwrap(),
        targets: Array::flat(vec![0.5]),
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
        max_iterations: 10_000,
        stop: StopRules {
            loss_below: Some(0.001),
            ..StopRules::default()
        },
        trace_every: 1,
    }
}

/// x = [−2, −1, 0, 1, 2], y = [−3, 0, 0, 3, 4] (the loss chapter's regression example).
fn regression(loss: LossKind, activation: Activation) -> TrainSpec {
    TrainSpec {
        inputs: Array::flat(vec![-2.0, -1.0, 0.0, 1.0, 2.0]),
        targets: Array::flat(vec![-3.0, 0.0, 0.0, 3.0, 4.0]),
        activation,
        loss,
        params: Params::default(),
        init_weights: None,
        init_bias: None,
        use_bias: true,
        learning_rate: 0.05,
        optimizer: Optimizer::Sgd,
        batch_size: None,
        seed: None,
        max_iterations: 60,
        stop: StopRules::default(),
        trace_every: 7,
    }
}

/// A 4-sample, 2-feature, 2-output problem with matrix targets.
fn two_outputs(loss: LossKind, activation: Activation) -> TrainSpec {
    TrainSpec {
        inputs: Array::matrix(vec![0.5, -1.0, 1.5, 0.25, -0.75, 2.0, 1.0, 1.0], 4, 2).unwrap(),
        targets: Array::matrix(vec![0.2, 0.9, 0.7, 0.1, 0.4, 0.4, 0.95, 0.3], 4, 2).unwrap(),
        activation,
        loss,
        params: Params::default(),
        init_weights: Some(Init::Array(
            Array::matrix(vec![0.1, -0.2, 0.3, 0.05], 2, 2).unwrap(),
        )),
        init_bias: Some(Init::Array(Array::flat(vec![0.01, -0.02]))),
        use_bias: true,
        learning_rate: 0.3,
        optimizer: Optimizer::Sgd,
        batch_size: None,
        seed: None,
        max_iterations: 25,
        stop: StopRules::default(),
        trace_every: 1,
    }
}

fn run(spec: TrainSpec) -> TrainResult {
    prepare(spec, &TrainLimits::default())
        .expect("valid spec")
        .run(&Cancel::none())
        .expect("run")
}

fn run_generic(spec: TrainSpec) -> TrainResult {
    prepare(spec, &TrainLimits::default())
        .expect("valid spec")
        .generic_only()
        .run(&Cancel::none())
        .expect("run")
}

/// Every number of two runs, in order (iteration, loss, W, b, dW, db of each row, then
/// the final state), as bits.
fn bits(r: &TrainResult) -> Vec<(String, u64)> {
    fn bias(b: &Bias) -> Vec<f64> {
        match b {
            Bias::Scalar(x) => vec![*x],
            Bias::Vector(v) => v.clone(),
        }
    }
    let mut out = Vec::new();
    let mut push = |what: String, xs: &[f64]| {
        for (i, x) in xs.iter().enumerate() {
            out.push((format!("{what}[{i}]"), x.to_bits()));
        }
    };
    for row in &r.trace {
        let at = format!("row {}", row.iteration);
        push(format!("{at} loss"), &[row.loss]);
        push(format!("{at} weights"), row.weights.data());
        push(format!("{at} bias"), &bias(&row.bias));
        push(
            format!("{at} gradient_weights"),
            row.gradient_weights.data(),
        );
        push(format!("{at} gradient_bias"), &bias(&row.gradient_bias));
    }
    push("final loss".into(), &[r.final_state.loss]);
    push("final weights".into(), r.final_state.weights.data());
    push("final bias".into(), &bias(&r.final_state.bias));
    out
}

/// The fast path (as [`run`]) and the generic path give the same run, bit for bit.
#[track_caller]
fn assert_same_bits(spec: &TrainSpec) {
    let (fast, generic) = (run(spec.clone()), run_generic(spec.clone()));
    assert_eq!(
        (fast.iterations, fast.stop_reason, fast.trace.len()),
        (generic.iterations, generic.stop_reason, generic.trace.len())
    );
    for ((what, f), (_, g)) in bits(&fast).into_iter().zip(bits(&generic)) {
        assert_eq!(
            f,
            g,
            "{what}: fast {} ≠ generic {}",
            f64::from_bits(f),
            f64::from_bits(g)
        );
    }
}

fn err(spec: TrainSpec) -> ComputeError {
    prepare(spec, &TrainLimits::default()).expect_err("invalid spec")
}

fn flat_of(a: &Array) -> Vec<f64> {
    a.data().to_vec()
}

#[test]
fn the_textbook_neuron_stops_at_287_with_the_books_numbers() {
    let r = run(neuron(false));
    // state 0: a = σ(ln 9) = 0.9, C = ½(0.9 − 0.5)² = 0.08
    assert!(
        (r.trace[0].loss - 0.08).abs() < 1e-16,
        "{}",
        r.trace[0].loss
    );
    // w₁ = ln 9 − 0.2·(a − y)·a(1 − a) = ln 9 − 0.2·0.4·0.09 = ln 9 − 0.0072 (API.md)
    assert_eq!(flat_of(&r.trace[1].weights), vec![2.1900245773362195]);
    assert_eq!(r.iterations, 287);
    assert_eq!(r.stop_reason, StopReason::LossBelow);
    assert!(r.converged);
    assert_eq!(r.trace.len(), 288);
    assert_eq!(r.final_state.iteration, 287);
    assert!(r.final_state.loss < 0.001 && r.trace[286].loss >= 0.001);
    // the bias is not trained: it keeps b₀ = 0, its gradient is still reported
    assert_eq!(r.final_state.bias, Bias::Scalar(0.0));
    // dC/db = (a − y)·a(1 − a) = 0.4·0.09 = 0.036 (a = σ(ln 9) is 0.9 to an ulp)
    let Bias::Scalar(db) = r.trace[0].gradient_bias else {
        panic!("flat targets give a scalar bias gradient")
    };
    assert!((db - 0.036).abs() < 1e-16, "{db}");
    assert_eq!(flat_of(&r.trace[0].gradient_weights), vec![db]);
    assert_eq!(r.trace[0].weights.shape(), crate::compute::Shape::Flat(1));
}

#[test]
fn the_textbook_neuron_with_its_bias_trained_stops_at_143() {
    let r = run(neuron(true));
    assert_eq!(r.iterations, 143);
    assert_eq!(r.stop_reason, StopReason::LossBelow);
    // w and b get the same gradient (x = 1), so they move together from (ln 9, 0)
    let Bias::Scalar(b) = r.final_state.bias else {
        panic!("flat targets give a scalar bias")
    };
    let w = r.final_state.weights.data()[0];
    assert!((w - 9f64.ln() - b).abs() < 1e-12);
}

#[test]
fn the_trace_holds_every_kth_state_and_the_final_one() {
    let mut spec = regression(LossKind::L2, Activation::Identity);
    spec.max_iterations = 10;
    spec.trace_every = 3;
    let p = prepare(spec.clone(), &TrainLimits::default()).unwrap();
    assert_eq!(p.max_trace_rows(), 5);
    let r = p.run(&Cancel::none()).unwrap();
    let its: Vec<u64> = r.trace.iter().map(|t| t.iteration).collect();
    assert_eq!(its, vec![0, 3, 6, 9, 10]);
    assert_eq!(r.stop_reason, StopReason::MaxIterations);
    assert!(!r.converged);

    spec.trace_every = 5;
    let r = run(spec.clone());
    let its: Vec<u64> = r.trace.iter().map(|t| t.iteration).collect();
    assert_eq!(its, vec![0, 5, 10], "the final state is not repeated");

    spec.trace_every = 0;
    assert!(run(spec.clone()).trace.is_empty());

    spec.max_iterations = 0;
    spec.trace_every = 4;
    let r = run(spec);
    assert_eq!(r.iterations, 0);
    assert_eq!(r.trace.len(), 1);
}

#[test]
fn streaming_sends_the_same_rows_and_an_empty_trace() {
    let spec = regression(LossKind::Mse, Activation::Identity);
    let collected = run(spec.clone());
    let mut rows = Vec::new();
    let streamed = prepare(spec, &TrainLimits::default())
        .unwrap()
        .run_streaming(&Cancel::none(), &mut |row| {
            rows.push(row);
            true
        })
        .unwrap();
    assert!(streamed.trace.is_empty());
    assert_eq!(rows, collected.trace);
    assert_eq!(streamed.final_state, collected.final_state);
}

#[test]
fn a_sink_that_refuses_a_row_cancels_the_run() {
    let spec = regression(LossKind::Mse, Activation::Identity);
    let mut seen = 0;
    let e = prepare(spec, &TrainLimits::default())
        .unwrap()
        .run_streaming(&Cancel::none(), &mut |_| {
            seen += 1;
            seen < 3
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(seen, 3);
}

#[test]
fn a_set_cancel_flag_stops_the_run() {
    let flag = Arc::new(AtomicBool::new(true));
    let e = prepare(neuron(false), &TrainLimits::default())
        .unwrap()
        .run(&Cancel::new(None, Some(flag)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
}

#[test]
fn the_regression_example_converges_to_the_least_squares_line() {
    // least squares of y on x: w = Σxy/Σx² = 17/10, b = ȳ = 4/5
    let mut spec = regression(LossKind::L2, Activation::Identity);
    spec.max_iterations = 10_000;
    spec.learning_rate = 0.1;
    spec.stop.gradient_norm_below = Some(1e-12);
    let r = run(spec);
    assert_eq!(r.stop_reason, StopReason::GradientNormBelow);
    assert!((r.final_state.weights.data()[0] - 1.7).abs() < 1e-11);
    let Bias::Scalar(b) = r.final_state.bias else {
        panic!()
    };
    assert!((b - 0.8).abs() < 1e-11);
    // its mean l2 loss is ½·SSE/5 with SSE = Σy² − (Σxy)²/Σx² − (Σy)²/5 = 34 − 28.9 − 3.2
    assert!((r.final_state.loss - 0.5 * 1.9 / 5.0).abs() < 1e-12);
}

#[test]
fn stop_rules_take_precedence_in_api_order() {
    // all three rules met at state 0: loss_below wins, then abs_error_below
    let mut spec = regression(LossKind::L2, Activation::Identity);
    spec.stop = StopRules {
        loss_below: Some(1e9),
        abs_error_below: Some(1e9),
        gradient_norm_below: Some(1e9),
    };
    assert_eq!(run(spec.clone()).stop_reason, StopReason::LossBelow);
    spec.stop.loss_below = None;
    assert_eq!(run(spec.clone()).stop_reason, StopReason::AbsErrorBelow);
    spec.stop.abs_error_below = None;
    let r = run(spec.clone());
    assert_eq!(r.stop_reason, StopReason::GradientNormBelow);
    assert_eq!(r.iterations, 0);
    // strict <: a threshold equal to the state-0 loss is not met
    // (state 0: a = 0, mean ½y² = ½·34/5 = 3.4)
    spec.stop = StopRules {
        loss_below: Some(3.4),
        ..StopRules::default()
    };
    spec.max_iterations = 0;
    assert_eq!(run(spec).stop_reason, StopReason::MaxIterations);
}

#[test]
fn abs_error_below_uses_the_largest_error_over_the_training_set() {
    let mut spec = regression(LossKind::L2, Activation::Identity);
    spec.learning_rate = 0.1;
    spec.max_iterations = 1000;
    spec.stop.abs_error_below = Some(0.95);
    let r = run(spec);
    assert_eq!(r.stop_reason, StopReason::AbsErrorBelow);
    // the least-squares line's largest residual is 0.9 (at x = −1), so the rule is met
    let Bias::Scalar(b) = r.final_state.bias else {
        panic!()
    };
    let w = r.final_state.weights.data()[0];
    let worst = [
        (-2.0, -3.0),
        (-1.0, 0.0),
        (0.0, 0.0),
        (1.0, 3.0),
        (2.0, 4.0),
    ]
    .iter()
    .map(|&(x, y): &(f64, f64)| (w * x + b - y).abs())
    .fold(0.0, f64::max);
    assert!(worst < 0.95);
}

#[test]
fn gradient_norm_excludes_the_bias_when_it_is_not_trained() {
    // at state 0 of the neuron dW = db = 0.036: the norm is 0.036 without the bias and
    // 0.036·√2 ≈ 0.0509 with it
    let mut spec = neuron(false);
    spec.stop = StopRules {
        gradient_norm_below: Some(0.04),
        ..StopRules::default()
    };
    assert_eq!(run(spec.clone()).iterations, 0);
    spec.use_bias = true;
    assert!(run(spec).iterations > 0);
}

#[test]
fn a_diverging_run_ends_with_the_last_finite_state() {
    // identity + mse on x = 10 with lr 1: w ← w − 2·100·(w − 1)·… grows ×199 per step
    let spec = TrainSpec {
        inputs: Array::flat(vec![10.0]),
        targets: Array::flat(vec![1.0]),
        activation: Activation::Identity,
        loss: LossKind::Mse,
        params: Params::default(),
        init_weights: None,
        init_bias: None,
        use_bias: true,
        learning_rate: 1.0,
        optimizer: Optimizer::Sgd,
        batch_size: None,
        seed: None,
        max_iterations: 1000,
        stop: StopRules::default(),
        trace_every: 50,
    };
    let r = run(spec.clone());
    assert_eq!(r.stop_reason, StopReason::Diverged);
    assert!(!r.converged);
    assert!(r.iterations > 10 && r.iterations < 200, "{}", r.iterations);
    assert!(r.final_state.loss.is_finite());
    let last = r.trace.last().unwrap();
    assert_eq!(last.iteration, r.iterations);
    assert_eq!(last.loss, r.final_state.loss);
    assert_eq!(last.weights, r.final_state.weights);
    assert!(last.gradient_weights.data()[0].is_finite());
    assert_eq!(r.trace[0].iteration, 0);
    // the generic path diverges at the same state with the same bits
    assert_eq!(run_generic(spec), r);
}

#[test]
fn a_first_state_that_is_not_finite_is_refused() {
    let mut spec = regression(LossKind::Mse, Activation::Identity);
    spec.inputs = Array::flat(vec![1e300, 1.0, 0.0, 1.0, 2.0]);
    spec.init_weights = Some(Init::Number(1e10));
    let e = err(spec);
    assert_eq!(e.field, "/inputs/0");
}

#[test]
fn fast_and_generic_paths_give_identical_bits() {
    for loss in [LossKind::Mse, LossKind::L2] {
        for act in [Activation::Identity, Activation::Sigmoid, Activation::Tanh] {
            let spec = two_outputs(loss, act);
            assert!(
                prepare(spec.clone(), &TrainLimits::default())
                    .unwrap()
                    .has_fast_path()
            );
            assert_eq!(
                run(spec.clone()),
                run_generic(spec.clone()),
                "{loss:?} {act:?}"
            );
            let mut batched = spec.clone();
            batched.batch_size = Some(3);
            batched.seed = Some(7);
            batched.optimizer = Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            };
            assert_same_bits(&batched);
            assert_same_bits(&regression(loss, act));
        }
    }
    assert_same_bits(&neuron(true));
}

#[test]
fn the_generic_path_trains_pairs_without_a_fast_path() {
    // relu + mse has no fast path; it must still learn the regression line's right half
    let mut spec = regression(LossKind::Mse, Activation::Relu);
    spec.init_weights = Some(Init::Number(0.5));
    spec.init_bias = Some(Init::Number(0.5));
    spec.learning_rate = 0.02;
    spec.max_iterations = 200;
    let p = prepare(spec, &TrainLimits::default()).unwrap();
    assert!(!p.has_fast_path());
    let r = p.run(&Cancel::none()).unwrap();
    assert!(r.final_state.loss < r.trace[0].loss);
}

#[test]
fn mini_batches_in_order_update_once_per_batch() {
    // two samples, batch size 1, plain sgd, identity + l2: state 1 follows sample 0's
    // gradient alone: w₁ = w₀ − lr·(w₀·x₀ + b₀ − y₀)·x₀ = 0 − 0.1·(−1)·2 = 0.2,
    // b₁ = 0 − 0.1·(−1) = 0.1
    let spec = TrainSpec {
        inputs: Array::flat(vec![2.0, -1.0]),
        targets: Array::flat(vec![1.0, 3.0]),
        activation: Activation::Identity,
        loss: LossKind::L2,
        params: Params::default(),
        init_weights: None,
        init_bias: None,
        use_bias: true,
        learning_rate: 0.1,
        optimizer: Optimizer::Sgd,
        batch_size: Some(1),
        seed: None,
        max_iterations: 2,
        stop: StopRules::default(),
        trace_every: 1,
    };
    let r = run(spec.clone());
    assert_eq!(flat_of(&r.trace[1].weights), vec![0.2]);
    assert_eq!(r.trace[1].bias, Bias::Scalar(0.1));
    // state 2 follows sample 1 at state 1: r = 0.2·(−1) + 0.1 − 3 = −3.1
    let w2 = 0.2 - 0.1 * (-3.1 * -1.0);
    let b2 = 0.1 - 0.1 * -3.1;
    assert!((r.trace[2].weights.data()[0] - w2).abs() < 1e-15);
    let Bias::Scalar(b) = r.trace[2].bias else {
        panic!()
    };
    assert!((b - b2).abs() < 1e-15);
    // the reported gradient is the whole training set's: state 0, a = 0:
    // dW = mean of (a − y)·x = ((−1)(2) + (−3)(−1))/2 = 0.5
    assert_eq!(flat_of(&r.trace[0].gradient_weights), vec![0.5]);

    // batch_size = m is full-batch descent, whatever the seed
    let mut full = spec.clone();
    full.batch_size = Some(2);
    full.seed = Some(3);
    let mut plain = spec;
    plain.batch_size = None;
    assert_eq!(run(full), run(plain));
}

#[test]
fn a_seed_gives_the_same_run_twice_and_another_seed_another_run() {
    let mut spec = two_outputs(LossKind::Mse, Activation::Sigmoid);
    spec.batch_size = Some(1);
    spec.seed = Some(2024);
    let a = run(spec.clone());
    assert_eq!(a, run(spec.clone()));
    spec.seed = Some(2025);
    assert_ne!(a, run(spec));
}

#[test]
fn matrix_targets_give_matrix_weights_and_a_bias_vector() {
    let r = run(two_outputs(LossKind::Mse, Activation::Identity));
    let row = &r.trace[0];
    assert_eq!(
        row.weights.shape(),
        crate::compute::Shape::Matrix { rows: 2, cols: 2 }
    );
    assert!(matches!(&row.bias, Bias::Vector(b) if b == &vec![0.01, -0.02]));
    assert!(matches!(&row.gradient_bias, Bias::Vector(b) if b.len() == 2));
}

#[test]
fn use_bias_false_keeps_the_initial_bias_and_reports_its_gradient() {
    let mut spec = two_outputs(LossKind::L2, Activation::Tanh);
    spec.use_bias = false;
    spec.optimizer = Optimizer::Rmsprop {
        alpha: 0.99,
        epsilon: 1e-8,
    };
    let r = run(spec);
    for row in &r.trace {
        assert_eq!(row.bias, Bias::Vector(vec![0.01, -0.02]));
        assert!(matches!(&row.gradient_bias, Bias::Vector(g) if g.iter().any(|&v| v != 0.0)));
    }
}

#[test]
fn activation_must_fit_the_loss() {
    for (kind, act, ok) in [
        (LossKind::Bce, Activation::Sigmoid, true),
        (LossKind::Bce, Activation::Identity, false),
        (LossKind::Focal, Activation::Tanh, false),
        (LossKind::CrossEntropy, Activation::Softmax, true),
        (LossKind::CrossEntropy, Activation::Sigmoid, false),
        (LossKind::KlDiv, Activation::Identity, false),
        (LossKind::JsDiv, Activation::Softmax, true),
        (LossKind::Msle, Activation::Relu, true),
        (LossKind::Msle, Activation::Softplus, true),
        (LossKind::Poisson, Activation::Sigmoid, true),
        (LossKind::Poisson, Activation::Softmax, true),
        (LossKind::Poisson, Activation::Tanh, false),
        (
            LossKind::Msle,
            Activation::LeakyRelu {
                negative_slope: 0.01,
            },
            false,
        ),
        (LossKind::Mse, Activation::Softmax, true),
        (LossKind::Nll, Activation::Identity, true),
    ] {
        let r = check_activation_fits(kind, &act);
        assert_eq!(r.is_ok(), ok, "{kind:?} {act:?}");
        if let Err(e) = r {
            assert_eq!(e.field, "/activation");
        }
    }
    let mut spec = neuron(false);
    spec.loss = LossKind::Bce;
    spec.activation = Activation::Tanh;
    assert_eq!(err(spec).field, "/activation");
}

#[test]
fn shapes_are_checked_with_pointers_into_the_request() {
    let mut s = regression(LossKind::L2, Activation::Identity);
    s.targets = Array::flat(vec![1.0, 2.0]);
    assert_eq!(err(s).field, "/targets");

    let mut s = regression(LossKind::L2, Activation::Identity);
    s.inputs = Array::flat(vec![]);
    assert_eq!(err(s).field, "/inputs");

    let mut s = regression(LossKind::L2, Activation::Identity);
    s.inputs = Array::flat(vec![1.0, 2.0, f64::NAN, 4.0, 5.0]);
    assert_eq!(err(s).field, "/inputs/2");

    let mut s = two_outputs(LossKind::Mse, Activation::Identity);
    s.targets.data_mut()[5] = f64::INFINITY;
    assert_eq!(err(s).field, "/targets/2/1");

    let mut s = two_outputs(LossKind::Mse, Activation::Identity);
    s.init_weights = Some(Init::Array(Array::flat(vec![0.0, 0.0, 0.0])));
    assert_eq!(err(s).field, "/init/weights");

    let mut s = two_outputs(LossKind::Mse, Activation::Identity);
    s.init_weights = Some(Init::Array(
        Array::matrix(vec![0.0, 0.0, f64::NAN, 0.0], 2, 2).unwrap(),
    ));
    assert_eq!(err(s).field, "/init/weights/1/0");

    let mut s = two_outputs(LossKind::Mse, Activation::Identity);
    s.init_bias = Some(Init::Array(Array::flat(vec![0.0])));
    assert_eq!(err(s).field, "/init/bias");

    let mut s = neuron(false);
    s.init_bias = Some(Init::Array(Array::flat(vec![0.25])));
    assert!(
        prepare(s, &TrainLimits::default()).is_ok(),
        "[k] with k = 1"
    );

    // one feature and k outputs: weights [k] are accepted as the single row
    let mut s = two_outputs(LossKind::Mse, Activation::Identity);
    s.inputs = Array::flat(vec![1.0, 2.0, 3.0, 4.0]);
    s.init_weights = Some(Init::Array(Array::flat(vec![0.5, -0.5])));
    assert!(prepare(s, &TrainLimits::default()).is_ok());
}

#[test]
fn learning_rate_batch_size_and_stop_values_are_checked() {
    for lr in [0.0, -1.0, f64::INFINITY] {
        let mut s = neuron(false);
        s.learning_rate = lr;
        assert_eq!(err(s).field, "/learning_rate");
    }
    for bs in [0, 6] {
        let mut s = regression(LossKind::L2, Activation::Identity);
        s.batch_size = Some(bs);
        assert_eq!(err(s).field, "/batch_size");
    }
    let mut s = neuron(false);
    s.stop.abs_error_below = Some(f64::NAN);
    assert_eq!(err(s).field, "/stop/abs_error_below");
}

#[test]
fn limits_are_checked_before_any_work() {
    let limits = TrainLimits {
        max_iterations: 100,
        max_trace_rows: 12,
        max_trace_numbers: 1000,
    };
    let mut s = regression(LossKind::L2, Activation::Identity);
    s.max_iterations = 101;
    assert_eq!(
        prepare(s.clone(), &limits).unwrap_err().field,
        "/max_iterations"
    );
    // ⌊100/10⌋ + 2 = 12 rows is within the limit, ⌊100/9⌋ + 2 = 13 is not
    s.max_iterations = 100;
    s.trace_every = 10;
    assert!(prepare(s.clone(), &limits).is_ok());
    s.trace_every = 9;
    assert_eq!(
        prepare(s.clone(), &limits).unwrap_err().field,
        "/trace_every"
    );
    s.trace_every = 0;
    assert!(prepare(s.clone(), &limits).is_ok());
    // numbers: a row of the 2 × 2 problem holds 2 + 2·(4 + 2) = 14 numbers;
    // 25 iterations, every 3rd: 8 + 2 = 10 rows = 140 numbers
    let mut s = two_outputs(LossKind::Mse, Activation::Identity);
    s.trace_every = 3;
    let small = TrainLimits {
        max_trace_numbers: 139,
        ..TrainLimits::default()
    };
    assert_eq!(
        prepare(s.clone(), &small).unwrap_err().field,
        "/trace_every"
    );
    let p = prepare(
        s,
        &TrainLimits {
            max_trace_numbers: 140,
            ..TrainLimits::default()
        },
    )
    .unwrap();
    assert_eq!(p.numbers_per_row(), 14);
    assert_eq!(p.max_trace_rows(), 10);
}

#[test]
fn class_index_targets_need_k_from_init_weights() {
    let mut s = regression(LossKind::CrossEntropy, Activation::Softmax);
    s.targets = Array::flat(vec![0.0, 1.0, 2.0, 1.0, 0.0]);
    let e = err(s.clone());
    assert_eq!(e.field, "/targets");
    s.init_weights = Some(Init::Number(0.0));
    assert_eq!(err(s.clone()).field, "/targets");
    // k = 2 from [1][2]: the index 2 is out of range
    s.init_weights = Some(Init::Array(Array::matrix(vec![0.0, 0.0], 1, 2).unwrap()));
    assert_eq!(err(s.clone()).field, "/targets/2");
    s.targets = Array::flat(vec![0.0, 1.0, 0.5, 1.0, 0.0]);
    assert_eq!(err(s).field, "/targets/2");
}

// ---------------------------------------------------------------------------------
// Runs with bce and cross_entropy.

#[test]
fn the_textbook_neuron_with_bce_never_gets_below_ln_2() {
    // a single sample with y = 0.5: the bce is at least its entropy ln 2 ≈ 0.693
    let mut spec = neuron(false);
    spec.loss = LossKind::Bce;
    spec.max_iterations = 2000;
    spec.trace_every = 100;
    let r = run(spec);
    assert_eq!(r.stop_reason, StopReason::MaxIterations);
    assert_eq!(r.iterations, 2000);
    assert!(r.final_state.loss >= std::f64::consts::LN_2);
}

#[test]
fn fast_and_generic_bce_and_cross_entropy_give_identical_bits() {
    // mirrors bce.rs's and cross_entropy.rs's logit forms: a change there shows here
    let mut s = two_outputs(LossKind::Bce, Activation::Sigmoid);
    assert!(
        prepare(s.clone(), &TrainLimits::default())
            .unwrap()
            .has_fast_path()
    );
    assert_same_bits(&s);
    s.batch_size = Some(3);
    assert_same_bits(&s);
    let mut bce_neuron = neuron(true);
    bce_neuron.loss = LossKind::Bce;
    bce_neuron.max_iterations = 50;
    assert_same_bits(&bce_neuron);

    // dense distribution targets (rows sum to 1), 4 rows and 3 rows (a power of two
    // and not, for the mean's division)
    let mut ce = two_outputs(LossKind::CrossEntropy, Activation::Softmax);
    ce.targets = Array::matrix(vec![0.2, 0.8, 0.7, 0.3, 0.5, 0.5, 1.0, 0.0], 4, 2).unwrap();
    assert!(
        prepare(ce.clone(), &TrainLimits::default())
            .unwrap()
            .has_fast_path()
    );
    assert_same_bits(&ce);
    ce.batch_size = Some(3);
    assert_same_bits(&ce);
    // class indices
    ce.targets = Array::flat(vec![1.0, 0.0, 0.0, 1.0]);
    ce.batch_size = Some(2);
    ce.seed = Some(5);
    assert_same_bits(&ce);
    ce.batch_size = None;
    ce.optimizer = Optimizer::Adagrad { epsilon: 1e-10 };
    assert_same_bits(&ce);
}

#[test]
fn pairs_with_params_take_the_generic_path() {
    use crate::compute::params::ParamValue;
    let mut s = two_outputs(LossKind::Bce, Activation::Sigmoid);
    s.params = Params::new(vec![("pos_weight".into(), ParamValue::Number(2.0))]);
    let p = prepare(s, &TrainLimits::default()).unwrap();
    assert!(!p.has_fast_path());
    let r = p.run(&Cancel::none()).unwrap();
    assert!(r.final_state.loss < r.trace[0].loss);
}

#[test]
fn logic_gates_are_learned_by_one_sigmoid_neuron() {
    let inputs = Array::matrix(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 4, 2).unwrap();
    for targets in [[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]] {
        let spec = TrainSpec {
            inputs: inputs.clone(),
            targets: Array::flat(targets.to_vec()),
            activation: Activation::Sigmoid,
            loss: LossKind::Bce,
            params: Params::default(),
            init_weights: None,
            init_bias: None,
            use_bias: true,
            learning_rate: 0.5,
            optimizer: Optimizer::Sgd,
            batch_size: Some(1),
            seed: None,
            max_iterations: 100_000,
            stop: StopRules {
                loss_below: Some(0.002),
                ..StopRules::default()
            },
            trace_every: 0,
        };
        let r = run(spec);
        assert_eq!(r.stop_reason, StopReason::LossBelow);
    }
}

#[test]
fn softmax_cross_entropy_state_zero_gradient_is_a_minus_y_over_m() {
    // zero weights: a = (½, ½) in every row and C = ln 2; dL/dz = (a − onehot)/m, and
    // with targets 1, 0, 0, 1 each column of db sums ½ − 1 twice and ½ twice: 0
    let mut ce = two_outputs(LossKind::CrossEntropy, Activation::Softmax);
    ce.init_weights = Some(Init::Array(Array::matrix(vec![0.0; 4], 2, 2).unwrap()));
    ce.init_bias = None;
    ce.targets = Array::flat(vec![1.0, 0.0, 0.0, 1.0]);
    ce.max_iterations = 0;
    let r = run(ce);
    assert_eq!(r.trace[0].gradient_bias, Bias::Vector(vec![0.0, 0.0]));
    assert!((r.trace[0].loss - std::f64::consts::LN_2).abs() < 1e-15);
}

/// By hand: `cargo test --release --lib train::tests::timing -- --ignored --nocapture`
/// prints ns per iteration of the textbook neuron (shared/bench/train_long.py's run)
/// without a trace. Timings are printed, never asserted.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn timing_of_the_single_neuron_without_a_trace() {
    let n = 10_000_000u64;
    let mut spec = neuron(false);
    spec.stop = StopRules::default();
    spec.max_iterations = n;
    spec.trace_every = 0;
    let limits = TrainLimits {
        max_iterations: n,
        ..TrainLimits::default()
    };
    for _ in 0..3 {
        let p = prepare(spec.clone(), &limits).unwrap();
        let (t, cpu) = (std::time::Instant::now(), cpu_ns());
        let r = p.run(&Cancel::none()).unwrap();
        let wall = t.elapsed().as_nanos() as f64 / n as f64;
        let ns = cpu.zip(cpu_ns()).map(|(a, b)| (b - a) as f64 / n as f64);
        assert_eq!(r.iterations, n);
        assert_eq!(r.stop_reason, StopReason::MaxIterations);
        println!(
            "{wall:.2} ns/iteration wall, {:.2} ns on the CPU (final w = {:e})",
            ns.unwrap_or(f64::NAN),
            r.final_state.weights.data()[0]
        );
    }
}

/// This thread's time on the CPU in ns (Linux schedstat), so that a loaded machine
/// does not inflate the figure; `None` elsewhere.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_losss_own_target_checks_point_into_the_request() {
    // bce targets outside [0, 1]: flat targets are m × 1 inside, reported as /targets/i
    let mut s = regression(LossKind::Bce, Activation::Sigmoid);
    s.targets = Array::flat(vec![0.0, 1.0, 1.5, 0.0, 1.0]);
    assert_eq!(err(s).field, "/targets/2");
    // cross_entropy distribution rows must sum to 1
    let mut s = two_outputs(LossKind::CrossEntropy, Activation::Softmax);
    s.targets = Array::matrix(vec![0.2, 0.8, 0.7, 0.2, 0.5, 0.5, 1.0, 0.0], 4, 2).unwrap();
    assert_eq!(err(s).field, "/targets/1");
    // bad params are named as /params/...
    let mut s = two_outputs(LossKind::Huber, Activation::Identity);
    s.params = crate::compute::params::Params::new(vec![(
        "delta".into(),
        crate::compute::params::ParamValue::Number(-1.0),
    )]);
    assert_eq!(err(s).field, "/params/delta");
}

#[test]
fn a_first_state_the_loss_refuses_is_reported_at_the_sample() {
    // kl_div needs q > 0 where p > 0: softmax of logits 800 apart underflows to 0 in
    // sample 1 (x = 1 with weights (0, 800) gives a = (0, 1) against p = (½, ½))
    let mut s = two_outputs(LossKind::KlDiv, Activation::Softmax);
    s.inputs = Array::matrix(vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], 4, 2).unwrap();
    s.targets = Array::matrix(vec![0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], 4, 2).unwrap();
    s.init_weights = Some(Init::Array(
        Array::matrix(vec![0.0, 800.0, 0.0, 0.0], 2, 2).unwrap(),
    ));
    s.init_bias = None;
    let e = err(s);
    assert_eq!(e.field, "/inputs/1", "{}", e.message);
    assert!(e.message.contains("state 0"), "{}", e.message);
}

#[test]
fn the_loss_only_objective_equals_the_loops_state_loss_bit_for_bit() {
    // every elementwise fast pair, on m = 2 … 1001 samples (each remainder of the
    // four-lane sum), at states where the loss is small, large and saturated
    let pairs = [
        (LossKind::Mse, Activation::Identity),
        (LossKind::L2, Activation::Identity),
        (LossKind::Mse, Activation::Sigmoid),
        (LossKind::L2, Activation::Sigmoid),
        (LossKind::Mse, Activation::Tanh),
        (LossKind::L2, Activation::Tanh),
        (LossKind::Bce, Activation::Sigmoid),
    ];
    let mut checked = 0;
    for m in [2usize, 3, 4, 5, 6, 7, 8, 13, 1001] {
        let xs: Vec<f64> = (0..m).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
        for (loss, activation) in pairs {
            let ys: Vec<f64> = (0..m)
                .map(|i| match loss {
                    LossKind::Bce => f64::from(u8::from(i % 3 == 0)),
                    _ => (i as f64 * 1.3).cos(),
                })
                .collect();
            let spec = TrainSpec {
                inputs: Array::flat(xs.clone()),
                targets: Array::flat(ys),
                ..regression(loss, activation)
            };
            let p = prepare(spec, &TrainLimits::default()).unwrap();
            let mut scratch = p.scratch();
            let (mut z, mut a, mut dz) = (vec![0.0; m], vec![0.0; m], vec![0.0; m]);
            for theta in [[0.1, -0.2], [1.7, 0.4], [-40.0, 3.0], [900.0, -1e3]] {
                let want = p.state_loss(&theta, &mut z, &mut a, &mut dz).unwrap();
                let got = p.objective(&theta, &mut scratch);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{loss:?} {activation:?} m = {m}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 9 * 7 * 4);
}
