//! Every status code of API.md, each as application/problem+json with the right field.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::Request;
use losslab::Config;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::new();
    app.post_raw(
        "/loss/mse",
        "application/json",
        b"{\"predictions\": [1,".to_vec(),
    )
    .await
    .problem(400);
    app.post_raw("/loss/mse", "application/json", b"not json".to_vec())
        .await
        .problem(400);
}

#[tokio::test]
async fn a_number_outside_the_f64_range_is_400() {
    let app = TestApp::new();
    app.post_raw(
        "/loss/mse",
        "application/json",
        br#"{"predictions": [1e400], "targets": [0]}"#.to_vec(),
    )
    .await
    .problem(400);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    TestApp::new().get("/nope").await.problem(404);
}

#[tokio::test]
async fn an_unknown_kind_is_404_listing_the_known_kinds() {
    let p = TestApp::new()
        .post_loss("mse2", json!({"predictions": [1], "targets": [1]}))
        .await
        .problem(404);
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("smooth_l1") && detail.contains("cosine"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let r = TestApp::new().get("/loss/mse").await;
    r.problem(405);
    assert!(r.header("allow").is_some_and(|a| a.contains("POST")));
    TestApp::new()
        .send(Request::delete("/train").body(Body::empty()).unwrap())
        .await
        .problem(405);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::with_config(Config {
        max_body_bytes: 100,
        ..Config::default()
    });
    let big = format!(
        "{{\"predictions\": [{}], \"targets\": [1]}}",
        vec!["1"; 100].join(",")
    );
    app.post_raw("/loss/mse", "application/json", big.into_bytes())
        .await
        .problem(413);
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = TestApp::new();
    app.post_raw(
        "/loss/mse",
        "text/plain",
        br#"{"predictions": [1], "targets": [1]}"#.to_vec(),
    )
    .await
    .problem(415);
    app.send(
        Request::post("/loss/mse")
            .body(Body::from(r#"{"predictions": [1], "targets": [1]}"#))
            .unwrap(),
    )
    .await
    .problem(415);
}

#[tokio::test]
async fn invalid_input_is_422_naming_the_field() {
    let app = TestApp::new();
    // a probability outside [0, 1]
    app.post_loss("bce", json!({"predictions": [0.5, 0.5], "targets": [0, 2]}))
        .await
        .invalid_at("/targets/1");
    // a row not summing to 1
    app.post_loss(
        "kl_div",
        json!({"predictions": [[0.5, 0.5], [0.5, 0.6]], "targets": [[0.5, 0.5], [0.5, 0.5]]}),
    )
    .await
    .invalid_at("/predictions/1");
    // shapes that differ
    app.post_loss("mse", json!({"predictions": [1, 2], "targets": [1]}))
        .await
        .invalid_at("/targets");
    // ragged rows
    app.post_loss(
        "mse",
        json!({"predictions": [[1, 2], [3]], "targets": [[1, 2], [3, 4]]}),
    )
    .await
    .problem(422);
    // a class index out of range
    app.post_loss(
        "cross_entropy",
        json!({"predictions": [[0.5, 0.5]], "targets": [2]}),
    )
    .await
    .invalid_at("/targets/0");
    // KL infinite
    app.post_loss(
        "kl_div",
        json!({"predictions": [0.0, 1.0], "targets": [0.5, 0.5]}),
    )
    .await
    .invalid_at("/predictions/0");
    // all-zero weights
    app.post_loss(
        "mse",
        json!({"predictions": [1, 2], "targets": [0, 0], "weights": [0, 0]}),
    )
    .await
    .invalid_at("/weights");
    // mixed hinge labels
    app.post_loss(
        "hinge",
        json!({"predictions": [1, 2, 3], "targets": [-1, 0, 1]}),
    )
    .await
    .problem(422);
}

#[tokio::test]
async fn unknown_fields_params_and_values_are_422_naming_the_field() {
    let app = TestApp::new();
    app.post_loss(
        "mse",
        json!({"predictions": [1], "targets": [1], "bogus": 1}),
    )
    .await
    .invalid_at("/bogus");
    let p = app
        .post_loss(
            "huber",
            json!({"predictions": [1], "targets": [1], "params": {"deltaa": 1}}),
        )
        .await
        .invalid_at("/params/deltaa");
    assert!(p["detail"].as_str().unwrap().contains("delta"));
    app.post_loss(
        "mse",
        json!({"predictions": [1], "targets": [1], "reduction": "avg"}),
    )
    .await
    .invalid_at("/reduction");
    app.post_gradient(json!({"loss": "msee", "predictions": [1], "targets": [1]}))
        .await
        .invalid_at("/loss");
    app.post_gradient(json!({"loss": "mse", "logits": [1], "targets": [1], "activation": "swish"}))
        .await
        .invalid_at("/activation");
    app.post_loss(
        "huber",
        json!({"predictions": [1], "targets": [1], "params": {"delta": 0}}),
    )
    .await
    .invalid_at("/params/delta");
    app.post_loss(
        "mse",
        json!({"predictions": [1], "targets": [1], "from_logits": true}),
    )
    .await
    .invalid_at("/from_logits");
    app.post_loss("mse", json!({"predictions": ["x"], "targets": [1]}))
        .await
        .invalid_at("/predictions/0");
    app.post_loss("mse", json!({"targets": [1]}))
        .await
        .invalid_at("/predictions");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_only_when_configured() {
    let app = TestApp::with_config(Config {
        rate_limit_per_ip: 2,
        ..Config::default()
    });
    let body = json!({"predictions": [1], "targets": [1]});
    assert_eq!(app.post_loss("mse", body.clone()).await.status, 200);
    assert_eq!(app.post_loss("mse", body.clone()).await.status, 200);
    let r = app.post_loss("mse", body.clone()).await;
    r.problem(429);
    assert!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
    // health probes are never limited
    assert_eq!(app.get("/healthz").await.status, 200);
    // off by default
    let app = TestApp::new();
    for _ in 0..50 {
        assert_eq!(app.post_loss("mse", body.clone()).await.status, 200);
    }
}

#[tokio::test]
async fn readyz_is_503_once_shutdown_begins() {
    let app = TestApp::new();
    assert_eq!(app.get("/readyz").await.status, 200);
    app.state.ready.store(false, Ordering::Relaxed);
    app.get("/readyz").await.problem(503);
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// A /train that takes minutes: 400 samples × 50 features × 3 outputs, a million steps.
fn long_train() -> serde_json::Value {
    let inputs: Vec<Vec<f64>> = (0..400)
        .map(|i| {
            (0..50)
                .map(|j| ((i * 31 + j * 17) % 13) as f64 / 13.0)
                .collect()
        })
        .collect();
    let targets: Vec<Vec<f64>> = (0..400).map(|i| vec![(i % 3) as f64, 1.0, -1.0]).collect();
    json!({"inputs": inputs, "targets": targets, "loss": "mse", "learning_rate": 1e-6,
           "max_iterations": 1_000_000, "trace_every": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_time_limit_the_answer_is_503_and_the_work_stops() {
    let app = TestApp::with_config(Config {
        timeout_secs: 1,
        ..Config::default()
    });
    let p = app.post_train(long_train()).await.problem(503);
    assert!(p["detail"].as_str().unwrap().contains("time limit"), "{p}");
    // the slot was given back: a new heavy request gets through
    let r = app.post_train(crate::support::textbook_neuron()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_beyond_the_queue_is_503_but_small_requests_still_pass() {
    let app = std::sync::Arc::new(TestApp::with_config(Config {
        max_concurrency: Some(1),
        queue: 0,
        timeout_secs: 20,
        ..Config::default()
    }));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let a = app.clone();
    let long = tokio::spawn(async move {
        let fut = a.post_train(long_train());
        let _ = started_tx.send(());
        fut.await
    });
    let _ = started_rx.await;
    // wait until the long run holds the only slot
    for _ in 0..200 {
        if app.state.heavy.running(1) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.heavy.running(1), 1);
    let p = app
        .post_train(crate::support::textbook_neuron())
        .await
        .problem(503);
    assert!(p["detail"].as_str().unwrap().contains("busy"));
    // small requests are never shed
    let r = app
        .post_loss("mse", json!({"predictions": [1], "targets": [0]}))
        .await;
    assert_eq!(r.status, 200);
    long.abort();
}
