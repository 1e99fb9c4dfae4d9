//! The speed-only stack: what a request passes through on its way to the routes that
//! exists only because it is faster than the plain tower/axum piece it stands for. Each
//! shortcut answers as its plain equivalent does (cors.rs and compress.rs test it header
//! for header against tower-http's layers, app.rs the route labels against axum's
//! `MatchedPath`); none of it is the service. A reader who wants the service can read the
//! plain column and skip this folder.
//!
//! Measured under the release profile (fat LTO, one codegen unit), in user-space
//! instructions per small `POST /loss/mse` (`scripts/server-instructions.sh`: callgrind,
//! wrk -c64, no `Origin`, no `Accept-Encoding`; steady to about 1%), each shortcut swapped
//! alone for its plain equivalent in a measure-only build that picks either at start-up
//! (BENCHMARKS.md, "Release profile and the speed-only stack, sixth session"):
//!
//! | file | shortcut | plain equivalent | instructions saved per request |
//! |---|---|---|---|
//! | `serve.rs` | our accept loop: hyper-util's `auto` connection under its graceful shutdown, one clone and call of the app per request | `axum::serve(listener, app).with_graceful_shutdown(..)` | none in instructions: −400 to −700 (the plain loop counts slightly fewer; 1% noise) — kept for the limits below; its gain is in time, not counted here (5% more req/s, BENCHMARKS.md, fourth session) |
//! | `cors.rs` | a request without `Origin` gets the headers tower-http's `CorsLayer` gave one such request at start | tower-http's `CorsLayer` for every request | **7,000 – 7,100** (16% of the plain stack) |
//! | `compress.rs` | a request without `Accept-Encoding` skips tower-http's `CompressionLayer` (its 6 KB body is boxed where made) | tower-http's `CompressionLayer` for every request | **2,900 – 3,000** |
//! | `edge.rs` | the edge's answer as a hand-written future (`EdgeFuture`): no box per request (the rate-limit and key layers, in the stack only when configured, do the same, not measured) | the same work in a boxed `async` block per request (what `axum::middleware::from_fn` makes, which also clones the inner stack) | **1,000 – 1,200** |
//! | `route_templates.rs` | the metrics' route label from matchit over the router's templates, so the whole stack sits around the router | the edge as `Router::layer` reading axum's `MatchedPath` (the stack then runs once per route) | **1,200 – 1,500** |
//!
//! All five plain: 47,353 instructions against 36,521 with every shortcut in that build
//! (the switch itself costs about 2,400); the service as shipped counts 34,100. Every shortcut but the accept loop
//! earns its lines by instructions; the CORS and compression ones only for clients that
//! send no `Origin` / no `Accept-Encoding` (scripts, wrk, curl — a browser sends both,
//! and then takes the plain path).
//!
//! Beyond speed, `serve.rs` owns the connection limits of API.md (header, body and idle
//! timeouts, the connection cap), which `axum::serve` cannot set.

pub mod compress;
pub mod cors;
pub mod edge;
pub mod route_templates;
pub mod serve;
