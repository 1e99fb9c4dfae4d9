//! The service version, as built: `GET /version` answers it and every response carries
//! it in `losslab-version` (stack/edge.rs). A leaf module, so both can import it from below.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
