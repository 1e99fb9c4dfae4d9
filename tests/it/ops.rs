//! Operations and cross-cutting layers: health, readiness, metrics, version header,
//! docs served offline, CORS, compression.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn every_response_carries_the_version_header() {
    let app = TestApp::new();
    let v = app.get("/version").await;
    let version = v.json()["version"].as_str().unwrap().to_string();
    assert_eq!(v.header("losslab-version"), Some(version.as_str()));
    assert_eq!(
        app.get("/nope").await.header("losslab-version"),
        Some(version.as_str())
    );
    assert_eq!(app.get("/healthz").await.json()["status"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::new();
    app.post_loss("mse", json!({"predictions": [1], "targets": [0]}))
        .await;
    let m = app.get("/metrics").await;
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    assert!(
        text.contains(
            r#"losslab_http_requests_total{route="/loss/{kind}",method="POST",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("losslab_http_request_duration_seconds_bucket"));
    assert!(text.contains("losslab_http_requests_in_flight"));
}

#[tokio::test]
async fn docs_are_served_from_the_binary_with_the_validator_off() {
    let app = TestApp::new();
    let r = app.get("/docs/").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("swagger"), "{html}");
    let init = app.get("/docs/swagger-initializer.js").await.text();
    assert!(init.contains("/openapi.json"), "{init}");
    let compact: String = init.split_whitespace().collect();
    assert!(compact.contains("\"validatorUrl\":\"none\""), "{init}");
    for page in [html, init] {
        assert!(!page.contains("https://"), "no outside host: {page}");
    }
}

#[tokio::test]
async fn the_playground_is_served_at_the_root() {
    let app = TestApp::new();
    let r = app.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(app.get("/static/app.js").await.status, 200);
    assert_eq!(app.get("/static/style.css").await.status, 200);
}

#[tokio::test]
async fn cors_allows_any_origin_by_default_and_answers_preflight() {
    let app = TestApp::new();
    let r = app
        .send(
            Request::options("/loss/mse")
                .header("origin", "https://course.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.status.is_success());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn large_json_responses_are_compressed_when_asked() {
    let app = TestApp::new();
    let r = app
        .send(
            Request::post("/loss/mse")
                .header("content-type", "application/json")
                .header("accept-encoding", "gzip")
                .body(Body::from(
                    serde_json::to_vec(&json!({"predictions": vec![0.123456789; 2000],
                        "targets": vec![0.0; 2000], "gradient": true}))
                    .unwrap(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
}
