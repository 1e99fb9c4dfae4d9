//! Binary bodies (API.md "Binary bodies"): safetensors requests and answers give the same
//! bits as JSON, widen F32 and integer class indices exactly, and fail as JSON does with
//! pointers that name the tensor; a broken file is a 400, the body limit and content
//! types hold.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use losslab::Config;
use safetensors::SafeTensors;
use safetensors::tensor::Dtype;
use serde_json::{Value, json};

use crate::support::{TestApp, TestResponse};

const ST: &str = "application/x-safetensors";

/// A tensor for a test body: its safetensors dtype, shape and little-endian bytes.
struct T {
    dtype: &'static str,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f64s(shape: &[usize], xs: &[f64]) -> T {
    T {
        dtype: "F64",
        shape: shape.to_vec(),
        bytes: xs.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn f32s(shape: &[usize], xs: &[f32]) -> T {
    T {
        dtype: "F32",
        shape: shape.to_vec(),
        bytes: xs.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn i64s(xs: &[i64]) -> T {
    T {
        dtype: "I64",
        shape: vec![xs.len()],
        bytes: xs.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn i32s(xs: &[i32]) -> T {
    T {
        dtype: "I32",
        shape: vec![xs.len()],
        bytes: xs.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// A safetensors file written the way numpy clients write it (header padded to 8).
fn pack(tensors: &[(&str, T)], request: Option<&Value>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, t) in tensors {
        header.insert(
            name.to_string(),
            json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.len()]}),
        );
        offset += t.bytes.len();
    }
    if let Some(r) = request {
        header.insert(
            "__metadata__".into(),
            json!({"request": r.to_string(), "format": "np"}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    for (_, t) in tensors {
        out.extend_from_slice(&t.bytes);
    }
    out
}

async fn post(
    app: &TestApp,
    path: &str,
    ct: &str,
    accept: Option<&str>,
    body: Vec<u8>,
) -> TestResponse {
    let mut b = Request::post(path).header("content-type", ct);
    if let Some(a) = accept {
        b = b.header("accept", a);
    }
    app.send(b.body(Body::from(body)).unwrap()).await
}

/// Decoded F64 tensors by name: (shape, numbers in row-major order).
type Tensors = HashMap<String, (Vec<usize>, Vec<f64>)>;

/// A safetensors answer: its F64 tensors (with shapes) and `__metadata__.response`.
fn unpack(r: &TestResponse) -> (Tensors, Value) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(ST));
    let file = SafeTensors::deserialize(&r.body).expect("a valid safetensors answer");
    let (n, meta) = SafeTensors::read_metadata(&r.body).unwrap();
    assert_eq!((8 + n) % 8, 0, "the data starts 8-byte aligned");
    let rest: Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["response"]).unwrap();
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            assert_eq!(v.dtype(), Dtype::F64);
            let xs = v
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, (v.shape().to_vec(), xs))
        })
        .collect();
    (tensors, rest)
}

/// A JSON array as (shape, numbers in row-major order).
fn flatten(v: &Value) -> (Vec<usize>, Vec<f64>) {
    let a = v.as_array().unwrap();
    match a.first() {
        Some(Value::Array(row)) => {
            let xs = a
                .iter()
                .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect();
            (vec![a.len(), row.len()], xs)
        }
        _ => (
            vec![a.len()],
            a.iter().map(|x| x.as_f64().unwrap()).collect(),
        ),
    }
}

fn bits(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Asserts that a safetensors answer holds exactly the JSON answer: `arrays` as tensors
/// (bit for bit, same shapes), the rest in the metadata.
#[track_caller]
fn same_answer(json_answer: &Value, st: &TestResponse, arrays: &[&str]) {
    let (tensors, rest) = unpack(st);
    let mut expected_rest = json_answer.as_object().unwrap().clone();
    for name in arrays {
        let (shape, xs) = flatten(&expected_rest.remove(*name).unwrap());
        let (got_shape, got) = &tensors[*name];
        assert_eq!(got_shape, &shape, "{name}");
        assert_eq!(bits(got), bits(&xs), "{name}");
    }
    assert_eq!(tensors.len(), arrays.len());
    assert_eq!(Value::Object(expected_rest), rest);
}

fn pseudo_random(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 0.98 + 0.01
        })
        .collect()
}

