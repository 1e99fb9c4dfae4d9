//! Prometheus text metrics: request counts and latency histograms by route template,
//! method and status; requests in flight; request body bytes; heavy work running and
//! waiting. A small registry of our own: a few atomics and one mutex-guarded map. The
//! route label comes from [`RouteTemplates`] (api/stack/route_templates.rs).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use super::stack::route_templates::RouteTemplates;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The service's counters and latency histograms, rendered as Prometheus text.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
    /// Requests being answered now.
    pub in_flight: AtomicI64,
    /// Request body bytes read so far (after gzip decoding).
    pub body_bytes: AtomicU64,
}

impl Metrics {
    /// Counts one answered request and its duration under its route, method and status.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        // look up without allocating: the few series are scanned; a new one is keyed once
        let found = map
            .iter_mut()
            .find(|((r, m, s), _)| r == route && m == method && *s == status)
            .map(|(_, s)| s);
        let s = match found {
            Some(s) => s,
            None => map
                .entry((route.to_string(), method.to_string(), status))
                .or_default(),
        };
        s.count += 1;
        s.sum += seconds;
        for (b, le) in s.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, heavy_running: usize, heavy_waiting: usize) -> String {
        let mut out = String::new();
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP losslab_http_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE losslab_http_requests_total counter\n");
        for ((route, method, status), s) in map.iter() {
            let _ = writeln!(
                out,
                "losslab_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP losslab_http_request_duration_seconds Request latency by route template, method and status.\n");
        out.push_str("# TYPE losslab_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in map.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            for (b, le) in s.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "losslab_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {b}"
                );
            }
            let _ = writeln!(
                out,
                "losslab_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "losslab_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "losslab_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(map);
        let _ = write!(
            out,
            "# HELP losslab_http_requests_in_flight Requests being served now.\n\
             # TYPE losslab_http_requests_in_flight gauge\n\
             losslab_http_requests_in_flight {}\n\
             # HELP losslab_http_request_body_bytes_total Request body bytes received (Content-Length).\n\
             # TYPE losslab_http_request_body_bytes_total counter\n\
             losslab_http_request_body_bytes_total {}\n\
             # HELP losslab_heavy_running Heavy computations running now.\n\
             # TYPE losslab_heavy_running gauge\n\
             losslab_heavy_running {heavy_running}\n\
             # HELP losslab_heavy_waiting Heavy computations waiting for a slot.\n\
             # TYPE losslab_heavy_waiting gauge\n\
             losslab_heavy_waiting {heavy_waiting}\n",
            self.in_flight.load(Ordering::Relaxed),
            self.body_bytes.load(Ordering::Relaxed),
        );
        out
    }
}
