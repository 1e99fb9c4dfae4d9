//! The accept loop: `app(state)` on a TCP listener, HTTP/1.1 or HTTP/2 (prior knowledge)
//! per connection, graceful shutdown. Owns nothing about requests — that is `app.rs`.
//!
//! Ours rather than `axum::serve`, which serves every connection with upgrade support
//! (we have no upgrades), goes through `TowerToHyperService` and a `map_request` for each
//! request, and polls one shutdown channel, shared by all connections, beside each
//! connection on every wake. Here each connection is hyper-util's `auto` connection,
//! watched by its `GracefulShutdown`, and a request is one clone and call of the app:
//! 5% more small requests per second on the bench machine, 0.4 µs less server CPU each
//! (BENCHMARKS.md, fourth session).

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use super::app::app;
use super::state::AppState;

/// Serves `app(state)` on `listener` until `shutdown` completes; then stops accepting,
/// asks every open connection to close once its in-flight requests are answered, and
/// returns when all have. The client address (`ConnectInfo`) is attached to each request
/// only when a rate limit is configured — the limiter is its one reader.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let per_ip = state.rate.is_some();
    let app = app(state);
    let builder = Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // a response is written whole, at once; a stream's chunks must not wait for an ACK
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            if per_ip {
                req.extensions_mut().insert(ConnectInfo(peer));
            }
            // always ready: no `poll_ready` needed (app.rs, tested there)
            app.clone().call(req)
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// An error from `accept`: one connection's own failure is skipped; anything else (out
/// of file descriptors, most often) is logged and the loop waits a second before trying
/// again, as `axum::serve` does, rather than spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
