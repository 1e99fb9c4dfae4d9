//! The accept loop: `app(state)` on a TCP listener, HTTP/1.1 or HTTP/2 (prior knowledge)
//! per connection, the connection cap, the slow-client and idle timeouts, and graceful
//! shutdown. Owns nothing about requests — that is `app.rs` (the body timeout, which needs
//! a request, is the extractor's: extract.rs).
//!
//! Ours rather than `axum::serve`, which serves every connection with upgrade support
//! (we have no upgrades), goes through `TowerToHyperService` and a `map_request` for each
//! request, and polls one shutdown channel, shared by all connections, beside each
//! connection on every wake. Here each connection is hyper-util's `auto` connection and
//! a request is one call of the connection's copy of the app: 5% more small requests per
//! second on the bench machine, 0.4 µs less server CPU each (BENCHMARKS.md, fourth
//! session), and no clone of the stack per request (seventh session).
//!
//! Timeouts (API.md, Limits), kept by each connection's [`Clock`] rather than hyper's own
//! `header_read_timeout`: hyper starts that timer whenever it waits for a request head, so
//! it also cuts idle keep-alive connections at the header timeout (10 s, not 75 s), and
//! hyper-util's `auto` connection runs no timer at all while it reads the first bytes to
//! tell HTTP/1.1 from HTTP/2 — a client that sends three bytes was held for ever.
//! - headers: complete within `--header-timeout-secs` of the connection's start (its first
//!   request) or of the first byte of a next request (HTTP/1.1); else the connection is
//!   dropped — there is nothing to answer yet;
//! - idle: no request in flight for `--idle-timeout-secs` → a graceful close (HTTP/2 sends
//!   GOAWAY);
//! - at most `--max-connections` open: the loop takes a permit before it accepts, so the
//!   rest wait in the kernel's listen backlog and are served as connections close.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::api::app::app;
use crate::api::state::AppState;

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
    let limits = Timeouts::from_config(&state.config);
    let cap = Arc::new(Semaphore::new(state.config.max_connections.max(1)));
    let app = app(state);
    let builder = builder(&limits);
    // every connection holds a receiver; `closed()` resolves when the last one is gone
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // a free slot first: while the cap is reached, new connections wait in the backlog
        let permit = tokio::select! {
            permit = cap.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
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
        let clock = Arc::new(Clock::new(limits));
        // the connection's own copy of the app serves each of its requests in turn: hyper
        // calls a connection's service from the connection's task, one call at a time
        // (HTTP/2 too: its streams' futures run elsewhere, their calls do not), so the
        // stack is cloned once per connection, not once per request
        let own = RefCell::new(app.clone());
        let app = app.clone();
        let requests = clock.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            if per_ip {
                req.extensions_mut().insert(ConnectInfo(peer));
            }
            let in_flight = InFlight::start(requests.clone());
            // always ready: no `poll_ready` needed (app.rs, tested there)
            let answer = match own.try_borrow_mut() {
                Ok(mut own) => own.call(req),
                // not reached (no call runs inside another); a clone rather than a panic
                Err(_) => app.clone().call(req),
            };
            async move {
                let res = answer.await?;
                Ok::<_, std::convert::Infallible>(res.map(|body| Tracked { body, in_flight }))
            }
        });
        let io = TokioIo::new(ClockedIo {
            io: stream,
            clock: clock.clone(),
        });
        let conn = builder.serve_connection(io, service).into_owned();
        let conn = Watched::new(conn, clock, stop_rx.clone());
        tokio::spawn(async move {
            let _permit = permit; // the slot is free when the connection is gone
            match conn.await {
                Ok(Ended::Closed) => {}
                Ok(Ended::HeaderTimeout) => {
                    tracing::debug!(%peer, "connection closed: request headers not complete in time")
                }
                Err(e) => tracing::trace!(%peer, "connection ended: {e}"),
            }
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
    Ok(())
}

/// The connection builder: HTTP/1.1 without hyper's header timer (the [`Clock`] keeps
/// it), HTTP/2 with keep-alive pings, so a peer that stops answering while streams are
/// open is dropped after the header timeout.
fn builder(limits: &Timeouts) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle))
        .keep_alive_timeout(limits.header);
    builder
}

