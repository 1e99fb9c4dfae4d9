//! TestApp: the real service in-process (`app(state)` + oneshot), and a tiny HTTP/1.1
//! client for the few tests that go over a real socket.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use losslab::{AppState, Config, app};
use serde_json::Value;
use tower::ServiceExt;

pub struct TestApp {
    pub state: AppState,
    service: tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts a problem+json with `status`; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"].is_string() && p["title"].is_string() && p["detail"].is_string());
        assert!(p["errors"].is_array(), "errors always present");
        p
    }
    /// Asserts a 422 naming `field`; returns the problem.
    #[track_caller]
    pub fn invalid_at(&self, field: &str) -> Value {
        let p = self.problem(422);
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(
            fields.contains(&field),
            "expected field {field}, got {fields:?}: {p}"
        );
        p
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        let state = AppState::new(config);
        TestApp {
            service: tower::util::BoxCloneSyncService::new(
                app(state.clone()).map_response(|r| r.map(Body::new)),
            ),
            state,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let mut req = req;
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let res = self.service.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.post_raw(path, "application/json", serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn post_loss(&self, kind: &str, body: Value) -> TestResponse {
        self.post_json(&format!("/loss/{kind}"), &body).await
    }

    pub async fn post_gradient(&self, body: Value) -> TestResponse {
        self.post_json("/gradient", &body).await
    }

    pub async fn post_train(&self, body: Value) -> TestResponse {
        self.post_json("/train", &body).await
    }

    pub async fn post_train_accept(&self, body: Value, accept: &str) -> TestResponse {
        self.send(
            Request::post("/train")
                .header("content-type", "application/json")
                .header("accept", accept)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        )
        .await
    }
}

/// The textbook's single neuron (API.md): 287 iterations with the bias fixed.
pub fn textbook_neuron() -> Value {
    serde_json::json!({
        "inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
        "init": {"weights": 9f64.ln(), "bias": 0.0}, "use_bias": false,
        "learning_rate": 0.2, "max_iterations": 10000, "stop": {"loss_below": 0.001}
    })
}

/// Asserts |got − want| ≤ 1e−12·|want| + 1e−15.
#[track_caller]
pub fn close(got: &Value, want: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!(
        (g - want).abs() <= 1e-12 * want.abs() + 1e-15,
        "got {g:e}, want {want:e}"
    );
}

// ---------------------------------------------------------------------------------
// a real socket

/// The service on 127.0.0.1:0 over a real socket; the task ends with the test runtime.
pub async fn spawn_server(config: Config) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(config);
    tokio::spawn(async move {
        losslab::api::serve::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    addr
}

pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads to the end (de-chunked).
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    parse_raw(&buf)
}

fn parse_raw(buf: &[u8]) -> RawResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..eol])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    RawResponse {
        status,
        headers,
        body,
    }
}
