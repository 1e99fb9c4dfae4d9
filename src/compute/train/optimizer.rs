//! Optimizers: torch.optim's update rules (torch 2.x, the single-tensor CPU path, no
//! weight decay, dampening 0, `maximize` false), with the optimizer state an explicit
//! value passed into [`Optimizer::step`] and returned from it.
//!
//! With θ the trainable parameters, g their gradient, lr the learning rate and t the
//! number of the step (1 for the first):
//! - `sgd`: θ ← θ − lr·g
//! - `momentum`: b ← g on the first step, else b ← μ·b + g; θ ← θ − lr·b
//! - `nesterov`: b as `momentum`; θ ← θ − lr·(g + μ·b)
//! - `adagrad`: s ← s + g·g; θ ← θ − (lr·g)/(√s + ε)
//! - `rmsprop`: v ← α·v + ((1 − α)·g)·g; θ ← θ − (lr·g)/(√v + ε)
//! - `adam`: m ← lerp(m, g, 1 − β₁); v ← β₂·v + ((1 − β₂)·g)·g;
//!   θ ← θ − ((lr/bc₁)·m)/(√v/√bc₂ + ε), bcᵢ = 1 − βᵢᵗ
//!
//! The operation order is torch's: `addcdiv_(t1, t2, value)` computes `p + (value·t1)/t2`,
//! `addcmul_` computes `p + (value·t1)·t2`, and `lerp_(end, w)` computes
//! `start + w·(end − start)` for |w| < ½, else `end − (end − start)·(1 − w)`.

use crate::compute::error::ComputeError;
use crate::compute::params::{Limit, ParamDefault, ParamReader, ParamSpec, Params};

/// An optimizer with its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// p ← p − lr·g.
    Sgd,
    /// b ← μ·b + g; p ← p − lr·b (torch's SGD with momentum).
    Momentum {
        /// μ (default 0.9).
        momentum: f64,
    },
    /// b ← μ·b + g; p ← p − lr·(g + μ·b) (torch's SGD with `nesterov`).
    Nesterov {
        /// μ (default 0.9).
        momentum: f64,
    },
    /// s ← s + g²; p ← p − lr·g / (√s + ε).
    Adagrad {
        /// ε (default 1e-10).
        epsilon: f64,
    },
    /// v ← α·v + (1 − α)·g²; p ← p − lr·g / (√v + ε).
    Rmsprop {
        /// α (default 0.99).
        alpha: f64,
        /// ε (default 1e-8).
        epsilon: f64,
    },
    /// torch's Adam: the moments m and v with bias correction.
    Adam {
        /// β₁, the decay of m (default 0.9).
        beta1: f64,
        /// β₂, the decay of v (default 0.999).
        beta2: f64,
        /// ε (default 1e-8).
        epsilon: f64,
    },
}

/// The optimizer kinds, in API.md's order. Each is described once, by
/// [`OptimizerKind::info`]; every match on a kind is exhaustive, so a new kind does not
/// compile until each place says what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `"sgd"`: plain gradient descent.
    Sgd,
    /// `"momentum"`: heavy-ball momentum.
    Momentum,
    /// `"nesterov"`: Nesterov momentum.
    Nesterov,
    /// `"adagrad"`.
    Adagrad,
    /// `"rmsprop"`.
    Rmsprop,
    /// `"adam"`.
    Adam,
}

/// An optimizer's catalogue entry (GET /losses → `optimizers`).
#[derive(Clone, Copy, Debug)]
pub struct OptimizerInfo {
    /// The API name.
    pub kind: &'static str,
    /// Its settings (the fields of the optimizer object) with defaults and ranges.
    pub params: &'static [ParamSpec],
}

