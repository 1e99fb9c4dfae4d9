//! The integration test binary: the real router in-process and over real sockets.

mod errors;
mod gradient_api;
mod loss_api;
mod openapi;
mod ops;
mod socket;
mod support;
mod train_api;
mod train_reference;
