//! The router and the layer stack. The only place that knows layer order.
//!
//! Request path, outermost first. The stack is one `ServiceBuilder` around the whole
//! router, not a layer of it: `Router::layer` wraps every route in it, and a request then
//! clones and boxes the stack and answers through a second route future (about 2,000
//! instructions of a small request's 36,000, BENCHMARKS.md, fourth session).
//! 1. catch-panic — a backstop: a panic becomes a problem+json 500 (a bug; tests never see one)
//! 2. edge (stack/edge.rs): `losslab-version` on every response, request id (kept or made, and
//!    echoed), metrics by route template (matched by stack::route_templates over the
//!    router's own templates), and problem+json for any error a layer or axum answered in
//!    text
//! 3. CORS (tower-http; requests without `Origin` get its headers, learnt once: stack/cors.rs)
//! 4. response compression (gzip, br, zstd; never NDJSON streams), negotiated: a request
//!    without `Accept-Encoding` skips tower-http's layer (stack/compress.rs)
//! 5. rate limit per client IP (only when configured; health probes exempt)
//!    then API keys (only with a keys file): 401, the key's rate (429), its log line;
//!    the request runs as its key's (stack/edge.rs, keys.rs)
//! 6. the router; inside it, only when the log filter shows DEBUG, the tracing span of
//!    each request
//!
//! The body limit (`--max-body-bytes`, 413) is no layer: every route that takes a body
//! reads it through our extractors (extract.rs: `JsonBytes`, `ArrayBody`), which enforce
//! it — before and after gzip decoding — and no route uses axum's own body extractors,
//! the only readers of axum's `DefaultBodyLimit` (its layer put an extension into every
//! request, for nothing; an axum `Json`/`Bytes` extractor added later would keep axum's
//! 2 MB default, lower than ours, not higher).

use std::convert::Infallible;

use bytes::Bytes;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use tower::Service;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::level_filters::LevelFilter;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ApiDoc, SpecText, render};
use super::problem::ApiError;
use super::routes::{catalogue, grade, gradient, landscape, loss, ops, pages, train};
use super::stack::compress::NegotiatedCompressionLayer;
use super::stack::cors::{CorsWithoutOriginLayer, cors_settings};
use super::stack::edge::{EdgeLayer, KeyAuthLayer, RateLimitLayer, X_REQUEST_ID};
use super::stack::route_templates::RouteTemplates;
use super::state::AppState;
use crate::compute::LossKind;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where Swagger UI is served; utoipa-swagger-ui routes `DOCS`, `DOCS/` and `DOCS/{*rest}`.
const DOCS: &str = "/docs";

/// The OpenAPI document, collected from the documented routes.
pub fn spec() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The document as `losslab openapi` prints it (= `GET /openapi.json`).
pub fn spec_json() -> String {
    render(&spec())
}

/// The documented routes (each path written once) and the document collected from them.
fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut doc = ApiDoc::openapi();
    doc.info.description = Some(super::openapi::description());
    let (router, mut api) = OpenApiRouter::with_openapi(doc)
        .routes(routes!(loss::post_loss))
        .routes(routes!(gradient::post_gradient))
        .routes(routes!(train::post_train))
        .routes(routes!(train::get_examples))
        .routes(routes!(grade::post_grade))
        .routes(routes!(landscape::post_landscape))
        .routes(routes!(landscape::get_examples))
        .routes(routes!(catalogue::get_losses))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::version))
        .split_for_parts();
    super::keys::declare_bearer(&mut api);
    super::stack::serve::declare_body_timeout(&mut api);
    // each known kind also as a static route, matched before `/loss/{kind}` (which
    // answers the rest: an unknown kind is its 404 listing the known ones)
    let router = LossKind::ALL.into_iter().fold(router, |router, kind| {
        router.route(&format!("/loss/{}", kind.name()), loss::post_kind(kind))
    });
    (router, api)
}

