//! The integration test binary: the real router in-process and over real sockets, the
//! compute core against committed reference fixtures, properties, and purity.
#![allow(clippy::unwrap_used)]

mod binary_api;
mod compute_purity;
mod errors;
mod fuzz_property;
mod grade_api;
mod grade_parallel;
mod gradient_api;
mod keys;
mod landscape_api;
mod loss_api;
mod loss_bits;
mod losses_reference;
mod openapi;
mod ops;
mod properties;
mod socket;
mod support;
mod train_api;
mod train_reference;