/// Lists the 408 of the body timeout on every operation that takes a body.
pub fn declare_body_timeout(api: &mut utoipa::openapi::OpenApi) {
    let timeout = crate::api::keys::problem_response(
        "The whole request body did not arrive within the body timeout \
         (--body-timeout-secs); the connection is closed",
        None,
    );
    for item in api.paths.paths.values_mut() {
        for op in [item.post.as_mut(), item.put.as_mut(), item.patch.as_mut()]
            .into_iter()
            .flatten()
        {
            if op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("408".into())
                    .or_insert_with(|| timeout.clone());
            }
        }
    }
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

/// The connection timeouts of the Limits table.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

impl Timeouts {
    fn from_config(c: &crate::api::Config) -> Self {
        // zero would close every connection before its first byte: at least 1 s
        Timeouts {
            header: Duration::from_secs(c.header_timeout_secs.max(1)),
            idle: Duration::from_secs(c.idle_timeout_secs.max(1)),
        }
    }
}

/// "No time recorded" in the clock's millisecond fields.
const NONE: u64 = u64::MAX;

/// One connection's timing state, shared by its IO (first bytes), its service (requests
/// in flight) and its [`Watched`] future (the deadline). Milliseconds since `start`, in
/// atomics: HTTP/2 answers each request on a task of its own.
struct Clock {
    start: Instant,
    limits: Timeouts,
    /// Requests whose answer has not been sent whole (the body is dropped when it has).
    in_flight: AtomicU32,
    /// When the head of the next request began: the connection's start for the first
    /// one, then the first byte read while no request was in flight; NONE once dispatched.
    head_since: AtomicU64,
    /// When the last request in flight was answered (NONE before any was).
    idle_since: AtomicU64,
    /// An HTTP/2 connection (its first bytes are the preface): after the first request,
    /// bytes while idle (PING, SETTINGS) start no header deadline.
    h2: AtomicBool,
    /// Whether the first read was seen.
    first_read: AtomicBool,
}

/// Which deadline a connection is under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request head is arriving: past the deadline the connection is dropped.
    Head,
    /// Nothing in flight: past the deadline the connection is closed gracefully.
    Idle,
}

