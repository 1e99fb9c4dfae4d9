//! POST /grade through the real router: verdicts, tolerance edges, shapes, partial
//! credit, mistakes built from losslab's own answers to the student's variant, traces,
//! reveal, item errors with pointers from the request root, Gradescope, and every
//! request-level status.

use serde_json::{Value, json};

use crate::support::TestApp;
use losslab::Config;

async fn grade(app: &TestApp, body: Value) -> Value {
    let r = app.post_json("/grade", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    assert!(
        !text.contains("NaN") && !text.contains("Infinity"),
        "{text}"
    );
    r.json()
}

fn mse_task() -> Value {
    json!({"kind": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5]})
}

/// What a student who used `kind` (and `extra` settings) instead of the task computed:
/// losslab's own /loss answer to their variant.
async fn student(app: &TestApp, kind: &str, extra: Value) -> Value {
    let mut body = json!({"predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5],
                          "gradient": true});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.post_loss(kind, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn mistakes(item: &Value) -> Vec<String> {
    item["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mistake"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_correct_answer_passes_and_the_textbook_half_mse_is_half_factor() {
    let app = TestApp::new();
    let right = student(&app, "mse", json!({})).await;
    let half = student(&app, "l2", json!({})).await;
    let v = grade(
        &app,
        json!({"items": [
            {"id": "q1", "task": {"loss": mse_task()},
             "answer": {"loss": right["loss"], "gradient": right["gradient"]}},
            {"id": "q1-half", "points": 3, "task": {"loss": mse_task()},
             "answer": {"loss": half["loss"], "gradient": half["gradient"]}}
        ]}),
    )
    .await;
    assert_eq!(v["count"], 2);
    assert_eq!(
        (
            v["passed"].as_u64(),
            v["failed"].as_u64(),
            v["errors"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(v["score"], 1.0);
    assert_eq!(v["max_score"], 4.0);
    let ok = &v["items"][0];
    assert_eq!(ok["id"], "q1");
    assert_eq!(ok["status"], "passed");
    assert_eq!(ok["score"], 1.0);
    assert_eq!(ok["checks"].as_array().unwrap().len(), 2);
    assert!(ok["diagnosis"].as_array().unwrap().is_empty());
    let bad = &v["items"][1];
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["score"], 0.0);
    assert_eq!(bad["max_score"], 3.0);
    assert_eq!(mistakes(bad), ["half_factor", "half_factor"]);
    let fb = bad["feedback"].as_str().unwrap();
    assert!(fb.contains("half") && fb.contains("(half_factor)"), "{fb}");
}

#[tokio::test]
async fn each_loss_mistake_is_named_from_the_students_variant() {
    let app = TestApp::new();
    // (the task's extra settings, the student's kind and settings, the expected ids)
    let cases = [
        (
            json!({}),
            "mse",
            json!({"reduction": "sum"}),
            "sum_instead_of_mean",
        ),
        (
            json!({"reduction": "sum"}),
            "mse",
            json!({}),
            "mean_instead_of_sum",
        ),
        (json!({}), "mae", json!({}), "abs_instead_of_square"),
        (
            json!({"weights": [1.0, 2.0, 0.5]}),
            "mse",
            json!({}),
            "weights_ignored",
        ),
    ];
    let mut items = Vec::new();
    for (task_extra, kind, student_extra, _) in &cases {
        let s = student(&app, kind, student_extra.clone()).await;
        let mut task = mse_task();
        for (k, v) in task_extra.as_object().unwrap() {
            task[k] = v.clone();
        }
        items.push(json!({"task": {"loss": task}, "answer": {"loss": s["loss"]}}));
    }
    let v = grade(&app, json!({"items": items})).await;
    for (i, (_, _, _, id)) in cases.iter().enumerate() {
        assert_eq!(
            mistakes(&v["items"][i]),
            [*id],
            "case {i}: {}",
            v["items"][i]
        );
    }
}

#[tokio::test]
async fn tolerance_overrides_and_the_edge() {
    let app = TestApp::new();
    // mse = 1.5 exactly; 1.5 + 0.5 is the edge for atol 0.25, rtol 1/6·… use dyadics:
    // allowed = 0.25 + 0.25·1.5 = 0.625
    let task = json!({"loss": mse_task()});
    let v = grade(
        &app,
        json!({"tolerance": {"rtol": 0.25, "atol": 0.25}, "items": [
            {"task": task, "answer": {"loss": 2.125}},
            {"task": task, "answer": {"loss": 2.125001}},
            {"task": task, "answer": {"loss": 2.125001}, "tolerance": {"atol": 0.5}},
            {"task": task, "answer": {"loss": 1.5000001}, "tolerance": {"rtol": 0, "atol": 0}}
        ]}),
    )
    .await;
    let status: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["passed", "failed", "passed", "failed"]);
    assert_eq!(
        v["items"][1]["checks"][0]["first_mismatch"]["allowed"],
        0.625
    );
}

#[tokio::test]
async fn untrusted_values_fail_their_check_and_partial_counts_elements() {
    let app = TestApp::new();
    let right = student(&app, "mse", json!({})).await;
    let g = right["gradient"].clone();
    let task = json!({"loss": mse_task()});
    let v = grade(
        &app,
        json!({"items": [
            {"task": task, "answer": {"gradient": [g[0], null, "x"]}, "partial": true, "points": 3},
            {"task": task, "answer": {"gradient": [g[0], g[1]]}, "partial": true},
            {"task": task, "answer": {"gradient": [[g[0]], [g[1]], [g[2]]]}},
            {"task": task, "answer": {"loss": "1.5", "gradient": g}, "partial": true},
            {"task": task, "answer": {"loss": {"value": 1.5}}},
            {"task": task, "answer": {"loss": 1e308}}
        ]}),
    )
    .await;
    let items = v["items"].as_array().unwrap();
    let c0 = &items[0]["checks"][0];
    assert_eq!(c0["mismatches"], 2);
    assert_eq!(c0["first_mismatch"]["at"], "/gradient/1");
    assert_eq!(c0["first_mismatch"]["got"], Value::Null);
    assert_eq!(items[0]["score"], 1.0); // 3 points × 1/3
    assert_eq!(
        items[1]["checks"][0]["message"],
        "expected 3 numbers, got 2"
    );
    assert_eq!(items[1]["score"], 0.0);
    assert_eq!(
        items[2]["checks"][0]["message"],
        "expected 3 numbers, got 3 rows of 1 number"
    );
    // one check of two passed: half the points
    assert_eq!(items[3]["score"], 0.5);
    let loss_check = items[3]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "/loss")
        .unwrap();
    assert_eq!(loss_check["message"], "expected a number, got a string");
    assert_eq!(
        items[4]["checks"][0]["message"],
        "expected a number, got an object"
    );
    assert_eq!(items[5]["status"], "failed");
    assert!(
        items[5]["checks"][0]["max_abs_error"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
    assert_eq!(v["errors"], 0);
}

fn numbers_in(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(xs) => xs.iter().for_each(|x| numbers_in(x, out)),
        Value::Object(m) => m.values().for_each(|x| numbers_in(x, out)),
        _ => {}
    }
}

/// Every number in the response, with the key it sits under; and every string.
fn walk<'a>(v: &'a Value, key: &'a str, nums: &mut Vec<(&'a str, f64)>, strs: &mut Vec<&'a str>) {
    match v {
        Value::Number(n) => nums.push((key, n.as_f64().unwrap())),
        Value::String(s) => strs.push(s),
        Value::Array(xs) => xs.iter().for_each(|x| walk(x, key, nums, strs)),
        Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, k, nums, strs)),
        _ => {}
    }
}

#[tokio::test]
async fn reveal_none_carries_no_number_from_the_answer_or_the_reference() {
    let app = TestApp::new();
    let reference = student(&app, "mse", json!({})).await;
    let half = student(&app, "l2", json!({})).await;
    let answers = [
        json!({"loss": 0.123456789, "gradient": [0.25, -0.75, 0.3125]}),
        json!({"loss": half["loss"], "gradient": half["gradient"]}),
        json!({"loss": reference["loss"], "gradient": [reference["gradient"][0], "?", 7.77]}),
    ];
    let items: Vec<Value> = answers
        .iter()
        .map(|a| json!({"task": {"loss": mse_task()}, "answer": a, "partial": true}))
        .collect();
    let mut secret = Vec::new();
    numbers_in(&json!(answers), &mut secret);
    numbers_in(&reference, &mut secret);
    for reveal in ["none", "diff", "expected"] {
        let v = grade(&app, json!({"reveal": reveal, "items": items})).await;
        let (mut nums, mut strs) = (Vec::new(), Vec::new());
        walk(&v, "", &mut nums, &mut strs);
        let leaked: Vec<&(&str, f64)> = nums
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    *k,
                    "score" | "max_score" | "count" | "mismatches" | "passed" | "failed" | "errors"
                )
            })
            .collect();
        let in_text: Vec<f64> = secret
            .iter()
            .copied()
            .filter(|x| {
                let t = format!("{x}");
                t.len() > 3 && strs.iter().any(|s| s.contains(&t))
            })
            .collect();
        if reveal == "none" {
            assert!(
                leaked.is_empty(),
                "numbers in a reveal-none response: {leaked:?}"
            );
            assert!(in_text.is_empty(), "numbers in its text: {in_text:?}");
            assert_eq!(mistakes(&v["items"][1]), ["half_factor", "half_factor"]);
            assert!(v["items"][0]["checks"][0]["first_mismatch"]["at"].is_string());
        } else {
            assert!(!leaked.is_empty());
            let has_expected = v.to_string().contains("\"expected\"");
            assert_eq!(has_expected, reveal == "expected");
        }
    }
}

