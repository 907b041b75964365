//! Operations endpoints and the observability layers of the router.
//!
//! - `GET /api/admin/backup` (administrators: `AprobarUsuarios`): a consistent snapshot of the
//!   whole store, taken while ingest continues, sent as a file download.
//! - `GET /metrics`: Prometheus text format, for an administrator's access token or the
//!   configured `auth.metrics_token` (a Bearer token).
//! - Every request is counted by matched route and status, and runs in a tracing span named
//!   after its matched route (never the raw URI, whose query may carry a token).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tower_http::LatencyUnit;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::AppState;
use super::error::{ApiError, blocking};
use super::guard::CurrentUser;
use super::routes::{Access, Route};
use crate::backup::{self, BACKUP_DIR, BackupError};
use crate::logsafe::Clean;
use crate::metrics;
use crate::store::users::Permission;

/// Route label of requests that matched no route (static files, unknown paths).
const UNMATCHED: &str = "unmatched";

/// The operations routes, each with its own access rule.
pub fn routes() -> Vec<Route> {
    // One snapshot at a time: each needs as much free disk as the live data.
    let busy = Arc::new(Semaphore::new(1));
    vec![
        Route::get(
            "/api/admin/backup",
            Access::Permission(Permission::AprobarUsuarios),
            move |st: State<AppState>, user: Extension<CurrentUser>| backup(st, user, busy.clone()),
        ),
        Route::get("/metrics", Access::MetricsScraper, metrics_handler),
    ]
}

/// Adds request counting and request spans to the complete router. Both run after routing, so
/// they see the matched route.
pub fn observe(router: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED, MatchedPath::as_str);
            if route == "/healthz" {
                tracing::debug_span!("http", method = %req.method(), route)
            } else {
                tracing::info_span!("http", method = %req.method(), route)
            }
        })
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(
            DefaultOnResponse::new()
                .level(Level::DEBUG)
                .latency_unit(LatencyUnit::Millis),
        )
        .on_failure(
            |failure: ServerErrorsFailureClass, latency: Duration, span: &tracing::Span| {
                // A failing /healthz (its span is debug-level, so disabled at info) is polled by
                // the watchdog every few seconds; the writer already logs why it fails.
                if !span.is_disabled() {
                    tracing::warn!(
                        classification = %failure,
                        latency_ms = latency.as_millis() as u64,
                        "response failed"
                    );
                }
            },
        );
    router
        .layer(middleware::from_fn(count_request))
        .layer(trace)
}

/// Counts the request by matched route, method and status.
async fn count_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let resp = next.run(req).await;
    metrics::http_request(&route, &method, resp.status().as_u16());
    resp
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(s) => ApiError::Store(s),
            BackupError::Io { .. } => ApiError::WriteFailed(format!(
                "No se pudo escribir la copia de seguridad ({e}). Revisa el espacio libre en disco."
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

async fn backup(
    State(st): State<AppState>,
    Extension(CurrentUser(user)): Extension<CurrentUser>,
    busy: Arc<Semaphore>,
) -> Result<Response, ApiError> {
    let permit = busy.try_acquire_owned().map_err(|_| {
        ApiError::Conflict("Ya hay una copia de seguridad en curso; espera a que termine.".into())
    })?;
    let store = st.store.clone();
    let dir = st.config.data_dir().join(BACKUP_DIR);
    let pending = blocking(move || backup::snapshot_for_download(&store, &dir)).await?;
    let info = pending.info;
    tracing::info!(
        user = %Clean(&user.username),
        rows = info.rows,
        readings = info.readings,
        bytes = info.bytes,
        ms = info.elapsed.as_millis() as u64,
        "backup snapshot taken"
    );
    let file = tokio::fs::File::open(&pending.path).await;
    // The open file stays readable after it is unlinked, and its space is freed when the
    // download ends, however it ends (finished, cancelled, connection lost).
    let _ = tokio::fs::remove_file(&pending.path).await;
    let file = file.map_err(|e| ApiError::Internal(format!("snapshot vanished: {e}")))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).map(move |chunk| {
        // Holding the permit until the last byte keeps a second snapshot from filling the disk.
        let _hold = &permit;
        chunk
    });
    let name = backup::download_name(&st.config.raw.site.name, st.config.timezone);
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.bytes));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn metrics_handler(State(st): State<AppState>) -> Result<Response, ApiError> {
    let counters = st.store.counters();
    let store = st.store.clone();
    let usage = blocking(move || crate::store::usage::usage(&store))
        .await
        .ok();
    let bridge = match st.bridge.clone() {
        Some(b) => {
            let store = st.store.clone();
            let queue = blocking(move || store.outbox_state())
                .await
                .unwrap_or_default();
            Some(b.snapshot(queue))
        }
        None => None,
    };
    let body = metrics::render(&metrics::Scrape {
        usage: usage.as_ref(),
        bridge: bridge.as_ref(),
        store_file: st.store.path(),
        ws_clients: st.live.clients(),
        uptime: st.started.elapsed(),
        writer_healthy: counters
            .writer_healthy
            .load(std::sync::atomic::Ordering::Relaxed),
    })
    .map_err(|_| ApiError::Internal("encoding the metrics failed".into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
