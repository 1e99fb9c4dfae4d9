//! Binary bodies (API.md "Binary bodies"): `application/x-safetensors` requests and
//! answers for the array endpoints. Owns the media type, the answer-format negotiation
//! (`Accept`), decoding a safetensors file into the same request DTO the JSON body gives
//! (so the same validation runs and the same errors come out, pointers naming the
//! tensor), and encoding an answer's arrays as F64 tensors.
//!
//! Why the `safetensors` crate: it is the reference implementation of the format (the
//! one the Python package wraps), and it validates the header — offsets that tile the
//! data exactly, sizes that do not overflow, dtypes — before we touch a byte. We use its
//! header types both ways and read each tensor's bytes where they lie in the frames the
//! body arrived in (no copy of the file); the one copy is into the f64 buffer the compute
//! core owns, with `f64::from_le_bytes` over 8-byte chunks (no `unsafe` cast, whatever the
//! alignment), and each frame is freed as soon as it is read — so the body and the
//! decoded arrays are never both held in full (measured: BENCHMARKS.md, binary bodies).

use std::collections::{HashMap, VecDeque};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::{Buf, Bytes};
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::extract::parse_json;
use super::problem::ApiError;
use crate::compute::{Array, ComputeError};

/// The media type of a safetensors body.
pub const SAFETENSORS: &str = "application/x-safetensors";

/// The `__metadata__` key of a request's non-array fields (JSON text).
pub const REQUEST_KEY: &str = "request";
/// The `__metadata__` key of an answer's non-array fields (JSON text).
pub const RESPONSE_KEY: &str = "response";

/// Whether a `Content-Type` (parameters ignored) is safetensors.
pub fn is_safetensors(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case(SAFETENSORS)
}

/// A safetensors file, for the spec: 8 bytes (u64 little-endian) of header length, the
/// JSON header, the tensors' bytes.
pub struct SafetensorsFile;

impl utoipa::PartialSchema for SafetensorsFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type(SAFETENSORS)
            .description(Some(
                "A safetensors file (https://huggingface.co/docs/safetensors): tensors named after the body's arrays (requests: predictions, targets, weights, logits; F64 or F32, class-index targets also I64/I32; shape [n] or [m, k]); `__metadata__.request` holds the JSON text of the other fields (other metadata keys are ignored). Answers: every array of the JSON answer as an F64 tensor of its shape, `__metadata__.response` the JSON text of the rest.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for SafetensorsFile {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("SafetensorsFile")
    }
}

// ---------------------------------------------------------------------------------
// answers

/// How the answer is written: JSON (default) or, when `Accept` names
/// `application/x-safetensors`, a safetensors file. Errors are problem+json either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `application/json` (the default).
    Json,
    /// `application/x-safetensors`: arrays as F64 tensors, the rest as metadata.
    Safetensors,
}

impl Answer {
    /// `Accept` names `application/x-safetensors` (with a non-zero q) → safetensors.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let wants = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|range| {
                let mut parts = range.split(';');
                let mime = parts.next().unwrap_or("").trim();
                let q_zero = parts.any(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=")
                        .or_else(|| p.strip_prefix("Q="))
                        .and_then(|q| q.trim().parse::<f64>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                mime.eq_ignore_ascii_case(SAFETENSORS) && !q_zero
            });
        if wants {
            Answer::Safetensors
        } else {
            Answer::Json
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Answer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Answer::from_headers(&parts.headers))
    }
}

/// A 200 with an already encoded safetensors body.
pub fn safetensors_response(bytes: Vec<u8>) -> Response {
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SAFETENSORS));
    let mut res = Response::new(Body::from(bytes));
    *res.headers_mut() = headers;
    res
}

