//! NDJSON responses (`application/x-ndjson`): rows produced on the blocking pool under
//! the heavy-work limit and the time limit, each line sent as soon as it is written.
//!
//! The rules every stream follows (API.md, /train streaming):
//! - one JSON value per line, flushed per line: `X-Accel-Buffering: no` tells a proxy
//!   not to buffer, and the compression layer never compresses this content type;
//! - the last line is the summary the work sends last, or — for a failure after the status line was
//!   sent — one problem object (the status cannot change any more);
//! - a client that goes away drops the body: the work's [`Cancel`] flag is set and
//!   [`Lines::send`] returns false, so the computation stops at its next check.
//!
//! Check the request before calling [`stream`], so invalid input still gets its status.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::problem::{ApiError, problem_body};
use super::state::AppState;
use crate::compute::Cancel;

/// The content type of a stream.
pub const NDJSON: &str = "application/x-ndjson";

/// Lines buffered between the computation and the socket before the work waits.
const BUFFERED_LINES: usize = 64;

type Line = Result<Bytes, std::io::Error>;

/// Where the work writes its rows.
pub struct Lines {
    tx: mpsc::Sender<Line>,
}

impl Lines {
    /// Sends `row` as one line; false once the client has gone (stop then).
    pub fn send(&mut self, row: &impl Serialize) -> bool {
        self.tx.blocking_send(Ok(line(row))).is_ok()
    }
}

fn line(value: &impl Serialize) -> Bytes {
    // our response types serialise infallibly (numbers are finite by then)
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// A 200 NDJSON response whose lines `work` writes on the blocking pool (waiting for a
/// heavy-work slot first): its rows, then its summary; if it fails, one problem object
/// ends the stream instead.
pub async fn stream<F>(state: &AppState, work: F) -> Result<Response, ApiError>
where
    F: FnOnce(&Cancel, &mut Lines) -> Result<(), ApiError> + Send + 'static,
{
    let (permit, deadline) = state.heavy_slot().await?;
    let (tx, rx) = mpsc::channel::<Line>(BUFFERED_LINES);
    let gone = Arc::new(AtomicBool::new(false));
    let cancel = Cancel::new(Some(deadline), Some(gone.clone()));
    tokio::task::spawn_blocking(move || {
        let _permit = permit; // the slot is free only when the work has really stopped
        super::priority::lower_this_thread();
        let mut lines = Lines { tx };
        if let Err(e) = work(&cancel, &mut lines) {
            let mut problem = problem_body(&e.problem());
            problem.push(b'\n');
            let _ = lines.tx.blocking_send(Ok(Bytes::from(problem)));
        }
    });
    let body = Body::from_stream(CancelOnDrop {
        rx: ReceiverStream::new(rx),
        gone,
    });
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// The body's lines; dropping it (the client went away, or the stream ended) sets the
/// work's cancel flag.
struct CancelOnDrop {
    rx: ReceiverStream<Line>,
    gone: Arc<AtomicBool>,
}

impl Stream for CancelOnDrop {
    type Item = Line;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Line>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::api::Config;

    #[tokio::test]
    async fn rows_come_one_per_line_and_a_failure_ends_with_one_problem() {
        let state = AppState::new(Config::default());
        let res = stream(&state, |_, lines| {
            assert!(lines.send(&serde_json::json!({"row": 0})));
            assert!(lines.send(&serde_json::json!({"row": 1})));
            Err(ApiError::invalid("/x", "went wrong"))
        })
        .await
        .unwrap();
        assert_eq!(res.headers()[header::CONTENT_TYPE], NDJSON);
        assert_eq!(res.headers()["x-accel-buffering"], "no");
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], [r#"{"row":0}"#, r#"{"row":1}"#]);
        assert_eq!(lines.len(), 3, "{text}");
        let problem: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(problem["status"], 422);
        assert_eq!(problem["errors"][0]["field"], "/x");
        assert!(text.ends_with('\n'));
    }

    #[tokio::test]
    async fn a_client_that_goes_away_cancels_the_work() {
        let state = AppState::new(Config::default());
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let res = stream(&state, move |cancel, lines| {
            lines.send(&0);
            // bounded, so a regression fails below instead of hanging
            let start = Instant::now();
            while cancel.check().is_ok() && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = seen_tx.send(cancel.check().is_err());
            Ok(())
        })
        .await
        .unwrap();
        drop(res);
        let cancelled = tokio::task::spawn_blocking(move || seen_rx.recv())
            .await
            .unwrap();
        assert_eq!(cancelled, Ok(true));
    }
}
