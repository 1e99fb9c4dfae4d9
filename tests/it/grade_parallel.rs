//! POST /grade on several threads: the body is the same bytes on one thread and on many
//! (order, values, diagnoses, item errors), every item is graded as it is graded alone,
//! and a huge request still stops at the time limit (503) or on a cancel.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::{Value, json};

use crate::support::{TestApp, textbook_neuron};
use losslab::Config;
use losslab::api::wire_grade::{GradeLimits, grade_request};
use losslab::compute::Cancel;
use losslab::compute::train::TrainLimits;

fn limits() -> GradeLimits {
    GradeLimits {
        max_items: 10_000,
        train: TrainLimits::default(),
        timeout_secs: 30,
    }
}

/// `body` graded by `grade_request` on a rayon pool of `threads` threads.
fn graded_on(threads: usize, body: &[u8]) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| grade_request(body, &limits(), &Cancel::none()))
        .map_err(|e| e.problem().detail)
        .unwrap()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// A student's loop for the textbook neuron; `sign` +1 is gradient ascent.
fn neuron_rows(sign: f64, states: usize) -> Value {
    let mut w = 9f64.ln();
    let mut rows = Vec::new();
    for i in 0..states {
        let a = sigmoid(w);
        rows.push(json!({"iteration": i, "loss": 0.5 * (a - 0.5) * (a - 0.5), "weights": [w]}));
        w += sign * 0.2 * (a - 0.5) * a * (1.0 - a);
    }
    Value::Array(rows)
}

/// A class's mixed request: shared and distinct loss tasks, gradient and train tasks,
/// right answers, the classic mistakes, untrusted values, and items in error (of the
/// item, of its answer, of its task, a 404 kind, not an object), interleaved so that
/// every chunk of the parallel pass holds several kinds of item.
fn mixed_items(n: usize) -> Vec<Value> {
    let shared =
        json!({"kind": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5]});
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let x = 0.1 * (i % 7) as f64;
        let distinct = json!({"kind": "mse", "predictions": [x, 0.5, -0.25], "targets": [0.2, 0.1 * (i % 5) as f64, 0.3]});
        let mse = {
            let (a, y) = ([x, 0.5, -0.25], [0.2, 0.1 * (i % 5) as f64, 0.3]);
            a.iter().zip(y).map(|(a, y)| (a - y) * (a - y)).sum::<f64>() / 3.0
        };
        let item = match i % 16 {
            0 => {
                json!({"task": {"loss": shared}, "answer": {"loss": 1.5, "gradient": [-1.0 / 3.0, 4.0 / 3.0, 1.0 / 3.0]}})
            }
            1 => json!({"task": {"loss": shared}, "answer": {"loss": 0.75}, "points": 2}),
            2 => json!({"task": {"loss": distinct}, "answer": {"loss": mse}}),
            3 => {
                json!({"task": {"loss": distinct}, "answer": {"loss": mse / 2.0}, "partial": true})
            }
            4 => {
                json!({"task": {"loss": distinct}, "answer": {"loss": -mse, "gradient": "not yet"}})
            }
            5 => {
                json!({"task": {"loss": {"kind": "cross_entropy", "predictions": [[0.7, 0.2, 0.1]], "targets": [0]}},
                        "answer": {"loss": -(0.7f64).log2()}})
            }
            6 => {
                json!({"task": {"loss": {"kind": "bce", "from_logits": true, "predictions": [0.3, -1.2], "targets": [1.0, 0.0], "weights": [1.0, 2.0]}},
                        "answer": {"loss": [0.1, null], "gradient": [[0.1], [0.2]]}, "partial": true})
            }
            7 => {
                json!({"task": {"gradient": {"loss": "bce", "logits": [0.3, -1.2], "activation": "sigmoid", "targets": [1.0, 0.0]}},
                        "answer": {"d_logits": [0.1, 0.2], "d_predictions": [1, 2, 3]}})
            }
            8 => {
                json!({"task": {"train": textbook_neuron()}, "answer": {"iterations": 287, "trace": neuron_rows(-1.0, 3)}})
            }
            9 => {
                json!({"task": {"train": textbook_neuron()}, "answer": {"iterations": 143, "trace": neuron_rows(1.0, 3)}, "partial": true})
            }
            10 => json!({"id": format!("e{i}"), "task": {"loss": shared}, "answer": {"los": 1.5}}),
            11 => json!({"task": {"loss": shared}, "answer": {"loss": 1.5}, "points": -1}),
            12 => {
                json!({"task": {"loss": {"kind": "msee", "predictions": [1], "targets": [1]}}, "answer": {"loss": 0}})
            }
            13 => {
                json!({"task": {"loss": {"kind": "mse", "predictions": [1, 2], "targets": [1]}}, "answer": {"loss": 0}})
            }
            14 => json!([1, 2, 3]),
            _ => {
                json!({"task": {"train": {"inputs": [[1.0]], "targets": [0.5], "learning_rate": -1}}, "answer": {"iterations": 1}})
            }
        };
        items.push(item);
    }
    items
}

