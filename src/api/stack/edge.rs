//! The two middlewares of our own, written as plain tower services so a request pays one
//! boxed future for all of them (axum's `from_fn` boxes and clones the inner stack once
//! per middleware, which cost a fifth of a small request):
//! - [`EdgeLayer`]: the `losslab-version` header on every response, the request id (kept
//!   from the client or made, and echoed), metrics by route template, and `problemize` —
//!   any error answer not already problem+json (axum rejections, 405, layer answers)
//!   becomes one, keeping its status and headers (Allow, Retry-After);
//! - [`RateLimitLayer`]: 429 per client IP, in the stack only when a rate is configured
//!   (probes exempt);
//! - [`KeyAuthLayer`]: API keys — 401 without a known key, 429 past the key's rate, the
//!   key's log line — in the stack only when a keys file is configured.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use tower::{Layer, Service};

use super::route_templates::RouteTemplates;
use crate::api::keys::{self, KeyStore};
use crate::api::metrics::Metrics;
use crate::api::problem::{ApiError, PROBLEM_JSON};
use crate::api::state::RateLimiter;
use crate::api::version::VERSION;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request id header: kept when the client sends one, else made; echoed in the response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const LOSSLAB_VERSION: HeaderName = HeaderName::from_static("losslab-version");

/// Version header, request id, metrics and problem+json for every answer.
#[derive(Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
    routes: Arc<RouteTemplates>,
    ids: SequentialId,
    forward_id: bool,
}

