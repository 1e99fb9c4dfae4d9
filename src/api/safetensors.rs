//! Binary bodies (API.md "Binary bodies"): `application/x-safetensors` requests and
//! answers for the array endpoints. Owns the media type, the answer-format negotiation
//! (`Accept`), decoding a safetensors file into the same request DTO the JSON body gives
//! (so the same validation runs and the same errors come out, pointers naming the
//! tensor), and encoding an answer's arrays as F64 tensors.
//!
//! Why the `safetensors` crate: it is the reference implementation of the format (the
//! one the Python package wraps), and it validates the header — offsets that tile the
//! data exactly, sizes that do not overflow, dtypes — before we touch a byte. We use its
//! header types both ways.
//!
//! The bytes are handled once each way. A request is decoded while it arrives
//! ([`Decoder`]): once the header is in, each frame's bytes are appended straight to the
//! f64 array the compute core will read (F64 data: a plain copy, whatever its alignment;
//! never zeroed first), checked for non-finite numbers while in cache, and the frame
//! dropped — so the body and its arrays are never
//! both held in full, and the copy overlaps the transfer. An answer's arrays are sent as
//! the computation wrote them ([`Encoded`]: the header, then each array's memory as the
//! body's next part, lent as bytes through zerocopy's safe view; no `unsafe`). Measured: BENCHMARKS.md, binary bodies.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zerocopy::IntoBytes;

use super::extract::parse_json;
use super::problem::ApiError;
use crate::compute::{Array, ComputeError};

/// The media type of a safetensors body.
pub const SAFETENSORS: &str = "application/x-safetensors";

/// The `__metadata__` key of a request's non-array fields (JSON text).
pub const REQUEST_KEY: &str = "request";
/// The `__metadata__` key of an answer's non-array fields (JSON text).
pub const RESPONSE_KEY: &str = "response";

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

/// An encoded safetensors answer: the length and header, then each tensor's bytes —
/// the f64 arrays the computation wrote, not copied (on a little-endian machine an f64
/// array's memory is already its safetensors bytes).
pub struct Encoded {
    parts: VecDeque<Bytes>,
    len: u64,
}

impl Encoded {
    /// The answer's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the answer is empty (never: it has a header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole file in one buffer (tests, and callers that want bytes).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        for p in &self.parts {
            out.extend_from_slice(p);
        }
        out
    }
}

/// The body of a safetensors answer: its parts in order, with its exact length (so the
/// answer carries a `Content-Length`, and hyper writes the parts with vectored writes).
impl axum::body::HttpBody for Encoded {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.parts.pop_front().map(|b| {
            this.len -= b.len() as u64;
            Ok(hyper::body::Frame::data(b))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.len)
    }
}

/// A 200 with an encoded safetensors body.
pub fn safetensors_response(answer: Encoded) -> Response {
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SAFETENSORS));
    let mut res = Response::new(Body::new(answer));
    *res.headers_mut() = headers;
    res
}

