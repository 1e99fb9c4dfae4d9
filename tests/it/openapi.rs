//! Generated things are guarded: the served spec equals the committed file, and the
//! catalogue lists every kind with a formula.

use crate::support::TestApp;

#[tokio::test]
async fn the_served_spec_equals_the_committed_file() {
    let served = TestApp::new().get("/openapi.json").await;
    assert_eq!(served.status, 200);
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json is committed (regenerate: cargo run -- openapi > openapi/openapi.json)");
    assert!(
        served.text() == file,
        "openapi/openapi.json differs from the served spec; regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
    let spec = served.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/loss/{kind}",
        "/gradient",
        "/train",
        "/train/examples",
        "/losses",
        "/healthz",
        "/readyz",
        "/metrics",
        "/version",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} documented");
    }
}

#[tokio::test]
async fn the_catalogue_lists_every_kind_with_formula_and_params() {
    let v = TestApp::new().get("/losses").await.json();
    let kinds: Vec<&str> = v["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    for k in losslab::compute::LossKind::ALL {
        assert!(kinds.contains(&k.name()), "{} listed", k.name());
    }
    for l in v["losses"].as_array().unwrap() {
        assert!(!l["formula"].as_str().unwrap().is_empty(), "{l}");
        assert!(matches!(l["per"].as_str(), Some("element" | "row")));
    }
    let huber = v["losses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "huber")
        .unwrap();
    assert_eq!(huber["params"][0]["name"], "delta");
    assert_eq!(huber["params"][0]["default"], 1.0);
    assert_eq!(v["activations"].as_array().unwrap().len(), 7);
    assert_eq!(v["optimizers"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn every_kind_passes_the_gradient_check_through_the_api() {
    // one valid input per kind; the API's own central-difference check must pass
    let app = TestApp::new();
    let p = serde_json::json!([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]);
    let q = serde_json::json!([[0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]);
    for k in losslab::compute::LossKind::ALL {
        let (pred, targ) = match k.name() {
            "hinge" | "squared_hinge" => (
                serde_json::json!([[0.3, -0.2, 0.1]]),
                serde_json::json!([[1, -1, -1]]),
            ),
            "nll" => (
                serde_json::json!([[-1.2, -0.4, -2.0]]),
                serde_json::json!([1]),
            ),
            "msle" | "poisson" | "mape" => (
                serde_json::json!([[0.7, 1.9, 3.3]]),
                serde_json::json!([[1.0, 2.5, 3.0]]),
            ),
            _ => (p.clone(), q.clone()),
        };
        // distribution kinds are checked through softmax logits: a step on a probability
        // itself would leave the sum-to-1 domain
        let body = match k.name() {
            "cross_entropy" | "kl_div" | "js_div" => serde_json::json!({"loss": k.name(),
                "logits": [[0.3, -1.0, 0.8], [1.5, 0.2, -0.4]], "activation": "softmax", "targets": targ, "check": true}),
            "bce" | "focal" => serde_json::json!({"loss": k.name(),
                "logits": pred, "activation": "sigmoid", "targets": targ, "check": true}),
            _ => {
                serde_json::json!({"loss": k.name(), "predictions": pred, "targets": targ, "check": true})
            }
        };
        let r = app.post_gradient(body).await;
        assert_eq!(r.status, 200, "{}: {}", k.name(), r.text());
        assert_eq!(
            r.json()["check"]["passed"],
            true,
            "{}: {}",
            k.name(),
            r.text()
        );
    }
}
