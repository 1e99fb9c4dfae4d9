//! `POST /train`'s JSON: the request (and its parts other bodies reuse), its conversion
//! into a ready-to-run training, and the response, trace row and example shapes.
//!
//! Reuse without `#[serde(flatten)]` (which `deny_unknown_fields` does not work with): a
//! body that embeds a training run lists the model fields itself (as [`TrainRequest`]
//! does), gathers them into a [`TrainModelDto`] and calls [`TrainModelDto::into_model`];
//! a body whose part is a whole /train body holds a [`TrainRequest`] and calls
//! [`TrainRequest::into_prepared`].

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ActivationName, ArrayOut, KindDto, NumArray, NumberOrArray, ParamsDto};
use crate::compute::train::{
    Bias, FinalState, Init, Optimizer, Prepared, StopRules, TraceRow, TrainLimits, TrainResult,
    TrainSpec, prepare,
};
use crate::compute::{Activation, Array, ComputeError, LossKind, ParamValue, Params};

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

impl From<StopDto> for StopRules {
    fn from(s: StopDto) -> Self {
        StopRules {
            loss_below: s.loss_below,
            abs_error_below: s.abs_error_below,
            gradient_norm_below: s.gradient_norm_below,
        }
    }
}

/// `"sgd"` | `"momentum"` | … or `{"kind": "adam", "beta1": 0.9, …}` (torch.optim defaults).
#[derive(Debug)]
pub struct OptimizerDto {
    kind: String,
    fields: Params,
    bare: bool,
}

impl OptimizerDto {
    /// The optimizer at `/optimizer`: an unknown kind is an error at `/optimizer` for a
    /// bare string, at `/optimizer/kind` for an object.
    pub fn parse(&self) -> Result<Optimizer, ComputeError> {
        Optimizer::parse(&self.kind, &self.fields, "/optimizer").map_err(|mut e| {
            let unknown_kind = e.field == "/optimizer" || e.field == "/optimizer/kind";
            if unknown_kind {
                e.field = if self.bare {
                    "/optimizer"
                } else {
                    "/optimizer/kind"
                }
                .into();
            }
            e
        })
    }
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
    #[serde(default, deserialize_with = "super::map_only")]
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
    #[serde(default, deserialize_with = "super::map_only")]
    pub stop: StopDto,
    /// Default 1; 0 = no trace rows.
    pub trace_every: Option<u64>,
}

impl TrainRequest {
    /// Converts and checks the whole request against `limits` (every check before any
    /// work): the run, ready to go.
    pub fn into_prepared(self, limits: &TrainLimits) -> Result<Prepared, ComputeError> {
        prepare(self.into_spec()?, limits)
    }

    /// Converts the request (names and defaults; the checks of values are `prepare`'s).
    pub fn into_spec(self) -> Result<TrainSpec, ComputeError> {
        let model = TrainModelDto {
            inputs: self.inputs,
            targets: self.targets,
            activation: self.activation,
            activation_params: self.activation_params,
            loss: self.loss,
            params: self.params,
            init: self.init,
            use_bias: self.use_bias,
        }
        .into_model()?;
        let optimizer = match &self.optimizer {
            None => Optimizer::Sgd,
            Some(o) => o.parse()?,
        };
        Ok(model.into_spec(TrainRun {
            learning_rate: self.learning_rate,
            optimizer,
            batch_size: self.batch_size,
            seed: self.seed,
            max_iterations: self.max_iterations,
            stop: self.stop.into(),
            trace_every: self.trace_every.unwrap_or(1),
        }))
    }
}

/// The model and data of a training run, as sent: the fields of a /train body that a
/// body embedding a run (/landscape) lists too, with the same names and docs.
#[derive(Debug)]
pub struct TrainModelDto {
    pub inputs: NumArray,
    pub targets: NumArray,
    pub activation: Option<ActivationName>,
    pub activation_params: ParamsDto,
    pub loss: KindDto,
    pub params: ParamsDto,
    pub init: InitDto,
    pub use_bias: Option<bool>,
}

impl TrainModelDto {
    /// The model with its activation parsed (errors at `/activation...`) and the
    /// defaults filled in (identity, `use_bias` true).
    pub fn into_model(self) -> Result<TrainModel, ComputeError> {
        let activation = Activation::parse(
            self.activation
                .as_ref()
                .map_or("identity", |a| a.0.as_str()),
            &self.activation_params.0,
        )?;
        let to_init = |v: NumberOrArray| match v {
            NumberOrArray::Number(x) => Init::Number(x),
            NumberOrArray::Array(a) => Init::Array(a),
        };
        Ok(TrainModel {
            inputs: self.inputs.0,
            targets: self.targets.0,
            activation,
            loss: self.loss.0,
            params: self.params.0,
            init_weights: self.init.weights.map(to_init),
            init_bias: self.init.bias.map(to_init),
            use_bias: self.use_bias.unwrap_or(true),
        })
    }
}

/// The model part of a [`TrainSpec`]: data, layer, loss and initial state.
#[derive(Clone, Debug)]
pub struct TrainModel {
    pub inputs: Array,
    pub targets: Array,
    pub activation: Activation,
    pub loss: LossKind,
    pub params: Params,
    pub init_weights: Option<Init>,
    pub init_bias: Option<Init>,
    pub use_bias: bool,
}

