//! The field clock over HTTP: `POST /api/admin/reloj/` sets the time from an administrator's
//! browser (`{"ahora_ms": Date.now()}`), and [`clock_json`] is what health and stats show.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::routes::{Access, Route};
use crate::clock::ClockState;
use crate::clock::monitor::ClockStatus;
use crate::clock::set::SetError;
use crate::config::clock::SetClock;
use crate::sitetime::rfc3339;
use crate::store::users::Permission;

/// Setting the clock: administrators only (`AprobarUsuarios`, as for backups).
pub fn routes() -> Vec<Route> {
    vec![Route::post(
        "/api/admin/reloj/",
        Access::Permission(Permission::AprobarUsuarios),
        set_time,
    )]
}

/// The clock's state as the API shows it.
pub fn clock_json(st: &AppState, c: &ClockStatus) -> Value {
    let tz = st.store.timezone();
    json!({
        "estado": c.state.label(),
        "sincronizado": c.state != ClockState::Unsynced,
        "motivo": c.reason.map(|r| r.text()),
        "ahora": rfc3339(tz, c.now_us),
        "correccion_s": c.offset_us as f64 / 1e6,
        "sin_sincronizar_desde": c.period_from_us.map(|us| rfc3339(tz, us)),
        "se_puede_ajustar": c.state != ClockState::Synced,
        "ultimo_salto": c.last_jump.as_ref().map(|j| json!({
            "a_las": rfc3339(tz, j.at_us),
            "salto_s": j.by_us as f64 / 1e6,
            "lecturas_corregidas": j.redated.as_ref().map_or(0, |r| r.readings),
            "llenados_corregidos": j.redated.as_ref().map_or(0, |r| r.stages),
        })),
    })
}

impl From<SetError> for ApiError {
    fn from(e: SetError) -> Self {
        match e {
            SetError::Synced => ApiError::Conflict(
                "El reloj está sincronizado por NTP; la hora no se ajusta desde el navegador."
                    .into(),
            ),
            SetError::Implausible => ApiError::BadRequest(
                "La hora del navegador no es plausible (antes de 2026 o después de 2100); \
                 revisa el reloj de este dispositivo."
                    .into(),
            ),
            SetError::NotPermitted(_) => ApiError::Forbidden(
                "El servicio no tiene permiso para cambiar la hora del sistema: a la unidad \
                 systemd le falta CAP_SYS_TIME (AmbientCapabilities=CAP_SYS_TIME y \
                 CapabilityBoundingSet=CAP_SYS_TIME, con ProtectClock=no y \
                 SystemCallFilter=@clock). Otra opción: clock.set_clock = \"appliance\"."
                    .into(),
            ),
            SetError::Failed(e) => {
                ApiError::Internal(format!("setting the system clock failed: {e}"))
            }
            SetError::Check(e) => ApiError::Internal(e.to_string()),
        }
    }
}

async fn set_time(
    State(st): State<AppState>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = b?.0;
    let ms = match body.get("ahora_ms") {
        Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::BadRequest(
            "Falta `ahora_ms`: la hora del navegador en milisegundos desde 1970 (Date.now())."
                .into(),
        )
    })?;
    let browser_us = (ms * 1000.0) as i64;
    let clock = st.clock.clone();
    let jump = tokio::task::spawn_blocking(move || clock.set_from_browser(browser_us)).await??;
    let how = match st.clock.config().set_clock {
        SetClock::System => "Hora del sistema ajustada",
        SetClock::Appliance => "Hora del equipo ajustada (el reloj del sistema no se cambió)",
    };
    let n = jump.redated.as_ref().map_or(0, |r| r.readings);
    let detail = format!(
        "{how} con la hora del navegador (salto de {:.0} s); {n} lecturas del periodo sin \
         sincronizar corregidas.",
        jump.by_us as f64 / 1e6
    );
    let status = st.clock.status();
    Ok(Json(json!({
        "detail": detail,
        "reloj": clock_json(&st, &status),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    /// Without `CAP_SYS_TIME` the administrator learns what the unit lacks, as JSON.
    #[tokio::test]
    async fn a_missing_capability_answers_403_naming_it() {
        let e = SetError::NotPermitted(std::io::Error::from_raw_os_error(libc::EPERM));
        let resp = ApiError::from(e).into_response();
        assert_eq!(resp.status(), axum::http::StatusCode::FORBIDDEN);
        let bytes = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("CAP_SYS_TIME") && detail.contains("AmbientCapabilities"),
            "{body}"
        );
        let synced = ApiError::from(SetError::Synced).into_response();
        assert_eq!(synced.status(), axum::http::StatusCode::CONFLICT);
    }
}
