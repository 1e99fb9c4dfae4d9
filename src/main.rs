//! The `losslab` binary: config, telemetry, `serve(listener, state)` with graceful shutdown,
//! SIGHUP (reload the API keys), `losslab keys new NAME`, and heavy work's lower CPU
//! priority (rayon's pool; api/priority.rs).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use losslab::AppState;
use losslab::api::config::{Cli, Command, Config, KeysCommand, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            print!("{}", losslab::api::app::spec_json());
            ExitCode::SUCCESS
        }
        Some(Command::Healthcheck) => healthcheck(&cli.config),
        Some(Command::Keys {
            action: KeysCommand::New { name },
        }) => match losslab::api::keys::new_key_text(&name) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("losslab keys new: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Serve) | None => serve(cli.config),
    }
}

fn serve(config: Config) -> ExitCode {
    init_tracing(config.log_format);
    // heavy work yields the CPU to the async workers (api/priority.rs)
    if !losslab::api::priority::lower_rayon_pool() {
        tracing::warn!("rayon's pool was already built: /landscape runs at normal priority");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("losslab: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(addr = %config.addr, "cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (delay, grace) = (config.shutdown_delay_secs, config.grace_secs);
        let state = match AppState::try_new(config) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(keys) = state.keys.clone() {
            tracing::info!(file = %keys.path().display(), keys = keys.len(), "API keys needed");
            tokio::spawn(reload_keys_on_sighup(keys));
        }
        let ready = state.ready.clone();
        tracing::info!(addr = %listener.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()),
            version = env!("CARGO_PKG_VERSION"), "losslab listening");
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown_signal().await;
            // unready at once; keep serving while load balancers notice
            ready.store(false, Ordering::Relaxed);
            tracing::info!(
                delay,
                grace,
                "shutdown: /readyz is 503; serving for the delay"
            );
            tokio::time::sleep(Duration::from_secs(delay)).await;
            tracing::info!("shutdown: draining in-flight requests");
            let _ = draining_tx.send(());
        };
        let server = losslab::api::serve::serve(listener, state, shutdown);
        let grace_over = async move {
            if draining_rx.await.is_ok() {
                tokio::time::sleep(Duration::from_secs(grace)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = server => {
                if let Err(e) = r {
                    tracing::error!("server error: {e}");
                    return ExitCode::FAILURE;
                }
                tracing::info!("shutdown: drained, exiting");
            }
            _ = grace_over => tracing::warn!("shutdown: grace period over, exiting"),
        }
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// SIGHUP reads the keys file again; a file that does not parse keeps the keys in use.
async fn reload_keys_on_sighup(keys: std::sync::Arc<losslab::api::keys::KeyStore>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the keys file is read at start only");
            return;
        };
        while hup.recv().await.is_some() {
            match keys.reload() {
                Ok(n) => tracing::info!(keys = n, "SIGHUP: API keys reloaded"),
                Err(e) => tracing::error!("SIGHUP: {e}; the keys in use are kept"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = keys;
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LOSSLAB_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// GET /healthz on the configured address (0.0.0.0 → loopback) within 2 s.
fn healthcheck(config: &Config) -> ExitCode {
    use std::io::{Read, Write};
    let mut addr = config.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let timeout = Duration::from_secs(2);
    let ok = (|| -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(buf[..n].starts_with(b"HTTP/1.1 200"))
    })()
    .unwrap_or(false);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