/// Encodes `tensors` as F64 tensors of their shapes (in the order given) and `rest` (the
/// answer's other fields) as JSON text in `__metadata__.response`. The header is padded
/// with spaces to a multiple of 8 bytes, so every tensor's data is 8-byte aligned in the
/// file (as the format's own writer does).
pub fn encode(tensors: &[(&str, &Array)], rest: &impl Serialize) -> Vec<u8> {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for (name, a) in tensors {
        let shape = if a.is_matrix() {
            vec![a.rows(), a.cols()]
        } else {
            vec![a.len()]
        };
        let end = offset + 8 * a.len();
        infos.push((
            name.to_string(),
            TensorInfo {
                dtype: Dtype::F64,
                shape,
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    // our response types serialise infallibly (numbers are finite by then)
    let rest = serde_json::to_string(rest).unwrap_or_else(|_| "{}".into());
    let meta = HashMap::from([(RESPONSE_KEY.to_string(), rest)]);
    // offsets tile [0, offset) by construction, which is all `new` validates
    let header = Metadata::new(Some(meta), infos)
        .ok()
        .and_then(|m| serde_json::to_vec(&m).ok())
        .unwrap_or_else(|| b"{}".to_vec());
    let pad = (8 - header.len() % 8) % 8;
    let mut out = Vec::with_capacity(8 + header.len() + pad + offset);
    out.extend_from_slice(&((header.len() + pad) as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.resize(out.len() + pad, b' ');
    for (_, a) in tensors {
        for x in a.data() {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// requests

/// A safetensors body as the frames it arrived in. Reading consumes it from the front
/// and drops each frame once read.
pub struct Frames {
    parts: VecDeque<Bytes>,
    len: usize,
}

impl Frames {
    /// The frames of a body, in order.
    pub fn new(parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(Bytes::len).sum();
        Frames {
            parts: parts.into_iter().filter(|b| !b.is_empty()).collect(),
            len,
        }
    }

    /// The bytes not read yet.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the header (not the data) holds `word`: a cheap look before decoding.
    pub fn header_mentions(&self, word: &[u8]) -> bool {
        let prefix = self.peek(8);
        let n = prefix
            .try_into()
            .map_or(0, |b: [u8; 8]| u64::from_le_bytes(b))
            .min(self.len as u64) as usize;
        let header = self.peek(8 + n);
        header.windows(word.len().max(1)).any(|w| w == word)
    }

    /// The first `n` bytes (at most what is left), copied out, not consumed.
    fn peek(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.min(self.len));
        for part in &self.parts {
            let k = (n - out.len()).min(part.len());
            out.extend_from_slice(&part[..k]);
            if out.len() == n {
                break;
            }
        }
        out
    }

    /// The next `n` bytes (at most what is left), copied out.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.min(self.len));
        while out.len() < n {
            let Some(front) = self.parts.front_mut() else {
                break;
            };
            let k = (n - out.len()).min(front.len());
            out.extend_from_slice(&front[..k]);
            self.advance(k);
        }
        out
    }

    /// Consumes `k` bytes of the front frame (at most its length), dropping it when done.
    fn advance(&mut self, k: usize) {
        if let Some(front) = self.parts.front_mut() {
            let k = k.min(front.len());
            front.advance(k);
            self.len -= k;
            if front.is_empty() {
                self.parts.pop_front();
            }
        }
    }

    /// Reads `count` elements of `W` bytes (fewer if the body ends), each given to `f`;
    /// an element split across two frames is put together.
    fn elements<const W: usize>(&mut self, mut count: usize, mut f: impl FnMut([u8; W])) {
        while count > 0 {
            let Some(front) = self.parts.front() else {
                return;
            };
            if front.len() >= W {
                let whole = (front.len() / W).min(count);
                for c in front[..whole * W].chunks_exact(W) {
                    f(c.try_into().unwrap_or([0; W]));
                }
                count -= whole;
                self.advance(whole * W);
            } else {
                let bytes = self.take(W);
                match bytes.try_into() {
                    Ok(b) => f(b),
                    Err(_) => return,
                }
                count -= 1;
            }
        }
    }
}

/// A broken file (400).
fn broken(what: impl std::fmt::Display) -> ApiError {
    ApiError::MalformedSafetensors(format!("the body is not a valid safetensors file: {what}"))
}

/// Reads and validates the header (the safetensors crate's rules: a length that fits, JSON
/// whose tensors' byte ranges tile the data exactly with sizes that match their dtype and
/// shape), leaving `frames` at the first byte of the data.
fn read_header(frames: &mut Frames) -> Result<Metadata, ApiError> {
    let total = frames.len();
    let prefix = frames.take(8);
    let n: [u8; 8] = prefix
        .try_into()
        .map_err(|_| broken("shorter than its 8-byte header length"))?;
    let n = u64::from_le_bytes(n);
    if n > (total - 8) as u64 {
        return Err(broken(format!(
            "the header length {n} runs past the end of the body"
        )));
    }
    let n = n as usize;
    let meta: Metadata = serde_json::from_slice(&frames.take(n))
        .map_err(|e| broken(format!("invalid header: {e}")))?;
    if meta.data_len() != total - 8 - n {
        return Err(broken(format!(
            "the tensors' data takes {} bytes, the file holds {}",
            meta.data_len(),
            total - 8 - n
        )));
    }
    Ok(meta)
}

/// A request DTO whose arrays may come as tensors. `TENSORS` names them (the only tensor
/// names accepted); `put` stores a decoded tensor in its field, after the rest of the
/// request was parsed from `__metadata__.request` with an empty placeholder there.
pub trait TensorFields: DeserializeOwned {
    /// The tensor names this request takes (its array fields).
    const TENSORS: &'static [&'static str];
    /// Stores a decoded tensor in its field (`name` is one of `TENSORS`).
    fn put(&mut self, name: &str, array: Array) -> Result<(), ComputeError>;
}

/// The tensor names that may hold integer class indices (I64/I32, widened exactly).
const INDEX_TENSORS: &[&str] = &["targets"];

/// The largest integer below which every integer is an exact f64 (2^53).
const EXACT_INT: u64 = 1 << 53;

/// Decodes a safetensors body into `T`: the non-array fields from
/// `__metadata__.request` (parsed as a JSON body is, so unknown fields, types and values
/// give the same 422s), each tensor into its field. A file that is not valid safetensors
/// is a 400; a tensor with a name `T` does not take, a dtype or shape that is not
/// accepted, a non-finite element or a field given twice is a 422 naming it.
pub fn parse_safetensors<T: TensorFields>(mut frames: Frames) -> Result<T, ApiError> {
    let meta = read_header(&mut frames)?;
    let request = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(REQUEST_KEY))
        .map_or("{}", String::as_str);
    // which fields the request text names (also: it must be a JSON object)
    let named: HashMap<String, serde::de::IgnoredAny> =
        parse_json(request.as_bytes()).map_err(|e| {
            let m = match e {
                ApiError::Invalid(_, detail) => detail,
                other => other.problem().detail,
            };
            ApiError::MalformedSafetensors(format!(
                "__metadata__.{REQUEST_KEY} must be the JSON text of an object: {m}"
            ))
        })?;
    // in offset order, so the errors of a file come out in the same order every time
    let mut tensors: Vec<(String, &TensorInfo)> = meta.tensors().into_iter().collect();
    // (empty tensors share an offset: then the operation's order, then the name)
    tensors.sort_by(|(a, ia), (b, ib)| {
        let rank = |n: &str| T::TENSORS.iter().position(|t| *t == n);
        (ia.data_offsets, rank(a).is_none(), rank(a), a).cmp(&(
            ib.data_offsets,
            rank(b).is_none(),
            rank(b),
            b,
        ))
    });
    for (name, _) in &tensors {
        if !T::TENSORS.contains(&name.as_str()) {
            return Err(ApiError::invalid(
                format!("/{}", escape(name)),
                format!(
                    "unknown tensor {name:?}; valid tensor names: {}",
                    T::TENSORS.join(", ")
                ),
            ));
        }
        if named.contains_key(name.as_str()) {
            return Err(ApiError::invalid(
                format!("/{name}"),
                format!(
                    "{name} is given both as a tensor and in __metadata__.request; send it once"
                ),
            ));
        }
    }
    // the request with an empty placeholder for each tensor, so a missing array is the
    // same "missing field" 422 as in JSON and the others parse as they would there
    let mut text = String::with_capacity(request.len() + 32 * tensors.len());
    text.push('{');
    for (name, _) in &tensors {
        text.push_str(&format!("\"{name}\":[],"));
    }
    let inner = request.trim_start_matches([' ', '\t', '\r', '\n']);
    let inner = inner.strip_prefix('{').unwrap_or(inner);
    if inner
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with('}')
        && !tensors.is_empty()
    {
        text.pop(); // the trailing comma before an empty object's end
    }
    text.push_str(inner);
    // (the text was checked to be one JSON object above, so any error here is a field's,
    // with the pointer a JSON body would give: the request's fields are the body's)
    let mut req: T = parse_json(text.as_bytes()).map_err(|e| match e {
        ApiError::Malformed(m) => {
            ApiError::MalformedSafetensors(format!("__metadata__.{REQUEST_KEY}: {m}"))
        }
        other => other,
    })?;
    // the tensors tile the data in this order: each is read where the last one ended
    for (name, info) in tensors {
        let array = to_array(&name, info, &mut frames)?;
        req.put(&name, array)?;
    }
    Ok(req)
}

/// `~` and `/` escaped as a JSON pointer segment.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// One tensor, read from `frames`, as a flat `[n]` or `[m, k]` f64 array (the shapes
/// JSON can express).
fn to_array(name: &str, info: &TensorInfo, frames: &mut Frames) -> Result<Array, ComputeError> {
    let field = format!("/{name}");
    let shape = info.shape.as_slice();
    // the header was validated: the byte range holds exactly this many elements
    let count = shape.iter().product::<usize>();
    let mut data = Vec::with_capacity(count);
    let mut inexact = None;
    let index = INDEX_TENSORS.contains(&name);
    match info.dtype {
        Dtype::F64 => frames.elements::<8>(count, |b| data.push(f64::from_le_bytes(b))),
        Dtype::F32 => frames.elements::<4>(count, |b| data.push(f64::from(f32::from_le_bytes(b)))),
        Dtype::I64 if index => frames.elements::<8>(count, |b| {
            push_int(&mut data, &mut inexact, i64::from_le_bytes(b))
        }),
        Dtype::I32 if index => frames.elements::<4>(count, |b| {
            push_int(&mut data, &mut inexact, i64::from(i32::from_le_bytes(b)))
        }),
        other => {
            let ints = if index {
                " (class indices: I64 or I32)"
            } else {
                ""
            };
            return Err(ComputeError::invalid(
                field,
                format!("dtype {other:?} is not accepted for {name}; send F64 or F32{ints}"),
            ));
        }
    }
    if let Some((i, v)) = inexact {
        return Err(ComputeError::invalid(
            element(name, shape, i),
            format!("{v} is not exactly representable as a number (|v| > 2^53)"),
        ));
    }
    // NaN and ±∞: JSON cannot send them, and no answer may hold them
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(ComputeError::invalid(
            element(name, shape, i),
            format!("{} is not a finite number", data[i]),
        ));
    }
    match *shape {
        [_] => Ok(Array::flat(data)),
        // JSON has no empty matrix: [0, k] is the empty array `[]`, as numpy prints it
        [0, _] => Ok(Array::flat(data)),
        [_, 0] => Err(ComputeError::invalid(field, "rows must not be empty")),
        [m, k] => Array::matrix(data, m, k)
            .ok_or_else(|| ComputeError::invalid(field, "inconsistent shape")),
        _ => Err(ComputeError::invalid(
            field,
            format!(
                "shape {shape:?} is not accepted for {name}; send [n] or [m, k] (rows = samples)"
            ),
        )),
    }
}

/// An integer as f64, noting the first that an f64 cannot hold exactly (|v| > 2^53).
fn push_int(data: &mut Vec<f64>, inexact: &mut Option<(usize, i64)>, v: i64) {
    if v.unsigned_abs() > EXACT_INT && inexact.is_none() {
        *inexact = Some((data.len(), v));
    }
    data.push(v as f64);
}

/// A tensor that must be flat (`weights`: one number per row or element).
pub fn flat(name: &str, a: Array) -> Result<Vec<f64>, ComputeError> {
    if a.is_matrix() {
        return Err(ComputeError::invalid(
            format!("/{name}"),
            format!(
                "{name} must be flat: shape [n], one number per row (per element for a flat elementwise input)"
            ),
        ));
    }
    Ok(a.into_data())
}

/// Pointer to element `i` of a tensor of `shape` (flat or rows × cols).
fn element(name: &str, shape: &[usize], i: usize) -> String {
    match *shape {
        [_, k] if k > 0 => format!("/{name}/{}/{}", i / k, i % k),
        _ => format!("/{name}/{i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::loss::LossRequest;

    /// A small request file: predictions [3] F64, targets [3] I32, the request text.
    fn file() -> Vec<u8> {
        let header = br#"{"__metadata__":{"request":"{\"gradient\":true}"},"predictions":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},"targets":{"dtype":"I32","shape":[3],"data_offsets":[24,36]}}"#;
        let mut h = header.to_vec();
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        for x in [0.1f64, -2.5, 1e300] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for i in [0i32, -7, 2] {
            out.extend_from_slice(&i.to_le_bytes());
        }
        out
    }

    #[test]
    fn frames_of_any_size_decode_to_the_same_request() {
        let whole: LossRequest = parse_safetensors(Frames::new(vec![Bytes::from(file())])).unwrap();
        assert_eq!(whole.predictions.0.data(), &[0.1, -2.5, 1e300]);
        assert_eq!(whole.targets.0.data(), &[0.0, -7.0, 2.0]);
        assert!(whole.gradient);
        // frames of 1..13 bytes: headers, lengths and elements split across frames
        for size in 1..14 {
            let parts = file().chunks(size).map(Bytes::copy_from_slice).collect();
            let req: LossRequest = parse_safetensors(Frames::new(parts)).unwrap();
            assert_eq!(req.predictions, whole.predictions, "frames of {size}");
            assert_eq!(req.targets, whole.targets, "frames of {size}");
        }
    }

    #[test]
    fn a_truncated_or_overlong_file_is_broken() {
        let f = file();
        for body in [
            f[..f.len() - 1].to_vec(),
            [f.as_slice(), &[0]].concat(),
            f[..7].to_vec(),
        ] {
            let r = parse_safetensors::<LossRequest>(Frames::new(vec![Bytes::from(body)]));
            assert!(matches!(r, Err(ApiError::MalformedSafetensors(_))));
        }
    }

    #[test]
    fn read_frames_are_freed_as_they_are_read() {
        let mut frames = Frames::new(vec![Bytes::from(vec![1u8; 8]), Bytes::from(vec![2u8; 8])]);
        let mut seen = Vec::new();
        frames.elements::<4>(3, |b| seen.push(b));
        assert_eq!(seen, vec![[1; 4], [1; 4], [2; 4]]);
        assert_eq!((frames.len(), frames.parts.len()), (4, 1));
    }
}