impl OptimizerKind {
    /// Every kind, in API.md's order.
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::Adagrad,
        OptimizerKind::Rmsprop,
        OptimizerKind::Adam,
    ];

    /// The kind's name and settings: the table the parser, the catalogue and the
    /// request schema read.
    pub const fn info(self) -> OptimizerInfo {
        let (kind, params): (&str, &[ParamSpec]) = match self {
            OptimizerKind::Sgd => ("sgd", &[]),
            OptimizerKind::Momentum => ("momentum", &[MOMENTUM]),
            OptimizerKind::Nesterov => ("nesterov", &[NESTEROV_MOMENTUM]),
            OptimizerKind::Adagrad => ("adagrad", &[ADAGRAD_EPSILON]),
            OptimizerKind::Rmsprop => ("rmsprop", &[RMSPROP_ALPHA, RMSPROP_EPSILON]),
            OptimizerKind::Adam => ("adam", &[ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON]),
        };
        OptimizerInfo { kind, params }
    }

    /// The API name.
    pub const fn name(self) -> &'static str {
        self.info().kind
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every field name an optimizer object may carry besides `kind`, each once, in the
    /// table's order.
    pub fn field_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for p in OPTIMIZERS.iter().flat_map(|o| o.params) {
            if !names.contains(&p.name) {
                names.push(p.name);
            }
        }
        names
    }
}

const MOMENTUM: ParamSpec = ParamSpec {
    name: "momentum",
    default: ParamDefault::Number(0.9),
    min: Limit::incl(0.0),
    max: None,
    description: "Momentum factor μ (torch.optim.SGD's momentum, dampening 0): b = μ·b + g, the first step b = g.",
};

const NESTEROV_MOMENTUM: ParamSpec = ParamSpec {
    name: "momentum",
    default: ParamDefault::Number(0.9),
    min: Limit::excl(0.0),
    max: None,
    description: "Momentum factor μ (torch.optim.SGD with nesterov=True, which needs μ > 0): the step is g + μ·b.",
};

const ADAGRAD_EPSILON: ParamSpec = ParamSpec {
    name: "epsilon",
    default: ParamDefault::Number(1e-10),
    min: Limit::excl(0.0),
    max: None,
    description: "Added to √(sum of g²) in the denominator (torch.optim.Adagrad's eps).",
};

const RMSPROP_ALPHA: ParamSpec = ParamSpec {
    name: "alpha",
    default: ParamDefault::Number(0.99),
    min: Limit::incl(0.0),
    max: Limit::incl(1.0),
    description: "Smoothing constant of the running average of g² (torch.optim.RMSprop's alpha).",
};

const RMSPROP_EPSILON: ParamSpec = ParamSpec {
    name: "epsilon",
    default: ParamDefault::Number(1e-8),
    min: Limit::excl(0.0),
    max: None,
    description: "Added to √v in the denominator (torch.optim.RMSprop's eps).",
};

const ADAM_BETA1: ParamSpec = ParamSpec {
    name: "beta1",
    default: ParamDefault::Number(0.9),
    min: Limit::incl(0.0),
    max: Limit::excl(1.0),
    description: "Decay rate of the running average of g (torch.optim.Adam's betas[0]).",
};

const ADAM_BETA2: ParamSpec = ParamSpec {
    name: "beta2",
    default: ParamDefault::Number(0.999),
    min: Limit::incl(0.0),
    max: Limit::excl(1.0),
    description: "Decay rate of the running average of g² (torch.optim.Adam's betas[1]).",
};

const ADAM_EPSILON: ParamSpec = ParamSpec {
    name: "epsilon",
    default: ParamDefault::Number(1e-8),
    min: Limit::excl(0.0),
    max: None,
    description: "Added to the bias-corrected √v in the denominator (torch.optim.Adam's eps).",
};

/// Every optimizer kind with its params, in API.md's order (from [`OptimizerKind::info`]).
pub const OPTIMIZERS: [OptimizerInfo; 6] = {
    let mut out = [OptimizerKind::Sgd.info(); 6];
    let mut i = 0;
    while i < out.len() {
        out[i] = OptimizerKind::ALL[i].info();
        i += 1;
    }
    out
};

