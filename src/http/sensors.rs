//! `/api/dashboard/sensors/`: the sensor registry for installers in the field — which MQTT
//! clients are connected, from where, when each last connected and last sent, how many of its
//! messages were accepted or refused (and the last reason), and which fields it sends.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::routes::{Access, Route};
use crate::sensors::SensorStatus;
use crate::sitetime::{now_us, rfc3339};
use crate::store::users::Permission;

/// The sensor registry route (for holders of `VerDashboard`).
pub fn routes() -> Vec<Route> {
    vec![Route::get(
        "/api/dashboard/sensors/",
        Access::Permission(Permission::VerDashboard),
        list,
    )]
}

/// One sensor as JSON; `silencio_s` counts whole seconds since its last accepted message.
fn sensor_json(st: &AppState, s: &SensorStatus, now: i64) -> Value {
    let tz = st.store.timezone();
    let time = |us: Option<i64>| us.map(|us| rfc3339(tz, us));
    let r = &s.record;
    json!({
        "client_id": s.client_id,
        "usuario": r.user,
        "conectado": s.connected,
        "direccion": r.addr.map(|a| a.to_string()),
        "ultima_conexion": time(r.last_connect_us),
        "ultima_desconexion": time(r.last_disconnect_us),
        "ultimo_mensaje": time(r.last_message_us),
        "aceptados": r.accepted,
        "rechazados": r.rejected,
        "ultimo_rechazo": r.last_rejection,
        "ultimo_rechazo_en": time(r.last_rejection_us),
        "campos": r.fields,
        "silencio_s": r.last_message_us.map(|us| (now - us).max(0) / 1_000_000),
    })
}

async fn list(State(st): State<AppState>) -> Json<Value> {
    let now = now_us();
    let sensors: Vec<Value> = st
        .sensors
        .snapshot()
        .iter()
        .map(|s| sensor_json(&st, s, now))
        .collect();
    Json(json!({
        "sensores": sensors,
        "ahora": rfc3339(st.store.timezone(), now),
    }))
}
