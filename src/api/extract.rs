//! Our extractors: the raw JSON body (content type checked, size limited, gzip already
//! decoded by the layer stack), the JSON parser that turns serde errors into problems
//! naming a JSON pointer, and the `{kind}` path segment (unknown → 404 listing kinds).

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use super::safetensors::{Decoded, Decoder, SAFETENSORS, TensorFields, parse_safetensors};
use super::state::AppState;
use super::wire::MapOnly;
use crate::compute::LossKind;

/// A request body that declared itself JSON (`application/json` or `application/*+json`).
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = content_type(req.headers());
        if !is_json(media_type(ct)) {
            return Err(ApiError::UnsupportedMediaType(if ct.is_empty() {
                "the request has no Content-Type; send application/json".into()
            } else {
                format!("Content-Type {ct:?} is not supported; send application/json")
            }));
        }
        let gzip = gzip_encoded(req.headers())?;
        let within = std::time::Duration::from_secs(state.config.body_timeout_secs);
        read_body(req.into_body(), gzip, state.config.max_body_bytes, within)
            .await
            .map(JsonBytes)
    }
}

/// The `Content-Type` header ("" when absent or not text).
fn content_type(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The media type of a `Content-Type`: the text before any `;` parameter, without the
/// spaces around it (a header's text is visible ASCII, spaces and tabs).
fn media_type(ct: &str) -> &[u8] {
    let ct = ct.as_bytes();
    match ct.iter().position(|&b| b == b';') {
        Some(i) => &ct[..i],
        None => ct,
    }
    .trim_ascii()
}

/// `application/json` or `application/*+json` (a [`media_type`]).
fn is_json(mime: &[u8]) -> bool {
    mime.eq_ignore_ascii_case(b"application/json")
        || (mime.len() >= 17
            && mime[..12].eq_ignore_ascii_case(b"application/")
            && mime[mime.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Whether the body is gzip-encoded (`Content-Encoding: gzip`); other encodings → 415.
fn gzip_encoded(headers: &axum::http::HeaderMap) -> Result<bool, ApiError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => Ok(false),
        Some("gzip") | Some("x-gzip") => Ok(true),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported; send gzip or identity"
        ))),
    }
}

/// The body of an array endpoint (/loss, /gradient): JSON, or a safetensors file (API.md
/// "Binary bodies"). Size limit and gzip as for JSON; any other type → 415.
pub enum ArrayBody {
    /// `application/json` (or `application/*+json`), gzip already decoded.
    Json(Bytes),
    /// Decoded as it arrived: each frame copied into the arrays, then dropped.
    Safetensors(Decoded),
}

impl ArrayBody {
    /// The body's size in bytes.
    pub fn len(&self) -> usize {
        match self {
            ArrayBody::Json(b) => b.len(),
            ArrayBody::Safetensors(f) => f.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses the body into the request DTO — the same DTO either way, so the same
    /// validation follows. The body is dropped once parsed.
    pub fn parse<T: TensorFields>(self) -> Result<T, ApiError> {
        match self {
            ArrayBody::Json(b) => parse_json(&b),
            ArrayBody::Safetensors(f) => parse_safetensors(f),
        }
    }
}

impl FromRequest<AppState> for ArrayBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = content_type(req.headers());
        let mime = media_type(ct);
        let safetensors = mime.eq_ignore_ascii_case(SAFETENSORS.as_bytes());
        if !safetensors && !is_json(mime) {
            return Err(ApiError::UnsupportedMediaType(if ct.is_empty() {
                format!("the request has no Content-Type; send application/json or {SAFETENSORS}")
            } else {
                format!(
                    "Content-Type {ct:?} is not supported; send application/json or {SAFETENSORS}"
                )
            }));
        }
        let gzip = gzip_encoded(req.headers())?;
        let limit = state.config.max_body_bytes;
        let within = std::time::Duration::from_secs(state.config.body_timeout_secs);
        Ok(match (safetensors, gzip) {
            (false, _) => ArrayBody::Json(read_body(req.into_body(), gzip, limit, within).await?),
            (true, true) => ArrayBody::Safetensors(Decoded::whole(
                &read_body(req.into_body(), true, limit, within).await?,
                limit,
            )),
            (true, false) => {
                ArrayBody::Safetensors(read_safetensors(req.into_body(), limit, within).await?)
            }
        })
    }
}

