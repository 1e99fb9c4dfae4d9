//! Parameters of a loss kind or activation: the values a client sent (`params`,
//! `activation_params`) and the specs (name, default, range, description) that both
//! validate them and describe them in the catalogue, so the two never disagree.

/// One parameter value as sent.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A number (`delta`, `log_base`, …).
    Number(f64),
    /// A flag.
    Bool(bool),
    /// A list of numbers (`class_weights`, a per-column `pos_weight`).
    Numbers(Vec<f64>),
}

/// The params object of a request, in the order sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    entries: Vec<(String, ParamValue)>,
}

impl Params {
    /// The params as sent, name by name.
    pub fn new(entries: Vec<(String, ParamValue)>) -> Self {
        Params { entries }
    }
    /// Whether none were sent.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The value sent for `name`.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// The names sent, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
    /// The same params without `name` (POST /grade's variants: weights ignored, the
    /// natural log).
    pub fn without(&self, name: &str) -> Params {
        Params {
            entries: self
                .entries
                .iter()
                .filter(|(n, _)| n != name)
                .cloned()
                .collect(),
        }
    }
    /// The same params with `name` set to `value` (POST /grade's variants: another
    /// log base).
    pub fn with(&self, name: &str, value: ParamValue) -> Params {
        let mut p = self.without(name);
        p.entries.push((name.to_string(), value));
        p
    }
}

/// A parameter's default as the catalogue shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamDefault {
    /// This number.
    Number(f64),
    /// This flag.
    Bool(bool),
    /// No default: absent means "off" (e.g. `epsilon`, `class_weights`).
    None,
}

/// One end of a parameter's range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// The bound.
    pub value: f64,
    /// Whether the bound itself is allowed.
    pub inclusive: bool,
}

impl Limit {
    /// `value` allowed (≥ or ≤).
    pub const fn incl(value: f64) -> Option<Limit> {
        Some(Limit {
            value,
            inclusive: true,
        })
    }
    /// `value` not allowed (> or <).
    pub const fn excl(value: f64) -> Option<Limit> {
        Some(Limit {
            value,
            inclusive: false,
        })
    }
}

/// A parameter: name, default, range and description. Written once per kind, used both
/// to read the request and to describe the kind in `GET /losses`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// The name in `params` (`"delta"`).
    pub name: &'static str,
    /// The value when the client sends none.
    pub default: ParamDefault,
    /// The lower end of the range, if any.
    pub min: Option<Limit>,
    /// The upper end of the range, if any.
    pub max: Option<Limit>,
    /// What it means, for the catalogue and the spec.
    pub description: &'static str,
}

impl ParamSpec {
    /// The range in words: "> 0", "in [0, 1]", "(0, 1)".
    pub fn range_text(&self) -> String {
        match (self.min, self.max) {
            (None, None) => String::new(),
            (Some(lo), None) => format!("{} {}", if lo.inclusive { ">=" } else { ">" }, lo.value),
            (None, Some(hi)) => format!("{} {}", if hi.inclusive { "<=" } else { "<" }, hi.value),
            (Some(lo), Some(hi)) => format!(
                "in {}{}, {}{}",
                if lo.inclusive { "[" } else { "(" },
                lo.value,
                hi.value,
                if hi.inclusive { "]" } else { ")" }
            ),
        }
    }

    fn in_range(&self, x: f64) -> bool {
        let lo_ok = self.min.is_none_or(|l| {
            if l.inclusive {
                x >= l.value
            } else {
                x > l.value
            }
        });
        let hi_ok = self.max.is_none_or(|h| {
            if h.inclusive {
                x <= h.value
            } else {
                x < h.value
            }
        });
        x.is_finite() && lo_ok && hi_ok
    }
}

use super::error::ComputeError;

/// A number or one number per column (e.g. bce's `pos_weight`).
#[derive(Clone, Debug, PartialEq)]
pub enum NumberOrList {
    /// One number for every column.
    Number(f64),
    /// One number per column.
    List(Vec<f64>),
}

/// Reads `params` against the specs of one kind; [`ParamReader::finish`] rejects
/// names no spec asked for, listing the valid ones.
pub struct ParamReader<'a> {
    params: &'a Params,
    /// The JSON pointer of the params object (`/params`, `/activation_params`).
    root: &'static str,
    /// What owns these params, for messages ("huber", "leaky_relu").
    owner: &'static str,
    specs: &'static [ParamSpec],
}

impl<'a> ParamReader<'a> {
    /// A reader of `params` at the pointer `root` for `owner`, against its `specs`.
    pub fn new(
        params: &'a Params,
        root: &'static str,
        owner: &'static str,
        specs: &'static [ParamSpec],
    ) -> Self {
        ParamReader {
            params,
            root,
            owner,
            specs,
        }
    }