/// An f64 array as its little-endian bytes: the array itself where that is its memory.
fn le_bytes(data: Vec<f64>) -> Bytes {
    /// An f64 array lent out as bytes (little-endian machines only).
    struct LeF64(Vec<f64>);
    impl AsRef<[u8]> for LeF64 {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    if cfg!(target_endian = "little") {
        Bytes::from_owner(LeF64(data))
    } else {
        Bytes::from(
            data.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
    }
}

/// Encodes `tensors` as F64 tensors of their shapes (in the order given) and `rest` (the
/// answer's other fields) as JSON text in `__metadata__.response`. The header is padded
/// with spaces to a multiple of 8 bytes, so every tensor's data is 8-byte aligned in the
/// file (as the format's own writer does). The arrays become the answer's body as they
/// are: nothing is copied.
pub fn encode(tensors: Vec<(&str, Array)>, rest: &impl Serialize) -> Encoded {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for (name, a) in &tensors {
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
    let mut head = Vec::with_capacity(8 + header.len() + pad);
    head.extend_from_slice(&((header.len() + pad) as u64).to_le_bytes());
    head.extend_from_slice(&header);
    head.resize(head.len() + pad, b' ');
    let len = (head.len() + offset) as u64;
    let mut parts = VecDeque::with_capacity(1 + tensors.len());
    parts.push_back(Bytes::from(head));
    for (_, a) in tensors {
        if !a.is_empty() {
            parts.push_back(le_bytes(a.into_data()));
        }
    }
    Encoded { parts, len }
}

// ---------------------------------------------------------------------------------
// requests

/// A safetensors body decoded as its frames arrive: the header as soon as it is whole,
/// then each tensor's bytes copied from the frame straight into the f64 array the compute
/// core will read (F64 data is one `memcpy` per frame, whatever its alignment; F32 and
/// integer tensors are widened element by element). A frame is dropped once copied, so
/// the body is never held as well as its arrays, and the copy runs while the rest of the
/// body is still arriving. Nothing is judged until [`Decoder::finish`]: a file's errors
/// come out in the same order whatever its frames were.
pub struct Decoder {
    /// Bytes fed so far.
    received: usize,
    /// The body's length when known (`Content-Length`), else the body limit: the most
    /// data worth allocating arrays for.
    room: usize,
    /// The 8 length bytes and the header, until the header is whole (kept: small, and
    /// [`Decoded::header_mentions`] looks into it).
    head: Vec<u8>,
    /// The header's length, once its 8 bytes are in.
    header_len: Option<usize>,
    /// The parsed header and its tensors in offset order, once the header is whole.
    file: Option<Result<Layout, ApiError>>,
    /// Data bytes past the last tensor (a broken file).
    extra: usize,
}

/// A parsed header and where its tensors' bytes go.
struct Layout {
    meta: Metadata,
    /// In offset order: the order their bytes arrive in.
    tensors: Vec<Slot>,
    /// The tensor being filled.
    at: usize,
}

/// One tensor being filled.
struct Slot {
    name: String,
    info: TensorInfo,
    /// Its size in bytes (from the validated header).
    size: usize,
    /// Bytes of it received.
    filled: usize,
    /// How its elements become f64s.
    fill: Fill,
    data: Vec<f64>,
    /// An element split across two frames: its first bytes.
    carry: ([u8; 8], usize),
    /// The first non-finite element.
    non_finite: Option<usize>,
    /// The first integer an f64 cannot hold exactly (|v| > 2^53), with its index.
    inexact: Option<(usize, i64)>,
}

/// How a tensor's bytes become f64s.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// F64: little-endian, appended as they are (a copy on a little-endian machine).
    F64,
    F32,
    I64,
    I32,
    /// A dtype not accepted for this tensor (reported by name later), or a file whose
    /// data cannot be what its header says: the bytes are only counted.
    Skip,
}

impl Decoder {
    /// A decoder for a body of `exact` bytes when known, at most `limit`.
    pub fn new(exact: Option<usize>, limit: usize) -> Self {
        Decoder {
            received: 0,
            room: exact.unwrap_or(limit).min(limit),
            head: Vec::new(),
            header_len: None,
            file: None,
            extra: 0,
        }
    }

    /// The next bytes of the body.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        self.received += bytes.len();
        // the length, then the header: collected until whole, then parsed
        while self.file.is_none() {
            let want = 8 + self.header_len.unwrap_or(0);
            let k = (want - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..k]);
            bytes = &bytes[k..];
            if self.head.len() < want {
                return;
            }
            match self.header_len {
                None => {
                    let n = u64::from_le_bytes(self.head[..8].try_into().unwrap_or([0xff; 8]));
                    // a length past the body's end (or its limit) is broken, whatever follows
                    match usize::try_from(n)
                        .ok()
                        .filter(|&n| n <= self.room.saturating_sub(8))
                    {
                        Some(n) => {
                            self.header_len = Some(n);
                            self.head.reserve_exact(n);
                        }
                        None => {
                            self.file = Some(Err(broken(format!(
                                "the header length {n} runs past the end of the body"
                            ))))
                        }
                    }
                }
                Some(_) => self.file = Some(self.layout()),
            }
        }
        match &mut self.file {
            Some(Ok(layout)) => self.extra += layout.fill(bytes),
            _ => self.extra += bytes.len(),
        }
    }

    /// The header, parsed and validated by the safetensors crate (offsets tiling the data
    /// exactly, sizes matching dtype and shape), and an array for each tensor when the
    /// data can be what it says.
    fn layout(&self) -> Result<Layout, ApiError> {
        let meta: Metadata = serde_json::from_slice(&self.head[8..])
            .map_err(|e| broken(format!("invalid header: {e}")))?;
        // arrays only for data that fits the body (else the file is broken or too large,
        // and the end says which): a header cannot make us allocate past the limit
        let fits = meta.data_len() <= self.room.saturating_sub(self.head.len());
        let mut tensors: Vec<Slot> = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| Slot::new(name, info.clone(), fits))
            .collect();
        tensors.sort_by(|a, b| (a.info.data_offsets, &a.name).cmp(&(b.info.data_offsets, &b.name)));
        Ok(Layout {
            meta,
            tensors,
            at: 0,
        })
    }

    /// The body is complete: the file, or why it is not a valid one.
    pub fn finish(self) -> Decoded {
        let total = self.received;
        let file = match (self.file, self.header_len) {
            (Some(Err(e)), _) => Err(e),
            (None, None) | (Some(Ok(_)), None) => {
                Err(broken("shorter than its 8-byte header length"))
            }
            (None, Some(n)) => Err(broken(format!(
                "the header length {n} runs past the end of the body"
            ))),
            (Some(Ok(layout)), Some(n)) => {
                let held = total - 8 - n;
                if layout.meta.data_len() != held {
                    Err(broken(format!(
                        "the tensors' data takes {} bytes, the file holds {held}",
                        layout.meta.data_len()
                    )))
                } else {
                    debug_assert!(self.extra == 0 && layout.tensors.iter().all(Slot::full));
                    Ok(File {
                        meta: layout.meta,
                        tensors: layout.tensors,
                    })
                }
            }
        };
        Decoded {
            len: total,
            head: self.head,
            file,
        }
    }
}