/// Reads the whole body, at most `limit` bytes (413 past it), decoding it as a
/// safetensors file as it arrives: each frame is copied into the tensors' arrays and
/// dropped (safetensors.rs), so the body is never held in full besides its arrays, and
/// the copy overlaps the transfer. The whole body must arrive `within` the body timeout
/// (408), as for [`read_body`].
async fn read_safetensors(
    mut body: axum::body::Body,
    limit: usize,
    within: std::time::Duration,
) -> Result<Decoded, ApiError> {
    use http_body_util::BodyExt;
    let too_large = || ApiError::TooLarge(limit as u64);
    let hint = axum::body::HttpBody::size_hint(&body);
    if hint.lower() > limit as u64 {
        return Err(too_large());
    }
    let mut decoder = Decoder::new(hint.exact().map(|n| n as usize), limit);
    let mut len = 0;
    let receive = async {
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::Malformed(format!("the body could not be read: {e}")))?;
            if let Ok(data) = frame.into_data() {
                len += data.len();
                if len > limit {
                    return Err(too_large());
                }
                decoder.feed(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(within, receive)
        .await
        .map_err(|_| ApiError::BodyTimeout(within.as_secs()))??;
    Ok(decoder.finish())
}

/// Reads the whole body into one buffer, at most `limit` bytes (413 past it), and
/// gunzips it when `gzip` — on the blocking pool, as decoding up to `limit` bytes is CPU
/// work — again at most `limit` bytes after decoding (a small gzip that inflates past it
/// is a 413 too). The whole body must arrive `within` the body timeout (408: a body that
/// trickles in must not hold a connection and its buffer for ever). The buffer of a body is sized from its length up front, so a 40 MB
/// body is received straight into its final place: no list of chunks copied once more
/// at the end, no regrowing.
async fn read_body(
    mut body: axum::body::Body,
    gzip: bool,
    limit: usize,
    within: std::time::Duration,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let too_large = || ApiError::TooLarge(limit as u64);
    let hint = axum::body::HttpBody::size_hint(&body);
    if hint.lower() > limit as u64 {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(hint.exact().unwrap_or(hint.lower()) as usize);
    let receive = async {
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::Malformed(format!("the body could not be read: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(within, receive)
        .await
        .map_err(|_| ApiError::BodyTimeout(within.as_secs()))??;
    if !gzip {
        return Ok(Bytes::from(buf));
    }
    tokio::task::spawn_blocking(move || gunzip(&buf, limit))
        .await
        .map_err(|e| ApiError::Internal(format!("gzip decoding failed: {e}")))?
}

/// Decodes a gzip body (any number of members), at most `limit` bytes.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::Malformed(format!("the gzip body is corrupt: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(limit as u64));
    }
    Ok(Bytes::from(out))
}

/// Parses a JSON body into `T`: syntax errors (and numbers outside the f64 range) are
/// 400; type errors, unknown fields and unknown values are 422 at the field's pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Fast path: sonic-rs, without tracking where it is. Tracking the path of every
    // element costs about a fifth of the parse of a large array, and only an error needs
    // the path; so a body that fails is parsed again by serde_json with
    // serde_path_to_error, whose messages and pointers every error response uses.
    let fast = if bytes.len() > 1 << 20 {
        // a large body: the scan (~0.4 ms per MB) runs on a second thread while sonic-rs
        // parses, so it costs no time unless it finds something
        std::thread::scope(|s| {
            let scan = s.spawn(|| may_hold_negative_zero(bytes));
            let parsed = sonic_rs::from_slice::<MapOnly<T>>(bytes).ok();
            match scan.join() {
                Ok(false) => parsed,
                _ => serde_json::from_slice::<MapOnly<T>>(bytes).ok(),
            }
        })
    } else if may_hold_negative_zero(bytes) {
        serde_json::from_slice::<MapOnly<T>>(bytes).ok()
    } else {
        sonic_rs::from_slice::<MapOnly<T>>(bytes).ok()
    };
    if let Some(MapOnly(v)) = fast {
        return Ok(v);
    }
    parse_json_with_path(bytes)
}

/// Parses a JSON body into `T` with serde_json only: for types that hold raw JSON text
/// (`serde_json::value::RawValue`, which sonic-rs does not read), e.g. POST /grade's
/// items, each kept raw so that an item's error is that item's. Same errors as
/// [`parse_json`].
pub fn parse_json_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice::<MapOnly<T>>(bytes) {
        Ok(MapOnly(v)) => Ok(v),
        Err(_) => parse_json_with_path(bytes),
    }
}

/// serde_json with serde_path_to_error: the error names the field's JSON pointer.
fn parse_json_with_path<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, MapOnly<T>>(&mut de) {
        Ok(MapOnly(v)) => v,
        Err(e) => {
            let pointer = to_pointer(e.path());
            let inner = e.into_inner();
            return Err(classify(inner, pointer));
        }
    };
    de.end()
        .map_err(|e| ApiError::Malformed(strip_position(&e.to_string())))?;
    Ok(value)
}

/// Whether the body may hold a number that is −0.0: `-0`, `-0.0`, `-0e5`, or a negative
/// number too small for f64 (`-1e-400`). sonic-rs reads those as +0.0; serde_json keeps
/// the sign, so such a body takes serde_json. Conservative: a `-0` in a string or a
/// 3-digit negative exponent of a nonzero number only costs the faster parser.
fn may_hold_negative_zero(b: &[u8]) -> bool {
    // one pass over the minus signs (no substring searcher to build per request)
    memchr::memchr_iter(b'-', b).any(|i| {
        let rest = &b[i + 1..];
        match rest.first() {
            // a sign before a zero mantissa: "-0" then the end of the number, or ".",
            // zeros and the end of the number or an exponent
            Some(b'0') => match rest.get(1) {
                Some(b'.') => {
                    let zeros = rest[2..].iter().take_while(|&&c| c == b'0').count();
                    !rest
                        .get(2 + zeros)
                        .is_some_and(|c| matches!(c, b'1'..=b'9'))
                }
                Some(c) => !c.is_ascii_digit(),
                None => true,
            },
            // an exponent that may underflow: below e-307 has three digits
            _ if i > 0 && matches!(b[i - 1], b'e' | b'E') => {
                rest.iter().take_while(|c| c.is_ascii_digit()).count() >= 3
            }
            _ => false,
        }
    })
}

fn classify(e: serde_json::Error, pointer: String) -> ApiError {
    use serde_json::error::Category;
    let msg = strip_position(&e.to_string());
    match e.classify() {
        Category::Data => {
            // "missing field `x`" / "unknown field `x`, expected ...": point at the field
            let named = msg
                .strip_prefix("missing field `")
                .or_else(|| msg.strip_prefix("unknown field `"))
                .and_then(|rest| rest.split('`').next());
            let field = match named {
                Some(name) if !pointer.ends_with(&format!("/{name}")) => {
                    format!("{pointer}/{name}")
                }
                _ => pointer,
            };
            let msg = msg.replace("unknown variant", "unknown value");
            ApiError::invalid(field, msg)
        }
        _ => ApiError::Malformed(msg),
    }
}

/// `targets[3]` (serde_path_to_error) → `/targets/3`.
fn to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// serde_json appends " at line L column C"; the pointer says where, so drop it.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The `{kind}` segment of `/loss/{kind}`: an unknown kind is a 404 listing the known ones.
pub struct KindPath(pub LossKind);

impl<S: Send + Sync> FromRequestParts<S> for KindPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(kind) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::NotFound(e.body_text()))?;
        LossKind::parse(&kind).map(KindPath).ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown loss kind {kind:?}; known kinds: {}",
                LossKind::names()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_read_without_parameters_and_spaces() {
        let json = |ct: &str| is_json(media_type(ct));
        for ct in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;charset=utf-8",
            "application/json;",
            "application/problem+json",
            "application/vnd.losslab+JSON ; q=1",
        ] {
            assert!(json(ct), "{ct}");
        }
        for ct in [
            "",
            ";application/json",
            "text/json",
            "application/jsonx",
            "application/json+x",
            "application/x-safetensors",
        ] {
            assert!(!json(ct), "{ct}");
        }
        assert_eq!(
            media_type("\tapplication/x-safetensors\t; a=b"),
            SAFETENSORS.as_bytes()
        );
        assert_eq!(media_type("  "), b"");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: Vec<f64>,
        b: Option<u32>,
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Invalid(errs, _) => errs[0].field.clone(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn type_errors_point_at_the_element() {
        let e = parse_json::<T>(br#"{"a": [1, "x"]}"#).unwrap_err();
        assert_eq!(field(e), "/a/1");
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert_eq!(
            field(parse_json::<T>(br#"{"a": [], "zz": 1}"#).unwrap_err()),
            "/zz"
        );
        assert_eq!(field(parse_json::<T>(br#"{"b": 1}"#).unwrap_err()), "/a");
    }

    #[test]
    fn syntax_errors_and_huge_numbers_are_malformed() {
        assert!(matches!(
            parse_json::<T>(b"{\"a\": [1,"),
            Err(ApiError::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<T>(br#"{"a": [1e400]}"#),
            Err(ApiError::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<T>(br#"{"a": []} x"#),
            Err(ApiError::Malformed(_))
        ));
    }
}

#[cfg(test)]
mod fast_path_agrees {
    //! sonic-rs is only the fast path: whatever it accepts, serde_json must accept with
    //! the same value, or the two parsers would answer the same body differently.
    use super::ApiError;
    use crate::api::state::SMALL_BODY_BYTES;
    use crate::api::wire::MapOnly;
    use crate::api::wire::loss::LossRequest;

    const BODIES: &[&str] = &[
        r#"{"predictions": [1, 2.5], "targets": [0, 1]}"#,
        r#"{"predictions": [1, 2.5,], "targets": [0, 1]}"#,
        r#"{"predictions": [1, 2.5], "targets": [0, 1],}"#,
        r#"{"predictions": [1, 2.5], "predictions": [3, 4], "targets": [0, 1]}"#,
        r#"{"predictions": [NaN, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [Infinity, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [1e400, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [-1e400, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [1e-400, 4.9e-324], "targets": [0, 1]}"#,
        r#"{"predictions": [01, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [+1, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [.5, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [1., 1], "targets": [0, 1]}"#,
        r#"{"predictions": [1e, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [-, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [-0.0, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [-0, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [-0e7, -0.000], "targets": [-1e-400, -4.9e-325]}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "params": {"delta": -0.0}}"#,
        r#"{"predictions": [1E5, 1e+5], "targets": [1e-5, 100000000000000000000]}"#,
        r#"{"predictions": [18446744073709551616, -9223372036854775809], "targets": [0, 1]}"#,
        r#"{"predictions": [0.1000000000000000055511151231257827, 1], "targets": [0, 1]}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1]} x"#,
        r#"{"predictions": [1, 2], "targets": [0, 1]} {}"#,
        r#"{"predictions": [1, 2], /* c */ "targets": [0, 1]}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "reduction": "s\u0075m"}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "reduction": "sum\ud800"}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "reduction": "\x"}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "params": {"d\u00e9lta": 1}}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "params": {"delta": 1, "delta": 2}}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "gradient": 1}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "gradient": "true"}"#,
        r#"{"predictions": [1, 2], "targets": [0, 1], "weights": null}"#,
        r#"{"predictions": [[1, 2], [3, 4]], "targets": [[0, 1], [1, 0]]}"#,
        r#"{"predictions": [[1, 2], [3]], "targets": [[0, 1], [1, 0]]}"#,
        r#"{"predictions": [[1, 2], 3], "targets": [[0, 1], [1, 0]]}"#,
        r#"{"predictions": [[]], "targets": [[0, 1], [1, 0]]}"#,
        r#"{"predictions": [], "targets": []}"#,
        r#"[{"predictions": [1], "targets": [1]}]"#,
        r#"{"predictions": [1], "targets": [1], "zz": 0}"#,
        r#"{"targets": [1]}"#,
        "{\"predictions\": [1],\u{c}\"targets\": [1]}",
        "\u{feff}{\"predictions\": [1], \"targets\": [1]}",
        "{\"predictions\": [1], \"targets\": [1], \"reduction\": \"a\tb\"}",
        "",
        "null",
        "{",
    ];

    #[test]
    fn sonic_accepts_only_what_serde_json_accepts_and_agrees_on_the_value() {
        let mut differ = Vec::new();
        for body in BODIES {
            let fast = match super::may_hold_negative_zero(body.as_bytes()) {
                true => continue, // serde_json parses it
                false => sonic_rs::from_slice::<MapOnly<LossRequest>>(body.as_bytes()),
            };
            let slow = serde_json::from_slice::<MapOnly<LossRequest>>(body.as_bytes());
            match (fast, slow) {
                (Ok(_), Err(e)) => differ.push(format!("{body}: only sonic-rs accepts ({e})")),
                (Ok(MapOnly(f)), Ok(MapOnly(s))) if format!("{f:?}") != format!("{s:?}") => {
                    differ.push(format!("{body}: {f:?} != {s:?}"))
                }
                _ => {}
            }
        }
        assert!(differ.is_empty(), "{differ:#?}");
    }

    #[test]
    fn negative_zeros_keep_their_sign() {
        assert!(super::may_hold_negative_zero(b"[-0]"));
        assert!(super::may_hold_negative_zero(b"[1, -0.000e5]"));
        assert!(super::may_hold_negative_zero(b"[-1.5e-400]"));
        assert!(!super::may_hold_negative_zero(
            b"[-0.5, 1e-05, -1.25e-7, -10]"
        ));
        let body = br#"{"predictions": [-0.0, -0, -1e-400], "targets": [0, 0, 0]}"#;
        let req: LossRequest = super::parse_json(body).unwrap();
        assert!(
            req.predictions
                .0
                .data()
                .iter()
                .all(|x| *x == 0.0 && x.is_sign_negative())
        );
    }

    /// The same pseudo-random bit patterns on every run: the crate's SplitMix64.
    fn bits(seed: u64) -> impl Iterator<Item = u64> {
        let mut rng = crate::compute::train::SplitMix64::new(seed);
        std::iter::repeat_with(move || rng.next_u64())
    }

    /// Every number of `arr` is the f64 nearest its text (Rust's str::parse is exact).
    fn assert_nearest(texts: &[String], arr: &crate::api::wire::NumArray) {
        assert_eq!(arr.0.len(), texts.len());
        for (t, got) in texts.iter().zip(arr.0.data()) {
            assert_eq!(got.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
        }
    }

    #[test]
    fn random_doubles_parse_to_the_nearest_f64() {
        // shortest round-trip, 17 significant digits, and 25 digits (exact rounding of
        // long decimals), each compared with Rust's correctly rounded str::parse
        let texts: Vec<String> = bits(0x9E37_79B9_7F4A_7C15)
            .map(f64::from_bits)
            .filter(|x| x.is_finite())
            .take(10_000)
            .flat_map(|x| [format!("{x:?}"), format!("{x:.16e}"), format!("{x:.24e}")])
            .collect();
        let list = texts.join(", ");
        let body = format!(r#"{{"predictions": [{list}], "targets": [{list}]}}"#);
        let MapOnly(fast) = sonic_rs::from_slice::<MapOnly<LossRequest>>(body.as_bytes()).unwrap();
        let slow: LossRequest = super::parse_json(body.as_bytes()).unwrap();
        for arr in [&fast.predictions, &fast.targets, &slow.predictions] {
            assert_nearest(&texts, arr);
        }
    }

    #[test]
    fn large_bodies_parse_exactly_and_their_errors_still_name_the_element() {
        // a heavy body (> SMALL_BODY_BYTES) without "-0" or "e-3xx": sonic-rs parses it
        let texts: Vec<String> = bits(0x1234_5678_9ABC_DEF1)
            .take(60_000)
            .enumerate()
            .map(|(i, s)| {
                let x = (s >> 11) as f64 / (1u64 << 53) as f64 * 2e3 - 1e3 + 0.5;
                if i % 2 == 0 {
                    format!("{x:?}")
                } else {
                    format!("{x:.20e}")
                }
            })
            .collect();
        let list = texts.join(",");
        let body = format!(r#"{{"targets": [{list}], "predictions": [{list}], "gradient": true}}"#);
        assert!(body.len() > SMALL_BODY_BYTES && !super::may_hold_negative_zero(body.as_bytes()));
        let req: LossRequest = super::parse_json(body.as_bytes()).unwrap();
        let MapOnly(fast) = sonic_rs::from_slice::<MapOnly<LossRequest>>(body.as_bytes()).unwrap();
        assert!(req.gradient && fast.gradient);
        for arr in [
            &req.predictions,
            &req.targets,
            &fast.predictions,
            &fast.targets,
        ] {
            assert_nearest(&texts, arr);
        }
        let mut bad = texts.clone();
        bad[41_234] = "\"x\"".into();
        let body = format!(
            r#"{{"predictions": [{list}], "targets": [{}]}}"#,
            bad.join(",")
        );
        match super::parse_json::<LossRequest>(body.as_bytes()) {
            Err(ApiError::Invalid(errs, _)) => assert_eq!(errs[0].field, "/targets/41234"),
            other => panic!("expected 422 at /targets/41234, got {other:?}"),
        }
        let body = format!(r#"{{"predictions": [{list}], "targets": [{list}, -0.0]}}"#);
        let req: LossRequest = super::parse_json(body.as_bytes()).unwrap();
        assert!(req.targets.0.data()[texts.len()].is_sign_negative());
        let body = format!(r#"{{"predictions": [{list}], "targets": [{list}, 1e400]}}"#);
        assert!(matches!(
            super::parse_json::<LossRequest>(body.as_bytes()),
            Err(ApiError::Malformed(_))
        ));
    }

    #[test]
    fn invalid_utf8_is_rejected_by_both() {
        let body = b"{\"predictions\": [1], \"targets\": [1], \"reduction\": \"\xff\"}";
        assert!(sonic_rs::from_slice::<MapOnly<LossRequest>>(body).is_err());
        assert!(serde_json::from_slice::<MapOnly<LossRequest>>(body).is_err());
    }
}
