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
    pub name: &'static str,
    /// The default (a number or a boolean), or null when absent means "off".
    #[schema(value_type = Option<serde_json::Value>)]
    pub default: DefaultOut,
    /// Lower end of the range (null: none); whether it is included is in the description.
    pub min: Option<f64>,
    pub max: Option<f64>,
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
    #[schema(example = "huber")]
    pub kind: &'static str,
    /// The term in a / y / z notation.
    pub formula: &'static str,
    /// d(term)/da.
    pub derivative: &'static str,
    /// `element` or `row`: one term per element or one per row.
    pub per: &'static str,
    pub params: Vec<ParamOut>,
    /// Whether top-level `from_logits` applies.
    pub from_logits: bool,
    /// The numerical guards that can act.
    pub guards: Vec<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivationOut {
    pub name: &'static str,
    pub formula: &'static str,
    pub params: Vec<ParamOut>,
}

#[derive(Serialize, ToSchema)]
pub struct OptimizerOut {
    pub kind: &'static str,
    pub params: Vec<ParamOut>,
}

#[derive(Serialize, ToSchema)]
pub struct Catalogue {
    pub losses: Vec<LossInfoOut>,
    pub activations: Vec<ActivationOut>,
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