impl Clock {
    fn new(limits: Timeouts) -> Self {
        Clock {
            start: Instant::now(),
            limits,
            in_flight: AtomicU32::new(0),
            head_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(NONE),
            h2: AtomicBool::new(false),
            first_read: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Bytes were read: the first ones tell HTTP/2; a byte while nothing is in flight
    /// starts the next request head (HTTP/1.1).
    fn read(&self, first_bytes: &[u8]) {
        if !self.first_read.load(Ordering::Relaxed) {
            self.first_read.store(true, Ordering::Relaxed);
            self.h2
                .store(first_bytes.starts_with(b"PRI "), Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
            && !self.h2.load(Ordering::Relaxed)
        {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// The deadline now and what happens at it; `None` while a request is in flight.
    fn deadline(&self) -> Option<(Instant, Phase)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let at = |ms: u64, limit: Duration| self.start + Duration::from_millis(ms) + limit;
        match self.head_since.load(Ordering::Relaxed) {
            NONE => {
                let idle = self.idle_since.load(Ordering::Relaxed);
                let idle = if idle == NONE { 0 } else { idle };
                Some((at(idle, self.limits.idle), Phase::Idle))
            }
            head => Some((at(head, self.limits.header), Phase::Head)),
        }
    }
}

/// A request in flight on its connection, until its answer's body is dropped.
struct InFlight(Arc<Clock>);

impl InFlight {
    fn start(clock: Arc<Clock>) -> Self {
        clock.in_flight.fetch_add(1, Ordering::AcqRel);
        clock.head_since.store(NONE, Ordering::Relaxed);
        InFlight(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since.store(self.0.now_ms(), Ordering::Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// The app's response body, holding its request's [`InFlight`] until it is dropped
    /// (sent whole, or abandoned): a long NDJSON stream is not an idle connection.
    struct Tracked<B> {
        #[pin]
        body: B,
        in_flight: InFlight,
    }
}

impl<B: HttpBody> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The TCP stream, telling the connection's clock when bytes arrive.
    struct ClockedIo {
        #[pin]
        io: TcpStream,
        clock: Arc<Clock>,
    }
}

impl AsyncRead for ClockedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.io.poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.read(&buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for ClockedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

type ConnError = Box<dyn std::error::Error + Send + Sync>;

/// A connection that can be asked to finish its requests and close.
trait GracefulClose: Future<Output = Result<(), ConnError>> {
    fn close(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulClose
    for hyper_util::server::conn::auto::Connection<'static, I, S, TokioExecutor>
where
    Self: Future<Output = Result<(), ConnError>>,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<ConnError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<ConnError>,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// How a watched connection ended without an error.
enum Ended {
    Closed,
    HeaderTimeout,
}

pin_project_lite::pin_project! {
    /// A connection under its clock's deadline and the server's shutdown signal.
    ///
    /// Both are looked at cheaply on the connection's every wake (each request wakes it a
    /// few times): the timer is only ever moved *earlier* — a later deadline (the idle
    /// time after an answer, the next request's head) is taken up when the timer fires,
    /// once per timeout rather than on each request — and it and the shutdown signal are
    /// polled only when armed anew or when they have fired (an atomic read each): once
    /// polled, each holds the connection task's waker, which stays the same for the
    /// task's life.
    struct Watched<C> {
        #[pin]
        conn: C,
        #[pin]
        timer: Sleep,
        armed: Instant,
        // the timer was polled since it was armed: it will wake the task when it fires
        timer_polled: bool,
        clock: Arc<Clock>,
        stop: Pin<Box<dyn Future<Output = ()> + Send>>,
        // held until the connection is gone: `serve` waits for every receiver to drop;
        // its `has_changed` says the server stops (a value sent, or the sender gone)
        alive: watch::Receiver<bool>,
        stop_polled: bool,
        closing: bool,
    }
}

impl<C: GracefulClose> Watched<C> {
    fn new(conn: C, clock: Arc<Clock>, alive: watch::Receiver<bool>) -> Self {
        let armed = clock.start + clock.limits.header;
        let mut stop = alive.clone();
        Watched {
            conn,
            timer: tokio::time::sleep_until(armed),
            armed,
            timer_polled: false,
            clock,
            // resolves when the server stops (or is gone)
            stop: Box::pin(async move {
                while !*stop.borrow_and_update() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            }),
            alive,
            stop_polled: false,
            closing: false,
        }
    }
}

impl<C: GracefulClose> Future for Watched<C> {
    type Output = Result<Ended, ConnError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Poll::Ready(r) = this.conn.as_mut().poll(cx) {
                return Poll::Ready(r.map(|()| Ended::Closed));
            }
            if !*this.closing
                && (!*this.stop_polled || !matches!(this.alive.has_changed(), Ok(false)))
            {
                *this.stop_polled = true;
                if this.stop.as_mut().poll(cx).is_ready() {
                    *this.closing = true;
                    this.conn.as_mut().close();
                    continue;
                }
            }
            if *this.closing {
                // hyper finishes what is in flight, then ends the connection
                return Poll::Pending;
            }
            // a deadline earlier than the timer's (a request head begun on an idle
            // connection) re-arms it; a later one waits for it to fire
            if let Some((at, _)) = this.clock.deadline()
                && at < *this.armed
            {
                *this.armed = at;
                this.timer.as_mut().reset(at);
                *this.timer_polled = false;
            }
            if *this.timer_polled && !this.timer.is_elapsed() {
                return Poll::Pending;
            }
            *this.timer_polled = true;
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // fired: act only if the deadline, looked at again, has really passed (a
            // request may have begun or ended since); else the timer is armed at it
            let now = Instant::now();
            let next = match this.clock.deadline() {
                Some((at, Phase::Head)) if at <= now => {
                    return Poll::Ready(Ok(Ended::HeaderTimeout));
                }
                Some((at, Phase::Idle)) if at <= now => {
                    *this.closing = true;
                    this.conn.as_mut().close();
                    continue;
                }
                Some((at, _)) => at,
                // in flight: look again after the idle timeout (HTTP/2 answers on other
                // tasks, which do not wake this one when they finish)
                None => now + this.clock.limits.idle,
            };
            *this.armed = next;
            this.timer.as_mut().reset(next);
            *this.timer_polled = false;
        }
    }
}
