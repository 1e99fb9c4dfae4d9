//! CORS: tower-http's `CorsLayer` built from the allowed origins (default any origin, no
//! credentials), and a shortcut for requests that are not CORS requests at all.
//!
//! A browser sends `Origin` on every cross-origin request, and tower-http answers a request
//! without one with headers that depend on nothing in it (with our constant settings:
//! `Vary`, and for any origin `access-control-allow-origin: *` and the exposed headers).
//! Building them again for each such request — a `Vary` string joined, a header map filled
//! and merged — was a tenth of a small request. So tower-http answers one such request
//! when the layer is made, and its headers are kept and added, in tower-http's way, to
//! every later request without `Origin` (OPTIONS excepted: tower-http takes every OPTIONS
//! as a preflight). Requests with `Origin`, and every OPTIONS, go through tower-http's
//! layer. Tests compare both paths with the plain layer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::Either;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, Any, Cors, CorsLayer};

/// The CORS settings: methods, request headers allowed, response headers exposed, and
/// the allowed origins (`*` or a comma-separated list).
pub fn cors_settings(origins: &str) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::ACCEPT,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("losslab-version"),
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
        ]);
    if origins.trim() == "*" {
        base.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .split(',')
            .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
            .collect();
        base.allow_origin(AllowOrigin::list(list))
    }
}

/// tower-http's CORS, with the headers for requests without `Origin` worked out once.
/// Shared: cloning the layer or its services (axum clones the route's stack for each
/// request) clones no CORS settings.
#[derive(Clone)]
pub struct CorsWithoutOriginLayer(Arc<Settings>);

struct Settings {
    cors: CorsLayer,
    /// What tower-http adds to a non-OPTIONS request without `Origin`; `None` if it could
    /// not be known up front (then every request goes through tower-http).
    plain: Option<Arc<AddedHeaders>>,
}

impl CorsWithoutOriginLayer {
    /// The layer around tower-http's `cors`, learning the headers of origin-less requests once.
    pub fn new(cors: CorsLayer) -> Self {
        let plain = AddedHeaders::learn(&cors).map(Arc::new);
        CorsWithoutOriginLayer(Arc::new(Settings { cors, plain }))
    }
}

impl<S> Layer<S> for CorsWithoutOriginLayer {
    type Service = CorsWithoutOrigin<S>;
    fn layer(&self, inner: S) -> CorsWithoutOrigin<S> {
        CorsWithoutOrigin {
            inner,
            settings: self.0.clone(),
        }
    }
}

/// The inner service and the shared settings: tower-http's `Cors` is put around the
/// inner service only for the requests it answers.
#[derive(Clone)]
pub struct CorsWithoutOrigin<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> Service<Request> for CorsWithoutOrigin<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    /// tower-http's future is boxed: it holds a header map beside the inner future, and
    /// unboxed it sized (and was moved through the stack at) the size of every answer's
    /// future, also those that never take it.
    type Future = Either<Pin<Box<<Cors<S> as Service<Request>>::Future>>, WithHeaders<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match &self.settings.plain {
            Some(added)
                if req.method() != Method::OPTIONS
                    && !req.headers().contains_key(header::ORIGIN) =>
            {
                Either::Right(WithHeaders {
                    inner: self.inner.call(req),
                    added: added.clone(),
                })
            }
            _ => {
                // the service polled ready goes into tower-http's layer (clone-and-swap)
                let ready = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, ready);
                Either::Left(Box::pin(self.settings.cors.layer(inner).call(req)))
            }
        }
    }
}

/// Response headers in tower-http's CORS order: `Vary` values appended to the response's,
/// each other name replacing the response's own.
pub struct AddedHeaders(Vec<(HeaderName, Vec<HeaderValue>)>);

impl AddedHeaders {
    /// Asks tower-http: the headers its layer adds to a GET without `Origin` whose answer
    /// has none. `None` if its answer is not ready at once (an async origin predicate).
    fn learn(cors: &CorsLayer) -> Option<Self> {
        let svc = cors.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let req = Request::get("/").body(Body::empty()).ok()?;
        let Ok(res) = svc.oneshot(req).now_or_never()?;
        Some(Self::from_map(res.headers()))
    }

    fn from_map(map: &HeaderMap) -> Self {
        AddedHeaders(
            map.keys()
                .map(|name| (name.clone(), map.get_all(name).iter().cloned().collect()))
                .collect(),
        )
    }

