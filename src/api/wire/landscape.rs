//! JSON shapes of `POST /landscape`: the request (the model and data as /train, two axes,
//! the optional path run) and the response (axes with their values, the grid with `null`
//! where the loss is not finite, the minimum, the projected path, the run).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::train::{
    InitDto, OptimizerDto, StopDto, TrainModelDto, TrainResponse, TrainRun, TrainState,
};
use super::{ActivationName, KindDto, NumArray, ParamsDto};
use crate::compute::ComputeError;
use crate::compute::landscape::{AxisSpec, Landscape, LandscapeSpec};
use crate::compute::train::{Optimizer, StopRules};

/// One axis: a parameter of the model and its range.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AxisDto {
    /// A JSON pointer to one number of /train's response shapes: flat targets →
    /// `/weights/i` or `/bias`; m × k targets → `/weights/i/j` or `/bias/j`.
    #[schema(example = "/weights/0")]
    pub parameter: String,
    /// The first value of the axis.
    pub from: f64,
    /// > from.
    pub to: f64,
    /// ≥ 2; the values are from + i·(to − from)/(steps − 1).
    #[schema(minimum = 2)]
    pub steps: u64,
}

/// A /train run from `init` (its own settings, as /train's), drawn as the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathDto {
    /// > 0.
    pub learning_rate: f64,
    /// As /train's `optimizer` (default sgd).
    pub optimizer: Option<OptimizerDto>,
    /// 1 ≤ bs ≤ m; default m (full batch).
    #[schema(minimum = 1)]
    pub batch_size: Option<u64>,
    /// A reproducible shuffle each epoch, as /train's.
    pub seed: Option<u64>,
    /// ≥ 0; at most the server's `--max-iterations`.
    pub max_iterations: u64,
    /// Stop rules, as /train's.
    #[serde(default, deserialize_with = "super::map_only")]
    pub stop: StopDto,
    /// Default 1; 0 = an empty path (the run still runs).
    pub trace_every: Option<u64>,
}

/// The loss surface of a /train setup over two of its parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid",
    "loss": "l2", "init": {"weights": 2.1972245773362196, "bias": 0.0},
    "x": {"parameter": "/weights/0", "from": -4.0, "to": 6.0, "steps": 101},
    "y": {"parameter": "/bias", "from": -5.0, "to": 5.0, "steps": 101},
    "path": {"learning_rate": 0.2, "max_iterations": 1000, "stop": {"loss_below": 0.001}}}))]
pub struct LandscapeRequest {
    /// number[] (m samples, one feature) | number[][] (m × n).
    pub inputs: NumArray,
    /// number[] (m) | number[][] (m × k) | class indices (cross_entropy, nll).
    pub targets: NumArray,
    /// a = act(z), as /train's (default identity).
    pub activation: Option<ActivationName>,
    /// The activation's params (leaky_relu's `negative_slope`).
    #[serde(default)]
    pub activation_params: ParamsDto,
    /// The loss kind, as /train's.
    pub loss: KindDto,
    /// The loss kind's params.
    #[serde(default)]
    pub params: ParamsDto,
    /// Every parameter but x and y keeps its init value (default zeros).
    #[serde(default, deserialize_with = "super::map_only")]
    pub init: InitDto,
    /// Default true; false: the bias stays at its init value on the path.
    pub use_bias: Option<bool>,
    /// The parameter along the columns of the grid.
    #[serde(deserialize_with = "super::map_only")]
    pub x: AxisDto,
    /// The parameter along the rows of the grid (another one than x).
    #[serde(deserialize_with = "super::map_only")]
    pub y: AxisDto,
    /// A /train run from `init`, projected onto (x, y) as the path.
    #[serde(default, deserialize_with = "super::map_or_null")]
    pub path: Option<PathDto>,
}

impl LandscapeRequest {
    /// The compute input (through /train's own conversion) and the picture's title.
    pub fn into_spec(self) -> Result<(LandscapeSpec, String), ComputeError> {
        let title = format!(
            "{} + {}",
            self.loss.0.name(),
            self.activation
                .as_ref()
                .map_or("identity", |a| a.0.as_str())
        );
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
        let has_path = self.path.is_some();
        // without a path, a run of no updates (its settings are not used)
        let run = match self.path {
            None => TrainRun {
                learning_rate: 1.0,
                optimizer: Optimizer::Sgd,
                batch_size: None,
                seed: None,
                max_iterations: 0,
                stop: StopRules::default(),
                trace_every: 0,
            },
            Some(p) => TrainRun {
                learning_rate: p.learning_rate,
                optimizer: match &p.optimizer {
                    None => Optimizer::Sgd,
                    Some(o) => o.parse().map_err(|mut e| {
                        e.field = format!("/path{}", e.field);
                        e
                    })?,
                },
                batch_size: p.batch_size,
                seed: p.seed,
                max_iterations: p.max_iterations,
                stop: p.stop.into(),
                trace_every: p.trace_every.unwrap_or(1),
            },
        };
        let train = model.into_spec(run);
        let axis = |a: AxisDto| AxisSpec {
            parameter: a.parameter,
            from: a.from,
            to: a.to,
            steps: a.steps,
        };
        Ok((
            LandscapeSpec {
                train,
                x: axis(self.x),
                y: axis(self.y),
                path: has_path,
            },
            title,
        ))
    }
}

#[derive(Serialize)]
struct AxisOut<'a> {
    parameter: &'a str,
    values: &'a [f64],
}

#[derive(Serialize)]
struct MinimumOut {
    x: f64,
    y: f64,
    loss: f64,
}

