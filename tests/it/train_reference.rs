//! Whole training runs against an independent reference: scripts/train_reference.py
//! (plain Python floats, math.fsum sums, torch.optim's update rules written out again;
//! every optimizer on identity + mse and sigmoid + l2 with and without the bias,
//! mini-batches in order and seeded, stop rules, divergence, the textbook neuron, and
//! the fused sigmoid + bce and softmax + cross_entropy from the logits) produced
//! tests/fixtures/train_reference.json; every trace row and the final state of
//! `losslab::compute::train` must agree to 1e-12 relative. (Today the mse / l2 runs
//! agree bit for bit; the fused ones, written differently, within ~5e-14.)
//!
//! Regenerate the fixture with `python3 scripts/train_reference.py`.

use losslab::compute::train::{
    Bias, Init, Optimizer, StopReason, StopRules, TrainLimits, TrainResult, TrainSpec, prepare,
};
use losslab::compute::{Activation, Array, Cancel, LossKind, ParamValue, Params};
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/train_reference.json");

/// A number or a (possibly nested) array as an [`Array`] (flat or matrix).
fn array(v: &Value) -> Array {
    let items = v.as_array().expect("an array");
    if items.first().is_some_and(Value::is_array) {
        let rows: Vec<Vec<f64>> = items.iter().map(numbers).collect();
        let cols = rows[0].len();
        Array::matrix(rows.concat(), rows.len(), cols).expect("rectangular")
    } else {
        Array::flat(numbers(v))
    }
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array of numbers")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn init(v: Option<&Value>) -> Option<Init> {
    v.map(|v| match v.as_f64() {
        Some(x) => Init::Number(x),
        None => Init::Array(array(v)),
    })
}

/// The request body (API.md's POST /train) as a [`TrainSpec`], as the HTTP layer would.
fn spec(req: &Value) -> TrainSpec {
    let optimizer = match &req["optimizer"] {
        Value::Null => Optimizer::Sgd,
        Value::String(kind) => {
            Optimizer::parse(kind, &Params::default(), "/optimizer").expect("optimizer")
        }
        Value::Object(o) => {
            let fields = o
                .iter()
                .filter(|(k, _)| *k != "kind")
                .map(|(k, v)| (k.clone(), ParamValue::Number(v.as_f64().expect("a number"))))
                .collect();
            Optimizer::parse(
                o["kind"].as_str().expect("optimizer kind"),
                &Params::new(fields),
                "/optimizer",
            )
            .expect("optimizer")
        }
        other => panic!("optimizer {other}"),
    };
    let stop = &req["stop"];
    TrainSpec {
        inputs: array(&req["inputs"]),
        targets: array(&req["targets"]),
        activation: Activation::parse(
            req["activation"].as_str().unwrap_or("identity"),
            &Params::default(),
        )
        .expect("activation"),
        loss: LossKind::parse(req["loss"].as_str().expect("loss")).expect("a loss kind"),
        params: Params::default(),
        init_weights: init(req["init"].get("weights")),
        init_bias: init(req["init"].get("bias")),
        use_bias: req["use_bias"].as_bool().unwrap_or(true),
        learning_rate: req["learning_rate"].as_f64().expect("learning_rate"),
        optimizer,
        batch_size: req["batch_size"].as_u64(),
        seed: req["seed"].as_u64(),
        max_iterations: req["max_iterations"].as_u64().expect("max_iterations"),
        stop: StopRules {
            loss_below: stop["loss_below"].as_f64(),
            abs_error_below: stop["abs_error_below"].as_f64(),
            gradient_norm_below: stop["gradient_norm_below"].as_f64(),
        },
        trace_every: req["trace_every"].as_u64().unwrap_or(1),
    }
}

/// Largest relative difference seen, for the report of a failure.
struct Compare {
    case: String,
    worst: f64,
    /// Numbers that are not bit-identical to the reference.
    differing: usize,
}

impl Compare {
    /// |got − want| ≤ 1e−12·|want| (plus 1e−300 so that 0 = 0 passes).
    #[track_caller]
    fn number(&mut self, what: &str, got: f64, want: f64) {
        let diff = (got - want).abs();
        let rel = diff / want.abs().max(1e-300);
        self.worst = self.worst.max(rel);
        self.differing += usize::from(diff != 0.0);
        assert!(
            diff <= 1e-12 * want.abs() + 1e-300,
            "{}: {what}: got {got:e}, want {want:e} (relative {rel:e})",
            self.case
        );
    }

    fn array(&mut self, what: &str, got: &Array, want: &Value) {
        let want_arr = array(want);
        assert_eq!(got.shape(), want_arr.shape(), "{}: {what} shape", self.case);
        for (i, (&g, &w)) in got.data().iter().zip(want_arr.data()).enumerate() {
            self.number(&format!("{what}[{i}]"), g, w);
        }
    }

    fn bias(&mut self, what: &str, got: &Bias, want: &Value) {
        match got {
            Bias::Scalar(b) => self.number(what, *b, want.as_f64().expect("a number")),
            Bias::Vector(b) => {
                let w = numbers(want);
                assert_eq!(b.len(), w.len(), "{}: {what} length", self.case);
                for (i, (&g, &w)) in b.iter().zip(&w).enumerate() {
                    self.number(&format!("{what}[{i}]"), g, w);
                }
            }
        }
    }
}

fn run(req: &Value) -> TrainResult {
    prepare(spec(req), &TrainLimits::default())
        .expect("a valid request")
        .run(&Cancel::none())
        .expect("the run")
}

