//! `POST /train` (JSON, NDJSON stream, or SVG loss curve) and `GET /train/examples`.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{JsonBytes, parse_json};
use crate::api::problem::{ApiError, problem_body};
use crate::api::routes::json_response;
use crate::api::state::{AppState, compute_error};
use crate::api::wire::{ActivationName, ArrayOut, KindDto, NumArray, NumberOrArray, ParamsDto};
use crate::compute::train::{
    Bias, FinalState, Init, Optimizer, Prepared, StopRules, TraceRow, TrainLimits, TrainResult,
    TrainSpec, prepare,
};
use crate::compute::{Activation, Cancel, ComputeError, ParamValue, Params};

/// Initial parameters (default zeros); a number broadcasts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitDto {
    /// number | number[] (n) | number[][] (n × k).
    pub weights: Option<NumberOrArray>,
    /// number | number[] (k).
    pub bias: Option<NumberOrArray>,
}

/// Stop rules, checked on every state with a strict `<`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopDto {
    pub loss_below: Option<f64>,
    /// max |a − y| over the training set.
    pub abs_error_below: Option<f64>,
    /// L2 norm of the gradient over the trainable parameters.
    pub gradient_norm_below: Option<f64>,
}

/// `"sgd"` | `"momentum"` | … or `{"kind": "adam", "beta1": 0.9, …}` (torch.optim defaults).
#[derive(Debug)]
pub struct OptimizerDto {
    kind: String,
    fields: Params,
    bare: bool,
}

impl<'de> Deserialize<'de> for OptimizerDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptimizerDto;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an optimizer kind or an object with a kind")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OptimizerDto, E> {
                Ok(OptimizerDto {
                    kind: v.to_string(),
                    fields: Params::default(),
                    bare: true,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OptimizerDto, A::Error> {
                let mut kind = None;
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "kind" {
                        kind = Some(map.next_value::<String>()?);
                    } else {
                        fields.push((key, ParamValue::Number(map.next_value::<f64>()?)));
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
                Ok(OptimizerDto {
                    kind,
                    fields: Params::new(fields),
                    bare: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl utoipa::PartialSchema for OptimizerDto {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let kinds = crate::compute::train::OPTIMIZERS.iter().map(|o| o.kind);
        let mut obj = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .property(
                "kind",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(kinds.clone())),
            )
            .required("kind");
        for name in ["momentum", "epsilon", "alpha", "beta1", "beta2"] {
            obj = obj.property(
                name,
                ObjectBuilder::new().schema_type(SchemaType::Type(Type::Number)),
            );
        }
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(kinds)),
            )
            .item(obj.additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            )))
            .description(Some(
                "An optimizer by kind (all defaults) or an object with its kind and settings (torch.optim's update rules and defaults).",
            ))
            .into()
    }
}

impl ToSchema for OptimizerDto {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Optimizer")
    }
}

/// Gradient descent on one dense layer z = X·W + b, a = act(z), minimising the mean loss.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid",
    "loss": "l2", "init": {"weights": 2.1972245773362196, "bias": 0.0}, "use_bias": false,
    "learning_rate": 0.2, "max_iterations": 1000, "stop": {"loss_below": 0.001}}))]
pub struct TrainRequest {
    /// number[] (m samples, one feature) | number[][] (m × n).
    pub inputs: NumArray,
    /// number[] (m) | number[][] (m × k) | class indices (cross_entropy, nll).
    pub targets: NumArray,
    pub activation: Option<ActivationName>,
    #[serde(default)]
    pub activation_params: ParamsDto,
    pub loss: KindDto,
    #[serde(default)]
    pub params: ParamsDto,
    #[serde(default, deserialize_with = "crate::api::wire::map_only")]
    pub init: InitDto,
    /// Default true; false: b keeps its initial value.
    pub use_bias: Option<bool>,
    /// > 0.
    pub learning_rate: f64,
    pub optimizer: Option<OptimizerDto>,
    /// 1 ≤ bs ≤ m (default m: full batch).
    #[schema(minimum = 1)]
    pub batch_size: Option<u64>,
    /// Seeded reproducible shuffle each epoch (SplitMix64 + Fisher–Yates).
    pub seed: Option<u64>,
    pub max_iterations: u64,
    #[serde(default, deserialize_with = "crate::api::wire::map_only")]
    pub stop: StopDto,
    /// Default 1; 0 = no trace rows.
    pub trace_every: Option<u64>,
}

/// `bias`: a number (flat targets) or one per output.
struct BiasOut<'a>(&'a Bias);

impl Serialize for BiasOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Bias::Scalar(x) => s.serialize_f64(*x),
            Bias::Vector(v) => v.serialize(s),
        }
    }
}

