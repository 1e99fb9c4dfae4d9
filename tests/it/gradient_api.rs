//! POST /gradient: predictions, logits through activations, fused pairs, the check.

use serde_json::json;

use crate::support::{TestApp, close};

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[tokio::test]
async fn sigmoid_with_l2_gives_the_textbook_chain_rule() {
    // dL/dz = (a − y)·a·(1 − a) for one term (sum reduction)
    let r = TestApp::new()
        .post_gradient(json!({"loss": "l2", "logits": [0.7], "targets": [0.2],
            "activation": "sigmoid", "reduction": "sum"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let a = sigmoid(0.7);
    close(&v["activations"][0], a);
    close(&v["d_predictions"][0], a - 0.2);
    close(&v["d_logits"][0], (a - 0.2) * a * (1.0 - a));
}

#[tokio::test]
async fn sigmoid_with_bce_gives_a_minus_y_over_count() {
    let v = TestApp::new()
        .post_gradient(
            json!({"loss": "bce", "logits": [2.0, -1.0], "targets": [1.0, 0.0],
            "activation": "sigmoid", "check": true}),
        )
        .await
        .json();
    close(&v["d_logits"][0], (sigmoid(2.0) - 1.0) / 2.0);
    close(&v["d_logits"][1], sigmoid(-1.0) / 2.0);
    assert_eq!(v["count"], 2);
    let check = &v["check"];
    assert_eq!(check["passed"], true, "{check}");
    assert_eq!(check["epsilon"], 1e-6);
    assert!(check["relative_difference"].as_f64().unwrap() <= 1e-7);
}

#[tokio::test]
async fn the_fused_pair_is_exact_at_logit_800() {
    let v = TestApp::new()
        .post_gradient(json!({"loss": "bce", "logits": [-800.0], "targets": [1.0],
            "activation": "sigmoid"}))
        .await
        .json();
    assert_eq!(v["loss"], 800.0);
    close(&v["d_logits"][0], -1.0);
}

#[tokio::test]
async fn softmax_with_cross_entropy_gives_a_minus_y_over_rows() {
    let v = TestApp::new()
        .post_gradient(
            json!({"loss": "cross_entropy", "logits": [[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]],
            "targets": [1, 2], "activation": "softmax"}),
        )
        .await
        .json();
    let a = &v["activations"];
    close(
        &v["d_logits"][0][1],
        (a[0][1].as_f64().unwrap() - 1.0) / 2.0,
    );
    close(&v["d_logits"][1][0], (1.0 / 3.0) / 2.0);
}

#[tokio::test]
async fn predictions_give_dl_da_and_a_passing_check() {
    let v = TestApp::new()
        .post_gradient(
            json!({"loss": "huber", "predictions": [0.3, 2.0], "targets": [0.0, 0.0],
            "check": true}),
        )
        .await
        .json();
    close(&v["d_predictions"][0], 0.3 / 2.0);
    close(&v["d_predictions"][1], 1.0 / 2.0);
    assert!(v.get("d_logits").is_none());
    assert_eq!(v["check"]["passed"], true);
}

#[tokio::test]
async fn predictions_and_logits_together_or_neither_are_422() {
    let app = TestApp::new();
    app.post_gradient(json!({"loss": "mse", "predictions": [1], "logits": [1], "targets": [1]}))
        .await
        .invalid_at("/logits");
    app.post_gradient(json!({"loss": "mse", "targets": [1]}))
        .await
        .invalid_at("/predictions");
}

#[tokio::test]
async fn a_check_over_ten_thousand_elements_is_422_at_check() {
    let n = 10_001;
    TestApp::new()
        .post_gradient(
            json!({"loss": "mse", "predictions": vec![0.5; n], "targets": vec![0.0; n],
            "check": true}),
        )
        .await
        .invalid_at("/check");
}

#[tokio::test]
async fn errors_through_an_activation_point_at_the_logits() {
    TestApp::new()
        .post_gradient(
            json!({"loss": "mse", "logits": [1.0, 2.0], "targets": [1.0],
            "activation": "tanh"}),
        )
        .await
        .invalid_at("/targets");
}
