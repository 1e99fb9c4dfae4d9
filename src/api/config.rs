//! `Config` from flags and `LOSSLAB_*` environment variables (API.md, "Limits"), read
//! once at start-up. The only place that reads the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// losslab: loss functions, their gradients and gradient-descent training runs over HTTP.
#[derive(Debug, Parser)]
#[command(name = "losslab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    /// What to do: serve (when none is named), print the spec, check health, make keys.
    pub command: Option<Command>,
    #[command(flatten)]
    /// The settings every subcommand reads (API.md's Limits).
    pub config: Config,
}

#[derive(Debug, Subcommand)]
/// The subcommands of the binary.
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Print the OpenAPI document (the same as GET /openapi.json and openapi/openapi.json).
    Openapi,
    /// Exit 0 iff GET /healthz on the configured address answers 200 within 2 s
    /// (for container health checks; needs no shell tools).
    Healthcheck,
    /// API keys for a class server (`--api-keys-file`).
    Keys {
        #[command(subcommand)]
        /// What to do with keys.
        action: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
/// The subcommands of `losslab keys`.
pub enum KeysCommand {
    /// Print a fresh random key (192 bits, URL-safe base64) and the `[[key]]` table to
    /// append to the keys file; the key itself is stored nowhere.
    New {
        /// The key's name: shown in the server's log and in its 429s, never the key.
        name: String,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
/// How the log lines are written (`--log-format`).
pub enum LogFormat {
    #[default]
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting of API.md's Limits table, by flag or env.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Listen address.
    #[arg(
        long,
        env = "LOSSLAB_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub addr: SocketAddr,
    /// Largest request body in bytes (after gzip decoding) → 413.
    #[arg(long, env = "LOSSLAB_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Largest `max_iterations` of /train → 422.
    #[arg(
        long,
        env = "LOSSLAB_MAX_ITERATIONS",
        default_value_t = 1_000_000,
        global = true
    )]
    pub max_iterations: u64,
    /// Most trace rows a /train may produce (⌊N/k⌋ + 2, checked before work) → 422.
    #[arg(
        long,
        env = "LOSSLAB_MAX_TRACE_ROWS",
        default_value_t = 100_000,
        global = true
    )]
    pub max_trace_rows: u64,
    /// Most numbers in a trace (rows × numbers per row) → 422.
    #[arg(
        long,
        env = "LOSSLAB_MAX_TRACE_NUMBERS",
        default_value_t = 10_000_000,
        global = true
    )]
    pub max_trace_numbers: u64,
    /// Most grid points of one POST /landscape (x steps × y steps) → 422 at `/y/steps`.
    #[arg(
        long,
        env = "LOSSLAB_MAX_GRID_POINTS",
        default_value_t = 250_000,
        global = true
    )]
    pub max_grid_points: u64,
    /// Wall time of one computation in seconds → 503, and the work stops.
    #[arg(
        long,
        env = "LOSSLAB_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub timeout_secs: u64,
    /// Most items in one POST /grade request → 422 at `/items`.
    #[arg(
        long,
        env = "LOSSLAB_MAX_GRADE_ITEMS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_grade_items: usize,
    /// Heavy computations at once (default: the number of cores).
    #[arg(long, env = "LOSSLAB_MAX_CONCURRENCY", global = true)]
    pub max_concurrency: Option<usize>,
    /// Heavy computations waiting for a slot; beyond it → 503.
    #[arg(long, env = "LOSSLAB_QUEUE", default_value_t = 1024, global = true)]
    pub queue: usize,
    /// Requests per second per client IP (0 = off) → 429 with Retry-After.
    #[arg(
        long,
        env = "LOSSLAB_RATE_LIMIT_PER_IP",
        default_value_t = 0,
        global = true
    )]
    pub rate_limit_per_ip: u32,
    /// Allowed CORS origins, comma-separated, or `*` (any origin, no credentials).
    #[arg(long, env = "LOSSLAB_CORS_ORIGINS", default_value = "*", global = true)]
    pub cors_origins: String,
    /// On SIGTERM: seconds /readyz answers 503 while still serving, before draining.
    #[arg(
        long,
        env = "LOSSLAB_SHUTDOWN_DELAY_SECS",
        default_value_t = 5,
        global = true
    )]
    pub shutdown_delay_secs: u64,
    /// Then: seconds in-flight requests may take to finish.
    #[arg(long, env = "LOSSLAB_GRACE_SECS", default_value_t = 35, global = true)]
    pub grace_secs: u64,
    /// Log format.
    #[arg(long, env = "LOSSLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Seconds a client has to send a request's complete headers, from the connection's
    /// start or the first byte of a next request; past it the connection is closed.
    #[arg(
        long,
        env = "LOSSLAB_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body → 408.
    #[arg(
        long,
        env = "LOSSLAB_BODY_TIMEOUT_SECS",
        default_value_t = 60,
        global = true
    )]
    pub body_timeout_secs: u64,
    /// Seconds an idle keep-alive connection (no request in flight) is kept open.
    #[arg(
        long,
        env = "LOSSLAB_IDLE_TIMEOUT_SECS",
        default_value_t = 75,
        global = true
    )]
    pub idle_timeout_secs: u64,
    /// Open connections at most; more wait in the listen backlog.
    #[arg(
        long,
        env = "LOSSLAB_MAX_CONNECTIONS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_connections: usize,
    /// API keys: a TOML file of `[[key]]` tables (name, sha256, optional per-key limits);
    /// unset = no key needed. SIGHUP reads it again.
    #[arg(long, env = "LOSSLAB_API_KEYS_FILE", global = true)]
    pub api_keys_file: Option<PathBuf>,
    /// Requests per second per API key (token bucket, bursts of the same size; 0 = off)
    /// → 429 with Retry-After. A key's `rate_limit_per_key` overrides it.
    #[arg(
        long,
        env = "LOSSLAB_RATE_LIMIT_PER_KEY",
        default_value_t = 0,
        global = true
    )]
    pub rate_limit_per_key: u32,
    /// Heavy computations at once per API key (0 = off); more → 429 with Retry-After.
    /// A key's `max_concurrency_per_key` overrides it.
    #[arg(
        long,
        env = "LOSSLAB_MAX_CONCURRENCY_PER_KEY",
        default_value_t = 0,
        global = true
    )]
    pub max_concurrency_per_key: usize,
    /// Development only: serve the playground from this directory instead of the
    /// copy embedded in the binary.
    #[arg(long, env = "LOSSLAB_STATIC_DIR", hide = true, global = true)]
    pub static_dir: Option<PathBuf>,
}

impl Config {
    /// Heavy computations allowed at once: the flag, or the number of cores.
    pub fn concurrency(&self) -> usize {
        self.max_concurrency
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            })
            .max(1)
    }
}

impl Default for Config {
    /// The defaults of API.md's Limits table (as if no flag or env were given).
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024 * 1024,
            max_iterations: 1_000_000,
            max_trace_rows: 100_000,
            max_trace_numbers: 10_000_000,
            max_grid_points: 250_000,
            timeout_secs: 30,
            max_grade_items: 10_000,
            max_concurrency: None,
            queue: 1024,
            rate_limit_per_ip: 0,
            cors_origins: "*".into(),
            shutdown_delay_secs: 5,
            grace_secs: 35,
            log_format: LogFormat::Text,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            idle_timeout_secs: 75,
            max_connections: 10_000,
            api_keys_file: None,
            rate_limit_per_key: 0,
            max_concurrency_per_key: 0,
            static_dir: None,
        }
    }
}
