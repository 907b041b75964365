//! Serving the router over TCP with the limits `axum::serve` lacks, so a hostile client on the
//! farm's network cannot exhaust the process's file descriptors:
//!
//! - a request header must arrive within `http.header_timeout_s` (hyper's header-read timer,
//!   which also runs while a kept-alive connection waits for its next request, so idle
//!   keep-alive connections close after the same time);
//! - a request body or a response that moves no byte for `http.idle_timeout_s` ends its
//!   connection (a request still being computed is exempt);
//! - at most `http.max_connections` connections are open, and `http.max_connections_per_address`
//!   from one client address; connections from the appliance itself (the watchdog's loopback
//!   probe) bypass the per-address cap and have a small reserve (see [`slots`]);
//! - a refused connection gets a short `503` and is closed at once, so it holds no descriptor.
//!
//! With `http.tls_bind`, a second listener serves the same router over TLS under the same
//! caps (one [`Slots`] for both), its handshake counted in the header timeout.
//!
//! `ConnectInfo<SocketAddr>` is set on every request, and on shutdown the listener closes,
//! kept-alive connections end, and requests in flight get [`DRAIN`] to finish.

mod conn;
pub mod slots;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use crate::config::HttpConfig;
pub use slots::{Refusal, Slots};

/// Longest wait for requests in flight at shutdown before their connections are dropped.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Largest request header hyper buffers (its default is 400 KiB; browsers send a few KiB).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Pause after a failed `accept` (e.g. out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a refused client reads before the connection closes.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Retry-After: 10\r\nConnection: close\r\nContent-Length: 60\r\n\r\n\
{\"detail\":\"Demasiadas conexiones. Intenta de nuevo pronto.\"}";

/// The connection limits of `[http]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a request's header (and to start the next one on a kept-alive connection).
    pub header_timeout: Duration,
    /// Longest stall of a request body or a response.
    pub idle_timeout: Duration,
    /// Connections open at once, besides the local reserve.
    pub max_connections: usize,
    /// Connections from one client address.
    pub max_per_address: usize,
}

impl Limits {
    /// The limits a validated `[http]` section asks for.
    pub fn from_config(c: &HttpConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(c.header_timeout_s),
            idle_timeout: Duration::from_secs(c.idle_timeout_s),
            max_connections: c.max_connections as usize,
            max_per_address: c.max_connections_per_address as usize,
        }
    }
}

/// Logs refusals at most once per interval, with how many there were meanwhile.
struct RefusalLog {
    last: Option<Instant>,
    since: u64,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, refusal: Refusal, peer: std::net::SocketAddr, open: usize) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= Self::EVERY) {
            tracing::warn!(
                client = %peer.ip(),
                reason = refusal.reason(),
                open,
                refused = self.since,
                "HTTP connections refused (limit reached)"
            );
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}

/// The HTTPS listener: its socket and the TLS configuration its connections are served with.
pub struct TlsListener {
    pub listener: TcpListener,
    pub config: Arc<ServerConfig>,
}

/// Accepts on the HTTPS listener, or never when there is none.
async fn accept_tls(
    tls: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match tls {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// After a failed `accept`: out of descriptors (or memory) persists, so it is logged now and
/// then, not at every retry, and the loop pauses instead of spinning.
async fn accept_failed(e: &std::io::Error, warned: &mut Option<Instant>) {
    if warned.is_none_or(|t: Instant| t.elapsed() >= RefusalLog::EVERY) {
        tracing::warn!(error = %e, "accepting an HTTP connection failed");
        *warned = Some(Instant::now());
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

fn refuse(stream: TcpStream) {
    // Best effort, never waiting: a client that does not read simply gets the close.
    let _ = stream.try_write(REFUSED);
}

/// Serves `router` on `listener` (and over TLS on `tls`) within `limits` until `shutdown`
/// resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsListener>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Slots::new(limits.max_connections, limits.max_per_address);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    let stop = CancellationToken::new();
    let shared = conn::Shared {
        router,
        builder: Arc::new(builder),
        header_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
        stop: stop.clone(),
    };
    let mut tasks = JoinSet::new();
    let mut log = RefusalLog {
        last: None,
        since: 0,
    };
    let mut accept_warned: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    let (tls_listener, acceptor) = match tls {
        Some(t) => (Some(t.listener), Some(TlsAcceptor::from(t.config))),
        None => (None, None),
    };
    loop {
        let ((stream, peer), secure) = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(pair) => (pair, false),
                Err(e) => {
                    accept_failed(&e, &mut accept_warned).await;
                    continue;
                }
            },
            accepted = accept_tls(tls_listener.as_ref()) => match accepted {
                Ok(pair) => (pair, true),
                Err(e) => {
                    accept_failed(&e, &mut accept_warned).await;
                    continue;
                }
            },
        };
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        match slots.admit(peer.ip(), local.ip()) {
            Ok(slot) => {
                let tls = if secure { acceptor.clone() } else { None };
                tasks.spawn(conn::serve(stream, peer, slot, shared.clone(), tls));
            }
            Err(refusal) => {
                crate::metrics::http_refused(refusal.reason());
                log.note(refusal, peer, slots.open());
                // A TLS client could not read the plain answer: it only sees the close.
                if !secure {
                    refuse(stream);
                }
            }
        }
    }
    drop(listener);
    drop(tls_listener);
    stop.cancel();
    let drained =
        tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "requests still running after {DRAIN:?} at shutdown; closing their connections"
        );
        tasks.abort_all();
    }
    Ok(())
}

/// Warns when the process may open fewer files than the configured connection caps need
/// (each connection is one descriptor; the store, logs and reports need some more).
pub fn check_descriptor_budget(http: &HttpConfig, mqtt_connections: u64) {
    let Some(soft) = open_files_limit() else {
        return;
    };
    let needed = http.max_connections + slots::LOCAL_RESERVE as u64 + mqtt_connections + 64;
    if soft < needed {
        tracing::warn!(
            limit = soft,
            needed,
            "the open-file limit is below what http.max_connections and mqtt.max_connections \
             may need: raise LimitNOFILE in the systemd unit or lower those caps"
        );
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(super::REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        assert!(serde_json::from_str::<serde_json::Value>(body).unwrap()["detail"].is_string());
    }

    #[test]
    fn the_open_file_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