#[derive(Serialize)]
struct RowOut<'a> {
    iteration: u64,
    loss: f64,
    weights: ArrayOut<'a>,
    bias: BiasOut<'a>,
    gradient_weights: ArrayOut<'a>,
    gradient_bias: BiasOut<'a>,
}

fn row_out(r: &TraceRow) -> RowOut<'_> {
    RowOut {
        iteration: r.iteration,
        loss: r.loss,
        weights: ArrayOut(&r.weights),
        bias: BiasOut(&r.bias),
        gradient_weights: ArrayOut(&r.gradient_weights),
        gradient_bias: BiasOut(&r.gradient_bias),
    }
}

#[derive(Serialize)]
struct FinalOut<'a> {
    iteration: u64,
    weights: ArrayOut<'a>,
    bias: BiasOut<'a>,
    loss: f64,
}

#[derive(Serialize)]
pub(crate) struct ResponseOut<'a> {
    iterations: u64,
    converged: bool,
    stop_reason: &'static str,
    #[serde(rename = "final")]
    final_state: FinalOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<Vec<RowOut<'a>>>,
}

fn final_out(f: &FinalState) -> FinalOut<'_> {
    FinalOut {
        iteration: f.iteration,
        weights: ArrayOut(&f.weights),
        bias: BiasOut(&f.bias),
        loss: f.loss,
    }
}

pub(crate) fn response_out(r: &TrainResult, with_trace: bool) -> ResponseOut<'_> {
    ResponseOut {
        iterations: r.iterations,
        converged: r.converged,
        stop_reason: r.stop_reason.name(),
        final_state: final_out(&r.final_state),
        trace: with_trace.then(|| r.trace.iter().map(row_out).collect()),
    }
}

/// The documented shape of a /train response.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TrainResponse {
    /// The index of the final state.
    iterations: u64,
    converged: bool,
    /// loss_below | abs_error_below | gradient_norm_below | max_iterations | diverged
    stop_reason: String,
    #[schema(rename = "final")]
    final_state: TrainState,
    trace: Vec<TraceRowDoc>,
}

/// A state: parameters and loss.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TrainState {
    iteration: u64,
    weights: NumArray,
    #[schema(value_type = serde_json::Value)]
    bias: f64,
    loss: f64,
}

/// One trace row: state i before update i + 1, with the whole-set gradient.
#[derive(ToSchema)]
#[schema(as = TraceRow)]
#[allow(dead_code)]
pub struct TraceRowDoc {
    iteration: u64,
    loss: f64,
    weights: NumArray,
    #[schema(value_type = serde_json::Value)]
    bias: f64,
    gradient_weights: NumArray,
    #[schema(value_type = serde_json::Value)]
    gradient_bias: f64,
}

enum Wants {
    Json,
    Ndjson,
    Svg,
}

fn wants(headers: &HeaderMap) -> Wants {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/x-ndjson") {
        Wants::Ndjson
    } else if accept.contains("image/svg+xml") && !accept.contains("application/json") {
        Wants::Svg
    } else {
        Wants::Json
    }
}

/// Parse and validate a request into a ready-to-run training (all checks before work).
fn parse_and_prepare(body: &[u8], state: &AppState) -> Result<Prepared, ApiError> {
    let req: TrainRequest = parse_json(body)?;
    let limits = TrainLimits {
        max_iterations: state.config.max_iterations,
        max_trace_rows: state.config.max_trace_rows,
        max_trace_numbers: state.config.max_trace_numbers,
    };
    to_spec(req)
        .and_then(|spec| prepare(spec, &limits))
        .map_err(|e| compute_error(e, state.config.timeout_secs))
}

pub(crate) fn to_spec(req: TrainRequest) -> Result<TrainSpec, ComputeError> {
    let activation = Activation::parse(
        req.activation.as_ref().map_or("identity", |a| a.0.as_str()),
        &req.activation_params.0,
    )?;
    let optimizer = match req.optimizer {
        None => Optimizer::Sgd,
        // a bare string is named `/optimizer`; an object's kind `/optimizer/kind`
        Some(o) => Optimizer::parse(&o.kind, &o.fields, "/optimizer").map_err(|mut e| {
            let unknown_kind = e.field == "/optimizer" || e.field == "/optimizer/kind";
            if unknown_kind {
                e.field = if o.bare {
                    "/optimizer"
                } else {
                    "/optimizer/kind"
                }
                .into();
            }
            e
        })?,
    };
    let init = req.init;
    let to_init = |v: NumberOrArray| match v {
        NumberOrArray::Number(x) => Init::Number(x),
        NumberOrArray::Array(a) => Init::Array(a),
    };
    let stop = req.stop;
    Ok(TrainSpec {
        inputs: req.inputs.0,
        targets: req.targets.0,
        activation,
        loss: req.loss.0,
        params: req.params.0,
        init_weights: init.weights.map(to_init),
        init_bias: init.bias.map(to_init),
        use_bias: req.use_bias.unwrap_or(true),
        learning_rate: req.learning_rate,
        optimizer,
        batch_size: req.batch_size,
        seed: req.seed,
        max_iterations: req.max_iterations,
        stop: StopRules {
            loss_below: stop.loss_below,
            abs_error_below: stop.abs_error_below,
            gradient_norm_below: stop.gradient_norm_below,
        },
        trace_every: req.trace_every.unwrap_or(1),
    })
}