#[tokio::test]
async fn safetensors_and_json_give_the_same_bits_for_several_kinds_and_shapes() {
    let app = TestApp::new();
    let a = pseudo_random(12, 1);
    let y = pseudo_random(12, 2);
    let w3 = [0.5, 2.0, 1.0];
    // (kind, predictions shape, extra request fields, with weights, arrays of the answer)
    type Case = (&'static str, Vec<usize>, Value, bool, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "mse",
            vec![12],
            json!({"gradient": true}),
            false,
            vec!["gradient"],
        ),
        (
            "mse",
            vec![3, 4],
            json!({"gradient": true, "reduction": "sum"}),
            true,
            vec!["gradient"],
        ),
        (
            "bce",
            vec![4, 3],
            json!({"gradient": true, "reduction": "none"}),
            false,
            vec!["loss", "gradient"],
        ),
        (
            "huber",
            vec![12],
            json!({"params": {"delta": 0.1}, "reduction": "none"}),
            false,
            vec!["loss"],
        ),
        ("log_cosh", vec![3, 4], json!({}), true, vec![]),
        (
            "mae",
            vec![6, 2],
            json!({"gradient": true, "reduction": "none"}),
            false,
            vec!["loss", "gradient"],
        ),
    ];
    for (kind, shape, extra, weighted, arrays) in cases {
        let (pa, ya) = (f64s(&shape, &a), f64s(&shape, &y));
        let mut tensors = vec![("predictions", pa), ("targets", ya)];
        let mut body = extra.clone();
        let as_json = |xs: &[f64]| -> Value {
            if shape.len() == 2 {
                Value::Array(xs.chunks(shape[1]).map(|r| json!(r)).collect())
            } else {
                json!(xs)
            }
        };
        body["predictions"] = as_json(&a);
        body["targets"] = as_json(&y);
        if weighted {
            tensors.push(("weights", f64s(&[3], &w3)));
            body["weights"] = json!(w3);
        }
        let json_answer = app.post_loss(kind, body.clone()).await;
        assert_eq!(json_answer.status, 200, "{kind}: {}", json_answer.text());
        let file = pack(&tensors, Some(&extra));
        let path = format!("/loss/{kind}");
        let st = post(&app, &path, ST, Some(ST), file.clone()).await;
        same_answer(&json_answer.json(), &st, &arrays);
        // a safetensors request answered in JSON: the very same bytes as the JSON request
        let st_json = post(&app, &path, ST, None, file).await;
        assert_eq!(st_json.body, json_answer.body, "{kind}");
        // and a JSON request can ask for a safetensors answer
        let json_st = post(
            &app,
            &path,
            "application/json",
            Some(ST),
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        assert_eq!(json_st.body, st.body, "{kind}");
    }
}

#[tokio::test]
async fn per_row_terms_come_back_as_a_flat_tensor_of_length_m() {
    let app = TestApp::new();
    let p = [0.2, 0.3, 0.5, 0.1, 0.1, 0.8];
    let q = [0.25, 0.25, 0.5, 0.2, 0.2, 0.6];
    let file = pack(
        &[
            ("predictions", f64s(&[2, 3], &p)),
            ("targets", f64s(&[2, 3], &q)),
        ],
        Some(&json!({"reduction": "none", "gradient": true})),
    );
    let st = post(&app, "/loss/kl_div", ST, Some(ST), file).await;
    let json_answer = app
        .post_loss(
            "kl_div",
            json!({"predictions": [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], "targets": [[0.25, 0.25, 0.5], [0.2, 0.2, 0.6]],
                "reduction": "none", "gradient": true}),
        )
        .await
        .json();
    same_answer(&json_answer, &st, &["loss", "gradient"]);
    let (tensors, rest) = unpack(&st);
    assert_eq!(tensors["loss"].0, vec![2]);
    assert_eq!(rest["count"], 2);
    assert!(
        rest.get("loss").is_none(),
        "the terms are a tensor, not metadata"
    );
}

