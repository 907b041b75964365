//! `GET /api/usuarios/bloqueos/` (`AprobarUsuarios`): the login counters that are throttling
//! or did within the last hour, so an administrator sees who is being guessed at and from
//! where (the same events are in the log as "login throttled"). Times are in the site's zone,
//! like every other time the API gives.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::auth::throttle::Lockout;

fn lockout_json(l: &Lockout, tz: chrono_tz::Tz) -> Value {
    let until_us = match l.until.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(_) => 0,
    };
    let wait = l
        .until
        .duration_since(std::time::SystemTime::now())
        .map(|d| d.as_secs_f64().ceil() as u64)
        .unwrap_or(0);
    json!({
        "ambito": l.scope.code(),
        "usuario": l.name,
        "direccion": l.address,
        "fallos": l.failures,
        "hasta": crate::sitetime::rfc3339(tz, until_us),
        "segundos": wait,
        "activo": l.active,
    })
}

pub(super) async fn list(State(st): State<AppState>) -> Json<Value> {
    let tz = st.store.timezone();
    let all: Vec<Value> = st
        .auth
        .throttle
        .lockouts()
        .iter()
        .map(|l| lockout_json(l, tz))
        .collect();
    Json(json!({ "total": all.len(), "bloqueos": all }))
}