/// The optimisation part of a [`TrainSpec`]: how the model is trained and watched.
#[derive(Clone, Debug)]
pub struct TrainRun {
    pub learning_rate: f64,
    pub optimizer: Optimizer,
    pub batch_size: Option<u64>,
    pub seed: Option<u64>,
    pub max_iterations: u64,
    pub stop: StopRules,
    pub trace_every: u64,
}

impl TrainModel {
    /// The whole spec: this model trained as `run` says.
    pub fn into_spec(self, run: TrainRun) -> TrainSpec {
        TrainSpec {
            inputs: self.inputs,
            targets: self.targets,
            activation: self.activation,
            loss: self.loss,
            params: self.params,
            init_weights: self.init_weights,
            init_bias: self.init_bias,
            use_bias: self.use_bias,
            learning_rate: run.learning_rate,
            optimizer: run.optimizer,
            batch_size: run.batch_size,
            seed: run.seed,
            max_iterations: run.max_iterations,
            stop: run.stop,
            trace_every: run.trace_every,
        }
    }
}

// ---------------------------------------------------------------------------------
// responses

/// `bias`: a number (flat targets) or one per output.
pub struct BiasOut<'a>(pub &'a Bias);

impl Serialize for BiasOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Bias::Scalar(x) => s.serialize_f64(*x),
            Bias::Vector(v) => v.serialize(s),
        }
    }
}

/// One trace row: state i before update i + 1, with the whole-set gradient.
#[derive(Serialize, ToSchema)]
#[schema(as = TraceRow)]
pub struct TraceRowOut<'a> {
    pub iteration: u64,
    pub loss: f64,
    pub weights: ArrayOut<'a>,
    #[schema(value_type = serde_json::Value)]
    pub bias: BiasOut<'a>,
    pub gradient_weights: ArrayOut<'a>,
    #[schema(value_type = serde_json::Value)]
    pub gradient_bias: BiasOut<'a>,
}

impl<'a> TraceRowOut<'a> {
    /// The row `r` as sent.
    pub fn new(r: &'a TraceRow) -> Self {
        TraceRowOut {
            iteration: r.iteration,
            loss: r.loss,
            weights: ArrayOut(&r.weights),
            bias: BiasOut(&r.bias),
            gradient_weights: ArrayOut(&r.gradient_weights),
            gradient_bias: BiasOut(&r.gradient_bias),
        }
    }
}

/// A state: parameters and loss.
#[derive(Serialize, ToSchema)]
pub struct TrainState<'a> {
    pub iteration: u64,
    pub weights: ArrayOut<'a>,
    #[schema(value_type = serde_json::Value)]
    pub bias: BiasOut<'a>,
    pub loss: f64,
}

/// The documented shape of a /train response.
#[derive(Serialize, ToSchema)]
pub struct TrainResponse<'a> {
    /// The index of the final state.
    pub iterations: u64,
    pub converged: bool,
    /// loss_below | abs_error_below | gradient_norm_below | max_iterations | diverged
    pub stop_reason: &'static str,
    #[serde(rename = "final")]
    pub final_state: TrainState<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<TraceRowOut>, required = true)]
    pub trace: Option<Vec<TraceRowOut<'a>>>,
}

impl<'a> TrainResponse<'a> {
    /// The response to `r`, with its trace or (for the stream's last line) without.
    pub fn new(r: &'a TrainResult, with_trace: bool) -> Self {
        let f: &FinalState = &r.final_state;
        TrainResponse {
            iterations: r.iterations,
            converged: r.converged,
            stop_reason: r.stop_reason.name(),
            final_state: TrainState {
                iteration: f.iteration,
                weights: ArrayOut(&f.weights),
                bias: BiasOut(&f.bias),
                loss: f.loss,
            },
            trace: with_trace.then(|| r.trace.iter().map(TraceRowOut::new).collect()),
        }
    }
}

/// A ready-made training request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TrainExample {
    pub name: String,
    pub description: String,
    pub request: TrainRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GET /train/examples serves this file: each entry has the documented shape and
    /// its request is a valid run.
    #[test]
    fn every_served_example_is_a_valid_train_request() {
        let all: Vec<TrainExample> =
            serde_json::from_str(include_str!("../train_examples.json")).unwrap();
        assert!(all.len() >= 2, "{}", all.len());
        for ex in all {
            let name = ex.name.clone();
            assert!(!ex.description.is_empty(), "{name}");
            let run = ex.request.into_prepared(&TrainLimits::default());
            assert!(run.is_ok(), "{name}: {:?}", run.err());
        }
    }

    #[test]
    fn an_unknown_optimizer_is_named_where_it_was_written() {
        let bare: TrainRequest = serde_json::from_str(
            r#"{"inputs": [1], "targets": [1], "loss": "mse", "learning_rate": 0.1,
                "max_iterations": 1, "optimizer": "lbfgs"}"#,
        )
        .unwrap();
        assert_eq!(bare.into_spec().unwrap_err().field, "/optimizer");
        let object: TrainRequest = serde_json::from_str(
            r#"{"inputs": [1], "targets": [1], "loss": "mse", "learning_rate": 0.1,
                "max_iterations": 1, "optimizer": {"kind": "lbfgs"}}"#,
        )
        .unwrap();
        assert_eq!(object.into_spec().unwrap_err().field, "/optimizer/kind");
    }
}