/// The optimizer's running state: the step count and up to two buffers, one number
/// per trainable parameter (momentum buffer b; Adagrad's sum s; RMSprop's v; Adam's m
/// and v). It is moved into [`Optimizer::step`] and moved out again: no allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// Updates made so far (torch's `step`).
    pub step: u64,
    /// The first buffer (momentum's b, Adagrad's s, RMSprop's v, Adam's m); empty for SGD.
    pub first: Vec<f64>,
    /// The second buffer (Adam's v); empty for the others.
    pub second: Vec<f64>,
}

impl Optimizer {
    /// Parses an optimizer object: its `kind` and `fields` (the object's other fields).
    /// `root` is the object's JSON pointer (`/optimizer`). An unknown kind is an error
    /// at `{root}/kind` listing the valid kinds; an unknown or out-of-range field is an
    /// error at `{root}/name`.
    pub fn parse(kind: &str, fields: &Params, root: &'static str) -> Result<Self, ComputeError> {
        match OptimizerKind::parse(kind) {
            Some(k) => Self::with_fields(k, fields, root),
            None => Err(unknown_kind(kind, format!("{root}/kind"))),
        }
    }

    /// Parses a bare kind (`"adam"`: every setting at its default) given at `root`; an
    /// unknown kind is an error at `root` itself.
    pub fn parse_bare(kind: &str, root: &'static str) -> Result<Self, ComputeError> {
        match OptimizerKind::parse(kind) {
            Some(k) => Self::with_fields(k, &Params::default(), root),
            None => Err(unknown_kind(kind, root.to_string())),
        }
    }

    fn with_fields(
        kind: OptimizerKind,
        fields: &Params,
        root: &'static str,
    ) -> Result<Self, ComputeError> {
        let info = kind.info();
        let r = ParamReader::new(fields, root, info.kind, info.params);
        let opt = match kind {
            OptimizerKind::Sgd => Optimizer::Sgd,
            OptimizerKind::Momentum => Optimizer::Momentum {
                momentum: r.number("momentum")?,
            },
            OptimizerKind::Nesterov => Optimizer::Nesterov {
                momentum: r.number("momentum")?,
            },
            OptimizerKind::Adagrad => Optimizer::Adagrad {
                epsilon: r.number("epsilon")?,
            },
            OptimizerKind::Rmsprop => Optimizer::Rmsprop {
                alpha: r.number("alpha")?,
                epsilon: r.number("epsilon")?,
            },
            OptimizerKind::Adam => Optimizer::Adam {
                beta1: r.number("beta1")?,
                beta2: r.number("beta2")?,
                epsilon: r.number("epsilon")?,
            },
        };
        r.finish()?;
        Ok(opt)
    }

