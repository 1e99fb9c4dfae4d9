//! A few tests over a real socket (port 0): a loss request end to end, HTTP/2 with prior
//! knowledge, the rate limit keyed by the client's address, NDJSON streaming chunked on
//! the wire, /healthz answering while heavy work is in flight, and graceful shutdown of
//! the accept loop (api/stack/serve.rs).

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

// ---------------------------------------------------------------------------------
// slow clients, idle connections and the connection cap (api/stack/serve.rs; the body timeout is
// the extractor's). Each timeout is configured to 1–3 s; the only bounds on time are
// generous guards against a hang ("closed within 30 s"), and the measured figures are
// printed (cargo test -- --nocapture).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against a hang, not a timing assertion.
const GUARD: Duration = Duration::from_secs(30);

/// Reads until the peer closes: `Ok(bytes)` at EOF (or a reset), `Err` past the guard.
async fn read_until_closed(s: &mut TcpStream) -> Result<Vec<u8>, &'static str> {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    match tokio::time::timeout(GUARD, read).await {
        Ok(()) => Ok(buf),
        Err(_) => Err("still open past the guard"),
    }
}

/// Reads one HTTP/1.1 response with a Content-Length from a keep-alive connection:
/// (status, head, body).
async fn read_one_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    let status = head[9..12].parse().unwrap();
                    return (status, head, buf[end + 4..end + 4 + len].to_vec());
                }
            }
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before a whole response: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(GUARD, read).await.expect("a response")
}

