//! API keys (API.md, "API keys (a class server)"): 401 on the API operations without a
//! known key, the open paths, per-key rate (429) and heavy-work slots (429), one key's
//! loop not delaying another's request by more than one computation, and the binary's
//! log lines, SIGHUP reload and `keys new`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use losslab::Config;
use losslab::api::keys::digest_hex;
use serde_json::{Value, json};

use crate::support::{TestApp, TestResponse};

/// A keys file in the temp dir, removed on drop.
struct KeysFile(PathBuf);

impl KeysFile {
    fn new(text: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "losslab-it-keys-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, text).unwrap();
        KeysFile(p)
    }
}

impl Drop for KeysFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn table(name: &str, key: &str, extra: &str) -> String {
    format!(
        "[[key]]\nname = {name:?}\nsha256 = {:?}\n{extra}\n",
        digest_hex(key)
    )
}

fn keyed(text: &str, config: Config) -> (TestApp, KeysFile) {
    let f = KeysFile::new(text);
    let app = TestApp::with_config(Config {
        api_keys_file: Some(f.0.clone()),
        ..config
    });
    (app, f)
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> TestResponse {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(serde_json::to_vec(b).unwrap())
        }
        None => Body::empty(),
    };
    app.send(req.body(body).unwrap()).await
}

fn small_loss() -> Value {
    json!({"predictions": [0.5, 2.0], "targets": [1.0, 0.0]})
}

