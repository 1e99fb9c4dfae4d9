//! Operations and cross-cutting layers: health, readiness, metrics, version header,
//! docs served offline, CORS, compression.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::support::{TestApp, TestResponse};
use losslab::Config;

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

/// All values of a header, in order.
fn all(r: &TestResponse, name: &str) -> Vec<String> {
    r.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn mse_request(origin: Option<&str>, accept_encoding: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/loss/mse").header("content-type", "application/json");
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if let Some(a) = accept_encoding {
        r = r.header("accept-encoding", a);
    }
    r.body(Body::from(r#"{"predictions":[0.5,1],"targets":[0,1]}"#))
        .unwrap()
}

#[tokio::test]
async fn cors_and_vary_headers_are_the_same_with_or_without_origin_and_accept_encoding() {
    let app = TestApp::new();
    let plain = app.send(mse_request(None, None)).await;
    let browser = app
        .send(mse_request(
            Some("https://course.example"),
            Some("gzip, br"),
        ))
        .await;
    assert_eq!(plain.json()["loss"], 0.125);
    assert!(plain.header("content-encoding").is_none());
    // tower-http compresses anything over 32 bytes for a client that asks
    assert_eq!(browser.header("content-encoding"), Some("br"));
    for r in [&plain, &browser] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("losslab-version,x-request-id,retry-after")
        );
        // any origin, fixed methods and headers: the answer varies with the encoding
        // asked for only (tower-http 0.7 adds no CORS `Vary` when nothing depends on it)
        assert_eq!(all(r, "vary").join(", "), "accept-encoding");
    }
}

#[tokio::test]
async fn a_configured_origin_list_echoes_listed_origins_only() {
    let app = TestApp::with_config(Config {
        cors_origins: "https://a.example, https://b.example".into(),
        ..Config::default()
    });
    let listed = app.send(mse_request(Some("https://b.example"), None)).await;
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://b.example")
    );
    let other = app
        .send(mse_request(Some("https://evil.example"), None))
        .await;
    assert!(other.header("access-control-allow-origin").is_none());
    let none = app.send(mse_request(None, None)).await;
    assert!(none.header("access-control-allow-origin").is_none());
    for r in [&listed, &other, &none] {
        assert_eq!(r.status, 200);
        assert!(all(r, "vary").join(", ").contains("origin"));
    }
}
