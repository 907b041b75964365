//! `GET /api/puente/`: the bridge to the central broker as Estado shows it (connected, refused
//! credentials, last error, readings waiting and the oldest one's age, forwarded rate, seq
//! gaps left by a critically full disk). `{"activo": false}` when `[bridge]` is off.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, blocking};
use super::routes::{Access, Route};
use crate::store::users::Permission;

/// The bridge's route.
pub fn routes() -> Vec<Route> {
    let see = Access::Permission(Permission::VerDashboard);
    vec![Route::get("/api/puente/", see, bridge_status)]
}

async fn bridge_status(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(bridge) = st.bridge.clone() else {
        return Ok(Json(json!({ "activo": false })));
    };
    let store = st.store.clone();
    let queue = blocking(move || store.outbox_state()).await?;
    Ok(Json(bridge.to_json(queue, st.config.timezone)))
}
