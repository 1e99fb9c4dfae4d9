//! POST /loss/{kind} through the real router: values, shapes, reductions, weights,
//! gradients, guards, and exact numbers both ways.

use serde_json::json;

use crate::support::{TestApp, close};

#[tokio::test]
async fn mse_returns_the_mean_and_its_gradient() {
    let app = TestApp::new();
    let r = app
        .post_loss(
            "mse",
            json!({"predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5], "gradient": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["kind"], "mse");
    assert_eq!(v["reduction"], "mean");
    assert_eq!(v["count"], 3);
    close(&v["loss"], 1.5);
    close(&v["gradient"][0], -1.0 / 3.0);
    close(&v["gradient"][1], 4.0 / 3.0);
    assert!(v.get("guard").is_none());
}

#[tokio::test]
async fn the_textbook_regression_example_gives_sse_3_and_34() {
    let app = TestApp::new();
    let y = json!([-3.0, 0.0, 0.0, 3.0, 4.0]);
    let fit = app
        .post_loss(
            "mse",
            json!({"predictions": [-3, -1, 1, 3, 5], "targets": y, "reduction": "sum"}),
        )
        .await
        .json();
    assert_eq!(fit["loss"], 3.0);
    let zero = app
        .post_loss(
            "mse",
            json!({"predictions": [0, 0, 0, 0, 0], "targets": y, "reduction": "sum"}),
        )
        .await
        .json();
    assert_eq!(zero["loss"], 34.0);
}

#[tokio::test]
async fn kl_divergence_in_base_10_matches_the_textbook() {
    let app = TestApp::new();
    let r = app
        .post_loss(
            "kl_div",
            json!({"targets": [0.9, 0.1], "predictions": [0.1, 0.9], "params": {"log_base": 10}}),
        )
        .await
        .json();
    let v = r["loss"].as_f64().unwrap();
    assert_eq!((v * 1000.0).round() / 1000.0, 0.763);
    let r = app
        .post_loss(
            "kl_div",
            json!({"targets": [0.9, 0.1], "predictions": [0.5, 0.5], "params": {"log_base": 10}}),
        )
        .await
        .json();
    let v = r["loss"].as_f64().unwrap();
    assert_eq!((v * 1000.0).round() / 1000.0, 0.160);
}

#[tokio::test]
async fn reduction_none_keeps_the_shape_of_elementwise_kinds_and_is_flat_per_row() {
    let app = TestApp::new();
    let r = app
        .post_loss(
            "l2",
            json!({"predictions": [[1, 2], [3, 4]], "targets": [[0, 0], [0, 0]], "reduction": "none"}),
        )
        .await
        .json();
    assert_eq!(r["loss"], json!([[0.5, 2.0], [4.5, 8.0]]));
    assert_eq!(r["count"], 4);
    let r = app
        .post_loss(
            "cross_entropy",
            json!({"predictions": [[0.5, 0.5], [0.25, 0.75]], "targets": [0, 1], "reduction": "none"}),
        )
        .await
        .json();
    assert_eq!(r["count"], 2);
    close(&r["loss"][0], std::f64::consts::LN_2);
    close(&r["loss"][1], -(0.75f64.ln()));
    let r = app
        .post_loss(
            "cross_entropy",
            json!({"predictions": [0.5, 0.5], "targets": [0], "reduction": "none"}),
        )
        .await
        .json();
    assert_eq!(
        r["loss"].as_array().unwrap().len(),
        1,
        "a flat input is one row"
    );
}

#[tokio::test]
async fn weights_give_the_weighted_mean() {
    let app = TestApp::new();
    // mean = (1·1 + 3·4) / (1 + 3)
    let r = app
        .post_loss(
            "mse",
            json!({"predictions": [1, 2], "targets": [0, 0], "weights": [1, 3], "gradient": true}),
        )
        .await
        .json();
    close(&r["loss"], 13.0 / 4.0);
    close(&r["gradient"][1], 3.0 * 4.0 / 4.0);
}

#[tokio::test]
async fn bce_at_probability_zero_reports_the_clamp_guard() {
    let app = TestApp::new();
    let r = app
        .post_loss(
            "bce",
            json!({"predictions": [0.0], "targets": [1.0], "gradient": true}),
        )
        .await
        .json();
    close(&r["loss"], 100.0);
    let guard = r["guard"].as_str().expect("guard present");
    assert!(guard.contains("-100"), "{guard}");
}

#[tokio::test]
async fn bce_from_logits_is_exact_at_800() {
    let app = TestApp::new();
    let r = app
        .post_loss(
            "bce",
            json!({"predictions": [800.0], "targets": [0.0], "from_logits": true}),
        )
        .await
        .json();
    assert_eq!(r["loss"], 800.0);
    assert!(r.get("guard").is_none());
}

#[tokio::test]
async fn index_and_one_hot_targets_agree_with_class_weights() {
    let app = TestApp::new();
    let p = json!([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]);
    let w = json!({"class_weights": [1.0, 2.0, 0.5]});
    let a = app
        .post_loss(
            "cross_entropy",
            json!({"predictions": p, "targets": [2, 0], "params": w}),
        )
        .await
        .json();
    let b = app
        .post_loss(
            "cross_entropy",
            json!({"predictions": p, "targets": [[0, 0, 1], [1, 0, 0]], "params": w}),
        )
        .await
        .json();
    assert_eq!(a["loss"], b["loss"]);
    // (0.5·(−ln 0.5) + 1·(−ln 0.6)) / (0.5 + 1)
    close(&a["loss"], (0.5 * -(0.5f64.ln()) + -(0.6f64.ln())) / 1.5);
}

/// A small deterministic generator of full-precision doubles.
fn doubles(n: usize, mut seed: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // random sign-free exponent and mantissa in a wide range
            let mant = (z >> 12) as f64 / (1u64 << 52) as f64 + 1.0;
            mant * 2f64.powi(((z & 0x3ff) as i32) - 512)
        })
        .collect()
}

#[tokio::test]
async fn every_number_round_trips_exactly_both_ways() {
    // mae against zero targets with reduction none echoes |a| = a: what comes back must be
    // the nearest f64 to what was sent (parsed exactly) and print back to the same f64.
    let app = TestApp::new();
    let xs = doubles(2000, 42);
    // write each number with 17 significant digits (some need them all)
    let text: Vec<String> = xs.iter().map(|x| format!("{x:.16e}")).collect();
    let body = format!(
        "{{\"predictions\": [{}], \"targets\": [{}], \"reduction\": \"none\"}}",
        text.join(","),
        vec!["0"; xs.len()].join(",")
    );
    let r = app
        .post_raw("/loss/mae", "application/json", body.into_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // find each printed number in the raw body and parse it with Rust's exact parser
    let raw = r.text();
    let start = raw.find("\"loss\":[").expect("loss array") + 8;
    let end = start + raw[start..].find(']').unwrap();
    let printed: Vec<f64> = raw[start..end]
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    for ((sent, got), x) in text.iter().zip(&printed).zip(&xs) {
        let nearest: f64 = sent.parse().unwrap();
        assert_eq!(nearest.to_bits(), x.to_bits());
        assert_eq!(got.to_bits(), nearest.to_bits(), "sent {sent}");
    }
}

#[tokio::test]
async fn a_gzip_encoded_body_is_accepted() {
    use std::io::Write;
    let app = TestApp::new();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"{"predictions": [1, 2], "targets": [0, 0]}"#)
        .unwrap();
    let gz = enc.finish().unwrap();
    let r = app
        .send(
            axum::http::Request::post("/loss/mse")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(axum::body::Body::from(gz))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    close(&r.json()["loss"], 2.5);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn encoded(encoding: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post("/loss/mse")
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn a_body_of_two_gzip_members_is_their_concatenation() {
    let mut gz = gzip(br#"{"predictions": [1, 2], "#);
    gz.extend(gzip(br#""targets": [0, 0]}"#));
    let r = TestApp::new().send(encoded("GZIP", gz)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    close(&r.json()["loss"], 2.5);
}

#[tokio::test]
async fn a_corrupt_gzip_body_is_400_and_an_unknown_encoding_415() {
    let app = TestApp::new();
    let mut gz = gzip(br#"{"predictions": [1, 2], "targets": [0, 0]}"#);
    gz.truncate(gz.len() - 6);
    let p = app.send(encoded("gzip", gz)).await.problem(400);
    assert!(p["detail"].as_str().unwrap().contains("gzip"), "{p}");
    let body = br#"{"predictions": [1], "targets": [1]}"#.to_vec();
    let p = app.send(encoded("br", body.clone())).await.problem(415);
    assert!(p["detail"].as_str().unwrap().contains("br"), "{p}");
    // identity is no encoding at all
    assert_eq!(app.send(encoded("identity", body)).await.status, 200);
}

#[tokio::test]
async fn a_small_gzip_that_inflates_past_the_limit_is_413() {
    let app = TestApp::with_config(losslab::Config {
        max_body_bytes: 10_000,
        ..losslab::Config::default()
    });
    let inflated = format!(
        "{{\"predictions\": [{}], \"targets\": [1]}}",
        vec!["0"; 20_000].join(",")
    );
    let gz = gzip(inflated.as_bytes());
    assert!(gz.len() < 1_000);
    app.send(encoded("gzip", gz)).await.problem(413);
}

#[tokio::test]
async fn a_million_element_body_is_accepted_with_the_defaults() {
    let app = TestApp::new();
    let n = 1_000_000;
    let xs = doubles(n, 7);
    let mut body = String::with_capacity(40 * n);
    body.push_str("{\"predictions\": [");
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("{:.17e}", x.fract()));
    }
    body.push_str("], \"targets\": [");
    body.push_str(&vec!["0.5"; n].join(","));
    body.push_str("]}");
    assert!(body.len() > 20_000_000);
    let r = app
        .post_raw("/loss/mse", "application/json", body.into_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", &r.text()[..200.min(r.body.len())]);
    assert_eq!(r.json()["count"], n);
}
