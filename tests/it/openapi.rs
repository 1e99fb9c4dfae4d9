//! Generated things are guarded: the served spec equals the committed file, and the
//! catalogue lists every kind with a formula.

use crate::support::TestApp;
use losslab::compute::{ActivationRule, Values};

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
        // inputs in the kind's domain, as its registry entry declares it
        let domain = k.info().domain;
        let (pred, targ) = match (domain.predictions, domain.targets) {
            (_, Values::SignLabels) => (
                serde_json::json!([[0.3, -0.2, 0.1]]),
                serde_json::json!([[1, -1, -1]]),
            ),
            (Values::LogProbability, _) => (
                serde_json::json!([[-1.2, -0.4, -2.0]]),
                serde_json::json!([1]),
            ),
            (Values::AboveMinusOne | Values::NonNegative, _) => (
                serde_json::json!([[0.7, 1.9, 3.3]]),
                serde_json::json!([[1.0, 2.5, 3.0]]),
            ),
            _ => (p.clone(), q.clone()),
        };
        // kinds that need softmax or sigmoid are checked through it: a step on a
        // probability itself would leave the domain (the sum-to-1 rows, [0, 1])
        let body = match k.info().activation {
            ActivationRule::Softmax => serde_json::json!({"loss": k.name(),
                "logits": [[0.3, -1.0, 0.8], [1.5, 0.2, -0.4]], "activation": "softmax", "targets": targ, "check": true}),
            ActivationRule::Sigmoid => serde_json::json!({"loss": k.name(),
                "logits": pred, "activation": "sigmoid", "targets": targ, "check": true}),
            ActivationRule::Any | ActivationRule::NonNegative => {
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

#[tokio::test]
async fn the_specs_kind_lists_are_the_registrys() {
    // the conventions in the spec's description list kinds by what their registry
    // entries declare (openapi::description fills the lists from the registry): the
    // served text names exactly those kinds, and no placeholder is left
    use losslab::compute::{LossKind, Per};
    let spec = TestApp::new().get("/openapi.json").await.json();
    let text = spec["info"]["description"].as_str().expect("a description");
    assert!(!text.contains('{'), "a placeholder left: {text}");
    let indices: Vec<&str> = LossKind::ALL
        .into_iter()
        .filter(|k| k.accepts_indices())
        .map(|k| k.name())
        .collect();
    let class_weights =
        LossKind::names_where(|k| k.params.iter().any(|p| p.name == "class_weights"));
    let fused: Vec<String> = LossKind::ALL
        .into_iter()
        .flat_map(|k| {
            let info = k.info();
            let act = match info.activation {
                ActivationRule::Sigmoid => "sigmoid",
                ActivationRule::Softmax => "softmax",
                ActivationRule::Any | ActivationRule::NonNegative => return None,
            };
            info.from_logits.then(|| format!("{act} + {}", k.name()))
        })
        .collect();
    // the names the description lists after `prefix` up to `end`, in any order
    let listed = |prefix: &str, end: &str, sep: &str| -> Vec<String> {
        let start = text
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix:?} in the spec"));
        let rest = &text[start + prefix.len()..];
        let mut names: Vec<String> = rest[..rest.find(end).expect("the list's end")]
            .split(sep)
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    let sorted = |names: String| {
        let mut v: Vec<String> = names.split(", ").map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        listed(
            "`predictions` (a) and `targets` (y): a flat array [n] or a matrix [[..], ..] (rows = samples). ",
            " also take",
            " and "
        ),
        sorted(indices.join(", "))
    );
    assert_eq!(
        listed("per-row kinds (", ")", ", "),
        sorted(LossKind::names_where(|k| k.per == Per::Row))
    );
    assert_eq!(
        listed("`params.class_weights` (", ")", ", "),
        sorted(class_weights)
    );
    assert_eq!(
        listed("`from_logits` (", ")", ", "),
        sorted(LossKind::names_where(|k| k.from_logits))
    );
    assert_eq!(
        listed("Fused pairs in /gradient and /train: ", " take", ", "),
        sorted(fused.join(", "))
    );
}
