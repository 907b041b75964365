//! `GET /healthz`: 200 only when the store answers a read, the writer is committing and the
//! MQTT broker completed a recent loopback CONNECT; 503 otherwise.
//!
//! Anyone may ask, and anyone learns only `{"status": "ok"}` (or `"error"`). The details (each
//! part's state, version, uptime, clock (`clock_ok` and the field clock's `reloj`), live
//! clients, site, pending first-run setup, the store's room: size, free space, days until full,
//! oldest reading, last prune) are for
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
use crate::sitetime::rfc3339;
use crate::store::usage::{Usage, usage};

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

/// The store's room for the details: sizes in bytes, times in the site's zone, `null` where
/// unknown (days until full: also when the store is not growing; last prune: never ran).
fn storage_json(u: &Usage, tz: chrono_tz::Tz) -> serde_json::Value {
    json!({
        "store_bytes": u.store_bytes,
        "free_bytes": u.free_bytes,
        "filesystem_bytes": u.filesystem_bytes,
        "growth_bytes_per_day": u.growth_bytes_per_day.map(f64::round),
        "days_until_full": u.days_until_full.map(|d| (d * 10.0).round() / 10.0),
        "oldest_reading": u.oldest_reading_us.map(|us| rfc3339(tz, us)),
        "last_prune": u.last_prune_us.map(|us| rfc3339(tz, us)),
        "pruned_total": u.pruned_total,
    })
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
    let store = st.store.clone();
    let storage = match blocking(move || usage(&store)).await {
        Ok(u) => storage_json(&u, st.config.timezone),
        Err(_) => serde_json::Value::Null,
    };
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
        "storage": storage,
        "notificaciones": notifications_json(&st),
    });
    (status, Json(body)).into_response()
}

/// The alarm webhook's and e-mail's state for *Estado*: `null` when neither is configured.
fn notifications_json(st: &AppState) -> serde_json::Value {
    let tz = st.config.timezone;
    let of = |w: &crate::alarms::webhook::Webhook| {
        let s = w.status();
        json!({
            "pendientes": s.pendientes,
            "ultimo_error": s.ultimo_error,
            "ultimo_error_en": s.error_us.map(|us| rfc3339(tz, us)),
            "ultimo_envio": s.sent_us.map(|us| rfc3339(tz, us)),
        })
    };
    if st.webhook.is_none() && st.mail.is_none() {
        return serde_json::Value::Null;
    }
    json!({
        "webhook": st.webhook.as_ref().map(of),
        "correo": st.mail.as_ref().map(of),
    })
}