#[tokio::test]
async fn item_errors_point_from_the_request_root_and_the_rest_is_graded() {
    let app = TestApp::new();
    let good = json!({"task": {"loss": mse_task()}, "answer": {"loss": 1.5}});
    let v = grade(
        &app,
        json!({"items": [
            good,
            {"task": {"loss": mse_task()}, "answer": {"los": 1.5}},
            {"task": {"loss": mse_task()}, "answer": {"loss": 1.5}, "points": -1},
            {"task": {"loss": {"kind": "bce", "predictions": [0.5], "targets": [2.0]}},
             "answer": {"loss": 1.0}, "id": "bce"},
            {"task": {"loss": mse_task()}, "answer": {"loss": 1.5}, "tolerance": {"rtol": -1}},
            {"task": {"loss": {"kind": "nope", "predictions": [1], "targets": [1]}}, "answer": {"loss": 0}},
            {"task": {"loss": mse_task(), "train": {}}, "answer": {"loss": 1.5}},
            {"task": {"loss": mse_task()}, "answer": {}},
            {"task": {"loss": mse_task()}, "answer": {"loss": 1.5}, "extra": 1},
            {"task": {"loss": {"kind": "mse", "predictions": [1, "a"], "targets": [1, 2]}}, "answer": {"loss": 0}},
            "not an item",
            {"task": {"loss": mse_task()}, "answer": [1.5]},
            {"task": {"loss": {"kind": "mse", "predictions": [1], "targets": [1], "typo": 1}}, "answer": {"loss": 0}}
        ]}),
    )
    .await;
    assert_eq!(v["errors"], 12);
    assert_eq!(v["passed"], 1);
    let expect = [
        (1, 422, "/items/1/answer/los"),
        (2, 422, "/items/2/points"),
        (3, 422, "/items/3/task/loss/targets/0"),
        (4, 422, "/items/4/tolerance/rtol"),
        (5, 404, "/items/5/task/loss/kind"),
        (6, 422, "/items/6/task"),
        (7, 422, "/items/7/answer"),
        (8, 422, "/items/8/extra"),
        (9, 422, "/items/9/task/loss/predictions/1"),
        (10, 422, "/items/10"),
        (11, 422, "/items/11/answer"),
        (12, 422, "/items/12/task/loss/typo"),
    ];
    for (i, status, field) in expect {
        let item = &v["items"][i];
        assert_eq!(item["status"], "error", "{item}");
        assert_eq!(item["score"], 0.0);
        let p = &item["problem"];
        assert_eq!(p["status"], status, "{item}");
        assert_eq!(p["errors"][0]["field"], field, "{item}");
        assert!(p["type"].is_string() && p["title"].is_string() && p["detail"].is_string());
        assert!(
            item["feedback"]
                .as_str()
                .unwrap()
                .starts_with("This item could not be graded")
        );
    }
    assert_eq!(v["items"][3]["id"], "bce");
    assert_eq!(v["items"][2]["max_score"], 0.0);
    // not an object, or invalid points: worth 0
    assert_eq!(v["items"][10]["max_score"], 0.0);
    assert_eq!(v["max_score"], 11.0);
}