impl Layout {
    /// Copies `bytes` into the tensors from where the last frame ended; returns how many
    /// bytes were past the last tensor.
    fn fill(&mut self, mut bytes: &[u8]) -> usize {
        while !bytes.is_empty() {
            let Some(slot) = self.tensors.get_mut(self.at) else {
                return bytes.len();
            };
            let k = (slot.size - slot.filled).min(bytes.len());
            slot.take(&bytes[..k]);
            bytes = &bytes[k..];
            if slot.full() {
                self.at += 1;
            }
        }
        0
    }
}

impl Slot {
    fn new(name: String, info: TensorInfo, allocate: bool) -> Self {
        // the header was validated: the byte range holds exactly this many elements
        let count: usize = info.shape.iter().product();
        let index = INDEX_TENSORS.contains(&name.as_str());
        let fill = match info.dtype {
            _ if !allocate => Fill::Skip,
            Dtype::F64 => Fill::F64,
            Dtype::F32 => Fill::F32,
            Dtype::I64 if index => Fill::I64,
            Dtype::I32 if index => Fill::I32,
            _ => Fill::Skip,
        };
        let data = match fill {
            Fill::Skip => Vec::new(),
            // filled by appending: never zeroed first
            _ => Vec::with_capacity(count),
        };
        Slot {
            size: info.data_offsets.1 - info.data_offsets.0,
            name,
            info,
            filled: 0,
            fill,
            data,
            carry: ([0; 8], 0),
            non_finite: None,
            inexact: None,
        }
    }

    fn full(&self) -> bool {
        self.filled == self.size
    }

    /// The next bytes of this tensor (at most what is left of it).
    fn take(&mut self, bytes: &[u8]) {
        self.filled += bytes.len();
        match self.fill {
            Fill::Skip => {}
            Fill::F64 => self.floats::<8>(bytes, f64::from_le_bytes),
            Fill::F32 => self.floats::<4>(bytes, |b| f64::from(f32::from_le_bytes(b))),
            Fill::I64 => self.ints::<8>(bytes, i64::from_le_bytes),
            Fill::I32 => self.ints::<4>(bytes, |b| i64::from(i32::from_le_bytes(b))),
        }
    }

