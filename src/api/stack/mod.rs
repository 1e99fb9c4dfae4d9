//! The speed-only stack: what a request passes through on its way to the routes that
//! exists only because it is faster than the plain tower/axum piece it stands for. Each
//! shortcut answers as its plain equivalent does (cors.rs and compress.rs test it header
//! for header against tower-http's layers, app.rs the route labels against axum's
//! `MatchedPath`); none of it is the service. A reader who wants the service can read the
//! plain column and skip this folder.
//!
//! Measured under the release profile (fat LTO, one codegen unit), in user-space
//! instructions per small `POST /loss/mse` (`scripts/server-instructions.sh`: callgrind,
//! wrk -c64, no `Origin`, no `Accept-Encoding`; steady to about 1%). The CORS and
//! compression rows were re-weighed in the seventh session, each shortcut swapped alone
//! for its plain layer in a build of its own; the other rows are the sixth session's
//! measure-only build that picked either at start-up (BENCHMARKS.md, "Release profile and
//! the speed-only stack, sixth session" and "Session 7: small requests against the bare
//! handler"):
//!
//! | file | shortcut | plain equivalent | instructions saved per request |
//! |---|---|---|---|
//! | `serve.rs` | our accept loop: hyper-util's `auto` connection under its graceful shutdown; one copy of the app per connection, called for each of its requests; the connection's timer moved only earlier and, with the shutdown signal, polled only when armed or fired | `axum::serve(listener, app).with_graceful_shutdown(..)` | sixth session: none in instructions (−400 to −700) — kept for the limits below and its gain in time (5% more req/s, BENCHMARKS.md, fourth session); since then the per-connection app saves **420** and the lazy timer and shutdown signal **680** |
//! | `cors.rs` | a request without `Origin` gets the headers tower-http's `CorsLayer` gave one such request at start; tower-http's future boxed | tower-http's `CorsLayer` for every request | **2,300** (seventh session; 7,000 with tower-http 0.6) |
//! | `compress.rs` | a request without `Accept-Encoding` skips tower-http's `CompressionLayer` (its 6 KB body is boxed where made, its future boxed), and gets `Vary` from one pass over the answer's headers | tower-http's `CompressionLayer` for every request | **4,200** (seventh session; of which the one-pass `Vary` 1,070) |
//! | `edge.rs` | the edge's answer as a hand-written future (`EdgeFuture`): no box per request (the rate-limit and key layers, in the stack only when configured, do the same, not measured); the made request id put into the request only for its readers | the same work in a boxed `async` block per request (what `axum::middleware::from_fn` makes, which also clones the inner stack) | **1,000 – 1,200**, and 450 for the id |
//! | `route_templates.rs` | the metrics' route label from matchit over the router's templates, so the whole stack sits around the router | the edge as `Router::layer` reading axum's `MatchedPath` (the stack then runs once per route) | **1,200 – 1,500** |
//! | app.rs, `routes::loss::post_kind` | each known kind as a static route beside `/loss/{kind}` (the same handler with its kind fixed) | `/loss/{kind}` alone | **510** (the path parameter ~800, less ~300 for the longer match) |
//!
//! Every shortcut still earns its lines by instructions; the CORS and compression ones
//! only for clients that send no `Origin` / no `Accept-Encoding` (scripts, wrk, curl — a
//! browser sends both, and then takes the plain path). The service as shipped counts
//! 29,128 instructions per small request (33,569 before the seventh session; the bare
//! axum handler of `examples/bare.rs`, 21,088).
//!
//! Beyond speed, `serve.rs` owns the connection limits of API.md (header, body and idle
//! timeouts, the connection cap), which `axum::serve` cannot set.

pub mod compress;
pub mod cors;
pub mod edge;
pub mod route_templates;
pub mod serve;
