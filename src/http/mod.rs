//! HTTP surface: REST API, WebSocket live feed, health and the bundled UI. The router is built
//! apart from serving it so tests and the server share it; [`server`] serves it with
//! connection limits.

mod accounts;
pub mod admin;
mod alarms;
mod assets;
mod bridge;
mod clock;
mod dashboard;
pub mod error;
pub mod extract;
pub mod guard;
mod headers;
mod health;
mod lockouts;
mod production;
mod reports;
mod reset;
pub mod routes;
mod sensors;
pub mod server;
mod sessions;
mod stages;
mod stream;
mod users;
mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::MethodRouter;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;

use crate::auth::Auth;
use crate::config::ValidConfig;
use crate::live::LiveHub;
use crate::sensors::SensorRegistry;
use crate::store::Store;

pub use reports::ReportSlots;
pub use routes::{Access, RouteInfo};
pub use ws::WsSlots;

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
    /// Cancelled at shutdown so WebSocket tasks end (the server's graceful shutdown does not
    /// wait for upgraded connections).
    pub shutdown: CancellationToken,
    /// Open live-feed WebSockets, in all and per account.
    pub ws_slots: WsSlots,
    /// The field clock: its state, and setting it from an administrator's browser.
    pub clock: crate::clock::FieldClock,
    /// The bridge to a central broker (None when `[bridge]` is off).
    pub bridge: Option<crate::bridge::BridgeStatus>,
    /// The event bus, to announce what handlers change (a new stage).
    pub bus: crate::events::Bus,
    /// The alarm webhook, when `alarms.webhook_url` is set.
    pub webhook: Option<crate::alarms::webhook::Webhook>,
    /// The alarm e-mail sender, when `alarms.smtp_host` is set.
    pub mail: Option<crate::alarms::webhook::Webhook>,
    /// The alarm engine: alarms, acknowledgements and thresholds.
    pub alarms: crate::alarms::Alarms,
}

/// Every route of the API with its handler, from each resource's own table.
fn declared() -> Vec<routes::Route> {
    [
        health::routes(),
        admin::routes(),
        clock::routes(),
        accounts::routes(),
        sessions::routes(),
        users::routes(),
        dashboard::routes(),
        sensors::routes(),
        ws::routes(),
        stages::routes(),
        production::routes(),
        reports::routes(),
        bridge::routes(),
        alarms::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every route of the API and the access it requires: the table the router is built from.
pub fn routes() -> Vec<RouteInfo> {
    declared().into_iter().map(|r| r.info).collect()
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.raw.http.max_body_bytes as usize;
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in declared() {
        let guarded = guard::guard(route.handler, &route.info, &state);
        let merged = match by_path.remove(route.info.path) {
            Some(other) => other.merge(guarded),
            None => guarded,
        };
        by_path.insert(route.info.path, merged);
    }
    let app = by_path
        .into_iter()
        .fold(Router::new(), |app, (path, handler)| {
            app.route(path, handler)
        })
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(assets::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CompressionLayer::new())
        .with_state(state);
    headers::secure(admin::observe(app))
}
