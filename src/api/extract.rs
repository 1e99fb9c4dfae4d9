//! Our extractors: the raw JSON body (content type checked, size limited, gzip already
//! decoded by the layer stack), the JSON parser that turns serde errors into problems
//! naming a JSON pointer, and the `{kind}` path segment (unknown → 404 listing kinds).

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use super::state::AppState;
use super::wire::MapOnly;
use crate::compute::LossKind;

/// A request body that declared itself JSON (`application/json` or `application/*+json`).
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let is_json = mime == "application/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(if ct.is_empty() {
                "the request has no Content-Type; send application/json".into()
            } else {
                format!("Content-Type {ct:?} is not supported; send application/json")
            }));
        }
        let limit = state.config.max_body_bytes;
        Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|rej| {
                if rej.status().as_u16() == 413 {
                    ApiError::TooLarge(limit as u64)
                } else {
                    ApiError::Malformed(rej.body_text())
                }
            })
    }
}

/// Parses a JSON body into `T`: syntax errors (and numbers outside the f64 range) are
/// 400; type errors, unknown fields and unknown values are 422 at the field's pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Fast path: plain serde_json. Tracking the path of every element costs about a
    // fifth of the parse of a large array, and only an error needs the path; so a body
    // that fails is parsed again with serde_path_to_error to name the field.
    if let Ok(MapOnly(v)) = serde_json::from_slice::<MapOnly<T>>(bytes) {
        return Ok(v);
    }
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