#[tokio::test]
async fn gradescope_output_has_results_json_fields() {
    let app = TestApp::new();
    let half = student(&app, "l2", json!({})).await;
    let v = grade(
        &app,
        json!({"format": "gradescope", "items": [
            {"id": "mse value", "points": 2, "task": {"loss": mse_task()}, "answer": {"loss": 1.5}},
            {"id": "mse ½", "task": {"loss": mse_task()}, "answer": {"loss": half["loss"]}},
            {"task": {"loss": mse_task()}, "answer": {"nothing": 1}}
        ]}),
    )
    .await;
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(top, ["score", "tests"]);
    assert_eq!(v["score"], 2.0);
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 3);
    for t in tests {
        let mut keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["max_score", "name", "output", "score", "status"]);
        assert!(t["score"].is_number() && t["max_score"].is_number());
        assert!(t["status"] == "passed" || t["status"] == "failed");
        assert!(t["output"].is_string() && t["name"].is_string());
    }
    assert_eq!(tests[0]["name"], "mse value");
    assert_eq!(tests[0]["status"], "passed");
    assert_eq!(tests[0]["max_score"], 2.0);
    assert_eq!(tests[1]["status"], "failed");
    assert!(tests[1]["output"].as_str().unwrap().contains("half_factor"));
    assert_eq!(tests[2]["name"], "2");
    assert_eq!(tests[2]["status"], "failed");
}