    fn apply(&self, headers: &mut HeaderMap) {
        for (name, values) in &self.0 {
            let mut values = values.iter().cloned();
            if *name != header::VARY
                && let Some(first) = values.next()
            {
                headers.insert(name.clone(), first);
            }
            for v in values {
                headers.append(name.clone(), v);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer with the learnt CORS headers added.
    pub struct WithHeaders<F> {
        #[pin]
        inner: F,
        added: Arc<AddedHeaders>,
    }
}

impl<F> Future for WithHeaders<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut res) = ready!(this.inner.poll(cx));
        this.added.apply(res.headers_mut());
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    /// Answers whose own headers overlap the CORS ones in each way that matters.
    async fn answer(req: Request) -> Result<Response, Infallible> {
        let res = match req.uri().path() {
            "/varied" => ([(header::VARY, "accept-encoding")], "x").into_response(),
            "/own-origin" => (
                [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "https://mine.example")],
                "x",
            )
                .into_response(),
            "/two-exposed" => (
                [
                    (header::ACCESS_CONTROL_EXPOSE_HEADERS, "a"),
                    (header::ACCESS_CONTROL_EXPOSE_HEADERS, "b"),
                ],
                "x",
            )
                .into_response(),
            "/error" => (StatusCode::UNPROCESSABLE_ENTITY, "no").into_response(),
            _ => "plain".into_response(),
        };
        Ok(res)
    }

    fn plain(
        origins: &str,
    ) -> Cors<impl Service<Request, Response = Response, Error = Infallible> + Clone> {
        cors_settings(origins).layer(tower::service_fn(answer))
    }

    fn ours(
        origins: &str,
    ) -> CorsWithoutOrigin<impl Service<Request, Response = Response, Error = Infallible> + Clone>
    {
        CorsWithoutOriginLayer::new(cors_settings(origins)).layer(tower::service_fn(answer))
    }

    async fn headers<S>(svc: S, req: Request) -> (StatusCode, Vec<(String, String)>)
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let Ok(res) = svc.oneshot(req).await;
        let list = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        (res.status(), list)
    }

    fn requests() -> Vec<Request> {
        let mut out = Vec::new();
        for path in ["/", "/varied", "/own-origin", "/two-exposed", "/error"] {
            for method in [Method::GET, Method::POST, Method::OPTIONS, Method::PUT] {
                for origin in [None, Some("https://a.example"), Some("https://b.example")] {
                    let mut r = Request::builder().method(method.clone()).uri(path);
                    if let Some(o) = origin {
                        r = r.header(header::ORIGIN, o);
                    }
                    if method == Method::OPTIONS {
                        r = r.header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST");
                    }
                    out.push(r.body(Body::empty()).unwrap());
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn every_answer_has_the_headers_tower_http_gives() {
        for origins in [
            "*",
            "https://a.example",
            "https://a.example, https://c.example",
        ] {
            let (a, b) = (requests(), requests());
            for (ra, rb) in a.into_iter().zip(b) {
                let what = format!(
                    "{} {} {:?} ({origins})",
                    ra.method(),
                    ra.uri(),
                    ra.headers()
                );
                assert_eq!(
                    headers(plain(origins), ra).await,
                    headers(ours(origins), rb).await,
                    "{what}"
                );
            }
        }
    }

    #[tokio::test]
    async fn requests_without_origin_get_the_learnt_headers() {
        let layer = CorsWithoutOriginLayer::new(cors_settings("*"));
        let added = layer.0.plain.as_ref().expect("learnt at start");
        let names: Vec<&str> = added.0.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"access-control-allow-origin"), "{names:?}");
        // Any origin with fixed methods and headers: the answer depends on no request
        // header, so tower-http (since 0.7) adds no CORS `Vary`; compression's stays
        assert!(!names.contains(&"vary"), "{names:?}");
        let req = Request::post("/varied").body(Body::empty()).unwrap();
        let (_, h) = headers(ours("*"), req).await;
        let vary: Vec<&str> = h
            .iter()
            .filter(|(k, _)| k == "vary")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(vary, ["accept-encoding"], "{h:?}");
        assert!(h.contains(&("access-control-allow-origin".into(), "*".into())));
        // a configured list makes the answer depend on Origin: `Vary` names it
        let layer = CorsWithoutOriginLayer::new(cors_settings("https://a.example"));
        let added = layer.0.plain.as_ref().expect("learnt at start");
        assert!(
            added
                .0
                .iter()
                .any(|(n, vs)| n == "vary" && vs.iter().any(|v| v == "origin")),
            "{:?}",
            added.0
        );
        // a configured list gives a request without Origin no allow-origin at all
        let req = Request::get("/").body(Body::empty()).unwrap();
        let (_, h) = headers(ours("https://a.example"), req).await;
        assert!(
            !h.iter().any(|(k, _)| k == "access-control-allow-origin"),
            "{h:?}"
        );
    }
}