/// Train one dense layer by gradient descent.
#[utoipa::path(
    post,
    path = "/train",
    tag = "training",
    request_body(content = TrainRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The run: JSON by default; with `Accept: application/x-ndjson` one trace row per line, flushed as computed, then the summary without `trace` (a failure mid-stream ends with one problem object); with `Accept: image/svg+xml` the loss curve of the trace as SVG.",
            content(
                (TrainResponse = "application/json"),
                (String = "application/x-ndjson"),
                (String = "image/svg+xml"),
            )),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_train(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    match wants(&headers) {
        Wants::Json => {
            let st = state.clone();
            let bytes = state
                .compute(true, move |cancel| {
                    let run = parse_and_prepare(&body, &st)?;
                    drop(body);
                    let r = run.run(cancel).map_err(|e| compute_error(e, secs))?;
                    Ok(serde_json::to_vec(&response_out(&r, true)).unwrap_or_default())
                })
                .await?;
            Ok(json_response(bytes))
        }
        Wants::Svg => {
            let st = state.clone();
            let svg = state
                .compute(true, move |cancel| {
                    let run = parse_and_prepare(&body, &st)?;
                    if run.max_trace_rows() == 0 {
                        return Err(ApiError::invalid(
                            "/trace_every",
                            "an SVG loss curve needs trace rows: trace_every must be > 0",
                        ));
                    }
                    let r = run.run(cancel).map_err(|e| compute_error(e, secs))?;
                    let points: Vec<(u64, f64)> =
                        r.trace.iter().map(|t| (t.iteration, t.loss)).collect();
                    Ok(crate::plot::loss_curve_svg(&points, "training loss"))
                })
                .await?;
            let mut res = svg.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            );
            Ok(res)
        }
        Wants::Ndjson => stream(state, body).await,
    }
}

/// NDJSON: rows flushed as computed, then the summary; a failure after the first line
/// ends the stream with one problem object. A client that disconnects closes the
/// channel, and the loop stops at its next row.
async fn stream(state: AppState, body: Bytes) -> Result<Response, ApiError> {
    let secs = state.config.timeout_secs;
    // parse and check before answering, so invalid requests get their real status
    let st = state.clone();
    let run = state
        .compute(
            body.len() > crate::api::state::SMALL_BODY_BYTES,
            move |_| parse_and_prepare(&body, &st),
        )
        .await?;
    let (permit, deadline) = state.heavy_slot().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let cancel = Cancel::new(Some(deadline), None);
        let mut sink = |row: TraceRow| -> bool {
            let mut line = serde_json::to_vec(&row_out(&row)).unwrap_or_default();
            line.push(b'\n');
            tx.blocking_send(Ok(Bytes::from(line))).is_ok()
        };
        let last = match run.run_streaming(&cancel, &mut sink) {
            Ok(r) => serde_json::to_vec(&response_out(&r, false)).unwrap_or_default(),
            Err(e) => problem_body(&compute_error(e, secs).problem()),
        };
        let mut last = last;
        last.push(b'\n');
        let _ = tx.blocking_send(Ok(Bytes::from(last)));
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// A ready-made training request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TrainExample {
    name: String,
    description: String,
    request: TrainRequest,
}

static EXAMPLES: OnceLock<Vec<u8>> = OnceLock::new();

/// Ready-made requests from the textbook: the single neuron (l2, then bce) first.
#[utoipa::path(get, path = "/train/examples", tag = "training",
    responses((status = 200, description = "Examples", body = Vec<TrainExample>)))]
pub async fn get_examples() -> Response {
    let bytes = EXAMPLES.get_or_init(|| {
        // compact the committed file once
        serde_json::from_str::<serde_json::Value>(include_str!("../train_examples.json"))
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_else(|_| b"[]".to_vec())
    });
    json_response(bytes.clone())
}
