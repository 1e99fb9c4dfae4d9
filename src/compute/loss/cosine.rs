//! `cosine`: PLACEHOLDER — to be written (see API.md's table).

use super::{Input, KindInfo, Loss, Per, Terms};
use crate::compute::error::ComputeError;
use crate::compute::params::Params;

pub(super) const INFO: KindInfo = KindInfo {
    name: "cosine",
    formula: "",
    derivative: "",
    per: Per::Row,
    params: &[],
    from_logits: false,
    guards: &[],
};

#[derive(Debug)]
struct Placeholder;

pub(super) fn build(_params: &Params) -> Result<Box<dyn Loss>, ComputeError> {
    Err(ComputeError::invalid(
        "/loss",
        "cosine is not implemented yet",
    ))
}

impl Loss for Placeholder {
    fn eval(&self, _x: &Input<'_>, _out: &mut Terms) -> Result<(), ComputeError> {
        Ok(())
    }
}
