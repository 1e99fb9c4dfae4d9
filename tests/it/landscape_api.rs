//! POST /landscape and GET /landscape/examples through HTTP: the grid against /train's
//! own losses bit for bit, pointers into matrix weights and bias, every 422 of the
//! section, null for overflow, the SVG picture.

use axum::body::Body;
use axum::http::Request;
use losslab::Config;
use serde_json::{Value, json};

use crate::support::{TestApp, TestResponse};

/// The textbook neuron with its bias trained, over its (w, b) plane.
fn neuron(loss: &str) -> Value {
    json!({
        "inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": loss,
        "init": {"weights": 2.1972245773362196, "bias": 0.0},
        "x": {"parameter": "/weights/0", "from": -4.0, "to": 6.0, "steps": 11},
        "y": {"parameter": "/bias", "from": -5.0, "to": 5.0, "steps": 21},
        "path": {"learning_rate": 0.2, "max_iterations": 1000, "stop": {"loss_below": 0.001}}
    })
}

async fn post(app: &TestApp, body: &Value) -> TestResponse {
    app.post_json("/landscape", body).await
}

async fn post_svg(app: &TestApp, body: &Value) -> TestResponse {
    let req = Request::post("/landscape")
        .header("content-type", "application/json")
        .header("accept", "image/svg+xml")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    app.send(req).await
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test]
async fn the_grid_at_each_trace_row_equals_trains_loss_bit_for_bit() {
    let app = TestApp::new();
    for loss in ["l2", "bce"] {
        // the run, from /train itself
        let mut train = neuron(loss);
        let obj = train.as_object_mut().unwrap();
        for k in ["x", "y", "path"] {
            obj.remove(k);
        }
        obj.insert("learning_rate".into(), json!(0.2));
        obj.insert("max_iterations".into(), json!(300));
        obj.insert("stop".into(), json!({"loss_below": 0.001}));
        obj.insert("trace_every".into(), json!(7));
        let run = app.post_train(train).await.json();
        let trace = run["trace"].as_array().unwrap();
        assert!(trace.len() > 10);
        for row in trace {
            let (w, b) = (f(&row["weights"][0]), f(&row["bias"]));
            let mut req = neuron(loss);
            req.as_object_mut().unwrap().remove("path");
            req["x"] = json!({"parameter": "/weights/0", "from": w, "to": w + 1.0, "steps": 2});
            req["y"] = json!({"parameter": "/bias", "from": b, "to": b + 1.0, "steps": 3});
            let v = post(&app, &req).await.json();
            assert_eq!(v["x"]["values"][0], row["weights"][0]);
            assert_eq!(v["y"]["values"][0], row["bias"]);
            assert_eq!(
                f(&v["loss"][0][0]).to_bits(),
                f(&row["loss"]).to_bits(),
                "{loss}, iteration {}",
                row["iteration"]
            );
        }
    }
}

