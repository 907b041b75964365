//! `/api/dashboard/production/current/` and `/api/dashboard/production/<stage_id>/`: the
//! kinetic model's expectation against measured production, from the daily aggregates.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, blocking};
use super::extract::Path;
use super::routes::{Access, Route};
use super::stages::stage_json;
use crate::production::{self, Production, ProductionError};
use crate::store::stages::Stage;
use crate::store::users::Permission;

/// Expected against measured production (`VerDashboard`).
pub fn routes() -> Vec<Route> {
    let see = Access::Permission(Permission::VerDashboard);
    vec![
        Route::get("/api/dashboard/production/current/", see, current),
        Route::get("/api/dashboard/production/{stage_id}/", see, by_stage),
    ]
}

impl From<ProductionError> for ApiError {
    fn from(e: ProductionError) -> Self {
        match e {
            ProductionError::UnknownMaterial(m) => ApiError::Conflict(format!(
                "El material {m:?} de esta etapa ya no está configurado; agrégalo en config.toml."
            )),
            ProductionError::Model(m) => {
                ApiError::BadRequest(format!("Datos de la etapa no válidos para el modelo: {m}"))
            }
        }
    }
}

/// Computes the comparison for `stage` (shared with the reports).
pub async fn production_of(st: &AppState, stage: &Stage) -> Result<Production, ApiError> {
    let store = st.store.clone();
    let stage = stage.clone();
    let material = st.config.raw.materials.get(&stage.material_type).cloned();
    let site = st.config.site_model();
    blocking(move || production::compute_now(&store, &stage, material.as_ref(), site)).await
}

impl From<production::NowError> for ApiError {
    fn from(e: production::NowError) -> Self {
        match e {
            production::NowError::Store(e) => e.into(),
            production::NowError::Production(e) => e.into(),
        }
    }
}

async fn respond(st: &AppState, stage: Stage) -> Result<Json<Value>, ApiError> {
    let p = production_of(st, &stage).await?;
    Ok(Json(json!({
        "stage": stage_json(st, &stage),
        "expected": p.expected,
        "actual": p.actual,
        "summary": p.summary,
    })))
}

async fn current(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let id = st.store.active_stage_id();
    let store = st.store.clone();
    let stage = match id {
        0 => None,
        id => blocking(move || store.stage(id)).await?,
    };
    match stage {
        Some(s) => respond(&st, s).await,
        None => Err(ApiError::NotFound("No hay etapa activa".into())),
    }
}

async fn by_stage(
    State(st): State<AppState>,
    Path(stage_id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let stage = blocking(move || store.stage(stage_id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Etapa no encontrada.".into()))?;
    respond(&st, stage).await
}
