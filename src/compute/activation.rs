//! Activations a = act(z), forward and backward (dL/dz from dL/da). Softmax works per
//! row (a flat array is one row); the rest elementwise. Derivatives at kinks follow
//! torch: relu'(0) = 0, leaky_relu'(0) = negative_slope.

use super::array::Array;
use super::error::ComputeError;
use super::numeric::{accurate_dot, sigmoid, softplus};
use super::params::{ParamDefault, ParamReader, ParamSpec, Params};

/// An activation with its params.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// a = z.
    Identity,
    /// a = 1 / (1 + e^(−z)).
    Sigmoid,
    /// a = tanh z.
    Tanh,
    /// a = max(0, z); relu'(0) = 0.
    Relu,
    /// a = z for z > 0, else negative_slope·z; the derivative at 0 is negative_slope.
    LeakyRelu {
        /// The slope for z < 0 (`activation_params.negative_slope`, default 0.01).
        negative_slope: f64,
    },
    /// a = ln(1 + e^z).
    Softplus,
    /// a = e^z / Σ e^z over the row (a flat array is one row).
    Softmax,
}

/// An activation's catalogue entry.
#[derive(Debug)]
pub struct ActivationInfo {
    /// The activation's name in requests (`"leaky_relu"`).
    pub name: &'static str,
    /// The formula GET /losses shows.
    pub formula: &'static str,
    /// The params it reads from `activation_params`.
    pub params: &'static [ParamSpec],
}

const NEGATIVE_SLOPE: ParamSpec = ParamSpec {
    name: "negative_slope",
    default: ParamDefault::Number(0.01),
    min: None,
    max: None,
    description: "Slope for z < 0 (torch's default 0.01); the derivative at z = 0 is this slope, as torch.",
};

/// Every activation, in API.md's order.
pub const ACTIVATIONS: &[ActivationInfo] = &[
    ActivationInfo {
        name: "identity",
        formula: "a = z",
        params: &[],
    },
    ActivationInfo {
        name: "sigmoid",
        formula: "a = 1 / (1 + e^-z)",
        params: &[],
    },
    ActivationInfo {
        name: "tanh",
        formula: "a = tanh(z)",
        params: &[],
    },
    ActivationInfo {
        name: "relu",
        formula: "a = max(0, z); derivative 0 at z = 0",
        params: &[],
    },
    ActivationInfo {
        name: "leaky_relu",
        formula: "a = z if z > 0 else negative_slope * z",
        params: &[NEGATIVE_SLOPE],
    },
    ActivationInfo {
        name: "softplus",
        formula: "a = ln(1 + e^z)",
        params: &[],
    },
    ActivationInfo {
        name: "softmax",
        formula: "a_k = e^z_k / sum_j e^z_j per row",
        params: &[],
    },
];

