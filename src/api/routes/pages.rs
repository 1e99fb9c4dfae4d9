//! Pages: the playground at `/` and its assets (embedded in the binary), the
//! OpenAPI document at `/openapi.json`. Swagger UI at `/docs` is mounted in `app.rs`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::api::problem::ApiError;
use crate::api::state::AppState;

const INDEX_HTML: &str = include_str!("../../../static/index.html");
const APP_JS: &str = include_str!("../../../static/app.js");
const GRADE_JS: &str = include_str!("../../../static/grade.js");
const LANDSCAPE_JS: &str = include_str!("../../../static/landscape.js");
const STYLE_CSS: &str = include_str!("../../../static/style.css");

/// The embedded copy, or (development only) the file from `LOSSLAB_STATIC_DIR`.
fn asset(state: &AppState, name: &str, embedded: &'static str, mime: &'static str) -> Response {
    let body = match &state.config.static_dir {
        Some(dir) => match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => s,
            Err(_) => embedded.to_string(),
        },
        None => embedded.to_string(),
    };
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The playground page.
pub async fn index(State(state): State<AppState>) -> Response {
    asset(&state, "index.html", INDEX_HTML, "text/html; charset=utf-8")
}

/// The playground's script.
pub async fn app_js(State(state): State<AppState>) -> Response {
    asset(&state, "app.js", APP_JS, "text/javascript; charset=utf-8")
}

/// The "Check my answer" panel's script (POST /grade).
pub async fn grade_js(State(state): State<AppState>) -> Response {
    asset(
        &state,
        "grade.js",
        GRADE_JS,
        "text/javascript; charset=utf-8",
    )
}

/// The "Loss landscape" panel's script (POST /landscape).
pub async fn landscape_js(State(state): State<AppState>) -> Response {
    asset(
        &state,
        "landscape.js",
        LANDSCAPE_JS,
        "text/javascript; charset=utf-8",
    )
}

/// The playground's style sheet.
pub async fn style_css(State(state): State<AppState>) -> Response {
    asset(&state, "style.css", STYLE_CSS, "text/css; charset=utf-8")
}

/// The generated OpenAPI document `spec`, byte for byte what `losslab openapi` prints
/// and `openapi/openapi.json` holds.
pub async fn openapi_json(spec: Bytes) -> Response {
    let mut res = spec.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Unknown path → 404 problem.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such path: {}", uri.path()))
}
