//! Response compression, negotiated per request: tower-http's `CompressionLayer` (gzip, br,
//! zstd; never NDJSON streams, never safetensors answers) for a request that sends `Accept-Encoding`, and the plain
//! inner service for one that does not — which tower-http would answer in identity anyway.
//!
//! Why: tower-http's `CompressionBody` is about 6 KB (it holds every encoder's state
//! inline), and every response that went through the layer was moved through the stack at
//! that size — a twentieth of a small request's server time in `memmove`. A compressed
//! answer now has its body boxed as soon as the layer makes it, and an uncompressed one
//! never gets that wrapper. The headers stay exactly tower-http's: a response the
//! predicate would compress gets `Vary: accept-encoding` either way (tested against the
//! plain layer below).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::future::{Either, MapOk, TryFutureExt};
use tower::{Layer, Service};
use tower_http::compression::predicate::{And, NotForContentType, Predicate};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer, DefaultPredicate};

/// What we compress: tower-http's default (not tiny, not already compressed, not images,
/// not gRPC, not SSE), never NDJSON streams, never safetensors answers.
pub type CompressWhen = And<And<DefaultPredicate, NotForContentType>, NotForContentType>;

/// When tower-http's layer compresses: its default rule, never an NDJSON stream (flushed
/// row by row), never a safetensors answer (binary f64 hardly shrinks, and compressing
/// megabytes of it costs more time than it saves).
pub fn compress_when() -> CompressWhen {
    DefaultPredicate::new()
        .and(NotForContentType::const_new("application/x-ndjson"))
        .and(NotForContentType::const_new(
            crate::api::safetensors::SAFETENSORS,
        ))
}

/// tower-http's compression for requests that accept an encoding; none for the rest.
#[derive(Clone)]
pub struct NegotiatedCompressionLayer(CompressionLayer<CompressWhen>);

impl NegotiatedCompressionLayer {
    /// The layer, with the compression rule of [`compress_when`].
    pub fn new() -> Self {
        NegotiatedCompressionLayer(CompressionLayer::new().compress_when(compress_when()))
    }
}

impl Default for NegotiatedCompressionLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for NegotiatedCompressionLayer {
    type Service = NegotiatedCompression<S>;
    fn layer(&self, inner: S) -> NegotiatedCompression<S> {
        NegotiatedCompression(self.0.layer(inner))
    }
}

/// The compression service; a request without `Accept-Encoding` is handed to its inner
/// service directly.
#[derive(Clone)]
pub struct NegotiatedCompression<S>(Compression<S, CompressWhen>);

type Compressed = Response<CompressionBody<Body>>;

impl<S> Service<Request> for NegotiatedCompression<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    /// tower-http's future is boxed: it holds the predicate and the encoding beside the
    /// inner future, and unboxed it sized (and was moved through the stack at) the size of
    /// every answer's future, also those that never take it.
    type Future = Either<
        Pin<
            Box<
                MapOk<
                    <Compression<S, CompressWhen> as Service<Request>>::Future,
                    fn(Compressed) -> Response,
                >,
            >,
        >,
        MapOk<S::Future, fn(Response) -> Response>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // the compression service's readiness is its inner service's
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.headers().contains_key(header::ACCEPT_ENCODING) {
            Either::Left(Box::pin(
                self.0
                    .call(req)
                    .map_ok(box_body as fn(Compressed) -> Response),
            ))
        } else {
            let fut = self.0.get_mut().call(req);
            Either::Right(fut.map_ok(vary_as_compression as fn(Response) -> Response))
        }
    }
}

/// Boxes the compression body where it is made, so the 6 KB value is moved once.
fn box_body(res: Compressed) -> Response {
    res.map(Body::new)
}