#[tokio::test]
async fn the_response_has_axes_rows_per_y_the_minimum_the_path_and_the_run() {
    let app = TestApp::new();
    let r = post(&app, &neuron("l2")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["x"]["parameter"], "/weights/0");
    assert_eq!(v["y"]["parameter"], "/bias");
    let xs = v["x"]["values"].as_array().unwrap();
    assert_eq!(xs.len(), 11);
    assert_eq!(xs[0], json!(-4.0));
    assert_eq!(xs[10], json!(6.0));
    let ys = v["y"]["values"].as_array().unwrap();
    assert_eq!(ys.len(), 21);
    assert_eq!(ys[1], json!(-4.5));
    let rows = v["loss"].as_array().unwrap();
    assert_eq!(rows.len(), 21);
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 11));
    // ½(σ(w + b) − ½)² at w = −4 + c, b = −5 + r/2
    let sigma = |z: f64| 1.0 / (1.0 + (-z).exp());
    for (r, row) in rows.iter().enumerate() {
        for (c, l) in row.as_array().unwrap().iter().enumerate() {
            let z = (-4.0 + c as f64) + (-5.0 + r as f64 / 2.0);
            let want = 0.5 * (sigma(z) - 0.5).powi(2);
            assert!((f(l) - want).abs() < 1e-15, "({r}, {c}): {l} vs {want}");
        }
    }
    // w + b = 0 is on the grid: loss 0, first at b = −5 (row 0), w = 5
    assert_eq!(v["minimum"], json!({"x": 5.0, "y": -5.0, "loss": 0.0}));
    let path = v["path"].as_array().unwrap();
    assert_eq!(path.len(), 144);
    assert_eq!(path[0]["iteration"], 0);
    assert_eq!(path[0]["x"], json!(2.1972245773362196));
    assert_eq!(path[0]["y"], json!(0.0));
    assert_eq!(v["run"]["iterations"], 143);
    assert_eq!(v["run"]["stop_reason"], "loss_below");
    assert!(v["run"].get("trace").is_none());
    assert_eq!(path[143]["x"], v["run"]["final"]["weights"][0]);
    assert_eq!(path[143]["y"], v["run"]["final"]["bias"]);
    assert_eq!(path[143]["loss"], v["run"]["final"]["loss"]);
}

#[tokio::test]
async fn without_a_path_there_is_no_path_nor_run_and_trace_every_0_gives_an_empty_path() {
    let app = TestApp::new();
    let mut req = neuron("l2");
    req.as_object_mut().unwrap().remove("path");
    let v = post(&app, &req).await.json();
    assert!(v.get("path").is_none() && v.get("run").is_none());
    assert!(v["minimum"].is_object());
    let mut req = neuron("l2");
    req["path"]["trace_every"] = json!(0);
    let v = post(&app, &req).await.json();
    assert_eq!(v["path"], json!([]));
    assert_eq!(v["run"]["iterations"], 143);
}

#[tokio::test]
async fn pointers_reach_matrix_weights_and_bias_entries() {
    // 3 samples, 2 features, 2 outputs: a grid point is /train's state-0 loss with those
    // two init entries (max_iterations 0)
    let base = json!({
        "inputs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]],
        "targets": [[0.2, 0.9], [0.7, 0.1], [0.4, 0.4]],
        "activation": "tanh", "loss": "mse",
        "init": {"weights": [[0.1, -0.2], [0.3, 0.05]], "bias": [0.01, -0.02]}
    });
    let mut req = base.clone();
    req["x"] = json!({"parameter": "/weights/1/0", "from": -1.0, "to": 2.0, "steps": 4});
    req["y"] = json!({"parameter": "/bias/1", "from": -0.5, "to": 0.5, "steps": 3});
    let app = TestApp::new();
    let v = post(&app, &req).await.json();
    for (r, b1) in [-0.5, 0.0, 0.5].into_iter().enumerate() {
        for (c, w10) in [-1.0, 0.0, 1.0, 2.0].into_iter().enumerate() {
            let mut t = base.clone();
            t["init"] = json!({"weights": [[0.1, -0.2], [w10, 0.05]], "bias": [0.01, b1]});
            t["learning_rate"] = json!(0.1);
            t["max_iterations"] = json!(0);
            let want = app.post_train(t).await.json()["final"]["loss"].clone();
            assert_eq!(v["loss"][r][c], want, "({r}, {c})");
        }
    }
    // the path of a matrix model reads its entries
    let mut req = base.clone();
    req["x"] = json!({"parameter": "/weights/0/1", "from": -1.0, "to": 1.0, "steps": 3});
    req["y"] = json!({"parameter": "/bias/0", "from": -1.0, "to": 1.0, "steps": 3});
    req["path"] = json!({"learning_rate": 0.3, "max_iterations": 20});
    let v = post(&app, &req).await.json();
    let last = &v["path"][20];
    assert_eq!(last["x"], v["run"]["final"]["weights"][0][1]);
    assert_eq!(last["y"], v["run"]["final"]["bias"][0]);
}