    /// Floats of `W` bytes: appended in one pass (a straight copy for F64, whatever the
    /// bytes' alignment), then checked for a non-finite one while in cache.
    fn floats<const W: usize>(&mut self, bytes: &[u8], f: impl Fn([u8; W]) -> f64) {
        let (first, whole) = self.split::<W>(bytes);
        let from = self.data.len();
        self.data.extend(first.map(&f));
        self.data.extend(
            whole
                .chunks_exact(W)
                .map(|c| f(c.try_into().unwrap_or([0; W]))),
        );
        let new = &self.data[from..];
        if self.non_finite.is_none() && !all_finite(new) {
            self.non_finite = new.iter().position(|x| !x.is_finite()).map(|i| from + i);
        }
    }

    /// Integers of `W` bytes (class indices), widened, noting the first that an f64
    /// cannot hold exactly (|v| > 2^53).
    fn ints<const W: usize>(&mut self, bytes: &[u8], f: impl Fn([u8; W]) -> i64) {
        let (first, whole) = self.split::<W>(bytes);
        let rest = whole
            .chunks_exact(W)
            .map(|c| c.try_into().unwrap_or([0; W]));
        for v in first.into_iter().chain(rest).map(f) {
            if v.unsigned_abs() > EXACT_INT && self.inexact.is_none() {
                self.inexact = Some((self.data.len(), v));
            }
            self.data.push(v as f64);
        }
    }

    /// Splits the next bytes into whole elements of `W` bytes: an element split across
    /// frames is put together from the carry (returned first), a trailing part kept in it.
    fn split<'b, const W: usize>(&mut self, mut bytes: &'b [u8]) -> (Option<[u8; W]>, &'b [u8]) {
        let (mut buf, mut have) = self.carry;
        let mut first = None;
        if have > 0 {
            let k = (W - have).min(bytes.len());
            buf[have..have + k].copy_from_slice(&bytes[..k]);
            have += k;
            bytes = &bytes[k..];
            if have == W {
                first = buf[..W].try_into().ok();
                have = 0;
            }
        }
        let (whole, rest) = bytes.split_at(bytes.len() / W * W);
        buf[have..have + rest.len()].copy_from_slice(rest);
        self.carry = (buf, have + rest.len());
        (first, whole)
    }
}

/// Whether every x is finite: Σ (x − x) per lane stays 0 unless some x is ±∞ or NaN (float
/// subtractions and adds only, so the pass vectorises).
#[allow(clippy::eq_op)] // x − x is the point: 0 exactly when x is finite
fn all_finite(xs: &[f64]) -> bool {
    const L: usize = 8;
    let mut probe = [0.0f64; L];
    let chunks = xs.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..L {
            probe[k] += c[k] - c[k];
        }
    }
    rest.iter().chain(&probe).all(|&x| x - x == 0.0)
}

/// A safetensors body, read to its end and decoded (or found broken).
pub struct Decoded {
    len: usize,
    head: Vec<u8>,
    file: Result<File, ApiError>,
}

/// A valid file: its header and its tensors' arrays.
struct File {
    meta: Metadata,
    tensors: Vec<Slot>,
}

impl Decoded {
    /// Decodes a body held in one buffer (a gzip body, decoded).
    pub fn whole(bytes: &[u8], limit: usize) -> Self {
        let mut d = Decoder::new(Some(bytes.len()), limit);
        d.feed(bytes);
        d.finish()
    }

    /// The body's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the body was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the header (not the data) holds `word`: a cheap look before decoding.
    pub fn header_mentions(&self, word: &[u8]) -> bool {
        self.head.windows(word.len().max(1)).any(|w| w == word)
    }
}