    /// The kind.
    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Sgd => OptimizerKind::Sgd,
            Optimizer::Momentum { .. } => OptimizerKind::Momentum,
            Optimizer::Nesterov { .. } => OptimizerKind::Nesterov,
            Optimizer::Adagrad { .. } => OptimizerKind::Adagrad,
            Optimizer::Rmsprop { .. } => OptimizerKind::Rmsprop,
            Optimizer::Adam { .. } => OptimizerKind::Adam,
        }
    }

    /// The initial state for `len` trainable parameters (buffers at zero, as torch).
    pub fn init_state(&self, len: usize) -> OptimizerState {
        let buffers = match self {
            Optimizer::Sgd => 0,
            Optimizer::Momentum { .. }
            | Optimizer::Nesterov { .. }
            | Optimizer::Adagrad { .. }
            | Optimizer::Rmsprop { .. } => 1,
            Optimizer::Adam { .. } => 2,
        };
        OptimizerState {
            step: 0,
            first: vec![0.0; if buffers >= 1 { len } else { 0 }],
            second: vec![0.0; if buffers >= 2 { len } else { 0 }],
        }
    }

    /// One update: writes the new parameters into `out` from `params` and their
    /// gradient `grads` (all the same length as the state's buffers) and returns the
    /// new state. `params` is left untouched, so the caller keeps the previous state.
    #[inline(always)]
    pub fn step(
        &self,
        lr: f64,
        params: &[f64],
        grads: &[f64],
        out: &mut [f64],
        mut state: OptimizerState,
    ) -> OptimizerState {
        let first_step = state.step == 0;
        state.step += 1;
        let it = out.iter_mut().zip(params).zip(grads);
        match *self {
            Optimizer::Sgd => {
                for ((o, &p), &g) in it {
                    *o = p - lr * g;
                }
            }
            Optimizer::Momentum { momentum } | Optimizer::Nesterov { momentum } => {
                let nesterov = matches!(self, Optimizer::Nesterov { .. });
                for (((o, &p), &g), b) in it.zip(state.first.iter_mut()) {
                    // torch clones the gradient into the buffer on the first step
                    *b = if first_step { g } else { *b * momentum + g };
                    let d = if nesterov { g + momentum * *b } else { *b };
                    *o = p - lr * d;
                }
            }
            Optimizer::Adagrad { epsilon } => {
                for (((o, &p), &g), s) in it.zip(state.first.iter_mut()) {
                    *s += g * g;
                    *o = p - (lr * g) / (s.sqrt() + epsilon);
                }
            }
            Optimizer::Rmsprop { alpha, epsilon } => {
                for (((o, &p), &g), v) in it.zip(state.first.iter_mut()) {
                    *v = *v * alpha + ((1.0 - alpha) * g) * g;
                    *o = p - (lr * g) / (v.sqrt() + epsilon);
                }
            }
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                // torch: `beta ** step` on Python floats (C pow), `bias_correction2 ** 0.5`
                let t = state.step as f64;
                let bc1 = 1.0 - beta1.powf(t);
                let bc2_sqrt = (1.0 - beta2.powf(t)).sqrt();
                let step_size = lr / bc1;
                let w = 1.0 - beta1;
                for ((((o, &p), &g), m), v) in
                    it.zip(state.first.iter_mut()).zip(state.second.iter_mut())
                {
                    *m = lerp(*m, g, w);
                    *v = *v * beta2 + ((1.0 - beta2) * g) * g;
                    let denom = v.sqrt() / bc2_sqrt + epsilon;
                    *o = p - (step_size * *m) / denom;
                }
            }
        }
        state
    }
}

/// An unknown kind, at `field`, with the valid ones.
fn unknown_kind(kind: &str, field: String) -> ComputeError {
    let valid: Vec<&str> = OPTIMIZERS.iter().map(|i| i.kind).collect();
    ComputeError::invalid(
        field,
        format!("unknown optimizer {kind:?}; valid: {}", valid.join(", ")),
    )
}

