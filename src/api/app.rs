//! The router and the layer stack. The only place that knows layer order.
//!
//! Request path, outermost first (one `ServiceBuilder`, so the stack is one layer of the
//! router: a request clones and boxes it once):
//! 1. catch-panic — a backstop: a panic becomes a problem+json 500 (a bug; tests never see one)
//! 2. edge (edge.rs): `losslab-version` on every response, request id (kept or made, and
//!    echoed), metrics by route template, and problem+json for any error a layer or axum
//!    answered in text
//! 3. CORS (tower-http; requests without `Origin` get its headers, learnt once: cors.rs)
//! 4. response compression (gzip, br, zstd; never NDJSON streams), negotiated: a request
//!    without `Accept-Encoding` skips tower-http's layer (compress.rs)
//! 5. rate limit per client IP (only when configured; health probes exempt)
//! 6. body limit (axum's 2 MB default lifted to ours); our extractor enforces it and
//!    decodes gzip bodies (extract.rs)
//! 7. (only when the log filter shows DEBUG) the tracing span of each request

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::level_filters::LevelFilter;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::compress::NegotiatedCompressionLayer;
use super::cors::{CorsWithoutOriginLayer, cors_settings};
use super::edge::{EdgeLayer, RateLimitLayer, X_REQUEST_ID};
use super::openapi::{ApiDoc, set_spec};
use super::problem::ApiError;
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
    let cors = CorsWithoutOriginLayer::new(cors_settings(&state.config.cors_origins));
    let body_limit = state.config.max_body_bytes;
    let routes = Router::new()
        .merge(api_router())
        .route("/", get(pages::index))
        .route("/static/app.js", get(pages::app_js))
        .route("/static/style.css", get(pages::style_css))
        .route("/openapi.json", get(pages::openapi_json))
        .merge(Router::<AppState>::from(swagger))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    with_request_spans(routes)
        .layer(
            // one ServiceBuilder: the whole stack is one layer of the router, so a request
            // clones and boxes it once, not once per layer
            tower::ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(panic_problem))
                .layer(EdgeLayer::new(state.metrics.clone()))
                .layer(cors)
                .layer(NegotiatedCompressionLayer::new())
                .option_layer(state.rate.clone().map(RateLimitLayer))
                .layer(axum::extract::DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

/// The tracing span of each request, innermost, inside the edge (so it sees the request
/// id). Its span is DEBUG: when the log filter cannot show it, the layer is left out —
/// even disabled it cost a tenth of a small request.
fn with_request_spans(routes: Router<AppState>) -> Router<AppState> {
    if LevelFilter::current() < LevelFilter::DEBUG {
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