    fn spec(&self, name: &str) -> &'static ParamSpec {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or(&UNKNOWN_SPEC)
    }

    fn field(&self, name: &str) -> String {
        format!("{}/{}", self.root, name)
    }

    fn check(&self, spec: &ParamSpec, field: String, x: f64) -> Result<f64, ComputeError> {
        if spec.in_range(x) {
            Ok(x)
        } else {
            Err(ComputeError::invalid(
                field,
                format!("{} must be {}; got {x}", spec.name, spec.range_text()),
            ))
        }
    }

    /// An optional number, range-checked; `None` when absent.
    pub fn opt_number(&self, name: &str) -> Result<Option<f64>, ComputeError> {
        let spec = self.spec(name);
        match self.params.get(name) {
            None => Ok(None),
            Some(ParamValue::Number(x)) => self.check(spec, self.field(name), *x).map(Some),
            Some(_) => Err(ComputeError::invalid(
                self.field(name),
                format!("{name} must be a number"),
            )),
        }
    }

    /// A number with the spec's default when absent.
    pub fn number(&self, name: &str) -> Result<f64, ComputeError> {
        let spec = self.spec(name);
        let default = match spec.default {
            ParamDefault::Number(x) => x,
            _ => 0.0,
        };
        Ok(self.opt_number(name)?.unwrap_or(default))
    }

    /// A boolean with the spec's default when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ComputeError> {
        let default = matches!(self.spec(name).default, ParamDefault::Bool(true));
        match self.params.get(name) {
            None => Ok(default),
            Some(ParamValue::Bool(b)) => Ok(*b),
            Some(_) => Err(ComputeError::invalid(
                self.field(name),
                format!("{name} must be true or false"),
            )),
        }
    }

    /// A list of numbers, each range-checked (error at `/params/name/i`); `None` when absent.
    pub fn opt_list(&self, name: &str) -> Result<Option<Vec<f64>>, ComputeError> {
        match self.params.get(name) {
            None => Ok(None),
            Some(ParamValue::Numbers(v)) => self.check_list(name, v).map(Some),
            Some(_) => Err(ComputeError::invalid(
                self.field(name),
                format!("{name} must be an array of numbers"),
            )),
        }
    }

    /// A number or a list of numbers, range-checked; `None` when absent.
    pub fn opt_number_or_list(&self, name: &str) -> Result<Option<NumberOrList>, ComputeError> {
        match self.params.get(name) {
            None => Ok(None),
            Some(ParamValue::Number(x)) => self
                .check(self.spec(name), self.field(name), *x)
                .map(|x| Some(NumberOrList::Number(x))),
            Some(ParamValue::Numbers(v)) => self
                .check_list(name, v)
                .map(|v| Some(NumberOrList::List(v))),
            Some(ParamValue::Bool(_)) => Err(ComputeError::invalid(
                self.field(name),
                format!("{name} must be a number or an array of numbers"),
            )),
        }
    }

    fn check_list(&self, name: &str, v: &[f64]) -> Result<Vec<f64>, ComputeError> {
        if v.is_empty() {
            return Err(ComputeError::invalid(
                self.field(name),
                format!("{name} must not be empty"),
            ));
        }
        let spec = self.spec(name);
        v.iter()
            .enumerate()
            .map(|(i, &x)| self.check(spec, format!("{}/{}/{i}", self.root, name), x))
            .collect()
    }

    /// Rejects any parameter the specs do not name, listing the valid ones.
    pub fn finish(self) -> Result<(), ComputeError> {
        for name in self.params.names() {
            if !self.specs.iter().any(|s| s.name == name) {
                let valid: Vec<&str> = self.specs.iter().map(|s| s.name).collect();
                let list = if valid.is_empty() {
                    "it takes no parameters".to_string()
                } else {
                    format!("valid: {}", valid.join(", "))
                };
                return Err(ComputeError::invalid(
                    self.field(name),
                    format!("unknown parameter {name:?} of {}; {list}", self.owner),
                ));
            }
        }
        Ok(())
    }
}

const UNKNOWN_SPEC: ParamSpec = ParamSpec {
    name: "",
    default: ParamDefault::None,
    min: None,
    max: None,
    description: "",
};

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[ParamSpec {
        name: "delta",
        default: ParamDefault::Number(1.0),
        min: Limit::excl(0.0),
        max: None,
        description: "",
    }];

    #[test]
    fn defaults_apply_and_ranges_are_enforced() {
        let p = Params::default();
        let r = ParamReader::new(&p, "/params", "huber", SPECS);
        assert_eq!(r.number("delta").unwrap(), 1.0);
        let p = Params::new(vec![("delta".into(), ParamValue::Number(0.0))]);
        let r = ParamReader::new(&p, "/params", "huber", SPECS);
        let e = r.number("delta").unwrap_err();
        assert_eq!(e.field, "/params/delta");
        assert!(e.message.contains("> 0"), "{}", e.message);
    }

    #[test]
    fn unknown_params_are_named_with_the_valid_ones() {
        let p = Params::new(vec![("beta".into(), ParamValue::Number(1.0))]);
        let e = ParamReader::new(&p, "/params", "huber", SPECS)
            .finish()
            .unwrap_err();
        assert_eq!(e.field, "/params/beta");
        assert!(e.message.contains("delta"));
    }
}
