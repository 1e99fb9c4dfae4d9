//! POST /grade without HTTP: where an item's time goes. For the two requests of
//! BENCHMARKS.md (and scripts/grade-bench.py) — 2,000 small /loss items (mse, 3 elements,
//! each its own task, half claiming ½·MSE so the diagnosis runs) and 200 textbook-neuron
//! trace items (half a student's ascending loop) — it times, as the best of several runs:
//! - `reference`: computing each item's reference alone (`LossSpec::evaluate` on arrays
//!   already built; for the neuron, the /train run with the claimed states traced),
//! - `grade 1 thread`: the whole request body → response body (`grade_request`: parse
//!   every item and task, grade, diagnose, write feedback, serialise) on one rayon thread,
//! - `grade N threads`: the same on every core;
//!
//! and prints items/s and the overhead per item: (grade on 1 thread − reference) / items,
//! i.e. everything an item costs beyond computing its reference (its JSON, its
//! comparison, the diagnosis variants of a wrong answer, the feedback, its share of the
//! response). `cargo bench --bench grade`.

#![allow(clippy::unwrap_used)]
use std::time::{Duration, Instant};

use losslab::api::wire_grade::{GradeLimits, grade_request};
use losslab::compute::train::{TrainLimits, TrainSpec};
use losslab::compute::{Array, Cancel, LossKind, LossSpec, Params, Reduction};
use serde_json::{Value, json};

fn limits() -> GradeLimits {
    GradeLimits {
        max_items: 10_000,
        train: TrainLimits::default(),
        timeout_secs: 30,
    }
}

/// scripts/grade-bench.py's small items: (predictions, targets, claimed loss).
fn small() -> Vec<([f64; 3], [f64; 3], f64)> {
    (0..2000)
        .map(|i| {
            let a = [0.1 * (i % 7) as f64, 0.5, -0.25 * (i % 3) as f64];
            let y = [0.2, 0.1 * (i % 5) as f64, 0.3];
            let mse = a.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum::<f64>() / 3.0;
            (a, y, if i % 2 == 0 { mse } else { mse / 2.0 })
        })
        .collect()
}

fn small_body() -> Vec<u8> {
    let items: Vec<Value> = small()
        .iter()
        .map(|(a, y, claim)| {
            json!({"task": {"loss": {"kind": "mse", "predictions": a, "targets": y}},
                   "answer": {"loss": claim}})
        })
        .collect();
    serde_json::to_vec(&json!({"items": items})).unwrap()
}

fn neuron() -> Value {
    json!({"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
           "init": {"weights": 9f64.ln(), "bias": 0.0}, "use_bias": false,
           "learning_rate": 0.2, "max_iterations": 10000, "stop": {"loss_below": 0.001}})
}

/// A student's loop: 4 states; `sign` +1 is the ascent mistake.
fn rows(sign: f64) -> Value {
    let mut w = 9f64.ln();
    let mut out = Vec::new();
    for i in 0..4 {
        let a = 1.0 / (1.0 + (-w).exp());
        out.push(json!({"iteration": i, "loss": 0.5 * (a - 0.5) * (a - 0.5), "weights": [w]}));
        w += sign * 0.2 * (a - 0.5) * a * (1.0 - a);
    }
    Value::Array(out)
}

fn trace_body() -> Vec<u8> {
    let items: Vec<Value> = (0..200)
        .map(|i| {
            let (n, sign) = if i % 2 == 0 { (287, -1.0) } else { (143, 1.0) };
            json!({"task": {"train": neuron()}, "answer": {"iterations": n, "trace": rows(sign)}})
        })
        .collect();
    serde_json::to_vec(&json!({"items": items})).unwrap()
}

/// The best of `runs` (the machine is shared: the minimum is the least disturbed).
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn grade(body: &[u8]) -> Vec<u8> {
    grade_request(body, &limits(), &Cancel::none()).unwrap()
}

fn report(name: &str, items: usize, reference: Duration, one: Duration, all: Duration) {
    let cores = rayon::current_num_threads();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / items as f64;
    let rate = |d: Duration| items as f64 / d.as_secs_f64();
    println!("{name}:");
    println!(
        "  reference only     {:>9.3} ms = {:>6.2} µs/item",
        reference.as_secs_f64() * 1e3,
        per(reference)
    );
    println!(
        "  grade, 1 thread    {:>9.3} ms = {:>6.2} µs/item = {:>9.0} items/s",
        one.as_secs_f64() * 1e3,
        per(one),
        rate(one)
    );
    println!(
        "  grade, {cores} threads   {:>9.3} ms = {:>6.2} µs/item = {:>9.0} items/s",
        all.as_secs_f64() * 1e3,
        per(all),
        rate(all)
    );
    println!(
        "  overhead per item beyond its reference (1 thread): {:.2} µs",
        per(one) - per(reference)
    );
}

fn main() {
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();

    // 2,000 small /loss items
    let body = small_body();
    let items = small();
    let arrays: Vec<(Array, Array)> = items
        .iter()
        .map(|(a, y, _)| (Array::flat(a.to_vec()), Array::flat(y.to_vec())))
        .collect();
    let reference = best(50, || {
        for (a, y) in &arrays {
            let spec = LossSpec::new(LossKind::Mse, &Params::default(), false).unwrap();
            std::hint::black_box(spec.evaluate(a, y, Reduction::Mean, None, false).unwrap());
        }
    });
    let one = one_thread.install(|| best(30, || drop(std::hint::black_box(grade(&body)))));
    let all = best(30, || drop(std::hint::black_box(grade(&body))));
    report(
        "2000 small /loss items (half wrong)",
        2000,
        reference,
        one,
        all,
    );

    // 200 textbook-neuron trace items
    let body = trace_body();
    let spec: TrainSpec = {
        let req: losslab::api::wire::train::TrainRequest =
            serde_json::from_value(neuron()).unwrap();
        req.into_spec().unwrap()
    };
    let reference = best(10, || {
        for _ in 0..200 {
            let run = losslab::compute::train::prepare(spec.clone(), &TrainLimits::default())
                .unwrap()
                .trace_states(vec![0, 1, 2, 3]);
            std::hint::black_box(run.run(&Cancel::none()).unwrap());
        }
    });
    let one = one_thread.install(|| best(20, || drop(std::hint::black_box(grade(&body)))));
    let all = best(20, || drop(std::hint::black_box(grade(&body))));
    report(
        "200 textbook-neuron trace items (half wrong)",
        200,
        reference,
        one,
        all,
    );
}
