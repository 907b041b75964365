//! Alarms (`/api/dashboard/alarms/`): the active ones and the history, acknowledging one, and
//! the site's rules. Seeing needs `VerDashboard`; acknowledging and editing `GestionarAlarmas`.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::Path;
use super::guard::CurrentUser;
use super::routes::{Access, Route};
use crate::alarms::AlarmError;
use crate::alarms::edit::rules_json;
use crate::store::users::Permission;

/// Longest acknowledgement comment, characters.
const MAX_COMMENT: usize = 500;

/// The alarm routes.
pub fn routes() -> Vec<Route> {
    let see = Access::Permission(Permission::VerDashboard);
    let manage = Access::Permission(Permission::GestionarAlarmas);
    vec![
        Route::get("/api/dashboard/alarms/", see, list),
        Route::post("/api/dashboard/alarms/{id}/reconocer/", manage, acknowledge),
        Route::get("/api/dashboard/alarms/reglas/", see, rules),
        Route::put("/api/dashboard/alarms/reglas/", manage, update_rules),
        Route::post("/api/dashboard/alarms/prueba/", manage, test_notification),
    ]
}

impl From<AlarmError> for ApiError {
    fn from(e: AlarmError) -> Self {
        match e {
            AlarmError::Invalid(m) => ApiError::BadRequest(m),
            AlarmError::NotOpen => ApiError::NotFound(e.to_string()),
            AlarmError::Store(s) => ApiError::Store(s),
            AlarmError::Task(j) => ApiError::Join(j),
        }
    }
}

async fn list(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (open, history) = st.alarms.list().await?;
    let tz = st.config.timezone;
    Ok(Json(json!({
        "activas": open.iter().map(|a| a.json(tz)).collect::<Vec<_>>(),
        "historial": history.iter().map(|a| a.json(tz)).collect::<Vec<_>>(),
    })))
}

async fn acknowledge(
    State(st): State<AppState>,
    Extension(CurrentUser(u)): Extension<CurrentUser>,
    Path(id): Path<u64>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = b?.0;
    let Value::Object(body) = body else {
        return Err(ApiError::BadRequest(
            "El cuerpo debe ser un objeto JSON.".into(),
        ));
    };
    let comment = match body.get("comentario") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.chars().count() <= MAX_COMMENT => s.trim().to_string(),
        Some(Value::String(_)) => {
            return Err(ApiError::BadRequest(format!(
                "El comentario admite hasta {MAX_COMMENT} caracteres."
            )));
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "«comentario» debe ser un texto.".into(),
            ));
        }
    };
    let alarm = st.alarms.acknowledge(id, &u.username, comment).await?;
    Ok(Json(alarm.json(st.config.timezone)))
}

async fn rules(State(st): State<AppState>) -> Json<Value> {
    Json(rules_json(&st.alarms.rules().await))
}

async fn update_rules(
    State(st): State<AppState>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let rules = st.alarms.update_rules(&b?.0).await?;
    Ok(Json(rules_json(&rules)))
}

/// Sends a test message through every channel: the live feed and, when configured, the
/// webhook and e-mail (queued like an alarm, so a failure shows in *Estado*).
async fn test_notification(
    State(st): State<AppState>,
    Extension(CurrentUser(u)): Extension<CurrentUser>,
) -> Json<Value> {
    let webhook = match &st.webhook {
        Some(w) => {
            w.queue_test(&u.username).await;
            "en cola"
        }
        None => "no configurado",
    };
    let correo = match &st.mail {
        Some(m) => {
            m.queue_test(&u.username).await;
            "en cola"
        }
        None => "no configurado",
    };
    Json(json!({
        "detail": "Notificación de prueba enviada.",
        "webhook": webhook,
        "correo": correo,
    }))
}