impl EdgeLayer {
    /// Metrics go to `metrics`, labelled by the template of `routes` a request matches.
    /// With `forward_id`, a request that came without an id carries the one made for it
    /// to the layers inside (for their log lines: the request span, the API keys' access
    /// line); without, only its answer does.
    pub fn new(metrics: Arc<Metrics>, routes: RouteTemplates, forward_id: bool) -> Self {
        EdgeLayer {
            metrics,
            routes: Arc::new(routes),
            ids: SequentialId::new(),
            forward_id,
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`EdgeLayer`] around `S`.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    layer: EdgeLayer,
}

impl<S, B> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.layer.ids.next();
                if self.layer.forward_id {
                    req.headers_mut().insert(X_REQUEST_ID, id.clone());
                }
                id
            }
        };
        let metrics = &self.layer.metrics;
        let route = self.layer.routes.of(req.uri().path());
        let method = req.method().clone();
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            metrics.body_bytes.fetch_add(len, Ordering::Relaxed);
        }
        let in_flight = InFlight::start(metrics.clone());
        let start = Instant::now();
        // called here, not inside the future: the service polled ready serves the request
        // and the stack is not cloned
        EdgeFuture {
            stage: Stage::Inner {
                fut: self.inner.call(req),
            },
            after: Some(After {
                id,
                route,
                method,
                start,
                in_flight,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, made a problem if it is an error in another shape,
    /// then stamped and counted. A plain state machine rather than a boxed `async`
    /// block: the common answer costs no allocation here; only an answer that must be
    /// read and rewritten (problemize) gets a boxed future.
    pub struct EdgeFuture<F> {
        #[pin]
        stage: Stage<F>,
        after: Option<After>,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Inner { #[pin] fut: F },
        Problem { fut: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

/// What the answer is stamped and counted with (the metrics through the in-flight
/// guard, which holds them).
struct After {
    id: HeaderValue,
    route: Option<Arc<str>>,
    method: axum::http::Method,
    start: Instant,
    in_flight: InFlight,
}

impl After {
    fn finish(self, mut res: Response) -> Response {
        let headers = res.headers_mut();
        headers.insert(LOSSLAB_VERSION, HeaderValue::from_static(VERSION));
        headers.entry(X_REQUEST_ID).or_insert(self.id);
        // the request counts as in flight until `self` (its guard) drops, just after
        self.in_flight.0.observe(
            self.route.as_deref().unwrap_or("unmatched"),
            self.method.as_str(),
            res.status().as_u16(),
            self.start.elapsed().as_secs_f64(),
        );
        res
    }
}

impl<F, B> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let res = loop {
            match this.stage.as_mut().project() {
                StageProj::Inner { fut } => {
                    let Ok(res) = std::task::ready!(fut.poll(cx));
                    let res = res.map(Body::new);
                    if is_problem_or_success(&res) {
                        break res;
                    }
                    this.stage.set(Stage::Problem {
                        fut: Box::pin(problemize(res)),
                    });
                }
                StageProj::Problem { fut } => break std::task::ready!(fut.as_mut().poll(cx)),
            }
        };
        // `after` is taken once: the future is not polled after it is ready
        Poll::Ready(Ok(match this.after.take() {
            Some(after) => after.finish(res),
            None => res,
        }))
    }
}

/// Counts a request in flight until dropped — also when the client goes away and the
/// request's future is dropped unfinished.
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn start(m: Arc<Metrics>) -> Self {
        m.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(m)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A success, or an error already in problem+json: left as it is.
fn is_problem_or_success(res: &Response) -> bool {
    res.status().as_u16() < 400
        || res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// An error response not already problem+json becomes one, keeping its status and
/// headers (Allow, Retry-After).
async fn problemize(res: Response) -> Response {
    let status = res.status();
    let (mut parts, body) = res.into_parts();
    let text = match body.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let err = match status {
        StatusCode::BAD_REQUEST => ApiError::Malformed(text),
        StatusCode::NOT_FOUND => ApiError::NotFound(text),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(0),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(if text.is_empty() {
            "unsupported content type or encoding".into()
        } else {
            text
        }),
        s => ApiError::Other(s, if text.is_empty() { s.to_string() } else { text }),
    };
    let fresh = err.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    let (_, body) = fresh.into_parts();
    Response::from_parts(parts, body)
}

/// Request ids: a per-process random prefix and a counter. Unique per replica and across
/// restarts, and no random-number syscall per request (a v4 UUID cost a measurable share
/// of a small request).
#[derive(Clone)]
struct SequentialId {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl SequentialId {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        SequentialId {
            prefix: nanos ^ (u64::from(std::process::id()) << 40),
            next: Default::default(),
        }
    }

    /// `{prefix:016x}-{counter}`, written into a stack buffer (no formatting machinery).
    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 37]; // 16 hex digits, '-', at most 20 decimal digits
        for (i, b) in buf[..16].iter_mut().enumerate() {
            *b = b"0123456789abcdef"[(self.prefix >> (60 - 4 * i)) as usize & 0xf];
        }
        buf[16] = b'-';
        let mut digits = [0u8; 20];
        let (mut rest, mut len) = (n, 0);
        loop {
            digits[19 - len] = b'0' + (rest % 10) as u8;
            len += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        buf[17..17 + len].copy_from_slice(&digits[20 - len..]);
        // owned by one shared allocation: the copy echoed on the response is a count, not
        // a second buffer
        let id = Bytes::from_owner(RequestId { buf, len: 17 + len });
        HeaderValue::from_maybe_shared(id).unwrap_or(HeaderValue::from_static("-"))
    }
}

struct RequestId {
    buf: [u8; 37],
    len: usize,
}

impl AsRef<[u8]> for RequestId {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// 429 with Retry-After past the per-IP rate (the layer exists only when a rate is set).
#[derive(Clone)]
pub struct RateLimitLayer(pub Arc<RateLimiter>);

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            limiter: self.0.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`] around `S`.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        futures_util::future::Either<std::future::Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use futures_util::future::Either;
        let exempt = matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics");
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let (false, Some(ip)) = (exempt, ip)
            && let Err(wait) = self.limiter.check(ip)
        {
            return Either::Left(std::future::ready(Ok(
                ApiError::RateLimited(wait).into_response()
            )));
        }
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_prefix_in_hex_and_a_counter() {
        let ids = SequentialId {
            prefix: 0x0123_4567_89ab_cdef,
            next: Arc::new(AtomicU64::new(0)),
        };
        assert_eq!(ids.next(), "0123456789abcdef-0");
        assert_eq!(ids.next(), "0123456789abcdef-1");
        ids.next.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(ids.next(), format!("0123456789abcdef-{}", u64::MAX));
        ids.next.store(1_000_000_007, Ordering::Relaxed);
        assert_eq!(ids.next(), "0123456789abcdef-1000000007");
        let small = SequentialId {
            prefix: 0xa,
            next: Arc::new(AtomicU64::new(9)),
        };
        assert_eq!(small.next(), "000000000000000a-9");
        assert_eq!(small.next(), "000000000000000a-10");
    }
}

/// API keys (keys.rs), in the stack only when a keys file is configured: the API
/// operations need a known key (401 otherwise) within its rate (429); the request then
/// runs as that key's (its heavy work takes the key's slots), and one log line at INFO
/// says which key asked what and how it was answered — the key's name, never the key.
#[derive(Clone)]
pub struct KeyAuthLayer(pub Arc<KeyStore>);

impl<S> Layer<S> for KeyAuthLayer {
    type Service = KeyAuth<S>;
    fn layer(&self, inner: S) -> KeyAuth<S> {
        KeyAuth {
            inner,
            keys: self.0.clone(),
        }
    }
}

/// The service of [`KeyAuthLayer`]: Bearer auth on the API operations.
#[derive(Clone)]
pub struct KeyAuth<S> {
    inner: S,
    keys: Arc<KeyStore>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for KeyAuth<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<S::Future, ResponseFuture>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        use futures_util::future::Either;
        // CORS preflights carry no credentials; the CORS layer answers them outside
        if !keys::is_guarded(req.uri().path()) || req.method() == axum::http::Method::OPTIONS {
            return Either::Left(self.inner.call(req));
        }
        let start = Instant::now();
        let line = AccessLine {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            request_id: req.headers().get(X_REQUEST_ID).cloned(),
        };
        let refuse = |e: ApiError, name: &str| {
            let res = e.into_response();
            line.log(name, res.status(), start);
            Either::Right(Box::pin(std::future::ready(Ok(res))) as ResponseFuture)
        };
        let authorization = req.headers().get(header::AUTHORIZATION);
        let caller = match self
            .keys
            .authenticate(authorization.map(HeaderValue::as_bytes))
        {
            Ok(c) => c,
            Err(e) => return refuse(e, "-"),
        };
        if let Err(e) = caller.check_rate() {
            return refuse(e, &caller.name);
        }
        let name = caller.name.clone();
        req.extensions_mut().insert(caller.clone());
        let answer = keys::scope(caller, self.inner.call(req));
        Either::Right(Box::pin(async move {
            let Ok(res) = answer.await;
            line.log(&name, res.status(), start);
            Ok(res)
        }))
    }
}

/// One request of a keyed server, for its log line.
struct AccessLine {
    method: axum::http::Method,
    path: String,
    request_id: Option<HeaderValue>,
}

impl AccessLine {
    fn log(&self, key: &str, status: StatusCode, start: Instant) {
        let id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            key,
            method = %self.method,
            path = %self.path,
            status = status.as_u16(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            request_id = id,
            "request"
        );
    }
}