/// The one header tower-http's layer adds to an answer it leaves in identity because the
/// request accepted no encoding: `Vary: accept-encoding` when the predicate would have
/// compressed it (same conditions, same order, same check for an existing entry).
/// [`compress_when`]'s rule is written out here over one pass through the answer's few
/// headers, where tower-http's predicates look `Content-Type` up once each and the
/// layer then looks up three more (eight hashed lookups; the tests below hold the two
/// equal): under a third of the instructions.
fn vary_as_compression(mut res: Response) -> Response {
    let (mut content_type, mut content_length) = (None, None);
    for (name, value) in res.headers() {
        // already encoded, a range, or already varying by the encoding: left as it is
        if *name == header::CONTENT_ENCODING
            || *name == header::CONTENT_RANGE
            || (*name == header::VARY && contains_ignore_case(value.as_bytes(), b"accept-encoding"))
        {
            return res;
        }
        // the first value of each, as `HeaderMap::get` gives it
        if *name == header::CONTENT_TYPE && content_type.is_none() {
            content_type = Some(value);
        }
        if *name == header::CONTENT_LENGTH && content_length.is_none() {
            content_length = Some(value);
        }
    }
    let size = res.body().size_hint().exact().or_else(|| {
        content_length
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    let content_type = content_type
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if would_compress(size, content_type) {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// [`compress_when`] for an answer of `size` bytes (if known) and `content_type` ("" when
/// absent or not visible ASCII): tower-http's `SizeAbove(32)` (unknown sizes compress),
/// then its content-type exclusions — gRPC but gRPC-web, images but SVG, server-sent
/// events — and ours, NDJSON and safetensors (each a prefix of the text).
fn would_compress(size: Option<u64>, ct: &str) -> bool {
    size.is_none_or(|s| s >= 32)
        && (ct.starts_with("application/grpc-web") || !ct.starts_with("application/grpc"))
        && (ct.starts_with("image/svg+xml") || !ct.starts_with("image/"))
        && !ct.starts_with("text/event-stream")
        && !ct.starts_with("application/x-ndjson")
        && !ct.starts_with(crate::api::safetensors::SAFETENSORS)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    use tower::ServiceExt;

    /// Answers described by the request's path, covering each branch of the predicate.
    async fn answer(req: Request) -> Result<Response, Infallible> {
        let big = "x".repeat(200);
        let res = match req.uri().path() {
            "/json" => ([(header::CONTENT_TYPE, "application/json")], big).into_response(),
            "/tiny" => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
            "/ndjson" => ([(header::CONTENT_TYPE, "application/x-ndjson")], big).into_response(),
            "/png" => ([(header::CONTENT_TYPE, "image/png")], big).into_response(),
            "/encoded" => (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                big,
            )
                .into_response(),
            "/varied" => (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::VARY, "Accept-Encoding"),
                ],
                big,
            )
                .into_response(),
            "/varied-other" => (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::VARY, "origin"),
                ],
                big,
            )
                .into_response(),
            "/streamed" => (
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(futures_util::stream::iter([Ok::<_, Infallible>(big)])),
            )
                .into_response(),
            "/range" => (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_RANGE, "bytes 0-199/400"),
                ],
                big,
            )
                .into_response(),
            "/streamed-tiny" => (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_LENGTH, "20"),
                ],
                Body::from_stream(futures_util::stream::iter([Ok::<_, Infallible>(
                    "x".repeat(20),
                )])),
            )
                .into_response(),
            "/untyped" => big.into_response(),
            "/untyped-none" => {
                let mut res = big.into_response();
                res.headers_mut().remove(header::CONTENT_TYPE);
                res
            }
            "/opaque-type" => {
                let mut res = big.into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(b"image/\xff").unwrap(),
                );
                res
            }
            "/two-types" => {
                let mut res = big.into_response();
                res.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
                res.headers_mut().append(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res
            }
            "/varied-twice" => {
                let mut res = ([(header::CONTENT_TYPE, "application/json")], big).into_response();
                res.headers_mut()
                    .append(header::VARY, HeaderValue::from_static("origin"));
                res.headers_mut()
                    .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
                res
            }
            "/problem" => (
                StatusCode::UNPROCESSABLE_ENTITY,
                [(header::CONTENT_TYPE, "application/problem+json")],
                big,
            )
                .into_response(),
            path => match path.strip_prefix("/type/") {
                // the content type is the rest of the path: `/type/image/svg+xml`
                Some(ct) => ([(header::CONTENT_TYPE, ct)], big).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
        };
        Ok(res)
    }

    const PATHS: [&str; 30] = [
        "/two-types",
        "/varied-twice",
        "/json",
        "/tiny",
        "/ndjson",
        "/png",
        "/encoded",
        "/varied",
        "/varied-other",
        "/streamed",
        "/range",
        "/streamed-tiny",
        "/untyped",
        "/untyped-none",
        "/opaque-type",
        "/problem",
        "/nothing-here",
        "/type/application/grpc",
        "/type/application/grpc+proto",
        "/type/application/grpc-web",
        "/type/application/grpc-web+proto",
        "/type/image/svg+xml",
        "/type/image/svg",
        "/type/image/jpeg",
        "/type/IMAGE/png",
        "/type/text/event-stream",
        "/type/application/x-ndjson;charset=utf-8",
        "/type/application/x-safetensors",
        "/type/text/html;charset=utf-8",
        "/type/application/x-safetensorsx",
    ];

    async fn headers_and_body<S>(svc: S, path: &str, accept: Option<&str>) -> (HeaderMap, Vec<u8>)
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let mut req = Request::builder().uri(path);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT_ENCODING, a);
        }
        let Ok(res) = svc.oneshot(req.body(Body::empty()).unwrap()).await;
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.headers, bytes.to_vec())
    }

    fn plain_layer() -> impl Service<Request, Response = Response, Error = Infallible> + Clone {
        tower::ServiceBuilder::new()
            .map_response(|r: Compressed| r.map(Body::new))
            .layer(CompressionLayer::new().compress_when(compress_when()))
            .service_fn(answer)
    }

    fn ours() -> impl Service<Request, Response = Response, Error = Infallible> + Clone {
        NegotiatedCompressionLayer::new().layer(tower::service_fn(answer))
    }

    #[tokio::test]
    async fn without_accept_encoding_the_answer_is_what_tower_http_gives() {
        for path in PATHS {
            let a = headers_and_body(plain_layer(), path, None).await;
            let b = headers_and_body(ours(), path, None).await;
            assert_eq!(a, b, "{path}");
        }
        let (json, _) = headers_and_body(ours(), "/json", None).await;
        let vary: Vec<&HeaderValue> = json.get_all(header::VARY).iter().collect();
        assert_eq!(vary, [HeaderValue::from_static("accept-encoding")]);
        let (png, _) = headers_and_body(ours(), "/png", None).await;
        assert!(png.get(header::VARY).is_none());
    }

    #[tokio::test]
    async fn with_accept_encoding_the_answer_is_what_tower_http_gives() {
        for accept in [
            "gzip",
            "br",
            "zstd",
            "identity",
            "gzip;q=0, br;q=0.5",
            "compress",
        ] {
            for path in PATHS {
                let a = headers_and_body(plain_layer(), path, Some(accept)).await;
                let b = headers_and_body(ours(), path, Some(accept)).await;
                assert_eq!(a, b, "{path} with {accept}");
            }
        }
        let (gz, _) = headers_and_body(ours(), "/json", Some("gzip")).await;
        assert_eq!(gz.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        let (nd, body) = headers_and_body(ours(), "/ndjson", Some("gzip")).await;
        assert!(nd.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body, "x".repeat(200).into_bytes());
    }
}