#[tokio::test]
async fn the_api_operations_need_a_known_key_and_say_how_to_send_it() {
    let (app, _f) = keyed(&table("ada", "k-ada", ""), Config::default());
    let unknown = [None, Some("k-eve"), Some("")];
    for key in unknown {
        let r = send(&app, "POST", "/loss/mse", key, Some(&small_loss())).await;
        let p = r.problem(401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"losslab\"")
        );
        assert_eq!(p["type"], "https://losslab.dev/problems/unauthorized");
        assert_eq!(p["errors"], json!([]));
        assert!(
            r.header("losslab-version").is_some(),
            "the edge stamps 401s too"
        );
    }
    let r = send(
        &app,
        "POST",
        "/loss/mse",
        Some("k-ada"),
        Some(&small_loss()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["loss"], 2.125);
    // the other API operations, with and without the key
    let train = crate::support::textbook_neuron();
    let gradient = json!({"loss": "mse", "predictions": [1.0], "targets": [0.0]});
    let ops: [(&str, &str, Option<&Value>); 4] = [
        ("GET", "/losses", None),
        ("GET", "/train/examples", None),
        ("POST", "/train", Some(&train)),
        ("POST", "/gradient", Some(&gradient)),
    ];
    for (method, path, body) in ops {
        send(&app, method, path, None, body).await.problem(401);
        let r = send(&app, method, path, Some("k-ada"), body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    }
    // an unknown path under a guarded one is still 401 first: no probing without a key
    send(&app, "GET", "/loss/nope", None, None)
        .await
        .problem(401);
}

#[tokio::test]
async fn probes_the_spec_the_docs_and_the_playground_stay_open() {
    let (app, _f) = keyed(&table("ada", "k-ada", ""), Config::default());
    for path in [
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
        "/openapi.json",
        "/docs/",
        "/",
        "/static/app.js",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // a CORS preflight carries no credentials and is answered without a key
    let r = app
        .send(
            Request::builder()
                .method("OPTIONS")
                .uri("/loss/mse")
                .header("origin", "https://example.org")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text());
}

#[tokio::test]
async fn without_a_keys_file_no_key_is_needed_and_a_key_sent_is_ignored() {
    let app = TestApp::new();
    assert!(app.state.keys.is_none());
    let r = send(
        &app,
        "POST",
        "/loss/mse",
        Some("anything"),
        Some(&small_loss()),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn an_unreadable_keys_file_opens_nothing() {
    let app = TestApp::with_config(Config {
        api_keys_file: Some(PathBuf::from("/nonexistent/losslab-keys.toml")),
        ..Config::default()
    });
    send(&app, "POST", "/loss/mse", Some("k"), Some(&small_loss()))
        .await
        .problem(401);
    assert!(
        losslab::AppState::try_new(Config {
            api_keys_file: Some(PathBuf::from("/nonexistent/losslab-keys.toml")),
            ..Config::default()
        })
        .is_err()
    );
}

#[tokio::test]
async fn each_key_has_its_own_token_bucket_and_a_table_may_override_the_flag() {
    let text = table("ada", "k-ada", "") + &table("bob", "k-bob", "rate_limit_per_key = 4");
    let (app, _f) = keyed(
        &text,
        Config {
            rate_limit_per_key: 2,
            ..Config::default()
        },
    );
    let status = |r: TestResponse| r.status.as_u16();
    for _ in 0..2 {
        assert_eq!(
            status(
                send(
                    &app,
                    "POST",
                    "/loss/mse",
                    Some("k-ada"),
                    Some(&small_loss())
                )
                .await
            ),
            200
        );
    }
    let r = send(
        &app,
        "POST",
        "/loss/mse",
        Some("k-ada"),
        Some(&small_loss()),
    )
    .await;
    let p = r.problem(429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(p["type"], "https://losslab.dev/problems/key-limit");
    assert_eq!(
        p["detail"],
        "key \"ada\" is limited to 2 requests per second; retry after 1 s"
    );
    // bob's bucket is his own, of 4
    for _ in 0..4 {
        assert_eq!(
            status(
                send(
                    &app,
                    "POST",
                    "/loss/mse",
                    Some("k-bob"),
                    Some(&small_loss())
                )
                .await
            ),
            200
        );
    }
    send(
        &app,
        "POST",
        "/loss/mse",
        Some("k-bob"),
        Some(&small_loss()),
    )
    .await
    .problem(429);
    // probes are not counted
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// A /train that keeps a heavy slot for a while (about a second here).
fn long_train() -> Value {
    let inputs: Vec<Vec<f64>> = (0..200)
        .map(|i| (0..20).map(|j| ((i + j) % 7) as f64).collect())
        .collect();
    let targets: Vec<f64> = (0..200).map(|i| (i % 2) as f64).collect();
    json!({"inputs": inputs, "targets": targets, "loss": "mse",
        "learning_rate": 1e-9, "max_iterations": 40_000, "trace_every": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keys_burst_of_long_runs_delays_another_key_by_at_most_one_computation() {
    let text = table("ada", "k-ada", "") + &table("bob", "k-bob", "");
    let (app, _f) = keyed(
        &text,
        Config {
            max_concurrency: Some(1),
            max_concurrency_per_key: 1,
            timeout_secs: 120,
            ..Config::default()
        },
    );
    let app = Arc::new(app);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, u16)>();
    let body = Arc::new(long_train());
    let run = |who: &'static str, key: &'static str, n: usize| {
        let (app, tx, body) = (app.clone(), tx.clone(), body.clone());
        tokio::spawn(async move {
            let r = send(&app, "POST", "/train", Some(key), Some(&body)).await;
            if r.status == 429 {
                let p = r.problem(429);
                assert!(
                    p["detail"]
                        .as_str()
                        .unwrap()
                        .contains("key \"ada\" already has 1 heavy computation running"),
                    "{p}"
                );
                assert_eq!(r.header("retry-after"), Some("1"));
            }
            let _ = tx.send((format!("{who}{n}"), r.status.as_u16()));
        })
    };
    // ada's first run takes the server's only slot
    let first = run("ada", "k-ada", 0);
    for _ in 0..500 {
        if app.state.heavy.running(1) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.heavy.running(1), 1);
    // three more from ada at once: refused, not queued ahead of bob
    let more: Vec<_> = (1..=3).map(|n| run("ada", "k-ada", n)).collect();
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(rx.recv().await.unwrap());
    }
    assert_eq!(
        events.iter().filter(|(_, s)| *s == 429).count(),
        3,
        "{events:?}"
    );
    // bob waits for ada's one computation only
    let bob = run("bob", "k-bob", 0);
    for h in [first, bob].into_iter().chain(more) {
        h.await.unwrap();
    }
    drop(tx);
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    assert_eq!(
        events[3..],
        [("ada0".to_string(), 200), ("bob0".to_string(), 200)],
        "{events:?}"
    );
}

#[test]
fn keys_new_prints_a_key_and_a_table_that_the_server_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_losslab"))
        .args(["keys", "new", "ada"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("# ")
        .to_string();
    assert!(key.len() >= 22, "at least 128 bits in base64: {key}");
    assert!(
        text.contains(&format!("sha256 = \"{}\"", digest_hex(&key))),
        "{text}"
    );
    assert!(text.contains("[[key]]\nname = \"ada\"\n"), "{text}");
}

/// The binary with a keys file: each API request's log line names its key (never the
/// key), and SIGHUP reads the file again — a bad file keeps the keys in use.
/// Waits (up to 10 s) until the log file has a line containing `needle`.
async fn wait_for_line(log: &std::path::Path, needle: &str) {
    for _ in 0..500 {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_key_names_and_reloads_its_keys_on_sighup() {
    use crate::support::raw_request;
    let f = KeysFile::new(&table("ada", "k-ada-secret", ""));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log = std::env::temp_dir().join(format!("losslab-it-keys-{port}.log"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_losslab"))
        .env("LOSSLAB_ADDR", format!("127.0.0.1:{port}"))
        .env("LOSSLAB_API_KEYS_FILE", &f.0)
        .env("LOSSLAB_SHUTDOWN_DELAY_SECS", "0")
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut up = false;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let body = serde_json::to_vec(&small_loss()).unwrap();
    let ct = ("content-type", "application/json");
    let post = |key: &'static str| {
        let body = body.clone();
        async move {
            let auth = format!("Bearer {key}");
            raw_request(
                addr,
                "POST",
                "/loss/mse",
                &[ct, ("authorization", auth.as_str())],
                &body,
            )
            .await
            .status
        }
    };
    let mut statuses = Vec::new();
    if up {
        statuses.push(post("k-ada-secret").await);
        statuses.push(post("k-bob-secret").await);
        // a bad file: ada stays
        std::fs::write(&f.0, "[[key]]\nname = \"x\"\n").unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status();
        // each reload is waited for in the log, so no request races it (and adds a line)
        wait_for_line(&log, "the keys in use are kept").await;
        statuses.push(post("k-ada-secret").await);
        // a good file: bob replaces ada
        std::fs::write(&f.0, table("bob", "k-bob-secret", "")).unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status();
        wait_for_line(&log, "API keys reloaded").await;
        statuses.push(post("k-bob-secret").await);
        statuses.push(post("k-ada-secret").await);
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(up, "the server did not start: {text}");
    assert_eq!(statuses, [200, 401, 200, 200, 401], "{text}");
    assert!(!text.contains("secret"), "a key reached the log: {text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("path=/loss/mse"))
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].contains("key=\"ada\"") && lines[0].contains("status=200"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("key=\"-\"") && lines[1].contains("status=401"),
        "{}",
        lines[1]
    );
    assert!(lines[3].contains("key=\"bob\""), "{}", lines[3]);
    assert!(text.contains("the keys in use are kept"), "{text}");
    assert!(text.contains("API keys reloaded"), "{text}");
}