const HEALTHZ_KEEP_ALIVE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_finish_their_headers_are_dropped() {
    let addr = spawn_server(Config {
        header_timeout_secs: 1,
        ..Config::default()
    })
    .await;
    // nothing at all; three bytes (hyper-util still telling HTTP/1.1 from HTTP/2); half
    // a request head; half an HTTP/2 preface
    let starts: [&[u8]; 4] = [
        b"",
        b"GET",
        b"POST /loss/mse HTTP/1.1\r\nHost: x\r\nContent-Type: appl",
        b"PRI * HTTP/2.0\r\n",
    ];
    for start in starts {
        let t0 = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(start).await.unwrap();
        let got = read_until_closed(&mut s).await.expect("dropped");
        assert!(got.is_empty(), "no answer to half a head: {got:?}");
        eprintln!(
            "slow header {:?}: closed after {:.2} s (header timeout 1 s)",
            String::from_utf8_lossy(start),
            t0.elapsed().as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_request_head_on_a_kept_alive_connection_has_the_header_timeout_too() {
    let addr = spawn_server(Config {
        header_timeout_secs: 1,
        idle_timeout_secs: 60,
        ..Config::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
    assert_eq!(read_one_response(&mut s).await.0, 200);
    let t0 = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let got = read_until_closed(&mut s).await.expect("dropped");
    assert!(got.is_empty(), "{got:?}");
    eprintln!(
        "slow second head: closed after {:.2} s (header timeout 1 s, idle 60 s)",
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_gets_408_and_the_connection_closes() {
    let addr = spawn_server(Config {
        body_timeout_secs: 1,
        ..Config::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /loss/mse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"predictions\": [",
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    // one byte every 100 ms, until the server answers (or closes: then writes fail)
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b"1").await.is_err() {
                break;
            }
        }
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(GUARD, rd.read_to_end(&mut buf)).await;
    trickle.abort();
    read.expect("answered and closed").ok();
    let text = String::from_utf8_lossy(&buf);
    eprintln!(
        "trickling body: 408 after {:.2} s (body timeout 1 s)",
        t0.elapsed().as_secs_f64()
    );
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    let lower = text.to_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(lower.contains("connection: close"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let p: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(p["status"], 408);
    assert_eq!(p["detail"], "the request body did not arrive within 1 s");
    assert_eq!(p["errors"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let addr = spawn_server(Config {
        header_timeout_secs: 1,
        idle_timeout_secs: 8,
        ..Config::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
    assert_eq!(read_one_response(&mut s).await.0, 200);
    // idle for three header timeouts (well inside the idle timeout): still served
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
    assert_eq!(read_one_response(&mut s).await.0, 200);
    let t0 = Instant::now();
    let got = read_until_closed(&mut s).await.expect("closed when idle");
    assert!(got.is_empty(), "{got:?}");
    eprintln!(
        "idle HTTP/1.1 connection: closed after {:.2} s (idle timeout 8 s)",
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_too() {
    use http_body_util::{BodyExt, Empty};
    let addr = spawn_server(Config {
        idle_timeout_secs: 1,
        ..Config::default()
    })
    .await;
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = axum::http::Request::get(format!("http://{addr}/healthz"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
    let t0 = Instant::now();
    // the server's GOAWAY ends the client's connection task
    tokio::time::timeout(GUARD, conn)
        .await
        .expect("the server closed the idle connection")
        .unwrap()
        .unwrap();
    eprintln!(
        "idle HTTP/2 connection: closed after {:.2} s (idle timeout 1 s)",
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_kept_connection_is_answered_and_new_ones_wait_their_turn() {
    let addr = spawn_server(Config {
        max_connections: 2,
        header_timeout_secs: 3,
        ..Config::default()
    })
    .await;
    // a health checker's kept-alive connection, then a slow client: the cap is reached
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
    assert_eq!(read_one_response(&mut kept).await.0, 200);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // the kept connection is answered at once while the cap is reached
    let t0 = Instant::now();
    kept.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
    assert_eq!(read_one_response(&mut kept).await.0, 200);
    eprintln!(
        "at the cap: /healthz on a kept connection in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    // a third connection waits in the backlog until the slow client is dropped
    let t0 = Instant::now();
    let waiting = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
        read_one_response(&mut s).await.0
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the cap holds it in the backlog");
    assert_eq!(
        tokio::time::timeout(GUARD, waiting).await.unwrap().unwrap(),
        200
    );
    eprintln!(
        "at the cap: a new connection answered after {:.2} s (the slow client's header timeout 3 s)",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        read_until_closed(&mut slow)
            .await
            .expect("dropped")
            .is_empty()
    );
    // and after: the kept connection and new ones are answered
    kept.write_all(HEALTHZ_KEEP_ALIVE).await.unwrap();
    assert_eq!(read_one_response(&mut kept).await.0, 200);
    drop(kept);
    let r = raw_request(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
}

/// A grid of many chunks of rows: the answer's pieces arrive as one body of the announced
/// length, equal to the in-process answer (and gzip-compressed when asked, like any JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_landscape_arrives_whole_with_its_length_over_a_real_socket() {
    let addr = spawn_server(Config::default()).await;
    let body = serde_json::to_vec(&json!({
        "inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
        "init": {"weights": 0.0, "bias": 0.0},
        "x": {"parameter": "/weights/0", "from": -4.0, "to": 6.0, "steps": 301},
        "y": {"parameter": "/bias", "from": -5.0, "to": 5.0, "steps": 257}
    }))
    .unwrap();
    let headers = [("content-type", "application/json")];
    let r = raw_request(addr, "POST", "/landscape", &headers, &body).await;
    assert_eq!(r.status, 200);
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let rows = v["loss"].as_array().unwrap();
    assert_eq!(rows.len(), 257);
    assert!(rows.iter().all(|row| row.as_array().unwrap().len() == 301));
    // ½(σ(w + b) − ½)² at the last point, w = 6, b = 5
    let want = 0.5 * (1.0 / (1.0 + (-11.0f64).exp()) - 0.5).powi(2);
    assert!((rows[256][300].as_f64().unwrap() - want).abs() < 1e-15);
    // the same bytes as in process
    let app = crate::support::TestApp::new();
    let local = app
        .post_raw("/landscape", "application/json", body.clone())
        .await;
    assert_eq!(local.body, r.body);
    // and the same after gzip
    let gz = raw_request(
        addr,
        "POST",
        "/landscape",
        &[
            ("content-type", "application/json"),
            ("accept-encoding", "gzip"),
        ],
        &body,
    )
    .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gz.body[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, r.body);
}
