//! Filling stages (`/api/dashboard/fillings/`): create (with defaults), list, detail,
//! corrections to the active stage, close; and the configured materials.

use std::collections::BTreeMap;

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
use crate::sitetime::{date_day, day_date, now_us, rfc3339, today};
use crate::store::stages::{Stage, StageError, StageFields};
use crate::store::users::Permission;

/// Plausible digester temperatures (°C): unheated bag digesters can run cold.
const TEMPERATURE_RANGE: (f64, f64) = (-10.0, 70.0);
/// Digester temperature of a new stage when none is typed and none was measured (°C): the
/// original system's documented default, mesophilic operation.
const DEFAULT_TEMPERATURE_C: f64 = 35.0;
/// Largest mass accepted for one loading, kg.
const MAX_AMOUNT_KG: f64 = 10_000_000.0;

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
    let tz = st.store.timezone();
    StageInfo {
        id: s.id,
        number: s.number,
        date: day_date(s.date).to_string(),
        people: s.people.clone(),
        material_type: s.material_type.clone(),
        material_amount_kg: s.material_amount_kg,
        material_humidity_pct: s.material_humidity_pct,
        added_water_m3: s.added_water_m3,
        temperature_c: s.temperature_c,
        active: s.active,
        created_at: rfc3339(tz, s.created_us),
        closed_at: s.closed_us.map(|us| rfc3339(tz, us)),
    }
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

/// Why 0 % and 100 % humidity are refused: the model would expect the whole fresh mass as
/// solids, or nothing at all; both are typing mistakes or "unknown".
const HUMIDITY_LIMITS_MESSAGE: &str = "La humedad debe ser mayor que 0 % y menor que 100 %: \
     0 % sería material totalmente seco y 100 % agua pura. Si no la conoces, usa la típica \
     del material (estiércol bovino fresco: 87 %; porcino: 94 %; avícola: 70 %).";

/// Field-by-field reading of a stage form, collecting every error.
struct Form<'a> {
    body: &'a Map<String, Value>,
    errors: BTreeMap<String, Vec<String>>,
}

impl Form<'_> {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errors
            .entry(field.into())
            .or_default()
            .push(msg.into());
    }

    fn present(&self, field: &str) -> bool {
        !matches!(self.body.get(field), None | Some(Value::Null))
    }

    /// A number in `[lo, hi]` (`lo` excluded when `open_lo`), or the error says which.
    fn number(&mut self, field: &str, lo: f64, open_lo: bool, hi: f64, unit: &str) -> Option<f64> {
        let v = match self.body.get(field) {
            None | Some(Value::Null) => {
                self.err(field, "Este campo es requerido.");
                return None;
            }
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => None,
        };
        let Some(v) = v else {
            self.err(field, "Debe ser un número.");
            return None;
        };
        let low_ok = if open_lo { v > lo } else { v >= lo };
        if !(low_ok && v <= hi) {
            let from = if open_lo {
                format!("mayor que {lo}")
            } else {
                format!("entre {lo}")
            };
            let msg = if open_lo {
                format!("Debe ser {from} {unit} (como máximo {hi}).")
            } else {
                format!("Debe estar {from} y {hi} {unit}.")
            };
            self.err(field, msg);
            return None;
        }
        Some(v)
    }

    fn text(&mut self, field: &str, max: usize) -> Option<String> {
        match self.body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= max => Some(s.trim().to_string()),
            Some(Value::String(_)) => {
                self.err(field, format!("Como máximo {max} caracteres."));
                None
            }
            Some(_) => {
                self.err(field, "Debe ser un texto.");
                None
            }
        }
    }
}

