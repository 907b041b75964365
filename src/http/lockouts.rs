//! `GET /api/usuarios/bloqueos/` (`AprobarUsuarios`): the login counters that are throttling
//! or did within the last hour, so an administrator sees who is being guessed at and from
//! where (the same events are in the log as "login throttled").

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::auth::throttle::Lockout;

fn lockout_json(l: &Lockout) -> Value {
    let until: chrono::DateTime<chrono::Utc> = l.until.into();
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
        "hasta": until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "segundos": wait,
        "activo": l.active,
    })
}

pub(super) async fn list(State(st): State<AppState>) -> Json<Value> {
    let all: Vec<Value> = st
        .auth
        .throttle
        .lockouts()
        .iter()
        .map(lockout_json)
        .collect();
    Json(json!({ "total": all.len(), "bloqueos": all }))
}
