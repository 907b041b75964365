//! `GET /healthz`: 200 only when the store answers a read, the writer is committing and the
//! MQTT broker completed a recent loopback CONNECT.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::blocking;
use super::routes::{Access, Route};
use crate::sitetime::{PLAUSIBLE_CLOCK_US, now_us};

/// The health check's route, open to everyone.
pub fn routes() -> Vec<Route> {
    vec![Route::get("/healthz", Access::Open, healthz)]
}

async fn healthz(State(st): State<AppState>) -> Response {
    let store = st.store.clone();
    let ping = blocking(move || store.ping()).await;
    let writer_ok = st.store.counters().writer_healthy.load(Ordering::Relaxed);
    let mqtt_ok = st.mqtt_health.healthy();
    let healthy = ping.is_ok() && writer_ok && mqtt_ok;
    let body = json!({
        "status": if healthy { "ok" } else { "error" },
        "store": if ping.is_ok() { "ok" } else { "error" },
        "writer": if writer_ok { "ok" } else { "failing" },
        "mqtt": if mqtt_ok { "ok" } else { "not_accepting" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": st.started.elapsed().as_secs(),
        "clock_ok": now_us() >= PLAUSIBLE_CLOCK_US,
        "ws_clients": st.live.clients(),
        "site": { "name": st.config.raw.site.name, "timezone": st.config.raw.site.timezone },
        "setup_pending": st.auth.setup_pending(),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
