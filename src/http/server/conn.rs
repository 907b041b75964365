//! One HTTP connection: hyper serves it (with WebSocket upgrades) while this task watches for
//! a stalled transfer and for shutdown.
//!
//! The connection's [`Slot`] travels inside its socket, so a connection upgraded to a
//! WebSocket keeps counting against the caps until the WebSocket closes. On the HTTPS
//! listener TLS wraps that same socket, so the caps, the stall clock and the header timeout
//! hold for TLS connections too.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use super::slots::Slot;

/// Origin of the activity clock (milliseconds since this instant fit an atomic).
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// The socket of one connection, noting when a byte last moved either way and holding the
/// connection's slot for as long as the socket lives.
pub struct Tracked {
    stream: TcpStream,
    last: Arc<AtomicU64>,
    _slot: Slot,
}

impl Tracked {
    fn touch(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Counts a request as being handled until dropped (a handler computing a report moves no
/// bytes, and must not be taken for a stalled transfer).
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::Relaxed);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every connection task shares.
#[derive(Clone)]
pub struct Shared {
    /// The application.
    pub router: Router,
    /// hyper's connection settings (header timeout, buffer size).
    pub builder: Arc<Builder<TokioExecutor>>,
    /// Time from accepting a connection to its first request's complete header (a TLS
    /// handshake included).
    pub header_timeout: Duration,
    /// Longest stall of a request body or a response.
    pub idle_timeout: Duration,
    /// Cancelled at shutdown: each connection finishes its request and closes.
    pub stop: CancellationToken,
}

/// Serves one accepted connection until it ends, stalls or the server stops; with `tls`, the
/// handshake comes first and must complete, with the first request's header, within the
/// header timeout (a client that opens TCP and never finishes it holds its slot no longer).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Shared,
    tls: Option<TlsAcceptor>,
) {
    let deadline = tokio::time::Instant::now() + shared.header_timeout;
    let last = Arc::new(AtomicU64::new(now_ms()));
    let tracked = Tracked {
        stream,
        last: last.clone(),
        _slot: slot,
    };
    let Some(acceptor) = tls else {
        return drive(TokioIo::new(tracked), peer, last, shared, None).await;
    };
    let handshake = tokio::time::timeout_at(deadline, acceptor.accept(tracked));
    let stream = tokio::select! {
        res = handshake => match res {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(client = %peer, "TLS handshake not completed within the header timeout");
                return;
            }
        },
        _ = shared.stop.cancelled() => return,
    };
    drive(TokioIo::new(stream), peer, last, shared, Some(deadline)).await
}

/// Runs hyper on one connection's byte stream (plain or TLS). `first_by`: the first request's
/// header must be complete by then (hyper's own header timer starts only now).
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    last: Arc<AtomicU64>,
    shared: Shared,
    first_by: Option<tokio::time::Instant>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let handling = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let counter = handling.clone();
    let seen = requests.clone();
    let router = shared.router.clone();
    let body_timeout = shared.idle_timeout;
    let service = tower::service_fn(move |req: Request<Incoming>| {
        // A request body that stops arriving fails its handler's extractor after the idle
        // timeout (the handler counts as busy meanwhile, see below).
        let mut req = req.map(|body| TimeoutBody::new(body_timeout, body));
        req.extensions_mut().insert(ConnectInfo(peer));
        seen.fetch_add(1, Ordering::Relaxed);
        let busy = Busy::enter(&counter);
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await;
            drop(busy);
            resp
        }
    });
    let conn = shared
        .builder
        .serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let idle_ms = shared.idle_timeout.as_millis() as u64;
    let mut tick = tokio::time::interval((shared.idle_timeout / 4).max(Duration::from_millis(250)));
    let first = tokio::time::sleep_until(first_by.unwrap_or_else(tokio::time::Instant::now));
    let mut first = std::pin::pin!(first);
    let mut first_pending = first_by.is_some();
    let mut draining = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(client = %peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = shared.stop.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = first.as_mut(), if first_pending => {
                first_pending = false;
                if requests.load(Ordering::Relaxed) == 0 {
                    tracing::debug!(client = %peer, "no request header within the header timeout");
                    return;
                }
            }
            _ = tick.tick() => {
                let quiet = now_ms().saturating_sub(last.load(Ordering::Relaxed));
                if quiet >= idle_ms && handling.load(Ordering::Relaxed) == 0 {
                    tracing::debug!(client = %peer, quiet_ms = quiet, "closing a stalled HTTP connection");
                    return;
                }
            }
        }
    }
}