/// A broken file (400).
fn broken(what: impl std::fmt::Display) -> ApiError {
    ApiError::MalformedSafetensors(format!("the body is not a valid safetensors file: {what}"))
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
pub fn parse_safetensors<T: TensorFields>(body: Decoded) -> Result<T, ApiError> {
    let File { meta, mut tensors } = body.file?;
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
    // (empty tensors share an offset: then the operation's order, then the name)
    tensors.sort_by(|a, b| {
        let rank = |n: &str| T::TENSORS.iter().position(|t| *t == n);
        let key = |s: &Slot| (s.info.data_offsets, rank(&s.name).is_none(), rank(&s.name));
        (key(a), &a.name).cmp(&(key(b), &b.name))
    });
    for Slot { name, .. } in &tensors {
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
    for Slot { name, .. } in &tensors {
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
    for slot in tensors {
        let name = slot.name.clone();
        req.put(&name, to_array(slot)?)?;
    }
    Ok(req)
}

/// `~` and `/` escaped as a JSON pointer segment.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// One decoded tensor as a flat `[n]` or `[m, k]` f64 array (the shapes JSON can
/// express), or the 422 naming it: a dtype not accepted, an integer an f64 cannot hold, a
/// non-finite element, a shape JSON has no form for.
fn to_array(slot: Slot) -> Result<Array, ComputeError> {
    let Slot {
        name,
        info,
        fill,
        data,
        non_finite,
        inexact,
        ..
    } = slot;
    let field = format!("/{name}");
    let shape = info.shape.as_slice();
    // (in a valid file, only a dtype not accepted is skipped)
    if fill == Fill::Skip {
        let ints = if INDEX_TENSORS.contains(&name.as_str()) {
            " (class indices: I64 or I32)"
        } else {
            ""
        };
        return Err(ComputeError::invalid(
            field,
            format!(
                "dtype {:?} is not accepted for {name}; send F64 or F32{ints}",
                info.dtype
            ),
        ));
    }
    if let Some((i, v)) = inexact {
        return Err(ComputeError::invalid(
            element(&name, shape, i),
            format!("{v} is not exactly representable as a number (|v| > 2^53)"),
        ));
    }
    // NaN and ±∞: JSON cannot send them, and no answer may hold them
    if let Some(i) = non_finite {
        return Err(ComputeError::invalid(
            element(&name, shape, i),
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

    /// A safetensors file of `header` (JSON text, padded to 8 bytes) and `data`.
    fn with_header(header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = header.to_vec();
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out
    }

    /// A small request file: predictions [3] F64, targets [3] I32, weights [3] F32, the
    /// request text.
    fn file() -> Vec<u8> {
        let header = br#"{"__metadata__":{"request":"{\"gradient\":true}"},"predictions":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},"targets":{"dtype":"I32","shape":[3],"data_offsets":[24,36]},"weights":{"dtype":"F32","shape":[3],"data_offsets":[36,48]}}"#;
        let mut data = Vec::new();
        for x in [0.1f64, -2.5, 1e300] {
            data.extend_from_slice(&x.to_le_bytes());
        }
        for i in [0i32, -7, 2] {
            data.extend_from_slice(&i.to_le_bytes());
        }
        for w in [0.5f32, 1.0, 0.1] {
            data.extend_from_slice(&w.to_le_bytes());
        }
        with_header(header, &data)
    }

    /// Decodes `body` fed in frames of `size` bytes, its length known or not.
    fn decode(body: &[u8], size: usize, known: bool) -> Decoded {
        let mut d = Decoder::new(known.then_some(body.len()), 1 << 20);
        for part in body.chunks(size.max(1)) {
            d.feed(part);
        }
        if body.is_empty() {
            d.feed(&[]);
        }
        d.finish()
    }

    fn detail(r: Result<LossRequest, ApiError>) -> String {
        match r {
            Err(ApiError::MalformedSafetensors(m)) => m,
            Err(other) => panic!("expected a broken file, got {other:?}"),
            Ok(_) => panic!("expected a broken file, got a request"),
        }
    }

    #[test]
    fn frames_of_any_size_decode_to_the_same_request() {
        let whole: LossRequest = parse_safetensors(Decoded::whole(&file(), 1 << 20)).unwrap();
        assert_eq!(whole.predictions.0.data(), &[0.1, -2.5, 1e300]);
        assert_eq!(whole.targets.0.data(), &[0.0, -7.0, 2.0]);
        assert_eq!(
            whole.weights.as_deref(),
            Some(&[0.5, 1.0, f64::from(0.1f32)][..])
        );
        assert!(whole.gradient);
        // frames of 1..13 bytes: headers, lengths and elements split across frames
        for size in 1..14 {
            for known in [true, false] {
                let req: LossRequest = parse_safetensors(decode(&file(), size, known)).unwrap();
                assert_eq!(req.predictions, whole.predictions, "frames of {size}");
                assert_eq!(req.targets, whole.targets, "frames of {size}");
                assert_eq!(req.weights, whole.weights, "frames of {size}");
            }
        }
    }

    #[test]
    fn a_truncated_or_overlong_file_is_broken_the_same_way_in_any_frames() {
        let f = file();
        for (body, says) in [
            (
                f[..f.len() - 1].to_vec(),
                "takes 48 bytes, the file holds 47",
            ),
            (
                [f.as_slice(), &[0]].concat(),
                "takes 48 bytes, the file holds 49",
            ),
            (f[..7].to_vec(), "shorter than its 8-byte header length"),
            (vec![], "shorter than its 8-byte header length"),
            (f[..40].to_vec(), "runs past the end of the body"),
            (with_header(b"{\"x\":", &[]), "invalid header"),
        ] {
            for size in [1, 5, 64] {
                for known in [true, false] {
                    let m = detail(parse_safetensors(decode(&body, size, known)));
                    assert!(m.contains(says), "{m} (frames of {size}, {known})");
                }
            }
        }
    }

    #[test]
    fn a_non_finite_element_split_across_frames_is_found_where_it_is() {
        let header = br#"{"predictions":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]},"targets":{"dtype":"F32","shape":[2,3],"data_offsets":[48,72]}}"#;
        let mut data = Vec::new();
        for x in [0.0, 1.0, 2.0, 3.0, f64::NAN, 5.0] {
            data.extend_from_slice(&x.to_le_bytes());
        }
        for y in [0.0f32, 1.0, f32::INFINITY, 3.0, 4.0, 5.0] {
            data.extend_from_slice(&y.to_le_bytes());
        }
        let body = with_header(header, &data);
        for size in 1..20 {
            match parse_safetensors::<LossRequest>(decode(&body, size, size % 2 == 0)) {
                Err(ApiError::Invalid(errs, _)) => {
                    assert_eq!(errs[0].field, "/predictions/1/1", "frames of {size}")
                }
                other => panic!("frames of {size}: {:?}", other.err()),
            }
        }
    }

    #[test]
    fn a_header_cannot_make_the_decoder_allocate_past_the_body() {
        // 10^12 elements claimed in a 100-byte body: nothing is allocated, and the end
        // says the file is broken
        let header = br#"{"predictions":{"dtype":"F64","shape":[1000000000000],"data_offsets":[0,8000000000000]}}"#;
        let body = with_header(header, &[0; 8]);
        for known in [true, false] {
            let mut d = Decoder::new(known.then_some(body.len()), 1 << 20);
            d.feed(&body);
            let Some(Ok(layout)) = &d.file else {
                panic!("the header is valid JSON")
            };
            assert_eq!(layout.tensors[0].data.capacity(), 0);
            let m = detail(parse_safetensors(d.finish()));
            assert!(m.contains("the file holds 8"), "{m}");
        }
    }

    #[test]
    fn an_answer_is_a_valid_file_whose_tensors_are_the_arrays_bytes() {
        use axum::body::HttpBody;
        let g = Array::matrix(vec![0.5, -1.25, 3.0, 1e-300, -0.0, 7.0], 2, 3).unwrap();
        let t = Array::flat(vec![2.0, f64::MAX]);
        let answer = encode(vec![("loss", t), ("gradient", g)], &LossMeta::example());
        assert_eq!(answer.size_hint().exact(), Some(answer.len()));
        let bytes = answer.to_vec();
        assert_eq!(bytes.len() as u64, answer.len());
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (n, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!((8 + n) % 8, 0);
        assert_eq!(
            meta.metadata().as_ref().unwrap()[RESPONSE_KEY],
            r#"{"count":2}"#
        );
        let gradient = file.tensor("gradient").unwrap();
        assert_eq!(gradient.shape(), &[2, 3]);
        let expected: Vec<u8> = [0.5f64, -1.25, 3.0, 1e-300, -0.0, 7.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(gradient.data(), &expected[..]);
        assert_eq!(file.tensor("loss").unwrap().shape(), &[2]);
    }

    /// A stand-in for an answer's other fields.
    #[derive(Serialize)]
    struct LossMeta {
        count: usize,
    }

    impl LossMeta {
        fn example() -> Self {
            LossMeta { count: 2 }
        }
    }
}
