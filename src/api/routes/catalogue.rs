//! `GET /losses`: every loss kind, activation and optimizer with its params, from the
//! compute core's own catalogue entries.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::compute::params::ParamSpec;
use crate::compute::{LossKind, ParamDefault};

/// A parameter: default, range and meaning.
#[derive(Serialize, ToSchema)]
pub struct ParamOut {
    /// The parameter's name in `params`.
    pub name: &'static str,
    /// The default (a number or a boolean), or null when absent means "off".
    #[schema(value_type = Option<serde_json::Value>)]
    pub default: DefaultOut,
    /// Lower end of the range (null: none); whether it is included is in the description.
    pub min: Option<f64>,
    /// Upper end of the range (null: none); whether it is included is in the description.
    pub max: Option<f64>,
    /// What the parameter does, with its range.
    pub description: String,
}

/// A default value: number, boolean or null.
pub struct DefaultOut(ParamDefault);

impl Serialize for DefaultOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ParamDefault::Number(x) => s.serialize_f64(x),
            ParamDefault::Bool(b) => s.serialize_bool(b),
            ParamDefault::None => s.serialize_none(),
        }
    }
}

/// The catalogue entry of one parameter.
pub fn param_out(p: &ParamSpec) -> ParamOut {
    let range = p.range_text();
    ParamOut {
        name: p.name,
        default: DefaultOut(p.default),
        min: p.min.map(|l| l.value),
        max: p.max.map(|l| l.value),
        description: if range.is_empty() {
            p.description.to_string()
        } else {
            format!("{} Range: {range}.", p.description)
        },
    }
}

/// A loss kind's catalogue entry.
#[derive(Serialize, ToSchema)]
pub struct LossInfoOut {
    /// The kind's name (the path of POST /loss/{kind}).
    #[schema(example = "huber")]
    pub kind: &'static str,
    /// The term in a / y / z notation.
    pub formula: &'static str,
    /// d(term)/da.
    pub derivative: &'static str,
    /// `element` or `row`: one term per element or one per row.
    pub per: &'static str,
    /// Its parameters.
    pub params: Vec<ParamOut>,
    /// Whether top-level `from_logits` applies.
    pub from_logits: bool,
    /// The numerical guards that can act.
    pub guards: Vec<&'static str>,
}

/// An activation's catalogue entry.
#[derive(Serialize, ToSchema)]
pub struct ActivationOut {
    /// The name (the `activation` of /gradient and /train).
    pub name: &'static str,
    /// a = act(z).
    pub formula: &'static str,
    /// Its parameters (`activation_params`).
    pub params: Vec<ParamOut>,
}

/// An optimizer's catalogue entry.
#[derive(Serialize, ToSchema)]
pub struct OptimizerOut {
    /// The kind (the `optimizer` of /train).
    pub kind: &'static str,
    /// Its settings (the fields of an optimizer object).
    pub params: Vec<ParamOut>,
}

/// What losslab knows: every loss kind, activation and optimizer.
#[derive(Serialize, ToSchema)]
pub struct Catalogue {
    /// The loss kinds.
    pub losses: Vec<LossInfoOut>,
    /// The activations.
    pub activations: Vec<ActivationOut>,
    /// The optimizers.
    pub optimizers: Vec<OptimizerOut>,
}

/// The catalogue, built from the compute core's entries.
pub fn catalogue() -> Catalogue {
    Catalogue {
        losses: LossKind::ALL
            .iter()
            .map(|k| {
                let i = k.info();
                LossInfoOut {
                    kind: i.name,
                    formula: i.formula,
                    derivative: i.derivative,
                    per: i.per.name(),
                    params: i.params.iter().map(param_out).collect(),
                    from_logits: i.from_logits,
                    guards: i.guards.to_vec(),
                }
            })
            .collect(),
        activations: crate::compute::activation::ACTIVATIONS
            .iter()
            .map(|a| ActivationOut {
                name: a.name,
                formula: a.formula,
                params: a.params.iter().map(param_out).collect(),
            })
            .collect(),
        optimizers: crate::compute::train::OPTIMIZERS
            .iter()
            .map(|o| OptimizerOut {
                kind: o.kind,
                params: o.params.iter().map(param_out).collect(),
            })
            .collect(),
    }
}

/// Every loss kind, activation and optimizer with its params.
#[utoipa::path(get, path = "/losses", tag = "catalogue",
    responses((status = 200, description = "The catalogue", body = Catalogue)))]
pub async fn get_losses() -> Json<Catalogue> {
    Json(catalogue())
}
