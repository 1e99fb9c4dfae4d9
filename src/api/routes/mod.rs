//! HTTP handlers: JSON in → compute call → JSON out. No math and no math-level checks
//! here; each handler is a few lines.

pub mod catalogue;
pub mod grade;
pub mod gradient;
pub mod landscape;
pub mod loss;
pub mod ops;
pub mod pages;
pub mod train;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// A 200 with an already serialised JSON body. Its header map has room up front for the
/// headers the layers add (CORS, version, request id, length), so it is never regrown.
pub fn json_response(bytes: Vec<u8>) -> Response {
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut res = Response::new(Body::from(bytes));
    *res.headers_mut() = headers;
    res
}

/// Serialises a response holding about `numbers` numbers into a buffer sized for them up
/// front (a printed f64 is at most 24 bytes and a separator), so a 10^6-number gradient
/// is written once instead of being copied through every doubling of the buffer.
pub fn to_json(value: &impl serde::Serialize, numbers: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + 25 * numbers);
    // our response types serialise infallibly (numbers are finite by then)
    let _ = serde_json::to_writer(&mut out, value);
    out
}
