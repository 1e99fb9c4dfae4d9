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

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

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

/// A 200 with a JSON body already printed in pieces (the caller may set another
/// Content-Type), sent one after another as they are (no copy into one buffer; the
/// length is known, so it goes with `content-length`).
pub fn json_frames_response(frames: Vec<Vec<u8>>) -> Response {
    let mut res = json_response(Vec::new());
    let frames = frames
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(Bytes::from)
        .collect();
    *res.body_mut() = Body::new(Frames { frames });
    res
}

/// A body of pieces of known total length (the pieces left).
struct Frames {
    frames: VecDeque<Bytes>,
}

impl HttpBody for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(|f| Ok(Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.frames.iter().map(|f| f.len() as u64).sum())
    }
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