#[tokio::test]
async fn a_loss_that_overflows_is_null_and_no_finite_value_means_no_minimum() {
    // identity + mse at huge parameter values: (w·x + b − y)² overflows
    let req = |from: f64, to: f64| {
        json!({
            "inputs": [1.0, 2.0], "targets": [0.0, 1.0], "loss": "mse",
            "x": {"parameter": "/weights/0", "from": from, "to": to, "steps": 3},
            "y": {"parameter": "/bias", "from": 0.0, "to": 1.0, "steps": 2}
        })
    };
    let app = TestApp::new();
    let r = post(&app, &req(1e200, 1e300)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["loss"], json!([[null, null, null], [null, null, null]]));
    assert_eq!(v["minimum"], Value::Null);
    let v = post(&app, &req(0.0, 1e300)).await.json();
    assert!(v["loss"][0][0].is_number());
    assert!(v["loss"][0][1].is_null() && v["loss"][1][2].is_null());
    assert_eq!(v["minimum"]["x"], json!(0.0));
    assert!(!String::from_utf8_lossy(&post(&app, &req(0.0, 1e300)).await.body).contains("NaN"));
}

#[tokio::test]
async fn every_422_of_the_section_names_its_field() {
    let app = TestApp::new();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = neuron("l2");
        edit(&mut v);
        v
    };
    let cases: Vec<(Value, &str)> = vec![
        // pointers that name no parameter of this model, or the same one twice
        (
            with(&|v| v["x"]["parameter"] = json!("/weights/1")),
            "/x/parameter",
        ),
        (
            with(&|v| v["x"]["parameter"] = json!("/weights/0/0")),
            "/x/parameter",
        ),
        (
            with(&|v| v["x"]["parameter"] = json!("/inputs/0")),
            "/x/parameter",
        ),
        (
            with(&|v| v["y"]["parameter"] = json!("/bias/0")),
            "/y/parameter",
        ),
        (
            with(&|v| v["y"]["parameter"] = json!("/weights/0")),
            "/y/parameter",
        ),
        // to ≤ from, values that overflow
        (with(&|v| v["x"]["to"] = json!(-4.0)), "/x/to"),
        (with(&|v| v["y"]["to"] = json!(-6.0)), "/y/to"),
        (
            with(&|v| {
                v["x"]["from"] = json!(-1e308);
                v["x"]["to"] = json!(1e308);
            }),
            "/x/to",
        ),
        (
            with(&|v| {
                v["y"]["from"] = json!(-1.5e308);
                v["y"]["to"] = json!(1.5e308);
            }),
            "/y/to",
        ),
        // steps
        (with(&|v| v["x"]["steps"] = json!(1)), "/x/steps"),
        (with(&|v| v["y"]["steps"] = json!(-3)), "/y/steps"),
        (with(&|v| v["y"]["steps"] = json!(2.5)), "/y/steps"),
        (
            with(&|v| {
                v["x"]["steps"] = json!(500);
                v["y"]["steps"] = json!(501);
            }),
            "/y/steps",
        ),
        // missing and unknown fields
        (
            with(&|v| v["x"].as_object_mut().unwrap().clear()),
            "/x/parameter",
        ),
        (with(&|v| v["y"]["stride"] = json!(2)), "/y/stride"),
        (with(&|v| v["colour"] = json!("red")), "/colour"),
        // the path's /train rules, under /path
        (
            with(&|v| v["path"]["learning_rate"] = json!(0)),
            "/path/learning_rate",
        ),
        (
            with(&|v| v["path"]["max_iterations"] = json!(1_000_001)),
            "/path/max_iterations",
        ),
        (
            with(&|v| {
                v["path"]["max_iterations"] = json!(1_000_000);
                v["path"]["trace_every"] = json!(1);
            }),
            "/path/trace_every",
        ),
        (
            with(&|v| v["path"]["batch_size"] = json!(2)),
            "/path/batch_size",
        ),
        (
            with(&|v| v["path"]["optimizer"] = json!("adamw")),
            "/path/optimizer",
        ),
        (
            with(&|v| v["path"]["optimizer"] = json!({"kind": "lion"})),
            "/path/optimizer/kind",
        ),
        (
            with(&|v| v["path"]["stop"] = json!({"loss_under": 1})),
            "/path/stop/loss_under",
        ),
        (with(&|v| v["path"]["epochs"] = json!(3)), "/path/epochs"),
        // the model's own rules, as /train's
        (with(&|v| v["activation"] = json!("relu6")), "/activation"),
        (
            with(&|v| {
                v["loss"] = json!("bce");
                v["activation"] = json!("identity");
            }),
            "/activation",
        ),
        (with(&|v| v["targets"] = json!([0.5, 0.5])), "/targets"),
        (
            with(&|v| v["init"]["weights"] = json!([1.0, 2.0])),
            "/init/weights",
        ),
        (
            with(&|v| v["params"] = json!({"delta": 1})),
            "/params/delta",
        ),
        // an axis or a path as an array is not an object (serde would read it positionally)
        (
            with(&|v| v["x"] = json!(["/weights/0", -1.0, 1.0, 3])),
            "/x",
        ),
        (
            with(&|v| v["path"] = json!([0.2, null, null, null, 10])),
            "/path",
        ),
    ];
    for (body, field) in cases {
        post(&app, &body).await.invalid_at(field);
    }
}

