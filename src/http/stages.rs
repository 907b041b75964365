//! Filling stages (`/api/dashboard/fillings/`): create (with defaults), list, detail,
//! corrections to the active stage, close; and the configured materials.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{ApiError, blocking};
use super::extract::Path;
use super::routes::{Access, Route};
use crate::reports::data::StageInfo;
use crate::rules::stage;
use crate::sitetime::{now_us, today};
use crate::store::stages::{Stage, StageError, StageFields};
use crate::store::users::Permission;

/// Stages and materials: reading needs `VerDashboard`, changing `GestionarLlenados`.
pub fn routes() -> Vec<Route> {
    let see = Access::Permission(Permission::VerDashboard);
    let manage = Access::Permission(Permission::GestionarLlenados);
    vec![
        Route::get("/api/dashboard/materials/", see, materials),
        Route::get("/api/dashboard/fillings/", see, list),
        Route::post("/api/dashboard/fillings/", manage, create),
        Route::get("/api/dashboard/fillings/{id}/", see, detail),
        Route::patch("/api/dashboard/fillings/{id}/", manage, patch),
        Route::post("/api/dashboard/fillings/{id}/close/", manage, close),
    ]
}

/// A stage as the API shows it.
pub fn stage_json(st: &AppState, s: &Stage) -> Value {
    serde_json::to_value(stage_info(st, s)).unwrap_or(Value::Null)
}

/// A stage as the reports show it.
pub fn stage_info(st: &AppState, s: &Stage) -> StageInfo {
    StageInfo::of(st.store.timezone(), s)
}

impl From<StageError> for ApiError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::NotFound => ApiError::NotFound("Llenado no encontrado.".into()),
            StageError::Closed => {
                ApiError::Conflict("El llenado está cerrado y ya no se puede modificar.".into())
            }
            StageError::NumberTaken(n, next) => ApiError::BadRequest(format!(
                "Ya existe un llenado con el número {n}. El siguiente número libre es {next}."
            )),
            StageError::Store(s) => ApiError::Store(s),
        }
    }
}

async fn materials(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "materials": st.config.raw.materials }))
}

async fn list(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let stages = blocking(move || store.stages()).await?;
    let list: Vec<Value> = stages.iter().map(|s| stage_json(&st, s)).collect();
    Ok(Json(json!({ "total": list.len(), "fillings": list })))
}

async fn detail(State(st): State<AppState>, Path(id): Path<u64>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let stage = blocking(move || store.stage(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Llenado no encontrado.".into()))?;
    Ok(Json(stage_json(&st, &stage)))
}

/// The stage rules on the API's form, with this site's time zone and materials.
fn read_form(
    st: &AppState,
    body: &Map<String, Value>,
    base: StageFields,
    partial: bool,
) -> Result<StageFields, ApiError> {
    let site = stage::Site {
        timezone: st.store.timezone(),
        materials: st.config.raw.materials.keys().cloned().collect(),
    };
    stage::read_form(&site, body, base, partial).map_err(ApiError::Fields)
}

fn object(b: Result<Json<Value>, JsonRejection>) -> Result<Map<String, Value>, ApiError> {
    match b?.0 {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::BadRequest(
            "El cuerpo debe ser un objeto JSON.".into(),
        )),
    }
}

async fn create(
    State(st): State<AppState>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object(b)?;
    let typed = !matches!(body.get("temperature_c"), None | Some(Value::Null));
    let defaults = stage::creation_defaults(today(st.store.timezone()));
    let mut fields = read_form(&st, &body, defaults, false)?;
    let store = st.store.clone();
    let now = now_us();
    let measured = if typed {
        None
    } else {
        blocking(move || store.measured_temperature(now)).await?
    };
    let source = if typed {
        "indicada"
    } else {
        let (t, source) = stage::default_temperature(measured.map(|(mean, _)| mean));
        fields.temperature_c = t;
        source
    };
    let store = st.store.clone();
    let (stage, closed) = blocking(move || store.create_stage(fields, now)).await?;
    st.bus
        .publish(crate::events::Event::StageChanged { stage: stage.id });
    let mut out = stage_json(&st, &stage);
    let detail = match &closed {
        Some(c) => format!(
            "Llenado {} creado; el llenado {} quedó cerrado.",
            stage.number, c.number
        ),
        None => format!("Llenado {} creado.", stage.number),
    };
    if let Value::Object(m) = &mut out {
        m.insert(
            "closed_previous".into(),
            closed.map_or(Value::Null, |c| json!({"id": c.id, "number": c.number})),
        );
        m.insert("detail".into(), Value::from(detail));
        m.insert("temperature_source".into(), Value::from(source));
        if let Some((_, n)) = measured {
            m.insert("temperature_readings".into(), Value::from(n));
        }
    }
    Ok((StatusCode::CREATED, Json(out)))
}

async fn patch(
    State(st): State<AppState>,
    Path(id): Path<u64>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = object(b)?;
    let store = st.store.clone();
    let current = blocking(move || store.stage(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Llenado no encontrado.".into()))?;
    if !current.active {
        return Err(StageError::Closed.into());
    }
    let base = StageFields {
        number: Some(current.number),
        date: current.date,
        people: current.people.clone(),
        material_type: current.material_type.clone(),
        material_amount_kg: current.material_amount_kg,
        material_humidity_pct: current.material_humidity_pct,
        added_water_m3: current.added_water_m3,
        temperature_c: current.temperature_c,
    };
    let f = read_form(&st, &body, base, true)?;
    let store = st.store.clone();
    let stage = blocking(move || {
        store.update_stage(id, |s| {
            s.number = f.number.unwrap_or(s.number);
            s.date = f.date;
            s.people = f.people;
            s.material_type = f.material_type;
            s.material_amount_kg = f.material_amount_kg;
            s.material_humidity_pct = f.material_humidity_pct;
            s.added_water_m3 = f.added_water_m3;
            s.temperature_c = f.temperature_c;
        })
    })
    .await?;
    Ok(Json(stage_json(&st, &stage)))
}

async fn close(State(st): State<AppState>, Path(id): Path<u64>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let stage = blocking(move || store.close_stage(id, now_us())).await?;
    Ok(Json(stage_json(&st, &stage)))
}
