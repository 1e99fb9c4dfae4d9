//! POST /train and GET /train/examples through HTTP: the textbook figures, streaming, SVG.

use serde_json::json;

use crate::support::{TestApp, close, textbook_neuron};

#[tokio::test]
async fn the_textbook_neuron_reproduces_the_book() {
    let r = TestApp::new().post_train(textbook_neuron()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    // the book's 0.08: σ(ln 9) = 0.8999999999999999 in f64 (as torch float64), so the
    // state-0 loss is 0.07999999999999996; the next weight is the book's to the last bit
    close(&v["trace"][0]["loss"], 0.08);
    assert_eq!(v["trace"][1]["weights"], json!([2.1900245773362195]));
    assert_eq!(v["iterations"], 287);
    assert_eq!(v["stop_reason"], "loss_below");
    assert_eq!(v["converged"], true);
    assert_eq!(v["final"]["iteration"], 287);
    assert!(
        v["final"]["bias"].is_number(),
        "flat targets: bias is a number"
    );
}

#[tokio::test]
async fn with_the_bias_trained_the_neuron_stops_at_143() {
    let mut req = textbook_neuron();
    req["use_bias"] = json!(true);
    let v = TestApp::new().post_train(req).await.json();
    assert_eq!(v["iterations"], 143);
}

#[tokio::test]
async fn bce_on_the_neuron_never_gets_below_ln_2_and_ends_cleanly() {
    let mut req = textbook_neuron();
    req["loss"] = json!("bce");
    req["max_iterations"] = json!(500);
    req["trace_every"] = json!(0);
    let v = TestApp::new().post_train(req).await.json();
    assert_eq!(v["stop_reason"], "max_iterations");
    assert_eq!(v["converged"], false);
    assert_eq!(v["iterations"], 500);
    assert_eq!(v["trace"], json!([]));
    assert!(v["final"]["loss"].as_f64().unwrap() >= std::f64::consts::LN_2);
}

#[tokio::test]
async fn ndjson_streams_rows_then_the_summary() {
    let mut req = textbook_neuron();
    req["trace_every"] = json!(100);
    let r = TestApp::new()
        .post_train_accept(req, "application/x-ndjson")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    assert!(r.header("content-encoding").is_none());
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // states 0, 100, 200 and the final 287, then the summary
    let iters: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l["iteration"].as_u64().unwrap())
        .collect();
    assert_eq!(iters, vec![0, 100, 200, 287]);
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.get("stop_reason").is_none())
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["stop_reason"], "loss_below");
    assert_eq!(summary["iterations"], 287);
    assert!(summary.get("trace").is_none());
}

#[tokio::test]
async fn svg_is_the_loss_curve_and_needs_a_trace() {
    let app = TestApp::new();
    let r = app
        .post_train_accept(textbook_neuron(), "image/svg+xml")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    let svg = r.text();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"));
    assert!(svg.trim_end().ends_with("</svg>"));
    let mut req = textbook_neuron();
    req["trace_every"] = json!(0);
    app.post_train_accept(req, "image/svg+xml")
        .await
        .invalid_at("/trace_every");
}

#[tokio::test]
async fn limits_are_422_before_any_work() {
    let app = TestApp::new();
    let mut req = textbook_neuron();
    req["max_iterations"] = json!(1_000_001);
    app.post_train(req).await.invalid_at("/max_iterations");
    let mut req = textbook_neuron();
    req["max_iterations"] = json!(1_000_000);
    req["trace_every"] = json!(1);
    app.post_train(req).await.invalid_at("/trace_every");
    let mut req = textbook_neuron();
    req["activation"] = json!("identity");
    req["loss"] = json!("bce");
    app.post_train(req).await.invalid_at("/activation");
    let mut req = textbook_neuron();
    req["optimizer"] = json!({"kind": "adamw"});
    app.post_train(req).await.invalid_at("/optimizer/kind");
}

#[tokio::test]
async fn examples_start_with_the_textbook_neuron_and_all_run() {
    let app = TestApp::new();
    let ex = app.get("/train/examples").await.json();
    let list = ex.as_array().unwrap();
    assert!(list.len() >= 5);
    assert_eq!(list[0]["request"]["loss"], "l2");
    assert_eq!(list[1]["request"]["loss"], "bce");
    for e in list {
        assert!(e["name"].is_string() && e["description"].is_string());
        let r = app.post_train(e["request"].clone()).await;
        assert_eq!(r.status, 200, "{}: {}", e["name"], r.text());
    }
    let first = app.post_train(list[0]["request"].clone()).await.json();
    assert_eq!(first["iterations"], 287);
}
