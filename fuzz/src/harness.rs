//! The fuzzing harness shared by the cargo-fuzz targets (fuzz/fuzz_targets) and the stable
//! proptest over the same property (tests/it/fuzz_property.rs includes this file): bytes
//! become a request to one of the operations — raw bytes as the body, or a JSON body built
//! from the schema's own field names and values — sent as JSON or gzip through `app()`.
//!
//! The property (API.md, General): no panic, no 500; every error is a valid problem+json
//! (`type`, `title`, `status` equal to the answer's, `detail`, `errors` an array of
//! `{field, message}`); every 200 is JSON without NaN or ±Infinity.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use losslab::{AppState, Config, app};
use serde_json::{Map, Value};
use tower::ServiceExt;

/// The operations driven, by method and path (/grade and /landscape answer 404 where they
/// are not built yet — a problem+json like any other).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/loss/mse"),
    ("POST", "/loss/huber"),
    ("POST", "/loss/bce"),
    ("POST", "/loss/cross_entropy"),
    ("POST", "/loss/nll"),
    ("POST", "/loss/kl_div"),
    ("POST", "/loss/js_div"),
    ("POST", "/loss/poisson"),
    ("POST", "/loss/focal"),
    ("POST", "/loss/hinge"),
    ("POST", "/loss/cosine"),
    ("POST", "/loss/quantile"),
    ("POST", "/gradient"),
    ("POST", "/train"),
    ("POST", "/grade"),
    ("POST", "/landscape"),
    ("GET", "/losses"),
    ("GET", "/train/examples"),
    ("POST", "/loss/nope"),
];

/// The names a body may hold: the request schemas' fields, params, and nested fields.
const FIELDS: &[&str] = &[
    "predictions",
    "targets",
    "reduction",
    "weights",
    "from_logits",
    "params",
    "gradient",
    "loss",
    "logits",
    "activation",
    "activation_params",
    "check",
    "inputs",
    "init",
    "use_bias",
    "learning_rate",
    "optimizer",
    "batch_size",
    "seed",
    "max_iterations",
    "stop",
    "trace_every",
    "delta",
    "beta",
    "epsilon",
    "tau",
    "full",
    "pos_weight",
    "label_smoothing",
    "class_weights",
    "log_base",
    "gamma",
    "alpha",
    "negative_slope",
    "kind",
    "momentum",
    "beta1",
    "beta2",
    "loss_below",
    "abs_error_below",
    "gradient_norm_below",
    "bias",
    "items",
    "task",
    "answer",
    "tolerance",
    "rtol",
    "atol",
    "partial",
    "reveal",
    "format",
    "points",
    "id",
    "x",
    "y",
    "parameter",
    "from",
    "to",
    "steps",
    "path",
    "nope",
];

/// String values the schema knows (and a few it does not).
const WORDS: &[&str] = &[
    "mean",
    "sum",
    "none",
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "softplus",
    "softmax",
    "mse",
    "l2",
    "mae",
    "bce",
    "cross_entropy",
    "nll",
    "kl_div",
    "focal",
    "hinge",
    "poisson",
    "cosine",
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "/weights/0",
    "/bias",
    "/weights/1/0",
    "diff",
    "expected",
    "gradescope",
    "",
    "x",
];

/// Numbers at the edges of f64 and of the limits.
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    1e-12,
    1e-300,
    5e-324,
    1e308,
    -1e308,
    800.0,
    -800.0,
    100.0,
    1e6,
    3.0,
    0.999_999_9,
    1e-7,
    2.5,
    7.0,
];