#[test]
fn the_body_is_the_same_bytes_on_one_thread_and_on_many() {
    let items = mixed_items(700);
    for extra in [
        json!({}),
        json!({"reveal": "expected"}),
        json!({"reveal": "none", "tolerance": {"rtol": 1e-3}}),
        json!({"format": "gradescope"}),
    ] {
        let mut body = json!({"items": items});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        let one = graded_on(1, &bytes);
        for threads in [2, 3, 8] {
            assert!(
                graded_on(threads, &bytes) == one,
                "{extra}: {threads} threads differ from one"
            );
        }
        // the request is really mixed: every status, diagnoses, errors in items
        let v: Value = serde_json::from_slice(&one).unwrap();
        if extra.get("format").is_none() {
            assert_eq!(v["count"], 700);
            assert!(v["passed"].as_u64().unwrap() >= 100, "{}", v["passed"]);
            assert!(v["failed"].as_u64().unwrap() >= 200, "{}", v["failed"]);
            assert!(v["errors"].as_u64().unwrap() >= 200, "{}", v["errors"]);
            let items = v["items"].as_array().unwrap();
            assert_eq!(items[1]["diagnosis"][0]["mistake"], "half_factor");
            assert_eq!(items[9]["diagnosis"][0]["mistake"], "bias_trained");
            assert_eq!(items[10]["id"], "e10");
            assert_eq!(
                items[12]["problem"]["errors"][0]["field"],
                "/items/12/task/loss/kind"
            );
            assert_eq!(items[14]["status"], "error");
            assert_eq!(items[14]["max_score"], 0.0);
        } else {
            assert_eq!(v["tests"].as_array().unwrap().len(), 700);
        }
    }
}

#[test]
fn each_item_of_a_parallel_request_is_graded_as_it_is_alone() {
    let items: Vec<Value> = mixed_items(96)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i % 16, 10..=15))
        .map(|(i, mut item)| {
            item["id"] = json!(format!("q{i}"));
            item
        })
        .collect();
    let all = graded_on(4, &serde_json::to_vec(&json!({"items": items})).unwrap());
    let all: Value = serde_json::from_slice(&all).unwrap();
    for (j, item) in items.iter().enumerate() {
        let alone = graded_on(1, &serde_json::to_vec(&json!({"items": [item]})).unwrap());
        let alone: Value = serde_json::from_slice(&alone).unwrap();
        assert_eq!(all["items"][j], alone["items"][0], "item {j}");
    }
}

/// Distinct textbook-neuron runs with no stop rule: each is a full run of its own.
fn long_items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut t = textbook_neuron();
            t.as_object_mut().unwrap().remove("stop");
            t["max_iterations"] = json!(200_000);
            t["trace_every"] = json!(0);
            t["learning_rate"] = json!(0.2 + 1e-6 * i as f64);
            json!({"task": {"train": t}, "answer": {"iterations": 200_000}})
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_request_past_the_time_limit_is_503_and_the_work_stops() {
    let app = TestApp::with_config(Config {
        timeout_secs: 1,
        max_concurrency: Some(1),
        ..Config::default()
    });
    let p = app
        .post_json("/grade", &json!({"items": long_items(5_000)}))
        .await
        .problem(503);
    assert!(p["detail"].as_str().unwrap().contains("time limit"), "{p}");
    // the only heavy slot was given back: the next request is graded
    let r = app
        .post_json(
            "/grade",
            &json!({"items": [{"task": {"train": textbook_neuron()}, "answer": {"iterations": 287}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["passed"], 1);
}

#[test]
fn a_cancelled_request_stops_with_the_cancel() {
    let body = serde_json::to_vec(&json!({"items": long_items(5_000)})).unwrap();
    let cancel = Cancel::new(None, Some(Arc::new(AtomicBool::new(true))));
    let p = grade_request(&body, &limits(), &cancel)
        .unwrap_err()
        .problem();
    assert_eq!(p.status, 503, "{p:?}");
    assert!(p.detail.contains("cancelled"), "{p:?}");
}