/// Validates the stage fields present in `body`; `base` supplies those absent (creation
/// defaults or the stage being corrected).
fn read_form(
    st: &AppState,
    body: &Map<String, Value>,
    base: StageFields,
    partial: bool,
) -> Result<StageFields, ApiError> {
    let mut f = Form {
        body,
        errors: BTreeMap::new(),
    };
    let mut out = base;
    let tz = st.store.timezone();
    if f.present("date") {
        match f
            .text("date", 10)
            .map(|t| chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d"))
        {
            Some(Ok(d)) if date_day(d) <= today(tz) + 1 => out.date = date_day(d),
            Some(Ok(_)) => f.err("date", "La fecha no puede estar en el futuro."),
            Some(Err(_)) => f.err("date", "Usa el formato AAAA-MM-DD."),
            None => {}
        }
    }
    if f.present("number") {
        match body.get("number").and_then(Value::as_u64) {
            Some(n) if (1..=1_000_000).contains(&n) => out.number = Some(n as u32),
            _ => f.err("number", "Debe ser un número entero positivo."),
        }
    }
    if f.present("people")
        && let Some(p) = f.text("people", 200)
    {
        out.people = if p.is_empty() {
            "Sin especificar".into()
        } else {
            p
        };
    }
    if !partial || f.present("material_type") {
        match f.text("material_type", 32) {
            Some(m) if st.config.raw.materials.contains_key(&m) => out.material_type = m,
            Some(m) => {
                let known: Vec<_> = st.config.raw.materials.keys().cloned().collect();
                f.err(
                    "material_type",
                    format!(
                        "Material {m:?} desconocido. Opciones: {}.",
                        known.join(", ")
                    ),
                );
            }
            None if !f.errors.contains_key("material_type") => {
                f.err("material_type", "Este campo es requerido.")
            }
            None => {}
        }
    }
    let num = |f: &mut Form, field: &str, lo, open, hi, unit, slot: &mut f64| {
        if (!partial || f.present(field))
            && let Some(v) = f.number(field, lo, open, hi, unit)
        {
            *slot = v;
        }
    };
    num(
        &mut f,
        "material_amount_kg",
        0.0,
        true,
        MAX_AMOUNT_KG,
        "kg",
        &mut out.material_amount_kg,
    );
    num(
        &mut f,
        "material_humidity_pct",
        0.0,
        false,
        100.0,
        "%",
        &mut out.material_humidity_pct,
    );
    if f.present("material_humidity_pct")
        && !f.errors.contains_key("material_humidity_pct")
        && !(out.material_humidity_pct > 0.0 && out.material_humidity_pct < 100.0)
    {
        f.err("material_humidity_pct", HUMIDITY_LIMITS_MESSAGE);
    }
    if !partial && !f.present("temperature_c") {
        // Left to the caller's default (measured mean, else 35 °C).
    } else {
        num(
            &mut f,
            "temperature_c",
            TEMPERATURE_RANGE.0,
            false,
            TEMPERATURE_RANGE.1,
            "°C",
            &mut out.temperature_c,
        );
    }
    if f.present("added_water_m3") {
        num(
            &mut f,
            "added_water_m3",
            0.0,
            false,
            100_000.0,
            "m³",
            &mut out.added_water_m3,
        );
    }
    if f.errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::Fields(f.errors))
    }
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
    let defaults = StageFields {
        number: None,
        date: today(st.store.timezone()),
        people: "Sin especificar".into(),
        material_type: String::new(),
        material_amount_kg: 0.0,
        material_humidity_pct: 0.0,
        added_water_m3: 0.0,
        temperature_c: 0.0,
    };
    let mut fields = read_form(&st, &body, defaults, false)?;
    let store = st.store.clone();
    let now = now_us();
    let measured = if typed {
        None
    } else {
        blocking(move || store.measured_temperature(now)).await?
    };
    let source = match (typed, measured) {
        (true, _) => "indicada",
        (false, Some((mean, _))) if (TEMPERATURE_RANGE.0..=TEMPERATURE_RANGE.1).contains(&mean) => {
            fields.temperature_c = (mean * 10.0).round() / 10.0;
            "medida"
        }
        (false, _) => {
            fields.temperature_c = DEFAULT_TEMPERATURE_C;
            "predeterminada"
        }
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