impl Activation {
    /// The API name.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Softplus => "softplus",
            Activation::Softmax => "softmax",
        }
    }

    /// Parses `activation` and its `activation_params` (errors at `/activation` listing
    /// the valid names, or at `/activation_params/...`).
    pub fn parse(name: &str, params: &Params) -> Result<Self, ComputeError> {
        let Some(info) = ACTIVATIONS.iter().find(|i| i.name == name) else {
            let valid: Vec<&str> = ACTIVATIONS.iter().map(|i| i.name).collect();
            return Err(ComputeError::invalid(
                "/activation",
                format!("unknown activation {name:?}; valid: {}", valid.join(", ")),
            ));
        };
        let r = ParamReader::new(params, "/activation_params", info.name, info.params);
        let act = match name {
            "identity" => Activation::Identity,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu {
                negative_slope: r.number("negative_slope")?,
            },
            "softplus" => Activation::Softplus,
            _ => Activation::Softmax,
        };
        r.finish()?;
        Ok(act)
    }

    /// a = act(z), same shape.
    pub fn forward(&self, z: &Array) -> Array {
        let mut a = z.clone();
        match *self {
            Activation::Identity => {}
            Activation::Softmax => {
                let k = z.cols().max(1);
                for row in a.data_mut().chunks_exact_mut(k) {
                    softmax_in_place(row);
                }
            }
            act => {
                for v in a.data_mut() {
                    *v = act.apply(*v);
                }
            }
        }
        a
    }

    /// act(z) of one element (not softmax, which is per row).
    #[inline]
    pub fn apply(&self, z: f64) -> f64 {
        match *self {
            Activation::Identity | Activation::Softmax => z,
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Relu => {
                if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { negative_slope } => {
                if z > 0.0 {
                    z
                } else {
                    negative_slope * z
                }
            }
            Activation::Softplus => softplus(z),
        }
    }

    /// da/dz of one element given z and a = act(z) (not softmax).
    #[inline]
    pub fn derivative(&self, z: f64, a: f64) -> f64 {
        match *self {
            Activation::Identity | Activation::Softmax => 1.0,
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Tanh => 1.0 - a * a,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { negative_slope } => {
                if z > 0.0 {
                    1.0
                } else {
                    negative_slope
                }
            }
            Activation::Softplus => sigmoid(z),
        }
    }

    /// dL/dz from dL/da (`da`), given z and a = act(z) (all the same shape).
    pub fn backward(&self, z: &Array, a: &Array, da: &Array) -> Array {
        let mut dz = da.clone();
        match *self {
            Activation::Identity => {}
            Activation::Softmax => {
                // dz_k = a_k (da_k − Σ_j a_j da_j), per row
                let k = z.cols().max(1);
                for (dz_row, a_row) in dz.data_mut().chunks_exact_mut(k).zip(a.row_iter()) {
                    let dot = accurate_dot(a_row, dz_row);
                    for (d, &ak) in dz_row.iter_mut().zip(a_row) {
                        *d = ak * (*d - dot);
                    }
                }
            }
            act => {
                for ((d, &zi), &ai) in dz.data_mut().iter_mut().zip(z.data()).zip(a.data()) {
                    *d *= act.derivative(zi, ai);
                }
            }
        }
        dz
    }

    /// The range of a = act(z): (lowest, highest) possible values.
    pub fn range(&self) -> (f64, f64) {
        match *self {
            Activation::Sigmoid | Activation::Softmax => (0.0, 1.0),
            Activation::Tanh => (-1.0, 1.0),
            Activation::Relu | Activation::Softplus => (0.0, f64::INFINITY),
            // slope ≤ 0: z < 0 maps to a ≥ 0
            Activation::LeakyRelu { negative_slope } if negative_slope <= 0.0 => {
                (0.0, f64::INFINITY)
            }
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }
}

/// Softmax of one row in place: shifted by the max, so no exponential overflows.
pub fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in row.iter_mut() {
        *v = (*v - max).exp();
    }
    let s = super::numeric::accurate_sum(row);
    for v in row.iter_mut() {
        *v /= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = Activation::parse("swish", &Params::default()).unwrap_err();
        assert_eq!(e.field, "/activation");
        assert!(e.message.contains("leaky_relu"));
    }

    #[test]
    fn leaky_relu_reads_its_slope_and_rejects_other_params() {
        use crate::compute::params::ParamValue;
        let p = Params::new(vec![("negative_slope".into(), ParamValue::Number(0.2))]);
        assert_eq!(
            Activation::parse("leaky_relu", &p).unwrap(),
            Activation::LeakyRelu {
                negative_slope: 0.2
            }
        );
        let e = Activation::parse("relu", &p).unwrap_err();
        assert_eq!(e.field, "/activation_params/negative_slope");
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let z = Array::matrix(vec![1000.0, 1000.0, 0.0, -800.0, 0.0, 800.0], 2, 3).unwrap();
        let a = Activation::Softmax.forward(&z);
        assert_eq!(a.row(0)[0], a.row(0)[1]);
        assert_eq!(a.row(1)[2], 1.0);
        assert!(a.data().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn backward_matches_central_differences() {
        let z = Array::matrix(vec![0.3, -1.2, 2.0, 0.5, -0.1, 0.7], 2, 3).unwrap();
        let w = [0.7, -0.3, 1.1, 0.2, -0.9, 0.4]; // L = Σ w·a
        for act in [
            Activation::Identity,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::LeakyRelu {
                negative_slope: 0.1,
            },
            Activation::Softplus,
            Activation::Softmax,
        ] {
            let a = act.forward(&z);
            let da = z.with_data(w.to_vec()).unwrap();
            let dz = act.backward(&z, &a, &da);
            for i in 0..z.len() {
                let f = |d: f64| {
                    let mut zz = z.clone();
                    zz.data_mut()[i] += d;
                    accurate_dot(act.forward(&zz).data(), &w)
                };
                let num = (f(1e-6) - f(-1e-6)) / 2e-6;
                assert!((num - dz.data()[i]).abs() < 1e-7, "{} {i}", act.name());
            }
        }
    }
}
