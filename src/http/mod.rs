//! HTTP surface: REST API, WebSocket live feed, health and the bundled UI. The router is built
//! apart from serving it so tests and the server share it.

mod accounts;
pub mod admin;
mod assets;
mod dashboard;
pub mod error;
pub mod guard;
mod health;
mod lockouts;
mod production;
mod reports;
mod reset;
mod sensors;
mod sessions;
mod stages;
mod stream;
mod users;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;

use crate::auth::Auth;
use crate::config::ValidConfig;
use crate::live::LiveHub;
use crate::sensors::SensorRegistry;
use crate::store::Store;
use crate::store::users::Permission;

pub use reports::ReportSlots;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub live: LiveHub,
    pub config: Arc<ValidConfig>,
    pub started: Instant,
    pub auth: Auth,
    pub reports: reports::ReportSlots,
    /// What is known about each MQTT client (the broker and ingest report to it).
    pub sensors: SensorRegistry,
    /// The broker's admission state (refusal counts by reason).
    pub mqtt: Arc<crate::broker::admission::Gate>,
    /// Whether the broker completed a recent loopback CONNECT.
    pub mqtt_health: crate::broker::probe::MqttHealth,
    /// Cancelled at shutdown so WebSocket tasks end (axum's graceful shutdown does not wait
    /// for upgraded connections).
    pub shutdown: CancellationToken,
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.raw.http.max_body_bytes as usize;
    let dashboard = dashboard::router()
        .merge(sensors::router())
        .merge(ws::router());
    let app = Router::new()
        .merge(health::router())
        .merge(admin::router(&state))
        .merge(accounts::router(&state))
        .merge(guard::protect(
            dashboard,
            &state,
            Some(Permission::VerDashboard),
        ))
        .merge(guard::protect(
            stages::router()
                .merge(production::router())
                .merge(reports::router()),
            &state,
            None,
        ))
        .fallback(assets::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CompressionLayer::new())
        .with_state(state);
    admin::observe(app)
}