#[tokio::test]
async fn request_level_problems_answer_their_status() {
    let app = TestApp::new();
    let item = json!({"task": {"loss": mse_task()}, "answer": {"loss": 1.5}});
    // 400: not JSON; a number outside the f64 range, also inside an item
    app.post_raw("/grade", "application/json", b"{\"items\": [".to_vec())
        .await
        .problem(400);
    app.post_raw(
        "/grade",
        "application/json",
        br#"{"items": [{"task": {"loss": {"kind": "mse", "predictions": [1e400], "targets": [1]}}, "answer": {"loss": 1}}]}"#.to_vec(),
    )
    .await
    .problem(400);
    // 415
    app.post_raw("/grade", "text/plain", b"{}".to_vec())
        .await
        .problem(415);
    // 422: no items, missing items, unknown top-level field, bad reveal / format / tolerance
    app.post_json("/grade", &json!({"items": []}))
        .await
        .invalid_at("/items");
    app.post_json("/grade", &json!({}))
        .await
        .invalid_at("/items");
    app.post_json("/grade", &json!({"items": [item], "verbose": true}))
        .await
        .invalid_at("/verbose");
    app.post_json("/grade", &json!({"items": [item], "reveal": "all"}))
        .await
        .invalid_at("/reveal");
    app.post_json("/grade", &json!({"items": [item], "format": "csv"}))
        .await
        .invalid_at("/format");
    app.post_json(
        "/grade",
        &json!({"items": [item], "tolerance": {"atol": -1}}),
    )
    .await
    .invalid_at("/tolerance/atol");
    // an array is not an object, though serde's derived structs would read it positionally
    app.post_json(
        "/grade",
        &json!({"items": [item], "tolerance": [null, null]}),
    )
    .await
    .invalid_at("/tolerance");
    let r = app
        .post_json("/grade", &json!({"items": [item], "tolerance": null}))
        .await;
    assert_eq!(r.status, 200, "a null tolerance is the default one");
    assert_eq!(r.json()["count"], 1);
    app.post_json("/grade", &json!({"items": {"0": item}}))
        .await
        .invalid_at("/items");
    // 422: more items than --max-grade-items; 413: a body over the limit
    let small = TestApp::with_config(Config {
        max_grade_items: 2,
        max_body_bytes: 4096,
        ..Config::default()
    });
    small
        .post_json("/grade", &json!({"items": [item, item]}))
        .await;
    let p = small
        .post_json("/grade", &json!({"items": [item, item, item]}))
        .await
        .invalid_at("/items");
    assert!(p["detail"].as_str().unwrap().contains("at most 2"));
    let big = json!({"items": [{"task": {"loss": {"kind": "mse",
        "predictions": vec![0.5; 2000], "targets": vec![0.5; 2000]}}, "answer": {"loss": 0}}]});
    small.post_json("/grade", &big).await.problem(413);
    // 405
    assert_eq!(app.get("/grade").await.status, 405);
}