#[derive(Serialize)]
struct PointOut {
    iteration: u64,
    x: f64,
    y: f64,
    loss: f64,
}

/// The response: `loss` is written separately (rows in parallel), the rest by serde.
#[derive(Serialize)]
struct HeadOut<'a> {
    x: AxisOut<'a>,
    y: AxisOut<'a>,
}

#[derive(Serialize)]
struct TailOut<'a> {
    minimum: Option<MinimumOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Vec<PointOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<TrainResponse<'a>>,
}

/// Rows of the grid as the answer's `loss` array prints them, `[…],[…]` (a comma first
/// unless `first_row` is 0, so the chunks of [`PreparedLandscape::compute_with`] join by
/// concatenation): each number as serde_json prints an f64 (shortest round trip, by the
/// same zmij), `null` where it is not finite.
///
/// [`PreparedLandscape::compute_with`]: crate::compute::landscape::PreparedLandscape::compute_with
pub fn grid_rows_json(first_row: usize, values: &[f64], nx: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 22 + 8);
    let mut number = zmij::Buffer::new();
    for (r, row) in values.chunks(nx.max(1)).enumerate() {
        if first_row + r > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, &v) in row.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            if v.is_finite() {
                out.extend_from_slice(number.format_finite(v).as_bytes());
            } else {
                out.extend_from_slice(b"null");
            }
        }
        out.push(b']');
    }
    out
}

/// The JSON answer in pieces that are sent one after another without being joined (the
/// grid is megabytes): the head (axes), the grid's chunks of rows as
/// [`grid_rows_json`] printed them, and the tail (minimum, path, run).
pub fn json_frames(l: &Landscape, rows: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let head = HeadOut {
        x: AxisOut {
            parameter: &l.x.parameter,
            values: &l.x.values,
        },
        y: AxisOut {
            parameter: &l.y.parameter,
            values: &l.y.values,
        },
    };
    let tail = TailOut {
        minimum: l.minimum.map(|m| MinimumOut {
            x: m.x,
            y: m.y,
            loss: m.loss,
        }),
        path: l.path.as_ref().map(|p| {
            p.points
                .iter()
                .map(|q| PointOut {
                    iteration: q.iteration,
                    x: q.x,
                    y: q.y,
                    loss: q.loss,
                })
                .collect()
        }),
        run: l.path.as_ref().map(|p| TrainResponse::new(&p.run, false)),
    };
    let mut head = serde_json::to_vec(&head).unwrap_or_default();
    head.pop(); // the closing brace: the grid and the tail follow
    head.extend_from_slice(b",\"loss\":[");
    let tail = serde_json::to_vec(&tail).unwrap_or_default();
    let mut end = b"],".to_vec();
    end.extend_from_slice(tail.get(1..).unwrap_or(b"}"));
    let mut frames = Vec::with_capacity(rows.len() + 2);
    frames.push(head);
    frames.extend(rows);
    frames.push(end);
    frames
}

/// The documented shape of one axis in the response.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AxisValues {
    parameter: String,
    /// from + i·(to − from)/(steps − 1).
    values: Vec<f64>,
}

/// The smallest finite grid value (the first in row order on ties).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GridMinimum {
    x: f64,
    y: f64,
    loss: f64,
}

/// A trace row of the run, projected onto the axes.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PathPointDoc {
    iteration: u64,
    x: f64,
    y: f64,
    loss: f64,
}

/// The documented shape of a /landscape response.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LandscapeResponse {
    x: AxisValues,
    y: AxisValues,
    /// One row per y value, one column per x value; `null` where the loss is not finite.
    #[schema(value_type = Vec<Vec<Option<f64>>>)]
    loss: Vec<Vec<f64>>,
    /// `null` when no grid value is finite.
    minimum: Option<GridMinimum>,
    /// With `path`: its trace rows projected ([] with trace_every 0).
    path: Option<Vec<PathPointDoc>>,
    /// With `path`: the run's /train response without `trace`.
    run: Option<RunSummary>,
}

/// The path's run: /train's response without `trace`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RunSummary {
    /// The index of the final state.
    iterations: u64,
    converged: bool,
    /// loss_below | abs_error_below | gradient_norm_below | max_iterations | diverged
    stop_reason: String,
    #[schema(rename = "final")]
    final_state: TrainState<'static>,
}

/// A ready-made landscape request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LandscapeExample {
    name: String,
    description: String,
    request: LandscapeRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grid's numbers print exactly as serde_json prints an `Option<f64>` grid.
    #[test]
    fn grid_rows_print_as_serde_json_prints_them() {
        let values = [
            0.0,
            -0.0,
            0.1,
            -2.5,
            1e21,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.12345678901234568,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123456789.0,
            1.0 / 3.0,
        ];
        let nx = 5;
        let rows: Vec<Vec<Option<f64>>> = values
            .chunks(nx)
            .map(|r| r.iter().map(|v| v.is_finite().then_some(*v)).collect())
            .collect();
        let want = serde_json::to_vec(&rows).unwrap();
        // whole, and in chunks of one row joined by concatenation
        let mut whole = b"[".to_vec();
        whole.extend(grid_rows_json(0, &values, nx));
        whole.push(b']');
        assert_eq!(
            String::from_utf8(whole).unwrap(),
            String::from_utf8(want.clone()).unwrap()
        );
        let mut joined = b"[".to_vec();
        for (r, chunk) in values.chunks(nx).enumerate() {
            joined.extend(grid_rows_json(r, chunk, nx));
        }
        joined.push(b']');
        assert_eq!(joined, want);
    }
}
