//! The router and the layer stack. The only place that knows layer order.
//!
//! Request path, outermost first:
//! 1. catch-panic — a backstop: a panic becomes a problem+json 500 (a bug; tests never see one)
//! 2. `losslab-version` header on every response
//! 3. request id (set + propagate) and the tracing span
//! 4. metrics (by route template; in flight; body bytes)
//! 5. problem — any error a layer or axum answered in text becomes problem+json
//! 6. CORS
//! 7. response compression (gzip, br, zstd; never NDJSON streams)
//! 8. rate limit per client IP (when configured; health probes exempt)
//! 9. gzip request bodies decoded; body limit (axum's 2 MB default lifted to ours)

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ApiDoc, set_spec};
use super::problem::{ApiError, PROBLEM_JSON};
use super::routes::{catalogue, gradient, loss, ops, pages, train};
use super::state::AppState;

/// The documented routes (each path written once), with the spec collected from them.
pub fn api_router() -> Router<AppState> {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(loss::post_loss))
        .routes(routes!(gradient::post_gradient))
        .routes(routes!(train::post_train))
        .routes(routes!(train::get_examples))
        .routes(routes!(catalogue::get_losses))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::version))
        .split_for_parts();
    set_spec(&api);
    router
}

/// The whole service: API routes, pages, docs and the layer stack.
pub fn app(state: AppState) -> Router {
    let swagger = utoipa_swagger_ui::SwaggerUi::new("/docs").config(
        utoipa_swagger_ui::Config::new(["/openapi.json"])
            .validator_url("none")
            .try_it_out_enabled(true),
    );
    let cors = cors_layer(&state.config.cors_origins);
    let body_limit = state.config.max_body_bytes;
    let compression = CompressionLayer::new().compress_when(
        DefaultPredicate::new().and(NotForContentType::const_new("application/x-ndjson")),
    );
    let x_request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api_router())
        .route("/", get(pages::index))
        .route("/static/app.js", get(pages::app_js))
        .route("/static/style.css", get(pages::style_css))
        .route("/openapi.json", get(pages::openapi_json))
        .merge(Router::<AppState>::from(swagger))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(RequestDecompressionLayer::new().gzip(true))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(compression)
        .layer(cors)
        .layer(middleware::from_fn(problemize))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // debug level: at the default `info` filter the span is never built (it cost
            // about a fifth of a small request's time); LOSSLAB_LOG=debug turns it on
            tracing::debug_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, SequentialId::new()))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("losslab-version"),
            HeaderValue::from_static(ops::VERSION),
        ))
        .layer(CatchPanicLayer::custom(panic_problem))
        .with_state(state)
}

/// Request ids: a per-process random prefix and a counter. Unique per replica and across
/// restarts, and no random-number syscall per request (a v4 UUID cost a measurable share
/// of a small request).
#[derive(Clone)]
struct SequentialId {
    prefix: u64,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
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
}

impl MakeRequestId for SequentialId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:016x}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

fn cors_layer(origins: &str) -> CorsLayer {
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

fn panic_problem(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request panicked (a bug)");
    ApiError::Internal("the request could not be completed".into()).into_response()
}

/// Any error response not already problem+json (axum rejections, 405, layer answers)
/// becomes one, keeping its status and headers (Allow, Retry-After).
async fn problemize(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if status.as_u16() < 400 || is_problem {
        return res;
    }
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

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use std::sync::atomic::Ordering;
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        state.metrics.body_bytes.fetch_add(len, Ordering::Relaxed);
    }
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let res = next.run(req).await;
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    state.metrics.observe(
        route.as_ref().map_or("unmatched", |p| p.as_str()),
        method.as_str(),
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &state.rate {
        let path = req.uri().path();
        let exempt = matches!(path, "/healthz" | "/readyz" | "/metrics");
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let (false, Some(ip)) = (exempt, ip)
            && let Err(wait) = limiter.check(ip)
        {
            return ApiError::RateLimited(wait).into_response();
        }
    }
    next.run(req).await
}
