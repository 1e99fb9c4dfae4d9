//! `ApiError` → `application/problem+json` (RFC 9457): the only file that picks status
//! codes. Every error the service answers — compute errors, JSON rejections, unknown
//! routes and methods, limits, overload, timeouts, even a caught panic — ends here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::compute::{ComputeError, ErrorKind};

/// The media type of every error response (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One offending field: a JSON pointer into the request and what is wrong there.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// JSON pointer into the request, e.g. `/targets/3` or `/params/delta`.
    #[schema(example = "/targets/3")]
    pub field: String,
    /// What is wrong there.
    #[schema(example = "probabilities must lie in [0, 1]; got 1.5")]
    pub message: String,
}

/// An RFC 9457 problem. `errors` is always present (possibly empty).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[schema(example = "https://losslab.dev/problems/invalid-input")]
    pub r#type: String,
    /// The HTTP reason phrase of the status.
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// The problem in words (the first field error, when there is one).
    #[schema(example = "/targets/3: probabilities must lie in [0, 1]; got 1.5")]
    pub detail: String,
    /// Every offending field.
    pub errors: Vec<FieldError>,
}

/// Everything that can go wrong in a request, as data until `into_response`.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not JSON, or a number is outside the f64 range (400).
    Malformed(String),
    /// The body is not a valid safetensors file, or its `__metadata__.request` is not the
    /// JSON text of an object (400; API.md "Binary bodies").
    MalformedSafetensors(String),
    /// Unknown path, or unknown kind in the path (404).
    NotFound(String),
    /// Wrong method (405); the `Allow` header is kept by the caller.
    MethodNotAllowed,
    /// Body larger than the limit (413).
    TooLarge(u64),
    /// Content-Type is not JSON (415).
    UnsupportedMediaType(String),
    /// Well-formed but invalid, at a field (422).
    Invalid(Vec<FieldError>, String),
    /// Rate limited (429), retry after this many seconds.
    RateLimited(u64),
    /// No known API key (401, with `WWW-Authenticate`); only when keys are configured.
    Unauthorized(String),
    /// A key's own limit (429): what was exceeded, and the seconds until a retry may pass.
    TooMany(String, u64),
    /// The whole body did not arrive within this many seconds (408); the connection closes.
    BodyTimeout(u64),
    /// Overloaded: the queue of heavy computations is full (503).
    Overloaded,
    /// Past the time limit; the work was stopped (503).
    TimedOut(u64),
    /// Shutting down / not ready (503).
    Unavailable(String),
    /// A bug reached the panic catcher (500; the tests must never see one).
    Internal(String),
    /// Any other status produced by a layer (e.g. 406), kept as it is.
    Other(StatusCode, String),
}

impl ApiError {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        let detail = if field.is_empty() {
            message.clone()
        } else {
            format!("{field}: {message}")
        };
        ApiError::Invalid(vec![FieldError { field, message }], detail)
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) | ApiError::MalformedSafetensors(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded | ApiError::TimedOut(_) | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Other(s, _) => *s,
        }
    }

    fn type_slug(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed-json",
            ApiError::MalformedSafetensors(_) => "malformed-safetensors",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::TooLarge(_) => "body-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Invalid(..) => "invalid-input",
            ApiError::RateLimited(_) => "rate-limited",
            ApiError::BodyTimeout(_) => "body-timeout",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TooMany(..) => "key-limit",
            ApiError::Overloaded => "overloaded",
            ApiError::TimedOut(_) => "time-limit",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Other(..) => "http-error",
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            ApiError::Malformed(m) => (format!("the body is not valid JSON: {m}"), vec![]),
            ApiError::NotFound(m)
            | ApiError::Unavailable(m)
            | ApiError::MalformedSafetensors(m)
            | ApiError::Other(_, m) => (m.clone(), vec![]),
            ApiError::MethodNotAllowed => (
                "this method is not allowed on this path; see the Allow header".into(),
                vec![],
            ),
            ApiError::TooLarge(limit) => (
                format!("the request body is larger than the limit of {limit} bytes"),
                vec![],
            ),
            ApiError::UnsupportedMediaType(m)
            | ApiError::Unauthorized(m)
            | ApiError::TooMany(m, _) => (m.clone(), vec![]),
            ApiError::Invalid(errors, detail) => (detail.clone(), errors.clone()),
            ApiError::RateLimited(s) => (
                format!("too many requests from this client; retry after {s} s"),
                vec![],
            ),
            ApiError::BodyTimeout(s) => (
                format!("the request body did not arrive within {s} s"),
                vec![],
            ),
            ApiError::Overloaded => (
                "the service is busy: too many heavy computations are waiting; retry later".into(),
                vec![],
            ),
            ApiError::TimedOut(s) => (
                format!("the computation passed the time limit of {s} s and was stopped"),
                vec![],
            ),
            ApiError::Internal(m) => (format!("internal error: {m}"), vec![]),
        };
        Problem {
            r#type: format!("https://losslab.dev/problems/{}", self.type_slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl From<ComputeError> for ApiError {
    fn from(e: ComputeError) -> Self {
        match e.kind {
            ErrorKind::Invalid => ApiError::invalid(e.field, e.message),
            ErrorKind::DeadlineExceeded => ApiError::TimedOut(0),
            ErrorKind::Cancelled => ApiError::Unavailable(e.message),
        }
    }
}

/// Serialise a problem (never fails: the document holds only strings and numbers).
pub fn problem_body(p: &Problem) -> Vec<u8> {
    serde_json::to_vec(p).unwrap_or_else(|_| b"{}".to_vec())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = self.problem();
        let mut res = (self.status(), problem_body(&p)).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::RateLimited(s) | ApiError::TooMany(_, s) = self {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(super::keys::CHALLENGE),
            );
        }
        if matches!(self, ApiError::BodyTimeout(_)) {
            // RFC 9110 §15.5.9: the server closes the connection after a 408 (hyper drops
            // this header on HTTP/2, where it does not exist)
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if matches!(self, ApiError::Overloaded) {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}
