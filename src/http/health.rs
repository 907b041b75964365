//! `GET /healthz`: 200 only when the store answers a read, the writer is committing and the
//! MQTT broker completed a recent loopback CONNECT; 503 otherwise.
//!
//! Anyone may ask, and anyone learns only `{"status": "ok"}` (or `"error"`). The details (each
//! part's state, version, uptime, clock (`clock_ok` and the field clock's `reloj`), live clients, site, pending first-run setup) are for
//! callers with a valid access token of an approved account, or the metrics token: they tell
//! a visitor on the network more than whether the appliance is up.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::blocking;
use super::guard::{AuthHeader, auth_header, authenticate, is_metrics_token};
use super::routes::{Access, Route};

/// The health check's route (open to everyone; the details check the token themselves).
pub fn routes() -> Vec<Route> {
    vec![Route::get("/healthz", Access::Open, healthz)]
}

/// Whether the request carries a token that may see the details.
async fn may_see_details(st: &AppState, headers: &HeaderMap) -> bool {
    let AuthHeader::Bearer(token) = auth_header(headers) else {
        return false;
    };
    is_metrics_token(st, Some(&token)) || authenticate(st, Some(token)).await.is_ok()
}

async fn healthz(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let store = st.store.clone();
    let ping = blocking(move || store.ping()).await;
    let writer_ok = st.store.counters().writer_healthy.load(Ordering::Relaxed);
    let mqtt_ok = st.mqtt_health.healthy();
    let healthy = ping.is_ok() && writer_ok && mqtt_ok;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let summary = if healthy { "ok" } else { "error" };
    if !may_see_details(&st, &headers).await {
        return (status, Json(json!({ "status": summary }))).into_response();
    }
    let body = json!({
        "status": summary,
        "store": if ping.is_ok() { "ok" } else { "error" },
        "writer": if writer_ok { "ok" } else { "failing" },
        "mqtt": if mqtt_ok { "ok" } else { "not_accepting" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": st.started.elapsed().as_secs(),
        "clock_ok": st.clock.status().state != crate::clock::ClockState::Unsynced,
        "reloj": super::clock::clock_json(&st, &st.clock.status()),
        "ws_clients": st.live.clients(),
        "site": { "name": st.config.raw.site.name, "timezone": st.config.raw.site.timezone },
        "setup_pending": st.auth.setup_pending(),
    });
    (status, Json(body)).into_response()
}
