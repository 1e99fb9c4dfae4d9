//! A few tests over a real socket (port 0): a loss request end to end, HTTP/2 with prior
//! knowledge, the rate limit keyed by the client's address, NDJSON streaming chunked on
//! the wire, /healthz answering while heavy work is in flight, and graceful shutdown of
//! the accept loop (serve.rs).

use losslab::{AppState, Config};
use serde_json::json;

use crate::support::{raw_request, spawn_server, textbook_neuron};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_request_over_a_real_socket() {
    let addr = spawn_server(Config::default()).await;
    let body =
        serde_json::to_vec(&json!({"predictions": [0.5, 2.0], "targets": [1.0, 0.0]})).unwrap();
    let r = raw_request(
        addr,
        "POST",
        "/loss/mse",
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("losslab-version").is_some());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["loss"], 2.125);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_arrives_chunked_and_uncompressed_even_when_gzip_is_accepted() {
    let addr = spawn_server(Config::default()).await;
    let body = serde_json::to_vec(&textbook_neuron()).unwrap();
    let r = raw_request(
        addr,
        "POST",
        "/train",
        &[
            ("content-type", "application/json"),
            ("accept", "application/x-ndjson"),
            ("accept-encoding", "gzip"),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-encoding").is_none());
    let text = String::from_utf8(r.body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 288 + 1, "rows 0..=287 then the summary");
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["iterations"], 287);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_heavy_requests_are_in_flight() {
    let addr = spawn_server(Config {
        max_concurrency: Some(1),
        timeout_secs: 60,
        ..Config::default()
    })
    .await;
    // three long runs: one computes, two wait in the queue
    let inputs: Vec<Vec<f64>> = (0..300)
        .map(|i| (0..40).map(|j| ((i + j) % 7) as f64).collect())
        .collect();
    let targets: Vec<f64> = (0..300).map(|i| (i % 2) as f64).collect();
    let long = serde_json::to_vec(&json!({"inputs": inputs, "targets": targets, "loss": "mse",
        "learning_rate": 1e-9, "max_iterations": 200_000, "trace_every": 0}))
    .unwrap();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let (body, tx) = (long.clone(), done_tx.clone());
        handles.push(tokio::spawn(async move {
            let r = raw_request(
                addr,
                "POST",
                "/train",
                &[("content-type", "application/json")],
                &body,
            )
            .await;
            let _ = tx.send("train");
            r.status
        }));
    }
    // let them arrive, then ask for health
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let h = raw_request(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(h.status, 200);
    let _ = done_tx.send("healthz");
    // order of events: healthz answered before any heavy request finished
    assert_eq!(done_rx.recv().await, Some("healthz"));
    for h in handles {
        h.abort();
    }
}

/// The in-flight gauge of /metrics (the /metrics request itself included).
async fn in_flight(addr: std::net::SocketAddr) -> i64 {
    let r = raw_request(addr, "GET", "/metrics", &[], b"").await;
    String::from_utf8_lossy(&r.body)
        .lines()
        .find_map(|l| l.strip_prefix("losslab_http_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .expect("in-flight gauge")
}

/// Polls the in-flight gauge until it reads `want` (at most 500 times); returns the last
/// reading, for the caller to assert.
async fn in_flight_becomes(addr: std::net::SocketAddr, want: i64) -> i64 {
    let mut seen = in_flight(addr).await;
    for _ in 0..500 {
        if seen == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        seen = in_flight(addr).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_goes_away_is_no_longer_counted_in_flight() {
    use tokio::io::AsyncWriteExt;
    let addr = spawn_server(Config::default()).await;
    assert_eq!(in_flight(addr).await, 1);
    // a body that never finishes: the request waits in our extractor
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /loss/mse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"predictions\": [",
    )
    .await
    .unwrap();
    let seen = in_flight_becomes(addr, 2).await;
    assert_eq!(seen, 2, "the unfinished request is in flight");
    drop(s);
    let seen = in_flight_becomes(addr, 1).await;
    assert_eq!(seen, 1, "the abandoned request is no longer counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Full};
    let addr = spawn_server(Config::default()).await;
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let body = br#"{"predictions": [0.5, 2.0], "targets": [1.0, 0.0]}"#;
    let req = axum::http::Request::post(format!("http://{addr}/loss/mse"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from_static(body)))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.version(), axum::http::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let v: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["loss"], 2.125);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_keyed_by_the_client_address_the_accept_loop_attaches() {
    let addr = spawn_server(Config {
        rate_limit_per_ip: 2,
        ..Config::default()
    })
    .await;
    let body = br#"{"predictions": [1], "targets": [1]}"#;
    let ct = [("content-type", "application/json")];
    assert_eq!(
        raw_request(addr, "POST", "/loss/mse", &ct, body)
            .await
            .status,
        200
    );
    assert_eq!(
        raw_request(addr, "POST", "/loss/mse", &ct, body)
            .await
            .status,
        200
    );
    let r = raw_request(addr, "POST", "/loss/mse", &ct, body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        raw_request(addr, "GET", "/healthz", &[], b"").await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_connections_answers_the_request_in_flight_then_serve_returns() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(losslab::api::serve::serve(
        listener,
        AppState::new(Config::default()),
        async move {
            let _ = stopped.await;
        },
    ));
    // a request whose body is still arriving when shutdown begins
    let body = br#"{"predictions": [0.5, 2.0], "targets": [1.0, 0.0]}"#;
    let (first, rest) = body.split_at(10);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /loss/mse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(first).await.unwrap();
    let seen = in_flight_becomes(addr, 2).await;
    assert_eq!(seen, 2, "the unfinished request is in flight");
    stop.send(()).unwrap();
    let mut refused = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused, "no new connection once shutdown has begun");
    assert!(
        !server.is_finished(),
        "serve waits for the request in flight"
    );
    s.write_all(rest).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.ends_with(r#""loss":2.125}"#), "{text}");
    // a guard against a hang, not a timing assertion
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), server).await;
    done.expect("serve returns once the last connection is done")
        .unwrap()
        .unwrap();
}