/// torch's `lerp(start, end, weight)`: the two-sided form keeps it exact at both ends.
#[inline]
fn lerp(start: f64, end: f64, weight: f64) -> f64 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::params::ParamValue;

    fn fields(pairs: &[(&str, f64)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), ParamValue::Number(*v)))
                .collect(),
        )
    }

    #[test]
    fn a_bare_kind_takes_torchs_defaults() {
        let none = Params::default();
        assert_eq!(
            Optimizer::parse("adam", &none, "/optimizer").unwrap(),
            Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8
            }
        );
        assert_eq!(
            Optimizer::parse("rmsprop", &none, "/optimizer").unwrap(),
            Optimizer::Rmsprop {
                alpha: 0.99,
                epsilon: 1e-8
            }
        );
        assert_eq!(
            Optimizer::parse("adagrad", &none, "/optimizer").unwrap(),
            Optimizer::Adagrad { epsilon: 1e-10 }
        );
        assert_eq!(
            Optimizer::parse("nesterov", &none, "/optimizer").unwrap(),
            Optimizer::Nesterov { momentum: 0.9 }
        );
    }

    #[test]
    fn an_unknown_kind_is_named_with_the_valid_ones() {
        let e = Optimizer::parse("lbfgs", &Params::default(), "/optimizer").unwrap_err();
        assert_eq!(e.field, "/optimizer/kind");
        assert!(e.message.contains("rmsprop"), "{}", e.message);
        let e = Optimizer::parse("lbfgs", &fields(&[("momentum", 0.5)]), "/optimizer").unwrap_err();
        assert_eq!(e.field, "/optimizer/kind");
    }

    #[test]
    fn unknown_and_out_of_range_fields_are_named() {
        let e = Optimizer::parse("sgd", &fields(&[("momentum", 0.5)]), "/optimizer").unwrap_err();
        assert_eq!(e.field, "/optimizer/momentum");
        let e = Optimizer::parse("adam", &fields(&[("beta1", 1.0)]), "/optimizer").unwrap_err();
        assert_eq!(e.field, "/optimizer/beta1");
        let e =
            Optimizer::parse("nesterov", &fields(&[("momentum", 0.0)]), "/optimizer").unwrap_err();
        assert_eq!(e.field, "/optimizer/momentum");
        assert!(Optimizer::parse("momentum", &fields(&[("momentum", 0.0)]), "/optimizer").is_ok());
    }

    #[test]
    fn the_catalogue_lists_every_kind_parse_accepts() {
        for info in OPTIMIZERS {
            let opt = Optimizer::parse(info.kind, &Params::default(), "/optimizer").unwrap();
            assert_eq!(opt.kind().name(), info.kind);
            assert_eq!(Optimizer::parse_bare(info.kind, "/optimizer"), Ok(opt));
        }
        for (i, k) in OptimizerKind::ALL.into_iter().enumerate() {
            assert_eq!(OptimizerKind::parse(OPTIMIZERS[i].kind), Some(k));
        }
    }

    #[test]
    fn a_bare_unknown_kind_is_named_at_the_root() {
        let e = Optimizer::parse_bare("adamw", "/optimizer").unwrap_err();
        assert_eq!(e.field, "/optimizer");
        assert!(e.message.contains("nesterov"), "{}", e.message);
    }

    #[test]
    fn the_field_names_are_every_setting_once() {
        assert_eq!(
            OptimizerKind::field_names(),
            ["momentum", "epsilon", "alpha", "beta1", "beta2"]
        );
    }

    /// Two steps with g = 1 then g = 2 on θ = 1, lr = 0.1, hand-derived from torch's rules.
    fn two_steps(opt: Optimizer) -> f64 {
        let mut state = opt.init_state(1);
        let mut p = [1.0];
        for g in [1.0, 2.0] {
            let mut out = [0.0];
            state = opt.step(0.1, &p, &[g], &mut out, state);
            p = out;
        }
        p[0]
    }

    #[test]
    fn updates_follow_torchs_rules_by_hand() {
        // sgd: 1 − 0.1·1 − 0.1·2
        assert_eq!(two_steps(Optimizer::Sgd), 1.0 - 0.1 - 0.1 * 2.0);
        // momentum 0.5: b = 1, then b = 0.5 + 2 = 2.5
        assert_eq!(
            two_steps(Optimizer::Momentum { momentum: 0.5 }),
            (1.0 - 0.1) - 0.1 * 2.5
        );
        // nesterov 0.5: d = 1 + 0.5, then d = 2 + 0.5·2.5 = 3.25
        assert_eq!(
            two_steps(Optimizer::Nesterov { momentum: 0.5 }),
            (1.0 - 0.1 * 1.5) - 0.1 * 3.25
        );
        // adagrad (eps 0 in the formula; 1e-300 is below every ulp here): s = 1, then 5
        let p = two_steps(Optimizer::Adagrad { epsilon: 1e-300 });
        assert!((p - (1.0 - 0.1 - 0.2 / 5f64.sqrt())).abs() < 1e-16);
        // adam's first step moves every parameter by lr·g/(|g| + ε·…) ≈ lr
        let opt = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        };
        let mut out = [0.0];
        let s = opt.step(0.1, &[1.0], &[3.0], &mut out, opt.init_state(1));
        assert_eq!(s.step, 1);
        assert!((out[0] - 0.9).abs() < 1e-8, "{}", out[0]);
    }

    #[test]
    fn lerp_matches_torchs_two_sided_form() {
        assert_eq!(lerp(2.0, 4.0, 0.25), 2.5);
        assert_eq!(lerp(2.0, 4.0, 0.75), 3.5);
        assert_eq!(lerp(0.0, 3.0, 1.0), 3.0);
    }
}
