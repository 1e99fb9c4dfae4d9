//! `AppState`: the limits and shared handles a request needs — config, readiness,
//! metrics, the heavy-work limiter, the rate limiter and the API keys. No compute state:
//! the service is stateless, so any replica answers any request the same way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::Config;
use super::keys::{self, KeyStore};
use super::metrics::Metrics;
use super::problem::ApiError;
use crate::compute::{Cancel, ComputeError, ErrorKind};

/// Bodies at most this large are parsed and computed on the async runtime at once
/// (microseconds of work); larger ones, and every /train, go to the blocking pool
/// under the concurrency limit.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
/// What every handler and layer shares: the config, readiness, metrics and the limiters.
/// Cloned per request (every field is an `Arc`).
pub struct AppState {
    /// The settings read at start-up.
    pub config: Arc<Config>,
    /// False from SIGTERM on: /readyz answers 503.
    pub ready: Arc<AtomicBool>,
    /// The counters and histograms GET /metrics reports.
    pub metrics: Arc<Metrics>,
    /// The limit on heavy computations at once and waiting (`--max-concurrency`, `--queue`).
    pub heavy: Arc<HeavyLimiter>,
    /// The per-IP rate limit, when `--rate-limit-per-ip` is not 0.
    pub rate: Option<Arc<RateLimiter>>,
    /// The API keys, when a keys file is configured.
    pub keys: Option<Arc<KeyStore>>,
}

impl AppState {
    /// The state of `config`; a keys file that cannot be read is an error.
    pub fn try_new(config: Config) -> Result<Self, String> {
        let keys = match &config.api_keys_file {
            None => None,
            Some(path) => Some(Arc::new(KeyStore::load(path, key_defaults(&config))?)),
        };
        Ok(Self::with_keys(config, keys))
    }

    /// As [`AppState::try_new`], but a keys file that cannot be read leaves no key valid
    /// (every API operation answers 401) and logs why — never an open server.
    pub fn new(config: Config) -> Self {
        match Self::try_new(config.clone()) {
            Ok(state) => state,
            Err(e) => {
                tracing::error!("{e}; no API key is valid");
                let keys = config
                    .api_keys_file
                    .clone()
                    .map(|p| Arc::new(KeyStore::empty(&p, key_defaults(&config))));
                Self::with_keys(config, keys)
            }
        }
    }

    fn with_keys(config: Config, keys: Option<Arc<KeyStore>>) -> Self {
        let heavy = Arc::new(HeavyLimiter::new(config.concurrency(), config.queue));
        let rate = (config.rate_limit_per_ip > 0)
            .then(|| Arc::new(RateLimiter::new(config.rate_limit_per_ip)));
        AppState {
            config: Arc::new(config),
            ready: Arc::new(AtomicBool::new(true)),
            metrics: Arc::new(Metrics::default()),
            heavy,
            rate,
            keys,
        }
    }

    /// Runs `work` with a [`Cancel`] carrying the time limit: at once for small work,
    /// else on the blocking pool under the heavy-work limit. Past the limit the answer
    /// is a 503 and the cancel flag tells the work to stop; a client that goes away
    /// drops this future, which sets the flag too.
    pub async fn compute<T, F>(&self, heavy: bool, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> Result<T, ApiError> + Send + 'static,
    {
        let secs = self.config.timeout_secs;
        if !heavy {
            return work(&Cancel::none()).map_err(|e| timed_out(e, secs));
        }
        let key_slot = key_slot()?;
        let permit = self.heavy.acquire().await?;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let flag = Arc::new(AtomicBool::new(false));
        let _stop_on_drop = SetOnDrop(flag.clone());
        let cancel = Cancel::new(Some(deadline), Some(flag.clone()));
        let task = tokio::task::spawn_blocking(move || {
            // the slots are free only when the work has really stopped
            let _permits = (permit, key_slot);
            super::priority::lower_this_thread();
            work(&cancel)
        });
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(result)) => result.map_err(|e| timed_out(e, secs)),
            Ok(Err(join)) => Err(ApiError::Internal(format!("computation failed: {join}"))),
            Err(_) => {
                flag.store(true, Ordering::Relaxed);
                Err(ApiError::TimedOut(secs))
            }
        }
    }

    /// A heavy-work slot and the time limit's deadline, for work the caller spawns
    /// itself (NDJSON streaming); the work holds the slot until it stops.
    pub async fn heavy_slot(&self) -> Result<(HeavySlot, Instant), ApiError> {
        let key = key_slot()?;
        let permit = self.heavy.acquire().await?;
        Ok((
            HeavySlot(permit, key),
            Instant::now() + Duration::from_secs(self.config.timeout_secs),
        ))
    }
}

/// A heavy computation's slot on the server, and on its key when the key has a limit.
pub struct HeavySlot(
    #[allow(dead_code)] OwnedSemaphorePermit,
    #[allow(dead_code)] Option<OwnedSemaphorePermit>,
);

/// The slot of the request's key, taken before the server's (keys.rs): a key at its
/// limit is answered 429 at once and never waits in the server's queue, so one key's
/// loop cannot fill the queue ahead of the others.
fn key_slot() -> Result<Option<OwnedSemaphorePermit>, ApiError> {
    match keys::current() {
        Some(caller) => caller.heavy_slot(),
        None => Ok(None),
    }
}

fn key_defaults(config: &Config) -> keys::Defaults {
    keys::Defaults {
        rate_limit_per_key: config.rate_limit_per_key,
        max_concurrency_per_key: config.max_concurrency_per_key,
    }
}

/// Deadline errors from compute carry the configured limit into the problem.
fn timed_out(e: ApiError, secs: u64) -> ApiError {
    match e {
        ApiError::TimedOut(_) => ApiError::TimedOut(secs),
        other => other,
    }
}

/// Maps a compute error, giving deadline errors the configured limit.
pub fn compute_error(e: ComputeError, secs: u64) -> ApiError {
    match e.kind {
        ErrorKind::DeadlineExceeded => ApiError::TimedOut(secs),
        _ => e.into(),
    }
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// At most `concurrency` heavy computations at once and `queue` waiting; beyond → 503.
pub struct HeavyLimiter {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

impl HeavyLimiter {
    /// `concurrency` computations at once, at most `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        HeavyLimiter {
            slots: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    /// A slot for one heavy computation: at once if one is free, else after waiting in the
    /// queue; [`ApiError::Overloaded`] (503) when the queue is full, and 503 once the
    /// service shuts down.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Overloaded);
        }
        let r = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        r.map_err(|_| ApiError::Unavailable("the service is shutting down".into()))
    }

    /// Heavy computations running now.
    pub fn running(&self, concurrency: usize) -> usize {
        concurrency.saturating_sub(self.slots.available_permits())
    }

    /// Heavy computations waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// A token bucket per client IP: `rate` requests per second, bursts up to `rate`.
pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second per client IP.
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` to proceed, or `Err(seconds to wait)`.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(10));
        }
        let (tokens, last) = map.entry(ip).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_rate_then_refuses() {
        let r = RateLimiter::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(r.check(ip).is_ok());
        assert!(r.check(ip).is_ok());
        assert_eq!(r.check(ip), Err(1));
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(r.check(other).is_ok());
    }

    #[tokio::test]
    async fn the_queue_overflows_into_overloaded() {
        let l = Arc::new(HeavyLimiter::new(1, 0));
        let _held = l.acquire().await.unwrap();
        assert!(matches!(l.acquire().await, Err(ApiError::Overloaded)));
    }
}