#[tokio::test]
async fn f32_predictions_are_widened_exactly() {
    let app = TestApp::new();
    let a32 = [0.1f32, 0.7, -2.5, 1e-8];
    let y = [0.0, 1.0, -2.0, 0.0];
    let file = pack(
        &[
            ("predictions", f32s(&[4], &a32)),
            ("targets", f64s(&[4], &y)),
        ],
        Some(&json!({"gradient": true})),
    );
    let st = post(&app, "/loss/mse", ST, None, file).await;
    let widened: Vec<f64> = a32.iter().map(|&x| f64::from(x)).collect();
    let json_answer = app
        .post_loss(
            "mse",
            json!({"predictions": widened, "targets": y, "gradient": true}),
        )
        .await;
    assert_eq!(st.status, 200, "{}", st.text());
    assert_eq!(st.body, json_answer.body);
}

#[tokio::test]
async fn integer_class_indices_are_widened_exactly_from_i64_and_i32() {
    let app = TestApp::new();
    let p = [0.7, 0.2, 0.1, 0.1, 0.3, 0.6];
    let expected = app
        .post_loss(
            "cross_entropy",
            json!({"predictions": [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "targets": [0, 2], "gradient": true}),
        )
        .await;
    assert_eq!(expected.status, 200, "{}", expected.text());
    for targets in [i64s(&[0, 2]), i32s(&[0, 2])] {
        let file = pack(
            &[("predictions", f64s(&[2, 3], &p)), ("targets", targets)],
            Some(&json!({"gradient": true})),
        );
        let st = post(&app, "/loss/cross_entropy", ST, None, file).await;
        assert_eq!(st.body, expected.body, "{}", st.text());
    }
    // an index out of range is the same 422 as in JSON
    let file = pack(
        &[
            ("predictions", f64s(&[2, 3], &p)),
            ("targets", i64s(&[0, 3])),
        ],
        None,
    );
    let st = post(&app, "/loss/cross_entropy", ST, None, file).await;
    let js = app
        .post_loss(
            "cross_entropy",
            json!({"predictions": [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "targets": [0, 3]}),
        )
        .await;
    assert_eq!(st.body, js.body);
    st.invalid_at("/targets/1");
    // integers are for class indices only, and must be exact as f64
    let file = pack(
        &[
            ("predictions", i64s(&[1, 2])),
            ("targets", f64s(&[2], &[1.0, 2.0])),
        ],
        None,
    );
    let p = post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/predictions");
    assert!(p["detail"].as_str().unwrap().contains("I64"), "{p}");
    let file = pack(
        &[
            ("predictions", f64s(&[1, 3], &[0.2, 0.3, 0.5])),
            ("targets", i64s(&[(1 << 53) + 1])),
        ],
        None,
    );
    post(&app, "/loss/cross_entropy", ST, None, file)
        .await
        .invalid_at("/targets/0");
}

#[tokio::test]
async fn element_errors_point_into_the_tensor_as_json_pointers_do() {
    let app = TestApp::new();
    // a matrix: /predictions/row/col, the same problem as the JSON body gives
    let p = [0.5, 0.5, 0.2, 1.5, 0.1, 0.3];
    let y = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let file = pack(
        &[
            ("predictions", f64s(&[3, 2], &p)),
            ("targets", f64s(&[3, 2], &y)),
        ],
        None,
    );
    let st = post(&app, "/loss/bce", ST, Some(ST), file).await;
    let js = app
        .post_loss("bce", json!({"predictions": [[0.5, 0.5], [0.2, 1.5], [0.1, 0.3]], "targets": [[1, 0], [1, 0], [0, 1]]}))
        .await;
    assert_eq!(
        st.body, js.body,
        "errors stay problem+json, identical to JSON's"
    );
    st.invalid_at("/predictions/1/1");
    // a large flat array: /predictions/41234
    let mut a = pseudo_random(50_000, 3);
    a[41_234] = 1.5;
    let y = pseudo_random(50_000, 4);
    let file = pack(
        &[
            ("predictions", f64s(&[50_000], &a)),
            ("targets", f64s(&[50_000], &y)),
        ],
        None,
    );
    post(&app, "/loss/bce", ST, None, file)
        .await
        .invalid_at("/predictions/41234");
    // NaN and infinities cannot come from JSON and are refused where they are
    let file = pack(
        &[
            ("predictions", f64s(&[2, 2], &[0.0, 1.0, f64::NAN, 2.0])),
            ("targets", f64s(&[2, 2], &[0.0; 4])),
        ],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/predictions/1/0");
    let file = pack(
        &[
            ("predictions", f32s(&[2], &[0.0, f32::INFINITY])),
            ("targets", f64s(&[2], &[0.0; 2])),
        ],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/predictions/1");
    // shapes: different shapes, a 3-d tensor, weights as a matrix, empty rows
    let file = pack(
        &[
            ("predictions", f64s(&[4], &[0.0; 4])),
            ("targets", f64s(&[2, 2], &[0.0; 4])),
        ],
        None,
    );
    let st = post(&app, "/loss/mse", ST, None, file).await;
    let js = app
        .post_loss(
            "mse",
            json!({"predictions": [0, 0, 0, 0], "targets": [[0, 0], [0, 0]]}),
        )
        .await;
    assert_eq!(st.body, js.body);
    assert_eq!(st.status, 422);
    let file = pack(
        &[
            ("predictions", f64s(&[1, 2, 2], &[0.0; 4])),
            ("targets", f64s(&[4], &[0.0; 4])),
        ],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/predictions");
    let file = pack(
        &[
            ("predictions", f64s(&[4], &[0.0; 4])),
            ("targets", f64s(&[4], &[0.0; 4])),
            ("weights", f64s(&[2, 2], &[1.0; 4])),
        ],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/weights");
    let file = pack(
        &[
            ("predictions", f64s(&[2, 0], &[])),
            ("targets", f64s(&[2, 0], &[])),
        ],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/predictions");
    let file = pack(
        &[
            ("predictions", f64s(&[2], &[0.0; 2])),
            ("targets", f64s(&[2], &[0.0; 2])),
            ("weights", f64s(&[2], &[0.0; 2])),
        ],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/weights");
}

#[tokio::test]
async fn unknown_tensors_missing_arrays_and_bad_metadata_are_422s_naming_the_field() {
    let app = TestApp::new();
    let two = || f64s(&[2], &[0.5, 0.25]);
    // a tensor the operation does not take
    let file = pack(
        &[
            ("predictions", two()),
            ("targets", two()),
            ("logits", two()),
        ],
        None,
    );
    let p = post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/logits");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("predictions, targets, weights"),
        "{p}"
    );
    let file = pack(
        &[("predictions", two()), ("targets", two()), ("a/b", two())],
        None,
    );
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/a~1b");
    // a missing array is JSON's "missing field"
    let file = pack(&[("predictions", two())], None);
    post(&app, "/loss/mse", ST, None, file)
        .await
        .invalid_at("/targets");
    // the request's other fields follow JSON's rules, with JSON's pointers
    for (request, field) in [
        (json!({"zz": 1}), "/zz"),
        (json!({"reduction": "avg"}), "/reduction"),
        (json!({"params": {"delta": 1}}), "/params/delta"),
        (json!({"gradient": "yes"}), "/gradient"),
        (json!({"predictions": [1, 2]}), "/predictions"),
    ] {
        let file = pack(
            &[("predictions", two()), ("targets", two())],
            Some(&request),
        );
        let st = post(&app, "/loss/mse", ST, None, file).await;
        st.invalid_at(field);
    }
    // arrays may come in the request text too (here: weights), as JSON
    let file = pack(
        &[("predictions", two()), ("targets", f64s(&[2], &[0.0, 0.0]))],
        Some(&json!({"weights": [1, 3], "reduction": "sum"})),
    );
    let st = post(&app, "/loss/mse", ST, None, file).await;
    let js = app.post_loss("mse", json!({"predictions": [0.5, 0.25], "targets": [0, 0], "weights": [1, 3], "reduction": "sum"})).await;
    assert_eq!(st.status, 200, "{}", st.text());
    assert_eq!(st.body, js.body);
}

#[tokio::test]
async fn a_broken_file_or_broken_metadata_text_is_a_400() {
    let app = TestApp::new();
    let good = pack(
        &[
            ("predictions", f64s(&[2], &[0.5, 0.25])),
            ("targets", f64s(&[2], &[0.0, 1.0])),
        ],
        None,
    );
    let mut wrong_length = good.clone();
    wrong_length[0] = 0xff; // the header length runs past the end
    let mut bad_offsets = good.clone();
    bad_offsets.pop(); // the data no longer tiles the file
    let not_json_metadata = {
        let mut h = br#"{"__metadata__":{"request":"{\"gradient\": tru"}}"#.to_vec();
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out
    };
    let not_an_object = pack(&[("predictions", f64s(&[1], &[0.5]))], Some(&json!([1, 2])));
    let huge_number = {
        let mut h = br#"{"__metadata__":{"request":"{\"params\": {\"delta\": 1e400}}"}}"#.to_vec();
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out
    };
    for (what, body) in [
        ("empty", vec![]),
        ("too short", vec![1, 2, 3]),
        ("not safetensors", b"{\"predictions\": [1]}".to_vec()),
        ("header length past the end", wrong_length),
        ("offsets", bad_offsets),
        ("metadata not JSON", not_json_metadata),
        ("metadata not an object", not_an_object),
        ("metadata number out of range", huge_number),
    ] {
        let r = post(&app, "/loss/mse", ST, Some(ST), body).await;
        let p = r.problem(400);
        assert!(
            p["type"]
                .as_str()
                .unwrap()
                .ends_with("malformed-safetensors"),
            "{what}: {p}"
        );
    }
}

#[tokio::test]
async fn the_body_limit_gzip_and_content_types_hold_as_for_json() {
    let app = TestApp::with_config(Config {
        max_body_bytes: 4096,
        ..Config::default()
    });
    let n = 1000;
    let a = pseudo_random(n, 5);
    let file = pack(
        &[("predictions", f64s(&[n], &a)), ("targets", f64s(&[n], &a))],
        None,
    );
    post(&app, "/loss/mse", ST, Some(ST), file.clone())
        .await
        .problem(413);
    // gzip: decoded by the same reader, under the same limit after decoding
    let gz = |bytes: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    let send_gz = |body: Vec<u8>| {
        Request::post("/loss/mse")
            .header("content-type", ST)
            .header("content-encoding", "gzip")
            .header("accept", ST)
            .body(Body::from(body))
            .unwrap()
    };
    let zeros = pack(
        &[
            ("predictions", f64s(&[n], &vec![0.0; n])),
            ("targets", f64s(&[n], &vec![0.0; n])),
        ],
        None,
    );
    assert!(gz(&zeros).len() < 4096);
    app.send(send_gz(gz(&zeros))).await.problem(413);
    let small = pack(
        &[
            ("predictions", f64s(&[3], &a[..3])),
            ("targets", f64s(&[3], &a[3..6])),
        ],
        Some(&json!({"gradient": true})),
    );
    let r = app.send(send_gz(gz(&small))).await;
    let plain = post(&app, "/loss/mse", ST, Some(ST), small).await;
    assert_eq!(r.body, plain.body);
    unpack(&r);
    // other content types are still 415, and the message names both accepted types
    for ct in [
        "application/octet-stream",
        "text/plain",
        "application/x-safetensors-x",
    ] {
        let p = post(&app, "/loss/mse", ct, Some(ST), b"{}".to_vec())
            .await
            .problem(415);
        assert!(p["detail"].as_str().unwrap().contains(ST), "{p}");
    }
    // a content type with parameters is still safetensors
    let r = post(
        &app,
        "/loss/mse",
        "Application/X-Safetensors; v=1",
        Some(ST),
        pack(
            &[
                ("predictions", f64s(&[1], &[1.0])),
                ("targets", f64s(&[1], &[0.0])),
            ],
            None,
        ),
    )
    .await;
    let (_, rest) = unpack(&r);
    assert_eq!(rest["loss"], 1.0);
}

#[tokio::test]
async fn safetensors_answers_are_never_compressed_and_json_answers_still_are() {
    let app = TestApp::new();
    // a large answer (8 KB of gradient), which the JSON form of would be compressed
    let n = 1000;
    let a = pseudo_random(n, 11);
    let y = pseudo_random(n, 12);
    let file = pack(
        &[("predictions", f64s(&[n], &a)), ("targets", f64s(&[n], &y))],
        Some(&json!({"gradient": true})),
    );
    let plain = post(&app, "/loss/mse", ST, Some(ST), file.clone()).await;
    unpack(&plain);
    for encoding in ["gzip", "br", "zstd", "gzip, deflate, br, zstd"] {
        for (path, name) in [("/loss/mse", "gradient"), ("/gradient", "d_predictions")] {
            let f = if path == "/gradient" {
                pack(
                    &[("predictions", f64s(&[n], &a)), ("targets", f64s(&[n], &y))],
                    Some(&json!({"loss": "mse"})),
                )
            } else {
                file.clone()
            };
            let req = Request::post(path)
                .header("content-type", ST)
                .header("accept", ST)
                .header("accept-encoding", encoding)
                .body(Body::from(f.clone()))
                .unwrap();
            let r = app.send(req).await;
            assert_eq!(r.header("content-encoding"), None, "{path} with {encoding}");
            assert_eq!(r.header("content-type"), Some(ST));
            let (tensors, _) = unpack(&r);
            assert_eq!(tensors[name].1.len(), n);
            let identity = post(&app, path, ST, Some(ST), f).await;
            assert_eq!(
                r.body, identity.body,
                "{path} with {encoding}: bit-identical"
            );
        }
    }
    // the same request answered as JSON is still compressed on request
    let req = Request::post("/loss/mse")
        .header("content-type", ST)
        .header("accept-encoding", "gzip")
        .body(Body::from(file))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
}

#[tokio::test]
async fn accept_chooses_the_answer_format() {
    let app = TestApp::new();
    let file = || {
        pack(
            &[
                ("predictions", f64s(&[2], &[1.0, 2.0])),
                ("targets", f64s(&[2], &[0.0, 0.0])),
            ],
            Some(&json!({"gradient": true})),
        )
    };
    for (accept, binary) in [
        ("application/x-safetensors", true),
        ("application/json, application/x-safetensors;q=0.5", true),
        ("application/x-safetensors;q=0", false),
        ("application/json", false),
        ("*/*", false),
    ] {
        let r = post(&app, "/loss/mse", ST, Some(accept), file()).await;
        assert_eq!(r.status, 200);
        let ct = r.header("content-type").unwrap();
        assert_eq!(ct == ST, binary, "{accept}: {ct}");
    }
    let (tensors, rest) = unpack(&post(&app, "/loss/mse", ST, Some(ST), file()).await);
    assert_eq!(
        rest,
        json!({"kind": "mse", "reduction": "mean", "count": 2, "loss": 2.5})
    );
    assert_eq!(tensors["gradient"], (vec![2], vec![1.0, 2.0]));
}

#[tokio::test]
async fn gradient_takes_and_answers_safetensors_with_the_same_bits() {
    let app = TestApp::new();
    let z: Vec<f64> = pseudo_random(12, 7).iter().map(|u| 8.0 * u - 4.0).collect();
    let y: Vec<f64> = pseudo_random(12, 8).iter().map(|u| u.round()).collect();
    let rows = |xs: &[f64]| -> Value { Value::Array(xs.chunks(3).map(|r| json!(r)).collect()) };
    // logits through a sigmoid (the fused bce form): a, dL/da and dL/dz as tensors
    let json_answer = app
        .post_gradient(json!({"loss": "bce", "logits": rows(&z), "targets": rows(&y), "activation": "sigmoid"}))
        .await;
    assert_eq!(json_answer.status, 200, "{}", json_answer.text());
    let file = pack(
        &[
            ("logits", f64s(&[4, 3], &z)),
            ("targets", f64s(&[4, 3], &y)),
        ],
        Some(&json!({"loss": "bce", "activation": "sigmoid"})),
    );
    let st = post(&app, "/gradient", ST, Some(ST), file.clone()).await;
    same_answer(
        &json_answer.json(),
        &st,
        &["activations", "d_predictions", "d_logits"],
    );
    assert_eq!(
        post(&app, "/gradient", ST, None, file).await.body,
        json_answer.body
    );
    // predictions with a check and the terms: the check is metadata, the terms a tensor
    let a = pseudo_random(6, 9);
    let json_answer = app
        .post_gradient(json!({"loss": "mse", "predictions": a, "targets": y[..6], "reduction": "none", "check": true}))
        .await
        .json();
    let file = pack(
        &[
            ("predictions", f64s(&[6], &a)),
            ("targets", f64s(&[6], &y[..6])),
        ],
        Some(&json!({"loss": "mse", "reduction": "none", "check": true})),
    );
    let st = post(&app, "/gradient", ST, Some(ST), file).await;
    same_answer(&json_answer, &st, &["loss", "d_predictions"]);
    assert_eq!(unpack(&st).1["check"]["passed"], true);
}

#[tokio::test]
async fn gradient_errors_name_the_tensor() {
    let app = TestApp::new();
    let two = || f64s(&[2], &[0.5, 0.25]);
    let loss = json!({"loss": "mse"});
    // both predictions and logits: the same 422 as JSON's
    let file = pack(
        &[
            ("predictions", two()),
            ("logits", two()),
            ("targets", two()),
        ],
        Some(&loss),
    );
    let st = post(&app, "/gradient", ST, Some(ST), file).await;
    let js = app
        .post_gradient(json!({"loss": "mse", "predictions": [0.5, 0.25], "logits": [0.5, 0.25], "targets": [0.5, 0.25]}))
        .await;
    assert_eq!(st.body, js.body);
    st.invalid_at("/logits");
    // an unknown tensor, an unknown field of the request text, a bad element
    let file = pack(&[("inputs", two()), ("targets", two())], Some(&loss));
    post(&app, "/gradient", ST, None, file)
        .await
        .invalid_at("/inputs");
    let file = pack(
        &[("logits", two()), ("targets", two())],
        Some(&json!({"loss": "mse", "activation": "swish"})),
    );
    post(&app, "/gradient", ST, None, file)
        .await
        .invalid_at("/activation");
    let file = pack(
        &[("predictions", f64s(&[2], &[0.5, 1.5])), ("targets", two())],
        Some(&json!({"loss": "bce"})),
    );
    post(&app, "/gradient", ST, None, file)
        .await
        .invalid_at("/predictions/1");
    let file = pack(&[("predictions", two()), ("targets", two())], None);
    post(&app, "/gradient", ST, None, file)
        .await
        .invalid_at("/loss");
}