/// A reader of the fuzzer's bytes; past the end it reads zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, at: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.at.min(self.data.len())..]
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.byte() as usize % from.len()]
    }

    fn number(&mut self) -> f64 {
        match self.byte() % 4 {
            0 => self.pick(NUMBERS),
            1 => f64::from(self.byte() as i8),
            2 => f64::from(self.byte()) / 16.0,
            _ => {
                let mut b = [0u8; 8];
                for x in &mut b {
                    *x = self.byte();
                }
                let x = f64::from_le_bytes(b);
                if x.is_finite() { x } else { 0.0 }
            }
        }
    }

    /// An arbitrary JSON value, at most `depth` levels deep, its object keys drawn from
    /// the schema's field names.
    pub fn value(&mut self, depth: u8) -> Value {
        let kind = if depth == 0 {
            self.byte() % 5
        } else {
            self.byte() % 8
        };
        match kind {
            0 => Value::Null,
            1 => Value::Bool(self.byte() & 1 == 1),
            2 | 3 => serde_json::Number::from_f64(self.number()).map_or(Value::Null, Value::Number),
            4 => Value::String(self.pick(WORDS).to_string()),
            5 => {
                // a flat or nested array of numbers, the common shape of the schema
                let rows = self.byte() % 5;
                let cols = self.byte() % 4;
                let row = |b: &mut Self| -> Value {
                    (0..cols.max(1)).map(|_| Value::from(b.number())).collect()
                };
                if cols == 0 {
                    (0..rows).map(|_| Value::from(self.number())).collect()
                } else {
                    (0..rows).map(|_| row(self)).collect()
                }
            }
            6 => (0..self.byte() % 4)
                .map(|_| self.value(depth - 1))
                .collect(),
            _ => Value::Object(self.object(depth - 1)),
        }
    }

    /// An object of schema fields.
    pub fn object(&mut self, depth: u8) -> Map<String, Value> {
        let mut m = Map::new();
        for _ in 0..self.byte() % 8 {
            let k = self.pick(FIELDS).to_string();
            let v = self.value(depth);
            m.insert(k, v);
        }
        m
    }
}

/// One request of the fuzzer.
#[derive(Debug)]
pub struct Case {
    pub method: &'static str,
    pub path: &'static str,
    /// 0: plain; 1: the body gzip-compressed; 2: labelled gzip but not compressed
    pub encoding: u8,
    pub body: Vec<u8>,
}

/// A case from the fuzzer's bytes: the operation and encoding from the first two, then
/// the body — the rest of the bytes as they are, or a JSON object built from them.
pub fn case(data: &[u8], structured: bool) -> Case {
    let mut b = Bytes::new(data);
    let (method, path) = b.pick(OPERATIONS);
    let encoding = b.byte() % 3;
    let body = if structured {
        let obj = Value::Object(b.object(3));
        serde_json::to_vec(&obj).unwrap_or_default()
    } else {
        b.rest().to_vec()
    };
    Case {
        method,
        path,
        encoding,
        body,
    }
}

/// Limits small enough that no case runs long.
pub fn config() -> Config {
    Config {
        max_iterations: 200,
        max_trace_rows: 300,
        max_trace_numbers: 20_000,
        max_body_bytes: 1 << 20,
        timeout_secs: 5,
        max_concurrency: Some(2),
        ..Config::default()
    }
}

pub type App = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

pub fn service() -> App {
    tower::util::BoxCloneSyncService::new(
        app(AppState::new(config())).map_response(|r| r.map(Body::new)),
    )
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}

/// Sends `case` through the app and checks the property; `Err` says what broke.
pub async fn run(app: &App, case: &Case) -> Result<(), String> {
    let mut req = Request::builder()
        .method(case.method)
        .uri(case.path)
        .header("content-type", "application/json");
    let body = match case.encoding {
        0 => case.body.clone(),
        1 => {
            req = req.header("content-encoding", "gzip");
            gzip(&case.body)
        }
        _ => {
            req = req.header("content-encoding", "gzip");
            case.body.clone()
        }
    };
    let req = req.body(Body::from(body)).map_err(|e| e.to_string())?;
    let res = app.clone().oneshot(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = res.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| format!("the body failed: {e}"))?
        .to_bytes();
    let ct = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    check(parts.status.as_u16(), ct, &bytes)
}

/// The property of one answer.
pub fn check(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status >= 500 && status != 503 {
        return Err(format!("status {status}: {text}"));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("{status} not JSON ({e}): {text}"))?;
    if status < 400 {
        if status != 200 {
            return Err(format!("unexpected status {status}: {text}"));
        }
        if content_type != Some("application/json") {
            return Err(format!("200 with content type {content_type:?}"));
        }
        // JSON has no NaN or Infinity: a body that parsed as JSON holds none
        return Ok(());
    }
    if content_type != Some("application/problem+json") {
        return Err(format!(
            "{status} with content type {content_type:?}: {text}"
        ));
    }
    let ok = v["type"].is_string()
        && v["title"].is_string()
        && v["detail"].is_string()
        && v["status"] == status
        && v["errors"].as_array().is_some_and(|errors| {
            errors
                .iter()
                .all(|e| e["field"].is_string() && e["message"].is_string())
        });
    if !ok {
        return Err(format!("{status}: not a valid problem: {text}"));
    }
    Ok(())
}