#[tokio::test]
async fn a_class_shares_each_task_and_ids_default_to_the_index() {
    let app = TestApp::new();
    let half = student(&app, "l2", json!({})).await;
    let items: Vec<Value> = (0..200)
        .map(|i| {
            let loss = if i % 2 == 0 {
                json!(1.5)
            } else {
                half["loss"].clone()
            };
            json!({"task": {"loss": mse_task()}, "answer": {"loss": loss}})
        })
        .collect();
    let v = grade(&app, json!({"items": items})).await;
    assert_eq!(v["passed"], 100);
    assert_eq!(v["failed"], 100);
    assert_eq!(v["score"], 100.0);
    assert_eq!(v["items"][7]["id"], "7");
    assert_eq!(mistakes(&v["items"][199]), ["half_factor"]);
}

// ---------------------------------------------------------------------------------
// training runs

use crate::support::textbook_neuron;

async fn train(app: &TestApp, body: Value) -> Value {
    let r = app.post_train(body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// A student's own loop for the neuron (½(a − y)², a = σ(w·1)), with the update's sign
/// as they wrote it: `+1.0` is the ascent mistake.
fn students_loop(sign: f64, states: usize) -> Vec<Value> {
    let mut w = 9f64.ln();
    let mut rows = Vec::new();
    for i in 0..states {
        let a = sigmoid(w);
        let loss = 0.5 * (a - 0.5) * (a - 0.5);
        let grad = (a - 0.5) * a * (1.0 - a);
        rows.push(json!({"iteration": i, "loss": loss, "weights": [w]}));
        w += sign * 0.2 * grad;
    }
    rows
}

#[tokio::test]
async fn the_textbook_neuron_287_passes_143_is_bias_trained_288_off_by_one() {
    let app = TestApp::new();
    let with_bias = {
        let mut b = textbook_neuron();
        b["use_bias"] = json!(true);
        train(&app, b).await
    };
    assert_eq!(with_bias["iterations"], 143);
    let task = json!({"train": textbook_neuron()});
    let v = grade(
        &app,
        json!({"items": [
            {"task": task, "answer": {"iterations": 287, "converged": true, "stop_reason": "loss_below"}},
            {"task": task, "answer": {"iterations": with_bias["iterations"],
                                      "final": {"weights": with_bias["final"]["weights"]}}},
            {"task": task, "answer": {"iterations": 288}},
            {"task": task, "answer": {"iterations": 287, "stop_reason": "max_iterations", "converged": "yes"}, "partial": true}
        ]}),
    )
    .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "passed", "{}", items[0]);
    assert_eq!(mistakes(&items[1]), ["bias_trained", "bias_trained"]);
    assert_eq!(mistakes(&items[2]), ["off_by_one"]);
    // stop_reason and converged get no diagnosis; one check of three passed
    assert!(mistakes(&items[3]).is_empty());
    let by_field = |item: &Value, f: &str| -> Value {
        item["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == f)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_field(&items[3], "/converged")["message"],
        "expected true or false, got a string"
    );
    assert_eq!(
        by_field(&items[3], "/stop_reason")["message"],
        "differs from the reference"
    );
    assert!((items[3]["score"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-15);
}

#[tokio::test]
async fn a_trace_climbing_the_loss_diverges_at_iteration_1_as_gradient_ascent() {
    let app = TestApp::new();
    let mut body = textbook_neuron();
    body["max_iterations"] = json!(3);
    let right = students_loop(-1.0, 4);
    let up = students_loop(1.0, 4);
    let v = grade(
        &app,
        json!({"reveal": "expected", "items": [
            {"task": {"train": body}, "answer": {"trace": right}},
            {"task": {"train": body}, "answer": {"trace": up}, "partial": true, "points": 4}
        ]}),
    )
    .await;
    assert_eq!(v["items"][0]["status"], "passed", "{}", v["items"][0]);
    let item = &v["items"][1];
    let c = &item["checks"][0];
    assert_eq!(c["passed"], false);
    assert_eq!(c["mismatches"], 3);
    assert_eq!(c["first_mismatch"]["iteration"], 1);
    assert_eq!(c["first_mismatch"]["at"], "/trace/1/loss");
    assert!(c["first_mismatch"]["expected"].is_number());
    assert_eq!(c["expected"].as_array().unwrap().len(), 4);
    assert_eq!(mistakes(item), ["gradient_ascent"]);
    // rows before the divergence over rows claimed: 1/4 of 4 points
    assert_eq!(item["score"], 1.0);
}

#[tokio::test]
async fn trace_rows_at_state_0_in_the_middle_and_past_the_end() {
    let app = TestApp::new();
    let mut body = textbook_neuron();
    body["trace_every"] = json!(0); // the claimed states are traced all the same
    let rows = students_loop(-1.0, 288);
    let mut wrong0 = rows[0].clone();
    wrong0["loss"] = json!(0.16);
    let mut wrong_mid = rows[150].clone();
    wrong_mid["weights"] = json!([1.0]);
    let past = json!({"iteration": 300, "loss": 0.0});
    let task = json!({"train": body});
    let v = grade(
        &app,
        json!({"items": [
            {"task": task, "answer": {"trace": [rows[0], rows[100], rows[287]]}},
            {"task": task, "answer": {"trace": [wrong0, rows[1]]}, "partial": true},
            {"task": task, "answer": {"trace": [rows[0], rows[100], wrong_mid, rows[200]]}, "partial": true},
            {"task": task, "answer": {"trace": [rows[0], past]}, "partial": true},
            {"task": task, "answer": {"trace": [{"loss": 0.08}, "row"]}}
        ]}),
    )
    .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "passed", "{}", items[0]);
    let first = |i: usize| items[i]["checks"][0]["first_mismatch"]["at"].clone();
    assert_eq!(first(1), "/trace/0/loss");
    assert_eq!(items[1]["score"], 0.0);
    assert_eq!(first(2), "/trace/2/weights/0");
    assert_eq!(items[2]["checks"][0]["first_mismatch"]["iteration"], 150);
    assert_eq!(items[2]["score"], 0.5);
    assert_eq!(first(3), "/trace/1/iteration");
    assert!(
        items[3]["checks"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no such state")
    );
    assert_eq!(items[3]["score"], 0.5);
    assert_eq!(first(4), "/trace/0/iteration");
    assert_eq!(items[4]["checks"][0]["mismatches"], 2);
}

#[tokio::test]
async fn train_task_errors_point_into_the_task() {
    let app = TestApp::new();
    let mut bad_lr = textbook_neuron();
    bad_lr["learning_rate"] = json!(-0.2);
    let mut bad_act = textbook_neuron();
    bad_act["loss"] = json!("bce");
    bad_act["activation"] = json!("tanh");
    let v = grade(
        &app,
        json!({"items": [
            {"task": {"train": bad_lr}, "answer": {"iterations": 287}},
            {"task": {"train": bad_act}, "answer": {"iterations": 287}},
            {"task": {"train": textbook_neuron()}, "answer": {"final": {"weight": [1]}}},
            {"task": {"train": textbook_neuron()}, "answer": {"trace": [{"iteration": 0, "los": 1}]}},
            {"task": {"train": textbook_neuron()}, "answer": {"loss": 0.001}}
        ]}),
    )
    .await;
    let fields: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["problem"]["errors"][0]["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "/items/0/task/train/learning_rate",
            "/items/1/task/train/activation",
            "/items/2/answer/final/weight",
            "/items/3/answer/trace/0/los",
            "/items/4/answer/loss"
        ]
    );
}

#[tokio::test]
async fn the_specs_examples_are_what_the_service_answers() {
    let app = TestApp::new();
    let spec = app.get("/openapi.json").await.json();
    let op = &spec["paths"]["/grade"]["post"];
    let requests = op["requestBody"]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap();
    let responses = &op["responses"]["200"]["content"]["application/json"]["examples"];
    assert_eq!(requests.len(), 4);
    for name in ["passing", "half_factor", "trace_diverges", "gradescope"] {
        let got = grade(&app, requests[name]["value"].clone()).await;
        assert_eq!(got, responses[name]["value"], "example {name}");
    }
}

// ---------------------------------------------------------------------------------
// gradients

#[tokio::test]
async fn gradient_tasks_name_the_two_gradients_confused() {
    let app = TestApp::new();
    let body = json!({"loss": "bce", "logits": [2.0, -1.0, 0.5], "targets": [1.0, 0.0, 1.0],
                      "activation": "sigmoid"});
    let r = app.post_gradient(body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let g = r.json();
    let task = json!({"gradient": body});
    let v = grade(
        &app,
        json!({"items": [
            {"task": task, "answer": {"loss": g["loss"], "activations": g["activations"],
                                      "d_predictions": g["d_predictions"], "d_logits": g["d_logits"]}},
            {"task": task, "answer": {"d_logits": g["d_predictions"]}},
            {"task": task, "answer": {"d_predictions": g["d_logits"]}},
            {"task": {"gradient": {"loss": "mse", "predictions": [0.5], "targets": [1.0]}},
             "answer": {"d_logits": [1.0]}},
            {"task": {"gradient": {"loss": "mse", "predictions": [0.5], "logits": [0.5], "targets": [1.0]}},
             "answer": {"loss": 0.25}}
        ]}),
    )
    .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "passed", "{}", items[0]);
    assert_eq!(items[0]["checks"].as_array().unwrap().len(), 4);
    assert_eq!(mistakes(&items[1]), ["activation_derivative_missing"]);
    assert_eq!(mistakes(&items[2]), ["wrt_logits"]);
    assert_eq!(
        items[3]["problem"]["errors"][0]["field"],
        "/items/3/answer/d_logits"
    );
    assert_eq!(
        items[4]["problem"]["errors"][0]["field"],
        "/items/4/task/gradient/logits"
    );
}

#[tokio::test]
async fn a_gradient_without_the_weights_or_with_y_minus_a() {
    let app = TestApp::new();
    let body = json!({"loss": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5],
                      "weights": [1.0, 2.0, 0.5]});
    let mut unweighted = body.clone();
    unweighted.as_object_mut().unwrap().remove("weights");
    let g = app.post_gradient(unweighted).await.json();
    let right = app.post_gradient(body.clone()).await.json();
    let flipped: Vec<f64> = right["d_predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| -x.as_f64().unwrap())
        .collect();
    let v = grade(
        &app,
        json!({"items": [
            {"task": {"gradient": body}, "answer": {"d_predictions": g["d_predictions"]}},
            {"task": {"gradient": body}, "answer": {"d_predictions": flipped}}
        ]}),
    )
    .await;
    assert_eq!(mistakes(&v["items"][0]), ["weights_ignored"]);
    assert_eq!(mistakes(&v["items"][1]), ["sign_flipped"]);
}
