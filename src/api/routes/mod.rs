//! HTTP handlers: JSON in → compute call → JSON out. No math and no math-level checks
//! here; each handler is a few lines.

pub mod catalogue;
pub mod gradient;
pub mod loss;
pub mod ops;
pub mod pages;
pub mod train;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// A 200 with an already serialised JSON body.
pub fn json_response(bytes: Vec<u8>) -> Response {
    let mut res = bytes.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