#[test]
fn every_trace_row_matches_the_independent_python_reference() {
    let cases: Vec<Value> = serde_json::from_str(FIXTURE).expect("the fixture parses");
    assert!(cases.len() >= 30, "the fixture holds the whole set");
    let (mut worst, mut differing) = (0.0f64, 0usize);
    for case in &cases {
        let name = case["name"].as_str().unwrap().to_string();
        let want = &case["expected"];
        let got = run(&case["request"]);
        let mut cmp = Compare {
            case: name.clone(),
            worst: 0.0,
            differing: 0,
        };
        assert_eq!(
            got.stop_reason.name(),
            want["stop_reason"].as_str().unwrap(),
            "{name}: stop_reason"
        );
        assert_eq!(
            got.iterations,
            want["iterations"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            got.converged,
            want["converged"].as_bool().unwrap(),
            "{name}"
        );
        let rows = want["trace"].as_array().unwrap();
        assert_eq!(got.trace.len(), rows.len(), "{name}: trace rows");
        for (row, w) in got.trace.iter().zip(rows) {
            assert_eq!(row.iteration, w["iteration"].as_u64().unwrap(), "{name}");
            let at = format!("row {}", row.iteration);
            cmp.number(&format!("{at} loss"), row.loss, w["loss"].as_f64().unwrap());
            cmp.array(&format!("{at} weights"), &row.weights, &w["weights"]);
            cmp.bias(&format!("{at} bias"), &row.bias, &w["bias"]);
            cmp.array(
                &format!("{at} gradient_weights"),
                &row.gradient_weights,
                &w["gradient_weights"],
            );
            cmp.bias(
                &format!("{at} gradient_bias"),
                &row.gradient_bias,
                &w["gradient_bias"],
            );
        }
        let f = &want["final"];
        assert_eq!(got.final_state.iteration, f["iteration"].as_u64().unwrap());
        cmp.number(
            "final loss",
            got.final_state.loss,
            f["loss"].as_f64().unwrap(),
        );
        cmp.array("final weights", &got.final_state.weights, &f["weights"]);
        cmp.bias("final bias", &got.final_state.bias, &f["bias"]);
        worst = worst.max(cmp.worst);
        differing += cmp.differing;
    }
    eprintln!(
        "largest relative difference from the reference: {worst:e}; {differing} numbers not bit-identical"
    );
}

#[test]
fn the_reference_agrees_on_the_textbook_neuron() {
    // the fixture's own figures (API.md): 287 updates without the bias, 143 with it
    let cases: Vec<Value> = serde_json::from_str(FIXTURE).unwrap();
    for (name, at) in [
        ("textbook_neuron_l2", 287),
        ("textbook_neuron_l2_bias_trained", 143),
    ] {
        let case = cases.iter().find(|c| c["name"] == name).expect(name);
        assert_eq!(case["expected"]["iterations"], at);
        let got = run(&case["request"]);
        assert_eq!(got.iterations, at);
        assert_eq!(got.stop_reason, StopReason::LossBelow);
    }
}

// ---------------------------------------------------------------------------------
// GET /train/examples (src/api/train_examples.json): every request is valid and does
// what its description says.

const EXAMPLES: &str = include_str!("../../src/api/train_examples.json");

fn example(name: &str) -> Value {
    let all: Vec<Value> = serde_json::from_str(EXAMPLES).expect("the examples parse");
    all.into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("example {name}"))
}

#[test]
fn the_examples_start_with_the_textbook_neuron_l2_then_bce() {
    let all: Vec<Value> = serde_json::from_str(EXAMPLES).unwrap();
    let names: Vec<&str> = all.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(&names[..2], ["textbook-neuron-l2", "textbook-neuron-bce"]);
    for e in &all {
        assert!(e["description"].as_str().is_some_and(|d| d.len() > 40));
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["description", "name", "request"]);
    }
}

#[test]
fn the_l2_examples_do_what_they_describe() {
    // textbook neuron: 287 updates, w₁ = 2.1900245773362195 (API.md)
    let r = run(&example("textbook-neuron-l2")["request"]);
    assert_eq!(r.iterations, 287);
    assert_eq!(r.trace[1].iteration, 10);
    assert!(r.trace.len() <= 40);

    // NOT: the line through (0, 1) and (1, 0)
    let r = run(&example("logic-not")["request"]);
    assert_eq!(r.stop_reason, StopReason::LossBelow);
    assert!((r.final_state.weights.data()[0] + 1.0).abs() < 1e-4);
    assert!(r.trace.len() <= 40);

    // regression: the least-squares line w = Σxy/Σx² = 1.7, b = ȳ = 0.8
    let r = run(&example("regression-line")["request"]);
    assert_eq!(r.stop_reason, StopReason::GradientNormBelow);
    assert!((r.final_state.weights.data()[0] - 1.7).abs() < 1e-6);
    assert!(matches!(r.final_state.bias, Bias::Scalar(b) if (b - 0.8).abs() < 1e-6));
    assert!(r.trace.len() <= 40);
}

#[test]
fn the_bce_examples_do_what_they_describe() {
    let r = run(&example("textbook-neuron-bce")["request"]);
    assert_eq!(r.stop_reason, StopReason::MaxIterations);
    assert!(r.final_state.loss >= std::f64::consts::LN_2);
    for (name, w, b) in [("logic-and", 11.8, -17.8), ("logic-or", 11.7, -5.4)] {
        let r = run(&example(name)["request"]);
        assert_eq!(r.stop_reason, StopReason::LossBelow, "{name}");
        assert!(r.trace.len() <= 60, "{name}");
        assert!((r.final_state.weights.data()[0] - w).abs() < 0.1, "{name}");
        assert!(
            matches!(r.final_state.bias, Bias::Scalar(x) if (x - b).abs() < 0.1),
            "{name}"
        );
    }
}