/// The pages beside the API; `/openapi.json` serves `spec`.
fn pages(spec: SpecText) -> [(&'static str, MethodRouter<AppState>); 6] {
    [
        ("/", get(pages::index)),
        ("/static/app.js", get(pages::app_js)),
        ("/static/grade.js", get(pages::grade_js)),
        ("/static/landscape.js", get(pages::landscape_js)),
        ("/static/style.css", get(pages::style_css)),
        (
            "/openapi.json",
            get(move || pages::openapi_json(spec.bytes())),
        ),
    ]
}

/// Every route (API, pages, docs, fallbacks) and the path template of each.
fn routes() -> (Router<AppState>, Vec<String>) {
    let (mut router, api) = api_routes();
    let mut templates: Vec<String> = api.paths.paths.keys().cloned().collect();
    for (path, page) in pages(SpecText::new(api)) {
        router = router.route(path, page);
        templates.push(path.to_string());
    }
    let swagger = utoipa_swagger_ui::SwaggerUi::new(DOCS).config(
        utoipa_swagger_ui::Config::new(["/openapi.json"])
            .validator_url("none")
            .try_it_out_enabled(true),
    );
    templates.extend([
        DOCS.to_string(),
        format!("{DOCS}/"),
        format!("{DOCS}/{{*rest}}"),
    ]);
    let router = router
        .merge(Router::<AppState>::from(swagger))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    (router, templates)
}

/// The whole service: the layer stack around the router, with the state. Cloning it
/// clones a few `Arc`s; calling it needs no `poll_ready` first (every layer is always
/// ready, as the router is). The body is the panic catcher's box, which hyper sends as is.
pub fn app(
    state: AppState,
) -> impl Service<
    Request,
    Response = Response<impl HttpBody<Data = Bytes, Error = BoxError> + Send + 'static>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let (router, templates) = routes();
    // the request span is DEBUG: when the log filter cannot show it, it is left out
    let spans = LevelFilter::current() >= LevelFilter::DEBUG;
    let cors = CorsWithoutOriginLayer::new(cors_settings(&state.config.cors_origins));
    tower::ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(
            panic_problem as fn(Box<dyn std::any::Any + Send + 'static>) -> Response,
        ))
        .layer(EdgeLayer::new(
            state.metrics.clone(),
            RouteTemplates::new(templates),
            spans || state.keys.is_some(),
        ))
        .layer(cors)
        .layer(NegotiatedCompressionLayer::new())
        .option_layer(state.rate.clone().map(RateLimitLayer))
        .option_layer(state.keys.clone().map(KeyAuthLayer))
        .service(with_request_spans(router, spans).with_state(state))
}

/// The tracing span of each request (`spans`: the log filter shows DEBUG), innermost,
/// inside the edge (so it sees the request id). Left out otherwise — even disabled it
/// cost a tenth of a small request.
fn with_request_spans(routes: Router<AppState>, spans: bool) -> Router<AppState> {
    if !spans {
        return routes;
    }
    routes.layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let id = req
            .headers()
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::debug_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
    }))
}

fn panic_problem(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request panicked (a bug)");
    ApiError::Internal("the request could not be completed".into()).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::extract::MatchedPath;
    use tower::ServiceExt;

    use super::*;
    use crate::api::Config;

    /// stack/serve.rs calls the app without `poll_ready` first: every layer must stay always
    /// ready, with a rate limit configured or not.
    #[tokio::test]
    async fn the_app_is_always_ready() {
        for rate_limit_per_ip in [0, 5] {
            let config = Config {
                rate_limit_per_ip,
                ..Config::default()
            };
            let mut app = app(AppState::new(config));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(matches!(
                app.poll_ready(&mut cx),
                std::task::Poll::Ready(Ok(()))
            ));
        }
    }

    /// The label the metrics give each request path is the template axum's router matched
    /// for it (its `MatchedPath`), and "unmatched" where it matched none.
    #[tokio::test]
    async fn route_labels_are_the_templates_axum_matches() {
        let (router, templates) = routes();
        let labels = RouteTemplates::new(&templates);
        let seen: Arc<Mutex<Option<String>>> = Arc::default();
        let record = seen.clone();
        let router = router
            .layer(tower::util::MapRequestLayer::new(move |req: Request| {
                *record.lock().unwrap_or_else(|p| p.into_inner()) = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_string());
                req
            }))
            .with_state(AppState::new(Config::default()));
        // each template with its parameters filled in, and paths near them
        let mut paths: Vec<String> = templates
            .iter()
            .map(|t| {
                t.replace("{kind}", "mse")
                    .replace("{*rest}", "swagger-ui.css")
            })
            .collect();
        paths.extend(
            [
                "/nope",
                "/loss",
                "/loss/",
                "/loss/mse/",
                "/loss/a/b",
                "/losses/",
                "/gradient/x",
                "/docs/a/b/c.js",
                "/docs//",
                "/static",
                "/static/nope.js",
                "/train/examples/1",
                "//",
                "/LOSSES",
                "/loss/%6Dse",
                "/metrics.txt",
            ]
            .map(String::from),
        );
        assert!(paths.len() > 30, "{paths:?}");
        let (mut matched, mut unmatched) = (0, 0);
        for path in &paths {
            for method in ["GET", "POST", "DELETE"] {
                let req = Request::builder()
                    .method(method)
                    .uri(path.as_str())
                    .body(Body::empty())
                    .unwrap_or_default();
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let _ = router.clone().oneshot(req).await;
                // a known kind's static route (api_routes) is labelled by its template
                let axum_says = seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .map(|p| match p.strip_prefix("/loss/").map(LossKind::parse) {
                        Some(Some(_)) => "/loss/{kind}".to_string(),
                        _ => p,
                    });
                assert_eq!(
                    labels.of(path).as_deref(),
                    axum_says.as_deref(),
                    "{method} {path}"
                );
                match axum_says {
                    Some(_) => matched += 1,
                    None => unmatched += 1,
                }
            }
        }
        // every template matched (three methods each); most near misses did not (a few
        // fall under a template: /docs/a/b/c.js, /docs//, /loss/%6Dse)
        assert_eq!(matched, 3 * (templates.len() + 3));
        assert_eq!(unmatched, 3 * 13);
    }
}
