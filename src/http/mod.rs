//! HTTP surface: REST API, WebSocket live feed, health and the bundled UI. The router is built
//! apart from serving it so tests and the server share it.

mod assets;
mod dashboard;
pub mod error;
mod health;
mod ws;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;

use crate::config::ValidConfig;
use crate::live::LiveHub;
use crate::store::Store;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub live: LiveHub,
    pub config: Arc<ValidConfig>,
    pub started: Instant,
    pub active_stage: Arc<AtomicU64>,
    /// Cancelled at shutdown so WebSocket tasks end (axum's graceful shutdown does not wait
    /// for upgraded connections).
    pub shutdown: CancellationToken,
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.raw.http.max_body_bytes as usize;
    Router::new()
        .merge(health::router())
        .merge(dashboard::router())
        .merge(ws::router())
        .fallback(assets::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CompressionLayer::new())
        .with_state(state)
}