#[tokio::test]
async fn the_grid_limit_is_the_configured_one() {
    let app = TestApp::with_config(Config {
        max_grid_points: 100,
        ..Config::default()
    });
    let mut req = neuron("l2");
    req["x"]["steps"] = json!(10);
    req["y"]["steps"] = json!(10);
    assert_eq!(post(&app, &req).await.status, 200);
    req["y"]["steps"] = json!(11);
    let p = post(&app, &req).await.invalid_at("/y/steps");
    assert!(p.to_string().contains("100"), "{p}");
}

#[tokio::test]
async fn the_svg_is_well_formed_xml_with_the_path_drawn() {
    let app = TestApp::new();
    let r = post_svg(&app, &neuron("bce")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    let svg = r.text();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let class = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .count()
    };
    assert_eq!(class("training-path"), 1);
    assert_eq!(class("path-start"), 1);
    assert_eq!(class("path-end"), 1);
    assert!(class("band") > 3 && class("isoline") > 3);
    assert!(svg.contains("bce + sigmoid"));
    assert!(svg.contains("/weights/0") && svg.contains("/bias"));
    // errors stay problem+json
    let mut bad = neuron("bce");
    bad["x"]["steps"] = json!(1);
    post_svg(&app, &bad).await.invalid_at("/x/steps");
}

#[tokio::test]
async fn the_examples_are_the_textbook_neuron_under_l2_and_bce_and_all_answer() {
    let app = TestApp::new();
    let ex = app.get("/landscape/examples").await.json();
    let list = ex.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names[..2], ["textbook-neuron-l2", "textbook-neuron-bce"]);
    for e in list {
        assert!(e["description"].as_str().unwrap().len() > 40);
        let v = post(&app, &e["request"]).await.json();
        assert!(!v["path"].as_array().unwrap().is_empty(), "{}", e["name"]);
        assert_eq!(v["x"]["parameter"], "/weights/0");
        assert_eq!(v["y"]["parameter"], "/bias");
    }
    let l2 = post(&app, &list[0]["request"]).await.json();
    assert_eq!(l2["run"]["iterations"], 143);
}

#[tokio::test]
async fn the_playground_serves_the_landscape_panel_and_its_script() {
    let app = TestApp::new();
    let page = app.get("/").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains(r#"<script type="module" src="/static/landscape.js"></script>"#));
    assert!(html.contains(r#"id="panel-landscape""#));
    let js = app.get("/static/landscape.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    let text = js.text();
    // the panel draws with POST /landscape's picture and reads GET /landscape/examples
    assert!(text.contains("'/landscape'") && text.contains("'/landscape/examples'"));
}
